//! The metric vocabulary: every number dbbench reports, compares or bounds is declared
//! here once, with its name (as results, workload files and the CLI spell it), unit,
//! direction, the request count it needs before it means anything, its labels, and how
//! to read it from an op's (or an engine's) results. `dbbench compare`, the report and
//! console tables, the workload's `[[requirements.slo]]` and the CLI's `--metric` all
//! read this declaration; none keeps its own list.
//!
//! (`metrics/` is the other half: it records the histograms these values come from.)
//!
//! Nothing here measures or decides a verdict; it must never invent a value that
//! results.json does not hold (a tail percentile of too few requests is absent, not
//! estimated).

use std::ffi::OsStr;

use clap::builder::{PossibleValue, TypedValueParser};
use serde::{Deserialize, Serialize};

use crate::format::Unit;
use crate::metrics::{decode_histogram, LatencySummary};
use crate::results::{EngineResult, IntervalResult, OpResult, OpStatus};

/// Every usage measured for an engine (load, index build, phases), or why there is none.
fn engine_usages(e: &EngineResult) -> Result<Vec<&crate::resources::Usage>, String> {
    let r = e.resources.as_ref().ok_or_else(|| "resources were not measured".to_string())?;
    if let Some(why) = &r.not_measured {
        return Err(format!("resources were not measured: {why}"));
    }
    let all: Vec<_> = e.stage_usages().into_iter().map(|(_, u)| u).collect();
    if all.is_empty() {
        return Err("no resource sample was taken".into());
    }
    Ok(all)
}

fn disk(e: &EngineResult) -> Result<(u64, Option<f64>), String> {
    e.disk().ok_or_else(|| "the engine reported no size".to_string())
}

/// Whether a larger value is better or worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    LowerIsBetter,
    HigherIsBetter,
}

/// A latency percentile, and how many requests it needs: a tail percentile of fewer
/// requests is the maximum of a handful of samples, not a percentile, so it is not
/// reported (and so never compared or judged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Percentile {
    P50,
    P90,
    P95,
    P99,
    P999,
}

impl Percentile {
    pub const fn quantile(self) -> f64 {
        match self {
            Percentile::P50 => 0.50,
            Percentile::P90 => 0.90,
            Percentile::P95 => 0.95,
            Percentile::P99 => 0.99,
            Percentile::P999 => 0.999,
        }
    }

    /// Successful requests the percentile needs: the one minimum-count table.
    pub const fn min_count(self) -> u64 {
        match self {
            Percentile::P50 => 1,
            Percentile::P90 => 10,
            Percentile::P95 => 20,
            Percentile::P99 => 100,
            Percentile::P999 => 1000,
        }
    }

    /// This percentile of a recorded summary.
    pub fn of(self, s: &LatencySummary) -> Option<f64> {
        match self {
            Percentile::P50 => s.p50,
            Percentile::P90 => s.p90,
            Percentile::P95 => s.p95,
            Percentile::P99 => s.p99,
            Percentile::P999 => s.p999,
        }
    }
}

/// Where a metric's value is read from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Source {
    /// A percentile of `latency_ms` (ok requests, from the intended start in open loop).
    Latency(Percentile),
    /// A percentile of `service_time_ms` (ok requests, from the send).
    ServiceTime(Percentile),
    /// `throughput_ops_s`: ok requests per second of the phase.
    Throughput,
    /// A retrieval-quality mean; `absent` says why an op may have none.
    Quality { absent: &'static str },
    /// Failed requests.
    Errors,
    /// Failed / all requests.
    ErrorRate,
    /// The engine's load time (engine-wide).
    LoadSeconds,
    /// The engine's index build and wait-until-searchable time (engine-wide).
    IndexSeconds,
    /// The highest memory of the engine's processes over load, index build and every
    /// measured phase (engine-wide).
    MemoryPeak,
    /// CPU seconds of the engine's processes over load, index build and every measured
    /// phase (engine-wide).
    CpuSeconds,
    /// The size the driver reports after the index build (engine-wide).
    Disk,
    /// That size over the records it holds (engine-wide).
    BytesPerRecord,
    /// A percentile of a stream phase's visibility lag (phase-wide).
    VisibilityLag(Percentile),
    /// Recall@k of a stream phase's last checkpoint (phase-wide).
    FinalRecall,
    /// A figure of a recovery phase (phase-wide).
    Recovery(RecoveryFigure),
}

/// What a recovery phase measures that requirements can hold an engine to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryFigure {
    LostWrites,
    RestartSeconds,
    RestoreSeconds,
}

/// One metric's declaration.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    /// As in results, workload files and `--metric`: `p99_ms`, `recall_at_k`.
    pub name: &'static str,
    pub unit: Unit,
    pub direction: Direction,
    /// Successful requests the value needs before it is reported (0: none).
    pub min_count: u64,
    /// A table column's heading ("p99 ms"); `recall@k` takes the op's k.
    pub column: &'static str,
    /// The metric in a sentence ("p99", "load time"); `recall@k` takes the op's k.
    pub prose: &'static str,
    /// One line for `--help` and the docs.
    pub help: &'static str,
    pub source: Source,
}

const fn latency(name: &'static str, p: Percentile, column: &'static str, prose: &'static str) -> MetricDef {
    MetricDef {
        name,
        unit: Unit::Millis,
        direction: Direction::LowerIsBetter,
        min_count: p.min_count(),
        column,
        prose,
        help: "latency of successful requests, ms (from the intended start in open loop)",
        source: Source::Latency(p),
    }
}

const fn quality(name: &'static str, column: &'static str, help: &'static str, absent: &'static str) -> MetricDef {
    MetricDef {
        name,
        unit: Unit::Ratio,
        direction: Direction::HigherIsBetter,
        min_count: 0,
        column,
        prose: column,
        help,
        source: Source::Quality { absent },
    }
}

/// Every metric dbbench knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    P50Ms,
    P90Ms,
    P95Ms,
    P99Ms,
    P999Ms,
    ServiceP99Ms,
    ThroughputOpsS,
    RecallAtK,
    NdcgAt10,
    RecallAt100,
    MrrAt10,
    Errors,
    ErrorRate,
    LoadSeconds,
    IndexSeconds,
    MemoryPeakMib,
    CpuSeconds,
    DiskMib,
    BytesPerRecord,
    VisibilityLagP99Ms,
    FinalRecallAtK,
    LostWrites,
    RestartSeconds,
    RestoreSeconds,
}

impl Metric {
    pub const ALL: [Metric; 24] = [
        Metric::P50Ms,
        Metric::P90Ms,
        Metric::P95Ms,
        Metric::P99Ms,
        Metric::P999Ms,
        Metric::ServiceP99Ms,
        Metric::ThroughputOpsS,
        Metric::RecallAtK,
        Metric::NdcgAt10,
        Metric::RecallAt100,
        Metric::MrrAt10,
        Metric::Errors,
        Metric::ErrorRate,
        Metric::LoadSeconds,
        Metric::IndexSeconds,
        Metric::MemoryPeakMib,
        Metric::CpuSeconds,
        Metric::DiskMib,
        Metric::BytesPerRecord,
        Metric::VisibilityLagP99Ms,
        Metric::FinalRecallAtK,
        Metric::LostWrites,
        Metric::RestartSeconds,
        Metric::RestoreSeconds,
    ];

    /// The declaration: the one place each metric is described.
    pub const fn def(self) -> MetricDef {
        use Percentile::*;
        match self {
            Metric::P50Ms => latency("p50_ms", P50, "p50 ms", "p50"),
            Metric::P90Ms => latency("p90_ms", P90, "p90 ms", "p90"),
            Metric::P95Ms => latency("p95_ms", P95, "p95 ms", "p95"),
            Metric::P99Ms => latency("p99_ms", P99, "p99 ms", "p99"),
            Metric::P999Ms => latency("p999_ms", P999, "p99.9 ms", "p99.9"),
            Metric::ServiceP99Ms => MetricDef {
                name: "service_p99_ms",
                column: "svc p99",
                prose: "service-time p99",
                help: "p99 of service time (send to completion) of successful requests, ms",
                source: Source::ServiceTime(P99),
                ..latency("", P99, "", "")
            },
            Metric::ThroughputOpsS => MetricDef {
                name: "throughput_ops_s",
                unit: Unit::OpsPerSec,
                direction: Direction::HigherIsBetter,
                min_count: 0,
                column: "ops/s",
                prose: "throughput",
                help: "successful requests per second of the phase",
                source: Source::Throughput,
            },
            Metric::RecallAtK => quality(
                "recall_at_k",
                "recall@k",
                "share of the exact k nearest found (0..1, search ops)",
                "no exact ground truth was scored for this op",
            ),
            Metric::NdcgAt10 => quality(
                "ndcg_at_10",
                "nDCG@10",
                "nDCG@10 against relevance judgments (0..1, search ops)",
                "nDCG@10 needs relevance judgments and k >= 10",
            ),
            Metric::RecallAt100 => quality(
                "recall_at_100",
                "recall@100",
                "share of the judged-relevant documents in the first 100 (0..1, search ops)",
                "recall@100 needs relevance judgments and k >= 100",
            ),
            Metric::MrrAt10 => quality(
                "mrr_at_10",
                "MRR@10",
                "mean reciprocal rank of the first relevant hit in the first 10 (0..1, search ops)",
                "MRR@10 needs relevance judgments and k >= 10",
            ),
            Metric::Errors => MetricDef {
                name: "errors",
                unit: Unit::Count,
                direction: Direction::LowerIsBetter,
                min_count: 0,
                column: "errors",
                prose: "errors",
                help: "failed requests",
                source: Source::Errors,
            },
            Metric::ErrorRate => MetricDef {
                name: "error_rate",
                unit: Unit::Fraction,
                direction: Direction::LowerIsBetter,
                min_count: 0,
                column: "error rate",
                prose: "error rate",
                help: "failed requests / all requests (0..1)",
                source: Source::ErrorRate,
            },
            Metric::LoadSeconds => MetricDef {
                name: "load_seconds",
                unit: Unit::Seconds,
                direction: Direction::LowerIsBetter,
                min_count: 0,
                column: "load s",
                prose: "load time",
                help: "time to load the dataset, s (per engine: no phase or op)",
                source: Source::LoadSeconds,
            },
            Metric::IndexSeconds => MetricDef {
                name: "index_seconds",
                unit: Unit::Seconds,
                direction: Direction::LowerIsBetter,
                min_count: 0,
                column: "index s",
                prose: "index build time",
                help: "time to build indexes and wait until searchable, s (per engine: no phase or op)",
                source: Source::IndexSeconds,
            },
            Metric::MemoryPeakMib => MetricDef {
                name: "memory_peak_mib",
                unit: Unit::Mib,
                direction: Direction::LowerIsBetter,
                min_count: 0,
                column: "peak MiB",
                prose: "peak memory",
                help: "highest memory (PSS) of the engine's processes over load, index build and the measured phases, MiB (per engine)",
                source: Source::MemoryPeak,
            },
            Metric::CpuSeconds => MetricDef {
                name: "cpu_seconds",
                unit: Unit::Seconds,
                direction: Direction::LowerIsBetter,
                min_count: 0,
                column: "CPU s",
                prose: "CPU time",
                help: "CPU seconds of the engine's processes over load, index build and the measured phases (per engine)",
                source: Source::CpuSeconds,
            },
            Metric::DiskMib => MetricDef {
                name: "disk_mib",
                unit: Unit::Mib,
                direction: Direction::LowerIsBetter,
                min_count: 0,
                column: "disk MiB",
                prose: "size on disk",
                help: "size the engine reports for its data after the index build, MiB (per engine)",
                source: Source::Disk,
            },
            Metric::BytesPerRecord => MetricDef {
                name: "bytes_per_record",
                unit: Unit::Count,
                direction: Direction::LowerIsBetter,
                min_count: 0,
                column: "bytes/record",
                prose: "bytes per record",
                help: "that size over the records the engine holds (per engine)",
                source: Source::BytesPerRecord,
            },
            Metric::VisibilityLagP99Ms => MetricDef {
                name: "visibility_lag_p99_ms",
                unit: Unit::Millis,
                direction: Direction::LowerIsBetter,
                min_count: Percentile::P99.min_count(),
                column: "visibility lag p99 ms",
                prose: "p99 visibility lag",
                help: "time from an insert's acknowledgement until a search returns it, p99, ms (per stream phase: no op)",
                source: Source::VisibilityLag(Percentile::P99),
            },
            Metric::FinalRecallAtK => MetricDef {
                name: "final_recall_at_k",
                unit: Unit::Ratio,
                direction: Direction::HigherIsBetter,
                min_count: 0,
                column: "recall@k, last checkpoint",
                prose: "recall@k at the last checkpoint",
                help: "recall@k of a stream phase's last checkpoint, against the records live then (per stream phase: no op)",
                source: Source::FinalRecall,
            },
            Metric::LostWrites => MetricDef {
                name: "lost_writes",
                unit: Unit::Count,
                direction: Direction::LowerIsBetter,
                min_count: 0,
                column: "lost writes",
                prose: "acknowledged writes lost in the crash",
                help: "inserts the engine acknowledged before it was killed and did not hold after its restart (per recovery phase: no op)",
                source: Source::Recovery(RecoveryFigure::LostWrites),
            },
            Metric::RestartSeconds => MetricDef {
                name: "restart_seconds",
                unit: Unit::Seconds,
                direction: Direction::LowerIsBetter,
                min_count: 0,
                column: "restart s",
                prose: "restart to the first correct answer",
                help: "from starting the stopped engine over its data until it answers a query as before, s (per recovery phase: no op)",
                source: Source::Recovery(RecoveryFigure::RestartSeconds),
            },
            Metric::RestoreSeconds => MetricDef {
                name: "restore_seconds",
                unit: Unit::Seconds,
                direction: Direction::LowerIsBetter,
                min_count: 0,
                column: "restore s",
                prose: "restore time",
                help: "time of a restore from the engine's own backup that verified (same record count, same answers), s; a restore that failed verification has none (per recovery phase: no op)",
                source: Source::Recovery(RecoveryFigure::RestoreSeconds),
            },
        }
    }

    pub const fn name(self) -> &'static str {
        self.def().name
    }

    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }

    pub const fn direction(self) -> Direction {
        self.def().direction
    }

    pub const fn unit(self) -> Unit {
        self.def().unit
    }

    /// Measured once per engine (load, index build), not per op.
    pub const fn engine_wide(self) -> bool {
        matches!(
            self.def().source,
            Source::LoadSeconds
                | Source::IndexSeconds
                | Source::MemoryPeak
                | Source::CpuSeconds
                | Source::Disk
                | Source::BytesPerRecord
        )
    }

    /// Measured once per stream phase (freshness, checkpoints) or recovery phase, not
    /// per op.
    pub const fn phase_wide(self) -> bool {
        matches!(self.def().source, Source::VisibilityLag(_) | Source::FinalRecall | Source::Recovery(_))
    }

    /// A phase-wide metric of a recovery phase (else of a stream phase).
    pub const fn of_recovery(self) -> bool {
        matches!(self.def().source, Source::Recovery(_))
    }

    /// A phase-wide metric's value in a stream or recovery phase's result, or why it has
    /// none.
    pub fn read_phase(self, p: &crate::results::PhaseResult) -> Result<f64, String> {
        if let Source::Recovery(figure) = self.def().source {
            let r = p.recovery.as_ref().ok_or_else(|| format!("phase {} is not a recovery phase", p.name))?;
            let why = |part: &str| {
                r.notes.iter().find(|n| n.starts_with(part)).cloned().unwrap_or_else(|| format!("{part}: not measured"))
            };
            return match figure {
                RecoveryFigure::LostWrites => r.crash.as_ref().map(|c| c.lost as f64).ok_or_else(|| why("crash")),
                RecoveryFigure::RestartSeconds => r.restart.as_ref().map(|x| x.seconds).ok_or_else(|| why("restart")),
                RecoveryFigure::RestoreSeconds => match &r.backup {
                    Some(b) => b.restore_s.ok_or_else(|| format!("the restore did not verify: {}", b.verification)),
                    None => Err(why("backup")),
                },
            };
        }
        let st = p.stream.as_ref().ok_or_else(|| format!("phase {} is not a stream phase", p.name))?;
        match self.def().source {
            Source::VisibilityLag(pc) => {
                let f = st.freshness.as_ref().ok_or_else(|| "freshness was not probed".to_string())?;
                pc.of(&f.lag_ms).ok_or_else(|| {
                    format!(
                        "{} needs at least {} visible probes, the phase had {}",
                        self.prose(None),
                        pc.min_count(),
                        f.visible
                    )
                })
            }
            Source::FinalRecall => st
                .checkpoints
                .last()
                .and_then(|c| c.recall_at_k)
                .ok_or_else(|| "the last checkpoint scored no search".to_string()),
            _ => Err(format!("{} is not measured per phase", self.name())),
        }
    }

    /// Retrieval quality, scored for search ops only.
    pub const fn is_quality(self) -> bool {
        matches!(self.def().source, Source::Quality { .. })
    }

    /// Whether `dbbench compare` can test it: per op, with a value per run and (latency,
    /// throughput) per second. Service time has no per-second histogram in results, and
    /// error counts are not gated on.
    pub const fn comparable(self) -> bool {
        matches!(self.def().source, Source::Latency(_) | Source::Throughput | Source::Quality { .. })
    }

    /// The table heading, with the op's k for recall@k.
    pub fn column(self, k: Option<usize>) -> String {
        with_k(self.def().column, k)
    }

    /// The metric in a sentence, with the op's k for recall@k.
    pub fn prose(self, k: Option<usize>) -> String {
        with_k(self.def().prose, k)
    }

    /// A value of this metric in a table cell ("-" when absent).
    pub fn cell(self, v: Option<f64>) -> String {
        self.unit().cell(v)
    }

    /// A value of this metric in a sentence, with its unit.
    pub fn prose_value(self, v: f64) -> String {
        self.unit().prose(v)
    }

    /// The op's value, or why it has none. Engine-wide metrics have none per op.
    pub fn read(self, o: &OpResult) -> Result<f64, String> {
        if o.status != OpStatus::Ok {
            return Err(format!("{}: {}", o.status, o.note.as_deref().unwrap_or("not run")));
        }
        let def = self.def();
        let percentile = |v: Option<f64>| {
            v.ok_or_else(|| {
                if o.count == 0 {
                    "no successful requests".to_string()
                } else {
                    format!(
                        "{} needs at least {} successful requests, the op had {}",
                        def.prose, def.min_count, o.count
                    )
                }
            })
        };
        match def.source {
            Source::Latency(p) => percentile(p.of(&o.latency_ms)),
            Source::ServiceTime(p) => percentile(p.of(&o.service_time_ms)),
            Source::Throughput => Ok(o.throughput_ops_s),
            Source::Quality { absent } => {
                let q = &o.quality;
                let v = match self {
                    Metric::RecallAtK => q.recall_at_k,
                    Metric::NdcgAt10 => q.ndcg_at_10,
                    Metric::RecallAt100 => q.recall_at_100,
                    Metric::MrrAt10 => q.mrr_at_10,
                    _ => None,
                };
                v.ok_or_else(|| absent.to_string())
            }
            Source::Errors => Ok(o.errors as f64),
            Source::ErrorRate => {
                let total = o.count + o.errors;
                if total == 0 {
                    Err("no requests were sent".into())
                } else {
                    Ok(o.errors as f64 / total as f64)
                }
            }
            Source::LoadSeconds
            | Source::IndexSeconds
            | Source::MemoryPeak
            | Source::CpuSeconds
            | Source::Disk
            | Source::BytesPerRecord => Err("engine-wide metric".into()),
            Source::VisibilityLag(_) | Source::FinalRecall => Err("measured per stream phase".into()),
            Source::Recovery(_) => Err("measured per recovery phase".into()),
        }
    }

    /// The op's value; None when it has none.
    pub fn value(self, o: &OpResult) -> Option<f64> {
        self.read(o).ok()
    }

    /// An engine-wide metric's value, or why it has none.
    pub fn read_engine(self, e: &EngineResult) -> Result<f64, String> {
        match self.def().source {
            Source::LoadSeconds => e.load.as_ref().map(|l| l.seconds).ok_or_else(|| "no load was recorded".into()),
            Source::IndexSeconds => {
                e.index.as_ref().map(|i| i.seconds).ok_or_else(|| "no index build was recorded".into())
            }
            Source::MemoryPeak => {
                Ok(crate::format::to_mib(engine_usages(e)?.iter().map(|u| u.memory_peak_bytes).max().unwrap_or(0)))
            }
            Source::CpuSeconds => Ok(engine_usages(e)?.iter().map(|u| u.cpu_s).sum()),
            Source::Disk => Ok(crate::format::to_mib(disk(e)?.0)),
            Source::BytesPerRecord => disk(e)?.1.ok_or_else(|| "the engine reported no record count".into()),
            _ => Err(format!("{} is measured per op", self.name())),
        }
    }

    /// The value in one per-second interval of an op: ok requests for throughput, the
    /// second's latency percentile where that second had enough requests for it. None
    /// for metrics that have no per-second form, and for an interval histogram that does
    /// not decode (the whole-run values do not depend on it).
    pub fn interval_value(self, i: &IntervalResult) -> Option<f64> {
        match self.def().source {
            Source::Throughput => Some(i.ok as f64),
            Source::Latency(p) => {
                let needs = p.min_count().max(1);
                if i.ok < needs {
                    return None;
                }
                let h = decode_histogram(&i.histogram).ok()?;
                (h.len() >= needs).then(|| h.value_at_quantile(p.quantile()) as f64 / 1e6)
            }
            _ => None,
        }
    }

    /// Which of `values` is best: nothing is marked unless at least two are measured and
    /// they differ (a lone value, or all equal, is not "best" of anything). Ties for best
    /// mark every tied value.
    pub fn best(self, values: &[Option<f64>]) -> Vec<bool> {
        let measured: Vec<f64> = values.iter().flatten().copied().collect();
        if measured.len() < 2 || measured.iter().all(|v| *v == measured[0]) {
            return vec![false; values.len()];
        }
        let best = match self.direction() {
            Direction::HigherIsBetter => measured.iter().copied().fold(f64::MIN, f64::max),
            Direction::LowerIsBetter => measured.iter().copied().fold(f64::MAX, f64::min),
        };
        values.iter().map(|v| *v == Some(best)).collect()
    }

    fn possible_value(self) -> PossibleValue {
        PossibleValue::new(self.name()).help(self.def().help)
    }
}

fn with_k(label: &str, k: Option<usize>) -> String {
    match label.strip_suffix("@k") {
        Some(stem) => format!("{stem}@{}", k.map(|k| k.to_string()).unwrap_or_else(|| "k".into())),
        None => label.to_string(),
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

impl Serialize for Metric {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Metric {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Metric::from_name(&name).ok_or_else(|| serde::de::Error::custom(format!("unknown metric {name:?}")))
    }
}

/// Every metric as a clap value, named and explained by its declaration.
impl clap::ValueEnum for Metric {
    fn value_variants<'a>() -> &'a [Self] {
        &Metric::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(self.possible_value())
    }
}

/// The columns of a per-op results table (report.html, report.md), in order.
pub const TABLE_COLUMNS: [Metric; 8] = [
    Metric::ThroughputOpsS,
    Metric::P50Ms,
    Metric::P95Ms,
    Metric::P99Ms,
    Metric::P999Ms,
    Metric::Errors,
    Metric::RecallAtK,
    Metric::NdcgAt10,
];

/// A `--metric` value parser that takes only the metrics `accepts` admits, lists them
/// (with their help) as the possible values, and refuses others with "unknown metric"
/// and the names it knows.
#[derive(Clone, Copy)]
pub struct MetricParser {
    accepts: fn(Metric) -> bool,
}

impl MetricParser {
    pub const fn new(accepts: fn(Metric) -> bool) -> Self {
        MetricParser { accepts }
    }

    pub fn accepted(&self) -> impl Iterator<Item = Metric> + '_ {
        Metric::ALL.into_iter().filter(|m| (self.accepts)(*m))
    }
}

impl TypedValueParser for MetricParser {
    type Value = Metric;

    fn parse_ref(&self, cmd: &clap::Command, arg: Option<&clap::Arg>, value: &OsStr) -> Result<Metric, clap::Error> {
        let text = value.to_string_lossy();
        match Metric::from_name(text.trim()).filter(|m| (self.accepts)(*m)) {
            Some(m) => Ok(m),
            None => {
                let known: Vec<&str> = self.accepted().map(Metric::name).collect();
                let flag = arg.and_then(|a| a.get_long()).unwrap_or("metric");
                let message = format!("--{flag} {text}: unknown metric; known: {}\n", known.join(", "));
                Err(clap::Error::raw(clap::error::ErrorKind::InvalidValue, message).with_cmd(cmd))
            }
        }
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(self.accepted().map(Metric::possible_value)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        for m in Metric::ALL {
            assert_eq!(Metric::from_name(m.name()), Some(m));
            assert_eq!(Metric::ALL.iter().filter(|o| o.name() == m.name()).count(), 1, "{m}");
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.name()));
            assert_eq!(serde_json::from_str::<Metric>(&json).unwrap(), m);
        }
        assert_eq!(Metric::from_name("p42_ms"), None);
    }

    #[test]
    fn tail_percentiles_need_their_request_counts() {
        let needs: Vec<u64> = [Metric::P50Ms, Metric::P90Ms, Metric::P95Ms, Metric::P99Ms, Metric::P999Ms]
            .map(|m| m.def().min_count)
            .into();
        assert_eq!(needs, vec![1, 10, 20, 100, 1000]);
        assert_eq!(Metric::ServiceP99Ms.def().min_count, 100);
    }

    #[test]
    fn labels_take_the_ops_k() {
        assert_eq!(Metric::RecallAtK.column(Some(10)), "recall@10");
        assert_eq!(Metric::RecallAtK.column(None), "recall@k");
        assert_eq!(Metric::RecallAt100.column(Some(10)), "recall@100");
        assert_eq!(Metric::P999Ms.column(None), "p99.9 ms");
        assert_eq!(Metric::LoadSeconds.prose(None), "load time");
    }

    #[test]
    fn best_needs_two_values_and_knows_direction() {
        assert_eq!(Metric::P99Ms.best(&[Some(3.0), Some(2.0), None]), vec![false, true, false]);
        assert_eq!(Metric::ThroughputOpsS.best(&[Some(3.0), Some(2.0)]), vec![true, false]);
        assert_eq!(Metric::P99Ms.best(&[Some(3.0), None]), vec![false, false]);
        assert_eq!(Metric::RecallAtK.best(&[Some(1.0), Some(1.0)]), vec![false, false], "all equal: no best");
        assert_eq!(Metric::RecallAtK.best(&[Some(1.0), Some(0.5), Some(1.0)]), vec![true, false, true]);
    }

    #[test]
    fn the_compared_set_has_a_value_per_run() {
        let compared: Vec<&str> = Metric::ALL.into_iter().filter(|m| m.comparable()).map(Metric::name).collect();
        assert_eq!(
            compared,
            [
                "p50_ms",
                "p90_ms",
                "p95_ms",
                "p99_ms",
                "p999_ms",
                "throughput_ops_s",
                "recall_at_k",
                "ndcg_at_10",
                "recall_at_100",
                "mrr_at_10"
            ]
        );
    }
}
