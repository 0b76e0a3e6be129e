"""The entry of `code-llama-ls` and `python -m code_llama_ls`: set the process up, then run.

Serving over stdio starts the model host first (`spawn_model_host`,
`engine.model_host`): forked from this first interpreter, the model loads in
that process while this one starts. Serving then
restarts the interpreter with the system allocator
(`memory.use_system_allocator`); here that happens before anything heavy is
imported, so the first interpreter costs its start alone instead of also
importing the CLI's modules (27 ms of the server's start). Every command
then keeps large blocks on the heap (`memory.keep_large_blocks_on_heap`).
Serving reads the editor's `initialize` (editors send it as they start the
server) and gives the host its options, all before importing pygls; the
message read is handed to the transport as the first one.
"""

from __future__ import annotations

import gc
import json
import os
import select
import sys
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, NamedTuple

from code_llama_ls.host import HOST_ENVIRONMENT

if TYPE_CHECKING:
    import socket

    from code_llama_ls.config import Settings
    from code_llama_ls.host.hosted_engine import ModelHost

_NOT_SERVE = ("-h", "--help", "--version")
INITIALIZE_WAIT_S = 0.5
"""How long serving waits for the editor's first message before going on without a host."""
_MAX_FIRST_MESSAGE = 16 * 1024 * 1024


class EarlyStart(NamedTuple):
    """What serving began before the server existed: the first message read, the model host."""

    first_message: bytes
    host: ModelHost | None


def with_command(arguments: Sequence[str]) -> list[str]:
    """`arguments` with `serve` in front when they name no command (serving is the default)."""
    given = list(arguments)
    if not given or (given[0].startswith("-") and given[0] not in _NOT_SERVE):
        given.insert(0, "serve")
    return given


def main() -> int:
    """Run the command line of this process."""
    from code_llama_ls.memory import keep_large_blocks_on_heap, use_system_allocator

    command = with_command(sys.argv[1:])
    serving = command[0] == "serve"
    if serving:  # back on after the start: `memory.settle_start_up_garbage`
        gc.disable()
    if serving and HOST_ENVIRONMENT not in os.environ and hosts_model(command[1:]):
        spawn_model_host(fork=True)  # before the restart: it loads the model meanwhile
    if serving:
        use_system_allocator()  # returns only where it does not restart
    keep_large_blocks_on_heap()
    early = start_early(command[1:]) if serving else None
    from code_llama_ls.cli import main as run_command

    return run_command(program=True, early=early)


def spawn_model_host(*, fork: bool = False) -> bool:
    """Start the model host, which waits for its settings; whether it started.

    `fork`: fork it from this process, which must have no other thread (the
    first interpreter of a serve: `main`). The host then starts with the
    interpreter and modules already here instead of an interpreter of its own:
    it reached its own code 70 ms sooner, with 75 ms less CPU, on two busy
    cores. Otherwise (or where there is no fork) it runs as
    `python -m code_llama_ls.host.model_host FD`.
    Its pid and socket go in the environment (`HOST_ENVIRONMENT`), the
    socket open across the restart's `exec`, for `ModelHost.take_over`.
    Only what this needs is imported: the first interpreter's time is the
    whole start's.
    """
    import socket

    ours, theirs = socket.socketpair()
    try:
        pid = _fork_host(ours, theirs) if fork and hasattr(os, "fork") else _run_host(theirs)
    finally:
        theirs.close()
    if pid is None:  # the server loads the model itself
        ours.close()
        return False
    os.set_inheritable(ours.fileno(), True)
    os.environ[HOST_ENVIRONMENT] = f"{pid}:{ours.detach()}"
    return True


HOST_PROCESS_NAME = b"code-llama-host"
"""The forked host's name in `top` and `ps -o comm` (15 bytes: the most Linux keeps)."""
# numpy's OpenBLAS would start a thread per core at import, to no use in the host.
_HOST_ENVIRONMENT_EXTRA = {"OPENBLAS_NUM_THREADS": "1"}


def _fork_host(ours: socket.socket, theirs: socket.socket) -> int | None:
    """Fork; the child runs the host on `theirs` and never returns. The child's pid, or None."""
    try:
        pid = os.fork()
    except OSError:
        return None
    if pid:
        return pid
    code = 1
    try:  # the host: away from the editor's stream, and out of this function for good
        ours.close()
        silent = os.open(os.devnull, os.O_RDONLY)
        os.dup2(silent, 0)
        os.close(silent)
        os.dup2(2, 1)  # what it prints goes to our stderr: never the LSP stream
        os.environ.update(_HOST_ENVIRONMENT_EXTRA)
        _name_process(HOST_PROCESS_NAME)
        from code_llama_ls.host.model_host import main as host_main

        code = host_main([str(theirs.fileno())])
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)


def _run_host(theirs: socket.socket) -> int | None:
    """Start `python -m code_llama_ls.host.model_host FD` on `theirs`; its pid, or None."""
    import subprocess

    from code_llama_ls.memory import system_allocator_environment

    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "code_llama_ls.host.model_host", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=2,  # our stderr: never the LSP stream
            env={**os.environ, **system_allocator_environment(), **_HOST_ENVIRONMENT_EXTRA},
        )
    except (OSError, ValueError):
        return None
    return process.pid


def _name_process(name: bytes) -> None:
    """Set this process's name (`comm`), on Linux with glibc."""
    if not sys.platform.startswith("linux"):
        return
    import contextlib
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").prctl(15, name, 0, 0, 0)  # PR_SET_NAME


def hosts_model(serve_arguments: Sequence[str]) -> bool:
    """Whether serving with these arguments starts a model host: over stdio from an
    editor, with a second core for it (on one core it would only add its own start)."""
    if any(flag in serve_arguments for flag in ("--tcp", *_NOT_SERVE)):
        return False
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (cores or 1) > 1 and sys.stdin is not None and not sys.stdin.isatty()


def start_early(serve_arguments: Sequence[str]) -> EarlyStart | None:
    """Read `initialize` from stdin and give the model host the settings it brings.

    None where there is nothing to read ahead: TCP, help, a terminal, or an
    editor silent for `INITIALIZE_WAIT_S`; the host is stopped then, and the
    server loads the model itself, as it always could.
    """
    from code_llama_ls.host.hosted_engine import ModelHost

    host = ModelHost.take_over()
    reads = hosts_model(serve_arguments)
    first = read_first_message(sys.stdin.buffer, INITIALIZE_WAIT_S) if reads else None
    options = initialization_options(first[1]) if first is not None else None
    if host is not None:
        settings = settings_for_host(serve_arguments, options[0]) if options is not None else None
        if settings is None:
            host.close()
            host = None
        else:
            host.configure(settings)
    return None if first is None else EarlyStart(first[0], host)


def settings_for_host(serve_arguments: Sequence[str], options: object) -> Settings | None:
    """`cli.serving_settings`, or None where they are wrong (the CLI reports that itself)."""
    import contextlib
    import io

    from code_llama_ls.cli import serving_settings
    from code_llama_ls.errors import CodeLlamaLsError

    try:
        with contextlib.redirect_stderr(io.StringIO()):  # the CLI prints the usage once
            return serving_settings(serve_arguments, options)
    except (SystemExit, CodeLlamaLsError):
        return None


def read_first_message(stream: IO[bytes], wait_s: float) -> tuple[bytes, bytes] | None:
    """The first LSP message on `stream`, as read (headers and body), and its body.

    None when nothing arrives within `wait_s` (nothing is read then). Once
    bytes arrive the message is read whole, as the transport would; what was
    read is returned even when it is not a well-formed message (with an
    empty body), for the transport to answer.
    """
    try:
        ready, _, _ = select.select([stream], [], [], wait_s)
    except (OSError, ValueError):  # not a file select can watch
        return None
    if not ready:
        return None
    raw = b""
    length: int | None = None
    line = b""
    while True:
        line = stream.readline()
        raw += line
        if not line.strip():
            break
        name, colon, value = line.decode("latin-1").partition(":")
        if colon and name.strip().lower() == "content-length" and value.strip().isdigit():
            length = int(value.strip())
    if not line or length is None or length > _MAX_FIRST_MESSAGE:
        return raw, b""
    body = stream.read(length)
    return raw + body, body


def initialization_options(body: bytes) -> tuple[object] | None:
    """(initializationOptions,) of an `initialize` request; None for any other message."""
    try:
        message = json.loads(body)
    except ValueError:
        return None
    if not isinstance(message, dict) or message.get("method") != "initialize":
        return None
    params = message.get("params")
    return (params.get("initializationOptions") if isinstance(params, dict) else None,)
