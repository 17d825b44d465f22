//! The workload file as serde types, exactly as a user writes it.
//!
//! Every struct denies unknown keys, so a typo is an error with its file:line:column
//! rather than a silently ignored setting. Validation into a runnable `Plan` lives in
//! `plan.rs`; nothing here contacts an engine or reads a dataset.

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

use crate::driver::{AttrKind, Metric, OpKind};

mod plan;
mod requirements;

pub use crate::env::expand_env;
pub use plan::*;
pub use requirements::*;

/// A whole workload file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadFile {
    pub workload: WorkloadMeta,
    pub dataset: Spanned<DatasetSpec>,
    #[serde(default)]
    pub attributes: Vec<Spanned<AttributeSpec>>,
    /// Spans on the names, not the tables: a table made only by a dotted header
    /// (`[engines.x.settings]`) has no span of its own.
    pub engines: IndexMap<Spanned<String>, EngineSpec>,
    #[serde(default)]
    pub load: LoadSpec,
    pub phases: Vec<Spanned<PhaseSpec>>,
    /// What the job needs; the report judges each engine against it.
    #[serde(default)]
    pub requirements: Option<RequirementsSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadMeta {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default = "default_seed")]
    pub seed: u64,
}

fn default_seed() -> u64 {
    42
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetSource {
    /// A BEIR collection folder: corpus.jsonl, queries.jsonl, qrels/*.tsv, plus vectors.
    Beir,
    /// Vectors only, from .npy or .fvecs files.
    Vectors,
    /// Generated from the seed.
    Synthetic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fallback {
    /// Stop with an error when the dataset's files are missing.
    #[default]
    Error,
    /// Use the `[dataset.synthetic]` generator instead, and say so in the results.
    Synthetic,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    pub source: DatasetSource,
    /// Name shown in results (defaults to the folder or file name).
    #[serde(default)]
    pub name: Option<String>,
    /// beir: the collection folder; vectors: the folder holding the files.
    #[serde(default)]
    pub path: Option<String>,
    /// beir: document embeddings (.npy or .fvecs), row i = corpus line i.
    #[serde(default)]
    pub corpus_vectors: Option<String>,
    /// Query embeddings, row i = query line i (beir) or query i (vectors).
    #[serde(default)]
    pub query_vectors: Option<String>,
    /// beir: relevance judgments, relative to `path`.
    #[serde(default)]
    pub qrels: Option<String>,
    /// vectors: the base vectors file.
    #[serde(default)]
    pub base_vectors: Option<String>,
    #[serde(default)]
    pub metric: Option<Metric>,
    /// Keep at most this many documents (the first ones). Queries whose judged documents
    /// are all cut keep no judgments.
    #[serde(default)]
    pub max_docs: Option<usize>,
    /// Run every engine at each of these dataset sizes in turn (ascending), each a
    /// prefix of the data (the first N documents), loaded into a fresh collection.
    #[serde(default)]
    pub sizes: Option<Vec<usize>>,
    /// Hold back this share of the records, in (0, 1): the load leaves them out, and the
    /// workload's inserts insert them (their real vectors, text and attributes) in a seeded
    /// order, so recall while writing is scored against the records live at each search.
    /// The held-out records are the last ones of the data.
    #[serde(default)]
    pub stream: Option<Spanned<f64>>,
    /// Links between records, for the `expand` op: generated from the seed, or read
    /// from a file of document id pairs.
    #[serde(default)]
    pub links: Option<Spanned<LinksSpec>>,
    /// Keep at most this many queries (the first ones).
    #[serde(default)]
    pub max_queries: Option<usize>,
    /// Keep a sample of this many queries, drawn with the workload's seed (in file order).
    #[serde(default)]
    pub query_sample: Option<usize>,
    #[serde(default)]
    pub fallback: Fallback,
    /// Said when the files are missing (and not replaced by synthetic data): how to get
    /// them, e.g. the command that builds them.
    #[serde(default)]
    pub missing_hint: Option<String>,
    #[serde(default)]
    pub synthetic: SyntheticSpec,
}

/// `[dataset.links]`: `degree = 3` (generated: each record links to 1..=2*degree-1
/// others, half of them Zipf-distributed hubs; see `data::links::Links::generate`) or
/// `file = "links.tsv"` (document id pairs, relative to `dataset.path`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinksSpec {
    #[serde(default)]
    pub degree: Option<usize>,
    #[serde(default)]
    pub file: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyntheticSpec {
    pub docs: usize,
    pub queries: usize,
    pub dim: usize,
    pub metric: Metric,
    /// Gaussian clusters the vectors are drawn around.
    pub clusters: usize,
    /// Standard deviation of a vector around its cluster centre (centres are unit-norm).
    pub spread: f32,
    pub vocabulary: usize,
    pub words_per_doc: usize,
    pub words_per_query: usize,
    /// Exponent of the Zipf law words are drawn from.
    pub zipf_exponent: f64,
}

impl Default for SyntheticSpec {
    fn default() -> Self {
        SyntheticSpec {
            docs: 10_000,
            queries: 200,
            dim: 64,
            metric: Metric::Cosine,
            clusters: 32,
            spread: 0.25,
            vocabulary: 5_000,
            words_per_doc: 40,
            words_per_query: 3,
            zipf_exponent: 1.0,
        }
    }
}

/// A metadata attribute of every record: drawn from the seed (so that filters have a
/// known selectivity on any dataset), or read from the dataset (`from`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeSpec {
    pub name: String,
    pub kind: AttrKind,
    /// keyword: the values (drawn with `weights`, or uniformly).
    #[serde(default)]
    pub values: Option<Vec<String>>,
    /// keyword: relative weights of `values`.
    #[serde(default)]
    pub weights: Option<Vec<f64>>,
    /// keyword: instead of `values`, `cardinality` values named `v0`, `v1`, ... drawn uniformly.
    #[serde(default)]
    pub cardinality: Option<u32>,
    /// integer: uniform in [min, max] (inclusive).
    #[serde(default)]
    pub min: Option<i64>,
    #[serde(default)]
    pub max: Option<i64>,
    /// Read from the dataset instead: the key of each document's `metadata` object in a
    /// BEIR `corpus.jsonl` (e.g. "lexname"). Takes no values/weights/cardinality/min/max.
    #[serde(default)]
    pub from: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSpec {
    /// Driver kind; defaults to the table's name.
    #[serde(default)]
    pub driver: Option<String>,
    /// Connection URL; `${VAR}` and `${VAR:-default}` are expanded from the environment.
    #[serde(default)]
    pub url: Option<String>,
    /// Set to false to keep the engine in the file but not run it.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The `services/up.sh` entry that runs this engine on this machine (its pid file is
    /// where resources are sampled, and what a recovery phase stops and starts); defaults
    /// to the driver kind ("elasticsearch-cluster" for the 3-node Elasticsearch).
    #[serde(default)]
    pub service: Option<String>,
    /// The driver's own settings, parsed by the driver.
    #[serde(default)]
    pub settings: toml::Table,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoadSpec {
    pub batch_size: usize,
    /// Batches in flight at once.
    pub concurrency: usize,
    /// Drop dbbench's collection when the run ends (false keeps it for inspection).
    pub cleanup: bool,
}

impl Default for LoadSpec {
    fn default() -> Self {
        LoadSpec { batch_size: 500, concurrency: 2, cleanup: true }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arrival {
    /// Evenly spaced: request i is due at start + i / rate.
    #[default]
    Fixed,
    /// Exponential gaps with mean 1 / rate.
    Poisson,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseSpec {
    pub name: String,
    /// How long to measure (e.g. "30s", "2m"). Give this or `requests`.
    #[serde(default)]
    pub duration: Option<String>,
    /// How many requests to measure. Give this or `duration`.
    #[serde(default)]
    pub requests: Option<u64>,
    /// Run the same mix for this long first and throw the numbers away ("0s": none).
    #[serde(default)]
    pub warmup: Option<String>,
    /// Workers (connections) issuing requests.
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// Open loop: requests per second to schedule. Absent: closed loop.
    #[serde(default)]
    pub rate: Option<f64>,
    #[serde(default)]
    pub arrival: Option<Arrival>,
    /// Search effort, engine-neutral: each driver maps a value to its own knob (pgvector
    /// `ef_search` or `probes`, Qdrant `hnsw_ef`, Elasticsearch `num_candidates`, Chroma's
    /// collection `ef_search`). Alone: a sweep, each value its own measured step. With
    /// `target_recall`: the ladder the tuner climbs.
    #[serde(default)]
    pub effort: Option<Spanned<Vec<i64>>>,
    /// Per engine (by its name in `[engines]`): values of that engine's own knob, used in
    /// place of `effort` for it.
    #[serde(default)]
    pub engine_effort: IndexMap<Spanned<String>, Spanned<Vec<i64>>>,
    /// Tune each engine to the least effort whose recall@k reaches this on a tuning split
    /// of the queries (every search op of the phase must reach it), then measure the
    /// phase at that setting on the held-out queries.
    #[serde(default)]
    pub target_recall: Option<Spanned<f64>>,
    /// With `target_recall`: the share of the queries the tuner uses (the rest are held
    /// out for the measurement). Default 0.5.
    #[serde(default)]
    pub tuning_share: Option<Spanned<f64>>,
    /// A streaming phase: writes and searches at fixed rates at the same time, with
    /// checkpoints and freshness probes (needs `dataset.stream`).
    #[serde(default)]
    pub stream: Option<Spanned<StreamSpec>>,
    /// A recovery phase: writes while the engine is killed, restart time, backup and
    /// restore (no ops of its own).
    #[serde(default)]
    pub recovery: Option<Spanned<RecoverySpec>>,
    #[serde(default)]
    pub ops: Vec<Spanned<OpSpec>>,
}

/// `[phases.recovery]`: what happens to acknowledged writes when the engine is killed,
/// how long it takes to answer again, and whether its own backup tool gives back what
/// it backed up.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoverySpec {
    /// Kill the engine with SIGKILL while inserts run, restart it, read every
    /// acknowledged insert back (default true).
    #[serde(default)]
    pub crash: Option<bool>,
    /// Inserts per second while the kill comes (default 200).
    #[serde(default)]
    pub write_rate: Option<f64>,
    /// Workers sending them (default 8).
    #[serde(default)]
    pub write_concurrency: Option<i64>,
    /// How long after the first insert the kill comes (default "3s").
    #[serde(default)]
    pub kill_after: Option<String>,
    /// Stop the engine cleanly, start it over its data, time it to the first correct
    /// answer (default true).
    #[serde(default)]
    pub restart: Option<bool>,
    /// Back up with the engine's own tool, restore, check the answers (default true).
    #[serde(default)]
    pub backup: Option<bool>,
    /// "none" (default) or "truncate": cut the backup's largest file in half before the
    /// restore, to see the verification catch it.
    #[serde(default)]
    pub damage_backup: Option<String>,
    /// Queries whose answers must come back the same after a restart or a restore
    /// (default 20, kNN and, where the engine ranks text, text).
    #[serde(default)]
    pub verify_queries: Option<i64>,
    /// How long the engine may take to answer again (default "300s").
    #[serde(default)]
    pub restart_timeout: Option<String>,
    /// The launcher and stopper of server engines, run with the engine's name
    /// (defaults "services/up.sh" and "services/down.sh", from the current folder).
    #[serde(default)]
    pub up: Option<String>,
    #[serde(default)]
    pub down: Option<String>,
}

/// `[phases.stream]`: the phase's write ops (insert, update, delete, in their weights) run
/// open loop at `write_rate` and its search ops (knn, text, hybrid) at `search_rate`, both
/// timed from when each request was due, until the phase's writes are done.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSpec {
    /// Writes per second.
    pub write_rate: f64,
    /// Searches per second.
    pub search_rate: f64,
    /// Held-out records this phase inserts (default: every one still held out); the
    /// phase writes until they are in.
    #[serde(default)]
    pub records: Option<i64>,
    /// Or: this many write requests in all (needed when the phase has no insert).
    #[serde(default)]
    pub writes: Option<i64>,
    /// Of the phase's `concurrency` workers, how many send the writes (default half); the
    /// others send the searches, so a write that waits (for a refresh, say) never holds
    /// up a search.
    #[serde(default)]
    pub write_concurrency: Option<i64>,
    /// Equal windows of the phase, each reported on its own (default 10).
    #[serde(default)]
    pub checkpoints: Option<i64>,
    /// Probe how soon inserts become searchable (default true).
    #[serde(default)]
    pub freshness: Option<bool>,
    /// Probe every n-th acknowledged insert (default 10).
    #[serde(default)]
    pub probe_every: Option<i64>,
    /// Time between two searches of one probe (default "10ms").
    #[serde(default)]
    pub probe_interval: Option<String>,
    /// A probed insert not found by then counts as not visible (default "5s").
    #[serde(default)]
    pub visibility_bound: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyChoice {
    #[default]
    Uniform,
    /// Zipfian over ids (YCSB's scrambled zipfian), skew `zipf_theta`.
    Zipfian,
    /// Zipfian over recency: the newest records are the hottest (YCSB "latest").
    Latest,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpSpec {
    pub op: OpKind,
    /// Name in results (defaults to the op kind, with a number when repeated).
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default = "one")]
    pub weight: f64,
    /// Results per search.
    #[serde(default)]
    pub k: Option<usize>,
    #[serde(default)]
    pub filter: Option<Spanned<FilterSpec>>,
    /// get, update, scan, read_modify_write: how ids are chosen.
    #[serde(default)]
    pub keys: KeyChoice,
    #[serde(default)]
    pub zipf_theta: Option<f64>,
    /// scan: records per scan.
    #[serde(default)]
    pub scan_length: Option<usize>,
    /// update, read_modify_write: the attribute written (an integer one).
    #[serde(default)]
    pub field: Option<String>,
    /// Engine search parameters, passed to every engine. Each driver declares the ones it
    /// reads (`DriverKind::params`); the plan refuses one that no engine of the workload
    /// reads, or a value of the wrong type, and results record per engine which applied.
    #[serde(default)]
    pub params: IndexMap<Spanned<String>, Spanned<toml::Value>>,
    /// knn, text, hybrid, expand: which query each request asks.
    #[serde(default)]
    pub query_order: QueryOrder,
    /// expand: seed records found by kNN (with the op's filter).
    #[serde(default)]
    pub seeds: Option<usize>,
    /// expand: links walked from each seed.
    #[serde(default)]
    pub hops: Option<usize>,
    /// expand: records returned at most (seeds first, then by hops and seed rank).
    #[serde(default)]
    pub max_results: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryOrder {
    /// A random query per request (seeded).
    #[default]
    Random,
    /// Queries in file order, shared by the workers: the first N requests ask each of N
    /// queries exactly once, so quality is the mean over the whole query set.
    Cycle,
}

fn one() -> f64 {
    1.0
}

/// A filter as written in TOML:
/// `{ field = "lang", eq = "en" }`, `{ field = "lang", in = ["en", "de"] }`,
/// `{ field = "year", gte = 2000, lt = 2010 }`, `{ and = [ ... ] }`, `{ or = [ ... ] }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterSpec {
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub eq: Option<toml::Value>,
    #[serde(default, rename = "in")]
    pub in_: Option<Vec<toml::Value>>,
    #[serde(default)]
    pub gte: Option<i64>,
    #[serde(default)]
    pub gt: Option<i64>,
    #[serde(default)]
    pub lt: Option<i64>,
    #[serde(default)]
    pub lte: Option<i64>,
    #[serde(default)]
    pub and: Option<Vec<FilterSpec>>,
    #[serde(default)]
    pub or: Option<Vec<FilterSpec>>,
}
