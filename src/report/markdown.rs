//! `report.md`: the verdict and the per-op tables in GitHub-flavoured Markdown, short
//! enough for a pull-request comment. No charts; report.html has those.

use std::fmt::Write as _;

use super::recommend::{Outcome, Verdict};
use super::{effort, md_cell, phase_views};
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
    if let Some(note) = super::judgments_note(&run.dataset) {
        let _ = writeln!(out, "The judgments are {note}.\n");
    }
    let filters = super::filter_lines(&run.dataset);
    if !filters.is_empty() {
        let _ = writeln!(out, "Filters, measured on the data:\n");
        for f in &filters {
            let _ = writeln!(out, "- {f}");
        }
        out.push('\n');
    }
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
            table_row(
                &mut out,
                &[
                    md_cell(&w.phase),
                    md_cell(&w.op),
                    w.engine.as_deref().map(md_cell).unwrap_or_else(|| "-".into()),
                    w.by.to_string(),
                    format::ms(w.value_ms),
                    md_cell(&w.note),
                ],
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

    topology_section(r, &mut out);
    effort_tables(r, &mut out);
    stream_section(r, &mut out);
    recovery_section(r, &mut out);
    resource_section(r, &mut out);

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

/// How each engine was laid out (nodes, shards, replicas), when any engine reported it,
/// so a cluster's figures are read beside a single node's knowing which is which.
fn topology_section(r: &RunResults, out: &mut String) {
    if !super::any_topology(r) {
        return;
    }
    let _ = writeln!(
        out,
        "## Topology\n\nAs each engine reported it after the load.\n\n| engine | topology | as reported |\n|---|---|---|"
    );
    for e in &r.engines {
        let (summary, note) = super::topology_cells(e);
        table_row(out, &[md_cell(&e.name), md_cell(&summary), md_cell(note.unwrap_or_default())]);
    }
    out.push('\n');
}

/// Each stream phase: checkpoint tables, then freshness.
fn stream_section(r: &RunResults, out: &mut String) {
    for v in super::streaming::views(r) {
        let _ = writeln!(out, "## Writes while searching: phase {}\n\n{}\n", md_cell(&v.phase), md_cell(&v.summary()));
        for t in v.freshness_table().iter().chain(&v.checkpoint_tables()) {
            let _ = writeln!(out, "{}:\n", md_cell(&t.title));
            let cells: Vec<String> = t.header.iter().map(|h| md_cell(h)).collect();
            table_row(out, &cells);
            let _ = writeln!(out, "|{}", "---|".repeat(t.header.len()));
            for row in &t.rows {
                table_row(out, &row.iter().map(|c| md_cell(c)).collect::<Vec<_>>());
            }
            out.push('\n');
        }
    }
}

/// Each recovery phase: crash and restart, backup and restore, then what each engine
/// promises.
fn recovery_section(r: &RunResults, out: &mut String) {
    for v in super::recovery::views(r) {
        let _ = writeln!(out, "## Recovery: phase {}\n\n{}\n", md_cell(&v.phase), md_cell(&v.summary));
        for t in &v.tables {
            let _ = writeln!(out, "{}:\n", md_cell(&t.title));
            table_row(out, &t.header.iter().map(|h| md_cell(h)).collect::<Vec<_>>());
            let _ = writeln!(out, "|{}", "---|".repeat(t.header.len()));
            for row in &t.rows {
                table_row(out, &row.iter().map(|c| md_cell(c)).collect::<Vec<_>>());
            }
            out.push('\n');
        }
        for n in &v.notes {
            let _ = writeln!(out, "- {}", md_cell(n));
        }
        out.push('\n');
    }
}

/// What each engine's processes used in each stage, and what its data takes on disk.
fn resource_section(r: &RunResults, out: &mut String) {
    let (notes, rows) = super::resource_rows(r);
    let disks: Vec<_> = r.engines.iter().filter_map(|e| e.disk().map(|d| (e, d))).collect();
    if !rows.is_empty() || !notes.is_empty() || !disks.is_empty() {
        let _ = writeln!(out, "## Engine resources\n");
        for n in &notes {
            let _ = writeln!(out, "- {}", md_cell(n));
        }
        for (e, (bytes, per)) in &disks {
            let per = per.map(|p| format!(", {p:.0} bytes per record")).unwrap_or_default();
            let mib = format::to_mib(*bytes);
            let _ = writeln!(out, "- {}: {mib:.1} MiB on disk after the index build{per}", md_cell(&e.name));
        }
        if !rows.is_empty() {
            let _ = writeln!(
                out,
                "\n| engine | stage | s | CPU s | cores | peak MiB | mean MiB | memory |\n|---|---|---:|---:|---:|---:|---:|---|"
            );
            for x in &rows {
                table_row(
                    out,
                    &[
                        md_cell(&x.engine),
                        md_cell(&x.stage),
                        x.seconds.clone(),
                        x.cpu_s.clone(),
                        x.cores.clone(),
                        x.peak_mib.clone(),
                        x.mean_mib.clone(),
                        x.kind.clone(),
                    ],
                );
            }
        }
        out.push('\n');
    }
}

/// Tuned comparisons at their target recall, then each sweep's steps.
fn effort_tables(r: &RunResults, out: &mut String) {
    for t in effort::tuned(r) {
        let _ = writeln!(out, "## Tuned: {}\n", md_cell(&t.title()));
        let _ = writeln!(
            out,
            "| engine | op | setting | recall (tuning) | recall (held out) | throughput | p50 ms | p99 ms | tuner |\n\
             |---|---|---|---:|---:|---:|---:|---:|---|"
        );
        for row in &t.rows {
            let verdict = if row.reached { row.summary.clone() } else { format!("**NOT REACHED**: {}", row.summary) };
            table_row(
                out,
                &[
                    md_cell(&row.engine),
                    md_cell(&row.op),
                    format!("`{}`", row.setting),
                    format::ratio(row.tuning_recall),
                    format::ratio(row.heldout_recall),
                    format::rate(row.throughput_ops_s),
                    format::ms(row.p50_ms),
                    format::ms(row.p99_ms),
                    format!("{} ({} settings tried)", md_cell(&verdict), row.tried),
                ],
            );
        }
        out.push('\n');
    }
    for f in effort::frontiers(r) {
        let _ = writeln!(out, "## Sweep: {} / {}\n", md_cell(&f.phase), md_cell(&f.op));
        let _ = writeln!(
            out,
            "| engine | setting | recall@{} | throughput | p50 ms | p99 ms |\n|---|---|---:|---:|---:|---:|",
            f.k.map(|k| k.to_string()).unwrap_or_else(|| "k".into())
        );
        for (_, name, pts) in &f.engines {
            for p in pts {
                table_row(
                    out,
                    &[
                        md_cell(name),
                        format!("`{}`", p.setting),
                        format::ratio(p.recall),
                        format::rate(p.throughput_ops_s),
                        format::ms(p.p50_ms),
                        format::ms(p.p99_ms),
                    ],
                );
            }
        }
        out.push('\n');
    }
}

/// One row of a Markdown table, its cells already escaped.
fn table_row(out: &mut String, cells: &[String]) {
    let _ = writeln!(out, "| {} |", cells.join(" | "));
}

fn short(s: &str) -> &str {
    &s[..s.len().min(12)]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
pub(crate) mod tests {
    use super::*;
    use crate::driver::Topology;
    use crate::report::recommend;

    use crate::report::fixture;

    fn markdown(r: &RunResults) -> String {
        render(r, &recommend::evaluate(r))
    }

    /// results.json as a run writes it, with the topology an Elasticsearch cluster
    /// reports, read back.
    pub(crate) fn with_topology() -> RunResults {
        let mut r = fixture();
        r.engines[0].topology = Some(Topology {
            nodes: 3,
            data_nodes: Some(3),
            shards: Some(3),
            replicas: Some(1),
            note: Some("cluster dbbench-cluster, status green, 6 shard copies on 3 nodes".into()),
        });
        r.engines[1].topology = Some(Topology {
            nodes: 1,
            data_nodes: Some(1),
            shards: Some(1),
            replicas: Some(1),
            note: Some(
                "cluster dbbench, status yellow, 1 of 2 shard copies started, on 1 node; 1 replica copy unassigned"
                    .into(),
            ),
        });
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"topology\":{\"nodes\":3,"), "results.json carries it");
        serde_json::from_str(&json).unwrap()
    }

    #[test]
    fn topology_is_tabled_beside_each_engine() {
        let md = markdown(&with_topology());
        assert!(md.contains("## Topology\n\nAs each engine reported it after the load.\n"), "{md}");
        assert!(
            md.contains(
                "| sqlite | 3 nodes, 3 shards × 2 copies | cluster dbbench-cluster, status green, 6 shard copies on 3 nodes |"
            ),
            "{md}"
        );
        let single = "| sqlite-sync | 1 node, 1 shard × 2 copies | cluster dbbench, status yellow, \
                      1 of 2 shard copies started, on 1 node; 1 replica copy unassigned |";
        assert!(md.contains(single), "{md}");
        assert!(md.contains("| pgvector | — |  |"), "an engine without one shows a dash: {md}");
        let topology = md.find("## Topology").unwrap();
        assert!(topology < md.find("## Results").unwrap(), "before the figures it explains");
    }

    #[test]
    fn without_topology_the_report_has_no_topology_section() {
        let md = markdown(&fixture());
        assert!(!md.contains("Topology"), "{md}");
        assert!(md.contains("## Results"), "{md}");
    }
}
