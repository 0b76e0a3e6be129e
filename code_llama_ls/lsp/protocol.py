"""The JSON-RPC and LSP rules pygls leaves out: every request answered, one document copy.

pygls 2.1.1 drops what it cannot decode without a reply, answers nothing
after `shutdown`, keeps its own copy of every document (rewriting didChange
ranges as it applies them) and pops up its exceptions in the editor (see
NOTES-LSP.md in the design notes). Here, each message the transport decodes
is checked once, for every method:

- not a request, notification or response object: InvalidRequest (id null
  unless the id was readable);
- params that do not structure: InvalidParams with the request's id (a
  notification is logged and dropped);
- before `initialize`: ServerNotInitialized; a second `initialize` and any
  request after `shutdown`: InvalidRequest; notifications then are dropped,
  `exit` excepted;
- whatever a handler raises is answered through `CodeLlamaServer.fail`, the
  one mapping of failures (`lsp.errors`).

Document sync goes straight to our handlers: the document store alone
interprets edits.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Generator
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import cattrs
from lsprotocol import types
from pygls.exceptions import JsonRpcMethodNotFound
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.json_rpc import (
    JsonRPCNotification,
    JsonRPCRequestMessage,
    JsonRPCResponseMessage,
    MsgId,
)
from pygls.protocol.language_server import lsp_method

from code_llama_ls.lsp.errors import Failure
from code_llama_ls.text.positions import PositionEncoding

if TYPE_CHECKING:
    from code_llama_ls.lsp.server import CodeLlamaServer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Envelope:
    """What a decoded JSON value is, as JSON-RPC 2.0 sees it."""

    kind: str
    """"request", "notification", "response" or "invalid"."""
    id: MsgId | None = None
    method: str = ""
    problem: str = ""
    """Why an invalid message is invalid."""


def read_envelope(data: object) -> Envelope:
    """Classify a decoded message without trusting any of its members."""
    if isinstance(data, list):
        return Envelope("invalid", problem="batch messages are not supported by LSP")
    if not isinstance(data, dict):
        return Envelope("invalid", problem=f"a message is a JSON object, not {_json_type(data)}")
    raw_id = data.get("id")
    valid_id = isinstance(raw_id, int | str) and not isinstance(raw_id, bool)
    msg_id = raw_id if valid_id else None
    if "method" not in data and ("result" in data or "error" in data):
        return Envelope("response", msg_id)
    if data.get("jsonrpc") != "2.0":
        return Envelope("invalid", msg_id, problem='"jsonrpc" must be "2.0"')
    method = data.get("method")
    if not isinstance(method, str):
        return Envelope("invalid", msg_id, problem='"method" must be a string')
    if "id" not in data:
        return Envelope("notification", method=method)
    if not valid_id:
        return Envelope("invalid", problem='"id" must be an integer or a string')
    return Envelope("request", msg_id, method)


_MEMBERS = frozenset(("jsonrpc", "id", "method", "params", "result", "error"))


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", str: "a string", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


def describe_structure_error(exc: Exception) -> str:
    """What was wrong with a message's members, in cattrs' words ("… @ $.params.position")."""
    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(exc))
    return f"{type(exc).__name__}: {exc}"


class CodeLlamaProtocol(LanguageServerProtocol):
    """pygls' protocol with the checks above and our position-encoding choice."""

    _server: CodeLlamaServer

    def __init__(self, server: Any, converter: Any) -> None:
        super().__init__(server, converter)
        self._initialize_seen = False
        self.exit_code: int | None = None
        """Set by `exit`: 0 after `shutdown`, else 1 (LSP); the transport then ends the session."""

    @property
    def shutting_down(self) -> bool:
        """Whether `shutdown` was received."""
        return self._shutdown

    def reset_session(self) -> None:
        """Forget the client (a TCP client left): the next one starts with `initialize`."""
        for future in list(self._request_futures.values()):
            future.cancel()
        self._request_futures.clear()
        self._shutdown = False
        self._initialize_seen = False
        self.exit_code = None

    # -- receiving -----------------------------------------------------------

    def receive(self, data: object) -> None:
        """Handle one decoded message; a request always gets an answer."""
        envelope = read_envelope(data)
        if envelope.kind == "invalid":
            log.warning("invalid message: %s", envelope.problem)
            self.reply_error(envelope.id, types.ErrorCodes.InvalidRequest, envelope.problem)
            return
        assert isinstance(data, dict)
        refusal = self._lifecycle_refusal(envelope)
        if refusal is not None:
            code, reason = refusal
            if envelope.kind == "request":
                log.warning("%s refused: %s", envelope.method, reason)
                self.reply_error(envelope.id, code, reason)
            else:
                log.info("%s dropped: %s", envelope.method, reason)
            return
        try:
            message = self._structure(envelope, data)
        except Exception as exc:
            reason = f"{envelope.method or 'message'}: invalid params: "
            reason += describe_structure_error(exc)
            log.warning("%s", reason)
            if envelope.kind == "request":
                self.reply_error(envelope.id, types.ErrorCodes.InvalidParams, reason)
            return
        if envelope.method == types.INITIALIZE:
            self._initialize_seen = True
        self.handle_message(message)

    def _lifecycle_refusal(self, envelope: Envelope) -> tuple[int, str] | None:
        """Why LSP's lifecycle refuses this message now, with the error code; None if it may run."""
        if envelope.kind == "response" or envelope.method == types.EXIT:
            return None
        if not self._initialize_seen and envelope.method != types.INITIALIZE:
            return types.ErrorCodes.ServerNotInitialized, "the server is not initialized yet"
        if self._initialize_seen and envelope.method == types.INITIALIZE:
            return types.ErrorCodes.InvalidRequest, "initialize was already received"
        if self._shutdown:
            return types.ErrorCodes.InvalidRequest, "the server is shutting down: only exit is left"
        return None

    def _structure(self, envelope: Envelope, data: dict[str, Any]) -> Any:
        """The lsprotocol message for `data`; raises when its members do not fit the method.

        Members JSON-RPC does not define are ignored, as a robust reader should.
        """
        data = {key: value for key, value in data.items() if key in _MEMBERS}
        if envelope.kind == "response":
            if "error" in data:
                return self._converter.structure(data, types.ResponseErrorMessage)
            response_type = (
                None if envelope.id is None else self._result_types.pop(envelope.id, None)
            )
            return self._converter.structure(data, response_type or JsonRPCResponseMessage)
        # JSON-RPC lets a message leave out `params` (our codeLlama/getStatus has none).
        data = {"params": None, **data}
        fallback = JsonRPCRequestMessage if envelope.kind == "request" else JsonRPCNotification
        return self._converter.structure(data, self.get_message_type(envelope.method) or fallback)

    def reply_error(self, msg_id: MsgId | None, code: int, message: str) -> None:
        """Answer a request (id None: one whose id could not be read) with an error."""
        # A plain dict: lsprotocol's converter would leave out `"id": null`.
        error = {"code": int(code), "message": message}
        self._send_data({"jsonrpc": "2.0", "id": msg_id, "error": error})

    # -- answering -----------------------------------------------------------

    def _handle_request(self, msg_id: MsgId, method_name: str, params: Any) -> None:
        try:
            handler = self._get_handler(method_name)
        except JsonRpcMethodNotFound as exc:
            log.warning("request %s: unknown method %r", msg_id, method_name)
            self._send_response(msg_id, None, exc.to_response_error())
            return
        self._ctx_msg_id.set(msg_id)
        answer = partial(self._answer, msg_id=msg_id, method=method_name)
        try:
            self._execute_handler(msg_id, handler, answer, args=(params,))
        except Exception as exc:  # the handler could not even start
            failed: Future[Any] = Future()
            failed.set_exception(exc)
            answer(failed)

    def _answer(self, future: Future[Any], *, msg_id: MsgId, method: str) -> None:
        """Send a request's result, or its failure mapped once by the server."""
        self._request_futures.pop(msg_id, None)
        if future.cancelled():
            self.reply_error(msg_id, types.LSPErrorCodes.RequestCancelled, "request cancelled")
            return
        exc = future.exception()
        if exc is None:
            self._send_response(msg_id, result=future.result())
            return
        failure: Failure = self._server.fail(exc, f"{method} (request {msg_id})")
        self._send_response(msg_id, error=failure.response_error())

    def _execute_handler(
        self,
        msg_id: MsgId,
        handler: Any,
        callback: Any,
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        # pygls files the future of every generator or coroutine handler
        # under `msg_id` and removes only a request's own: each notification,
        # and each step of a built-in method, left one behind for good (600
        # after 300 documents opened and closed, pinning memory the documents
        # had freed).
        super()._execute_handler(msg_id, handler, callback, args, kwargs)
        if (future := self._request_futures.get(msg_id)) is not None:
            future.add_done_callback(partial(self._forget_future, msg_id))

    def _forget_future(self, msg_id: MsgId, future: Any) -> None:
        if self._request_futures.get(msg_id) is future:
            del self._request_futures[msg_id]

    def _handle_notification(self, method_name: str, params: Any) -> None:
        if method_name == types.CANCEL_REQUEST:
            self._handle_cancel_notification(params.id)
            return
        try:
            handler = self._get_handler(method_name)
        except JsonRpcMethodNotFound:
            log.debug("notification %s ignored: no handler", method_name)
            return
        done = partial(self._notification_done, method=method_name)
        self._execute_handler(str(uuid.uuid4()), handler, done, args=(params,))

    def _notification_done(self, future: Future[Any], *, method: str) -> None:
        if not future.cancelled() and (exc := future.exception()) is not None:
            self._server.fail(exc, method)

    def _handle_cancel_notification(self, msg_id: MsgId) -> None:
        # pygls cancels only the future it tracks, which for commands is not
        # the task doing the work; the model must hear of it directly.
        super()._handle_cancel_notification(msg_id)
        self._server.cancel_model_work(msg_id)

    # -- built-in methods ----------------------------------------------------

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(
        self, params: types.InitializeParams
    ) -> Generator[Any, Any, types.InitializeResult]:
        general = params.capabilities.general
        chosen = PositionEncoding.negotiate(general.position_encodings if general else None)
        if general is not None:
            # pygls follows the client's order of preference; we prefer UTF-8
            # (tree-sitter counts bytes) and fall back to the mandatory UTF-16.
            general.position_encodings = [types.PositionEncodingKind(chosen.value)]
        result: types.InitializeResult = yield from super().lsp_initialize(params)
        return result

    @lsp_method(types.SHUTDOWN)
    def lsp_shutdown(self, *args: Any) -> Generator[Any, Any, None]:
        """Cancel the other requests in flight; then only `exit` is accepted."""
        if (handler := self.fm.features.get(types.SHUTDOWN)) is not None:
            yield handler, args, None
        current = self.msg_id
        # A copy: a cancelled future leaves `_request_futures` as it is cancelled.
        for msg_id, future in list(self._request_futures.items()):
            if msg_id != current and not future.done():
                future.cancel()
        self._shutdown = True

    @lsp_method(types.EXIT)
    def lsp_exit(self, *args: Any) -> Generator[Any, Any, None]:
        """Record LSP's exit code; the transport ends the session after this message."""
        self.exit_code = 0 if self._shutdown else 1
        if (handler := self.fm.features.get(types.EXIT)) is not None:
            yield handler, args, None

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: types.DidOpenTextDocumentParams) -> Any:
        # pygls would keep a second copy of every document; ours is the only one.
        yield from self._to_handler(types.TEXT_DOCUMENT_DID_OPEN, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams) -> Any:
        # pygls' copy rewrites the ranges in `params` as it applies them
        # (NOTES-LSP.md): our store must see the client's own.
        yield from self._to_handler(types.TEXT_DOCUMENT_DID_CHANGE, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams) -> Any:
        yield from self._to_handler(types.TEXT_DOCUMENT_DID_CLOSE, params)

    def _to_handler(self, method: str, params: object) -> Generator[Any, Any, None]:
        if (handler := self.fm.features.get(method)) is not None:
            yield handler, (params,), None

    @lsp_method(types.WORKSPACE_EXECUTE_COMMAND)
    def lsp_workspace__execute_command(
        self, params: types.ExecuteCommandParams
    ) -> Generator[Any, Any, Any]:
        # pygls hands commands their arguments only; the client's progress
        # token must reach the handler too, keyed by the request.
        tokens, request_id = self._server.client_progress_tokens, self.msg_id
        if request_id is not None and params.work_done_token is not None:
            tokens[request_id] = params.work_done_token
        try:
            return (yield from super().lsp_workspace__execute_command(params))
        finally:
            if request_id is not None:
                tokens.pop(request_id, None)
