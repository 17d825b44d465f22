//! The Qdrant server through the conformance suite, over gRPC at `QDRANT_URL`
//! (`services/up.sh qdrant` serves http://127.0.0.1:6334). No registry ships the Qdrant
//! server, so where `QDRANT_URL` is not set this test says so and passes; where it is
//! set, an unreachable server fails the test.
//!
//! A collection this small stays below the indexing threshold, so the server searches
//! exactly and kNN must equal the ground truth.

#![cfg(feature = "qdrant")]

mod conformance;

use dbbench::driver::{self, EngineConfig};

fn config(url: String) -> EngineConfig {
    // The driver takes an API key from QDRANT_API_KEY when the settings give none.
    EngineConfig {
        name: "qdrant".into(),
        url: Some(url),
        settings: toml::Table::new(),
        base_dir: ".".into(),
    }
}

#[tokio::test]
async fn qdrant_passes_the_conformance_suite() {
    let Ok(url) = std::env::var("QDRANT_URL") else {
        println!("skipped: QDRANT_URL is not set; a Qdrant server cannot be had on this machine (no registry ships it)");
        return;
    };
    let kind = driver::find_kind("qdrant").unwrap();
    let d = (kind.open)(&config(url)).unwrap();
    conformance::run_suite(d.as_ref(), &conformance::Expect::exact()).await;
}

#[tokio::test]
async fn qdrant_unreachable_server_is_reported_as_unreachable() {
    // A port nothing listens on: the driver must say "unreachable", not fail otherwise.
    let kind = driver::find_kind("qdrant").unwrap();
    let d = (kind.open)(&config("http://127.0.0.1:9".into())).unwrap();
    let e = d.ping().await.unwrap_err();
    assert_eq!(e.kind, dbbench::driver::ErrorKind::Unreachable, "{e}");
}
