//! Stream phases in reports: per engine, recall and latency across the checkpoints (a
//! chart in report.html, tables in both), and how soon acknowledged inserts were
//! searchable (the freshness table).

use super::charts::{self, Line};
use crate::format;
use crate::results::{Checkpoint, RunResults, StreamResult};

/// One stream phase and the engines that ran it.
pub struct StreamView<'a> {
    pub phase: String,
    /// (engine index in the run, engine name, what it measured).
    pub engines: Vec<(usize, &'a str, &'a StreamResult)>,
}

/// A table as text cells, the same in report.md and report.html.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Table {
    pub title: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// The last column is text (left-aligned), not a figure.
    pub text_last: bool,
}

/// Every stream phase of the run, in the order the phases ran.
pub fn views(r: &RunResults) -> Vec<StreamView<'_>> {
    let mut out: Vec<StreamView> = Vec::new();
    for (i, e) in r.engines.iter().enumerate() {
        for p in &e.phases {
            let Some(st) = &p.stream else { continue };
            match out.iter_mut().find(|v| v.phase == p.name) {
                Some(v) => v.engines.push((i, &e.name, st)),
                None => out.push(StreamView { phase: p.name.clone(), engines: vec![(i, &e.name, st)] }),
            }
        }
    }
    out
}

impl StreamView<'_> {
    /// What the phase did, in a sentence.
    pub fn summary(&self) -> String {
        let Some((_, _, st)) = self.engines.first() else { return String::new() };
        format!(
            "{} writes at {}/s ({} workers) beside {} searches at {}/s ({} workers), open loop, in {} \
             checkpoints. Each search is scored against the records live when it was sent (writes \
             acknowledged before it); a write in flight when it was sent may count either way.",
            st.writes,
            st.write_rate,
            st.write_concurrency,
            st.searches,
            st.search_rate,
            st.search_concurrency,
            st.checkpoints.len()
        )
    }

    /// Engine rows of one figure per checkpoint.
    fn by_checkpoint(&self, title: &str, cell: impl Fn(&Checkpoint) -> String) -> Table {
        let n = self.engines.iter().map(|(_, _, s)| s.checkpoints.len()).max().unwrap_or(0);
        let mut header = vec!["engine".to_string()];
        header.extend((1..=n).map(|c| format!("#{c}")));
        let rows = self
            .engines
            .iter()
            .map(|(_, name, st)| {
                let mut row = vec![name.to_string()];
                row.extend(st.checkpoints.iter().map(&cell));
                row
            })
            .collect();
        Table { title: title.to_string(), header, rows, text_last: false }
    }

    /// Recall, search p99 and write p99 by checkpoint, then records live.
    pub fn checkpoint_tables(&self) -> Vec<Table> {
        vec![
            self.by_checkpoint("recall@k against the live records, by checkpoint", |c| format::ratio(c.recall_at_k)),
            self.by_checkpoint("search p99 ms, by checkpoint", |c| format::ms(c.search.latency_ms.p99)),
            self.by_checkpoint("write p99 ms, by checkpoint", |c| format::ms(c.write.latency_ms.p99)),
            self.by_checkpoint("records live at the end of each checkpoint", |c| c.records_live.to_string()),
        ]
    }

    /// Visibility lag per engine, with what its writes promise.
    pub fn freshness_table(&self) -> Option<Table> {
        let rows: Vec<Vec<String>> = self
            .engines
            .iter()
            .filter_map(|(_, name, st)| {
                let f = st.freshness.as_ref()?;
                let skipped = if f.skipped > 0 { format!(" ({} skipped)", f.skipped) } else { String::new() };
                Some(vec![
                    name.to_string(),
                    format!("{}{skipped}", f.probes),
                    format!("{} of {}", f.visible_first_try, f.visible),
                    format::ms(f.lag_ms.p50),
                    format::ms(f.lag_ms.p99),
                    format::ms(f.lag_ms.max),
                    format!(
                        "{} ({})",
                        f.not_visible,
                        f.not_visible_share.map(format::percent).unwrap_or_else(|| "-".into())
                    ),
                    f.write_visibility.clone(),
                ])
            })
            .collect();
        let f = self.engines.iter().find_map(|(_, _, st)| st.freshness.as_ref())?;
        Some(Table {
            title: format!(
                "visibility lag of every {}th insert: from its acknowledgement to the first kNN (k={}, its own vector, every {} ms) that returned it; when the first search returned it, the lag is at most that",
                f.probe_every,
                f.probe_k,
                format::trim_zeros(format!("{:.1}", f.probe_interval_ms))
            ),
            header: [
                "engine",
                "probes",
                "seen at the first search",
                "lag p50 ms",
                "lag p99 ms",
                "lag max ms",
                &format!("not visible within {}s", f.visibility_bound_s),
                "write visibility",
            ]
            .map(str::to_string)
            .to_vec(),
            rows,
            text_last: true,
        })
    }

    /// Recall, search p99 and write p99 against time, one line per engine.
    pub fn chart(&self) -> Result<String, String> {
        let line = |f: &dyn Fn(&Checkpoint) -> Option<f64>| -> Vec<Line> {
            self.engines
                .iter()
                .map(|(i, name, st)| Line {
                    name: name.to_string(),
                    color: *i,
                    points: st.checkpoints.iter().filter_map(|c| Some((c.end_s, f(c)?))).collect(),
                })
                .collect()
        };
        charts::checkpoints(
            &format!("{}: by checkpoint, while writing", self.phase),
            &[
                ("recall@k (live records)", line(&|c| c.recall_at_k)),
                ("search p99 (ms)", line(&|c| c.search.latency_ms.p99)),
                ("write p99 (ms)", line(&|c| c.write.latency_ms.p99)),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{CheckpointLatency, Freshness};

    fn checkpoint(index: usize, recall: f64, p99: f64) -> Checkpoint {
        let lat = |p99: f64| CheckpointLatency {
            count: 200,
            errors: 0,
            latency_ms: crate::metrics::LatencySummary { p99: Some(p99), ..Default::default() },
        };
        Checkpoint {
            index,
            end_s: index as f64,
            records_live: 100 + index as u64,
            inserted: index as u64,
            deleted: 0,
            search: lat(p99),
            write: lat(p99 * 2.0),
            recall_at_k: Some(recall),
        }
    }

    #[test]
    fn tables_hold_one_row_per_engine_and_a_column_per_checkpoint() {
        let st = StreamResult {
            write_rate: 10.0,
            search_rate: 20.0,
            write_concurrency: 1,
            search_concurrency: 1,
            writes: 30,
            searches: 60,
            records_live_before: 100,
            records_live_after: 102,
            held_out_left: 0,
            checkpoints: vec![checkpoint(1, 0.99, 3.0), checkpoint(2, 0.97, 4.5)],
            freshness: Some(Freshness {
                probes: 12,
                skipped: 0,
                probe_every: 10,
                visible: 11,
                visible_first_try: 4,
                not_visible: 1,
                failed: 0,
                not_visible_share: Some(1.0 / 12.0),
                lag_ms: crate::metrics::LatencySummary { p50: Some(810.0), max: Some(1004.0), ..Default::default() },
                probe_k: 10,
                probe_interval_ms: 10.0,
                visibility_bound_s: 5.0,
                write_visibility: "refresh=false".into(),
            }),
        };
        let v = StreamView { phase: "stream".into(), engines: vec![(0, "a", &st), (1, "b", &st)] };
        let t = v.checkpoint_tables();
        assert_eq!(t[0].header, ["engine", "#1", "#2"]);
        assert_eq!(t[0].rows[1], ["b", "0.990", "0.970"]);
        assert_eq!(t[2].rows[0][2], "9.00", "write p99 of the second checkpoint");
        let f = v.freshness_table().unwrap();
        assert_eq!(f.rows[0][..7], ["a", "12", "4 of 11", "810", "-", "1004", "1 (8.33%)"]);
        assert!(f.header[6].contains("5s"));
        let svg = v.chart().unwrap();
        assert!(svg.contains("<svg") && svg.contains("recall@k"), "the chart draws its panels");
    }
}
