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
use crate::format::Unit;
use crate::metric::Metric;

/// `[requirements]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequirementsSpec {
    #[serde(default)]
    pub capabilities: Vec<Spanned<String>>,
    #[serde(default)]
    pub slo: Vec<Spanned<SloSpec>>,
    /// Among the engines that fit, what ranks them (e.g. `{ phase = "knn", op = "knn",
    /// metric = "throughput_ops_s" }`). Default: the throughput of the first search op,
    /// of the first tuned phase if there is one.
    #[serde(default)]
    pub prefer: Option<Spanned<PreferSpec>>,
}

/// `[requirements] prefer = { ... }` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreferSpec {
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub op: Option<String>,
    pub metric: String,
}

/// What ranks the engines that fit: `metric` of `op` in `phase` (none for an
/// engine-wide metric), better in the metric's direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prefer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    #[serde(with = "results_spelling")]
    pub metric: Metric,
    /// True when the workload did not say and dbbench chose the default.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
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

/// How results.json spells an SLO's metric. The old `SloMetric` enum was written by
/// serde's snake_case, which runs digits into the word before them: two names came out
/// as "ndcg_at10" and "recall_at100". Files keep that spelling, so that results written
/// before and after read and write the same; both spellings are read.
mod results_spelling {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::metric::Metric;

    const LEGACY: [(Metric, &str); 2] = [(Metric::NdcgAt10, "ndcg_at10"), (Metric::RecallAt100, "recall_at100")];

    pub fn serialize<S: Serializer>(m: &Metric, s: S) -> Result<S::Ok, S::Error> {
        let legacy = LEGACY.iter().find(|(l, _)| l == m).map(|(_, name)| *name);
        s.serialize_str(legacy.unwrap_or(m.name()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Metric, D::Error> {
        let name = String::deserialize(d)?;
        LEGACY
            .iter()
            .find(|(_, l)| *l == name)
            .map(|(m, _)| *m)
            .or_else(|| Metric::from_name(&name))
            .ok_or_else(|| serde::de::Error::custom(format!("unknown metric {name:?}")))
    }
}

/// A validated service level: `metric` of `op` in `phase` must stay within `max`/`min`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    #[serde(with = "results_spelling")]
    pub metric: Metric,
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
    /// What ranks the engines that fit; absent in files written before it existed (they
    /// rank by headroom on the tightest requirement).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefer: Option<Prefer>,
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
        let metric = Metric::from_name(&slo.metric).ok_or_else(|| {
            let known: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
            e(format!("unknown metric {:?}; known: {}", slo.metric, known.join(", ")))
        })?;
        let bound = match (slo.max, slo.min) {
            (Some(v), None) | (None, Some(v)) => v,
            _ => return Err(e(format!("{}: give exactly one of max = N or min = N", metric.name()))),
        };
        if !bound.is_finite() || bound < 0.0 {
            return Err(e(format!("{}: the bound must be a finite number >= 0, not {bound}", metric.name())));
        }
        if matches!(metric.unit(), Unit::Ratio | Unit::Fraction) && bound > 1.0 {
            return Err(e(format!("{} is a fraction between 0 and 1, not {bound}", metric.name())));
        }
        check_place(metric, slo.phase.as_deref(), slo.op.as_deref(), phases).map_err(e)?;
        out.slo.push(Slo { phase: slo.phase.clone(), op: slo.op.clone(), metric, max: slo.max, min: slo.min });
    }
    out.prefer = match &spec.prefer {
        Some(p) => {
            let span = p.span();
            let pr = p.get_ref();
            let e = |m: String| err(span.clone(), format!("requirements.prefer: {m}"));
            let metric = Metric::from_name(&pr.metric).ok_or_else(|| {
                let known: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
                e(format!("unknown metric {:?}; known: {}", pr.metric, known.join(", ")))
            })?;
            check_place(metric, pr.phase.as_deref(), pr.op.as_deref(), phases).map_err(e)?;
            Some(Prefer { phase: pr.phase.clone(), op: pr.op.clone(), metric, default: false })
        }
        None => default_prefer(phases),
    };
    Ok(out)
}

/// The default ranking: throughput of the first search op of the first tuned phase, or
/// of the first phase with a search op (not a sweep: its results are named per step).
fn default_prefer(phases: &[PhasePlan]) -> Option<Prefer> {
    let plain = |p: &&PhasePlan| p.effort.is_none() || p.effort.as_ref().is_some_and(|e| e.target().is_some());
    let tuned = phases.iter().find(|p| p.effort.as_ref().is_some_and(|e| e.target().is_some()));
    let phase = tuned.or_else(|| phases.iter().filter(plain).find(|p| p.ops.iter().any(|o| o.kind.is_search())))?;
    let op = phase.ops.iter().find(|o| o.kind.is_search())?;
    Some(Prefer {
        phase: Some(phase.name.clone()),
        op: Some(op.label.clone()),
        metric: Metric::ThroughputOpsS,
        default: true,
    })
}

/// An SLO's or a preference's phase and op exist and suit the metric.
fn check_place(metric: Metric, phase: Option<&str>, op: Option<&str>, phases: &[PhasePlan]) -> Result<(), String> {
    if metric.engine_wide() {
        if phase.is_some() || op.is_some() {
            return Err(format!("{} is measured once per engine: leave out phase and op", metric.name()));
        }
        return Ok(());
    }
    if metric.phase_wide() {
        let kind = if metric.of_recovery() { "recovery" } else { "stream" };
        let Some(phase) = phase.filter(|_| op.is_none()) else {
            return Err(format!(
                "{} is measured once per {kind} phase: give phase = \"<{kind} phase>\" and no op",
                metric.name()
            ));
        };
        return match phases.iter().find(|p| p.name == phase) {
            Some(p) if metric.of_recovery() && p.recovery.is_some() => Ok(()),
            Some(p) if !metric.of_recovery() && p.stream.is_some() => Ok(()),
            Some(_) => Err(format!(
                "phase {phase:?} is not a {kind} phase ([phases.{kind}]): {} is measured there",
                metric.name()
            )),
            None => Err(format!("no phase named {phase:?}")),
        };
    }
    let (Some(phase), Some(op)) = (phase, op) else {
        return Err(format!("{} needs phase = \"<phase name>\" and op = \"<op label>\"", metric.name()));
    };
    let Some(p) = phases.iter().find(|p| p.name == phase) else {
        let names: Vec<&str> = phases.iter().map(|p| p.name.as_str()).collect();
        return Err(format!("no phase named {phase:?}; phases: {}", names.join(", ")));
    };
    if p.effort.as_ref().is_some_and(|e| e.target().is_none()) {
        return Err(format!(
            "phase {phase:?} is an effort sweep, measured once per setting; name a tuned or a plain phase"
        ));
    }
    let Some(o) = p.ops.iter().find(|o| o.label == op) else {
        let labels: Vec<&str> = p.ops.iter().map(|o| o.label.as_str()).collect();
        return Err(format!("phase {phase:?} has no op labelled {op:?}; its ops: {}", labels.join(", ")));
    };
    if metric.is_quality() && !o.kind.is_search() {
        return Err(format!(
            "{} is scored for search ops (knn, text, hybrid), and {op:?} is a {} op",
            metric.name(),
            o.kind
        ));
    }
    Ok(())
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
        assert_eq!(r.slo[0].metric, Metric::P99Ms);
        assert_eq!(r.slo[0].max, Some(25.0));
        assert_eq!(r.slo[1].phase, None);
        assert_eq!(r.slo[2].min, Some(0.95));
        let json = serde_json::to_string(&r).unwrap();
        let back: Requirements = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r, "round-trips through results.json");
    }

    #[test]
    fn slo_metrics_keep_the_spelling_results_files_have() {
        let slo = |metric: Metric| Slo { phase: None, op: None, metric, max: Some(1.0), min: None };
        let json = serde_json::to_string(&slo(Metric::NdcgAt10)).unwrap();
        assert_eq!(json, r#"{"metric":"ndcg_at10","max":1.0}"#, "as the old enum wrote it");
        assert_eq!(serde_json::to_string(&slo(Metric::RecallAt100)).unwrap(), r#"{"metric":"recall_at100","max":1.0}"#);
        assert_eq!(serde_json::to_string(&slo(Metric::P999Ms)).unwrap(), r#"{"metric":"p999_ms","max":1.0}"#);
        for name in ["ndcg_at10", "ndcg_at_10"] {
            let back: Slo = serde_json::from_str(&format!(r#"{{"metric":"{name}","max":1.0}}"#)).unwrap();
            assert_eq!(back.metric, Metric::NdcgAt10, "{name}");
        }
        assert!(serde_json::from_str::<Slo>(r#"{"metric":"p42_ms"}"#).is_err());
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

    #[test]
    fn the_preference_defaults_to_the_first_search_throughput_and_is_checked() {
        let r = parse("\n[requirements]\ncapabilities = [\"knn\"]\n").unwrap().requirements.unwrap();
        let p = r.prefer.unwrap();
        assert_eq!(
            (p.phase.as_deref(), p.op.as_deref(), p.metric, p.default),
            (Some("search"), Some("knn"), Metric::ThroughputOpsS, true)
        );

        let named = "\n[requirements]\nprefer = { phase = \"search\", op = \"knn\", metric = \"p99_ms\" }\n";
        let p = parse(named).unwrap().requirements.unwrap().prefer.unwrap();
        assert_eq!((p.metric, p.default), (Metric::P99Ms, false));

        let (line, _, msg) =
            err_of("\n[requirements]\nprefer = { phase = \"search\", op = \"get\", metric = \"ndcg_at_10\" }\n");
        assert_eq!(line, 18, "{msg}");
        assert!(msg.starts_with("requirements.prefer: ndcg_at_10 is scored for search ops"), "{msg}");
        let (_, _, msg) = err_of("\n[requirements]\nprefer = { metric = \"fastest\" }\n");
        assert!(msg.contains("requirements.prefer: unknown metric \"fastest\""), "{msg}");

        // A sweep's results are named per step: it cannot be the preference.
        let swept = BASE
            .replace("requests = 10\n", "requests = 10\neffort = [10, 20]\n")
            .replace("op = \"get\"\n", "op = \"knn\"\nlabel = \"knn2\"\n");
        let text =
            format!("{swept}\n[requirements]\nprefer = {{ phase = \"search\", op = \"knn\", metric = \"p99_ms\" }}\n");
        let err = parse_plan(Path::new("w.toml"), &text, String::new(), &Overrides::default(), |_| None).unwrap_err();
        assert!(err.to_string().contains("is an effort sweep, measured once per setting"), "{err}");
        // Nor the default: without a plain or tuned search phase there is none.
        let text = format!("{swept}\n[requirements]\ncapabilities = [\"knn\"]\n");
        let plan = parse_plan(Path::new("w.toml"), &text, String::new(), &Overrides::default(), |_| None).unwrap();
        assert_eq!(plan.requirements.unwrap().prefer, None);
    }
}
