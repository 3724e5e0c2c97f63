#!/usr/bin/env bash
# The one test command for Roost, run by developers and by CI (.ci/run).
#
# Sections, cheapest first, stopping at the first failure:
#   deps        scripts/install-test-deps.sh (mosquitto clients, paho-mqtt, MQTT.js)
#   fmt         cargo fmt --all -- --check
#   spec        python3 scripts/spec_coverage.py --check (--strict with SPEC_STRICT=1)
#   clippy      cargo clippy --workspace --all-targets -- -D warnings, then
#               scripts/check-features.sh (no tokio under the protocol crates;
#               every cargo feature alone and none, warning-free)
#   unit        cargo nextest run (or cargo test) on the workspace, except the
#               integration tests of the roost binary, which run under interop
#   doc         cargo test --doc --workspace
#   build       cargo build -p roost (the binary the interop suites start)
#   packaging   scripts/check-packaging.sh (systemd unit, Dockerfile and its config)
#   interop-rs  crates/roost/tests/*.rs (rumqttc and raw-packet tests against the binary)
#   interop-py  pytest interop/python (paho-mqtt, mosquitto_pub/sub)
#   interop-js  node --test in interop/node (MQTT.js)
#   dashboard   the web dashboard in headless Chromium (Debian's chromium + Playwright for
#               Python, installed by interop/dashboard/install.sh when missing); screenshots
#               in target/dashboard-screenshots
#   store-redis cargo test -p roost-store --all-features (Redis backend, real redis-server)
#   management  the management API end to end: roost ctl against the binary,
#               mosquitto_pub/sub, promtool check metrics (crates/roost/tests/management.rs;
#               across cluster nodes on a private redis-server: management_cluster.rs;
#               roost-admin's in-process API tests run under unit)
#   cluster     cluster mode: roost-cluster's tests, then 3 roost nodes + a private
#               redis-server (crates/roost/tests/cluster.rs; Redis failures:
#               cluster_resil.rs; a dead node's sessions adopted: cluster_adopt.rs;
#               janitor jobs taken over (will times, a paused janitor): cluster_janitor.rs;
#               rejoin, claim races, protocol versions: cluster_ops.rs),
#               then the same tests on a private 3-primary Redis Cluster
#               (tests/cluster_on_redis_cluster.rs, cluster_adopt_on_redis_cluster.rs,
#               cluster_janitor_on_redis_cluster.rs) and
#               on Sentinel (tests/cluster_sentinel.rs), a Redis Cluster primary failover
#               (tests/cluster_failover.rs); redis-server, redis-cli from deps
#   fuzz        scripts/fuzz-smoke.sh, when it exists
#
# Environment:
#   INTEROP=0        skip deps and the interop-* sections (default 1)
#   FUZZ_SECONDS=N   seconds per fuzz target; 0 skips fuzzing (default 30)
#   SPEC_STRICT=0    do not fail when a statement has neither a test nor an exemption (default 1)
#   ONLY="a b"       run only the named sections (e.g. ONLY="build interop-py")
#
# What a fresh machine needs (printed at the start too):
#   - a Rust toolchain with cargo, rustfmt and clippy; cargo-nextest is used when installed
#   - about 10 GB of free disk under target/ (a full run left 7 GB there)
#   - network to the package registries: crates.io, and for the deps section
#     Debian's apt (mosquitto, mosquitto-clients, redis-server, openssl, as root or
#     with sudo), PyPI (paho-mqtt, pytest: installed with pip for the user running
#     it, globally when root) and npm (MQTT.js, into interop/node/node_modules)
#   - the fuzz section installs cargo-fuzz into ~/.cargo/bin when it is missing
# Temporary files (test brokers' data directories, certificates, configs) go to a
# private TMPDIR that is removed when the script exits, whatever the outcome.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

INTEROP=${INTEROP:-1}
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
SPEC_STRICT=${SPEC_STRICT:-1}
ONLY=${ONLY:-}
export RUST_BACKTRACE=${RUST_BACKTRACE:-1}
export FUZZ_SECONDS
# Incremental artefacts double the target directory and buy nothing in a
# one-shot CI build; developers who want them can set CARGO_INCREMENTAL=1.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

# Bounds for whole suites, so a hung test cannot eat the CI budget (90 min).
SUITE_TIMEOUT=${SUITE_TIMEOUT:-1200}

summary=()
run_start=$SECONDS

# Every suite creates its temporary directories through TMPDIR (tempfile,
# Python's tempfile, Node's os.tmpdir()); a killed test leaves them behind,
# so they all go under one directory removed on exit.
TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/roost-test.XXXXXX")
export TMPDIR=$TEST_TMP
trap 'rm -rf "$TEST_TMP"' EXIT

printf 'test.sh: needs cargo (+ rustfmt, clippy), ~10 GB free under target/, and for the\n'
printf '  deps section network to apt, PyPI and npm (INTEROP=0 skips it); fuzzing installs\n'
printf '  cargo-fuzz into ~/.cargo/bin (FUZZ_SECONDS=0 skips it). Temporary files: %s\n' "$TEST_TMP"

print_summary() {
    printf '\n==== summary\n'
    local line
    for line in "${summary[@]}"; do printf '  %s\n' "$line"; done
    printf '  total %ds\n' $((SECONDS - run_start))
}

# section NAME COMMAND...: runs one step with a header and a timing line.
section() {
    local name=$1
    shift
    if [ -n "$ONLY" ] && [[ " $ONLY " != *" $name "* ]]; then
        return 0
    fi
    printf '\n==== %s: %s\n' "$name" "$*"
    local start=$SECONDS rc=0
    "$@" || rc=$?
    local took=$((SECONDS - start))
    if [ "$rc" -ne 0 ]; then
        summary+=("$(printf '%-11s FAILED (exit %d) after %ds' "$name" "$rc" "$took")")
        print_summary
        printf '\ntest.sh: section "%s" failed\n' "$name" >&2
        exit "$rc"
    fi
    summary+=("$(printf '%-11s ok  %4ds' "$name" "$took")")
}

skip() {
    summary+=("$(printf '%-11s skipped (%s)' "$1" "$2")")
}

lint() {
    cargo clippy --workspace --all-targets -- -D warnings && bash scripts/check-features.sh
}

have_nextest() { cargo nextest --version >/dev/null 2>&1; }

# The integration tests of the roost binary need the built broker; they run in
# the interop-rs section so that INTEROP=0 leaves them out, except the ones the
# cluster and management sections run (they need redis-server, promtool).
NEXTEST_ROOST_TESTS='package(roost) & kind(test)'
NEXTEST_BINARY_TESTS="$NEXTEST_ROOST_TESTS & !binary(cluster) & !binary(cluster_resil) & !binary(cluster_adopt) & !binary(cluster_janitor) & !binary(cluster_on_redis_cluster) & !binary(cluster_adopt_on_redis_cluster) & !binary(cluster_janitor_on_redis_cluster) & !binary(cluster_sentinel) & !binary(cluster_ops) & !binary(cluster_failover) & !binary(management) & !binary(management_cluster)"

unit_tests() {
    if have_nextest; then
        cargo nextest run --workspace --no-tests=warn -E "not ($NEXTEST_ROOST_TESTS)"
    else
        cargo test --workspace --exclude roost --lib --bins --tests \
            && cargo test -p roost --bins
    fi
}

doc_tests() {
    cargo test --doc --workspace
}

target_dir() {
    cargo metadata --format-version 1 --no-deps \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'
}

build_binary() {
    cargo build -p roost || return
    local dir
    dir=$(target_dir) || return
    ROOST_BIN="$dir/debug/roost"
    export ROOST_BIN
    [ -x "$ROOST_BIN" ] || { echo "no binary at $ROOST_BIN" >&2; return 1; }
    echo "ROOST_BIN=$ROOST_BIN"
}

interop_rust() {
    if have_nextest; then
        timeout -k 30 "$SUITE_TIMEOUT" cargo nextest run -p roost --no-tests=warn -E "$NEXTEST_BINARY_TESTS"
    else
        timeout -k 30 "$SUITE_TIMEOUT" cargo test -p roost --test '*'
    fi
}

management_tests() {
    { command -v promtool && command -v redis-server; } >/dev/null 2>&1 \
        || bash scripts/install-test-deps.sh
    timeout -k 30 "$SUITE_TIMEOUT" cargo test -p roost --test management \
        && timeout -k 30 "$SUITE_TIMEOUT" cargo test -p roost --test management_cluster
}

interop_python() {
    timeout -k 30 "$SUITE_TIMEOUT" python3 -m pytest interop/python
}

# The web dashboard in headless Chromium (Debian's package, driven by
# Playwright for Python; interop/dashboard/install.sh installs both when
# missing). Screenshots are kept in target/dashboard-screenshots.
dashboard_tests() {
    bash interop/dashboard/install.sh \
        && timeout -k 30 "$SUITE_TIMEOUT" python3 -m pytest interop/dashboard
}

interop_node() {
    (cd interop/node && timeout -k 30 "$SUITE_TIMEOUT" node --test --test-concurrency=2)
}

spec_coverage() {
    if [ "$SPEC_STRICT" = 1 ]; then
        python3 scripts/spec_coverage.py --strict
    else
        python3 scripts/spec_coverage.py --check
    fi
}

# The Redis backend of roost-store against a real redis-server (each test starts
# its own on a free loopback port); not in the default feature set.
store_redis() {
    cargo test -p roost-store --all-features
}

cluster_tests() {
    { command -v redis-server && command -v redis-cli; } >/dev/null 2>&1 \
        || bash scripts/install-test-deps.sh
    cargo test -p roost-cluster \
        && timeout -k 30 "$SUITE_TIMEOUT" cargo test -p roost --test cluster \
        && timeout -k 30 "$SUITE_TIMEOUT" cargo test -p roost --test cluster_resil \
        && timeout -k 30 "$SUITE_TIMEOUT" cargo test -p roost --test cluster_adopt \
        && timeout -k 30 "$SUITE_TIMEOUT" cargo test -p roost --test cluster_janitor \
        && timeout -k 30 "$SUITE_TIMEOUT" cargo test -p roost --test cluster_ops \
        && timeout -k 30 "$SUITE_TIMEOUT" cargo test -p roost --test cluster_on_redis_cluster \
        && timeout -k 30 "$SUITE_TIMEOUT" cargo test -p roost --test cluster_adopt_on_redis_cluster \
        && timeout -k 30 "$SUITE_TIMEOUT" cargo test -p roost --test cluster_janitor_on_redis_cluster \
        && timeout -k 30 "$SUITE_TIMEOUT" cargo test -p roost --test cluster_sentinel \
        && timeout -k 30 "$SUITE_TIMEOUT" cargo test -p roost --test cluster_failover
}

fuzz_smoke() {
    bash scripts/fuzz-smoke.sh
}

if [ "$INTEROP" = 1 ]; then
    section deps scripts/install-test-deps.sh
else
    skip deps "INTEROP=0"
fi
section fmt cargo fmt --all -- --check
section spec spec_coverage
section clippy lint
section unit unit_tests
section doc doc_tests
if [ "$INTEROP" = 1 ]; then
    section build build_binary
    section packaging scripts/check-packaging.sh
    section interop-rs interop_rust
    section interop-py interop_python
    section interop-js interop_node
    section dashboard dashboard_tests
    section management management_tests
    section store-redis store_redis
    section cluster cluster_tests
else
    skip interop "INTEROP=0"
fi
if [ ! -f scripts/fuzz-smoke.sh ]; then
    skip fuzz "no scripts/fuzz-smoke.sh"
elif [ "$FUZZ_SECONDS" = 0 ]; then
    skip fuzz "FUZZ_SECONDS=0"
else
    section fuzz fuzz_smoke
fi

print_summary
printf '\ntest.sh: all sections passed\n'
