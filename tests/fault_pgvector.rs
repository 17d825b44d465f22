//! Fault: the PostgreSQL server dies in the middle of a measured phase.
//!
//! The test starts a private throwaway cluster (initdb in a temp dir, its own port, trust
//! auth on loopback, `CREATE EXTENSION vector`), runs the real `dbbench` binary against
//! it, stops the server with `pg_ctl stop -m immediate` a few seconds into the measured
//! phase, and checks that dbbench says what happened, keeps what it measured, and exits 1
//! without a panic. The cluster is torn down by a guard even when an assertion fails.
//! Needs PostgreSQL 15 with pgvector installed (`services/up.sh pgvector` installs both).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// A PostgreSQL tool, run as the `postgres` OS user when we are root (PostgreSQL refuses
/// to run as root).
fn pg_tool(tool: &str) -> Command {
    let bin = format!("{PG_BIN}/{tool}");
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", &bin]);
        c
    } else {
        Command::new(bin)
    }
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    for port in [5439u16, 5449, 5459, 5469] {
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind(("127.0.0.1", 0)).unwrap().local_addr().unwrap().port()
}

/// A private cluster; stopping and removing it is the guard's job.
struct Cluster {
    dir: tempfile::TempDir,
    port: u16,
}

impl Cluster {
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn start() -> Cluster {
        assert!(
            Path::new(PG_BIN).join("initdb").exists(),
            "{PG_BIN}/initdb missing: run services/up.sh pgvector to install PostgreSQL 15 + pgvector"
        );
        let dir = tempfile::Builder::new().prefix("dbbench-fault-pg").tempdir().unwrap();
        if is_root() {
            run(Command::new("chown").args(["postgres:", &dir.path().display().to_string()]), "chown");
        }
        let cluster = Cluster { port: free_port(), dir };
        let data = cluster.data().display().to_string();
        run(
            pg_tool("initdb")
                .args(["-D", &data, "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8", "--auth=trust"])
                .current_dir(cluster.dir.path()),
            "initdb",
        );
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            cluster.port,
            cluster.dir.path().display()
        );
        let log = cluster.dir.path().join("log").display().to_string();
        run(
            pg_tool("pg_ctl")
                .args(["-D", &data, "-o", &opts, "-l", &log, "-w", "-t", "60", "start"])
                .current_dir(cluster.dir.path()),
            "pg_ctl start",
        );
        run(
            pg_tool("psql")
                .args([
                    "-X",
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &cluster.port.to_string(),
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                ])
                .args(["-c", "CREATE EXTENSION vector"])
                .current_dir(cluster.dir.path()),
            "CREATE EXTENSION vector",
        );
        cluster
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn kill(&self) {
        let data = self.data().display().to_string();
        run(
            pg_tool("pg_ctl").args(["-D", &data, "stop", "-m", "immediate", "-w"]).current_dir(self.dir.path()),
            "pg_ctl stop -m immediate",
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data().display().to_string();
        if self.data().join("postmaster.pid").exists() {
            let _ = pg_tool("pg_ctl")
                .args(["-D", &data, "stop", "-m", "immediate", "-w"])
                .current_dir(self.dir.path())
                .output();
        }
    }
}

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
