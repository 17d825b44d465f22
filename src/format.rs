//! Numbers as people read them: every value dbbench prints (console, report.html,
//! report.md, the recommendation's prose, `dbbench compare`) is formatted here, by its
//! unit, so that the same p99 reads the same everywhere.
//!
//! Formatting only: nothing here decides which number to show or whether it means
//! anything (that is `metric`), and nothing here may escape for HTML or Markdown (the
//! renderers do, on the text this returns).

/// What a number measures, which decides how it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Milliseconds (latency, service time, schedule lag).
    Millis,
    /// Operations per second.
    OpsPerSec,
    /// A score between 0 and 1 (recall, nDCG, MRR).
    Ratio,
    /// A share between 0 and 1 shown as a percentage (error rate).
    Fraction,
    /// Seconds (load, index build).
    Seconds,
    Bytes,
    /// Mebibytes (an engine's memory and disk).
    Mib,
    /// A whole number of things (requests, errors).
    Count,
}

impl Unit {
    /// The value in a table cell: the number alone, "-" when absent.
    pub fn cell(self, v: Option<f64>) -> String {
        let Some(x) = v else { return "-".into() };
        match self {
            Unit::Millis => ms(Some(x)),
            Unit::OpsPerSec => rate(x),
            Unit::Ratio => ratio(Some(x)),
            Unit::Fraction => format!("{}%", trim_zeros(format!("{:.3}", x * 100.0))),
            Unit::Seconds => seconds(x),
            Unit::Bytes => gib(x as u64),
            Unit::Mib => format!("{x:.1}"),
            Unit::Count => count(x),
        }
    }

    /// The value in a sentence, with its unit and without trailing zeros ("25 ms",
    /// "0.5 s", "1200.5 ops/s"): a bound reads as the user wrote it.
    pub fn prose(self, x: f64) -> String {
        match self {
            Unit::Millis => format!("{} ms", trim_zeros(ms(Some(x)))),
            Unit::OpsPerSec => format!("{} ops/s", trim_zeros(ops_per_s(x))),
            Unit::Ratio => ratio(Some(x)),
            Unit::Fraction => format!("{}%", trim_zeros(format!("{:.3}", x * 100.0))),
            Unit::Seconds => format!("{} s", trim_zeros(seconds(x))),
            Unit::Bytes => gib(x as u64),
            Unit::Mib => format!("{} MiB", trim_zeros(format!("{x:.1}"))),
            Unit::Count => count(x),
        }
    }
}

/// Milliseconds with a precision that suits their size: three decimals below 1 ms, two
/// below 100 ms, none above.
pub fn ms(v: Option<f64>) -> String {
    match v {
        Some(x) if x < 1.0 => format!("{x:.3}"),
        Some(x) if x < 100.0 => format!("{x:.2}"),
        Some(x) => format!("{x:.0}"),
        None => "-".into(),
    }
}

/// A score between 0 and 1, three decimals (the resolution quality is reported at).
pub fn ratio(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "-".into())
}

/// Operations per second in a report table: one decimal below 100/s, none above.
pub fn rate(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// Operations per second with one decimal at any rate (the console, and prose).
pub fn ops_per_s(v: f64) -> String {
    format!("{v:.1}")
}

/// Seconds to two decimals (load and index-build times).
pub fn seconds(v: f64) -> String {
    format!("{v:.2}")
}

/// A whole number.
pub fn count(v: f64) -> String {
    format!("{v:.0}")
}

/// A count the way an axis names it: 500, 10k, 2.5M.
pub fn compact(v: f64) -> String {
    let (x, unit) = match v.abs() {
        a if a >= 1e9 => (v / 1e9, "G"),
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e3 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    format!("{}{unit}", trim_zeros(format!("{x:.1}")))
}

/// Bytes as a number of MiB.
pub fn to_mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

/// Bytes in MiB, no decimals ("512 MiB").
pub fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", to_mib(bytes))
}

/// Bytes in GiB, one decimal (machine memory).
pub fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// A value of any size with about four significant digits, for tables that mix units
/// (`dbbench compare`): none at 1000 and above, two from 1, four below.
pub fn significant(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(x) if x.abs() >= 1000.0 => format!("{x:.0}"),
        Some(x) if x.abs() >= 1.0 => format!("{x:.2}"),
        Some(x) => format!("{x:.4}"),
    }
}

/// A share (0.025 = 2.5%) as a percentage with enough digits to tell small shares apart:
/// "30.0%", "2.50%", "0.083%".
pub fn percent(share: f64) -> String {
    let p = 100.0 * share;
    match p.abs() {
        a if a >= 10.0 || a == 0.0 => format!("{p:.1}%"),
        a if a >= 1.0 => format!("{p:.2}%"),
        _ => format!("{p:.3}%"),
    }
}

/// A relative change (0.1 = 10%) with its sign, one decimal: "+10.0%".
pub fn signed_percent(change: f64) -> String {
    format!("{:+.1}%", 100.0 * change)
}

/// An absolute change of a score with its sign, four decimals: "-0.0060".
pub fn signed_score(change: f64) -> String {
    format!("{change:+.4}")
}

/// "25.00" -> "25", "0.50" -> "0.5"; text without a decimal point is left alone.
pub fn trim_zeros(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_counts_name_their_thousands() {
        let got: Vec<String> = [500.0, 1000.0, 10_000.0, 2_500_000.0, 1e6, 3e9].map(compact).to_vec();
        assert_eq!(got, ["500", "1k", "10k", "2.5M", "1M", "3G"]);
    }

    #[test]
    fn milliseconds_keep_three_significant_places() {
        assert_eq!(ms(Some(0.12345)), "0.123");
        assert_eq!(ms(Some(12.346)), "12.35");
        assert_eq!(ms(Some(123.4)), "123");
        assert_eq!(ms(None), "-");
    }

    #[test]
    fn cells_and_prose_by_unit() {
        assert_eq!(Unit::OpsPerSec.cell(Some(99.94)), "99.9");
        assert_eq!(Unit::OpsPerSec.cell(Some(1234.4)), "1234");
        assert_eq!(Unit::Ratio.cell(Some(0.9876)), "0.988");
        assert_eq!(Unit::Count.cell(Some(3.0)), "3");
        assert_eq!(Unit::Seconds.cell(None), "-");
        assert_eq!(Unit::Millis.prose(25.0), "25 ms");
        assert_eq!(Unit::Millis.prose(0.5), "0.5 ms");
        assert_eq!(Unit::OpsPerSec.prose(1200.0), "1200 ops/s");
        assert_eq!(Unit::Fraction.prose(0.0125), "1.25%");
        assert_eq!(Unit::Seconds.prose(60.0), "60 s");
        assert_eq!(Unit::Bytes.cell(Some((3u64 << 30) as f64)), "3.0 GiB");
    }

    #[test]
    fn changes_and_mixed_values() {
        assert_eq!(signed_percent(0.1), "+10.0%");
        assert_eq!(signed_percent(-0.304), "-30.4%");
        assert_eq!(signed_score(-0.006), "-0.0060");
        assert_eq!(significant(Some(1234.4)), "1234");
        assert_eq!(significant(Some(12.346)), "12.35");
        assert_eq!(significant(Some(0.12346)), "0.1235");
        assert_eq!(significant(None), "-");
        assert_eq!(trim_zeros("25.00".into()), "25");
        assert_eq!(trim_zeros("100".into()), "100");
    }
}
