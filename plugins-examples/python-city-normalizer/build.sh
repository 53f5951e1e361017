#!/usr/bin/env bash
# Builds (the path given as $1, by default) plugins-examples/dist/city-normalizer.wasm, an extractor component, from app.py
# and normalize.py. Installs componentize-py (the version pinned in requirements.txt)
# with pip if the Python interpreter ($PYTHON, default python3) lacks it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
wit="$root/wit"
out="${1:-$root/plugins-examples/dist/city-normalizer.wasm}"
out_dir="$(dirname "$out")"
python="${PYTHON:-python3}"

wanted="$(sed -n 's/^componentize-py==//p' "$here/requirements.txt")"
installed="$("$python" -c 'import importlib.metadata as m; print(m.version("componentize-py"))' 2>/dev/null || true)"
if [ "$installed" != "$wanted" ]; then
    echo "installing componentize-py $wanted (found: ${installed:-none})" >&2
    "$python" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -r "$here/requirements.txt"
fi

mkdir -p "$out_dir"
# componentize-py packs the folders of its Python path and writes bytecode next to
# the sources: build from a copy holding the app's modules and nothing else.
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp "$here/app.py" "$here/normalize.py" "$stage/"
# Through the interpreter rather than the `componentize-py` script, which a fresh
# install may not have put on PATH.
"$python" - -d "$wit" -w extractor componentize app -p "$stage" -o "$out.tmp" <<'PY'
import sys
from componentize_py import script
sys.argv[0] = "componentize-py"
sys.exit(script())
PY
mv "$out.tmp" "$out"
echo "built $out ($(wc -c <"$out") bytes)" >&2
