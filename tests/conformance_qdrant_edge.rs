//! Qdrant's engine, embedded, through the conformance suite: once at Qdrant's default
//! thresholds, where a collection this small stays below them and every search is an
//! exact scan (kNN must equal the ground truth, filtered or not), and once with the
//! thresholds lowered so that the engine builds HNSW graphs and searches through them.

#![cfg(feature = "qdrant-edge")]

mod conformance;

use dbbench::driver::{self, EngineConfig};

fn config(dir: &std::path::Path) -> EngineConfig {
    config_with(dir, "")
}

fn config_with(dir: &std::path::Path, settings: &str) -> EngineConfig {
    let mut settings: toml::Table = toml::from_str(settings).unwrap();
    settings.insert("dir".into(), toml::Value::String(dir.display().to_string()));
    EngineConfig { name: "qdrant-edge".into(), url: None, settings, base_dir: ".".into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qdrant_edge_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let kind = driver::find_kind("qdrant-edge").unwrap();
    let d = (kind.open)(&config(dir.path())).unwrap();
    let stats = conformance::run_suite(d.as_ref(), &conformance::Expect::exact()).await;
    // Below the threshold no dense vector is in a graph (the count covers both named vectors).
    assert!(stats.details["indexed_vectors"].as_u64().unwrap() < 800, "{:?}", stats.details);
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "cleanup removes the shard folder it created: {left:?}");
}

/// 400 vectors of 16 floats are 25 KiB: a 1 KiB threshold makes the optimizer index
/// every segment and makes searches use the graph. With hnsw_ef = 400 (every point a
/// candidate) the graph search is near exact; under a filter it walks only the points
/// that match, and a neighbour reached only through excluded points can be missed
/// (0.990 seen under `lang = "en" and year >= 2010`), so the floor is 0.98, not 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qdrant_edge_passes_the_conformance_suite_through_hnsw() {
    let dir = tempfile::tempdir().unwrap();
    let kind = driver::find_kind("qdrant-edge").unwrap();
    let settings = "indexing_threshold_kb = 1\nfull_scan_threshold_kb = 1\nhnsw_ef = 400";
    let d = (kind.open)(&config_with(dir.path(), settings)).unwrap();
    let stats = conformance::run_suite(
        d.as_ref(),
        &conformance::Expect { knn_min_recall: 0.98, ..conformance::Expect::exact() },
    )
    .await;
    // The engine counts indexed vectors over both named vectors: 400 dense + 400 BM25.
    assert_eq!(stats.details["indexed_vectors"], 800, "every vector is indexed: {:?}", stats.details);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qdrant_edge_never_replaces_a_folder_it_did_not_create() {
    let dir = tempfile::tempdir().unwrap();
    let theirs = dir.path().join("dbbench_conformance");
    std::fs::create_dir_all(&theirs).unwrap();
    std::fs::write(theirs.join("precious.txt"), "keep me").unwrap();
    let kind = driver::find_kind("qdrant-edge").unwrap();
    let d = (kind.open)(&config(dir.path())).unwrap();
    let schema = conformance::dataset().schema("dbbench_conformance");
    let err = d.prepare(&schema).await.unwrap_err();
    assert!(err.message.contains("not created by dbbench"), "{}", err.message);
    assert_eq!(std::fs::read_to_string(theirs.join("precious.txt")).unwrap(), "keep me");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qdrant_edge_replaces_its_own_earlier_collection() {
    let dir = tempfile::tempdir().unwrap();
    let kind = driver::find_kind("qdrant-edge").unwrap();
    let ds = conformance::dataset();
    let schema = ds.schema("dbbench_conformance");
    let records: Vec<_> = (0..50).map(|i| ds.record(i)).collect();
    for _ in 0..2 {
        let d = (kind.open)(&config(dir.path())).unwrap();
        d.prepare(&schema).await.expect("prepare replaces dbbench's own folder");
        d.load(&records).await.unwrap();
        let stats = d.finish_load().await.unwrap();
        assert_eq!(stats.records, Some(50), "the earlier load is gone, not added to");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qdrant_edge_attaches_counts_backs_up_and_restores() {
    let dir = tempfile::tempdir().unwrap();
    let backups = tempfile::tempdir().unwrap();
    let kind = driver::find_kind("qdrant-edge").unwrap();
    let cfg = config(dir.path());
    conformance::run_recovery_suite(|| (kind.open)(&cfg).unwrap(), backups.path(), None, true).await;
}
