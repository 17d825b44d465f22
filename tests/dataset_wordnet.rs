//! The WordNet dataset builder (scripts/datasets/) end to end: a 2,000-synset slice built
//! from the real WordNet files with the real MiniLM embedder, loaded by dbbench as a BEIR
//! folder and searched on SQLite, and the builder's own Python tests (among them the
//! embedder against the published SciFact vectors).
//!
//! The first run sets up what the builder needs (Debian's wordnet-base when it can, and a
//! Python venv in `.venv-datasets/` from PyPI); a machine that cannot have them fails here
//! with the one line saying what to install.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const SLICE: usize = 2000;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn build_wordnet(args: &[&str]) -> Output {
    Command::new("bash")
        .arg(root().join("scripts/datasets/build-wordnet.sh"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run scripts/datasets/build-wordnet.sh")
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).unwrap().lines().count()
}

fn op<'a>(results: &'a Value, phase: &str, label: &str) -> &'a Value {
    let engine = &results["engines"][0];
    assert_eq!(engine["name"], "sqlite");
    assert_eq!(engine["status"], "ok", "{engine}");
    let phase = engine["phases"].as_array().unwrap().iter().find(|p| p["name"] == phase).unwrap();
    phase["ops"].as_array().unwrap().iter().find(|o| o["label"] == label).unwrap()
}

#[test]
fn a_wordnet_slice_builds_and_runs_through_dbbench_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("wordnet");
    let limit = SLICE.to_string();
    let out = build_wordnet(&[data.to_str().unwrap(), "--limit", &limit]);
    assert!(out.status.success(), "the builder failed: {}", text(&out));

    let meta: Value = serde_json::from_str(&std::fs::read_to_string(data.join("dataset.json")).unwrap()).unwrap();
    let queries = meta["counts"]["queries"].as_u64().unwrap() as usize;
    assert_eq!(meta["counts"]["documents"], SLICE as u64);
    assert_eq!(meta["judgments"], "pseudo");
    assert!(queries > SLICE / 4, "about 0.4 usage examples per synset, got {queries}");
    assert_eq!(lines(&data.join("corpus.jsonl")), SLICE);
    assert_eq!(lines(&data.join("queries.jsonl")), queries);
    assert_eq!(lines(&data.join("qrels/test.tsv")), queries + 1, "header + one judgment per query");
    let npy_bytes = std::fs::metadata(data.join("corpus.minilm.npy")).unwrap().len() as usize;
    assert_eq!(npy_bytes, 128 + SLICE * 384 * 4, "float32 [{SLICE}, 384] after the .npy header");
    let first = std::fs::read_to_string(data.join("corpus.jsonl")).unwrap();
    let first: Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    for field in ["pos", "lexname", "lemmas"] {
        assert!(!first["metadata"][field].is_null(), "corpus metadata carries {field}: {first}");
    }

    let again = build_wordnet(&[data.to_str().unwrap(), "--limit", &limit]);
    assert!(again.status.success() && text(&again).contains("reused"), "a second run reuses: {}", text(&again));

    let workload = format!(
        r#"
[workload]
name = "wordnet-slice"
seed = 7

[dataset]
source = "beir"
path = "wordnet"
corpus_vectors = "corpus.minilm.npy"
query_vectors = "queries.minilm.npy"
qrels = "qrels/test.tsv"
metric = "cosine"

# The hypernym links the builder writes, for expand.
[dataset.links]
file = "links.tsv"

[[attributes]]
name = "pos"
kind = "keyword"
from = "pos"

[[attributes]]
name = "lemmas"
kind = "integer"
from = "lemmas"

[engines.sqlite]

[[phases]]
name = "knn-noun"
requests = 50
concurrency = 2
[[phases.ops]]
op = "knn"
label = "knn-pos-n"
k = 10
filter = {{ field = "pos", eq = "n" }}

[[phases]]
name = "quality-knn"
requests = {queries}
concurrency = 2
[[phases.ops]]
op = "knn"
label = "knn-100"
k = 100
query_order = "cycle"

[[phases]]
name = "graph"
requests = 50
concurrency = 2
[[phases.ops]]
op = "expand"
label = "expand-2-hops"
seeds = 3
hops = 2
max_results = 100

[[phases]]
name = "quality-text"
requests = {queries}
concurrency = 2
[[phases.ops]]
op = "text"
label = "text-100"
k = 100
query_order = "cycle"
"#
    );
    std::fs::write(dir.path().join("w.toml"), workload).unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_dbbench"))
        .args(["run", "w.toml", "--out", "run", "--cache", "cache"])
        .current_dir(dir.path())
        .output()
        .expect("run dbbench");
    assert!(run.status.success(), "dbbench run failed: {}", text(&run));
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run/results.json")).unwrap()).unwrap();
    let dataset = &results["run"]["dataset"];
    assert_eq!(dataset["docs"], SLICE as u64);
    assert_eq!(dataset["queries"], queries as u64);
    assert_eq!(dataset["dim"], 384);
    assert_eq!(dataset["judged"], true);
    assert_eq!(dataset["judgments"], "pseudo", "results say the judgments are pseudo-judgments");
    let report = std::fs::read_to_string(dir.path().join("run/report.md")).unwrap();
    assert!(report.contains("The judgments are pseudo-judgments"), "report.md says so too");

    // The real part of speech, read from the corpus: the filter's selectivity in results
    // is the count in corpus.jsonl, and exact search under it is exact.
    let nouns = std::fs::read_to_string(data.join("corpus.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).unwrap()["metadata"]["pos"] == "n")
        .count();
    assert!(nouns > SLICE / 2 && nouns < SLICE, "most synsets are nouns: {nouns}");
    let filters = dataset["filters"].as_array().unwrap();
    assert_eq!(filters.len(), 1, "{filters:?}");
    assert_eq!(filters[0]["filter"], "pos = \"n\"");
    assert_eq!(filters[0]["admitted"], nouns as u64);
    assert!((filters[0]["selectivity"].as_f64().unwrap() - nouns as f64 / SLICE as f64).abs() < 1e-12);
    let filtered = op(&results, "knn-noun", "knn-pos-n");
    assert_eq!(filtered["recall_at_k"].as_f64(), Some(1.0), "exact filtered search: {filtered}");

    // One relevant synset among 2,000: a random ranking scores nDCG@10 about 0.002.
    let knn = op(&results, "quality-knn", "knn-100");
    assert_eq!(knn["count"], queries as u64);
    assert_eq!(knn["errors"], 0);
    let dense = knn["ndcg_at_10"].as_f64().expect("nDCG@10 for judged kNN");
    assert!(dense > 0.2, "dense nDCG@10 {dense} is no better than chance");
    assert!(knn["recall_at_k"].as_f64().unwrap() > 0.99, "SQLite searches exactly: {knn}");
    let text_op = op(&results, "quality-text", "text-100");
    assert_eq!(text_op["count"], queries as u64);
    let bm25 = text_op["ndcg_at_10"].as_f64().expect("nDCG@10 for judged text search");
    assert!(bm25 > 0.1, "text nDCG@10 {bm25} is no better than chance");
    // The builder's hypernym links, read from links.tsv (source-id, target-id, relation),
    // stored by sqlite and walked exactly from exact seeds.
    let link_lines = lines(&data.join("links.tsv")) - 1;
    let links = dataset["links"]["links"].as_u64().expect("links in results") as usize;
    assert!(links > 0 && links <= link_lines, "{links} links of {link_lines} lines: {}", dataset["links"]);
    assert_eq!(results["engines"][0]["load"]["links"].as_u64(), Some(links as u64));
    let expand = op(&results, "graph", "expand-2-hops");
    assert_eq!(expand["count"], 50);
    assert_eq!(expand["recall_at_k"].as_f64(), Some(1.0), "sqlite expands exactly: {expand}");

    eprintln!("wordnet slice of {SLICE}: {queries} queries, dense nDCG@10 {dense:.3}, text nDCG@10 {bm25:.3}");
}

#[test]
fn the_builders_python_tests_pass() {
    let out = build_wordnet(&["--test"]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains(" passed, 0 failed"), "{said}");
    // The embedder's proof needs the SciFact vectors; where they are, it must have run.
    let scifact = std::env::var_os("DBBENCH_SCIFACT")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared/datasets/scifact"));
    let verdict = if scifact.join("corpus.minilm.npy").is_file() { "ok  " } else { "SKIP" };
    assert!(said.contains(&format!("{verdict}  test_embedder_reproduces_the_scifact_vectors")), "{said}");
}
