//! The optional `[requirements]` section of a workload: what the job needs from an
//! engine (capabilities) and the service levels it must meet (`[[requirements.slo]]`).
//!
//! Validated here against the plan's phases and ops, so that a requirement naming a
//! phase or op that does not exist is an error with its file:line:column instead of a
//! requirement the report can never evaluate. The validated form is written into
//! results.json, so the report judges engines without re-reading the workload file.

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::PhasePlan;

/// `[requirements]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequirementsSpec {
    #[serde(default)]
    pub capabilities: Vec<Spanned<String>>,
    #[serde(default)]
    pub slo: Vec<Spanned<SloSpec>>,
}

/// One `[[requirements.slo]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloSpec {
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub op: Option<String>,
    pub metric: String,
    #[serde(default)]
    pub max: Option<f64>,
    #[serde(default)]
    pub min: Option<f64>,
}

/// What an engine must be able to do, judged from its recorded capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    Knn,
    /// kNN with a metadata filter applied by the engine itself.
    FilteredKnn,
    Text,
    /// Full-text search ranked by the engine (BM25 or similar), not a match filter.
    RankedText,
    Hybrid,
    Get,
    Insert,
    Update,
    Delete,
    Scan,
    Transactions,
}

impl Capability {
    pub const ALL: [Capability; 11] = [
        Capability::Knn,
        Capability::FilteredKnn,
        Capability::Text,
        Capability::RankedText,
        Capability::Hybrid,
        Capability::Get,
        Capability::Insert,
        Capability::Update,
        Capability::Delete,
        Capability::Scan,
        Capability::Transactions,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Knn => "knn",
            Capability::FilteredKnn => "filtered_knn",
            Capability::Text => "text",
            Capability::RankedText => "ranked_text",
            Capability::Hybrid => "hybrid",
            Capability::Get => "get",
            Capability::Insert => "insert",
            Capability::Update => "update",
            Capability::Delete => "delete",
            Capability::Scan => "scan",
            Capability::Transactions => "transactions",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Capability::ALL.iter().copied().find(|c| c.as_str() == s)
    }
}

/// A measured number a service level can bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SloMetric {
    P50Ms,
    P95Ms,
    P99Ms,
    P999Ms,
    ThroughputOpsS,
    RecallAtK,
    NdcgAt10,
    RecallAt100,
    ErrorRate,
    /// Time to load the dataset (engine-wide: no phase or op).
    LoadSeconds,
    /// Time to build indexes and wait until searchable (engine-wide).
    IndexSeconds,
}

impl SloMetric {
    pub const ALL: [SloMetric; 11] = [
        SloMetric::P50Ms,
        SloMetric::P95Ms,
        SloMetric::P99Ms,
        SloMetric::P999Ms,
        SloMetric::ThroughputOpsS,
        SloMetric::RecallAtK,
        SloMetric::NdcgAt10,
        SloMetric::RecallAt100,
        SloMetric::ErrorRate,
        SloMetric::LoadSeconds,
        SloMetric::IndexSeconds,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SloMetric::P50Ms => "p50_ms",
            SloMetric::P95Ms => "p95_ms",
            SloMetric::P99Ms => "p99_ms",
            SloMetric::P999Ms => "p999_ms",
            SloMetric::ThroughputOpsS => "throughput_ops_s",
            SloMetric::RecallAtK => "recall_at_k",
            SloMetric::NdcgAt10 => "ndcg_at_10",
            SloMetric::RecallAt100 => "recall_at_100",
            SloMetric::ErrorRate => "error_rate",
            SloMetric::LoadSeconds => "load_seconds",
            SloMetric::IndexSeconds => "index_seconds",
        }
    }

    /// Engine-wide metrics take no phase or op.
    pub fn engine_wide(self) -> bool {
        matches!(self, SloMetric::LoadSeconds | SloMetric::IndexSeconds)
    }

    /// Retrieval-quality metrics, meaningful for search ops only.
    pub fn is_quality(self) -> bool {
        matches!(self, SloMetric::RecallAtK | SloMetric::NdcgAt10 | SloMetric::RecallAt100)
    }

    fn parse(s: &str) -> Option<Self> {
        SloMetric::ALL.iter().copied().find(|m| m.as_str() == s)
    }
}

/// A validated service level: `metric` of `op` in `phase` must stay within `max`/`min`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    pub metric: SloMetric,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
}

/// The validated `[requirements]`: part of the `Plan` and of results.json.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Requirements {
    #[serde(default)]
    pub capabilities: Vec<Capability>,
    #[serde(default)]
    pub slo: Vec<Slo>,
}

/// Check `[requirements]` against the validated phases. `err` turns a span and a
/// message into a positioned spec error.
pub(super) fn validate_requirements<E>(
    spec: &RequirementsSpec,
    phases: &[PhasePlan],
    err: impl Fn(std::ops::Range<usize>, String) -> E,
) -> Result<Requirements, E> {
    let mut out = Requirements::default();
    for c in &spec.capabilities {
        let cap = Capability::parse(c.get_ref()).ok_or_else(|| {
            let known: Vec<&str> = Capability::ALL.iter().map(|c| c.as_str()).collect();
            err(
                c.span(),
                format!("requirements.capabilities: unknown capability {:?}; known: {}", c.get_ref(), known.join(", ")),
            )
        })?;
        if !out.capabilities.contains(&cap) {
            out.capabilities.push(cap);
        }
    }
    for s in &spec.slo {
        let span = s.span();
        let slo = s.get_ref();
        let e = |m: String| err(span.clone(), format!("requirements.slo: {m}"));
        let metric = SloMetric::parse(&slo.metric).ok_or_else(|| {
            let known: Vec<&str> = SloMetric::ALL.iter().map(|m| m.as_str()).collect();
            e(format!("unknown metric {:?}; known: {}", slo.metric, known.join(", ")))
        })?;
        let bound = match (slo.max, slo.min) {
            (Some(v), None) | (None, Some(v)) => v,
            _ => return Err(e(format!("{}: give exactly one of max = N or min = N", metric.as_str()))),
        };
        if !bound.is_finite() || bound < 0.0 {
            return Err(e(format!("{}: the bound must be a finite number >= 0, not {bound}", metric.as_str())));
        }
        if matches!(metric, SloMetric::RecallAtK | SloMetric::NdcgAt10 | SloMetric::RecallAt100 | SloMetric::ErrorRate)
            && bound > 1.0
        {
            return Err(e(format!("{} is a fraction between 0 and 1, not {bound}", metric.as_str())));
        }
        if metric.engine_wide() {
            if slo.phase.is_some() || slo.op.is_some() {
                return Err(e(format!("{} is measured once per engine: leave out phase and op", metric.as_str())));
            }
        } else {
            let (Some(phase), Some(op)) = (&slo.phase, &slo.op) else {
                return Err(e(format!("{} needs phase = \"<phase name>\" and op = \"<op label>\"", metric.as_str())));
            };
            let Some(p) = phases.iter().find(|p| &p.name == phase) else {
                let names: Vec<&str> = phases.iter().map(|p| p.name.as_str()).collect();
                return Err(e(format!("no phase named {phase:?}; phases: {}", names.join(", "))));
            };
            let Some(o) = p.ops.iter().find(|o| &o.label == op) else {
                let labels: Vec<&str> = p.ops.iter().map(|o| o.label.as_str()).collect();
                return Err(e(format!("phase {phase:?} has no op labelled {op:?}; its ops: {}", labels.join(", "))));
            };
            if metric.is_quality() && !o.kind.is_search() {
                return Err(e(format!(
                    "{} is scored for search ops (knn, text, hybrid), and {op:?} is a {} op",
                    metric.as_str(),
                    o.kind
                )));
            }
        }
        out.slo.push(Slo { phase: slo.phase.clone(), op: slo.op.clone(), metric, max: slo.max, min: slo.min });
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use std::path::Path;

    use super::*;
    use crate::error::Error;
    use crate::spec::{parse_plan, Overrides, Plan};

    const BASE: &str = r#"[workload]
name = "t"

[dataset]
source = "synthetic"

[engines.sqlite]

[[phases]]
name = "search"
requests = 10
[[phases.ops]]
op = "knn"
[[phases.ops]]
op = "get"
"#;

    fn parse(extra: &str) -> crate::Result<Plan> {
        let text = format!("{BASE}{extra}");
        parse_plan(Path::new("w.toml"), &text, String::new(), &Overrides::default(), |_| None)
    }

    fn err_of(extra: &str) -> (usize, usize, String) {
        match parse(extra) {
            Err(Error::Spec { line, column, message, .. }) => (line, column, message),
            other => panic!("expected a spec error, got {other:?}"),
        }
    }

    #[test]
    fn requirements_are_optional_and_validated_into_the_plan() {
        assert_eq!(parse("").unwrap().requirements, None);
        let plan = parse(
            r#"
[requirements]
capabilities = ["filtered_knn", "ranked_text", "filtered_knn"]
[[requirements.slo]]
phase = "search"
op = "knn"
metric = "p99_ms"
max = 25.0
[[requirements.slo]]
metric = "load_seconds"
max = 60
[[requirements.slo]]
phase = "search"
op = "knn"
metric = "recall_at_k"
min = 0.95
"#,
        )
        .unwrap();
        let r = plan.requirements.unwrap();
        assert_eq!(r.capabilities, vec![Capability::FilteredKnn, Capability::RankedText], "duplicates dropped");
        assert_eq!(r.slo.len(), 3);
        assert_eq!(r.slo[0].metric, SloMetric::P99Ms);
        assert_eq!(r.slo[0].max, Some(25.0));
        assert_eq!(r.slo[1].phase, None);
        assert_eq!(r.slo[2].min, Some(0.95));
        let json = serde_json::to_string(&r).unwrap();
        let back: Requirements = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r, "round-trips through results.json");
    }

    #[test]
    fn bad_requirements_name_their_place() {
        let (line, column, msg) = err_of("\n[requirements]\ncapabilities = [\"knn\", \"teleport\"]\n");
        assert_eq!((line, column), (18, 24), "{msg}");
        assert!(msg.contains("unknown capability \"teleport\""), "{msg}");

        let slo = |body: &str| format!("\n[[requirements.slo]]\n{body}\n");
        let (line, _, msg) = err_of(&slo("phase = \"nope\"\nop = \"knn\"\nmetric = \"p99_ms\"\nmax = 1"));
        assert_eq!(line, 17, "{msg}: the [[requirements.slo]] table");
        assert!(msg.contains("no phase named \"nope\"; phases: search"), "{msg}");

        let (_, _, msg) = err_of(&slo("phase = \"search\"\nop = \"scan\"\nmetric = \"p99_ms\"\nmax = 1"));
        assert!(msg.contains("no op labelled \"scan\"; its ops: knn, get"), "{msg}");

        let (_, _, msg) = err_of(&slo("phase = \"search\"\nop = \"get\"\nmetric = \"recall_at_k\"\nmin = 0.9"));
        assert!(msg.contains("scored for search ops"), "{msg}");

        let (_, _, msg) = err_of(&slo("phase = \"search\"\nop = \"knn\"\nmetric = \"p99_ms\"\nmax = 1\nmin = 0"));
        assert!(msg.contains("exactly one of max"), "{msg}");

        let (_, _, msg) = err_of(&slo("phase = \"search\"\nop = \"knn\"\nmetric = \"p98_ms\"\nmax = 1"));
        assert!(msg.contains("unknown metric \"p98_ms\""), "{msg}");

        let (_, _, msg) = err_of(&slo("phase = \"search\"\nmetric = \"load_seconds\"\nmax = 1"));
        assert!(msg.contains("leave out phase and op"), "{msg}");

        let (_, _, msg) = err_of(&slo("metric = \"p99_ms\"\nmax = 1"));
        assert!(msg.contains("needs phase"), "{msg}");

        let (_, _, msg) = err_of(&slo("phase = \"search\"\nop = \"knn\"\nmetric = \"recall_at_k\"\nmin = 95"));
        assert!(msg.contains("fraction between 0 and 1"), "{msg}");

        let (line, _, msg) = err_of("\n[requirements]\nspeed = \"fast\"\n");
        assert_eq!(line, 18, "{msg}");
        assert!(msg.contains("unknown field `speed`"), "{msg}");
    }
}
