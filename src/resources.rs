//! What an engine costs while dbbench measures it: the CPU seconds and memory of its
//! processes, sampled from Linux's `/proc` by a thread of its own.
//!
//! Which processes: for an engine `services/up.sh` started, the process in its pid file
//! (`$DBBENCH_SERVICES_DIR/<engine>/pid`, default `.services/`; the start time on the
//! file's second line must match, so a reused pid is never taken for the engine) and all
//! its descendants (PostgreSQL's backends, Chroma's workers); for an engine embedded in
//! dbbench, dbbench's own process, harness included, which results say.
//!
//! CPU is user + system time of every process in the tree, with the time of children
//! they have reaped (a finished PostgreSQL backend's time moves to the postmaster), so
//! nothing is counted twice. Memory is PSS (proportional set size, `smaps_rollup`):
//! pages shared between processes, such as PostgreSQL's shared buffers, are divided
//! among them rather than counted once per process, as RSS would. Where PSS cannot be
//! read, RSS stands in and the usage says so.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Linux reports CPU times in /proc in units of USER_HZ, which is 100 on every
/// architecture Rust targets (it is part of the kernel's user ABI).
const TICKS_PER_SECOND: f64 = 100.0;

/// The processes of one engine.
#[derive(Debug, Clone)]
pub struct Watch {
    /// The tree's root.
    pub pid: u32,
    /// What was watched, in words, for results ("pid file .services/pgvector/pid").
    pub what: String,
}

impl Watch {
    /// dbbench's own process, for an engine embedded in it.
    pub fn this_process(engine: &str) -> Watch {
        Watch {
            pid: std::process::id(),
            what: format!("dbbench's own process ({engine} runs embedded in it; the harness is included)"),
        }
    }

    /// The engine `services/up.sh` started as `service`, when its pid file names a live
    /// process with the recorded start time; `Err` says why not.
    pub fn service(services_dir: &Path, service: &str) -> Result<Watch, String> {
        let file = services_dir.join(service).join("pid");
        let text = std::fs::read_to_string(&file).map_err(|_| {
            format!("no pid file {} (resources are measured for engines services/up.sh started)", file.display())
        })?;
        let mut lines = text.lines();
        let pid: u32 = lines
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| format!("{} does not start with a pid", file.display()))?;
        let recorded = lines.next().map(str::trim).filter(|s| !s.is_empty());
        let stat = Stat::read(pid).ok_or_else(|| format!("{}: process {pid} is not running", file.display()))?;
        match recorded {
            Some(t) if t == stat.start_time.to_string() => {}
            _ => {
                return Err(format!(
                    "{}: process {pid} is not the one recorded there (its start time differs)",
                    file.display()
                ))
            }
        }
        Ok(Watch { pid, what: format!("pid file {} (process {pid} and its descendants)", file.display()) })
    }
}

/// Where `services/up.sh` keeps its state: `$DBBENCH_SERVICES_DIR`, or `.services`.
pub fn services_dir() -> PathBuf {
    std::env::var_os("DBBENCH_SERVICES_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".services"))
}

/// The fields of `/proc/PID/stat` this module reads.
#[derive(Debug, Clone, Copy)]
struct Stat {
    ppid: u32,
    /// utime + stime + cutime + cstime, in ticks.
    cpu_ticks: u64,
    start_time: u64,
}

impl Stat {
    fn read(pid: u32) -> Option<Stat> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name (field 2) is in parentheses and may hold spaces: split after it.
        let rest = &text[text.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        // `rest` starts at field 3 (state): field n is f[n - 3].
        let num = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
        if f.first() == Some(&"Z") {
            return None;
        }
        Some(Stat { ppid: num(4)? as u32, cpu_ticks: num(14)? + num(15)? + num(16)? + num(17)?, start_time: num(22)? })
    }
}

/// `pid` and every process below it.
pub(crate) fn tree(root: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return vec![root] };
    let parents: Vec<(u32, u32)> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, Stat::read(pid)?.ppid)))
        .collect();
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    out
}

/// Memory of one process in bytes: PSS when readable (`true`), else RSS.
fn memory(pid: u32) -> Option<(u64, bool)> {
    let kib = |text: &str, key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l[key.len()..].split_whitespace().next()?.parse::<u64>().ok())
    };
    if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) {
        if let Some(k) = kib(&text, "Pss:") {
            return Some((k * 1024, true));
        }
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    kib(&text, "VmRSS:").map(|k| (k * 1024, false))
}

/// One reading of the whole tree.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Seconds since the monitor started.
    pub t: f64,
    pub cpu_s: f64,
    pub memory_bytes: u64,
    pub processes: usize,
    /// Every process's memory was PSS (else RSS for some).
    pub pss: bool,
}

fn sample(root: u32, pids: &[u32], started: Instant) -> Option<Sample> {
    Stat::read(root)?;
    let (mut cpu, mut mem, mut n, mut pss) = (0u64, 0u64, 0usize, true);
    for &pid in pids {
        let (Some(stat), Some((bytes, is_pss))) = (Stat::read(pid), memory(pid)) else { continue };
        cpu += stat.cpu_ticks;
        mem += bytes;
        n += 1;
        pss &= is_pss;
    }
    Some(Sample {
        t: started.elapsed().as_secs_f64(),
        cpu_s: cpu as f64 / TICKS_PER_SECOND,
        memory_bytes: mem,
        processes: n,
        pss,
    })
}

/// What the watched processes used over a window of time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// CPU seconds (user + system) spent in the window.
    pub cpu_s: f64,
    /// Mean CPU cores busy: `cpu_s` over the window's length.
    pub cpu_cores: f64,
    pub memory_peak_bytes: u64,
    pub memory_mean_bytes: u64,
    /// "pss" or "rss" (when PSS could not be read for every process).
    pub memory_kind: String,
    /// Processes in the tree at the window's end.
    pub processes: usize,
    pub samples: usize,
    pub seconds: f64,
    /// When the window began: seconds from the start of the engine's sampling (its
    /// load), the time axis of [`EngineResources::timeline`](crate::results::EngineResources).
    #[serde(default)]
    pub start_s: f64,
}

/// The watched processes in one second: where the memory curve and CPU curve are drawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Seconds from the start of sampling, at the second's last reading.
    pub t_s: f64,
    /// The highest memory read in that second.
    pub memory_bytes: u64,
    /// CPU cores busy since the point before (since the first reading, for the first).
    pub cpu_cores: f64,
}

/// One point per whole second of sampling (see [`Point`]).
pub fn per_second(samples: &[Sample]) -> Vec<Point> {
    let mut out: Vec<Point> = Vec::new();
    let Some(first) = samples.first() else { return out };
    let (mut prev_t, mut prev_cpu) = (first.t, first.cpu_s);
    let mut i = 0;
    while i < samples.len() {
        let second = samples[i].t.floor();
        let mut j = i;
        let mut peak = 0;
        while j < samples.len() && samples[j].t.floor() == second {
            peak = peak.max(samples[j].memory_bytes);
            j += 1;
        }
        let last = samples[j - 1];
        let dt = last.t - prev_t;
        out.push(Point {
            t_s: last.t,
            memory_bytes: peak,
            cpu_cores: if dt > 0.0 { ((last.cpu_s - prev_cpu) / dt).max(0.0) } else { 0.0 },
        });
        (prev_t, prev_cpu) = (last.t, last.cpu_s);
        i = j;
    }
    out
}

/// Samples one process tree every `interval` until dropped.
pub struct Monitor {
    watch: Watch,
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    started: Instant,
}

/// A point to measure from (`Monitor::mark`).
#[derive(Debug, Clone, Copy)]
pub struct Mark(Option<Sample>);

impl Monitor {
    pub fn start(watch: Watch, interval: Duration) -> Monitor {
        Monitor::start_from(watch, interval, Instant::now())
    }

    /// A monitor whose times count from `started` (another monitor's start), so that its
    /// timeline continues that one's: after the engine's processes were replaced.
    pub fn start_from(watch: Watch, interval: Duration, started: Instant) -> Monitor {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st, root) = (samples.clone(), stop.clone(), watch.pid);
        let thread = std::thread::Builder::new()
            .name("dbbench-resources".into())
            .spawn(move || {
                // The tree is listed again every second: processes come and go (backends).
                let mut pids = tree(root);
                let mut listed = Instant::now();
                while !st.load(Ordering::Relaxed) {
                    if listed.elapsed() >= Duration::from_secs(1) {
                        pids = tree(root);
                        listed = Instant::now();
                    }
                    if let Some(x) = sample(root, &pids, started) {
                        s.lock().unwrap_or_else(|p| p.into_inner()).push(x);
                    }
                    std::thread::sleep(interval);
                }
            })
            .ok();
        Monitor { watch, samples, stop, thread, started }
    }

    pub fn watch(&self) -> &Watch {
        &self.watch
    }

    /// When sampling started (times in the timeline count from it).
    pub fn started(&self) -> Instant {
        self.started
    }

    /// A reading now, to measure from.
    pub fn mark(&self) -> Mark {
        Mark(sample(self.watch.pid, &tree(self.watch.pid), self.started))
    }

    /// The processes' memory now; `None` when they cannot be read.
    pub fn memory_now(&self) -> Option<u64> {
        self.mark().0.map(|s| s.memory_bytes)
    }

    /// Every second sampled so far (see [`per_second`]).
    pub fn timeline(&self) -> Vec<Point> {
        per_second(&self.samples.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Usage from `mark` until now; `None` when the processes could not be read.
    pub fn since(&self, mark: Mark) -> Option<Usage> {
        let first = mark.0?;
        let last = sample(self.watch.pid, &tree(self.watch.pid), self.started)?;
        let all = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let within: Vec<Sample> =
            all.iter().filter(|s| s.t > first.t && s.t < last.t).copied().chain([first, last]).collect();
        Some(usage(&within, first, last))
    }
}

fn usage(within: &[Sample], first: Sample, last: Sample) -> Usage {
    let seconds = (last.t - first.t).max(0.0);
    let cpu_s = (last.cpu_s - first.cpu_s).max(0.0);
    let n = within.len().max(1) as u64;
    Usage {
        cpu_s,
        cpu_cores: if seconds > 0.0 { cpu_s / seconds } else { 0.0 },
        memory_peak_bytes: within.iter().map(|s| s.memory_bytes).max().unwrap_or(0),
        memory_mean_bytes: within.iter().map(|s| s.memory_bytes).sum::<u64>() / n,
        memory_kind: if within.iter().all(|s| s.pss) { "pss" } else { "rss" }.into(),
        processes: last.processes,
        samples: within.len(),
        seconds,
        start_s: first.t,
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Bytes of the files under `dir` (0 when it cannot be read).
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_the_difference_of_cpu_and_the_peak_and_mean_of_memory() {
        let s = |t: f64, cpu_s: f64, memory_bytes: u64| Sample { t, cpu_s, memory_bytes, processes: 2, pss: true };
        let (first, last) = (s(1.0, 10.0, 100), s(3.0, 13.0, 300));
        let u = usage(&[s(2.0, 11.0, 500), first, last], first, last);
        assert_eq!((u.cpu_s, u.cpu_cores, u.seconds), (3.0, 1.5, 2.0));
        assert_eq!((u.memory_peak_bytes, u.memory_mean_bytes, u.samples), (500, 300, 3));
        assert_eq!(u.memory_kind, "pss");
    }

    #[test]
    fn per_second_keeps_each_seconds_peak_and_the_cores_between_its_last_readings() {
        let s = |t: f64, cpu_s: f64, memory_bytes: u64| Sample { t, cpu_s, memory_bytes, processes: 1, pss: true };
        // Second 0: two readings (peak 300); second 1: none; second 2: two readings.
        let pts = per_second(&[s(0.2, 1.0, 300), s(0.8, 1.3, 200), s(2.1, 2.6, 50), s(2.8, 3.3, 80)]);
        let got: Vec<(f64, u64, f64)> = pts.iter().map(|p| (p.t_s, p.memory_bytes, p.cpu_cores)).collect();
        // 0.3 CPU s over 0.6 s, then 2.0 CPU s over 2.0 s.
        let want = [(0.8, 300, 0.5), (2.8, 80, 1.0)];
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g.0 - w.0).abs() < 1e-9 && g.1 == w.1 && (g.2 - w.2).abs() < 1e-9, "{got:?}");
        }
        assert!(per_second(&[]).is_empty());
    }

    #[test]
    fn this_process_is_read_from_proc() {
        let stat = Stat::read(std::process::id()).expect("our own stat");
        assert!(stat.start_time > 0);
        let (bytes, _) = memory(std::process::id()).expect("our own memory");
        assert!(bytes > 1 << 20, "a test binary holds more than a MiB: {bytes}");
        assert!(tree(std::process::id()).contains(&std::process::id()));
    }

    #[test]
    fn a_pid_file_naming_another_process_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("x")).unwrap();
        let me = std::process::id();
        std::fs::write(dir.path().join("x/pid"), format!("{me}\n1\n")).unwrap();
        let err = Watch::service(dir.path(), "x").unwrap_err();
        assert!(err.contains("not the one recorded"), "{err}");
        let start = Stat::read(me).unwrap().start_time;
        std::fs::write(dir.path().join("x/pid"), format!("{me}\n{start}\n")).unwrap();
        assert_eq!(Watch::service(dir.path(), "x").unwrap().pid, me);
        assert!(Watch::service(dir.path(), "absent").unwrap_err().contains("no pid file"));
    }
}
