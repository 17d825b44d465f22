//! Reports made from results.json alone: `report.html` (one self-contained file with
//! inline SVG charts), `report.md` (the verdict and tables, short enough for a PR
//! comment) and `hlog/` (HdrHistogram interval logs per engine x phase x op).
//!
//! Nothing here may contact an engine or read the workload file: a report must be
//! rebuildable from an old run, and several runs of one workload (from several load
//! machines, or repeated runs) can be merged first with `results::merge`.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::results::{EngineResult, OpResult, PhaseResult, RunResults};

/// The merge of runs lives beside the results type; re-exported for the report command.
pub use crate::results::merge;

pub mod charts;
pub mod effort;
pub mod hlog;
pub mod html;
pub mod markdown;
pub mod recommend;
pub mod recovery;
pub mod scaling;
pub mod streaming;

pub const HTML_FILE: &str = "report.html";
pub const MARKDOWN_FILE: &str = "report.md";
pub const HLOG_DIR: &str = "hlog";

/// Write report.html, report.md and hlog/ into `out_dir`; returns the paths written.
pub fn write_reports(results: &RunResults, out_dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let verdict = recommend::evaluate(results);
    let mut written = Vec::new();

    let html_path = out_dir.join(HTML_FILE);
    write_atomic(&html_path, html::render(results, &verdict)?.as_bytes())?;
    written.push(html_path);

    let md_path = out_dir.join(MARKDOWN_FILE);
    write_atomic(&md_path, markdown::render(results, &verdict).as_bytes())?;
    written.push(md_path);

    written.extend(hlog::write_all(results, &out_dir.join(HLOG_DIR))?);
    Ok(written)
}

/// The ops of one phase, each with the result of every engine that ran it (in engine
/// order), so that tables and charts can put engines side by side.
pub struct PhaseView<'a> {
    pub name: String,
    /// The first engine's record of the phase (schedule, duration).
    pub first: &'a PhaseResult,
    pub ops: Vec<OpView<'a>>,
}

pub struct OpView<'a> {
    pub label: String,
    pub first: &'a OpResult,
    /// (engine, its result) for every engine that has this op in this phase.
    pub engines: Vec<(&'a EngineResult, &'a OpResult)>,
}

/// Phases and ops in the order they first appear across engines.
pub fn phase_views(r: &RunResults) -> Vec<PhaseView<'_>> {
    let mut views: Vec<PhaseView> = Vec::new();
    for e in &r.engines {
        // Sweep steps are shown together, as frontiers (`effort`), not phase by phase.
        // Recovery phases have their own section (`recovery`).
        for p in e.phases.iter().filter(|p| p.step.is_none() && p.recovery.is_none()) {
            let idx = match views.iter().position(|v| v.name == p.name) {
                Some(i) => i,
                None => {
                    views.push(PhaseView { name: p.name.clone(), first: p, ops: Vec::new() });
                    views.len() - 1
                }
            };
            let view = &mut views[idx];
            for o in &p.ops {
                match view.ops.iter_mut().find(|v| v.label == o.label) {
                    Some(v) => v.engines.push((e, o)),
                    None => view.ops.push(OpView { label: o.label.clone(), first: o, engines: vec![(e, o)] }),
                }
            }
        }
    }
    views
}

/// One row of the resources table: what an engine's processes used in one stage.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ResourceRow {
    pub engine: String,
    /// "load", "index build" or a phase's name.
    pub stage: String,
    pub seconds: String,
    pub cpu_s: String,
    pub cores: String,
    pub peak_mib: String,
    pub mean_mib: String,
    /// "PSS" or "RSS".
    pub kind: String,
}

/// Per engine: the processes measured (or why none were), and a row per stage.
pub fn resource_rows(r: &RunResults) -> (Vec<String>, Vec<ResourceRow>) {
    let mut notes = Vec::new();
    let mut rows = Vec::new();
    for e in &r.engines {
        let Some(res) = &e.resources else { continue };
        match (&res.watched, &res.not_measured) {
            (Some(w), _) => {
                let held = res.held_before();
                let counted = if held.is_empty() { "" } else { ", counted in every figure" };
                notes.push(format!("{}: {w}{held}{counted}", e.name));
            }
            (None, Some(why)) => notes.push(format!("{}: not measured: {why}", e.name)),
            (None, None) => {}
        }
        for (stage, u) in e.stage_usages() {
            let mib = |b: u64| format!("{:.0}", crate::format::to_mib(b));
            rows.push(ResourceRow {
                engine: e.name.clone(),
                stage,
                seconds: format!("{:.1}", u.seconds),
                cpu_s: format!("{:.2}", u.cpu_s),
                cores: format!("{:.2}", u.cpu_cores),
                peak_mib: mib(u.memory_peak_bytes),
                mean_mib: mib(u.memory_mean_bytes),
                kind: u.memory_kind.to_uppercase(),
            });
        }
    }
    (notes, rows)
}

/// An engine's layout for the engines tables: the summary ("3 nodes, 3 shards × 2
/// copies", or a dash when the engine reported none) and what the engine said about it
/// ("cluster dbbench-cluster, status green, 6 shard copies on 3 nodes").
pub fn topology_cells(e: &EngineResult) -> (String, Option<&str>) {
    match &e.topology {
        Some(t) => (t.summary(), t.note.as_deref()),
        None => (NO_TOPOLOGY.to_string(), None),
    }
}

/// Whether any engine of the run reported its layout: the reports show topology only
/// then, so a run of engines that have nothing to say about it reads as before.
pub fn any_topology(r: &RunResults) -> bool {
    r.engines.iter().any(|e| e.topology.is_some())
}

/// What stands in a table cell for an engine that reported no topology.
const NO_TOPOLOGY: &str = "—";

/// What the dataset's judgments are, in words, when it says they are not human ones.
pub fn judgments_note(d: &crate::results::DatasetInfo) -> Option<&'static str> {
    match d.judgments.as_deref() {
        Some("pseudo") => Some(
            "pseudo-judgments: each query is judged relevant to its own source document only, by construction, \
             not by a person; nDCG@10 is measured against them",
        ),
        _ => None,
    }
}

/// Each filter of the workload with the share of the corpus it admits, in words.
pub fn filter_lines(d: &crate::results::DatasetInfo) -> Vec<String> {
    d.filters
        .iter()
        .map(|f| {
            format!("{}: {} of {} documents ({})", f.filter, f.admitted, d.docs, crate::format::percent(f.selectivity))
        })
        .collect()
}

/// Escape text for a Markdown table cell.
pub fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The report tests' results.json (`tests/fixtures/report-results.json`), read back.
#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
pub(crate) fn fixture() -> RunResults {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report-results.json");
    RunResults::read(&path).unwrap()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn markdown_cells_are_escaped() {
        // HTML escaping is the template engine's now: html::tests::values_are_escaped_as_html.
        assert_eq!(md_cell("a|b\nc"), "a\\|b c");
    }
}
