//! What a run prints while it works: progress bars on a terminal (stderr), one line per
//! phase either way, and the summary table at the end (stdout).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::format;
use crate::metric::Metric;
use crate::results::{EngineStatus, OpResult, OpStatus, PhaseResult, RunResults};
use crate::spec::Stop;

pub fn note(msg: &str) {
    eprintln!("{msg}");
}

pub fn warn(msg: &str) {
    eprintln!("warning: {msg}");
}

pub fn heading(msg: &str) {
    eprintln!("\n== {msg}");
}

fn target(progress: bool) -> ProgressDrawTarget {
    if progress {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// A bar over a known count (records loaded).
pub fn bar(progress: bool, len: u64, prefix: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), target(progress));
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.set_prefix(prefix.to_string());
    bar
}

/// A spinner with the time elapsed, for work of no known length (an engine's index
/// build); it ticks on its own until finished.
pub fn spinner(progress: bool, prefix: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, target(progress));
    bar.set_style(ProgressStyle::with_template("{prefix} {spinner} {elapsed}").expect("static template"));
    bar.set_prefix(prefix.to_string());
    if progress {
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
    }
    bar
}

/// A phase's bar, fed from the workers' completion counter by a ticker task.
pub struct PhaseBar {
    bar: ProgressBar,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl PhaseBar {
    pub fn finish(self) {
        if let Some(t) = self.ticker {
            t.abort();
        }
        self.bar.finish_and_clear();
    }
}

pub fn phase_bar(progress: bool, prefix: &str, stop: Stop, completed: Arc<AtomicU64>) -> PhaseBar {
    let (len, template) = match stop {
        Stop::Duration(d) => (d.as_millis() as u64, "{prefix} [{bar:30}] {elapsed}/{msg}"),
        Stop::Requests(n) => (n, "{prefix} [{bar:30}] {pos}/{len} requests {msg}"),
    };
    let bar = ProgressBar::with_draw_target(Some(len), target(progress));
    bar.set_style(ProgressStyle::with_template(template).expect("static template").progress_chars("=> "));
    bar.set_prefix(prefix.to_string());
    if !progress {
        return PhaseBar { bar, ticker: None };
    }
    let b = bar.clone();
    let ticker = tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        let (mut last, mut last_at) = (0u64, started);
        let mut interval = tokio::time::interval(Duration::from_millis(250));
        // Embedded engines keep runtime threads busy; late ticks must not come in bursts.
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let done = completed.load(Ordering::Relaxed);
            let now = tokio::time::Instant::now();
            let secs = now.duration_since(last_at).as_secs_f64().max(1e-3);
            let rate = (done - last) as f64 / secs;
            (last, last_at) = (done, now);
            match stop {
                Stop::Duration(d) => {
                    b.set_position(started.elapsed().as_millis() as u64);
                    b.set_message(format!("{}s  {done} requests, {rate:.0}/s", d.as_secs()));
                }
                Stop::Requests(_) => {
                    b.set_position(done);
                    b.set_message(format!("{rate:.0}/s"));
                }
            }
        }
    });
    PhaseBar { bar, ticker: Some(ticker) }
}

/// One line per op once a phase ends (printed whether or not bars are drawn).
/// A stream phase's checkpoints and freshness, under its op lines.
fn stream_lines(st: &crate::results::StreamResult) {
    let recall: Vec<String> =
        st.checkpoints.iter().map(|c| c.recall_at_k.map(|r| format!("{r:.3}")).unwrap_or_else(|| "-".into())).collect();
    eprintln!(
        "    stream: {} writes at {}/s and {} searches at {}/s; live records {} -> {}",
        st.writes, st.write_rate, st.searches, st.search_rate, st.records_live_before, st.records_live_after
    );
    eprintln!("    recall by checkpoint: {}", recall.join(" "));
    if let Some(f) = &st.freshness {
        eprintln!(
            "    visibility lag: p50 {} ms, p99 {} ms, max {} ms over {} probes ({} seen at the first search, {} not visible within {}s, {} failed)",
            format::ms(f.lag_ms.p50),
            format::ms(f.lag_ms.p99),
            format::ms(f.lag_ms.max),
            f.probes,
            f.visible_first_try,
            f.not_visible,
            f.visibility_bound_s,
            f.failed
        );
    }
}

pub fn phase_line(p: &PhaseResult) {
    let mut line = format!("  phase {} ({:.1}s)", p.display_name(), p.elapsed_s);
    if let Some(r) = &p.rate {
        let _ = write!(
            line,
            " target {:.0}/s achieved {:.0}/s{}",
            r.target_ops_s,
            r.achieved_ops_s,
            if r.sustained { "" } else { " NOT SUSTAINED" }
        );
    }
    if !p.complete {
        let _ = write!(line, " INCOMPLETE: {}", p.note.as_deref().unwrap_or(""));
    }
    if let Some(u) = &p.resources {
        let _ = write!(
            line,
            " engine: {:.2} cores, {} {}",
            u.cpu_cores,
            format::mib(u.memory_peak_bytes),
            u.memory_kind.to_uppercase()
        );
    }
    eprintln!("{line}");
    for o in &p.ops {
        if o.status != OpStatus::Ok {
            eprintln!("    {:<18} {}", o.label, o.note.as_deref().unwrap_or("unsupported"));
            continue;
        }
        let mut l = format!(
            "    {:<18} {:>8} ok {:>6} err {:>9.1}/s  p50 {:>7} ms  p99 {:>7} ms",
            o.label,
            o.count,
            o.errors,
            o.throughput_ops_s,
            format::ms(o.latency_ms.p50),
            format::ms(o.latency_ms.p99)
        );
        if let Some(r) = o.quality.recall_at_k {
            let _ = write!(l, "  recall@{} {r:.3}", o.k.unwrap_or(0));
        }
        if let Some(n) = o.quality.ndcg_at_10 {
            let _ = write!(l, "  nDCG@10 {n:.3}");
        }
        eprintln!("{l}");
    }
    if let Some(st) = &p.stream {
        stream_lines(st);
    }
}

/// The metric columns of the summary printed when a run ends, with their widths. The
/// console keeps one decimal of throughput at any rate (a run's own number, read next to
/// its phase line), where report tables round above 100/s.
const SUMMARY_COLUMNS: [(Metric, usize); 7] = [
    (Metric::ThroughputOpsS, 10),
    (Metric::P50Ms, 9),
    (Metric::P99Ms, 9),
    (Metric::P999Ms, 9),
    (Metric::ServiceP99Ms, 9),
    (Metric::RecallAtK, 8),
    (Metric::NdcgAt10, 8),
];

fn summary_cell(m: Metric, o: &OpResult) -> String {
    match (m, m.value(o)) {
        (Metric::ThroughputOpsS, Some(v)) => format::ops_per_s(v),
        (m, v) => m.cell(v),
    }
}

/// The table printed when a run ends: one row per engine x phase x op.
pub fn summary_table(r: &RunResults) -> String {
    let mut out = String::new();
    let _ = write!(out, "{:<14} {:<14} {:<18} {:>9} {:>7}", "engine", "phase", "op", "ok", "errors");
    for (m, width) in SUMMARY_COLUMNS {
        let _ = write!(out, " {:>width$}", m.column(None));
    }
    out.push('\n');
    for e in &r.engines {
        if e.status == EngineStatus::Skipped {
            let _ = writeln!(out, "{:<14} skipped: {}", e.name, e.reason.as_deref().unwrap_or(""));
            continue;
        }
        for p in &e.phases {
            for o in &p.ops {
                if o.status != OpStatus::Ok {
                    let _ = writeln!(
                        out,
                        "{:<14} {:<14} {:<18} {}",
                        e.name,
                        p.display_name(),
                        o.label,
                        o.note.as_deref().unwrap_or("unsupported")
                    );
                    continue;
                }
                let _ = write!(
                    out,
                    "{:<14} {:<14} {:<18} {:>9} {:>7}",
                    e.name,
                    p.display_name(),
                    o.label,
                    o.count,
                    o.errors
                );
                for (m, width) in SUMMARY_COLUMNS {
                    let _ = write!(out, " {:>width$}", summary_cell(m, o));
                }
                out.push('\n');
            }
        }
        if e.status == EngineStatus::Failed {
            let _ = writeln!(out, "{:<14} FAILED: {}", e.name, e.reason.as_deref().unwrap_or(""));
        }
    }
    out
}
