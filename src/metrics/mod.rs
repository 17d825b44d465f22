//! Latency recording: one HDR histogram per op x outcome for latency (from the intended
//! start) and service time (from the send), a schedule-lag histogram for open loops,
//! per-second interval histograms, errors by kind with a few sample messages, and the
//! op's retrieval-quality sums.
//!
//! Each worker owns its `OpMetrics` and records without locks; the runner merges them
//! with `add` when the phase ends. Percentiles are never averaged.

use std::collections::BTreeMap;

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::error::ErrorKind;
use crate::metric::Percentile;
use crate::quality::QualitySums;

/// Values are nanoseconds; 3 significant digits (0.1% resolution).
pub const SIGFIG: u8 = 3;
/// Interval histograms are coarser (1%) to keep them small.
pub const INTERVAL_SIGFIG: u8 = 2;
/// Sample messages kept per error kind.
pub const ERROR_SAMPLES: usize = 3;

/// An auto-resizing histogram: it grows to the largest value seen, so a phase of fast
/// requests keeps small histograms and a 10-second stall still records exactly.
pub fn new_histogram(sigfig: u8) -> Histogram<u64> {
    Histogram::new(sigfig).expect("sigfig in 0..=5")
}

/// Record a value, growing the histogram as needed. (`saturating_record` would clamp
/// at the current top instead of growing.)
#[inline]
pub fn record(h: &mut Histogram<u64>, value: u64) {
    if h.record(value).is_err() {
        h.saturating_record(value);
    }
}

/// Requests that finished in one second of the phase.
#[derive(Debug, Clone)]
pub struct Interval {
    pub ok: u64,
    pub errors: u64,
    /// Latency of the ok requests, nanoseconds.
    pub latency: Histogram<u64>,
}

impl Default for Interval {
    fn default() -> Self {
        Interval { ok: 0, errors: 0, latency: new_histogram(INTERVAL_SIGFIG) }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ErrorTally {
    pub count: u64,
    pub samples: Vec<String>,
}

/// Everything measured for one op of one phase.
#[derive(Debug, Clone)]
pub struct OpMetrics {
    pub ok_latency: Histogram<u64>,
    pub ok_service: Histogram<u64>,
    pub error_latency: Histogram<u64>,
    pub error_service: Histogram<u64>,
    /// Open loop only: how late each request was sent after it was due.
    pub schedule_lag: Histogram<u64>,
    pub errors: BTreeMap<ErrorKind, ErrorTally>,
    pub quality: QualitySums,
    pub intervals: Vec<Interval>,
}

impl Default for OpMetrics {
    fn default() -> Self {
        OpMetrics {
            ok_latency: new_histogram(SIGFIG),
            ok_service: new_histogram(SIGFIG),
            error_latency: new_histogram(SIGFIG),
            error_service: new_histogram(SIGFIG),
            schedule_lag: new_histogram(SIGFIG),
            errors: BTreeMap::new(),
            quality: QualitySums::default(),
            intervals: Vec::new(),
        }
    }
}

impl OpMetrics {
    /// Record one finished request. `second` is the whole second of the phase in which it
    /// finished.
    #[inline]
    pub fn record_ok(&mut self, latency_ns: u64, service_ns: u64, second: usize) {
        record(&mut self.ok_latency, latency_ns);
        record(&mut self.ok_service, service_ns);
        let slot = self.interval(second);
        slot.ok += 1;
        record(&mut slot.latency, latency_ns);
    }

    pub fn record_error(&mut self, latency_ns: u64, service_ns: u64, second: usize, kind: ErrorKind, message: &str) {
        record(&mut self.error_latency, latency_ns);
        record(&mut self.error_service, service_ns);
        self.interval(second).errors += 1;
        let tally = self.errors.entry(kind).or_default();
        tally.count += 1;
        if tally.samples.len() < ERROR_SAMPLES && !tally.samples.iter().any(|s| s == message) {
            tally.samples.push(message.chars().take(500).collect());
        }
    }

    #[inline]
    pub fn record_lag(&mut self, lag_ns: u64) {
        record(&mut self.schedule_lag, lag_ns);
    }

    fn interval(&mut self, second: usize) -> &mut Interval {
        if self.intervals.len() <= second {
            self.intervals.resize_with(second + 1, Interval::default);
        }
        &mut self.intervals[second]
    }

    pub fn ok_count(&self) -> u64 {
        self.ok_latency.len()
    }

    pub fn error_count(&self) -> u64 {
        self.error_latency.len()
    }

    /// Merge another worker's numbers into these.
    pub fn add(&mut self, other: &OpMetrics) {
        let add =
            |a: &mut Histogram<u64>, b: &Histogram<u64>| a.add(b).expect("auto-resizing histograms accept any range");
        add(&mut self.ok_latency, &other.ok_latency);
        add(&mut self.ok_service, &other.ok_service);
        add(&mut self.error_latency, &other.error_latency);
        add(&mut self.error_service, &other.error_service);
        add(&mut self.schedule_lag, &other.schedule_lag);
        for (kind, t) in &other.errors {
            let mine = self.errors.entry(*kind).or_default();
            mine.count += t.count;
            for s in &t.samples {
                if mine.samples.len() < ERROR_SAMPLES && !mine.samples.contains(s) {
                    mine.samples.push(s.clone());
                }
            }
        }
        self.quality.add(&other.quality);
        if self.intervals.len() < other.intervals.len() {
            self.intervals.resize_with(other.intervals.len(), Interval::default);
        }
        for (mine, theirs) in self.intervals.iter_mut().zip(&other.intervals) {
            mine.ok += theirs.ok;
            mine.errors += theirs.errors;
            add(&mut mine.latency, &theirs.latency);
        }
    }
}

/// Percentiles of a latency histogram, in milliseconds. A tail percentile is `None` when
/// there are too few samples for it to mean anything (`Percentile::min_count`: p99 needs
/// 100, p99.9 needs 1,000).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LatencySummary {
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub p999: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
}

impl LatencySummary {
    pub fn of(h: &Histogram<u64>) -> Self {
        let n = h.len();
        if n == 0 {
            return LatencySummary::default();
        }
        let ms = |ns: u64| ns as f64 / 1e6;
        let q = |p: Percentile| (n >= p.min_count()).then(|| ms(h.value_at_quantile(p.quantile())));
        LatencySummary {
            p50: q(Percentile::P50),
            p90: q(Percentile::P90),
            p95: q(Percentile::P95),
            p99: q(Percentile::P99),
            p999: q(Percentile::P999),
            max: Some(ms(h.max())),
            mean: Some(h.mean() / 1e6),
        }
    }
}

/// A histogram as base64 of HdrHistogram's V2 compressed encoding, readable by every
/// HdrHistogram implementation.
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    V2DeflateSerializer::new().serialize(h, &mut buf).expect("serializing into a Vec cannot fail");
    base64::engine::general_purpose::STANDARD.encode(buf)
}

pub fn decode_histogram(text: &str) -> Result<Histogram<u64>, String> {
    let bytes =
        base64::engine::general_purpose::STANDARD.decode(text).map_err(|e| format!("histogram is not base64: {e}"))?;
    let mut h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("histogram does not decode: {e:?}"))?;
    h.auto(true);
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_adds_histograms_rather_than_averaging() {
        let mut a = OpMetrics::default();
        let mut b = OpMetrics::default();
        for _ in 0..99 {
            a.record_ok(1_000_000, 1_000_000, 0);
        }
        b.record_ok(1_000_000_000, 1_000, 1);
        a.add(&b);
        assert_eq!(a.ok_count(), 100);
        let s = LatencySummary::of(&a.ok_latency);
        assert!((s.p50.unwrap() - 1.0).abs() < 0.01, "{s:?}");
        assert!((s.max.unwrap() - 1000.0).abs() < 1.0);
        assert!(s.p999.is_none(), "100 samples cannot support p99.9");
        assert_eq!(a.intervals.len(), 2);
        assert_eq!(a.intervals[1].ok, 1);
    }

    #[test]
    fn errors_keep_counts_and_a_few_distinct_samples() {
        let mut m = OpMetrics::default();
        for i in 0..10 {
            m.record_error(5, 5, 0, ErrorKind::Rejected, &format!("bad {}", i % 5));
        }
        let t = &m.errors[&ErrorKind::Rejected];
        assert_eq!(t.count, 10);
        assert_eq!(t.samples, vec!["bad 0", "bad 1", "bad 2"]);
        assert_eq!(m.error_count(), 10);
        assert_eq!(m.ok_count(), 0);
    }

    #[test]
    fn histograms_round_trip_through_base64() {
        let mut h = new_histogram(SIGFIG);
        for v in [1u64, 10, 1_000, 1_000_000, 5_000_000_000] {
            h.record(v).unwrap();
        }
        let back = decode_histogram(&encode_histogram(&h)).unwrap();
        assert_eq!(back.len(), 5);
        assert_eq!(back.max(), h.max());
        assert_eq!(back.value_at_quantile(0.5), h.value_at_quantile(0.5));
        assert!(decode_histogram("!!").is_err());
    }
}
