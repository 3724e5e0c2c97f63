#!/usr/bin/env bash
# Installs what the test suites need and is not part of the Rust toolchain:
#   - Debian: mosquitto-clients (mosquitto_pub/sub for interop) and mosquitto (reference broker),
#     prometheus (its promtool checks /metrics)
#   - PyPI:   interop/python/requirements.txt (paho-mqtt 2.x, pytest)
#   - npm:    interop/node/package-lock.json (MQTT.js 5.x)
# Idempotent: each step is skipped when what it installs is already there, so a
# developer machine pays nothing on the second run. Prints one line per install.
# Uses sudo only when not root. Set SKIP_APT=1 / SKIP_PIP=1 / SKIP_NPM=1 to skip a step.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

say() { printf 'install-test-deps: %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        say "need root for: $* (no sudo available)" >&2
        return 1
    fi
}

# ---------------------------------------------------------------- Debian packages
install_apt() {
    local missing=()
    command -v mosquitto_pub >/dev/null 2>&1 && command -v mosquitto_sub >/dev/null 2>&1 \
        || missing+=(mosquitto-clients)
    command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
    # Certificates for the TLS / mTLS / WSS tests are made at test time with openssl.
    command -v openssl >/dev/null 2>&1 || missing+=(openssl)
    # The Redis store tests start their own redis-server on a free port.
    command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
    # The cluster tests on a Redis Cluster join its nodes with
    # `redis-cli --cluster create` (Debian's redis-tools).
    command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
    # `promtool check metrics` checks the management API's /metrics (management section).
    command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
    [ ${#missing[@]} -eq 0 ] && return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        say "apt-get not found; install ${missing[*]} by hand" >&2
        return 1
    fi
    say "apt-get install ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    # Tests never use a system mosquitto service (they start brokers on free
    # ports), so it does not matter whether the package starts one.
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ---------------------------------------------------------------- Python packages
python_deps_present() {
    python3 - <<'EOF' 2>/dev/null
import sys
from importlib import metadata
want = {}
for line in open("interop/python/requirements.txt"):
    line = line.split("#", 1)[0].strip()
    if line:
        name, _, version = line.partition("==")
        want[name] = version
for name, version in want.items():
    if metadata.version(name) != version:
        sys.exit(1)
EOF
}

install_pip() {
    python_deps_present && return 0
    say "pip install -r interop/python/requirements.txt"
    local pip=(python3 -m pip install --quiet --disable-pip-version-check -r interop/python/requirements.txt)
    if ! "${pip[@]}" 2>/tmp/roost-pip.err; then
        # Debian's system Python refuses plain pip installs (PEP 668); these
        # packages are test-only, so installing them beside the system ones is fine.
        if grep -q externally-managed /tmp/roost-pip.err; then
            "${pip[@]}" --break-system-packages
        elif grep -q -i 'permission denied' /tmp/roost-pip.err; then
            "${pip[@]}" --user
        else
            cat /tmp/roost-pip.err >&2
            return 1
        fi
    fi
}

# ---------------------------------------------------------------- npm packages
install_npm() {
    local dir=interop/node
    # npm ci writes node_modules/.package-lock.json; when it matches the committed
    # lock file the tree is up to date.
    if [ -f "$dir/node_modules/.package-lock.json" ] \
        && [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ] \
        && [ -d "$dir/node_modules/mqtt" ]; then
        return 0
    fi
    say "npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}

[ "${SKIP_APT:-0}" = 1 ] || install_apt
[ "${SKIP_PIP:-0}" = 1 ] || install_pip
[ "${SKIP_NPM:-0}" = 1 ] || install_npm
exit 0
