//! Reports built from a fixed results.json: report.md against a committed snapshot, the
//! HdrHistogram interval logs read back with the hdrhistogram crate's own log reader,
//! and merging of several runs.
//!
//! Re-bless the snapshot after an intended change with
//! `DBBENCH_BLESS=1 cargo test --release --test report`.

#![allow(clippy::unwrap_used)] // in tests a panic is the failure report

use std::path::{Path, PathBuf};

use dbbench::metrics::decode_histogram;
use dbbench::report::{self, recommend};
use dbbench::results::RunResults;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::Deserializer;

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture() -> RunResults {
    RunResults::read(&manifest().join("tests/fixtures/report-results.json")).expect("fixture reads")
}

#[test]
fn report_md_matches_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let written = report::write_reports(&fixture(), dir.path()).unwrap();
    assert!(written.iter().any(|p| p.ends_with("report.html")));
    let got = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    let snapshot = manifest().join("tests/snapshots/report.md");
    if std::env::var_os("DBBENCH_BLESS").is_some() {
        std::fs::write(&snapshot, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&snapshot).unwrap_or_default();
    if got != want {
        let first = got
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(got.lines().count().min(want.lines().count()));
        panic!(
            "report.md differs from {} at line {}:\n  got:  {:?}\n  want: {:?}\nre-bless with DBBENCH_BLESS=1 if the change is intended",
            snapshot.display(),
            first + 1,
            got.lines().nth(first),
            want.lines().nth(first)
        );
    }
    // The snapshot itself must say what a reader needs, not just be stable.
    assert!(got.contains("**Recommended: sqlite, the only engine that meets all 8 requirements.**"), "{got}");
    assert!(got.contains("sqlite-sync does not fit"), "{got}");
    assert!(got.contains("p99 36.8 ms > 35 ms, 5% over"), "{got}");
    assert!(got.contains("p99.9 needs at least 1000 successful requests, the op had 571"), "{got}");
    assert!(got.contains("text is partial support, not ranking done by the engine"), "{got}");
    assert!(got.contains("**pgvector** skipped"), "{got}");
    assert!(got.contains("`bash services/up.sh pgvector`"), "{got}");
    assert!(got.lines().count() < 200, "short enough for a PR comment");
}

#[test]
fn verdict_margins_come_from_measured_numbers() {
    let v = recommend::evaluate(&fixture());
    assert_eq!(v.fit, vec!["sqlite".to_string()]);
    let sqlite = &v.engines[0];
    let p99 = sqlite.checks.iter().find(|c| c.requirement == "search / knn: p99 <= 35 ms").unwrap();
    assert_eq!(p99.outcome, recommend::Outcome::Pass);
    assert_eq!(p99.detail, "p99 32.6 ms <= 35 ms, 7% headroom");
    let pg = v.engines.iter().find(|e| e.engine == "pgvector").unwrap();
    let slos: Vec<_> = pg.checks.iter().filter(|c| !c.requirement.starts_with("capability")).collect();
    assert!(slos.iter().all(|c| c.outcome == recommend::Outcome::NotMeasured), "a skipped engine has no numbers");
    let ranked = pg.checks.iter().find(|c| c.requirement == "capability ranked_text").unwrap();
    assert_eq!(ranked.outcome, recommend::Outcome::Fail, "partial text support is not engine ranking");
}

#[test]
fn without_requirements_the_report_is_not_a_recommendation() {
    let mut r = fixture();
    r.run.requirements = None;
    let v = recommend::evaluate(&r);
    assert!(v.fit.is_empty());
    let md = report::markdown::render(&r, &v);
    assert!(md.contains("## Not a recommendation"), "{md}");
    assert!(!md.contains("Recommended:"), "{md}");
    // get: sqlite p99 0.036 ms against sqlite-sync 0.058 ms.
    let get = v.winners.iter().find(|w| w.phase == "oltp" && w.op == "get").unwrap();
    assert_eq!(get.engine.as_deref(), Some("sqlite"));
    assert_eq!(get.by, "p99");
    let knn = v.winners.iter().find(|w| w.phase == "search" && w.op == "knn").unwrap();
    assert!(knn.note.contains("recall@10 1.000"), "{}", knn.note);
}

#[test]
fn interval_logs_parse_back_with_hdrhistogram_reader() {
    let r = fixture();
    let dir = tempfile::tempdir().unwrap();
    let files = report::hlog::write_all(&r, dir.path()).unwrap();
    // 2 engines ran 8 ops each; the skipped engine has none.
    assert_eq!(files.len(), 16, "{files:?}");
    let path = dir.path().join("sqlite-search-knn-filtered.hlog");
    let text = std::fs::read(&path).unwrap();
    let op = r.engines[0].phases[0].ops.iter().find(|o| o.label == "knn-filtered").unwrap();

    let mut start_time = None;
    let mut histograms = 0;
    let mut total = 0u64;
    for entry in IntervalLogIterator::new(&text) {
        match entry.unwrap_or_else(|e| panic!("{}: {e:?}", path.display())) {
            LogEntry::StartTime(t) => start_time = Some(t),
            LogEntry::BaseTime(_) => panic!("no BaseTime is written"),
            LogEntry::Interval(h) => {
                let bytes = base64_decode(h.encoded_histogram());
                let hist: hdrhistogram::Histogram<u64> =
                    Deserializer::new().deserialize(&mut bytes.as_slice()).unwrap();
                assert!((h.max() - hist.max() as f64 / 1e6).abs() < 0.001 || hist.is_empty(), "Interval_Max is in ms");
                assert_eq!(h.duration().as_secs(), 1);
                total += hist.len();
                histograms += 1;
            }
        }
    }
    let started = chrono::DateTime::parse_from_rfc3339(&r.run.started_at).unwrap().timestamp() as f64;
    let st = start_time.expect("StartTime header").as_secs_f64();
    assert!((st - started).abs() < 1.0, "StartTime {st} is the run start {started}");
    assert_eq!(histograms, op.intervals.len());
    assert_eq!(total, op.count, "the per-second histograms add up to the op's count");
    let head = String::from_utf8_lossy(&text);
    assert!(head.contains("\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""));
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn shifted(mut r: RunResults, id: &str, started: &str, finished: &str) -> RunResults {
    r.run.id = id.into();
    r.run.started_at = started.into();
    r.run.finished_at = Some(finished.into());
    r
}

#[test]
fn merging_concurrent_runs_adds_histograms_and_throughput() {
    let a = fixture();
    let b = shifted(fixture(), "b", "2026-11-24T02:37:45+00:00", "2026-11-24T02:37:58+00:00");
    let m = report::merge(vec![a.clone(), b]).unwrap();
    let (oa, om) = (&a.engines[0].phases[0].ops[0], &m.engines[0].phases[0].ops[0]);
    assert_eq!(om.count, 2 * oa.count);
    assert!((om.throughput_ops_s - 2.0 * oa.throughput_ops_s).abs() < 1e-9, "concurrent machines add throughput");
    let h = decode_histogram(&om.histograms.latency).unwrap();
    assert_eq!(h.len(), 2 * oa.count);
    assert_eq!(om.latency_ms.p50, oa.latency_ms.p50, "the same distribution twice has the same percentiles");
    assert_eq!(om.intervals.len(), oa.intervals.len());
    assert_eq!(om.intervals[0].ok, 2 * oa.intervals[0].ok);
    assert_eq!(m.run.merged_from.len(), 2);
    assert_eq!(om.quality.quality_samples, 2 * oa.quality.quality_samples);
    assert_eq!(om.quality.recall_at_k, oa.quality.recall_at_k);
}

#[test]
fn merging_repeated_runs_keeps_throughput_a_rate() {
    let a = fixture();
    let b = shifted(fixture(), "b", "2026-11-24T03:00:00+00:00", "2026-11-24T03:00:15+00:00");
    let m = report::merge(vec![a.clone(), b]).unwrap();
    let (oa, om) = (&a.engines[0].phases[0].ops[0], &m.engines[0].phases[0].ops[0]);
    let pa = &a.engines[0].phases[0];
    assert_eq!(om.count, 2 * oa.count);
    assert!(
        (om.throughput_ops_s - oa.count as f64 / pa.elapsed_s).abs() < 1e-6,
        "repeats: total count over total time"
    );
    assert_eq!(om.intervals.len(), 2 * oa.intervals.len(), "repeats follow one another");
    assert_eq!(m.run.started_at, a.run.started_at);
}

#[test]
fn merging_refuses_different_workloads_and_data() {
    let mut b = fixture();
    b.run.workload.sha256 = "0".repeat(64);
    let e = report::merge(vec![fixture(), b]).unwrap_err().to_string();
    assert!(e.contains("different workload files"), "{e}");
    let mut c = fixture();
    c.run.dataset.fingerprint = "other".into();
    let e = report::merge(vec![fixture(), c]).unwrap_err().to_string();
    assert!(e.contains("datasets differ"), "{e}");
    assert!(report::merge(Vec::new()).is_err());
}

fn shard(index: u32, count: u32) -> RunResults {
    let mut r = shifted(fixture(), &format!("shard-{index}"), "2026-11-24T02:37:43+00:00", "2026-11-24T02:37:58+00:00");
    r.run.shard = Some(dbbench::results::ShardInfo {
        index,
        count,
        start_at: "2026-11-24T02:37:43.000Z".into(),
        loaded: index == 0,
    });
    r
}

#[test]
fn merging_shards_names_the_missing_and_the_incomplete_ones() {
    let all = report::merge(vec![shard(0, 3), shard(1, 3), shard(2, 3)]).unwrap();
    assert_eq!(all.run.complete, fixture().run.complete, "all shards there: as complete as each");
    assert!(all.run.shard.is_none(), "a merged run is no shard");
    assert_eq!(all.run.merged_from.iter().filter_map(|m| m.shard.as_ref()).count(), 3);
    let o = &fixture().engines[0].phases[0].ops[0];
    assert_eq!(all.engines[0].phases[0].ops[0].count, 3 * o.count);

    let two = report::merge(vec![shard(0, 3), shard(2, 3)]).unwrap();
    assert!(!two.run.complete);
    let why = two.run.incomplete_reason.unwrap();
    assert!(why.contains("shard 1/3: missing"), "{why}");
    assert!(!why.contains("shard 0/3") && !why.contains("shard 2/3"), "{why}");

    let one = report::merge(vec![shard(1, 2)]).unwrap();
    assert_eq!(one.run.shard, shard(1, 2).run.shard, "one shard alone reports as itself");
    let two_of_four = report::merge(vec![shard(1, 4), shard(3, 4)]).unwrap();
    let why = two_of_four.run.incomplete_reason.unwrap();
    assert!(why.contains("shard 0/4: missing") && why.contains("shard 2/4: missing"), "{why}");

    let mut cut = shard(2, 3);
    cut.run.complete = false;
    cut.run.incomplete_reason = Some("running".into());
    let m = report::merge(vec![shard(0, 3), shard(1, 3), cut]).unwrap();
    assert!(!m.run.complete);
    assert!(m.run.incomplete_reason.unwrap().contains("shard 2/3 shard-2: running"));
}

#[test]
fn merging_refuses_shards_of_different_runs_a_shard_twice_and_a_lone_run() {
    let e = report::merge(vec![shard(0, 3), shard(0, 3)]).unwrap_err().to_string();
    assert!(e.contains("shard 0/3 is given twice"), "{e}");
    let e = report::merge(vec![shard(0, 3), shard(1, 2)]).unwrap_err().to_string();
    assert!(e.contains("shards of different runs"), "{e}");
    let mut later = shard(1, 3);
    later.run.shard.as_mut().unwrap().start_at = "2026-11-24T03:00:00.000Z".into();
    let e = report::merge(vec![shard(0, 3), later]).unwrap_err().to_string();
    assert!(e.contains("shards of different runs"), "{e}");
    let e = report::merge(vec![shard(0, 3), fixture()]).unwrap_err().to_string();
    assert!(e.contains("merge the shards of one run together"), "{e}");
}

#[test]
fn report_command_rebuilds_from_results_alone() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("merged");
    let fixture = manifest().join("tests/fixtures/report-results.json");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_dbbench"))
        .args(["report"])
        .arg(&fixture)
        .arg(&fixture)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    for f in ["report.html", "report.md", "results.json", "hlog/sqlite-oltp-get.hlog"] {
        assert!(Path::new(&out).join(f).exists(), "{f} missing");
    }
    let merged = RunResults::read(&out).unwrap();
    assert_eq!(merged.run.merged_from.len(), 2);
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_dbbench"))
        .args(["report"])
        .arg(&fixture)
        .arg(&fixture)
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(2), "several results without --out is bad input");
}
