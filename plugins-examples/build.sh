#!/usr/bin/env bash
# Builds the example plugins into plugins-examples/dist/{example}.wasm.
#
#   plugins-examples/build.sh                     # every example
#   plugins-examples/build.sh rust-email-domain   # only the ones named
#
# How an example is built, by what its directory holds:
#   build.sh    its own script, run as `bash EXAMPLE/build.sh OUT`: it writes the
#               component to the path OUT (here dist/EXAMPLE.wasm) and fails loudly.
#               This is the hook for examples in other languages (Python, JavaScript,
#               WAT, ...): a new example only needs such a script.
#   Cargo.toml  a Rust crate of this directory's workspace (plugins-examples/Cargo.toml),
#               built with `cargo build --release --target wasm32-wasip2`; the
#               target is installed with rustup when missing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dist="$here/dist"
target=wasm32-wasip2

fail() {
    echo "plugins-examples/build.sh: $*" >&2
    exit 1
}

if [ "$#" -gt 0 ]; then
    examples=("$@")
else
    examples=()
    for dir in "$here"/*/; do
        name="$(basename "$dir")"
        case "$name" in dist | target | node_modules) continue ;; esac
        examples+=("$name")
    done
fi

scripted=()
crates=()
rust_examples=()
for name in "${examples[@]}"; do
    dir="$here/$name"
    [ -d "$dir" ] || fail "no example $name (a directory of plugins-examples/)"
    if [ -f "$dir/build.sh" ]; then
        scripted+=("$name")
    elif [ -f "$dir/Cargo.toml" ]; then
        crate="$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$dir/Cargo.toml" | head -n 1)"
        [ -n "$crate" ] || fail "$name/Cargo.toml has no package name"
        crates+=("$crate")
        rust_examples+=("$name")
    else
        fail "$name has neither a build.sh nor a Cargo.toml: do not know how to build it"
    fi
done

mkdir -p "$dist"

if [ "${#crates[@]}" -gt 0 ]; then
    command -v cargo >/dev/null || fail "cargo not found (install Rust with rustup)"
    if [ ! -d "$(rustc --print target-libdir --target "$target" 2>/dev/null || echo /nonexistent)" ]; then
        command -v rustup >/dev/null ||
            fail "the $target target is missing and rustup is not there to add it"
        echo "plugins-examples/build.sh: installing the $target target" >&2
        rustup target add "$target" || fail "rustup target add $target failed"
    fi
    # A target directory inherited from a caller (e.g. the server's tests) is not ours.
    export CARGO_TARGET_DIR="${LSM_EXAMPLES_TARGET_DIR:-$here/target}"
    packages=()
    for crate in "${crates[@]}"; do packages+=(-p "$crate"); done
    cargo build --manifest-path "$here/Cargo.toml" --locked --release --target "$target" \
        "${packages[@]}" || fail "cargo build failed"
    for i in "${!crates[@]}"; do
        built="$CARGO_TARGET_DIR/$target/release/${crates[$i]//-/_}.wasm"
        [ -s "$built" ] || fail "$built was not built (is the crate a cdylib?)"
        cp "$built" "$dist/${rust_examples[$i]}.wasm.$$"
        mv "$dist/${rust_examples[$i]}.wasm.$$" "$dist/${rust_examples[$i]}.wasm"
    done
fi

for name in "${scripted[@]}"; do
    rm -f "$dist/$name.wasm"
    bash "$here/$name/build.sh" "$dist/$name.wasm" || fail "$name/build.sh failed"
    [ -s "$dist/$name.wasm" ] || fail "$name/build.sh did not write $dist/$name.wasm"
done

for name in "${examples[@]}"; do
    echo "plugins-examples/dist/$name.wasm ($(wc -c <"$dist/$name.wasm") bytes)"
done
