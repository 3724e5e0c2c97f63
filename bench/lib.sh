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

# stop_pid PID: SIGTERM, then wait for it (no error when it is gone already).
stop_pid() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# free_port: a TCP port free on 127.0.0.1 right now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_listening PID PORT NAME LOGFILE [SECONDS]: waits until PORT listens;
# fails with the log when the process exits or after SECONDS (default 60).
wait_listening() {
    local tries=$(( ${5:-60} * 20 ))
    for _ in $(seq "$tries"); do
        if ! kill -0 "$1" 2>/dev/null; then
            echo "$3 exited at start-up:" >&2; cat "$4" >&2; return 1
        fi
        if [ -n "$(ss -Hltn "sport = :$2" 2>/dev/null)" ]; then return 0; fi
        sleep 0.05
    done
    echo "$3 is not listening on $2 after ${5:-60} s" >&2; cat "$4" >&2; return 1
}
