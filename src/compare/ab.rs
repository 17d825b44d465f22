//! `dbbench compare --ab BASE.toml CANDIDATE.toml`: both sides measured on this machine,
//! now, interleaved, then judged with the same rule as any comparison.
//!
//! A committed baseline carries the machine and the hour it was recorded on: on a shared
//! machine a neighbour, a thermal limit or a cache left warm moves every figure by more
//! than the regressions worth catching. Interleaving makes drift hit both sides alike.
//! Each round runs both workloads whole (load, warmup, measured phases), in the order
//! A B in odd rounds and B A in even ones, so neither side is always the one that runs
//! right after the other's load. Each round's run of a side is one sample of that side
//! (`MIN_RUN_SAMPLES` rounds at least), so the bootstrap interval sees run-to-run noise,
//! not only second-to-second noise within one run.
//!
//! Every round's results stay on disk (`OUT/baseline/round-N`, `OUT/candidate/round-N`):
//! the comparison can be recomputed from them with a plain `dbbench compare OUT/baseline
//! OUT/candidate`. An interrupted A/B keeps the rounds already measured and judges
//! nothing.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::{load_side, render, write_atomic, CompareArgs, Comparison, Format, Settings, MIN_RUN_SAMPLES};
use crate::error::{Error, Result};
use crate::runner::{self, console, RunOptions};
use crate::spec::{self, Overrides};

/// The two sides of an A/B run, in the order of a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Baseline,
    Candidate,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Baseline => "baseline",
            Side::Candidate => "candidate",
        }
    }
}

/// The order of the two sides in round `round` (1-based): A B, then B A, alternately.
pub fn round_order(round: u32) -> [Side; 2] {
    if round % 2 == 1 {
        [Side::Baseline, Side::Candidate]
    } else {
        [Side::Candidate, Side::Baseline]
    }
}

/// What an A/B run needs beyond the comparison's settings.
pub struct AbPlan {
    pub baseline: PathBuf,
    pub candidate: PathBuf,
    pub rounds: u32,
    pub out: PathBuf,
    pub overrides: Overrides,
    pub cache: PathBuf,
}

impl AbPlan {
    pub fn from_args(args: &CompareArgs) -> Result<Self> {
        if args.rounds < MIN_RUN_SAMPLES as u32 {
            return Err(Error::Input(format!(
                "--rounds {}: an A/B run needs at least {MIN_RUN_SAMPLES} rounds, one sample of each side per round",
                args.rounds
            )));
        }
        let out = args.out.clone().unwrap_or_else(|| PathBuf::from("results").join(runner::new_run_id("ab")));
        Ok(AbPlan {
            baseline: args.baseline.clone(),
            candidate: args.candidate.clone(),
            rounds: args.rounds,
            out,
            overrides: Overrides { seed: None, duration: args.duration, engines: args.engines.clone() },
            cache: args.cache.clone(),
        })
    }

    fn workload(&self, side: Side) -> &Path {
        match side {
            Side::Baseline => &self.baseline,
            Side::Candidate => &self.candidate,
        }
    }

    /// Where every round of `side` is written: one side of the comparison.
    pub fn side_dir(&self, side: Side) -> PathBuf {
        self.out.join(side.name())
    }

    /// Where round `round` of `side` is written.
    pub fn run_dir(&self, side: Side, round: u32) -> PathBuf {
        self.side_dir(side).join(format!("round-{round:02}"))
    }
}

/// Run the rounds, then compare. Returns the comparison's exit code.
pub async fn command(args: &CompareArgs, cancel: CancellationToken) -> Result<i32> {
    let settings = Settings::with_metrics(args.max_regression, args.quality_tolerance, &args.metrics)?
        .allowing_other_machine(args.allow_other_machine)
        .allowing_other_workload(true);
    let plan = AbPlan::from_args(args)?;
    // Both files are checked before anything is loaded: a typo in the candidate must not
    // surface after the baseline's first round.
    for side in [Side::Baseline, Side::Candidate] {
        spec::load_plan(plan.workload(side), &plan.overrides)?;
    }
    if [Side::Baseline, Side::Candidate].iter().any(|s| plan.side_dir(*s).exists()) {
        return Err(Error::Input(format!(
            "{}: already holds an A/B run; give another --out (its rounds would be pooled with these)",
            plan.out.display()
        )));
    }
    let started = Instant::now();
    for round in 1..=plan.rounds {
        for side in round_order(round) {
            if cancel.is_cancelled() {
                return Err(interrupted(&plan));
            }
            let t = Instant::now();
            console::heading(&format!(
                "A/B round {round}/{}: {} ({})",
                plan.rounds,
                side.name(),
                plan.workload(side).display()
            ));
            run_side(&plan, side, round, cancel.clone()).await?;
            console::note(&format!(
                "A/B round {round}/{} {} done in {}; {}",
                plan.rounds,
                side.name(),
                secs(t.elapsed().as_secs_f64()),
                eta(started.elapsed(), round, side, plan.rounds)
            ));
        }
    }
    let cmp = judge(&plan, settings)?;
    for (file, format, default) in
        [(&args.markdown, Format::Markdown, "compare.md"), (&args.json, Format::Json, "compare.json")]
    {
        let file = file.clone().unwrap_or_else(|| plan.out.join(default));
        write_atomic(&file, render(&cmp, format)?.as_bytes())?;
    }
    print!("{}", render(&cmp, args.format)?);
    console::note(&format!(
        "A/B rounds in {} (judge them again with: dbbench compare {} {})",
        plan.out.display(),
        plan.side_dir(Side::Baseline).display(),
        plan.side_dir(Side::Candidate).display()
    ));
    Ok(cmp.exit_code())
}

/// The time left, from the mean time of a side's run so far.
fn eta(elapsed: Duration, round: u32, side: Side, rounds: u32) -> String {
    let done = 2 * (round - 1) + if side == round_order(round)[0] { 1 } else { 2 };
    let left = 2 * rounds - done;
    if left == 0 {
        return "all rounds measured".into();
    }
    let per = elapsed.as_secs_f64() / done as f64;
    format!("{left} run(s) left, about {} more", secs(per * left as f64))
}

fn secs(s: f64) -> String {
    format!("{s:.1} s")
}

/// One side's run of one round. Any engine skipped or failed ends the A/B: a round with
/// a side missing would pool unlike samples.
async fn run_side(plan: &AbPlan, side: Side, round: u32, cancel: CancellationToken) -> Result<()> {
    let workload = plan.workload(side);
    let loaded = spec::load_plan(workload, &plan.overrides)?;
    let out_dir = plan.run_dir(side, round);
    let opts = RunOptions {
        run_id: runner::new_run_id(&loaded.workload.name),
        out_dir: out_dir.clone(),
        cache_dir: plan.cache.clone(),
        progress: false,
        repeat: 1,
        shard: None,
        raw_latencies: false,
    };
    let summary = runner::run(loaded, opts, cancel).await?;
    if summary.interrupted {
        return Err(interrupted(plan));
    }
    let missing: Vec<String> = summary
        .failed_engines()
        .into_iter()
        .chain(summary.skipped_engines())
        .map(|e| format!("{} ({})", e.name, e.reason.as_deref().unwrap_or("no reason given")))
        .collect();
    if !missing.is_empty() {
        return Err(Error::Incomplete(format!(
            "A/B round {round}, {} side ({}): engine(s) not measured: {}; the rounds so far are in {}",
            side.name(),
            workload.display(),
            missing.join("; "),
            plan.out.display()
        )));
    }
    Ok(())
}

fn interrupted(plan: &AbPlan) -> Error {
    Error::Incomplete(format!(
        "interrupted: the A/B was not judged; the rounds measured are in {} (compare them with: dbbench compare {} {})",
        plan.out.display(),
        plan.side_dir(Side::Baseline).display(),
        plan.side_dir(Side::Candidate).display()
    ))
}

/// The comparison of every round measured.
pub fn judge(plan: &AbPlan, settings: Settings) -> Result<Comparison> {
    let (b, c) = (plan.side_dir(Side::Baseline), plan.side_dir(Side::Candidate));
    let (base, cand) = (load_side(&b)?, load_side(&c)?);
    super::compare(&b, &base, &c, &cand, settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_alternate_which_side_goes_first() {
        use Side::*;
        assert_eq!(round_order(1), [Baseline, Candidate]);
        assert_eq!(round_order(2), [Candidate, Baseline]);
        assert_eq!(round_order(3), [Baseline, Candidate]);
    }

    #[test]
    fn the_eta_counts_the_runs_left() {
        // Round 1, first side done after 10 s: 5 runs left of 6, 10 s each.
        assert_eq!(eta(Duration::from_secs(10), 1, Side::Baseline, 3), "5 run(s) left, about 50.0 s more");
        // Round 2 goes candidate first; after its second side all 4 runs of 2 rounds are done.
        assert_eq!(eta(Duration::from_secs(40), 2, Side::Baseline, 2), "all rounds measured");
    }
}
