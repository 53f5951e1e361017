//! Secondary index routes: `POST /query`, the index admin routes and `/tasks`.
//!
//! Creating, dropping and rebuilding an index answer `202 Accepted` with the task and
//! a `Location` to poll (`GET /tasks/{id}`); the index is queryable once its build is
//! done. A query no index can answer is refused: there is no scan fallback.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::blocking;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiQuery, Inst, NameParam};
use super::keys::{render_entry, style, FormatParams};
use super::metrics::EngineOp;
use crate::index::{IndexDef, IndexError, QueryRequest, TaskInfo};

/// `202 Accepted` with the task and where to follow it.
fn accepted(inst: &Inst, task: TaskInfo) -> Response {
    let location = format!("/db/{}/tasks/{}", inst.name(), task.id);
    let mut response = (StatusCode::ACCEPTED, Json(json!({ "task": task }))).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// `GET /indexes`: every index of the instance.
#[utoipa::path(get, path = "/db/{instance}/indexes", tag = "indexes",
    params(("instance" = String, Path)),
    responses((status = 200, description = "`{\"indexes\": [...]}`: definitions, state (ready, building, rebuilding), source (file, api), skipped records")))]
pub async fn list(inst: Inst) -> ApiResult<Json<Value>> {
    let instance = inst.shared();
    let list = blocking(move || Ok(instance.indexes()?.list())).await?;
    Ok(Json(json!({ "indexes": list })))
}

/// `GET /indexes/{name}`: one index.
#[utoipa::path(get, path = "/db/{instance}/indexes/{name}", tag = "indexes",
    params(("instance" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "The index"),
        (status = 404, description = "No such index", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn show(inst: Inst, NameParam(name): NameParam) -> ApiResult<Json<Value>> {
    let instance = inst.shared();
    let info = blocking(move || Ok(instance.indexes()?.get(&name)?)).await?;
    Ok(Json(json!(info)))
}

/// `POST /indexes`: creates an index and builds it over the existing data in the
/// background.
#[utoipa::path(post, path = "/db/{instance}/indexes", tag = "indexes",
    params(("instance" = String, Path)), security(("bearer" = [])),
    request_body(description = "`{\"index_name\", \"scope_prefix\", \"index_type\": \"equality|range|text\", \"extractor\": {\"type\": \"json_path\", \"path\": \"$.city\"}, \"on_error\": \"reject|skip\"}`"),
    responses((status = 202, description = "`{\"task\": ...}`, `Location: /db/{instance}/tasks/{id}`"),
        (status = 409, description = "The name is taken", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid definition", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn create(inst: Inst, ApiJson(body): ApiJson<Value>) -> ApiResult<Response> {
    let def: IndexDef = serde_json::from_value(body)
        .map_err(|e| ApiError::invalid_body(format!("index definition: {e}")))?;
    let instance = inst.shared();
    let task = blocking(move || match instance.indexes()?.create(def) {
        Ok(task) => Ok(task),
        Err(IndexError::Invalid(m)) => Err(ApiError::invalid_body(m)),
        Err(e) => Err(e.into()),
    })
    .await?;
    tracing::info!(instance = %inst.name(), index = %task.index, task = task.id, "index created; building");
    Ok(accepted(&inst, task))
}

/// `DELETE /indexes/{name}`: drops an index (it stops being maintained and queried at
/// once; its records are deleted in the background).
#[utoipa::path(delete, path = "/db/{instance}/indexes/{name}", tag = "indexes",
    params(("instance" = String, Path), ("name" = String, Path)), security(("bearer" = [])),
    responses((status = 202, description = "`{\"task\": ...}` deleting the records"),
        (status = 409, description = "Defined in indexes_file", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn drop(inst: Inst, NameParam(name): NameParam) -> ApiResult<Response> {
    let instance = inst.shared();
    let task = blocking(move || Ok(instance.indexes()?.drop_api(&name)?)).await?;
    tracing::info!(instance = %inst.name(), index = %task.index, "index dropped");
    Ok(accepted(&inst, task))
}

/// `POST /indexes/{name}/rebuild`: builds a new generation (without dead postings) in
/// the background and swaps it in when done; the index keeps serving meanwhile.
#[utoipa::path(post, path = "/db/{instance}/indexes/{name}/rebuild", tag = "indexes",
    params(("instance" = String, Path), ("name" = String, Path)), security(("bearer" = [])),
    responses((status = 202, description = "`{\"task\": ...}`, `Location: /db/{instance}/tasks/{id}`")))]
pub async fn rebuild(inst: Inst, NameParam(name): NameParam) -> ApiResult<Response> {
    let instance = inst.shared();
    let task = blocking(move || Ok(instance.indexes()?.rebuild(&name)?)).await?;
    Ok(accepted(&inst, task))
}

/// `GET /tasks/{id}`: a background task's progress.
#[utoipa::path(get, path = "/db/{instance}/tasks/{id}", tag = "indexes",
    params(("instance" = String, Path), ("id" = u64, Path)),
    responses((status = 200, description = "`{\"id\", \"kind\", \"index\", \"state\": \"running|done|failed|cancelled\", \"done\", \"total\", ...}`"),
        (status = 404, description = "No such task", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn task(inst: Inst, Path(params): Path<Vec<(String, String)>>) -> ApiResult<Json<Value>> {
    let id = params
        .iter()
        .find(|(k, _)| k == "id")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::bad_parameter(format!("task id {id:?} is not a number")))?;
    let info = inst.indexes()?.task(id).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "task-not-found",
            format!("no task {id} (tasks are kept in memory until the server restarts)"),
        )
    })?;
    Ok(Json(json!(info)))
}

/// `GET /tasks`: the instance's recent tasks.
#[utoipa::path(get, path = "/db/{instance}/tasks", tag = "indexes",
    params(("instance" = String, Path)),
    responses((status = 200, description = "`{\"tasks\": [...]}`")))]
pub async fn tasks(inst: Inst) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "tasks": inst.indexes()?.tasks() })))
}

/// `POST /query`: one page of an indexed query.
#[utoipa::path(post, path = "/db/{instance}/query", tag = "indexes",
    params(("instance" = String, Path), FormatParams),
    request_body(description = "`{\"index\": \"by_city\", \"term\": \"PortoAlegre\"}`, `{\"index\": \"by_age\", \"range\": {\"gte\": 30, \"lt\": 40}}`, `{\"index\": \"bio\", \"match\": \"rust storage\"}` or `{\"and\": [...]}`; with `limit`, `cursor`, `explain`, `timeout_ms`, `max_postings_scanned`"),
    responses((status = 200, description = "`{\"results\": [{key, value}], \"next_cursor\": ..., \"stats\": {...}}`"),
        (status = 404, description = "No such index (the detail lists the indexes)", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 410, description = "The cursor expired", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "The query cannot be answered by the index, or exceeded a guard", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn query(
    inst: Inst,
    ApiQuery(q): ApiQuery<FormatParams>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<Value>> {
    let style = style(q.format.as_deref())?;
    let req = QueryRequest::parse(&body)?;
    let page = inst
        .run(EngineOp::Query, move |i| Ok(i.indexes()?.query(&req)?))
        .await?;
    let mut results = Vec::with_capacity(page.results.len());
    for (key, value) in page.results {
        results.push(Value::Object(render_entry(
            inst.codec(),
            key,
            &value,
            style,
        )?));
    }
    let mut out = Map::new();
    out.insert("results".into(), Value::Array(results));
    out.insert("next_cursor".into(), json!(page.next_cursor));
    out.insert("stats".into(), json!(page.stats));
    if let Some(plan) = page.plan {
        out.insert("plan".into(), plan);
    }
    Ok(Json(Value::Object(out)))
}
