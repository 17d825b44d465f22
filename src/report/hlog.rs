//! HdrHistogram interval logs, one per engine x phase x op (`hlog/<engine>-<phase>-<op>.hlog`),
//! in the format of HdrHistogram's `HistogramLogWriter`, so that its own tools
//! (HistogramLogProcessor, HdrHistogramVisualizer, hdr-plot) read them. They are written
//! with the `hdrhistogram` crate's own `IntervalLogWriter`, never by hand.
//!
//! results.json records when the run started but not when each phase started, so
//! StartTime is the run's start and the interval timestamps are seconds from the start
//! of the phase (a comment in each file says so). Values are nanoseconds; Interval_Max
//! is written in milliseconds (MaxValueDivisor 1000000), as the Java tools expect.
//!
//! This module only turns results.json into files: it must never change a histogram
//! (each interval goes out with exactly the counts results.json holds).

use std::path::{Path, PathBuf};
use std::time::Duration;

use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;
use hdrhistogram::serialization::V2DeflateSerializer;

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

/// The version of the log format the Java writer declares, which the crate's writer
/// does not write itself.
const FORMAT_VERSION: &str = "[Histogram log format version 1.3]";

/// The column legend the Java writer puts before the intervals. Readers skip it; people
/// and spreadsheet imports read it.
const LEGEND: &str = "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n";

/// Interval_Max is in milliseconds, the histograms in nanoseconds.
const MAX_VALUE_DIVISOR: f64 = 1e6;

/// One op's interval log as text.
pub fn render(r: &RunResults, engine: &str, phase: &str, o: &OpResult) -> std::result::Result<String, String> {
    let start = chrono::DateTime::parse_from_rfc3339(&r.run.started_at)
        .map_err(|e| format!("run.started_at {:?} is not RFC 3339: {e}", r.run.started_at))?;
    let start_time = std::time::SystemTime::from(start);
    let mut out: Vec<u8> = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    // The crate writes the headers it is given when the log begins, and the divisor's
    // header only together with the writer that applies it; so the headers go first,
    // then the legend, then a writer for the intervals that declares the divisor.
    IntervalLogWriterBuilder::new()
        .add_comment(&format!(
            "dbbench {} ({}): run {}, engine {engine}, phase {phase}, op {} ({}); latency of successful requests in nanoseconds, one histogram per second of the phase; timestamps are seconds from the phase start",
            r.dbbench.version, r.dbbench.commit, r.run.id, o.label, o.op
        ))
        .add_comment(FORMAT_VERSION)
        .add_comment(&format!("run started {}", start.to_rfc2822()))
        .with_start_time(start_time)
        .begin_log_with(&mut out, &mut serializer)
        .map_err(|e| format!("log header: {e}"))?;
    out.extend_from_slice(LEGEND.as_bytes());
    let mut log = IntervalLogWriterBuilder::new()
        .with_max_value_divisor(MAX_VALUE_DIVISOR)
        .begin_log_with(&mut out, &mut serializer)
        .map_err(|e| format!("log header: {e}"))?;
    for i in &o.intervals {
        let h = decode_histogram(&i.histogram).map_err(|e| format!("second {}: {e}", i.t_s))?;
        log.write_histogram(&h, Duration::from_secs(i.t_s), Duration::from_secs(1), None)
            .map_err(|e| format!("second {}: {e}", i.t_s))?;
    }
    drop(log);
    String::from_utf8(out).map_err(|e| format!("interval log is not text: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;

    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    use hdrhistogram::serialization::Deserializer;

    use crate::report::fixture;

    /// Every interval of every op, read back with the crate's own interval-log reader,
    /// is the histogram results.json holds for that second, at that second.
    #[test]
    fn logs_read_back_as_the_same_histograms() {
        let r = fixture();
        let mut ops = 0;
        for e in &r.engines {
            for p in &e.phases {
                for o in p.ops.iter().filter(|o| o.status == OpStatus::Ok && !o.intervals.is_empty()) {
                    let text = render(&r, &e.name, &p.name, o).unwrap();
                    let mut read = Vec::new();
                    for entry in IntervalLogIterator::new(text.as_bytes()) {
                        if let LogEntry::Interval(h) = entry.unwrap() {
                            let bytes = base64::Engine::decode(
                                &base64::engine::general_purpose::STANDARD,
                                h.encoded_histogram(),
                            )
                            .unwrap();
                            let hist: hdrhistogram::Histogram<u64> =
                                Deserializer::new().deserialize(&mut bytes.as_slice()).unwrap();
                            read.push((h.start_timestamp(), h.duration(), h.max(), hist));
                        }
                    }
                    assert_eq!(read.len(), o.intervals.len(), "{}/{}/{}", e.name, p.name, o.label);
                    for ((start, length, max, hist), i) in read.iter().zip(&o.intervals) {
                        let want = decode_histogram(&i.histogram).unwrap();
                        assert_eq!(*hist, want, "{}/{}/{} second {}", e.name, p.name, o.label, i.t_s);
                        assert_eq!(hist.len(), want.len());
                        assert_eq!(*start, Duration::from_secs(i.t_s));
                        assert_eq!(*length, Duration::from_secs(1));
                        assert!((max - want.max() as f64 / 1e6).abs() < 0.0005, "Interval_Max in ms");
                    }
                    ops += 1;
                }
            }
        }
        assert_eq!(ops, 16, "every measured op of the fixture has a log");
    }

    #[test]
    fn headers_say_what_the_java_writer_says() {
        let r = fixture();
        let (e, p) = (&r.engines[0], &r.engines[0].phases[0]);
        let text = render(&r, &e.name, &p.name, &p.ops[0]).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("#dbbench ") && lines[0].contains(&r.run.id), "{text}");
        assert!(lines.contains(&"#[Histogram log format version 1.3]"), "{text}");
        assert!(lines.iter().any(|l| l.starts_with("#[StartTime: ") && l.contains("(seconds since epoch)")));
        assert!(lines.contains(&"#[MaxValueDivisor: 1000000.000]"), "{text}");
        assert!(lines.contains(&LEGEND.trim_end()), "{text}");
        let first_interval = lines.iter().position(|l| !l.starts_with('#') && !l.starts_with('"')).unwrap();
        assert!(lines[..first_interval].contains(&LEGEND.trim_end()), "the legend comes before the intervals");
    }

    #[test]
    fn file_names_are_safe() {
        assert_eq!(file_name("pg vector", "search/1", "knn-filtered"), "pg_vector-search_1-knn-filtered.hlog");
    }
}
