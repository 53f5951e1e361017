//! Metrics in the OpenMetrics text format (`GET /metrics`) and one log event per request.
//!
//! Three sources feed the exposition:
//!
//! - the request middleware ([`track`]), which counts every request and times it by
//!   instance, route template, method and status, and logs it;
//! - the handlers, which time their engine calls by instance and operation
//!   ([`EngineTimers`], used through [`Inst::run`](super::extract::Inst::run));
//! - each instance's [`Stats`](crate::engine::Stats), read when `/metrics` is scraped (nothing polls in the
//!   background): tables per level, bytes, WAL, stalls, flushes, compactions, caches.
//!
//! Label values are bounded: routes are the templates the router matched (`/keys/{key}`,
//! never a key), unknown paths are `unmatched`, methods outside the standard ones are
//! `other`, and instances are configured names only. The metric names and labels are
//! listed in `docs/operations.md`.

mod stats;

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::{EncodeLabel, EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use super::error::{ApiError, ApiResult, ErrorInfo};
use super::{blocking, AppState};
use crate::instance::Instances;

/// The media type of the exposition.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The routes of [`router`](super::router) that are about no instance (their requests
/// carry `instance=""`); the other routes outside `/db/{instance}` serve the default
/// instance. A test checks this list against the OpenAPI description.
pub const GLOBAL_ROUTES: &[&str] = &["/health", "/instances", "/openapi.json", "/metrics"];

/// The log target of request events (`RUST_LOG=lsm::http=debug` shows every request).
pub const LOG_TARGET: &str = "lsm::http";

/// Buckets of request durations, in seconds: 100 µs to 10 s.
const REQUEST_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Buckets of engine operation durations, in seconds: 5 µs to 10 s.
const ENGINE_BUCKETS: [f64; 20] = [
    0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// An engine operation timed by `lsm_engine_operation_duration_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineOp {
    /// A point read.
    Get,
    /// A single-key write.
    Put,
    /// A single-key delete.
    Delete,
    /// An atomic batch of writes or deletes.
    WriteBatch,
    /// A range read (a page of keys, entries or search matches).
    Scan,
    /// A page of an indexed query.
    Query,
}

impl EngineOp {
    const ALL: [EngineOp; 6] = [
        EngineOp::Get,
        EngineOp::Put,
        EngineOp::Delete,
        EngineOp::WriteBatch,
        EngineOp::Scan,
        EngineOp::Query,
    ];

    /// The `op` label.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineOp::Get => "get",
            EngineOp::Put => "put",
            EngineOp::Delete => "delete",
            EngineOp::WriteBatch => "write_batch",
            EngineOp::Scan => "scan",
            EngineOp::Query => "query",
        }
    }
}

/// The engine operation histograms of one instance, created once so that timing an
/// operation is one histogram update, with no label lookup.
#[derive(Debug)]
pub struct EngineTimers([Histogram; 6]);

impl EngineTimers {
    fn detached() -> EngineTimers {
        EngineTimers(std::array::from_fn(|_| engine_histogram()))
    }

    /// Records that `op` took `elapsed`.
    pub fn observe(&self, op: EngineOp, elapsed: Duration) {
        self.0[op as usize].observe(elapsed.as_secs_f64());
    }
}

fn request_histogram() -> Histogram {
    Histogram::new(REQUEST_BUCKETS)
}

fn engine_histogram() -> Histogram {
    Histogram::new(ENGINE_BUCKETS)
}

/// The `route` label: the template the router matched, or `unmatched`. Cloning it
/// clones an `Arc`, so labelling a request allocates nothing.
#[derive(Clone, Debug)]
enum Route {
    Matched(MatchedPath),
    Unmatched,
}

impl Route {
    fn as_str(&self) -> &str {
        match self {
            Route::Matched(path) => path.as_str(),
            Route::Unmatched => "unmatched",
        }
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Route {}

impl Hash for Route {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

/// Labels of `lsm_http_request_duration_seconds`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct RouteLabels {
    instance: Arc<str>,
    route: Route,
    method: &'static str,
}

impl EncodeLabelSet for RouteLabels {
    fn encode(&self, mut encoder: LabelSetEncoder) -> fmt::Result {
        ("instance", &*self.instance).encode(encoder.encode_label())?;
        ("route", self.route.as_str()).encode(encoder.encode_label())?;
        ("method", self.method).encode(encoder.encode_label())
    }
}

/// Labels of `lsm_http_requests_total`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct RequestLabels {
    route: RouteLabels,
    status: u16,
}

impl EncodeLabelSet for RequestLabels {
    fn encode(&self, mut encoder: LabelSetEncoder) -> fmt::Result {
        ("instance", &*self.route.instance).encode(encoder.encode_label())?;
        ("route", self.route.route.as_str()).encode(encoder.encode_label())?;
        ("method", self.route.method).encode(encoder.encode_label())?;
        ("status", self.status).encode(encoder.encode_label())
    }
}

/// Labels of `lsm_engine_operation_duration_seconds`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct OpLabels {
    instance: Arc<str>,
    op: &'static str,
}

impl EncodeLabelSet for OpLabels {
    fn encode(&self, mut encoder: LabelSetEncoder) -> fmt::Result {
        ("instance", &*self.instance).encode(encoder.encode_label())?;
        ("op", self.op).encode(encoder.encode_label())
    }
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The server's metrics: the registry of request and engine-operation metrics, and
/// the label values requests may carry.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_duration: HistogramFamily<RouteLabels>,
    engine: HashMap<String, Arc<EngineTimers>>,
    /// The configured instance names, as label values.
    instance_labels: HashMap<String, Arc<str>>,
    default_instance: Arc<str>,
    no_instance: Arc<str>,
}

impl Metrics {
    /// Metrics for the instances of `instances`.
    pub fn new(instances: &Instances) -> Metrics {
        let mut registry = Registry::default();
        registry.register(
            "lsm_build",
            "The version of the server",
            Info::new([("version", env!("CARGO_PKG_VERSION"))]),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "lsm_http_requests",
            "HTTP requests answered, by instance, route template, method and status",
            requests.clone(),
        );
        let request_duration: HistogramFamily<RouteLabels> =
            Family::new_with_constructor(request_histogram);
        registry.register_with_unit(
            "lsm_http_request_duration",
            "Time from receiving a request to its response, by instance, route template and method",
            Unit::Seconds,
            request_duration.clone(),
        );
        let engine_duration: HistogramFamily<OpLabels> =
            Family::new_with_constructor(engine_histogram);
        registry.register_with_unit(
            "lsm_engine_operation_duration",
            "Time of engine calls made by requests (on the blocking pool), by instance and operation",
            Unit::Seconds,
            engine_duration.clone(),
        );

        let instance_labels: HashMap<String, Arc<str>> = instances
            .slots()
            .map(|(name, _)| (name.to_string(), Arc::from(name)))
            .collect();
        let engine = instances
            .ready()
            .map(|instance| {
                let label = Arc::clone(&instance_labels[instance.name()]);
                let timers = EngineTimers(EngineOp::ALL.map(|op| {
                    engine_duration
                        .get_or_create(&OpLabels {
                            instance: Arc::clone(&label),
                            op: op.as_str(),
                        })
                        .clone()
                }));
                (instance.name().to_string(), Arc::new(timers))
            })
            .collect();
        Metrics {
            registry,
            requests,
            request_duration,
            engine,
            default_instance: Arc::from(instances.default_name()),
            instance_labels,
            no_instance: Arc::from(""),
        }
    }

    /// The engine timers of the instance `name`. An instance that was not open when
    /// the server started gets timers that are not exported.
    pub fn engine_timers(&self, name: &str) -> Arc<EngineTimers> {
        match self.engine.get(name) {
            Some(timers) => Arc::clone(timers),
            None => Arc::new(EngineTimers::detached()),
        }
    }

    /// The `instance` label of a request: the `{instance}` of its path when that names
    /// a configured instance, the default instance for the root copies of the instance
    /// routes, and `""` otherwise.
    async fn instance_label(&self, route: &Route, parts: &mut Parts) -> Arc<str> {
        let Route::Matched(path) = route else {
            return Arc::clone(&self.no_instance);
        };
        let path = path.as_str();
        if path.starts_with("/db/{instance}") {
            let named = match RawPathParams::from_request_parts(parts, &()).await {
                Ok(params) => params
                    .iter()
                    .find(|(k, _)| *k == "instance")
                    .and_then(|(_, v)| self.instance_labels.get(v).cloned()),
                Err(_) => None,
            };
            return named.unwrap_or_else(|| Arc::clone(&self.no_instance));
        }
        if GLOBAL_ROUTES.contains(&path) {
            Arc::clone(&self.no_instance)
        } else {
            Arc::clone(&self.default_instance)
        }
    }

    fn record(&self, labels: RouteLabels, status: StatusCode, elapsed: Duration) {
        self.request_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        self.requests
            .get_or_create(&RequestLabels {
                route: labels,
                status: status.as_u16(),
            })
            .inc();
    }

    /// The whole exposition: request and engine-operation metrics, then the state of
    /// every instance read now. Reads each instance's statistics (which may touch the
    /// disk): call it on the blocking pool.
    pub fn render(&self, instances: &Instances) -> Result<String, fmt::Error> {
        let mut engine = Registry::default();
        engine.register_collector(Box::new(stats::EngineCollector::read(instances)));
        let mut out = String::with_capacity(32 * 1024);
        encode_registry(&mut out, &self.registry)?;
        encode_registry(&mut out, &engine)?;
        encode_eof(&mut out)?;
        Ok(out)
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// Middleware: counts and times every request, and logs it (debug for successes, info
/// for client errors, error for server errors).
pub async fn track(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = match request.extensions().get::<MatchedPath>() {
        Some(path) => Route::Matched(path.clone()),
        None => Route::Unmatched,
    };
    let (mut parts, body) = request.into_parts();
    let instance = state.metrics.instance_label(&route, &mut parts).await;
    let response = next.run(Request::from_parts(parts, body)).await;
    let elapsed = started.elapsed();
    let status = response.status();
    log_request(&instance, &route, method, &response, elapsed);
    state.metrics.record(
        RouteLabels {
            instance,
            route,
            method,
        },
        status,
        elapsed,
    );
    response
}

fn log_request(
    instance: &str,
    route: &Route,
    method: &str,
    response: &Response,
    elapsed: Duration,
) {
    let status = response.status().as_u16();
    let route = route.as_str();
    let latency_ms = elapsed.as_micros() as f64 / 1e3;
    let error = response.extensions().get::<ErrorInfo>();
    let code = error.map(|e| e.code);
    if response.status().is_server_error() {
        let detail = error.and_then(|e| e.detail.as_deref());
        tracing::error!(target: LOG_TARGET, method, route, status, latency_ms, instance, code, detail, "request failed");
    } else if response.status().is_client_error() {
        tracing::info!(target: LOG_TARGET, method, route, status, latency_ms, instance, code, "request refused");
    } else {
        tracing::debug!(target: LOG_TARGET, method, route, status, latency_ms, instance, "request");
    }
}

/// `GET /metrics`: every metric, in the OpenMetrics text format.
#[utoipa::path(get, path = "/metrics", tag = "info",
    responses((status = 200, description = "Metrics in the OpenMetrics text format (requests, engine operation latencies, and each instance's tables, bytes, WAL, stalls, flushes and compactions; see docs/operations.md)",
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String)))]
pub async fn serve(State(state): State<Arc<AppState>>) -> ApiResult<Response> {
    let body = blocking(move || {
        state
            .metrics
            .render(&state.instances)
            .map_err(|_| ApiError::internal("encoding the metrics failed"))
    })
    .await?;
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS))],
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every documented route outside `/db/{instance}` either is a root copy of an
    /// instance route (serving the default instance; its operation ids end in
    /// `_default`) or is listed in [`GLOBAL_ROUTES`].
    #[test]
    fn global_routes_are_the_routes_without_an_instance() {
        let doc = super::super::openapi::document();
        for (path, item) in &doc.paths.paths {
            if path.starts_with("/db/{instance}") {
                continue;
            }
            let serves_default = [&item.get, &item.put, &item.post, &item.delete]
                .into_iter()
                .flatten()
                .filter_map(|op| op.operation_id.as_deref())
                .all(|id| id.ends_with("_default"));
            assert_ne!(
                GLOBAL_ROUTES.contains(&path.as_str()),
                serves_default,
                "{path}: list it in GLOBAL_ROUTES, or derive it from a /db/{{instance}} route"
            );
        }
        for global in GLOBAL_ROUTES {
            assert!(
                doc.paths.paths.contains_key(*global) || *global == "/openapi.json",
                "{global} is not a documented route"
            );
        }
    }

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        let brew = Method::from_bytes(b"BREW").expect("a valid token");
        assert_eq!(method_label(&brew), "other");
    }
}
