//! `report.html`: one self-contained page (inline CSS, inline SVG, no script, nothing
//! fetched from the network), so it can be attached to a ticket or opened years later.
//! The verdict comes first, then the per-phase tables and charts, then the conditions
//! the numbers were measured under.

use std::fmt::Write as _;

use super::recommend::{Outcome, Verdict};
use super::{charts, esc, fmt_ms, phase_views, Column, OpView, PhaseView};
use crate::driver::OpKind;
use crate::metrics::decode_histogram;
use crate::results::{EngineStatus, IntervalResult, OpStatus, RunResults};

const CSS: &str = r#"
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0 auto;max-width:1200px;padding:16px 24px;color:#1b1f24;background:#fff;line-height:1.45}
h1{font-size:1.6em;margin:.2em 0}h2{border-bottom:2px solid #d0d7de;padding-bottom:.2em;margin-top:1.8em}h3{margin-top:1.4em}
.sub{color:#57606a}.banner{padding:10px 14px;border-radius:6px;margin:12px 0}
.incomplete{background:#fff8c5;border:1px solid #d4a72c}
.verdict{background:#dafbe1;border:1px solid #4ac26b;font-size:1.1em}
.verdict.none{background:#ffebe9;border-color:#ff8182}
.verdict.info{background:#ddf4ff;border-color:#54aeff}
table{border-collapse:collapse;margin:8px 0 14px;font-size:.92em}
th,td{border:1px solid #d0d7de;padding:4px 9px;text-align:right;vertical-align:top}
th{background:#f6f8fa}td.l,th.l{text-align:left}
td.best{background:#dafbe1;font-weight:600}
td.pass{background:#dafbe1}td.fail{background:#ffebe9}td.nm{background:#f6f8fa;color:#57606a}
tr.skipped td,tr.failed td{background:#fff8c5}
.note{color:#57606a;font-style:italic}
.chart{margin:6px 0 18px}.chart svg{max-width:100%;height:auto;border:1px solid #eaeef2}
code{background:#f6f8fa;padding:1px 4px;border-radius:4px}
ul.reasons li{margin:.2em 0}
"#;

pub fn render(r: &RunResults, v: &Verdict) -> String {
    let mut out = String::new();
    let run = &r.run;
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>dbbench report: {}</title><style>{CSS}</style></head><body>\n",
        esc(&run.workload.name)
    );
    let _ = writeln!(out, "<h1>dbbench report: {}</h1>", esc(&run.workload.name));
    let _ = writeln!(
        out,
        "<p class=\"sub\">run <code>{}</code>, started {}{}</p>",
        esc(&run.id),
        esc(&run.started_at),
        run.workload.description.as_deref().map(|d| format!(" &mdash; {}", esc(d))).unwrap_or_default()
    );
    if !run.complete {
        let _ = writeln!(
            out,
            "<div class=\"banner incomplete\"><strong>Incomplete run:</strong> {}. The numbers below are what was measured before it stopped.</div>",
            esc(run.incomplete_reason.as_deref().unwrap_or("reason not recorded"))
        );
    }

    verdict_section(&mut out, v);
    engines_section(&mut out, r);
    for p in phase_views(r) {
        phase_section(&mut out, r, &p);
    }
    load_section(&mut out, r);
    conditions_section(&mut out, r);
    out.push_str("</body></html>\n");
    out
}

fn verdict_section(out: &mut String, v: &Verdict) {
    if v.requirements.is_none() {
        let _ = writeln!(out, "<h2 id=\"recommendation\">Not a recommendation</h2>");
        let _ = writeln!(out, "<div class=\"banner verdict info\">{}</div>", esc(&v.headline));
        let _ = writeln!(
            out,
            "<table><tr><th class=\"l\">phase</th><th class=\"l\">op</th><th class=\"l\">fastest</th><th class=\"l\">by</th><th>ms</th><th class=\"l\">notes</th></tr>"
        );
        for w in &v.winners {
            let _ = writeln!(
                out,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
                esc(&w.phase),
                esc(&w.op),
                esc(w.engine.as_deref().unwrap_or("-")),
                w.by,
                fmt_ms(w.value_ms),
                esc(&w.note)
            );
        }
        out.push_str("</table>\n");
        return;
    }
    let _ = writeln!(out, "<h2 id=\"recommendation\">Recommendation</h2>");
    let class = if v.fit.is_empty() { "verdict none" } else { "verdict" };
    let _ = writeln!(out, "<div class=\"banner {class}\"><strong>{}</strong></div>", esc(&v.headline));
    out.push_str("<ul class=\"reasons\">\n");
    for reason in &v.reasons {
        let _ = writeln!(out, "<li>{}</li>", esc(reason));
    }
    out.push_str("</ul>\n<table><tr><th class=\"l\">requirement</th>");
    for e in &v.engines {
        let _ = write!(out, "<th class=\"l\">{}</th>", esc(&e.engine));
    }
    out.push_str("</tr>\n");
    let rows = v.engines.first().map(|e| e.checks.len()).unwrap_or(0);
    for i in 0..rows {
        let name = v.engines.first().map(|e| e.checks[i].requirement.as_str()).unwrap_or("");
        let _ = write!(out, "<tr><td class=\"l\">{}</td>", esc(name));
        for e in &v.engines {
            let c = &e.checks[i];
            let class = match c.outcome {
                Outcome::Pass => "pass",
                Outcome::Fail => "fail",
                Outcome::NotMeasured => "nm",
            };
            let _ =
                write!(out, "<td class=\"l {class}\"><strong>{}</strong>: {}</td>", c.outcome.word(), esc(&c.detail));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

fn engines_section(out: &mut String, r: &RunResults) {
    let _ = writeln!(out, "<h2>Engines</h2>");
    out.push_str("<table><tr><th class=\"l\">engine</th><th class=\"l\">driver</th><th class=\"l\">status</th><th class=\"l\">version</th><th class=\"l\">reason / how to start it</th></tr>\n");
    for e in &r.engines {
        let (class, status) = match e.status {
            EngineStatus::Ok => ("", "ok"),
            EngineStatus::Skipped => ("skipped", "skipped"),
            EngineStatus::Failed => ("failed", "FAILED"),
        };
        let mut why = esc(e.reason.as_deref().unwrap_or(""));
        if let Some(h) = &e.start_hint {
            let _ = write!(why, "<br>start it with: <code>{}</code>", esc(h));
        }
        let _ = writeln!(
            out,
            "<tr class=\"{class}\"><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{status}</td><td class=\"l\">{}</td><td class=\"l\">{why}</td></tr>",
            esc(&e.name),
            esc(&e.driver),
            esc(e.version.as_deref().unwrap_or("-"))
        );
    }
    out.push_str("</table>\n");
}

/// Index of an engine in the run, for its colour.
fn engine_index(r: &RunResults, name: &str) -> usize {
    r.engines.iter().position(|e| e.name == name).unwrap_or(0)
}

fn chart(out: &mut String, what: &str, svg: Result<String, String>) {
    match svg {
        Ok(svg) => {
            let _ = writeln!(out, "<div class=\"chart\">{svg}</div>");
        }
        Err(why) => {
            let _ = writeln!(out, "<p class=\"note\">{}: chart not drawn ({})</p>", esc(what), esc(&why));
        }
    }
}

fn phase_section(out: &mut String, r: &RunResults, p: &PhaseView) {
    let s = &p.first.schedule;
    let mut sched = match s.mode.as_str() {
        "open" => format!(
            "open loop, {} req/s {}, up to {} in flight",
            s.rate.unwrap_or(0.0),
            s.arrival.as_deref().unwrap_or(""),
            s.concurrency
        ),
        _ => format!("closed loop, concurrency {}", s.concurrency),
    };
    if let Some(d) = s.duration_s {
        let _ = write!(sched, ", {d} s");
    }
    if let Some(n) = s.requests {
        let _ = write!(sched, ", {n} requests");
    }
    if let Some(t) = s.client_threads {
        let _ = write!(sched, ", on {t} client thread{}", if t == 1 { "" } else { "s" });
    }
    let _ = writeln!(
        out,
        "<h2 id=\"phase-{}\">Phase {}</h2><p class=\"sub\">{}</p>",
        esc(&p.name),
        esc(&p.name),
        esc(&sched)
    );
    // Per-engine phase notes: incomplete phases, rates not sustained.
    for e in &r.engines {
        if let Some(ep) = e.phases.iter().find(|x| x.name == p.name) {
            if !ep.complete {
                let _ = writeln!(
                    out,
                    "<p class=\"note\">{}: phase incomplete: {}</p>",
                    esc(&e.name),
                    esc(ep.note.as_deref().unwrap_or(""))
                );
            }
            if let Some(rate) = &ep.rate {
                if !rate.sustained {
                    let _ = writeln!(
                        out,
                        "<p class=\"note\">{}: target {:.0} req/s NOT sustained (achieved {:.0} req/s, {} never sent)</p>",
                        esc(&e.name),
                        rate.target_ops_s,
                        rate.achieved_ops_s,
                        rate.unsent
                    );
                }
            }
        }
    }
    for o in &p.ops {
        op_section(out, r, p, o);
    }
    sweep_chart(out, r, p);
}

fn op_section(out: &mut String, r: &RunResults, p: &PhaseView, o: &OpView) {
    let mut desc = esc(o.first.op.as_str());
    if let Some(k) = o.first.k {
        let _ = write!(desc, ", k={k}");
    }
    if let Some(f) = &o.first.filter {
        let _ = write!(desc, ", where <code>{}</code>", esc(f));
    }
    if !o.first.params.is_empty() {
        let params: Vec<String> = o.first.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = write!(desc, ", params <code>{}</code>", esc(&params.join(" ")));
    }
    let _ = writeln!(out, "<h3>{} <span class=\"sub\">({desc})</span></h3>", esc(&o.label));
    out.push_str("<table><tr><th class=\"l\">engine</th>");
    for c in Column::ALL {
        let _ = write!(out, "<th>{}</th>", esc(&c.title(o.first.k)));
    }
    out.push_str("<th class=\"l\">notes</th></tr>\n");
    let best: Vec<Vec<bool>> =
        Column::ALL.iter().map(|c| c.best(&o.engines.iter().map(|(_, op)| c.value(op)).collect::<Vec<_>>())).collect();
    for (i, (e, op)) in o.engines.iter().enumerate() {
        let _ = write!(out, "<tr><td class=\"l\">{}</td>", esc(&e.name));
        if op.status != OpStatus::Ok {
            let _ = writeln!(
                out,
                "<td class=\"l nm\" colspan=\"{}\">{}: {}</td></tr>",
                Column::ALL.len() + 1,
                esc(op.status.as_str()),
                esc(op.note.as_deref().unwrap_or(""))
            );
            continue;
        }
        for (ci, c) in Column::ALL.iter().enumerate() {
            let class = if best[ci][i] { " class=\"best\" title=\"best of this column\"" } else { "" };
            let star = if best[ci][i] { " ★" } else { "" };
            let _ = write!(out, "<td{class}>{}{star}</td>", c.format(op));
        }
        let mut notes: Vec<String> = Vec::new();
        if let Some(n) = &op.note {
            notes.push(esc(n));
        }
        for (kind, t) in &op.error_kinds {
            let sample = t.samples.first().map(|s| format!(" (e.g. {})", esc(s))).unwrap_or_default();
            notes.push(format!("{} {}{sample}", t.count, esc(kind)));
        }
        if op.latency_ms.p99.is_none() && op.count > 0 {
            notes.push(format!("{} requests: too few for p99", op.count));
        }
        let _ = writeln!(out, "<td class=\"l\">{}</td></tr>", notes.join("; "));
    }
    out.push_str("</table>\n");

    let mut hists = Vec::new();
    let mut failures = Vec::new();
    for (e, op) in o.engines.iter().filter(|(_, op)| op.status == OpStatus::Ok) {
        match decode_histogram(&op.histograms.latency) {
            Ok(h) => hists.push((e.name.clone(), engine_index(r, &e.name), h)),
            Err(why) => failures.push(format!("{}: {why}", e.name)),
        }
    }
    for f in failures {
        let _ = writeln!(out, "<p class=\"note\">latency histogram unreadable, {}</p>", esc(&f));
    }
    let what = format!("{} / {}", p.name, o.label);
    chart(
        out,
        &format!("{what} latency by percentile"),
        charts::spectrum(&format!("{what}: latency by percentile"), &hists),
    );
    let series: Vec<(String, usize, &[crate::results::IntervalResult])> = o
        .engines
        .iter()
        .filter(|(_, op)| op.status == OpStatus::Ok)
        .map(|(e, op)| {
            let elapsed = e.phases.iter().find(|x| x.name == p.name).map(|x| x.elapsed_s).unwrap_or(0.0);
            (e.name.clone(), engine_index(r, &e.name), whole_seconds(&op.intervals, elapsed))
        })
        .collect();
    chart(
        out,
        &format!("{what} over time"),
        charts::timeline(&format!("{what}: throughput and p99 per whole second"), &series),
    );
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
fn sweep_chart(out: &mut String, r: &RunResults, p: &PhaseView) {
    let mut groups: Vec<(OpKind, Option<String>, Vec<&OpView>)> = Vec::new();
    for o in
        p.ops.iter().filter(|o| !o.first.params.is_empty() && matches!(o.first.op.as_str(), "knn" | "text" | "hybrid"))
    {
        match groups.iter_mut().find(|g| g.0 == o.first.op && g.1 == o.first.filter) {
            Some(g) => g.2.push(o),
            None => groups.push((o.first.op, o.first.filter.clone(), vec![o])),
        }
    }
    for (kind, filter, ops) in groups.into_iter().filter(|g| g.2.len() >= 2) {
        let mut series: Vec<charts::SweepSeries> = Vec::new();
        for o in &ops {
            for (e, op) in &o.engines {
                let Some(recall) = op.quality.recall_at_k.filter(|_| op.status == OpStatus::Ok) else {
                    continue;
                };
                let label: Vec<String> = op.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let point = (op.throughput_ops_s, recall, label.join(" "));
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
        chart(out, &title, charts::recall_vs_throughput(&title, &series));
    }
}

fn load_section(out: &mut String, r: &RunResults) {
    let _ = writeln!(out, "<h2>Load and index build</h2>");
    out.push_str("<table><tr><th class=\"l\">engine</th><th>records</th><th>load s</th><th>records/s</th><th>index build s</th><th class=\"l\">index</th></tr>\n");
    let mut bars = Vec::new();
    for e in &r.engines {
        if e.load.is_none() && e.index.is_none() {
            continue;
        }
        let stats = e.index.as_ref().map(|i| i.stats.to_string()).unwrap_or_default();
        let _ = writeln!(
            out,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l\"><code>{}</code></td></tr>",
            esc(&e.name),
            e.load.as_ref().map(|l| l.records.to_string()).unwrap_or_else(|| "-".into()),
            e.load.as_ref().map(|l| format!("{:.2}", l.seconds)).unwrap_or_else(|| "-".into()),
            e.load.as_ref().map(|l| format!("{:.0}", l.records_per_s)).unwrap_or_else(|| "-".into()),
            e.index.as_ref().map(|i| format!("{:.2}", i.seconds)).unwrap_or_else(|| "-".into()),
            esc(&stats)
        );
        bars.push((e.name.clone(), e.load.as_ref().map(|l| l.seconds), e.index.as_ref().map(|i| i.seconds)));
    }
    out.push_str("</table>\n");
    chart(out, "load and index build times", charts::load_bars("Load and index build time per engine", &bars));
}

fn conditions_section(out: &mut String, r: &RunResults) {
    let run = &r.run;
    let m = &run.machine;
    let d = &run.dataset;
    let _ = writeln!(out, "<h2>Conditions</h2><table>");
    let mut row = |k: &str, v: String| {
        let _ = writeln!(out, "<tr><th class=\"l\">{}</th><td class=\"l\">{v}</td></tr>", esc(k));
    };
    row(
        "run",
        format!(
            "{} &mdash; {}",
            esc(&run.id),
            if run.complete {
                "complete".to_string()
            } else {
                format!("INCOMPLETE: {}", esc(run.incomplete_reason.as_deref().unwrap_or("reason not recorded")))
            }
        ),
    );
    row("started / finished", format!("{} / {}", esc(&run.started_at), esc(run.finished_at.as_deref().unwrap_or("-"))));
    row(
        "workload",
        format!(
            "{} (<code>{}</code>, sha256 <code>{}</code>)",
            esc(&run.workload.name),
            esc(&run.workload.file),
            esc(&run.workload.sha256)
        ),
    );
    row("seed", run.seed.to_string());
    let mut ds = format!(
        "{} &mdash; {}: {} docs, {} queries, dim {}, {} metric{}; fingerprint <code>{}</code>",
        esc(&d.name),
        esc(&d.source),
        d.docs,
        d.queries,
        d.dim,
        esc(&d.metric),
        if d.judged { ", with relevance judgments" } else { "" },
        esc(&d.fingerprint)
    );
    if let Some(f) = &d.fallback_reason {
        let _ = write!(ds, "<br><strong>synthetic fallback:</strong> {}", esc(f));
    }
    row("dataset", ds);
    let machine = |m: &crate::results::Machine| {
        format!(
            "{} {} ({}), {} CPUs{}, {}",
            esc(&m.os),
            esc(m.kernel.as_deref().unwrap_or("")),
            esc(&m.arch),
            m.cpus,
            m.cpu_model.as_deref().map(|c| format!(" ({})", esc(c))).unwrap_or_default(),
            m.memory_bytes
                .map(|b| format!("{:.1} GiB memory", b as f64 / (1u64 << 30) as f64))
                .unwrap_or_else(|| "memory unknown".into())
        )
    };
    row("machine", machine(m));
    row("dbbench", format!("{} (commit <code>{}</code>)", esc(&r.dbbench.version), esc(&r.dbbench.commit)));
    if !run.merged_from.is_empty() {
        let runs: Vec<String> = run
            .merged_from
            .iter()
            .map(|x| {
                format!(
                    "<code>{}</code> ({} to {}) on {}",
                    esc(&x.id),
                    esc(&x.started_at),
                    esc(x.finished_at.as_deref().unwrap_or("-")),
                    machine(&x.machine)
                )
            })
            .collect();
        row("merged from", runs.join("<br>"));
    }
    let _ = writeln!(out, "</table>");
    let _ = writeln!(out, "<h3>Engine versions and settings</h3><table><tr><th class=\"l\">engine</th><th class=\"l\">version</th><th class=\"l\">url</th><th class=\"l\">settings</th><th class=\"l\">capabilities</th></tr>");
    for e in &r.engines {
        let settings: Vec<String> =
            e.settings.iter().map(|(k, v)| format!("{}&nbsp;=&nbsp;{}", esc(k), esc(&v.to_string()))).collect();
        let _ = writeln!(
            out,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
            esc(&e.name),
            esc(e.version.as_deref().unwrap_or("-")),
            esc(e.url.as_deref().unwrap_or("-")),
            settings.join("<br>"),
            capabilities_text(&e.capabilities)
        );
    }
    let _ = writeln!(out, "</table>");
    if let Some(req) = &run.requirements {
        #[derive(serde::Serialize)]
        struct Wrapped<'a> {
            requirements: &'a crate::spec::Requirements,
        }
        let text =
            toml::to_string_pretty(&Wrapped { requirements: req }).unwrap_or_else(|e| format!("(cannot show: {e})"));
        let _ = writeln!(out, "<h3>Requirements as stated by the workload</h3><pre>{}</pre>", esc(&text));
    }
}

/// Capabilities in words: native ops plainly, the others with their note.
fn capabilities_text(caps: &serde_json::Value) -> String {
    let mut parts = Vec::new();
    if let Some(ops) = caps.get("ops").and_then(|o| o.as_object()) {
        for (kind, s) in ops {
            let support = s.get("support").and_then(|x| x.as_str()).unwrap_or("no");
            match (support, s.get("note").and_then(|x| x.as_str())) {
                ("native", _) => parts.push(esc(kind)),
                ("no", _) => parts.push(format!("<s>{}</s>", esc(kind))),
                (sup, Some(n)) => parts.push(format!("{} ({}: {})", esc(kind), esc(sup), esc(n))),
                (sup, None) => parts.push(format!("{} ({})", esc(kind), esc(sup))),
            }
        }
    }
    if let Some(f) = caps.get("filters").and_then(|f| f.get("support")).and_then(|x| x.as_str()) {
        parts.push(format!("filters: {}", esc(f)));
    }
    if let Some(t) = caps.get("transactions").and_then(|x| x.as_bool()) {
        parts.push(format!("transactions: {}", if t { "yes" } else { "no" }));
    }
    parts.join(", ")
}
