//! The verdict per engine x phase x op x metric, and the whole comparison's.
//!
//! Latency and throughput follow criterion's rule with the point change as well: a
//! regression needs the point change beyond `--max-regression` AND the whole bootstrap
//! interval of the change beyond it. The samples are the measured runs when both sides
//! have at least `MIN_RUN_SAMPLES`, otherwise every run's whole seconds pooled (runs are
//! the better unit: seconds of one run share that run's conditions, so they understate
//! the noise). Quality regresses on any drop beyond an absolute tolerance.
//!
//! It judges the numbers results.json holds and nothing else: a value a side did not
//! measure is noted, never estimated.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::load::{check_same_experiment, group, key_name, side_info, Measurement, SideInfo};
use super::stats::{bootstrap_ratio_of_medians, median, CONFIDENCE, RESAMPLES, SEED};
use crate::driver::OpKind;
use crate::error::{Error, Result};
use crate::metric::{Direction, Metric};
use crate::results::RunResults;

/// Metrics compared when `--metric` is not given.
pub const DEFAULT_METRICS: &[Metric] =
    &[Metric::P50Ms, Metric::P99Ms, Metric::ThroughputOpsS, Metric::RecallAtK, Metric::NdcgAt10];
/// Below this many runs on either side, per-second intervals are the samples instead.
pub const MIN_RUN_SAMPLES: usize = 3;
/// Below this many samples on either side, no significance test is possible.
pub const MIN_SAMPLES: usize = 3;

/// Names `--metric` accepts: every metric `compare` can test.
pub fn metric_names() -> Vec<&'static str> {
    Metric::ALL.into_iter().filter(|m| m.comparable()).map(Metric::name).collect()
}

/// What the comparison is asked to do.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Fraction, e.g. 0.10.
    pub max_regression: f64,
    pub quality_tolerance: f64,
    pub metrics: Vec<Metric>,
    pub confidence: f64,
    pub resamples: usize,
    pub seed: u64,
    /// Judge latency and throughput even when the sides ran on different machines
    /// (`--allow-other-machine`); otherwise those are "not comparable".
    pub allow_other_machine: bool,
    /// The sides may run different workload files (an A/B run of two configurations);
    /// they must still measure the same dataset.
    pub allow_other_workload: bool,
}

impl Settings {
    /// Settings from metric names (as `--metric` spells them); none given means
    /// `DEFAULT_METRICS`.
    pub fn new(max_regression: f64, quality_tolerance: f64, metrics: &[String]) -> Result<Self> {
        let mut parsed = Vec::new();
        for m in metrics.iter().map(|m| m.trim()).filter(|m| !m.is_empty()) {
            match Metric::from_name(m).filter(|m| m.comparable()) {
                Some(metric) => parsed.push(metric),
                None => {
                    return Err(Error::Input(format!(
                        "--metric {m}: unknown metric; known: {}",
                        metric_names().join(", ")
                    )))
                }
            }
        }
        Settings::with_metrics(max_regression, quality_tolerance, &parsed)
    }

    /// Settings from metrics already parsed; none given means `DEFAULT_METRICS`.
    pub fn with_metrics(max_regression: f64, quality_tolerance: f64, metrics: &[Metric]) -> Result<Self> {
        if let Some(m) = metrics.iter().find(|m| !m.comparable()) {
            return Err(Error::Input(format!(
                "--metric {m}: not compared between runs; known: {}",
                metric_names().join(", ")
            )));
        }
        if !(0.0..1.0).contains(&quality_tolerance) {
            return Err(Error::Input(format!("--quality-tolerance {quality_tolerance}: must be in [0, 1)")));
        }
        let metrics = if metrics.is_empty() { DEFAULT_METRICS.to_vec() } else { metrics.to_vec() };
        Ok(Settings {
            max_regression,
            quality_tolerance,
            metrics,
            confidence: CONFIDENCE,
            resamples: RESAMPLES,
            seed: SEED,
            allow_other_machine: false,
            allow_other_workload: false,
        })
    }

    /// The same settings, judging timing across machines too.
    pub fn allowing_other_machine(mut self, allow: bool) -> Self {
        self.allow_other_machine = allow;
        self
    }

    /// The same settings, for sides that ran different workload files on one dataset.
    pub fn allowing_other_workload(mut self, allow: bool) -> Self {
        self.allow_other_workload = allow;
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Improved,
    Regressed,
    Unchanged,
    /// A latency or throughput measured on another machine than its baseline: neither
    /// passed nor failed.
    NotComparable,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Improved => "improved",
            Verdict::Regressed => "REGRESSED",
            Verdict::Unchanged => "unchanged",
            Verdict::NotComparable => "not comparable",
        }
    }
}

/// One metric of one op, baseline against candidate.
#[derive(Debug, Clone, Serialize)]
pub struct MetricComparison {
    pub metric: Metric,
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
    /// Latency and throughput metrics not judged because the sides ran on different
    /// machines (see `Settings::allow_other_machine`).
    pub not_comparable: usize,
    /// "pass", "fail", or "not comparable" (no regression, but timing metrics that could
    /// not be judged).
    pub result: &'static str,
}

impl Comparison {
    pub fn failed(&self) -> bool {
        self.regressions > 0 || !self.only_in_baseline.is_empty()
    }

    /// The exit code of `dbbench compare`: 1 on a regression, 2 when timing could not be
    /// judged (another machine) and nothing regressed, else 0.
    pub fn exit_code(&self) -> i32 {
        if self.failed() {
            1
        } else if self.not_comparable > 0 {
            2
        } else {
            0
        }
    }
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
    check_same_experiment(&all, settings.allow_other_workload)?;

    let mut notes = Vec::new();
    let base_groups = group("baseline", baseline, &mut notes);
    let cand_groups = group("candidate", candidate, &mut notes);
    let (base_info, cand_info) = (side_info(baseline_path, baseline), side_info(candidate_path, candidate));
    let other_machine = base_info.machines != cand_info.machines;
    if other_machine {
        let (b, c) = (base_info.machines.join(", "), cand_info.machines.join(", "));
        notes.push(if settings.allow_other_machine {
            format!(
                "the sides ran on different machines (baseline: {b}; candidate: {c}); --allow-other-machine: latency and \
                 throughput are judged anyway, and their differences may be the machine's"
            )
        } else {
            format!(
                "the sides ran on different machines (baseline: {b}; candidate: {c}): latency and throughput are not \
                 comparable and are not judged (quality is); measure both sides on one machine (`dbbench compare --ab`, \
                 or re-record the baseline there), or pass --allow-other-machine"
            )
        });
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
        let mut metrics: Vec<MetricComparison> =
            settings.metrics.iter().filter_map(|m| compare_metric(*m, &b.measured, &c.measured, &settings)).collect();
        if other_machine && !settings.allow_other_machine {
            for m in metrics.iter_mut().filter(|m| m.change_kind == "relative") {
                m.verdict = Verdict::NotComparable;
            }
        }
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
    let not_comparable = count(Verdict::NotComparable);
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
        not_comparable,
        result: "pass",
    };
    if cmp.failed() {
        cmp.result = "fail";
    } else if not_comparable > 0 {
        cmp.result = "not comparable";
    }
    Ok(cmp)
}

/// The per-second values of a metric in one run, from whole seconds only (the last,
/// partial second would read as a throughput drop and holds the phase's drain).
fn interval_values(metric: Metric, m: &Measurement, out: &mut Vec<f64>) {
    let whole = m.op.intervals.iter().filter(|i| (i.t_s + 1) as f64 <= m.elapsed_s + 1e-6);
    out.extend(whole.filter_map(|i| metric.interval_value(i)));
}

fn compare_metric(
    metric: Metric,
    base: &[Measurement],
    cand: &[Measurement],
    s: &Settings,
) -> Option<MetricComparison> {
    let base_runs: Vec<f64> = base.iter().filter_map(|m| metric.value(m.op)).collect();
    let cand_runs: Vec<f64> = cand.iter().filter_map(|m| metric.value(m.op)).collect();
    if base_runs.is_empty() && cand_runs.is_empty() {
        return None;
    }
    let (b, c) = (median(&base_runs), median(&cand_runs));
    let mut out = MetricComparison {
        metric,
        direction: metric.direction(),
        baseline: b,
        candidate: c,
        change: None,
        change_kind: if metric.is_quality() { "absolute" } else { "relative" },
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
        return Some(out);
    };

    if metric.is_quality() {
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
        base.iter().for_each(|m| interval_values(metric, m, &mut bs));
        cand.iter().for_each(|m| interval_values(metric, m, &mut cs));
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
    out.verdict = relative_verdict(metric.direction(), c / b - 1.0, lo - 1.0, hi - 1.0, s.max_regression);
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
    fn unknown_metrics_are_refused_with_the_known_names() {
        let err = Settings::new(0.1, 0.005, &["p42_ms".to_string()]).unwrap_err().to_string();
        assert!(err.contains("p99_ms"), "{err}");
        let s = Settings::new(0.1, 0.005, &[]).unwrap();
        assert_eq!(s.metrics, DEFAULT_METRICS);
    }

    #[test]
    fn metrics_compare_cannot_test_are_refused() {
        let err = Settings::new(0.1, 0.005, &["load_seconds".to_string()]).unwrap_err().to_string();
        assert!(err.contains("unknown metric") && err.contains("mrr_at_10"), "{err}");
        let err = Settings::with_metrics(0.1, 0.005, &[Metric::Errors]).unwrap_err().to_string();
        assert!(err.contains("not compared"), "{err}");
    }
}
