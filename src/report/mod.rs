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
use crate::results::{EngineResult, OpResult, OpStatus, PhaseResult, RunResults};

/// The merge of runs lives beside the results type; re-exported for the report command.
pub use crate::results::merge;

pub mod charts;
pub mod hlog;
pub mod html;
pub mod markdown;
pub mod recommend;

pub const HTML_FILE: &str = "report.html";
pub const MARKDOWN_FILE: &str = "report.md";
pub const HLOG_DIR: &str = "hlog";

/// Write report.html, report.md and hlog/ into `out_dir`; returns the paths written.
pub fn write_reports(results: &RunResults, out_dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let verdict = recommend::evaluate(results);
    let mut written = Vec::new();

    let html_path = out_dir.join(HTML_FILE);
    write_atomic(&html_path, html::render(results, &verdict).as_bytes())?;
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
        for p in &e.phases {
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

// Number formatting lives in `crate::format`, shared with the console and compare.
pub use crate::format::{ms as fmt_ms, rate as fmt_rate, ratio as fmt_ratio};

/// The columns of a per-op table, and which direction is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Throughput,
    P50,
    P95,
    P99,
    P999,
    Errors,
    Recall,
    Ndcg,
}

impl Column {
    pub const ALL: [Column; 8] = [
        Column::Throughput,
        Column::P50,
        Column::P95,
        Column::P99,
        Column::P999,
        Column::Errors,
        Column::Recall,
        Column::Ndcg,
    ];

    pub fn title(self, k: Option<usize>) -> String {
        match self {
            Column::Throughput => "ops/s".into(),
            Column::P50 => "p50 ms".into(),
            Column::P95 => "p95 ms".into(),
            Column::P99 => "p99 ms".into(),
            Column::P999 => "p99.9 ms".into(),
            Column::Errors => "errors".into(),
            Column::Recall => format!("recall@{}", k.map(|k| k.to_string()).unwrap_or_else(|| "k".into())),
            Column::Ndcg => "nDCG@10".into(),
        }
    }

    fn higher_is_better(self) -> bool {
        matches!(self, Column::Throughput | Column::Recall | Column::Ndcg)
    }

    /// The raw value, None when not measured.
    pub fn value(self, o: &OpResult) -> Option<f64> {
        if o.status != OpStatus::Ok {
            return None;
        }
        match self {
            Column::Throughput => Some(o.throughput_ops_s),
            Column::P50 => o.latency_ms.p50,
            Column::P95 => o.latency_ms.p95,
            Column::P99 => o.latency_ms.p99,
            Column::P999 => o.latency_ms.p999,
            Column::Errors => Some(o.errors as f64),
            Column::Recall => o.quality.recall_at_k,
            Column::Ndcg => o.quality.ndcg_at_10,
        }
    }

    pub fn format(self, o: &OpResult) -> String {
        match (self, self.value(o)) {
            (_, None) => "-".into(),
            (Column::Throughput, Some(v)) => fmt_rate(v),
            (Column::Errors, Some(v)) => format!("{v:.0}"),
            (Column::Recall | Column::Ndcg, v) => fmt_ratio(v),
            (_, v) => fmt_ms(v),
        }
    }

    /// Which of `values` is best: nothing is marked unless at least two are measured
    /// and they differ (a lone value, or all equal, is not "best" of anything). Ties
    /// for best mark every tied engine.
    pub fn best(self, values: &[Option<f64>]) -> Vec<bool> {
        let measured: Vec<f64> = values.iter().flatten().copied().collect();
        if measured.len() < 2 || measured.iter().all(|v| *v == measured[0]) {
            return vec![false; values.len()];
        }
        let best = if self.higher_is_better() {
            measured.iter().copied().fold(f64::MIN, f64::max)
        } else {
            measured.iter().copied().fold(f64::MAX, f64::min)
        };
        values.iter().map(|v| *v == Some(best)).collect()
    }
}

/// Escape text for HTML.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escape text for a Markdown table cell.
pub fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn best_needs_two_values_and_knows_direction() {
        assert_eq!(Column::P99.best(&[Some(3.0), Some(2.0), None]), vec![false, true, false]);
        assert_eq!(Column::Throughput.best(&[Some(3.0), Some(2.0)]), vec![true, false]);
        assert_eq!(Column::P99.best(&[Some(3.0), None]), vec![false, false]);
        assert_eq!(Column::Recall.best(&[Some(1.0), Some(1.0)]), vec![false, false], "all equal: no best");
        assert_eq!(Column::Recall.best(&[Some(1.0), Some(0.5), Some(1.0)]), vec![true, false, true]);
    }

    #[test]
    fn html_escaping() {
        assert_eq!(esc("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(md_cell("a|b\nc"), "a\\|b c");
    }
}
