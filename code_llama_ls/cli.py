"""The `code-llama-ls` command: serve (default), complete, prompt, explain, doctor.

Settings come from defaults, then a config file, then flags; the server
layers the editor's settings on top. Progress and logs go to stderr; stdout
carries LSP (serve) or the answer (complete, explain).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from code_llama_ls import __version__
from code_llama_ls.cancel import CancelToken
from code_llama_ls.config import (
    BACKENDS,
    DEVICES,
    DTYPES,
    FIM_MODES,
    LOG_LEVELS,
    MAX_CANDIDATES,
    REMOTE_APIS,
    REMOTE_PROMPTS,
    Settings,
    default_config_path,
    load_config_file,
)
from code_llama_ls.engine.base import Engine
from code_llama_ls.errors import CodeLlamaLsError, InvalidPositionError
from code_llama_ls.launch import with_command
from code_llama_ls.logs import configure_logging
from code_llama_ls.text.positions import PositionEncoding

if TYPE_CHECKING:
    from code_llama_ls.launch import EarlyStart
    from code_llama_ls.pipeline.request import CompletionRequest

log = logging.getLogger("code_llama_ls")

DEFAULT_PORT = 2087
KEEP_GENERATED_CODE_AFTER_S = (3.0, 30.0)
"""When serving writes down the code attrs and cattrs generated (`codegen_cache`), if new."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="code-llama-ls",
        description="A language server that serves Code Llama completions and explanations.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    settings = argparse.ArgumentParser(add_help=False)
    group = settings.add_argument_group("settings")
    group.add_argument(
        "--config", type=Path, help="TOML config file (default: %(default)s)", default=None
    )
    group.add_argument(
        "--model",
        help="hub id, local model directory or .gguf file "
        "(default: the offline SmolLM2-135M-Instruct)",
    )
    group.add_argument("--explain-model", help="the model for explanations (default: --model)")
    group.add_argument("--backend", choices=BACKENDS)
    group.add_argument("--device", choices=DEVICES)
    group.add_argument("--dtype", choices=DTYPES)
    group.add_argument("--trust-remote-code", action="store_true", default=None)
    group.add_argument("--fim-mode", choices=FIM_MODES)
    group.add_argument("--max-new-tokens", type=int)
    group.add_argument("--explain-max-new-tokens", type=int)
    group.add_argument("--context-tokens", type=int)
    group.add_argument(
        "--no-workspace-context",
        dest="workspace_context",
        action="store_false",
        default=None,
        help="complete from the file alone, without code from other workspace files",
    )
    group.add_argument("--max-document-bytes", type=int)
    group.add_argument(
        "--prefix-cache-entries", type=int, help="KV caches of recent prompts kept (0: none)"
    )
    group.add_argument(
        "--no-completion-cache",
        dest="completion_cache",
        action="store_false",
        default=None,
        help="always ask the model (no typed-through or in-flight reuse)",
    )
    group.add_argument("--debounce-ms", type=int, help="the most to wait for typing to pause")
    group.add_argument(
        "--time-budget-ms", type=int, help="return the lines written after this long (0: none)"
    )
    group.add_argument("--cache-dir")
    group.add_argument("--log-level", choices=LOG_LEVELS)
    group.add_argument(
        "--remote-url",
        help="inference server for --backend remote (token: $CODE_LLAMA_LS_REMOTE_TOKEN)",
    )
    group.add_argument("--remote-api", choices=REMOTE_APIS)
    group.add_argument("--remote-model", help="the served model to ask for")
    group.add_argument("--remote-prompt", choices=REMOTE_PROMPTS)

    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", parents=[settings], help="run the language server")
    serve.add_argument("--stdio", action="store_true", help="talk LSP on stdin/stdout (default)")
    serve.add_argument("--tcp", action="store_true", help="listen on 127.0.0.1 instead")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    complete = commands.add_parser(
        "complete", parents=[settings], help="print the completion at FILE:LINE:COL (1-based)"
    )
    complete.add_argument("location", help="FILE:LINE:COL, 1-based, columns in characters")
    complete.add_argument(
        "--show-prompt", action="store_true", help="also print the prompt report to stderr"
    )
    complete.add_argument(
        "--candidates",
        type=int,
        default=1,
        metavar="N",
        help="print up to N different completions, best first (default: 1)",
    )
    prompt = commands.add_parser(
        "prompt",
        parents=[settings],
        help="show the prompt the model would see at FILE:LINE:COL, part by part",
    )
    prompt.add_argument("location", help="FILE:LINE:COL, 1-based, columns in characters")
    prompt.add_argument("--json", action="store_true", help="print the report as JSON")
    for command in (complete, prompt):
        command.add_argument(
            "--workspace",
            type=Path,
            help="the workspace folder to take context from (default: the nearest folder "
            "above FILE holding .git, pyproject.toml, package.json, go.mod or Cargo.toml)",
        )
    explain = commands.add_parser(
        "explain", parents=[settings], help="explain lines START-END of FILE (1-based, inclusive)"
    )
    explain.add_argument("location", help="FILE:START-END, or FILE:LINE for its definition")
    commands.add_parser("doctor", parents=[settings], help="check the installation")
    stats = commands.add_parser(
        "stats", help="print the suggestions shown and accepted (with keepAcceptanceStats)"
    )
    stats.add_argument("--json", action="store_true", help="print them as JSON")
    parser.set_defaults(command="serve")
    return parser


def resolve_settings(args: argparse.Namespace) -> Settings:
    """Defaults < config file < flags."""
    settings = Settings()
    config_path: Path | None = getattr(args, "config", None)
    if config_path is None and default_config_path().is_file():
        config_path = default_config_path()
    if config_path is not None:
        settings = settings.with_values(load_config_file(config_path), str(config_path))
    flags = {
        key: value for key, value in vars(args).items() if value is not None and key in _FLAG_KEYS
    }
    return settings.with_values(flags, "command line")


_FLAG_KEYS = {
    "remote_url",
    "remote_api",
    "remote_model",
    "remote_prompt",
    "model",
    "explain_model",
    "backend",
    "device",
    "dtype",
    "trust_remote_code",
    "fim_mode",
    "max_new_tokens",
    "explain_max_new_tokens",
    "context_tokens",
    "workspace_context",
    "max_document_bytes",
    "prefix_cache_entries",
    "completion_cache",
    "debounce_ms",
    "time_budget_ms",
    "cache_dir",
    "log_level",
}


def serving_settings(serve_arguments: Sequence[str], initialization_options: object) -> Settings:
    """The settings `serve ARGUMENTS` will have once `initialize` brought these options:
    defaults < config file < command line < initializationOptions (left out when they do
    not validate, as the server does). Raises SystemExit (usage) or CodeLlamaLsError."""
    from code_llama_ls.config import settings_from_client

    args = build_parser().parse_args(with_command(["serve", *serve_arguments]))
    settings = resolve_settings(args)
    try:
        options = settings_from_client(initialization_options, "initializationOptions")
        return settings.with_values(options, "initializationOptions")
    except CodeLlamaLsError:
        return settings


def main(
    argv: Sequence[str] | None = None, *, program: bool = False, early: EarlyStart | None = None
) -> int:
    """Run a command line (`argv`, else this process's); `program`: as the program itself
    (`launch.main`), which leaves the process as soon as serving ends; `early`: what
    `launch` began for serving (the first message read, the model host)."""
    parser = build_parser()
    args = parser.parse_args(with_command(sys.argv[1:] if argv is None else argv))
    try:
        settings = resolve_settings(args)
    except CodeLlamaLsError as exc:
        print(f"code-llama-ls: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    try:
        if args.command == "serve":
            code = serve(settings, tcp=args.tcp, port=args.port, early=early)
            if program:  # leave now (see `exit_now`)
                exit_now(code)
            return code
        if args.command == "complete":
            return complete_command(
                settings, args.location, args.workspace, args.show_prompt, args.candidates
            )
        if args.command == "prompt":
            return prompt_command(settings, args.location, args.workspace, as_json=args.json)
        if args.command == "explain":
            return explain_command(settings, args.location)
        if args.command == "stats":
            from code_llama_ls.tools.acceptance_report import stats_command

            return stats_command(as_json=args.json)
        from code_llama_ls.tools.doctor import doctor

        return doctor(settings)
    except CodeLlamaLsError as exc:
        print(f"code-llama-ls: {exc}", file=sys.stderr)
        return 1


def exit_now(code: int) -> None:
    """End the process at once once the client said `exit` (or left).

    A normal interpreter exit first waits for the model thread, so a model
    still loading held the editor up for its whole load (6 s with the tiny
    test model), and tears torch down (about 1 s): editors wait for the
    process, then kill it. Nothing is left to save: output is flushed here,
    and caches are written atomically, so an unfinished one is never used.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def serve(settings: Settings, *, tcp: bool, port: int, early: EarlyStart | None = None) -> int:
    """Serve LSP; the exit code is LSP's (0 after shutdown and exit, else 1)."""
    from code_llama_ls.codegen_cache import keep_generated_code
    from code_llama_ls.memory import START_UP_S, settle_start_up_garbage

    generated = keep_generated_code(settings.engine.cache_path)
    from code_llama_ls.host.hosted_engine import HostingLoader
    from code_llama_ls.lsp.server import create_server
    from code_llama_ls.lsp.transport import serve_stdio, serve_tcp
    from code_llama_ls.serving.engines import load_engine_for

    host = early.host if early is not None else None
    server = create_server(HostingLoader(host, load_engine_for), settings)
    _after(START_UP_S, settle_start_up_garbage)
    for delay_s in KEEP_GENERATED_CODE_AFTER_S:  # after `initialize`; after the first requests
        _after(delay_s, generated.save)
    if tcp:
        return serve_tcp(server, "127.0.0.1", port)
    return serve_stdio(server, first_message=early.first_message if early is not None else b"")


def _after(delay_s: float, action: Callable[[], object]) -> None:
    """Run `action` once, `delay_s` from now, on a thread of its own that does not hold
    up the process's exit."""
    timer = threading.Timer(delay_s, action)
    timer.daemon = True
    timer.start()


def _open_file(path_text: str, settings: Settings) -> Any:
    from code_llama_ls.text.documents import DocumentStore

    path = Path(path_text)
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CodeLlamaLsError(f"cannot read {path} as UTF-8 text: {exc}") from None
    store = DocumentStore(max_bytes=settings.max_document_bytes)
    return store.open(path.resolve().as_uri(), "", 0, text)


def _cursor(settings: Settings, location: str) -> tuple[Any, int]:
    """The snapshot and string offset of FILE:LINE:COL (1-based, columns in characters)."""
    match = re.fullmatch(r"(.+):(\d+):(\d+)", location)
    if match is None:
        raise CodeLlamaLsError(f"expected FILE:LINE:COL, got {location!r}")
    snapshot = _open_file(match.group(1), settings)
    line, column = int(match.group(2)) - 1, int(match.group(3)) - 1
    try:
        # Lines as LSP counts them (\n, \r\n, \r); columns in code points.
        offset = snapshot.line_index.offset_at(line, column, PositionEncoding.UTF32, strict=True)
    except InvalidPositionError as exc:
        raise CodeLlamaLsError(f"{location}: outside the file ({exc})") from None
    return snapshot, offset


_PROJECT_MARKERS = (".git", "pyproject.toml", "package.json", "go.mod", "Cargo.toml", "pom.xml")


def _workspace_context(
    settings: Settings, file_uri: str, workspace: Path | None, say: Callable[[str], None]
) -> Any:
    """A context builder over the workspace holding the file (None when turned off)."""
    if not settings.context.workspace:
        return None
    from code_llama_ls.context.builder import ContextBuilder
    from code_llama_ls.context.index import WorkspaceIndex
    from code_llama_ls.text.uri import uri_to_path

    path = Path(uri_to_path(file_uri))
    if workspace is None:
        holders = (d for d in path.parents if any((d / m).exists() for m in _PROJECT_MARKERS))
        workspace = next(holders, path.parent)
    index = WorkspaceIndex()
    began = time.perf_counter()
    count = index.index_root(workspace)
    say(
        f"[indexed {count} files, {index.total_lines} lines of {workspace} "
        f"in {time.perf_counter() - began:.2f} s]"
    )
    return ContextBuilder(index)


def _engine_and_context(
    settings: Settings, file_uri: str, workspace: Path | None
) -> tuple[Engine, Any]:
    """The engine and the workspace context, the model loading while the workspace is indexed."""
    from code_llama_ls.serving.engines import load_engine_for
    from code_llama_ls.tools.terminal_progress import TerminalProgress  # not imported to serve

    with TerminalProgress() as progress, ThreadPoolExecutor(1) as loader:
        engine = loader.submit(load_engine_for, settings.engine, progress)
        context = _workspace_context(settings, file_uri, workspace, progress.note)
        return engine.result(), context


def _completion_request(settings: Settings, location: str) -> CompletionRequest:
    """The request for a completion at FILE:LINE:COL, as the server would build it."""
    from code_llama_ls.pipeline.request import CompletionOptions, CompletionRequest

    snapshot, offset = _cursor(settings, location)
    return CompletionRequest(
        snapshot, offset, CompletionOptions.from_settings(settings), settings.engine
    )


def complete_command(
    settings: Settings,
    location: str,
    workspace: Path | None = None,
    show_prompt: bool = False,
    candidates: int = 1,
) -> int:
    """Print the completion at FILE:LINE:COL (both 1-based, columns in characters), and up to
    `candidates` - 1 alternatives after it, each under a `--- alternative N ---` line."""
    from code_llama_ls.pipeline.complete import complete, prepare_prompt
    from code_llama_ls.tools.prompt_report import prompt_report, render_report

    if not 1 <= candidates <= MAX_CANDIDATES:
        print(f"code-llama-ls: --candidates takes 1 to {MAX_CANDIDATES}", file=sys.stderr)
        return 2
    request = dataclasses.replace(_completion_request(settings, location), candidates=candidates)
    engine, context = _engine_and_context(settings, request.snapshot.uri, workspace)
    began = time.perf_counter()
    # As the editor would show it: within the time budget (--time-budget-ms 0: none).
    completion = complete(request, engine, CancelToken(), context=context)
    elapsed = time.perf_counter() - began
    if show_prompt:
        prepared = prepare_prompt(request, engine, context)
        sys.stderr.write(render_report(prompt_report(prepared, engine.name)))
    sys.stdout.write(completion.text + ("\n" if completion.text else ""))
    for number, text in enumerate(completion.alternatives, 2):
        sys.stdout.write(f"--- alternative {number} ---\n{text}\n")
    print(
        f"[{completion.mode.value}: {completion.reason}; {completion.prompt_tokens} prompt "
        f"tokens; {elapsed:.2f} s on {engine.device}]",
        file=sys.stderr,
    )
    return 0


def prompt_command(
    settings: Settings, location: str, workspace: Path | None, *, as_json: bool
) -> int:
    """Print the prompt report at FILE:LINE:COL: each part's source and tokens, then the text."""
    import json

    from code_llama_ls.pipeline.complete import prepare_prompt
    from code_llama_ls.tools.prompt_report import prompt_report, render_report

    request = _completion_request(settings, location)
    engine, context = _engine_and_context(settings, request.snapshot.uri, workspace)
    report = prompt_report(prepare_prompt(request, engine, context), engine.name)
    sys.stdout.write(json.dumps(report, indent=1) + "\n" if as_json else render_report(report))
    return 0


def explain_command(settings: Settings, location: str) -> int:
    """Stream the explanation of FILE:START-END (or FILE:LINE) to stdout."""
    from code_llama_ls.pipeline.explain import ExplainOptions, ExplainRequest, explain
    from code_llama_ls.serving.engines import load_engine_for

    match = re.fullmatch(r"(.+):(\d+)(?:-(\d+))?", location)
    if match is None:
        raise CodeLlamaLsError(f"expected FILE:START-END or FILE:LINE, got {location!r}")
    snapshot = _open_file(match.group(1), settings)
    first = int(match.group(2)) - 1
    last = int(match.group(3)) - 1 if match.group(3) else None
    start = snapshot.offset_at(first, 0)
    if last is None:
        end = start
    elif last + 1 < snapshot.line_index.line_count:
        end = snapshot.offset_at(last + 1, 0)
    else:
        end = len(snapshot.text)
    from code_llama_ls.tools.terminal_progress import TerminalProgress

    with TerminalProgress() as progress:
        engine = load_engine_for(settings.explain_engine(), progress)
    shown = ""

    def stream(text: str) -> None:
        # Write only what extends the text already shown (the model's text so
        # far is stripped, so its tail can still change).
        nonlocal shown
        if len(text) > len(shown) and text.startswith(shown):
            sys.stdout.write(text[len(shown) :])
            sys.stdout.flush()
            shown = text

    request = ExplainRequest(
        snapshot, start, end, ExplainOptions.from_settings(settings), settings.explain_engine()
    )
    result = explain(request, engine, CancelToken(), on_text=stream)
    tail = result.markdown[len(shown) :] if result.markdown.startswith(shown) else result.markdown
    sys.stdout.write(tail + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
