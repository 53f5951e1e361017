//! Health, statistics and the list of instances.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::blocking;
use super::error::ApiResult;
use super::extract::Inst;
use super::AppState;
use crate::instance::Slot;

/// `GET /health`: `ok` when every instance is open, `degraded` when some could not be
/// opened (the others still serve; each instance's status and reason are listed).
#[utoipa::path(get, path = "/health", tag = "info",
    responses((status = 200, description = "`{\"status\": \"ok\"|\"degraded\", \"instances\": {...}}`")))]
pub async fn health(State(state): State<Arc<AppState>>) -> Json<Value> {
    let mut instances = serde_json::Map::new();
    let mut degraded = false;
    for (name, slot) in state.instances.slots() {
        let status = match slot {
            Slot::Ready(_) => json!({ "status": "ready" }),
            Slot::Unavailable(reason) => {
                degraded = true;
                json!({ "status": "unavailable", "reason": reason })
            }
        };
        instances.insert(name.to_string(), status);
    }
    Json(json!({
        "status": if degraded { "degraded" } else { "ok" },
        "default_instance": state.instances.default_name(),
        "instances": instances,
    }))
}

/// `GET /db/{instance}/health`: 200 when the instance serves, else a 404 or 503 problem.
#[utoipa::path(get, path = "/db/{instance}/health", tag = "info",
    params(("instance" = String, Path)),
    responses((status = 200, description = "`{\"instance\": ..., \"status\": \"ready\"}`"),
        (status = 503, description = "The instance could not be opened", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn instance_health(inst: Inst) -> Json<Value> {
    Json(json!({ "instance": inst.name(), "status": "ready" }))
}

/// `GET /instances`: every configured instance with its codec and status.
#[utoipa::path(get, path = "/instances", tag = "info",
    responses((status = 200, description = "`{\"instances\": [...]}`")))]
pub async fn instances(State(state): State<Arc<AppState>>) -> Json<Value> {
    let list: Vec<Value> = state
        .instances
        .slots()
        .map(|(name, slot)| match slot {
            Slot::Ready(i) => json!({
                "name": name,
                "status": "ready",
                "codec": i.codec().name(),
                "query": i.config().query,
                "default": name == state.instances.default_name(),
            }),
            Slot::Unavailable(reason) => json!({
                "name": name,
                "status": "unavailable",
                "reason": reason,
                "default": name == state.instances.default_name(),
            }),
        })
        .collect();
    Json(json!({ "instances": list }))
}

/// `GET /stats`: the engine's statistics for the instance.
#[utoipa::path(get, path = "/db/{instance}/stats", tag = "info",
    params(("instance" = String, Path)),
    responses((status = 200, description = "Engine statistics (memtable, tables per level, WAL, caches, compaction)")))]
pub async fn stats(inst: Inst) -> ApiResult<Json<Value>> {
    let name = inst.name().to_string();
    let codec = inst.codec().name().to_string();
    let stats = blocking(move || Ok(inst.db().stats())).await?;
    let mut body = serde_json::to_value(stats).unwrap_or_else(|_| json!({}));
    if let Value::Object(map) = &mut body {
        map.insert("instance".into(), Value::String(name));
        map.insert("codec".into(), Value::String(codec));
    }
    Ok(Json(body))
}

/// `GET /stats_all`: statistics of every table of the instance.
#[utoipa::path(get, path = "/db/{instance}/stats_all", tag = "info",
    params(("instance" = String, Path)),
    responses((status = 200, description = "`{\"instance\": ..., \"stats\": {...}, \"tables\": [...]}`")))]
pub async fn stats_all(inst: Inst) -> ApiResult<Json<Value>> {
    let name = inst.name().to_string();
    let (stats, tables) = blocking(move || Ok((inst.db().stats(), inst.db().stats_all()))).await?;
    Ok(Json(
        json!({ "instance": name, "stats": stats, "tables": tables }),
    ))
}

/// Used by the fallback: every unknown path is a 404 problem.
pub async fn not_found() -> super::error::ApiError {
    super::error::ApiError::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "no route matches this path (see /openapi.json)",
    )
}

/// Used when a path exists but not with this method.
pub async fn method_not_allowed() -> super::error::ApiError {
    super::error::ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "this path does not accept this method (see /openapi.json)",
    )
}
