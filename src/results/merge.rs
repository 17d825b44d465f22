//! Several runs of one workload merged into one results: histograms added (never
//! percentiles averaged) and summaries recomputed from the sums, so that runs from
//! several load machines, or repeated runs, read as one.
//!
//! It must never merge runs of different workload files or datasets, and never changes
//! its inputs.

use std::collections::BTreeMap;

use super::{EngineResult, EngineStatus, ErrorTallyResult, IntervalResult, MergedRun, OpResult, OpStatus, PhaseResult};
use super::{RunInfo, RunResults};
use crate::error::{Error, Result};
use crate::metrics::{
    decode_histogram, encode_histogram, new_histogram, LatencySummary, ERROR_SAMPLES, INTERVAL_SIGFIG,
};
use crate::quality::QualitySummary;

/// Merge several runs of the same workload into one.
///
/// Histograms are added (never percentiles averaged) and summaries recomputed from the
/// sums; counts and errors add; quality means are re-weighted by their sample counts.
///
/// Throughput depends on how the runs relate in time, which results.json records:
/// - runs whose [started_at, finished_at] overlap were concurrent load machines driving
///   the same engines, so their throughputs ADD, the phase's elapsed time is the longest
///   of them, and per-second intervals add second by second;
/// - runs that do not overlap were repeats, so throughput is the total count over the
///   total elapsed time, and intervals follow one another.
///
/// Load and index-build times are not added: the merged run keeps the slowest (the
/// conservative figure).
pub fn merge(runs: Vec<RunResults>) -> Result<RunResults> {
    let mut iter = runs.into_iter();
    let Some(mut merged) = iter.next() else {
        return Err(Error::Input("nothing to merge: no results given".into()));
    };
    let rest: Vec<RunResults> = iter.collect();
    // One results alone (a shard's included) is what it is: its own report.
    if rest.is_empty() {
        return Ok(merged);
    }
    for r in &rest {
        if r.run.workload.sha256 != merged.run.workload.sha256 {
            return Err(Error::Input(format!(
                "cannot merge run {} with run {}: they ran different workload files (sha256 {} vs {}); merge only runs of the same workload",
                r.run.id,
                merged.run.id,
                short(&r.run.workload.sha256),
                short(&merged.run.workload.sha256)
            )));
        }
        if r.run.dataset.fingerprint != merged.run.dataset.fingerprint {
            return Err(Error::Input(format!(
                "cannot merge run {} with run {}: their datasets differ (fingerprint {} vs {}); merge only runs over the same data",
                r.run.id, merged.run.id, r.run.dataset.fingerprint, merged.run.dataset.fingerprint
            )));
        }
    }

    let mut all_runs = vec![merged.run.clone()];
    all_runs.extend(rest.iter().map(|r| r.run.clone()));
    let missing_shards = check_shards(&all_runs)?;
    // Shards of one run measured at once, whatever their clocks recorded.
    let concurrent = all_runs[0].shard.is_some() || runs_overlap(&all_runs);

    merged.run.merged_from = all_runs
        .iter()
        .map(|r| MergedRun {
            id: r.id.clone(),
            started_at: r.started_at.clone(),
            finished_at: r.finished_at.clone(),
            machine: r.machine.clone(),
            shard: r.shard.clone(),
        })
        .collect();
    merged.run.id = format!("merged-{}-runs-{}", all_runs.len(), merged.run.id);
    merged.run.started_at = all_runs.iter().map(|r| r.started_at.clone()).min().unwrap_or_default();
    merged.run.finished_at = if all_runs.iter().all(|r| r.finished_at.is_some()) {
        all_runs.iter().filter_map(|r| r.finished_at.clone()).max()
    } else {
        None
    };
    let mut incomplete: Vec<String> = all_runs
        .iter()
        .filter(|r| !r.complete)
        .map(|r| {
            let shard = r.shard.as_ref().map(|s| format!("shard {}/{} ", s.index, s.count)).unwrap_or_default();
            format!("{shard}{}: {}", r.id, r.incomplete_reason.as_deref().unwrap_or("incomplete"))
        })
        .collect();
    incomplete.extend(missing_shards);
    merged.run.shard = None;
    merged.run.complete = incomplete.is_empty();
    merged.run.incomplete_reason = (!incomplete.is_empty()).then(|| incomplete.join("; "));

    for r in rest {
        for e in r.engines {
            match merged.engines.iter_mut().find(|m| m.name == e.name) {
                Some(m) => merge_engine(m, e, concurrent)?,
                None => merged.engines.push(e),
            }
        }
    }
    Ok(merged)
}

/// Shards of one run: all of them shards, of the same run (count and start time), each
/// once. Returns a line for each shard of the run that is missing.
fn check_shards(runs: &[RunInfo]) -> Result<Vec<String>> {
    let shards: Vec<_> = runs.iter().filter_map(|r| r.shard.as_ref().map(|s| (r, s))).collect();
    let Some(&(first_run, first)) = shards.first() else { return Ok(Vec::new()) };
    if shards.len() != runs.len() {
        let alone = runs.iter().find(|r| r.shard.is_none()).expect("one run is not a shard");
        return Err(Error::Input(format!(
            "cannot merge run {} with shards of a sharded run ({} is shard {}/{}); merge the shards of one run together",
            alone.id, first_run.id, first.index, first.count
        )));
    }
    let mut seen = vec![false; first.count as usize];
    for (r, s) in &shards {
        if s.count != first.count || s.start_at != first.start_at {
            return Err(Error::Input(format!(
                "cannot merge run {} (shard {}/{}, start {}) with run {} (shard {}/{}, start {}): they are shards of different runs",
                r.id, s.index, s.count, s.start_at, first_run.id, first.index, first.count, first.start_at
            )));
        }
        match seen.get_mut(s.index as usize) {
            Some(slot) if !*slot => *slot = true,
            Some(_) => {
                return Err(Error::Input(format!(
                    "shard {}/{} is given twice (run {}); give each shard's results once",
                    s.index, s.count, r.id
                )))
            }
            None => {
                return Err(Error::Input(format!("run {}: shard index {} is not below {}", r.id, s.index, s.count)))
            }
        }
    }
    Ok(seen
        .iter()
        .enumerate()
        .filter(|(_, present)| !**present)
        .map(|(i, _)| {
            format!("shard {i}/{}: missing (no results for it were given; did it fail or not start?)", first.count)
        })
        .collect())
}

fn short(s: &str) -> &str {
    &s[..s.len().min(12)]
}

/// Whether any two runs overlap in time. Timestamps are RFC 3339 in UTC as dbbench
/// writes them, so they order as text; a run without a finish time is taken to end
/// when it started.
fn runs_overlap(runs: &[RunInfo]) -> bool {
    let spans: Vec<(&str, &str)> = runs
        .iter()
        .map(|r| (r.started_at.as_str(), r.finished_at.as_deref().unwrap_or(r.started_at.as_str())))
        .collect();
    spans.iter().enumerate().any(|(i, a)| spans.iter().skip(i + 1).any(|b| a.0 <= b.1 && b.0 <= a.1))
}

fn merge_engine(m: &mut EngineResult, e: EngineResult, concurrent: bool) -> Result<()> {
    m.status = match (m.status, e.status) {
        (EngineStatus::Failed, _) | (_, EngineStatus::Failed) => EngineStatus::Failed,
        (EngineStatus::Ok, _) | (_, EngineStatus::Ok) => EngineStatus::Ok,
        _ => EngineStatus::Skipped,
    };
    if m.reason.is_none() {
        m.reason = e.reason.clone();
    }
    if m.version.is_none() {
        m.version = e.version.clone();
    }
    m.load = match (m.load.take(), e.load) {
        (Some(a), Some(b)) => Some(if b.seconds > a.seconds { b } else { a }),
        (a, b) => a.or(b),
    };
    m.index = match (m.index.take(), e.index) {
        (Some(a), Some(b)) => Some(if b.seconds > a.seconds { b } else { a }),
        (a, b) => a.or(b),
    };
    for p in e.phases {
        match m.phases.iter_mut().find(|x| x.name == p.name) {
            Some(mp) => merge_phase(mp, p, concurrent, &m.name)?,
            None => m.phases.push(p),
        }
    }
    Ok(())
}

fn merge_phase(m: &mut PhaseResult, p: PhaseResult, concurrent: bool, engine: &str) -> Result<()> {
    let (m_elapsed, p_elapsed) = (m.elapsed_s, p.elapsed_s);
    m.complete &= p.complete;
    if m.note.is_none() {
        m.note = p.note.clone();
    }
    m.elapsed_s = if concurrent { m_elapsed.max(p_elapsed) } else { m_elapsed + p_elapsed };
    m.warmup_s = m.warmup_s.max(p.warmup_s);
    if let (Some(a), Some(b)) = (&mut m.rate, &p.rate) {
        if concurrent {
            a.target_ops_s += b.target_ops_s;
            a.achieved_ops_s += b.achieved_ops_s;
        } else {
            let total = m_elapsed + p_elapsed;
            if total > 0.0 {
                a.achieved_ops_s = (a.achieved_ops_s * m_elapsed + b.achieved_ops_s * p_elapsed) / total;
            }
        }
        a.sustained &= b.sustained;
        a.unsent += b.unsent;
    }
    for o in p.ops {
        match m.ops.iter_mut().find(|x| x.label == o.label) {
            Some(mo) => merge_op(mo, o, concurrent, m_elapsed, m.elapsed_s)
                .map_err(|why| Error::Input(format!("engine {engine}, phase {}, op {}: {why}", m.name, mo.label)))?,
            None => m.ops.push(o),
        }
    }
    Ok(())
}

fn add_encoded(a: &str, b: &str) -> std::result::Result<String, String> {
    let mut ha = decode_histogram(a)?;
    let hb = decode_histogram(b)?;
    ha.add(&hb).map_err(|e| format!("histograms do not add: {e:?}"))?;
    Ok(encode_histogram(&ha))
}

fn merge_quality(a: &QualitySummary, na: u64, b: &QualitySummary, nb: u64) -> QualitySummary {
    let mean = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) if na + nb > 0 => Some((x * na as f64 + y * nb as f64) / (na + nb) as f64),
        (x, y) => x.or(y),
    };
    QualitySummary {
        recall_at_k: mean(a.recall_at_k, b.recall_at_k),
        ndcg_at_10: mean(a.ndcg_at_10, b.ndcg_at_10),
        recall_at_100: mean(a.recall_at_100, b.recall_at_100),
        mrr_at_10: mean(a.mrr_at_10, b.mrr_at_10),
        quality_samples: na + nb,
    }
}

fn merge_op(
    m: &mut OpResult,
    o: OpResult,
    concurrent: bool,
    m_elapsed: f64,
    merged_elapsed: f64,
) -> std::result::Result<(), String> {
    if m.status != OpStatus::Ok || o.status != OpStatus::Ok {
        if m.status != OpStatus::Ok && o.status == OpStatus::Ok {
            *m = o;
        }
        return Ok(());
    }
    m.histograms.latency = add_encoded(&m.histograms.latency, &o.histograms.latency)?;
    m.histograms.service_time = add_encoded(&m.histograms.service_time, &o.histograms.service_time)?;
    m.histograms.error_latency = match (&m.histograms.error_latency, &o.histograms.error_latency) {
        (Some(a), Some(b)) => Some(add_encoded(a, b)?),
        (a, b) => a.clone().or_else(|| b.clone()),
    };
    m.histograms.schedule_lag = match (&m.histograms.schedule_lag, &o.histograms.schedule_lag) {
        (Some(a), Some(b)) => Some(add_encoded(a, b)?),
        (a, b) => a.clone().or_else(|| b.clone()),
    };
    m.latency_ms = LatencySummary::of(&decode_histogram(&m.histograms.latency)?);
    m.service_time_ms = LatencySummary::of(&decode_histogram(&m.histograms.service_time)?);
    if let Some(lag) = &m.histograms.schedule_lag {
        m.schedule_lag_ms = Some(LatencySummary::of(&decode_histogram(lag)?));
    }
    m.quality = merge_quality(&m.quality, m.quality.quality_samples, &o.quality, o.quality.quality_samples);
    m.count += o.count;
    m.errors += o.errors;
    m.throughput_ops_s = if concurrent {
        m.throughput_ops_s + o.throughput_ops_s
    } else if merged_elapsed > 0.0 {
        m.count as f64 / merged_elapsed
    } else {
        0.0
    };
    for (kind, t) in o.error_kinds {
        let mine = m.error_kinds.entry(kind).or_insert_with(|| ErrorTallyResult { count: 0, samples: Vec::new() });
        mine.count += t.count;
        for s in t.samples {
            if mine.samples.len() < ERROR_SAMPLES && !mine.samples.contains(&s) {
                mine.samples.push(s);
            }
        }
    }
    m.intervals = if concurrent {
        add_intervals(&m.intervals, &o.intervals)?
    } else {
        // Repeats follow one another: shift the later run's seconds past the earlier one.
        let offset = m_elapsed.ceil() as u64;
        let mut all = std::mem::take(&mut m.intervals);
        all.extend(o.intervals.into_iter().map(|mut i| {
            i.t_s += offset;
            i
        }));
        all
    };
    Ok(())
}

fn add_intervals(a: &[IntervalResult], b: &[IntervalResult]) -> std::result::Result<Vec<IntervalResult>, String> {
    let mut by_second: BTreeMap<u64, (u64, u64, hdrhistogram::Histogram<u64>)> = BTreeMap::new();
    for i in a.iter().chain(b) {
        let h = decode_histogram(&i.histogram)?;
        let slot = by_second.entry(i.t_s).or_insert_with(|| (0, 0, new_histogram(INTERVAL_SIGFIG)));
        slot.0 += i.ok;
        slot.1 += i.errors;
        slot.2.add(&h).map_err(|e| format!("interval histograms do not add: {e:?}"))?;
    }
    Ok(by_second
        .into_iter()
        .map(|(t_s, (ok, errors, h))| IntervalResult {
            t_s,
            ok,
            errors,
            p99_ms: (ok > 0).then(|| h.value_at_quantile(0.99) as f64 / 1e6),
            histogram: encode_histogram(&h),
        })
        .collect())
}
