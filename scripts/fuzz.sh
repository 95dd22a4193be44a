#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for SECONDS each (default 30) and prints what it did.
# Installs cargo-fuzz when missing. cargo-fuzz needs nightly compiler flags: on a stable
# toolchain RUSTC_BOOTSTRAP=1 unlocks them. A crash stops the script with a non-zero exit;
# its input is kept under fuzz/artifacts/<target>/ (reproduce with
# `RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/<file>`).
#
#   scripts/fuzz.sh            # 30 s per target
#   scripts/fuzz.sh 300        # 5 minutes per target
#   FUZZ_TARGETS="cf money" scripts/fuzz.sh 60
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${1:-30}"
export RUSTC_BOOTSTRAP=1
# A build directory of its own: sanitizer flags would otherwise rebuild the main one.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/fuzz/target}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

targets="${FUZZ_TARGETS:-$(cd fuzz && cargo fuzz list)}"
cd fuzz
cargo fuzz build --release $targets >/dev/null 2>&1 || cargo fuzz build --release
for t in $targets; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="$(mktemp)"
    echo "== $t (${SECONDS_EACH}s)"
    if ! cargo fuzz run --release "$t" "corpus/$t" -- \
        -max_total_time="$SECONDS_EACH" -max_len=4096 -print_final_stats=1 \
        -artifact_prefix="artifacts/$t/" >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "FAILED: $t found a crash; input in fuzz/artifacts/$t/" >&2
        exit 1
    fi
    grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added|stat::peak_rss_mb)' "$log" | sed "s/^/$t /"
    grep -E 'cov: [0-9]+' "$log" | tail -n 1 | sed "s/^/$t /"
    rm -f "$log"
done
echo "OK: no crash in ${SECONDS_EACH}s per target"
