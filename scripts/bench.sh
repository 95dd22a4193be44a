#!/usr/bin/env bash
# Reproduces every figure in BENCHMARKS.md. Prints the machine first, then the tables.
# Needs curl (the HTTP load waits for the server with it).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${SECONDS_PER_RUN:-5}"
export CESSIO_BENCH_POSTGRES_URL="${CESSIO_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"

echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
echo "cores: $(nproc); memory: $(free -h | awk '/Mem:/ {print $2}')"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "disk: $(df -h target 2>/dev/null | awk 'NR==2 {print $1, $2}')"
echo "postgres: $(psql "$CESSIO_BENCH_POSTGRES_URL" -Atc 'show server_version' 2>/dev/null || echo unknown)"
echo

QUERY_OPERATIONS="${QUERY_OPERATIONS:-1000000}"

cargo build --release -p cessio -p cessio-bench
./target/release/cessio-bench bench --backends sqlite,postgres --writers 1,16,64,256 --seconds "$SECONDS_PER_RUN"
echo
./target/release/cessio-bench bench-queries --operations "$QUERY_OPERATIONS"
./target/release/cessio-bench bench-queries --database-url "$CESSIO_BENCH_POSTGRES_URL" --operations "$QUERY_OPERATIONS" | tail -n +3

# National scale (BENCHMARKS.md, "National register"): generation and the read functions on
# the largest bank, both backends, at NATIONAL_SCALE (1.0 = 13.5 million operations).
NATIONAL_SCALE="${NATIONAL_SCALE:-0.1}"
REPLAY_SCALE="${REPLAY_SCALE:-0.002}"
echo
./target/release/cessio-bench bench-queries --database-url sqlite://target/bench/national.db --scale "$NATIONAL_SCALE" \
    2> >(tee target/bench/national-sqlite.log >&2)
echo
./target/release/cessio-bench bench-queries --database-url "$CESSIO_BENCH_POSTGRES_URL" --scale "$NATIONAL_SCALE" --keep \
    2> >(tee target/bench/national-postgres.log >&2)
# The one-day F4 of the HTTP load is narrowed to the cedente bench-queries found busiest,
# on its last day (the same register on both backends: the generator is seeded).
CEDENTE="$(sed -n 's/^busiest cedente: //p' target/bench/national-sqlite.log | head -n1)"
CEDENTE_DAY="$(sed -n 's/^its last day: //p' target/bench/national-sqlite.log | head -n1)"

# Replay through the app layer (users signed in, answers by group), on a fresh register.
echo
rm -f target/bench/replay.db target/bench/replay.db-wal target/bench/replay.db-shm
./target/release/cessio-bench replay --database-url sqlite://target/bench/replay.db --scale "$REPLAY_SCALE" --clients 32

# HTTP load on the national register, each backend: F1 and F4 of the largest bank over
# loopback, then F4 alone, then the CSV export, and the server's memory. Bounded:
# LOAD_REQUESTS requests or LOAD_F1_SECONDS / LOAD_SECONDS seconds per run.
load() {
    local backend="$1"; shift
    ARGS=("$@")
    ./target/release/cessio serve "${ARGS[@]}" --listen 127.0.0.1:18080 --clock 2023-04-03T10:00 &
    SERVER=$!
    trap 'kill $SERVER 2>/dev/null || true' EXIT
    for _ in $(seq 1 300); do curl -sf http://127.0.0.1:18080/healthz >/dev/null && break; sleep 0.1; done
    # F1 of the largest bank takes seconds at scale: few connections, or every request
    # would wait past the server's 60 s bound. F4 alone shows the server's light-read rate.
    for run in "f1,f4 ${LOAD_F1_CONNECTIONS:-2} ${LOAD_F1_SECONDS:-60}" "f4 ${LOAD_CONNECTIONS:-64} ${LOAD_SECONDS:-20}"; do
        read -r reads connections seconds <<<"$run"
        echo
        echo "HTTP load, $backend, reads $reads, $connections connections:"
        ./target/release/cessio-bench loadtest --addr 127.0.0.1:18080 "${ARGS[@]}" --reads "$reads" \
            ${CEDENTE:+--cedente "$CEDENTE"} ${CEDENTE_DAY:+--day "$CEDENTE_DAY"} \
            --connections "$connections" --requests "${LOAD_REQUESTS:-200000}" \
            --seconds "$seconds" --server-pid "$SERVER" || true
    done
    # F4's CSV export of the register's last 50 days (49,500 rows at 0.1), streamed: the
    # server's memory under concurrent exports.
    echo
    echo "HTTP load, $backend, CSV export, ${LOAD_CSV_CONNECTIONS:-4} connections:"
    ./target/release/cessio-bench loadtest --addr 127.0.0.1:18080 "${ARGS[@]}" --reads csv \
        --day 2023-03-31 --export-days 50 --connections "${LOAD_CSV_CONNECTIONS:-4}" \
        --requests "${LOAD_REQUESTS:-200000}" --seconds "${LOAD_SECONDS:-20}" --server-pid "$SERVER" || true
    kill $SERVER
    wait $SERVER 2>/dev/null || true
}
load sqlite --database-url sqlite://target/bench/national.db
load postgres --database-url "$CESSIO_BENCH_POSTGRES_URL" --schema bench_national
