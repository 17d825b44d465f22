//! dbbench's exact ground truth alone, on vectors from files: the same search
//! `dbbench run` computes before it measures anything, timed without file reading.
//! Run by `benches/truth_vs_numpy.sh` beside numpy doing the same search.
//!
//! usage: exact_truth BASE.npy QUERIES.npy K METRIC OUT     (METRIC: cosine, dot, l2)
//! prints "seconds <s>"; OUT gets the ids: u32 rows x k, row-major, little-endian.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use dbbench::data::truth::{exact_top_k, Base};
use dbbench::data::vecfile::read_matrix;
use dbbench::driver::Metric;

fn run() -> Result<(), String> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let [base, queries, k, metric, out] = a.as_slice() else {
        return Err("usage: exact_truth BASE.npy QUERIES.npy K METRIC OUT".into());
    };
    let k: usize = k.parse().ok().filter(|k| *k > 0).ok_or(format!("K: not a positive integer: {k}"))?;
    let metric = match metric.as_str() {
        "cosine" => Metric::Cosine,
        "dot" => Metric::Dot,
        "l2" => Metric::L2,
        m => return Err(format!("METRIC: {m} is not cosine, dot or l2")),
    };
    let base = read_matrix(&PathBuf::from(base)).map_err(|e| e.to_string())?;
    let queries = read_matrix(&PathBuf::from(queries)).map_err(|e| e.to_string())?;
    if base.cols != queries.cols {
        return Err(format!("base has {} columns, queries {}", base.cols, queries.cols));
    }
    let started = Instant::now();
    let ids = exact_top_k(metric, &Base { vectors: &base.data, dim: base.cols, rows: None }, &queries.data, k, &|_| {});
    let seconds = started.elapsed().as_secs_f64();
    let mut bytes = Vec::with_capacity(ids.len() * k * 4);
    for row in &ids {
        for j in 0..k {
            let id = row.get(j).map(|&i| i as u32).unwrap_or(u32::MAX);
            bytes.extend(id.to_le_bytes());
        }
    }
    std::fs::write(out, bytes).map_err(|e| format!("{out}: {e}"))?;
    println!("seconds {seconds:.3}");
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("exact_truth: {e}");
            ExitCode::from(2)
        }
    }
}
