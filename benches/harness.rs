//! dbbench's own costs: HDR recording, the request path end to end with the no-op
//! driver (scheduling, op choice, dispatch, recording), and exact ground truth.
//!
//! `cargo bench --bench harness`. The README records the figures and the goal: at least
//! 200,000 no-op requests per second on one core, under 5 microseconds per request.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dbbench::data::{self, truth::exact_knn, Dataset};
use dbbench::driver::noop::Noop;
use dbbench::driver::{Driver, OpKind, SearchParams};
use dbbench::metrics::OpMetrics;
use dbbench::runner::ops::{Keyspace, PreparedOp};
use dbbench::runner::phase::{run_phase, PhaseEnv};
use dbbench::runner::threads::ClientThreads;
use dbbench::spec::{Arrival, DatasetPlan, KeyChoice, OpPlan, QueryOrder, Schedule, Stop, SyntheticSpec};
use tokio_util::sync::CancellationToken;

fn dataset(docs: usize, queries: usize, dim: usize) -> Dataset {
    let plan = DatasetPlan::synthetic(SyntheticSpec { docs, queries, dim, ..Default::default() });
    data::build(&plan, &[], 1).expect("synthetic dataset")
}

fn op(kind: OpKind, keys: KeyChoice) -> OpPlan {
    OpPlan {
        label: kind.to_string(),
        kind,
        weight: 1.0,
        k: 10,
        filter: None,
        keys,
        zipf_theta: 0.99,
        scan_length: 10,
        field: None,
        params: SearchParams::new(),
        query_order: QueryOrder::Random,
        expand: None,
    }
}

fn recording(c: &mut Criterion) {
    let mut g = c.benchmark_group("hdr");
    g.throughput(Throughput::Elements(1));
    let mut m = OpMetrics::default();
    let mut v = 12_345u64;
    g.bench_function("record_ok", |b| {
        b.iter(|| {
            v = v.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            m.record_ok(1_000 + (v >> 44), 1_000 + (v >> 44), 3);
        })
    });
    g.finish();
}

fn end_to_end(c: &mut Criterion) {
    let ds = Arc::new(dataset(10_000, 100, 8));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let mut g = c.benchmark_group("noop_end_to_end");
    const N: u64 = 100_000;
    g.throughput(Throughput::Elements(N));
    g.sample_size(20);
    // As a run places its workers: on client threads, one per core, a runtime each.
    let client_threads = Arc::new(ClientThreads::per_core().expect("client threads"));
    for (name, ops, schedule, threads) in [
        ("closed_get_zipfian", vec![op(OpKind::Get, KeyChoice::Zipfian)], Schedule::Closed { concurrency: 1 }, None),
        (
            "closed_knn_mix",
            vec![op(OpKind::Knn, KeyChoice::Uniform), op(OpKind::Get, KeyChoice::Uniform)],
            Schedule::Closed { concurrency: 4 },
            None,
        ),
        (
            "closed_knn_mix_on_client_threads",
            vec![op(OpKind::Knn, KeyChoice::Uniform), op(OpKind::Get, KeyChoice::Uniform)],
            Schedule::Closed { concurrency: 4 },
            Some(client_threads.clone()),
        ),
        // Open loop at a rate no-op can always beat: measures the schedule's own cost.
        (
            "open_get_1M_per_s",
            vec![op(OpKind::Get, KeyChoice::Uniform)],
            Schedule::Open { rate: 1_000_000.0, arrival: Arrival::Poisson, concurrency: 4 },
            None,
        ),
    ] {
        let ops: Vec<PreparedOp> = ops.into_iter().map(|o| PreparedOp::new(o, None, ds.len() as u64, &[])).collect();
        let env = PhaseEnv {
            driver: Arc::new(Noop) as Arc<dyn Driver>,
            dataset: ds.clone(),
            keys: Arc::new(Keyspace::new(ds.len() as u64)),
            ops: Arc::new(ops),
            threads,
            stream: None,
            timing: Default::default(),
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                runtime.block_on(run_phase(
                    &env,
                    schedule,
                    Stop::Requests(N),
                    1,
                    &CancellationToken::new(),
                    Arc::new(AtomicU64::new(0)),
                ))
            })
        });
    }
    g.finish();
}

fn ground_truth(c: &mut Criterion) {
    let ds = dataset(20_000, 50, 128);
    let mut g = c.benchmark_group("ground_truth");
    g.sample_size(10);
    // Distance computations per iteration: queries x docs.
    g.throughput(Throughput::Elements((ds.queries.len() * ds.len()) as u64));
    g.bench_function("exact_knn_20k_x_128d_50q", |b| {
        b.iter_batched(|| (), |_| exact_knn(&ds, 10, None), BatchSize::SmallInput)
    });
    g.finish();
}

criterion_group!(benches, recording, end_to_end, ground_truth);
criterion_main!(benches);
