//! Request extractors whose failures are problem+json responses.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::{ApiError, ApiResult};
use super::metrics::{EngineOp, EngineTimers};
use super::{blocking, AppState};
use crate::instance::Instance;

/// The instance a request addresses: `{instance}` of `/db/{instance}/...`, or the
/// default instance for the root routes. Dereferences to the [`Instance`].
pub struct Inst {
    instance: Arc<Instance>,
    timers: Arc<EngineTimers>,
}

impl Inst {
    /// Runs engine work `f` on the blocking pool ([`blocking`]) and records how long it
    /// took as `op` in `lsm_engine_operation_duration_seconds`.
    pub async fn run<T: Send + 'static>(
        &self,
        op: EngineOp,
        f: impl FnOnce(&Instance) -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        let instance = Arc::clone(&self.instance);
        let timers = Arc::clone(&self.timers);
        blocking(move || {
            let started = Instant::now();
            let result = f(&instance);
            timers.observe(op, started.elapsed());
            result
        })
        .await
    }
}

impl Inst {
    /// Runs `f` on the async worker itself, for engine work that never blocks: `f`
    /// returns `Ok(None)` when it cannot answer without I/O (then use [`run`](Inst::run)).
    /// An answer is timed as `op`, like the work `run` does.
    pub fn try_inline<T>(
        &self,
        op: EngineOp,
        f: impl FnOnce(&Instance) -> ApiResult<Option<T>>,
    ) -> ApiResult<Option<T>> {
        let started = Instant::now();
        let answer = f(&self.instance)?;
        if answer.is_some() {
            self.timers.observe(op, started.elapsed());
        }
        Ok(answer)
    }

    /// A shared handle on the instance, for work that outlives the request's borrow.
    pub fn shared(&self) -> Arc<Instance> {
        Arc::clone(&self.instance)
    }
}

impl Deref for Inst {
    type Target = Instance;

    fn deref(&self) -> &Instance {
        &self.instance
    }
}

impl FromRequestParts<Arc<AppState>> for Inst {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let instance = match path_param(parts, state, "instance").await? {
            Some(name) => state.instances.get(&name)?,
            None => state.instances.default_instance()?,
        };
        let timers = state.metrics.engine_timers(instance.name());
        Ok(Inst { instance, timers })
    }
}

/// The `{key}` of a route, percent-decoded.
pub struct KeyParam(pub String);

impl FromRequestParts<Arc<AppState>> for KeyParam {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let key = path_param(parts, state, "key")
            .await?
            .ok_or_else(|| ApiError::internal("route has no {key} segment"))?;
        if crate::index::keys::is_internal(key.as_bytes()) {
            return Err(crate::index::IndexError::ReservedKey.into());
        }
        Ok(KeyParam(key))
    }
}

/// The `{name}` of a route (a plugin or index name), checked against the name
/// allow-list.
pub struct NameParam(pub String);

impl FromRequestParts<Arc<AppState>> for NameParam {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let name = path_param(parts, state, "name")
            .await?
            .ok_or_else(|| ApiError::internal("route has no {name} segment"))?;
        crate::names::check_name(&name).map_err(ApiError::bad_parameter)?;
        Ok(NameParam(name))
    }
}

async fn path_param(
    parts: &mut Parts,
    state: &Arc<AppState>,
    name: &str,
) -> Result<Option<String>, ApiError> {
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|e| ApiError::bad_parameter(e.body_text()))?;
    Ok(params
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string()))
}

/// `axum::Json` with problem+json rejections.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<T>::from_request(req, state).await?;
        Ok(ApiJson(value))
    }
}

/// `axum::extract::Query` with problem+json rejections.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(ApiQuery(value))
    }
}

/// The raw request body, with problem+json rejections (413 past the body limit).
pub struct ApiBytes(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Ok(ApiBytes(axum::body::Bytes::from_request(req, state).await?))
    }
}
