"""The LSP edge: the only package that knows the protocol (pygls, lsprotocol)."""
