#!/usr/bin/env bash
# Build the VS Code extension into a .vsix from a clean checkout: Node >= 24
# (installed from the npm registry when the system's is older), npm ci, type
# check and unit tests, bundle (vsce's vscode:prepublish), vsce package.
# Works from any directory and can be run again; all build output goes to
# stderr and the LAST line on stdout is the .vsix's absolute path.
#   usage: extensions/vscode/scripts/package.sh [OUT_DIR]   (default: extensions/vscode/build)
set -euo pipefail

EXT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT_DIR="${1:-$EXT_DIR/build}"
mkdir -p "$OUT_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"

PATH="$("$EXT_DIR/../scripts/ensure-node.sh"):$PATH"
export PATH

cd "$EXT_DIR"
# One build at a time in this folder (npm ci replaces node_modules).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$EXT_DIR/.package.lock"
    flock 9
fi
NAME="$(node -p 'require("./package.json").name')"
VERSION="$(node -p 'require("./package.json").version')"
VSIX="$OUT_DIR/$NAME-$VERSION.vsix"

{
    echo "== node $(node --version), npm $(npm --version)"
    echo "== npm ci"
    npm ci --no-audit --no-fund
    echo "== type check and unit tests"
    npm test
    echo "== bundle and package"
    rm -f "$VSIX"
    # The bundle holds vscode-languageclient: no node_modules in the .vsix.
    npx --no-install vsce package --no-dependencies --allow-missing-repository --out "$VSIX"
} >&2

test -s "$VSIX"
echo "$VSIX"
