#!/usr/bin/env bash
# Installs what the VS Code end-to-end test needs and builds the extension's .vsix. Idempotent: a second
# run on a machine that has everything only checks (a few seconds) and rebuilds the .vsix if its sources
# changed.
#
#   Debian packages: chromium (driven headless by playwright-core), libkrb5-dev (code-server's native
#                    kerberos module builds against it), ripgrep (VS Code's search)
#   node 24:         the npm package node@24 (code-server needs node 22+; the machine's own node may be older)
#   code-server:     code-server@4.139.1 and playwright-core, in the cache folder (not in the repository)
#   the extension:   npm ci + typecheck + the CodeSieve wheel (editor-client/wheel.mjs, with $PYTHON, default
#                    the checkout's .venv/bin/python) + esbuild bundle + vsce package in editor-client/
#
# Cache folder: $CODESIEVE_E2E_CACHE, default ~/.cache/codesieve-e2e. Prints KEY=VALUE lines at the end
# (NODE, CODE_SERVER_ENTRY, NODE_PATH, VSIX) that tests/e2e/test_vscode.py reads.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${CODESIEVE_E2E_CACHE:-$HOME/.cache/codesieve-e2e}"
CODE_SERVER_VERSION="4.139.1"
PLAYWRIGHT_VERSION="1.65.1"
NODE_MAJOR="24"
mkdir -p "$CACHE"

log() { echo "setup-editor-tests: $*" >&2; }
# Exit 75: a tool could not be installed on this machine (tests/e2e/test_vscode.py then skips); any other
# failure (the extension does not build, say) is an error.
unavailable() { log "cannot install $*"; exit 75; }

# --- Debian packages ---------------------------------------------------------------------------------
need_apt=()
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -e /usr/include/gssapi/gssapi.h ] || [ -e /usr/include/krb5.h ] || need_apt+=(libkrb5-dev)
command -v rg >/dev/null 2>&1 || need_apt+=(ripgrep)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]} (apt-get)"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  { $SUDO apt-get update -qq >&2 &&
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >&2; } ||
    unavailable "${need_apt[*]} with apt-get"
fi

# --- node 24 from the npm registry ---------------------------------------------------------------------
export npm_config_yes=true npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false
NODE_PKG="$CACHE/node$NODE_MAJOR/node_modules/node"
NODE="$NODE_PKG/bin/node"
if ! [ -x "$NODE" ] || ! "$NODE" --version 2>/dev/null | grep -q "^v$NODE_MAJOR\."; then
  log "installing node@$NODE_MAJOR (npm package) into $CACHE/node$NODE_MAJOR"
  rm -rf "$CACHE/node$NODE_MAJOR"
  npm install --prefix "$CACHE/node$NODE_MAJOR" --no-save "node@$NODE_MAJOR" >&2 || unavailable "node@$NODE_MAJOR"
fi
"$NODE" --version >/dev/null || unavailable "a working node $NODE_MAJOR"
NODE_DIR="$(dirname "$(find "$NODE_PKG" -path '*/node-linux-*/include/node/node.h' -print -quit)")"
NODE_DIR="${NODE_DIR%/include/node}"
[ -d "$NODE_DIR/include/node" ] || unavailable "node headers (none under $NODE_PKG)"
export npm_config_nodedir="$NODE_DIR"
# npm itself runs on node 24 too, so install scripts and node-gyp build for node 24's ABI.
NPM_CLI="$(dirname "$(readlink -f "$(command -v npm)")")/npm-cli.js"
[ -f "$NPM_CLI" ] || NPM_CLI="$(npm root -g)/npm/bin/npm-cli.js"
export PATH="$(dirname "$NODE"):$PATH"
npm24() { "$NODE" "$NPM_CLI" "$@"; }

# --- code-server and playwright-core -------------------------------------------------------------------
CS_DIR="$CACHE/code-server-$CODE_SERVER_VERSION"
CS_ENTRY="$CS_DIR/node_modules/code-server/out/node/entry.js"
if ! [ -f "$CS_DIR/.installed" ] || ! [ -f "$CS_ENTRY" ]; then
  log "installing code-server@$CODE_SERVER_VERSION and playwright-core@$PLAYWRIGHT_VERSION into $CS_DIR (takes a few minutes)"
  rm -rf "$CS_DIR"
  mkdir -p "$CS_DIR"
  echo '{"name": "codesieve-e2e-tools", "private": true}' >"$CS_DIR/package.json"
  (cd "$CS_DIR" && npm24 install --no-audit --no-fund \
    "code-server@$CODE_SERVER_VERSION" "playwright-core@$PLAYWRIGHT_VERSION" >&2) ||
    unavailable "code-server@$CODE_SERVER_VERSION"
  [ -d "$CS_DIR/node_modules/code-server/lib/vscode/node_modules" ] ||
    unavailable "code-server (its postinstall did not run: lib/vscode/node_modules is missing)"
  touch "$CS_DIR/.installed"
fi

# --- the extension ---------------------------------------------------------------------------------------
EXT="$ROOT/editor-client"
VERSION="$("$NODE" -p "require('$EXT/package.json').version")"
VSIX="$EXT/codesieve-$VERSION.vsix"
# A hash of everything that goes into the .vsix, the wheel's sources included: rebuild only when it changed.
SOURCES_HASH="$(cd "$EXT" && { find src media ../server ../trainer ../export ../codesieve -type f -not -path '*/__pycache__/*' -print0
  for f in package.json package-lock.json tsconfig.json eslint.config.mjs esbuild.mjs wheel.mjs .vscodeignore README.md CHANGELOG.md LICENSE \
    ../pyproject.toml ../README.md; do if [ -f "$f" ]; then printf "%s\0" "$f"; fi; done; } |
  sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
export PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"  # builds the wheel the .vsix carries (wheel.mjs)
STAMP="$EXT/node_modules/.codesieve-vsix-$SOURCES_HASH"
if ! [ -f "$VSIX" ] || ! [ -f "$STAMP" ]; then
  LOCK_HASH="$(sha256sum "$EXT/package-lock.json" | cut -c1-16)"
  if ! [ -f "$EXT/node_modules/.codesieve-lock-$LOCK_HASH" ]; then
    log "npm ci in editor-client"
    (cd "$EXT" && npm24 ci --no-audit --no-fund >&2)
    touch "$EXT/node_modules/.codesieve-lock-$LOCK_HASH"
  fi
  log "building $VSIX"
  rm -f "$EXT"/node_modules/.codesieve-vsix-* "$VSIX"
  (cd "$EXT" && npm24 run package >&2)
  [ -f "$VSIX" ] || { log "npm run package made no $VSIX"; exit 1; }
  touch "$STAMP"
fi

echo "NODE=$NODE"
echo "CODE_SERVER_ENTRY=$CS_ENTRY"
echo "NODE_PATH=$CS_DIR/node_modules"
echo "CHROMIUM=/usr/bin/chromium"
echo "VSIX=$VSIX"
