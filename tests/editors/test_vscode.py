"""The VS Code extension in a real VS Code: code-server driven by Playwright in headless Chromium.

The test installs its own tools (see `vscode_setup`), packages the extension
with `extensions/vscode/scripts/package.sh`, installs it into a throw-away
code-server whose settings point at the tiny test model, and then acts as a
user would: it types, waits for the ghost text, accepts it with Tab (or a
word or a line of it), shows the next candidate with Alt+], copies with
Ctrl+C, reads the status bar's tooltip, and runs "Code Llama: Explain
Selection" and "Code Llama: Show Prompt at Cursor" from the command palette.
Screenshots, the code-server log, the browser console and the extension's
output land in `artifacts_dir`.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

import pytest
from lsprotocol import types
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from tests.e2e.lsp_client import open_document, start_client
from tests.editors.vscode_setup import (
    CodeServer,
    SetupError,
    VSCodeTools,
    ensure_vscode_tools,
    package_extension,
    running_code_server,
)
from tests.scenarios import ADD_FILE, ADD_MIDDLE, CURSOR, EXPLANATION, cursor_position

ADD_WITHOUT_RETURN = ADD_FILE.replace(f"return {CURSOR}", "")
ADD_TYPED = ADD_FILE.replace(CURSOR, "")
ADD_COMPLETE = ADD_FILE.replace(CURSOR, ADD_MIDDLE)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# VS Code binds Accept Next Line to no key: the test user binds one, as a user would.
ACCEPT_LINE_KEY = "ctrl+alt+l"
KEYBINDINGS = [
    {
        "key": ACCEPT_LINE_KEY,
        "command": "editor.action.inlineSuggest.acceptNextLine",
        "when": "inlineSuggestionVisible",
    }
]
WORKBENCH_TIMEOUT_MS = 90_000  # the first load of the workbench on a busy 2-core machine
READY_TIMEOUT_MS = 120_000  # extension host, Python server (torch import), model load
STEP_TIMEOUT_MS = 30_000

# Sorted view lines of the editor with ghost text left out, U+00A0 read as spaces.
EDITOR_LINES_JS = """() => {
  const selector = '.part.editor .monaco-editor .view-lines .view-line';
  const lines = [...document.querySelectorAll(selector)];
  lines.sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top));
  return lines.map((line) => {
    const copy = line.cloneNode(true);
    copy.querySelectorAll('[class*="ghost-text"]').forEach((node) => node.remove());
    return copy.textContent.replace(/\\u00a0/g, ' ');
  });
}"""
GHOST_TEXT_JS = """(expected) => {
  const parts = [...document.querySelectorAll('.part.editor .ghost-text-decoration')];
  return parts.map((p) => p.textContent.replace(/\\u00a0/g, ' ')).join('') === expected;
}"""
# The status bar item's tooltip, once hovered.
TOOLTIP_SELECTOR = ".workbench-hover, .monaco-hover"

pytestmark = [pytest.mark.timeout(1500)]


def user_settings(model: Path) -> dict[str, object]:
    """Settings that keep focus in the editor, silence the chrome, and point at the tiny model."""
    return {
        "security.workspace.trust.enabled": False,
        "chat.disableAIFeatures": True,
        "workbench.secondarySideBar.defaultVisibility": "hidden",
        "workbench.startupEditor": "none",
        "workbench.tips.enabled": False,
        "workbench.enableExperiments": False,
        "telemetry.telemetryLevel": "off",
        "update.mode": "none",
        "extensions.autoCheckUpdates": False,
        "extensions.autoUpdate": False,
        "extensions.ignoreRecommendations": True,
        "git.enabled": False,
        "editor.minimap.enabled": False,
        "editor.inlineSuggest.enabled": True,
        "editor.quickSuggestions": {"other": False, "comments": False, "strings": False},
        "editor.suggestOnTriggerCharacters": False,
        "editor.wordBasedSuggestions": "off",
        "editor.parameterHints.enabled": False,
        "editor.hover.enabled": False,
        "editor.formatOnType": False,
        "files.autoSave": "off",
        "codeLlama.server.pythonPath": sys.executable,
        "codeLlama.model": str(model),
        "codeLlama.device": "cpu",
        "codeLlama.completions.enable": True,
    }


@pytest.fixture(scope="module")
def vscode_tools() -> VSCodeTools:
    """Chromium, Node 24 and code-server, installed on first use; a skip if that cannot be done."""
    try:
        return ensure_vscode_tools()
    except SetupError as exc:
        pytest.skip(f"VS Code test prerequisites could not be installed: {exc}")


@pytest.fixture(scope="module")
def vsix(vscode_tools: VSCodeTools, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The extension packaged by its own script, as CI and users build it."""
    return package_extension(tmp_path_factory.mktemp("vsix"), vscode_tools)


@pytest.fixture(scope="module")
def code_server(
    vscode_tools: VSCodeTools,
    vsix: Path,
    tiny_model: Path,
    tmp_path_factory: pytest.TempPathFactory,
    artifacts_dir: Path,
) -> Iterator[CodeServer]:
    """code-server with the packaged extension, set up to serve the tiny model on the CPU."""
    root = tmp_path_factory.mktemp("code-server")
    settings = user_settings(tiny_model)
    with running_code_server(
        vscode_tools, root, settings, vsix, artifacts_dir, KEYBINDINGS
    ) as server:
        yield server


@pytest.fixture(scope="module")
def browser(vscode_tools: VSCodeTools) -> Iterator[Browser]:
    """Debian's Chromium under Playwright (never `playwright install`: no downloads at run time)."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(vscode_tools.chromium), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser, artifacts_dir: Path, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context per test; its console goes to a log in artifacts_dir."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    console_log = artifacts_dir / f"vscode-console-{request.node.name}.log"
    with open(console_log, "w") as sink:
        page = context.new_page()
        page.set_default_timeout(STEP_TIMEOUT_MS)
        page.on("console", lambda msg: log_line(sink, f"[{msg.type}] {msg.text}"))
        page.on("pageerror", lambda exc: log_line(sink, f"[pageerror] {exc}"))
        try:
            yield page
        finally:
            context.close()


def log_line(sink: IO[str], text: str) -> None:
    """Append a line and flush, so the log is complete even if the test is killed."""
    sink.write(text + "\n")
    sink.flush()


@contextmanager
def screenshot_on_failure(page: Page, path: Path) -> Iterator[None]:
    """Leave a screenshot at `path` when the block fails (and none from an earlier run)."""
    path.unlink(missing_ok=True)
    try:
        yield
    except BaseException:
        with suppress(Exception):
            page.screenshot(path=str(path))
        raise


def open_workspace_file(page: Page, server: CodeServer, folder: Path, name: str) -> None:
    """Open `folder` as the workspace, then `name` through Quick Open, and wait for its editor."""
    page.goto(f"{server.url}/?folder={folder}", timeout=WORKBENCH_TIMEOUT_MS)
    explorer_row = page.locator(".part.sidebar .monaco-list-row", has_text=name)
    explorer_row.wait_for(timeout=WORKBENCH_TIMEOUT_MS)
    quick_open(page, name)


def quick_open(page: Page, name: str) -> None:
    """Open the workspace file `name` through Quick Open and wait for its focused editor."""
    page.keyboard.press("Control+P")
    quick_input = page.locator(".quick-input-widget")
    quick_input.locator("input").fill(name)
    quick_input.locator(".monaco-list-row", has_text=name).first.wait_for()
    page.keyboard.press("Enter")
    page.locator(".tabs-container .tab.active", has_text=name).wait_for()
    page.locator(".part.editor .monaco-editor.focused").wait_for()


def llama_status(page: Page) -> Locator:
    """The extension's status bar item ("Code Llama: loading", "Code Llama: ready · cpu · 9 ms")."""
    return page.locator(".part.statusbar .statusbar-item", has_text="Code Llama:")


def wait_for_ready(page: Page) -> None:
    """The model is loaded: text typed before this gets no completion request."""
    expect(llama_status(page)).to_contain_text("Code Llama: ready", timeout=READY_TIMEOUT_MS)


def editor_lines(page: Page) -> list[str]:
    """The text of the visible editor lines, without ghost text."""
    lines: list[str] = page.evaluate(EDITOR_LINES_JS)
    return lines


def cursor_status(page: Page) -> Locator:
    """The status bar item "Ln L, Col C" of the active editor."""
    return page.locator(".part.statusbar .statusbar-item", has_text="Ln ")


def error_notifications(page: Page) -> list[str]:
    """Texts of the error toasts on screen (e.g. "Error in server: ..."): a user would see them."""
    toasts = page.locator(".notifications-toasts .notification-list-item")
    return toasts.filter(has=page.locator(".codicon-error")).all_inner_texts()


def workspace(tmp_path: Path, text: str) -> tuple[Path, Path]:
    """A project folder holding add.py (the name the explanation was trained with)."""
    folder = tmp_path / "project"
    folder.mkdir()
    path = folder / "add.py"
    path.write_text(text)
    return folder, path


def type_return_in_add(page: Page, server: CodeServer, folder: Path, path: Path) -> None:
    """Open add.py and type "return " at the end of the body's line, as a user would."""
    open_workspace_file(page, server, folder, path.name)
    wait_for_ready(page)
    # Line 2 holds the four spaces of the body: type at its end.
    for key in ("Control+Home", "ArrowDown", "End"):
        page.keyboard.press(key)
    expect(cursor_status(page)).to_contain_text("Ln 2, Col 5")
    page.keyboard.type("return ")
    expect(cursor_status(page)).to_contain_text("Ln 2, Col 12")
    assert "\n".join(editor_lines(page)) == ADD_TYPED


def save_and_check(page: Page, path: Path, expected: str) -> None:
    """Save the active editor (Escape first: a next suggestion would render) and read the file."""
    page.keyboard.press("Escape")
    page.keyboard.press("Control+S")
    page.locator(".tabs-container .tab.active.dirty").wait_for(state="detached")
    assert path.read_text() == expected


def test_ghost_text_is_shown_and_accepted_with_tab(
    code_server: CodeServer, page: Page, tmp_path: Path, artifacts_dir: Path
) -> None:
    folder, path = workspace(tmp_path, ADD_WITHOUT_RETURN)
    with screenshot_on_failure(page, artifacts_dir / "vscode-ghost-text-failure.png"):
        type_return_in_add(page, code_server, folder, path)
        page.wait_for_function(GHOST_TEXT_JS, arg=ADD_MIDDLE, timeout=STEP_TIMEOUT_MS)
        page.screenshot(path=str(artifacts_dir / "vscode-ghost-text.png"))
        assert not error_notifications(page)  # before Escape, which also hides toasts
        # The last completion's latency is shown (in ms, or s when slow: no timing asserted).
        expect(llama_status(page)).to_contain_text(re.compile(r"ready · cpu · [\d.]+ m?s"))

        page.keyboard.press("Tab")
        expect(cursor_status(page)).to_contain_text("Ln 2, Col 17")
        save_and_check(page, path, ADD_COMPLETE)
        page.screenshot(path=str(artifacts_dir / "vscode-ghost-text-accepted.png"))
        assert not error_notifications(page)


def test_accept_word_takes_the_suggestion_a_word_at_a_time(
    code_server: CodeServer, page: Page, tmp_path: Path, artifacts_dir: Path
) -> None:
    """VS Code's own Accept Word (Ctrl+Right) works on our items; the rest stays shown."""
    folder, path = workspace(tmp_path, ADD_WITHOUT_RETURN)
    with screenshot_on_failure(page, artifacts_dir / "vscode-accept-word-failure.png"):
        type_return_in_add(page, code_server, folder, path)
        page.wait_for_function(GHOST_TEXT_JS, arg=ADD_MIDDLE, timeout=STEP_TIMEOUT_MS)

        page.keyboard.press("Control+ArrowRight")  # editor.action.inlineSuggest.acceptNextWord
        expect(cursor_status(page)).to_contain_text("Ln 2, Col 13")
        page.wait_for_function(GHOST_TEXT_JS, arg=" + b", timeout=STEP_TIMEOUT_MS)
        page.keyboard.press("Tab")
        expect(cursor_status(page)).to_contain_text("Ln 2, Col 17")
        save_and_check(page, path, ADD_COMPLETE)
        assert not error_notifications(page)


def test_explain_selection_opens_a_panel_with_the_explanation(
    code_server: CodeServer, page: Page, tmp_path: Path, artifacts_dir: Path
) -> None:
    folder, path = workspace(tmp_path, ADD_COMPLETE)
    with screenshot_on_failure(page, artifacts_dir / "vscode-explain-failure.png"):
        open_workspace_file(page, code_server, folder, path.name)
        wait_for_ready(page)
        for key in ("Control+Home", "Shift+ArrowDown", "Shift+ArrowDown"):
            page.keyboard.press(key)  # selects lines 1-2: the whole add()

        page.keyboard.press("F1")
        quick_input = page.locator(".quick-input-widget")
        quick_input.locator("input").fill(">Code Llama: Explain Selection")
        command = quick_input.locator(".monaco-list-row", has_text="Code Llama: Explain Selection")
        command.first.wait_for()
        page.keyboard.press("Enter")

        tab = page.locator(".tabs-container .tab", has_text="Code Llama: Explanation")
        tab.wait_for()
        explanation = (
            page.frame_locator("iframe.webview")
            .frame_locator("#active-frame")
            .locator("#explanation[data-state='done']")
        )
        expect(explanation).to_contain_text(EXPLANATION, timeout=60_000)
        page.screenshot(path=str(artifacts_dir / "vscode-explain.png"))
        assert not error_notifications(page)


def invoked_items(
    model: Path, folder: Path, path: Path, document: str
) -> list[types.InlineCompletionItem]:
    """The server's answer to an explicitly invoked request at the CURSOR of `document`.

    What Alt+] asks for, asked here by the repo's LSP test client of a server of
    its own (its own thread: Playwright's sync API holds this one's event loop).
    """
    position = cursor_position(document)

    async def ask() -> list[types.InlineCompletionItem]:
        client, _ = await start_client("visual-studio-code", model, workspace=folder)
        try:
            open_document(client, path.as_uri(), "python", document.replace(CURSOR, ""))
            result = await client.text_document_inline_completion_async(
                types.InlineCompletionParams(
                    text_document=types.TextDocumentIdentifier(uri=path.as_uri()),
                    position=position,
                    context=types.InlineCompletionContext(
                        trigger_kind=types.InlineCompletionTriggerKind.Invoked
                    ),
                )
            )
        finally:
            await client.shutdown_session()
        assert isinstance(result, types.InlineCompletionList)
        for item in result.items:
            assert item.range == types.Range(position, position), item
        return list(result.items)

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, ask()).result(timeout=180)


def status_tooltip(page: Page, pattern: re.Pattern[str]) -> str:
    """The status bar item's tooltip once it matches `pattern` (hovered again until it does)."""
    tooltip = page.locator(TOOLTIP_SELECTOR).filter(has_text="Code Llama:")
    text = ""
    for _ in range(20):
        page.mouse.move(640, 5)  # off the item (the title bar), so the next hover opens afresh
        llama_status(page).hover()
        with suppress(AssertionError):
            expect(tooltip.first).to_be_visible(timeout=5_000)
            text = tooltip.first.inner_text()
            if pattern.search(text):
                page.mouse.move(640, 5)
                return text
        page.wait_for_timeout(500)  # the counts are asked for after a pause: hover again then
    raise AssertionError(f"the status tooltip never matched {pattern.pattern!r}: {text!r}")


def run_command(page: Page, title: str) -> None:
    """Run a command from the command palette (F1) by its title."""
    page.keyboard.press("F1")
    quick_input = page.locator(".quick-input-widget")
    quick_input.locator("input").fill(f">{title}")
    quick_input.locator(".monaco-list-row", has_text=title).first.wait_for()
    page.keyboard.press("Enter")


def test_show_next_cycles_to_the_second_candidate_and_tab_accepts_it(
    code_server: CodeServer, page: Page, tmp_path: Path, artifacts_dir: Path, tiny_model: Path
) -> None:
    """Alt+] asks again, explicitly: the server then sends its alternatives, best first."""
    folder, path = workspace(tmp_path, ADD_WITHOUT_RETURN)
    texts = [item.insert_text for item in invoked_items(tiny_model, folder, path, ADD_FILE)]
    assert len(texts) >= 2 and texts[0] == ADD_MIDDLE, texts
    second = texts[1]
    assert isinstance(second, str)
    with screenshot_on_failure(page, artifacts_dir / "vscode-show-next-failure.png"):
        type_return_in_add(page, code_server, folder, path)
        page.wait_for_function(GHOST_TEXT_JS, arg=ADD_MIDDLE, timeout=STEP_TIMEOUT_MS)

        page.keyboard.press("Alt+BracketRight")  # editor.action.inlineSuggest.showNext
        first_line = second.split("\n")[0]
        page.wait_for_function(GHOST_TEXT_JS, arg=first_line, timeout=STEP_TIMEOUT_MS)
        page.screenshot(path=str(artifacts_dir / "vscode-show-next.png"))
        page.keyboard.press("Tab")
        save_and_check(page, path, ADD_FILE.replace(CURSOR, second))
        assert not error_notifications(page)


def test_accept_line_takes_a_one_line_suggestion_whole(
    code_server: CodeServer, page: Page, tmp_path: Path, artifacts_dir: Path
) -> None:
    """VS Code's Accept Next Line on a one-line item is a whole accept: the server counts it."""
    folder, path = workspace(tmp_path, ADD_WITHOUT_RETURN)
    with screenshot_on_failure(page, artifacts_dir / "vscode-accept-line-failure.png"):
        type_return_in_add(page, code_server, folder, path)
        page.wait_for_function(GHOST_TEXT_JS, arg=ADD_MIDDLE, timeout=STEP_TIMEOUT_MS)

        page.keyboard.press("Control+Alt+L")  # ACCEPT_LINE_KEY
        expect(cursor_status(page)).to_contain_text("Ln 2, Col 17")
        status_tooltip(page, re.compile(r"Accepted 1 of \d+ suggestions? offered"))
        save_and_check(page, path, ADD_COMPLETE)
        assert not error_notifications(page)


def test_status_tooltip_shows_the_acceptance_rate(
    code_server: CodeServer, page: Page, tmp_path: Path, artifacts_dir: Path
) -> None:
    """Offered, then accepted with Tab: the server's counts, as the tooltip shows them, rise."""
    folder, path = workspace(tmp_path, ADD_WITHOUT_RETURN)
    with screenshot_on_failure(page, artifacts_dir / "vscode-acceptance-failure.png"):
        type_return_in_add(page, code_server, folder, path)
        page.wait_for_function(GHOST_TEXT_JS, arg=ADD_MIDDLE, timeout=STEP_TIMEOUT_MS)
        status_tooltip(page, re.compile(r"Accepted 0 of [1-9]\d* suggestions? offered \(0%\)"))

        page.keyboard.press("Tab")
        expect(cursor_status(page)).to_contain_text("Ln 2, Col 17")
        after = status_tooltip(page, re.compile(r"Accepted 1 of \d+ suggestions? offered"))
        match = re.search(r"Accepted 1 of (\d+) suggestions? offered \((\d+)%\)", after)
        assert match is not None, after
        assert int(match[2]) == round(100 / int(match[1])), after
        page.screenshot(path=str(artifacts_dir / "vscode-acceptance-tooltip.png"))
        save_and_check(page, path, ADD_COMPLETE)


def test_copied_text_reaches_the_prompt_and_the_clipboard_still_works(
    code_server: CodeServer, page: Page, tmp_path: Path, artifacts_dir: Path
) -> None:
    """Ctrl+C copies as before (it pastes), and the prompt elsewhere shows the copy."""
    folder, path = workspace(tmp_path, ADD_COMPLETE)
    other = folder / "notes.py"
    other.write_text("total = 0\n")
    copied = "def add(a, b):\n    return a + b\n"
    with screenshot_on_failure(page, artifacts_dir / "vscode-copy-failure.png"):
        open_workspace_file(page, code_server, folder, path.name)
        wait_for_ready(page)
        for key in ("Control+Home", "Shift+ArrowDown", "Shift+ArrowDown", "Control+C"):
            page.keyboard.press(key)  # selects the whole add() and copies it

        quick_open(page, other.name)
        page.keyboard.press("Control+End")
        page.keyboard.press("Control+V")
        expect(cursor_status(page)).to_contain_text("Ln 4, Col 1")
        assert "\n".join(editor_lines(page)) == f"total = 0\n{copied}"
        page.keyboard.press("Control+Z")  # the copy must come from the yank, not this file
        expect(cursor_status(page)).to_contain_text("Ln 2, Col 1")

        run_command(page, "Code Llama: Show Prompt at Cursor")
        page.locator(".tabs-container .tab.active", has_text="Untitled").wait_for()
        page.keyboard.press("Control+F")
        find = page.locator(".part.editor .find-widget.visible")
        find.locator("textarea, input").first.fill("yanked from add.py")
        expect(find.locator(".matchesCount")).to_have_text(re.compile(r"^\d+ of \d+$"))
        page.screenshot(path=str(artifacts_dir / "vscode-copied-text-prompt.png"))
        assert not error_notifications(page)
