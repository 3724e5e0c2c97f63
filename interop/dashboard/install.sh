#!/usr/bin/env bash
# Installs what the dashboard's browser tests need, when missing: Debian's
# `chromium` (the browser Playwright drives through `executable_path`) and
# Playwright for Python from PyPI (requirements.txt). Never `playwright
# install`: no browser build is downloaded. Idempotent; uses sudo only when
# not root.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
say() { printf 'dashboard/install.sh: %s\n' "$*"; }
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    say "apt-get install chromium"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

want=$(grep -E '^playwright==' "$here/requirements.txt" | cut -d= -f3)
have=$(python3 -c 'from importlib import metadata; print(metadata.version("playwright"))' 2>/dev/null || true)
if [ "$have" != "$want" ]; then
    say "pip install playwright==$want (found: ${have:-none})"
    python3 -m pip install -q -r "$here/requirements.txt" 2>/dev/null \
        || python3 -m pip install -q --break-system-packages -r "$here/requirements.txt"
fi
