"""code-llama-ls: a Language Server that serves Code Llama completions and explanations."""

__version__ = "0.1.0"
