//! The report of a run at several dataset sizes (`dataset.sizes`): how each engine's
//! load time, index build, memory, disk, latency and throughput grow with the data.
//!
//! Each size is a run of its own, with its results.json and reports in `size-<N>/`;
//! this folds them into `scaling.json` (the figures, per engine and size),
//! `report.md` (tables) and `report.html` (a log-log chart per figure) in the folder
//! above. Like every report it is made from results alone.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::charts::{self, Line};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::metric::Metric;
use crate::results::{EngineResult, EngineStatus, RunResults};

pub const JSON_FILE: &str = "scaling.json";

/// Engine-wide figures (load and index time, memory, CPU, disk, bytes per record), in
/// the order metrics are declared.
fn engine_figures_shown() -> impl Iterator<Item = Metric> {
    Metric::ALL.into_iter().filter(|m| m.engine_wide())
}
/// Per-op figures.
const OP_FIGURES: [Metric; 3] = [Metric::P99Ms, Metric::ThroughputOpsS, Metric::RecallAtK];

#[derive(Debug, Serialize)]
pub struct Scaling {
    pub workload: String,
    /// False when a size is missing (Ctrl-C) or one of its runs is incomplete.
    pub complete: bool,
    pub sizes: Vec<SizeRun>,
    pub engines: Vec<EngineGrowth>,
}

#[derive(Debug, Serialize)]
pub struct SizeRun {
    pub size: usize,
    /// The run's folder, relative to this report.
    pub dir: String,
    pub run_id: String,
    pub complete: bool,
}

/// One engine across the sizes it ran at.
#[derive(Debug, Serialize)]
pub struct EngineGrowth {
    pub name: String,
    pub points: Vec<SizePoint>,
}

#[derive(Debug, Serialize)]
pub struct SizePoint {
    pub size: usize,
    pub status: EngineStatus,
    /// Engine-wide figures by metric name; absent where not measured.
    pub figures: indexmap::IndexMap<String, f64>,
    pub ops: Vec<OpPoint>,
}

#[derive(Debug, Serialize)]
pub struct OpPoint {
    pub phase: String,
    pub op: String,
    /// Per-op figures by metric name; absent where not measured.
    pub figures: indexmap::IndexMap<String, f64>,
}

/// Fold the runs, one per size in ascending order, into one view. `expected` is how
/// many sizes the workload asked for.
pub fn build(runs: &[(usize, &RunResults)], dirs: &[String], expected: usize) -> Scaling {
    let mut engines: Vec<EngineGrowth> = Vec::new();
    for (size, r) in runs {
        for e in &r.engines {
            let point = SizePoint { size: *size, status: e.status, figures: engine_figures(e), ops: op_points(e) };
            match engines.iter_mut().find(|g| g.name == e.name) {
                Some(g) => g.points.push(point),
                None => engines.push(EngineGrowth { name: e.name.clone(), points: vec![point] }),
            }
        }
    }
    let sizes: Vec<SizeRun> = runs
        .iter()
        .zip(dirs)
        .map(|((size, r), dir)| SizeRun {
            size: *size,
            dir: dir.clone(),
            run_id: r.run.id.clone(),
            complete: r.run.complete,
        })
        .collect();
    Scaling {
        workload: runs.first().map(|(_, r)| r.run.workload.name.clone()).unwrap_or_default(),
        complete: sizes.len() == expected && sizes.iter().all(|s| s.complete),
        sizes,
        engines,
    }
}

fn engine_figures(e: &EngineResult) -> indexmap::IndexMap<String, f64> {
    engine_figures_shown().filter_map(|m| Some((m.name().to_string(), m.read_engine(e).ok()?))).collect()
}

fn op_points(e: &EngineResult) -> Vec<OpPoint> {
    e.phases
        .iter()
        .flat_map(|p| {
            p.ops.iter().map(move |o| OpPoint {
                phase: p.display_name(),
                op: o.label.clone(),
                figures: OP_FIGURES.iter().filter_map(|m| Some((m.name().to_string(), m.value(o)?))).collect(),
            })
        })
        .collect()
}

impl Scaling {
    /// Every (phase, op) any engine ran, in first-seen order.
    fn ops(&self) -> Vec<(String, String)> {
        let mut seen: Vec<(String, String)> = Vec::new();
        for p in self.engines.iter().flat_map(|g| &g.points).flat_map(|p| &p.ops) {
            let key = (p.phase.clone(), p.op.clone());
            if !seen.contains(&key) {
                seen.push(key);
            }
        }
        seen
    }

    fn op_figure(point: &SizePoint, phase: &str, op: &str, m: Metric) -> Option<f64> {
        point.ops.iter().find(|o| o.phase == phase && o.op == op)?.figures.get(m.name()).copied()
    }

    /// One line per engine: `value` at each size where it has one.
    fn lines(&self, value: impl Fn(&SizePoint) -> Option<f64>) -> Vec<Line> {
        self.engines
            .iter()
            .enumerate()
            .map(|(i, g)| Line {
                name: g.name.clone(),
                color: i,
                points: g.points.iter().filter_map(|p| Some((p.size as f64, value(p)?))).collect(),
            })
            .collect()
    }
}

/// The Markdown report: what grew, per engine-wide figure and per op, engines down,
/// sizes across.
pub fn markdown(s: &Scaling) -> String {
    let mut out = format!("# dbbench: {} at {} sizes\n\n", s.workload, s.sizes.len());
    if !s.complete {
        out.push_str("**Incomplete**: not every size ran to the end; the figures below are what was measured.\n\n");
    }
    out.push_str("Each size is the first N documents of the dataset, loaded afresh into every engine; ");
    out.push_str("the runs themselves (results.json, report.html) are in:\n\n");
    for z in &s.sizes {
        let done = if z.complete { "" } else { " (incomplete)" };
        out.push_str(&format!("- {} documents: `{}/`{done}\n", z.size, z.dir));
    }
    let header = |title: &str| {
        let mut h = format!("\n## {title}\n\n| engine |");
        for z in &s.sizes {
            h.push_str(&format!(" {} |", crate::format::compact(z.size as f64)));
        }
        h.push_str("\n|---|");
        h.push_str(&"---:|".repeat(s.sizes.len()));
        h.push('\n');
        h
    };
    let row = |name: &str, value: &dyn Fn(usize) -> String| {
        let mut r = format!("| {name} |");
        for z in &s.sizes {
            r.push_str(&format!(" {} |", value(z.size)));
        }
        r.push('\n');
        r
    };
    for m in engine_figures_shown() {
        out.push_str(&header(&format!("{} ({})", m.def().prose, m.def().column)));
        for g in &s.engines {
            out.push_str(&row(&g.name, &|size| {
                let p = g.points.iter().find(|p| p.size == size);
                match p {
                    Some(p) if p.status == EngineStatus::Skipped => "skipped".into(),
                    Some(p) => m.cell(p.figures.get(m.name()).copied()),
                    None => "-".into(),
                }
            }));
        }
    }
    for (phase, op) in s.ops() {
        for m in OP_FIGURES {
            out.push_str(&header(&format!("{phase} / {op}: {} ({})", m.def().prose, m.def().column)));
            for g in &s.engines {
                out.push_str(&row(&g.name, &|size| {
                    let v =
                        g.points.iter().find(|p| p.size == size).and_then(|p| Scaling::op_figure(p, &phase, &op, m));
                    m.cell(v)
                }));
            }
        }
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The HTML report: a log-log chart per figure, links to each size's own report, and
/// the Markdown tables' figures in `scaling.json` beside it.
pub fn html(s: &Scaling) -> String {
    let mut body = String::new();
    let chart = |title: &str, y: &str, lines: Vec<Line>| match charts::growth(title, y, &lines) {
        Ok(svg) => format!("<figure>{svg}</figure>\n"),
        Err(why) => format!("<p class=\"note\">{}: {}</p>\n", escape(title), escape(&why)),
    };
    for m in engine_figures_shown() {
        let d = m.def();
        body.push_str(&chart(d.prose, d.column, s.lines(|p| p.figures.get(m.name()).copied())));
    }
    for (phase, op) in s.ops() {
        body.push_str(&format!("<h2>{} / {}</h2>\n", escape(&phase), escape(&op)));
        for m in OP_FIGURES {
            let d = m.def();
            body.push_str(&chart(
                &format!("{op}: {}", d.prose),
                d.column,
                s.lines(|p| Scaling::op_figure(p, &phase, &op, m)),
            ));
        }
    }
    let runs: String = s
        .sizes
        .iter()
        .map(|z| {
            format!(
                "<li>{} documents: <a href=\"{dir}/report.html\">{dir}/report.html</a>{}</li>",
                z.size,
                if z.complete { "" } else { " (incomplete)" },
                dir = escape(&z.dir)
            )
        })
        .collect();
    let incomplete = if s.complete {
        ""
    } else {
        "<p class=\"warn\"><b>Incomplete</b>: not every size ran to the end; the charts show what was measured.</p>"
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>dbbench: {w} by size</title>\n\
         <style>body{{font-family:sans-serif;max-width:820px;margin:2em auto;padding:0 1em;color:#222}}\
         figure{{margin:1em 0}}.note{{color:#666}}.warn{{background:#fff3cd;padding:.5em}}</style></head><body>\n\
         <h1>dbbench: {w} at {n} sizes</h1>\n{incomplete}\n\
         <p>Each size is the first N documents of the dataset, loaded afresh into every engine. Both axes are \
         logarithmic: a line of slope 1 grows in proportion to the data, a flat one not at all. The figures are \
         in {json}; each size's run has its own report:</p>\n<ul>{runs}</ul>\n{body}</body></html>\n",
        w = escape(&s.workload),
        n = s.sizes.len(),
        json = JSON_FILE,
    )
}

/// Write scaling.json, report.md and report.html into `out_dir`.
pub fn write(s: &Scaling, out_dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let json = serde_json::to_vec_pretty(s).map_err(|e| Error::Runtime(format!("scaling.json: {e}")))?;
    let paths = [
        (out_dir.join(JSON_FILE), json),
        (out_dir.join(super::MARKDOWN_FILE), markdown(s).into_bytes()),
        (out_dir.join(super::HTML_FILE), html(s).into_bytes()),
    ];
    for (p, bytes) in &paths {
        write_atomic(p, bytes)?;
    }
    Ok(paths.into_iter().map(|(p, _)| p).collect())
}
