//! `report.html`: one self-contained page (inline CSS, inline SVG, no script, nothing
//! fetched from the network), so it can be attached to a ticket or opened years later.
//! The verdict comes first, then the per-phase tables and charts, then the conditions
//! the numbers were measured under.
//!
//! The page is `templates/report.html` filled from the serde context structs below, in
//! criterion.rs's way: this file decides *what* the page says (plain text and numbers),
//! the template decides how it looks. Nothing here writes markup, and nothing here
//! escapes: the template engine escapes every value it inserts.
//!
//! Why minijinja (over askama and maud):
//! - it takes serde context structs as they are, so the context is the same kind of
//!   value as results.json and can be dumped or tested as data;
//! - no proc macro and, with default features off, no dependency beyond serde: on a
//!   2-core machine it adds seconds to a cold build, and editing the template rebuilds
//!   one `include_str!` instead of re-running a derive over every template;
//! - askama checks templates at compile time, which is the one thing lost, but its
//!   current release needs a newer Rust than this crate's `rust-version`, and maud is
//!   Rust macros rather than template files. The loss is bounded: undefined values are
//!   errors (`UndefinedBehavior::Strict`), the template is parsed on every render, and
//!   the tests below render every branch of it;
//! - auto-escaping follows the template's name (`.html`), so a value cannot go out
//!   unescaped by a forgotten call.
//!
//! Charts are plotters SVG from `charts.rs` (which escapes its own text). They are the
//! only markup the template inserts as is, and only through [`TrustedSvg`], which
//! nothing but a drawn chart constructs; the template itself never uses `|safe`. A
//! chart that cannot be drawn becomes a note on the page, never a failed report.
//!
//! This module must never contact an engine, read anything but the results, or let
//! text from results (names, errors, settings) reach the page unescaped.

use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;

use super::recommend::{Outcome, Verdict};
use super::{charts, effort, phase_views, OpView, PhaseView};
use crate::driver::OpKind;
use crate::error::{Error, Result};
use crate::format;
use crate::metric::TABLE_COLUMNS;
use crate::metrics::decode_histogram;
use crate::results::{EngineResult, EngineStatus, IntervalResult, Machine, OpStatus, RunResults, ScheduleMode};

const TEMPLATE_NAME: &str = "report.html";
const TEMPLATE: &str = include_str!("templates/report.html");

/// The whole page, from the results and their verdict.
pub fn render(r: &RunResults, v: &Verdict) -> Result<String> {
    render_page(&Page::of(r, v))
}

fn render_page(page: &Page) -> Result<String> {
    let fail = |e: minijinja::Error| Error::Runtime(format!("{TEMPLATE_NAME}: {e:#}"));
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Block tags on lines of their own leave no blank lines behind.
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()
        .map_err(fail)?;
    env.set_syntax(syntax);
    // The template cannot mark anything safe: trusted markup comes only from TrustedSvg.
    env.remove_filter("safe");
    env.add_template(TEMPLATE_NAME, TEMPLATE).map_err(fail)?;
    env.get_template(TEMPLATE_NAME).map_err(fail)?.render(Value::from(minijinja::value::Serde(page))).map_err(fail)
}

/// SVG that dbbench drew itself, the only markup the template inserts unescaped.
///
/// It serializes as minijinja's safe string; serialized anywhere else it is a plain
/// string.
#[derive(Debug, Clone)]
pub struct TrustedSvg(String);

impl Serialize for TrustedSvg {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        Value::from_safe_string(self.0.clone()).serialize(s)
    }
}

/// A chart, or why it is not there.
#[derive(Serialize)]
struct Chart {
    /// What the chart shows, for the note when it could not be drawn.
    what: String,
    svg: Option<TrustedSvg>,
    not_drawn: Option<String>,
}

impl Chart {
    fn of(what: impl Into<String>, drawn: std::result::Result<String, String>) -> Chart {
        let what = what.into();
        match drawn {
            Ok(svg) => Chart { what, svg: Some(TrustedSvg(svg)), not_drawn: None },
            Err(why) => Chart { what, svg: None, not_drawn: Some(why) },
        }
    }
}

#[derive(Serialize)]
struct Page<'a> {
    workload: &'a str,
    description: Option<&'a str>,
    run_id: &'a str,
    started_at: &'a str,
    /// Why the run is incomplete; None when it is complete.
    incomplete: Option<&'a str>,
    verdict: VerdictView<'a>,
    engines: Vec<EngineRow<'a>>,
    /// Whether the engines table has a topology column (some engine reported one).
    topology: bool,
    /// Tuned comparisons at a target recall, then sweep frontiers.
    tuned: Vec<TunedSection>,
    frontiers: Vec<FrontierSection>,
    /// Stream phases: checkpoints and freshness.
    streams: Vec<StreamSection>,
    /// Recovery phases: crash, restart, backup and restore.
    recoveries: Vec<super::recovery::RecoveryView>,
    phases: Vec<PhaseSection>,
    load: LoadSection,
    resource_notes: Vec<String>,
    resources: Vec<super::ResourceRow>,
    /// Memory and CPU over time, when any engine's processes were sampled.
    resource_chart: Option<Chart>,
    conditions: Conditions<'a>,
}

const NO_REASON: &str = "reason not recorded";

fn resource_chart(r: &RunResults) -> Option<Chart> {
    let series: Vec<(String, usize, &[crate::resources::Point])> = r
        .engines
        .iter()
        .filter_map(|e| {
            let t = &e.resources.as_ref()?.timeline;
            (!t.is_empty()).then(|| (e.name.clone(), engine_index(r, &e.name), t.as_slice()))
        })
        .collect();
    (!series.is_empty()).then(|| {
        Chart::of(
            "engine memory and CPU over time",
            charts::resource_timeline("Engine memory and CPU per second, load to last phase", &series),
        )
    })
}

impl<'a> Page<'a> {
    fn of(r: &'a RunResults, v: &'a Verdict) -> Page<'a> {
        let run = &r.run;
        Page {
            workload: &run.workload.name,
            description: run.workload.description.as_deref(),
            run_id: &run.id,
            started_at: &run.started_at,
            incomplete: (!run.complete).then(|| run.incomplete_reason.as_deref().unwrap_or(NO_REASON)),
            verdict: VerdictView::of(v),
            engines: r.engines.iter().map(EngineRow::of).collect(),
            topology: super::any_topology(r),
            tuned: effort::tuned(r).iter().map(TunedSection::of).collect(),
            frontiers: effort::frontiers(r).iter().map(FrontierSection::of).collect(),
            streams: super::streaming::views(r).iter().map(StreamSection::of).collect(),
            recoveries: super::recovery::views(r),
            phases: phase_views(r).iter().map(|p| PhaseSection::of(r, p)).collect(),
            load: LoadSection::of(r),
            resource_notes: super::resource_rows(r).0,
            resources: super::resource_rows(r).1,
            resource_chart: resource_chart(r),
            conditions: Conditions::of(r),
        }
    }
}

#[derive(Serialize)]
struct VerdictView<'a> {
    /// False when the workload states no requirements: then the page lists the fastest
    /// engine per op and says it is not a recommendation.
    recommendation: bool,
    headline: &'a str,
    any_fit: bool,
    reasons: &'a [String],
    winners: Vec<WinnerRow<'a>>,
    engines: Vec<&'a str>,
    requirements: Vec<RequirementRow<'a>>,
}

#[derive(Serialize)]
struct WinnerRow<'a> {
    phase: &'a str,
    op: &'a str,
    engine: &'a str,
    by: &'a str,
    ms: String,
    note: &'a str,
}

#[derive(Serialize)]
struct RequirementRow<'a> {
    requirement: &'a str,
    checks: Vec<CheckCell<'a>>,
}

#[derive(Serialize)]
struct CheckCell<'a> {
    class: &'static str,
    word: &'static str,
    detail: &'a str,
}

impl<'a> VerdictView<'a> {
    fn of(v: &'a Verdict) -> VerdictView<'a> {
        let winners = v
            .winners
            .iter()
            .map(|w| WinnerRow {
                phase: &w.phase,
                op: &w.op,
                engine: w.engine.as_deref().unwrap_or("-"),
                by: w.by,
                ms: format::ms(w.value_ms),
                note: &w.note,
            })
            .collect();
        let rows = v.engines.first().map(|e| e.checks.len()).unwrap_or(0);
        let requirements = (0..rows)
            .map(|i| RequirementRow {
                requirement: v.engines.first().map(|e| e.checks[i].requirement.as_str()).unwrap_or(""),
                checks: v
                    .engines
                    .iter()
                    .map(|e| {
                        let c = &e.checks[i];
                        let class = match c.outcome {
                            Outcome::Pass => "pass",
                            Outcome::Fail => "fail",
                            Outcome::NotMeasured => "nm",
                        };
                        CheckCell { class, word: c.outcome.word(), detail: &c.detail }
                    })
                    .collect(),
            })
            .collect();
        VerdictView {
            recommendation: v.requirements.is_some(),
            headline: &v.headline,
            any_fit: !v.fit.is_empty(),
            reasons: &v.reasons,
            winners,
            engines: v.engines.iter().map(|e| e.engine.as_str()).collect(),
            requirements,
        }
    }
}

#[derive(Serialize)]
struct EngineRow<'a> {
    /// Row class: "", "skipped" or "failed".
    class: &'static str,
    name: &'a str,
    driver: &'a str,
    status: &'static str,
    version: &'a str,
    reason: &'a str,
    start_hint: Option<&'a str>,
    /// Nodes, shards and copies as the engine reported them ("—" when it did not), and
    /// what it said about them.
    topology: String,
    topology_note: Option<&'a str>,
}

impl<'a> EngineRow<'a> {
    fn of(e: &'a EngineResult) -> EngineRow<'a> {
        let (class, status) = match e.status {
            EngineStatus::Ok => ("", "ok"),
            EngineStatus::Skipped => ("skipped", "skipped"),
            EngineStatus::Failed => ("failed", "FAILED"),
        };
        let (topology, topology_note) = super::topology_cells(e);
        EngineRow {
            class,
            name: &e.name,
            driver: &e.driver,
            status,
            version: e.version.as_deref().unwrap_or("-"),
            reason: e.reason.as_deref().unwrap_or(""),
            start_hint: e.start_hint.as_deref(),
            topology,
            topology_note,
        }
    }
}

/// Index of an engine in the run, for its colour.
fn engine_index(r: &RunResults, name: &str) -> usize {
    r.engines.iter().position(|e| e.name == name).unwrap_or(0)
}

#[derive(Serialize)]
struct PhaseSection {
    name: String,
    schedule: String,
    /// Per-engine phase notes: incomplete phases, rates not sustained.
    notes: Vec<String>,
    ops: Vec<OpSection>,
    sweeps: Vec<Chart>,
}

impl PhaseSection {
    fn of(r: &RunResults, p: &PhaseView) -> PhaseSection {
        let mut notes = Vec::new();
        for e in &r.engines {
            let Some(ep) = e.phases.iter().find(|x| x.name == p.name) else {
                continue;
            };
            if !ep.complete {
                notes.push(format!("{}: phase incomplete: {}", e.name, ep.note.as_deref().unwrap_or("")));
            }
            if let Some(rate) = ep.rate.as_ref().filter(|rate| !rate.sustained) {
                notes.push(format!(
                    "{}: target {:.0} req/s NOT sustained (achieved {:.0} req/s, {} never sent)",
                    e.name, rate.target_ops_s, rate.achieved_ops_s, rate.unsent
                ));
            }
        }
        PhaseSection {
            name: p.name.clone(),
            schedule: schedule_text(&p.first.schedule),
            notes,
            ops: p.ops.iter().map(|o| OpSection::of(r, p, o)).collect(),
            sweeps: sweep_charts(r, p),
        }
    }
}

fn schedule_text(s: &crate::results::ScheduleInfo) -> String {
    let mut text = match s.mode {
        ScheduleMode::Open => format!(
            "open loop, {} req/s {}, up to {} in flight",
            s.rate.unwrap_or(0.0),
            s.arrival.as_deref().unwrap_or(""),
            s.concurrency
        ),
        ScheduleMode::Closed => format!("closed loop, concurrency {}", s.concurrency),
    };
    if let Some(d) = s.duration_s {
        text.push_str(&format!(", {d} s"));
    }
    if let Some(n) = s.requests {
        text.push_str(&format!(", {n} requests"));
    }
    if let Some(t) = s.client_threads {
        text.push_str(&format!(", on {t} client thread{}", if t == 1 { "" } else { "s" }));
    }
    text
}

/// `k=v` pairs of an op's search params, space-separated.
fn params_text(params: &serde_json::Map<String, serde_json::Value>) -> String {
    params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
}

#[derive(Serialize)]
struct OpSection {
    label: String,
    kind: String,
    k: Option<usize>,
    filter: Option<String>,
    params: Option<String>,
    table: OpTable,
    /// Engines whose latency histogram could not be read (so are missing from charts).
    unreadable: Vec<String>,
    charts: Vec<Chart>,
}

impl OpSection {
    fn of(r: &RunResults, p: &PhaseView, o: &OpView) -> OpSection {
        let mut hists = Vec::new();
        let mut unreadable = Vec::new();
        for (e, op) in o.engines.iter().filter(|(_, op)| op.status == OpStatus::Ok) {
            match decode_histogram(&op.histograms.latency) {
                Ok(h) => hists.push((e.name.clone(), engine_index(r, &e.name), h)),
                Err(why) => unreadable.push(format!("{}: {why}", e.name)),
            }
        }
        let what = format!("{} / {}", p.name, o.label);
        let series: Vec<(String, usize, &[IntervalResult])> = o
            .engines
            .iter()
            .filter(|(_, op)| op.status == OpStatus::Ok)
            .map(|(e, op)| {
                let elapsed = e.phases.iter().find(|x| x.name == p.name).map(|x| x.elapsed_s).unwrap_or(0.0);
                (e.name.clone(), engine_index(r, &e.name), whole_seconds(&op.intervals, elapsed))
            })
            .collect();
        let memory: Vec<charts::MemorySeries> = o
            .engines
            .iter()
            .filter(|(_, op)| op.status == OpStatus::Ok)
            .map(|(e, _)| (e.name.clone(), engine_index(r, &e.name), phase_memory(e, p)))
            .collect();
        let over_time = if memory.iter().any(|m| !m.2.is_empty()) {
            "throughput, p99 and engine memory"
        } else {
            "throughput and p99"
        };
        let charts = vec![
            Chart::of(
                format!("{what} latency by percentile"),
                charts::spectrum(&format!("{what}: latency by percentile"), &hists),
            ),
            Chart::of(
                format!("{what} over time"),
                charts::timeline(&format!("{what}: {over_time} per whole second"), &series, &memory),
            ),
        ];
        OpSection {
            label: o.label.clone(),
            kind: o.first.op.as_str().to_string(),
            k: o.first.k,
            filter: o.first.filter.clone(),
            params: (!o.first.params.is_empty()).then(|| params_text(&o.first.params)),
            table: OpTable::of(o),
            unreadable,
            charts,
        }
    }
}

/// One op's engines side by side. Every metric column comes from one list
/// ([`TABLE_COLUMNS`], the one metric declaration): its heading, its formatted values
/// and which value is best.
#[derive(Serialize)]
struct OpTable {
    columns: Vec<String>,
    /// Columns of a row that did not run: the metrics and the notes.
    span: usize,
    rows: Vec<OpRow>,
}

#[derive(Serialize)]
struct OpRow {
    engine: String,
    /// Set when the op did not run on this engine (its status), then `cells` is empty
    /// and `notes` holds the reason.
    not_run: Option<String>,
    cells: Vec<Cell>,
    notes: Vec<String>,
}

#[derive(Serialize)]
struct Cell {
    text: String,
    best: bool,
}

impl OpTable {
    fn of(o: &OpView) -> OpTable {
        let columns = TABLE_COLUMNS;
        let best: Vec<Vec<bool>> =
            columns.iter().map(|c| c.best(&o.engines.iter().map(|(_, op)| c.value(op)).collect::<Vec<_>>())).collect();
        let rows = o
            .engines
            .iter()
            .enumerate()
            .map(|(i, (e, op))| {
                if op.status != OpStatus::Ok {
                    return OpRow {
                        engine: e.name.clone(),
                        not_run: Some(op.status.as_str().to_string()),
                        cells: Vec::new(),
                        notes: op.note.iter().cloned().collect(),
                    };
                }
                let cells = columns
                    .iter()
                    .enumerate()
                    .map(|(ci, c)| Cell { text: c.cell(c.value(op)), best: best[ci][i] })
                    .collect();
                let mut notes: Vec<String> = op.note.iter().cloned().collect();
                for (kind, t) in &op.error_kinds {
                    let sample = t.samples.first().map(|s| format!(" (e.g. {s})")).unwrap_or_default();
                    notes.push(format!("{} {kind}{sample}", t.count));
                }
                if op.latency_ms.p99.is_none() && op.count > 0 {
                    notes.push(format!("{} requests: too few for p99", op.count));
                }
                OpRow { engine: e.name.clone(), not_run: None, cells, notes }
            })
            .collect();
        OpTable { columns: columns.iter().map(|c| c.column(o.first.k)).collect(), span: columns.len() + 1, rows }
    }
}

/// The engine's memory per second while `p` was measured, from its timeline: (seconds
/// from the phase's start, bytes); empty where resources were not sampled.
fn phase_memory(e: &EngineResult, p: &PhaseView) -> Vec<(f64, u64)> {
    let (Some(res), Some(u)) =
        (e.resources.as_ref(), e.phases.iter().find(|x| x.name == p.name).and_then(|x| x.resources.as_ref()))
    else {
        return Vec::new();
    };
    res.timeline
        .iter()
        .filter(|pt| pt.t_s >= u.start_s && pt.t_s <= u.start_s + u.seconds + 1.0)
        .map(|pt| (pt.t_s - u.start_s, pt.memory_bytes))
        .collect()
}

/// The intervals without a trailing second that the phase ended inside: its few
/// requests would plot as a collapse of throughput that never happened. A phase shorter
/// than a second keeps what it has.
fn whole_seconds(intervals: &[IntervalResult], elapsed_s: f64) -> &[IntervalResult] {
    match intervals.split_last() {
        Some((last, rest)) if !rest.is_empty() && (last.t_s + 1) as f64 > elapsed_s => rest,
        _ => intervals,
    }
}

/// Ops of one kind and filter whose params differ form a sweep of a search parameter
/// (e.g. ef_search): plot recall against throughput for each engine.
fn sweep_charts(r: &RunResults, p: &PhaseView) -> Vec<Chart> {
    let mut groups: Vec<(OpKind, Option<String>, Vec<&OpView>)> = Vec::new();
    for o in p
        .ops
        .iter()
        .filter(|o| !o.first.params.is_empty() && matches!(o.first.op, OpKind::Knn | OpKind::Text | OpKind::Hybrid))
    {
        match groups.iter_mut().find(|g| g.0 == o.first.op && g.1 == o.first.filter) {
            Some(g) => g.2.push(o),
            None => groups.push((o.first.op, o.first.filter.clone(), vec![o])),
        }
    }
    let mut drawn = Vec::new();
    for (kind, filter, ops) in groups.into_iter().filter(|g| g.2.len() >= 2) {
        let mut series: Vec<charts::SweepSeries> = Vec::new();
        for o in &ops {
            for (e, op) in &o.engines {
                let Some(recall) = op.quality.recall_at_k.filter(|_| op.status == OpStatus::Ok) else {
                    continue;
                };
                let point = charts::SweepPoint {
                    x: op.throughput_ops_s,
                    recall,
                    label: params_text(&op.params),
                    pareto: false,
                };
                match series.iter_mut().find(|s| s.0 == e.name) {
                    Some(s) => s.2.push(point),
                    None => series.push((e.name.clone(), engine_index(r, &e.name), vec![point])),
                }
            }
        }
        let title = format!(
            "{} / {kind}{}: recall against throughput over the parameter sweep",
            p.name,
            filter.as_deref().map(|f| format!(" where {f}")).unwrap_or_default()
        );
        let chart = charts::recall_frontier(&title, "throughput (ops/s)", &series);
        drawn.push(Chart::of(title, chart));
    }
    drawn
}

#[derive(Serialize)]
struct TunedSection {
    title: String,
    rows: Vec<TunedRowView>,
}

#[derive(Serialize)]
struct TunedRowView {
    engine: String,
    op: String,
    setting: String,
    reached: bool,
    summary: String,
    tuning_recall: String,
    heldout_recall: String,
    throughput: String,
    p50: String,
    p99: String,
    tried: usize,
}

impl TunedSection {
    fn of(t: &effort::TunedTable) -> TunedSection {
        TunedSection {
            title: t.title(),
            rows: t
                .rows
                .iter()
                .map(|row| TunedRowView {
                    engine: row.engine.clone(),
                    op: row.op.clone(),
                    setting: row.setting.clone(),
                    reached: row.reached,
                    summary: row.summary.clone(),
                    tuning_recall: format::ratio(row.tuning_recall),
                    heldout_recall: format::ratio(row.heldout_recall),
                    throughput: format::rate(row.throughput_ops_s),
                    p50: format::ms(row.p50_ms),
                    p99: format::ms(row.p99_ms),
                    tried: row.tried,
                })
                .collect(),
        }
    }
}

#[derive(Serialize)]
struct StreamSection {
    phase: String,
    summary: String,
    chart: Chart,
    tables: Vec<super::streaming::Table>,
}

impl StreamSection {
    fn of(v: &super::streaming::StreamView<'_>) -> StreamSection {
        let mut tables = v.freshness_table().into_iter().collect::<Vec<_>>();
        tables.extend(v.checkpoint_tables());
        StreamSection {
            phase: v.phase.clone(),
            summary: v.summary(),
            chart: Chart::of(format!("{} by checkpoint", v.phase), v.chart()),
            tables,
        }
    }
}

#[derive(Serialize)]
struct FrontierSection {
    title: String,
    charts: Vec<Chart>,
    /// Engine, setting, recall, nDCG@10, throughput, p50, p99, requests.
    rows: Vec<[String; 8]>,
}

impl FrontierSection {
    fn of(f: &effort::Frontier) -> FrontierSection {
        let title = format!(
            "{} / {}{}{}: search effort sweep",
            f.phase,
            f.op,
            f.k.map(|k| format!(", recall@{k}")).unwrap_or_default(),
            f.filter.as_deref().map(|x| format!(" where {x}")).unwrap_or_default()
        );
        let series = |x: fn(&effort::FrontierPoint) -> Option<f64>, higher_better: bool| {
            let mut s: Vec<charts::SweepSeries> = f
                .engines
                .iter()
                .map(|(i, name, pts)| {
                    let points = pts
                        .iter()
                        .filter_map(|p| {
                            Some(charts::SweepPoint {
                                x: x(p)?,
                                recall: p.recall?,
                                label: p.setting.clone(),
                                pareto: false,
                            })
                        })
                        .collect();
                    (name.clone(), *i, points)
                })
                .collect();
            charts::mark_pareto(&mut s, higher_better);
            s
        };
        let by_throughput = series(|p| Some(p.throughput_ops_s), true);
        let by_p99 = series(|p| p.p99_ms, false);
        let t1 = format!("{}: recall against throughput (ringed: Pareto-optimal)", f.phase);
        let t2 = format!("{}: recall against p99 latency (ringed: Pareto-optimal)", f.phase);
        let charts = vec![
            Chart::of(t1.clone(), charts::recall_frontier(&t1, "throughput (ops/s)", &by_throughput)),
            Chart::of(t2.clone(), charts::recall_frontier(&t2, "p99 latency (ms)", &by_p99)),
        ];
        let rows = f
            .engines
            .iter()
            .flat_map(|(_, name, pts)| {
                pts.iter().map(move |p| {
                    [
                        name.clone(),
                        p.setting.clone(),
                        format::ratio(p.recall),
                        format::ratio(p.ndcg_at_10),
                        format::rate(p.throughput_ops_s),
                        format::ms(p.p50_ms),
                        format::ms(p.p99_ms),
                        if p.errors > 0 { format!("{} ({} errors)", p.count, p.errors) } else { p.count.to_string() },
                    ]
                })
            })
            .collect();
        FrontierSection { title, charts, rows }
    }
}

#[derive(Serialize)]
struct LoadSection {
    rows: Vec<LoadRow>,
    chart: Chart,
}

#[derive(Serialize)]
struct LoadRow {
    engine: String,
    records: String,
    load_s: String,
    records_per_s: String,
    index_s: String,
    disk_mib: String,
    bytes_per_record: String,
    index: String,
}

impl LoadSection {
    fn of(r: &RunResults) -> LoadSection {
        let mut rows = Vec::new();
        let mut bars = Vec::new();
        for e in r.engines.iter().filter(|e| e.load.is_some() || e.index.is_some()) {
            let dash = || "-".to_string();
            rows.push(LoadRow {
                engine: e.name.clone(),
                records: e.load.as_ref().map(|l| l.records.to_string()).unwrap_or_else(dash),
                load_s: e.load.as_ref().map(|l| format!("{:.2}", l.seconds)).unwrap_or_else(dash),
                records_per_s: e.load.as_ref().map(|l| format!("{:.0}", l.records_per_s)).unwrap_or_else(dash),
                index_s: e.index.as_ref().map(|i| format!("{:.2}", i.seconds)).unwrap_or_else(dash),
                disk_mib: e.disk().map(|(b, _)| format!("{:.1}", format::to_mib(b))).unwrap_or_else(dash),
                bytes_per_record: e.disk().and_then(|(_, per)| per).map(|p| format!("{p:.0}")).unwrap_or_else(dash),
                index: e.index.as_ref().map(|i| i.stats.to_string()).unwrap_or_default(),
            });
            bars.push((e.name.clone(), e.load.as_ref().map(|l| l.seconds), e.index.as_ref().map(|i| i.seconds)));
        }
        let chart =
            Chart::of("load and index build times", charts::load_bars("Load and index build time per engine", &bars));
        LoadSection { rows, chart }
    }
}

#[derive(Serialize)]
struct Conditions<'a> {
    run_id: &'a str,
    incomplete: Option<&'a str>,
    started_at: &'a str,
    finished_at: &'a str,
    workload: &'a str,
    workload_file: &'a str,
    workload_sha256: &'a str,
    seed: u64,
    dataset: &'a crate::results::DatasetInfo,
    judgments_note: Option<&'static str>,
    filters: Vec<String>,
    machine: String,
    dbbench_version: &'a str,
    dbbench_commit: &'a str,
    merged_from: Vec<MergedFrom<'a>>,
    engines: Vec<EngineSettings<'a>>,
    /// The workload's requirements as TOML, when it states any.
    requirements: Option<String>,
}

#[derive(Serialize)]
struct MergedFrom<'a> {
    id: &'a str,
    started_at: &'a str,
    finished_at: &'a str,
    machine: String,
}

#[derive(Serialize)]
struct EngineSettings<'a> {
    name: &'a str,
    version: &'a str,
    url: &'a str,
    settings: Vec<(&'a str, String)>,
    capabilities: Vec<Capability>,
}

/// One part of an engine's capabilities in words; `missing` ones are struck through.
#[derive(Serialize)]
struct Capability {
    text: String,
    missing: bool,
}

impl<'a> Conditions<'a> {
    fn of(r: &'a RunResults) -> Conditions<'a> {
        let run = &r.run;
        let requirements = run.requirements.as_ref().map(|req| {
            #[derive(Serialize)]
            struct Wrapped<'a> {
                requirements: &'a crate::spec::Requirements,
            }
            toml::to_string_pretty(&Wrapped { requirements: req }).unwrap_or_else(|e| format!("(cannot show: {e})"))
        });
        Conditions {
            run_id: &run.id,
            incomplete: (!run.complete).then(|| run.incomplete_reason.as_deref().unwrap_or(NO_REASON)),
            started_at: &run.started_at,
            finished_at: run.finished_at.as_deref().unwrap_or("-"),
            workload: &run.workload.name,
            workload_file: &run.workload.file,
            workload_sha256: &run.workload.sha256,
            seed: run.seed,
            dataset: &run.dataset,
            judgments_note: super::judgments_note(&run.dataset),
            filters: super::filter_lines(&run.dataset),
            machine: machine_text(&run.machine),
            dbbench_version: &r.dbbench.version,
            dbbench_commit: &r.dbbench.commit,
            merged_from: run
                .merged_from
                .iter()
                .map(|x| MergedFrom {
                    id: &x.id,
                    started_at: &x.started_at,
                    finished_at: x.finished_at.as_deref().unwrap_or("-"),
                    machine: machine_text(&x.machine),
                })
                .collect(),
            engines: r
                .engines
                .iter()
                .map(|e| EngineSettings {
                    name: &e.name,
                    version: e.version.as_deref().unwrap_or("-"),
                    url: e.url.as_deref().unwrap_or("-"),
                    settings: e.settings.iter().map(|(k, v)| (k.as_str(), v.to_string())).collect(),
                    capabilities: capabilities(&e.capabilities),
                })
                .collect(),
            requirements,
        }
    }
}

fn machine_text(m: &Machine) -> String {
    format!(
        "{} {} ({}), {} CPUs{}, {}",
        m.os,
        m.kernel.as_deref().unwrap_or(""),
        m.arch,
        m.cpus,
        m.cpu_model.as_deref().map(|c| format!(" ({c})")).unwrap_or_default(),
        m.memory_bytes
            .map(|b| format!("{:.1} GiB memory", b as f64 / (1u64 << 30) as f64))
            .unwrap_or_else(|| "memory unknown".into())
    )
}

/// Capabilities in words: native ops plainly, missing ones struck, the others with
/// their note.
fn capabilities(caps: &serde_json::Value) -> Vec<Capability> {
    let mut parts = Vec::new();
    let said = |text: String| Capability { text, missing: false };
    if let Some(ops) = caps.get("ops").and_then(|o| o.as_object()) {
        for (kind, s) in ops {
            let support = s.get("support").and_then(|x| x.as_str()).unwrap_or("no");
            parts.push(match (support, s.get("note").and_then(|x| x.as_str())) {
                ("native", _) => said(kind.clone()),
                ("no", _) => Capability { text: kind.clone(), missing: true },
                (sup, Some(n)) => said(format!("{kind} ({sup}: {n})")),
                (sup, None) => said(format!("{kind} ({sup})")),
            });
        }
    }
    if let Some(f) = caps.get("filters").and_then(|f| f.get("support")).and_then(|x| x.as_str()) {
        parts.push(said(format!("filters: {f}")));
    }
    if let Some(t) = caps.get("transactions").and_then(|x| x.as_bool()) {
        parts.push(said(format!("transactions: {}", if t { "yes" } else { "no" })));
    }
    parts
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;
    use crate::report::recommend;

    use crate::report::fixture;

    fn page(r: &RunResults) -> String {
        render(r, &recommend::evaluate(r)).unwrap()
    }

    const HOSTILE: &str = "<script>alert('x')</script> & \"quoted\"";
    const HOSTILE_ESCAPED: &str = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;&#x2f;script&gt; &amp; &quot;quoted&quot;";

    #[test]
    fn text_from_results_is_escaped_everywhere() {
        let mut r = fixture();
        r.run.workload.name = HOSTILE.into();
        r.run.workload.description = Some(HOSTILE.into());
        r.run.dataset.fallback_reason = Some(HOSTILE.into());
        r.engines[0].version = Some(HOSTILE.into());
        r.engines[0].settings.insert(HOSTILE.into(), serde_json::Value::String(HOSTILE.into()));
        r.engines[0].phases[0].ops[0].note = Some(HOSTILE.into());
        r.engines[1].reason = Some(HOSTILE.into());
        let html = page(&r);
        assert!(!html.contains("<script"), "no value reaches the page as markup");
        assert!(!html.contains("\"quoted\""));
        // title, h1, description, fallback, version (twice), setting key and value, op note, reason
        assert!(html.matches(HOSTILE_ESCAPED).count() >= 9, "{}", html.matches(HOSTILE_ESCAPED).count());
    }

    /// Moved from report::tests::html_escaping, when `esc` gave way to the engine's
    /// escaping: the same five characters are neutralised (`'` and `/` as hex references).
    #[test]
    fn values_are_escaped_as_html() {
        let mut env = Environment::new();
        env.add_template("t.html", "{{ x }}").unwrap();
        let out = env.get_template("t.html").unwrap().render(minijinja::context! { x => "<a href=\"x\">&'" }).unwrap();
        assert_eq!(out, "&lt;a href=&quot;x&quot;&gt;&amp;&#x27;");
    }

    #[test]
    fn the_template_marks_nothing_safe_itself() {
        assert!(!TEMPLATE.contains("|safe") && !TEMPLATE.contains("| safe"));
        let mut env = Environment::new();
        env.remove_filter("safe");
        env.add_template("t.html", "{{ x|safe }}").unwrap();
        assert!(env.get_template("t.html").unwrap().render(minijinja::context! { x => "<b>" }).is_err());
    }

    #[test]
    fn charts_are_inline_svg_and_a_failed_chart_is_a_note() {
        let r = fixture();
        let html = page(&r);
        assert!(html.contains("<div class=\"chart\"><svg"), "charts go in as markup");
        assert!(!html.contains("&lt;svg"));
        assert!(!html.contains("chart not drawn"));

        let mut r = fixture();
        for e in &mut r.engines {
            for o in e.phases.iter_mut().flat_map(|p| p.ops.iter_mut()).filter(|o| o.label == "get") {
                o.histograms.latency = "not a histogram".into();
            }
        }
        let html = page(&r);
        assert!(html.contains("latency histogram unreadable, sqlite: histogram"), "the engine is named");
        assert!(
            // minijinja's HTML escaping writes '/' as &#x2f; (a browser shows "oltp / get").
            html.contains("oltp &#x2f; get latency by percentile: chart not drawn (no successful requests to plot)"),
            "the report is still written, with a note where the chart was"
        );
        assert!(html.contains("oltp / get: throughput and p99 per whole second"), "the other charts are drawn");
    }

    #[test]
    fn every_section_is_on_the_page() {
        let r = fixture();
        let html = page(&r);
        for want in [
            "<h2 id=\"recommendation\">Recommendation</h2>",
            "Recommended: sqlite, the only engine that meets all 8 requirements.",
            "<td class=\"l pass\"><strong>pass</strong>: p99 32.6 ms &lt;= 35 ms, 7% headroom</td>",
            "<h2>Engines</h2>",
            "<br>start it with: <code>bash services&#x2f;up.sh pgvector</code>",
            "<h2 id=\"phase-search\">Phase search</h2>",
            "<th>p99.9 ms</th>",
            "title=\"best of this column\"",
            "recall against throughput over the parameter sweep",
            "<h2>Load and index build</h2>",
            "<h2>Conditions</h2>",
            "fingerprint <code>",
            "<h3>Engine versions and settings</h3>",
            "&nbsp;=&nbsp;",
            "<h3>Requirements as stated by the workload</h3><pre>",
        ] {
            assert!(html.contains(want), "{want:?} missing");
        }
        assert!(html.starts_with("<!DOCTYPE html>") && html.ends_with("</body></html>\n"));
        assert!(!html.contains("Incomplete run") && !html.contains("merged from"));
    }

    #[test]
    fn op_tables_have_one_heading_and_cell_per_column() {
        let r = fixture();
        let view = phase_views(&r);
        let op = &view[0].ops[0];
        let table = OpTable::of(op);
        assert_eq!(table.columns.len(), TABLE_COLUMNS.len());
        assert_eq!(table.span, TABLE_COLUMNS.len() + 1);
        for row in table.rows.iter().filter(|row| row.not_run.is_none()) {
            assert_eq!(row.cells.len(), TABLE_COLUMNS.len(), "{}", row.engine);
        }
    }

    #[test]
    fn topology_is_a_column_of_the_engines_table_when_an_engine_reported_one() {
        let html = page(&crate::report::markdown::tests::with_topology());
        assert!(html.contains("<th class=\"l\">version</th><th class=\"l\">topology</th>"), "{html}");
        assert!(html.contains(
            "<td class=\"l\">3 nodes, 3 shards × 2 copies<br><span class=\"note\">cluster dbbench-cluster, \
             status green, 6 shard copies on 3 nodes</span></td>"
        ));
        assert!(html.contains(
            "<td class=\"l\">1 node, 1 shard × 2 copies<br><span class=\"note\">cluster dbbench, \
             status yellow, 1 of 2 shard copies started, on 1 node; 1 replica copy unassigned</span></td>"
        ));
        // pgvector (skipped) reported none.
        assert!(html.contains("<td class=\"l\">—</td>"), "{html}");

        let html = page(&fixture());
        assert!(!html.contains(">topology<"), "no column when no engine has one");
        assert!(html.contains("<h2>Engines</h2>"));
    }

    #[test]
    fn incomplete_merged_and_unrequired_runs_say_so() {
        let mut r = fixture();
        r.run.complete = false;
        r.run.incomplete_reason = Some("interrupted (Ctrl-C)".into());
        r.run.requirements = None;
        r.run.merged_from = vec![crate::results::MergedRun {
            id: "run-a".into(),
            started_at: "2026-11-24T02:37:43+00:00".into(),
            finished_at: None,
            machine: r.run.machine.clone(),
            shard: None,
        }];
        let html = page(&r);
        assert!(html.contains("<strong>Incomplete run:</strong> interrupted (Ctrl-C)."));
        assert!(html.contains("INCOMPLETE: interrupted (Ctrl-C)"));
        assert!(html.contains("<h2 id=\"recommendation\">Not a recommendation</h2>"));
        assert!(!html.contains("Recommended:"));
        assert!(html.contains("<th class=\"l\">fastest</th>"));
        assert!(html.contains(
            "<th class=\"l\">merged from</th><td class=\"l\"><code>run-a</code> (2026-11-24T02:37:43+00:00 to -) on "
        ));
        assert!(!html.contains("Requirements as stated by the workload"));
    }
}
