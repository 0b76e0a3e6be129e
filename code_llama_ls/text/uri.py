"""Document uris as paths: the one place a `file:` uri becomes a file's path."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit


def uri_to_path(uri: str) -> str:
    """The absolute POSIX path of a file: uri, else the uri itself (untitled documents)."""
    parts = urlsplit(uri)
    return unquote(parts.path) if parts.scheme == "file" else uri
