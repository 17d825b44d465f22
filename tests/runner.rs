//! The runner's numbers, pinned with the scripted driver on tokio's paused clock: what an
//! open loop must show when the engine stalls, what a closed loop must not, exact counts
//! and throughput, errors by kind, an engine lost mid-phase, and warmup kept out.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use dbbench::data::{self, Dataset};
use dbbench::driver::scripted::{Script, Scripted};
use dbbench::driver::{Driver, ErrorKind, OpKind, SearchParams};
use dbbench::metrics::LatencySummary;
use dbbench::runner::ops::{Keyspace, PreparedOp};
use dbbench::runner::phase::{run_phase, PhaseEnv, PhaseRun};
use dbbench::runner::threads::ClientThreads;
use dbbench::spec::{Arrival, DatasetPlan, KeyChoice, OpPlan, QueryOrder, Schedule, Stop, SyntheticSpec};
use tokio_util::sync::CancellationToken;

fn dataset() -> Arc<Dataset> {
    let plan = DatasetPlan::synthetic(SyntheticSpec { docs: 100, queries: 10, dim: 4, ..Default::default() });
    Arc::new(data::build(&plan, &[], 1).unwrap())
}

fn op(kind: OpKind) -> OpPlan {
    OpPlan {
        label: kind.to_string(),
        kind,
        weight: 1.0,
        k: 10,
        filter: None,
        keys: KeyChoice::Uniform,
        zipf_theta: 0.99,
        scan_length: 10,
        field: None,
        params: SearchParams::new(),
        query_order: QueryOrder::Random,
        expand: None,
    }
}

fn env(script: Script) -> (PhaseEnv, Arc<Scripted>) {
    let driver = Arc::new(Scripted::new(script));
    let ds = dataset();
    let keys = Arc::new(Keyspace::new(ds.len() as u64));
    let ops = vec![PreparedOp::new(op(OpKind::Get), None, ds.len() as u64, &[])];
    let env = PhaseEnv {
        driver: driver.clone() as Arc<dyn Driver>,
        dataset: ds,
        keys,
        ops: Arc::new(ops),
        threads: None,
        stream: None,
        timing: Default::default(),
    };
    (env, driver)
}

async fn phase(env: &PhaseEnv, schedule: Schedule, stop: Stop) -> PhaseRun {
    run_phase(env, schedule, stop, 7, &CancellationToken::new(), Arc::new(AtomicU64::new(0))).await
}

fn ms(v: Option<f64>) -> f64 {
    v.expect("percentile present")
}

#[tokio::test(start_paused = true)]
async fn open_loop_stall_shows_in_latency_but_not_in_service_time() {
    // 100 requests/s for 10 s; each takes 1 ms, except request 200, which stalls 1 s.
    let (env, _) = env(Script { latency_us: 1_000, stall_at: vec![200], stall_ms: 1_000, ..Default::default() });
    let schedule = Schedule::Open { rate: 100.0, arrival: Arrival::Fixed, concurrency: 1 };
    let run = phase(&env, schedule, Stop::Duration(Duration::from_secs(10))).await;
    let m = &run.metrics[0];
    assert_eq!(m.ok_count(), 1000, "every request due in 10 s at 100/s is sent");
    assert_eq!(run.unsent, 0);
    let latency = LatencySummary::of(&m.ok_latency);
    let service = LatencySummary::of(&m.ok_service);
    // During the stall the next 100 requests fall due and queue behind it: their latency
    // (from when they were due) runs from ~1 s down to ~0, so ~10% of requests are late.
    assert!(ms(latency.p99) > 800.0, "p99 latency must show the stall: {latency:?}");
    assert!(ms(latency.p90) > 50.0, "the queue behind the stall is ~10% of requests: {latency:?}");
    assert!(ms(service.p99) < 1.1, "service time p99 stays at the engine's 1 ms: {service:?}");
    assert!((ms(service.max) - 1000.0).abs() < 2.0, "one request had a 1 s service time: {service:?}");
    let lag = LatencySummary::of(&m.schedule_lag);
    assert!(ms(lag.max) > 900.0, "schedule lag is recorded: {lag:?}");
}

#[tokio::test(start_paused = true)]
async fn closed_loop_stall_inflates_one_sample_only() {
    let (env, _) = env(Script { latency_us: 1_000, stall_at: vec![100], stall_ms: 1_000, ..Default::default() });
    let run = phase(&env, Schedule::Closed { concurrency: 1 }, Stop::Requests(1_000)).await;
    let m = &run.metrics[0];
    assert_eq!(m.ok_count(), 1_000, "exactly the requested count");
    let latency = LatencySummary::of(&m.ok_latency);
    assert!(ms(latency.p99) < 1.1, "only the stalled request is slow: {latency:?}");
    assert!((ms(latency.max) - 1000.0).abs() < 2.0);
    assert_eq!(m.ok_latency.len(), m.ok_service.len());
    assert_eq!(LatencySummary::of(&m.ok_service), latency, "closed loop: latency is service time");
    // 999 requests of 1 ms and one of 1 s, back to back.
    assert!((run.elapsed.as_secs_f64() - 1.999).abs() < 0.005, "elapsed {:?}", run.elapsed);
}

#[tokio::test(start_paused = true)]
async fn counts_and_throughput_are_exact() {
    let (env, driver) = env(Script { latency_us: 2_000, ..Default::default() });
    let run = phase(&env, Schedule::Closed { concurrency: 4 }, Stop::Requests(2_000)).await;
    let m = &run.metrics[0];
    assert_eq!(m.ok_count(), 2_000);
    assert_eq!(driver.requests(), 2_000, "the driver saw exactly the requests counted");
    // 4 workers x 2 ms per request: 2000 requests take 1 s.
    assert!((run.elapsed.as_secs_f64() - 1.0).abs() < 0.01, "elapsed {:?}", run.elapsed);
    let per_second: u64 = m.intervals.iter().map(|i| i.ok).sum();
    assert_eq!(per_second, 2_000, "the interval series adds up to the count");
}

#[tokio::test(start_paused = true)]
async fn each_worker_is_named_to_the_driver() {
    let (env, driver) = env(Script { latency_us: 1_000, ..Default::default() });
    phase(&env, Schedule::Closed { concurrency: 4 }, Stop::Requests(400)).await;
    assert_eq!(driver.workers_seen(), vec![0, 1, 2, 3], "drivers keep a connection per worker by this");
    // Outside a phase there is no worker.
    assert_eq!(dbbench::driver::current_worker(), None);
}

/// As in a run: workers on client threads (a runtime each), on the real clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn workers_on_client_threads_count_exactly_and_never_change_thread() {
    let (mut env, driver) = env(Script { latency_us: 200, ..Default::default() });
    env.threads = Some(Arc::new(ClientThreads::start(2).expect("client threads")));
    let run = phase(&env, Schedule::Closed { concurrency: 4 }, Stop::Requests(2_000)).await;
    assert_eq!(run.metrics[0].ok_count(), 2_000);
    assert_eq!(driver.requests(), 2_000, "the driver saw exactly the requests counted");
    assert!(run.interrupted.is_none());
    let placements: Vec<(usize, Vec<String>)> =
        driver.threads_seen().into_iter().map(|(w, t)| (w, t.into_iter().collect())).collect();
    let on = |t: &str| vec![t.to_string()];
    assert_eq!(
        placements,
        vec![
            (0, on("dbbench-client-0")),
            (1, on("dbbench-client-1")),
            (2, on("dbbench-client-0")),
            (3, on("dbbench-client-1")),
        ],
        "worker w runs on client thread w % 2, and only there"
    );

    // Open loop on the same threads: every request due is sent, none lost between threads.
    let schedule = Schedule::Open { rate: 400.0, arrival: Arrival::Fixed, concurrency: 4 };
    let run = phase(&env, schedule, Stop::Duration(Duration::from_millis(500))).await;
    assert_eq!(run.metrics[0].ok_count(), 200, "500 ms at 400/s");
    assert_eq!(run.unsent, 0);
}

#[tokio::test(start_paused = true)]
async fn errors_are_counted_by_kind_with_samples() {
    let (env, _) =
        env(Script { latency_us: 100, error_every: 10, error_kind: Some("timeout".into()), ..Default::default() });
    let run = phase(&env, Schedule::Closed { concurrency: 2 }, Stop::Requests(500)).await;
    let m = &run.metrics[0];
    assert_eq!(m.ok_count(), 450);
    assert_eq!(m.error_count(), 50);
    let t = &m.errors[&ErrorKind::Timeout];
    assert_eq!(t.count, 50);
    assert!(!t.samples.is_empty() && t.samples.len() <= 3);
    assert!(run.interrupted.is_none());
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_engine_stops_the_phase_as_lost() {
    let (env, _) =
        env(Script { latency_us: 100, error_every: 1, error_kind: Some("unreachable".into()), ..Default::default() });
    let run = phase(&env, Schedule::Closed { concurrency: 1 }, Stop::Duration(Duration::from_secs(60))).await;
    let why = run.interrupted.expect("the phase stops");
    assert!(why.contains("engine lost"), "{why}");
    assert!(run.elapsed < Duration::from_secs(1), "it stops at once, not after 60 s: {:?}", run.elapsed);
    assert_eq!(run.metrics[0].error_count(), 20);
}

#[tokio::test(start_paused = true)]
async fn open_loop_reports_a_rate_it_cannot_hold() {
    // One worker, 20 ms per request: at most 50/s against a target of 100/s.
    let (env, _) = env(Script { latency_us: 20_000, ..Default::default() });
    let schedule = Schedule::Open { rate: 100.0, arrival: Arrival::Fixed, concurrency: 1 };
    let run = phase(&env, schedule, Stop::Duration(Duration::from_secs(4))).await;
    let sent = run.metrics[0].ok_count();
    // 4 s plus the 2 s drain at 50/s: about 300 of the 400 due requests get sent.
    assert!((280..=320).contains(&sent), "sent {sent}");
    assert!(run.unsent > 50, "due requests never sent are counted: {}", run.unsent);
    let latency = LatencySummary::of(&run.metrics[0].ok_latency);
    assert!(ms(latency.max) > 2_000.0, "the backlog shows as latency: {latency:?}");
}

#[tokio::test(start_paused = true)]
async fn ctrl_c_stops_the_phase_and_keeps_what_was_measured() {
    let (env, _) = env(Script { latency_us: 1_000, ..Default::default() });
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        c.cancel();
    });
    let run = run_phase(
        &env,
        Schedule::Closed { concurrency: 1 },
        Stop::Duration(Duration::from_secs(30)),
        1,
        &cancel,
        Arc::new(AtomicU64::new(0)),
    )
    .await;
    assert!(run.interrupted.expect("interrupted").contains("Ctrl-C"));
    let n = run.metrics[0].ok_count();
    assert!((490..=500).contains(&n), "half a second of 1 ms requests is kept: {n}");
}

/// Every request of a run split as `shard` (None: unsplit): the due times (from the
/// phase's start), and how many requests the driver saw.
async fn shard_dues(shard: Option<dbbench::runner::shard::Shard>, schedule: Schedule, stop: Stop) -> (Vec<u64>, u64) {
    let (mut env, driver) = env(Script { latency_us: 500, ..Default::default() });
    env.timing = dbbench::runner::phase::PhaseTiming { shard, start: Some(tokio::time::Instant::now()), raw: true };
    let run = phase(&env, schedule, stop).await;
    let dues = run.raw[0].iter().map(|r| r.due_ns.expect("open loop")).collect();
    (dues, driver.requests())
}

#[tokio::test(start_paused = true)]
async fn shards_of_an_open_loop_send_the_planned_schedule_between_them_each_arrival_once() {
    use dbbench::runner::shard::Shard;
    for arrival in [Arrival::Fixed, Arrival::Poisson] {
        for stop in [Stop::Requests(1_000), Stop::Duration(Duration::from_secs(4))] {
            let schedule = Schedule::Open { rate: 250.0, arrival, concurrency: 5 };
            let (mut planned, sent) = shard_dues(None, schedule, stop).await;
            planned.sort_unstable();
            assert!(planned.len() > 800, "{arrival:?} {stop:?}: {} requests", planned.len());
            assert_eq!(sent as usize, planned.len());
            let mut union = Vec::new();
            for index in 0..3 {
                let (dues, sent) = shard_dues(Some(Shard { index, count: 3 }), schedule, stop).await;
                assert_eq!(sent as usize, dues.len());
                let share = planned.len() / 3 + usize::from((index as usize) < planned.len() % 3);
                assert_eq!(dues.len(), share, "{arrival:?} {stop:?}: shard {index} takes every third arrival");
                union.extend(dues);
            }
            union.sort_unstable();
            assert_eq!(union, planned, "{arrival:?} {stop:?}: the shards' arrivals are the planned ones, exactly");
        }
    }
}
