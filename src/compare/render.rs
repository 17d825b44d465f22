//! A comparison as text (a terminal or CI log), Markdown (a pull-request comment or a
//! job summary) and JSON (the `Comparison` struct itself, for machines).
//!
//! Rendering only: every number shown is one the verdict already holds, formatted by
//! `crate::format`.

use std::fmt::Write as _;

use super::load::short;
use super::verdict::{Comparison, MetricComparison, OpComparison, Verdict};
use crate::error::{Error, Result};
use crate::format;

fn value(v: Option<f64>) -> String {
    format::significant(v)
}

fn change(m: &MetricComparison, v: Option<f64>) -> String {
    match (v, m.change_kind) {
        (None, _) => "-".into(),
        (Some(x), "absolute") => format::signed_score(x),
        (Some(x), _) => format::signed_percent(x),
    }
}

fn interval(m: &MetricComparison) -> String {
    match (m.change_lower, m.change_upper) {
        (Some(_), Some(_)) => format!("[{}, {}]", change(m, m.change_lower), change(m, m.change_upper)),
        _ => "-".into(),
    }
}

/// The cells both tables share: engine, phase, op, metric, baseline, candidate, change,
/// interval.
fn cells(o: &OpComparison, m: &MetricComparison) -> [String; 8] {
    [
        o.engine.clone(),
        o.phase.clone(),
        o.op.clone(),
        m.metric.to_string(),
        value(m.baseline),
        value(m.candidate),
        change(m, m.change),
        interval(m),
    ]
}

fn header_lines(c: &Comparison) -> Vec<String> {
    let s = &c.settings;
    vec![
        format!("baseline:  {} ({} run file(s))", c.baseline.path, c.baseline.files.len()),
        format!("candidate: {} ({} run file(s))", c.candidate.path, c.candidate.files.len()),
        if c.baseline.workload_sha256 == c.candidate.workload_sha256 {
            format!(
                "workload {} (sha256 {}), dataset {} (fingerprint {})",
                c.baseline.workload,
                short(&c.baseline.workload_sha256),
                c.baseline.dataset,
                short(&c.baseline.dataset_fingerprint)
            )
        } else {
            format!(
                "workloads: baseline {} (sha256 {}), candidate {} (sha256 {}); dataset {} (fingerprint {})",
                c.baseline.workload,
                short(&c.baseline.workload_sha256),
                c.candidate.workload,
                short(&c.candidate.workload_sha256),
                c.baseline.dataset,
                short(&c.baseline.dataset_fingerprint)
            )
        },
        if c.baseline.machines == c.candidate.machines {
            format!("machine: {}", c.baseline.machines.join(", "))
        } else {
            format!(
                "machines: baseline {}; candidate {}",
                c.baseline.machines.join(", "),
                c.candidate.machines.join(", ")
            )
        },
        format!(
            "rule: latency/throughput regress when the change and its whole {:.0}% bootstrap interval are beyond {:.1}%; \
             quality regresses on a drop of more than {}",
            100.0 * s.confidence,
            100.0 * s.max_regression,
            s.quality_tolerance
        ),
    ]
}

fn footer_lines(c: &Comparison) -> Vec<String> {
    let mut out = Vec::new();
    for m in &c.only_in_baseline {
        out.push(format!("missing: {m}"));
    }
    for m in &c.only_in_candidate {
        out.push(format!("new: {m}"));
    }
    for n in &c.notes {
        out.push(format!("note: {n}"));
    }
    let not_comparable = if c.not_comparable > 0 {
        format!(", {} latency/throughput metric(s) not comparable (different machines)", c.not_comparable)
    } else {
        String::new()
    };
    out.push(format!(
        "{}: {} regression(s), {} improvement(s), {} missing from the candidate{not_comparable}",
        c.result.to_uppercase(),
        c.regressions,
        c.improvements,
        c.only_in_baseline.len()
    ));
    out
}

/// A plain table for a terminal or a CI log.
pub fn render_text(c: &Comparison) -> String {
    let mut out = String::new();
    for l in header_lines(c) {
        let _ = writeln!(out, "{l}");
    }
    let _ = writeln!(
        out,
        "\n{:<12} {:<14} {:<16} {:<17} {:>10} {:>10} {:>9} {:>20} {:>5}  verdict",
        "engine", "phase", "op", "metric", "baseline", "candidate", "change", "95% interval", "n"
    );
    for o in &c.ops {
        for m in &o.metrics {
            let [engine, phase, op, metric, base, cand, chg, ci] = cells(o, m);
            let n = format!("{}/{}", m.baseline_samples, m.candidate_samples);
            let _ = write!(
                out,
                "{engine:<12} {phase:<14} {op:<16} {metric:<17} {base:>10} {cand:>10} {chg:>9} {ci:>20} {n:>5}  {}",
                m.verdict.as_str()
            );
            if let Some(note) = &m.note {
                let _ = write!(out, " ({note})");
            }
            out.push('\n');
        }
    }
    out.push('\n');
    for l in footer_lines(c) {
        let _ = writeln!(out, "{l}");
    }
    out
}

/// A Markdown table, for a pull-request comment or a job summary.
pub fn render_markdown(c: &Comparison) -> String {
    let mut out = String::from("### dbbench compare\n\n");
    for l in header_lines(c) {
        let _ = writeln!(out, "- {l}");
    }
    out.push_str(
        "\n| engine | phase | op | metric | baseline | candidate | change | 95% interval | samples | verdict |\n",
    );
    out.push_str("|---|---|---|---|---:|---:|---:|---:|---:|---|\n");
    for o in &c.ops {
        for m in &o.metrics {
            let verdict = match m.verdict {
                Verdict::Regressed => "**regressed**".to_string(),
                v => v.as_str().to_string(),
            };
            let note = m.note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
            let row = cells(o, m).join(" | ");
            let _ = writeln!(
                out,
                "| {row} | {}/{} {} | {verdict}{note} |",
                m.baseline_samples, m.candidate_samples, m.samples_from
            );
        }
    }
    out.push('\n');
    for l in footer_lines(c) {
        let _ = writeln!(out, "- {l}");
    }
    out
}

/// The whole comparison as pretty JSON, with a final newline.
pub fn render_json(c: &Comparison) -> Result<String> {
    serde_json::to_string_pretty(c)
        .map(|s| s + "\n")
        .map_err(|e| Error::Runtime(format!("cannot serialize the comparison: {e}")))
}
