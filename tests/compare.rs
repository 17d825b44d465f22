//! `dbbench compare` end to end: real `dbbench run` invocations against the scripted
//! engine (programmed latencies and hits), then the gate's exit code and verdicts.
//!
//! Every candidate runs the same workload file as the baseline (compare refuses anything
//! else); the engine's change between runs comes through the scripted driver's
//! `override_env`, as a new engine build would.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_dbbench");
const OVERRIDE: &str = "DBBENCH_GATE_TEST_SCRIPT";

/// Ten documents and k = 10: the exact top 10 of every query is the whole corpus, ids 0..9,
/// so `hits` scripts recall exactly. 10 ms per request (+ up to 2 ms jitter) at concurrency
/// 2 gives about 160 requests per second: enough for p99 in every 2-second repetition.
const WORKLOAD: &str = r#"
[workload]
name = "gate-test"
seed = 7

[dataset]
source = "synthetic"

[dataset.synthetic]
docs = 10
queries = 5
dim = 8
metric = "cosine"
clusters = 2
vocabulary = 50
words_per_doc = 5

[engines.fake]
driver = "scripted"

[engines.fake.settings]
latency_us = 10000
jitter_us = 2000
hits = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
override_env = "DBBENCH_GATE_TEST_SCRIPT"

[[phases]]
name = "search"
duration = "2s"
warmup = "500ms"
concurrency = 2

[[phases.ops]]
op = "knn"
k = 10
"#;

struct Fixture {
    dir: tempfile::TempDir,
    baseline: PathBuf,
}

impl Fixture {
    fn workload(&self) -> PathBuf {
        self.dir.path().join("gate-test.toml")
    }
}

/// The baseline is run once and shared by every test of this file.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("gate-test.toml"), WORKLOAD).expect("write workload");
        let mut f = Fixture { baseline: PathBuf::new(), dir };
        f.baseline = run(&f, "baseline", None, &f.workload());
        f
    })
}

/// `dbbench run --repeat 3` into a folder named `name`, with the script overridden.
fn run(f: &Fixture, name: &str, script: Option<&str>, workload: &Path) -> PathBuf {
    let out = f.dir.path().join(name);
    let mut cmd = Command::new(BIN);
    cmd.arg("run")
        .arg(workload)
        .args(["--repeat", "3", "--no-progress", "--out"])
        .arg(&out)
        .arg("--cache")
        .arg(f.dir.path().join("cache"));
    match script {
        Some(s) => cmd.env(OVERRIDE, s),
        None => cmd.env_remove(OVERRIDE),
    };
    let o = cmd.output().expect("run dbbench");
    assert!(o.status.success(), "dbbench run {name} failed:\n{}", String::from_utf8_lossy(&o.stderr));
    out
}

fn compare(baseline: &Path, candidate: &Path, extra: &[&str]) -> Output {
    Command::new(BIN).arg("compare").arg(baseline).arg(candidate).args(extra).output().expect("run dbbench compare")
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!("compare --format json printed no JSON ({e}):\n{}", String::from_utf8_lossy(&o.stdout))
    })
}

/// The verdict of `metric` on the one op of the workload.
fn metric<'a>(report: &'a Value, metric: &str) -> &'a Value {
    let ops = report["ops"].as_array().expect("ops array");
    assert_eq!(ops.len(), 1, "one engine x phase x op: {report:#}");
    ops[0]["metrics"]
        .as_array()
        .expect("metrics array")
        .iter()
        .find(|m| m["metric"] == metric)
        .unwrap_or_else(|| panic!("no {metric} in {report:#}"))
}

#[test]
fn repeat_writes_each_repetition_as_its_own_phase_entry() {
    let f = fixture();
    let text = std::fs::read_to_string(f.baseline.join("results.json")).unwrap();
    let results: Value = serde_json::from_str(&text).unwrap();
    let phases = results["engines"][0]["phases"].as_array().unwrap();
    let reps: Vec<(&str, u64)> =
        phases.iter().map(|p| (p["name"].as_str().unwrap(), p["repetition"].as_u64().unwrap())).collect();
    assert_eq!(reps, vec![("search", 1), ("search", 2), ("search", 3)]);
    for p in phases {
        assert!(p["ops"][0]["count"].as_u64().unwrap() > 200, "each repetition is a whole measured run: {p:#}");
    }
}

#[test]
fn a_candidate_30_percent_slower_fails_the_gate() {
    let f = fixture();
    let slow = run(f, "slow", Some("latency_us = 13000"), &f.workload());
    let o = compare(&f.baseline, &slow, &["--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stdout));
    let report = json_of(&o);
    assert_eq!(report["result"], "fail");
    let p50 = metric(&report, "p50_ms");
    assert_eq!(p50["verdict"], "regressed", "{p50:#}");
    assert_eq!(p50["direction"], "lower_is_better");
    assert_eq!(p50["samples_from"], "runs");
    let change = p50["change"].as_f64().unwrap();
    let (lo, hi) = (p50["change_lower"].as_f64().unwrap(), p50["change_upper"].as_f64().unwrap());
    assert!(change > 0.15 && change < 0.40, "about 3 ms more on about 12 ms: {change}");
    assert!(lo <= change && change <= hi && lo > 0.10, "the whole interval is beyond 10%: [{lo}, {hi}]");
    let tput = metric(&report, "throughput_ops_s");
    assert_eq!(tput["direction"], "higher_is_better");
    assert_eq!(tput["verdict"], "regressed", "{tput:#}");
    assert_eq!(metric(&report, "recall_at_k")["verdict"], "unchanged");

    // The same pair passes a threshold above the slowdown, and the text names the verdict.
    let lenient = compare(&f.baseline, &slow, &["--max-regression", "60%"]);
    assert_eq!(lenient.status.code(), Some(0), "{}", String::from_utf8_lossy(&lenient.stdout));
    let strict_text = compare(&f.baseline, &slow, &[]);
    let s = String::from_utf8_lossy(&strict_text.stdout);
    assert!(s.contains("REGRESSED") && s.contains("FAIL"), "{s}");
}

#[test]
fn an_equal_but_noisy_candidate_passes() {
    let f = fixture();
    // Same latency distribution, another pattern of jitter.
    let noisy = run(f, "noisy", Some("jitter_seed = 12345"), &f.workload());
    let o = compare(&f.baseline, &noisy, &["--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
    let report = json_of(&o);
    assert_eq!(report["result"], "pass");
    for name in ["p50_ms", "p99_ms", "throughput_ops_s", "recall_at_k"] {
        let m = metric(&report, name);
        assert_ne!(m["verdict"], "regressed", "{m:#}");
        assert!(m["baseline"].as_f64().is_some() && m["candidate"].as_f64().is_some(), "{m:#}");
    }
    // Compared with itself, every change is exactly zero.
    let same = json_of(&compare(&f.baseline, &f.baseline.join("results.json"), &["--format", "json"]));
    assert_eq!(metric(&same, "p99_ms")["change"].as_f64(), Some(0.0));
}

#[test]
fn a_recall_drop_fails_the_gate() {
    let f = fixture();
    let worse = run(f, "recall", Some("hits = [0, 1, 2, 3, 4, 5, 6, 7, 8]"), &f.workload());
    let o = compare(&f.baseline, &worse, &["--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stdout));
    let report = json_of(&o);
    let recall = metric(&report, "recall_at_k");
    assert_eq!(recall["verdict"], "regressed", "{recall:#}");
    assert_eq!(recall["change_kind"], "absolute");
    assert!((recall["baseline"].as_f64().unwrap() - 1.0).abs() < 1e-9);
    assert!((recall["candidate"].as_f64().unwrap() - 0.9).abs() < 1e-9);
    assert!((recall["change"].as_f64().unwrap() + 0.1).abs() < 1e-9);
    // A tolerance above the drop lets it through.
    let o = compare(&f.baseline, &worse, &["--quality-tolerance", "0.2", "--metric", "recall_at_k"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn an_engine_missing_from_the_candidate_is_reported_and_fails() {
    let f = fixture();
    let gone = run(f, "unreachable", Some("unreachable = true"), &f.workload());
    let o = compare(&f.baseline, &gone, &["--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stdout));
    let report = json_of(&o);
    let missing = report["only_in_baseline"].as_array().unwrap();
    assert_eq!(missing.len(), 1, "{report:#}");
    assert!(missing[0].as_str().unwrap().contains("fake / search / knn"), "{missing:?}");
    let notes = report["notes"].to_string();
    assert!(notes.contains("cannot reach"), "the skipped engine's reason is shown: {notes}");
}

#[test]
fn runs_of_different_workloads_or_bad_input_are_refused_with_exit_2() {
    let f = fixture();
    let other = f.dir.path().join("other.toml");
    std::fs::write(&other, WORKLOAD.replace("seed = 7", "seed = 8")).unwrap();
    let cand = run(f, "other-workload", None, &other);
    let o = compare(&f.baseline, &cand, &[]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("different workloads") && err.contains("sha256"), "{err}");

    let o = compare(&f.baseline, &f.dir.path().join("no-such-run"), &[]);
    assert_eq!(o.status.code(), Some(2));
    let o = compare(&f.baseline, &f.baseline, &["--metric", "p42_ms"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown metric"));
}

#[test]
fn a_folder_of_runs_is_one_side_with_every_run_as_a_sample() {
    let f = fixture();
    let pool = f.dir.path().join("pool");
    std::fs::create_dir_all(pool.join("a")).unwrap();
    std::fs::create_dir_all(pool.join("b")).unwrap();
    std::fs::copy(f.baseline.join("results.json"), pool.join("a/results.json")).unwrap();
    std::fs::copy(f.baseline.join("results.json"), pool.join("b/results.json")).unwrap();
    let o = compare(&pool, &f.baseline, &["--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let report = json_of(&o);
    assert_eq!(report["baseline"]["files"].as_array().unwrap().len(), 2);
    let p50 = metric(&report, "p50_ms");
    assert_eq!(p50["baseline_samples"], 6, "two runs of three repetitions: {p50:#}");
    assert_eq!(p50["candidate_samples"], 3);
    let md = compare(&pool, &f.baseline, &["--format", "markdown"]);
    assert!(String::from_utf8_lossy(&md.stdout).contains("| engine | phase | op | metric |"));
}

#[test]
fn one_invocation_writes_text_markdown_and_json() {
    let f = fixture();
    let slow = run(f, "slow-multi", Some("latency_us = 13000"), &f.workload());
    let out = f.dir.path().join("multi");
    std::fs::create_dir_all(&out).unwrap();
    let (md, json) = (out.join("compare.md"), out.join("compare.json"));
    let o = compare(&f.baseline, &slow, &["--markdown", md.to_str().unwrap(), "--json", json.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "the gate still fails: {}", String::from_utf8_lossy(&o.stderr));

    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("verdict") && text.contains("REGRESSED"), "text on stdout:\n{text}");
    assert!(!text.contains("| engine |") && !text.trim_start().starts_with('{'), "only text on stdout:\n{text}");

    let markdown = std::fs::read_to_string(&md).unwrap();
    assert!(markdown.starts_with("### dbbench compare"), "{markdown}");
    assert!(markdown.contains("| engine | phase | op | metric |") && markdown.contains("**regressed**"), "{markdown}");

    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["result"], "fail");
    assert_eq!(metric(&report, "p50_ms")["verdict"], "regressed");
    // The three renderings are of one comparison: the same verdicts and counts.
    let alone = json_of(&compare(&f.baseline, &slow, &["--format", "json"]));
    assert_eq!(report["ops"], alone["ops"]);
    assert_eq!(report["regressions"], alone["regressions"]);
    assert!(markdown.contains(&format!("{} regression(s)", report["regressions"])), "{markdown}");
    let leftovers: Vec<_> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 2, "no temporary files left behind: {leftovers:?}");

    // --format still chooses stdout, with the files beside it.
    let o = compare(&f.baseline, &slow, &["--format", "json", "--markdown", md.to_str().unwrap()]);
    assert_eq!(json_of(&o)["result"], "fail");
}

/// A copy of the baseline's results with another machine recorded, quality scripted
/// lower: only the machine and the recall differ from the baseline.
fn on_another_machine(f: &Fixture, name: &str, recall_drop: bool) -> PathBuf {
    let text = std::fs::read_to_string(f.baseline.join("results.json")).unwrap();
    let mut results: Value = serde_json::from_str(&text).unwrap();
    let machine = &mut results["run"]["machine"];
    machine["cpu_model"] = Value::from("Another CPU @ 1.00GHz");
    machine["cpus"] = Value::from(64);
    if recall_drop {
        for phase in results["engines"][0]["phases"].as_array_mut().unwrap() {
            for op in phase["ops"].as_array_mut().unwrap() {
                let r = op["recall_at_k"].as_f64().unwrap();
                op["recall_at_k"] = Value::from(r - 0.1);
            }
        }
    }
    let dir = f.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("results.json"), serde_json::to_string_pretty(&results).unwrap()).unwrap();
    dir
}

#[test]
fn timing_from_another_machine_is_not_comparable_but_quality_is_judged() {
    let f = fixture();
    let other = on_another_machine(f, "other-machine", false);
    let o = compare(&f.baseline, &other, &["--format", "json"]);
    assert_eq!(o.status.code(), Some(2), "not comparable: {}", String::from_utf8_lossy(&o.stdout));
    let report = json_of(&o);
    assert_eq!(report["result"], "not comparable");
    for name in ["p50_ms", "p99_ms", "throughput_ops_s"] {
        let m = metric(&report, name);
        assert_eq!(m["verdict"], "not_comparable", "{m:#}");
        // The change is still shown: it is the same data, only not judged.
        assert_eq!(m["change"].as_f64(), Some(0.0), "{m:#}");
    }
    assert_eq!(metric(&report, "recall_at_k")["verdict"], "unchanged");
    let notes = report["notes"].to_string();
    assert!(notes.contains("different machines") && notes.contains("--allow-other-machine"), "{notes}");
    let text = String::from_utf8_lossy(&compare(&f.baseline, &other, &[]).stdout).to_string();
    assert!(text.contains("NOT COMPARABLE") && text.contains("Another CPU"), "{text}");

    // Quality is judged across machines: a recall drop still fails (exit 1).
    let worse = on_another_machine(f, "other-machine-worse", true);
    let o = compare(&f.baseline, &worse, &["--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stdout));
    let report = json_of(&o);
    assert_eq!(metric(&report, "recall_at_k")["verdict"], "regressed");
    assert_eq!(metric(&report, "p50_ms")["verdict"], "not_comparable");

    // --allow-other-machine judges timing anyway, and says so.
    let o = compare(&f.baseline, &other, &["--format", "json", "--allow-other-machine"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
    let report = json_of(&o);
    assert_eq!(metric(&report, "p50_ms")["verdict"], "unchanged");
    assert!(report["notes"].to_string().contains("judged anyway"));
}

#[test]
fn an_ab_run_interleaves_both_workloads_and_catches_a_slower_candidate() {
    let f = fixture();
    let slow = f.dir.path().join("ab-slow.toml");
    std::fs::write(&slow, WORKLOAD.replace("latency_us = 10000", "latency_us = 13000")).unwrap();
    let out = f.dir.path().join("ab");
    let o = Command::new(BIN)
        .arg("compare")
        .arg("--ab")
        .arg(f.workload())
        .arg(&slow)
        .args(["--rounds", "3", "--duration", "1s", "--format", "json", "--out"])
        .arg(&out)
        .arg("--cache")
        .arg(f.dir.path().join("cache"))
        .env_remove(OVERRIDE)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    // The progress goes to stderr, so stdout is the JSON alone.
    let report = json_of(&o);
    assert_eq!(metric(&report, "p50_ms")["verdict"], "regressed");
    assert_eq!(metric(&report, "p50_ms")["samples_from"], "runs");
    assert_eq!(metric(&report, "p50_ms")["baseline_samples"], 3, "one sample a round");
    assert_eq!(metric(&report, "recall_at_k")["verdict"], "unchanged");
    // Every round of each side is kept, and the order alternates: A B, then B A.
    let started = |side: &str, round: u32| -> String {
        let p = out.join(side).join(format!("round-{round:02}")).join("results.json");
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        v["run"]["started_at"].as_str().unwrap().to_string()
    };
    assert!(started("baseline", 1) < started("candidate", 1));
    assert!(started("candidate", 2) < started("baseline", 2));
    assert!(started("baseline", 3) < started("candidate", 3));
    for f in ["compare.md", "compare.json"] {
        assert!(out.join(f).is_file(), "{f} is written beside the rounds");
    }
    // The same folder again would pool two A/B runs: refused.
    let again = Command::new(BIN)
        .args(["compare", "--ab"])
        .arg(f.workload())
        .arg(&slow)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds an A/B run"));
    // Too few rounds to test anything: refused before any run.
    let few =
        Command::new(BIN).args(["compare", "--ab", "--rounds", "2"]).arg(f.workload()).arg(&slow).output().unwrap();
    assert_eq!(few.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&few.stderr).contains("at least 3 rounds"));
}
