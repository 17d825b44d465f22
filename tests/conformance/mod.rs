//! The conformance suite every driver runs through: the same dataset, the same ops, the
//! same expectations, so that "filtered kNN" or "read your write" means one thing on
//! every engine. Each engine's test file calls `run_suite` with its driver and what to
//! expect of it (exact engines must return exactly the ground truth; approximate ones a
//! stated recall, and never an id that fails the filter).

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use dbbench::data::{self, truth::exact_knn, Dataset};
use dbbench::driver::{
    AttrKind, AttrValue, AttributeDef, Driver, ErrorKind, Filter, Op, OpKind, Outcome, Record, SearchParams, Support,
};
use dbbench::spec::{AttributeGen, AttributePlan, DatasetPlan, SyntheticSpec};

/// What a driver is held to.
pub struct Expect {
    /// Mean recall@10 the driver must reach on unfiltered and filtered kNN (1.0: exact).
    pub knn_min_recall: f64,
    /// Search params sent with every kNN (e.g. a generous ef so HNSW is near exact).
    pub params: SearchParams,
    /// Text search ranks (true) or is a substring filter without ranking (false).
    pub ranked_text: bool,
}

impl Expect {
    pub fn exact() -> Self {
        Expect { knn_min_recall: 1.0, params: SearchParams::new(), ranked_text: true }
    }
}

pub fn dataset() -> Dataset {
    let plan = DatasetPlan::synthetic(SyntheticSpec {
        docs: 400,
        queries: 20,
        dim: 16,
        clusters: 8,
        vocabulary: 3000,
        words_per_doc: 12,
        ..Default::default()
    });
    let attrs = vec![
        AttributePlan {
            def: AttributeDef { name: "lang".into(), kind: AttrKind::Keyword },
            gen: AttributeGen::Keyword {
                values: vec!["en".into(), "de".into(), "fr".into()],
                weights: vec![6.0, 3.0, 1.0],
            },
            origin: "conformance".into(),
        },
        AttributePlan {
            def: AttributeDef { name: "year".into(), kind: AttrKind::Integer },
            gen: AttributeGen::Integer { min: 2000, max: 2019 },
            origin: "conformance".into(),
        },
    ];
    data::build(&plan, &attrs, 7).expect("synthetic dataset")
}

/// The filters every driver must translate identically.
pub fn filters() -> Vec<Filter> {
    let kw = |s: &str| AttrValue::Keyword(s.into());
    vec![
        Filter::Eq { field: "lang".into(), value: kw("de") },
        Filter::In { field: "lang".into(), values: vec![kw("de"), kw("fr")] },
        Filter::Range { field: "year".into(), gte: Some(2005), lt: Some(2008) },
        Filter::Range { field: "year".into(), gte: None, lt: Some(2002) },
        Filter::And(vec![
            Filter::Eq { field: "lang".into(), value: kw("en") },
            Filter::Range { field: "year".into(), gte: Some(2010), lt: None },
        ]),
        Filter::Or(vec![
            Filter::Eq { field: "lang".into(), value: kw("fr") },
            Filter::Range { field: "year".into(), gte: Some(2018), lt: None },
        ]),
        Filter::Eq { field: "year".into(), value: AttrValue::Integer(2011) },
    ]
}

fn hits(o: Outcome) -> Vec<u64> {
    match o {
        Outcome::Hits(h) => h,
        other => panic!("expected hits, got {other:?}"),
    }
}

/// A word that occurs in exactly one document, with that document's id.
fn unique_word(ds: &Dataset) -> (String, u64) {
    let mut seen: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, t) in ds.texts.iter().enumerate() {
        for w in t.split(' ').collect::<HashSet<_>>() {
            seen.entry(w).or_default().push(i);
        }
    }
    let mut unique: Vec<(&str, usize)> =
        seen.into_iter().filter(|(_, d)| d.len() == 1).map(|(w, d)| (w, d[0])).collect();
    unique.sort();
    let (w, d) = unique.first().expect("a 3000-word vocabulary leaves unique words");
    (w.to_string(), *d as u64)
}

/// Load the dataset into `driver` and hold it to the contract. Cleans up at the end.
/// Runs the whole suite and returns what `finish_load` said, for engine-specific checks.
pub async fn run_suite(driver: &dyn Driver, expect: &Expect) -> dbbench::driver::IndexStats {
    let ds = dataset();
    let schema = ds.schema("dbbench_conformance");
    let caps = driver.capabilities();
    driver.ping().await.expect("ping");
    driver.prepare(&schema).await.expect("prepare");
    let records: Vec<Record> = (0..ds.len()).map(|i| ds.record(i)).collect();
    for chunk in records.chunks(100) {
        driver.load(chunk).await.expect("load");
    }
    let stats = driver.finish_load().await.expect("finish_load");
    if let Some(n) = stats.records {
        assert_eq!(n, ds.len() as u64, "finish_load reports every loaded record");
    }
    let info = driver.describe().await.expect("describe");
    assert!(!info.version.is_empty(), "describe gives a version");

    knn(driver, &ds, expect, &caps).await;
    text(driver, &ds, expect, &caps).await;
    writes(driver, &ds, expect, &caps).await;
    unsupported(driver, &caps).await;

    driver.cleanup().await.expect("cleanup");
    stats
}

async fn knn(driver: &dyn Driver, ds: &Dataset, expect: &Expect, caps: &dbbench::driver::Capabilities) {
    assert!(caps.support(OpKind::Knn).runs(), "every driver runs knn");
    let schema = ds.schema("x");
    let mut cases: Vec<Option<Filter>> = vec![None];
    if caps.filters.runs() {
        cases.extend(filters().into_iter().map(Some));
    }
    for filter in cases {
        let truth = exact_knn(ds, 10, filter.as_ref());
        let mut recall = 0.0;
        for (q, truth_q) in truth.iter().enumerate() {
            let op = Op::Knn { vector: ds.query_vector(q), k: 10, filter: filter.as_ref(), params: &expect.params };
            let got = hits(driver.execute(&op).await.unwrap_or_else(|e| panic!("knn {filter:?}: {e}")));
            assert!(got.len() <= 10, "at most k results");
            assert_eq!(got.len(), truth_q.len(), "knn {filter:?}: as many results as admitted records, up to k");
            let unique: HashSet<_> = got.iter().collect();
            assert_eq!(unique.len(), got.len(), "no duplicate ids");
            if let Some(f) = &filter {
                for id in &got {
                    assert!(
                        f.matches(&schema, &ds.attributes[*id as usize]),
                        "knn where {f}: id {id} does not match the filter"
                    );
                }
            }
            recall += dbbench::quality::recall_at_k(&got, truth_q, 10).unwrap_or(1.0);
        }
        let mean = recall / ds.queries.len() as f64;
        assert!(
            mean >= expect.knn_min_recall - 1e-9,
            "knn {}: mean recall@10 {mean:.3} below {}",
            filter.map(|f| f.to_string()).unwrap_or_else(|| "unfiltered".into()),
            expect.knn_min_recall
        );
    }
}

async fn text(driver: &dyn Driver, ds: &Dataset, expect: &Expect, caps: &dbbench::driver::Capabilities) {
    if !caps.support(OpKind::Text).runs() {
        return;
    }
    let params = SearchParams::new();
    let (word, doc) = unique_word(ds);
    let got =
        hits(driver.execute(&Op::Text { query: &word, k: 10, filter: None, params: &params }).await.expect("text"));
    if expect.ranked_text {
        assert_eq!(got.first(), Some(&doc), "text {word:?} ranks its only document first");
    } else {
        assert!(got.contains(&doc), "text {word:?} finds its only document");
    }
    let schema = ds.schema("x");
    let doc_attrs = &ds.attributes[doc as usize];
    if caps.filters.runs() {
        let lang = doc_attrs[0].clone();
        let keep = Filter::Eq { field: "lang".into(), value: lang.clone() };
        let got = hits(
            driver
                .execute(&Op::Text { query: &word, k: 10, filter: Some(&keep), params: &params })
                .await
                .expect("filtered text"),
        );
        assert!(got.contains(&doc), "filtered text keeps a matching document");
        let other = if lang == AttrValue::Keyword("en".into()) { "de" } else { "en" };
        let drop = Filter::Eq { field: "lang".into(), value: AttrValue::Keyword(other.into()) };
        let got = hits(
            driver
                .execute(&Op::Text { query: &word, k: 10, filter: Some(&drop), params: &params })
                .await
                .expect("filtered text"),
        );
        assert!(!got.contains(&doc), "filtered text drops a document that fails the filter");
        for id in &got {
            assert!(drop.matches(&schema, &ds.attributes[*id as usize]));
        }
    }
    if caps.support(OpKind::Hybrid).runs() {
        let q = 0;
        let got = hits(
            driver
                .execute(&Op::Hybrid {
                    vector: ds.query_vector(q),
                    query: &word,
                    k: 10,
                    filter: None,
                    params: &expect.params,
                })
                .await
                .expect("hybrid"),
        );
        assert!(!got.is_empty() && got.len() <= 10, "hybrid returns up to k results");
        assert!(got.contains(&doc), "hybrid includes the only document matching the text");
    }
}

async fn writes(driver: &dyn Driver, ds: &Dataset, expect: &Expect, caps: &dbbench::driver::Capabilities) {
    let new_id = ds.len() as u64 + 1000;
    let mut vector: Vec<f32> = ds.query_vector(3).to_vec();
    vector[0] += 0.001;
    let record = Record {
        id: new_id,
        vector: Arc::from(vector.clone()),
        text: Arc::from("xzqconformance marker document"),
        attributes: vec![AttrValue::Keyword("fr".into()), AttrValue::Integer(2019)],
    };
    if caps.support(OpKind::Insert).runs() {
        driver.execute(&Op::Insert { record: &record }).await.expect("insert");
        if caps.support(OpKind::Get).runs() {
            match driver.execute(&Op::Get { id: new_id }).await.expect("get after insert") {
                Outcome::Found(Some(r)) => {
                    assert_eq!(r.id, new_id);
                    assert_eq!(&*r.text, &*record.text, "get returns the inserted text");
                    assert_eq!(r.attributes, record.attributes, "get returns the inserted attributes");
                }
                other => panic!("get after insert: {other:?}"),
            }
        }
        let got = hits(
            driver
                .execute(&Op::Knn { vector: &vector, k: 1, filter: None, params: &expect.params })
                .await
                .expect("knn after insert"),
        );
        assert_eq!(got, vec![new_id], "knn finds the inserted record at once (read your write)");
        if caps.support(OpKind::Text).runs() {
            let got = hits(
                driver
                    .execute(&Op::Text { query: "xzqconformance", k: 5, filter: None, params: &SearchParams::new() })
                    .await
                    .expect("text after insert"),
            );
            assert_eq!(got, vec![new_id], "text finds the inserted record at once");
        }
    }
    if caps.support(OpKind::Update).runs() && caps.support(OpKind::Insert).runs() {
        let w = driver
            .execute(&Op::Update { id: new_id, field: "year", value: AttrValue::Integer(1999) })
            .await
            .expect("update");
        assert_eq!(w, Outcome::Written(1), "update reports one row");
        if caps.filters.runs() {
            let f = Filter::Range { field: "year".into(), gte: None, lt: Some(2000) };
            let got = hits(
                driver
                    .execute(&Op::Knn { vector: &vector, k: 5, filter: Some(&f), params: &expect.params })
                    .await
                    .expect("knn after update"),
            );
            assert_eq!(got, vec![new_id], "a filter on the updated value finds the record at once");
        }
        if caps.support(OpKind::Get).runs() {
            match driver.execute(&Op::Get { id: new_id }).await.expect("get after update") {
                Outcome::Found(Some(r)) => assert_eq!(r.attributes[1], AttrValue::Integer(1999)),
                other => panic!("get after update: {other:?}"),
            }
        }
    }
    if caps.support(OpKind::ReadModifyWrite).runs() && caps.support(OpKind::Insert).runs() {
        let w = driver
            .execute(&Op::ReadModifyWrite { id: new_id, field: "year", value: AttrValue::Integer(2001) })
            .await
            .expect("read_modify_write");
        assert_eq!(w, Outcome::Written(1));
    }
    if caps.support(OpKind::Delete).runs() && caps.support(OpKind::Insert).runs() {
        driver.execute(&Op::Delete { id: new_id }).await.expect("delete");
        if caps.support(OpKind::Get).runs() {
            assert_eq!(
                driver.execute(&Op::Get { id: new_id }).await.expect("get after delete"),
                Outcome::Found(None),
                "deleted record is gone"
            );
        }
        let got = hits(
            driver
                .execute(&Op::Knn { vector: &vector, k: 3, filter: None, params: &expect.params })
                .await
                .expect("knn after delete"),
        );
        assert!(!got.contains(&new_id), "knn no longer returns the deleted record");
    }
    if caps.support(OpKind::Get).runs() {
        assert_eq!(
            driver.execute(&Op::Get { id: 10_000_000 }).await.expect("get missing"),
            Outcome::Found(None),
            "get of an unknown id is None, not an error"
        );
    }
    if caps.support(OpKind::Scan).runs() {
        let got = hits(driver.execute(&Op::Scan { start: 100, limit: 5 }).await.expect("scan"));
        assert_eq!(got, vec![100, 101, 102, 103, 104], "scan returns ascending ids from start");
    }
}

async fn unsupported(driver: &dyn Driver, caps: &dbbench::driver::Capabilities) {
    let ds = dataset();
    let params = SearchParams::new();
    let record = ds.record(0);
    for kind in OpKind::ALL {
        if caps.support(kind) != &Support::No {
            continue;
        }
        let op = match kind {
            OpKind::Knn => Op::Knn { vector: ds.query_vector(0), k: 1, filter: None, params: &params },
            OpKind::Text => Op::Text { query: "x", k: 1, filter: None, params: &params },
            OpKind::Hybrid => {
                Op::Hybrid { vector: ds.query_vector(0), query: "x", k: 1, filter: None, params: &params }
            }
            OpKind::Get => Op::Get { id: 0 },
            OpKind::Insert => Op::Insert { record: &record },
            OpKind::Update => Op::Update { id: 0, field: "year", value: AttrValue::Integer(1) },
            OpKind::Delete => Op::Delete { id: 0 },
            OpKind::Scan => Op::Scan { start: 0, limit: 1 },
            OpKind::ReadModifyWrite => Op::ReadModifyWrite { id: 0, field: "year", value: AttrValue::Integer(1) },
            OpKind::Expand => Op::Expand {
                vector: ds.query_vector(0),
                seeds: 1,
                hops: 1,
                max_results: 10,
                filter: None,
                params: &params,
            },
        };
        match driver.execute(&op).await {
            Err(e) => assert_eq!(e.kind, ErrorKind::Unsupported, "{kind}: unsupported ops fail as unsupported"),
            Ok(o) => panic!("{kind} is declared unsupported but returned {o:?}"),
        }
    }
}

/// The conformance dataset with generated links (3 out-links a record on average).
pub fn linked_dataset() -> Dataset {
    let mut ds = dataset();
    ds.links = Some(dbbench::data::links::Links::generate(ds.len(), 3, 7));
    ds
}

/// Graph expansion against `data::links::expand` from the exact seeds: with exact seeds
/// (`expect.knn_min_recall == 1.0`) the very same ids in the same order, otherwise at
/// least that mean recall of the exact expansion; at 1 and 2 hops, unfiltered and with a
/// filter on the seeds, and cut short by `max_results`. Loads its own collection and
/// cleans it up.
pub async fn run_expand_suite(driver: &dyn Driver, expect: &Expect) {
    let ds = linked_dataset();
    let links = ds.links.as_ref().expect("links");
    let caps = driver.capabilities();
    assert!(caps.support(OpKind::Expand).runs(), "run_expand_suite is for drivers that expand");
    let mut schema = ds.schema("dbbench_conformance_graph");
    assert!(schema.links, "a dataset with links asks for them in the schema");
    schema.links = true;
    driver.prepare(&schema).await.expect("prepare");
    let records: Vec<Record> = (0..ds.len()).map(|i| ds.record(i)).collect();
    for chunk in records.chunks(100) {
        driver.load(chunk).await.expect("load");
    }
    for chunk in links.pairs().chunks(300) {
        driver.load_links(chunk).await.expect("load_links");
    }
    driver.finish_load().await.expect("finish_load");

    let de = Filter::Eq { field: "lang".into(), value: AttrValue::Keyword("de".into()) };
    for (hops, seeds, max_results, filter) in
        [(1, 3, 200, None), (2, 3, 200, None), (2, 5, 25, None), (1, 4, 200, Some(&de)), (2, 2, 60, Some(&de))]
    {
        let seed_truth = exact_knn(&ds, seeds, filter);
        let mut recall = 0.0;
        for (q, exact_seeds) in seed_truth.iter().enumerate() {
            let want = dbbench::data::links::expand(links, exact_seeds, hops, max_results);
            let op =
                Op::Expand { vector: ds.query_vector(q), seeds, hops, max_results, filter, params: &expect.params };
            let got = hits(driver.execute(&op).await.unwrap_or_else(|e| panic!("expand q{q}: {e}")));
            let case = format!("expand q{q}, {seeds} seeds, {hops} hop(s), up to {max_results}, filter {filter:?}");
            assert!(got.len() <= max_results, "{case}: at most max_results");
            let unique: HashSet<_> = got.iter().collect();
            assert_eq!(unique.len(), got.len(), "{case}: no duplicate ids");
            if expect.knn_min_recall >= 1.0 {
                assert_eq!(got, want, "{case}: the exact expansion, in order");
            }
            recall += dbbench::quality::recall_at_k(&got, &want, max_results).unwrap_or(1.0);
        }
        let mean = recall / ds.queries.len() as f64;
        assert!(
            mean >= expect.knn_min_recall - 1e-9,
            "expand {hops} hop(s) from {seeds}, filter {filter:?}: mean recall {mean:.3} below {}",
            expect.knn_min_recall
        );
    }
    driver.cleanup().await.expect("cleanup");
}

/// The ids of kNN for the first `n` queries, sorted, at the engine's highest search
/// effort (a restore may rebuild an approximate index: the answers compared are then the
/// data's, as near as the engine can, not the luck of a graph).
async fn answers(driver: &dyn Driver, ds: &Dataset, n: usize) -> Vec<Vec<u64>> {
    let mut params = SearchParams::new();
    if let Some(knob) = driver.effort_knob(OpKind::Knn).filter(|k| k.scope == dbbench::driver::KnobScope::Request) {
        params.insert(knob.param.into(), serde_json::json!(knob.value(knob.max, 10)));
    }
    let mut out = Vec::new();
    for q in 0..n {
        let op = Op::Knn { vector: ds.query_vector(q), k: 10, filter: None, params: &params };
        let mut h = hits(driver.execute(&op).await.expect("knn"));
        h.sort_unstable();
        out.push(h);
    }
    out
}

/// What a recovery phase needs of a driver, held to one contract:
/// - `attach` from a second driver takes up the loaded collection as it is (same count,
///   same answers) and refuses a collection that does not exist;
/// - `count` says how many records there are, and follows an insert;
/// - `durability` says something;
/// - `backup` then `restore` gives back the collection as it was at the backup (an
///   insert made after the backup is gone), checked through a third, attached driver.
///
/// `open` makes a new driver for the same engine and settings. `backup` false: the
/// driver must say backup is unsupported. Cleans up at the end.
pub async fn run_recovery_suite(
    open: impl Fn() -> Box<dyn Driver>,
    backup_dir: &std::path::Path,
    service: Option<&dbbench::service::Service>,
    backup: bool,
) {
    let ds = dataset();
    let schema = ds.schema("dbbench_conformance_recovery");
    let first = open();
    first.ping().await.expect("ping");
    first.prepare(&schema).await.expect("prepare");
    let records: Vec<Record> = (0..ds.len()).map(|i| ds.record(i)).collect();
    for chunk in records.chunks(100) {
        first.load(chunk).await.expect("load");
    }
    first.finish_load().await.expect("finish_load");
    assert_eq!(first.count().await.expect("count"), ds.len() as u64, "count after the load");
    assert!(!first.durability().await.is_empty(), "durability says something");
    let before = answers(first.as_ref(), &ds, 5).await;
    // An embedded engine's files are opened by one driver at a time.
    first.close().await.expect("close");

    let missing = ds.schema("dbbench_conformance_absent");
    let err = open().attach(&missing).await.expect_err("attach to nothing");
    assert!(err.message.contains("does not exist"), "{}", err.message);

    let second = open();
    second.attach(&schema).await.expect("attach");
    assert_eq!(second.count().await.expect("count"), ds.len() as u64, "an attached driver sees every record");
    assert_eq!(answers(second.as_ref(), &ds, 5).await, before, "an attached driver answers the same");

    let target = dbbench::driver::BackupTarget { dir: backup_dir, service };
    if !backup {
        let err = second.backup(&target).await.expect_err("no backup route");
        assert_eq!(err.kind, ErrorKind::Unsupported, "{}", err.message);
        second.cleanup().await.expect("cleanup");
        return;
    }
    let made = second.backup(&target).await.expect("backup");
    assert!(made.size_bytes.is_none_or(|n| n > 0), "a backup has a size: {made:?}");
    let mut extra = ds.record(0);
    extra.id = 1_000_000;
    second.execute(&Op::Insert { record: &extra }).await.expect("insert after the backup");
    assert_eq!(second.count().await.expect("count"), ds.len() as u64 + 1, "count follows an insert");
    second.restore(&made, &target).await.expect("restore");
    second.close().await.expect("close");
    let third = open();
    third.attach(&schema).await.expect("attach after the restore");
    assert_eq!(third.count().await.expect("count"), ds.len() as u64, "the restore gives back what was backed up");
    assert_eq!(answers(third.as_ref(), &ds, 5).await, before, "the restored collection answers the same");
    let got = third.execute(&Op::Get { id: 1_000_000 }).await.expect("get");
    assert!(matches!(got, Outcome::Found(None)), "the insert after the backup is gone: {got:?}");
    third.cleanup().await.expect("cleanup");
}
