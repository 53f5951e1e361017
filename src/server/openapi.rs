//! The OpenAPI description served at `/openapi.json`.
//!
//! Routes are described once, under `/db/{instance}/...`; the root routes that serve the
//! default instance (`/keys`, `/stats`, ...) are derived from them here, so the two can
//! never disagree.

use axum::Json;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;

use super::{admin, indexes, info, keys, metrics, plugins};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "lsm",
        description = "An LSM-tree key-value store. Routes under /db/{instance}/ address a named instance; the same routes at the root address the default instance. Errors are application/problem+json (RFC 9457)."
    ),
    paths(
        info::health, info::instances, info::instance_health, info::stats, info::stats_all,
        keys::get_key, keys::put_key, keys::put_key_at, keys::delete_key, keys::put_batch,
        keys::delete_batch, keys::list_keys, keys::scan, keys::search,
        admin::compact, admin::verify,
        plugins::list, plugins::show, plugins::upload, plugins::delete, plugins::test, metrics::serve,
        indexes::list, indexes::show, indexes::create, indexes::drop, indexes::rebuild,
        indexes::task, indexes::tasks, indexes::query,
    ),
    components(schemas(super::error::Problem, keys::PutBatch, keys::DeleteBatch)),
    tags((name = "keys"), (name = "info"), (name = "admin"), (name = "plugins"), (name = "indexes"))
)]
struct ApiDoc;

/// The whole description, with the root copies of the per-instance routes.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    let per_instance: Vec<(String, utoipa::openapi::PathItem)> = doc
        .paths
        .paths
        .iter()
        .filter(|(path, _)| path.starts_with("/db/{instance}/") && *path != "/db/{instance}/health")
        .map(|(p, item)| (p.clone(), item.clone()))
        .collect();
    for (path, mut item) in per_instance {
        let root = path.trim_start_matches("/db/{instance}").to_string();
        for op in operations(&mut item) {
            if let Some(params) = &mut op.parameters {
                params.retain(|p: &Parameter| {
                    !(p.name == "instance" && p.parameter_in == ParameterIn::Path)
                });
            }
            if let Some(id) = &mut op.operation_id {
                id.push_str("_default");
            }
        }
        doc.paths.paths.insert(root, item);
    }
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    doc
}

fn operations(item: &mut utoipa::openapi::PathItem) -> Vec<&mut utoipa::openapi::path::Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
        item.head.as_mut(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// `GET /openapi.json`.
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}
