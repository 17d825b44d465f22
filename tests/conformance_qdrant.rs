//! The Qdrant server through the conformance suite, over gRPC at `QDRANT_URL`
//! (`services/up.sh qdrant` serves http://127.0.0.1:6334). No registry ships the Qdrant
//! server, so the tests that need one are ignored; `scripts/test.sh` runs them (with
//! `--ignored`) wherever `QDRANT_URL` or `QDRANT_BIN` is set, and there an unreachable
//! server fails them.
//!
//! At the server's default thresholds a collection this small is searched exactly, so
//! kNN must equal the ground truth; a second run lowers the thresholds so the server
//! builds HNSW graphs and searches through them (hnsw_ef = 400: still exact).

#![cfg(feature = "qdrant")]

mod conformance;

use dbbench::driver::{self, EngineConfig};

fn config(url: String) -> EngineConfig {
    config_with(url, "")
}

fn config_with(url: String, settings: &str) -> EngineConfig {
    // The driver takes an API key from QDRANT_API_KEY when the settings give none.
    EngineConfig {
        name: "qdrant".into(),
        url: Some(url),
        settings: toml::from_str(settings).unwrap(),
        base_dir: ".".into(),
    }
}

/// The server's URL: these tests run only when asked for, where there is one.
fn server() -> String {
    std::env::var("QDRANT_URL")
        .expect("QDRANT_URL: the gRPC URL of a Qdrant server, e.g. http://127.0.0.1:6334 (services/up.sh qdrant)")
}

#[tokio::test]
#[ignore = "needs a Qdrant server at QDRANT_URL; no registry ships one (scripts/test.sh runs it where QDRANT_URL or QDRANT_BIN is set)"]
async fn qdrant_passes_the_conformance_suite() {
    let url = server();
    let kind = driver::find_kind("qdrant").unwrap();
    let d = (kind.open)(&config(url.clone())).unwrap();
    conformance::run_suite(d.as_ref(), &conformance::Expect::exact()).await;

    // Same collection name: after the first run, not beside it.
    let settings = "indexing_threshold_kb = 1\nfull_scan_threshold_kb = 1\nhnsw_ef = 400";
    let d = (kind.open)(&config_with(url, settings)).unwrap();
    let stats = conformance::run_suite(d.as_ref(), &conformance::Expect::exact()).await;
    assert!(
        stats.details["indexed_vectors"].as_u64().unwrap() >= 400,
        "the dense vectors are indexed: {:?}",
        stats.details
    );
}

/// A collection of dbbench's name that dbbench did not create is refused, not dropped.
#[tokio::test]
#[ignore = "needs a Qdrant server at QDRANT_URL; no registry ships one (scripts/test.sh runs it where QDRANT_URL or QDRANT_BIN is set)"]
async fn qdrant_never_drops_a_collection_it_did_not_create() {
    use qdrant_client::qdrant::{CreateCollectionBuilder, Distance, VectorParamsBuilder};
    let url = server();
    let client = qdrant_client::Qdrant::from_url(&url).build().unwrap();
    let name = "dbbench_not_ours";
    let _ = client.delete_collection(name).await;
    client
        .create_collection(
            CreateCollectionBuilder::new(name).vectors_config(VectorParamsBuilder::new(4, Distance::Cosine)),
        )
        .await
        .unwrap();
    let d = (driver::find_kind("qdrant").unwrap().open)(&config(url)).unwrap();
    let err = d.prepare(&conformance::dataset().schema(name)).await.unwrap_err();
    assert!(err.message.contains("not created by dbbench"), "{}", err.message);
    assert!(client.collection_exists(name).await.unwrap(), "the collection is still there");
    client.delete_collection(name).await.unwrap();
}

#[tokio::test]
async fn qdrant_unreachable_server_is_reported_as_unreachable() {
    // A port nothing listens on: the driver must say "unreachable", not fail otherwise.
    let kind = driver::find_kind("qdrant").unwrap();
    let d = (kind.open)(&config("http://127.0.0.1:9".into())).unwrap();
    let e = d.ping().await.unwrap_err();
    assert_eq!(e.kind, dbbench::driver::ErrorKind::Unreachable, "{e}");
    assert!(e.message.contains("connection refused") && !e.message.contains("tonic::"), "one clear line: {e}");
}
