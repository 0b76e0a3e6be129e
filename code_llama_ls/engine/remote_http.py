"""HTTP to an inference server: JSON calls, server-sent events, retries, cancellation.

One `HttpClient` per remote engine keeps a connection pool to the server, so
keystroke after keystroke reuses one TCP (and TLS) connection. TLS
certificates are verified unless the URL is plain http. The auth token goes
into the `Authorization` header and nowhere else: it is never part of a
message, a log line or an exception.

Streams are read on the model worker thread. Cancelling (the `CancelToken`)
shuts the socket down from the cancelling thread, which ends a read that is
blocked waiting for the next event at once, and the server sees the
connection close: vLLM, TGI and llama.cpp stop generating for a client that
has gone.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

from code_llama_ls.cancel import CancelToken
from code_llama_ls.errors import EngineUnreachableError, GenerationError

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 503})
"""Busy or still loading: worth asking again after a pause."""
_MAX_ERROR_BODY = 300


class EngineHttpError(GenerationError):
    """The inference server answered with an HTTP error."""

    def __init__(self, message: str, status: int, detail: str) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class NotJsonError(GenerationError):
    """The server answered, but not with JSON (not an inference server's endpoint)."""


class StreamCancelled(Exception):
    """The stream was closed because its request was cancelled."""


@dataclass(frozen=True)
class HttpSettings:
    """How to reach one inference server."""

    base_url: str
    token: str | None = None
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 60.0
    """The longest wait for the next bytes (the prefill of a long prompt included)."""
    retries: int = 3
    """Extra attempts after a 429 or 503, with exponential backoff."""
    backoff_s: float = 0.25
    ca_file: str | None = None

    def __repr__(self) -> str:
        # The token must never reach a log line through a repr.
        token = "set" if self.token else "none"
        return f"HttpSettings(base_url={self.base_url!r}, token={token})"


class HttpClient:
    """JSON and SSE calls to one server, pooled, with retries on 429/503."""

    def __init__(self, settings: HttpSettings) -> None:
        self.settings = settings
        self.base_url = settings.base_url.rstrip("/")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if settings.token:
            headers["Authorization"] = f"Bearer {settings.token}"
        self._headers = headers
        self._pool = urllib3.PoolManager(
            num_pools=2,
            maxsize=2,
            headers=headers,
            cert_reqs="CERT_REQUIRED",
            ca_certs=settings.ca_file,
            retries=False,
            timeout=urllib3.Timeout(
                connect=settings.connect_timeout_s, read=settings.read_timeout_s
            ),
        )

    def get_json(self, path: str, *, timeout_s: float | None = None) -> Any:
        """GET `path` and parse the JSON answer."""
        response = self._request("GET", path, None, stream=False, timeout_s=timeout_s)
        return _json_body(response, self._url(path))

    def post_json(
        self, path: str, body: Mapping[str, Any], *, timeout_s: float | None = None
    ) -> Any:
        """POST `body` to `path` and parse the JSON answer."""
        response = self._request("POST", path, body, stream=False, timeout_s=timeout_s)
        return _json_body(response, self._url(path))

    def stream_events(
        self, path: str, body: Mapping[str, Any], cancel: CancelToken
    ) -> Generator[Any, None, None]:
        """POST `body` and yield each server-sent event's JSON `data` until `[DONE]` or EOF.

        Raises StreamCancelled when `cancel` is set: the connection is shut
        down, so the server stops generating. Closing the iterator early (a
        caller that has enough) also drops the connection.
        """
        response = self._request("POST", path, body, stream=True, cancel=cancel)
        remove_closer = cancel.on_cancel(response.shutdown)
        finished = False
        try:
            for data in _sse_data(response):
                if data == "[DONE]":
                    break
                if cancel.cancelled:
                    raise StreamCancelled()
                yield _parse_event(data, self._url(path))
            else:
                if cancel.cancelled:
                    raise StreamCancelled()
            finished = True
        except (Urllib3Error, OSError) as exc:
            if cancel.cancelled:
                raise StreamCancelled() from None
            raise EngineUnreachableError(
                f"the connection to {self.base_url} broke while streaming: {_reason(exc)}"
            ) from None
        finally:
            remove_closer()
            _finish(response, keep_connection=finished and not cancel.cancelled)

    def close(self) -> None:
        """Close pooled connections."""
        self._pool.clear()

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def _request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        *,
        stream: bool,
        cancel: CancelToken | None = None,
        timeout_s: float | None = None,
    ) -> urllib3.BaseHTTPResponse:
        url = self._url(path)
        payload = None if body is None else json.dumps(body).encode("utf-8")
        timeout = (
            urllib3.Timeout(connect=min(self.settings.connect_timeout_s, timeout_s), read=timeout_s)
            if timeout_s is not None
            else None
        )
        headers = {**self._headers, "Accept": "text/event-stream"} if stream else None
        attempt = 0
        while True:
            if cancel is not None and cancel.cancelled:
                raise StreamCancelled()
            try:
                response = self._pool.request(
                    method,
                    url,
                    body=payload,
                    headers=headers,
                    preload_content=not stream,
                    timeout=timeout,
                )
            except (Urllib3Error, OSError) as exc:
                raise EngineUnreachableError(
                    f"cannot reach the inference server at {self.base_url}: {_reason(exc)}"
                ) from None
            if response.status < 400:
                return response
            detail = _error_detail(response)
            if response.status in RETRY_STATUSES and attempt < self.settings.retries:
                pause = _backoff_s(response, attempt, self.settings.backoff_s)
                log.info("%s %s: HTTP %d, retrying in %.2f s", method, url, response.status, pause)
                attempt += 1
                if cancel is not None and cancel.wait(pause):
                    raise StreamCancelled()
                if cancel is None:
                    time.sleep(pause)
                continue
            raise EngineHttpError(
                f"the inference server at {self.base_url} answered {method} /{path.lstrip('/')} "
                f"with HTTP {response.status}: {detail}",
                response.status,
                detail,
            )


def _finish(response: urllib3.BaseHTTPResponse, *, keep_connection: bool) -> None:
    """Give a finished stream's connection back to the pool; close an abandoned one.

    Closing is what tells the server that the client has gone, so that it
    stops generating; a connection with unread events must not be reused.
    """
    if keep_connection:
        try:
            response.drain_conn()
        except (Urllib3Error, OSError):
            keep_connection = False
    if not keep_connection:
        response.close()
    response.release_conn()


def _backoff_s(response: urllib3.BaseHTTPResponse, attempt: int, base_s: float) -> float:
    """Retry-After when the server gives seconds (capped), else exponential with jitter."""
    retry_after = response.headers.get("Retry-After")
    if retry_after is not None:
        try:
            seconds = float(str(retry_after))
            return min(max(seconds, 0.0), 10.0)
        except ValueError:
            pass
    return float(base_s * 2.0**attempt * (1 + random.random() / 2))


def _sse_data(response: urllib3.BaseHTTPResponse) -> Iterator[str]:
    """The `data` of each event in a text/event-stream body, read as it arrives."""
    buffer = b""
    data_lines: list[str] = []
    while True:
        chunk = response.read1(65536)
        if not chunk:
            break
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for raw in lines:
            line = raw.rstrip(b"\r").decode("utf-8", errors="replace")
            if not line:
                if data_lines:
                    yield "\n".join(data_lines)
                    data_lines = []
            elif line.startswith("data:"):
                data_lines.append(line[5:].removeprefix(" "))
            # Comments (":"), "event:", "id:" and "retry:" carry nothing we use.
    if data_lines:
        yield "\n".join(data_lines)


def _parse_event(data: str, url: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        raise GenerationError(f"{url} streamed an event that is not JSON: {data[:80]!r}") from None


def _json_body(response: urllib3.BaseHTTPResponse, url: str) -> Any:
    try:
        return json.loads(response.data)
    except ValueError:
        raise NotJsonError(f"{url} did not answer with JSON") from None


def _error_detail(response: urllib3.BaseHTTPResponse) -> str:
    """The server's error message, short: OpenAI's `error.message`, TGI's `error`, or the body."""
    try:
        raw = response.data if response.data is not None else response.read()
    except (Urllib3Error, OSError):
        return "(no body)"
    text = raw.decode("utf-8", errors="replace").strip()
    try:
        body = json.loads(text)
    except ValueError:
        return text[:_MAX_ERROR_BODY] or "(no body)"
    if isinstance(body, dict):
        error = body.get("error", body.get("detail", body.get("message")))
        if isinstance(error, dict):
            error = error.get("message", error)
        if error is not None:
            return str(error)[:_MAX_ERROR_BODY]
    return text[:_MAX_ERROR_BODY]


def _reason(exc: BaseException) -> str:
    """A short cause for a connection failure, without URLs' query strings or headers."""
    reason = getattr(exc, "reason", None) or exc
    text = str(reason)
    for marker in (
        "Connection refused",
        "timed out",
        "Name or service not known",
        "CERTIFICATE_VERIFY_FAILED",
        "Connection reset",
        "Remote end closed",
    ):
        if marker.lower() in text.lower():
            return (
                marker.lower()
                if marker != "CERTIFICATE_VERIFY_FAILED"
                else ("TLS certificate verification failed (set remoteCaFile to your CA bundle)")
            )
    return text.split("\n", 1)[0][:160]
