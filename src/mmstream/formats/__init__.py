"""Wire formats: one module per format, each decoding bytes into the normalized model."""
