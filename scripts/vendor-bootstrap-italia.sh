#!/usr/bin/env bash
# Refreshes the vendored Bootstrap Italia build served by the web UI, so that building and
# running Cessio needs no npm. Usage: scripts/vendor-bootstrap-italia.sh [VERSION]
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:-2.18.3}"
dest=crates/cessio-web/assets/bootstrap-italia
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm init -y >/dev/null && npm install --no-audit --no-fund "bootstrap-italia@$version" >/dev/null)
src="$work/node_modules/bootstrap-italia"

rm -rf "$dest"
mkdir -p "$dest/css" "$dest/js" "$dest/svg" "$dest/fonts"
cp "$src/LICENSE" "$dest/LICENSE"
cp "$src/dist/css/bootstrap-italia.min.css" "$dest/css/"
cp "$src/dist/js/bootstrap-italia.bundle.min.js" "$dest/js/"
cp "$src/dist/svg/sprites.svg" "$dest/svg/"
# Only the woff2 fonts: every browser the platform supports reads them.
for family in Titillium_Web Roboto_Mono Lora; do
  mkdir -p "$dest/fonts/$family"
  cp "$src/dist/fonts/$family"/*.woff2 "$dest/fonts/$family/"
  cp "$src/dist/fonts/$family"/*.txt "$dest/fonts/$family/" 2>/dev/null || true
done
echo "$version" > "$dest/VERSION"
echo "bootstrap-italia $version vendored into $dest"
