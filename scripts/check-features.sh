#!/usr/bin/env bash
# Guard rails that a workspace-wide clippy run cannot see (run by test.sh in
# its clippy section, and so by CI):
#
#   1. The protocol crates stay runtime-free: roost-codec, roost-session and
#      roost-router have no tokio anywhere in their normal dependency tree
#      (ARCHITECTURE.md, placement rules).
#   2. Every crate with cargo features builds, warning-free, with no default
#      features and with each feature alone: the default build switches all of
#      them on, so a feature-off path (e.g. transport/disabled.rs) can drift
#      without anyone noticing.
#
# Features are read from `cargo metadata`, so a new feature is checked without
# editing this script. clippy (a check build, no codegen) keeps it fast and
# applies -D warnings to the workspace crates only.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

RUNTIME_FREE=(roost-codec roost-session roost-router)

failed=0
for crate in "${RUNTIME_FREE[@]}"; do
    tree=$(cargo tree -p "$crate" -e normal --prefix none --format '{p}')
    if grep -qE '^tokio( |-)' <<<"$tree"; then
        echo "check-features: $crate has tokio in its normal dependency tree:" >&2
        cargo tree -p "$crate" -e normal -i tokio >&2 || true
        failed=1
    else
        echo "check-features: $crate: no tokio in its normal dependencies"
    fi
done
[ "$failed" = 0 ] || exit 1

# "crate feature feature ..." for every workspace member that has features.
features=$(cargo metadata --format-version 1 --no-deps | python3 -c '
import json, sys
for p in json.load(sys.stdin)["packages"]:
    names = sorted(f for f in p["features"] if f != "default")
    if names:
        print(p["name"], *names)
')

while read -r crate list; do
    echo "check-features: $crate --no-default-features"
    cargo clippy -q -p "$crate" --no-default-features -- -D warnings
    for feature in $list; do
        echo "check-features: $crate --no-default-features --features $feature"
        cargo clippy -q -p "$crate" --no-default-features --features "$feature" -- -D warnings
    done
done <<<"$features"
echo "check-features: ok"
