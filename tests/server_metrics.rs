//! `GET /metrics` and the request logs: counters and histograms move by exactly the
//! requests made, labels are route templates and configured names only, engine state
//! is read at scrape time, and `lsm serve --log-format json` logs JSON lines.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lsm::config::{CodecConfig, Config};
use lsm::server::Server;
use serde_json::{json, Value};
use ureq::http;

/// One sample of the exposition.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The parsed exposition.
struct Scrape {
    content_type: String,
    text: String,
    samples: Vec<Sample>,
}

impl Scrape {
    /// The value of the one sample `name` whose labels include `labels`; panics when
    /// there is none or several.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<&Sample> = self.matching(name, labels).collect();
        assert_eq!(
            found.len(),
            1,
            "expected one sample {name}{labels:?}, found {found:#?}"
        );
        found[0].value
    }

    /// The value, or 0 when no sample matches (a series not created yet).
    fn value_or_zero(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        match self.matching(name, labels).count() {
            0 => 0.0,
            _ => self.value(name, labels),
        }
    }

    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|s| s.value).sum()
    }

    fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    /// Every value of label `key` across all samples.
    fn label_values(&self, key: &str) -> Vec<&str> {
        self.samples
            .iter()
            .filter_map(|s| s.labels.get(key).map(String::as_str))
            .collect()
    }
}

/// Parses the OpenMetrics text format (the subset the server writes: no exemplars, no
/// timestamps).
fn parse(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample line");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("closing brace");
                (name.to_string(), parse_labels(body))
            }
        };
        samples.push(Sample {
            name,
            labels,
            value,
        });
    }
    samples
}

fn parse_labels(body: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut chars = body.chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        assert_eq!(chars.next(), Some('"'), "label value opens with a quote");
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => panic!("dangling escape"),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.insert(key, value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    labels
}

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::config::Config::builder()
            .http_status_as_error(false)
            .build(),
    )
}

fn status(response: Result<http::Response<ureq::Body>, ureq::Error>) -> u16 {
    response.expect("request").status().as_u16()
}

/// Sends `request_line` (a method no client library sends) and reads the status.
fn raw_status(addr: std::net::SocketAddr, request_line: &str) -> u16 {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "{request_line}\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status_line = response.lines().next().unwrap_or_default();
    status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {status_line:?}"))
}

fn scrape(agent: &ureq::Agent, base: &str) -> Scrape {
    let response = agent.get(format!("{base}/metrics")).call().expect("scrape");
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = response.into_body().read_to_string().expect("body");
    let samples = parse(&text);
    Scrape {
        content_type,
        text,
        samples,
    }
}

fn start(dir: &std::path::Path, config: impl FnOnce(&mut Config)) -> Server {
    let mut cfg = Config::embedded_default();
    cfg.instances[0].data_dir = dir.join("default");
    config(&mut cfg);
    Server::start(cfg, "127.0.0.1:0").expect("server starts")
}

const DEFAULT: (&str, &str) = ("instance", "default");

#[test]
fn requests_are_counted_and_timed_by_route_template() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |_| {});
    let base = server.url();
    let agent = agent();

    for key in ["a", "b", "c"] {
        let r = agent
            .put(format!("{base}/keys/{key}"))
            .send_json(json!(format!("value of {key}")));
        assert_eq!(status(r), 200);
    }
    for _ in 0..2 {
        assert_eq!(status(agent.get(format!("{base}/keys/a")).call()), 200);
    }
    assert_eq!(
        status(agent.get(format!("{base}/keys/missing")).call()),
        404
    );
    let batch = json!({ "items": [{"key": "d", "value": "4"}, {"key": "e", "value": "5"}] });
    assert_eq!(
        status(agent.post(format!("{base}/keys/batch")).send_json(&batch)),
        200
    );
    assert_eq!(status(agent.delete(format!("{base}/keys/c")).call()), 200);
    assert_eq!(
        status(agent.get(format!("{base}/keys?limit=2")).call()),
        200
    );
    assert_eq!(
        status(agent.get(format!("{base}/db/default/keys/b")).call()),
        200
    );
    assert_eq!(
        status(agent.get(format!("{base}/db/ghost/keys/b")).call()),
        404
    );
    assert_eq!(
        status(agent.get(format!("{base}/no/such/path")).call()),
        404
    );
    assert_eq!(
        status(agent.get(format!("{base}/db/default/no/such/path")).call()),
        404
    );
    assert_eq!(raw_status(server.addr(), "BREW /keys/a HTTP/1.1"), 405);
    assert_eq!(status(agent.get(format!("{base}/health")).call()), 200);

    let s = scrape(&agent, &base);
    assert!(
        s.content_type.starts_with("application/openmetrics-text"),
        "{}",
        s.content_type
    );
    assert!(s.text.ends_with("# EOF\n"));

    let requests = "lsm_http_requests_total";
    let key_route = ("route", "/keys/{key}");
    let req = |labels: &[(&str, &str)]| s.value(requests, labels);
    assert_eq!(
        req(&[DEFAULT, key_route, ("method", "PUT"), ("status", "200")]),
        3.0
    );
    assert_eq!(
        req(&[DEFAULT, key_route, ("method", "GET"), ("status", "200")]),
        2.0
    );
    assert_eq!(
        req(&[DEFAULT, key_route, ("method", "GET"), ("status", "404")]),
        1.0
    );
    assert_eq!(
        req(&[DEFAULT, key_route, ("method", "DELETE"), ("status", "200")]),
        1.0
    );
    assert_eq!(
        req(&[DEFAULT, key_route, ("method", "other"), ("status", "405")]),
        1.0
    );
    assert_eq!(
        req(&[
            DEFAULT,
            ("route", "/keys/batch"),
            ("method", "POST"),
            ("status", "200")
        ]),
        1.0
    );
    assert_eq!(
        req(&[
            DEFAULT,
            ("route", "/keys"),
            ("method", "GET"),
            ("status", "200")
        ]),
        1.0
    );
    let named_route = ("route", "/db/{instance}/keys/{key}");
    assert_eq!(
        req(&[DEFAULT, named_route, ("method", "GET"), ("status", "200")]),
        1.0
    );
    // An unknown instance is not a label value: the request counts under instance="".
    assert_eq!(
        req(&[
            ("instance", ""),
            named_route,
            ("method", "GET"),
            ("status", "404")
        ]),
        1.0
    );
    assert_eq!(
        s.sum(requests, &[("route", "unmatched"), ("instance", "")]),
        2.0
    );
    assert_eq!(
        req(&[
            ("instance", ""),
            ("route", "/health"),
            ("method", "GET"),
            ("status", "200")
        ]),
        1.0
    );
    // A scrape is counted once it is answered: this one is not in its own output.
    assert_eq!(s.value_or_zero(requests, &[("route", "/metrics")]), 0.0);

    // Every request counted is in the duration histogram too.
    let durations = "lsm_http_request_duration_seconds_count";
    assert_eq!(
        s.value(durations, &[DEFAULT, key_route, ("method", "GET")]),
        3.0
    );
    assert_eq!(
        s.value(durations, &[DEFAULT, key_route, ("method", "PUT")]),
        3.0
    );
    assert_eq!(
        s.value(
            "lsm_http_request_duration_seconds_bucket",
            &[DEFAULT, key_route, ("method", "PUT"), ("le", "+Inf")]
        ),
        3.0
    );
    assert_eq!(s.sum(durations, &[]), s.sum(requests, &[]));

    // Engine calls, by operation: the 404 of an unknown instance never reached one.
    let ops = "lsm_engine_operation_duration_seconds_count";
    assert_eq!(s.value(ops, &[DEFAULT, ("op", "get")]), 4.0);
    assert_eq!(s.value(ops, &[DEFAULT, ("op", "put")]), 3.0);
    assert_eq!(s.value(ops, &[DEFAULT, ("op", "delete")]), 1.0);
    assert_eq!(s.value(ops, &[DEFAULT, ("op", "write_batch")]), 1.0);
    assert_eq!(s.value(ops, &[DEFAULT, ("op", "scan")]), 1.0);
    assert!(
        s.value(
            "lsm_engine_operation_duration_seconds_sum",
            &[DEFAULT, ("op", "put")]
        ) > 0.0
    );

    // Engine state, read at scrape time.
    assert_eq!(s.value("lsm_instance_up", &[DEFAULT]), 1.0);
    assert_eq!(s.value("lsm_writes_total", &[DEFAULT]), 5.0);
    assert!(s.value("lsm_memtable_bytes", &[DEFAULT]) > 0.0);
    assert!(s.value("lsm_wal_bytes", &[DEFAULT]) > 0.0);
    assert_eq!(s.sum("lsm_tables", &[DEFAULT]), 0.0);
    assert_eq!(s.value("lsm_flushes_total", &[DEFAULT]), 0.0);
    assert_eq!(s.value("lsm_write_stalls_total", &[DEFAULT]), 0.0);
    assert_eq!(
        s.value("lsm_build_info", &[("version", env!("CARGO_PKG_VERSION"))]),
        1.0
    );

    // Label values are templates and configured names, never what the client sent.
    for route in s.label_values("route") {
        assert!(
            route == "unmatched" || route.starts_with('/'),
            "route label {route:?}"
        );
        for raw in ["missing", "/keys/a", "ghost", "no/such", "BREW"] {
            assert!(!route.contains(raw), "route label {route:?} holds {raw:?}");
        }
    }
    for instance in s.label_values("instance") {
        assert!(["", "default"].contains(&instance), "instance {instance:?}");
    }
    assert!(!s.text.contains("ghost") && !s.text.contains("missing"));

    // A compaction flushes the memtable and leaves one table at the bottom level.
    let compact = agent.post(format!("{base}/admin/compact")).send_empty();
    assert_eq!(status(compact), 200);
    let s = scrape(&agent, &base);
    assert_eq!(s.value("lsm_tables", &[DEFAULT, ("level", "0")]), 0.0);
    assert_eq!(s.sum("lsm_tables", &[DEFAULT]), 1.0);
    let levels = s.matching("lsm_tables", &[DEFAULT]).count();
    assert!(levels > 1, "every level is listed, empty ones too");
    assert!(s.value("lsm_flushes_total", &[DEFAULT]) >= 1.0);
    assert!(s.value("lsm_flush_written_bytes_total", &[DEFAULT]) > 0.0);
    assert!(s.value("lsm_table_bytes", &[DEFAULT]) > 0.0);
    assert_eq!(s.value("lsm_memtable_entries", &[DEFAULT]), 0.0);
    assert_eq!(
        s.value(
            requests,
            &[
                DEFAULT,
                ("route", "/admin/compact"),
                ("method", "POST"),
                ("status", "200")
            ]
        ),
        1.0
    );
    assert_eq!(
        s.value(
            requests,
            &[
                ("instance", ""),
                ("route", "/metrics"),
                ("method", "GET"),
                ("status", "200")
            ]
        ),
        1.0
    );
    server.stop().unwrap();
}

#[test]
fn an_unavailable_instance_is_down_and_has_no_engine_series() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |cfg| {
        let mut broken = cfg.instances[0].clone();
        broken.name = "broken".into();
        broken.data_dir = dir.path().join("broken");
        broken.codec = CodecConfig::Plugin {
            plugin: dir.path().join("missing.wasm"),
        };
        cfg.instances.push(broken);
    });
    let base = server.url();
    let agent = agent();
    assert_eq!(
        status(agent.get(format!("{base}/db/broken/keys/x")).call()),
        503
    );

    let s = scrape(&agent, &base);
    assert_eq!(s.value("lsm_instance_up", &[DEFAULT]), 1.0);
    assert_eq!(s.value("lsm_instance_up", &[("instance", "broken")]), 0.0);
    assert_eq!(
        s.matching("lsm_tables", &[("instance", "broken")]).count(),
        0
    );
    assert_eq!(
        s.value(
            "lsm_http_requests_total",
            &[
                ("instance", "broken"),
                ("route", "/db/{instance}/keys/{key}"),
                ("status", "503")
            ]
        ),
        1.0
    );
    assert_eq!(
        s.matching(
            "lsm_engine_operation_duration_seconds_count",
            &[("instance", "broken")]
        )
        .count(),
        0
    );
    server.stop().unwrap();
}

#[test]
fn metrics_are_in_the_openapi_description() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |_| {});
    let doc: Value = agent()
        .get(format!("{}/openapi.json", server.url()))
        .call()
        .unwrap()
        .into_body()
        .read_json()
        .unwrap();
    assert!(doc["paths"]["/metrics"]["get"].is_object(), "{doc}");
    assert!(doc["paths"].get("/db/{instance}/metrics").is_none());
    server.stop().unwrap();
}

/// `lsm serve --log-format json` writes one JSON object per line on stderr, with a
/// request event per request (at debug level, enabled through RUST_LOG).
#[test]
fn serve_logs_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lsm"))
        .args(["serve", "--log-format", "json", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("RUST_LOG", "info,lsm::http=debug")
        .env_remove("LSM_ADMIN_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lsm serve starts");

    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a line").expect("stdout");
    let base = first
        .strip_prefix("lsm: listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();

    let agent = agent();
    assert_eq!(
        status(agent.put(format!("{base}/keys/k")).send_json(json!("v"))),
        200
    );
    assert_eq!(status(agent.get(format!("{base}/keys/nope")).call()), 404);
    assert_eq!(status(agent.get(format!("{base}/metrics")).call()), 200);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "lsm serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "lsm serve exited with {exit}");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(dir.path().join(".lsmdata").is_dir());

    let events: Vec<Value> = stderr
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
        })
        .collect();
    assert!(events.len() >= 5, "{stderr}");
    for event in &events {
        assert!(
            event["timestamp"].is_string() && event["level"].is_string(),
            "{event}"
        );
        assert!(event["fields"]["message"].is_string(), "{event}");
    }
    let requests: Vec<&Value> = events
        .iter()
        .filter(|e| e["target"] == "lsm::http")
        .collect();
    let put = requests
        .iter()
        .find(|e| e["fields"]["method"] == "PUT")
        .expect("the PUT is logged");
    assert_eq!(put["level"], "DEBUG");
    assert_eq!(put["fields"]["route"], "/keys/{key}");
    assert_eq!(put["fields"]["status"], 200);
    assert_eq!(put["fields"]["instance"], "default");
    assert!(put["fields"]["latency_ms"].as_f64().is_some());
    let missing = requests
        .iter()
        .find(|e| e["fields"]["status"] == 404)
        .expect("the 404 is logged");
    assert_eq!(missing["level"], "INFO");
    assert_eq!(missing["fields"]["code"], "key-not-found");
    assert!(requests
        .iter()
        .any(|e| e["fields"]["route"] == "/metrics" && e["fields"]["instance"] == ""));
    assert!(events
        .iter()
        .any(|e| e["fields"]["message"] == "SIGTERM: shutting down"));
}
