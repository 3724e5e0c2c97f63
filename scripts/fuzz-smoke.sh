#!/usr/bin/env bash
# Runs every fuzz target (roost-codec packets, roost-auth file parsers) for a short time (FUZZ_SECONDS each,
# default 60) and fails on the first crash. Installs cargo-fuzz if missing.
# The toolchain is stable: RUSTC_BOOTSTRAP=1 lets cargo-fuzz use the
# sanitizer flags it needs.
#
#   scripts/fuzz-smoke.sh                 # all targets, 60 s each
#   FUZZ_SECONDS=600 scripts/fuzz-smoke.sh decode_v5
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root/fuzz"

seconds=${FUZZ_SECONDS:-60}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(decode_v3 decode_v5 decode_any roundtrip acl_file password_file scram_file)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
log=$(mktemp)
trap 'rm -f "$log"' EXIT

for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    echo "fuzz-smoke: $target for ${seconds}s"
    # -print_final_stats prints the exec count; a crash exits non-zero and
    # leaves the input in artifacts/$target/.
    status=0
    cargo fuzz run -O "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 -max_len=4096 >"$log" 2>&1 || status=$?
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done )|SUMMARY|panicked' "$log" || true
    if [ "$status" -ne 0 ]; then
        tail -40 "$log" >&2
        echo "fuzz-smoke: $target FAILED (exit $status); see fuzz/artifacts/$target/" >&2
        exit "$status"
    fi
done
echo "fuzz-smoke: all targets passed"
