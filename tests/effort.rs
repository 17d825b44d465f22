//! Search effort end to end with the scripted engine, whose recall as a function of
//! effort is known (`recall_curve`): the tuner picks the least passing setting and
//! reports held-out recall, an unreachable target is reported as unreached (and fails
//! the verdict), sweep steps are separate measurements, and bad effort input is refused
//! at validate with its file:line.

use std::path::Path;

use dbbench::report::recommend::{self, Outcome};
use dbbench::results::{PhaseResult, RunResults};
use dbbench::runner::{self, RunOptions};
use dbbench::spec::{self, Overrides};
use tokio_util::sync::CancellationToken;

const HEAD: &str = r#"
[workload]
name = "effort"
seed = 3

[dataset]
source = "synthetic"
[dataset.synthetic]
docs = 400
queries = 40
dim = 8
clusters = 8
"#;

async fn run(dir: &Path, body: &str) -> RunResults {
    let file = dir.join("w.toml");
    std::fs::write(&file, format!("{HEAD}{body}")).unwrap();
    let plan = spec::load_plan(&file, &Overrides::default()).unwrap();
    let opts = RunOptions {
        run_id: "test".into(),
        out_dir: dir.join("out"),
        cache_dir: dir.join("cache"),
        progress: false,
        repeat: 1,
        shard: None,
        raw_latencies: false,
    };
    let summary = runner::run(plan, opts, CancellationToken::new()).await.unwrap();
    assert!(summary.failed_engines().is_empty(), "no engine fails");
    RunResults::read(&summary.results_path).unwrap()
}

fn phase<'a>(r: &'a RunResults, engine: &str, name: &str) -> &'a PhaseResult {
    let e = r.engines.iter().find(|e| e.name == engine).unwrap();
    e.phases.iter().find(|p| p.name == name).unwrap_or_else(|| panic!("{engine} has no phase {name}"))
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 0.02)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tuner_picks_the_least_passing_effort_and_reports_an_unreachable_target() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(
        dir.path(),
        r#"
[engines.curve]
driver = "scripted"
[engines.curve.settings]
recall_curve = [[10, 0.5], [20, 0.8], [40, 0.9], [80, 1.0]]

[engines.short]
driver = "scripted"
[engines.short.settings]
recall_curve = [[10, 0.5], [80, 0.9]]

[[phases]]
name = "tuned"
requests = 60
concurrency = 2
target_recall = 0.85
effort = [10, 20, 40, 80, 160]
[[phases.ops]]
op = "knn"
k = 10

[[phases]]
name = "strict"
requests = 60
concurrency = 2
target_recall = 0.95
effort = [10, 20, 40, 80, 160]
[[phases.ops]]
op = "knn"
k = 10

[requirements]
capabilities = ["knn"]
"#,
    )
    .await;

    // curve reaches 0.85 first at effort 40 (0.9): 20 gives 0.8.
    let t = phase(&r, "curve", "tuned").tuning.as_ref().expect("tuned");
    assert!(t.reached);
    assert_eq!(t.chosen.effort, Some(40));
    assert_eq!(t.chosen.setting(), "effort=40");
    assert!(close(t.tuning_recall, 0.9), "{t:?}");
    assert!(close(t.heldout_recall, 0.9), "held-out recall is the curve's: {t:?}");
    assert_eq!((t.tuning_queries, t.heldout_queries), (20, 20));
    // The top first, then a binary search: 160, 40, 20.
    let tried: Vec<Option<u64>> = t.steps.iter().map(|s| s.step.effort).collect();
    assert_eq!(tried, [Some(160), Some(40), Some(20)]);
    for s in &t.steps {
        assert_eq!(s.ops[0].count, 20, "each tuning pass asks every tuning query once");
    }
    // The held-out measurement ran at that setting, on the held-out queries.
    let measured = &phase(&r, "curve", "tuned").ops[0];
    assert_eq!(measured.count, 60);
    assert_eq!(measured.params.get("effort"), Some(&serde_json::json!(40)));

    // At 0.95 curve needs 80; short never gets there.
    let strict = phase(&r, "curve", "strict").tuning.as_ref().unwrap();
    assert_eq!((strict.reached, strict.chosen.effort), (true, Some(80)));
    let short = phase(&r, "short", "strict").tuning.as_ref().unwrap();
    assert!(!short.reached, "{short:?}");
    assert_eq!(short.chosen.effort, Some(160), "measured at the highest effort tried");
    assert_eq!(short.steps.len(), 1, "an unreachable top ends the search");
    assert_eq!(short.summary(), "target 0.95 not reached: best recall 0.900 at effort=160");

    // The verdict: short fails the tuned requirement, with its best recall; curve fits.
    let v = recommend::evaluate(&r);
    let check = |engine: &str| {
        let e = v.engines.iter().find(|e| e.engine == engine).unwrap();
        e.checks.iter().find(|c| c.requirement.starts_with("strict: tuned to recall@10 >= 0.95")).unwrap().clone()
    };
    assert_eq!(check("curve").outcome, Outcome::Pass);
    assert_eq!(check("short").outcome, Outcome::Fail);
    assert!(check("short").detail.contains("best recall 0.900"), "{:?}", check("short"));
    assert_eq!(v.fit, ["curve"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_steps_are_separate_measurements() {
    let dir = tempfile::tempdir().unwrap();
    // Each unit of effort adds 1 ms: step e's requests sleep at least e ms (+ 0.1). A
    // request of an earlier step counted in a later one would sit below that step's
    // floor; one of a later step counted in an earlier one would make a count other
    // than the step's own 25. (No ceiling is asserted: a loaded machine may oversleep.)
    let r = run(
        dir.path(),
        r#"
[engines.slow]
driver = "scripted"
[engines.slow.settings]
latency_us = 100
latency_per_effort_us = 1000
recall_curve = [[4, 0.5], [8, 0.8], [16, 1.0]]

[engines.exact]
driver = "scripted"

[[phases]]
name = "sweep"
requests = 25
warmup = "50ms"
concurrency = 2
effort = [4, 8, 16]
[[phases.ops]]
op = "knn"
k = 10
"#,
    )
    .await;
    let slow = &r.engines.iter().find(|e| e.name == "slow").unwrap().phases;
    let names: Vec<&str> = slow.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["sweep@effort=4", "sweep@effort=8", "sweep@effort=16"]);
    for (p, (effort, recall)) in slow.iter().zip([(4.0, 0.5), (8.0, 0.8), (16.0, 1.0)]) {
        let step = p.step.as_ref().unwrap();
        assert_eq!(step.phase, "sweep");
        assert_eq!(step.knob.as_deref(), Some("effort"));
        let o = &p.ops[0];
        assert_eq!(o.count, 25, "{}: exactly its own requests", p.name);
        let h = dbbench::metrics::decode_histogram(&o.histograms.latency).unwrap();
        let min = h.min() as f64 / 1e6; // nanoseconds
        assert!(min >= effort, "{}: min {min} ms below its own {effort} ms", p.name);
        assert!(close(o.quality.recall_at_k, recall), "{}: {:?}", p.name, o.quality);
        assert_eq!(h.len(), 25, "{}: the histogram holds its own requests only", p.name);
    }
    // An engine without a knob searches one way: one step.
    let exact: Vec<&str> =
        r.engines.iter().find(|e| e.name == "exact").unwrap().phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(exact, ["sweep@exact"]);
}

/// A knob of the index itself (as Chroma's `ef_search`): every sweep step and tuning
/// pass searches at its own value, put in force by `set_effort`, and the phase after
/// searches at the configured value again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_knob_is_put_in_force_for_each_step_and_back_after() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(
        dir.path(),
        r#"
[engines.index]
driver = "scripted"
[engines.index.settings]
index_effort = 8
recall_curve = [[4, 0.5], [8, 0.8], [16, 1.0]]

[[phases]]
name = "sweep"
requests = 40
concurrency = 2
effort = [4, 16]
[[phases.ops]]
op = "knn"
k = 10

[[phases]]
name = "tuned"
requests = 40
concurrency = 2
target_recall = 0.9
effort = [4, 8, 16]
[[phases.ops]]
op = "knn"
k = 10

[[phases]]
name = "after"
requests = 40
concurrency = 2
[[phases.ops]]
op = "knn"
k = 10
"#,
    )
    .await;
    for (name, recall) in [("sweep@effort=4", 0.5), ("sweep@effort=16", 1.0), ("after", 0.8)] {
        let q = &phase(&r, "index", name).ops[0].quality;
        assert!(close(q.recall_at_k, recall), "{name}: {q:?}");
    }
    let tuned = phase(&r, "index", "tuned");
    let t = tuned.tuning.as_ref().unwrap();
    let tried: Vec<(Option<u64>, Option<f64>)> = t.steps.iter().map(|s| (s.step.value, s.recall)).collect();
    assert_eq!(tried.len(), 2, "16 passes, then 8 fails: {tried:?}");
    for (value, recall) in tried {
        let want = match value {
            Some(4) => 0.5,
            Some(8) => 0.8,
            _ => 1.0,
        };
        assert!(close(recall, want), "tuning pass at {value:?}: {recall:?}");
    }
    assert_eq!(t.chosen.value, Some(16));
    assert!(close(tuned.ops[0].quality.recall_at_k, 1.0), "measured at the chosen value");
}

#[test]
fn bad_effort_input_is_refused_with_its_line() {
    // `at`: the key whose line the error must name.
    let check = |body: &str, at: &str, says: &str| {
        let text = format!("{HEAD}\n[engines.sqlite]\n{body}");
        // The first line that starts with it (the workload's name is "effort" too).
        let line = 1 + text.lines().position(|l| l.trim_start().starts_with(at)).unwrap();
        match spec::parse_plan(Path::new("w.toml"), &text, String::new(), &Overrides::default(), |_| None) {
            Err(dbbench::error::Error::Spec { line: l, message, .. }) => {
                assert!(message.contains(says), "{message}");
                assert_eq!(l, line, "{message}");
            }
            other => panic!("expected a spec error for {body:?}, got {other:?}"),
        }
    };
    let phase = |keys: &str, op: &str| {
        format!("[[phases]]\nname = \"p\"\nrequests = 5\n{keys}\n[[phases.ops]]\nop = \"{op}\"\n")
    };
    check(&phase("target_recall = 1.5", "knn"), "target_recall", "target_recall = 1.5 must be above 0 and at most 1");
    check(&phase("target_recall = 0.0", "knn"), "target_recall", "must be above 0");
    check(&phase("effort = []", "knn"), "effort", "effort is empty");
    check(&phase("effort = [40, 20]", "knn"), "effort", "sorted ascending without repeats (40 then 20)");
    check(&phase("effort = [0, 20]", "knn"), "effort", "at least 1");
    check(&phase("effort = [10, 20]", "text"), "effort", "apply to phases whose ops are all knn or hybrid");
    check(&phase("target_recall = 0.9\ntuning_share = 1.0", "knn"), "tuning_share", "tuning_share = 1 must be between");
    check(
        &phase("effort = [1]\nengine_effort = { nope = [1, 2] }", "knn"),
        "engine_effort",
        "engine_effort.nope names no engine",
    );
    check(&phase("engine_effort = { sqlite = [1, 2] }", "knn"), "engine_effort", "needs effort = [...] as well");
    check(&phase("tuning_share = 0.5\neffort = [1]", "knn"), "tuning_share", "tuning_share goes with target_recall");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verdict_ranks_fits_by_preference_and_names_what_decides_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Both reach recall 1.0 at the lowest effort; fast answers in 1 ms, slow in 4 ms.
    let r = run(
        dir.path(),
        r#"
[engines.slow]
driver = "scripted"
[engines.slow.settings]
latency_us = 4000
recall_curve = [[1, 1.0]]

[engines.fast]
driver = "scripted"
[engines.fast.settings]
latency_us = 1000
recall_curve = [[1, 1.0]]

[[phases]]
name = "knn"
requests = 200
concurrency = 2
target_recall = 0.9
effort = [1, 2]
[[phases.ops]]
op = "knn"
k = 10

[requirements]
capabilities = ["knn"]
[[requirements.slo]]
phase = "knn"
op = "knn"
metric = "recall_at_k"
min = 0.9
"#,
    )
    .await;
    let prefer = r.run.requirements.as_ref().and_then(|q| q.prefer.clone()).expect("a default preference");
    assert!(prefer.default);
    assert_eq!((prefer.phase.as_deref(), prefer.op.as_deref()), (Some("knn"), Some("knn")));
    let v = recommend::evaluate(&r);
    assert_eq!(v.fit, ["fast", "slow"], "throughput ranks them, not run order: {v:?}");
    assert!(v.headline.starts_with("Recommended: fast"), "{}", v.headline);
    assert!(v.headline.contains("runner-up slow"), "{}", v.headline);
    assert!(v.headline.contains("against slow's"), "the margin is named: {}", v.headline);
    assert!(
        v.reasons.iter().any(|l| l.contains("recall@10") && l.contains("decides nothing")),
        "recall 1.000 for both is called out: {:?}",
        v.reasons
    );
}
