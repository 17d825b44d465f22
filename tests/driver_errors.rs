//! Chroma and Elasticsearch classify the same failures alike, and the runner's
//! lost-engine stop fires for both: each driver talks to a tiny HTTP server on 127.0.0.1
//! inside the test that answers `prepare`, then refuses, resets, closes, stalls or
//! answers 429/502/503/401 on the measured request. No engine needed; loopback only, every
//! wait bounded.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dbbench::data::{self, Dataset};
use dbbench::driver::{self, Driver, EngineConfig, ErrorKind, Op, OpKind, SearchParams};
use dbbench::runner::ops::{Keyspace, PreparedOp};
use dbbench::runner::phase::{run_phase, PhaseEnv};
use dbbench::spec::{DatasetPlan, KeyChoice, OpPlan, QueryOrder, Schedule, Stop, SyntheticSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// How the fake server treats a request that is not part of `prepare`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// Answer normally (prepare's calls only; anything else is a 500).
    None,
    /// Stop listening: the next connection is refused.
    Refuse,
    /// Read the request, then reset the connection (RST, no answer).
    Reset,
    /// Read the request, then close the connection without an answer.
    Close,
    /// Read the request and say nothing until the client gives up.
    Stall,
    /// Answer with this status and a plain-text body (as a proxy would).
    Status(u16),
}

struct FakeEngine {
    url: String,
    fault: Arc<Mutex<Fault>>,
    stop: CancellationToken,
}

impl FakeEngine {
    async fn start() -> FakeEngine {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let fault = Arc::new(Mutex::new(Fault::None));
        let stop = CancellationToken::new();
        let (f, s) = (fault.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let conn = tokio::select! {
                    c = listener.accept() => c,
                    // Dropping the listener closes the port: connects are refused.
                    _ = s.cancelled() => return,
                };
                let Ok((stream, _)) = conn else { return };
                let (f, s) = (f.clone(), s.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        _ = serve(stream, f) => {}
                        _ = s.cancelled() => {}
                    }
                });
            }
        });
        FakeEngine { url, fault, stop }
    }

    fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
        if fault == Fault::Refuse {
            self.stop.cancel();
        }
    }
}

impl Drop for FakeEngine {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Read one request (headers and a Content-Length body); returns method and path.
async fn read_request(stream: &mut TcpStream) -> Option<(String, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let mut first = head.lines().next()?.split(' ');
    Some((first.next()?.to_string(), first.next()?.to_string()))
}

/// The answers `prepare` needs from each engine; None for anything else.
fn prepare_answer(method: &str, path: &str) -> Option<(u16, &'static str)> {
    let chroma_db = "/api/v2/tenants/dbbench/databases/dbbench";
    match (method, path) {
        // Chroma: tenant, database, no earlier collection, create, batch size.
        ("POST", "/api/v2/tenants") | ("POST", "/api/v2/tenants/dbbench/databases") => Some((200, "{}")),
        ("GET", p) if p == format!("{chroma_db}/collections/dbbench_fake") => {
            Some((404, r#"{"error":"NotFoundError","message":"no such collection"}"#))
        }
        ("POST", p) if p == format!("{chroma_db}/collections") => Some((200, r#"{"id":"c0ffee"}"#)),
        ("GET", "/api/v2/pre-flight-checks") => Some((200, r#"{"max_batch_size":100}"#)),
        // Elasticsearch: no earlier index, create it.
        ("GET", p) if p.starts_with("/dbbench_fake?") => {
            Some((404, r#"{"error":{"type":"index_not_found_exception","reason":"no such index"},"status":404}"#))
        }
        ("PUT", "/dbbench_fake") => Some((200, r#"{"acknowledged":true}"#)),
        _ => None,
    }
}

async fn respond(stream: &mut TcpStream, status: u16, body: &str, content_type: &str) {
    let head = format!(
        "HTTP/1.1 {status} Fake\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

async fn serve(mut stream: TcpStream, fault: Arc<Mutex<Fault>>) {
    let Some((method, path)) = read_request(&mut stream).await else { return };
    let fault = *fault.lock().unwrap();
    match (fault, prepare_answer(&method, &path)) {
        (Fault::None, Some((status, body))) => respond(&mut stream, status, body, "application/json").await,
        (Fault::None, None) => respond(&mut stream, 500, "unexpected request", "text/plain").await,
        (Fault::Refuse, _) => {}
        (Fault::Reset, _) => {
            // SO_LINGER 0: closing sends RST instead of FIN. Tokio deprecates SO_LINGER
            // because a non-zero linger blocks the thread on drop; zero never waits.
            #[allow(deprecated)]
            let _ = stream.set_linger(Some(Duration::ZERO));
            drop(stream);
        }
        (Fault::Close, _) => drop(stream),
        (Fault::Stall, _) => tokio::time::sleep(Duration::from_secs(10)).await,
        (Fault::Status(code), _) => respond(&mut stream, code, "the fake engine says no", "text/plain").await,
    }
}

const ENGINES: [&str; 2] = ["chroma", "elasticsearch"];

fn open(kind: &str, url: &str) -> Box<dyn Driver> {
    let cfg = EngineConfig {
        name: kind.into(),
        url: Some(url.into()),
        settings: toml::from_str("timeout_ms = 500").unwrap(),
        base_dir: ".".into(),
    };
    (driver::find_kind(kind).unwrap().open)(&cfg).unwrap()
}

fn dataset() -> Arc<Dataset> {
    let plan = DatasetPlan::synthetic(SyntheticSpec { docs: 100, queries: 10, dim: 4, ..Default::default() });
    Arc::new(data::build(&plan, &[], 1).unwrap())
}

/// One driver, prepared against a fresh fake engine.
async fn prepared(kind: &str) -> (FakeEngine, Arc<dyn Driver>, Arc<Dataset>) {
    let engine = FakeEngine::start().await;
    let d: Arc<dyn Driver> = Arc::from(open(kind, &engine.url));
    let ds = dataset();
    d.prepare(&ds.schema("dbbench_fake")).await.unwrap_or_else(|e| panic!("{kind} prepare: {e}"));
    (engine, d, ds)
}

/// The kind of error one kNN request gets from `kind` under `fault`.
async fn knn_error(kind: &str, fault: Fault) -> ErrorKind {
    let (engine, d, ds) = prepared(kind).await;
    engine.set(fault);
    let op = Op::Knn { vector: ds.query_vector(0), k: 5, filter: None, params: &SearchParams::new() };
    let err = tokio::time::timeout(Duration::from_secs(10), d.execute(&op))
        .await
        .unwrap_or_else(|_| panic!("{kind} under {fault:?}: no error within 10s"))
        .expect_err("the request fails");
    assert!(err.message.starts_with(kind), "{kind}: the message names the engine: {}", err.message);
    err.kind
}

#[tokio::test]
async fn chroma_and_elasticsearch_classify_transport_failures_and_statuses_alike() {
    let cases = [
        (Fault::Refuse, ErrorKind::Unreachable),
        (Fault::Reset, ErrorKind::Unreachable),
        (Fault::Close, ErrorKind::Unreachable),
        (Fault::Stall, ErrorKind::Timeout),
        (Fault::Status(429), ErrorKind::Rejected),
        (Fault::Status(502), ErrorKind::Unreachable),
        (Fault::Status(503), ErrorKind::Unreachable),
        (Fault::Status(504), ErrorKind::Timeout),
        (Fault::Status(401), ErrorKind::Auth),
        (Fault::Status(403), ErrorKind::Auth),
    ];
    for (fault, expected) in cases {
        for kind in ENGINES {
            assert_eq!(knn_error(kind, fault).await, expected, "{kind} under {fault:?}");
        }
    }
}

#[tokio::test]
async fn refused_credentials_on_ping_are_auth_errors_for_both() {
    for kind in ENGINES {
        let engine = FakeEngine::start().await;
        engine.set(Fault::Status(401));
        let err = open(kind, &engine.url).ping().await.expect_err("401 on ping");
        assert_eq!(err.kind, ErrorKind::Auth, "{kind}: {}", err.message);
    }
}

fn knn_op() -> OpPlan {
    OpPlan {
        label: "knn".into(),
        kind: OpKind::Knn,
        weight: 1.0,
        k: 5,
        filter: None,
        keys: KeyChoice::Uniform,
        zipf_theta: 0.99,
        scan_length: 10,
        field: None,
        params: SearchParams::new(),
        query_order: QueryOrder::Random,
        expand: None,
    }
}

#[tokio::test]
async fn a_phase_against_an_engine_answering_503_stops_as_lost_for_both() {
    for kind in ENGINES {
        let (engine, d, ds) = prepared(kind).await;
        engine.set(Fault::Status(503));
        let keys = Arc::new(Keyspace::new(ds.len() as u64));
        let ops = vec![PreparedOp::new(knn_op(), None, ds.len() as u64, &[])];
        let env = PhaseEnv {
            driver: d,
            dataset: ds,
            keys,
            ops: Arc::new(ops),
            threads: None,
            stream: None,
            timing: Default::default(),
        };
        let run = run_phase(
            &env,
            Schedule::Closed { concurrency: 1 },
            Stop::Duration(Duration::from_secs(30)),
            7,
            &CancellationToken::new(),
            Arc::new(AtomicU64::new(0)),
        )
        .await;
        let why = run.interrupted.unwrap_or_else(|| panic!("{kind}: the phase does not stop"));
        assert!(why.contains("engine lost") && why.contains("HTTP 503"), "{kind}: {why}");
        assert!(run.elapsed < Duration::from_secs(10), "{kind}: stops at once, not after 30 s: {:?}", run.elapsed);
        assert_eq!(run.metrics[0].error_count(), 20, "{kind}");
    }
}

#[tokio::test]
async fn a_rest_engine_refusing_credentials_fails_the_run_rather_than_being_skipped() {
    let engine = FakeEngine::start().await;
    engine.set(Fault::Status(401));
    let dir = tempfile::tempdir().unwrap();
    let workload = format!(
        r#"
[workload]
name = "auth"
[dataset]
source = "synthetic"
[dataset.synthetic]
docs = 50
queries = 5
dim = 4
[engines.chroma]
url = "{}"
[[phases]]
name = "get"
requests = 10
[[phases.ops]]
op = "get"
"#,
        engine.url
    );
    std::fs::write(dir.path().join("w.toml"), workload).unwrap();
    let cwd = dir.path().to_path_buf();
    // The CLI runs on a blocking thread so that this runtime keeps serving the fake engine.
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_dbbench"))
            .args(["run", "w.toml", "--out", "run", "--cache", "cache"])
            .current_dir(cwd)
            .output()
            .expect("run dbbench")
    })
    .await
    .unwrap();
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("engine chroma: chroma at http://127.0.0.1:"), "{all}");
    assert!(all.contains("refused the credentials: chroma heartbeat: HTTP 401"), "{all}");
    assert!(!all.contains("engine chroma skipped"), "{all}");
}
