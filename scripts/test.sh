#!/usr/bin/env bash
# The test command: every test of the workspace on SQLite and PostgreSQL, and the user
# guide's journey in headless Chromium. Installs what the browser tests need (Debian's
# chromium, Node.js) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

export CESSIO_TEST_DATABASE_URL="${CESSIO_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing ${need[*]} for the browser tests" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

cargo test --workspace "$@"
