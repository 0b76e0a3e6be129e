"""Tokenizers as the pipeline sees them, and counting text in tokens."""
