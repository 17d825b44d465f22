//! What reports show of search effort, from results alone: each swept op's frontier per
//! engine (recall against throughput and against p99), and each tuned phase's
//! comparison at the target recall.
//!
//! Sweep steps are phase results carrying `step` (one per setting); a tuned phase is
//! the phase result carrying `tuning`. Both are read here so that HTML and Markdown say
//! the same thing.

use crate::results::{EngineResult, OpStatus, PhaseResult, RunResults};

/// One step of one engine on one swept op.
pub struct FrontierPoint {
    pub setting: String,
    pub recall: Option<f64>,
    pub ndcg_at_10: Option<f64>,
    pub throughput_ops_s: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub count: u64,
    pub errors: u64,
}

/// One swept op: every engine's steps, in the order run.
pub struct Frontier {
    pub phase: String,
    pub op: String,
    pub k: Option<usize>,
    pub filter: Option<String>,
    /// (engine index in the run, engine name, its points).
    pub engines: Vec<(usize, String, Vec<FrontierPoint>)>,
}

/// Every swept op of the run, in the order its phase first appears.
pub fn frontiers(r: &RunResults) -> Vec<Frontier> {
    let mut out: Vec<Frontier> = Vec::new();
    for (ei, e) in r.engines.iter().enumerate() {
        for p in e.phases.iter().filter(|p| p.repetition <= 1) {
            let Some(step) = &p.step else { continue };
            for o in &p.ops {
                let f = match out.iter().position(|f| f.phase == step.phase && f.op == o.label) {
                    Some(i) => &mut out[i],
                    None => {
                        out.push(Frontier {
                            phase: step.phase.clone(),
                            op: o.label.clone(),
                            k: o.k,
                            filter: o.filter.clone(),
                            engines: Vec::new(),
                        });
                        out.last_mut().expect("just pushed")
                    }
                };
                if o.status != OpStatus::Ok {
                    continue;
                }
                let point = FrontierPoint {
                    setting: step.setting(),
                    recall: o.quality.recall_at_k,
                    ndcg_at_10: o.quality.ndcg_at_10,
                    throughput_ops_s: o.throughput_ops_s,
                    p50_ms: o.latency_ms.p50,
                    p99_ms: o.latency_ms.p99,
                    count: o.count,
                    errors: o.errors,
                };
                match f.engines.iter_mut().find(|x| x.0 == ei) {
                    Some(x) => x.2.push(point),
                    None => f.engines.push((ei, e.name.clone(), vec![point])),
                }
            }
        }
    }
    out
}

/// One engine's op at its tuned setting.
pub struct TunedRow {
    pub engine: String,
    pub op: String,
    pub setting: String,
    pub reached: bool,
    /// What the tuner found, in words (the setting, or the best recall short of it).
    pub summary: String,
    pub tuning_recall: Option<f64>,
    pub heldout_recall: Option<f64>,
    pub throughput_ops_s: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Settings the tuner tried.
    pub tried: usize,
}

/// A tuned phase: "at recall@k >= target".
pub struct TunedTable {
    pub phase: String,
    pub target: f64,
    pub k: Option<usize>,
    pub heldout_queries: usize,
    pub rows: Vec<TunedRow>,
}

impl TunedTable {
    pub fn title(&self) -> String {
        format!(
            "{}: at recall@{} >= {} (tuned per engine, measured on {} held-out queries)",
            self.phase,
            self.k.map(|k| k.to_string()).unwrap_or_else(|| "k".into()),
            self.target,
            self.heldout_queries
        )
    }
}

fn tuned_rows(e: &EngineResult, p: &PhaseResult) -> Vec<TunedRow> {
    let Some(t) = &p.tuning else { return Vec::new() };
    p.ops
        .iter()
        .filter(|o| o.status == OpStatus::Ok)
        .map(|o| TunedRow {
            engine: e.name.clone(),
            op: o.label.clone(),
            setting: t.chosen.setting(),
            reached: t.reached,
            summary: t.summary(),
            tuning_recall: t
                .steps
                .iter()
                .find(|s| s.step == t.chosen)
                .and_then(|s| s.ops.iter().find(|x| x.label == o.label))
                .and_then(|x| x.recall_at_k),
            heldout_recall: o.quality.recall_at_k,
            throughput_ops_s: o.throughput_ops_s,
            p50_ms: o.latency_ms.p50,
            p99_ms: o.latency_ms.p99,
            tried: t.steps.len(),
        })
        .collect()
}

/// Every tuned phase of the run, engines in run order.
pub fn tuned(r: &RunResults) -> Vec<TunedTable> {
    let mut out: Vec<TunedTable> = Vec::new();
    for e in &r.engines {
        for p in e.phases.iter().filter(|p| p.repetition <= 1) {
            let Some(t) = &p.tuning else { continue };
            let table = match out.iter().position(|x| x.phase == p.name) {
                Some(i) => &mut out[i],
                None => {
                    out.push(TunedTable {
                        phase: p.name.clone(),
                        target: t.target_recall,
                        k: p.ops.first().and_then(|o| o.k),
                        heldout_queries: t.heldout_queries,
                        rows: Vec::new(),
                    });
                    out.last_mut().expect("just pushed")
                }
            };
            table.rows.extend(tuned_rows(e, p));
        }
    }
    out
}
