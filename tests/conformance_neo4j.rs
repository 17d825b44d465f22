//! Neo4j through the conformance suite, against the live server (`bash services/up.sh
//! neo4j`; URL from `DBBENCH_NEO4J_URL`). Fails, rather than skips, when the server cannot
//! be reached: CI starts it first.
//!
//! Recall: Lucene's HNSW search is as wide as the neighbours asked for, so the suite asks
//! for `candidates = 400`, every record there is: the search then keeps every node it
//! reaches, which on 400 points at m = 16 is all of them, and finds the exact neighbours.
//! Filters apply after the vector index (Neo4j 5.26 has no filtered vector search), to
//! candidates × overfetch = 4000 here, more than the 400 (401 after the insert) records:
//! every record reaches the filter, so filtered kNN and the seeds of a filtered expand
//! are exact too. The suite therefore demands exact results (1.0).
//!
//! Without `candidates`, a search asks for exactly k: the default run below then measured
//! unfiltered recall@10 = 0.990; its filtered searches still see every record (k = 10 ×
//! overfetch 40 = 400 candidates), so only the unfiltered ones are approximate.

mod conformance;

use dbbench::driver::{self, Driver, EngineConfig, ErrorKind};
use neo4rs::{query, Graph};

fn url() -> String {
    std::env::var("DBBENCH_NEO4J_URL").unwrap_or_else(|_| driver::neo4j::DEFAULT_URL.to_string())
}

fn config(settings: &str) -> EngineConfig {
    EngineConfig {
        name: "neo4j".into(),
        url: Some(url()),
        settings: toml::from_str(settings).unwrap(),
        base_dir: ".".into(),
    }
}

fn open(settings: &str) -> Box<dyn Driver> {
    (driver::find_kind("neo4j").unwrap().open)(&config(settings)).unwrap()
}

/// A client of the test's own, to look at the database behind the driver's back.
async fn connect() -> Graph {
    let unreachable = |e: neo4rs::Error| -> ! {
        panic!("cannot reach Neo4j at {} ({e}); start it with: bash services/up.sh neo4j", driver::redact_url(&url()))
    };
    let g = Graph::new(url(), "neo4j", "").await.unwrap_or_else(|e| unreachable(e));
    if let Err(e) = g.run(query("RETURN 1")).await {
        unreachable(e)
    }
    g
}

async fn count(g: &Graph, cypher: &str) -> i64 {
    let mut rows = g.execute(query(cypher)).await.unwrap();
    let row = rows.next().await.unwrap().expect("a row");
    while rows.next().await.unwrap().is_some() {}
    row.get("c").unwrap()
}

async fn schema_objects(g: &Graph, name_part: &str) -> i64 {
    count(g, &format!("SHOW INDEXES YIELD name WHERE name ENDS WITH '{name_part}' RETURN count(*) AS c")).await
        + count(g, &format!("SHOW CONSTRAINTS YIELD name WHERE name ENDS WITH '{name_part}' RETURN count(*) AS c"))
            .await
}

fn exact() -> conformance::Expect {
    let mut e = conformance::Expect::exact();
    e.params.insert("candidates".into(), serde_json::json!(400));
    e
}

#[tokio::test]
async fn neo4j_passes_the_conformance_suite() {
    let g = connect().await;
    let d = open("overfetch = 10");
    let stats = conformance::run_suite(d.as_ref(), &exact()).await;
    assert!(stats.details["knn"].as_str().unwrap().contains("HNSW"), "{:?}", stats.details);
    assert_eq!(
        count(&g, "MATCH (n:DbbenchDoc_dbbench_conformance) RETURN count(n) AS c").await,
        0,
        "cleanup deletes the nodes"
    );
    assert_eq!(schema_objects(&g, "_dbbench_conformance").await, 0, "and its indexes and constraint");
    assert_eq!(
        count(&g, "MATCH (m:DbbenchMeta {label: 'DbbenchDoc_dbbench_conformance'}) RETURN count(m) AS c").await,
        0,
        "and its marker"
    );

    // Default candidates (k) and overfetch 40: approximate unfiltered, exact filtered.
    // Same collection name as above, so it runs after that suite, not beside it.
    let d = open("overfetch = 40");
    let mut e = conformance::Expect::exact();
    e.knn_min_recall = 0.95;
    conformance::run_suite(d.as_ref(), &e).await;
}

/// Links are DBBENCH_LINK relationships and the expansion one Cypher query; its seeds
/// come from the vector index like kNN's, exact here for the reason above.
#[tokio::test]
async fn neo4j_expands_exactly_like_the_reference() {
    let g = connect().await;
    let d = open("overfetch = 10");
    conformance::run_expand_suite(d.as_ref(), &exact()).await;
    assert_eq!(
        count(&g, "MATCH (n:DbbenchDoc_dbbench_conformance_graph) RETURN count(n) AS c").await,
        0,
        "cleanup deletes the nodes and their links"
    );
    assert_eq!(schema_objects(&g, "_dbbench_conformance_graph").await, 0);
}

/// Nodes under dbbench's label that dbbench did not create (no marker node): prepare
/// refuses and leaves them, and the user's other nodes, as they were.
#[tokio::test]
async fn neo4j_never_touches_nodes_it_did_not_create() {
    let g = connect().await;
    g.run(query("MATCH (n:DbbenchDoc_dbbench_not_ours) DETACH DELETE n")).await.unwrap();
    g.run(query("MATCH (n:CustomerData) DETACH DELETE n")).await.unwrap();
    g.run(query(
        "UNWIND range(1, 5) AS i CREATE (:DbbenchDoc_dbbench_not_ours {id: i, precious: true}) \
         CREATE (:CustomerData {id: i, name: 'customer ' + toString(i)})",
    ))
    .await
    .unwrap();
    let d = open("");
    let ds = conformance::dataset();
    let err = d.prepare(&ds.schema("dbbench_not_ours")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Rejected);
    assert!(err.message.contains("not created by dbbench"), "{}", err.message);
    assert_eq!(count(&g, "MATCH (n:DbbenchDoc_dbbench_not_ours {precious: true}) RETURN count(n) AS c").await, 5);
    assert_eq!(schema_objects(&g, "_dbbench_not_ours").await, 0, "prepare created nothing");
    assert_eq!(count(&g, "MATCH (m:DbbenchMeta {label: 'DbbenchDoc_dbbench_not_ours'}) RETURN count(m) AS c").await, 0);
    d.cleanup().await.unwrap();
    assert_eq!(count(&g, "MATCH (n:DbbenchDoc_dbbench_not_ours) RETURN count(n) AS c").await, 5, "cleanup too");

    // A whole run under dbbench's own name leaves the user's nodes as they were.
    let schema = ds.schema("dbbench_isolation");
    d.prepare(&schema).await.unwrap();
    let records: Vec<_> = (0..ds.len()).map(|i| ds.record(i)).collect();
    for chunk in records.chunks(128) {
        d.load(chunk).await.unwrap();
    }
    assert_eq!(d.finish_load().await.unwrap().records, Some(ds.len() as u64));
    // A second prepare of the same name replaces dbbench's own namespace.
    d.prepare(&schema).await.unwrap();
    assert_eq!(count(&g, "MATCH (n:DbbenchDoc_dbbench_isolation) RETURN count(n) AS c").await, 0);
    d.cleanup().await.unwrap();
    assert_eq!(count(&g, "MATCH (n:CustomerData) RETURN count(n) AS c").await, 5, "the user's nodes are untouched");
    assert_eq!(count(&g, "MATCH (n:DbbenchDoc_dbbench_not_ours) RETURN count(n) AS c").await, 5);
    g.run(query("MATCH (n:DbbenchDoc_dbbench_not_ours) DETACH DELETE n")).await.unwrap();
    g.run(query("MATCH (n:CustomerData) DETACH DELETE n")).await.unwrap();
}

#[tokio::test]
async fn neo4j_unreachable_server_is_reported_as_such() {
    let mut cfg = config("connect_timeout_s = 30");
    cfg.url = Some("bolt://127.0.0.1:1".into());
    let d = (driver::find_kind("neo4j").unwrap().open)(&cfg).unwrap();
    let started = std::time::Instant::now();
    let err = d.ping().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unreachable, "{}", err.message);
    // A refused port is said at once, not after the 30 s timeout (neo4rs alone retries).
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "took {:?}: {}", started.elapsed(), err.message);
}

/// Attach, count and durability; backup and restore say they are unsupported (Neo4j
/// Community dumps and loads a whole stopped database, with a tool the launcher does not
/// offer).
#[tokio::test]
async fn neo4j_passes_the_recovery_suite() {
    let g = connect().await;
    let dir = tempfile::tempdir().unwrap();
    conformance::run_recovery_suite(|| open("overfetch = 10"), dir.path(), None, false).await;
    assert_eq!(
        count(&g, "MATCH (n:DbbenchDoc_dbbench_conformance_recovery) RETURN count(n) AS c").await,
        0,
        "cleanup deletes the nodes"
    );
}
