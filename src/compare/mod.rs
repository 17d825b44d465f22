//! `dbbench compare`: a candidate run against a baseline, from results.json alone, with a
//! verdict per engine x phase x op x metric and an exit code a CI job can gate on
//! (0 no regression, 1 regression, 2 bad input).
//!
//! The rule is noise-aware, after criterion: a latency or throughput regression needs the
//! point change beyond `--max-regression` AND the whole bootstrap confidence interval of the
//! change beyond it (`lb > threshold && ub > threshold`). One slow second, or one unlucky
//! run on a shared CI machine, moves the point estimate but not the whole interval.
//!
//! The samples the interval is drawn from are, when both sides have at least
//! `MIN_RUN_SAMPLES` of them, the measured runs of the op (repetitions of `run --repeat`
//! and separate runs given as a folder), each summarised by its own value; otherwise the
//! per-second intervals of every run pooled (ok counts for throughput, each second's
//! histogram quantile for latency). Runs are the better unit: seconds of one run share
//! that run's conditions (a noisy neighbour, a cold cache), so they understate the noise.
//!
//! Quality metrics (recall, nDCG) are deterministic for a deterministic engine and
//! regress on any drop beyond an absolute tolerance.
//!
//! The parts: `load` reads and groups the two sides, `stats` holds the bootstrap,
//! `verdict` judges, `render` writes text, Markdown and JSON. One comparison is computed
//! once and rendered in every format asked for.
//!
//! Nothing here contacts an engine; comparing never changes either input.

use std::path::PathBuf;

use crate::error::Result;
use crate::fsutil::write_atomic;
use crate::metric::{Metric, MetricParser};

pub mod ab;
mod load;
mod render;
mod stats;
mod verdict;

pub use crate::metric::Direction;
pub use load::{load_side, SideInfo};
pub use render::{render_json, render_markdown, render_text};
pub use stats::{bootstrap_ratio_of_medians, median, quantile_sorted, CONFIDENCE, RESAMPLES, SEED};
pub use verdict::{
    compare, metric_names, quality_verdict, relative_verdict, Comparison, MetricComparison, OpComparison, Settings,
    Verdict, DEFAULT_METRICS, MIN_RUN_SAMPLES, MIN_SAMPLES,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Markdown,
    Json,
}

/// `dbbench compare` on the command line.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    dbbench compare results/baselines/ci-sqlite results/latest --max-regression 25%\n  \
    dbbench compare --ab workloads/pg-hnsw.toml workloads/pg-ivf.toml --rounds 5 --engines pgvector\n\n\
    Exit codes: 0 no regression, 1 regression (or an op the candidate did not measure), 2 bad input, \
    or latency/throughput measured on different machines (see --allow-other-machine).")]
pub struct CompareArgs {
    /// The baseline: a results.json, a run folder, or a folder of run folders / results
    /// files (repeated runs, pooled as samples). With --ab: the baseline's workload file.
    pub baseline: PathBuf,
    /// The candidate, in any of the same forms. With --ab: the candidate's workload file.
    pub candidate: PathBuf,
    /// Measure both sides here and now instead of reading results: run the two workload
    /// files alternately (A B, B A, ...) for --rounds rounds, each round loading and
    /// running every phase, then judge the candidate's rounds against the baseline's.
    /// Drift on the machine hits both sides alike. The two files may differ in anything
    /// but their dataset (e.g. an index setting or an engine version).
    #[arg(long)]
    pub ab: bool,
    /// With --ab: rounds, each one run of each side (at least 3).
    #[arg(long, default_value_t = 5, requires = "ab")]
    pub rounds: u32,
    /// With --ab: the folder for every round's results and the comparison
    /// [default: results/<UTC timestamp>-ab].
    #[arg(long, requires = "ab")]
    pub out: Option<PathBuf>,
    /// With --ab: run only these engines of both files (comma-separated).
    #[arg(long, value_delimiter = ',', requires = "ab")]
    pub engines: Option<Vec<String>>,
    /// With --ab: measure every timed phase for this long instead of its own duration.
    #[arg(long, value_parser = crate::cli::parse_duration, requires = "ab")]
    pub duration: Option<std::time::Duration>,
    /// With --ab: where exact ground truth is cached.
    #[arg(long, default_value = ".dbbench/cache", env = "DBBENCH_CACHE")]
    pub cache: PathBuf,
    /// Judge latency and throughput even when the sides ran on different machines (CPU
    /// model, cores or memory differ). Without it those metrics read "not comparable"
    /// and, when nothing else regressed, the exit code is 2; quality is judged either way.
    #[arg(long)]
    pub allow_other_machine: bool,
    /// How much worse a latency or throughput may get before it counts as a regression,
    /// in percent ("10%" or "10"). The whole 95% confidence interval must be beyond it too.
    #[arg(long, default_value = "10%", value_parser = parse_percent)]
    pub max_regression: f64,
    /// Metrics to compare (repeat or comma-separate)
    /// [default: p50_ms, p99_ms, throughput_ops_s, recall_at_k, ndcg_at_10].
    #[arg(long = "metric", value_delimiter = ',', value_parser = MetricParser::new(Metric::comparable))]
    pub metrics: Vec<Metric>,
    /// Format of what is printed on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Also write the comparison as Markdown to this file (written whole or not at all).
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Also write the comparison as JSON to this file (written whole or not at all).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Absolute drop of a quality metric (recall, nDCG, MRR) that counts as a regression.
    #[arg(long, default_value_t = 0.005)]
    pub quality_tolerance: f64,
}

/// "10%", "10" or "2.5%" as a fraction (0.10, 0.10, 0.025).
pub fn parse_percent(s: &str) -> std::result::Result<f64, String> {
    let number = s.trim().trim_end_matches('%').trim();
    let v: f64 = number.parse().map_err(|_| format!("{s:?} is not a percentage; write e.g. 10% or 25%"))?;
    if !(0.0..100.0).contains(&v) {
        return Err(format!("{s:?}: must be at least 0% and below 100%"));
    }
    Ok(v / 100.0)
}

/// The comparison in one format.
pub fn render(c: &Comparison, format: Format) -> Result<String> {
    Ok(match format {
        Format::Text => render_text(c),
        Format::Markdown => render_markdown(c),
        Format::Json => render_json(c)?,
    })
}

/// Run `dbbench compare` on results already measured; returns the exit code (0 pass,
/// 1 regression, 2 timing measured on other machines). The files asked
/// for are written before anything is printed, so a CI job that reads them after a
/// failing gate finds them.
pub fn command(args: &CompareArgs) -> Result<i32> {
    let settings = Settings::with_metrics(args.max_regression, args.quality_tolerance, &args.metrics)?
        .allowing_other_machine(args.allow_other_machine);
    let baseline = load_side(&args.baseline)?;
    let candidate = load_side(&args.candidate)?;
    let cmp = compare(&args.baseline, &baseline, &args.candidate, &candidate, settings)?;
    for (file, format) in [(&args.markdown, Format::Markdown), (&args.json, Format::Json)] {
        if let Some(file) = file {
            write_atomic(file, render(&cmp, format)?.as_bytes())?;
        }
    }
    print!("{}", render(&cmp, args.format)?);
    Ok(cmp.exit_code())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn percentages_parse_with_or_without_the_sign() {
        assert_eq!(parse_percent("10%"), Ok(0.10));
        assert_eq!(parse_percent("25"), Ok(0.25));
        assert!(parse_percent("ten").is_err());
        assert!(parse_percent("150%").is_err());
    }
}
