//! The command line as a user meets it: exit codes, messages that name the place, run
//! folders whose results.json matches the documented schema, skipped engines, warmup
//! kept out of the numbers, and Ctrl-C.

mod support;

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use support::{assert_validate_refuses, dbbench, text};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const SMALL: &str = r#"
[workload]
name = "small"

[dataset]
source = "synthetic"
[dataset.synthetic]
docs = 300
queries = 20
dim = 8

[[attributes]]
name = "bucket"
kind = "integer"
min = 0
max = 9

[engines.sqlite]

[engines.stub]
driver = "scripted"
[engines.stub.settings]
latency_us = 200

[[phases]]
name = "mixed"
requests = 200
warmup = "300ms"
concurrency = 2
[[phases.ops]]
op = "knn"
k = 5
filter = { field = "bucket", lt = 5 }
[[phases.ops]]
op = "get"
"#;

#[test]
fn every_shipped_workload_validates() {
    for entry in std::fs::read_dir(root().join("workloads")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let out = dbbench(&["validate", path.to_str().unwrap()], &root());
        assert!(out.status.success(), "{}: {}", path.display(), text(&out));
        assert!(text(&out).contains("phase "), "validate prints the plan");
    }
}

#[test]
fn bad_workloads_exit_2_naming_file_line_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("typo", SMALL.replace("concurrency = 2", "concurency = 2"), ":29:1: unknown field `concurency`"),
        (
            "type",
            SMALL.replace("requests = 200", "requests = \"lots\""),
            ":27:12: invalid type: string \"lots\", expected u64",
        ),
        ("k0", SMALL.replace("k = 5", "k = 0"), "k = 0 must be between 1 and 10000"),
        (
            "rate",
            SMALL.replace("concurrency = 2", "concurrency = 2\nrate = -5"),
            "rate = -5 must be a number of requests per second above 0",
        ),
        (
            "filter",
            SMALL.replace("field = \"bucket\", lt = 5", "field = \"bucket\", eq = \"x\""),
            "bucket is an integer attribute",
        ),
        ("driver", SMALL.replace("driver = \"scripted\"", "driver = \"oracle\""), "unknown driver \"oracle\""),
        (
            "settings",
            SMALL.replace("latency_us = 200", "latency = 200"),
            "engines.stub.settings: unknown field `latency`",
        ),
        (
            "env",
            SMALL.replace("[engines.sqlite]", "[engines.sqlite]\nurl = \"${DBBENCH_SURELY_UNSET_VAR}\""),
            "environment variable DBBENCH_SURELY_UNSET_VAR is not set",
        ),
        ("toml", "[workload\nname = 1".to_string(), ":1:10:"),
        (
            "sizes",
            SMALL.replace("source = \"synthetic\"", "source = \"synthetic\"\nsizes = [200, 100]"),
            ":5:1: dataset.sizes: at least one size, each at least 1, in ascending order",
        ),
        (
            "sizes-big",
            SMALL.replace("source = \"synthetic\"", "source = \"synthetic\"\nsizes = [100, 500]"),
            "the largest size, 500, is more than dataset.synthetic.docs = 300",
        ),
    ];
    assert_validate_refuses(dir.path(), &cases);
    let out = dbbench(&["validate", "no/such/file.toml"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("cannot read workload file no/such/file.toml"));
    let out = dbbench(&["run", "x.toml", "--duration", "soon"], dir.path());
    assert_eq!(out.status.code(), Some(2), "bad flags are bad input: {}", text(&out));
}

/// Field names that results.json must carry (issue-level contract), by level.
const REQUIRED_OP: &[&str] = &[
    "op",
    "count",
    "errors",
    "throughput_ops_s",
    "latency_ms",
    "service_time_ms",
    "histograms",
    "intervals",
    "error_kinds",
];
const REQUIRED_SUMMARY: &[&str] = &["p50", "p90", "p95", "p99", "p999", "max", "mean"];

fn collect_keys(v: &Value, out: &mut std::collections::BTreeSet<String>, free_form: bool) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                // Maps keyed by data (settings, params, error kinds, capabilities) are not schema.
                let data_keyed =
                    ["settings", "params", "error_kinds", "capabilities", "stats", "ops_support"].contains(&k.as_str());
                if !free_form {
                    out.insert(k.clone());
                }
                collect_keys(v, out, free_form || data_keyed);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_keys(x, out, free_form)),
        _ => {}
    }
}

#[test]
fn a_run_writes_results_matching_the_documented_schema() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("small.toml");
    std::fs::write(&file, SMALL).unwrap();
    let out = dbbench(&["run", "small.toml", "--out", "run", "--cache", "cache"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run/results.json")).unwrap()).unwrap();

    assert_eq!(results["schema_version"], 1);
    let run = &results["run"];
    assert_eq!(run["complete"], true);
    assert_eq!(run["seed"], 42);
    assert_eq!(run["workload"]["sha256"].as_str().unwrap().len(), 64);
    for k in ["dataset", "machine", "started_at", "finished_at"] {
        assert!(!run[k].is_null(), "run.{k}");
    }
    assert!(results["dbbench"]["version"].is_string() && results["dbbench"]["commit"].is_string());

    let engines = results["engines"].as_array().unwrap();
    assert_eq!(engines.len(), 2);
    for e in engines {
        for k in ["name", "status", "reason", "version", "settings", "phases"] {
            assert!(e.get(k).is_some(), "engine field {k}");
        }
        assert_eq!(e["status"], "ok", "{e}");
        let phase = &e["phases"][0];
        assert_eq!(phase["name"], "mixed");
        let ops = phase["ops"].as_array().unwrap();
        let total: u64 = ops.iter().map(|o| o["count"].as_u64().unwrap() + o["errors"].as_u64().unwrap()).sum();
        assert_eq!(total, 200, "warmup requests are not counted: exactly the phase's 200 requests");
        for o in ops {
            for k in REQUIRED_OP {
                assert!(o.get(*k).is_some(), "op field {k} in {o}");
            }
            for k in REQUIRED_SUMMARY {
                assert!(
                    o["latency_ms"].get(*k).is_some() && o["service_time_ms"].get(*k).is_some(),
                    "summary field {k}"
                );
            }
            assert!(o["latency_ms"]["p50"].as_f64().unwrap() > 0.0, "{o}");
        }
        let knn = ops.iter().find(|o| o["op"] == "knn").unwrap();
        assert_eq!(knn["k"], 5);
        if e["name"] == "sqlite" {
            assert_eq!(knn["recall_at_k"].as_f64(), Some(1.0), "sqlite-vec is exact");
        }
    }

    // Every field name results.json uses is documented.
    let doc = std::fs::read_to_string(root().join("docs/results-schema.md")).unwrap();
    let mut keys = std::collections::BTreeSet::new();
    collect_keys(&results, &mut keys, false);
    for k in keys {
        assert!(doc.contains(&format!("`{k}`")), "docs/results-schema.md does not document `{k}`");
    }
}

#[test]
fn unreachable_engines_are_skipped_with_how_to_start_them() {
    let dir = tempfile::tempdir().unwrap();
    let body = SMALL.replace("latency_us = 200", "latency_us = 200\nunreachable = true");
    std::fs::write(dir.path().join("w.toml"), body).unwrap();
    let out = dbbench(&["run", "w.toml", "--out", "run", "--cache", "cache"], dir.path());
    assert!(out.status.success(), "the others still run: {}", text(&out));
    assert!(text(&out).contains("engine stub skipped: cannot reach scripted"), "{}", text(&out));
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run/results.json")).unwrap()).unwrap();
    let stub = r["engines"].as_array().unwrap().iter().find(|e| e["name"] == "stub").unwrap();
    assert_eq!(stub["status"], "skipped");
    assert!(stub["reason"].as_str().unwrap().contains("connection refused"));
    assert!(stub["start_hint"].is_string());
    assert_eq!(r["run"]["complete"], true, "a skipped engine does not make the run incomplete");

    let out = dbbench(&["run", "w.toml", "--out", "run2", "--cache", "cache", "--require-all"], dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("--require-all: engines not reachable: stub"));
}

#[test]
fn an_engine_that_fails_mid_run_keeps_results_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let body = SMALL
        .replace("latency_us = 200", "latency_us = 200\nerror_every = 1\nerror_kind = \"unreachable\"")
        .replace("[engines.sqlite]\n", "");
    std::fs::write(dir.path().join("w.toml"), body).unwrap();
    let out = dbbench(&["run", "w.toml", "--out", "run", "--cache", "cache"], dir.path());
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(1), "{msg}");
    assert!(msg.contains("the run is incomplete, stub: phase \"mixed\""), "{msg}");
    assert!(!msg.contains("panicked"));
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run/results.json")).unwrap()).unwrap();
    assert_eq!(r["run"]["complete"], false);
    assert!(r["run"]["incomplete_reason"].as_str().unwrap().contains("stub"));
    assert_eq!(r["engines"][0]["status"], "failed");
    assert_eq!(r["engines"][0]["phases"][0]["complete"], false);
}

#[test]
fn ctrl_c_writes_what_was_measured_and_marks_the_run_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let body = SMALL.replace("requests = 200", "duration = \"60s\"").replace("[engines.sqlite]\n", "");
    std::fs::write(dir.path().join("w.toml"), body).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_dbbench"))
        .args(["run", "w.toml", "--out", "run", "--cache", "cache"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(1), "{msg}");
    assert!(msg.contains("interrupted"), "{msg}");
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run/results.json")).unwrap()).unwrap();
    assert_eq!(r["run"]["complete"], false);
    let phase = &r["engines"][0]["phases"][0];
    assert_eq!(phase["complete"], false);
    let count: u64 = phase["ops"].as_array().unwrap().iter().map(|o| o["count"].as_u64().unwrap()).sum();
    assert!(count > 100, "the requests measured before Ctrl-C are kept: {count}");
}

/// `dataset.sizes`: a run per prefix, each with its own ground truth (an exact engine
/// scores recall 1.0 at every size only if the truth is the prefix's), then the growth
/// report over them.
#[test]
fn sizes_run_each_prefix_and_report_how_figures_grow() {
    let dir = tempfile::tempdir().unwrap();
    let body = SMALL.replace("source = \"synthetic\"", "source = \"synthetic\"\nsizes = [100, 300]");
    std::fs::write(dir.path().join("w.toml"), body).unwrap();
    let out = dbbench(&["run", "w.toml", "--out", "run", "--cache", "cache"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let read = |p: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run").join(p)).unwrap()).unwrap()
    };
    for n in [100u64, 300] {
        let r = read(&format!("size-{n}/results.json"));
        assert_eq!(r["run"]["dataset"]["docs"], n);
        assert_eq!(r["run"]["complete"], true);
        let sqlite = &r["engines"][0];
        assert_eq!((sqlite["name"].as_str(), sqlite["load"]["records"].as_u64()), (Some("sqlite"), Some(n)));
        let knn = &sqlite["phases"][0]["ops"][0];
        assert_eq!(knn["recall_at_k"], 1.0, "size {n}: exact search against the prefix's truth");
        assert!(dir.path().join(format!("run/size-{n}/report.html")).exists());
    }
    let s = read("scaling.json");
    assert_eq!(s["complete"], true);
    let sizes: Vec<u64> = s["sizes"].as_array().unwrap().iter().map(|z| z["size"].as_u64().unwrap()).collect();
    assert_eq!(sizes, [100, 300]);
    let sqlite = &s["engines"][0];
    assert_eq!(sqlite["name"], "sqlite");
    let points = sqlite["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    for p in points {
        assert!(p["figures"]["load_seconds"].as_f64().unwrap() > 0.0, "{p}");
        assert_eq!(p["ops"][0]["figures"]["recall_at_k"], 1.0, "{p}");
    }
    // The disk the engine reports grows with the records it holds.
    let disk = |i: usize| points[i]["figures"]["disk_mib"].as_f64().unwrap();
    assert!(disk(1) > disk(0), "{} then {}", disk(0), disk(1));
    let html = std::fs::read_to_string(dir.path().join("run/report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("size-100/report.html"), "{html}");
    let md = std::fs::read_to_string(dir.path().join("run/report.md")).unwrap();
    assert!(md.contains("## load time (load s)") && md.contains("| sqlite |"), "{md}");
}

#[test]
fn engines_lists_drivers_and_reachability() {
    let out = dbbench(&["engines"], &root());
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("sqlite (driver sqlite)"), "{t}");
    assert!(t.contains("reachable"));
    assert!(!t.contains("scripted"), "test doubles are hidden");
}

/// `:line:column:` of the first `needle` in `body`, `skip` bytes into it, as dbbench
/// reports positions.
fn position(body: &str, needle: &str, skip: usize) -> String {
    let at = body.find(needle).unwrap_or_else(|| panic!("{needle:?} in the workload")) + skip;
    let line = body[..at].matches('\n').count() + 1;
    let column = at - body[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
    format!(":{line}:{column}:")
}

#[test]
fn search_params_no_engine_reads_or_of_the_wrong_type_exit_2_at_the_param() {
    let dir = tempfile::tempdir().unwrap();
    // SMALL's engines read no such param: sqlite reads none, the scripted engine only its
    // own `effort`.
    let unknown = SMALL.replace("k = 5\n", "k = 5\nparams = { hnsw_ef = 100 }\n");
    // A disabled pgvector engine still counts: its driver reads ef_search, as an integer
    // from 1 to 1000.
    let pg = "[engines.pg]\ndriver = \"pgvector\"\nenabled = false\n\n[engines.stub]";
    let with_pg = SMALL.replace("[engines.stub]", pg);
    let mistyped = with_pg.replace("k = 5\n", "k = 5\nparams = { ef_search = \"lots\" }\n");
    let out_of_range = with_pg.replace("k = 5\n", "k = 5\nparams = { ef_search = 0 }\n");
    let on_text = with_pg.replace("op = \"get\"", "op = \"text\"\nparams = { ef_search = 100 }");
    // (name, workload, where the error points (text, bytes into it), message)
    let cases = [
        ("unknown", &unknown, ("hnsw_ef = 100", 0), "params.hnsw_ef: no engine of this workload reads it on knn ops"),
        (
            "mistyped",
            &mistyped,
            ("ef_search = \"lots\"", 12),
            "params.ef_search = \"lots\": engine pg reads it as an integer from 1 to 1000",
        ),
        (
            "range",
            &out_of_range,
            ("ef_search = 0", 12),
            "params.ef_search = 0: engine pg reads it as an integer from 1 to 1000",
        ),
        (
            "on_text",
            &on_text,
            ("ef_search = 100", 0),
            "params.ef_search: no engine of this workload reads it on text ops",
        ),
    ];
    for (name, body, (at, skip), expected) in cases {
        let file = dir.path().join(format!("{name}.toml"));
        std::fs::write(&file, body).unwrap();
        let file = file.to_str().unwrap();
        for args in [vec!["validate", file], vec!["run", file, "--cache", "cache", "--out", "run"]] {
            let out = dbbench(&args, dir.path());
            let msg = text(&out);
            assert_eq!(out.status.code(), Some(2), "{name} {}: {msg}", args[0]);
            let place = format!("{name}.toml{}", position(body, at, skip));
            assert!(msg.contains(&place), "{name} {}: expected {place:?} in: {msg}", args[0]);
            assert!(msg.contains(expected), "{name} {}: expected {expected:?} in: {msg}", args[0]);
            assert!(!dir.path().join("run").exists(), "{name}: refused before anything ran");
        }
    }
    assert!(text(&dbbench(&["validate", "unknown.toml"], dir.path())).contains("sqlite reads none; stub reads effort"));
    // The same param on an op where the pgvector engine reads it is valid.
    std::fs::write(dir.path().join("ok.toml"), with_pg.replace("k = 5\n", "k = 5\nparams = { ef_search = 100 }\n"))
        .unwrap();
    let out = dbbench(&["validate", "ok.toml"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("sqlite: applies none; not applicable: ef_search"), "{}", text(&out));
}

/// The op of `engine` in the first phase of a results file.
fn op_of<'a>(results: &'a Value, engine: &str, label: &str) -> &'a Value {
    let e = results["engines"].as_array().unwrap().iter().find(|e| e["name"] == engine).unwrap();
    assert_eq!(e["status"], "ok", "{e}");
    e["phases"][0]["ops"].as_array().unwrap().iter().find(|o| o["label"] == label).unwrap()
}

#[test]
fn a_param_no_running_engine_reads_runs_everywhere_and_is_recorded_not_applicable() {
    let dir = tempfile::tempdir().unwrap();
    let pg = "[engines.pg]\ndriver = \"pgvector\"\nenabled = false\n\n[engines.stub]";
    let body = SMALL.replace("[engines.stub]", pg).replace("k = 5\n", "k = 5\nparams = { ef_search = 100 }\n");
    std::fs::write(dir.path().join("w.toml"), body).unwrap();
    let out = dbbench(&["run", "w.toml", "--out", "run", "--cache", "cache"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run/results.json")).unwrap()).unwrap();
    for engine in ["sqlite", "stub"] {
        let knn = op_of(&r, engine, "knn");
        assert_eq!(knn["errors"], 0, "{engine}: {knn}");
        assert!(knn["count"].as_u64().unwrap() > 0, "{engine}");
        assert_eq!(knn["params"]["ef_search"], 100);
        assert_eq!(knn["param_use"], serde_json::json!({ "applied": [], "not_applicable": ["ef_search"] }), "{engine}");
        assert!(op_of(&r, engine, "get").get("param_use").is_none(), "no params, no param_use");
    }
}

#[cfg(feature = "qdrant-edge")]
#[test]
fn a_param_one_engine_reads_runs_on_both_and_is_recorded_per_engine() {
    let dir = tempfile::tempdir().unwrap();
    let body = SMALL
        .replace("[engines.stub]", "[engines.qdrant-edge]\n\n[engines.stub]")
        .replace("k = 5\n", "k = 5\nparams = { hnsw_ef = 100 }\n");
    std::fs::write(dir.path().join("w.toml"), body).unwrap();
    let out = dbbench(&["run", "w.toml", "--out", "run", "--cache", "cache"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run/results.json")).unwrap()).unwrap();
    let expect = [
        ("qdrant-edge", vec!["hnsw_ef"], vec![]),
        ("sqlite", vec![], vec!["hnsw_ef"]),
        ("stub", vec![], vec!["hnsw_ef"]),
    ];
    for (engine, applied, not_applicable) in expect {
        let knn = op_of(&r, engine, "knn");
        assert_eq!(knn["errors"], 0, "{engine}: {knn}");
        assert!(knn["count"].as_u64().unwrap() > 0, "{engine}");
        assert_eq!(
            knn["param_use"],
            serde_json::json!({ "applied": applied, "not_applicable": not_applicable }),
            "{engine}"
        );
    }
}

#[test]
fn engines_lists_each_drivers_search_params() {
    let out = dbbench(&["engines"], &root());
    let t = text(&out);
    assert!(t.contains("ef_search (knn, hybrid, expand): an integer from 1 to 1000"), "{t}");
    assert!(t.contains("num_candidates (knn, hybrid): an integer from 1 to 10000"), "{t}");
    assert!(t.contains("params: none"), "{t}");
}
