//! Graph expansion (GraphRAG) end to end: links generated for the dataset, loaded into the
//! embedded engine, expanded in one statement, scored against dbbench's own expansion;
//! and the workload mistakes `validate` must refuse with the file and line.

mod support;

use serde_json::Value;
use support::{assert_validate_refuses, dbbench, text};

const GRAPH: &str = r#"
[workload]
name = "graphtest"
seed = 5

[dataset]
source = "synthetic"
[dataset.links]
degree = 2
[dataset.synthetic]
docs = 600
queries = 30
dim = 16

[[attributes]]
name = "lang"
kind = "keyword"
values = ["en", "de"]
weights = [3, 1]

[engines.sqlite]
[engines.chroma]
url = "http://127.0.0.1:9"

[[phases]]
name = "walk"
requests = 60
[[phases.ops]]
op = "expand"
seeds = 3
hops = 2
max_results = 50
[[phases.ops]]
op = "expand"
label = "expand-de"
seeds = 2
hops = 1
max_results = 40
filter = { field = "lang", eq = "de" }
"#;

#[test]
fn expand_on_the_embedded_engine_equals_the_reference_expansion() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("graph.toml");
    std::fs::write(&file, GRAPH).unwrap();
    let out = dbbench(&["run", file.to_str().unwrap(), "--out", "out", "--engines", "sqlite"], dir.path());
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(0), "{msg}");
    assert!(msg.contains("links: ") && msg.contains("generated (seed 5"), "the links are announced: {msg}");
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out/results.json")).unwrap()).unwrap();
    let links = &r["run"]["dataset"]["links"];
    let n = links["links"].as_u64().unwrap();
    assert!(n > 600, "about 2 out-links a record, less repeats: {links}");
    let sqlite = &r["engines"][0];
    assert_eq!(sqlite["load"]["links"].as_u64(), Some(n), "every link stored");
    let ops = sqlite["phases"][0]["ops"].as_array().unwrap();
    for o in ops {
        assert_eq!(o["op"], "expand");
        assert!(o["count"].as_u64().unwrap() > 0, "{o}");
        // sqlite's seeds are exact, so its expansion must be dbbench's own, set for set.
        assert_eq!(o["recall_at_k"].as_f64(), Some(1.0), "{}: {o}", o["label"]);
        assert!(o.get("ndcg_at_10").is_none(), "judgments do not grade an expansion");
    }
    assert_eq!(ops[0]["expand"], serde_json::json!({"seeds": 3, "hops": 2}));
    assert_eq!(ops[0]["k"], 50, "k is max_results");
    let md = std::fs::read_to_string(dir.path().join("out/report.md")).unwrap();
    assert!(md.contains("expand-de"), "{md}");
}

#[test]
fn engines_say_which_expand_natively_and_which_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let out = dbbench(&["engines"], dir.path());
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(0), "{msg}");
    assert!(msg.contains("expand"), "the op is listed: {msg}");
}

#[test]
fn bad_expand_settings_exit_2_naming_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("hops0", GRAPH.replace("hops = 2", "hops = 0"), "hops = 0 must be between 1 and 3"),
        ("hops9", GRAPH.replace("hops = 2", "hops = 9"), "hops = 9 must be between 1 and 3"),
        ("seeds0", GRAPH.replace("seeds = 3", "seeds = 0"), "seeds = 0 must be between 1 and 1000"),
        (
            "nolinks",
            GRAPH.replace("[dataset.links]\ndegree = 2\n", ""),
            "expand walks links between records, and the dataset has none",
        ),
        ("withk", GRAPH.replace("seeds = 3", "seeds = 3\nk = 10"), "expand takes seeds, hops and max_results, not k"),
        ("degree0", GRAPH.replace("degree = 2", "degree = 0"), "dataset.links.degree = 0 must be between 1 and 100"),
        ("both", GRAPH.replace("degree = 2", "degree = 2\nfile = \"l.tsv\""), "give either degree = N"),
        (
            "hopsonknn",
            GRAPH.replace("op = \"expand\"\nseeds = 3", "op = \"knn\"\nseeds = 3"),
            "seeds, hops and max_results apply to expand only",
        ),
        (
            "stream",
            GRAPH.replace("source = \"synthetic\"", "source = \"synthetic\"\nstream = 0.2"),
            "dataset.stream with dataset.links",
        ),
    ];
    assert_validate_refuses(dir.path(), &cases);
}

/// A links file naming a document the corpus lacks is an error that names the file and
/// the line, not a silently smaller graph.
#[test]
fn a_links_file_with_an_unknown_document_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let body = GRAPH.replace("degree = 2", "file = \"links.tsv\"").replace(
        "source = \"synthetic\"",
        "source = \"vectors\"\nbase_vectors = \"base.fvecs\"\nquery_vectors = \"q.fvecs\"",
    );
    // 4 base vectors and 2 queries of dim 2, as fvecs.
    let fvecs = |rows: &[[f32; 2]]| -> Vec<u8> {
        rows.iter().flat_map(|r| [2i32.to_le_bytes(), r[0].to_le_bytes(), r[1].to_le_bytes()].concat()).collect()
    };
    std::fs::write(dir.path().join("base.fvecs"), fvecs(&[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, 0.2]])).unwrap();
    std::fs::write(dir.path().join("q.fvecs"), fvecs(&[[1.0, 0.1], [0.1, 1.0]])).unwrap();
    std::fs::write(dir.path().join("links.tsv"), "0\t1\n2\t3\n1\t7\n").unwrap();
    let file = dir.path().join("g.toml");
    std::fs::write(&file, body.replace("dim = 16", "dim = 2")).unwrap();
    let out = dbbench(&["run", file.to_str().unwrap(), "--out", "out", "--engines", "sqlite"], dir.path());
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(2), "{msg}");
    assert!(msg.contains("links.tsv") && msg.contains("line 3") && msg.contains("\"7\" is not in the corpus"), "{msg}");
}
