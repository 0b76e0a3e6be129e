"""The VS Code extension in a real VS Code: code-server driven by Playwright in headless Chromium.

The test installs its own tools (see `vscode_setup`), packages the extension
with `extensions/vscode/scripts/package.sh`, installs it into a throw-away
code-server whose settings point at the tiny test model, and then acts as a
user would: it types, waits for the ghost text, accepts it with Tab, and runs
"Code Llama: Explain Selection" from the command palette. Screenshots, the
code-server log, the browser console and the extension's output land in
`artifacts_dir`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from tests.editors.vscode_setup import (
    CodeServer,
    SetupError,
    VSCodeTools,
    ensure_vscode_tools,
    package_extension,
    running_code_server,
)
from tests.scenarios import ADD_FILE, ADD_MIDDLE, CURSOR, EXPLANATION

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
    with running_code_server(vscode_tools, root, settings, vsix, artifacts_dir) as server:
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
