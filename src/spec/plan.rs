//! Validation of a workload file into a `Plan`: every value checked, every default
//! filled in, every path resolved against the workload file's folder. A `Plan` is what
//! the runner executes and what `dbbench validate` prints.

use std::collections::HashSet;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::*;
use crate::driver::{self, AttrValue, AttributeDef, DriverKind, EngineConfig, Filter, SearchParams};
use crate::error::{Error, Result};

/// A validated workload, ready to run.
#[derive(Debug)]
pub struct Plan {
    pub workload: WorkloadInfo,
    pub dataset: DatasetPlan,
    pub attributes: Vec<AttributePlan>,
    pub engines: Vec<EnginePlan>,
    pub load: LoadSpec,
    pub phases: Vec<PhasePlan>,
    /// The validated `[requirements]`, when the workload states them.
    pub requirements: Option<Requirements>,
}

#[derive(Debug, Clone)]
pub struct WorkloadInfo {
    pub name: String,
    pub description: Option<String>,
    pub file: PathBuf,
    /// SHA-256 of the workload file's bytes.
    pub sha256: String,
    pub seed: u64,
}

#[derive(Debug, Clone)]
pub struct DatasetPlan {
    pub source: DatasetSource,
    pub name: Option<String>,
    pub path: Option<PathBuf>,
    pub corpus_vectors: Option<PathBuf>,
    pub query_vectors: Option<PathBuf>,
    pub qrels: Option<PathBuf>,
    pub base_vectors: Option<PathBuf>,
    pub metric: Option<Metric>,
    pub max_docs: Option<usize>,
    /// Dataset sizes to run at in turn, ascending, each a prefix; empty: the whole data once.
    pub sizes: Vec<usize>,
    /// Share of the records held out of the load, for inserts to insert.
    pub stream: Option<f64>,
    /// Links between records, for expand.
    pub links: Option<LinksPlan>,
    pub max_queries: Option<usize>,
    pub query_sample: Option<usize>,
    pub missing_hint: Option<String>,
    pub fallback: Fallback,
    pub synthetic: SyntheticSpec,
}

/// Where a dataset's links come from.
#[derive(Debug, Clone, PartialEq)]
pub enum LinksPlan {
    /// Generated from the workload's seed, `degree` out-links a record on average.
    Generated { degree: usize },
    /// Read from a file of document id pairs.
    File(PathBuf),
}

/// The most links a record may draw when they are generated.
pub const MAX_LINK_DEGREE: usize = 100;
/// The most seeds an expand may start from.
pub const MAX_SEEDS: usize = 1000;

/// What an expand op asks beyond its query (its `k` is `max_results`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpandPlan {
    pub seeds: usize,
    pub hops: usize,
}

impl DatasetPlan {
    /// A plan for seeded synthetic data of this shape (tests, benchmarks, examples).
    pub fn synthetic(spec: SyntheticSpec) -> Self {
        DatasetPlan {
            source: DatasetSource::Synthetic,
            name: None,
            path: None,
            corpus_vectors: None,
            query_vectors: None,
            qrels: None,
            base_vectors: None,
            metric: None,
            max_docs: None,
            sizes: Vec::new(),
            stream: None,
            links: None,
            max_queries: None,
            query_sample: None,
            missing_hint: None,
            fallback: Fallback::Error,
            synthetic: spec,
        }
    }
}

#[derive(Debug, Clone)]
pub enum AttributeGen {
    Keyword {
        values: Vec<String>,
        weights: Vec<f64>,
    },
    Integer {
        min: i64,
        max: i64,
    },
    /// Read from each document's `metadata.<field>` in the dataset.
    Data {
        field: String,
    },
}

#[derive(Debug, Clone)]
pub struct AttributePlan {
    pub def: AttributeDef,
    pub gen: AttributeGen,
    /// Where it is declared (`file:line`), for errors found when the dataset is read.
    pub origin: String,
}

pub struct EnginePlan {
    pub config: EngineConfig,
    pub kind: &'static DriverKind,
    /// Line of the `[engines.NAME]` table, for messages.
    pub line: usize,
    /// The `services/up.sh` entry that runs it here (`service`, or the driver kind).
    pub service: String,
}

impl std::fmt::Debug for EnginePlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnginePlan").field("name", &self.config.name).field("driver", &self.kind.kind).finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    Duration(Duration),
    Requests(u64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// `concurrency` workers, each sending its next request when the last one returns.
    Closed { concurrency: usize },
    /// Requests due at a fixed rate, sent by up to `concurrency` workers; latency counts
    /// from when each request was due.
    Open { rate: f64, arrival: Arrival, concurrency: usize },
}

impl Schedule {
    pub fn concurrency(&self) -> usize {
        match self {
            Schedule::Closed { concurrency } | Schedule::Open { concurrency, .. } => *concurrency,
        }
    }
}

#[derive(Debug, Clone)]
pub struct PhasePlan {
    pub name: String,
    pub stop: Stop,
    pub warmup: Duration,
    pub schedule: Schedule,
    pub ops: Vec<OpPlan>,
    /// A sweep of search effort, or tuning to a target recall.
    pub effort: Option<EffortPlan>,
    /// A streaming phase: writes and searches at once, in checkpoints (`stop` and
    /// `schedule` are then set when the phase starts, from what is still held out).
    pub stream: Option<StreamPlan>,
    /// A recovery phase (no ops; `stop` and `schedule` are unused).
    pub recovery: Option<RecoveryPlan>,
}

/// How a recovery phase's backup is damaged before the restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    None,
    /// The backup's largest file cut to half its length.
    Truncate,
}

/// What `[phases.recovery]` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveryPlan {
    pub crash: bool,
    pub write_rate: f64,
    pub write_concurrency: usize,
    pub kill_after: Duration,
    pub restart: bool,
    pub backup: bool,
    pub damage: Damage,
    pub verify_queries: usize,
    pub restart_timeout: Duration,
    pub up: std::path::PathBuf,
    pub down: std::path::PathBuf,
}

/// What `[phases.stream]` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamPlan {
    pub write_rate: f64,
    pub search_rate: f64,
    /// Held-out records to insert (`None`: every one still held out when the phase starts).
    pub records: Option<usize>,
    /// Or the write requests in all.
    pub writes: Option<u64>,
    pub checkpoints: usize,
    /// Workers that send writes; the phase's other workers send searches.
    pub write_concurrency: usize,
    pub freshness: bool,
    /// Every n-th acknowledged insert is probed.
    pub probe_every: u64,
    pub probe_interval: Duration,
    pub visibility_bound: Duration,
}

impl StreamPlan {
    /// Write requests of the phase when `held_out` records are still held out, with the
    /// phase's write ops in `weights` (insert share: `insert_weight` of their sum).
    pub fn writes_for(&self, held_out: usize, insert_weight: f64, total_write_weight: f64) -> u64 {
        if let Some(w) = self.writes {
            return w;
        }
        let records = self.records.unwrap_or(held_out).min(held_out) as f64;
        if insert_weight <= 0.0 {
            return 0;
        }
        (records * total_write_weight / insert_weight).floor() as u64
    }
}

/// The values the tuner climbs when a tuned phase names none: wide enough for every
/// engine's knob at k up to 100, with about 40% between neighbours.
pub const DEFAULT_LADDER: [u64; 14] = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1000];

/// What a phase does with search effort.
#[derive(Debug, Clone, PartialEq)]
pub enum EffortMode {
    /// Every value is its own measured step (warmup, then the phase's stop).
    Sweep,
    /// Climb the values for the least one whose recall@k on the tuning split reaches
    /// `target`, then measure the phase there on the held-out queries.
    Tune { target: f64, tuning_share: f64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct EffortPlan {
    pub mode: EffortMode,
    /// Engine-neutral values, ascending.
    pub effort: Vec<u64>,
    /// Per engine: values of its own knob, ascending.
    pub per_engine: std::collections::BTreeMap<String, Vec<u64>>,
}

impl EffortPlan {
    /// The values for `engine`: its own knob values (true), or the engine-neutral ones.
    pub fn values_for(&self, engine: &str) -> (&[u64], bool) {
        match self.per_engine.get(engine) {
            Some(v) => (v, true),
            None => (&self.effort, false),
        }
    }

    pub fn target(&self) -> Option<f64> {
        match self.mode {
            EffortMode::Tune { target, .. } => Some(target),
            EffortMode::Sweep => None,
        }
    }
}

impl PhasePlan {
    pub fn writes(&self) -> bool {
        self.ops.iter().any(|o| o.kind.is_write())
    }
}

#[derive(Debug, Clone)]
pub struct OpPlan {
    pub label: String,
    pub kind: OpKind,
    pub weight: f64,
    pub k: usize,
    pub filter: Option<Filter>,
    pub keys: KeyChoice,
    pub zipf_theta: f64,
    pub scan_length: usize,
    /// Attribute written by update / read_modify_write.
    pub field: Option<String>,
    pub params: SearchParams,
    pub query_order: QueryOrder,
    /// expand: seeds and hops (`k` is then its `max_results`).
    pub expand: Option<ExpandPlan>,
}

/// Command-line overrides applied on top of the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub seed: Option<u64>,
    pub duration: Option<Duration>,
    pub engines: Option<Vec<String>>,
}

const MAX_K: usize = 10_000;

/// Where a value sits in the workload file, for messages.
struct Source<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Source<'_> {
    fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rfind('\n').map(|i| offset - i).unwrap_or(offset + 1);
        (line, column)
    }

    fn error(&self, span: Range<usize>, message: impl Into<String>) -> Error {
        let (line, column) = self.position(span.start);
        Error::Spec { file: self.file.to_path_buf(), line, column, message: message.into() }
    }
}

/// Read, parse and validate a workload file.
pub fn load_plan(path: &Path, overrides: &Overrides) -> Result<Plan> {
    let bytes =
        std::fs::read(path).map_err(|e| Error::Input(format!("cannot read workload file {}: {e}", path.display())))?;
    let text =
        String::from_utf8(bytes.clone()).map_err(|_| Error::Input(format!("{}: not UTF-8 text", path.display())))?;
    let sha256 = hex(&Sha256::digest(&bytes));
    parse_plan(path, &text, sha256, overrides, |k| std::env::var(k).ok())
}

/// Parse and validate workload text (`path` is used for messages and relative paths).
pub fn parse_plan(
    path: &Path,
    text: &str,
    sha256: String,
    overrides: &Overrides,
    env: impl Fn(&str) -> Option<String> + Copy,
) -> Result<Plan> {
    let src = Source { file: path, text };
    let file: WorkloadFile = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        src.error(span, e.message().trim().to_string())
    })?;
    let base_dir = path
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));

    let meta = &file.workload;
    if meta.name.is_empty() || !meta.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(src.error(
            0..0,
            format!(
                "workload.name {:?} must be non-empty letters, digits, '-' or '_' (it names dbbench's collections)",
                meta.name
            ),
        ));
    }

    let attributes = validate_attributes(&src, &file.attributes)?;
    let schema_attrs: Vec<AttributeDef> = attributes.iter().map(|a| a.def.clone()).collect();
    let dataset = validate_dataset(&src, &file.dataset, &base_dir, env)?;
    check_data_attributes(&src, &file.attributes, &dataset)?;
    let engines = validate_engines(&src, &file.engines, &base_dir, overrides, env)?;
    if file.load.batch_size == 0 || file.load.concurrency == 0 {
        return Err(src.error(0..0, "load.batch_size and load.concurrency must be at least 1"));
    }

    if file.phases.is_empty() {
        return Err(src.error(0..0, "at least one [[phases]] table is needed"));
    }
    let mut phases = Vec::new();
    let mut names = HashSet::new();
    for p in &file.phases {
        let phase = validate_phase(&src, p, &schema_attrs, overrides, dataset.stream.is_some())?;
        if !names.insert(phase.name.clone()) {
            return Err(src.error(p.span(), format!("phase name {:?} is used twice", phase.name)));
        }
        phases.push(phase);
    }
    if dataset.stream.is_some() {
        check_stream_updates(&src, &file.phases, &phases)?;
    }
    if dataset.links.is_none() {
        for (p, plan) in file.phases.iter().zip(&phases) {
            if let Some((spec, op)) = p.get_ref().ops.iter().zip(&plan.ops).find(|(_, o)| o.kind == OpKind::Expand) {
                return Err(src.error(
                    spec.span(),
                    format!(
                        "phase {:?}, op {}: expand walks links between records, and the dataset has none: add [dataset.links] with degree = 3 (generated) or file = \"links.tsv\"",
                        plan.name, op.label
                    ),
                ));
            }
        }
    }
    check_params(&src, &file.phases, &file.engines)?;
    check_effort_engines(&src, &file.phases, &file.engines)?;
    let requirements = match &file.requirements {
        Some(r) => Some(super::requirements::validate_requirements(r, &phases, |span, m| src.error(span, m))?),
        None => None,
    };

    Ok(Plan {
        workload: WorkloadInfo {
            name: meta.name.clone(),
            description: meta.description.clone(),
            file: path.to_path_buf(),
            sha256,
            seed: overrides.seed.unwrap_or(meta.seed),
        },
        dataset,
        attributes,
        engines,
        load: file.load,
        phases,
        requirements,
    })
}

fn validate_attributes(src: &Source, specs: &[Spanned<AttributeSpec>]) -> Result<Vec<AttributePlan>> {
    const RESERVED: [&str; 4] = ["id", "text", "embedding", "vector"];
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for s in specs {
        let span = s.span();
        let a = s.get_ref();
        let valid_name = a.name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && a.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid_name || RESERVED.contains(&a.name.as_str()) {
            return Err(src.error(
                span,
                format!(
                    "attribute name {:?}: use lower-case letters, digits and '_', starting with a letter; not one of {RESERVED:?}",
                    a.name
                ),
            ));
        }
        if !seen.insert(a.name.clone()) {
            return Err(src.error(span, format!("attribute {:?} is declared twice", a.name)));
        }
        let gen = match (a.kind, &a.from) {
            (_, Some(field)) => {
                if a.values.is_some()
                    || a.weights.is_some()
                    || a.cardinality.is_some()
                    || a.min.is_some()
                    || a.max.is_some()
                {
                    return Err(src.error(span, format!("attribute {:?}: from = {field:?} reads it from the dataset, so it takes no values/weights/cardinality/min/max", a.name)));
                }
                if field.is_empty() {
                    return Err(src.error(span, format!("attribute {:?}: from = \"\" names no metadata key", a.name)));
                }
                AttributeGen::Data { field: field.clone() }
            }
            (AttrKind::Keyword, None) => {
                if a.min.is_some() || a.max.is_some() {
                    return Err(src.error(span, format!("attribute {:?}: min/max are for integer attributes; a keyword takes values = [...] or cardinality = N", a.name)));
                }
                let values = match (&a.values, a.cardinality) {
                    (Some(v), None) if !v.is_empty() => v.clone(),
                    (None, Some(n)) if n >= 1 => (0..n).map(|i| format!("v{i}")).collect(),
                    _ => {
                        return Err(src.error(span, format!("attribute {:?}: a keyword attribute needs either values = [\"a\", \"b\", ...] or cardinality = N (N >= 1)", a.name)))
                    }
                };
                let weights = match &a.weights {
                    None => vec![1.0; values.len()],
                    Some(w) if w.len() == values.len() && w.iter().all(|x| x.is_finite() && *x > 0.0) => w.clone(),
                    Some(_) => {
                        return Err(src.error(
                            span,
                            format!(
                                "attribute {:?}: weights must be positive numbers, one per value ({} values)",
                                a.name,
                                values.len()
                            ),
                        ))
                    }
                };
                AttributeGen::Keyword { values, weights }
            }
            (AttrKind::Integer, None) => {
                if a.values.is_some() || a.cardinality.is_some() || a.weights.is_some() {
                    return Err(src.error(
                        span,
                        format!(
                            "attribute {:?}: an integer attribute takes min and max, not values/cardinality/weights",
                            a.name
                        ),
                    ));
                }
                match (a.min, a.max) {
                    (Some(min), Some(max)) if min <= max => AttributeGen::Integer { min, max },
                    _ => {
                        return Err(src.error(
                            span,
                            format!("attribute {:?}: an integer attribute needs min and max with min <= max", a.name),
                        ))
                    }
                }
            }
        };
        let (line, _) = src.position(span.start);
        let origin = format!("{}:{line}", src.file.display());
        out.push(AttributePlan { def: AttributeDef { name: a.name.clone(), kind: a.kind }, gen, origin });
    }
    Ok(out)
}

/// Attributes read from the dataset (`from`) need a BEIR corpus, no synthetic stand-in,
/// and, when the corpus is there, the key in its first document's metadata.
fn check_data_attributes(src: &Source, specs: &[Spanned<AttributeSpec>], dataset: &DatasetPlan) -> Result<()> {
    let mut first_doc: Option<Option<serde_json::Map<String, serde_json::Value>>> = None;
    for s in specs {
        let (span, a) = (s.span(), s.get_ref());
        let Some(field) = &a.from else { continue };
        if dataset.source != DatasetSource::Beir {
            return Err(src.error(
                span,
                format!("attribute {:?}: from = {field:?} reads a BEIR corpus's document metadata; this dataset is not source = \"beir\"", a.name),
            ));
        }
        if dataset.fallback == Fallback::Synthetic {
            return Err(src.error(
                span,
                format!("attribute {:?}: from = {field:?} reads the dataset, which synthetic data cannot stand in for; set dataset.fallback = \"error\"", a.name),
            ));
        }
        let Some(corpus) = dataset.path.as_ref().map(|p| p.join("corpus.jsonl")) else { continue };
        let meta = first_doc.get_or_insert_with(|| first_metadata(&corpus));
        let Some(meta) = meta else { continue };
        if !meta.contains_key(field) {
            let keys: Vec<&str> = meta.keys().map(String::as_str).collect();
            return Err(src.error(
                span,
                format!(
                    "attribute {:?}: the dataset carries no metadata {field:?} (the first document of {} has {keys:?})",
                    a.name,
                    corpus.display()
                ),
            ));
        }
    }
    Ok(())
}

/// The `metadata` object of a corpus.jsonl's first document (empty when it has none);
/// `None` when the file cannot be read (loading the dataset reports that).
fn first_metadata(corpus: &Path) -> Option<serde_json::Map<String, serde_json::Value>> {
    use std::io::BufRead;
    let file = std::fs::File::open(corpus).ok()?;
    let line = std::io::BufReader::new(file).lines().map_while(|l| l.ok()).find(|l| !l.trim().is_empty())?;
    let doc: serde_json::Value = serde_json::from_str(&line).ok()?;
    Some(doc.get("metadata").and_then(|m| m.as_object()).cloned().unwrap_or_default())
}

fn expand_path(
    src: &Source,
    span: &Range<usize>,
    field: &str,
    value: &Option<String>,
    base: &Path,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<PathBuf>> {
    let Some(v) = value else { return Ok(None) };
    let expanded = expand_env(v, env).map_err(|e| src.error(span.clone(), format!("{field}: {e}")))?;
    let p = PathBuf::from(expanded);
    Ok(Some(if p.is_absolute() { p } else { base.join(p) }))
}

fn validate_dataset(
    src: &Source,
    spec: &Spanned<DatasetSpec>,
    base: &Path,
    env: impl Fn(&str) -> Option<String> + Copy,
) -> Result<DatasetPlan> {
    let span = spec.span();
    let d = spec.get_ref();
    let path = expand_path(src, &span, "dataset.path", &d.path, base, env)?;
    let within = |field: &str, v: &Option<String>| -> Result<Option<PathBuf>> {
        let root = path.clone().unwrap_or_else(|| base.to_path_buf());
        expand_path(src, &span, field, v, &root, env)
    };
    let links = match d.links.as_ref().map(|l| (l.span(), l.get_ref())) {
        None => None,
        Some((_, LinksSpec { degree: Some(n), file: None })) if (1..=MAX_LINK_DEGREE).contains(n) => {
            Some(LinksPlan::Generated { degree: *n })
        }
        Some((span, LinksSpec { degree: Some(n), file: None })) => {
            return Err(src.error(span, format!("dataset.links.degree = {n} must be between 1 and {MAX_LINK_DEGREE}")))
        }
        Some((_, LinksSpec { degree: None, file: Some(f) })) => {
            within("dataset.links.file", &Some(f.clone()))?.map(LinksPlan::File)
        }
        Some((span, _)) => {
            return Err(src.error(
                span,
                "dataset.links: give either degree = N (generated links) or file = \"links.tsv\" (document id pairs)",
            ))
        }
    };
    let plan = DatasetPlan {
        source: d.source,
        name: d.name.clone(),
        corpus_vectors: within("dataset.corpus_vectors", &d.corpus_vectors)?,
        query_vectors: within("dataset.query_vectors", &d.query_vectors)?,
        qrels: within("dataset.qrels", &d.qrels)?,
        base_vectors: within("dataset.base_vectors", &d.base_vectors)?,
        path,
        metric: d.metric,
        max_docs: d.max_docs,
        sizes: d.sizes.clone().unwrap_or_default(),
        stream: d.stream.as_ref().map(|s| *s.get_ref()),
        links,
        max_queries: d.max_queries,
        query_sample: d.query_sample,
        missing_hint: d.missing_hint.clone(),
        fallback: d.fallback,
        synthetic: d.synthetic.clone(),
    };
    match d.source {
        DatasetSource::Beir if plan.path.is_none() => {
            return Err(src.error(span, "dataset.source = \"beir\" needs path = \"<folder with corpus.jsonl>\""))
        }
        DatasetSource::Vectors if plan.base_vectors.is_none() || plan.query_vectors.is_none() => {
            return Err(
                src.error(span, "dataset.source = \"vectors\" needs base_vectors and query_vectors (.npy or .fvecs)")
            )
        }
        _ => {}
    }
    if d.max_docs == Some(0) || d.max_queries == Some(0) || d.query_sample == Some(0) {
        return Err(src.error(span, "dataset.max_docs, max_queries and query_sample must be at least 1 when given"));
    }
    if let Some(sizes) = &d.sizes {
        if sizes.is_empty() || sizes[0] == 0 || sizes.windows(2).any(|w| w[0] >= w[1]) {
            return Err(src.error(span, "dataset.sizes: at least one size, each at least 1, in ascending order, e.g. sizes = [10000, 100000, 1000000]"));
        }
        let most = sizes[sizes.len() - 1];
        let cap = match (d.max_docs, d.source) {
            (Some(m), _) => Some(("dataset.max_docs", m)),
            (None, DatasetSource::Synthetic) => Some(("dataset.synthetic.docs", d.synthetic.docs)),
            _ => None,
        };
        if let Some((field, n)) = cap.filter(|&(_, n)| most > n) {
            return Err(src.error(span, format!("dataset.sizes: the largest size, {most}, is more than {field} = {n}; each size is a prefix of the data")));
        }
    }
    if let (Some(share), Some(_)) = (&d.stream, &d.links) {
        return Err(src.error(
            share.span(),
            "dataset.stream with dataset.links: held-out records would need their links inserted too, which no op does yet; run expand on a dataset without stream",
        ));
    }
    if let Some(share) = &d.stream {
        let v = *share.get_ref();
        if !(v.is_finite() && v > 0.0 && v < 1.0) {
            return Err(src.error(
                share.span(),
                format!("dataset.stream = {v}: the share of records held out of the load must be above 0 and below 1, e.g. stream = 0.2"),
            ));
        }
    }
    let s = &d.synthetic;
    if s.docs == 0
        || s.queries == 0
        || s.dim == 0
        || s.clusters == 0
        || s.vocabulary == 0
        || s.words_per_doc == 0
        || s.words_per_query == 0
    {
        return Err(src.error(span, "dataset.synthetic: docs, queries, dim, clusters, vocabulary, words_per_doc and words_per_query must be at least 1"));
    }
    if s.dim > 16_384
        || !(s.spread.is_finite() && s.spread >= 0.0)
        || !(s.zipf_exponent.is_finite() && s.zipf_exponent > 0.0)
    {
        return Err(src.error(span, "dataset.synthetic: dim must be at most 16384, spread >= 0 and zipf_exponent > 0"));
    }
    Ok(plan)
}

fn validate_engines(
    src: &Source,
    engines: &indexmap::IndexMap<Spanned<String>, EngineSpec>,
    base: &Path,
    overrides: &Overrides,
    env: impl Fn(&str) -> Option<String> + Copy,
) -> Result<Vec<EnginePlan>> {
    if engines.is_empty() {
        return Err(src.error(0..0, "at least one [engines.NAME] table is needed"));
    }
    if let Some(wanted) = &overrides.engines {
        for w in wanted {
            if !engines.contains_key(w.as_str()) {
                let known: Vec<&str> = engines.keys().map(|k| k.get_ref().as_str()).collect();
                return Err(Error::Input(format!(
                    "--engines: {w:?} is not an engine of {} (it has: {})",
                    src.file.display(),
                    known.join(", ")
                )));
            }
        }
    }
    let mut out = Vec::new();
    for (name, e) in engines {
        let span = name.span();
        let name = name.get_ref();
        let selected = match &overrides.engines {
            Some(w) => w.contains(name),
            None => e.enabled,
        };
        if !selected {
            continue;
        }
        let kind_name = e.driver.as_deref().unwrap_or(name);
        let Some(kind) = driver::find_kind(kind_name) else {
            let known: Vec<&str> = driver::registry().iter().filter(|k| !k.hidden).map(|k| k.kind).collect();
            return Err(src.error(
                span,
                format!(
                    "engines.{name}: unknown driver {kind_name:?} (known: {}); set driver = \"...\" when the table's name is not a driver",
                    known.join(", ")
                ),
            ));
        };
        let url = match e.url.as_deref().or(kind.default_url) {
            Some(u) => {
                Some(expand_env(u, env).map_err(|m| src.error(span.clone(), format!("engines.{name}.url: {m}")))?)
            }
            None => None,
        };
        let config =
            EngineConfig { name: name.clone(), url, settings: e.settings.clone(), base_dir: base.to_path_buf() };
        (kind.validate)(&config).map_err(|m| src.error(span.clone(), m))?;
        let service = match &e.service {
            Some(svc) if svc.is_empty() || !svc.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') => {
                return Err(src.error(
                    span,
                    format!("engines.{name}.service: {svc:?} is not a services/up.sh entry (letters, digits, - and _)"),
                ))
            }
            Some(svc) if kind.default_url.is_none() => {
                return Err(src.error(
                    span,
                    format!("engines.{name}.service: {kind_name} runs inside dbbench, not as a service; remove service = {svc:?}"),
                ))
            }
            Some(svc) => svc.clone(),
            None => kind.kind.to_string(),
        };
        out.push(EnginePlan { config, kind, line: src.position(span.start).0, service });
    }
    if out.is_empty() {
        return Err(src.error(0..0, "every engine is disabled (enabled = false); enable one or pass --engines"));
    }
    Ok(out)
}

/// Refuse a search param that no engine of the workload reads on its op, or a value that
/// an engine reading it could not take. "The workload's engines" are all those the file
/// declares, enabled or not, so that `--engines` and `enabled = false` never change
/// whether a file is valid; a param some of them do not read runs on them and is
/// recorded as not applicable (`ParamUse`).
fn check_params(
    src: &Source,
    phases: &[Spanned<PhaseSpec>],
    engines: &indexmap::IndexMap<Spanned<String>, EngineSpec>,
) -> Result<()> {
    // Engines with a driver this build knows (an unknown one is refused when selected).
    let declared: Vec<(&str, &DriverKind)> = engines
        .iter()
        .filter_map(|(name, e)| {
            let name = name.get_ref().as_str();
            driver::find_kind(e.driver.as_deref().unwrap_or(name)).map(|k| (name, k))
        })
        .collect();
    for phase in phases {
        for op in &phase.get_ref().ops {
            let kind = op.get_ref().op;
            let ctx = format!("phase {:?}, op {kind}", phase.get_ref().name);
            for (key, value) in &op.get_ref().params {
                let readers: Vec<(&str, &driver::ParamDef)> = declared
                    .iter()
                    .filter_map(|(name, k)| driver::params::find(k.params, key.get_ref(), kind).map(|d| (*name, d)))
                    .collect();
                if readers.is_empty() {
                    let read: Vec<String> = declared
                        .iter()
                        .map(|(name, k)| {
                            let names: Vec<&str> =
                                k.params.iter().filter(|d| d.ops.contains(&kind)).map(|d| d.name).collect();
                            if names.is_empty() {
                                format!("{name} reads none")
                            } else {
                                format!("{name} reads {}", names.join(", "))
                            }
                        })
                        .collect();
                    return Err(src.error(
                        key.span(),
                        format!(
                            "{ctx}: params.{}: no engine of this workload reads it on {kind} ops ({}); \
                             see `dbbench engines` for each driver's params",
                            key.get_ref(),
                            read.join("; ")
                        ),
                    ));
                }
                let json = serde_json::to_value(value.get_ref()).unwrap_or(serde_json::Value::Null);
                if let Some((name, def)) = readers.iter().find(|(_, d)| !d.kind.admits(&json)) {
                    return Err(src.error(
                        value.span(),
                        format!(
                            "{ctx}: params.{} = {}: engine {name} reads it as {}",
                            key.get_ref(),
                            value.get_ref(),
                            def.kind.describe()
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn parse_duration(src: &Source, span: &Range<usize>, field: &str, v: &str) -> Result<Duration> {
    humantime::parse_duration(v).map_err(|e| {
        src.error(span.clone(), format!("{field} = {v:?}: {e}; write a duration such as \"500ms\", \"30s\" or \"2m\""))
    })
}

fn validate_phase(
    src: &Source,
    spec: &Spanned<PhaseSpec>,
    attrs: &[AttributeDef],
    overrides: &Overrides,
    streaming: bool,
) -> Result<PhasePlan> {
    let span = spec.span();
    let p = spec.get_ref();
    let ctx = format!("phase {:?}", p.name);
    if p.name.is_empty() {
        return Err(src.error(span, "a phase needs a non-empty name"));
    }
    let stop = match (&p.duration, p.requests) {
        // A stream phase's length comes from its writes, checked with the rest of it.
        (None, None) if p.stream.is_some() => Stop::Requests(1),
        // A recovery phase has no requests of its own to count.
        (None, None) if p.recovery.is_some() => Stop::Requests(1),
        (Some(d), None) => {
            let d = parse_duration(src, &span, &format!("{ctx}: duration"), d)?;
            if d.is_zero() {
                return Err(src.error(span, format!("{ctx}: duration must be more than 0s")));
            }
            Stop::Duration(d)
        }
        (None, Some(0)) => return Err(src.error(span, format!("{ctx}: requests must be at least 1"))),
        (None, Some(n)) => Stop::Requests(n),
        _ => return Err(src.error(span, format!("{ctx}: give exactly one of duration = \"30s\" or requests = N"))),
    };
    // --duration shortens or lengthens timed phases; a phase that stops after N requests
    // (a quality pass over every judged query, say) keeps its count.
    let stop = match (overrides.duration, stop) {
        (Some(d), Stop::Duration(_)) => Stop::Duration(d),
        (_, stop) => stop,
    };
    let warmup = match &p.warmup {
        Some(w) => parse_duration(src, &span, &format!("{ctx}: warmup"), w)?,
        None => Duration::ZERO,
    };
    let concurrency = p.concurrency.unwrap_or(if p.stream.is_some() { 2 } else { 1 });
    if concurrency == 0 || concurrency > 4096 {
        return Err(src.error(span, format!("{ctx}: concurrency must be between 1 and 4096")));
    }
    let schedule = match p.rate {
        Some(rate) if rate.is_finite() && rate > 0.0 && rate <= 10_000_000.0 => {
            Schedule::Open { rate, arrival: p.arrival.unwrap_or_default(), concurrency }
        }
        Some(rate) => {
            return Err(src.error(span, format!("{ctx}: rate = {rate} must be a number of requests per second above 0")))
        }
        None if p.arrival.is_some() => {
            return Err(src.error(span, format!("{ctx}: arrival is for open-loop phases; set rate = N as well")))
        }
        None => Schedule::Closed { concurrency },
    };
    if let Some(r) = &p.recovery {
        let recovery = validate_recovery(src, p, r, &ctx, streaming)?;
        return Ok(PhasePlan {
            name: p.name.clone(),
            stop,
            warmup,
            schedule,
            ops: Vec::new(),
            effort: None,
            stream: None,
            recovery: Some(recovery),
        });
    }
    if p.ops.is_empty() {
        return Err(src.error(span, format!("{ctx}: needs at least one [[phases.ops]]")));
    }
    let mut ops = Vec::new();
    let mut labels = HashSet::new();
    for o in &p.ops {
        let op = validate_op(src, o, attrs, &ctx)?;
        let mut label = op.label.clone();
        if o.get_ref().label.is_none() {
            let mut n = 2;
            while labels.contains(&label) {
                label = format!("{}-{n}", op.kind);
                n += 1;
            }
        } else if labels.contains(&label) {
            return Err(src.error(o.span(), format!("{ctx}: op label {label:?} is used twice")));
        }
        labels.insert(label.clone());
        ops.push(OpPlan { label, ..op });
    }
    let effort = validate_effort(src, p, &ctx, &ops)?;
    let stream = match &p.stream {
        Some(st) => Some(validate_stream(src, p, st, &ctx, &ops, streaming)?),
        None => None,
    };
    Ok(PhasePlan { name: p.name.clone(), stop, warmup, schedule, ops, effort, stream, recovery: None })
}

/// Check `[phases.recovery]` against its phase.
fn validate_recovery(
    src: &Source,
    p: &PhaseSpec,
    r: &Spanned<RecoverySpec>,
    ctx: &str,
    streaming: bool,
) -> Result<RecoveryPlan> {
    let span = r.span();
    let s = r.get_ref();
    let err = |m: String| src.error(span.clone(), format!("{ctx}: recovery: {m}"));
    if p.duration.is_some()
        || p.requests.is_some()
        || p.rate.is_some()
        || p.arrival.is_some()
        || p.warmup.is_some()
        || p.concurrency.is_some()
        || p.effort.is_some()
        || p.target_recall.is_some()
        || p.stream.is_some()
        || !p.ops.is_empty()
    {
        return Err(err("a recovery phase sets everything in [phases.recovery]: drop duration, requests, rate, arrival, warmup, concurrency, effort, target_recall, stream and its [[phases.ops]]".into()));
    }
    if streaming {
        return Err(err("not with dataset.stream: the crash writes insert records of their own, and the held-out records belong to stream phases; run recovery in a workload of its own".into()));
    }
    let write_rate = s.write_rate.unwrap_or(200.0);
    if !(write_rate.is_finite() && write_rate > 0.0 && write_rate <= 100_000.0) {
        return Err(err(format!("write_rate = {write_rate} must be inserts per second above 0 (at most 100000)")));
    }
    let write_concurrency = match s.write_concurrency {
        None => 8,
        Some(n) if (1..=256).contains(&n) => n as usize,
        Some(n) => return Err(err(format!("write_concurrency = {n} must be between 1 and 256"))),
    };
    let kill_after = match &s.kill_after {
        Some(v) => parse_duration(src, &span, &format!("{ctx}: recovery.kill_after"), v)?,
        None => Duration::from_secs(3),
    };
    if kill_after < Duration::from_millis(100) || kill_after > Duration::from_secs(600) {
        return Err(err(format!("kill_after = {kill_after:?} must be between 100ms and 10m")));
    }
    let restart_timeout = match &s.restart_timeout {
        Some(v) => parse_duration(src, &span, &format!("{ctx}: recovery.restart_timeout"), v)?,
        None => Duration::from_secs(300),
    };
    if restart_timeout < Duration::from_secs(1) {
        return Err(err("restart_timeout must be at least 1s".into()));
    }
    let damage = match s.damage_backup.as_deref() {
        None | Some("none") => Damage::None,
        Some("truncate") => Damage::Truncate,
        Some(other) => return Err(err(format!("damage_backup = {other:?}: use \"none\" or \"truncate\""))),
    };
    let verify_queries = match s.verify_queries {
        None => 20,
        Some(n) if (1..=10_000).contains(&n) => n as usize,
        Some(n) => return Err(err(format!("verify_queries = {n} must be between 1 and 10000"))),
    };
    let (crash, restart, backup) = (s.crash.unwrap_or(true), s.restart.unwrap_or(true), s.backup.unwrap_or(true));
    if !crash && !restart && !backup {
        return Err(err("crash, restart and backup are all false: nothing to do".into()));
    }
    if damage != Damage::None && !backup {
        return Err(err("damage_backup needs backup = true".into()));
    }
    let path = |v: &Option<String>, default: &str| PathBuf::from(v.as_deref().unwrap_or(default));
    Ok(RecoveryPlan {
        crash,
        write_rate,
        write_concurrency,
        kill_after,
        restart,
        backup,
        damage,
        verify_queries,
        restart_timeout,
        up: path(&s.up, "services/up.sh"),
        down: path(&s.down, "services/down.sh"),
    })
}

/// Check `[phases.stream]` against its phase (`streaming`: the dataset holds records out).
fn validate_stream(
    src: &Source,
    p: &PhaseSpec,
    st: &Spanned<StreamSpec>,
    ctx: &str,
    ops: &[OpPlan],
    streaming: bool,
) -> Result<StreamPlan> {
    let span = st.span();
    let s = st.get_ref();
    let err = |m: String| src.error(span.clone(), format!("{ctx}: stream: {m}"));
    if !streaming {
        return Err(err(
            "nothing is held out to write: set dataset.stream = 0.2 (the share of records the load leaves for inserts)"
                .into(),
        ));
    }
    if p.duration.is_some() || p.requests.is_some() || p.rate.is_some() || p.arrival.is_some() {
        return Err(err("a stream phase runs until its writes are done, at its own rates: drop duration, requests, rate and arrival".into()));
    }
    if p.warmup.is_some() || p.effort.is_some() || p.target_recall.is_some() {
        return Err(err(
            "a stream phase has no warmup or effort steps (they would write too): put a search phase before it".into(),
        ));
    }
    for (what, v) in [("write_rate", s.write_rate), ("search_rate", s.search_rate)] {
        if !(v.is_finite() && v > 0.0 && v <= 1_000_000.0) {
            return Err(err(format!("{what} = {v} must be a number of requests per second above 0")));
        }
    }
    if let Some(bad) =
        ops.iter().find(|o| !o.kind.is_search() && !matches!(o.kind, OpKind::Insert | OpKind::Update | OpKind::Delete))
    {
        return Err(err(format!(
            "op {} cannot stream: a stream phase searches (knn, text, hybrid) and writes (insert, update, delete)",
            bad.label
        )));
    }
    if !ops.iter().any(|o| o.kind.is_search()) || !ops.iter().any(|o| o.kind.is_write()) {
        return Err(err(
            "needs at least one search op (knn, text, hybrid) and one write op (insert, update, delete)".into()
        ));
    }
    let inserts = ops.iter().any(|o| o.kind == OpKind::Insert);
    let count = |what: &str, v: Option<i64>| -> Result<Option<u64>> {
        match v {
            Some(n) if n < 1 => Err(err(format!("{what} = {n} must be at least 1"))),
            Some(n) => Ok(Some(n as u64)),
            None => Ok(None),
        }
    };
    let records = count("records", s.records)?.map(|n| n as usize);
    let writes = count("writes", s.writes)?;
    if records.is_some() && writes.is_some() {
        return Err(
            err("give records (held-out records to insert) or writes (write requests in all), not both".into()),
        );
    }
    if records.is_some() && !inserts {
        return Err(err("records counts inserts, and the phase has no insert op: give writes = N instead".into()));
    }
    if !inserts && writes.is_none() {
        return Err(err("without an insert op the phase needs writes = N (write requests in all)".into()));
    }
    let concurrency = p.concurrency.unwrap_or(2);
    if concurrency < 2 {
        return Err(err(format!("concurrency = {concurrency}: a stream phase needs at least 2 workers, some for writes and some for searches")));
    }
    let write_concurrency = match s.write_concurrency {
        None => concurrency / 2,
        Some(n) if n >= 1 && (n as usize) < concurrency => n as usize,
        Some(n) => return Err(err(format!("write_concurrency = {n} must be at least 1 and below the phase's concurrency ({concurrency}), leaving workers for the searches"))),
    };
    let checkpoints = match s.checkpoints {
        None => 10,
        Some(n) if (1..=1000).contains(&n) => n as usize,
        Some(n) => return Err(err(format!("checkpoints = {n} must be between 1 and 1000"))),
    };
    let probe_interval = match &s.probe_interval {
        Some(v) => parse_duration(src, &span, &format!("{ctx}: stream.probe_interval"), v)?,
        None => Duration::from_millis(10),
    };
    let visibility_bound = match &s.visibility_bound {
        Some(v) => parse_duration(src, &span, &format!("{ctx}: stream.visibility_bound"), v)?,
        None => Duration::from_secs(5),
    };
    if probe_interval.is_zero() || visibility_bound <= probe_interval {
        return Err(err("probe_interval must be above 0 and visibility_bound longer than it".into()));
    }
    Ok(StreamPlan {
        write_rate: s.write_rate,
        search_rate: s.search_rate,
        records,
        writes,
        checkpoints,
        write_concurrency,
        freshness: s.freshness.unwrap_or(true),
        probe_every: count("probe_every", s.probe_every)?.unwrap_or(10),
        probe_interval,
        visibility_bound,
    })
}

/// With records held out, recall is scored against the records live at each search;
/// that stays exact only while no update writes a field a search filter reads.
fn check_stream_updates(src: &Source, specs: &[Spanned<PhaseSpec>], phases: &[PhasePlan]) -> Result<()> {
    let filtered: Vec<&str> =
        phases.iter().flat_map(|p| &p.ops).filter_map(|o| o.filter.as_ref()).flat_map(|f| f.fields()).collect();
    for (spec, phase) in specs.iter().zip(phases) {
        for (o, op) in spec.get_ref().ops.iter().zip(&phase.ops) {
            if let Some(field) = op.field.as_deref().filter(|f| filtered.contains(f)) {
                return Err(src.error(
                    o.span(),
                    format!("phase {:?}, op {}: updates {field}, which a search filter reads; with dataset.stream, recall is scored exactly against the live records only while filtered fields keep their values: update another integer attribute", phase.name, op.label),
                ));
            }
        }
    }
    Ok(())
}

/// A list of effort values: not empty, every value at least 1, strictly ascending.
fn effort_list(src: &Source, v: &Spanned<Vec<i64>>, what: &str) -> Result<Vec<u64>> {
    let err = |m: String| Err(src.error(v.span(), m));
    let list = v.get_ref();
    if list.is_empty() {
        return err(format!("{what} is empty: give the values to sweep, e.g. [10, 20, 40, 80, 160, 320]"));
    }
    if let Some(bad) = list.iter().find(|x| **x < 1) {
        return err(format!("{what}: {bad} is not an effort; every value must be at least 1"));
    }
    if let Some(w) = list.windows(2).find(|w| w[0] >= w[1]) {
        return err(format!("{what} must be sorted ascending without repeats ({} then {})", w[0], w[1]));
    }
    Ok(list.iter().map(|x| *x as u64).collect())
}

fn validate_effort(src: &Source, p: &PhaseSpec, ctx: &str, ops: &[OpPlan]) -> Result<Option<EffortPlan>> {
    let span_of_first = p
        .effort
        .as_ref()
        .map(|e| e.span())
        .or_else(|| p.target_recall.as_ref().map(|t| t.span()))
        .or_else(|| p.engine_effort.keys().next().map(|k| k.span()))
        .or_else(|| p.tuning_share.as_ref().map(|t| t.span()));
    let Some(span) = span_of_first else { return Ok(None) };
    if let Some(op) = ops.iter().find(|o| !matches!(o.kind, OpKind::Knn | OpKind::Hybrid)) {
        return Err(src.error(
            span,
            format!(
                "{ctx}: effort, engine_effort and target_recall apply to phases whose ops are all knn or hybrid \
                 (searches with an effort knob and exact ground truth); op {:?} is {}: put it in a phase of its own",
                op.label, op.kind
            ),
        ));
    }
    let effort = match &p.effort {
        Some(e) => effort_list(src, e, &format!("{ctx}: effort"))?,
        None => Vec::new(),
    };
    let mut per_engine = std::collections::BTreeMap::new();
    for (name, list) in &p.engine_effort {
        let values = effort_list(src, list, &format!("{ctx}: engine_effort.{}", name.get_ref()))?;
        per_engine.insert(name.get_ref().clone(), values);
    }
    let mode = match &p.target_recall {
        Some(t) => {
            let target = *t.get_ref();
            if !(target > 0.0 && target <= 1.0) {
                return Err(src.error(
                    t.span(),
                    format!("{ctx}: target_recall = {target} must be above 0 and at most 1 (e.g. 0.95)"),
                ));
            }
            let tuning_share = match &p.tuning_share {
                Some(s) => {
                    let share = *s.get_ref();
                    if !(share > 0.0 && share < 1.0) {
                        return Err(src.error(
                            s.span(),
                            format!("{ctx}: tuning_share = {share} must be between 0 and 1 (exclusive), e.g. 0.5"),
                        ));
                    }
                    share
                }
                None => 0.5,
            };
            EffortMode::Tune { target, tuning_share }
        }
        None => {
            if let Some(s) = &p.tuning_share {
                return Err(src.error(s.span(), format!("{ctx}: tuning_share goes with target_recall")));
            }
            if effort.is_empty() {
                return Err(src.error(
                    span,
                    format!("{ctx}: engine_effort needs effort = [...] as well (the values for the other engines), or target_recall"),
                ));
            }
            EffortMode::Sweep
        }
    };
    let effort = if effort.is_empty() { DEFAULT_LADDER.to_vec() } else { effort };
    Ok(Some(EffortPlan { mode, effort, per_engine }))
}

/// Every engine named in a phase's `engine_effort` is one of the workload's.
fn check_effort_engines(
    src: &Source,
    phases: &[Spanned<PhaseSpec>],
    engines: &IndexMap<Spanned<String>, EngineSpec>,
) -> Result<()> {
    for p in phases {
        for name in p.get_ref().engine_effort.keys() {
            if !engines.keys().any(|e| e.get_ref() == name.get_ref()) {
                let known: Vec<&str> = engines.keys().map(|e| e.get_ref().as_str()).collect();
                return Err(src.error(
                    name.span(),
                    format!(
                        "phase {:?}: engine_effort.{} names no engine of this workload (engines: {})",
                        p.get_ref().name,
                        name.get_ref(),
                        known.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn validate_op(src: &Source, spec: &Spanned<OpSpec>, attrs: &[AttributeDef], ctx: &str) -> Result<OpPlan> {
    let span = spec.span();
    let o = spec.get_ref();
    let kind = o.op;
    let ctx = format!("{ctx}, op {kind}");
    let err = |m: String| src.error(span.clone(), format!("{ctx}: {m}"));
    if !(o.weight.is_finite() && o.weight > 0.0) {
        return Err(err(format!("weight = {} must be a number above 0", o.weight)));
    }
    if !kind.is_search()
        && (o.k.is_some() || o.filter.is_some() || !o.params.is_empty() || o.query_order != QueryOrder::Random)
    {
        return Err(err("k, filter, params and query_order apply to knn, text, hybrid and expand only".into()));
    }
    let expand = if kind == OpKind::Expand {
        if o.k.is_some() {
            return Err(err("expand takes seeds, hops and max_results, not k".into()));
        }
        let seeds = o.seeds.unwrap_or(5);
        if seeds == 0 || seeds > MAX_SEEDS {
            return Err(err(format!("seeds = {seeds} must be between 1 and {MAX_SEEDS}")));
        }
        let hops = o.hops.unwrap_or(1);
        if hops == 0 || hops > crate::data::links::MAX_HOPS {
            return Err(err(format!(
                "hops = {hops} must be between 1 and {} (past that, an expansion reaches most of a linked corpus)",
                crate::data::links::MAX_HOPS
            )));
        }
        Some(ExpandPlan { seeds, hops })
    } else {
        if o.seeds.is_some() || o.hops.is_some() || o.max_results.is_some() {
            return Err(err("seeds, hops and max_results apply to expand only".into()));
        }
        None
    };
    let k = if expand.is_some() { o.max_results.unwrap_or(100) } else { o.k.unwrap_or(10) };
    if k == 0 || k > MAX_K {
        let name = if expand.is_some() { "max_results" } else { "k" };
        return Err(err(format!("{name} = {k} must be between 1 and {MAX_K}")));
    }
    let keyed = matches!(kind, OpKind::Get | OpKind::Update | OpKind::Scan | OpKind::ReadModifyWrite);
    if !keyed && (o.keys != KeyChoice::Uniform || o.zipf_theta.is_some()) {
        return Err(err("keys and zipf_theta apply to get, update, scan and read_modify_write only".into()));
    }
    let zipf_theta = o.zipf_theta.unwrap_or(0.99);
    if !(zipf_theta > 0.0 && zipf_theta < 1.0) {
        return Err(err(format!("zipf_theta = {zipf_theta} must be between 0 and 1 (exclusive)")));
    }
    if kind != OpKind::Scan && o.scan_length.is_some() {
        return Err(err("scan_length applies to scan only".into()));
    }
    let scan_length = o.scan_length.unwrap_or(100);
    if scan_length == 0 || scan_length > MAX_K {
        return Err(err(format!("scan_length must be between 1 and {MAX_K}")));
    }
    let writes_field = matches!(kind, OpKind::Update | OpKind::ReadModifyWrite);
    let field = if writes_field {
        let name = match &o.field {
            Some(f) => f.clone(),
            None => attrs
                .iter()
                .find(|a| a.kind == AttrKind::Integer)
                .map(|a| a.name.clone())
                .ok_or_else(|| err("needs an integer attribute to write: declare one in [[attributes]] and name it with field = \"...\"".into()))?,
        };
        match attrs.iter().find(|a| a.name == name) {
            Some(a) if a.kind == AttrKind::Integer => Some(name),
            Some(_) => return Err(err(format!("field {name:?} must be an integer attribute"))),
            None => return Err(err(format!("field {name:?} is not a declared attribute"))),
        }
    } else {
        if o.field.is_some() {
            return Err(err("field applies to update and read_modify_write only".into()));
        }
        None
    };
    let filter = match &o.filter {
        Some(f) => {
            Some(convert_filter(f.get_ref(), attrs).map_err(|m| src.error(f.span(), format!("{ctx}: filter: {m}")))?)
        }
        None => None,
    };
    let params = o
        .params
        .iter()
        .map(|(k, v)| {
            let k = k.get_ref();
            Ok((k.clone(), serde_json::to_value(v.get_ref()).map_err(|e| err(format!("params.{k}: {e}")))?))
        })
        .collect::<Result<SearchParams>>()?;
    Ok(OpPlan {
        label: o.label.clone().unwrap_or_else(|| kind.to_string()),
        kind,
        weight: o.weight,
        k,
        filter,
        keys: o.keys,
        zipf_theta,
        scan_length,
        field,
        params,
        query_order: o.query_order,
        expand,
    })
}

/// Turn a TOML filter into a `Filter`, checking fields and types against the attributes.
pub fn convert_filter(f: &FilterSpec, attrs: &[AttributeDef]) -> Result<Filter, String> {
    let has_leaf =
        f.eq.is_some() || f.in_.is_some() || f.gte.is_some() || f.gt.is_some() || f.lt.is_some() || f.lte.is_some();
    let forms = [has_leaf, f.and.is_some(), f.or.is_some()].iter().filter(|x| **x).count();
    if forms != 1 {
        return Err("write one of { field = \"f\", eq = v }, { field = \"f\", in = [..] }, { field = \"f\", gte = a, lt = b }, { and = [..] }, { or = [..] }".into());
    }
    if let Some(parts) = f.and.as_ref().or(f.or.as_ref()) {
        if f.field.is_some() {
            return Err("and/or take a list of filters, not a field".into());
        }
        if parts.is_empty() {
            return Err("and/or need at least one filter".into());
        }
        let conv = parts.iter().map(|p| convert_filter(p, attrs)).collect::<Result<Vec<_>, _>>()?;
        return Ok(if f.and.is_some() { Filter::And(conv) } else { Filter::Or(conv) });
    }
    let field = f.field.clone().ok_or("a comparison needs field = \"name\"")?;
    let attr = attrs.iter().find(|a| a.name == field).ok_or_else(|| {
        let names: Vec<&str> = attrs.iter().map(|a| a.name.as_str()).collect();
        format!("field {field:?} is not a declared attribute (declared: {})", names.join(", "))
    })?;
    let name = field.clone();
    let value = |v: &toml::Value| -> Result<AttrValue, String> {
        let field = &name;
        match (attr.kind, v) {
            (AttrKind::Keyword, toml::Value::String(s)) => Ok(AttrValue::Keyword(s.clone())),
            (AttrKind::Integer, toml::Value::Integer(i)) => Ok(AttrValue::Integer(*i)),
            (AttrKind::Keyword, _) => Err(format!("{field} is a keyword attribute: compare it with a string")),
            (AttrKind::Integer, _) => Err(format!("{field} is an integer attribute: compare it with an integer")),
        }
    };
    let range = f.gte.is_some() || f.gt.is_some() || f.lt.is_some() || f.lte.is_some();
    match (&f.eq, &f.in_, range) {
        (Some(v), None, false) => Ok(Filter::Eq { field, value: value(v)? }),
        (None, Some(vs), false) => {
            if vs.is_empty() {
                return Err("in = [] matches nothing; give at least one value".into());
            }
            Ok(Filter::In { field, values: vs.iter().map(value).collect::<Result<_, _>>()? })
        }
        (None, None, true) => {
            if attr.kind != AttrKind::Integer {
                return Err(format!("{field} is a keyword attribute: ranges apply to integer attributes"));
            }
            if f.gte.is_some() && f.gt.is_some() || f.lt.is_some() && f.lte.is_some() {
                return Err("give at most one lower bound (gte or gt) and one upper bound (lt or lte)".into());
            }
            let gte = f.gte.or(f.gt.map(|g| g.saturating_add(1)));
            let lt = f.lt.or(f.lte.map(|l| l.saturating_add(1)));
            if let (Some(a), Some(b)) = (gte, lt) {
                if a >= b {
                    return Err("the range is empty: the lower bound is not below the upper bound".into());
                }
            }
            Ok(Filter::Range { field, gte, lt })
        }
        _ => Err("combine eq, in and range bounds with { and = [...] }, not in one table".into()),
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[workload]
name = "t"

[dataset]
source = "synthetic"

[[attributes]]
name = "bucket"
kind = "integer"
min = 0
max = 999

[engines.sqlite]

[[phases]]
name = "knn"
requests = 100
[[phases.ops]]
op = "knn"
filter = { field = "bucket", lt = 100 }
"#;

    fn parse(text: &str) -> Result<Plan> {
        parse_plan(Path::new("w.toml"), text, String::new(), &Overrides::default(), |_| None)
    }

    fn err_of(text: &str) -> (usize, String) {
        match parse(text) {
            Err(Error::Spec { line, message, .. }) => (line, message),
            other => panic!("expected a spec error, got {other:?}"),
        }
    }

    #[test]
    fn search_params_are_checked_against_every_engine_the_file_declares() {
        let with = |engines: &str, params: &str| {
            MINIMAL
                .replace("[engines.sqlite]\n", &format!("[engines.sqlite]\n{engines}\n"))
                .replace("op = \"knn\"\n", &format!("op = \"knn\"\nparams = {{ {params} }}\n"))
        };
        // Nobody reads it: refused at the key, line and column.
        let (line, m) = err_of(&with("", "ef_search = 100"));
        assert_eq!(line, 22);
        assert!(
            m.contains("params.ef_search: no engine of this workload reads it on knn ops (sqlite reads none)"),
            "{m}"
        );
        // A disabled engine reads it: valid, and valid whatever --engines picks.
        let pg = "[engines.pg]\ndriver = \"pgvector\"\nenabled = false";
        let text = with(pg, "ef_search = 100, probes = 3");
        let plan = parse(&text).unwrap();
        assert_eq!(plan.phases[0].ops[0].params["probes"], serde_json::json!(3));
        let only_sqlite = Overrides { engines: Some(vec!["sqlite".into()]), ..Default::default() };
        assert!(parse_plan(Path::new("w.toml"), &text, String::new(), &only_sqlite, |_| None).is_ok());
        // A reader that cannot take the value: refused at the value.
        match parse(&with(pg, "ef_search = 2.5")) {
            Err(Error::Spec { line, column, message, .. }) => {
                assert_eq!((line, column), (24, 24), "{message}");
                assert!(message.contains("engine pg reads it as an integer from 1 to 1000"), "{message}");
            }
            other => panic!("expected a spec error, got {other:?}"),
        }
    }

    #[test]
    fn attributes_read_from_the_dataset_need_a_beir_corpus_that_carries_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("corpus.jsonl"),
            "{\"_id\":\"a\",\"text\":\"x\",\"metadata\":{\"pos\":\"n\",\"lemmas\":2}}\n",
        )
        .unwrap();
        let beir = format!("source = \"beir\"\npath = {:?}", dir.path().display().to_string());
        let with = |dataset: &str, attr: &str| {
            MINIMAL
                .replace("source = \"synthetic\"", dataset)
                .replace("kind = \"integer\"\nmin = 0\nmax = 999", attr)
                .replace("filter = { field = \"bucket\", lt = 100 }", "filter = { field = \"bucket\", eq = \"n\" }")
        };
        let plan = parse(&with(&beir, "kind = \"keyword\"\nfrom = \"pos\"")).unwrap();
        assert!(matches!(&plan.attributes[0].gen, AttributeGen::Data { field } if field == "pos"));
        assert_eq!(plan.attributes[0].origin, "w.toml:9");
        // A key the corpus does not carry: refused at the attribute, naming what it has.
        let (line, m) = err_of(&with(&beir, "kind = \"keyword\"\nfrom = \"lexname\""));
        assert_eq!(line, 9);
        assert!(m.contains("carries no metadata \"lexname\"") && m.contains("has [\"pos\", \"lemmas\"]"), "{m}");
        // Generated and read at once, read from synthetic data, or with a synthetic stand-in.
        let (_, m) = err_of(&with(&beir, "kind = \"keyword\"\nfrom = \"pos\"\nvalues = [\"n\"]"));
        assert!(m.contains("takes no values"), "{m}");
        let (_, m) = err_of(&with("source = \"synthetic\"", "kind = \"keyword\"\nfrom = \"pos\""));
        assert!(m.contains("not source = \"beir\""), "{m}");
        let (_, m) = err_of(&with(&format!("{beir}\nfallback = \"synthetic\""), "kind = \"keyword\"\nfrom = \"pos\""));
        assert!(m.contains("set dataset.fallback = \"error\""), "{m}");
    }

    #[test]
    fn an_engine_table_made_by_its_settings_header_alone_is_read() {
        let text = MINIMAL.replace("[engines.sqlite]", "[engines.sqlite.settings]\nconnections = 2");
        let plan = parse(&text).unwrap();
        assert_eq!(plan.engines[0].config.name, "sqlite");
        assert_eq!(plan.engines[0].config.settings["connections"].as_integer(), Some(2));
        let (line, msg) = err_of(&MINIMAL.replace("[engines.sqlite]", "\n[engines.mystery.settings]\nx = 1"));
        assert!(msg.contains("unknown driver \"mystery\""), "{msg}");
        assert_eq!(line, 15, "the error points at the engine's name");
    }

    #[test]
    fn minimal_workload_gets_defaults() {
        let plan = parse(MINIMAL).unwrap();
        assert_eq!(plan.workload.seed, 42);
        assert_eq!(plan.phases[0].schedule, Schedule::Closed { concurrency: 1 });
        assert_eq!(plan.phases[0].ops[0].k, 10);
        assert_eq!(
            plan.phases[0].ops[0].filter,
            Some(Filter::Range { field: "bucket".into(), gte: None, lt: Some(100) })
        );
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let text = MINIMAL.replace("op = \"knn\"", "op = \"knn\"\nkk = 3");
        let (line, msg) = err_of(&text);
        assert_eq!(line, 21, "the line of the unknown key");
        assert!(msg.contains("unknown field `kk`"), "{msg}");
    }

    #[test]
    fn impossible_values_are_rejected_with_their_place() {
        let (line, msg) = err_of(&MINIMAL.replace("requests = 100", "requests = 0"));
        assert_eq!(line, 16);
        assert!(msg.contains("requests must be at least 1"), "{msg}");

        let (_, msg) = err_of(&MINIMAL.replace("lt = 100", "gte = 5, lt = 5"));
        assert!(msg.contains("range is empty"), "{msg}");

        let (_, msg) = err_of(&MINIMAL.replace("field = \"bucket\"", "field = \"nope\""));
        assert!(msg.contains("not a declared attribute"), "{msg}");

        let (_, msg) = err_of(&MINIMAL.replace("requests = 100", "duration = \"fast\""));
        assert!(msg.contains("write a duration"), "{msg}");

        let (_, msg) = err_of(&MINIMAL.replace("[engines.sqlite]", "[engines.mystery]"));
        assert!(msg.contains("unknown driver \"mystery\""), "{msg}");

        let (_, msg) = err_of(&MINIMAL.replace("min = 0", "min = 1000"));
        assert!(msg.contains("min <= max"), "{msg}");
    }

    #[test]
    fn wrong_type_is_a_spec_error() {
        let (line, msg) = err_of(&MINIMAL.replace("requests = 100", "requests = \"many\""));
        assert_eq!(line, 18, "the line of the bad value");
        assert!(msg.contains("invalid type"), "{msg}");
    }

    #[test]
    fn overrides_apply() {
        let o = Overrides { seed: Some(7), duration: Some(Duration::from_secs(3)), engines: None };
        let plan = parse_plan(Path::new("w.toml"), MINIMAL, String::new(), &o, |_| None).unwrap();
        assert_eq!(plan.workload.seed, 7);
        assert_eq!(plan.phases[0].stop, Stop::Requests(100), "a request-count phase keeps its count");
        let timed = MINIMAL.replace("requests = 100", "duration = \"1m\"");
        let plan = parse_plan(Path::new("w.toml"), &timed, String::new(), &o, |_| None).unwrap();
        assert_eq!(plan.phases[0].stop, Stop::Duration(Duration::from_secs(3)), "a timed phase takes --duration");
        let o = Overrides { engines: Some(vec!["nope".into()]), ..Default::default() };
        assert!(matches!(parse_plan(Path::new("w.toml"), MINIMAL, String::new(), &o, |_| None), Err(Error::Input(_))));
    }

    #[test]
    fn filter_forms_convert() {
        let attrs = vec![
            AttributeDef { name: "lang".into(), kind: AttrKind::Keyword },
            AttributeDef { name: "year".into(), kind: AttrKind::Integer },
        ];
        let spec: FilterSpec = toml::from_str(
            r#"or = [ { field = "lang", in = ["en", "de"] }, { and = [ { field = "year", gt = 1999 }, { field = "year", lte = 2010 } ] } ]"#,
        )
        .unwrap();
        let f = convert_filter(&spec, &attrs).unwrap();
        assert_eq!(f.to_string(), "(lang in [\"en\", \"de\"]) or ((year >= 2000) and (year < 2011))");
        let bad: FilterSpec = toml::from_str(
            r#"field = "lang"
gte = 3"#,
        )
        .unwrap();
        assert!(convert_filter(&bad, &attrs).unwrap_err().contains("ranges apply to integer"));
    }
}
