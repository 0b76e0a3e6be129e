"""Install what the VS Code test needs (Chromium, Node 24, code-server) and run code-server.

Installation is idempotent: a step already done costs a `dpkg-query` or a
marker-file check, so only the first run on a fresh machine is slow
(apt ~1-2 min, code-server's native modules ~3.5 min). A prerequisite that
cannot be installed raises `SetupError`, which the test turns into a skip that
says what failed. Run `python -m tests.editors.vscode_setup` to install ahead
of the tests.

`running_code_server` starts a throw-away code-server (its own user data,
extensions and XDG dirs, a free 127.0.0.1 port) and kills it and every child
(extension hosts, the language server) afterwards.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tests.editors.conftest import REPO, tools_dir
from tests.editors.processes import descendants, wait_gone

CODE_SERVER_VERSION = "4.139.1"
CHROMIUM = Path("/usr/bin/chromium")
SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
APT_PACKAGES = ("chromium", "libkrb5-dev")
APT_WAIT_FOR_LOCK = ("-o", "DPkg::Lock::Timeout=120")  # e.g. behind unattended-upgrades
ENSURE_NODE = REPO / "extensions" / "scripts" / "ensure-node.sh"
PACKAGE_EXTENSION = REPO / "extensions" / "vscode" / "scripts" / "package.sh"
EXTENSION_ID = "code-llama-ls.code-llama-ls"


class SetupError(RuntimeError):
    """A prerequisite of the VS Code test could not be installed on this machine."""


@dataclass(frozen=True)
class VSCodeTools:
    """Paths of the installed tools; `env` puts Node 24 first on PATH (code-server needs it)."""

    code_server: Path
    chromium: Path
    node_bin: Path

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        env["PATH"] = f"{self.node_bin}{os.pathsep}{env.get('PATH', '')}"
        # A global npmrc may point node-gyp at the system Node's headers.
        env["npm_config_nodedir"] = str(self.node_bin.parent)
        # Debian's Node trusts the system's certificates; the Node from npm
        # only its own bundle, which a proxy's certificate is not in.
        if SYSTEM_CA_BUNDLE.exists():
            env.setdefault("NODE_EXTRA_CA_CERTS", str(SYSTEM_CA_BUNDLE))
        return env


def _run(
    argv: Sequence[str],
    what: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> str:
    """Run a setup command; on failure raise SetupError with the tail of its output."""
    try:
        proc = subprocess.run(
            list(argv),
            env=None if env is None else dict(env),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise SetupError(f"{what}: cannot run {argv[0]}: {exc}") from exc
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-25:])
        raise SetupError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout


@contextmanager
def _locked(name: str) -> Iterator[None]:
    """Serialise installers across processes (a background install and a pytest run)."""
    tools_dir().mkdir(parents=True, exist_ok=True)
    with open(tools_dir() / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _apt_installed(package: str) -> bool:
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode == 0 and proc.stdout.strip() == "install ok installed"


def ensure_apt_packages(packages: Sequence[str] = APT_PACKAGES) -> None:
    """`apt-get install` the Debian packages that are missing (Chromium, Kerberos headers)."""
    if shutil.which("dpkg-query") is None:
        raise SetupError("no dpkg-query: the VS Code test needs a Debian-like system")
    missing = [p for p in packages if not _apt_installed(p)]
    if not missing:
        return
    if os.geteuid() != 0:
        raise SetupError(f"apt packages {missing} are missing and this is not root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with _locked("apt"):
        _run(["apt-get", *APT_WAIT_FOR_LOCK, "update"], "apt-get update", env)
        _run(
            ["apt-get", "install", "-y", "--no-install-recommends", *APT_WAIT_FOR_LOCK, *missing],
            f"apt-get install {' '.join(missing)}",
            env,
        )


def ensure_node() -> Path:
    """The bin directory of a Node >= 24 (installed from npm into the tools cache if needed)."""
    out = _run(["bash", str(ENSURE_NODE)], "installing Node 24 (ensure-node.sh)")
    node_bin = Path(out.strip().splitlines()[-1])
    if not (node_bin / "node").exists():
        raise SetupError(f"ensure-node.sh printed {node_bin}, which has no node")
    return node_bin


def ensure_code_server(node_bin: Path) -> Path:
    """Install code-server from npm into the tools cache once; return its launcher."""
    root = tools_dir() / f"code-server-{CODE_SERVER_VERSION}"
    marker = root / ".installed"
    launcher = root / "node_modules" / ".bin" / "code-server"
    with _locked("code-server"):
        if marker.exists() and launcher.exists():
            return launcher
        shutil.rmtree(root, ignore_errors=True)  # a half-finished install from an earlier run
        root.mkdir(parents=True)
        (root / "package.json").write_text('{"name": "code-server-install", "private": true}\n')
        tools = VSCodeTools(code_server=launcher, chromium=CHROMIUM, node_bin=node_bin)
        _run(
            [
                "npm",
                "install",
                "--no-audit",
                "--no-fund",
                f"code-server@{CODE_SERVER_VERSION}",
            ],
            f"npm install code-server@{CODE_SERVER_VERSION} (native modules need Node 24 headers)",
            tools.env(),
            cwd=root,  # not --prefix: that would also move npm's global config (the CA file)
        )
        _run([str(launcher), "--version"], "code-server --version", tools.env())
        marker.write_text(f"{CODE_SERVER_VERSION}\n")
    return launcher


def ensure_vscode_tools() -> VSCodeTools:
    """Everything the VS Code test runs: Chromium, Node 24 and code-server."""
    ensure_apt_packages()
    if not CHROMIUM.exists():
        raise SetupError(f"the chromium package is installed but {CHROMIUM} is missing")
    node_bin = ensure_node()
    return VSCodeTools(
        code_server=ensure_code_server(node_bin), chromium=CHROMIUM, node_bin=node_bin
    )


def package_extension(out_dir: Path, tools: VSCodeTools) -> Path:
    """Build the extension with its own script; the .vsix path is the last line it prints.

    It builds a copy of `extensions/` so that its `npm ci` never replaces the
    node_modules of someone working in the checkout. A failure here is the
    project's own bug, so it raises AssertionError, not SetupError.
    """
    source = out_dir / "source"
    build_outputs = shutil.ignore_patterns("node_modules", "build", "dist", "out", "*.vsix")
    shutil.copytree(REPO / "extensions", source / "extensions", ignore=build_outputs)
    proc = subprocess.run(
        ["bash", str(source / PACKAGE_EXTENSION.relative_to(REPO)), str(out_dir)],
        env=tools.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0 and lines, f"package.sh failed:\n{proc.stdout[-4000:]}"
    vsix = Path(lines[-1])
    assert vsix.suffix == ".vsix" and vsix.exists(), f"package.sh printed {vsix!s}"
    return vsix


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process_tree(proc: subprocess.Popen[bytes], grace: float = 10) -> None:
    """SIGTERM code-server's process group and every descendant, then SIGKILL what is left."""
    tree = [proc.pid, *descendants(proc.pid)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        for pid in tree:
            with suppress(ProcessLookupError):
                os.kill(pid, sig)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
        if wait_gone(tree[1:], grace):
            return


def wait_until_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Poll `/healthz` until code-server answers (or fail at once if it exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"code-server exited with {proc.returncode}; see its log"
        with (
            suppress(urllib.error.URLError, ConnectionError, TimeoutError),
            urllib.request.urlopen(f"{url}/healthz", timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.2)  # polling an HTTP endpoint: nothing to wait on instead
    raise AssertionError(f"code-server at {url} not healthy after {timeout} s")


@dataclass(frozen=True)
class CodeServer:
    """A running code-server: where to browse, and its user data dir (settings, logs)."""

    url: str
    user_data_dir: Path


def install_extension(tools: VSCodeTools, vsix: Path, dirs: dict[str, Path]) -> None:
    """`code-server --install-extension` into this instance's own extensions dir."""
    proc = subprocess.run(
        [
            str(tools.code_server),
            "--user-data-dir",
            str(dirs["user"]),
            "--extensions-dir",
            str(dirs["extensions"]),
            "--install-extension",
            str(vsix),
        ],
        env=code_server_env(tools, dirs),
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    assert proc.returncode == 0, f"--install-extension failed:\n{proc.stdout}\n{proc.stderr}"
    installed = list(dirs["extensions"].glob(f"{EXTENSION_ID}-*"))
    assert installed, f"{EXTENSION_ID} not in the extensions dir:\n{proc.stdout}\n{proc.stderr}"


def code_server_env(tools: VSCodeTools, dirs: dict[str, Path]) -> dict[str, str]:
    """Node 24 first; XDG dirs in the temp folder, or extension hosts outlive the test."""
    return {
        **tools.env(),
        "XDG_CONFIG_HOME": str(dirs["config"]),
        "XDG_DATA_HOME": str(dirs["data"]),
        "XDG_CACHE_HOME": str(dirs["cache"]),
        "XDG_STATE_HOME": str(dirs["state"]),
        "XDG_RUNTIME_DIR": str(dirs["runtime"]),
    }


@contextmanager
def running_code_server(
    tools: VSCodeTools,
    root: Path,
    settings: dict[str, object],
    vsix: Path | None,
    artifacts_dir: Path,
    keybindings: Sequence[Mapping[str, object]] = (),
) -> Iterator[CodeServer]:
    """A code-server on a free 127.0.0.1 port with its own dirs; it and its children die after.

    `keybindings`: the user's keybindings.json entries (e.g. for commands VS Code binds to no key).
    """
    names = ("user", "extensions", "config", "data", "cache", "state", "runtime")
    dirs = {name: root / name for name in names}
    for path in dirs.values():
        path.mkdir(mode=0o700, parents=True)
    if vsix is not None:
        install_extension(tools, vsix, dirs)
    settings_file = dirs["user"] / "User" / "settings.json"
    settings_file.parent.mkdir(parents=True, exist_ok=True)
    settings_file.write_text(json.dumps(settings, indent=2))
    (settings_file.parent / "keybindings.json").write_text(json.dumps(list(keybindings), indent=2))
    config = root / "config.yaml"
    config.write_text("auth: none\ncert: false\n")
    port = free_port()
    argv = [
        str(tools.code_server),
        *("--auth", "none", "--bind-addr", f"127.0.0.1:{port}", "--config", str(config)),
        *("--user-data-dir", str(dirs["user"]), "--extensions-dir", str(dirs["extensions"])),
        *("--disable-telemetry", "--disable-update-check", "--disable-workspace-trust"),
        *("--reconnection-grace-time", "5"),
    ]
    with open(artifacts_dir / "vscode-code-server.log", "wb") as log:
        proc = subprocess.Popen(
            argv,
            env=code_server_env(tools, dirs),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_healthy(url, proc)
            yield CodeServer(url=url, user_data_dir=dirs["user"])
        finally:
            stop_process_tree(proc)
            save_logs(dirs["user"] / "logs", artifacts_dir)


def save_logs(logs: Path, artifacts_dir: Path) -> None:
    """Copy code-server's log tree; the extension's output channels also go to one flat file."""
    target = artifacts_dir / "vscode-logs"
    shutil.rmtree(target, ignore_errors=True)
    if not logs.exists():
        return
    shutil.copytree(logs, target)
    outputs = sorted(
        p
        for p in target.rglob("*.log")
        if "code llama" in str(p.relative_to(target)).lower().replace("-", " ")
    )
    with open(artifacts_dir / "vscode-extension-output.log", "w") as flat:
        for path in outputs:
            flat.write(f"===== {path.relative_to(target)}\n{path.read_text(errors='replace')}\n")


if __name__ == "__main__":
    start = time.monotonic()
    found = ensure_vscode_tools()
    print(f"{found} ready in {time.monotonic() - start:.0f} s")
