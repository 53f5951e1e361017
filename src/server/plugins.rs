//! Plugin routes: upload, list, show, delete and try out an instance's plugins. All of
//! them are admin routes (they run code on the server, or describe it).

use std::time::Instant;

use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::blocking;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiBytes, ApiJson, ApiQuery, Inst, NameParam};
use super::keys::parse_entry;
use crate::plugin::{LimitOverrides, Plugin, PluginError, Registered, World, PACKAGE_VERSION};

impl From<PluginError> for ApiError {
    fn from(e: PluginError) -> Self {
        use StatusCode as S;
        let (status, code) = match &e {
            PluginError::Invalid(_) | PluginError::WrongWorld(_) => {
                (S::UNPROCESSABLE_ENTITY, "invalid-plugin")
            }
            PluginError::WrongKind { .. } => (S::UNPROCESSABLE_ENTITY, "wrong-plugin-kind"),
            PluginError::NotFound(_) => (S::NOT_FOUND, "plugin-not-found"),
            PluginError::InUse { .. } => (S::CONFLICT, "plugin-in-use"),
            PluginError::Io(_) => (S::INTERNAL_SERVER_ERROR, "storage-error"),
            _ => (S::INTERNAL_SERVER_ERROR, "plugin-failed"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

/// The stable code of a plugin failure, as the test route reports it.
fn failure_code(e: &PluginError) -> &'static str {
    match e {
        PluginError::Timeout { .. } => "plugin-timeout",
        PluginError::OutOfMemory { .. } => "plugin-out-of-memory",
        PluginError::Trap { .. } => "plugin-trap",
        PluginError::BadOutput { .. } => "plugin-bad-output",
        PluginError::Guest { .. } => "plugin-error",
        _ => "plugin-failed",
    }
}

fn describe(registered: &Registered, plugin: Option<&Plugin>, broken: Option<&str>) -> Value {
    let mut v = json!({
        "name": registered.name,
        "sha256": registered.sha256,
        "size": registered.size,
        "world": registered.world,
        "package": format!("lsm:plugin@{PACKAGE_VERSION}"),
        "uploaded_at_ms": registered.uploaded_at_ms,
    });
    let Some(map) = v.as_object_mut() else {
        return v;
    };
    match (plugin, broken) {
        (Some(p), _) => {
            let limits = p.limits();
            map.insert("status".into(), json!("loaded"));
            map.insert(
                "limits".into(),
                json!({
                    "deadline_ms": limits.deadline.as_millis() as u64,
                    "memory_bytes": limits.memory,
                }),
            );
            map.insert("loaded_from_cache".into(), json!(p.from_cache()));
            map.insert("calls".into(), json!(p.stats().calls()));
            map.insert("errors".into(), json!(p.stats().errors()));
            map.insert("mean_call_us".into(), json!(p.stats().mean_call_us()));
        }
        (None, reason) => {
            map.insert("status".into(), json!("broken"));
            map.insert("reason".into(), json!(reason.unwrap_or_default()));
        }
    }
    v
}

/// `GET /plugins`: the instance's plugins.
#[utoipa::path(get, path = "/db/{instance}/plugins", tag = "plugins",
    params(("instance" = String, Path)), security(("bearer" = [])),
    responses((status = 200, description = "`{\"plugins\": [{name, sha256, size, world, package, status, limits, calls, errors, mean_call_us}]}`")))]
pub async fn list(inst: Inst) -> Json<Value> {
    let plugins: Vec<Value> = inst
        .plugins()
        .registered()
        .iter()
        .filter_map(|r| inst.plugins().describe(&r.name))
        .map(|(r, p, why)| describe(&r, p.as_deref(), why.as_deref()))
        .collect();
    Json(json!({ "instance": inst.name(), "plugins": plugins }))
}

/// `GET /plugins/{name}`: one plugin.
#[utoipa::path(get, path = "/db/{instance}/plugins/{name}", tag = "plugins",
    params(("instance" = String, Path), ("name" = String, Path)), security(("bearer" = [])),
    responses((status = 200, description = "The plugin: hash, size, world, limits, call statistics"),
        (status = 404, description = "No such plugin", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn show(inst: Inst, NameParam(name): NameParam) -> ApiResult<Json<Value>> {
    let (r, p, why) = inst
        .plugins()
        .describe(&name)
        .ok_or(PluginError::NotFound(name))?;
    Ok(Json(describe(&r, p.as_deref(), why.as_deref())))
}

/// Query of `PUT /plugins/{name}`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UploadParams {
    /// Deadline of one call of this plugin, in milliseconds (default: the server's).
    pub deadline_ms: Option<u64>,
    /// Memory cap of this plugin, in bytes (default: the server's).
    pub memory_bytes: Option<usize>,
}

/// `PUT /plugins/{name}`: registers a component (the body, `application/wasm`),
/// replacing any plugin of that name once the new one is validated and compiled.
#[utoipa::path(put, path = "/db/{instance}/plugins/{name}", tag = "plugins",
    params(("instance" = String, Path), ("name" = String, Path), UploadParams),
    request_body(content = Vec<u8>, content_type = "application/wasm", description = "A WebAssembly component of the extractor or codec world of lsm:plugin@0.1.0"),
    security(("bearer" = [])),
    responses((status = 201, description = "Registered"), (status = 200, description = "Replaced"),
        (status = 413, description = "Larger than max_plugin_size", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a valid plugin (the detail says why)", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn upload(
    inst: Inst,
    NameParam(name): NameParam,
    ApiQuery(q): ApiQuery<UploadParams>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default();
        let essence = ct.split(';').next().unwrap_or_default().trim();
        if !["application/wasm", "application/octet-stream"]
            .iter()
            .any(|ok| essence.eq_ignore_ascii_case(ok))
        {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                format!("content type {ct:?}: send the component as application/wasm"),
            ));
        }
    }
    let instance = inst.shared();
    let existed = instance.plugins().describe(&name).is_some();
    let overrides = LimitOverrides {
        deadline_ms: q.deadline_ms,
        memory_bytes: q.memory_bytes,
    };
    let started = Instant::now();
    let n = name.clone();
    let plugin = blocking(move || Ok(instance.plugins().put_with(&n, &body, overrides)?)).await?;
    let (r, p, why) = inst
        .plugins()
        .describe(&name)
        .ok_or_else(|| ApiError::internal("plugin vanished after registration"))?;
    let mut info = describe(&r, p.as_deref(), why.as_deref());
    if let Value::Object(map) = &mut info {
        map.insert(
            "load_ms".into(),
            json!(started.elapsed().as_millis() as u64),
        );
    }
    tracing::info!(instance = %inst.name(), plugin = %plugin.name(), replaced = existed, "plugin uploaded");
    // Indexes built with the previous version are rebuilt with this one and swapped
    // in when ready; they keep serving meanwhile.
    if existed {
        if let Ok(ix) = inst.indexes() {
            let ix = ix.clone();
            let n = name.clone();
            let rebuilds = blocking(move || Ok(ix.plugin_replaced(&n))).await?;
            if let Value::Object(map) = &mut info {
                map.insert("rebuilds".into(), json!(rebuilds));
            }
        }
    }
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(info)))
}

/// `DELETE /plugins/{name}`: removes a plugin that nothing uses.
#[utoipa::path(delete, path = "/db/{instance}/plugins/{name}", tag = "plugins",
    params(("instance" = String, Path), ("name" = String, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Deleted: `{\"name\": ...}`"),
        (status = 409, description = "An index uses it", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn delete(inst: Inst, NameParam(name): NameParam) -> ApiResult<Json<Value>> {
    let instance = inst.shared();
    let n = name.clone();
    blocking(move || {
        let users = instance
            .indexes()
            .ok()
            .map(|ix| ix.users_of(&n))
            .filter(|u| !u.is_empty());
        Ok(instance
            .plugins()
            .delete(&n, users.map(|u| format!("index {}", u.join(", index "))))?)
    })
    .await?;
    Ok(Json(json!({ "name": name })))
}

/// `POST /plugins/{name}/test`: runs a plugin on a sample and shows what it returns.
///
/// Body: `{"key": ..., "value": ... (or "value_base64"), "options": {...}}`. The value
/// is encoded by the instance's codec first, so the plugin sees exactly what it would
/// see on a write. An extractor answers `{"ok": true, "terms": [...]}`; a codec
/// encodes then decodes the value: `{"ok": true, "stored_base64": ..., "decoded": ...}`.
/// A failing plugin answers `{"ok": false, "error": {"code", "message"}}`.
#[utoipa::path(post, path = "/db/{instance}/plugins/{name}/test", tag = "plugins",
    params(("instance" = String, Path), ("name" = String, Path)), security(("bearer" = [])),
    request_body(description = "`{\"key\": ..., \"value\": ..., \"options\": {...}}`"),
    responses((status = 200, description = "`{\"ok\", \"terms\" | \"decoded\" | \"error\", \"duration_us\"}`")))]
pub async fn test(
    inst: Inst,
    NameParam(name): NameParam,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<Value>> {
    let Value::Object(mut fields) = body else {
        return Err(ApiError::invalid_body("the body must be a JSON object"));
    };
    let options = match fields.remove("options") {
        None => "{}".to_string(),
        Some(v @ Value::Object(_)) => v.to_string(),
        Some(_) => return Err(ApiError::invalid_body("options must be a JSON object")),
    };
    let plugin = inst.plugins().get(&name)?;
    let instance = inst.shared();
    let mut answer = Map::new();
    let started = Instant::now();
    let outcome: Result<(), PluginError> = match plugin.world() {
        World::Extractor => {
            let (key, value) = parse_entry(Value::Object(fields), "the body")?;
            let stored = instance.codec().encode(value)?;
            let p = std::sync::Arc::clone(&plugin);
            let terms = blocking(move || Ok(p.extract(&key, &stored, &options))).await?;
            terms.map(|terms| {
                answer.insert("terms".into(), json!(terms));
            })
        }
        World::Codec => {
            let value = match fields.remove("value") {
                Some(v) => v,
                None => return Err(ApiError::invalid_body("value is missing")),
            };
            let p = std::sync::Arc::clone(&plugin);
            let result = blocking(move || {
                Ok(p.encode(&value.to_string())
                    .and_then(|stored| p.decode(&stored).map(|text| (stored, text))))
            })
            .await?;
            result.map(|(stored, text)| {
                answer.insert(
                    "stored_base64".into(),
                    json!(base64::engine::general_purpose::STANDARD.encode(&stored)),
                );
                let decoded = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text));
                answer.insert("decoded".into(), decoded);
            })
        }
    };
    if let Err(e) = outcome {
        answer.insert(
            "error".into(),
            json!({ "code": failure_code(&e), "message": e.to_string() }),
        );
        answer.insert("ok".into(), json!(false));
    } else {
        answer.insert("ok".into(), json!(true));
    }
    answer.insert("plugin".into(), json!(name));
    answer.insert("world".into(), json!(plugin.world().name()));
    answer.insert(
        "duration_us".into(),
        json!(started.elapsed().as_micros() as u64),
    );
    Ok(Json(Value::Object(answer)))
}
