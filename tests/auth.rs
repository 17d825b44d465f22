//! A wrong PostgreSQL password is a configuration error: the engine fails with a message
//! that says the credentials were refused and what to check, and the run exits 1; an
//! absent server in the same run is still a skip with its start hint. Needs the live
//! pgvector server (`services/up.sh pgvector`; URL from `DBBENCH_PG_URL`), which it only
//! asks to authenticate: nothing is created. Fails, rather than skips, when the server
//! cannot be reached, as the conformance suite does.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn dbbench(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dbbench")).args(args).current_dir(cwd).output().expect("run dbbench")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The live server's URL with the password replaced by a wrong one.
fn wrong_password_url() -> String {
    let url = std::env::var("DBBENCH_PG_URL").unwrap_or_else(|_| dbbench::driver::pgvector::DEFAULT_URL.to_string());
    let mut url = reqwest::Url::parse(&url).expect("a postgres:// URL");
    url.set_password(Some("WRONG")).expect("the URL takes a password");
    url.to_string()
}

fn workload(url: &str) -> String {
    format!(
        r#"
[workload]
name = "auth"

[dataset]
source = "synthetic"
[dataset.synthetic]
docs = 50
queries = 5
dim = 4

[engines.pg]
driver = "pgvector"
url = "{url}"

[engines.absent]
driver = "pgvector"
url = "postgres://dbbench:dbbench@127.0.0.1:1/dbbench"

[[phases]]
name = "get"
requests = 10
[[phases.ops]]
op = "get"
"#
    )
}

#[test]
fn a_wrong_postgres_password_fails_the_engine_and_an_absent_server_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("w.toml"), workload(&wrong_password_url())).unwrap();
    let out = dbbench(&["run", "w.toml", "--out", "run", "--cache", "cache"], dir.path());
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "a refused credential is not exit 0: {all}");
    assert!(
        all.contains("engine pg: pgvector at postgres://dbbench:***@"),
        "names the engine, hides the password: {all}"
    );
    assert!(all.contains("refused the credentials"), "{all}");
    assert!(all.contains("check the user and password"), "says what to check: {all}");
    assert!(!all.contains("WRONG"), "the password never reaches the output: {all}");
    assert!(!all.contains("engine pg skipped"), "{all}");

    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run/results.json")).unwrap()).unwrap();
    let engine = |name: &str| r["engines"].as_array().unwrap().iter().find(|e| e["name"] == name).unwrap().clone();
    let pg = engine("pg");
    assert_eq!(pg["status"], "failed");
    assert!(pg["reason"].as_str().unwrap().contains("refused the credentials"), "{pg}");
    assert!(pg["reason"].as_str().unwrap().contains("28P01"), "the server's own code is kept: {pg}");
    let absent = engine("absent");
    assert_eq!(absent["status"], "skipped", "an absent server stays a skip: {absent}");
    assert!(absent["start_hint"].as_str().unwrap().contains("services/up.sh pgvector"), "{absent}");
}
