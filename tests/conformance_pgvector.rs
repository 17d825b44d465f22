//! pgvector through the conformance suite, against the live server (`services/up.sh
//! pgvector`; URL from `DBBENCH_PG_URL`). Fails, rather than skips, when the server
//! cannot be reached: CI starts it first.
//!
//! Recall: HNSW is approximate, but with ef_search = 400 on 400 documents the search
//! keeps every node it reaches as a candidate, so it finds the exact neighbours unless
//! the graph left a node unreachable, which at m = 16 on 400 points does not happen in
//! practice. Filtered searches use iterative scans (relaxed order, re-sorted), which keep
//! scanning until k matching rows are found. So the suite demands exact results (1.0).

mod conformance;

use dbbench::driver::{self, EngineConfig, Op, Outcome, SearchParams};
use sqlx::{Connection, PgConnection};

fn url() -> String {
    std::env::var("DBBENCH_PG_URL").unwrap_or_else(|_| driver::pgvector::DEFAULT_URL.to_string())
}

fn config(settings: &str) -> EngineConfig {
    EngineConfig {
        name: "pgvector".into(),
        url: Some(url()),
        settings: toml::from_str(settings).unwrap(),
        base_dir: ".".into(),
    }
}

fn high_ef() -> conformance::Expect {
    let mut e = conformance::Expect::exact();
    e.params.insert("ef_search".into(), serde_json::json!(400));
    e
}

async fn connect() -> PgConnection {
    PgConnection::connect(&url()).await.unwrap_or_else(|e| {
        panic!(
            "cannot reach PostgreSQL at {} ({e}); start it with: bash services/up.sh pgvector",
            driver::redact_url(&url())
        )
    })
}

async fn table_exists(pg: &mut PgConnection, name: &str) -> bool {
    sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL").bind(name).fetch_one(pg).await.unwrap()
}

#[tokio::test]
async fn pgvector_hnsw_passes_the_conformance_suite() {
    let kind = driver::find_kind("pgvector").unwrap();
    let d = (kind.open)(&config("")).unwrap();
    conformance::run_suite(d.as_ref(), &high_ef()).await;
    let mut pg = connect().await;
    assert!(!table_exists(&mut pg, "dbbench.dbbench_conformance").await, "cleanup drops dbbench's table");

    // index = "none": kNN is an exact scan, so recall must be 1.0 with no knobs at all.
    // Same collection name as above, so it runs after the HNSW suite, not beside it.
    let d = (kind.open)(&config("index = \"none\"")).unwrap();
    conformance::run_suite(d.as_ref(), &conformance::Expect::exact()).await;
}

/// A links table and a recursive CTE in one statement, from the HNSW index's seeds (at
/// ef_search = 400 on 400 records, exact, as above): the reference expansion, in order.
#[tokio::test]
async fn pgvector_expands_exactly_like_the_reference() {
    let kind = driver::find_kind("pgvector").unwrap();
    let d = (kind.open)(&config("")).unwrap();
    conformance::run_expand_suite(d.as_ref(), &high_ef()).await;
    let mut pg = connect().await;
    assert!(!table_exists(&mut pg, "dbbench.dbbench_conformance_graph").await, "cleanup drops the table");
    assert!(!table_exists(&mut pg, "dbbench.dbbench_conformance_graph_links").await, "and its links table");
}

/// The user's own data outside dbbench's schema survives a whole run, and a table in
/// dbbench's schema without dbbench's marker is never replaced.
#[tokio::test]
async fn pgvector_never_touches_tables_it_did_not_create() {
    let mut pg = connect().await;
    sqlx::raw_sql(
        "DROP TABLE IF EXISTS public.customer_data;
         CREATE TABLE public.customer_data (id int PRIMARY KEY, name text NOT NULL, embedding vector(3));
         INSERT INTO public.customer_data SELECT g, 'customer ' || g, '[1,2,3]' FROM generate_series(1, 50) g;",
    )
    .execute(&mut pg)
    .await
    .unwrap();
    // The conformance test beside this one may be creating the schema at this moment, and
    // CREATE SCHEMA IF NOT EXISTS is not atomic: losing that race (23505) is fine.
    if let Err(e) = sqlx::raw_sql("CREATE SCHEMA IF NOT EXISTS dbbench").execute(&mut pg).await {
        let code = e.as_database_error().and_then(|d| d.code()).map(|c| c.into_owned());
        assert!(matches!(code.as_deref(), Some("23505" | "42P06")), "{e}");
    }
    sqlx::raw_sql(
        "DROP TABLE IF EXISTS dbbench.dbbench_not_ours;
         CREATE TABLE dbbench.dbbench_not_ours (x int);
         INSERT INTO dbbench.dbbench_not_ours VALUES (7);",
    )
    .execute(&mut pg)
    .await
    .unwrap();
    let fingerprint = "SELECT count(*)::bigint, md5(string_agg(id || name || embedding::text, ',' ORDER BY id)) FROM public.customer_data";
    let before: (i64, String) = sqlx::query_as(fingerprint).fetch_one(&mut pg).await.unwrap();
    assert_eq!(before.0, 50);

    let kind = driver::find_kind("pgvector").unwrap();
    let d = (kind.open)(&config("")).unwrap();
    let ds = conformance::dataset();

    // A same-named table that dbbench did not create: prepare refuses and leaves it be.
    let err = d.prepare(&ds.schema("dbbench_not_ours")).await.unwrap_err();
    assert!(err.message.contains("not created by dbbench"), "{}", err.message);
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM dbbench.dbbench_not_ours WHERE x = 7")
        .fetch_one(&mut pg)
        .await
        .unwrap();
    assert_eq!(kept, 1, "a table without dbbench's marker is untouched");

    // A full run under dbbench's own name.
    let schema = ds.schema("dbbench_isolation");
    d.prepare(&schema).await.unwrap();
    let records: Vec<_> = (0..ds.len()).map(|i| ds.record(i)).collect();
    for chunk in records.chunks(128) {
        d.load(chunk).await.unwrap();
    }
    let stats = d.finish_load().await.unwrap();
    assert_eq!(stats.records, Some(ds.len() as u64));
    // The load is vacuumed and analyzed before anything is measured, so an autovacuum
    // woken by the bulk insert does not land inside a measured phase.
    let (vacuumed, analyzed): (bool, bool) = sqlx::query_as(
        "SELECT pg_stat_get_last_vacuum_time(c.oid) IS NOT NULL, pg_stat_get_last_analyze_time(c.oid) IS NOT NULL \
         FROM pg_class c WHERE c.oid = 'dbbench.dbbench_isolation'::regclass",
    )
    .fetch_one(&mut pg)
    .await
    .unwrap();
    assert!(vacuumed && analyzed, "finish_load vacuums ({vacuumed}) and analyzes ({analyzed}) the table");
    let plans = stats.details["plans"].as_object().unwrap();
    // On 400 rows the planner may prefer an exact scan to the HNSW index; either way the
    // plan is the one of the kNN statement, with a stored embedding as the sample.
    assert!(plans["knn"].as_str().unwrap().contains("embedding <=> '["), "{}", plans["knn"]);
    assert!(plans["text"].as_str().unwrap().contains("tsv"), "{}", plans["text"]);
    let params = SearchParams::new();
    let hits = d.execute(&Op::Knn { vector: ds.query_vector(0), k: 5, filter: None, params: &params }).await.unwrap();
    assert_eq!(hits.hits().map(<[u64]>::len), Some(5));
    let record = ds.record(1);
    let mut moved = record.clone();
    moved.id = 99_999;
    assert_eq!(d.execute(&Op::Insert { record: &moved }).await.unwrap(), Outcome::Written(1));
    assert_eq!(d.execute(&Op::Delete { id: 99_999 }).await.unwrap(), Outcome::Written(1));
    assert!(table_exists(&mut pg, "dbbench.dbbench_isolation").await);
    let comment: Option<String> =
        sqlx::query_scalar("SELECT obj_description('dbbench.dbbench_isolation'::regclass, 'pg_class')")
            .fetch_one(&mut pg)
            .await
            .unwrap();
    assert!(comment.unwrap_or_default().starts_with("dbbench:"), "dbbench's table carries the marker");
    d.cleanup().await.unwrap();

    assert!(!table_exists(&mut pg, "dbbench.dbbench_isolation").await, "dbbench's table is gone after cleanup");
    let after: (i64, String) = sqlx::query_as(fingerprint).fetch_one(&mut pg).await.unwrap();
    assert_eq!(after, before, "the user's table and its rows are untouched");
    let kept: i64 =
        sqlx::query_scalar("SELECT count(*) FROM dbbench.dbbench_not_ours").fetch_one(&mut pg).await.unwrap();
    assert_eq!(kept, 1);
    sqlx::raw_sql("DROP TABLE public.customer_data; DROP TABLE dbbench.dbbench_not_ours")
        .execute(&mut pg)
        .await
        .unwrap();
}

#[tokio::test]
async fn pgvector_unreachable_server_is_reported_as_such() {
    let mut cfg = config("connect_timeout_s = 2");
    cfg.url = Some("postgres://dbbench:dbbench@127.0.0.1:1/dbbench".into());
    let d = (driver::find_kind("pgvector").unwrap().open)(&cfg).unwrap();
    let err = d.ping().await.unwrap_err();
    assert_eq!(err.kind, driver::ErrorKind::Unreachable, "{}", err.message);
}

#[tokio::test]
async fn pgvector_attaches_counts_backs_up_and_restores() {
    let backups = tempfile::tempdir().unwrap();
    let kind = driver::find_kind("pgvector").unwrap();
    let cfg = config("");
    conformance::run_recovery_suite(|| (kind.open)(&cfg).unwrap(), backups.path(), None, true).await;
}
