//! What a run prints while it works: progress bars on a terminal (stderr), one line per
//! phase either way, and the summary table at the end (stdout).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::results::{EngineStatus, PhaseResult, RunResults};
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

fn ms(v: Option<f64>) -> String {
    match v {
        Some(x) if x < 1.0 => format!("{x:.3}"),
        Some(x) if x < 100.0 => format!("{x:.2}"),
        Some(x) => format!("{x:.0}"),
        None => "-".into(),
    }
}

fn ratio(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "-".into())
}

/// One line per op once a phase ends (printed whether or not bars are drawn).
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
    eprintln!("{line}");
    for o in &p.ops {
        if o.status != "ok" {
            eprintln!("    {:<18} {}", o.label, o.note.as_deref().unwrap_or("unsupported"));
            continue;
        }
        let mut l = format!(
            "    {:<18} {:>8} ok {:>6} err {:>9.1}/s  p50 {:>7} ms  p99 {:>7} ms",
            o.label,
            o.count,
            o.errors,
            o.throughput_ops_s,
            ms(o.latency_ms.p50),
            ms(o.latency_ms.p99)
        );
        if let Some(r) = o.quality.recall_at_k {
            let _ = write!(l, "  recall@{} {r:.3}", o.k.unwrap_or(0));
        }
        if let Some(n) = o.quality.ndcg_at_10 {
            let _ = write!(l, "  nDCG@10 {n:.3}");
        }
        eprintln!("{l}");
    }
}

/// The table printed when a run ends: one row per engine x phase x op.
pub fn summary_table(r: &RunResults) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<14} {:<14} {:<18} {:>9} {:>7} {:>10} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8}",
        "engine",
        "phase",
        "op",
        "ok",
        "errors",
        "ops/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "svc p99",
        "recall",
        "nDCG@10"
    );
    for e in &r.engines {
        if e.status == EngineStatus::Skipped {
            let _ = writeln!(out, "{:<14} skipped: {}", e.name, e.reason.as_deref().unwrap_or(""));
            continue;
        }
        for p in &e.phases {
            for o in &p.ops {
                if o.status != "ok" {
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
                let _ = writeln!(
                    out,
                    "{:<14} {:<14} {:<18} {:>9} {:>7} {:>10.1} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8}",
                    e.name,
                    p.display_name(),
                    o.label,
                    o.count,
                    o.errors,
                    o.throughput_ops_s,
                    ms(o.latency_ms.p50),
                    ms(o.latency_ms.p99),
                    ms(o.latency_ms.p999),
                    ms(o.service_time_ms.p99),
                    ratio(o.quality.recall_at_k),
                    ratio(o.quality.ndcg_at_10)
                );
            }
        }
        if e.status == EngineStatus::Failed {
            let _ = writeln!(out, "{:<14} FAILED: {}", e.name, e.reason.as_deref().unwrap_or(""));
        }
    }
    out
}
