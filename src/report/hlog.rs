//! HdrHistogram interval logs, one per engine x phase x op (`hlog/<engine>-<phase>-<op>.hlog`),
//! in the format of HdrHistogram's `HistogramLogWriter`, so that its own tools
//! (HistogramLogProcessor, HdrHistogramVisualizer, hdr-plot) read them.
//!
//! results.json records when the run started but not when each phase started, so
//! StartTime is the run's start and the interval timestamps are seconds from the start
//! of the phase (a comment in each file says so). Values are nanoseconds; Interval_Max
//! is written in milliseconds (MaxValueDivisor 1000000), as the Java tools expect.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::metrics::decode_histogram;
use crate::results::{OpResult, OpStatus, RunResults};

/// The file name for one engine/phase/op, with characters that do not belong in a file
/// name replaced.
pub fn file_name(engine: &str, phase: &str, op: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' { c } else { '_' }).collect()
    };
    format!("{}-{}-{}.hlog", clean(engine), clean(phase), clean(op))
}

/// Write every measured op's interval log into `dir`; returns the files written.
pub fn write_all(r: &RunResults, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for e in &r.engines {
        for p in &e.phases {
            for o in p.ops.iter().filter(|o| o.status == OpStatus::Ok && !o.intervals.is_empty()) {
                if written.is_empty() {
                    std::fs::create_dir_all(dir).map_err(|err| Error::io(dir, err))?;
                }
                let text = render(r, &e.name, &p.name, o).map_err(|why| {
                    Error::Runtime(format!("interval log for {}/{}/{}: {why}", e.name, p.name, o.label))
                })?;
                let path = dir.join(file_name(&e.name, &p.name, &o.label));
                write_atomic(&path, text.as_bytes())?;
                written.push(path);
            }
        }
    }
    Ok(written)
}

/// One op's interval log as text.
pub fn render(r: &RunResults, engine: &str, phase: &str, o: &OpResult) -> std::result::Result<String, String> {
    let start = chrono::DateTime::parse_from_rfc3339(&r.run.started_at)
        .map_err(|e| format!("run.started_at {:?} is not RFC 3339: {e}", r.run.started_at))?;
    let start_s = start.timestamp_millis() as f64 / 1000.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "#dbbench {} ({}): run {}, engine {engine}, phase {phase}, op {} ({}); latency of successful requests in nanoseconds, one histogram per second of the phase; timestamps are seconds from the phase start",
        r.dbbench.version, r.dbbench.commit, r.run.id, o.label, o.op
    );
    let _ = writeln!(out, "#[Histogram log format version 1.3]");
    let _ = writeln!(out, "#[StartTime: {start_s:.3} (seconds since epoch), {}]", start.to_rfc2822());
    let _ = writeln!(out, "#[MaxValueDivisor: 1000000.000]");
    let _ = writeln!(out, "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"");
    for i in &o.intervals {
        let h = decode_histogram(&i.histogram).map_err(|e| format!("second {}: {e}", i.t_s))?;
        let max_ms = if h.is_empty() { 0.0 } else { h.max() as f64 / 1e6 };
        let _ = writeln!(out, "{:.3},{:.3},{:.3},{}", i.t_s as f64, 1.0, max_ms, i.histogram);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe() {
        assert_eq!(file_name("pg vector", "search/1", "knn-filtered"), "pg_vector-search_1-knn-filtered.hlog");
    }
}
