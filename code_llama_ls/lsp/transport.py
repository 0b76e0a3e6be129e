"""LSP's byte streams: message framing over stdio and TCP, and the sessions they carry.

This replaces pygls' read loops (`pygls.io_.run_async` and the server's
`start_io`/`start_tcp`), which answer nothing they cannot decode, exit 0
whatever `exit` said, and close a TCP server when its client leaves
(NOTES-LSP.md). Here:

- a body that is not JSON is answered with ParseError (id null); every
  decoded value goes to `CodeLlamaProtocol.receive`, which answers the rest;
- stdio: the process exits with LSP's code, 0 after `shutdown` then `exit`,
  1 for `exit` without `shutdown` or a client that vanished;
- TCP: one client at a time (the next waits for its turn); when a client
  leaves (exit, a clean close, a reset) its session ends and the next is
  served, with the model still loaded.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, BinaryIO, Protocol

from lsprotocol import types

if TYPE_CHECKING:
    from code_llama_ls.lsp.server import CodeLlamaServer

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 256 * 1024 * 1024
"""A larger body is skipped unread: no editor sends one, and reading it could exhaust memory."""
_SKIP_CHUNK = 1024 * 1024


class ByteReader(Protocol):
    """What the framing reads from: asyncio's StreamReader has this shape."""

    def readline(self) -> Awaitable[bytes]: ...

    def readexactly(self, n: int) -> Awaitable[bytes]: ...


class StdinReader:
    """Blocking stdin read on a thread of its own, awaited from the event loop.

    `already_read`: bytes taken from the stream before (the first message), read first.
    """

    def __init__(self, stream: BinaryIO, already_read: bytes = b"") -> None:
        self._stream = stream
        self._already_read = io.BytesIO(already_read)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stdin")

    def readline(self) -> Awaitable[bytes]:
        return asyncio.get_running_loop().run_in_executor(self._thread, self._readline)

    async def readexactly(self, n: int) -> bytes:
        data = await asyncio.get_running_loop().run_in_executor(self._thread, self._read, n)
        if len(data) < n:
            raise asyncio.IncompleteReadError(data, n)
        return data

    def _readline(self) -> bytes:
        line = self._already_read.readline()
        if line.endswith(b"\n"):
            return line
        return line + self._stream.readline()

    def _read(self, n: int) -> bytes:
        data = self._already_read.read(n)
        return data + self._stream.read(n - len(data)) if len(data) < n else data

    def close(self) -> None:
        self._thread.shutdown(wait=False)


class StreamWriter:
    """pygls' writer interface over stdout or a socket; a vanished client ends the session."""

    def __init__(
        self, write: Callable[[bytes], None], on_lost: Callable[[], None] | None = None
    ) -> None:
        self._write = write
        self._on_lost = on_lost
        self.lost = False

    def write(self, data: bytes) -> None:
        if self.lost:
            return
        try:
            self._write(data)
        except OSError as exc:  # BrokenPipeError, ConnectionResetError, a closed socket
            self.lost = True
            log.info("the client is gone (%s); nothing more is sent", exc)
            if self._on_lost is not None:
                self._on_lost()

    def close(self) -> None:
        self.lost = True


async def read_message(reader: ByteReader) -> bytes | None:
    """The next message body, or None when the stream ends.

    Header names are matched without regard to case and unknown headers are
    ignored, as LSP's base protocol allows; a header block without a usable
    Content-Length is skipped with a warning, since the body cannot be found.
    """
    while True:
        length: int | None = None
        while True:
            line = await reader.readline()
            if not line:
                return None
            if not line.strip():
                break
            name, colon, value = line.decode("latin-1").partition(":")
            if colon and name.strip().lower() == "content-length":
                length = _content_length(value)
        if length is None:
            log.warning("a message without a valid Content-Length header was skipped")
            continue
        if length > MAX_MESSAGE_BYTES:
            log.error("a %d-byte message was skipped (the limit is %d)", length, MAX_MESSAGE_BYTES)
            while length > 0:
                length -= len(await reader.readexactly(min(length, _SKIP_CHUNK)))
            continue
        return await reader.readexactly(length)


def _content_length(value: str) -> int | None:
    try:
        length = int(value.strip())
    except ValueError:
        return None
    return length if length >= 0 else None


def deliver(server: CodeLlamaServer, body: bytes) -> None:
    """Decode one body and hand it to the protocol; a body that is not JSON gets ParseError."""
    try:
        data = json.loads(body)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        log.warning("a message is not JSON: %s", exc)
        server.protocol.reply_error(None, types.ErrorCodes.ParseError, f"parse error: {exc}")
        return
    server.protocol.receive(data)


async def run_session(server: CodeLlamaServer, reader: ByteReader) -> int:
    """Serve one client until `exit` or the end of its stream; LSP's exit code."""
    protocol = server.protocol
    try:
        while protocol.exit_code is None:
            body = await read_message(reader)
            if body is None:
                log.info("the client closed the connection")
                break
            deliver(server, body)
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        log.info("the client's stream ended mid-message (%s)", exc)
    if protocol.exit_code is not None:
        return protocol.exit_code
    return 0 if protocol.shutting_down else 1


def serve_stdio(
    server: CodeLlamaServer,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
    *,
    first_message: bytes = b"",
) -> int:
    """Serve one editor over stdin/stdout; the process's exit code.

    `first_message`: bytes read from stdin already (`launch.start_early`), read first.
    """
    reader = StdinReader(stdin or sys.stdin.buffer, already_read=first_message)
    output = stdout or sys.stdout.buffer

    def write(data: bytes) -> None:
        output.write(data)
        output.flush()

    server.protocol.set_writer(StreamWriter(write))

    async def session() -> int:
        try:
            return await run_session(server, reader)
        finally:
            server.end_session()

    try:
        return asyncio.run(session())
    except KeyboardInterrupt:
        return 1
    finally:
        reader.close()
        server.close()


def serve_tcp(server: CodeLlamaServer, host: str, port: int) -> int:
    """Serve editors over TCP on `host`:`port`, one after another, until interrupted."""

    async def main() -> None:
        turn = asyncio.Lock()

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = writer.get_extra_info("peername")
            if turn.locked():
                log.info("client %s waits until the current client leaves", peer)
            async with turn:
                log.info("client %s connected", peer)
                output = StreamWriter(writer.write, on_lost=writer.close)
                server.protocol.set_writer(output)
                try:
                    await run_session(server, reader)
                except ValueError as exc:  # a header line past the StreamReader's limit
                    log.warning("client %s sent an unreadable header (%s)", peer, exc)
                finally:
                    server.end_session()
                    output.close()
                    writer.close()
                    log.info("client %s left", peer)

        listener = await asyncio.start_server(connection, host, port)
        log.info("listening on %s:%d", host, port)
        async with listener:
            await listener.serve_forever()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0
