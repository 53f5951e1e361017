//! The load client: `connections` keep-alive HTTP/1.1 connections (hyper's connection
//! API, no pool), each one request at a time, closed loop, for a warm-up and then a
//! measured interval. Every request's latency (from building the request to the last
//! byte of the answer) goes into an HDR histogram; every answer's status is checked and,
//! for GETs of lsm, its value.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{header, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::keys;

/// What each request does.
#[derive(Debug, Clone, Copy)]
pub enum Requests {
    /// `GET /keys/{key}` of a uniformly random key among `0..num`; with `check`, the
    /// answer must hold that key's value.
    Get { num: u64, check: bool },
    /// `POST /keys` of `{"key":..,"value":..}` with a uniformly random key at or above
    /// `from` (new keys, almost never repeated).
    Post { from: u64 },
}

/// The shape of one load run.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub value_size: usize,
    pub seed: u64,
}

/// What one load run measured (the warm-up excluded).
pub struct Outcome {
    /// Requests that started after the warm-up.
    pub requests: u64,
    /// From the end of the warm-up to the last of those requests' answers.
    pub elapsed: Duration,
    /// Their latencies, in nanoseconds.
    pub latency: Histogram<u64>,
    /// CPU time (user + system) the server process and this process used over
    /// `cpu_window`, when `/proc` tells.
    pub server_cpu: Option<Duration>,
    pub client_cpu: Option<Duration>,
    /// CPU time the whole machine spent busy (not idle, not waiting for I/O) over
    /// `cpu_window`: what exceeds server + client is other processes' (or the kernel's
    /// own) work, which competed with the run.
    pub machine_cpu: Option<Duration>,
    /// Wall time between the two CPU samples (the measured interval, give or take the
    /// last answers).
    pub cpu_window: Duration,
}

impl Outcome {
    pub fn per_sec(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Average number of cores busy with `cpu` over the measured interval.
    pub fn cores(&self, cpu: Option<Duration>) -> Option<f64> {
        cpu.map(|c| c.as_secs_f64() / self.cpu_window.as_secs_f64().max(1e-9))
    }

    /// Average number of cores busy with anything but the server and the client.
    pub fn other_cores(&self) -> Option<f64> {
        let other = self
            .machine_cpu?
            .saturating_sub(self.server_cpu? + self.client_cpu?);
        self.cores(Some(other))
    }

    /// CPU time per request, in µs.
    pub fn micros_per_request(&self, cpu: Option<Duration>) -> Option<f64> {
        let per_sec = self.requests as f64 / self.cpu_window.as_secs_f64().max(1e-9);
        self.cores(cpu).map(|c| c * 1e6 / per_sec)
    }

    pub fn quantile(&self, q: f64) -> Duration {
        Duration::from_nanos(self.latency.value_at_quantile(q))
    }
}

/// The value of key number `i`, as the JSON string the requests carry: `len` ASCII
/// letters and digits derived from [`keys::fill_value`] (so no JSON escaping).
pub fn value_text(i: u64, len: usize, out: &mut Vec<u8>) {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    out.clear();
    out.resize(len, 0);
    keys::fill_value(i, out);
    for b in out.iter_mut() {
        *b = ALPHABET[usize::from(*b) % ALPHABET.len()];
    }
}

/// One keep-alive connection to `addr`.
pub async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP handshake")?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends one request and reads the whole answer.
pub async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    host: &str,
    method: Method,
    path: &str,
    body: Bytes,
) -> Result<(StatusCode, Bytes)> {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, host);
    if !body.is_empty() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    let req = req.body(Full::new(body))?;
    sender.ready().await.context("connection closed")?;
    let resp = sender
        .send_request(req)
        .await
        .context("sending a request")?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .context("reading an answer")?
        .to_bytes();
    Ok((status, body))
}

/// CPU time (user + system, all threads) of process `pid` (`self` for this one) so far,
/// from `/proc/<pid>/stat`.
pub fn process_cpu(pid: &str) -> Option<Duration> {
    // /proc reports in USER_HZ ticks, 100 per second on every Linux architecture.
    const TICKS_PER_SEC: u64 = 100;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start with the state, the
    // third field; utime and stime are the 14th and 15th.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis(
        (utime + stime) * 1000 / TICKS_PER_SEC,
    ))
}

/// Busy CPU time of the whole machine so far (all CPUs; idle and iowait excluded), from
/// the first line of `/proc/stat`.
pub fn machine_busy() -> Option<Duration> {
    const TICKS_PER_SEC: u64 = 100;
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice, already in user]
    let busy: u64 = ticks.iter().take(8).sum::<u64>() - ticks.get(3)? - ticks.get(4)?;
    Some(Duration::from_millis(busy * 1000 / TICKS_PER_SEC))
}

/// Runs `what` against `addr` (served by process `server_pid`) on the current runtime:
/// opens the connections, then every connection sends requests back to back until the
/// warm-up and the measured interval are over.
pub async fn run(addr: SocketAddr, server_pid: u32, load: Load, what: Requests) -> Result<Outcome> {
    let host = addr.to_string();
    let mut senders = Vec::with_capacity(load.connections);
    for _ in 0..load.connections {
        senders.push(connect(addr).await?);
    }
    let start = Instant::now();
    let measure_from = start + load.warmup;
    let end = measure_from + load.duration;
    let mut tasks = Vec::with_capacity(load.connections);
    for (c, sender) in senders.into_iter().enumerate() {
        let host = host.clone();
        let rng = StdRng::seed_from_u64(load.seed ^ (c as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        tasks.push(tokio::spawn(connection(
            sender,
            host,
            rng,
            what,
            load.value_size,
            measure_from,
            end,
        )));
    }
    let server_pid = server_pid.to_string();
    let sample = || {
        (
            Instant::now(),
            process_cpu(&server_pid),
            process_cpu("self"),
            machine_busy(),
        )
    };
    tokio::time::sleep_until(measure_from.into()).await;
    let (w0, s0, c0, m0) = sample();
    tokio::time::sleep_until(end.into()).await;
    let (w1, s1, c1, m1) = sample();
    let diff = |a: Option<Duration>, b: Option<Duration>| Some(b?.saturating_sub(a?));

    let mut requests = 0;
    let mut last = measure_from;
    let mut latency = new_histogram();
    for t in tasks {
        let one = t.await.context("a load task panicked")??;
        requests += one.requests;
        last = last.max(one.last);
        latency.add(&one.latency)?;
    }
    ensure!(
        requests > 0,
        "no request completed in the measured interval"
    );
    Ok(Outcome {
        requests,
        elapsed: last - measure_from,
        latency,
        server_cpu: diff(s0, s1),
        client_cpu: diff(c0, c1),
        machine_cpu: diff(m0, m1),
        cpu_window: w1 - w0,
    })
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs to 100 s, 3 significant digits.
    Histogram::new_with_bounds(1_000, 100_000_000_000, 3).expect("valid bounds")
}

struct ConnectionOutcome {
    requests: u64,
    last: Instant,
    latency: Histogram<u64>,
}

async fn connection(
    mut sender: SendRequest<Full<Bytes>>,
    host: String,
    mut rng: StdRng,
    what: Requests,
    value_size: usize,
    measure_from: Instant,
    end: Instant,
) -> Result<ConnectionOutcome> {
    let mut out = ConnectionOutcome {
        requests: 0,
        last: measure_from,
        latency: new_histogram(),
    };
    let mut value = Vec::with_capacity(value_size);
    let mut expected = Vec::with_capacity(value_size + 16);
    loop {
        let t0 = Instant::now();
        if t0 >= end {
            return Ok(out);
        }
        match what {
            Requests::Get { num, check } => {
                let i = rng.random_range(0..num);
                let key = keys::key(i);
                let key = std::str::from_utf8(&key).expect("decimal");
                let path = format!("/keys/{key}");
                let (status, body) =
                    send(&mut sender, &host, Method::GET, &path, Bytes::new()).await?;
                if status != StatusCode::OK {
                    bail!(
                        "GET {path}: status {status}: {}",
                        String::from_utf8_lossy(&body)
                    );
                }
                if check {
                    value_text(i, value_size, &mut value);
                    expected.clear();
                    expected.extend_from_slice(br#""value":""#);
                    expected.extend_from_slice(&value);
                    expected.push(b'"');
                    if !body
                        .windows(expected.len())
                        .any(|w| w == expected.as_slice())
                    {
                        bail!(
                            "GET {path}: the answer lacks the key's value: {}",
                            String::from_utf8_lossy(&body)
                        );
                    }
                }
            }
            Requests::Post { from } => {
                let i = rng.random_range(from..=keys::MAX_KEY_NUMBER);
                let key = keys::key(i);
                let key = std::str::from_utf8(&key).expect("decimal");
                value_text(i, value_size, &mut value);
                let value = std::str::from_utf8(&value).expect("ASCII");
                let body = Bytes::from(format!(r#"{{"key":"{key}","value":"{value}"}}"#));
                let (status, answer) =
                    send(&mut sender, &host, Method::POST, "/keys", body).await?;
                if status != StatusCode::OK {
                    bail!(
                        "POST /keys: status {status}: {}",
                        String::from_utf8_lossy(&answer)
                    );
                }
            }
        }
        let t1 = Instant::now();
        if t0 >= measure_from {
            out.requests += 1;
            out.last = t1;
            out.latency
                .saturating_record(u64::try_from((t1 - t0).as_nanos()).unwrap_or(u64::MAX));
        }
    }
}
