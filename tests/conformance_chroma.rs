//! Chroma through the conformance suite, against the live server (CI starts it with
//! `bash services/up.sh chroma`). The test fails, never skips, when the server cannot be
//! reached. HNSW with ef_search 100 on 400 documents is expected to be near exact; text is
//! a word filter without ranking.

// A failed unwrap here is a failed test, which is what it should be.
#![allow(clippy::unwrap_used)]

mod conformance;

use dbbench::driver::{self, Driver, EngineConfig, ErrorKind, SearchParams};
use serde_json::json;

fn url() -> String {
    std::env::var("DBBENCH_CHROMA_URL").unwrap_or_else(|_| "http://127.0.0.1:8000".into())
}

fn open(settings: &str) -> Box<dyn Driver> {
    let cfg = EngineConfig {
        name: "chroma".into(),
        url: Some(url()),
        settings: toml::from_str(settings).unwrap(),
        base_dir: ".".into(),
    };
    let kind = driver::find_kind("chroma").unwrap();
    (kind.open)(&cfg).unwrap()
}

/// The recovery test stops and starts the server: it holds this for writing, every other
/// test that talks to the server for reading, so none runs while the server is down.
static SERVER: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

fn api() -> String {
    format!("{}/api/v2/tenants/dbbench/databases/dbbench", url())
}

#[tokio::test]
async fn chroma_passes_the_conformance_suite() {
    let _server = SERVER.read().await;
    let d = open("ef_search = 100");
    let expect = conformance::Expect { knn_min_recall: 0.95, params: SearchParams::new(), ranked_text: false };
    conformance::run_suite(d.as_ref(), &expect).await;
    let http = reqwest::Client::new();
    let left = http.get(format!("{}/collections/dbbench_conformance", api())).send().await.unwrap();
    assert_eq!(left.status(), 404, "cleanup deletes the collection it created");
}

/// Each where form the driver emits, checked against the server's own answer: the ids a
/// filtered `get` returns must be exactly those `Filter::matches` admits.
#[tokio::test]
async fn chroma_where_clauses_mean_what_filters_mean() {
    let _server = SERVER.read().await;
    let d = open("");
    let ds = conformance::dataset();
    let schema = ds.schema("dbbench_conformance_where");
    d.ping().await.expect("chroma reachable");
    d.prepare(&schema).await.unwrap();
    let records: Vec<_> = (0..ds.len()).map(|i| ds.record(i)).collect();
    d.load(&records).await.unwrap();
    d.finish_load().await.unwrap();
    let http = reqwest::Client::new();
    let coll: serde_json::Value =
        http.get(format!("{}/collections/{}", api(), schema.collection)).send().await.unwrap().json().await.unwrap();
    let id = coll["id"].as_str().unwrap().to_string();
    let mut filters = conformance::filters();
    let kw = |s: &str| dbbench::driver::AttrValue::Keyword(s.into());
    use dbbench::driver::Filter;
    filters.push(Filter::And(vec![Filter::Eq { field: "lang".into(), value: kw("fr") }]));
    filters.push(Filter::Or(vec![Filter::Eq { field: "lang".into(), value: kw("fr") }]));
    filters.push(Filter::In { field: "lang".into(), values: vec![] });
    filters.push(Filter::Range { field: "year".into(), gte: None, lt: None });
    for f in &filters {
        let body = json!({ "where": driver::chroma::where_clause(f), "include": [], "limit": 10_000 });
        let resp = http.post(format!("{}/collections/{id}/get", api())).json(&body).send().await.unwrap();
        assert!(resp.status().is_success(), "{f}: HTTP {}: {}", resp.status(), resp.text().await.unwrap());
        let got: serde_json::Value = resp.json().await.unwrap();
        let mut got: Vec<u64> =
            got["ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().parse().unwrap()).collect();
        got.sort();
        let want: Vec<u64> =
            (0..ds.len()).filter(|i| f.matches(&schema, &ds.attributes[*i])).map(|i| i as u64).collect();
        assert_eq!(got, want, "where {f}");
    }
    d.cleanup().await.unwrap();
}

#[tokio::test]
async fn chroma_never_replaces_a_collection_it_did_not_create() {
    let _server = SERVER.read().await;
    let http = reqwest::Client::new();
    let name = "dbbench_conformance_theirs";
    let _ = http.delete(format!("{}/collections/{name}", api())).send().await;
    let d = open("");
    d.ping().await.expect("chroma reachable");
    // prepare creates the tenant and database; then someone else's collection appears.
    let ds = conformance::dataset();
    d.prepare(&ds.schema("dbbench_conformance_setup")).await.unwrap();
    d.cleanup().await.unwrap();
    let made = http
        .post(format!("{}/collections", api()))
        .json(&json!({ "name": name, "metadata": { "owner": "someone" } }))
        .send()
        .await
        .unwrap();
    assert!(made.status().is_success(), "{}", made.text().await.unwrap());
    let err = d.prepare(&ds.schema(name)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Rejected);
    assert!(err.message.contains("not created by dbbench"), "{}", err.message);
    let still = http.get(format!("{}/collections/{name}", api())).send().await.unwrap();
    assert_eq!(still.status(), 200, "their collection is untouched");
    http.delete(format!("{}/collections/{name}", api())).send().await.unwrap();
}

/// Chroma fixes ef_search per collection and declares no per-op params: a per-op
/// ef_search (another engine's knob) is not applicable to it. It must never fail the
/// request, which is timed; the run records it as not applicable (`param_use`).
#[tokio::test]
async fn chroma_runs_a_per_query_ef_search_at_its_collection_value() {
    let _server = SERVER.read().await;
    assert!(driver::find_kind("chroma").unwrap().params.is_empty(), "chroma reads no per-op params");
    let d = open("ef_search = 100");
    let ds = conformance::dataset();
    let schema = ds.schema("dbbench_conformance_params");
    d.prepare(&schema).await.unwrap();
    d.load(&[ds.record(0)]).await.unwrap();
    let mut params = SearchParams::new();
    params.insert("ef_search".into(), json!(100));
    let same = dbbench::driver::Op::Knn { vector: ds.query_vector(0), k: 1, filter: None, params: &params };
    let at_its_own = d.execute(&same).await.expect("the collection's own ef_search runs");
    params.insert("ef_search".into(), json!(400));
    let other = dbbench::driver::Op::Knn { vector: ds.query_vector(0), k: 1, filter: None, params: &params };
    let at_another = d.execute(&other).await.expect("another ef_search runs too, at the collection's value");
    assert_eq!(at_its_own, at_another);
    params.insert("nonsense".into(), json!("x"));
    let unknown = dbbench::driver::Op::Knn { vector: ds.query_vector(0), k: 1, filter: None, params: &params };
    assert!(d.execute(&unknown).await.is_ok(), "a param chroma does not read is never a request error");
    d.cleanup().await.unwrap();
}

/// Mean recall@10 of `d`'s kNN over `ds`'s queries, and the ids it returned.
async fn recall(d: &dyn Driver, ds: &dbbench::data::Dataset, truth: &[Vec<u64>]) -> (f64, Vec<Vec<u64>>) {
    let params = SearchParams::new();
    let (mut sum, mut all) = (0.0, Vec::new());
    for (q, want) in truth.iter().enumerate() {
        let op = dbbench::driver::Op::Knn { vector: ds.query_vector(q), k: 10, filter: None, params: &params };
        let dbbench::driver::Outcome::Hits(got) = d.execute(&op).await.unwrap() else { panic!("knn answers hits") };
        sum += got.iter().filter(|id| want.contains(id)).count() as f64 / 10.0;
        all.push(got);
    }
    (sum / truth.len() as f64, all)
}

async fn collection(http: &reqwest::Client, name: &str) -> Option<serde_json::Value> {
    let resp = http.get(format!("{}/collections/{name}", api())).send().await.unwrap();
    (resp.status() != 404).then_some(())?;
    Some(resp.json().await.unwrap())
}

/// Chroma reads `ef_search` when it loads a collection's index, so `set_effort` searches a
/// copy built at the value: recall must move with it, the configured value must search the
/// collection itself, a copy is reused until a write makes it stale, a foreign collection
/// in a copy's name is refused and left alone, and cleanup drops every copy.
#[tokio::test]
async fn chroma_set_effort_searches_a_copy_built_at_that_ef_search() {
    let _server = SERVER.read().await;
    use dbbench::spec::{DatasetPlan, SyntheticSpec};
    let plan = DatasetPlan::synthetic(SyntheticSpec {
        docs: 3000,
        queries: 40,
        dim: 48,
        clusters: 1,
        vocabulary: 100,
        words_per_doc: 3,
        ..Default::default()
    });
    let ds = dbbench::data::build(&plan, &[], 11).unwrap();
    let truth = dbbench::data::truth::exact_knn(&ds, 10, None);
    // A sparse graph, so that a small ef_search loses neighbours a large one finds.
    let d = open("ef_search = 200\nmax_neighbors = 4\nef_construction = 10");
    let schema = ds.schema("dbbench_conformance_effort");
    let http = reqwest::Client::new();
    for name in ["dbbench_conformance_effort-ef10", "dbbench_conformance_effort-ef20"] {
        let _ = http.delete(format!("{}/collections/{name}", api())).send().await;
    }
    d.prepare(&schema).await.unwrap();
    let records: Vec<_> = (0..ds.len()).map(|i| ds.record(i)).collect();
    for chunk in records.chunks(500) {
        d.load(chunk).await.unwrap();
    }
    d.finish_load().await.unwrap();
    let knob = d.effort_knob(dbbench::driver::OpKind::Knn).unwrap();
    assert_eq!(knob.scope, dbbench::driver::KnobScope::Index { configured: 200 });

    let (high, at_configured) = recall(d.as_ref(), &ds, &truth).await;
    d.set_effort(Some(10)).await.unwrap();
    let copy = collection(&http, "dbbench_conformance_effort-ef10").await.expect("a copy at ef_search 10");
    assert_eq!(copy["metadata"]["created_by"], "dbbench", "the copy is marked as dbbench's");
    assert_eq!(copy["configuration_json"]["hnsw"]["ef_search"], 10, "{copy}");
    let (low, _) = recall(d.as_ref(), &ds, &truth).await;
    eprintln!("recall@10 at ef_search 10: {low:.3}, at 200: {high:.3}");
    assert!(low + 0.05 < high, "recall@10 at ef_search 10 ({low:.3}) is below that at 200 ({high:.3})");

    d.set_effort(Some(200)).await.unwrap();
    assert_eq!(recall(d.as_ref(), &ds, &truth).await.1, at_configured, "the configured value searches the collection");
    d.set_effort(Some(10)).await.unwrap();
    let again = collection(&http, "dbbench_conformance_effort-ef10").await.unwrap();
    assert_eq!(again["id"], copy["id"], "an up-to-date copy is reused");

    let new = dbbench::driver::Record { id: 1_000_000, ..ds.record(0) };
    d.execute(&dbbench::driver::Op::Insert { record: &new }).await.unwrap();
    d.set_effort(None).await.unwrap();
    d.set_effort(Some(10)).await.unwrap();
    let rebuilt = collection(&http, "dbbench_conformance_effort-ef10").await.unwrap();
    assert_ne!(rebuilt["id"], copy["id"], "a write makes the copy stale, so it is built again");

    let made = http
        .post(format!("{}/collections", api()))
        .json(&json!({ "name": "dbbench_conformance_effort-ef20", "metadata": { "owner": "someone" } }))
        .send()
        .await
        .unwrap();
    assert!(made.status().is_success(), "{}", made.text().await.unwrap());
    let err = d.set_effort(Some(20)).await.unwrap_err();
    assert!(err.message.contains("not created by dbbench"), "{}", err.message);
    assert!(collection(&http, "dbbench_conformance_effort-ef20").await.is_some(), "their collection is untouched");

    d.set_effort(None).await.unwrap();
    d.cleanup().await.unwrap();
    assert!(collection(&http, "dbbench_conformance_effort-ef10").await.is_none(), "cleanup drops the copies");
    assert!(collection(&http, "dbbench_conformance_effort").await.is_none(), "and the collection");
    http.delete(format!("{}/collections/dbbench_conformance_effort-ef20", api())).send().await.unwrap();
}

#[tokio::test]
async fn chroma_unreachable_is_reported_as_unreachable() {
    let cfg = EngineConfig {
        name: "chroma".into(),
        url: Some("http://127.0.0.1:9".into()),
        settings: toml::Table::new(),
        base_dir: ".".into(),
    };
    let d = (driver::find_kind("chroma").unwrap().open)(&cfg).unwrap();
    let err = d.ping().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unreachable, "{}", err.message);
}

/// Attach, count, durability, and backup and restore as a copy of the stopped server's
/// folder: the server must be the one `services/up.sh chroma` started (its pid file), as
/// CI starts it; the test stops and starts it twice.
#[tokio::test]
async fn chroma_passes_the_recovery_suite() {
    let _server = SERVER.write().await;
    let dir = tempfile::tempdir().unwrap();
    // The launcher's log goes beside the backup folder, so both live in the temporary one.
    let backup_dir = dir.path().join("backup");
    std::fs::create_dir(&backup_dir).unwrap();
    let service = dbbench::service::Service {
        name: "chroma".into(),
        services_dir: dbbench::resources::services_dir(),
        up: "services/up.sh".into(),
        down: "services/down.sh".into(),
    };
    conformance::run_recovery_suite(|| open("ef_search = 100"), &backup_dir, Some(&service), true).await;
    let left =
        reqwest::Client::new().get(format!("{}/collections/dbbench_conformance_recovery", api())).send().await.unwrap();
    assert_eq!(left.status(), 404, "cleanup deletes the collection");
    let state = service.state_dir();
    assert!(state.join("data").is_dir() && !state.join("data.before-restore").exists(), "the folder set aside is gone");
}
