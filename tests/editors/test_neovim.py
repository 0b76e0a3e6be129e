"""The Neovim plugin (extensions/nvim) in real Neovims, with the real server and the tiny model.

Each Neovim series runs once for the module: 0.12 uses Neovim's own
`vim.lsp.inline_completion`, 0.11 the plugin's ghost-text fallback. The
scenarios type into the editor like a user (`nvim.input`) and read what it
shows (extmarks, windows, buffers): ghost text and accepting it, explaining
a range or a selection, the prompt inspector over a workspace folder,
:checkhealth, the user commands, restarting. Two tests run their own
Neovim: closing an endless explanation cancels it, and Neovim in tmux gives
the README's screenshot of the ghost text.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pynvim
import pytest

from tests.editors.conftest import server_argv
from tests.editors.neovim_setup import (
    PLUGIN_DIR,
    Editor,
    NeovimUnavailable,
    ansi_to_html,
    editor_environment,
    ensure_neovim,
    wait_until,
    write_init,
)
from tests.editors.vscode_setup import SetupError, ensure_apt_packages
from tests.scenarios import ADD_FILE, ADD_MIDDLE, EXPLAINED_CODE, EXPLANATION, split_cursor

SERIES = ["0.12", "0.11"]
ADD_BEFORE_TYPING = "def add(a, b):\n    \n\n\nprint(add(1, 2))\n"
TYPED = "return "
CHROMIUM = Path("/usr/bin/chromium")  # Debian's, as the VS Code test uses


def _neovim(series: str) -> Path:
    started = time.monotonic()
    try:
        binary = ensure_neovim(series)
    except NeovimUnavailable as exc:
        pytest.skip(f"Neovim {series} could not be installed: {exc}")
    print(f"Neovim {series}: {binary} ready in {time.monotonic() - started:.1f} s")
    return binary


@pytest.fixture(scope="module", params=SERIES, ids=[f"nvim-{s}" for s in SERIES])
def editor(
    request: pytest.FixtureRequest, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Editor]:
    """One Neovim of a series with the plugin set up on the tiny model, for the whole module."""
    series: str = request.param
    binary = _neovim(series)
    home = tmp_path_factory.mktemp(f"nvim-{series}")
    init = write_init(
        home / "init.lua",
        server_cmd=server_argv(),
        settings={"model": str(tiny_model), "device": "cpu"},
    )
    started = time.monotonic()
    editor = Editor.embedded(binary, init, home, series)
    try:
        assert editor.native == (series == "0.12")
        yield editor
    finally:
        editor.close()
        print(f"Neovim {series} session: {time.monotonic() - started:.1f} s")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty project folder for this test's files."""
    path = tmp_path / "project"
    path.mkdir()
    return path


@pytest.fixture(autouse=True)
def _fresh_screen(request: pytest.FixtureRequest) -> Iterator[None]:
    """Back to normal mode and a single window after each test that used the editor."""
    yield
    if "editor" in request.fixturenames:
        request.getfixturevalue("editor").reset()


def test_inline_completion_shows_and_accepts(editor: Editor, project: Path) -> None:
    # Typing TYPED at the end of line 2 gives the text the tiny model was trained on.
    assert ADD_BEFORE_TYPING.replace("    \n", "    " + TYPED + "\n", 1) == "".join(
        split_cursor(ADD_FILE)
    )
    path = project / "add.py"
    path.write_text(ADD_BEFORE_TYPING)
    client_id = editor.open(path)

    started = time.monotonic()
    editor.nvim.command("call cursor(2, 1)")
    editor.nvim.input("A" + TYPED)
    ghost = wait_until(editor.ghost_text, "ghost text", timeout=30)
    shown_after = time.monotonic() - started
    assert ghost == [ADD_MIDDLE]
    assert editor.nvim.current.buffer[1] == "    " + TYPED, "ghost text must not be in the buffer"

    editor.nvim.input("<Plug>(code-llama-accept)")
    wait_until(
        lambda: editor.nvim.current.buffer[1] == "    return a + b",
        "the accepted completion in line 2",
        timeout=10,
    )
    assert editor.nvim.api.get_mode()["mode"] == "i"
    assert tuple(editor.nvim.current.window.cursor) == (2, len("    return a + b"))
    accepted_after = time.monotonic() - started
    print(f"ghost text after {shown_after:.2f} s, accepted after {accepted_after:.2f} s")
    # Both paths run the item's command after an accept: the server counts it.
    wait_until(
        lambda: (_acceptance(editor, client_id) or {}).get("accepted", 0) >= 1,
        "the accept counted by the server",
        timeout=10,
    )

    editor.nvim.input("<Esc>")
    wait_until(lambda: editor.ghost_text() is None, "the ghost text to go on leaving insert mode")


def _server_status(editor: Editor, client_id: int) -> dict[str, Any]:
    """The server's `codeLlama/getStatus` answer, as the editor receives it."""
    asked = (
        "local client = vim.lsp.get_client_by_id(...)"
        " local r = require('code_llama_ls.util').request_sync("
        "   client, 'codeLlama/getStatus', vim.empty_dict(), 2000)"
        " return r and r.result"
    )
    status = editor.lua(asked, client_id)
    return status if isinstance(status, dict) else {}


def _acceptance(editor: Editor, client_id: int) -> dict[str, Any] | None:
    """The server's acceptance counts, all languages together."""
    total = _server_status(editor, client_id).get("acceptance", {}).get("total")
    return total if isinstance(total, dict) else None


def test_accept_a_word_then_the_line(editor: Editor, project: Path) -> None:
    """A partial accept leaves the rest shown, answered from the suggestion typed through.

    Whatever the model suggests here (other tests' files may be in the prompt's
    context), the word, the rest and the line follow from it.
    """
    path = project / "add.py"
    path.write_text(ADD_BEFORE_TYPING)
    client_id = editor.open(path)
    editor.nvim.command("call cursor(2, 1)")
    editor.nvim.input("A" + TYPED)
    shown = wait_until(editor.ghost_text, "ghost text", timeout=30)
    suggestion = "\n".join(shown)
    word = re.match(r"\s*\w+|\s*[^\w\s]+", suggestion)
    assert word is not None and len(word.group()) < len(suggestion), suggestion
    typed = "    " + TYPED + word.group()
    hits = _server_status(editor, client_id)["stats"]["typedThroughHits"]

    editor.nvim.input("<Plug>(code-llama-accept-word)")
    wait_until(lambda: editor.nvim.current.buffer[1] == typed, "the accepted word", timeout=10)
    assert tuple(editor.nvim.current.window.cursor) == (2, len(typed))
    rest = suggestion[len(word.group()) :]
    wait_until(lambda: editor.ghost_text() == rest.split("\n"), "the rest still shown", timeout=10)
    after = _server_status(editor, client_id)["stats"]["typedThroughHits"]
    assert after > hits, "the rest comes from the suggestion typed through, not the model"

    editor.nvim.input("<Plug>(code-llama-accept-line)")
    line = "    " + TYPED + suggestion.split("\n")[0]
    wait_until(lambda: editor.nvim.current.buffer[1] == line, "the accepted line", timeout=10)
    assert tuple(editor.nvim.current.window.cursor) == (2, len(line))
    # Both paths report the partial accept to the server.
    wait_until(
        lambda: (_acceptance(editor, client_id) or {}).get("partiallyAccepted", 0) >= 1,
        "the partial accept counted by the server",
        timeout=10,
    )
    editor.nvim.input("<Esc>")

    # :CodeLlamaStatus says how many suggestions were taken (of those shown,
    # when the fallback reports its shows; of those offered on 0.12).
    editor.nvim.command("messages clear | CodeLlamaStatus")
    messages = "return vim.api.nvim_exec2('messages', { output = true }).output"
    said = wait_until(
        lambda: re.search(r"accepted (\d+) of \d+ (offered|shown) \(\d+%\)", editor.lua(messages)),
        ":CodeLlamaStatus with the acceptance counts",
    )
    assert int(said.group(1)) >= 1, said.group()


def _open_alone(editor: Editor, path: Path) -> int:
    """Open `path` with every other buffer closed, so that no other test's files are open
    documents (whose code could go into the prompt); the client id."""
    editor.nvim.command("silent! %bwipeout!")
    return editor.open(path)


def _line_two(editor: Editor, text: str, what: str) -> None:
    wait_until(lambda: editor.nvim.current.buffer[1] == text, what, timeout=10)
    assert tuple(editor.nvim.current.window.cursor) == (2, len(text)), what


def _server_candidates(editor: Editor, client_id: int) -> list[str]:
    """What the server answers an Invoked request at the cursor with: all its candidates."""
    asked = (
        "local client = vim.lsp.get_client_by_id(...)"
        " local pos = vim.api.nvim_win_get_cursor(0)"  # ASCII: byte column = UTF-16 character
        " local params = { textDocument = { uri = vim.uri_from_bufnr(0) },"
        "   position = { line = pos[1] - 1, character = pos[2] },"
        "   context = { triggerKind = 1 } }"
        " local r = require('code_llama_ls.util').request_sync("
        "   client, 'textDocument/inlineCompletion', params, 20000, 0)"
        " assert(r and not r.err, vim.inspect(r))"
        " return vim.tbl_map(function(i) return i.insertText end, r.result.items or r.result)"
    )
    return list(editor.lua(asked, client_id))


def _plugin_candidates(editor: Editor) -> tuple[list[str], int]:
    """The items the plugin's ghost text holds in the current buffer and the one shown."""
    texts, index = editor.lua("return { require('code_llama_ls.ghost').items(0) }")
    return list(texts), index


def test_the_suggestion_after_an_accept_was_written_ahead(editor: Editor, project: Path) -> None:
    """The server writes ahead what follows a suggestion accepted; Neovim's request after the
    accept is answered from it (the server's `aheadHits`)."""
    path = project / "add.py"
    path.write_text(ADD_BEFORE_TYPING)
    client_id = _open_alone(editor, path)
    editor.nvim.command("call cursor(2, 1)")
    editor.nvim.input("A" + TYPED)
    assert wait_until(editor.ghost_text, "ghost text", timeout=30) == [ADD_MIDDLE]

    def stats() -> dict[str, Any]:
        status = _server_status(editor, client_id)
        return {**status.get("stats", {}), "state": status.get("state")}

    def written_ahead() -> dict[str, Any] | None:
        now = stats()
        return now if now.get("writtenAhead", 0) >= 1 and now["state"] == "ready" else None

    written = wait_until(written_ahead, "the next suggestion written ahead", timeout=30)
    editor.nvim.input("<Plug>(code-llama-accept)")
    _line_two(editor, "    return a + b", "the accepted completion")
    wait_until(
        lambda: stats().get("aheadHits", 0) > written["aheadHits"],
        "the request after the accept answered from what was written ahead",
        timeout=10,
    )


def test_candidates_accept_word_line_and_cycle(editor: Editor, project: Path) -> None:
    """Type, accept a word, the line, then cycle to the server's second candidate and take it.

    Automatic requests on a CPU carry one item; next/prev ask the server for
    its alternatives (an Invoked request) and show the second. On 0.12 the
    plugin shows them beside Neovim's own inline completion.
    """
    path = project / "add.py"
    path.write_text(ADD_BEFORE_TYPING)
    client_id = _open_alone(editor, path)
    editor.nvim.command("call cursor(2, 1)")
    editor.nvim.input("A" + TYPED)
    assert wait_until(editor.ghost_text, "ghost text", timeout=30) == [ADD_MIDDLE]

    editor.nvim.input("<Plug>(code-llama-accept-word)")
    _line_two(editor, "    return a", "the accepted word")
    wait_until(lambda: editor.ghost_text() == [" + b"], "the rest still shown", timeout=10)
    editor.nvim.input("<Plug>(code-llama-accept-line)")
    _line_two(editor, "    return a + b", "the accepted line")

    # Again from "return ", now to the second candidate.
    editor.nvim.input("<Esc>")
    editor.nvim.current.buffer[1] = "    "
    editor.nvim.command("call cursor(2, 1)")
    editor.nvim.input("A" + TYPED)
    assert wait_until(editor.ghost_text, "ghost text again", timeout=30) == [ADD_MIDDLE]
    candidates = _server_candidates(editor, client_id)
    print(f"the server's candidates: {candidates!r}")
    assert len(candidates) >= 2, candidates
    assert candidates[0] == ADD_MIDDLE and len(set(candidates)) == len(candidates), candidates
    second = candidates[1]
    before = _acceptance(editor, client_id) or {}

    editor.nvim.input("<Plug>(code-llama-next)")
    wait_until(
        lambda: editor.ghost_text() == second.split("\n"), "the second candidate", timeout=30
    )
    assert _plugin_candidates(editor) == (candidates, 2)
    assert editor.nvim.current.buffer[1] == "    " + TYPED, "ghost text must not be in the buffer"
    editor.nvim.input("<Plug>(code-llama-prev)")
    wait_until(lambda: editor.ghost_text() == [ADD_MIDDLE], "back to the first", timeout=10)
    editor.nvim.input("<Plug>(code-llama-next)")
    wait_until(lambda: editor.ghost_text() == second.split("\n"), "the second again", timeout=10)

    editor.nvim.input("<Plug>(code-llama-accept)")
    expected = ADD_BEFORE_TYPING.replace("    \n", "    " + TYPED + second + "\n", 1)
    wait_until(
        lambda: "\n".join(editor.nvim.current.buffer[:]) + "\n" == expected,
        "the second candidate in the buffer",
        timeout=10,
    )
    last = ("    " + TYPED + second).split("\n")
    assert tuple(editor.nvim.current.window.cursor) == (1 + len(last), len(last[-1]))
    assert editor.nvim.api.get_mode()["mode"] == "i"
    wait_until(
        lambda: (
            (_acceptance(editor, client_id) or {}).get("accepted", 0) > before.get("accepted", 0)
        ),
        "the accept of the alternative counted by the server",
        timeout=10,
    )
    editor.nvim.input("<Esc>")


def _set_server_setting(editor: Editor, client_id: int, key: str, value: object) -> None:
    """Send one server setting with workspace/didChangeConfiguration (the server layers it)."""
    editor.lua(
        "local client, key, value = ..."
        " require('code_llama_ls.util').send_notification("
        "   vim.lsp.get_client_by_id(client), 'workspace/didChangeConfiguration',"
        "   { settings = { codeLlama = { [key] = value == nil and vim.NIL or value } } })",
        client_id,
        key,
        value,
    )


def test_candidates_while_typing_cycle_without_asking(editor: Editor, project: Path) -> None:
    """With `candidatesWhileTyping`, the answer shown already holds the candidates: next
    cycles through them (Neovim's own select on 0.12) without asking the server again."""
    path = project / "add.py"
    path.write_text(ADD_BEFORE_TYPING)
    client_id = _open_alone(editor, path)
    _set_server_setting(editor, client_id, "candidatesWhileTyping", True)
    try:
        editor.nvim.command("call cursor(2, 1)")
        editor.nvim.input("A" + TYPED)
        assert wait_until(editor.ghost_text, "ghost text", timeout=30) == [ADD_MIDDLE]
        candidates = _server_candidates(editor, client_id)
        assert len(candidates) >= 2, candidates
        completions = _server_status(editor, client_id)["stats"]["completions"]
        editor.nvim.input("<Plug>(code-llama-next)")
        second = candidates[1].split("\n")
        wait_until(lambda: editor.ghost_text() == second, "the second candidate", timeout=10)
        if editor.native:
            assert _plugin_candidates(editor) == ([], 0), "Neovim's own select shows it"
        else:
            assert _plugin_candidates(editor) == (candidates, 2)
        assert _server_status(editor, client_id)["stats"]["completions"] == completions
        editor.nvim.input("<Plug>(code-llama-accept)")
        _line_two(editor, "    " + TYPED + candidates[1], "the second candidate accepted")
    finally:
        _set_server_setting(editor, client_id, "candidatesWhileTyping", None)
        editor.nvim.input("<Esc>")


def test_fallback_reports_shows_and_accepts(editor: Editor, project: Path) -> None:
    """The 0.10/0.11 ghost text tells the server what it showed and what was taken."""
    if editor.native:
        pytest.skip("Neovim 0.12 draws and accepts with its own inline completion")
    path = project / "add.py"
    path.write_text(ADD_BEFORE_TYPING)
    client_id = _open_alone(editor, path)
    before = _acceptance(editor, client_id) or {}

    def rose(key: str, by: int = 1) -> bool:
        return (_acceptance(editor, client_id) or {}).get(key, 0) >= before.get(key, 0) + by

    editor.nvim.command("call cursor(2, 1)")
    editor.nvim.input("A" + TYPED)
    assert wait_until(editor.ghost_text, "ghost text", timeout=30) == [ADD_MIDDLE]
    wait_until(lambda: rose("shown"), "the show counted by the server", timeout=10)
    editor.nvim.input("<Plug>(code-llama-accept-word)")
    _line_two(editor, "    return a", "the accepted word")
    wait_until(lambda: rose("partiallyAccepted"), "the partial accept counted", timeout=10)
    wait_until(lambda: editor.ghost_text() == [" + b"], "the rest shown", timeout=10)
    editor.nvim.input("<Plug>(code-llama-accept)")
    _line_two(editor, "    return a + b", "the accepted rest")
    wait_until(lambda: rose("accepted"), "the accept counted by the server", timeout=10)
    status = _server_status(editor, client_id)["acceptance"]["total"]
    assert status["rateOf"] == "shown", status
    editor.nvim.input("<Esc>")


def test_ghost_text_highlight_and_dismissal(editor: Editor, project: Path) -> None:
    path = project / "add.py"
    path.write_text(ADD_BEFORE_TYPING)
    editor.open(path)
    editor.nvim.command("call cursor(2, 1)")
    editor.nvim.input("A" + TYPED)
    wait_until(editor.ghost_text, "ghost text", timeout=30)
    group = editor.lua(
        "local ns = vim.api.nvim_create_namespace(...)"
        " local m = vim.api.nvim_buf_get_extmarks(0, ns, 0, -1, { details = true })[1]"
        " return m[4].virt_text[1][2]",
        editor.ghost_namespace,
    )
    assert group == ("ComplHint" if editor.native else "CodeLlamaGhost")
    if not editor.native:
        # The fallback hides it as soon as the cursor moves (Neovim's own re-asks the server).
        editor.nvim.input("<Left>")
        wait_until(lambda: editor.ghost_text() is None, "the ghost text to go after <Left>")
        editor.nvim.input("<Right>")
        wait_until(editor.ghost_text, "the ghost text back at the end of the line")
    editor.nvim.input("<Esc>")
    wait_until(lambda: editor.ghost_text() is None, "the ghost text to go on <Esc>")
    assert editor.nvim.current.buffer[1] == "    " + TYPED


RECORD_PROGRESS = """
_G.recorded_progress = {}
vim.api.nvim_create_autocmd('LspProgress', {
  callback = function(args)
    local p = args.data.params
    table.insert(_G.recorded_progress, {
      token = tostring(p.token), kind = p.value.kind, message = p.value.message or vim.NIL,
    })
  end,
})
"""


def _explanation_window(editor: Editor) -> dict[str, Any] | None:
    for window in editor.floating_windows():
        if EXPLANATION in "\n".join(window["lines"]):
            return window
    return None


def test_explain_range_opens_a_markdown_float(editor: Editor, project: Path) -> None:
    path = project / "add.py"
    path.write_text(EXPLAINED_CODE + "\n\nprint(add(1, 2))\n")
    editor.open(path)
    editor.lua(RECORD_PROGRESS)
    started = time.monotonic()
    editor.nvim.command("1,2CodeLlamaExplain")

    window = wait_until(lambda: _explanation_window(editor), "the explanation window", timeout=30)
    print(f"explanation shown after {time.monotonic() - started:.2f} s")
    assert window["filetype"] == "markdown"
    # The server streamed the whole Markdown so far on the plugin's own token.
    progress = editor.lua("return _G.recorded_progress")
    ours = [p for p in progress if p["token"].startswith("code-llama-ls.nvim/")]
    assert [p["kind"] for p in ours][:1] == ["begin"], progress
    assert [p["message"] for p in ours if p["kind"] == "report"][-1:] == [EXPLANATION], progress
    # The window has the focus; `q` closes it.
    assert editor.nvim.current.window.handle == window["win"]
    editor.nvim.input("q")
    wait_until(lambda: not editor.floating_windows(), "the explanation window to close")
    assert editor.nvim.current.buffer.name == str(path)


def test_explain_visual_selection(editor: Editor, project: Path) -> None:
    path = project / "add.py"
    path.write_text(EXPLAINED_CODE)
    editor.open(path)
    editor.nvim.command("call cursor(1, 1)")
    editor.nvim.input("vj$<Plug>(code-llama-explain)")
    wait_until(lambda: _explanation_window(editor), "the explanation of the selection", timeout=30)
    assert editor.nvim.api.get_mode()["mode"] == "n"


GREETINGS = 'def salutation(name):\n    return f"Hi, {name}!"\n'
APP = (
    "from lib.greetings import salutation\n\n\n"
    "def welcome(user):\n    print(salutation(user))\n    return \n"
)

PROMPT_WINDOW = """
for _, w in ipairs(vim.api.nvim_list_wins()) do
  local b = vim.api.nvim_win_get_buf(w)
  if vim.api.nvim_buf_get_name(b):match('^code%-llama%-ls://prompt/') then
    return {
      win = w,
      text = table.concat(vim.api.nvim_buf_get_lines(b, 0, -1, false), '\\n'),
      buftype = vim.bo[b].buftype, bufhidden = vim.bo[b].bufhidden, filetype = vim.bo[b].filetype,
    }
  end
end
return nil
"""
CLOSE_PROMPT_WINDOWS = """
for _, w in ipairs(vim.api.nvim_list_wins()) do
  if vim.api.nvim_buf_get_name(vim.api.nvim_win_get_buf(w)):match('^code%-llama%-ls://prompt/') then
    vim.api.nvim_win_close(w, true)
  end
end
"""


def _workspace_project(project: Path) -> Path:
    """A workspace folder (pyproject.toml marks its root) whose app.py imports lib/greetings.py."""
    (project / "pyproject.toml").write_text("")
    (project / "lib").mkdir()
    (project / "lib" / "__init__.py").write_text("")
    (project / "lib" / "greetings.py").write_text(GREETINGS)
    app = project / "app.py"
    app.write_text(APP)
    return app


def test_prompt_command_shows_workspace_context(editor: Editor, project: Path) -> None:
    app = _workspace_project(project)
    editor.open(app)
    # The folder is a workspace folder of the one server: its root when this
    # buffer started it, else added with workspace/didChangeWorkspaceFolders.
    folders = editor.lua(
        "local c = vim.lsp.get_clients({ name = 'code_llama_ls', bufnr = 0 })[1]"
        " return vim.tbl_map(function(f) return f.name end, c.workspace_folders or {})"
    )
    assert str(project) in folders
    started = time.monotonic()

    def shown() -> dict[str, Any] | None:
        # The server indexes the folder in the background: ask again until
        # the report has the imported definition.
        editor.lua(CLOSE_PROMPT_WINDOWS)
        editor.nvim.command("call cursor(6, 1) | normal! $")
        editor.nvim.command("CodeLlamaPrompt")
        window = wait_until(lambda: editor.lua(PROMPT_WINDOW), "the prompt window", timeout=30)
        text = window["text"]
        return window if "# lib/greetings.py" in text and "def salutation(name):" in text else None

    window = wait_until(shown, "lib/greetings.py in the prompt", timeout=60)
    print(f"prompt with workspace context after {time.monotonic() - started:.2f} s")
    assert window["text"].startswith("# Prompt at the cursor")
    assert "| imported definition | lib/greetings.py:1-2 | salutation |" in window["text"]
    assert (window["buftype"], window["bufhidden"], window["filetype"]) == (
        "nofile",
        "wipe",
        "markdown",
    )
    assert editor.nvim.current.window.handle == window["win"]
    editor.nvim.input("q")
    wait_until(lambda: editor.lua(PROMPT_WINDOW) is None, "the prompt window to close")
    assert editor.nvim.current.buffer.name == str(app)

    # From Insert mode the <Plug> map leaves it for the report.
    editor.nvim.input("A<Plug>(code-llama-prompt)")
    wait_until(lambda: editor.lua(PROMPT_WINDOW), "the prompt window from Insert mode")
    assert editor.nvim.api.get_mode()["mode"] == "n"


def test_checkhealth_reports_version_command_and_model(
    editor: Editor, project: Path, tiny_model: Path
) -> None:
    path = project / "add.py"
    path.write_text(ADD_BEFORE_TYPING)
    editor.open(path)
    version = editor.lua("return tostring(vim.version())")
    editor.nvim.command("checkhealth code_llama_ls")
    text = wait_until(
        lambda: (
            "\n".join(editor.nvim.current.buffer[:])
            if editor.nvim.current.buffer.options["filetype"] == "checkhealth"
            and "code-llama-ls: server" in "\n".join(editor.nvim.current.buffer[:])
            else None
        ),
        "the health report",
        timeout=30,
    )
    assert f"Neovim {version}" in text
    assert version.startswith(editor.series)
    if editor.native:
        assert "native vim.lsp.inline_completion" in text
    else:
        assert "code-llama-ls ghost text" in text
    assert f"server command: `{' '.join(server_argv())}`" in text
    assert f"setting model = {tiny_model}" in text
    assert "setting device = cpu" in text
    assert "ERROR" not in text, text
    if "codeLlama/getStatus failed" not in text:
        # A server with the status request says what it runs.
        assert f"model: {tiny_model.name}, device: cpu, state: ready" in text, text


def test_toggle_status_and_log_commands(editor: Editor, project: Path) -> None:
    path = project / "add.py"
    path.write_text(ADD_BEFORE_TYPING)
    client_id = editor.open(path)
    enabled = (
        "return vim.lsp.inline_completion.is_enabled({ bufnr = 0 })"
        if editor.native
        else "return require('code_llama_ls.config').completions_enabled(vim.bo.filetype)"
    )
    assert editor.lua(enabled) is True
    editor.nvim.command("CodeLlamaToggle")
    assert editor.lua(enabled) is False
    editor.nvim.command("CodeLlamaToggle")
    assert editor.lua(enabled) is True

    editor.nvim.command("CodeLlamaStatus")
    messages = "return vim.api.nvim_exec2('messages', { output = true }).output"
    shown = wait_until(
        lambda: (text := editor.lua(messages)) and f"[{client_id}] ready" in text and text,
        ":CodeLlamaStatus output",
    )
    assert "model on cpu" in shown

    editor.nvim.command("CodeLlamaLog")
    log = "\n".join(editor.nvim.current.buffer[:])
    assert "model ready" in log
    editor.nvim.input("q")
    assert editor.nvim.current.buffer.name == str(path)


YANKED = "SECRET_SAUCE = 'tamarind and smoked paprika'"
NOTES = f"# notes\n{YANKED}\nDELETED = 'gone'\n   \n"
RECORD_YANKS = """
_G.recorded_yanks = {}
local util = require('code_llama_ls.util')
_G.real_send_notification = _G.real_send_notification or util.send_notification
util.send_notification = function(client, method, params)
  if method == 'codeLlama/didYank' then
    table.insert(_G.recorded_yanks, params)
  end
  return _G.real_send_notification(client, method, params)
end
"""
STOP_RECORDING_YANKS = """
require('code_llama_ls.util').send_notification = _G.real_send_notification
"""


def test_yanks_are_sent_to_the_server(editor: Editor, tmp_path: Path) -> None:
    """Yanks (not deletes, blank or huge ones) go to the server with the document's uri."""
    notes = tmp_path / "notes.py"
    notes.write_text(NOTES + "BIG = '" + "x" * 17000 + "'\n")
    editor.open(notes)
    editor.lua(RECORD_YANKS)
    try:
        editor.nvim.command("call cursor(2, 1)")
        editor.nvim.input("yy")  # a line
        editor.nvim.input("wyw")  # a word
        editor.nvim.input("j")
        editor.nvim.input("dd")  # a delete: not sent
        editor.nvim.input("yy")  # blank: not sent
        editor.nvim.input("jyy")  # over 16 KB: not sent
        editor.nvim.input("ggVjy")  # two lines, visually
        uri = notes.as_uri()
        want = [
            {"text": YANKED, "uri": uri},
            {"text": "= ", "uri": uri},
            {"text": "# notes\n" + YANKED, "uri": uri},
        ]
        got = wait_until(
            lambda: (r := editor.lua("return _G.recorded_yanks")) and len(r) >= 3 and r,
            "the yanks sent",
        )
        assert got == want
        # The option switches it off.
        editor.lua("require('code_llama_ls.config').get().yanks.enable = false")
        editor.nvim.input("yy")
        assert editor.lua("return #_G.recorded_yanks") == 3
    finally:
        editor.lua("require('code_llama_ls.config').get().yanks.enable = true")
        editor.lua(STOP_RECORDING_YANKS)
        editor.nvim.command("bwipeout!")


def test_yanked_text_is_in_the_prompt_elsewhere(
    editor: Editor, project: Path, tmp_path: Path
) -> None:
    """Text yanked in one buffer shows up in the completion prompt at a cursor in another."""
    notes = tmp_path / "notes.py"
    notes.write_text(NOTES)
    editor.open(notes)
    editor.nvim.command("call cursor(2, 1)")
    editor.nvim.input("yy")
    path = project / "add.py"
    path.write_text(ADD_BEFORE_TYPING)
    editor.open(path)
    editor.nvim.command("call cursor(2, 1) | normal! $")
    editor.nvim.command("CodeLlamaPrompt")
    window = wait_until(lambda: editor.lua(PROMPT_WINDOW), "the prompt window", timeout=30)
    text = window["text"]
    assert "yanked text" in text, text
    assert YANKED in text, text
    editor.nvim.input("q")


def test_restart_starts_a_new_server(editor: Editor, project: Path) -> None:
    path = project / "add.py"
    path.write_text(ADD_BEFORE_TYPING)
    old = editor.open(path)
    started = time.monotonic()
    editor.nvim.command("CodeLlamaRestart")
    editor.wait(
        "local c = vim.lsp.get_clients({ name = 'code_llama_ls', bufnr = 0 })[1]"
        " return c and c.id ~= ... and c.initialized",
        "a new client",
        old,
        timeout=30,
    )
    new = editor.open(path)
    assert new != old
    assert editor.lua("return #vim.lsp.get_clients({ name = 'code_llama_ls' })") == 1
    print(f"restarted and ready in {time.monotonic() - started:.2f} s")


FAKE_SERVER_GHOST = """
-- The fallback against a stand-in client that answers two items, the first multi-line.
vim.opt.runtimepath:prepend(PLUGIN_DIR)
local util = require('code_llama_ls.util')
local reported = {}
local fake = { id = 99, offset_encoding = 'utf-16' }
function fake:notify(method, params)
  table.insert(reported, { method, params.item.insertText })
end
function fake:exec_cmd(command)
  table.insert(reported, { command.command, command.arguments[1].id })
end
vim.lsp.get_client_by_id = function(id) return id == 99 and fake or nil end
util.request = function(_, _, params, handler)
  vim.schedule(function()
    handler(nil, { items = {
      {
        insertText = 'x = 1\\n    return x',
        range = { start = params.position, ['end'] = params.position },
        command = { command = 'codeLlama.didAcceptCompletion', arguments = { { id = 'a' } } },
      },
      { insertText = 'pass' },
    } })
  end)
  return true, 1
end
require('code_llama_ls').setup({ completions = { provider = 'fallback', debounce_ms = 10 } })
local ghost = require('code_llama_ls.ghost')
local buf = vim.api.nvim_get_current_buf()
vim.api.nvim_buf_set_lines(buf, 0, -1, false, { 'def f():', '    ' })
ghost.attach(buf, 99)
vim.api.nvim_win_set_cursor(0, { 2, 4 })
vim.cmd('startinsert!')
local function shown()
  local mark = vim.api.nvim_buf_get_extmarks(buf, ghost.namespace, 0, -1, { details = true })[1]
  return mark and { mark[4].virt_text, mark[4].virt_lines or {} } or vim.NIL
end
vim.schedule(function()
  local out = {}
  vim.api.nvim_exec_autocmds('CursorMovedI', { buffer = buf })
  out.visible = vim.wait(5000, function() return ghost.visible(buf) end, 10)
  out.first = shown()
  ghost.select(1)
  out.second = shown()
  ghost.select(-1)
  out.accepted = ghost.accept()
  vim.wait(5000, function() return not ghost.visible(buf) end, 10)
  out.lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  out.cursor = vim.api.nvim_win_get_cursor(0)
  out.reported = reported
  vim.fn.writefile({ vim.json.encode(out) }, OUT)
  vim.cmd('qall!')
end)
"""


def test_fallback_multiline_ghost_text_and_candidates(tmp_path: Path) -> None:
    # Against a stand-in server: the tiny model's completions are all one line.
    binary = _neovim("0.11")
    out = tmp_path / "out.json"
    script = tmp_path / "ghost.lua"
    script.write_text(
        f"local PLUGIN_DIR, OUT = {json.dumps(str(PLUGIN_DIR))}, {json.dumps(str(out))}\n"
        + FAKE_SERVER_GHOST
    )
    env = {**os.environ, **editor_environment(tmp_path / "home")}
    argv = [str(binary), "--headless", "-u", "NONE", "-i", "NONE", "-c", f"luafile {script}"]
    subprocess.run(argv, env=env, timeout=60, check=False, capture_output=True)
    result = json.loads(out.read_text())
    assert result["visible"] is True
    hl = "CodeLlamaGhost"
    assert result["first"] == [
        [["x = 1", hl]],
        [[["    return x", hl], [" (1/2)", "CodeLlamaGhostHint"]]],
    ]
    assert result["second"] == [[["pass", hl], [" (2/2)", "CodeLlamaGhostHint"]], []]
    assert result["accepted"] is True
    assert result["lines"] == ["def f():", "    x = 1", "    return x"]
    assert result["cursor"] == [3, len("    return x")]
    # Each item shown is reported once; the accept runs the item's command.
    assert result["reported"] == [
        ["textDocument/didShowCompletion", "x = 1\n    return x"],
        ["textDocument/didShowCompletion", "pass"],
        ["codeLlama.didAcceptCompletion", "a"],
    ]


def test_closing_the_explanation_cancels_it(
    tiny_model: Path, babbling_model: Path, tmp_path: Path
) -> None:
    # The babbling model never stops by itself: only the cancellation ends its work.
    binary = _neovim("0.12")
    init = write_init(
        tmp_path / "init.lua",
        server_cmd=server_argv(),
        settings={
            "model": str(tiny_model),
            "explainModel": str(babbling_model),
            "explainMaxNewTokens": 4096,
            "device": "cpu",
        },
    )
    path = tmp_path / "add.py"
    path.write_text(EXPLAINED_CODE)
    editor = Editor.embedded(binary, init, tmp_path / "home", "0.12")
    try:
        client_id = editor.open(path)
        editor.nvim.command("1,2CodeLlamaExplain")

        def streamed() -> bool:
            placeholder = (["_Explaining…_"], [""])
            return any(w["lines"] not in placeholder for w in editor.floating_windows())

        wait_until(streamed, "streamed text in the explanation window", timeout=60)
        notified = "return require('code_llama_ls.status').get(...).state"
        assert editor.lua(notified, client_id) == "generating"
        editor.nvim.input("q")
        wait_until(lambda: not editor.floating_windows(), "the explanation window to close")
        started = time.monotonic()
        asked = (
            "local client = vim.lsp.get_client_by_id(...)"
            " return require('code_llama_ls.status').request(client, 1000).state"
        )
        wait_until(lambda: editor.lua(asked, client_id) == "ready", "the model to stop", timeout=15)
        print(f"server back to ready {time.monotonic() - started:.2f} s after closing")
        messages = editor.lua("return vim.api.nvim_exec2('messages', { output = true }).output")
        assert "code-llama-ls" not in messages, "a cancelled explanation is no error"
    finally:
        editor.close()


def test_help_file_has_unique_tags(editor: Editor, tmp_path: Path) -> None:
    doc = tmp_path / "doc"
    doc.mkdir()
    shutil.copy(PLUGIN_DIR / "doc" / "code_llama_ls.txt", doc)
    editor.nvim.command(f"helptags {doc}")  # E154 on a duplicate tag
    tags = [line.split("\t")[0] for line in (doc / "tags").read_text().splitlines()]
    for tag in (
        "code_llama_ls",
        ":CodeLlamaExplain",
        ":CodeLlamaPrompt",
        "<Plug>(code-llama-accept)",
        "<Plug>(code-llama-accept-word)",
        "<Plug>(code-llama-accept-line)",
        "<Plug>(code-llama-prompt)",
        "<Plug>(code-llama-next)",
        "<Plug>(code-llama-prev)",
        "code_llama_ls-context",
        "code_llama_ls-candidates",
        "code_llama_ls-yanks",
        "code_llama_ls-opt-yanks",
    ):
        assert tag in tags


# -- screenshot for the README ------------------------------------------------

SCREENSHOT_INIT = """
vim.o.termguicolors = true
vim.o.number = true
vim.o.laststatus = 2
vim.o.statusline = " %f %m%=%{v:lua.require'code_llama_ls'.statusline()} "
"""


def _tmux(socket: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        ["tmux", "-S", str(socket), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        env=env,
    )
    return done.stdout


def test_screenshot_of_ghost_text_in_a_terminal(
    tiny_model: Path, tmp_path: Path, artifacts_dir: Path
) -> None:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    binary = _neovim("0.12")
    home = tmp_path / "home"
    project = tmp_path / "project"
    project.mkdir()
    path = project / "add.py"
    path.write_text(ADD_BEFORE_TYPING)
    init = write_init(
        tmp_path / "init.lua",
        server_cmd=server_argv(),
        settings={"model": str(tiny_model), "device": "cpu"},
        extra_lua=SCREENSHOT_INIT,
    )
    tmux_conf = tmp_path / "tmux.conf"
    tmux_conf.write_text(
        'set -g default-terminal "tmux-256color"\n'
        'set -as terminal-features ",*:RGB"\n'
        "set -g status off\n"
    )
    tmux_socket, nvim_socket = tmp_path / "tmux.sock", tmp_path / "nvim.sock"
    env = {**os.environ, **editor_environment(home), "TERM": "xterm-256color"}
    _tmux(
        tmux_socket,
        "-f",
        str(tmux_conf),
        "new-session",
        "-d",
        "-x",
        "100",
        "-y",
        "24",
        "-c",
        str(project),
        str(binary),
        "--listen",
        str(nvim_socket),
        "-u",
        str(init),
        "-i",
        "NONE",
        str(path),
        env=env,
    )
    editor: Editor | None = None
    try:
        wait_until(nvim_socket.exists, "Neovim's socket in tmux", timeout=30)
        nvim = pynvim.attach("socket", path=str(nvim_socket))
        editor = Editor(nvim, "0.12", native=True)
        editor.open(path)
        editor.nvim.command("call cursor(2, 1)")
        editor.nvim.input("A" + TYPED)
        wait_until(editor.ghost_text, "ghost text", timeout=30)

        def screen() -> str | None:
            shown = _tmux(tmux_socket, "capture-pane", "-p", "-e", "-N")
            plain = _tmux(tmux_socket, "capture-pane", "-p")
            return shown if "return a + b" in plain else None

        ansi = wait_until(screen, "the ghost text on the terminal screen")
        plain = _tmux(tmux_socket, "capture-pane", "-p")
        where = _tmux(tmux_socket, "display-message", "-p", "#{cursor_x} #{cursor_y}").split()
        x, y = int(where[0]), int(where[1])
    finally:
        if editor is not None:
            editor.close()
        subprocess.run(["tmux", "-S", str(tmux_socket), "kill-server"], check=False, timeout=30)

    (artifacts_dir / "neovim-ghost-text.txt").write_text(plain)
    (artifacts_dir / "neovim-ghost-text.ansi").write_text(ansi)
    page = ansi_to_html(ansi, "code-llama-ls in Neovim: ghost text", cursor=(x, y))
    html_path = artifacts_dir / "neovim-ghost-text.html"
    html_path.write_text(page)
    assert "    return a + b" in plain
    assert page.count("\n<span") == 23, "one <pre> line per terminal row"
    try:
        ensure_apt_packages(("chromium",))
    except SetupError as exc:
        pytest.skip(f"saved {html_path.name}; no Chromium for the PNG: {exc}")
    from playwright.sync_api import sync_playwright

    png = artifacts_dir / "neovim-ghost-text.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            tab = browser.new_page(viewport={"width": 1000, "height": 600}, device_scale_factor=2)
            tab.set_content(page)
            tab.locator("pre").screenshot(path=str(png))
        finally:
            browser.close()
    assert png.stat().st_size > 10_000
