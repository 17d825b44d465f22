//! Fault: the PostgreSQL server dies in the middle of a measured phase.
//!
//! The test starts a private throwaway cluster (initdb in a temp dir, its own port, trust
//! auth on loopback, `CREATE EXTENSION vector`), runs the real `dbbench` binary against
//! it, stops the server with `pg_ctl stop -m immediate` a few seconds into the measured
//! phase, and checks that dbbench says what happened, keeps what it measured, and exits 1
//! without a panic. The cluster is torn down by a guard even when an assertion fails.
//! Needs PostgreSQL 15 with pgvector installed (`services/up.sh pgvector` installs both).

use std::io::{BufRead, BufReader};

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/pg.rs"]
mod pg;

use pg::Cluster;

const WORKLOAD: &str = r#"
[workload]
name = "fault"

[dataset]
source = "synthetic"
[dataset.synthetic]
docs = 2000
queries = 50
dim = 16

[[attributes]]
name = "year"
kind = "integer"
min = 2000
max = 2019

[engines.pgvector]
url = "${DBBENCH_FAULT_PG_URL}"
settings = { pool_size = 4, connect_timeout_s = 2 }

[[phases]]
name = "mixed"
duration = "60s"
warmup = "0s"
concurrency = 4
[[phases.ops]]
op = "knn"
k = 10
[[phases.ops]]
op = "get"
"#;

#[test]
fn server_dying_mid_phase_fails_the_engine_and_keeps_what_was_measured() {
    let cluster = Cluster::start();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("fault.toml");
    std::fs::write(&file, WORKLOAD).unwrap();
    let out = work.path().join("out");

    let mut child = Command::new(env!("CARGO_BIN_EXE_dbbench"))
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .arg("--no-progress")
        .arg("--cache")
        .arg(work.path().join("cache"))
        .env("DBBENCH_FAULT_PG_URL", cluster.url())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Read stderr on a thread; tell the test when the measured phase has begun (the line
    // after the index build is the last thing printed before it).
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("index build and refresh") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let started = rx.recv_timeout(Duration::from_secs(120));
    assert!(started.is_ok(), "the measured phase never started");
    std::thread::sleep(Duration::from_secs(3));
    let killed_at = Instant::now();
    cluster.kill();

    let status = child.wait().unwrap();
    let stderr = reader.join().unwrap();
    let stdout = {
        let mut s = String::new();
        if let Some(mut o) = child.stdout.take() {
            std::io::Read::read_to_string(&mut o, &mut s).unwrap();
        }
        s
    };
    assert!(
        killed_at.elapsed() < Duration::from_secs(40),
        "dbbench noticed the dead server well before the 60 s phase ended"
    );
    assert_eq!(status.code(), Some(1), "exit code 1\nstderr:\n{stderr}");
    assert!(!stderr.contains("panicked"), "no panic:\n{stderr}");
    assert!(
        stderr.contains("engine pgvector") && stderr.contains("engine lost"),
        "stderr says the engine was lost and names it:\n{stderr}\nstdout:\n{stdout}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(json["run"]["complete"], false);
    let engine = &json["engines"][0];
    assert_eq!(engine["name"], "pgvector");
    assert_eq!(engine["status"], "failed");
    let reason = engine["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("lost"), "reason: {reason}");
    let phase = &engine["phases"][0];
    assert_eq!(phase["name"], "mixed");
    assert_eq!(phase["complete"], false);
    let ops = phase["ops"].as_array().unwrap();
    let count: u64 = ops.iter().map(|o| o["count"].as_u64().unwrap()).sum();
    let errors: u64 = ops.iter().map(|o| o["errors"].as_u64().unwrap()).sum();
    assert!(count > 0, "requests measured before the failure are kept");
    assert!(errors > 0, "the failed requests are counted");
    let kinds: Vec<&str> =
        ops.iter().flat_map(|o| o["error_kinds"].as_object().unwrap().keys().map(String::as_str)).collect();
    assert!(kinds.contains(&"unreachable"), "errors are counted as unreachable: {kinds:?}");
    drop(cluster);
}
