//! Admin routes (compaction, verification) and their bearer-token guard.
//!
//! When a token is configured (`[server] admin_token` or `LSM_ADMIN_TOKEN`), every admin
//! route needs `Authorization: Bearer <token>`. The comparison is in constant time over
//! SHA-256 digests, so neither the token's content nor its length leaks through timing.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::Json;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::blocking;
use super::error::{ApiError, ApiResult};
use super::extract::Inst;
use super::AppState;

/// The digest of the admin token the server expects.
#[derive(Clone)]
pub struct AdminToken([u8; 32]);

impl AdminToken {
    /// A guard for `token`.
    pub fn new(token: &str) -> Self {
        AdminToken(Sha256::digest(token.as_bytes()).into())
    }

    fn matches(&self, given: &str) -> bool {
        let given: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        self.0.ct_eq(&given).into()
    }
}

/// Middleware: refuses admin requests without the right bearer token.
pub async fn require_token(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if let Some(expected) = &state.admin_token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            });
        match given {
            None => {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "admin routes need an Authorization: Bearer <token> header",
                ))
            }
            Some(token) if !expected.matches(token.trim()) => {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "the admin token is not valid",
                ))
            }
            Some(_) => {}
        }
    }
    Ok(next.run(request).await)
}

/// `POST /admin/compact`: flushes the memtable and compacts every table into the
/// bottom level, then answers with the table counts before and after. Every index is
/// then rebuilt in the background (`index_rebuilds`: the tasks), which drops its dead
/// postings; the indexes keep serving meanwhile.
#[utoipa::path(post, path = "/db/{instance}/admin/compact", tag = "admin",
    params(("instance" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, description = "`{\"instance\", \"tables_before\", \"tables_after\", \"duration_ms\", \"index_rebuilds\"}`"),
        (status = 401, description = "Missing or wrong admin token", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn compact(inst: Inst) -> ApiResult<Json<Value>> {
    let name = inst.name().to_string();
    let started = Instant::now();
    let (before, after, rebuilds) = blocking(move || {
        let before = inst.db().stats().tables;
        inst.db().compact()?;
        let after = inst.db().stats().tables;
        let rebuilds = match inst.indexes() {
            Ok(ix) => ix.rebuild_all(),
            Err(_) => Vec::new(),
        };
        Ok((before, after, rebuilds))
    })
    .await?;
    tracing::info!(instance = %name, before, after, index_rebuilds = rebuilds.len(), "manual compaction done");
    Ok(Json(json!({
        "instance": name,
        "tables_before": before,
        "tables_after": after,
        "duration_ms": started.elapsed().as_millis() as u64,
        "index_rebuilds": rebuilds,
    })))
}

/// `POST /admin/verify`: reads every table and WAL record and checks its checksum,
/// then checks every index against the records (`indexes`: per index, postings that
/// point to records without the term, records missing from their terms' lists).
/// Damage is reported (`ok: false` and the files or indexes), not fixed: a rebuild
/// fixes an index.
#[utoipa::path(post, path = "/db/{instance}/admin/verify", tag = "admin",
    params(("instance" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, description = "`{\"instance\", \"ok\", \"files\": [...]}`"),
        (status = 401, description = "Missing or wrong admin token", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn verify(inst: Inst) -> ApiResult<Json<Value>> {
    let name = inst.name().to_string();
    let (report, indexes) = blocking(move || {
        let report = inst.db().verify();
        let indexes = match inst.indexes() {
            Ok(ix) => ix.verify()?,
            Err(_) => Vec::new(),
        };
        Ok((report, indexes))
    })
    .await?;
    let ok = report.ok && indexes.iter().all(|r| r.ok());
    if !ok {
        tracing::warn!(instance = %name, "verify found damage");
    }
    let mut body = serde_json::to_value(report).unwrap_or_else(|_| json!({}));
    if let Value::Object(map) = &mut body {
        map.insert("instance".into(), Value::String(name));
        map.insert("ok".into(), Value::Bool(ok));
        map.insert("indexes".into(), json!(indexes));
    }
    Ok(Json(body))
}
