//! `dbbench compare`: a candidate run against a baseline, from results.json alone, with a
//! verdict per engine x phase x op x metric and an exit code a CI job can gate on
//! (0 no regression, 1 regression, 2 bad input).
//!
//! The rule is noise-aware, after criterion: a latency or throughput regression needs the
//! point change beyond `--max-regression` AND the whole bootstrap confidence interval of the
//! change beyond it (`lb > threshold && ub > threshold`). One slow second, or one unlucky
//! run on a shared CI machine, moves the point estimate but not the whole interval.
//!
//! The samples the interval is drawn from are, when both sides have at least
//! `MIN_RUN_SAMPLES` of them, the measured runs of the op (repetitions of `run --repeat`
//! and separate runs given as a folder), each summarised by its own value; otherwise the
//! per-second intervals of every run pooled (ok counts for throughput, each second's
//! histogram quantile for latency). Runs are the better unit: seconds of one run share
//! that run's conditions (a noisy neighbour, a cold cache), so they understate the noise.
//!
//! Quality metrics (recall, nDCG) are deterministic for a deterministic engine and
//! regress on any drop beyond an absolute tolerance.
//!
//! Nothing here contacts an engine; comparing never changes either input.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::driver::OpKind;
use crate::error::{Error, Result};
use crate::metrics::decode_histogram;
use crate::results::{OpResult, OpStatus, RunResults, RESULTS_FILE};

/// Metrics compared when `--metric` is not given.
pub const DEFAULT_METRICS: &[&str] = &["p50_ms", "p99_ms", "throughput_ops_s", "recall_at_k", "ndcg_at_10"];
/// Below this many runs on either side, per-second intervals are the samples instead.
pub const MIN_RUN_SAMPLES: usize = 3;
/// Below this many samples on either side, no significance test is possible.
pub const MIN_SAMPLES: usize = 3;
/// Bootstrap resamples; 2,000 keeps the 2.5% and 97.5% percentiles stable to a few
/// resamples and takes milliseconds.
pub const RESAMPLES: usize = 2000;
/// Two-sided confidence of the interval.
pub const CONFIDENCE: f64 = 0.95;
/// The bootstrap's seed: the same inputs always give the same verdict.
pub const SEED: u64 = 0xDBBE_4C0C_0A4E;

pub use crate::metric::Direction;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// A latency quantile of ok requests, and how many requests it needs to mean anything.
    Latency {
        quantile: f64,
        min_count: u64,
    },
    Throughput,
    Quality,
}

struct MetricDef {
    name: &'static str,
    direction: Direction,
    kind: Kind,
}

const fn latency(name: &'static str, quantile: f64, min_count: u64) -> MetricDef {
    MetricDef { name, direction: Direction::LowerIsBetter, kind: Kind::Latency { quantile, min_count } }
}

const fn quality(name: &'static str) -> MetricDef {
    MetricDef { name, direction: Direction::HigherIsBetter, kind: Kind::Quality }
}

/// Every metric `--metric` accepts. The minimum counts match `LatencySummary`: a tail
/// quantile of too few requests is not reported, so it is not compared either.
const METRICS: &[MetricDef] = &[
    latency("p50_ms", 0.50, 1),
    latency("p90_ms", 0.90, 10),
    latency("p95_ms", 0.95, 20),
    latency("p99_ms", 0.99, 100),
    latency("p999_ms", 0.999, 1000),
    MetricDef { name: "throughput_ops_s", direction: Direction::HigherIsBetter, kind: Kind::Throughput },
    quality("recall_at_k"),
    quality("ndcg_at_10"),
    quality("recall_at_100"),
    quality("mrr_at_10"),
];

fn metric_def(name: &str) -> Option<&'static MetricDef> {
    METRICS.iter().find(|m| m.name == name)
}

/// Names `--metric` accepts.
pub fn metric_names() -> Vec<&'static str> {
    METRICS.iter().map(|m| m.name).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Markdown,
    Json,
}

/// `dbbench compare` on the command line.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The baseline: a results.json, a run folder, or a folder of run folders / results
    /// files (repeated runs, pooled as samples).
    pub baseline: PathBuf,
    /// The candidate, in any of the same forms.
    pub candidate: PathBuf,
    /// How much worse a latency or throughput may get before it counts as a regression,
    /// in percent ("10%" or "10"). The whole 95% confidence interval must be beyond it too.
    #[arg(long, default_value = "10%", value_parser = parse_percent)]
    pub max_regression: f64,
    /// Metrics to compare (repeat or comma-separate): p50_ms, p90_ms, p95_ms, p99_ms,
    /// p999_ms, throughput_ops_s, recall_at_k, ndcg_at_10, recall_at_100, mrr_at_10
    /// [default: p50_ms, p99_ms, throughput_ops_s, recall_at_k, ndcg_at_10].
    #[arg(long = "metric", value_delimiter = ',')]
    pub metrics: Vec<String>,
    /// Output format (on stdout).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Absolute drop of a quality metric (recall, nDCG, MRR) that counts as a regression.
    #[arg(long, default_value_t = 0.005)]
    pub quality_tolerance: f64,
}

/// "10%", "10" or "2.5%" as a fraction (0.10, 0.10, 0.025).
pub fn parse_percent(s: &str) -> std::result::Result<f64, String> {
    let number = s.trim().trim_end_matches('%').trim();
    let v: f64 = number.parse().map_err(|_| format!("{s:?} is not a percentage; write e.g. 10% or 25%"))?;
    if !(0.0..100.0).contains(&v) {
        return Err(format!("{s:?}: must be at least 0% and below 100%"));
    }
    Ok(v / 100.0)
}

/// What the comparison is asked to do.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Fraction, e.g. 0.10.
    pub max_regression: f64,
    pub quality_tolerance: f64,
    pub metrics: Vec<String>,
    pub confidence: f64,
    pub resamples: usize,
    pub seed: u64,
}

impl Settings {
    pub fn new(max_regression: f64, quality_tolerance: f64, metrics: &[String]) -> Result<Self> {
        let metrics: Vec<String> = if metrics.is_empty() {
            DEFAULT_METRICS.iter().map(|s| s.to_string()).collect()
        } else {
            metrics.iter().map(|m| m.trim().to_string()).filter(|m| !m.is_empty()).collect()
        };
        for m in &metrics {
            if metric_def(m).is_none() {
                return Err(Error::Input(format!(
                    "--metric {m}: unknown metric; known: {}",
                    metric_names().join(", ")
                )));
            }
        }
        if !(0.0..1.0).contains(&quality_tolerance) {
            return Err(Error::Input(format!("--quality-tolerance {quality_tolerance}: must be in [0, 1)")));
        }
        Ok(Settings {
            max_regression,
            quality_tolerance,
            metrics,
            confidence: CONFIDENCE,
            resamples: RESAMPLES,
            seed: SEED,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Improved,
    Regressed,
    Unchanged,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Improved => "improved",
            Verdict::Regressed => "REGRESSED",
            Verdict::Unchanged => "unchanged",
        }
    }
}

/// One metric of one op, baseline against candidate.
#[derive(Debug, Clone, Serialize)]
pub struct MetricComparison {
    pub metric: String,
    pub direction: Direction,
    /// The baseline's value: the median over its runs of each run's value.
    pub baseline: Option<f64>,
    pub candidate: Option<f64>,
    /// Latency and throughput: relative, candidate / baseline - 1. Quality: absolute,
    /// candidate - baseline.
    pub change: Option<f64>,
    /// "relative" or "absolute".
    pub change_kind: &'static str,
    /// Latency and throughput: the bootstrap confidence interval of the relative change
    /// (ratio of medians - 1), when both sides had enough samples.
    pub change_lower: Option<f64>,
    pub change_upper: Option<f64>,
    /// "runs" or "intervals" (per-second values), or "none" when no test was possible.
    pub samples_from: &'static str,
    pub baseline_samples: usize,
    pub candidate_samples: usize,
    pub verdict: Verdict,
    pub note: Option<String>,
}

/// Every compared metric of one engine x phase x op.
#[derive(Debug, Clone, Serialize)]
pub struct OpComparison {
    pub engine: String,
    pub phase: String,
    /// The op's label in the workload.
    pub op: String,
    /// Its kind (knn, text, get, ...).
    pub kind: OpKind,
    pub baseline_runs: usize,
    pub candidate_runs: usize,
    pub metrics: Vec<MetricComparison>,
}

/// What each side was made of.
#[derive(Debug, Clone, Serialize)]
pub struct SideInfo {
    pub path: String,
    /// The results files read.
    pub files: Vec<String>,
    pub workload: String,
    pub workload_sha256: String,
    pub dataset: String,
    pub dataset_fingerprint: String,
    pub machines: Vec<String>,
}

/// A whole comparison: what `--format json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub baseline: SideInfo,
    pub candidate: SideInfo,
    pub settings: Settings,
    pub ops: Vec<OpComparison>,
    /// engine / phase / op present in the baseline only (fails the gate: the candidate
    /// cannot vouch for what it did not measure).
    pub only_in_baseline: Vec<String>,
    /// Present in the candidate only (reported, does not fail).
    pub only_in_candidate: Vec<String>,
    pub notes: Vec<String>,
    pub regressions: usize,
    pub improvements: usize,
    /// "pass" or "fail".
    pub result: &'static str,
}

impl Comparison {
    pub fn failed(&self) -> bool {
        self.regressions > 0 || !self.only_in_baseline.is_empty()
    }
}

/// Run `dbbench compare`; returns the exit code (0 pass, 1 regression).
pub fn command(args: &CompareArgs) -> Result<i32> {
    let settings = Settings::new(args.max_regression, args.quality_tolerance, &args.metrics)?;
    let baseline = load_side(&args.baseline)?;
    let candidate = load_side(&args.candidate)?;
    let cmp = compare(&args.baseline, &baseline, &args.candidate, &candidate, settings)?;
    let out = match args.format {
        Format::Text => render_text(&cmp),
        Format::Markdown => render_markdown(&cmp),
        Format::Json => {
            serde_json::to_string_pretty(&cmp)
                .map_err(|e| Error::Runtime(format!("cannot serialize the comparison: {e}")))?
                + "\n"
        }
    };
    print!("{out}");
    Ok(if cmp.failed() { 1 } else { 0 })
}

/// The runs of one side: a results.json, a run folder, or a folder of either.
pub fn load_side(path: &Path) -> Result<Vec<(PathBuf, RunResults)>> {
    if path.is_file() {
        return Ok(vec![(path.to_path_buf(), RunResults::read(path)?)]);
    }
    if !path.is_dir() {
        return Err(Error::Input(format!("{}: no such file or folder", path.display())));
    }
    let own = path.join(RESULTS_FILE);
    if own.is_file() {
        return Ok(vec![(own.clone(), RunResults::read(&own)?)]);
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| Error::Input(format!("cannot read {}: {e}", path.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    let mut runs = Vec::new();
    for entry in entries {
        let file = if entry.is_dir() { entry.join(RESULTS_FILE) } else { entry.clone() };
        let is_json = file.extension().is_some_and(|e| e == "json");
        if file.is_file() && is_json {
            runs.push((file.clone(), RunResults::read(&file)?));
        }
    }
    if runs.is_empty() {
        return Err(Error::Input(format!(
            "{}: holds no {RESULTS_FILE}, no run folders and no results files",
            path.display()
        )));
    }
    Ok(runs)
}

/// One measured run of one op.
struct Measurement<'a> {
    op: &'a OpResult,
    elapsed_s: f64,
    /// An earlier phase of the run wrote to the corpus, so its quality is scored against
    /// data that no longer matches (and that differs from run to run with the number of
    /// writes done): not comparable.
    corpus_changed: bool,
}

struct Group<'a> {
    kind: OpKind,
    measured: Vec<Measurement<'a>>,
    /// Why the op did not run (unsupported), when it did not.
    unsupported: Option<String>,
}

type Key = (String, String, String);

fn key_name(k: &Key) -> String {
    format!("{} / {} / {}", k.0, k.1, k.2)
}

/// Group every run's ops by engine x phase x op label. Incomplete phases are left out
/// with a note: a phase cut short measured something else than the one planned.
fn group<'a>(side: &str, runs: &'a [(PathBuf, RunResults)], notes: &mut Vec<String>) -> IndexMap<Key, Group<'a>> {
    let mut groups: IndexMap<Key, Group<'a>> = IndexMap::new();
    for (file, run) in runs {
        if !run.run.complete {
            notes.push(format!(
                "{side} {}: run incomplete ({})",
                file.display(),
                run.run.incomplete_reason.as_deref().unwrap_or("no reason given")
            ));
        }
        for engine in &run.engines {
            if engine.phases.is_empty() {
                if let Some(reason) = &engine.reason {
                    notes.push(format!(
                        "{side} {}: engine {} {:?}: {reason}",
                        file.display(),
                        engine.name,
                        engine.status
                    ));
                }
            }
            let mut wrote = false;
            for phase in &engine.phases {
                let corpus_changed = wrote;
                wrote |= phase.ops.iter().any(|o| o.count > 0 && o.op.is_write());
                if !phase.complete {
                    notes.push(format!(
                        "{side} {}: {} / {} (repetition {}) is incomplete and left out: {}",
                        file.display(),
                        engine.name,
                        phase.name,
                        phase.repetition,
                        phase.note.as_deref().unwrap_or("")
                    ));
                    continue;
                }
                for op in &phase.ops {
                    let key = (engine.name.clone(), phase.name.clone(), op.label.clone());
                    let g = groups.entry(key).or_insert_with(|| Group {
                        kind: op.op,
                        measured: Vec::new(),
                        unsupported: None,
                    });
                    if op.status == OpStatus::Ok {
                        g.measured.push(Measurement { op, elapsed_s: phase.elapsed_s, corpus_changed });
                    } else {
                        g.unsupported = Some(op.note.clone().unwrap_or_else(|| op.status.to_string()));
                    }
                }
            }
        }
    }
    groups
}

fn side_info(path: &Path, runs: &[(PathBuf, RunResults)]) -> SideInfo {
    let first = &runs[0].1.run;
    let machines: BTreeSet<String> = runs
        .iter()
        .map(|(_, r)| {
            let m = &r.run.machine;
            format!("{} ({} cpus, {})", m.cpu_model.as_deref().unwrap_or("unknown cpu"), m.cpus, m.arch)
        })
        .collect();
    SideInfo {
        path: path.display().to_string(),
        files: runs.iter().map(|(f, _)| f.display().to_string()).collect(),
        workload: first.workload.name.clone(),
        workload_sha256: first.workload.sha256.clone(),
        dataset: first.dataset.name.clone(),
        dataset_fingerprint: first.dataset.fingerprint.clone(),
        machines: machines.into_iter().collect(),
    }
}

/// Refuse runs that did not measure the same thing: a different workload file or dataset
/// makes every difference meaningless.
fn check_same_experiment(all: &[(&str, &Path, &RunResults)]) -> Result<()> {
    let (side0, file0, first) = all[0];
    for &(side, file, run) in &all[1..] {
        let (a, b) = (&first.run.workload, &run.run.workload);
        if a.sha256 != b.sha256 {
            return Err(Error::Input(format!(
                "different workloads: {side0} {} ran workload {:?} ({}, sha256 {}) but {side} {} ran {:?} ({}, sha256 {}); \
                 compare runs of the same workload file, or regenerate the baseline from the current one",
                file0.display(),
                a.name,
                a.file,
                short(&a.sha256),
                file.display(),
                b.name,
                b.file,
                short(&b.sha256)
            )));
        }
        let (a, b) = (&first.run.dataset, &run.run.dataset);
        if a.fingerprint != b.fingerprint {
            return Err(Error::Input(format!(
                "different datasets: {side0} {} measured dataset {:?} ({} docs, fingerprint {}) but {side} {} measured {:?} \
                 ({} docs, fingerprint {}){}; compare runs on the same data",
                file0.display(),
                a.name,
                a.docs,
                short(&a.fingerprint),
                file.display(),
                b.name,
                b.docs,
                short(&b.fingerprint),
                match (&a.fallback_reason, &b.fallback_reason) {
                    (None, Some(r)) | (Some(r), None) => format!(" (one side used synthetic data: {r})"),
                    _ => String::new(),
                }
            )));
        }
    }
    Ok(())
}

fn short(s: &str) -> &str {
    &s[..s.len().min(12)]
}

/// Compare two sides already loaded.
pub fn compare(
    baseline_path: &Path,
    baseline: &[(PathBuf, RunResults)],
    candidate_path: &Path,
    candidate: &[(PathBuf, RunResults)],
    settings: Settings,
) -> Result<Comparison> {
    if baseline.is_empty() || candidate.is_empty() {
        return Err(Error::Input("nothing to compare: a side holds no runs".into()));
    }
    let all: Vec<(&str, &Path, &RunResults)> = baseline
        .iter()
        .map(|(f, r)| ("baseline", f.as_path(), r))
        .chain(candidate.iter().map(|(f, r)| ("candidate", f.as_path(), r)))
        .collect();
    check_same_experiment(&all)?;

    let mut notes = Vec::new();
    let base_groups = group("baseline", baseline, &mut notes);
    let cand_groups = group("candidate", candidate, &mut notes);
    let (base_info, cand_info) = (side_info(baseline_path, baseline), side_info(candidate_path, candidate));
    if base_info.machines != cand_info.machines {
        notes.push(format!(
            "the sides ran on different machines (baseline: {}; candidate: {}): latency and throughput differences may be the machine's",
            base_info.machines.join(", "),
            cand_info.machines.join(", ")
        ));
    }

    let mut ops = Vec::new();
    let mut only_in_baseline = Vec::new();
    for (key, b) in &base_groups {
        let Some(c) = cand_groups.get(key) else {
            only_in_baseline.push(format!("{} (not in the candidate)", key_name(key)));
            continue;
        };
        match (b.measured.is_empty(), c.measured.is_empty()) {
            (true, true) => continue,
            (false, true) => {
                let why = c.unsupported.as_deref().unwrap_or("no complete measured run");
                only_in_baseline.push(format!("{} (the candidate did not measure it: {why})", key_name(key)));
                continue;
            }
            (true, false) => {
                notes.push(format!("{}: now measured, the baseline did not run it", key_name(key)));
                continue;
            }
            (false, false) => {}
        }
        let metrics = settings
            .metrics
            .iter()
            .filter_map(|name| metric_def(name))
            .filter_map(|def| compare_metric(def, &b.measured, &c.measured, &settings))
            .collect();
        ops.push(OpComparison {
            engine: key.0.clone(),
            phase: key.1.clone(),
            op: key.2.clone(),
            kind: b.kind,
            baseline_runs: b.measured.len(),
            candidate_runs: c.measured.len(),
            metrics,
        });
    }
    let only_in_candidate: Vec<String> = cand_groups
        .keys()
        .filter(|k| !base_groups.contains_key(*k))
        .map(|k| format!("{} (not in the baseline)", key_name(k)))
        .collect();
    if ops.is_empty() && only_in_baseline.is_empty() {
        return Err(Error::Input(format!(
            "nothing to compare: no engine / phase / op was measured on both sides ({} and {})",
            baseline_path.display(),
            candidate_path.display()
        )));
    }
    let count = |v: Verdict| ops.iter().flat_map(|o: &OpComparison| &o.metrics).filter(|m| m.verdict == v).count();
    let (regressions, improvements) = (count(Verdict::Regressed), count(Verdict::Improved));
    let untested =
        ops.iter().flat_map(|o| &o.metrics).filter(|m| m.samples_from == "none" && m.change_kind == "relative").count();
    if untested > 0 {
        notes.push(format!(
            "{untested} latency/throughput metric(s) had fewer than {MIN_SAMPLES} samples on a side and could not be tested; \
             measure longer phases or use `dbbench run --repeat {MIN_RUN_SAMPLES}`"
        ));
    }
    let mut cmp = Comparison {
        baseline: base_info,
        candidate: cand_info,
        settings,
        ops,
        only_in_baseline,
        only_in_candidate,
        notes,
        regressions,
        improvements,
        result: "pass",
    };
    if cmp.failed() {
        cmp.result = "fail";
    }
    Ok(cmp)
}

/// A run's own value of a metric.
fn run_value(def: &MetricDef, m: &Measurement) -> Option<f64> {
    let o = m.op;
    let l = &o.latency_ms;
    match (def.kind, def.name) {
        (Kind::Throughput, _) => Some(o.throughput_ops_s),
        (Kind::Latency { .. }, "p50_ms") => l.p50,
        (Kind::Latency { .. }, "p90_ms") => l.p90,
        (Kind::Latency { .. }, "p95_ms") => l.p95,
        (Kind::Latency { .. }, "p99_ms") => l.p99,
        (Kind::Latency { .. }, "p999_ms") => l.p999,
        (Kind::Quality, "recall_at_k") => o.quality.recall_at_k,
        (Kind::Quality, "ndcg_at_10") => o.quality.ndcg_at_10,
        (Kind::Quality, "recall_at_100") => o.quality.recall_at_100,
        (Kind::Quality, "mrr_at_10") => o.quality.mrr_at_10,
        _ => None,
    }
}

/// The per-second values of a metric in one run, from whole seconds only (the last,
/// partial second would read as a throughput drop and holds the phase's drain): ok
/// requests of each second, or each second's latency quantile where that second had
/// enough requests for it.
fn interval_values(def: &MetricDef, m: &Measurement, out: &mut Vec<f64>) {
    for i in m.op.intervals.iter().filter(|i| (i.t_s + 1) as f64 <= m.elapsed_s + 1e-6) {
        match def.kind {
            Kind::Throughput => out.push(i.ok as f64),
            Kind::Latency { quantile, min_count } => {
                if i.ok < min_count.max(1) {
                    continue;
                }
                // A histogram that does not decode is left out rather than failing the
                // gate: the whole-run values do not depend on it.
                if let Ok(h) = decode_histogram(&i.histogram) {
                    if h.len() >= min_count.max(1) {
                        out.push(h.value_at_quantile(quantile) as f64 / 1e6);
                    }
                }
            }
            Kind::Quality => {}
        }
    }
}

fn compare_metric(
    def: &MetricDef,
    base: &[Measurement],
    cand: &[Measurement],
    s: &Settings,
) -> Option<MetricComparison> {
    let base_runs: Vec<f64> = base.iter().filter_map(|m| run_value(def, m)).collect();
    let cand_runs: Vec<f64> = cand.iter().filter_map(|m| run_value(def, m)).collect();
    if base_runs.is_empty() && cand_runs.is_empty() {
        return None;
    }
    let (b, c) = (median(&base_runs), median(&cand_runs));
    let mut out = MetricComparison {
        metric: def.name.to_string(),
        direction: def.direction,
        baseline: b,
        candidate: c,
        change: None,
        change_kind: "relative",
        change_lower: None,
        change_upper: None,
        samples_from: "none",
        baseline_samples: 0,
        candidate_samples: 0,
        verdict: Verdict::Unchanged,
        note: None,
    };
    let (Some(b), Some(c)) = (b, c) else {
        out.note = Some(format!("no value on the {} side", if b.is_none() { "baseline" } else { "candidate" }));
        if def.kind == Kind::Quality {
            out.change_kind = "absolute";
        }
        return Some(out);
    };

    if def.kind == Kind::Quality {
        out.change_kind = "absolute";
        let change = c - b;
        out.change = Some(change);
        out.samples_from = "runs";
        out.baseline_samples = base_runs.len();
        out.candidate_samples = cand_runs.len();
        if base.iter().chain(cand).any(|m| m.corpus_changed) {
            out.note = Some("an earlier phase wrote to the corpus: quality is not comparable and is not gated".into());
        } else {
            out.verdict = quality_verdict(change, s.quality_tolerance);
        }
        return Some(out);
    }

    if b <= 0.0 {
        out.note = Some("the baseline is zero: no relative change".into());
        return Some(out);
    }
    out.change = Some(c / b - 1.0);
    let (base_samples, cand_samples, from) = if base_runs.len() >= MIN_RUN_SAMPLES && cand_runs.len() >= MIN_RUN_SAMPLES
    {
        (base_runs, cand_runs, "runs")
    } else {
        let mut bs = Vec::new();
        let mut cs = Vec::new();
        base.iter().for_each(|m| interval_values(def, m, &mut bs));
        cand.iter().for_each(|m| interval_values(def, m, &mut cs));
        (bs, cs, "intervals")
    };
    out.baseline_samples = base_samples.len();
    out.candidate_samples = cand_samples.len();
    if base_samples.len() < MIN_SAMPLES || cand_samples.len() < MIN_SAMPLES {
        out.note = Some(format!(
            "too few samples to test ({} and {} {from}); the verdict cannot be a regression",
            base_samples.len(),
            cand_samples.len()
        ));
        return Some(out);
    }
    out.samples_from = from;
    let Some((lo, hi)) = bootstrap_ratio_of_medians(&base_samples, &cand_samples, s.resamples, s.confidence, s.seed)
    else {
        out.note = Some("the baseline's samples are mostly zero: no interval".into());
        return Some(out);
    };
    out.change_lower = Some(lo - 1.0);
    out.change_upper = Some(hi - 1.0);
    out.verdict = relative_verdict(def.direction, c / b - 1.0, lo - 1.0, hi - 1.0, s.max_regression);
    Some(out)
}

/// A quality metric regresses on a drop of more than `tolerance` (absolute).
pub fn quality_verdict(change: f64, tolerance: f64) -> Verdict {
    if change < -tolerance {
        Verdict::Regressed
    } else if change > tolerance {
        Verdict::Improved
    } else {
        Verdict::Unchanged
    }
}

/// criterion's rule, with the point change as well: worse only when the point change and
/// the whole interval [lower, upper] of the change are beyond `threshold` in the bad
/// direction; better likewise in the good one. For lower-is-better metrics "beyond" is
/// `> +threshold`; for higher-is-better ones `< -threshold` (a 10% threshold flags a
/// throughput drop of more than 10%).
pub fn relative_verdict(direction: Direction, change: f64, lower: f64, upper: f64, threshold: f64) -> Verdict {
    let up = change > threshold && lower > threshold && upper > threshold;
    let down = change < -threshold && lower < -threshold && upper < -threshold;
    match (direction, up, down) {
        (Direction::LowerIsBetter, true, _) | (Direction::HigherIsBetter, _, true) => Verdict::Regressed,
        (Direction::LowerIsBetter, _, true) | (Direction::HigherIsBetter, true, _) => Verdict::Improved,
        _ => Verdict::Unchanged,
    }
}

/// The median (the mean of the two middle values for an even count); None when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// The p-quantile (0..=1) of sorted values by linear interpolation between order
/// statistics (Hyndman and Fan type 7, numpy's default).
pub fn quantile_sorted(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * p.clamp(0.0, 1.0);
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Percentile bootstrap interval of median(candidate) / median(baseline): each side is
/// resampled with replacement, independently, `resamples` times, from a seeded generator
/// (the same inputs always give the same interval). Resamples whose baseline median is
/// zero are dropped; None when more than half are, or a side is empty.
pub fn bootstrap_ratio_of_medians(
    baseline: &[f64],
    candidate: &[f64],
    resamples: usize,
    confidence: f64,
    seed: u64,
) -> Option<(f64, f64)> {
    if baseline.is_empty() || candidate.is_empty() || resamples == 0 {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut b = vec![0.0; baseline.len()];
    let mut c = vec![0.0; candidate.len()];
    let mut ratios = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        b.iter_mut().for_each(|x| *x = baseline[rng.gen_range(0..baseline.len())]);
        c.iter_mut().for_each(|x| *x = candidate[rng.gen_range(0..candidate.len())]);
        let mb = median(&b)?;
        let mc = median(&c)?;
        if mb > 0.0 {
            ratios.push(mc / mb);
        }
    }
    if ratios.len() * 2 < resamples {
        return None;
    }
    ratios.sort_by(f64::total_cmp);
    let alpha = 1.0 - confidence;
    Some((quantile_sorted(&ratios, alpha / 2.0), quantile_sorted(&ratios, 1.0 - alpha / 2.0)))
}

fn fmt_value(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(x) if x.abs() >= 1000.0 => format!("{x:.0}"),
        Some(x) if x.abs() >= 1.0 => format!("{x:.2}"),
        Some(x) => format!("{x:.4}"),
    }
}

fn fmt_change(m: &MetricComparison, v: Option<f64>) -> String {
    match (v, m.change_kind) {
        (None, _) => "-".into(),
        (Some(x), "absolute") => format!("{x:+.4}"),
        (Some(x), _) => format!("{:+.1}%", 100.0 * x),
    }
}

fn fmt_interval(m: &MetricComparison) -> String {
    match (m.change_lower, m.change_upper) {
        (Some(_), Some(_)) => format!("[{}, {}]", fmt_change(m, m.change_lower), fmt_change(m, m.change_upper)),
        _ => "-".into(),
    }
}

fn header_lines(c: &Comparison) -> Vec<String> {
    let s = &c.settings;
    vec![
        format!("baseline:  {} ({} run file(s))", c.baseline.path, c.baseline.files.len()),
        format!("candidate: {} ({} run file(s))", c.candidate.path, c.candidate.files.len()),
        format!(
            "workload {} (sha256 {}), dataset {} (fingerprint {})",
            c.baseline.workload,
            short(&c.baseline.workload_sha256),
            c.baseline.dataset,
            short(&c.baseline.dataset_fingerprint)
        ),
        format!(
            "rule: latency/throughput regress when the change and its whole {:.0}% bootstrap interval are beyond {:.1}%; \
             quality regresses on a drop of more than {}",
            100.0 * s.confidence,
            100.0 * s.max_regression,
            s.quality_tolerance
        ),
    ]
}

fn footer_lines(c: &Comparison) -> Vec<String> {
    let mut out = Vec::new();
    for m in &c.only_in_baseline {
        out.push(format!("missing: {m}"));
    }
    for m in &c.only_in_candidate {
        out.push(format!("new: {m}"));
    }
    for n in &c.notes {
        out.push(format!("note: {n}"));
    }
    out.push(format!(
        "{}: {} regression(s), {} improvement(s), {} missing from the candidate",
        c.result.to_uppercase(),
        c.regressions,
        c.improvements,
        c.only_in_baseline.len()
    ));
    out
}

/// A plain table for a terminal or a CI log.
pub fn render_text(c: &Comparison) -> String {
    let mut out = String::new();
    for l in header_lines(c) {
        let _ = writeln!(out, "{l}");
    }
    let _ = writeln!(
        out,
        "\n{:<12} {:<14} {:<16} {:<17} {:>10} {:>10} {:>9} {:>20} {:>5}  verdict",
        "engine", "phase", "op", "metric", "baseline", "candidate", "change", "95% interval", "n"
    );
    for o in &c.ops {
        for m in &o.metrics {
            let n = format!("{}/{}", m.baseline_samples, m.candidate_samples);
            let _ = write!(
                out,
                "{:<12} {:<14} {:<16} {:<17} {:>10} {:>10} {:>9} {:>20} {:>5}  {}",
                o.engine,
                o.phase,
                o.op,
                m.metric,
                fmt_value(m.baseline),
                fmt_value(m.candidate),
                fmt_change(m, m.change),
                fmt_interval(m),
                n,
                m.verdict.as_str()
            );
            if let Some(note) = &m.note {
                let _ = write!(out, " ({note})");
            }
            out.push('\n');
        }
    }
    out.push('\n');
    for l in footer_lines(c) {
        let _ = writeln!(out, "{l}");
    }
    out
}

/// A Markdown table, for a pull-request comment or a job summary.
pub fn render_markdown(c: &Comparison) -> String {
    let mut out = String::from("### dbbench compare\n\n");
    for l in header_lines(c) {
        let _ = writeln!(out, "- {l}");
    }
    out.push_str(
        "\n| engine | phase | op | metric | baseline | candidate | change | 95% interval | samples | verdict |\n",
    );
    out.push_str("|---|---|---|---|---:|---:|---:|---:|---:|---|\n");
    for o in &c.ops {
        for m in &o.metrics {
            let verdict = match m.verdict {
                Verdict::Regressed => "**regressed**".to_string(),
                v => v.as_str().to_string(),
            };
            let note = m.note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {}/{} {} | {verdict}{note} |",
                o.engine,
                o.phase,
                o.op,
                m.metric,
                fmt_value(m.baseline),
                fmt_value(m.candidate),
                fmt_change(m, m.change),
                fmt_interval(m),
                m.baseline_samples,
                m.candidate_samples,
                m.samples_from
            );
        }
    }
    out.push('\n');
    for l in footer_lines(c) {
        let _ = writeln!(out, "- {l}");
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn quantile_matches_numpy_linear_interpolation() {
        // numpy.percentile([1, 2, 3, 4], 25) == 1.75; numpy.percentile(range(1, 11), 97.5) == 9.775
        assert!((quantile_sorted(&[1.0, 2.0, 3.0, 4.0], 0.25) - 1.75).abs() < 1e-12);
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert!((quantile_sorted(&ten, 0.975) - 9.775).abs() < 1e-12);
        assert_eq!(quantile_sorted(&ten, 0.0), 1.0);
        assert_eq!(quantile_sorted(&ten, 1.0), 10.0);
    }

    #[test]
    fn bootstrap_of_constant_samples_is_the_exact_ratio() {
        let ci = bootstrap_ratio_of_medians(&[2.0; 5], &[3.0; 4], 500, 0.95, 1).unwrap();
        assert_eq!(ci, (1.5, 1.5));
    }

    #[test]
    fn bootstrap_interval_matches_the_exact_resampling_distribution() {
        // With the baseline constant at 10 and the candidate {10, 20, 30}, the median of a
        // resample of three is 10 or 30 with probability 7/27 each and 20 with 13/27, so
        // the 2.5% and 97.5% points of the ratio are exactly 1 and 3.
        let (lo, hi) = bootstrap_ratio_of_medians(&[10.0; 3], &[10.0, 20.0, 30.0], 2000, 0.95, SEED).unwrap();
        assert_eq!((lo, hi), (1.0, 3.0));
        // And the middle of the distribution sits where 13/27 of the mass is: a 40%
        // interval (30% .. 70%) lies entirely at ratio 2.
        let (lo, hi) = bootstrap_ratio_of_medians(&[10.0; 3], &[10.0, 20.0, 30.0], 2000, 0.40, SEED).unwrap();
        assert_eq!((lo, hi), (2.0, 2.0));
    }

    #[test]
    fn bootstrap_is_deterministic_and_seeded() {
        let base: Vec<f64> = (0..40).map(|i| 10.0 + (i * 7 % 13) as f64 / 10.0).collect();
        let cand: Vec<f64> = (0..40).map(|i| 11.0 + (i * 5 % 11) as f64 / 10.0).collect();
        let a = bootstrap_ratio_of_medians(&base, &cand, 2000, 0.95, SEED).unwrap();
        let b = bootstrap_ratio_of_medians(&base, &cand, 2000, 0.95, SEED).unwrap();
        assert_eq!(a, b);
        assert!(a.0 < a.1 && a.0 > 1.0 && a.1 < 1.3, "{a:?}");
    }

    #[test]
    fn bootstrap_refuses_a_zero_baseline() {
        assert_eq!(bootstrap_ratio_of_medians(&[0.0; 4], &[1.0; 4], 100, 0.95, 1), None);
        assert_eq!(bootstrap_ratio_of_medians(&[], &[1.0], 100, 0.95, 1), None);
    }

    #[test]
    fn a_regression_needs_the_whole_interval_beyond_the_threshold() {
        use Direction::*;
        // Latency 30% up, interval [+20%, +40%], threshold 10%: regressed.
        assert_eq!(relative_verdict(LowerIsBetter, 0.30, 0.20, 0.40, 0.10), Verdict::Regressed);
        // Same point change, but the interval reaches +5%: not shown beyond the noise.
        assert_eq!(relative_verdict(LowerIsBetter, 0.30, 0.05, 0.40, 0.10), Verdict::Unchanged);
        // Significant but small: within the threshold.
        assert_eq!(relative_verdict(LowerIsBetter, 0.05, 0.03, 0.07, 0.10), Verdict::Unchanged);
        // Latency down 30%: improved.
        assert_eq!(relative_verdict(LowerIsBetter, -0.30, -0.40, -0.20, 0.10), Verdict::Improved);
        // Throughput down 30%: regressed; up 30%: improved.
        assert_eq!(relative_verdict(HigherIsBetter, -0.30, -0.40, -0.20, 0.10), Verdict::Regressed);
        assert_eq!(relative_verdict(HigherIsBetter, 0.30, 0.20, 0.40, 0.10), Verdict::Improved);
    }

    #[test]
    fn quality_regresses_on_a_drop_beyond_the_tolerance() {
        assert_eq!(quality_verdict(-0.004, 0.005), Verdict::Unchanged);
        assert_eq!(quality_verdict(-0.006, 0.005), Verdict::Regressed);
        assert_eq!(quality_verdict(0.2, 0.005), Verdict::Improved);
    }

    #[test]
    fn percentages_parse_with_or_without_the_sign() {
        assert_eq!(parse_percent("10%"), Ok(0.10));
        assert_eq!(parse_percent("25"), Ok(0.25));
        assert!(parse_percent("ten").is_err());
        assert!(parse_percent("150%").is_err());
    }

    #[test]
    fn unknown_metrics_are_refused_with_the_known_names() {
        let err = Settings::new(0.1, 0.005, &["p42_ms".to_string()]).unwrap_err().to_string();
        assert!(err.contains("p99_ms"), "{err}");
        let s = Settings::new(0.1, 0.005, &[]).unwrap();
        assert_eq!(s.metrics, DEFAULT_METRICS);
    }
}
