//! The key routes: read, write and delete one key or a batch, list keys, scan values
//! and search keys. Every route works on the default instance (`/keys...`) and on a
//! named one (`/db/{instance}/keys...`).
//!
//! Lists are pages: at most `limit` entries (and, for values, about [`PAGE_BYTES`]),
//! with a `next_cursor` to resume after the last key returned. A page is read from one
//! engine iterator, lazily, so no route ever holds more than one page in memory.

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::ops::Bound;

use super::error::{ApiError, ApiResult};
use super::extract::{ApiBytes, ApiJson, ApiQuery, Inst, KeyParam};
use super::metrics::EngineOp;
use super::page::{self, Cursor, ListParams, Page, PAGE_BYTES};
use crate::codec::{Codec, JsonStyle, ValueIn, ValueOut};
use crate::engine::WriteBatch;

const OCTETS: &str = "application/octet-stream";

/// Base64 as accepted in `value_base64`: the standard alphabet, padding optional.
const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// `?format=` of routes that return values.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FormatParams {
    /// `relaxed` (default) or `canonical` extended JSON for values of the bson codec.
    pub format: Option<String>,
}

pub(crate) fn style(format: Option<&str>) -> ApiResult<JsonStyle> {
    match format {
        None | Some("relaxed") => Ok(JsonStyle::Relaxed),
        Some("canonical") => Ok(JsonStyle::Canonical),
        Some(other) => Err(ApiError::bad_parameter(format!(
            "format must be relaxed or canonical, not {other:?}"
        ))),
    }
}

/// The JSON object of one entry: `{"key": ..., "value": ...}`, or `value_base64` for
/// bytes that are not UTF-8.
pub fn render_entry(
    codec: &dyn Codec,
    key: String,
    stored: &[u8],
    style: JsonStyle,
) -> ApiResult<Map<String, Value>> {
    let mut entry = Map::with_capacity(2);
    entry.insert("key".into(), Value::String(key));
    match codec.decode(stored, style)? {
        ValueOut::Json(v) => {
            entry.insert("value".into(), v);
        }
        ValueOut::Bytes(b) => match String::from_utf8(b) {
            Ok(text) => {
                entry.insert("value".into(), Value::String(text));
            }
            Err(e) => {
                entry.insert(
                    "value_base64".into(),
                    Value::String(BASE64.encode(e.as_bytes())),
                );
            }
        },
    }
    Ok(entry)
}

/// Reads `{"key": ..., "value": ...}` or `{"key": ..., "value_base64": ...}`.
pub(crate) fn parse_entry(entry: Value, what: &str) -> ApiResult<(String, ValueIn)> {
    let Value::Object(mut fields) = entry else {
        return Err(ApiError::invalid_body(format!(
            "{what} must be a JSON object"
        )));
    };
    let key = match fields.remove("key") {
        Some(Value::String(k)) => k,
        Some(_) => {
            return Err(ApiError::invalid_body(format!(
                "{what}: key must be a string"
            )))
        }
        None => return Err(ApiError::invalid_body(format!("{what}: key is missing"))),
    };
    let value = match (fields.remove("value"), fields.remove("value_base64")) {
        (Some(v), None) => ValueIn::Json(v),
        (None, Some(Value::String(b64))) => {
            ValueIn::Bytes(BASE64.decode(b64.as_bytes()).map_err(|e| {
                ApiError::invalid_body(format!("{what}: value_base64 is not base64: {e}"))
            })?)
        }
        (None, Some(_)) => {
            return Err(ApiError::invalid_body(format!(
                "{what}: value_base64 must be a string"
            )))
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_body(format!(
                "{what}: give value or value_base64, not both"
            )))
        }
        (None, None) => {
            return Err(ApiError::invalid_body(format!(
                "{what}: value (or value_base64) is missing"
            )))
        }
    };
    if let Some(unknown) = fields.keys().next() {
        return Err(ApiError::invalid_body(format!(
            "{what}: unknown field {unknown:?} (expected key, value or value_base64)"
        )));
    }
    Ok((key, value))
}

/// Whether the client asked for the stored bytes rather than JSON.
fn wants_octets(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains(OCTETS) && !accept.contains("json"))
}

enum BodyKind {
    Json,
    Octets,
}

fn body_kind(headers: &HeaderMap) -> ApiResult<BodyKind> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Ok(BodyKind::Json);
    };
    let ct = ct.to_str().unwrap_or_default();
    let essence = ct.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case(OCTETS) {
        Ok(BodyKind::Octets)
    } else if essence.eq_ignore_ascii_case("application/json") || essence.ends_with("+json") {
        Ok(BodyKind::Json)
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            format!("content type {ct:?}: send application/json or application/octet-stream"),
        ))
    }
}

fn parse_json(body: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            ApiError::invalid_body(e.to_string())
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "malformed-json", e.to_string())
        }
    })
}

/// `GET /keys/{key}`: the value of one key.
#[utoipa::path(get, path = "/db/{instance}/keys/{key}", tag = "keys",
    params(("instance" = String, Path), ("key" = String, Path), FormatParams),
    responses(
        (status = 200, description = "The entry `{key, value}` (or `value_base64`); with `Accept: application/octet-stream` the stored bytes"),
        (status = 404, description = "No such key or instance", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn get_key(
    inst: Inst,
    KeyParam(key): KeyParam,
    ApiQuery(q): ApiQuery<FormatParams>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let style = style(q.format.as_deref())?;
    // Most reads are answered from memory (memtables, bloom filters, block cache) on
    // the async worker; only a read that needs the disk pays the hop to the blocking
    // pool, which costs more than the lookup itself.
    let cached = inst.try_inline(EngineOp::Get, |i| {
        Ok(i.db().get_if_cached(key.as_bytes())?)
    })?;
    let value = match cached {
        Some(value) => value,
        None => {
            let k = key.clone();
            inst.run(EngineOp::Get, move |i| Ok(i.db().get(k.as_bytes())?))
                .await?
        }
    };
    let Some(value) = value else {
        return Err(ApiError::key_not_found(&key));
    };
    if wants_octets(&headers) {
        return Ok(([(header::CONTENT_TYPE, OCTETS)], value).into_response());
    }
    let entry = render_entry(inst.codec(), key, &value, style)?;
    Ok(Json(Value::Object(entry)).into_response())
}

/// `?key=` of `POST /keys` with an `application/octet-stream` body.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PutParams {
    /// The key, when the body is `application/octet-stream` (the value's stored bytes).
    pub key: Option<String>,
}

/// `POST /keys`: sets one key.
#[utoipa::path(post, path = "/db/{instance}/keys", tag = "keys",
    params(("instance" = String, Path), PutParams),
    request_body(description = "`{\"key\": ..., \"value\": ...}` or `{\"key\": ..., \"value_base64\": ...}`; or the stored bytes as application/octet-stream with `?key=`"),
    responses((status = 200, description = "Written: `{\"key\": ...}`"),
        (status = 422, description = "Invalid key or value", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn put_key(
    inst: Inst,
    ApiQuery(q): ApiQuery<PutParams>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<Json<Value>> {
    let (key, value) = match body_kind(&headers)? {
        BodyKind::Octets => {
            let key = q.key.ok_or_else(|| {
                ApiError::bad_parameter("an application/octet-stream body needs ?key=")
            })?;
            (key, ValueIn::Bytes(body.to_vec()))
        }
        BodyKind::Json => {
            if q.key.is_some() {
                return Err(ApiError::bad_parameter(
                    "?key= is for application/octet-stream bodies; put the key in the JSON body",
                ));
            }
            parse_entry(parse_json(&body)?, "the body")?
        }
    };
    write_one(&inst, key, value).await
}

/// `PUT /keys/{key}`: sets one key; the body is the value itself (JSON, or the stored
/// bytes as application/octet-stream).
#[utoipa::path(put, path = "/db/{instance}/keys/{key}", tag = "keys",
    params(("instance" = String, Path), ("key" = String, Path)),
    request_body(description = "The value: JSON (for raw, a JSON string), or the stored bytes as application/octet-stream"),
    responses((status = 200, description = "Written: `{\"key\": ...}`")))]
pub async fn put_key_at(
    inst: Inst,
    KeyParam(key): KeyParam,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<Json<Value>> {
    let value = match body_kind(&headers)? {
        BodyKind::Octets => ValueIn::Bytes(body.to_vec()),
        BodyKind::Json => ValueIn::Json(parse_json(&body)?),
    };
    write_one(&inst, key, value).await
}

async fn write_one(inst: &Inst, key: String, value: ValueIn) -> ApiResult<Json<Value>> {
    let stored = inst.codec().encode(value)?;
    let k = key.clone();
    inst.run(EngineOp::Put, move |i| Ok(i.put(&k, &stored)?))
        .await?;
    Ok(Json(json!({ "key": key })))
}

/// `DELETE /keys/{key}`: deletes one key. Deleting a key that does not exist succeeds
/// (deletes are idempotent).
#[utoipa::path(delete, path = "/db/{instance}/keys/{key}", tag = "keys",
    params(("instance" = String, Path), ("key" = String, Path)),
    responses((status = 200, description = "Deleted: `{\"key\": ...}`")))]
pub async fn delete_key(inst: Inst, KeyParam(key): KeyParam) -> ApiResult<Json<Value>> {
    let k = key.clone();
    inst.run(EngineOp::Delete, move |i| Ok(i.delete(&k)?))
        .await?;
    Ok(Json(json!({ "key": key })))
}

/// Body of `POST /keys/batch`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PutBatch {
    /// Entries `{"key": ..., "value": ...}` (or `value_base64`) to set, and
    /// `{"key": ..., "delete": true}` to delete, applied atomically in order.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Value>,
}

/// A batch item that deletes: `{"key": ..., "delete": true}`.
fn delete_item(item: &Value) -> ApiResult<Option<String>> {
    let Value::Object(fields) = item else {
        return Ok(None);
    };
    match fields.get("delete") {
        None => Ok(None),
        Some(Value::Bool(true)) if fields.len() == 2 => match fields.get("key") {
            Some(Value::String(key)) => Ok(Some(key.clone())),
            _ => Err(ApiError::invalid_body(
                "a delete item is {\"key\": \"...\", \"delete\": true}",
            )),
        },
        Some(_) => Err(ApiError::invalid_body(
            "a delete item is {\"key\": \"...\", \"delete\": true}, with no value",
        )),
    }
}

/// `POST /keys/batch`: sets (and deletes) several keys atomically: all or none.
#[utoipa::path(post, path = "/db/{instance}/keys/batch", tag = "keys",
    params(("instance" = String, Path)), request_body = PutBatch,
    responses((status = 200, description = "Written: `{\"written\": n}`")))]
pub async fn put_batch(inst: Inst, ApiJson(body): ApiJson<PutBatch>) -> ApiResult<Json<Value>> {
    let mut batch = WriteBatch::new();
    for (i, item) in body.items.into_iter().enumerate() {
        if let Some(key) = delete_item(&item).map_err(|mut e| {
            e.detail = format!("items[{i}]: {}", e.detail);
            e
        })? {
            batch.delete(key.as_bytes());
            continue;
        }
        let (key, value) = parse_entry(item, &format!("items[{i}]"))?;
        let stored = inst.codec().encode(value).map_err(|e| {
            let mut err = ApiError::from(e);
            err.detail = format!("items[{i}] ({key:?}): {}", err.detail);
            err
        })?;
        batch.put(key.as_bytes(), &stored);
    }
    let written = batch.len();
    if !batch.is_empty() {
        inst.run(EngineOp::WriteBatch, move |i| Ok(i.write(batch)?))
            .await?;
    }
    Ok(Json(json!({ "written": written })))
}

/// Body of `DELETE /keys/batch`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteBatch {
    /// Keys to delete, atomically.
    pub keys: Vec<String>,
}

/// `DELETE /keys/batch`: deletes several keys atomically.
#[utoipa::path(delete, path = "/db/{instance}/keys/batch", tag = "keys",
    params(("instance" = String, Path)), request_body = DeleteBatch,
    responses((status = 200, description = "Deleted: `{\"deleted\": n}`")))]
pub async fn delete_batch(
    inst: Inst,
    ApiJson(body): ApiJson<DeleteBatch>,
) -> ApiResult<Json<Value>> {
    let mut batch = WriteBatch::new();
    for key in &body.keys {
        batch.delete(key.as_bytes());
    }
    let deleted = batch.len();
    if !batch.is_empty() {
        inst.run(EngineOp::WriteBatch, move |i| Ok(i.write(batch)?))
            .await?;
    }
    Ok(Json(json!({ "deleted": deleted })))
}

/// `GET /keys`: a page of keys, in order.
#[utoipa::path(get, path = "/db/{instance}/keys", tag = "keys",
    params(("instance" = String, Path), ListParams),
    responses((status = 200, description = "`{\"keys\": [...], \"next_cursor\": ...}`")))]
pub async fn list_keys(inst: Inst, ApiQuery(q): ApiQuery<ListParams>) -> ApiResult<Json<Value>> {
    let page = Page::from_params(&q)?;
    let (keys, next) = inst
        .run(EngineOp::Scan, move |i| {
            let mut keys = Vec::new();
            let next = page::read(i.db(), &page, |key, _| {
                keys.push(Value::String(key));
                Ok(0)
            })?;
            Ok((keys, next))
        })
        .await?;
    Ok(Json(
        json!({ "keys": keys, "next_cursor": next.map(|c| c.encode()) }),
    ))
}

/// `GET /scan`: a page of entries (keys and values), in key order.
#[utoipa::path(get, path = "/db/{instance}/scan", tag = "keys",
    params(("instance" = String, Path), ListParams),
    responses((status = 200, description = "`{\"items\": [{key, value}...], \"next_cursor\": ...}`")))]
pub async fn scan(inst: Inst, ApiQuery(q): ApiQuery<ListParams>) -> ApiResult<Json<Value>> {
    let style = style(q.format.as_deref())?;
    let page = Page::from_params(&q)?;
    let (items, next) = inst
        .run(EngineOp::Scan, move |i| {
            let mut items = Vec::new();
            let next = page::read(i.db(), &page, |key, value| {
                items.push(Value::Object(render_entry(i.codec(), key, &value, style)?));
                Ok(value.len())
            })?;
            Ok((items, next))
        })
        .await?;
    Ok(Json(
        json!({ "items": items, "next_cursor": next.map(|c| c.encode()) }),
    ))
}

/// Query of `GET /keys/search`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// Text to look for in keys.
    pub q: String,
    /// `true`: keys starting with `q` (read from the prefix iterator); `false`
    /// (default): keys containing `q` (a bounded scan).
    #[serde(default)]
    pub prefix: bool,
    /// Matches per page (default 100, at most 10000).
    pub limit: Option<usize>,
    /// Keys examined per request by a substring search (default 10000, at most
    /// 1000000); past it the page ends early with a `next_cursor`.
    pub max_scan: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// `relaxed` (default) or `canonical` extended JSON for bson values.
    pub format: Option<String>,
}

/// Default keys examined by one substring search request.
pub const DEFAULT_MAX_SCAN: usize = 10_000;
/// Most keys one substring search request may examine.
pub const MAX_SCAN: usize = 1_000_000;

/// `GET /keys/search?q=...&prefix=false`: entries whose key contains (or starts with)
/// `q`. A substring search examines at most `max_scan` keys per request and says how
/// many it examined; follow `next_cursor` to go on.
#[utoipa::path(get, path = "/db/{instance}/keys/search", tag = "keys",
    params(("instance" = String, Path), SearchParams),
    responses((status = 200, description = "`{\"items\": [...], \"next_cursor\": ..., \"scanned\": n}`")))]
pub async fn search(inst: Inst, ApiQuery(q): ApiQuery<SearchParams>) -> ApiResult<Json<Value>> {
    if q.q.is_empty() {
        return Err(ApiError::bad_parameter("q must not be empty"));
    }
    let style = style(q.format.as_deref())?;
    let limit = page::limit(q.limit)?;
    let max_scan = match q.max_scan {
        None => DEFAULT_MAX_SCAN,
        Some(n) if (1..=MAX_SCAN).contains(&n) => n,
        Some(n) => {
            return Err(ApiError::bad_parameter(format!(
                "max_scan must be between 1 and {MAX_SCAN}, not {n}"
            )))
        }
    };
    let after = q.cursor.as_deref().map(Cursor::decode).transpose()?;
    let mut page = Page {
        lower: Bound::Unbounded,
        upper: Bound::Unbounded,
        limit,
    };
    if q.prefix {
        page.restrict_to_prefix(&q.q);
    }
    if let Some(after) = after {
        page.resume_after(after.0);
    }
    let needle = q.q;
    let prefix = q.prefix;
    let (items, next, scanned) = inst
        .run(EngineOp::Scan, move |i| {
            let mut items = Vec::new();
            let mut bytes = 0usize;
            let mut scanned = 0usize;
            let mut last: Option<String> = None;
            let mut iter = i.db().iter_range((page.lower, page.upper))?;
            let mut next = None;
            for entry in iter.by_ref() {
                let (key, value) = entry?;
                if items.len() >= page.limit
                    || bytes >= PAGE_BYTES
                    || (!prefix && scanned >= max_scan)
                {
                    next = last.clone().map(Cursor);
                    break;
                }
                scanned += 1;
                if prefix || key.contains(&needle) {
                    bytes += value.len();
                    items.push(Value::Object(render_entry(
                        i.codec(),
                        key.clone(),
                        &value,
                        style,
                    )?));
                }
                last = Some(key);
            }
            Ok((items, next, scanned))
        })
        .await?;
    Ok(Json(json!({
        "items": items,
        "next_cursor": next.map(|c| c.encode()),
        "scanned": scanned,
    })))
}
