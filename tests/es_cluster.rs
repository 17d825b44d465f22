//! Elasticsearch as a 3-node cluster, live, end to end through the built binary: a short
//! run against the cluster `services/up.sh elasticsearch-cluster` starts (its URL from
//! `DBBENCH_ES_CLUSTER_URL`, default http://127.0.0.1:9201) must record the topology the
//! cluster reports: 3 nodes, the shards and replicas the workload asked for, where each
//! copy is, and replicas that cannot be placed said to be unassigned. Not reachable is a
//! failure, not a skip: CI starts the cluster (scripts/test.sh).

#![allow(clippy::unwrap_used)] // in tests a panic is the failure report

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn url() -> String {
    std::env::var("DBBENCH_ES_CLUSTER_URL").unwrap_or_else(|_| "http://127.0.0.1:9201".into())
}

/// Where services/up.sh keeps its pid files: the run samples the cluster's processes
/// through `service = "elasticsearch-cluster"` from there.
fn services_dir() -> PathBuf {
    std::env::var_os("DBBENCH_SERVICES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".services"))
}

/// The cluster's health, or a failure that says how to start it.
async fn health() -> Value {
    let base = url();
    let fail = |why: String| -> ! {
        panic!(
            "the Elasticsearch cluster at {base} is not reachable ({why}); start it with \
             `services/up.sh elasticsearch-cluster` (or point DBBENCH_ES_CLUSTER_URL at one)"
        )
    };
    let resp = match reqwest::Client::new().get(format!("{base}/_cluster/health")).send().await {
        Ok(r) => r,
        Err(e) => fail(e.to_string()),
    };
    if !resp.status().is_success() {
        fail(format!("HTTP {}", resp.status()));
    }
    resp.json().await.unwrap_or_else(|e| fail(format!("not JSON: {e}")))
}

fn workload(url: &str) -> String {
    // Two configurations of the same cluster, one after the other (each drops its index
    // at the end): three shards with one replica each, which three nodes can place, and
    // three replicas each, one more than they can.
    let engine = |name: &str, replicas: u32| {
        format!(
            r#"
[engines.{name}]
driver = "elasticsearch"
url = "{url}"
service = "elasticsearch-cluster"
[engines.{name}.settings]
shards = 3
replicas = {replicas}
"#
        )
    };
    format!(
        r#"
[workload]
name = "es-cluster-test"

[dataset]
source = "synthetic"
[dataset.synthetic]
docs = 3000
queries = 50
dim = 16
{}{}
[load]
batch_size = 1000

[[phases]]
name = "knn"
duration = "2s"
concurrency = 2
[[phases.ops]]
op = "knn"
k = 10

[[phases]]
name = "text"
duration = "2s"
concurrency = 2
[[phases.ops]]
op = "text"
k = 10
"#,
        engine("es-cluster", 1),
        engine("es-cluster-overreplicated", 3)
    )
}

fn engine<'a>(results: &'a Value, name: &str) -> &'a Value {
    results["engines"].as_array().unwrap().iter().find(|e| e["name"] == name).unwrap()
}

#[tokio::test]
async fn a_run_against_the_three_node_cluster_records_its_topology() {
    let h = health().await;
    assert_eq!(h["number_of_nodes"], 3, "services/up.sh elasticsearch-cluster runs three nodes: {h}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("es-cluster.toml");
    std::fs::write(&file, workload(&url())).unwrap();
    let out = dir.path().join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_dbbench"))
        .args(["run", file.to_str().unwrap(), "--no-progress", "--out", out.to_str().unwrap()])
        .args(["--cache", "cache"])
        .env("DBBENCH_SERVICES_DIR", services_dir())
        .current_dir(dir.path())
        .output()
        .unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "{said}");
    let results: Value = serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["run"]["complete"], true, "{said}");

    let e = engine(&results, "es-cluster");
    assert_eq!(e["status"], "ok", "{e}");
    let t = &e["topology"];
    assert_eq!(
        (&t["nodes"], &t["data_nodes"], &t["shards"], &t["replicas"]),
        (&3.into(), &3.into(), &3.into(), &1.into())
    );
    assert_eq!(t["note"], "cluster dbbench-cluster, status green, 6 shard copies on 3 nodes", "{t}");
    for phase in e["phases"].as_array().unwrap() {
        let op = &phase["ops"][0];
        assert_eq!(phase["complete"], true, "{phase}");
        assert!(op["count"].as_u64().unwrap() > 0 && op["errors"] == 0, "{op}");
    }
    let knn = &e["phases"][0]["ops"][0];
    assert!(knn["recall_at_k"].as_f64().unwrap() >= 0.9, "{knn}");

    // A replica never shares a node with its primary: the fourth copy of each shard has
    // no node to go to, and the topology says so rather than counting it.
    let over = &engine(&results, "es-cluster-overreplicated")["topology"];
    assert_eq!((&over["nodes"], &over["shards"], &over["replicas"]), (&3.into(), &3.into(), &3.into()));
    assert_eq!(
        over["note"],
        "cluster dbbench-cluster, status yellow, 9 of 12 shard copies started, on 3 nodes; 3 replica copies \
         unassigned (a replica never shares a node with its primary, and the cluster has 3 data nodes)",
        "{over}"
    );

    // Resources are those of the whole cluster, when services/up.sh here started it.
    let pid_file = services_dir().join("elasticsearch-cluster/pid");
    if pid_file.exists() {
        let watched = e["resources"]["watched"].as_str().unwrap_or_default();
        assert!(watched.contains("elasticsearch-cluster/pid"), "{}", e["resources"]);
    }

    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("| es-cluster | 3 nodes, 3 shards × 2 copies |"), "{report}");
}
