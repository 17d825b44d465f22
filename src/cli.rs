//! The command line: `run`, `validate`, `engines`, `compare`. Each command returns its exit code;
//! errors carry theirs (`Error::exit_code`): 0 ok, 1 runtime failure, 2 bad input.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::driver::{self, redact_url, EngineConfig, OpKind};
use crate::error::{Error, Result};
use crate::runner::{self, console, RunOptions};
use crate::spec::{self, Overrides, Plan, Schedule, Stop};

#[derive(Debug, Parser)]
#[command(
    name = "dbbench",
    version,
    about = "Run declared workloads against real datastores and see which one fits the job, with evidence.",
    long_about = "Run declared workloads against real datastores and see which one fits the job, with evidence.\n\n\
        A workload file (TOML; see workloads/reference.toml for every key) names a dataset, the engines to \
        compare and the phases to run. dbbench loads the same data into each engine in turn, runs each phase \
        (closed loop with `concurrency`, or open loop with `rate`; a stream phase writes and searches at once, \
        each at its own rate; expand walks links from kNN seeds, GraphRAG-style; a recovery phase kills the engine under \
        inserts, restarts it and restores it from its own backup), records latency in HDR histograms, scores retrieval quality against exact \
        ground truth (over the records live at each search when the data changes) and relevance judgments, \
        and writes results.json into a run folder.\n\n\
        Exit codes: 0 ok, 1 runtime failure (engine failed, run interrupted), 2 bad input (file, flags, values).",
    after_help = "Examples:\n  dbbench run workloads/rag.toml\n  dbbench run workloads/oltp.toml --engines sqlite --duration 10s\n  dbbench run workloads/growth.toml --out results/growth\n  dbbench run workloads/streaming.toml --engines sqlite,pgvector\n  dbbench run workloads/graphrag.toml --engines sqlite,pgvector,neo4j\n  dbbench run workloads/recovery.toml --engines sqlite,pgvector\n  dbbench run workloads/sharded.toml --engines pgvector --shard 0/3 --start-at 2026-12-04T22:30:00Z\n  dbbench validate workloads/rag.toml\n  dbbench engines workloads/rag.toml\n  dbbench compare results/baselines/ci-sqlite results/latest --max-regression 25%"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a workload against its engines and write results.json into a run folder.
    ///
    /// Engines that cannot be reached are skipped (with the reason and the command that
    /// starts them) and the run goes on with the others; --require-all makes that a failure.
    /// A workload with `dataset.sizes` runs once per size into <out>/size-<N>/ and draws
    /// how each engine's figures grow with the data in <out>/report.html.
    Run(RunArgs),
    /// Check a workload file and print the plan; contacts no engine and loads no data.
    Validate {
        /// The workload file.
        workload: PathBuf,
    },
    /// List the drivers with their capabilities, and whether each engine answers.
    ///
    /// With a workload file, checks that file's engines at their configured URLs;
    /// without one, every driver at its default URL.
    Engines {
        /// A workload file whose engines to check.
        workload: Option<PathBuf>,
    },
    /// Compare a candidate run with a baseline and fail (exit 1) on a regression beyond the
    /// noise; exit 2 when the runs are not comparable (different workload or dataset, or
    /// timing from different machines). With --ab, measures both sides first, interleaved.
    Compare(crate::compare::CompareArgs),
    /// Rebuild report.html, report.md and hlog/ from results alone.
    ///
    /// Given several results of the same workload (e.g. from several load machines, or the
    /// shards of a `--shard` run), merges them first: histograms are added, never
    /// percentiles averaged; throughputs of runs at the same time add up. A shard that is
    /// missing or was cut short leaves the merged run incomplete, naming it.
    Report {
        /// results.json files, or run folders holding one.
        #[arg(required = true)]
        results: Vec<PathBuf>,
        /// Where to write the reports [default: the folder of the single results file].
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Internal: the writer a recovery phase kills (reads its job as JSON on stdin).
    #[command(name = "__recovery-writer", hide = true)]
    RecoveryWriter,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The workload file (TOML).
    pub workload: PathBuf,
    /// Run only these engines (names of [engines.NAME] tables, comma-separated), even
    /// ones the file disables.
    #[arg(long, value_delimiter = ',')]
    pub engines: Option<Vec<String>>,
    /// The run folder [default: results/<UTC timestamp>-<workload>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Seed for data generation, attributes and request choice (overrides workload.seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Measure every timed phase for this long instead of its own duration (e.g. 10s, 2m);
    /// phases that stop after a number of requests (quality passes) keep their count.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Fail (exit 1) when any engine is skipped because it cannot be reached.
    #[arg(long)]
    pub require_all: bool,
    /// Where exact ground truth is cached.
    #[arg(long, default_value = ".dbbench/cache", env = "DBBENCH_CACHE")]
    pub cache: PathBuf,
    /// Never draw progress bars (they are drawn only on a terminal anyway).
    #[arg(long)]
    pub no_progress: bool,
    /// Measure every phase N times (after one load and one warmup per phase); results.json
    /// holds each repetition as its own phase entry, for `dbbench compare` to see the noise.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Be load generator I of N of one run (0-based, e.g. 0/3): this process takes its
    /// share of the workers, of the open-loop arrivals and of the queries. `--shard N`
    /// alone takes I from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job sets it). Needs
    /// --start-at; one engine (--engines) at a time. Shard 0 loads the data; merge the
    /// shards' results with `dbbench report a.json b.json ... --out DIR`.
    #[arg(long, value_name = "I/N", requires = "start_at", help_heading = "Sharded runs")]
    pub shard: Option<String>,
    /// The agreed start of a sharded run (RFC 3339, e.g. 2026-12-04T22:30:00Z), the same
    /// for every shard: each starts its phases on one timeline from it. Leave shard 0 time
    /// to load first; machines' clocks must agree (NTP).
    #[arg(long, value_name = "TIME", requires = "shard", value_parser = runner::shard::parse_start_at, help_heading = "Sharded runs")]
    pub start_at: Option<chrono::DateTime<chrono::Utc>>,
    /// No shard loads: the collection is there from an earlier run, and every shard
    /// attaches to it.
    #[arg(long, requires = "shard", help_heading = "Sharded runs")]
    pub skip_load: bool,
    /// How long a shard that does not load waits for the collection to be all there.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration, help_heading = "Sharded runs")]
    pub ready_timeout: Duration,
    /// Write every request's latency and due time to <out>/raw/<engine>/<phase>/<op>.tsv
    /// (large: one line a request), to check a merge or for analysis of your own.
    #[arg(long)]
    pub raw_latencies: bool,
}

pub(crate) fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e}; write e.g. 500ms, 10s or 2m"))?;
    if d.is_zero() {
        return Err("must be more than 0s".into());
    }
    Ok(d)
}

/// Run the parsed command; returns the exit code.
pub async fn execute(cli: Cli, cancel: CancellationToken) -> Result<i32> {
    match cli.command {
        Command::Run(args) => run(args, cancel).await,
        Command::Validate { workload } => {
            let plan = spec::load_plan(&workload, &Overrides::default())?;
            print!("{}", describe_plan(&plan));
            println!("\n{}: ok", workload.display());
            Ok(0)
        }
        Command::Engines { workload } => engines(workload).await,
        Command::Compare(args) if args.ab => crate::compare::ab::command(&args, cancel).await,
        Command::Compare(args) => crate::compare::command(&args),
        Command::Report { results, out } => report(results, out),
        Command::RecoveryWriter => {
            let mut job = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut job)
                .map_err(|e| crate::error::Error::Runtime(format!("recovery writer: stdin: {e}")))?;
            let job = serde_json::from_str(&job)
                .map_err(|e| crate::error::Error::Runtime(format!("recovery writer: bad job: {e}")))?;
            runner::recovery::writer(job)
                .await
                .map_err(|e| crate::error::Error::Runtime(format!("recovery writer: {e}")))?;
            Ok(0)
        }
    }
}

async fn run(args: RunArgs, cancel: CancellationToken) -> Result<i32> {
    let overrides = Overrides { seed: args.seed, duration: args.duration, engines: args.engines.clone() };
    let plan = spec::load_plan(&args.workload, &overrides)?;
    let shard = match (&args.shard, args.start_at) {
        (Some(s), Some(start_at)) => {
            let job_index = std::env::var("JOB_COMPLETION_INDEX").ok();
            let shard = runner::shard::Shard::parse(s, job_index.as_deref())
                .map_err(|why| Error::Input(format!("--shard: {why}")))?;
            runner::shard::check(&plan, shard)?;
            let ago = chrono::Utc::now() - start_at;
            if ago > chrono::Duration::zero() {
                return Err(Error::Input(format!(
                    "--start-at {}: that was {}s ago, and every phase would start late; give a time ahead, far enough for shard 0 to load",
                    start_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    ago.num_seconds().max(1)
                )));
            }
            Some(runner::shard::ShardRun {
                shard,
                start_at,
                skip_load: args.skip_load,
                ready_timeout: args.ready_timeout,
            })
        }
        _ => None,
    };
    let (run_id, default_out) = match &shard {
        // Every shard of a run shares its id and folder; each writes a folder of its own.
        Some(sr) => {
            let base = sr.run_base(&plan.workload.name);
            (format!("{base}-{}", sr.dir_name()), PathBuf::from("results").join(base).join(sr.dir_name()))
        }
        None => {
            let id = runner::new_run_id(&plan.workload.name);
            let out = PathBuf::from("results").join(&id);
            (id, out)
        }
    };
    let out_dir = args.out.clone().unwrap_or(default_out);
    let opts = RunOptions {
        run_id,
        out_dir: out_dir.clone(),
        cache_dir: args.cache.clone(),
        progress: !args.no_progress && std::io::stderr().is_terminal(),
        repeat: args.repeat,
        shard,
        raw_latencies: args.raw_latencies,
    };
    console::note(&format!(
        "workload {} ({}), seed {}",
        plan.workload.name,
        args.workload.display(),
        plan.workload.seed
    ));
    if !plan.dataset.sizes.is_empty() {
        return run_sizes(plan, opts, cancel, args.require_all).await;
    }
    let shard = opts.shard.clone();
    let summary = runner::run(plan, opts, cancel).await?;
    println!("\n{}", console::summary_table(&summary.results));
    println!("results: {}", summary.results_path.display());
    if let Some(sr) = shard {
        let run_dir = out_dir.parent().map(|p| p.display().to_string()).unwrap_or_else(|| ".".into());
        println!(
            "this is {}; when every shard is done, merge them: dbbench report {run_dir}/shard-*/results.json --out {run_dir}/merged",
            sr.shard.label()
        );
    }
    write_run_reports(&summary.results, &out_dir);

    let interrupted = summary.interrupted;
    run_outcome(&[(None, &summary)], interrupted, &summary.results_path, args.require_all)
}

/// The exit of a run, or of the runs at each of `dataset.sizes` (each labelled with its
/// size): interrupted first, then engines that failed, then, with --require-all, engines
/// that could not be reached. Unreachable engines are said once, with how to start them.
fn run_outcome(
    runs: &[(Option<usize>, &runner::RunSummary)],
    interrupted: bool,
    kept_in: &std::path::Path,
    require_all: bool,
) -> Result<i32> {
    let mut skipped: Vec<&crate::results::EngineResult> = Vec::new();
    for e in runs.iter().flat_map(|(_, s)| s.skipped_engines()) {
        if !skipped.iter().any(|s| s.name == e.name) {
            skipped.push(e);
        }
    }
    if !skipped.is_empty() {
        eprintln!("\nskipped engines (not reachable):");
        for e in &skipped {
            eprintln!(
                "  {}: {}\n    start it with: {}",
                e.name,
                e.reason.as_deref().unwrap_or(""),
                e.start_hint.as_deref().unwrap_or("-")
            );
        }
    }
    if interrupted {
        return Err(Error::Incomplete(format!(
            "interrupted: what was measured is in {} (marked incomplete)",
            kept_in.display()
        )));
    }
    let failed: Vec<String> = runs
        .iter()
        .flat_map(|(n, s)| {
            let at = n.map(|n| format!(" at size {n}")).unwrap_or_default();
            s.failed_engines()
                .into_iter()
                .map(move |e| format!("{}{at}: {}", e.name, e.reason.as_deref().unwrap_or("failed")))
        })
        .collect();
    if !failed.is_empty() {
        return Err(Error::Incomplete(format!(
            "the run is incomplete, {} (results measured before the failure are in {})",
            failed.join("; "),
            kept_in.display()
        )));
    }
    if require_all && !skipped.is_empty() {
        let names: Vec<&str> = skipped.iter().map(|e| e.name.as_str()).collect();
        return Err(Error::Incomplete(format!("--require-all: engines not reachable: {}", names.join(", "))));
    }
    Ok(0)
}

/// `dataset.sizes`: a run per size in `<out>/size-<N>/`, each with its reports, then the
/// growth report over them in `<out>`. The exit code is the worst of the sizes'.
async fn run_sizes(plan: spec::Plan, opts: RunOptions, cancel: CancellationToken, require_all: bool) -> Result<i32> {
    let out_dir = opts.out_dir.clone();
    let expected = plan.dataset.sizes.len();
    let runs = runner::run_sizes(plan, opts, cancel.clone()).await?;
    let mut dirs = Vec::new();
    for (n, summary) in &runs {
        println!("\nsize {n}:\n{}", console::summary_table(&summary.results));
        let dir = runner::size_dir(*n);
        write_run_reports(&summary.results, &out_dir.join(&dir));
        dirs.push(dir);
    }
    let folded: Vec<(usize, &crate::results::RunResults)> = runs.iter().map(|(n, s)| (*n, &s.results)).collect();
    let scaling = crate::report::scaling::build(&folded, &dirs, expected);
    match crate::report::scaling::write(&scaling, &out_dir) {
        Ok(_) => println!("growth by size: {}", out_dir.join(crate::report::HTML_FILE).display()),
        Err(e) => console::warn(&format!("the growth report was not written: {e}")),
    }
    let interrupted = cancel.is_cancelled() || runs.iter().any(|(_, s)| s.interrupted);
    let labelled: Vec<(Option<usize>, &runner::RunSummary)> = runs.iter().map(|(n, s)| (Some(*n), s)).collect();
    run_outcome(&labelled, interrupted, &out_dir, require_all)
}

/// Reports beside results.json at the end of a run, also an incomplete one. A report
/// that cannot be written is a warning: the measurements are already safe on disk and
/// `dbbench report` can rebuild it.
fn write_run_reports(results: &crate::results::RunResults, out_dir: &std::path::Path) {
    match crate::report::write_reports(results, out_dir) {
        Ok(_) => println!("report: {}", out_dir.join(crate::report::HTML_FILE).display()),
        Err(e) => console::warn(&format!(
            "reports not written: {e} (rebuild them with: dbbench report {})",
            out_dir.display()
        )),
    }
}

fn report(inputs: Vec<PathBuf>, out: Option<PathBuf>) -> Result<i32> {
    let runs = inputs.iter().map(|p| crate::results::RunResults::read(p)).collect::<Result<Vec<_>>>()?;
    let out_dir = match out {
        Some(o) => o,
        None if inputs.len() == 1 => {
            let p = &inputs[0];
            if p.is_dir() {
                p.clone()
            } else {
                p.parent()
                    .map(PathBuf::from)
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or_else(|| PathBuf::from("."))
            }
        }
        None => return Err(Error::Input("merging several results needs --out DIR for the merged report".into())),
    };
    let merged = crate::results::merge(runs)?;
    if inputs.len() > 1 {
        std::fs::create_dir_all(&out_dir).map_err(|e| Error::io(&out_dir, e))?;
        merged.write(&out_dir)?;
    }
    for p in crate::report::write_reports(&merged, &out_dir)? {
        println!("{}", p.display());
    }
    Ok(0)
}

/// The plan in words, for `validate`.
pub fn describe_plan(plan: &Plan) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let w = &plan.workload;
    let _ = writeln!(out, "workload {} (seed {}, sha256 {})", w.name, w.seed, &w.sha256[..w.sha256.len().min(12)]);
    if let Some(d) = &w.description {
        let _ = writeln!(out, "  {d}");
    }
    let d = &plan.dataset;
    let _ = writeln!(out, "dataset: {:?}", d.source);
    for (what, p) in [
        ("path", &d.path),
        ("corpus_vectors", &d.corpus_vectors),
        ("query_vectors", &d.query_vectors),
        ("qrels", &d.qrels),
        ("base_vectors", &d.base_vectors),
    ] {
        if let Some(p) = p {
            let _ = writeln!(out, "  {what}: {} ({})", p.display(), if p.exists() { "present" } else { "MISSING" });
        }
    }
    if d.source != spec::DatasetSource::Synthetic {
        let what = match (d.fallback, &d.missing_hint) {
            (spec::Fallback::Synthetic, _) => "synthetic data stands in".to_string(),
            (spec::Fallback::Error, Some(hint)) => format!("error: {hint}"),
            (spec::Fallback::Error, None) => "error".to_string(),
        };
        let _ = writeln!(out, "  when missing: {what}");
    }
    if !d.sizes.is_empty() {
        let sizes: Vec<String> = d.sizes.iter().map(|n| n.to_string()).collect();
        let _ = writeln!(out, "  sizes: {} (a run each, on the first N documents, in size-<N>/)", sizes.join(", "));
    }
    if let Some(share) = d.stream {
        let _ = writeln!(
            out,
            "  stream: the last {} of the records held out of the load, for inserts to insert in a seeded order",
            crate::format::percent(share)
        );
    }
    if let Some(n) = d.query_sample {
        let _ = writeln!(out, "  queries: a sample of {n}, drawn with the seed");
    }
    for a in &plan.attributes {
        let kind = format!("{:?}", a.def.kind).to_lowercase();
        let how = match &a.gen {
            spec::AttributeGen::Keyword { values, weights } => format!("drawn from {values:?}, weights {weights:?}"),
            spec::AttributeGen::Integer { min, max } => format!("drawn uniformly from {min} to {max}"),
            spec::AttributeGen::Data { field } => format!("read from each document's metadata.{field}"),
        };
        let _ = writeln!(out, "attribute {} ({kind}): {how}", a.def.name);
    }
    for e in &plan.engines {
        let url = e.config.url.as_deref().map(redact_url).unwrap_or_else(|| "-".into());
        let _ = writeln!(out, "engine {} (driver {}, {url})", e.config.name, e.kind.kind);
        for (k, v) in driver::redact_settings(&e.config.settings) {
            let _ = writeln!(out, "  {k} = {v}");
        }
    }
    let l = &plan.load;
    let _ = writeln!(out, "load: batches of {}, {} in flight, cleanup {}", l.batch_size, l.concurrency, l.cleanup);
    for p in &plan.phases {
        let stop = match p.stop {
            Stop::Duration(d) => format!("{}", humantime::format_duration(d)),
            Stop::Requests(n) => format!("{n} requests"),
        };
        let sched = match p.schedule {
            Schedule::Closed { concurrency } => format!("closed loop, concurrency {concurrency}"),
            Schedule::Open { rate, arrival, concurrency } => {
                format!("open loop, {rate} req/s {arrival:?}, up to {concurrency} in flight")
            }
        };
        if let Some(r) = &p.recovery {
            let mut steps = Vec::new();
            if r.crash {
                steps.push(format!(
                    "crash (inserts at {}/s from {} workers, SIGKILL after {}, every insert read back)",
                    r.write_rate,
                    r.write_concurrency,
                    humantime::format_duration(r.kill_after)
                ));
            }
            if r.restart {
                steps.push("restart (clean stop, start over the data, timed to the first correct answer)".into());
            }
            if r.backup {
                let damage = if r.damage == spec::Damage::Truncate { ", the backup truncated first" } else { "" };
                steps.push(format!("backup and restore with the engine's own tool{damage}, verified"));
            }
            let _ = writeln!(
                out,
                "phase {}: recovery: {}; {} verification queries; servers restarted with {} within {}",
                p.name,
                steps.join(", then "),
                r.verify_queries,
                r.up.display(),
                humantime::format_duration(r.restart_timeout)
            );
            continue;
        }
        match &p.stream {
            Some(st) => {
                let length = match (st.records, st.writes) {
                    (_, Some(w)) => format!("{w} writes"),
                    (Some(r), None) => format!("until {r} held-out records are inserted"),
                    (None, None) => "until every held-out record is inserted".to_string(),
                };
                let probe = if st.freshness {
                    format!(
                        "; every {}th insert probed for freshness every {}, bound {}",
                        st.probe_every,
                        humantime::format_duration(st.probe_interval),
                        humantime::format_duration(st.visibility_bound)
                    )
                } else {
                    String::new()
                };
                let _ = writeln!(
                    out,
                    "phase {}: stream, writes at {}/s ({} workers) and searches at {}/s ({} workers), {length}, {} checkpoints{probe}",
                    p.name,
                    st.write_rate,
                    st.write_concurrency,
                    st.search_rate,
                    p.schedule.concurrency() - st.write_concurrency,
                    st.checkpoints
                );
            }
            None => {
                let warmup = humantime::format_duration(p.warmup);
                let _ = writeln!(out, "phase {}: {stop}, warmup {warmup}, {sched}", p.name);
            }
        }
        if let Some(e) = &p.effort {
            let list = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
            let what = match e.mode {
                spec::EffortMode::Sweep => "sweep: each effort its own measured step".to_string(),
                spec::EffortMode::Tune { target, tuning_share } => format!(
                    "tuned to recall@k >= {target} on {:.0}% of the queries, measured on the rest; ladder",
                    tuning_share * 100.0
                ),
            };
            let _ = writeln!(out, "  {what}: effort {}", list(&e.effort));
            for (engine, values) in &e.per_engine {
                let _ = writeln!(out, "    {engine}: its own knob at {}", list(values));
            }
        }
        let total: f64 = p.ops.iter().map(|o| o.weight).sum();
        for o in &p.ops {
            let mut line = format!("  {:>5.1}% {}", 100.0 * o.weight / total, o.label);
            match o.expand {
                Some(e) => {
                    let _ = write!(line, " seeds={} hops={} max_results={}", e.seeds, e.hops, o.k);
                }
                None if o.kind.is_search() => {
                    let _ = write!(line, " k={}", o.k);
                }
                None => {}
            }
            if let Some(f) = &o.filter {
                let _ = write!(line, " where {f}");
            }
            if matches!(o.kind, OpKind::Get | OpKind::Update | OpKind::Scan | OpKind::ReadModifyWrite) {
                let _ = write!(line, " keys={:?}", o.keys);
            }
            if !o.params.is_empty() {
                let _ = write!(line, " params={:?}", o.params);
            }
            let _ = writeln!(out, "{line}");
            // Which engine applies which param: the rest run without it, recorded so.
            for e in &plan.engines {
                if let Some(u) = driver::ParamUse::of(e.kind.params, o.kind, &o.params) {
                    let list = |v: &[String]| if v.is_empty() { "none".to_string() } else { v.join(", ") };
                    let _ = writeln!(
                        out,
                        "          {}: applies {}; not applicable: {}",
                        e.config.name,
                        list(&u.applied),
                        list(&u.not_applicable)
                    );
                }
            }
        }
    }
    out
}

async fn engines(workload: Option<PathBuf>) -> Result<i32> {
    let configs: Vec<(EngineConfig, &'static driver::DriverKind)> = match &workload {
        Some(path) => {
            spec::load_plan(path, &Overrides::default())?.engines.into_iter().map(|e| (e.config, e.kind)).collect()
        }
        None => driver::registry()
            .iter()
            .filter(|k| !k.hidden)
            .map(|k| {
                (
                    EngineConfig {
                        name: k.kind.to_string(),
                        url: k.default_url.map(str::to_string),
                        settings: toml::Table::new(),
                        base_dir: PathBuf::from("."),
                    },
                    k,
                )
            })
            .collect(),
    };
    for (cfg, kind) in configs {
        let caps = (kind.capabilities)();
        let ops: Vec<String> = caps
            .ops
            .iter()
            .filter(|(_, s)| s.runs())
            .map(|(k, s)| match s.note() {
                Some(_) => format!("{k}*"),
                None => k.to_string(),
            })
            .collect();
        let reach = match (kind.open)(&cfg) {
            Ok(d) => match tokio::time::timeout(runner::PING_TIMEOUT, d.ping()).await {
                Ok(Ok(())) => "reachable".to_string(),
                Ok(Err(e)) => format!("NOT reachable: {}\n    start it with: {}", e.message, kind.start_hint),
                Err(_) => format!("NOT reachable: no answer\n    start it with: {}", kind.start_hint),
            },
            Err(e) => format!("cannot open: {e}"),
        };
        println!("{} (driver {}): {}", cfg.name, kind.kind, kind.summary);
        if let Some(u) = &cfg.url {
            println!("  url: {}", redact_url(u));
        }
        println!("  ops: {}", ops.join(", "));
        for (k, s) in &caps.ops {
            if let Some(n) = s.note() {
                println!("    {k}*: {n}");
            }
        }
        println!(
            "  filters: {}, transactions: {}",
            if caps.filters.runs() { "yes" } else { "no" },
            if caps.transactions { "yes" } else { "no" }
        );
        if kind.params.is_empty() {
            println!("  params: none (a workload's per-op params are not applicable to it)");
        } else {
            println!("  params (per op, params = {{ name = value }}):");
            for p in kind.params {
                let ops: Vec<&str> = p.ops.iter().map(|k| k.as_str()).collect();
                println!("    {} ({}): {}; {}", p.name, ops.join(", "), p.kind.describe(), p.summary);
            }
        }
        println!("  {reach}");
    }
    Ok(0)
}
