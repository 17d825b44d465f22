//! `report.md`: the verdict and the per-op tables in GitHub-flavoured Markdown, short
//! enough for a pull-request comment. No charts; report.html has those.

use std::fmt::Write as _;

use super::recommend::{Outcome, Verdict};
use super::{md_cell, phase_views};
use crate::format;
use crate::metric::TABLE_COLUMNS;
use crate::results::{EngineStatus, OpStatus, RunResults};

pub fn render(r: &RunResults, v: &Verdict) -> String {
    let mut out = String::new();
    let run = &r.run;
    let _ = writeln!(out, "# dbbench: {}\n", run.workload.name);
    let _ = writeln!(
        out,
        "Run `{}`, dataset {} ({} docs, {} queries, dim {}), seed {}, dbbench {} ({}).\n",
        run.id,
        run.dataset.name,
        run.dataset.docs,
        run.dataset.queries,
        run.dataset.dim,
        run.seed,
        r.dbbench.version,
        short(&r.dbbench.commit)
    );
    if !run.complete {
        let _ = writeln!(
            out,
            "> **Incomplete run:** {}\n",
            run.incomplete_reason.as_deref().unwrap_or("reason not recorded")
        );
    }

    if v.requirements.is_some() {
        let _ = writeln!(out, "## Recommendation\n\n**{}**\n", v.headline);
        for reason in &v.reasons {
            let _ = writeln!(out, "- {}", reason);
        }
        out.push('\n');
        // Requirement rows x engine columns.
        let _ = write!(out, "| requirement |");
        for e in &v.engines {
            let _ = write!(out, " {} |", md_cell(&e.engine));
        }
        let _ = write!(out, "\n|---|");
        for _ in &v.engines {
            let _ = write!(out, "---|");
        }
        out.push('\n');
        let rows = v.engines.first().map(|e| e.checks.len()).unwrap_or(0);
        for i in 0..rows {
            let name = v.engines.first().map(|e| e.checks[i].requirement.clone()).unwrap_or_default();
            let _ = write!(out, "| {} |", md_cell(&name));
            for e in &v.engines {
                let c = &e.checks[i];
                let mark = match c.outcome {
                    Outcome::Pass => "✅",
                    Outcome::Fail => "❌",
                    Outcome::NotMeasured => "➖ not measured:",
                };
                let _ = write!(out, " {mark} {} |", md_cell(&c.detail));
            }
            out.push('\n');
        }
        out.push('\n');
    } else {
        let _ = writeln!(out, "## Not a recommendation\n\n{}\n", v.headline);
        let _ = writeln!(out, "| phase | op | fastest | by | ms | notes |\n|---|---|---|---|---:|---|");
        for w in &v.winners {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                md_cell(&w.phase),
                md_cell(&w.op),
                w.engine.as_deref().map(md_cell).unwrap_or_else(|| "-".into()),
                w.by,
                format::ms(w.value_ms),
                md_cell(&w.note)
            );
        }
        out.push('\n');
    }

    let not_ok: Vec<_> = r.engines.iter().filter(|e| e.status != EngineStatus::Ok).collect();
    if !not_ok.is_empty() {
        let _ = writeln!(out, "## Engines not measured in full\n");
        for e in not_ok {
            let what = if e.status == EngineStatus::Skipped { "skipped" } else { "failed" };
            let _ = write!(out, "- **{}** {what}: {}", e.name, e.reason.as_deref().unwrap_or("no reason recorded"));
            if let Some(h) = &e.start_hint {
                let _ = write!(out, " (start it with: `{h}`)");
            }
            out.push('\n');
        }
        out.push('\n');
    }

    let _ = writeln!(out, "## Results\n\nLatency in ms; ★ marks the best value of a column.\n");
    for p in phase_views(r) {
        let _ = writeln!(out, "### Phase {}\n", p.name);
        for o in &p.ops {
            let mut title = format!("**{}** ({}", o.label, o.first.op);
            if let Some(k) = o.first.k {
                let _ = write!(title, ", k={k}");
            }
            if let Some(f) = &o.first.filter {
                let _ = write!(title, ", where {f}");
            }
            if !o.first.params.is_empty() {
                let params: Vec<String> = o.first.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let _ = write!(title, ", {}", params.join(" "));
            }
            title.push(')');
            let _ = writeln!(out, "{}\n", md_cell(&title));
            let _ = write!(out, "| engine |");
            for c in TABLE_COLUMNS {
                let _ = write!(out, " {} |", c.column(o.first.k));
            }
            let _ = write!(out, "\n|---|");
            for _ in TABLE_COLUMNS {
                let _ = write!(out, "---:|");
            }
            out.push('\n');
            let best: Vec<Vec<bool>> = TABLE_COLUMNS
                .iter()
                .map(|c| c.best(&o.engines.iter().map(|(_, op)| c.value(op)).collect::<Vec<_>>()))
                .collect();
            let mut notes = Vec::new();
            for (i, (e, op)) in o.engines.iter().enumerate() {
                let _ = write!(out, "| {} |", md_cell(&e.name));
                if op.status != OpStatus::Ok {
                    let _ = writeln!(
                        out,
                        " {} |{}",
                        md_cell(&format!("{}: {}", op.status, op.note.as_deref().unwrap_or(""))),
                        " |".repeat(TABLE_COLUMNS.len() - 1)
                    );
                    continue;
                }
                for (ci, c) in TABLE_COLUMNS.iter().enumerate() {
                    let star = if best[ci][i] { " ★" } else { "" };
                    let _ = write!(out, " {}{star} |", c.cell(c.value(op)));
                }
                out.push('\n');
                if let Some(n) = &op.note {
                    notes.push(format!("{}: {}", e.name, n));
                }
            }
            for n in notes {
                let _ = writeln!(out, "\n_{}_", md_cell(&n));
            }
            out.push('\n');
        }
    }
    out
}

fn short(s: &str) -> &str {
    &s[..s.len().min(12)]
}
