//! A streaming phase: writes and searches at fixed rates at the same time, each open loop
//! (latency from when the request was due), cut into checkpoints, with a probe that
//! measures how soon an acknowledged insert is returned by a search.
//!
//! Every search answer of a streaming run is kept (ids and send time) and scored after the
//! phase against the records live when it was sent (`data::live`), by the acknowledgement
//! times of the run's writes: a write acknowledged before the search was sent counts as
//! there, one sent after it does not, and one in flight when it was sent may count
//! either way (the engine may have applied it before answering or not): the answer is
//! scored against whichever of the two states it agrees with more.

use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ops::{PreparedOp, WriteLog};
use crate::data::Dataset;
use crate::driver::{Driver, Op, OpKind, SearchParams};
use crate::metrics::{new_histogram, record, LatencySummary, OpMetrics};
use crate::quality::QualitySums;
use crate::results::{Checkpoint, CheckpointLatency, Freshness};
use crate::spec::StreamPlan;

/// A stream phase as it runs: its plan and the schedule worked out when it started.
#[derive(Debug, Clone)]
pub struct StreamRun {
    pub plan: StreamPlan,
    /// Write requests in all.
    pub writes: u64,
    /// Searches in all.
    pub searches: u64,
    /// From the first request due to the last.
    pub duration: Duration,
    /// Indices into the phase's ops.
    search_ops: Vec<(usize, f64)>,
    write_ops: Vec<(usize, f64)>,
    /// The probe's search: k and params of the phase's first knn op.
    probe: Option<(usize, SearchParams)>,
}

impl StreamRun {
    /// The run of `plan` over the phase's runnable `ops`, with `held_out` records still
    /// held out. `None` (with why) when it cannot write anything.
    pub fn new(plan: &StreamPlan, ops: &[PreparedOp], held_out: usize, probe_runs: bool) -> Result<Self, String> {
        let split = |write: bool| -> Vec<(usize, f64)> {
            ops.iter()
                .enumerate()
                .filter(|(_, o)| o.plan.kind.is_write() == write)
                .map(|(i, o)| (i, o.plan.weight))
                .collect()
        };
        let (search_ops, write_ops) = (split(false), split(true));
        if search_ops.is_empty() || write_ops.is_empty() {
            return Err("the engine runs none of the phase's search ops or none of its write ops".into());
        }
        let insert_weight: f64 =
            write_ops.iter().filter(|(i, _)| ops[*i].plan.kind == OpKind::Insert).map(|(_, w)| w).sum();
        let total: f64 = write_ops.iter().map(|(_, w)| w).sum();
        let writes = plan.writes_for(held_out, insert_weight, total);
        if writes == 0 {
            return Err("no held-out record is left to insert".into());
        }
        let duration = Duration::from_secs_f64(writes as f64 / plan.write_rate);
        let searches = (duration.as_secs_f64() * plan.search_rate).floor().max(1.0) as u64;
        let probe = (plan.freshness && probe_runs && insert_weight > 0.0).then(|| {
            ops.iter()
                .find(|o| o.plan.kind == OpKind::Knn)
                .map(|o| (o.plan.k, o.plan.params.clone()))
                .unwrap_or((10, SearchParams::new()))
        });
        Ok(StreamRun { plan: plan.clone(), writes, searches, duration, search_ops, write_ops, probe })
    }

    pub fn checkpoints(&self) -> usize {
        self.plan.checkpoints
    }

    /// The checkpoint window a request due `since_start` after the start falls in.
    pub fn window_of(&self, since_start: Duration) -> usize {
        let share = since_start.as_secs_f64() / self.duration.as_secs_f64().max(f64::MIN_POSITIVE);
        ((share * self.plan.checkpoints as f64) as usize).min(self.plan.checkpoints - 1)
    }

    /// The end of window `c`, from the start.
    pub fn window_end(&self, c: usize) -> Duration {
        self.duration.mul_f64((c + 1) as f64 / self.plan.checkpoints as f64)
    }

    pub fn probe(&self) -> Option<&(usize, SearchParams)> {
        self.probe.as_ref()
    }
}

/// The due times of a stream phase: searches at `i / search_rate`, writes at
/// `j / write_rate`, each handed to its own workers in order; write j's op follows the
/// weights exactly (smooth weighted round robin), so a phase inserts just the records it
/// planned to.
pub struct StreamSchedule {
    run: Arc<StreamRun>,
    /// The weighted choice among the search ops.
    search_mix: super::ops::Mix,
    searches: std::sync::Mutex<u64>,
    writes: std::sync::Mutex<(u64, Vec<f64>)>,
}

impl StreamSchedule {
    pub fn new(run: Arc<StreamRun>) -> Self {
        let credit = vec![0.0; run.write_ops.len()];
        let weights: Vec<f64> = run.search_ops.iter().map(|(_, w)| *w).collect();
        StreamSchedule {
            search_mix: super::ops::Mix::new(&weights),
            run,
            searches: std::sync::Mutex::new(0),
            writes: std::sync::Mutex::new((0, credit)),
        }
    }

    /// Does worker `w` send writes (the first `write_concurrency`) or searches?
    pub fn writes_for(&self, w: usize) -> bool {
        w < self.run.plan.write_concurrency
    }

    /// The next search: when it is due and which op (its index among the phase's ops,
    /// drawn by weight with `rng`), or `None` when none is left.
    pub fn next_search(&self, start: Instant, rng: &mut rand_chacha::ChaCha8Rng) -> Option<(Instant, usize)> {
        let r = &self.run;
        let mut i = self.searches.lock().expect("schedule lock");
        if *i >= r.searches {
            return None;
        }
        let at = *i as f64 / r.plan.search_rate;
        *i += 1;
        drop(i);
        Some((start + Duration::from_secs_f64(at), r.search_ops[self.search_mix.pick(rng)].0))
    }

    /// The next write, as `next_search`.
    pub fn next_write(&self, start: Instant) -> Option<(Instant, usize)> {
        let r = &self.run;
        let mut st = self.writes.lock().expect("schedule lock");
        let (j, credit) = &mut *st;
        if *j >= r.writes {
            return None;
        }
        let at = *j as f64 / r.plan.write_rate;
        *j += 1;
        let total: f64 = r.write_ops.iter().map(|(_, w)| w).sum();
        for (c, (_, w)) in credit.iter_mut().zip(&r.write_ops) {
            *c += w;
        }
        let best = (0..credit.len()).max_by(|a, b| credit[*a].total_cmp(&credit[*b]).then(b.cmp(a)))?;
        credit[best] -= total;
        Some((start + Duration::from_secs_f64(at), r.write_ops[best].0))
    }

    /// Requests not yet handed out.
    pub fn remaining(&self) -> u64 {
        let searches = *self.searches.lock().expect("schedule lock");
        let writes = self.writes.lock().expect("schedule lock").0;
        (self.run.searches - searches) + (self.run.writes - writes)
    }
}

/// A search answer kept for scoring after the phase.
pub struct Answer {
    pub op: usize,
    pub query: usize,
    pub sent: Instant,
    pub window: Option<usize>,
    pub hits: Vec<u64>,
}

/// One checkpoint window's figures, from one worker or merged.
#[derive(Debug, Clone)]
pub struct Window {
    pub search: Histogram<u64>,
    pub write: Histogram<u64>,
    pub search_errors: u64,
    pub write_errors: u64,
    pub quality: QualitySums,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            search: new_histogram(3),
            write: new_histogram(3),
            search_errors: 0,
            write_errors: 0,
            quality: QualitySums::default(),
        }
    }
}

impl Window {
    /// Count one request of `kind` (`latency`: `None` when it failed).
    pub fn record(&mut self, kind: OpKind, latency_ns: Option<u64>) {
        let (h, errors) = if kind.is_write() {
            (&mut self.write, &mut self.write_errors)
        } else {
            (&mut self.search, &mut self.search_errors)
        };
        match latency_ns {
            Some(ns) => record(h, ns),
            None => *errors += 1,
        }
    }

    pub fn add(&mut self, other: &Window) {
        self.search.add(&other.search).expect("auto-resizing histograms accept any range");
        self.write.add(&other.write).expect("auto-resizing histograms accept any range");
        self.search_errors += other.search_errors;
        self.write_errors += other.write_errors;
        self.quality.add(&other.quality);
    }
}

/// Add `theirs` into `mine`, window by window.
pub fn add_windows(mine: &mut Vec<Window>, theirs: &[Window]) {
    if mine.len() < theirs.len() {
        mine.resize_with(theirs.len(), Window::default);
    }
    for (m, t) in mine.iter_mut().zip(theirs) {
        m.add(t);
    }
}

/// Score every kept answer against the records live when it was sent, into its op's
/// quality and its window's.
pub fn score_answers(
    answers: &[Answer],
    ops: &[PreparedOp],
    ds: &Dataset,
    log: &WriteLog,
    loaded: u64,
    metrics: &mut [OpMetrics],
    windows: &mut [Window],
) {
    for a in answers {
        let prepared = &ops[a.op];
        let k = prepared.plan.k;
        let truth = prepared.live.as_ref().map(|t| {
            let acked = t.at(a.query, &|id: u64| log.live_at(id, loaded, a.sent));
            let with_in_flight = t.at(a.query, &|id: u64| log.live_at_with_in_flight(id, loaded, a.sent));
            let agree =
                |truth: &[u64]| truth.iter().take(k).filter(|id| a.hits.iter().take(k).any(|h| h == *id)).count();
            if agree(&with_in_flight) > agree(&acked) {
                with_in_flight
            } else {
                acked
            }
        });
        let judged = ds.queries.judgments.as_ref().map(|j| j[a.query].as_slice());
        metrics[a.op].quality.record(&a.hits, k, truth.as_deref(), judged);
        if let Some(w) = a.window.and_then(|w| windows.get_mut(w)) {
            w.quality.record(&a.hits, k, truth.as_deref(), None);
        }
    }
}

/// The checkpoints of a finished stream phase.
pub fn checkpoints(
    run: &StreamRun,
    windows: &[Window],
    log: &WriteLog,
    loaded: u64,
    start: Instant,
) -> Vec<Checkpoint> {
    (0..run.checkpoints())
        .map(|c| {
            let w = windows.get(c).cloned().unwrap_or_default();
            let end = run.window_end(c);
            let latency = |h: &Histogram<u64>, errors: u64| CheckpointLatency {
                count: h.len(),
                errors,
                latency_ms: LatencySummary::of(h),
            };
            Checkpoint {
                index: c + 1,
                end_s: end.as_secs_f64(),
                records_live: log.live_count_at(loaded, start + end),
                inserted: log.inserted.values().filter(|at| **at <= start + end).count() as u64,
                deleted: log.deleted.values().filter(|at| **at <= start + end).count() as u64,
                search: latency(&w.search, w.search_errors),
                write: latency(&w.write, w.write_errors),
                recall_at_k: w.quality.summary(usize::MAX).recall_at_k,
            }
        })
        .collect()
}

/// What one probe found: how long after its acknowledgement an insert was first
/// returned, or that it was not within the bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Probe {
    /// Returned by a search sent this long after the acknowledgement; `first`: by the
    /// probe's first search (then it may have been visible sooner: the lag is a bound).
    Visible {
        lag: Duration,
        first: bool,
    },
    NotVisible,
    Failed,
}

/// Probes running at once at most; a sampled insert that finds them all busy is skipped
/// (and counted), so probing never piles up behind an engine that is slow to show writes.
pub const MAX_PROBES: usize = 8;

/// Probe the inserts handed over on `rx` (every `probe_every`-th acknowledged insert, so
/// the sample does not depend on when the engine refreshes), each in a task of its own:
/// search with the record's own vector every `interval` until the record is among the
/// hits or `bound` has passed since its acknowledgement. The lag is from the
/// acknowledgement to the send of the first search that returned it. Probes still
/// running when the phase ends are dropped. Returns the probes and how many were skipped.
pub async fn probe_loop(
    driver: Arc<dyn Driver>,
    ds: Arc<Dataset>,
    run: Arc<StreamRun>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<(u64, Instant)>,
    stop: CancellationToken,
) -> (Vec<Probe>, u64) {
    let Some((k, params)) = run.probe().cloned() else { return (Vec::new(), 0) };
    let (interval, bound) = (run.plan.probe_interval, run.plan.visibility_bound);
    let (mut found, mut skipped) = (Vec::new(), 0);
    let mut running = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            Some(done) = running.join_next(), if !running.is_empty() => {
                if let Ok(p) = done {
                    found.push(p);
                }
            }
            next = rx.recv() => {
                let Some((id, acked)) = next else { break };
                if running.len() >= MAX_PROBES {
                    skipped += 1;
                    continue;
                }
                let (driver, ds, params) = (driver.clone(), ds.clone(), params.clone());
                running.spawn(async move { probe_one(&*driver, ds.vector(id as usize), id, acked, k, &params, interval, bound).await });
            }
        }
    }
    running.abort_all();
    (found, skipped)
}

/// One probe of record `id`, acknowledged at `acked`.
#[allow(clippy::too_many_arguments)]
async fn probe_one(
    driver: &dyn Driver,
    vector: &[f32],
    id: u64,
    acked: Instant,
    k: usize,
    params: &SearchParams,
    interval: Duration,
    bound: Duration,
) -> Probe {
    let mut first = true;
    loop {
        let sent = Instant::now();
        let op = Op::Knn { vector, k, filter: None, params };
        match driver.execute(&op).await {
            Ok(h) if h.hits().is_some_and(|h| h.contains(&id)) => {
                return Probe::Visible { lag: sent.saturating_duration_since(acked), first };
            }
            Ok(_) if sent.saturating_duration_since(acked) >= bound => return Probe::NotVisible,
            Ok(_) => first = false,
            Err(_) => return Probe::Failed,
        }
        tokio::time::sleep_until(sent + interval).await;
    }
}

/// The freshness figures of a phase's probes.
pub fn freshness(run: &StreamRun, probes: &[Probe], skipped: u64, write_visibility: String) -> Option<Freshness> {
    let (k, _) = run.probe()?;
    let mut lag = new_histogram(3);
    let mut first_try = 0;
    for p in probes {
        if let Probe::Visible { lag: d, first } = p {
            record(&mut lag, d.as_nanos() as u64);
            first_try += *first as u64;
        }
    }
    let visible = lag.len();
    let not_visible = probes.iter().filter(|p| **p == Probe::NotVisible).count() as u64;
    let failed = probes.iter().filter(|p| **p == Probe::Failed).count() as u64;
    Some(Freshness {
        probes: probes.len() as u64,
        skipped,
        probe_every: run.plan.probe_every,
        visible,
        visible_first_try: first_try,
        not_visible,
        failed,
        not_visible_share: if probes.is_empty() { None } else { Some(not_visible as f64 / probes.len() as f64) },
        lag_ms: LatencySummary::of(&lag),
        probe_k: *k,
        probe_interval_ms: run.plan.probe_interval.as_secs_f64() * 1e3,
        visibility_bound_s: run.plan.visibility_bound.as_secs_f64(),
        write_visibility,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{KeyChoice, OpPlan, QueryOrder};

    fn op(kind: OpKind, weight: f64) -> PreparedOp {
        let plan = OpPlan {
            label: kind.to_string(),
            kind,
            weight,
            k: 10,
            filter: None,
            keys: KeyChoice::Uniform,
            zipf_theta: 0.99,
            scan_length: 100,
            field: None,
            params: Default::default(),
            query_order: QueryOrder::Random,
            expand: None,
        };
        PreparedOp::new(plan, None, 100, &[])
    }

    fn plan() -> StreamPlan {
        StreamPlan {
            write_rate: 10.0,
            search_rate: 20.0,
            records: None,
            writes: None,
            checkpoints: 4,
            write_concurrency: 1,
            freshness: true,
            probe_every: 10,
            probe_interval: Duration::from_millis(10),
            visibility_bound: Duration::from_secs(1),
        }
    }

    #[tokio::test]
    async fn the_schedule_interleaves_writes_in_their_weights_until_the_held_out_records_are_in() {
        let ops = vec![op(OpKind::Knn, 1.0), op(OpKind::Insert, 3.0), op(OpKind::Delete, 1.0)];
        let run = Arc::new(StreamRun::new(&plan(), &ops, 30, true).unwrap());
        assert_eq!(run.writes, 40, "30 inserts are 3/4 of the writes");
        assert_eq!(run.duration, Duration::from_secs(4));
        assert_eq!(run.searches, 80);
        let sched = StreamSchedule::new(run.clone());
        assert!(sched.writes_for(0) && !sched.writes_for(1), "one of the two workers writes");
        let start = Instant::now();
        let mut got = Vec::new();
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(1);
        while let Some((due, op)) = sched.next_search(start, &mut rng) {
            got.push((due - start, op));
        }
        while let Some((due, op)) = sched.next_write(start) {
            got.push((due - start, op));
        }
        assert_eq!(got.len(), 120);
        assert!(got[..80].windows(2).all(|w| w[0].0 < w[1].0), "searches in order");
        assert_eq!(got[80 + 39].0, Duration::from_millis(3900), "write 40 at 39 / 10 s");
        let count = |i: usize| got.iter().filter(|(_, o)| *o == i).count();
        assert_eq!((count(0), count(1), count(2)), (80, 30, 10), "exactly the planned inserts");
        assert!(got[..80].iter().all(|(_, o)| *o == 0), "searches pick search ops only");
        // Every 4 writes hold 3 inserts and a delete: never a run of deletes.
        let writes: Vec<usize> = got.iter().filter(|(_, o)| *o != 0).map(|(_, o)| *o).collect();
        assert!(writes.chunks(4).all(|c| c.iter().filter(|o| **o == 1).count() == 3), "{writes:?}");
        assert_eq!(sched.remaining(), 0);
        assert_eq!((run.window_of(Duration::from_millis(999)), run.window_of(Duration::from_secs(9))), (0, 3));
    }

    #[test]
    fn a_stream_without_held_out_records_or_searches_cannot_run() {
        let ops = vec![op(OpKind::Knn, 1.0), op(OpKind::Insert, 1.0)];
        assert!(StreamRun::new(&plan(), &ops, 0, true).is_err());
        assert!(StreamRun::new(&plan(), &ops[1..], 10, true).is_err());
        let run = StreamRun::new(&StreamPlan { records: Some(5), ..plan() }, &ops, 10, false).unwrap();
        assert_eq!((run.writes, run.probe().is_none()), (5, true), "records caps the inserts; no probe asked");
    }
}
