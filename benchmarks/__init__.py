"""Benchmarks of code-llama-ls, run as modules from the repository root (see README.md)."""
