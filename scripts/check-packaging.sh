#!/usr/bin/env bash
# Checks the packaging files without Docker or a systemd host:
#   - packaging/roost.service passes `systemd-analyze verify` (when installed),
#     with the binary path pointed at the built roost;
#   - the Dockerfile is multi-stage, runs as a non-root user with the data
#     directory as a volume, and its configuration (packaging/roost.docker.toml)
#     passes check-config and, started the way the image starts it, listens on
#     0.0.0.0 with anonymous clients refused.
# ROOST_BIN (default target/debug/roost) is the binary to use; it is not rebuilt.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
ROOST_BIN=${ROOST_BIN:-$root/target/debug/roost}
[ -x "$ROOST_BIN" ] || { echo "check-packaging: no binary at $ROOST_BIN (cargo build -p roost)" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/roost-packaging.XXXXXX")
broker=""
cleanup() {
    [ -n "$broker" ] && kill "$broker" 2>/dev/null && wait "$broker" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "check-packaging: $*" >&2; exit 1; }
ok() { echo "check-packaging: ok: $*"; }

# ---------------------------------------------------------------- systemd
unit=packaging/roost.service
grep -q '^ExecStart=/usr/local/bin/roost -c /etc/roost/roost.toml' "$unit" || fail "$unit: unexpected ExecStart"
for option in NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
    DynamicUser=yes StateDirectory=roost CapabilityBoundingSet= MemoryDenyWriteExecute=yes; do
    grep -qx "$option" "$unit" || fail "$unit: missing $option"
done
if command -v systemd-analyze >/dev/null 2>&1; then
    sed "s|/usr/local/bin/roost|$ROOST_BIN|g" "$unit" >"$tmp/roost.service"
    out=$(systemd-analyze verify "$tmp/roost.service" 2>&1) || fail "systemd-analyze verify: $out"
    # verify exits 0 on some warnings; any line naming the unit is one.
    if grep -q 'roost.service' <<<"$out"; then fail "systemd-analyze verify: $out"; fi
    ok "systemd-analyze verify $unit"
else
    echo "check-packaging: systemd-analyze not installed; unit checked by grep only"
fi

# ---------------------------------------------------------------- Dockerfile
df=Dockerfile
[ "$(grep -c '^FROM ' "$df")" -ge 2 ] || fail "$df: not multi-stage"
final=$(awk '/^FROM /{stage=""} {stage=stage $0 "\n"} END{printf "%s", stage}' "$df")
user=$(grep '^USER ' <<<"$final" | tail -1 | awk '{print $2}')
[ -n "$user" ] && [ "$user" != root ] && [ "$user" != 0 ] || fail "$df: the final stage runs as root"
grep -q '^VOLUME \["/var/lib/roost"\]' <<<"$final" || fail "$df: /var/lib/roost is not a volume"
grep -q '^COPY packaging/roost.docker.toml /etc/roost/roost.toml' <<<"$final" || fail "$df: config not copied"
ok "$df: multi-stage, USER $user, VOLUME /var/lib/roost"

config=packaging/roost.docker.toml
"$ROOST_BIN" check-config "$config" >/dev/null || fail "$config: check-config refused it"
# The image's CMD, with a free port (-p 0 replaces the first listener's) and a
# private data directory in place of the volume.
"$ROOST_BIN" -c "$config" -p 0 --data-dir "$tmp/data" 2>"$tmp/log" &
broker=$!
for _ in $(seq 100); do
    grep -q 'listening on mqtt://' "$tmp/log" && break
    kill -0 "$broker" 2>/dev/null || fail "the broker exited: $(cat "$tmp/log")"
    sleep 0.1
done
line=$(grep 'listening on mqtt://' "$tmp/log") || fail "no listening line: $(cat "$tmp/log")"
grep -q 'mqtt://0.0.0.0:[0-9]* (anonymous clients refused)' <<<"$line" \
    || fail "expected 0.0.0.0 with anonymous clients refused: $line"
[ -d "$tmp/data" ] || fail "no data directory at --data-dir"
ok "$config: $line"
if command -v mosquitto_pub >/dev/null 2>&1; then
    port=$(sed -n 's|.*mqtt://0.0.0.0:\([0-9]*\).*|\1|p' <<<"$line")
    if mosquitto_pub -h 127.0.0.1 -p "$port" -t packaging/check -m x 2>/dev/null; then
        fail "an anonymous client was accepted on the image's listener"
    fi
    ok "an anonymous mosquitto_pub is refused"
fi
