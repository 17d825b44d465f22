//! One measured (or warmup) phase against one engine: workers, schedule, stop condition.
//!
//! Closed loop: each worker sends its next request when the previous one returns, and
//! latency is service time. Open loop: requests fall due at `start + i / rate` (or at
//! Poisson arrivals); a free worker takes the next due request, sleeps until it is due,
//! and latency counts from when it was due, so a stalled engine cannot hide the queue it
//! causes (the wrk2 / pgbench -R rule). Service time (from the send) and schedule lag
//! (send minus due) are recorded beside it.
//!
//! Nothing on the timed path waits on anything but the request itself: requests are
//! built before the clock starts, and scoring happens after it stops.
//!
//! In a run, worker `w` runs on client thread `w % threads` (`threads.rs`), each thread
//! with its own runtime, as pgbench's clients run on its `-j` threads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ops::{Keyspace, Mix, PreparedOp, Request};
use super::shard::Shard;
use super::stream::{self, add_windows, Answer, Probe, StreamRun, StreamSchedule, Window};
use super::threads::ClientThreads;
use crate::data::Dataset;
use crate::driver::{Driver, ErrorKind, OpKind, Outcome};
use crate::metrics::OpMetrics;
use crate::spec::{Arrival, Schedule, Stop};

/// After this many consecutive "unreachable" errors a worker declares the engine lost and
/// the phase stops: the rest of the phase would only measure a dead server.
pub const LOST_AFTER: u32 = 20;

/// What a phase runs against.
#[derive(Clone)]
pub struct PhaseEnv {
    pub driver: Arc<dyn Driver>,
    pub dataset: Arc<Dataset>,
    pub keys: Arc<Keyspace>,
    /// The ops that run (unsupported ones already left out), with their weights.
    pub ops: Arc<Vec<PreparedOp>>,
    /// Where the workers run: on these client threads (a run's phases), or, when `None`,
    /// as tasks of the caller's runtime (tests on tokio's paused clock, the criterion
    /// benchmarks of one core).
    pub threads: Option<Arc<ClientThreads>>,
    /// Set for a stream phase: its rates, writes and checkpoints (`schedule` and `stop`
    /// passed to `run_phase` are then ignored).
    pub stream: Option<Arc<StreamRun>>,
    /// Which part of the phase this process runs, from when, and what it keeps.
    pub timing: PhaseTiming,
}

/// How a phase is split and clocked in a sharded run, and whether every request's
/// latency is kept.
#[derive(Clone, Copy, Debug, Default)]
pub struct PhaseTiming {
    /// Run only this shard's workers and open-loop arrivals (`shard.rs`).
    pub shard: Option<Shard>,
    /// The agreed start: due times and seconds count from it (the caller has slept until
    /// it); `None` starts the phase now.
    pub start: Option<Instant>,
    /// Keep every request's latency and due time (`--raw-latencies`).
    pub raw: bool,
}

/// One request as it happened, kept with `--raw-latencies`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawSample {
    /// Open loop: when it was due, from the phase's start.
    pub due_ns: Option<u64>,
    /// What the latency histogram (or, for an error, the error histogram) recorded.
    pub latency_ns: u64,
    pub ok: bool,
}

/// What a phase measured.
pub struct PhaseRun {
    /// Per op, in `PhaseEnv::ops` order.
    pub metrics: Vec<OpMetrics>,
    pub elapsed: Duration,
    /// Why the phase stopped early, if it did.
    pub interrupted: Option<String>,
    /// Open loop: requests that fell due but were never sent.
    pub unsent: u64,
    /// Streaming runs: every search answer, for scoring against the live records.
    pub answers: Vec<Answer>,
    /// Stream phase: per checkpoint window.
    pub windows: Vec<Window>,
    /// Stream phase: what each freshness probe found, and sampled inserts not probed.
    pub probes: Vec<Probe>,
    pub probes_skipped: u64,
    /// When the phase started (what checkpoint times count from).
    pub started: Instant,
    /// With `PhaseTiming::raw`: every request, per op.
    pub raw: Vec<Vec<RawSample>>,
}

/// Due times of an open-loop phase.
struct OpenSchedule {
    rate: f64,
    arrival: Arrival,
    state: Mutex<(u64, f64, ChaCha8Rng)>,
    /// Requests due before this offset from the start (duration stop).
    horizon: Option<Duration>,
    /// Or this many requests (requests stop).
    limit: Option<u64>,
    /// Hand out only this shard's arrivals of the one planned schedule.
    shard: Option<Shard>,
}

impl OpenSchedule {
    /// The next due time, or None when the phase has no more requests to schedule.
    ///
    /// Every shard walks the whole planned schedule (the same seed draws the same Poisson
    /// gaps) and takes arrivals `j` with `j % N == I`, so the shards' arrivals together
    /// are exactly the schedule one process would have run.
    fn next(&self, start: Instant) -> Option<Instant> {
        let mut st = self.state.lock().expect("schedule lock");
        let (index, offset_s, rng) = &mut *st;
        loop {
            if self.limit.is_some_and(|l| *index >= l) {
                return None;
            }
            let at = Duration::from_secs_f64(*offset_s);
            if self.horizon.is_some_and(|h| at >= h) {
                return None;
            }
            let j = *index;
            *index += 1;
            *offset_s += match self.arrival {
                Arrival::Fixed => 1.0 / self.rate,
                Arrival::Poisson => {
                    let u: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
                    -u.ln() / self.rate
                }
            };
            if self.shard.is_none_or(|s| s.owns(j)) {
                return Some(start + at);
            }
        }
    }

    /// Requests still due (not yet handed out) before the horizon or limit.
    fn remaining(&self, start: Instant) -> u64 {
        let mut n = 0;
        while self.next(start).is_some() {
            n += 1;
        }
        n
    }
}

struct Shared {
    env: PhaseEnv,
    start: Instant,
    deadline: Option<Instant>,
    /// Open loop with a duration: past this, due requests are given up as unsent.
    hard_stop: Option<Instant>,
    budget: Option<u64>,
    issued: AtomicU64,
    /// Open loop: requests taken off the schedule but given up at the hard stop.
    given_up: AtomicU64,
    open: Option<OpenSchedule>,
    mix: Mix,
    stop: CancellationToken,
    lost: Mutex<Option<String>>,
    completed: Arc<AtomicU64>,
    stream: Option<StreamSchedule>,
    /// Acknowledged inserts sampled for the freshness probes.
    probe: Mutex<Option<tokio::sync::mpsc::UnboundedSender<(u64, Instant)>>>,
    /// Inserts acknowledged in this phase, to sample every `probe_every`-th.
    inserts_acked: AtomicU64,
}

/// What one worker measured.
struct WorkerOut {
    metrics: Vec<OpMetrics>,
    answers: Vec<Answer>,
    windows: Vec<Window>,
    raw: Vec<Vec<RawSample>>,
}

/// Run one phase. `cancel` is the run's Ctrl-C token; `completed` counts finished
/// requests for the progress display.
pub async fn run_phase(
    env: &PhaseEnv,
    schedule: Schedule,
    stop: Stop,
    seed: u64,
    cancel: &CancellationToken,
    completed: Arc<AtomicU64>,
) -> PhaseRun {
    let start = env.timing.start.unwrap_or_else(Instant::now);
    let stop = match &env.stream {
        Some(run) => Stop::Duration(run.duration),
        None => stop,
    };
    let (deadline, budget) = match stop {
        Stop::Duration(d) => (Some(start + d), None),
        Stop::Requests(n) => (None, Some(n)),
    };
    let open = match schedule {
        Schedule::Closed { .. } => None,
        Schedule::Open { rate, arrival, .. } => Some(OpenSchedule {
            rate,
            arrival,
            state: Mutex::new((0, 0.0, ChaCha8Rng::seed_from_u64(seed ^ 0x5eed))),
            horizon: match stop {
                Stop::Duration(d) => Some(d),
                Stop::Requests(_) => None,
            },
            limit: budget,
            shard: env.timing.shard,
        }),
    };
    let hard_stop = match stop {
        Stop::Duration(d) if open.is_some() || env.stream.is_some() => {
            Some(start + d + (d / 10).max(Duration::from_secs(2)))
        }
        _ => None,
    };
    let open = if env.stream.is_some() { None } else { open };
    let (probe_tx, probe_rx) = tokio::sync::mpsc::unbounded_channel();
    let weights: Vec<f64> = env.ops.iter().map(|o| o.plan.weight).collect();
    let shared = Arc::new(Shared {
        env: env.clone(),
        start,
        deadline,
        hard_stop,
        budget,
        issued: AtomicU64::new(0),
        given_up: AtomicU64::new(0),
        open,
        mix: Mix::new(&weights),
        stop: cancel.child_token(),
        lost: Mutex::new(None),
        completed,
        stream: env.stream.clone().map(StreamSchedule::new),
        probe: Mutex::new(env.stream.as_ref().filter(|r| r.probe().is_some()).map(|_| probe_tx)),
        inserts_acked: AtomicU64::new(0),
    });
    let probe_stop = shared.stop.child_token();
    let prober = env.stream.as_ref().filter(|r| r.probe().is_some()).map(|run| {
        let task =
            stream::probe_loop(env.driver.clone(), env.dataset.clone(), run.clone(), probe_rx, probe_stop.clone());
        let task = crate::driver::as_worker(schedule.concurrency(), task);
        match &env.threads {
            Some(threads) => threads.spawn(schedule.concurrency(), task),
            None => tokio::spawn(task),
        }
    });

    // A shard runs its own workers of the planned ones, each with the seed it has there.
    let shard = env.timing.shard;
    let workers: Vec<_> = (0..schedule.concurrency())
        .filter(|&w| shard.is_none_or(|s| s.owns(w as u64)))
        .map(|w| {
            let shared = shared.clone();
            let seed = seed.wrapping_add(w as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let task = crate::driver::as_worker(w, async move { worker(shared, w, seed).await });
            match &env.threads {
                Some(threads) => threads.spawn(w, task),
                None => tokio::spawn(task),
            }
        })
        .collect();

    let mut metrics: Vec<OpMetrics> = (0..env.ops.len()).map(|_| OpMetrics::default()).collect();
    let (mut answers, mut windows) = (Vec::new(), Vec::new());
    let mut raw: Vec<Vec<RawSample>> = vec![Vec::new(); if env.timing.raw { env.ops.len() } else { 0 }];
    let mut panicked = None;
    for w in workers {
        match w.await {
            Ok(out) => {
                for (mine, theirs) in metrics.iter_mut().zip(&out.metrics) {
                    mine.add(theirs);
                }
                for (mine, theirs) in raw.iter_mut().zip(out.raw) {
                    mine.extend(theirs);
                }
                answers.extend(out.answers);
                add_windows(&mut windows, &out.windows);
            }
            Err(e) => panicked = Some(format!("a worker failed: {e}")),
        }
    }
    let elapsed = start.elapsed();
    // Probes in flight when the writes are done are dropped, not waited for.
    shared.probe.lock().expect("probe lock").take();
    probe_stop.cancel();
    let (probes, probes_skipped) = match prober {
        Some(p) => p.await.unwrap_or_default(),
        None => (Vec::new(), 0),
    };
    let unsent = shared.open.as_ref().map(|o| o.remaining(start)).unwrap_or(0)
        + shared.stream.as_ref().map(|s| s.remaining()).unwrap_or(0)
        + shared.given_up.load(Ordering::Relaxed);
    let lost = shared.lost.lock().expect("lost lock").clone();
    let interrupted = lost.or(panicked).or_else(|| cancel.is_cancelled().then(|| "interrupted (Ctrl-C)".to_string()));
    PhaseRun { metrics, elapsed, interrupted, unsent, answers, windows, probes, probes_skipped, started: start, raw }
}

async fn worker(shared: Arc<Shared>, w: usize, seed: u64) -> WorkerOut {
    let env = &shared.env;
    let ds: &Dataset = &env.dataset;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut metrics: Vec<OpMetrics> = (0..env.ops.len()).map(|_| OpMetrics::default()).collect();
    let mut answers = Vec::new();
    let mut windows: Vec<Window> = Vec::new();
    let mut raw: Vec<Vec<RawSample>> = vec![Vec::new(); if env.timing.raw { env.ops.len() } else { 0 }];
    let keep_answers = env.keys.is_streaming();
    let mut unreachable_in_a_row = 0u32;
    let mut iteration = 0u64;
    // One stop future for the whole phase, registered with the token once: a fresh one per
    // request would take the token's lock twice per request, shared by every worker.
    let stopped = shared.stop.cancelled();
    tokio::pin!(stopped);
    loop {
        if shared.stop.is_cancelled() {
            break;
        }
        iteration += 1;
        if iteration % 64 == 0 {
            // Ops that never await (embedded engines, no-op) must not starve timers and
            // the progress display.
            tokio::task::yield_now().await;
        }
        // Open loop (and stream phases): the next due time, with the stream's op.
        let scheduled = match (&shared.stream, &shared.open) {
            (Some(sched), _) if sched.writes_for(w) => {
                Some(sched.next_write(shared.start).map(|(d, op)| (d, Some(op))))
            }
            (Some(sched), _) => Some(sched.next_search(shared.start, &mut rng).map(|(d, op)| (d, Some(op)))),
            (None, Some(open)) => Some(open.next(shared.start).map(|d| (d, None))),
            (None, None) => None,
        };
        let mut streamed = None;
        let due = match scheduled {
            Some(next) => {
                let Some((due, op)) = next else { break };
                if shared.hard_stop.is_some_and(|h| Instant::now() >= h) {
                    shared.given_up.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                if due > Instant::now() {
                    tokio::select! {
                        biased;
                        _ = &mut stopped => break,
                        _ = tokio::time::sleep_until(due) => {}
                    }
                }
                streamed = op;
                Some(due)
            }
            None => {
                if shared.deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                if let Some(b) = shared.budget {
                    if shared.issued.fetch_add(1, Ordering::Relaxed) >= b {
                        break;
                    }
                }
                None
            }
        };

        let op_index = streamed.unwrap_or_else(|| shared.mix.pick(&mut rng));
        let prepared = &env.ops[op_index];
        let request = prepared.next_request(&mut rng, ds, &env.keys);
        let m = &mut metrics[op_index];
        let Some(op) = prepared.as_op(&request, ds) else {
            let second = shared.start.elapsed().as_secs() as usize;
            let why = request.nothing_to_do().unwrap_or("nothing to send");
            m.record_error(0, 0, second, ErrorKind::NothingToDo, why);
            shared.completed.fetch_add(1, Ordering::Relaxed);
            continue;
        };

        let send = Instant::now();
        let result = tokio::select! {
            biased;
            r = env.driver.execute(&op) => r,
            _ = &mut stopped => break,
        };
        let done = Instant::now();

        let service = done.duration_since(send).as_nanos() as u64;
        let latency = done.duration_since(due.unwrap_or(send)).as_nanos() as u64;
        let second = done.duration_since(shared.start).as_secs() as usize;
        if let Some(due) = due {
            m.record_lag(send.duration_since(due).as_nanos() as u64);
        }
        let window = match (&env.stream, due) {
            (Some(run), Some(due)) => Some(run.window_of(due.duration_since(shared.start))),
            _ => None,
        };
        if let Some(samples) = raw.get_mut(op_index) {
            samples.push(RawSample {
                due_ns: due.map(|d| d.duration_since(shared.start).as_nanos() as u64),
                latency_ns: latency,
                ok: result.is_ok(),
            });
        }
        if let Some(w) = window {
            if windows.len() <= w {
                windows.resize_with(w + 1, Window::default);
            }
            windows[w].record(prepared.plan.kind, result.is_ok().then_some(latency));
        }
        match result {
            Ok(outcome) => {
                unreachable_in_a_row = 0;
                m.record_ok(latency, service, second);
                match (&request, outcome.hits()) {
                    (Request::Query { query }, Some(hits)) if keep_answers => {
                        answers.push(Answer { op: op_index, query: *query, sent: send, window, hits: hits.to_vec() })
                    }
                    _ => score(prepared, &request, &outcome, ds, m),
                }
                match &request {
                    Request::Insert { record } => {
                        env.keys.inserted(record.id, send, done);
                        let nth = shared.inserts_acked.fetch_add(1, Ordering::Relaxed);
                        let every = env.stream.as_ref().map_or(1, |r| r.plan.probe_every.max(1));
                        if nth % every == 0 {
                            if let Some(tx) = shared.probe.lock().expect("probe lock").as_ref() {
                                let _ = tx.send((record.id, done));
                            }
                        }
                    }
                    Request::Id { id } if prepared.plan.kind == OpKind::Delete => env.keys.deleted(*id, send, done),
                    _ => {}
                }
            }
            Err(e) => {
                if let (Request::Id { id }, OpKind::Delete) = (&request, prepared.plan.kind) {
                    env.keys.delete_failed(*id);
                }
                m.record_error(latency, service, second, e.kind, &e.message);
                if e.kind == ErrorKind::Unreachable {
                    unreachable_in_a_row += 1;
                    if unreachable_in_a_row >= LOST_AFTER {
                        let mut lost = shared.lost.lock().expect("lost lock");
                        lost.get_or_insert_with(|| {
                            format!(
                                "engine lost: {LOST_AFTER} requests in a row could not reach it; last error: {}",
                                e.message
                            )
                        });
                        shared.stop.cancel();
                    }
                }
            }
        }
        shared.completed.fetch_add(1, Ordering::Relaxed);
    }
    WorkerOut { metrics, answers, windows, raw }
}

/// Retrieval quality of one answer, after the clock stopped.
fn score(prepared: &PreparedOp, request: &Request, outcome: &Outcome, ds: &Dataset, m: &mut OpMetrics) {
    let (Request::Query { query }, Some(hits)) = (request, outcome.hits()) else { return };
    if !prepared.plan.kind.is_search() {
        return;
    }
    let truth = prepared.truth.as_ref().map(|t| t[*query].as_slice());
    // Judgments grade documents for the query, not the neighbourhood a graph walk adds:
    // an expansion is scored against the exact expansion only.
    let judged = match prepared.plan.kind {
        OpKind::Expand => None,
        _ => ds.queries.judgments.as_ref().map(|j| j[*query].as_slice()),
    };
    m.quality.record(hits, prepared.plan.k, truth, judged);
}
