"""HEALPix sky maps: multi-order (NUNIQ) reading, writing, and look-ups, vectorized."""
