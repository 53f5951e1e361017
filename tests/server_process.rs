//! `lsm serve` as a process: the embedded default, a configuration file, graceful
//! shutdown on SIGTERM/SIGINT that loses nothing acknowledged and flushes nothing twice,
//! and SIGKILL in the middle of writes.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::http::Http;
use serde_json::json;

struct Running {
    child: Child,
    http: Http,
}

/// Starts `lsm serve ARGS` in `cwd` on a free port and waits for it to listen.
fn serve(cwd: &Path, args: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lsm"))
        .arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn lsm serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read");
    let Some(url) = line.trim().strip_prefix("lsm: listening on ") else {
        let out = child.wait_with_output().expect("wait");
        panic!(
            "no listening line: {line:?}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    Running {
        http: Http::new(url.to_string()),
        child,
    }
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Sends `sig` and waits for the exit; returns (success, stderr).
fn stop(mut running: Running, sig: &str) -> (bool, String) {
    signal(&running.child, sig);
    let status = running.child.wait().expect("wait");
    let mut stderr = String::new();
    if let Some(mut e) = running.child.stderr.take() {
        std::io::Read::read_to_string(&mut e, &mut stderr).expect("stderr");
    }
    (status.success(), stderr)
}

#[test]
fn the_embedded_default_serves_from_dot_lsmdata_and_stops_cleanly() {
    let dir = common::scratch_dir();
    let s = serve(dir.path(), &[]);
    let health = s.http.get("/health").json();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["default_instance"], "default");
    assert_eq!(
        s.http
            .post_json("/keys", &json!({"key": "a", "value": "1"}))
            .status,
        200
    );
    assert_eq!(s.http.get("/db/default/keys/a").json()["value"], "1");
    let (ok, stderr) = stop(s, "TERM");
    assert!(ok, "{stderr}");
    assert!(dir.path().join(".lsmdata").join("MANIFEST").is_file());

    let s = serve(dir.path(), &[]);
    assert_eq!(s.http.get("/keys/a").json()["value"], "1");
    let (ok, stderr) = stop(s, "INT");
    assert!(ok, "{stderr}");
}

#[test]
fn graceful_shutdown_loses_no_acknowledged_write_and_flushes_nothing_twice() {
    let dir = common::scratch_dir();
    let s = serve(dir.path(), &[]);
    // Writers run until the server goes away; every acknowledged key must survive.
    let stop_flag = Arc::new(AtomicBool::new(false));
    let base = server_url(&s);
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let base = base.clone();
            let stop_flag = Arc::clone(&stop_flag);
            std::thread::spawn(move || {
                let http = Http::new(base);
                let mut acked = Vec::new();
                for i in 0.. {
                    if stop_flag.load(Ordering::Relaxed) {
                        break;
                    }
                    let key = format!("w{w}:{i:06}");
                    let r =
                        http.try_post_json("/keys", &json!({"key": key, "value": format!("{i}")}));
                    match r {
                        Ok(r) if r.status == 200 => acked.push(key),
                        _ => break,
                    }
                }
                acked
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(400));
    let (ok, stderr) = stop(s, "TERM");
    stop_flag.store(true, Ordering::Relaxed);
    assert!(ok, "{stderr}");
    let acked: Vec<String> = writers
        .into_iter()
        .flat_map(|w| w.join().expect("writer"))
        .collect();
    assert!(
        acked.len() > 20,
        "only {} writes before the signal",
        acked.len()
    );

    let s = serve(dir.path(), &[]);
    for key in &acked {
        assert_eq!(
            s.http.get(&format!("/keys/{key}")).status,
            200,
            "{key} lost"
        );
    }
    let stats = s.http.get("/stats").json();
    assert_eq!(
        stats["memtable_entries"], 0,
        "closing flushed the memtable: nothing to replay"
    );
    let tables = stats["tables"].clone();
    let (ok, _) = stop(s, "TERM");
    assert!(ok);
    let s = serve(dir.path(), &[]);
    assert_eq!(
        s.http.get("/stats").json()["tables"],
        tables,
        "nothing was flushed twice"
    );
    stop(s, "TERM");
}

fn server_url(s: &Running) -> String {
    s.http.base().to_string()
}

#[test]
fn sigkill_during_writes_keeps_every_acknowledged_write() {
    let dir = common::scratch_dir();
    for round in 0..3 {
        let s = serve(dir.path(), &[]);
        let base = server_url(&s);
        let writer = std::thread::spawn(move || {
            let http = Http::new(base);
            let mut acked = Vec::new();
            for i in 0..100_000 {
                let key = format!("r{round}:{i:06}");
                let items = json!({"items": [{"key": key, "value": "x"}, {"key": format!("{key}b"), "value": "y"}]});
                match http.try_post_json("/keys/batch", &items) {
                    Ok(r) if r.status == 200 => acked.push(key),
                    _ => break,
                }
            }
            acked
        });
        std::thread::sleep(std::time::Duration::from_millis(150 + 100 * round));
        let mut child = s.child;
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");
        let acked = writer.join().expect("writer");
        assert!(!acked.is_empty());
        let s = serve(dir.path(), &[]);
        for key in &acked {
            assert_eq!(
                s.http.get(&format!("/keys/{key}")).status,
                200,
                "{key} lost"
            );
            assert_eq!(
                s.http.get(&format!("/keys/{key}b")).status,
                200,
                "{key}b lost: batch torn"
            );
        }
        stop(s, "TERM");
    }
}

#[test]
fn a_configuration_file_is_used_and_its_mistakes_stop_the_start() {
    let dir = common::scratch_dir();
    let conf = dir.path().join("lsm.toml");
    std::fs::write(
        &conf,
        "[[instance]]\nname = \"app\"\ndata_dir = \"./data/app\"\ncodec = \"json\"\n\n\
         [[instance]]\nname = \"log\"\ndata_dir = \"./data/log\"\ncodec = \"raw\"\nsync = \"never\"\n",
    )
    .expect("write");
    // Run from elsewhere: relative paths follow the configuration file.
    let elsewhere = common::scratch_dir();
    let s = serve(
        elsewhere.path(),
        &["--config", conf.to_str().expect("utf-8")],
    );
    assert_eq!(
        s.http
            .post_json("/db/app/keys", &json!({"key": "k", "value": {"a": 1}}))
            .status,
        200
    );
    assert_eq!(
        s.http.get("/db/app/keys/k").json()["value"],
        json!({"a": 1})
    );
    assert_eq!(s.http.get("/db/log/health").status, 200);
    stop(s, "TERM");
    assert!(dir.path().join("data/app/MANIFEST").is_file());
    assert!(!elsewhere.path().join("data").exists());

    std::fs::write(
        &conf,
        "[[instance]]\nname = \"app\"\ndata_dir = \"d\"\nsync = \"sometimes\"\n",
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_lsm"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&conf)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("lsm.toml:4"), "{stderr}");
    assert!(stderr.contains("sometimes"), "{stderr}");
}
