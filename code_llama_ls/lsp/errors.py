"""The one mapping from what went wrong to what the editor is told.

Every failure a handler raises, ours or pygls', is classified here once:
the JSON-RPC error a request answers with, how loudly it is logged, and
whether the user must hear of it. The server applies the side effects
(`CodeLlamaServer.fail`); this module only decides.

- A client's mistake (bad params, unknown document, bad position): an error
  reply and one warning line in the log, never a popup.
- Cancellation: RequestCancelled, logged at debug.
- Model trouble (cannot load, inference server unreachable, generation or
  prompt failure): RequestFailed with the reason; the server shows it once
  and marks its status, because the user must act on it.
- Anything else is our bug: InternalError, the traceback in the log.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInternalError

from code_llama_ls.errors import (
    ConfigError,
    GenerationError,
    InvalidRequestError,
    ModelLoadError,
    PromptError,
    RequestCancelled,
    UnknownDocumentError,
)

PREFIX = "code-llama-ls: "


class Kind(enum.Enum):
    """Who has to act on a failure."""

    CLIENT_MISTAKE = "client"
    """The editor sent something we cannot serve: it gets an error reply, nothing more."""
    CANCELLED = "cancelled"
    """The request was cancelled or superseded."""
    MODEL_TROUBLE = "model"
    """The model cannot serve: the user must act (fix the model, start the server)."""
    BUG = "bug"
    """Our own defect."""


@dataclass(frozen=True)
class Failure:
    """A failure, classified: what to answer and how loudly to say it."""

    kind: Kind
    code: int
    message: str

    @property
    def log_level(self) -> int:
        """The level the failure is logged at."""
        return {
            Kind.CLIENT_MISTAKE: logging.WARNING,
            Kind.CANCELLED: logging.DEBUG,
            # The server logs it once, with the message it shows: not per keystroke.
            Kind.MODEL_TROUBLE: logging.DEBUG,
            Kind.BUG: logging.ERROR,
        }[self.kind]

    def response_error(self) -> types.ResponseError:
        """The `error` member of the JSON-RPC reply."""
        return types.ResponseError(code=self.code, message=self.message)


def classify(exc: BaseException) -> Failure:
    """What `exc`, raised while serving a message, means for the client and the user."""
    if isinstance(exc, RequestCancelled | asyncio.CancelledError):
        return Failure(Kind.CANCELLED, types.LSPErrorCodes.RequestCancelled, "request cancelled")
    if isinstance(exc, InvalidRequestError | UnknownDocumentError | ConfigError):
        return Failure(Kind.CLIENT_MISTAKE, types.ErrorCodes.InvalidParams, str(exc))
    if isinstance(exc, ModelLoadError | GenerationError | PromptError):
        return Failure(Kind.MODEL_TROUBLE, types.LSPErrorCodes.RequestFailed, PREFIX + str(exc))
    if isinstance(exc, JsonRpcException) and not isinstance(exc, JsonRpcInternalError):
        # pygls' own answers (unknown method or command, arguments that do not
        # structure) and the errors handlers raise on purpose.
        kind = (
            Kind.CANCELLED
            if exc.code == types.LSPErrorCodes.RequestCancelled
            else Kind.CLIENT_MISTAKE
        )
        return Failure(kind, exc.code, exc.message or type(exc).__name__)
    return Failure(
        Kind.BUG,
        types.ErrorCodes.InternalError,
        f"{PREFIX}internal error ({type(exc).__name__}: {exc}); the server log has the details",
    )


def is_client_mistake(exc: BaseException) -> bool:
    """Whether the client caused `exc` (completions answer those with an error, not nothing)."""
    return classify(exc).kind is Kind.CLIENT_MISTAKE
