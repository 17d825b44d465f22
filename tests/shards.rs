//! One run split over three load generators: three `dbbench run --shard I/3` processes
//! against the live pgvector server (`services/up.sh pgvector`; URL from
//! `DBBENCH_PG_URL`) with the same `--start-at`, merged by `dbbench report`.
//!
//! Every request of every shard is kept (`--raw-latencies`), so the merge is checked
//! against what really happened: the planned number of requests, the planned open-loop
//! schedule arrival for arrival, and latency histograms equal, bucket for bucket, to one
//! built from the union of the shards' raw latencies. A shard killed mid-run must leave
//! the merged run incomplete, naming it.
//!
//! Fails, rather than skips, when the server cannot be reached: CI starts it first.
//! The refusals at the end need no server.

#![allow(clippy::unwrap_used)] // in tests a panic is the failure report

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use dbbench::metrics::{decode_histogram, new_histogram, record, LatencySummary, SIGFIG};
use dbbench::results::{OpResult, RunResults};
use support::{dbbench, text};

const SHARDS: u32 = 3;
/// The workload's open-loop phase: this many requests due at this rate.
const PLANNED: usize = 1800;
const RATE: f64 = 300.0;

fn pg_url() -> String {
    std::env::var("DBBENCH_PG_URL").unwrap_or_else(|_| dbbench::driver::pgvector::DEFAULT_URL.to_string())
}

/// workloads/sharded.toml under another name (its own table, so the tests of this file
/// can run side by side).
fn workload(dir: &Path, name: &str) -> PathBuf {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("workloads/sharded.toml");
    let body = std::fs::read_to_string(file).unwrap();
    assert!(body.contains("name = \"sharded\""));
    let body = body.replace("name = \"sharded\"", &format!("name = \"{name}\""));
    // The schedule this test checks is the file's own.
    assert!(
        body.contains(&format!("requests = {PLANNED}\nrate = {RATE}\n")),
        "workloads/sharded.toml changed its plan"
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, body).unwrap();
    path
}

/// Start shard `i` of a run at `start_at`; its output goes to `<dir>/shard-<i>.log`.
fn start_shard(dir: &Path, workload: &Path, i: u32, start_at: &str) -> Child {
    let log = std::fs::File::create(dir.join(format!("shard-{i}.log"))).unwrap();
    Command::new(env!("CARGO_BIN_EXE_dbbench"))
        .args(["run", workload.to_str().unwrap(), "--engines", "pgvector", "--no-progress", "--raw-latencies"])
        .args(["--shard", &format!("{i}/{SHARDS}"), "--start-at", start_at])
        .arg("--out")
        .arg(dir.join(format!("shard-{i}")))
        .arg("--cache")
        .arg(dir.join("cache"))
        .env("DBBENCH_PG_URL", pg_url())
        .current_dir(dir)
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap()
}

/// Far enough ahead for ground truth and shard 0's load (about 2 s here).
fn start_at(lead: Duration) -> String {
    (chrono::Utc::now() + chrono::Duration::from_std(lead).unwrap()).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn log(dir: &Path, i: u32) -> String {
    std::fs::read_to_string(dir.join(format!("shard-{i}.log"))).unwrap_or_default()
}

fn reachable() {
    // postgres://user:password@host:port/db
    let url = pg_url();
    let rest = url.split("://").nth(1).unwrap_or(&url);
    let host_port = rest.rsplit('@').next().unwrap().split(['/', '?']).next().unwrap();
    let addr = if host_port.contains(':') { host_port.to_string() } else { format!("{host_port}:5432") };
    std::net::TcpStream::connect(&addr).unwrap_or_else(|e| {
        panic!("cannot reach PostgreSQL at {addr} ({e}); start it with: bash services/up.sh pgvector")
    });
}

/// One request as a shard kept it: (due_ns, latency_ns, ok).
fn raw(dir: &Path, phase: &str, op: &str) -> Vec<(Option<u64>, u64, bool)> {
    let mut out = Vec::new();
    for i in 0..SHARDS {
        let file = dir.join(format!("shard-{i}/raw/pgvector/{phase}/{op}.tsv"));
        let body = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for line in body.lines().filter(|l| !l.starts_with('#')) {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 3, "{}: {line:?}", file.display());
            let due = (f[0] != "-").then(|| f[0].parse().unwrap());
            out.push((due, f[1].parse().unwrap(), f[2] == "1"));
        }
    }
    out
}

fn op<'a>(r: &'a RunResults, phase: &str, label: &str) -> &'a OpResult {
    let p = r.engines[0].phases.iter().find(|p| p.name == phase).unwrap();
    p.ops.iter().find(|o| o.label == label).unwrap()
}

/// The exact value at quantile `q` of `values` (sorted), by rank as HdrHistogram counts it.
fn exact_quantile(sorted: &[u64], q: f64) -> u64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The merged op's latency histogram is the union of the shards' raw latencies, bucket
/// for bucket, and its p50 and p99 are the union's.
fn assert_merged_is_the_union(dir: &Path, merged: &RunResults, phase: &str, label: &str) -> usize {
    let samples = raw(dir, phase, label);
    let mut ok: Vec<u64> = samples.iter().filter(|s| s.2).map(|s| s.1).collect();
    ok.sort_unstable();
    let o = op(merged, phase, label);
    assert_eq!(o.count as usize, ok.len(), "{phase}/{label}: merged count is the shards' successful requests");
    assert_eq!(o.errors as usize, samples.len() - ok.len(), "{phase}/{label}: and their errors");

    let mut union = new_histogram(SIGFIG);
    for &v in &ok {
        record(&mut union, v);
    }
    let got = decode_histogram(&o.histograms.latency).unwrap();
    let buckets = |h: &hdrhistogram::Histogram<u64>| {
        h.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect::<Vec<_>>()
    };
    let (want, have) = (buckets(&union), buckets(&got));
    assert!(want.len() > 10, "{phase}/{label}: enough distinct latencies to mean something");
    assert_eq!(have, want, "{phase}/{label}: merged histogram = histogram of the union, bucket for bucket");

    let summary = LatencySummary::of(&union);
    assert_eq!(o.latency_ms.p50, summary.p50, "{phase}/{label}: p50");
    assert_eq!(o.latency_ms.p99, summary.p99, "{phase}/{label}: p99");
    for q in [0.5, 0.99] {
        let exact = exact_quantile(&ok, q);
        assert_eq!(
            union.highest_equivalent(exact),
            union.value_at_quantile(q),
            "{phase}/{label}: q{q}: the raw union's exact percentile falls in the reported bucket"
        );
    }
    ok.len()
}

#[test]
fn three_shards_merge_into_the_planned_run_exactly() {
    reachable();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let wl = workload(dir, "sharded_merge");
    let at = start_at(Duration::from_secs(15));
    let children: Vec<Child> = (0..SHARDS).map(|i| start_shard(dir, &wl, i, &at)).collect();
    for (i, mut c) in children.into_iter().enumerate() {
        let status = c.wait().unwrap();
        assert!(status.success(), "shard {i} exit {status}:\n{}", log(dir, i as u32));
    }
    for i in 0..SHARDS {
        let l = log(dir, i);
        assert!(l.contains(&format!("shard {i}/{SHARDS} of a run starting at")), "{l}");
        assert!(!l.contains("did not measure it"), "every shard measured every phase in step:\n{l}");
    }
    assert!(log(dir, 1).contains("collection ready: 5000 records, loaded by shard 0"), "{}", log(dir, 1));

    let shards: Vec<String> =
        (0..SHARDS).map(|i| dir.join(format!("shard-{i}/results.json")).display().to_string()).collect();
    let mut args = vec!["report"];
    args.extend(shards.iter().map(String::as_str));
    let merged_dir = dir.join("merged");
    args.extend(["--out", merged_dir.to_str().unwrap()]);
    let out = dbbench(&args, dir);
    assert!(out.status.success(), "{}", text(&out));
    let merged = RunResults::read(&merged_dir.join("results.json")).unwrap();
    assert!(merged.run.complete, "{:?}", merged.run.incomplete_reason);
    assert_eq!(merged.run.merged_from.len(), SHARDS as usize);
    assert!(merged.run.merged_from.iter().all(|m| m.shard.is_some()));

    // Each shard sent its share of the arrivals; merged, the planned number.
    let parts: Vec<RunResults> = shards.iter().map(|p| RunResults::read(Path::new(p)).unwrap()).collect();
    let sent = |r: &RunResults| -> u64 {
        let p = r.engines[0].phases.iter().find(|p| p.name == "knn-open").unwrap();
        p.ops.iter().map(|o| o.count + o.errors).sum()
    };
    assert_eq!(parts.iter().map(sent).collect::<Vec<_>>(), vec![600, 600, 600]);
    assert_eq!(sent(&merged), PLANNED as u64, "total requests = planned");
    let rate = merged.engines[0].phases.iter().find(|p| p.name == "knn-open").unwrap().rate.clone().unwrap();
    assert_eq!(rate.target_ops_s, RATE, "the shards' targets add up to the planned rate");
    assert_eq!(rate.unsent, 0);
    assert!(rate.achieved_ops_s > 0.95 * RATE, "achieved {}", rate.achieved_ops_s);

    // The arrivals of the three shards together are the planned schedule, each once:
    // arrival j due j/rate after the agreed start.
    let mut due: Vec<u64> = ["knn", "knn-filtered"]
        .iter()
        .flat_map(|label| raw(dir, "knn-open", label))
        .map(|s| s.0.expect("open loop: every request has a due time"))
        .collect();
    due.sort_unstable();
    assert_eq!(due.len(), PLANNED);
    for (j, d) in due.iter().enumerate() {
        let planned = (j as f64 / RATE * 1e9).round() as u64;
        assert!(d.abs_diff(planned) <= 1_000, "arrival {j} due at {d} ns, planned {planned} ns");
    }

    // Latencies: the merge is the union, exactly.
    let knn = assert_merged_is_the_union(dir, &merged, "knn-open", "knn");
    let filtered = assert_merged_is_the_union(dir, &merged, "knn-open", "knn-filtered");
    let errors = op(&merged, "knn-open", "knn").errors + op(&merged, "knn-open", "knn-filtered").errors;
    assert_eq!(knn + filtered + errors as usize, PLANNED);
    assert_merged_is_the_union(dir, &merged, "text-closed", "text");
    let text_count: u64 = parts.iter().map(|r| op(r, "text-closed", "text").count).sum();
    assert_eq!(op(&merged, "text-closed", "text").count, text_count);

    // Only shard 0 loaded; the merged run keeps its load figures.
    assert!(parts[0].engines[0].load.is_some());
    assert!(parts[1].engines[0].load.is_none() && parts[2].engines[0].load.is_none());
    assert!(merged.engines[0].load.is_some());
    let md = std::fs::read_to_string(merged_dir.join("report.md")).unwrap();
    assert!(!md.contains("Incomplete run"), "{md}");
}

#[test]
fn a_shard_killed_mid_run_leaves_the_merged_run_incomplete_naming_it() {
    reachable();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let wl = workload(dir, "sharded_kill");
    let at = start_at(Duration::from_secs(15));
    let mut children: Vec<Child> = (0..SHARDS).map(|i| start_shard(dir, &wl, i, &at)).collect();
    // Into the open-loop phase (warmup 0-3 s, knn-open 3-11 s of the timeline).
    let kill_at = chrono::DateTime::parse_from_rfc3339(&at).unwrap() + chrono::Duration::seconds(6);
    let wait = (kill_at.with_timezone(&chrono::Utc) - chrono::Utc::now()).to_std().unwrap_or_default();
    std::thread::sleep(wait);
    assert!(children[2].try_wait().unwrap().is_none(), "shard 2 still running at the kill:\n{}", log(dir, 2));
    children[2].kill().unwrap(); // SIGKILL: nothing of it runs after this
    children[2].wait().unwrap();
    for (i, c) in children.iter_mut().enumerate().take(2) {
        let status = c.wait().unwrap();
        assert!(status.success(), "shard {i} exit {status}:\n{}", log(dir, i as u32));
    }

    let merged_dir = dir.join("merged");
    let files: Vec<String> =
        (0..SHARDS).map(|i| dir.join(format!("shard-{i}/results.json")).display().to_string()).collect();
    // The killed shard left the results it wrote when it started: marked running.
    let mut args = vec!["report"];
    args.extend(files.iter().map(String::as_str));
    args.extend(["--out", merged_dir.to_str().unwrap()]);
    let out = dbbench(&args, dir);
    assert!(out.status.success(), "{}", text(&out));
    let merged = RunResults::read(&merged_dir.join("results.json")).unwrap();
    assert!(!merged.run.complete);
    let why = merged.run.incomplete_reason.clone().unwrap();
    assert!(why.contains(&format!("shard 2/{SHARDS}")), "{why}");
    assert!(!why.contains("shard 0/") && !why.contains("shard 1/"), "{why}");
    let sent: u64 = merged.engines[0]
        .phases
        .iter()
        .find(|p| p.name == "knn-open")
        .unwrap()
        .ops
        .iter()
        .map(|o| o.count + o.errors)
        .sum();
    assert_eq!(sent, 1200, "the two shards left: two thirds of the planned requests");
    let md = std::fs::read_to_string(merged_dir.join("report.md")).unwrap();
    assert!(md.contains("shard 2/3"), "the report names the shard:\n{md}");

    // Without the killed shard's file, the merge says it is missing.
    let out = dbbench(&["report", &files[0], &files[1], "--out", dir.join("merged-2").to_str().unwrap()], dir);
    assert!(out.status.success(), "{}", text(&out));
    let two = RunResults::read(&dir.join("merged-2/results.json")).unwrap();
    assert!(two.run.incomplete_reason.unwrap().contains("shard 2/3: missing"));
}

#[test]
fn runs_that_cannot_be_split_are_refused_with_what_to_change() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let wl = workload(dir, "sharded_refused");
    let wl = wl.to_str().unwrap();
    let at = start_at(Duration::from_secs(60));
    let run = |extra: &[&str], env: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_dbbench"));
        c.args(["run", "--no-progress"]).args(extra).current_dir(dir).env_remove("JOB_COMPLETION_INDEX");
        if let Some(i) = env {
            c.env("JOB_COMPLETION_INDEX", i);
        }
        let out = c.output().unwrap();
        (out.status.code(), text(&out))
    };
    let cases: Vec<(Vec<&str>, Option<&str>, &str)> = vec![
        (vec![wl, "--engines", "pgvector", "--shard", "0/3"], None, "--start-at"),
        (vec![wl, "--engines", "pgvector", "--shard", "3", "--start-at", &at], None, "JOB_COMPLETION_INDEX"),
        (vec![wl, "--engines", "pgvector", "--shard", "3/3", "--start-at", &at], None, "not below the shard count"),
        (vec![wl, "--engines", "pgvector", "--shard", "0/3", "--start-at", "soon"], None, "RFC 3339"),
        (vec![wl, "--engines", "pgvector,elasticsearch", "--shard", "0/3", "--start-at", &at], None, "--engines NAME"),
        (vec![wl, "--engines", "pgvector", "--shard", "0/7", "--start-at", &at], None, "fewer than the 7 shards"),
        (vec![wl, "--engines", "pgvector", "--shard", "0/3", "--start-at", "2026-01-01T00:00:00Z"], None, "s ago"),
        // The index from the Job's environment: parsed, and on to the next check.
        (vec![wl, "--engines", "pgvector", "--shard", "3", "--start-at", "2026-01-01T00:00:00Z"], Some("2"), "s ago"),
    ];
    for (args, env, expected) in cases {
        let (code, msg) = run(&args, env);
        assert_eq!(code, Some(2), "{args:?}: {msg}");
        assert!(msg.contains(expected), "{args:?}: expected {expected:?} in: {msg}");
        assert!(!msg.contains("panicked"), "{msg}");
    }

    // Phases that cannot be split, and an embedded engine.
    let base = std::fs::read_to_string(wl).unwrap();
    let closed_requests = base.replace("duration = \"4s\"\nconcurrency = 6", "requests = 500\nconcurrency = 6");
    let sqlite = base.replace("[engines.elasticsearch]", "[engines.sqlite]\n\n[engines.elasticsearch]");
    for (name, body, engine, expected) in [
        ("closed_requests", closed_requests, "pgvector", "give it a duration"),
        ("embedded", sqlite, "sqlite", "runs inside each dbbench process"),
    ] {
        let file = dir.join(format!("{name}.toml"));
        std::fs::write(&file, body).unwrap();
        let (code, msg) =
            run(&[file.to_str().unwrap(), "--engines", engine, "--shard", "1/3", "--start-at", &at], None);
        assert_eq!(code, Some(2), "{name}: {msg}");
        assert!(msg.contains(&format!("{name}.toml")), "{name}: names the file: {msg}");
        assert!(msg.contains(expected), "{name}: expected {expected:?} in: {msg}");
    }
}

#[test]
fn with_skip_load_a_shard_waits_a_bounded_time_for_a_collection_nobody_loaded() {
    reachable();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let wl = workload(dir, "sharded_absent");
    let at = start_at(Duration::from_secs(60));
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_dbbench"))
        .args(["run", wl.to_str().unwrap(), "--engines", "pgvector", "--no-progress", "--skip-load"])
        .args(["--shard", "0/2", "--start-at", &at, "--ready-timeout", "3s"])
        .arg("--out")
        .arg(dir.join("shard-0"))
        .env("DBBENCH_PG_URL", pg_url())
        .current_dir(dir)
        .output()
        .unwrap();
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(1), "the engine failed: {msg}");
    assert!(started.elapsed() < Duration::from_secs(30), "gave up after --ready-timeout, not at --start-at");
    assert!(msg.contains("not ready after 3s of waiting"), "{msg}");
    assert!(msg.contains("with --skip-load an earlier run of this workload must have loaded it"), "{msg}");
    let r = RunResults::read(&dir.join("shard-0/results.json")).unwrap();
    assert!(!r.run.complete);
    assert_eq!(r.run.shard.as_ref().map(|s| s.loaded), Some(false), "with --skip-load shard 0 does not load");
    assert!(r.engines[0].load.is_none());
}
