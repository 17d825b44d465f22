//! A whole run: dataset, ground truth, then each engine in turn (load, index, warmup,
//! measured phases, cleanup), with results written atomically after every phase.
//!
//! Engines run one after another, never side by side, so each gets the whole machine.
//! The runner never hides a failure: an unreachable engine is skipped with the reason
//! and the command that starts it; an engine that refuses dbbench's credentials fails
//! (a configuration error, not an absent server); an engine lost mid-run keeps what it
//! measured and marks the run incomplete.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::data::truth::TruthCache;
use crate::data::{self, Dataset};
use crate::driver::{self, Capabilities, Driver, ErrorKind, OpKind, ParamDef, ParamUse};
use crate::error::{Error, Result};
use crate::resources;
use crate::results::*;
use crate::spec::{AttributeGen, AttributePlan, EnginePlan, OpPlan, PhasePlan, Plan, Schedule, Stop};

pub mod console;
mod effort;
pub mod ops;
pub mod phase;
pub mod recovery;
pub mod shard;
pub mod stream;
pub mod threads;

use crate::data::live::LiveTruth;
use ops::{Keyspace, PreparedOp};
use phase::{run_phase, PhaseEnv};
use stream::StreamRun;
use threads::ClientThreads;

/// How long `ping` may take before an engine counts as unreachable.
pub const PING_TIMEOUT: Duration = Duration::from_secs(10);

pub struct RunOptions {
    /// `<UTC timestamp>-<workload>`.
    pub run_id: String,
    /// The run folder (results.json goes here).
    pub out_dir: PathBuf,
    /// Where exact ground truth is cached.
    pub cache_dir: PathBuf,
    /// Draw progress bars (only on a terminal).
    pub progress: bool,
    /// Measured runs of each phase (at least 1), after one load and one warmup per phase.
    pub repeat: u32,
    /// This process is one load generator of several (`--shard I/N --start-at T`).
    pub shard: Option<shard::ShardRun>,
    /// Write every request's latency to `<out>/raw/` (`--raw-latencies`).
    pub raw_latencies: bool,
}

/// How a run ended, for the exit code.
pub struct RunSummary {
    pub results: RunResults,
    pub results_path: PathBuf,
    pub interrupted: bool,
}

impl RunSummary {
    pub fn failed_engines(&self) -> Vec<&EngineResult> {
        self.results.engines.iter().filter(|e| e.status == EngineStatus::Failed).collect()
    }
    pub fn skipped_engines(&self) -> Vec<&EngineResult> {
        self.results.engines.iter().filter(|e| e.status == EngineStatus::Skipped).collect()
    }
}

/// The id (and default folder name) of a run of `workload` starting now.
pub fn new_run_id(workload: &str) -> String {
    format!("{}-{workload}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ"))
}

pub fn tool_info() -> ToolInfo {
    ToolInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        commit: option_env!("DBBENCH_COMMIT").unwrap_or("unknown").to_string(),
    }
}

/// Build the dataset and check that every op of the plan can be asked of it.
pub fn build_dataset(plan: &Plan) -> Result<Dataset> {
    let ds = data::build(&plan.dataset, &plan.attributes, plan.workload.seed)?;
    for phase in &plan.phases {
        for op in &phase.ops {
            let needs_vectors = op.kind.needs_vectors();
            let needs_text = matches!(op.kind, OpKind::Text | OpKind::Hybrid);
            if needs_vectors && (!ds.has_query_vectors() || ds.dim == 0) {
                return Err(Error::Input(format!(
                    "phase {:?}, op {}: dataset {} has no query vectors (set dataset.corpus_vectors and query_vectors)",
                    phase.name, op.label, ds.name
                )));
            }
            if needs_text && !ds.has_text() {
                return Err(Error::Input(format!(
                    "phase {:?}, op {}: dataset {} has no text to search",
                    phase.name, op.label, ds.name
                )));
            }
        }
    }
    if ds.dim == 0 {
        return Err(Error::Input(format!(
            "dataset {} has no vectors: every engine needs an embedding per record",
            ds.name
        )));
    }
    Ok(ds)
}

/// Why an engine failed when it refused dbbench's credentials, and what to check.
fn credentials_refused(kind: &str, cfg: &driver::EngineConfig, why: &str) -> String {
    let where_ = cfg.url.as_deref().map(driver::redact_url).map(|u| format!(" at {u}")).unwrap_or_default();
    format!(
        "{kind}{where_} refused the credentials: {why}; check the user and password (or token, API key) in \
         engines.{}.url or its settings, and the environment variables they name",
        cfg.name
    )
}

type TruthTable = HashMap<(usize, String), Arc<Vec<Vec<u64>>>>;

fn truth_key(op: &OpPlan) -> (usize, String) {
    let filter = op.filter.as_ref().map(|f| f.to_string()).unwrap_or_default();
    match op.expand {
        Some(e) => (op.k, format!("expand {} seeds {} hops; {filter}", e.seeds, e.hops)),
        None => (op.k, filter),
    }
}

/// Exact truth for every distinct (k, filter) of the plan's knn and hybrid ops, each as
/// deep as `depth(k)`.
fn ground_truth(
    ops: &[OpPlan],
    ds: &Dataset,
    cache: &TruthCache,
    progress: bool,
    depth: impl Fn(usize) -> usize,
) -> Result<TruthTable> {
    let mut table = TruthTable::new();
    for op in ops {
        if !op.kind.needs_vectors() {
            continue;
        }
        let key = truth_key(op);
        if table.contains_key(&key) {
            continue;
        }
        let started = Instant::now();
        // Expand: the exact seeds, then the reference expansion from them.
        let k = match op.expand {
            Some(e) => e.seeds,
            None => depth(op.k),
        };
        let filter = op.filter.as_ref().map(|f| format!(" where {f}")).unwrap_or_default();
        // At a million records the exact scan takes a while: show distances computed per
        // second and an ETA (nothing is drawn when the cache answers).
        let bar = console::bar(progress, 0, &format!("ground truth top-{k}{filter}"));
        let (truth, computed) = cache.get_or_compute_with_progress(ds, k, op.filter.as_ref(), &|n, total| {
            if bar.length() != Some(total) {
                bar.set_length(total);
            }
            bar.inc(n);
        })?;
        bar.finish_and_clear();
        console::note(&format!(
            "ground truth: top-{k}{filter} for {} queries {} in {:.2}s",
            ds.queries.len(),
            if computed { "computed" } else { "read from cache" },
            started.elapsed().as_secs_f64()
        ));
        let truth = match (op.expand, &ds.links) {
            (Some(e), Some(links)) => {
                let started = Instant::now();
                let expanded: Vec<Vec<u64>> =
                    truth.iter().map(|seeds| data::links::expand(links, seeds, e.hops, op.k)).collect();
                let mean = expanded.iter().map(Vec::len).sum::<usize>() as f64 / expanded.len().max(1) as f64;
                console::note(&format!(
                    "ground truth: {} from {} seeds over {} hop(s), up to {}: {mean:.1} records a query, in {:.2}s",
                    op.label,
                    e.seeds,
                    e.hops,
                    op.k,
                    started.elapsed().as_secs_f64()
                ));
                expanded
            }
            (Some(_), None) => {
                return Err(Error::Input(format!("op {}: expand needs links and the dataset has none", op.label)))
            }
            (None, _) => truth,
        };
        table.insert(key, Arc::new(truth));
    }
    Ok(table)
}

/// The live-set truth of each (k, filter) of a streaming run.
type LiveTable = HashMap<(usize, String), Arc<LiveTruth>>;

/// How deep the base truth of a streaming run goes for k: the margin deletes eat into
/// before a query needs a scan of the live records.
fn live_depth(k: usize) -> usize {
    k * 2
}

/// Records held out of the load for `share` of `n` (at least one loaded, one held out).
fn held_out_count(n: usize, share: f64) -> Result<usize> {
    if n < 2 {
        return Err(Error::Input(format!(
            "dataset.stream: the dataset has {n} record(s); holding some out needs at least 2"
        )));
    }
    Ok(((n as f64 * share).round() as usize).clamp(1, n - 1))
}

/// Exact truth for a run that holds `held_out` records out: over the loaded records (deep
/// enough for deletes), and over the live records at any moment.
fn streaming_truth(
    ops: &[OpPlan],
    ds: &Arc<Dataset>,
    held_out: usize,
    cache: &TruthCache,
    progress: bool,
) -> Result<(TruthTable, LiveTable)> {
    let loaded = ds.len() - held_out;
    let base = ds.prefix(loaded);
    let deep = ground_truth(ops, &base, cache, progress, live_depth)?;
    drop(base);
    let (mut table, mut live) = (TruthTable::new(), LiveTable::new());
    for op in ops.iter().filter(|o| matches!(o.kind, OpKind::Knn | OpKind::Hybrid)) {
        let key = truth_key(op);
        if live.contains_key(&key) {
            continue;
        }
        let top = &deep[&key];
        let lt = LiveTruth::build(ds.clone(), loaded, op.k, op.filter.clone(), top, live_depth(op.k));
        live.insert(key.clone(), Arc::new(lt));
        table.insert(key, Arc::new(top.iter().map(|t| t.iter().take(op.k).copied().collect()).collect()));
    }
    Ok((table, live))
}

/// Run a validated plan. Returns the summary even when engines failed or the run was
/// interrupted; the caller turns that into the exit code.
pub async fn run(plan: Plan, opts: RunOptions, cancel: CancellationToken) -> Result<RunSummary> {
    let ds = Arc::new(announced_dataset(&plan)?);
    run_on(&plan, ds, opts, cancel).await
}

/// One run per size of `dataset.sizes`, smallest first, each on a prefix of the dataset
/// (built once) into `<out>/size-<N>/` with a run id of its own, every engine loaded
/// afresh. Stops at Ctrl-C or when a size fails outright; the sizes already run are
/// returned, so their results stay where they were written.
pub async fn run_sizes(plan: Plan, opts: RunOptions, cancel: CancellationToken) -> Result<Vec<(usize, RunSummary)>> {
    let full = Arc::new(announced_dataset(&plan)?);
    let sizes = &plan.dataset.sizes;
    if let Some(&most) = sizes.last().filter(|&&n| n > full.len()) {
        return Err(Error::Input(format!(
            "{}: dataset.sizes: the largest size, {most}, is more than the dataset's {} documents; each size is a prefix of the data",
            plan.workload.file.display(),
            full.len()
        )));
    }
    let mut done = Vec::new();
    for &n in sizes {
        if cancel.is_cancelled() {
            break;
        }
        console::note(&format!("\n=== size {n} of {}: the first {n} documents", full.len()));
        let ds = if n == full.len() { full.clone() } else { Arc::new(full.prefix(n)) };
        let sized = RunOptions {
            run_id: format!("{}-n{n}", opts.run_id),
            out_dir: opts.out_dir.join(size_dir(n)),
            cache_dir: opts.cache_dir.clone(),
            progress: opts.progress,
            repeat: opts.repeat,
            shard: None,
            raw_latencies: opts.raw_latencies,
        };
        let summary = run_on(&plan, ds, sized, cancel.clone()).await?;
        done.push((n, summary));
    }
    Ok(done)
}

/// The folder, under a run's output folder, of the run at one of `dataset.sizes`.
pub fn size_dir(n: usize) -> String {
    format!("size-{n}")
}

/// Build the dataset and say what it is.
fn announced_dataset(plan: &Plan) -> Result<Dataset> {
    let t = Instant::now();
    let ds = build_dataset(plan)?;
    console::note(&format!(
        "dataset {}: {} records, {} queries, dim {}, {}{} ({:.1}s)",
        ds.name,
        ds.len(),
        ds.queries.len(),
        ds.dim,
        ds.metric.as_str(),
        match (ds.judged(), ds.judgments.as_deref()) {
            (false, _) => String::new(),
            (true, None) => ", judged".to_string(),
            (true, Some(kind)) => format!(", judged ({kind})"),
        },
        t.elapsed().as_secs_f64()
    ));
    if let Some(reason) = &ds.fallback_reason {
        console::warn(&format!("dataset: {reason}"));
    }
    if let Some(l) = &ds.links {
        let (mean, max) = l.degree_stats();
        console::note(&format!(
            "links: {} between records, {mean:.1} a record on average, {max} at most; {}",
            l.pairs().len(),
            l.source
        ));
    }
    Ok(ds)
}

/// Run a validated plan on a dataset already built (the whole of it, or a prefix).
async fn run_on(plan: &Plan, ds: Arc<Dataset>, opts: RunOptions, cancel: CancellationToken) -> Result<RunSummary> {
    let started_at = chrono::Utc::now();
    let run_id = opts.run_id.clone();
    let held_out = match plan.dataset.stream {
        Some(share) => held_out_count(ds.len(), share)?,
        None => 0,
    };
    let loaded = ds.len() - held_out;
    if held_out > 0 {
        console::note(&format!(
            "stream: {loaded} records loaded, the last {held_out} held out for inserts (in a seeded order)"
        ));
    }
    let (truth, live) = {
        let ds = ds.clone();
        let cache = TruthCache::new(&opts.cache_dir);
        let ops: Vec<OpPlan> = plan.phases.iter().flat_map(|p| p.ops.clone()).collect();
        let progress = opts.progress;
        tokio::task::spawn_blocking(move || match held_out {
            0 => ground_truth(&ops, &ds, &cache, progress, |k| k).map(|t| (t, LiveTable::new())),
            n => streaming_truth(&ops, &ds, n, &cache, progress),
        })
        .await
        .map_err(|e| Error::Runtime(format!("ground truth task failed: {e}")))??
    };

    std::fs::create_dir_all(&opts.out_dir).map_err(|e| Error::io(&opts.out_dir, e))?;
    let mut results = RunResults {
        schema_version: SCHEMA_VERSION,
        dbbench: tool_info(),
        run: RunInfo {
            id: run_id,
            started_at: started_at.to_rfc3339(),
            finished_at: None,
            complete: false,
            incomplete_reason: Some("running".into()),
            workload: WorkloadRef {
                name: plan.workload.name.clone(),
                description: plan.workload.description.clone(),
                file: plan.workload.file.display().to_string(),
                sha256: plan.workload.sha256.clone(),
            },
            seed: plan.workload.seed,
            dataset: DatasetInfo {
                name: ds.name.clone(),
                source: ds.source.clone(),
                fallback_reason: ds.fallback_reason.clone(),
                docs: ds.len(),
                queries: ds.queries.len(),
                dim: ds.dim,
                metric: ds.metric.as_str().to_string(),
                judged: ds.judged(),
                judgments: ds.judgments.clone(),
                filters: filter_shares(plan, &ds),
                fingerprint: ds.fingerprint.clone(),
                attributes: ds.attribute_defs.clone(),
                held_out: (held_out > 0).then_some(held_out),
                links: ds.links.as_ref().map(|l| {
                    let (mean_degree, max_degree) = l.degree_stats();
                    LinksInfo { source: l.source.clone(), links: l.pairs().len(), mean_degree, max_degree }
                }),
            },
            machine: Machine::current(),
            requirements: plan.requirements.clone(),
            merged_from: Vec::new(),
            shard: opts.shard.as_ref().map(shard::ShardRun::info),
        },
        engines: Vec::new(),
    };
    for f in &results.run.dataset.filters {
        console::note(&format!(
            "filter {}: {} of {} documents ({})",
            f.filter,
            f.admitted,
            results.run.dataset.docs,
            crate::format::percent(f.selectivity)
        ));
    }
    let results_path = results.write(&opts.out_dir)?;
    console::note(&format!("writing {}", results_path.display()));

    let threads = Arc::new(
        ClientThreads::per_core().map_err(|e| Error::Runtime(format!("cannot start the client threads: {e}")))?,
    );
    let write_ranges = write_ranges(plan, &ds);
    let mut run = EngineRun {
        plan,
        ds,
        loaded,
        truth,
        live,
        threads,
        opts: &opts,
        cancel: cancel.clone(),
        results: &mut results,
        write_ranges,
        monitor: None,
        timeline: opts.shard.as_ref().map(|_| shard::Timeline::of(plan, opts.repeat)),
    };
    if let (Some(sr), Some(t)) = (&opts.shard, &run.timeline) {
        console::note(&format!(
            "{} of a run starting at {}; {}; its phases end by {}",
            sr.shard.label(),
            sr.start_at.format("%Y-%m-%dT%H:%M:%SZ"),
            if sr.loads() {
                "this shard loads the data and builds the index".to_string()
            } else if sr.skip_load {
                "no shard loads (--skip-load): the collection must be there".to_string()
            } else {
                "shard 0 loads the data; this one waits until the collection is all there".to_string()
            },
            (sr.start_at + chrono::Duration::from_std(t.end).unwrap_or_default()).format("%H:%M:%SZ")
        ));
    }
    for engine in &plan.engines {
        if cancel.is_cancelled() {
            break;
        }
        run.engine(engine).await?;
    }

    let interrupted = cancel.is_cancelled();
    let failed: Vec<String> = results
        .engines
        .iter()
        .filter(|e| e.status == EngineStatus::Failed)
        .map(|e| format!("{} ({})", e.name, e.reason.as_deref().unwrap_or("failed")))
        .collect();
    results.run.finished_at = Some(chrono::Utc::now().to_rfc3339());
    results.run.complete = !interrupted && failed.is_empty();
    results.run.incomplete_reason = if interrupted {
        Some("interrupted (Ctrl-C): phases measured before the interrupt are kept".into())
    } else if !failed.is_empty() {
        Some(format!("engine failed: {}", failed.join("; ")))
    } else {
        None
    };
    results.write(&opts.out_dir)?;
    Ok(RunSummary { results, results_path, interrupted })
}

struct EngineRun<'a> {
    plan: &'a Plan,
    ds: Arc<Dataset>,
    /// Records the load loads: all of them, or those not held out (`dataset.stream`).
    loaded: usize,
    truth: TruthTable,
    /// With records held out: the truth over the live records, per (k, filter).
    live: LiveTable,
    /// Where every phase's workers run.
    threads: Arc<ClientThreads>,
    opts: &'a RunOptions,
    cancel: CancellationToken,
    results: &'a mut RunResults,
    /// `write_ranges` of the plan on this dataset.
    write_ranges: Vec<AttributePlan>,
    /// The current engine's processes, sampled (when they can be watched).
    monitor: Option<resources::Monitor>,
    /// A sharded run's timeline (`shard.rs`).
    timeline: Option<shard::Timeline>,
}

impl EngineRun<'_> {
    fn save(&self) -> Result<()> {
        self.results.write(&self.opts.out_dir).map(|_| ())
    }

    fn current(&mut self) -> &mut EngineResult {
        self.results.engines.last_mut().expect("engine pushed before use")
    }

    fn fail(&mut self, reason: String) -> Result<()> {
        console::warn(&format!("engine {}: {reason}", self.current().name));
        let e = self.current();
        e.status = EngineStatus::Failed;
        e.reason = Some(reason);
        self.save()
    }

    async fn engine(&mut self, ep: &EnginePlan) -> Result<()> {
        let cfg = &ep.config;
        let caps = (ep.kind.capabilities)();
        self.results.engines.push(EngineResult {
            name: cfg.name.clone(),
            driver: ep.kind.kind.to_string(),
            status: EngineStatus::Skipped,
            reason: None,
            start_hint: None,
            url: cfg.url.as_deref().map(driver::redact_url),
            version: None,
            settings: driver::redact_settings(&cfg.settings),
            capabilities: serde_json::to_value(&caps).unwrap_or_default(),
            load: None,
            index: None,
            resources: None,
            topology: None,
            phases: Vec::new(),
        });
        self.monitor = None;
        let driver: Arc<dyn Driver> = match (ep.kind.open)(cfg) {
            Ok(d) => Arc::from(d),
            Err(e) => return self.fail(format!("could not open the driver: {e}")),
        };
        console::heading(&format!("engine {} ({})", cfg.name, ep.kind.kind));
        match tokio::time::timeout(PING_TIMEOUT, driver.ping()).await {
            Ok(Ok(())) => {}
            // The engine is there and said no to the credentials: a configuration error to
            // fix, not an absent server to skip.
            Ok(Err(e)) if e.kind == ErrorKind::Auth => {
                return self.fail(credentials_refused(ep.kind.kind, cfg, &e.message));
            }
            other => {
                let why = match other {
                    Ok(Err(e)) => e.message,
                    _ => format!("no answer within {}s", PING_TIMEOUT.as_secs()),
                };
                let where_ = cfg.url.as_deref().map(driver::redact_url).map(|u| format!(" at {u}")).unwrap_or_default();
                let reason = format!("cannot reach {}{where_}: {why}", ep.kind.kind);
                // An engine run by another services/up.sh entry than its driver's own.
                let hint = if ep.service == ep.kind.kind {
                    ep.kind.start_hint.to_string()
                } else {
                    format!("services/up.sh {}", ep.service)
                };
                console::warn(&format!("engine {} skipped: {reason}\n    start it with: {}", cfg.name, hint));
                let e = self.current();
                e.reason = Some(reason);
                e.start_hint = Some(hint);
                return self.save();
            }
        }
        let watched = watch_for(ep);
        self.current().resources = Some(match &watched {
            Ok(w) => EngineResources {
                watched: Some(w.what.clone()),
                not_measured: None,
                memory_before_bytes: None,
                load: None,
                index: None,
                timeline: Vec::new(),
            },
            Err(why) => EngineResources {
                watched: None,
                not_measured: Some(why.clone()),
                memory_before_bytes: None,
                load: None,
                index: None,
                timeline: Vec::new(),
            },
        });
        match watched {
            Ok(w) => {
                let m = resources::Monitor::start(w, RESOURCE_INTERVAL);
                let before = m.memory_now();
                let mut held = String::new();
                if let Some(r) = self.current().resources.as_mut() {
                    r.memory_before_bytes = before;
                    held = r.held_before();
                }
                console::note(&format!("  resources: {}{held}", m.watch().what));
                self.monitor = Some(m);
            }
            Err(why) => console::note(&format!("  resources: not measured: {why}")),
        }
        // A recovery phase restarts the engine and goes on with a new driver.
        let mut driver = driver;
        let outcome = self.engine_phases(ep, &mut driver, &caps).await;
        if let Some(m) = self.monitor.take() {
            let timeline = m.timeline();
            if let Some(r) = self.current().resources.as_mut() {
                // After a recovery phase the timeline has a part from before the restart.
                r.timeline.extend(timeline);
            }
        }
        let cleanup = match &self.opts.shard {
            None => self.plan.load.cleanup,
            // Only the shard that created the collection drops it: after every shard is done
            // with it, or at once when its load failed and nobody can use it.
            Some(sr) => {
                let cleanup = self.plan.load.cleanup && sr.loads();
                if cleanup && self.current().load.is_some() {
                    let end = self.timeline.as_ref().map(|t| t.end).unwrap_or_default();
                    shard::sleep_until(shard::wall(sr.start_at, end), &self.cancel).await;
                }
                cleanup
            }
        };
        if cleanup {
            match tokio::time::timeout(Duration::from_secs(30), driver.cleanup()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => console::warn(&format!("engine {}: cleanup failed: {}", cfg.name, e.message)),
                Err(_) => console::warn(&format!("engine {}: cleanup did not finish within 30s", cfg.name)),
            }
        }
        outcome
    }

    async fn engine_phases(
        &mut self,
        ep: &EnginePlan,
        driver: &mut Arc<dyn Driver>,
        caps: &Capabilities,
    ) -> Result<()> {
        let name = ep.config.name.clone();
        let mut schema = self.ds.schema(&format!("dbbench_{}", self.plan.workload.name.replace('-', "_")));
        // Links only where an expand will walk them, on an engine that can.
        schema.links = schema.links
            && caps.support(OpKind::Expand).runs()
            && self.plan.phases.iter().any(|p| p.ops.iter().any(|o| o.kind == OpKind::Expand));
        let loads = self.opts.shard.as_ref().is_none_or(shard::ShardRun::loads);
        if loads {
            if let Err(e) = driver.prepare(&schema).await {
                return self.fail(format!("prepare failed: {}", e.message));
            }
        } else if let Err(why) = self.wait_ready(driver, &schema).await {
            return self.fail(why);
        }
        match driver.describe().await {
            Ok(info) => {
                let e = self.current();
                e.version = Some(info.version);
                if !info.settings.is_empty() {
                    e.settings = info.settings;
                }
            }
            Err(err) => console::warn(&format!("engine {name}: describe failed: {}", err.message)),
        }

        if loads {
            if let Err(done) = self.load_and_index(driver, &schema).await {
                return done;
            }
        }
        match driver.topology().await {
            Ok(Some(t)) => {
                console::note(&format!("  topology: {}", t.summary()));
                self.current().topology = Some(t);
            }
            Ok(None) => {}
            Err(e) => console::warn(&format!("engine {name}: topology not read: {}", e.message)),
        }
        self.save()?;

        let keys = Arc::new(match (&self.opts.shard, self.loaded < self.ds.len()) {
            (_, true) => Keyspace::streaming(self.loaded as u64, self.ds.len() as u64, self.plan.workload.seed),
            (Some(sr), false) => Keyspace::sharded(self.ds.len() as u64, sr.shard),
            (None, false) => Keyspace::new(self.ds.len() as u64),
        });
        self.engine_phases_measured(ep, driver, caps, &schema, keys).await
    }

    /// Load, then build the index; `Err` carries what `engine_phases` returns when either
    /// failed.
    async fn load_and_index(
        &mut self,
        driver: &Arc<dyn Driver>,
        schema: &driver::Schema,
    ) -> std::result::Result<(), Result<()>> {
        // Load.
        let mark = self.mark();
        let load = tokio::select! {
            r = self.load(driver, schema.links) => r,
            _ = self.cancel.cancelled() => return Err(self.fail("interrupted (Ctrl-C) during the load".into())),
        };
        match load {
            Ok(l) => {
                let usage = self.usage_since(mark);
                let links = l.links.map(|n| format!(" and {n} links")).unwrap_or_default();
                console::note(&format!(
                    "  load: {} records{links} in {:.2}s ({:.0} records/s){}",
                    l.records,
                    l.seconds,
                    l.records_per_s,
                    usage_text(usage.as_ref())
                ));
                self.current().load = Some(l);
                if let Some(r) = &mut self.current().resources {
                    r.load = usage;
                }
            }
            Err(msg) => return Err(self.fail(format!("load failed: {msg}"))),
        }
        let started = Instant::now();
        let mark = self.mark();
        let spinner = console::spinner(self.opts.progress, "  index build and refresh");
        let index = tokio::select! {
            r = driver.finish_load() => r,
            _ = self.cancel.cancelled() => {
                spinner.finish_and_clear();
                return Err(self.fail("interrupted (Ctrl-C) during the index build".into()));
            }
        };
        spinner.finish_and_clear();
        match index {
            Ok(stats) => {
                let seconds = started.elapsed().as_secs_f64();
                let usage = self.usage_since(mark);
                console::note(&format!("  index build and refresh: {seconds:.2}s{}", usage_text(usage.as_ref())));
                self.current().index =
                    Some(IndexResult { seconds, stats: serde_json::to_value(&stats).unwrap_or_default() });
                if let Some(r) = &mut self.current().resources {
                    r.index = usage;
                }
            }
            Err(e) => return Err(self.fail(format!("finish_load failed: {}", e.message))),
        }
        Ok(())
    }

    /// The measured phases, on a loaded collection.
    async fn engine_phases_measured(
        &mut self,
        ep: &EnginePlan,
        driver: &mut Arc<dyn Driver>,
        caps: &Capabilities,
        schema: &driver::Schema,
        keys: Arc<Keyspace>,
    ) -> Result<()> {
        let name = ep.config.name.clone();
        let mut corpus_changed = false;
        for (index, phase) in self.plan.phases.iter().enumerate() {
            if self.cancel.is_cancelled() {
                break;
            }
            let seed = self.plan.workload.seed.wrapping_add(index as u64);
            let profile = DriverProfile { caps, params: ep.kind.params };
            if let Some(rp) = &phase.recovery {
                console::note(&format!("  phase {}: recovery", phase.name));
                let data_bytes =
                    self.current().index.as_ref().and_then(|i| i.stats.get("size_bytes")).and_then(|v| v.as_u64());
                let ctx = recovery::RecoveryCtx {
                    ep,
                    schema,
                    ds: &self.ds,
                    keys: &keys,
                    plan: rp,
                    out_dir: &self.opts.out_dir,
                    cancel: &self.cancel,
                    data_bytes,
                };
                let started = Instant::now();
                let out = recovery::run(&ctx, driver.clone()).await;
                *driver = out.driver;
                self.watch_again(ep);
                let mut result = self.blank_phase(phase);
                result.elapsed_s = started.elapsed().as_secs_f64();
                result.complete = out.failed.is_none() && !self.cancel.is_cancelled();
                result.note = out.failed.clone();
                result.recovery = Some(out.result);
                corpus_changed = true;
                self.current().phases.push(result);
                self.save()?;
                if let Some(why) = out.failed.filter(|_| !self.cancel.is_cancelled()) {
                    return self.fail(format!("phase {:?}: {why}", phase.name));
                }
                continue;
            }
            let repetitions = match &phase.effort {
                None => self.phase(phase, None, driver, profile, &keys, seed, corpus_changed).await,
                Some(effort) => {
                    let ctx = effort::StepCtx { driver, profile, keys: &keys, seed, corpus_changed };
                    self.effort_phase(phase, effort, &name, ctx).await
                }
            };
            corpus_changed |= phase.writes();
            for result in repetitions {
                let lost = result
                    .note
                    .as_deref()
                    .filter(|_| !result.complete && !self.cancel.is_cancelled())
                    .map(str::to_string);
                self.current().phases.push(result);
                self.save()?;
                if let Some(why) = lost {
                    return self.fail(format!("phase {:?}: {why}", phase.name));
                }
            }
        }
        if !self.cancel.is_cancelled() {
            self.current().status = EngineStatus::Ok;
        } else {
            let e = self.current();
            e.status = EngineStatus::Failed;
            e.reason = Some("interrupted (Ctrl-C)".into());
        }
        self.save()
    }

    /// Load the records (and, with `links`, then the links among them).
    async fn load(&self, driver: &Arc<dyn Driver>, links: bool) -> std::result::Result<LoadResult, String> {
        let n = self.loaded;
        let batch = self.plan.load.batch_size;
        let bar = console::bar(self.opts.progress, n as u64, "  load");
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        let mut batches = 0u64;
        let mut next = 0usize;
        loop {
            while next < n && tasks.len() < self.plan.load.concurrency {
                let (ds, driver) = (self.ds.clone(), driver.clone());
                let range = next..(next + batch).min(n);
                next = range.end;
                tasks.spawn(async move {
                    let len = range.len();
                    let records: Vec<_> = range.map(|i| ds.record(i)).collect();
                    driver.load(&records).await.map(|_| len)
                });
            }
            match tasks.join_next().await {
                None => break,
                Some(Ok(Ok(len))) => {
                    batches += 1;
                    bar.inc(len as u64);
                }
                Some(Ok(Err(e))) => {
                    bar.abandon();
                    return Err(e.message);
                }
                Some(Err(e)) => return Err(format!("load task failed: {e}")),
            }
        }
        bar.finish_and_clear();
        let links = match self.ds.links.as_ref().filter(|_| links) {
            Some(graph) => {
                // Every link is among the loaded records: stream and links do not mix, and a
                // prefix of the data (dataset.sizes) carries only its own links.
                let pairs = graph.pairs();
                let bar = console::bar(self.opts.progress, pairs.len() as u64, "  links");
                for chunk in pairs.chunks(batch.max(1) * 4) {
                    driver.load_links(chunk).await.map_err(|e| format!("storing links: {}", e.message))?;
                    bar.inc(chunk.len() as u64);
                }
                bar.finish_and_clear();
                Some(pairs.len() as u64)
            }
            None => None,
        };
        let seconds = started.elapsed().as_secs_f64();
        Ok(LoadResult {
            records: n as u64,
            batches,
            seconds,
            records_per_s: if seconds > 0.0 { n as f64 / seconds } else { 0.0 },
            links,
        })
    }

    /// A shard that does not load: attach to the collection once it is there, and wait
    /// (polling, bounded by `--ready-timeout`) until the engine counts every record and
    /// reports its index built.
    async fn wait_ready(&self, driver: &Arc<dyn Driver>, schema: &driver::Schema) -> std::result::Result<(), String> {
        let Some(sr) = &self.opts.shard else { return Ok(()) };
        let want = self.loaded as u64;
        let who = if sr.skip_load { "an earlier run (--skip-load)" } else { "shard 0" };
        let started = Instant::now();
        let spinner = console::spinner(self.opts.progress, &format!("  waiting for {who} to load the collection"));
        let mut last: String;
        let outcome = loop {
            let seen = async {
                driver.attach(schema).await?;
                let n = driver.count().await?;
                let indexed = n >= want && driver.index_ready().await?;
                crate::driver::DriverResult::Ok((n, indexed))
            };
            match seen.await {
                Ok((_, true)) => break Ok(()),
                Ok((n, false)) if n >= want => last = format!("all {want} records there, the index not yet built"),
                Ok((n, _)) => last = format!("{n} of {want} records there"),
                Err(e) if e.kind == ErrorKind::Unsupported => {
                    break Err(format!("a shard that does not load attaches to the collection, and {}", e.message))
                }
                Err(e) => last = e.message,
            }
            if started.elapsed() >= sr.ready_timeout {
                let hint = if sr.skip_load {
                    "with --skip-load an earlier run of this workload must have loaded it, with [load] cleanup = false"
                } else {
                    "shard 0 loads it: is it running, with the same workload and --start-at? (--ready-timeout waits longer)"
                };
                break Err(format!(
                    "the collection was not ready after {}s of waiting ({last}); {hint}",
                    sr.ready_timeout.as_secs()
                ));
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = self.cancel.cancelled() => break Err("interrupted (Ctrl-C) while waiting for the collection".into()),
            }
        };
        spinner.finish_and_clear();
        if outcome.is_ok() {
            console::note(&format!(
                "  collection ready: {want} records, loaded by {who}, after {:.1}s of waiting",
                started.elapsed().as_secs_f64()
            ));
        }
        outcome
    }

    /// Sleep until a slot of the sharded run's timeline (`offset` from `--start-at`) and
    /// return the agreed start as an instant; `Err` when this shard reached it too late to
    /// measure in step with the others, or was interrupted. Without shards: `None`, the
    /// phase starts when it is run.
    async fn wait_slot(&self, offset: Option<Duration>) -> std::result::Result<Option<tokio::time::Instant>, String> {
        let (Some(sr), Some(offset)) = (&self.opts.shard, offset) else { return Ok(None) };
        let at = shard::wall(sr.start_at, offset);
        if !shard::sleep_until(at, &self.cancel).await {
            return Err("interrupted (Ctrl-C)".into());
        }
        let late = std::time::SystemTime::now().duration_since(at).unwrap_or_default();
        if late > shard::LATE_TOLERANCE {
            return Err(format!(
                "{} reached this part's agreed start {:.1}s late (still loading, or waiting for the collection), so it did not measure it: out of step with the other shards, its figures would not add up with theirs",
                sr.shard.label(),
                late.as_secs_f64()
            ));
        }
        let now = tokio::time::Instant::now();
        Ok(Some(now.checked_sub(late).unwrap_or(now)))
    }

    /// The slots of `phase` on a sharded run's timeline.
    fn slots(&self, phase: &PhasePlan) -> Option<&shard::PhaseSlots> {
        let i = self.plan.phases.iter().position(|p| p.name == phase.name)?;
        self.timeline.as_ref()?.phases.get(i)
    }

    /// A server's processes were replaced (a recovery phase restarted it): keep the
    /// timeline sampled so far and go on sampling the new ones, on the same clock.
    fn watch_again(&mut self, ep: &EnginePlan) {
        if ep.kind.default_url.is_none() {
            return; // embedded: dbbench's own process, still the same
        }
        let Some(old) = self.monitor.take() else { return };
        let started = old.started();
        let timeline = old.timeline();
        if let Some(r) = self.current().resources.as_mut() {
            r.timeline.extend(timeline);
        }
        match watch_for(ep) {
            Ok(w) => self.monitor = Some(resources::Monitor::start_from(w, RESOURCE_INTERVAL, started)),
            Err(why) => console::note(&format!("  resources: no longer measured after the restart: {why}")),
        }
    }

    fn mark(&self) -> Option<resources::Mark> {
        self.monitor.as_ref().map(resources::Monitor::mark)
    }

    fn usage_since(&self, mark: Option<resources::Mark>) -> Option<resources::Usage> {
        self.monitor.as_ref()?.since(mark?)
    }

    /// `phase` as a result that failed before any request (`note` says why).
    fn failed_phase(&self, phase: &PhasePlan, note: String) -> PhaseResult {
        PhaseResult { complete: false, note: Some(note), warmup_s: 0.0, ..self.blank_phase(phase) }
    }

    /// A complete phase result with nothing measured yet.
    fn blank_phase(&self, phase: &PhasePlan) -> PhaseResult {
        PhaseResult {
            name: phase.name.clone(),
            complete: true,
            note: None,
            schedule: schedule_info(phase, &self.threads),
            warmup_s: phase.warmup.as_secs_f64(),
            elapsed_s: 0.0,
            rate: None,
            ops: Vec::new(),
            repetition: 1,
            step: None,
            tuning: None,
            resources: None,
            stream: None,
            recovery: None,
        }
    }

    /// Warm up and measure one phase (`queries`: only these of the dataset's queries).
    #[allow(clippy::too_many_arguments)]
    async fn phase(
        &self,
        phase: &PhasePlan,
        queries: Option<Arc<Vec<usize>>>,
        driver: &Arc<dyn Driver>,
        profile: DriverProfile<'_>,
        keys: &Arc<Keyspace>,
        seed: u64,
        corpus_changed: bool,
    ) -> Vec<PhaseResult> {
        let describe = |op: &OpPlan| describe_op(op, profile.caps, profile.params);
        // A shard asks its share of the queries: those q with q % N == I.
        let shard = self.opts.shard.as_ref().map(|sr| sr.shard).filter(|s| s.is_split());
        let queries = match (queries, shard) {
            (None, Some(s)) if self.ds.queries.len() >= s.count as usize => {
                Some(Arc::new((0..self.ds.queries.len()).filter(|&q| s.owns(q as u64)).collect::<Vec<_>>()))
            }
            (queries, _) => queries,
        };
        let mut runnable = Vec::new();
        let mut ops_out: Vec<Option<OpResult>> = Vec::new();
        for op in &phase.ops {
            match profile.caps.check(op.kind, op.filter.is_some()) {
                Ok(()) => {
                    let vector = op.kind.needs_vectors();
                    let truth = vector.then(|| self.truth[&truth_key(op)].clone());
                    let live = if vector { self.live.get(&truth_key(op)).cloned() } else { None };
                    runnable.push(
                        PreparedOp::new(op.clone(), truth, keys.loaded, &self.write_ranges)
                            .with_queries(queries.clone())
                            .with_live(live),
                    );
                    ops_out.push(None);
                }
                Err(why) => ops_out.push(Some(OpResult::unsupported(describe(op), why))),
            }
        }
        // A stream phase's length and rates come from what is still held out.
        let mut stream_run = None;
        let derived;
        let phase = match &phase.stream {
            None => phase,
            Some(sp) => {
                let knn = profile.caps.check(OpKind::Knn, false).is_ok();
                match StreamRun::new(sp, &runnable, keys.held_out_left(), knn) {
                    Ok(run) => {
                        derived = PhasePlan {
                            stop: Stop::Duration(run.duration),
                            schedule: Schedule::Open {
                                rate: sp.write_rate + sp.search_rate,
                                arrival: crate::spec::Arrival::Fixed,
                                concurrency: phase.schedule.concurrency(),
                            },
                            ..phase.clone()
                        };
                        stream_run = Some(Arc::new(run));
                        &derived
                    }
                    Err(why) => {
                        let mut result = self.blank_phase(phase);
                        result.note = Some(format!("stream phase not run: {why}"));
                        result.ops = ops_out.into_iter().flatten().collect();
                        console::note(&format!("  phase {}: skipped, {why}", phase.name));
                        return vec![result];
                    }
                }
            }
        };
        let mut result = self.blank_phase(phase);
        if corpus_changed
            && !keys.is_streaming()
            && phase.ops.iter().any(|o| matches!(o.kind, OpKind::Knn | OpKind::Hybrid))
        {
            result.note =
                Some("an earlier phase wrote to the corpus: recall is measured against the data as loaded".into());
        }
        if runnable.is_empty() {
            result.note = Some(format!("no op of this phase is supported by {}", driver.kind()));
            result.ops = ops_out.into_iter().flatten().collect();
            console::note(&format!("  phase {}: skipped, {}", phase.name, result.note.as_deref().unwrap_or_default()));
            return vec![result];
        }
        let env = PhaseEnv {
            driver: driver.clone(),
            dataset: self.ds.clone(),
            keys: keys.clone(),
            ops: Arc::new(runnable),
            threads: Some(self.threads.clone()),
            stream: stream_run,
            timing: phase::PhaseTiming { shard, start: None, raw: self.opts.raw_latencies },
        };
        let slots = self.slots(phase).cloned();

        if !phase.warmup.is_zero() {
            let start = match self.wait_slot(slots.as_ref().and_then(|s| s.warmup)).await {
                Ok(start) => start,
                Err(why) => {
                    console::note(&format!("  phase {}: not measured: {why}", phase.name));
                    cut_short(&mut result, format!("not measured: {why}"), &ops_out);
                    return vec![result];
                }
            };
            let env = PhaseEnv { timing: phase::PhaseTiming { start, ..env.timing }, ..env.clone() };
            let counter = Arc::new(AtomicU64::new(0));
            let bar = console::phase_bar(
                self.opts.progress,
                &format!("  {} (warmup)", phase.name),
                Stop::Duration(phase.warmup),
                counter.clone(),
            );
            let warm =
                run_phase(&env, phase.schedule, Stop::Duration(phase.warmup), seed ^ 0xA11CE, &self.cancel, counter)
                    .await;
            bar.finish();
            if let Some(why) = warm.interrupted {
                cut_short(&mut result, format!("during warmup: {why}"), &ops_out);
                return vec![result];
            }
        }

        // Each repetition is a whole measured run of the phase with the same seed (the same
        // requests), so that repetitions differ only by the noise `compare` must see past.
        let mut repetitions = Vec::new();
        for repetition in 1..=self.opts.repeat.max(1) {
            let mut result = result.clone();
            result.repetition = repetition;
            let slot = slots.as_ref().and_then(|s| s.measured.get(repetition as usize - 1).copied());
            let start = match self.wait_slot(slot).await {
                Ok(start) => start,
                Err(why) => {
                    console::note(&format!("  phase {}: not measured: {why}", phase.name));
                    cut_short(&mut result, format!("not measured: {why}"), &ops_out);
                    repetitions.push(result);
                    if self.cancel.is_cancelled() {
                        break;
                    }
                    continue;
                }
            };
            let env = PhaseEnv { timing: phase::PhaseTiming { start, ..env.timing }, ..env.clone() };
            let interrupted = self.measure(phase, profile, &env, seed, ops_out.clone(), &mut result).await;
            repetitions.push(result);
            // A stream phase inserts what was held out: a second run of it has nothing to insert.
            if interrupted || self.cancel.is_cancelled() || env.stream.is_some() {
                break;
            }
        }
        repetitions
    }

    /// One measured run of a phase into `result`; true when it was cut short.
    async fn measure(
        &self,
        phase: &PhasePlan,
        profile: DriverProfile<'_>,
        env: &PhaseEnv,
        seed: u64,
        ops_out: Vec<Option<OpResult>>,
        result: &mut PhaseResult,
    ) -> bool {
        let describe = |op: &OpPlan| describe_op(op, profile.caps, profile.params);
        let counter = Arc::new(AtomicU64::new(0));
        let label = match self.opts.repeat {
            0 | 1 => format!("  {}", phase.name),
            n => format!("  {} ({}/{n})", phase.name, result.repetition),
        };
        let bar = console::phase_bar(self.opts.progress, &label, phase.stop, counter.clone());
        let mark = self.mark();
        let mut measured = run_phase(env, phase.schedule, phase.stop, seed, &self.cancel, counter).await;
        result.resources = self.usage_since(mark);
        bar.finish();
        if env.keys.is_streaming() {
            result.stream = self.score_streaming(env, phase.schedule.concurrency(), &mut measured);
        }
        let elapsed = measured.elapsed.as_secs_f64();
        result.elapsed_s = elapsed;
        let open = matches!(phase.schedule, Schedule::Open { .. });
        let mut measured_ops = env.ops.iter().zip(&measured.metrics);
        for slot in ops_out {
            result.ops.push(match slot {
                Some(unsupported) => unsupported,
                None => {
                    let (op, m) = measured_ops.next().expect("one metrics entry per runnable op");
                    OpResult::measured(describe(&op.plan), m, elapsed, open)
                }
            });
        }
        if let Schedule::Open { rate, .. } = phase.schedule {
            // A shard's target is its share of the planned rate; merged, the shares add up.
            let rate = rate / env.timing.shard.map_or(1.0, |s| s.count as f64);
            let sent: u64 = result.ops.iter().map(|o| o.count + o.errors).sum();
            let achieved = if elapsed > 0.0 { sent as f64 / elapsed } else { 0.0 };
            result.rate = Some(RateResult {
                target_ops_s: rate,
                achieved_ops_s: achieved,
                sustained: achieved >= 0.95 * rate && measured.unsent == 0,
                unsent: measured.unsent,
            });
        }
        if env.timing.raw {
            if let Err(e) = self.write_raw(phase, result.repetition, env, &measured.raw) {
                console::warn(&format!("  raw latencies not written: {e}"));
            }
        }
        let interrupted = measured.interrupted.is_some();
        if let Some(why) = measured.interrupted {
            result.complete = false;
            result.note = Some(why);
        }
        console::phase_line(result);
        interrupted
    }

    /// `--raw-latencies`: every request of one measured run, one file per op, at
    /// `<out>/raw/<engine>/<phase>[.<repetition>]/<op>.tsv`.
    fn write_raw(
        &self,
        phase: &PhasePlan,
        repetition: u32,
        env: &PhaseEnv,
        raw: &[Vec<phase::RawSample>],
    ) -> Result<()> {
        let engine = self.results.engines.last().map(|e| e.name.as_str()).unwrap_or("engine");
        let part = match self.opts.repeat {
            0 | 1 => phase.name.clone(),
            _ => format!("{}.{repetition}", phase.name),
        };
        let dir = self.opts.out_dir.join("raw").join(safe_name(engine)).join(safe_name(&part));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        for (op, samples) in env.ops.iter().zip(raw) {
            let mut text = String::from(
                "# due_ns\tlatency_ns\tok (due_ns: open loop, from the phase's agreed start; - in a closed loop)\n",
            );
            for r in samples {
                let due = r.due_ns.map_or("-".to_string(), |d| d.to_string());
                text.push_str(&format!("{due}\t{}\t{}\n", r.latency_ns, u8::from(r.ok)));
            }
            let file = dir.join(format!("{}.tsv", safe_name(&op.plan.label)));
            crate::fsutil::write_atomic(&file, text.as_bytes())?;
        }
        Ok(())
    }

    /// Score a streaming run's answers against the records live when each was sent; for a
    /// stream phase, its checkpoints and freshness.
    fn score_streaming(
        &self,
        env: &PhaseEnv,
        env_concurrency: usize,
        measured: &mut phase::PhaseRun,
    ) -> Option<StreamResult> {
        let log = env.keys.log();
        let loaded = env.keys.loaded;
        let mut windows = std::mem::take(&mut measured.windows);
        if let Some(run) = &env.stream {
            windows.resize_with(run.checkpoints(), Default::default);
        }
        stream::score_answers(
            &measured.answers,
            &env.ops,
            &env.dataset,
            &log,
            loaded,
            &mut measured.metrics,
            &mut windows,
        );
        let run = env.stream.as_ref()?;
        let ended = measured.started + measured.elapsed;
        Some(StreamResult {
            write_rate: run.plan.write_rate,
            search_rate: run.plan.search_rate,
            write_concurrency: run.plan.write_concurrency,
            search_concurrency: env_concurrency.saturating_sub(run.plan.write_concurrency),
            writes: run.writes,
            searches: run.searches,
            records_live_before: log.live_count_at(loaded, measured.started),
            records_live_after: log.live_count_at(loaded, ended),
            held_out_left: env.keys.held_out_left() as u64,
            checkpoints: stream::checkpoints(run, &windows, &log, loaded, measured.started),
            freshness: stream::freshness(run, &measured.probes, measured.probes_skipped, env.driver.write_visibility()),
        })
    }
}

/// What the runner needs of an engine's driver to gate and describe its ops: what it can
/// run and which search params it reads.
#[derive(Clone, Copy)]
pub(crate) struct DriverProfile<'a> {
    caps: &'a Capabilities,
    params: &'static [ParamDef],
}

/// `params`: the search params the engine's driver declares, to record which of the op's
/// it applied.
/// How often an engine's processes are sampled.
const RESOURCE_INTERVAL: Duration = Duration::from_millis(200);

/// The processes to watch for `ep`: an embedded engine runs in dbbench's own process; a
/// server on this machine is found from the pid file `services/up.sh` wrote.
fn watch_for(ep: &EnginePlan) -> std::result::Result<resources::Watch, String> {
    if ep.kind.default_url.is_none() {
        return Ok(resources::Watch::this_process(&ep.config.name));
    }
    let url = ep.config.url.as_deref().or(ep.kind.default_url).unwrap_or_default();
    let host = url.split("://").nth(1).unwrap_or(url);
    let host = host.rsplit('@').next().unwrap_or(host);
    let host = host.split(['/', '?']).next().unwrap_or(host);
    let host = if host.starts_with('[') {
        host.split(']').next().map(|h| &h[1..]).unwrap_or(host)
    } else {
        host.split(':').next().unwrap_or(host)
    };
    if !["127.0.0.1", "localhost", "::1"].contains(&host) {
        return Err(format!("the engine is at {host}, not on this machine"));
    }
    resources::Watch::service(&resources::services_dir(), &ep.service)
}

/// `result` as a phase that stopped before it measured anything: `note` says why; the ops
/// it would not run (unsupported) are kept.
fn cut_short(result: &mut PhaseResult, note: String, ops_out: &[Option<OpResult>]) {
    result.complete = false;
    result.note = Some(note);
    result.ops = ops_out.iter().flatten().cloned().collect();
}

/// A name as a file name: letters, digits, `-`, `_` and `.` kept, anything else `_`.
fn safe_name(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect()
}

/// ", 1.52 CPU s (0.76 cores), 512 MiB peak" for console lines.
fn usage_text(u: Option<&resources::Usage>) -> String {
    u.map(|u| {
        format!(
            ", {:.2} CPU s ({:.2} cores), {} peak {}",
            u.cpu_s,
            u.cpu_cores,
            crate::format::mib(u.memory_peak_bytes),
            u.memory_kind.to_uppercase()
        )
    })
    .unwrap_or_default()
}

/// The plan's attributes, those read from the data as the integer range their values
/// span there (what an update of one writes).
fn write_ranges(plan: &Plan, ds: &Dataset) -> Vec<AttributePlan> {
    let mut out = plan.attributes.clone();
    for (i, a) in out.iter_mut().enumerate() {
        if !matches!(a.gen, AttributeGen::Data { .. }) || a.def.kind != driver::AttrKind::Integer {
            continue;
        }
        let values = ds.attributes.iter().filter_map(|r| match r.get(i) {
            Some(driver::AttrValue::Integer(v)) => Some(*v),
            _ => None,
        });
        let (min, max) = values.fold((i64::MAX, i64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
        if min <= max {
            a.gen = AttributeGen::Integer { min, max };
        }
    }
    out
}

/// Each distinct filter of the plan's ops, with how much of `ds` it admits.
fn filter_shares(plan: &Plan, ds: &Dataset) -> Vec<FilterShare> {
    let schema = ds.schema("selectivity");
    let mut out: Vec<FilterShare> = Vec::new();
    for f in plan.phases.iter().flat_map(|p| &p.ops).filter_map(|o| o.filter.as_ref()) {
        let filter = f.to_string();
        if out.iter().any(|s| s.filter == filter) {
            continue;
        }
        let admitted = ds.attributes.iter().filter(|a| f.matches(&schema, a)).count();
        let selectivity = if ds.is_empty() { 0.0 } else { admitted as f64 / ds.len() as f64 };
        out.push(FilterShare { filter, admitted, selectivity });
    }
    out
}

fn describe_op(op: &OpPlan, caps: &Capabilities, params: &[ParamDef]) -> OpDescription {
    OpDescription {
        kind: op.kind,
        label: op.label.clone(),
        note: caps.support(op.kind).note().map(str::to_string),
        k: op.kind.is_search().then_some(op.k),
        filter: op.filter.as_ref().map(|f| f.to_string()),
        expand: op.expand.map(|e| ExpandInfo { seeds: e.seeds, hops: e.hops }),
        params: op.params.clone().into_iter().collect(),
        param_use: ParamUse::of(params, op.kind, &op.params),
    }
}

fn schedule_info(phase: &PhasePlan, threads: &ClientThreads) -> ScheduleInfo {
    let (duration_s, requests) = match phase.stop {
        Stop::Duration(d) => (Some(d.as_secs_f64()), None),
        Stop::Requests(n) => (None, Some(n)),
    };
    let (mode, rate, arrival) = match phase.schedule {
        Schedule::Closed { .. } => (ScheduleMode::Closed, None, None),
        Schedule::Open { rate, arrival, .. } => {
            (ScheduleMode::Open, Some(rate), Some(format!("{arrival:?}").to_lowercase()))
        }
    };
    let concurrency = phase.schedule.concurrency();
    ScheduleInfo {
        mode,
        concurrency,
        rate,
        arrival,
        duration_s,
        requests,
        client_threads: Some(threads.used_by(concurrency)),
    }
}
