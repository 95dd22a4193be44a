#!/usr/bin/env bash
# Property-based API testing with Schemathesis against the OpenAPI document: builds the
# release binary, serves the demo register on an ephemeral port with a temporary database,
# signs in as a demo user, creates a bearer token, and runs Schemathesis with that token,
# checking that no response is a server error and every response conforms to the schema.
# Exits non-zero on a failure; always stops the server.
#
#   scripts/schemathesis.sh                      # CI size: 10 examples per operation
#   ST_MAX_EXAMPLES=200 scripts/schemathesis.sh  # longer
#   ST_USER=operatore scripts/schemathesis.sh    # as another demo user
#   CESSIO_BIN=target/debug/cessio scripts/schemathesis.sh  # an already built binary (CI)
set -euo pipefail
cd "$(dirname "$0")/.."
MAX_EXAMPLES="${ST_MAX_EXAMPLES:-10}"
USER_NAME="${ST_USER:-banca}"
PASSWORD="cessio-demo-2024"
TARGET="${CARGO_TARGET_DIR:-target}"
VENV="target/st-venv"

BIN="${CESSIO_BIN:-}"
if [ -z "$BIN" ]; then
    cargo build --release -p cessio
    BIN="$TARGET/release/cessio"
fi
if [ ! -x "$VENV/bin/schemathesis" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet schemathesis
fi

work="$(mktemp -d)"
server=""
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

"$BIN" serve --demo --database-url "sqlite://$work/st.db" \
    --listen 127.0.0.1:0 --clock 2024-04-15T10:00:00 >"$work/out" 2>"$work/err" &
server=$!
base=""
for _ in $(seq 1 300); do
    base="$(sed -n 's|.*in ascolto su \(http://[0-9.:]*\)/.*|\1|p' "$work/out" | head -n 1)"
    [ -n "$base" ] && break
    kill -0 "$server" 2>/dev/null || { cat "$work/err" >&2; exit 1; }
    sleep 0.1
done
[ -n "$base" ] || { echo "the server did not start" >&2; exit 1; }

curl -sf -c "$work/cookies" -H 'content-type: application/json' \
    -d "{\"username\":\"$USER_NAME\",\"password\":\"$PASSWORD\"}" "$base/api/v1/session" >/dev/null
token="$(curl -sf -b "$work/cookies" -H 'content-type: application/json' \
    -d '{"name":"schemathesis"}' "$base/api/v1/tokens" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"

"$VENV/bin/schemathesis" run "$base/api/v1/openapi.json" \
    --url "$base/api/v1" \
    --header "Authorization: Bearer $token" \
    --checks not_a_server_error,response_schema_conformance \
    --max-examples "$MAX_EXAMPLES" \
    --seed "${ST_SEED:-20240415}"
