//! One run split over several load generators ("shards"), each a dbbench process of its
//! own, possibly on another machine (a Kubernetes Indexed Job runs one per pod).
//!
//! No process talks to another. They agree because they read the same workload and the
//! same `--start-at`, and everything else follows from those:
//! - **when**: every phase (its warmup, then each measured repetition) has a slot on one
//!   wall-clock timeline starting at `--start-at`, as long as the phase can last plus
//!   the grace it may take to stop. A shard sleeps until each slot; a shard that reaches
//!   a slot late does not measure it, and says so, rather than measuring out of step;
//! - **what**: shard I of N runs the workers `w` with `w % N == I` (so each keeps the
//!   seed it has in an unsplit run), the open-loop requests `j` with `j % N == I` of the
//!   one planned schedule (arrival `j` due when it is due in the unsplit run, so the
//!   shards' arrivals together are exactly the planned schedule), the queries `q` with
//!   `q % N == I`, and inserts of new ids `loaded + I + N·k`;
//! - **who loads**: shard 0 loads and builds the index; the others attach to the
//!   collection and poll its record count until it is all there. With `--skip-load` none
//!   loads: the collection is there from an earlier run.
//!
//! Each shard writes its own results; `dbbench report` merges them.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::spec::{Plan, Schedule, Stop};

/// A shard reaching its slot later than this does not measure it.
pub const LATE_TOLERANCE: Duration = Duration::from_secs(1);

/// Which of how many load generators this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// 0-based.
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Parse `I/N`, or `N` alone with I from `JOB_COMPLETION_INDEX` (`job_index`), as a
    /// Kubernetes Indexed Job sets it.
    pub fn parse(s: &str, job_index: Option<&str>) -> std::result::Result<Shard, String> {
        let number = |what: &str, v: &str| {
            v.trim()
                .parse::<u32>()
                .map_err(|_| format!("{what} {v:?} is not a whole number; write --shard I/N, e.g. 0/3"))
        };
        let (index, count) = match s.split_once('/') {
            Some((i, n)) => (number("shard index", i)?, number("shard count", n)?),
            None => {
                let count = number("shard count", s)?;
                let Some(i) = job_index else {
                    return Err(format!(
                        "--shard {s} names no index: write --shard I/{s}, or set JOB_COMPLETION_INDEX (a Kubernetes Indexed Job sets it)"
                    ));
                };
                (number("JOB_COMPLETION_INDEX", i)?, count)
            }
        };
        if count == 0 || count > 1000 {
            return Err(format!("shard count {count}: must be from 1 to 1000"));
        }
        if index >= count {
            return Err(format!(
                "shard index {index} is not below the shard count {count} (indices are 0 to {})",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }

    /// Does this shard run worker `w` (or open-loop arrival, or query, `w`)?
    pub fn owns(&self, w: u64) -> bool {
        w % self.count as u64 == self.index as u64
    }

    /// Shard 0 loads (unless nobody does).
    pub fn loads(&self) -> bool {
        self.index == 0
    }

    pub fn is_split(&self) -> bool {
        self.count > 1
    }

    pub fn label(&self) -> String {
        format!("shard {}/{}", self.index, self.count)
    }
}

/// A sharded run as asked on the command line.
#[derive(Debug, Clone)]
pub struct ShardRun {
    pub shard: Shard,
    pub start_at: DateTime<Utc>,
    /// No shard loads: the collection is there already.
    pub skip_load: bool,
    /// How long a shard that does not load waits for the collection to be all there.
    pub ready_timeout: Duration,
}

impl ShardRun {
    /// Does this process load the data?
    pub fn loads(&self) -> bool {
        self.shard.loads() && !self.skip_load
    }

    /// The run id every shard of this run shares: `<start-at>-<workload>`.
    pub fn run_base(&self, workload: &str) -> String {
        format!("{}-{workload}", self.start_at.format("%Y%m%dT%H%M%SZ"))
    }

    /// This shard's own folder name under the run's.
    pub fn dir_name(&self) -> String {
        format!("shard-{}-of-{}", self.shard.index, self.shard.count)
    }

    pub fn info(&self) -> crate::results::ShardInfo {
        crate::results::ShardInfo {
            index: self.shard.index,
            count: self.shard.count,
            start_at: self.start_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            loaded: self.loads(),
        }
    }
}

/// Parse `--start-at`: RFC 3339 (`2026-12-04T22:30:00Z`).
pub fn parse_start_at(s: &str) -> std::result::Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s.trim()).map(|t| t.with_timezone(&Utc)).map_err(|e| {
        format!(
            "{e}; write an RFC 3339 time such as {}",
            (Utc::now() + chrono::Duration::minutes(3)).format("%Y-%m-%dT%H:%M:%SZ")
        )
    })
}

/// How long after a phase's stop its workers may still be finishing: the open loop's hard
/// stop (`phase.rs`), which a closed loop's last requests keep to as well.
pub fn grace(d: Duration) -> Duration {
    (d / 10).max(Duration::from_secs(2))
}

/// When each phase's parts start, as offsets from `--start-at`.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseSlots {
    /// The warmup's start (the phase has one).
    pub warmup: Option<Duration>,
    /// Each measured repetition's start.
    pub measured: Vec<Duration>,
}

/// The timeline of a sharded run: per phase of `plan`, its slots; and where it ends.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    pub phases: Vec<PhaseSlots>,
    pub end: Duration,
}

impl Timeline {
    pub fn of(plan: &Plan, repeat: u32) -> Timeline {
        let mut at = Duration::ZERO;
        let mut phases = Vec::new();
        for p in &plan.phases {
            let warmup = (!p.warmup.is_zero()).then(|| {
                let start = at;
                at += p.warmup + grace(p.warmup);
                start
            });
            let len = planned_length(p.stop, p.schedule).unwrap_or_default();
            let measured = (0..repeat.max(1))
                .map(|_| {
                    let start = at;
                    at += len + grace(len);
                    start
                })
                .collect();
            phases.push(PhaseSlots { warmup, measured });
        }
        Timeline { phases, end: at }
    }
}

/// How long a phase's measured part lasts, when every shard can know it in advance.
fn planned_length(stop: Stop, schedule: Schedule) -> Option<Duration> {
    match (stop, schedule) {
        (Stop::Duration(d), _) => Some(d),
        (Stop::Requests(n), Schedule::Open { rate, .. }) => Some(Duration::from_secs_f64(n as f64 / rate)),
        (Stop::Requests(_), Schedule::Closed { .. }) => None,
    }
}

/// Refuse a plan that cannot be split over `shard.count` generators, saying what to change.
pub fn check(plan: &Plan, shard: Shard) -> Result<()> {
    let file = plan.workload.file.display();
    let refuse = |why: String| Err(Error::Input(format!("{file}: {why}")));
    if plan.engines.len() != 1 {
        let names: Vec<&str> = plan.engines.iter().map(|e| e.config.name.as_str()).collect();
        return refuse(format!(
            "a sharded run measures one engine (the shards agree on one timeline), and this one runs {}; pick one with --engines NAME",
            names.join(", ")
        ));
    }
    let engine = &plan.engines[0];
    if engine.kind.default_url.is_none() {
        return refuse(format!(
            "engine {} runs inside each dbbench process, so shards would each measure their own copy; shard a run against a server engine",
            engine.config.name
        ));
    }
    if !plan.dataset.sizes.is_empty() {
        return refuse("dataset.sizes runs the workload once per size; shard each size's run on its own".into());
    }
    if plan.dataset.stream.is_some() {
        return refuse(
            "dataset.stream holds records out for one process's inserts; a sharded run cannot split them".into(),
        );
    }
    for p in &plan.phases {
        let name = &p.name;
        if p.recovery.is_some() {
            return refuse(format!(
                "phase {name:?} is a recovery phase: it kills and restarts the engine, which one process must do alone"
            ));
        }
        if p.stream.is_some() {
            return refuse(format!("phase {name:?} is a stream phase; it runs from one process"));
        }
        if p.effort.is_some() {
            return refuse(format!(
                "phase {name:?} sweeps search effort, which changes the engine between steps; run it from one process"
            ));
        }
        if planned_length(p.stop, p.schedule).is_none() {
            return refuse(format!(
                "phase {name:?} stops after a number of requests in a closed loop, so no shard can know when the others finish it; give it a duration (duration = \"30s\") or an open-loop rate"
            ));
        }
        let c = p.schedule.concurrency() as u32;
        if c < shard.count {
            return refuse(format!(
                "phase {name:?} has concurrency {c}, fewer than the {} shards: each shard needs a worker of its own; raise concurrency to at least {}",
                shard.count, shard.count
            ));
        }
    }
    Ok(())
}

/// The wall-clock time `offset` after `start_at`.
pub fn wall(start_at: DateTime<Utc>, offset: Duration) -> SystemTime {
    SystemTime::from(start_at) + offset
}

/// Wait until wall-clock `at` (or return at once if it has passed); false if cancelled.
pub async fn sleep_until(at: SystemTime, cancel: &tokio_util::sync::CancellationToken) -> bool {
    let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
    tokio::select! {
        _ = tokio::time::sleep(wait) => true,
        _ = cancel.cancelled() => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_parses_index_and_count_or_takes_the_index_from_the_job() {
        assert_eq!(Shard::parse("1/3", None), Ok(Shard { index: 1, count: 3 }));
        assert_eq!(Shard::parse("3", Some("2")), Ok(Shard { index: 2, count: 3 }));
        assert_eq!(Shard::parse(" 0 / 2 ", None), Ok(Shard { index: 0, count: 2 }));
        assert!(Shard::parse("3", None).unwrap_err().contains("JOB_COMPLETION_INDEX"));
        assert!(Shard::parse("3/3", None).unwrap_err().contains("not below"));
        assert!(Shard::parse("0/0", None).unwrap_err().contains("1 to 1000"));
        assert!(Shard::parse("a/3", None).unwrap_err().contains("not a whole number"));
        assert!(Shard::parse("3", Some("x")).unwrap_err().contains("JOB_COMPLETION_INDEX"));
    }

    #[test]
    fn shards_own_disjoint_parts_that_cover_everything() {
        let n = 3;
        let shards: Vec<Shard> = (0..n).map(|index| Shard { index, count: n }).collect();
        for w in 0..100u64 {
            assert_eq!(shards.iter().filter(|s| s.owns(w)).count(), 1, "item {w}");
        }
        let shares: Vec<usize> = shards.iter().map(|s| (0..8).filter(|&w| s.owns(w)).count()).collect();
        assert_eq!(shares, vec![3, 3, 2]);
    }

    #[test]
    fn start_at_takes_rfc3339_and_names_the_form_when_it_is_not() {
        let t = parse_start_at("2026-12-04T22:30:00Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-04T22:30:00+00:00");
        let t = parse_start_at("2026-12-04T23:30:00+01:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-04T22:30:00+00:00");
        assert!(parse_start_at("in 3 minutes").unwrap_err().contains("RFC 3339"));
    }

    fn sharded_plan() -> Plan {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads/sharded.toml");
        let o = crate::spec::Overrides { engines: Some(vec!["pgvector".into()]), ..Default::default() };
        crate::spec::load_plan(&file, &o).expect("workloads/sharded.toml is valid")
    }

    #[test]
    fn the_timeline_gives_each_part_its_length_and_grace_back_to_back() {
        // knn-open: warmup 1 s (+2 s grace), then 1800 requests at 300/s = 6 s (+2 s);
        // text-closed: 4 s (+2 s).
        let s = |x: u64| Duration::from_secs(x);
        let t = Timeline::of(&sharded_plan(), 1);
        assert_eq!(t.phases[0], PhaseSlots { warmup: Some(s(0)), measured: vec![s(3)] });
        assert_eq!(t.phases[1], PhaseSlots { warmup: None, measured: vec![s(11)] });
        assert_eq!(t.end, s(17));
        let t = Timeline::of(&sharded_plan(), 2);
        assert_eq!(t.phases[0].measured, vec![s(3), s(11)]);
        assert_eq!(t.phases[1].measured, vec![s(19), s(25)]);
        assert_eq!(t.end, s(31));
    }

    #[test]
    fn the_sharded_workload_splits_over_as_many_shards_as_its_workers() {
        let plan = sharded_plan();
        assert!(check(&plan, Shard { index: 0, count: 6 }).is_ok());
        let e = check(&plan, Shard { index: 0, count: 7 }).unwrap_err().to_string();
        assert!(e.contains("concurrency 6, fewer than the 7 shards"), "{e}");
    }

    #[test]
    fn grace_is_a_tenth_but_at_least_two_seconds() {
        assert_eq!(grace(Duration::from_secs(5)), Duration::from_secs(2));
        assert_eq!(grace(Duration::from_secs(60)), Duration::from_secs(6));
    }
}
