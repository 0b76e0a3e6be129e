"""Reading our commands' arguments and notifications' params: anything malformed is
InvalidParams (commands) or ignored (notifications), never a crash."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lsprotocol import types

from code_llama_ls.errors import InvalidRequestError


def uri_and_range(command: str, args: tuple[Any, ...]) -> tuple[str, types.Range]:
    """Read `{uri, range}` from a command's arguments."""
    try:
        argument = args[0]
        uri = argument["uri"]
        selection = types.Range(
            _position(argument["range"]["start"]), _position(argument["range"]["end"])
        )
    except (IndexError, KeyError, TypeError, ValueError) as exc:
        raise InvalidRequestError(
            f"{command} expects one argument {{uri, range}}: {exc!r}"
        ) from None
    corners = (selection.start, selection.end)
    if not isinstance(uri, str) or min(min(p.line, p.character) for p in corners) < 0:
        raise InvalidRequestError(f"{command}: invalid uri or range")
    return uri, selection


def uri_and_position(command: str, args: tuple[Any, ...]) -> tuple[str, types.Position]:
    """Read `{uri, position}` from a command's arguments."""
    try:
        argument = args[0]
        uri = argument["uri"]
        position = _position(argument["position"])
    except (IndexError, KeyError, TypeError, ValueError) as exc:
        raise InvalidRequestError(
            f"{command} expects one argument {{uri, position}}: {exc!r}"
        ) from None
    if not isinstance(uri, str) or min(position.line, position.character) < 0:
        raise InvalidRequestError(f"{command}: invalid uri or position")
    return uri, position


def _position(value: Any) -> types.Position:
    return types.Position(int(value["line"]), int(value["character"]))


def member(value: object, name: str) -> Any:
    """`value[name]` or `value.name`: pygls hands unknown methods' params as objects."""
    if isinstance(value, Mapping):
        return value.get(name)
    return getattr(value, name, None)
