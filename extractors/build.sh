#!/usr/bin/env bash
# Builds the standard extractors (json_path, bson_path, raw) as WebAssembly components
# into extractors/dist/{name}.wasm.
#
#   extractors/build.sh            # release build (what the server and tests use)
#
# Needs the `wasm32-wasip2` Rust target; it is installed with rustup when missing.
# The guest crates build in their own workspace (extractors/Cargo.toml) and target
# directory (extractors/target, or $LSM_GUEST_TARGET_DIR), never the server's.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
target=wasm32-wasip2

fail() {
    echo "extractors/build.sh: $*" >&2
    exit 1
}

command -v cargo >/dev/null || fail "cargo not found (install Rust with rustup)"
if [ ! -d "$(rustc --print target-libdir --target "$target" 2>/dev/null || echo /nonexistent)" ]; then
    command -v rustup >/dev/null ||
        fail "the $target target is missing and rustup is not there to add it"
    echo "extractors/build.sh: installing the $target target" >&2
    rustup target add "$target" || fail "rustup target add $target failed"
fi

# A target directory inherited from a caller (e.g. the server's tests) is not ours.
export CARGO_TARGET_DIR="${LSM_GUEST_TARGET_DIR:-$here/target}"
cargo build --manifest-path "$here/Cargo.toml" --locked --release --target "$target" \
    -p lsm-extractor-json-path -p lsm-extractor-bson-path -p lsm-extractor-raw ||
    fail "cargo build failed"

mkdir -p "$here/dist"
for name in json_path bson_path raw; do
    built="$CARGO_TARGET_DIR/$target/release/lsm_extractor_$name.wasm"
    [ -s "$built" ] || fail "$built was not built"
    cp "$built" "$here/dist/$name.wasm.$$"
    mv "$here/dist/$name.wasm.$$" "$here/dist/$name.wasm"
    echo "extractors/dist/$name.wasm ($(wc -c <"$here/dist/$name.wasm") bytes)"
done
