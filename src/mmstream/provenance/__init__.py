"""Provenance: the facts each result carries about how it was made."""
