//! Rust bindings of `wit/plugin.wit`, generated at build time.
#![allow(missing_docs)]

/// The `extractor` world.
pub mod extractor {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "extractor",
    });
}

/// The `codec` world.
pub mod codec {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "codec",
    });
}
