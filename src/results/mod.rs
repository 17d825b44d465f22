//! The results schema (`results.json`, `schema_version` 1): these serde structs are the
//! schema, every field documented here and in `docs/results-schema.md`. The runner writes
//! the file atomically after every phase, so a run cut short keeps what it measured, with
//! `run.complete = false` and the reason.
//!
//! Reports and `dbbench compare` read results.json alone; nothing here may depend on a
//! live engine. `merge` makes one results of several runs of a workload.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::driver::{AttributeDef, OpKind, ParamUse};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::metrics::{encode_histogram, ErrorTally, LatencySummary, OpMetrics};
use crate::quality::QualitySummary;

mod merge;

pub use merge::merge;

pub const SCHEMA_VERSION: u32 = 1;
pub const RESULTS_FILE: &str = "results.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResults {
    /// Always 1 for this layout; a reader refuses versions it does not know.
    pub schema_version: u32,
    pub dbbench: ToolInfo,
    pub run: RunInfo,
    pub engines: Vec<EngineResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolInfo {
    pub version: String,
    /// Git commit dbbench was built from ("unknown" outside a checkout).
    pub commit: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    /// `<UTC timestamp>-<workload>`, also the default run folder name.
    pub id: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub finished_at: Option<String>,
    /// False while running, and for good when the run was interrupted or an engine failed.
    pub complete: bool,
    pub incomplete_reason: Option<String>,
    pub workload: WorkloadRef,
    pub seed: u64,
    pub dataset: DatasetInfo,
    pub machine: Machine,
    /// The workload's validated `[requirements]`, so that reports can judge engines from
    /// results alone. Absent in files written before requirements existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirements: Option<crate::spec::Requirements>,
    /// Set by `dbbench report` when several runs were merged into this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<MergedRun>,
    /// One load generator of several (`dbbench run --shard I/N`); absent for a run of one
    /// process, and in a merged run (its `merged_from` names the shards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardInfo>,
}

/// Which load generator of a sharded run wrote a results.json.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// 0-based.
    pub index: u32,
    pub count: u32,
    /// The agreed start every shard of the run was given (RFC 3339, UTC).
    pub start_at: String,
    /// This shard loaded the data and built the index (shard 0, without --skip-load).
    pub loaded: bool,
}

/// One run that a merged result was made from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MergedRun {
    pub id: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub machine: Machine,
    /// The shard it was, for shards of one run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkloadRef {
    pub name: String,
    pub description: Option<String>,
    pub file: String,
    /// SHA-256 of the workload file; `compare` refuses runs of different workloads.
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatasetInfo {
    pub name: String,
    pub source: String,
    /// Set when synthetic data stood in for a missing dataset.
    pub fallback_reason: Option<String>,
    pub docs: usize,
    pub queries: usize,
    pub dim: usize,
    pub metric: String,
    /// Whether relevance judgments were available (nDCG, recall@100, MRR).
    pub judged: bool,
    /// What the judgments are, when the dataset says: `"pseudo"` for judgments nobody
    /// made (WordNet: a usage example is relevant to its own sense only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judgments: Option<String>,
    pub fingerprint: String,
    pub attributes: Vec<AttributeDef>,
    /// Records held out of the load for inserts (`dataset.stream`); `docs` counts them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_out: Option<usize>,
    /// Each filter of the workload's ops with the share of the corpus it admits, counted
    /// on the data as loaded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<FilterShare>,
    /// Links between records (`dataset.links`), for expand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<LinksInfo>,
}

/// What an expand op asks beyond its query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpandInfo {
    pub seeds: usize,
    pub hops: usize,
}

/// The links a dataset carries, for expand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinksInfo {
    /// Generated (with the distribution) or the file they were read from.
    pub source: String,
    /// Links (each undirected link once).
    pub links: usize,
    /// Links a record has, on average and at most.
    pub mean_degree: f64,
    pub max_degree: usize,
}

/// How much of the corpus a filter admits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilterShare {
    pub filter: String,
    pub admitted: usize,
    /// `admitted` over the corpus's documents.
    pub selectivity: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub os: String,
    pub kernel: Option<String>,
    pub arch: String,
    pub cpus: usize,
    pub cpu_model: Option<String>,
    pub memory_bytes: Option<u64>,
}

impl Machine {
    pub fn current() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Machine {
            os: std::env::consts::OS.to_string(),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|s| s.trim().to_string()),
            arch: std::env::consts::ARCH.to_string(),
            cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            cpu_model: cpuinfo
                .lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string()),
            memory_bytes: meminfo
                .lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
                .map(|kb| kb * 1024),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineStatus {
    /// Every phase ran.
    Ok,
    /// Not run: unreachable at the start, or not wanted; `reason` says which.
    Skipped,
    /// Started but could not finish; phases measured before the failure are kept.
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EngineResult {
    /// The engine's name in the workload.
    pub name: String,
    pub driver: String,
    pub status: EngineStatus,
    pub reason: Option<String>,
    /// For skipped engines: the command that brings the engine up.
    pub start_hint: Option<String>,
    /// URL with credentials redacted.
    pub url: Option<String>,
    pub version: Option<String>,
    /// Settings as applied, secrets redacted.
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// Per op kind: native, client (fused/filtered by dbbench) or partial, with a note.
    pub capabilities: serde_json::Value,
    pub load: Option<LoadResult>,
    pub index: Option<IndexResult>,
    /// What the engine's processes used (CPU, memory) during load and index build; each
    /// phase carries its own. Absent in results written before it was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<EngineResources>,
    /// The engine's layout (nodes, shards, replicas) as it reported it after the load;
    /// absent where the driver has nothing to say (a single process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology: Option<crate::driver::Topology>,
    pub phases: Vec<PhaseResult>,
}

impl EngineResult {
    /// What the engine's processes used in each stage that was measured, in order: the
    /// load, the index build, then each measured phase (by its display name).
    pub fn stage_usages(&self) -> Vec<(String, &crate::resources::Usage)> {
        let Some(res) = &self.resources else { return Vec::new() };
        [("load".to_string(), res.load.as_ref()), ("index build".to_string(), res.index.as_ref())]
            .into_iter()
            .chain(self.phases.iter().map(|p| (p.display_name(), p.resources.as_ref())))
            .filter_map(|(stage, u)| Some((stage, u?)))
            .collect()
    }

    /// Bytes the driver reports the engine's data takes after the index build (its own
    /// size API: PostgreSQL's relation sizes, Elasticsearch's store, the files of sqlite
    /// and qdrant-edge), and per record when it also reports how many it holds.
    pub fn disk(&self) -> Option<(u64, Option<f64>)> {
        let stats = &self.index.as_ref()?.stats;
        let bytes = stats.get("size_bytes")?.as_u64()?;
        let records = stats.get("records").and_then(serde_json::Value::as_u64).filter(|&r| r > 0);
        Some((bytes, records.map(|r| bytes as f64 / r as f64)))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadResult {
    pub records: u64,
    pub batches: u64,
    /// Records and links together (links are stored after the records).
    pub seconds: f64,
    pub records_per_s: f64,
    /// Links stored between the records, for expand (absent: none were loaded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<u64>,
}

/// Which processes were measured for an engine, and what they used outside the phases.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EngineResources {
    /// The processes measured ("pid file .services/pgvector/pid (...)"), or absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watched: Option<String>,
    /// Why nothing was measured (an engine on another machine, no pid file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_measured: Option<String>,
    /// The processes' memory before dbbench created or loaded anything: what a server
    /// already held (other data, caches, what an earlier run left), which every later
    /// figure includes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_before_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<crate::resources::Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<crate::resources::Usage>,
    /// Memory and CPU per second, from the start of the load to the end of the last
    /// phase (the warmups included); each usage's `start_s` places it on this axis.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<crate::resources::Point>,
}

impl EngineResources {
    /// "; N MiB in use before the load", said after the processes measured; empty when
    /// that was not read.
    pub fn held_before(&self) -> String {
        self.memory_before_bytes
            .map(|b| format!("; {:.0} MiB in use before the load", crate::format::to_mib(b)))
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexResult {
    /// Time of `finish_load`: index build and wait until searchable.
    pub seconds: f64,
    pub stats: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseResult {
    pub name: String,
    /// False when the phase was cut short (Ctrl-C, engine lost).
    pub complete: bool,
    pub note: Option<String>,
    pub schedule: ScheduleInfo,
    pub warmup_s: f64,
    /// From the first request to the last completion.
    pub elapsed_s: f64,
    /// Open loop only.
    pub rate: Option<RateResult>,
    pub ops: Vec<OpResult>,
    /// Which measured run of the phase this is, 1-based. With `dbbench run --repeat N` the
    /// same phase name appears N times in a row, repetitions 1..=N: each is a separate
    /// measured run (same requests, same seed) after the phase's one warmup. Files written
    /// before this field existed read as repetition 1.
    #[serde(default = "first_repetition")]
    pub repetition: u32,
    /// Set when this result is one step of an effort sweep: the phase as written and the
    /// setting measured (the name is then `<phase>@effort=<e>`, `<phase>@<knob>=<value>`
    /// for an engine's own values, or `<phase>@exact`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<EffortStep>,
    /// Set on a phase tuned to a target recall: how the setting measured here was chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuning: Option<Tuning>,
    /// What the engine's processes used during the measured run (not the warmup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<crate::resources::Usage>,
    /// Set on a stream phase: its schedule, checkpoints and freshness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamResult>,
    /// Set on a recovery phase: the crash, the restart, the backup and its restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<RecoveryResult>,
}

/// A recovery phase on one engine. A part not asked for, or that the engine cannot do
/// here, is `None`, and `notes` says why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecoveryResult {
    /// What an acknowledged write promises, as the engine is configured.
    pub durability: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash: Option<CrashResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<RestartResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupResult>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Inserts at a fixed rate, the engine killed with SIGKILL under them, restarted, and
/// every insert read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrashResult {
    /// What was killed, and how.
    pub killed: String,
    pub write_rate: f64,
    pub write_concurrency: usize,
    /// From the first insert sent to the kill.
    pub kill_after_s: f64,
    /// Inserts sent before the kill.
    pub sent: u64,
    /// Inserts the engine acknowledged before the kill.
    pub acknowledged: u64,
    /// Acknowledged inserts not found after the restart: what the engine lost.
    pub lost: u64,
    /// The first few lost ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost_ids: Vec<u64>,
    /// Inserts sent and never acknowledged (in flight at the kill, or failed): how many
    /// there were and how many the restarted engine holds anyway.
    pub unacknowledged: u64,
    pub unacknowledged_found: u64,
    /// Records the engine counted just before the inserts and after the restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records_before: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records_after: Option<u64>,
    /// From the launcher's start until the engine answered and held dbbench's collection.
    pub recovery_s: f64,
}

/// The engine stopped cleanly and started over its data, timed to the first correct
/// answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestartResult {
    /// How it was stopped and started.
    pub how: String,
    /// From the start until the first query returned the ids it returned before the stop.
    pub seconds: f64,
    /// Records and bytes the engine held (bytes as its load reported them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_bytes: Option<u64>,
    /// Queries checked after the restart, and how many returned what they returned before.
    pub queries: usize,
    pub queries_matched: usize,
}

/// A backup with the engine's own tool, restored, and checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupResult {
    pub tool: String,
    pub backup_s: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// How the backup was damaged before the restore, when the workload asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub damaged: Option<String>,
    /// The restore's time; `None` when it failed (then `verified` is false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_s: Option<f64>,
    /// The restored collection holds as many records as before the backup and every
    /// checked query returns the same ids.
    pub verified: bool,
    /// What was checked, or what failed.
    pub verification: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records_before: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records_after: Option<u64>,
    pub queries: usize,
    pub queries_matched: usize,
}

/// A stream phase: writes and searches at fixed rates at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamResult {
    pub write_rate: f64,
    pub search_rate: f64,
    /// Workers sending the writes and the searches (each its own).
    pub write_concurrency: usize,
    pub search_concurrency: usize,
    /// Requests planned: writes and searches.
    pub writes: u64,
    pub searches: u64,
    /// Records live when the phase started and when it ended.
    pub records_live_before: u64,
    pub records_live_after: u64,
    /// Held-out records not yet inserted when it ended.
    pub held_out_left: u64,
    pub checkpoints: Vec<Checkpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freshness: Option<Freshness>,
}

/// One checkpoint window of a stream phase (the requests due in it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// 1-based.
    pub index: usize,
    /// End of the window, seconds from the phase's start.
    pub end_s: f64,
    /// Records live at the window's end, by the acknowledged writes.
    pub records_live: u64,
    /// Inserts and deletes acknowledged by then (in this run).
    pub inserted: u64,
    pub deleted: u64,
    pub search: CheckpointLatency,
    pub write: CheckpointLatency,
    /// Mean recall@k of the window's searches, each against the records live when it was
    /// sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recall_at_k: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointLatency {
    pub count: u64,
    pub errors: u64,
    pub latency_ms: LatencySummary,
}

/// How soon an acknowledged insert was returned by a search with its own vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Freshness {
    /// Inserts probed: every `probe_every`-th acknowledged one, up to `MAX_PROBES` (8)
    /// at once.
    pub probes: u64,
    /// Sampled inserts not probed because 8 probes were running.
    pub skipped: u64,
    pub probe_every: u64,
    pub visible: u64,
    /// Visible probes whose first search returned the record: for those, the lag is an
    /// upper bound (the time until that search was sent).
    pub visible_first_try: u64,
    /// Not returned within `visibility_bound_s` of the acknowledgement.
    pub not_visible: u64,
    /// Probes whose search failed.
    pub failed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_visible_share: Option<f64>,
    /// From the acknowledgement to the send of the first search that returned the record,
    /// over the visible probes (for those seen at the first search, no more than the
    /// delay before it was sent).
    pub lag_ms: LatencySummary,
    pub probe_k: usize,
    pub probe_interval_ms: f64,
    pub visibility_bound_s: f64,
    /// What the driver's writes promise about visibility, as configured.
    pub write_visibility: String,
}

fn first_repetition() -> u32 {
    1
}

/// One setting of an engine's search-effort knob.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EffortStep {
    /// The phase's name in the workload.
    pub phase: String,
    /// The engine-neutral effort value (absent for values of `engine_effort`, and for an
    /// engine that searches exactly).
    pub effort: Option<u64>,
    /// The engine's knob (`ef_search`, `hnsw_ef`, `num_candidates`, `probes`); absent for
    /// an engine that searches exactly, which has one step.
    pub knob: Option<String>,
    pub value: Option<u64>,
}

impl EffortStep {
    /// The step in a sweep result's name: "effort=40" (the same for every engine at the
    /// same effort), "ef_search=40" for an engine's own values, or "exact".
    pub fn label(&self) -> String {
        match self.effort {
            Some(e) if self.knob.is_some() => format!("effort={e}"),
            _ => self.setting(),
        }
    }

    /// "ef_search=40", or "exact".
    pub fn setting(&self) -> String {
        match (&self.knob, self.value) {
            (Some(k), Some(v)) => format!("{k}={v}"),
            _ => "exact".into(),
        }
    }
}

/// How a tuned phase's setting was found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tuning {
    /// The recall@k every search op of the phase had to reach on the tuning split.
    pub target_recall: f64,
    /// The setting measured: the least value that reached the target, or, when none
    /// did, the highest one tried.
    pub chosen: EffortStep,
    /// Whether the chosen setting reached the target on the tuning split.
    pub reached: bool,
    /// At the chosen setting, the lowest recall@k over the phase's ops on the tuning split.
    pub tuning_recall: Option<f64>,
    /// The lowest recall@k over the phase's ops in this (held-out) measurement.
    pub heldout_recall: Option<f64>,
    pub tuning_queries: usize,
    pub heldout_queries: usize,
    /// Every setting tried, in the order tried (a bounded search over the ladder).
    pub steps: Vec<TuningStep>,
}

impl Tuning {
    /// The verdict in words: "ef_search=48: recall 0.953 on tuning, 0.949 held out", or
    /// "not reached: best recall 0.930 at ef_search=1000".
    pub fn summary(&self) -> String {
        let r = crate::format::ratio;
        if self.reached {
            let held = self.heldout_recall.map(|h| format!(", {h:.3} held out")).unwrap_or_default();
            format!("{}: recall {} on the tuning queries{held}", self.chosen.setting(), r(self.tuning_recall))
        } else {
            let best = self
                .steps
                .iter()
                .filter(|s| s.recall.is_some())
                .max_by(|a, b| a.recall.partial_cmp(&b.recall).unwrap_or(std::cmp::Ordering::Equal));
            match best {
                Some(b) => format!(
                    "target {} not reached: best recall {} at {}",
                    self.target_recall,
                    r(b.recall),
                    b.step.setting()
                ),
                None => format!("target {} not reached: no recall measured", self.target_recall),
            }
        }
    }
}

/// One setting tried by the tuner: a pass over the tuning queries, each op in turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuningStep {
    pub step: EffortStep,
    /// The lowest recall@k over the ops: what the tuner compares with the target.
    pub recall: Option<f64>,
    pub ops: Vec<TuningOp>,
}

/// One op's figures in one tuning pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuningOp {
    pub label: String,
    pub count: u64,
    pub errors: u64,
    pub recall_at_k: Option<f64>,
    pub ndcg_at_10: Option<f64>,
    pub throughput_ops_s: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl PhaseResult {
    /// The phase's name, with `#N` for repetitions after the first.
    pub fn display_name(&self) -> String {
        match self.repetition {
            0 | 1 => self.name.clone(),
            n => format!("{}#{n}", self.name),
        }
    }
}

/// How a phase sent its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleMode {
    /// `concurrency` workers, each sending its next request when the last one completes.
    Closed,
    /// Requests sent at `rate`, each timed from its intended start.
    Open,
}

impl ScheduleMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleMode::Closed => "closed",
            ScheduleMode::Open => "open",
        }
    }
}

impl std::fmt::Display for ScheduleMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScheduleInfo {
    /// "closed" (concurrency) or "open" (rate).
    pub mode: ScheduleMode,
    pub concurrency: usize,
    pub rate: Option<f64>,
    pub arrival: Option<String>,
    /// Planned duration in seconds, or planned requests.
    pub duration_s: Option<f64>,
    pub requests: Option<u64>,
    /// OS threads the workers ran on, each with its own async runtime (worker `w` on
    /// thread `w % client_threads`). Absent in runs made before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_threads: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RateResult {
    pub target_ops_s: f64,
    pub achieved_ops_s: f64,
    /// False when the engine could not keep up (achieved < 95% of target, or requests
    /// due in the phase were never sent).
    pub sustained: bool,
    /// Requests that fell due but were never sent before the phase's hard stop.
    pub unsent: u64,
}

/// Whether an op ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpStatus {
    /// Measured (its requests may still have failed: see `errors`).
    Ok,
    /// Not run: the driver cannot do it; `note` says why.
    Unsupported,
}

impl OpStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OpStatus::Ok => "ok",
            OpStatus::Unsupported => "unsupported",
        }
    }
}

impl std::fmt::Display for OpStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpResult {
    /// Op kind: knn, text, hybrid, get, insert, update, delete, scan, read_modify_write.
    pub op: OpKind,
    pub label: String,
    /// "ok", or "unsupported" (not run; see note).
    pub status: OpStatus,
    pub note: Option<String>,
    /// Results asked for (expand: its `max_results`).
    pub k: Option<usize>,
    pub filter: Option<String>,
    /// expand: the seeds it starts from and the links it walks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expand: Option<ExpandInfo>,
    pub params: serde_json::Map<String, serde_json::Value>,
    /// Which of `params` this engine applied and which it does not read (not applicable);
    /// absent when the op has no params, and in results written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param_use: Option<ParamUse>,
    /// Successful requests.
    pub count: u64,
    /// Failed requests.
    pub errors: u64,
    /// Successful requests per second of the phase.
    pub throughput_ops_s: f64,
    /// From intended start (open loop) or send (closed loop) to completion, ok requests.
    pub latency_ms: LatencySummary,
    /// From send to completion, ok requests.
    pub service_time_ms: LatencySummary,
    /// Open loop: how late requests were sent after they fell due.
    pub schedule_lag_ms: Option<LatencySummary>,
    #[serde(flatten)]
    pub quality: QualitySummary,
    pub error_kinds: BTreeMap<String, ErrorTallyResult>,
    pub histograms: Histograms,
    pub intervals: Vec<IntervalResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorTallyResult {
    pub count: u64,
    pub samples: Vec<String>,
}

impl From<&ErrorTally> for ErrorTallyResult {
    fn from(t: &ErrorTally) -> Self {
        ErrorTallyResult { count: t.count, samples: t.samples.clone() }
    }
}

/// Base64 of HdrHistogram V2-deflate encodings, values in nanoseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Histograms {
    pub latency: String,
    pub service_time: String,
    pub error_latency: Option<String>,
    pub schedule_lag: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IntervalResult {
    /// Seconds from the phase start (the interval [t_s, t_s + 1)).
    pub t_s: u64,
    pub ok: u64,
    pub errors: u64,
    pub p99_ms: Option<f64>,
    /// This second's latency histogram (ok requests), base64 V2-deflate, nanoseconds.
    pub histogram: String,
}

/// What an op result needs besides its metrics.
pub struct OpDescription {
    pub kind: OpKind,
    pub label: String,
    pub note: Option<String>,
    pub k: Option<usize>,
    pub filter: Option<String>,
    pub expand: Option<ExpandInfo>,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub param_use: Option<ParamUse>,
}

impl OpResult {
    pub fn measured(d: OpDescription, m: &OpMetrics, elapsed_s: f64, open_loop: bool) -> Self {
        let count = m.ok_count();
        OpResult {
            op: d.kind,
            label: d.label,
            status: OpStatus::Ok,
            note: d.note,
            k: d.k,
            filter: d.filter,
            expand: d.expand,
            params: d.params,
            param_use: d.param_use,
            count,
            errors: m.error_count(),
            throughput_ops_s: if elapsed_s > 0.0 { count as f64 / elapsed_s } else { 0.0 },
            latency_ms: LatencySummary::of(&m.ok_latency),
            service_time_ms: LatencySummary::of(&m.ok_service),
            schedule_lag_ms: open_loop.then(|| LatencySummary::of(&m.schedule_lag)),
            quality: m.quality.summary(d.k.unwrap_or(0)),
            error_kinds: m.errors.iter().map(|(k, t)| (k.as_str().to_string(), t.into())).collect(),
            histograms: Histograms {
                latency: encode_histogram(&m.ok_latency),
                service_time: encode_histogram(&m.ok_service),
                error_latency: (m.error_count() > 0).then(|| encode_histogram(&m.error_latency)),
                schedule_lag: open_loop.then(|| encode_histogram(&m.schedule_lag)),
            },
            intervals: m
                .intervals
                .iter()
                .enumerate()
                .map(|(t, i)| IntervalResult {
                    t_s: t as u64,
                    ok: i.ok,
                    errors: i.errors,
                    p99_ms: (i.ok > 0).then(|| i.latency.value_at_quantile(0.99) as f64 / 1e6),
                    histogram: encode_histogram(&i.latency),
                })
                .collect(),
        }
    }

    pub fn unsupported(d: OpDescription, why: String) -> Self {
        let empty = encode_histogram(&crate::metrics::new_histogram(crate::metrics::SIGFIG));
        OpResult {
            op: d.kind,
            label: d.label,
            status: OpStatus::Unsupported,
            note: Some(why),
            k: d.k,
            filter: d.filter,
            expand: d.expand,
            params: d.params,
            param_use: d.param_use,
            count: 0,
            errors: 0,
            throughput_ops_s: 0.0,
            latency_ms: LatencySummary::default(),
            service_time_ms: LatencySummary::default(),
            schedule_lag_ms: None,
            quality: QualitySummary::default(),
            error_kinds: BTreeMap::new(),
            histograms: Histograms {
                latency: empty.clone(),
                service_time: empty,
                error_latency: None,
                schedule_lag: None,
            },
            intervals: Vec::new(),
        }
    }
}

impl RunResults {
    /// Write `results.json` into `dir` atomically (temp file + rename).
    pub fn write(&self, dir: &Path) -> Result<PathBuf> {
        let path = dir.join(RESULTS_FILE);
        let json =
            serde_json::to_vec_pretty(self).map_err(|e| Error::Runtime(format!("cannot serialize results: {e}")))?;
        write_atomic(&path, &json)?;
        Ok(path)
    }

    /// Read a results.json (or a run folder holding one), refusing unknown schema versions.
    pub fn read(path: &Path) -> Result<Self> {
        let file = if path.is_dir() { path.join(RESULTS_FILE) } else { path.to_path_buf() };
        let text =
            std::fs::read_to_string(&file).map_err(|e| Error::Input(format!("cannot read {}: {e}", file.display())))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::Input(format!("{}: not valid JSON: {e}", file.display())))?;
        match value.get("schema_version").and_then(|v| v.as_u64()) {
            Some(v) if v == SCHEMA_VERSION as u64 => {}
            Some(v) => {
                return Err(Error::Input(format!(
                    "{}: schema_version {v} is not supported by this dbbench (it reads {SCHEMA_VERSION})",
                    file.display()
                )))
            }
            None => {
                return Err(Error::Input(format!("{}: no schema_version: not a dbbench results file", file.display())))
            }
        }
        serde_json::from_value(value).map_err(|e| Error::Input(format!("{}: {e}", file.display())))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;

    /// A committed results file read into the typed schema and written back: the same
    /// JSON, keys in the same order. `exact` files were written by `RunResults::write`
    /// and must come back byte for byte.
    fn round_trips(text: &str, exact: bool) {
        let typed: RunResults = serde_json::from_str(text).unwrap();
        let written = serde_json::to_string_pretty(&typed).unwrap();
        let mut original: serde_json::Value = serde_json::from_str(text).unwrap();
        // The one field a reader fills in: files written before `repetition` existed read
        // as repetition 1, and are written with it (the last field of a phase).
        for engine in original["engines"].as_array_mut().unwrap() {
            for phase in engine["phases"].as_array_mut().unwrap() {
                let phase = phase.as_object_mut().unwrap();
                if !phase.contains_key("repetition") {
                    phase.insert("repetition".into(), 1.into());
                }
            }
        }
        assert_eq!(written, serde_json::to_string_pretty(&original).unwrap(), "same fields, values and order");
        if exact && written != text {
            let at =
                written.bytes().zip(text.bytes()).position(|(a, b)| a != b).unwrap_or(written.len().min(text.len()));
            let around = |s: &str| s.get(at.saturating_sub(120)..(at + 120).min(s.len())).unwrap_or("").to_string();
            panic!("not byte for byte at {at}:\nwritten: {}\ncommitted: {}", around(&written), around(text));
        }
    }

    #[test]
    fn the_report_fixture_writes_back_unchanged() {
        round_trips(include_str!("../../tests/fixtures/report-results.json"), false);
    }

    #[test]
    fn the_ci_baseline_writes_back_byte_for_byte() {
        round_trips(include_str!("../../results/baselines/ci-sqlite/results.json"), true);
    }

    #[test]
    fn op_kind_status_and_schedule_mode_keep_their_spelling() {
        let text = include_str!("../../tests/fixtures/report-results.json");
        let r: RunResults = serde_json::from_str(text).unwrap();
        let ops: Vec<&OpResult> = r.engines.iter().flat_map(|e| &e.phases).flat_map(|p| &p.ops).collect();
        assert!(ops.iter().any(|o| o.op == OpKind::Hybrid && o.status == OpStatus::Ok));
        assert!(r.engines.iter().flat_map(|e| &e.phases).all(|p| p.schedule.mode == ScheduleMode::Closed));
        assert_eq!(serde_json::to_value(OpStatus::Unsupported).unwrap(), "unsupported");
        assert_eq!(serde_json::to_value(ScheduleMode::Open).unwrap(), "open");
        assert_eq!(serde_json::to_value(OpKind::ReadModifyWrite).unwrap(), "read_modify_write");
    }
}
