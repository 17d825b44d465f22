//! The embedded engine through the conformance suite. sqlite-vec searches exactly, so
//! its kNN must equal the ground truth, filtered or not.

mod conformance;

use dbbench::driver::{self, EngineConfig};

fn config(dir: &std::path::Path) -> EngineConfig {
    let mut settings = toml::Table::new();
    settings.insert("dir".into(), toml::Value::String(dir.display().to_string()));
    EngineConfig { name: "sqlite".into(), url: None, settings, base_dir: ".".into() }
}

#[tokio::test]
async fn sqlite_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let kind = driver::find_kind("sqlite").unwrap();
    let d = (kind.open)(&config(dir.path())).unwrap();
    conformance::run_suite(d.as_ref(), &conformance::Expect::exact()).await;
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "cleanup removes the database it created: {left:?}");
}

#[tokio::test]
async fn sqlite_expands_exactly_like_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let kind = driver::find_kind("sqlite").unwrap();
    let d = (kind.open)(&config(dir.path())).unwrap();
    conformance::run_expand_suite(d.as_ref(), &conformance::Expect::exact()).await;
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "cleanup removes the database it created: {left:?}");
}

#[tokio::test]
async fn sqlite_never_replaces_a_database_it_did_not_create() {
    let dir = tempfile::tempdir().unwrap();
    let theirs = dir.path().join("dbbench_conformance.db");
    let c = rusqlite::Connection::open(&theirs).unwrap();
    c.execute_batch("CREATE TABLE precious (x); INSERT INTO precious VALUES (1);").unwrap();
    drop(c);
    let kind = driver::find_kind("sqlite").unwrap();
    let d = (kind.open)(&config(dir.path())).unwrap();
    let schema = conformance::dataset().schema("dbbench_conformance");
    let err = d.prepare(&schema).await.unwrap_err();
    assert!(err.message.contains("not created by dbbench"), "{}", err.message);
    let c = rusqlite::Connection::open(&theirs).unwrap();
    let n: i64 = c.query_row("SELECT count(*) FROM precious", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 1, "the user's table is untouched");
}

#[tokio::test]
async fn sqlite_attaches_counts_backs_up_and_restores() {
    let dir = tempfile::tempdir().unwrap();
    let backups = tempfile::tempdir().unwrap();
    let kind = driver::find_kind("sqlite").unwrap();
    let cfg = config(dir.path());
    conformance::run_recovery_suite(|| (kind.open)(&cfg).unwrap(), backups.path(), None, true).await;
}
