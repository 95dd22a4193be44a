#!/usr/bin/env bash
# Reproduces every figure in BENCHMARKS.md. Prints the machine first, then the tables.
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

cargo build --release -p cessio
./target/release/cessio bench --backends sqlite,postgres --writers 1,16,64,256 --seconds "$SECONDS_PER_RUN"
echo
./target/release/cessio bench-queries --operations "$QUERY_OPERATIONS"
./target/release/cessio bench-queries --database-url "$CESSIO_BENCH_POSTGRES_URL" --operations "$QUERY_OPERATIONS" | tail -n +3
