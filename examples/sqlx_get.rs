//! The client library alone: the same point read by primary key that dbbench's pgvector
//! `get` sends, through the same sqlx connection type on the same client threads (one
//! per core, a tokio runtime each), but with no harness around it (no schedule,
//! histograms, scoring or driver trait). Run by `benches/pgbench_vs_dbbench.sh` as the
//! middle column, to tell what the harness costs from what the client library costs.
//!
//! usage: sqlx_get URL TABLE DOCS CLIENTS SECONDS     prints "<requests> <ops/s>"

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dbbench::runner::threads::ClientThreads;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sqlx::{Connection, PgConnection, Row};
use tokio::sync::Barrier;

struct Args {
    url: String,
    table: String,
    docs: i64,
    clients: usize,
    seconds: u64,
}

fn parse() -> Result<Args, String> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let [url, table, docs, clients, seconds] = a.as_slice() else {
        return Err("usage: sqlx_get URL TABLE DOCS CLIENTS SECONDS".into());
    };
    let num = |name: &str, v: &str| {
        v.parse::<u64>().ok().filter(|n| *n > 0).ok_or(format!("{name}: not a positive integer: {v}"))
    };
    Ok(Args {
        url: url.clone(),
        table: table.clone(),
        docs: num("DOCS", docs)? as i64,
        clients: num("CLIENTS", clients)? as usize,
        seconds: num("SECONDS", seconds)?,
    })
}

async fn client(a: Arc<Args>, seed: u64, ready: Arc<Barrier>) -> Result<u64, String> {
    let c = PgConnection::connect(&a.url).await;
    // Every client connects before the clock starts (pgbench reports "without initial
    // connection time"); one that failed still reaches the barrier so no one waits forever.
    ready.wait().await;
    let mut c = c.map_err(|e| format!("connect: {e}"))?;
    let sql = format!("SELECT id, embedding, text, a_year FROM {} WHERE id = $1", a.table);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let until = Instant::now() + Duration::from_secs(a.seconds);
    let mut n = 0;
    while Instant::now() < until {
        let id = rng.gen_range(0..a.docs);
        let row = sqlx::query(&sql).bind(id).fetch_optional(&mut c).await.map_err(|e| format!("get: {e}"))?;
        if let Some(r) = row {
            let v: pgvector::Vector = r.try_get(1).map_err(|e| e.to_string())?;
            let text: &str = r.try_get(2).map_err(|e| e.to_string())?;
            std::hint::black_box((Arc::<[f32]>::from(v.as_slice()), Arc::<str>::from(text)));
        }
        n += 1;
    }
    Ok(n)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => Arc::new(a),
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // The threads dbbench's runner puts its workers on: one per core, each with its own
    // runtime, client i on thread i % threads. The main runtime only waits.
    let (rt, threads) =
        match (tokio::runtime::Builder::new_multi_thread().enable_all().build(), ClientThreads::per_core()) {
            (Ok(rt), Ok(threads)) => (rt, threads),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("cannot start the runtime: {e}");
                return ExitCode::from(1);
            }
        };
    let result: Result<(u64, f64), String> = rt.block_on(async {
        let ready = Arc::new(Barrier::new(args.clients + 1));
        let tasks: Vec<_> =
            (0..args.clients).map(|i| threads.spawn(i, client(args.clone(), 7 + i as u64, ready.clone()))).collect();
        ready.wait().await;
        let t0 = Instant::now();
        let mut total = 0;
        for t in tasks {
            total += t.await.map_err(|e| e.to_string())??;
        }
        Ok((total, t0.elapsed().as_secs_f64()))
    });
    match result {
        Ok((n, secs)) => {
            println!("{n} {:.1}", n as f64 / secs);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sqlx_get: {e}");
            ExitCode::from(1)
        }
    }
}
