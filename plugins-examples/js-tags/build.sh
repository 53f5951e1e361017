#!/usr/bin/env bash
# Builds (the path given as $1, by default) plugins-examples/dist/tags.wasm, an extractor component, from tags.js.
# Installs the pinned toolchain (package-lock.json) into this folder's node_modules
# with `npm ci` when it is missing or the lock file changed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$root/plugins-examples/dist/tags.wasm}"
out_dir="$(dirname "$out")"
cd "$here"

lock="$(sha256sum package-lock.json | cut -d' ' -f1)"
stamp=node_modules/.installed-lock-sha256
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$lock" ]; then
    echo "installing the JavaScript toolchain (npm ci)" >&2
    npm ci --no-audit --no-fund --loglevel=error
    echo "$lock" >"$stamp"
fi

mkdir -p "$out_dir"
# No WASI features: the component imports nothing from the host but the lsm:plugin
# types (console output, randomness and clocks are not available to it).
npx --no-install componentize-js tags.js --wit "$root/wit" --world-name extractor \
    --disable random stdio clocks http fetch-event --out "$out.tmp"
mv "$out.tmp" "$out"
echo "built $out ($(wc -c <"$out") bytes)" >&2
