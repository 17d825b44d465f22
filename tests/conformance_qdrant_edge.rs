//! Qdrant's engine, embedded, through the conformance suite. With a collection this
//! small every segment stays below the indexing threshold, so search is exact and kNN
//! must equal the ground truth, filtered or not.

#![cfg(feature = "qdrant-edge")]

mod conformance;

use dbbench::driver::{self, EngineConfig};

fn config(dir: &std::path::Path) -> EngineConfig {
    let mut settings = toml::Table::new();
    settings.insert("dir".into(), toml::Value::String(dir.display().to_string()));
    EngineConfig {
        name: "qdrant-edge".into(),
        url: None,
        settings,
        base_dir: ".".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qdrant_edge_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let kind = driver::find_kind("qdrant-edge").unwrap();
    let d = (kind.open)(&config(dir.path())).unwrap();
    conformance::run_suite(d.as_ref(), &conformance::Expect::exact()).await;
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(
        left.is_empty(),
        "cleanup removes the shard folder it created: {left:?}"
    );
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
    assert!(
        err.message.contains("not created by dbbench"),
        "{}",
        err.message
    );
    assert_eq!(
        std::fs::read_to_string(theirs.join("precious.txt")).unwrap(),
        "keep me"
    );
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
        d.prepare(&schema)
            .await
            .expect("prepare replaces dbbench's own folder");
        d.load(&records).await.unwrap();
        let stats = d.finish_load().await.unwrap();
        assert_eq!(
            stats.records,
            Some(50),
            "the earlier load is gone, not added to"
        );
    }
}
