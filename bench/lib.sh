# Sourced by the bench scripts (needs ROOT, the repository root).

# release_binaries: sets TARGET_DIR, ROOST and BENCH. ROOST_BIN and BENCH_BIN
# (both set) run prebuilt binaries, e.g. a build of an older commit for a
# before/after comparison, and skip the build; otherwise roost and roost-bench
# are built in release mode in CARGO_TARGET_DIR when set (a release target
# shared by several work trees), else in the workspace's target/.
release_binaries() {
    TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
    if [ -z "${ROOST_BIN:-}" ] || [ -z "${BENCH_BIN:-}" ]; then
        echo "building roost and roost-bench (release, $TARGET_DIR)" >&2
        (cd "$ROOT" && cargo build --release -p roost -p roost-bench) || return
    fi
    ROOST=${ROOST_BIN:-$TARGET_DIR/release/roost}
    BENCH=${BENCH_BIN:-$TARGET_DIR/release/roost-bench}
    mkdir -p "$TARGET_DIR"
}
