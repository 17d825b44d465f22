//! Search effort: sweeps (every setting its own measured step) and tuning to a target
//! recall (the least setting whose recall@k reaches the target on a tuning split of the
//! queries, then the phase measured there on the held-out rest).
//!
//! Each driver says which knob engine-neutral effort turns (`Driver::effort_knob`);
//! an engine that searches exactly has none, and so one step. A per-request knob is
//! written into every op's params for the step; a knob of the index itself (Chroma's
//! `ef_search`) is put in force before the step by `Driver::set_effort` (which may build
//! an index at that value, outside every measurement), and the configured value is put
//! back when the phase ends.
//!
//! Every step is a separate run of `EngineRun::phase`: its own workers, metrics and
//! histograms, so no request of one step is counted in another.

use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{console, DriverProfile, EngineRun};
use crate::driver::{Driver, Knob, KnobScope};
use crate::results::{EffortStep, OpStatus, PhaseResult, Tuning, TuningOp, TuningStep};
use crate::spec::{EffortMode, EffortPlan, PhasePlan, QueryOrder, Schedule, Stop};

/// What every step of one engine's effort phase shares.
pub(super) struct StepCtx<'a> {
    pub driver: &'a Arc<dyn Driver>,
    pub profile: DriverProfile<'a>,
    pub keys: &'a Arc<super::Keyspace>,
    pub seed: u64,
    pub corpus_changed: bool,
}

/// The settings an engine steps through: knob values, deduplicated (clamping can map
/// several efforts to one value), or the one exact setting.
fn settings(plan: &EffortPlan, engine: &str, knob: Option<Knob>, k: usize) -> Vec<EffortStep> {
    let (values, explicit) = plan.values_for(engine);
    let Some(knob) = knob else {
        return vec![EffortStep { phase: String::new(), effort: None, knob: None, value: None }];
    };
    let mut out: Vec<EffortStep> = Vec::new();
    for &v in values {
        let (effort, value) = if explicit { (None, v) } else { (Some(v), knob.value(v, k)) };
        if out.last().is_some_and(|s| s.value == Some(value)) {
            continue;
        }
        out.push(EffortStep { phase: String::new(), effort, knob: Some(knob.param.to_string()), value: Some(value) });
    }
    out
}

/// The phase as one step runs it: the setting in every op's params (per-request knobs),
/// under the step's name.
fn derive(phase: &PhasePlan, step: &EffortStep, knob: Option<Knob>, name: String) -> PhasePlan {
    let mut p = phase.clone();
    p.name = name;
    p.effort = None;
    if let (Some(knob), Some(value)) = (knob.filter(|k| k.scope == KnobScope::Request), step.value) {
        for op in &mut p.ops {
            op.params.insert(knob.param.to_string(), serde_json::Value::from(value));
        }
    }
    p
}

/// Split `n` queries into a tuning share and the held-out rest, by a seeded shuffle;
/// each part sorted. With fewer than two queries both parts are all of them.
pub fn split_queries(n: usize, share: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    if n < 2 {
        return ((0..n).collect(), (0..n).collect());
    }
    let mut all: Vec<usize> = (0..n).collect();
    all.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x7u64.rotate_left(60)));
    let take = ((n as f64 * share).round() as usize).clamp(1, n - 1);
    let (mut tuning, mut held) = (all[..take].to_vec(), all[take..].to_vec());
    tuning.sort_unstable();
    held.sort_unstable();
    (tuning, held)
}

/// The lowest of some recalls (`None` when there are none, or any is missing).
fn lowest(recalls: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let mut out = None;
    for r in recalls {
        let r = r?;
        out = Some(out.map_or(r, |m: f64| m.min(r)));
    }
    out
}

/// The lowest recall@k over a result's ops.
fn lowest_recall(r: &PhaseResult) -> Option<f64> {
    lowest(r.ops.iter().filter(|o| o.status == OpStatus::Ok).map(|o| o.quality.recall_at_k))
}

impl EngineRun<'_> {
    /// A phase with `effort`: the sweep's steps, or the tuned measurement.
    pub(super) async fn effort_phase(
        &self,
        phase: &PhasePlan,
        plan: &EffortPlan,
        engine: &str,
        ctx: StepCtx<'_>,
    ) -> Vec<PhaseResult> {
        // An engine that runs none of the phase's ops has nothing to sweep or tune: the
        // plain phase reports each op as unsupported.
        if phase.ops.iter().all(|o| ctx.profile.caps.check(o.kind, o.filter.is_some()).is_err()) {
            return self.phase(phase, None, ctx.driver, ctx.profile, ctx.keys, ctx.seed, ctx.corpus_changed).await;
        }
        let kind = phase.ops[0].kind;
        let knob = ctx.driver.effort_knob(kind);
        let k = phase.ops.iter().map(|o| o.k).max().unwrap_or(10);
        let mut steps = settings(plan, engine, knob, k);
        for s in &mut steps {
            s.phase = phase.name.clone();
        }
        let mut out = match plan.mode {
            EffortMode::Sweep => self.sweep(phase, &steps, knob, &ctx).await,
            EffortMode::Tune { target, tuning_share } => {
                self.tune(phase, &steps, knob, target, tuning_share, &ctx).await
            }
        };
        if knob.is_some_and(|k| matches!(k.scope, KnobScope::Index { .. })) {
            if let Err(e) = ctx.driver.set_effort(None).await {
                let note = format!("could not put the configured setting back after the phase: {}", e.message);
                out.push(self.failed_phase(phase, note));
            }
        }
        out
    }

    /// Put `step`'s value of an index-scoped knob in force (`Driver::set_effort`), saying
    /// how long it took when the engine had to build for it; `Err` is the failed phase.
    async fn in_force(
        &self,
        phase: &PhasePlan,
        step: &EffortStep,
        knob: Option<Knob>,
        ctx: &StepCtx<'_>,
    ) -> Result<(), PhaseResult> {
        let (Some(knob), Some(value)) = (knob, step.value) else { return Ok(()) };
        if !matches!(knob.scope, KnobScope::Index { .. }) {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let done = tokio::select! {
            r = ctx.driver.set_effort(Some(value)) => r,
            _ = self.cancel.cancelled() => return Err(self.failed_phase(phase, "interrupted (Ctrl-C)".into())),
        };
        match done {
            Ok(()) => {
                let took = started.elapsed().as_secs_f64();
                if took >= 0.5 {
                    console::note(&format!(
                        "  phase {}: {}={value} in force ({took:.1}s to build)",
                        phase.name, knob.param
                    ));
                }
                Ok(())
            }
            Err(e) => Err(self.failed_phase(phase, format!("could not set {}={value}: {}", knob.param, e.message))),
        }
    }

    async fn sweep(
        &self,
        phase: &PhasePlan,
        steps: &[EffortStep],
        knob: Option<Knob>,
        ctx: &StepCtx<'_>,
    ) -> Vec<PhaseResult> {
        let mut out = Vec::new();
        for step in steps {
            if self.cancel.is_cancelled() {
                break;
            }
            if let Err(r) = self.in_force(phase, step, knob, ctx).await {
                out.push(r);
                break;
            }
            let derived = derive(phase, step, knob, format!("{}@{}", phase.name, step.label()));
            let mut results =
                self.phase(&derived, None, ctx.driver, ctx.profile, ctx.keys, ctx.seed, ctx.corpus_changed).await;
            for r in &mut results {
                r.step = Some(step.clone());
            }
            let stop = results.iter().any(|r| !r.complete);
            out.extend(results);
            if stop {
                break;
            }
        }
        out
    }

    /// One pass over the tuning queries at `step`, each op alone (so each asks every
    /// tuning query exactly once); `Err` is an incomplete pass, to stop on.
    async fn tuning_pass(
        &self,
        phase: &PhasePlan,
        step: &EffortStep,
        knob: Option<Knob>,
        queries: &Arc<Vec<usize>>,
        ctx: &StepCtx<'_>,
    ) -> Result<TuningStep, PhaseResult> {
        self.in_force(phase, step, knob, ctx).await?;
        let name = format!("{} (tuning {})", phase.name, step.setting());
        let mut derived = derive(phase, step, knob, name);
        derived.stop = Stop::Requests(queries.len() as u64);
        derived.warmup = std::time::Duration::ZERO;
        derived.schedule = Schedule::Closed { concurrency: phase.schedule.concurrency() };
        let mut ops = Vec::new();
        // Each op the engine runs (the rest are reported unsupported by the measurement).
        for op in phase.ops.iter().filter(|o| ctx.profile.caps.check(o.kind, o.filter.is_some()).is_ok()) {
            let mut one = derived.clone();
            one.ops = derived.ops.iter().filter(|o| o.label == op.label).cloned().collect();
            for o in &mut one.ops {
                o.query_order = QueryOrder::Cycle;
                o.weight = 1.0;
            }
            let mut r = self
                .phase(&one, Some(queries.clone()), ctx.driver, ctx.profile, ctx.keys, ctx.seed, ctx.corpus_changed)
                .await
                .swap_remove(0);
            if !r.complete {
                r.name = phase.name.clone();
                return Err(r);
            }
            ops.extend(r.ops.iter().map(|o| TuningOp {
                label: o.label.clone(),
                count: o.count,
                errors: o.errors,
                recall_at_k: o.quality.recall_at_k,
                ndcg_at_10: o.quality.ndcg_at_10,
                throughput_ops_s: o.throughput_ops_s,
                p50_ms: o.latency_ms.p50,
                p99_ms: o.latency_ms.p99,
            }));
        }
        let recall = lowest(ops.iter().map(|o| o.recall_at_k));
        Ok(TuningStep { step: step.clone(), recall, ops })
    }

    /// The least setting reaching `target` on the tuning split (a binary search over the
    /// ascending settings, assuming recall does not fall as effort rises: at most
    /// 1 + log2(settings) passes), then the phase measured there on the held-out queries.
    async fn tune(
        &self,
        phase: &PhasePlan,
        steps: &[EffortStep],
        knob: Option<Knob>,
        target: f64,
        share: f64,
        ctx: &StepCtx<'_>,
    ) -> Vec<PhaseResult> {
        let (tuning, heldout) = split_queries(self.ds.queries.len(), share, ctx.seed);
        let (tuning, heldout) = (Arc::new(tuning), Arc::new(heldout));
        let k = phase.ops.first().map(|o| o.k).unwrap_or(10);
        console::note(&format!(
            "  phase {}: tuning to recall@{k} >= {target} on {} queries ({} held out)",
            phase.name,
            tuning.len(),
            heldout.len()
        ));
        let mut tried: Vec<TuningStep> = Vec::new();
        let passes = |s: &TuningStep| s.recall.is_some_and(|r| r >= target);
        let top = steps.len() - 1;
        let first = match self.tuning_pass(phase, &steps[top], knob, &tuning, ctx).await {
            Ok(s) => s,
            Err(r) => return vec![r],
        };
        let reached = passes(&first);
        tried.push(first);
        let mut chosen = top;
        if reached {
            let (mut lo, mut hi) = (0usize, top);
            while lo < hi && !self.cancel.is_cancelled() {
                let mid = (lo + hi) / 2;
                let s = match self.tuning_pass(phase, &steps[mid], knob, &tuning, ctx).await {
                    Ok(s) => s,
                    Err(r) => return vec![r],
                };
                if passes(&s) {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
                tried.push(s);
            }
            chosen = hi;
        }
        let step = &steps[chosen];
        let tuning_recall = tried.iter().find(|s| s.step == *step).and_then(|s| s.recall);
        let tuning_info = Tuning {
            target_recall: target,
            chosen: step.clone(),
            reached,
            tuning_recall,
            heldout_recall: None,
            tuning_queries: tuning.len(),
            heldout_queries: heldout.len(),
            steps: tried,
        };
        console::note(&format!("  phase {}: {}", phase.name, tuning_info.summary()));
        if let Err(r) = self.in_force(phase, step, knob, ctx).await {
            return vec![r];
        }
        let derived = derive(phase, step, knob, phase.name.clone());
        let mut results =
            self.phase(&derived, Some(heldout), ctx.driver, ctx.profile, ctx.keys, ctx.seed, ctx.corpus_changed).await;
        for r in &mut results {
            let mut t = tuning_info.clone();
            t.heldout_recall = lowest_recall(r);
            r.tuning = Some(t);
        }
        results
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_is_seeded_disjoint_and_covers_every_query() {
        let (t, h) = split_queries(300, 0.5, 42);
        assert_eq!((t.len(), h.len()), (150, 150));
        let mut all: Vec<usize> = t.iter().chain(&h).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..300).collect::<Vec<_>>());
        assert_eq!(split_queries(300, 0.5, 42), (t.clone(), h));
        assert_ne!(split_queries(300, 0.5, 43).0, t, "another seed, another split");
        assert_eq!(split_queries(10, 0.99, 1).1.len(), 1, "at least one query is held out");
        assert_eq!(split_queries(1, 0.5, 1), (vec![0], vec![0]));
    }

    #[test]
    fn settings_map_effort_to_the_knob_and_drop_repeats() {
        let plan = EffortPlan {
            mode: EffortMode::Sweep,
            effort: vec![5, 10, 20, 2000],
            per_engine: [("b".to_string(), vec![3, 7])].into_iter().collect(),
        };
        let es = Knob { at_least_k: true, ..Knob::request("num_candidates", 1000) };
        let values = |s: Vec<EffortStep>| s.iter().map(|s| (s.effort, s.value)).collect::<Vec<_>>();
        // 5 and 10 both become k = 10; 2000 is clamped to the engine's 1000.
        assert_eq!(
            values(settings(&plan, "a", Some(es), 10)),
            [(Some(5), Some(10)), (Some(20), Some(20)), (Some(2000), Some(1000))]
        );
        // An engine's own list is its knob's values, unmapped.
        assert_eq!(values(settings(&plan, "b", Some(es), 10)), [(None, Some(3)), (None, Some(7))]);
        // A knob of the index itself steps through the same values as a per-request one.
        let index = Knob { scope: KnobScope::Index { configured: 100 }, ..es };
        assert_eq!(values(settings(&plan, "a", Some(index), 10)), values(settings(&plan, "a", Some(es), 10)));
        // An exact engine has one setting.
        let exact = settings(&plan, "a", None, 10);
        assert_eq!(exact.len(), 1);
        assert_eq!(exact[0].setting(), "exact");
    }
}
