//! The verdict: each engine judged against the workload's `[requirements]` from the
//! numbers results.json holds, with the margin of every pass and failure.
//!
//! It must never recommend on a number it did not measure: a requirement whose number is
//! absent (engine skipped, op unsupported, too few requests for the percentile) is "not
//! measured", and an engine with any such requirement does not fit. Without
//! requirements there is no recommendation, only a per-op summary of who was fastest,
//! labelled as such.

use serde_json::Value;

use crate::metric::Direction;
use crate::results::{EngineResult, EngineStatus, OpResult, OpStatus, RunResults};
use crate::spec::{Capability, Prefer, Requirements, Slo};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    NotMeasured,
}

impl Outcome {
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "FAIL",
            Outcome::NotMeasured => "not measured",
        }
    }
}

/// One requirement judged for one engine.
#[derive(Debug, Clone)]
pub struct Check {
    /// The requirement in words, e.g. "search / knn: p99 <= 25 ms".
    pub requirement: String,
    pub outcome: Outcome,
    /// The evidence, e.g. "p99 18.2 ms <= 25 ms, 27% headroom".
    pub detail: String,
    /// Relative margin of an SLO (positive = room left), for ordering engines that fit.
    pub margin: Option<f64>,
    /// An SLO's measured value, and that value in words, to see when it decides nothing.
    pub value: Option<f64>,
    pub shown: Option<String>,
}

#[derive(Debug, Clone)]
pub struct EngineVerdict {
    pub engine: String,
    pub status: EngineStatus,
    pub checks: Vec<Check>,
}

impl EngineVerdict {
    pub fn fits(&self) -> bool {
        self.checks.iter().all(|c| c.outcome == Outcome::Pass)
    }

    /// The smallest SLO margin (the requirement it is closest to failing).
    pub fn tightest(&self) -> Option<&Check> {
        self.checks
            .iter()
            .filter(|c| c.margin.is_some())
            .min_by(|a, b| a.margin.partial_cmp(&b.margin).unwrap_or(std::cmp::Ordering::Equal))
    }

    /// The requirements it fails or that were not measured, in words.
    /// Unmeasured requirements that share a reason are named together.
    pub fn shortfalls(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .checks
            .iter()
            .filter(|c| c.outcome == Outcome::Fail)
            .map(|c| format!("{}: {}", c.requirement, c.detail))
            .collect();
        let mut unmeasured: Vec<(&str, Vec<&str>)> = Vec::new();
        for c in self.checks.iter().filter(|c| c.outcome == Outcome::NotMeasured) {
            match unmeasured.iter_mut().find(|(d, _)| *d == c.detail) {
                Some((_, reqs)) => reqs.push(&c.requirement),
                None => unmeasured.push((&c.detail, vec![&c.requirement])),
            }
        }
        for (detail, reqs) in unmeasured {
            out.push(format!("not measured ({detail}): {}", reqs.join(", ")));
        }
        out
    }
}

/// Fastest engine for one op, when there are no requirements.
#[derive(Debug, Clone)]
pub struct Winner {
    pub phase: String,
    pub op: String,
    pub engine: Option<String>,
    /// "p99", or "p50" when no engine had enough requests for p99.
    pub by: &'static str,
    pub value_ms: Option<f64>,
    pub note: String,
}

#[derive(Debug, Clone)]
pub struct Verdict {
    pub requirements: Option<Requirements>,
    pub engines: Vec<EngineVerdict>,
    /// Engines meeting every requirement, the most headroom on their tightest
    /// requirement first.
    pub fit: Vec<String>,
    /// The verdict in one or two sentences.
    pub headline: String,
    /// One line per engine: why it fits, or what it fails.
    pub reasons: Vec<String>,
    /// Without requirements: the fastest engine per op (not a recommendation).
    pub winners: Vec<Winner>,
}

pub fn evaluate(r: &RunResults) -> Verdict {
    let Some(req) = r.run.requirements.clone().filter(|q| !q.capabilities.is_empty() || !q.slo.is_empty()) else {
        let winners = winners(r);
        return Verdict {
            requirements: None,
            engines: Vec::new(),
            fit: Vec::new(),
            headline:
                "No recommendation: the workload states no [requirements], so no engine can be judged fit or unfit. \
                       Below is the fastest engine per op by p99 latency, which is not a recommendation."
                    .into(),
            reasons: Vec::new(),
            winners,
        };
    };
    let tuned = tuned_phases(r);
    let engines: Vec<EngineVerdict> = r
        .engines
        .iter()
        .map(|e| {
            let mut checks: Vec<Check> = req.capabilities.iter().map(|c| capability_check(e, *c)).collect();
            checks.extend(tuned.iter().map(|(phase, target, k)| tuning_check(e, phase, *target, *k)));
            checks.extend(req.slo.iter().map(|s| slo_check(e, s, k_of(r, s))));
            EngineVerdict { engine: e.name.clone(), status: e.status, checks }
        })
        .collect();
    let mut fitting: Vec<&EngineVerdict> = engines.iter().filter(|v| v.fits()).collect();
    // Most room on the tightest requirement first; engines judged on capabilities alone
    // (no margin) keep their run order after those. The preference, when there is one,
    // then ranks them (a stable sort: engines it cannot tell apart keep that order).
    fitting.sort_by(|a, b| {
        let ma = a.tightest().and_then(|c| c.margin).unwrap_or(f64::NEG_INFINITY);
        let mb = b.tightest().and_then(|c| c.margin).unwrap_or(f64::NEG_INFINITY);
        mb.partial_cmp(&ma).unwrap_or(std::cmp::Ordering::Equal)
    });
    let ranking = req.prefer.as_ref().map(|p| rank(r, p, &mut fitting));
    let fit: Vec<String> = fitting.iter().map(|v| v.engine.clone()).collect();
    let n = req.capabilities.len() + tuned.len() + req.slo.len();
    let mut reasons = Vec::new();
    if let Some(line) = ranking.as_ref().and_then(|x| x.line.clone()) {
        reasons.push(line);
    }
    reasons.extend(saturated(&fitting));
    for v in &fitting {
        let tight = v.tightest().map(|c| format!("; tightest: {} ({})", c.requirement, c.detail)).unwrap_or_default();
        reasons.push(format!("{} fits: meets all {n} requirements{tight}.", v.engine));
    }
    for v in engines.iter().filter(|v| !v.fits()) {
        let status = match v.status {
            EngineStatus::Skipped => " (skipped)",
            EngineStatus::Failed => " (failed)",
            EngineStatus::Ok => "",
        };
        reasons.push(format!("{}{status} does not fit: {}.", v.engine, v.shortfalls().join("; ")));
    }
    let headline = match (fit.len(), ranking.as_ref().and_then(|x| x.margin.clone())) {
        (0, _) => format!("No engine meets all {n} requirements of this workload."),
        (1, _) => format!("Recommended: {}, the only engine that meets all {n} requirements.", fit[0]),
        (_, Some(margin)) => format!(
            "Recommended: {} (meets all {n} requirements; {margin}); runner-up {}{}.",
            fit[0],
            fit[1],
            if fit.len() > 2 { format!("; also fit: {}", fit[2..].join(", ")) } else { String::new() }
        ),
        (_, None) => format!(
            "Recommended: {} (meets all {n} requirements with the most headroom); also fit: {}.",
            fit[0],
            fit[1..].join(", ")
        ),
    };
    let headline = if r.run.complete {
        headline
    } else {
        format!(
            "{headline} Caution: this run is incomplete ({}).",
            r.run.incomplete_reason.as_deref().unwrap_or("reason not recorded")
        )
    };
    Verdict { requirements: Some(req), engines, fit, headline, reasons, winners: Vec::new() }
}

/// How the preference ranked the engines that fit.
struct Ranking {
    /// "throughput 3,261 ops/s against pgvector's 1,020 (x3.20)": the winner's margin
    /// over the runner-up, when both were measured and differ.
    margin: Option<String>,
    /// The ranking in a sentence, or why it decided nothing.
    line: Option<String>,
}

/// Sort `fitting` by the preferred metric, best first (engines without a value last,
/// in their order), and say by how much the first beats the second.
fn rank(r: &RunResults, p: &Prefer, fitting: &mut [&EngineVerdict]) -> Ranking {
    let value = |v: &EngineVerdict| -> Option<f64> {
        let e = r.engines.iter().find(|e| e.name == v.engine)?;
        if p.metric.engine_wide() {
            return p.metric.read_engine(e).ok();
        }
        let phase = e.phases.iter().find(|x| Some(x.name.as_str()) == p.phase.as_deref() && x.repetition <= 1)?;
        let op = phase.ops.iter().find(|o| Some(o.label.as_str()) == p.op.as_deref())?;
        p.metric.read(op).ok()
    };
    let higher = p.metric.direction() == Direction::HigherIsBetter;
    fitting.sort_by(|a, b| match (value(a), value(b)) {
        (Some(x), Some(y)) if higher => y.partial_cmp(&x).unwrap_or(std::cmp::Ordering::Equal),
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    let place = match (&p.phase, &p.op) {
        (Some(ph), Some(op)) => format!("{ph} / {op}"),
        _ => "the engine".into(),
    };
    let what = format!("{} of {place}", p.metric.prose(None));
    let chosen = if p.default { " (the default: the first search op's throughput)" } else { "" };
    let [first, second, ..] = &fitting[..] else {
        return Ranking { margin: None, line: None };
    };
    match (value(first), value(second)) {
        (Some(a), Some(b)) if (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0) => Ranking {
            margin: None,
            line: Some(format!(
                "Ranked by {what}{chosen}: {} and {} are level at {}, so it decides nothing between them; \
                 they keep the order of headroom on their tightest requirement.",
                first.engine,
                second.engine,
                p.metric.prose_value(a)
            )),
        },
        (Some(a), Some(b)) => {
            let by = if higher && b > 0.0 {
                format!("x{:.2}", a / b)
            } else if !higher && b > 0.0 {
                format!("{:.0}% lower", (1.0 - a / b) * 100.0)
            } else {
                "ahead".into()
            };
            let margin = format!(
                "{what} {} against {}'s {} ({by})",
                p.metric.prose_value(a),
                second.engine,
                p.metric.prose_value(b)
            );
            Ranking {
                line: Some(format!("Ranked by {what}{chosen}: {} first, {margin}.", first.engine)),
                margin: Some(margin),
            }
        }
        _ => Ranking {
            margin: None,
            line: Some(format!(
                "Ranked by {what}{chosen}: not measured for every engine that fits, so those without it come last."
            )),
        },
    }
}

/// The requirements every engine that fits meets with the same value (recall 1.000
/// everywhere): they decide nothing between them, and the verdict says so.
fn saturated(fitting: &[&EngineVerdict]) -> Vec<String> {
    let [first, rest @ ..] = fitting else { return Vec::new() };
    if rest.is_empty() {
        return Vec::new();
    }
    first
        .checks
        .iter()
        .enumerate()
        .filter(|(_, c)| c.value.is_some())
        .filter(|(i, c)| rest.iter().all(|v| v.checks.get(*i).and_then(|x| x.value) == c.value))
        .map(|(_, c)| {
            format!(
                "{}: every engine that fits measured the same ({}), so it decides nothing between them.",
                c.requirement,
                c.shown.as_deref().unwrap_or("")
            )
        })
        .collect()
}

/// (phase, target recall, k) of every tuned phase any engine ran, in run order.
fn tuned_phases(r: &RunResults) -> Vec<(String, f64, Option<usize>)> {
    let mut out: Vec<(String, f64, Option<usize>)> = Vec::new();
    for p in r.engines.iter().flat_map(|e| e.phases.iter()) {
        if let Some(t) = &p.tuning {
            if !out.iter().any(|(n, _, _)| *n == p.name) {
                out.push((p.name.clone(), t.target_recall, p.ops.first().and_then(|o| o.k)));
            }
        }
    }
    out
}

/// A tuned phase passes when the tuner reached its target; an engine that could not is
/// reported with its best recall, never as passing.
fn tuning_check(e: &EngineResult, phase: &str, target: f64, k: Option<usize>) -> Check {
    let k = k.map(|k| k.to_string()).unwrap_or_else(|| "k".into());
    let requirement = format!("{phase}: tuned to recall@{k} >= {target}");
    let (outcome, detail) = match e.phases.iter().find(|p| p.name == phase) {
        _ if e.status == EngineStatus::Skipped => (Outcome::NotMeasured, "engine skipped".to_string()),
        None => (Outcome::NotMeasured, format!("phase {phase} was not run")),
        Some(p) => match &p.tuning {
            Some(t) if t.reached => (Outcome::Pass, t.summary()),
            Some(t) => (Outcome::Fail, t.summary()),
            None => (Outcome::NotMeasured, format!("phase {phase} was not tuned")),
        },
    };
    Check { requirement, outcome, detail, margin: None, value: None, shown: None }
}

/// (support, note) of one op kind in a recorded capabilities object.
fn support_of(caps: &Value, path: &[&str]) -> (String, Option<String>) {
    let mut v = caps;
    for p in path {
        v = match v.get(p) {
            Some(x) => x,
            None => return ("no".into(), None),
        };
    }
    let support = v.get("support").and_then(Value::as_str).unwrap_or("no").to_string();
    let note = v.get("note").and_then(Value::as_str).map(str::to_string);
    (support, note)
}

fn capability_check(e: &EngineResult, cap: Capability) -> Check {
    let requirement = format!("capability {}", cap.as_str());
    let check = |outcome, detail: String| Check {
        requirement: requirement.clone(),
        outcome,
        detail,
        margin: None,
        value: None,
        shown: None,
    };
    let op_support = |kind: &str| support_of(&e.capabilities, &["ops", kind]);
    let with_note = |what: &str, note: &Option<String>| match note {
        Some(n) => format!("{what}: {n}"),
        None => what.to_string(),
    };
    // An op kind the engine runs at all: native, client-side (dbbench fuses or filters,
    // noted) or partial (weaker semantics, noted) all run it.
    let runs = |kind: &str| {
        let (s, note) = op_support(kind);
        match s.as_str() {
            "native" => check(Outcome::Pass, format!("{kind}: native")),
            "client" => check(Outcome::Pass, with_note(&format!("{kind}: done client-side by dbbench"), &note)),
            "partial" => check(Outcome::Pass, with_note(&format!("{kind}: partial support"), &note)),
            _ => check(Outcome::Fail, format!("{kind} is not supported by driver {}", e.driver)),
        }
    };
    match cap {
        Capability::Knn => runs("knn"),
        Capability::Text => runs("text"),
        Capability::Hybrid => runs("hybrid"),
        Capability::Get => runs("get"),
        Capability::Insert => runs("insert"),
        Capability::Update => runs("update"),
        Capability::Delete => runs("delete"),
        Capability::Scan => runs("scan"),
        Capability::RankedText => {
            let (s, note) = op_support("text");
            match s.as_str() {
                "native" => check(Outcome::Pass, "text ranked by the engine".into()),
                "client" | "partial" => check(
                    Outcome::Fail,
                    with_note(&format!("text is {s} support, not ranking done by the engine"), &note),
                ),
                _ => check(Outcome::Fail, format!("text is not supported by driver {}", e.driver)),
            }
        }
        Capability::FilteredKnn => {
            let (k, _) = op_support("knn");
            let (f, note) = support_of(&e.capabilities, &["filters"]);
            if k == "no" {
                check(Outcome::Fail, format!("knn is not supported by driver {}", e.driver))
            } else if f == "native" {
                check(Outcome::Pass, "the engine applies filters during kNN".into())
            } else if f == "no" {
                check(Outcome::Fail, "filters are not supported".into())
            } else {
                check(
                    Outcome::Fail,
                    with_note(&format!("filters are {f} support, not applied by the engine (recall and latency change under filtering)"), &note),
                )
            }
        }
        Capability::Transactions => match e.capabilities.get("transactions").and_then(Value::as_bool) {
            Some(true) => check(Outcome::Pass, "writes run in transactions".into()),
            _ => check(Outcome::Fail, "writes do not run in transactions".into()),
        },
    }
}

/// Where an SLO's number comes from, or why it is absent.
fn measured(e: &EngineResult, s: &Slo) -> Result<(f64, String), String> {
    if e.status == EngineStatus::Skipped {
        // The reason and the start hint are shown once, with the engine.
        return Err("engine skipped".into());
    }
    if s.metric.engine_wide() {
        return s.metric.read_engine(e).map(|v| (v, String::new()));
    }
    let phase = s.phase.as_deref().unwrap_or("");
    let label = s.op.as_deref().unwrap_or("");
    let Some(p) = e.phases.iter().find(|p| p.name == phase) else {
        return Err(match e.status {
            EngineStatus::Failed => {
                format!("engine failed before phase {phase}: {}", e.reason.as_deref().unwrap_or(""))
            }
            _ => format!("phase {phase} was not run"),
        });
    };
    if s.metric.phase_wide() {
        let suffix = if p.complete { String::new() } else { " (phase incomplete)".to_string() };
        return s.metric.read_phase(p).map(|v| (v, suffix));
    }
    let Some(o) = p.ops.iter().find(|o| o.label == label) else {
        return Err(format!("op {label} was not run in phase {phase}"));
    };
    let mut suffix = if p.complete { String::new() } else { " (phase incomplete)".to_string() };
    if let Some(t) = &p.tuning {
        suffix.push_str(&format!(" at {}", t.chosen.setting()));
    }
    s.metric.read(o).map(|v| (v, suffix))
}

/// The k of an SLO's op, from whichever engine ran it (a skipped engine has no ops).
fn k_of(r: &RunResults, s: &Slo) -> Option<usize> {
    r.engines
        .iter()
        .flat_map(|e| e.phases.iter())
        .filter(|p| Some(p.name.as_str()) == s.phase.as_deref())
        .flat_map(|p| p.ops.iter())
        .find(|o| Some(o.label.as_str()) == s.op.as_deref())
        .and_then(|o| o.k)
}

fn slo_check(e: &EngineResult, s: &Slo, k: Option<usize>) -> Check {
    let name = s.metric.prose(k);
    let (op, bound) = match (s.max, s.min) {
        (Some(max), _) => ("<=", max),
        (None, Some(min)) => (">=", min),
        (None, None) => ("?", 0.0),
    };
    let place = match (&s.phase, &s.op) {
        (Some(p), Some(o)) => format!("{p} / {o}: "),
        (Some(p), None) => format!("{p}: "),
        _ => String::new(),
    };
    let requirement = format!("{place}{name} {op} {}", s.metric.prose_value(bound));
    match measured(e, s) {
        Err(why) => {
            Check { requirement, outcome: Outcome::NotMeasured, detail: why, margin: None, value: None, shown: None }
        }
        Ok((v, suffix)) => {
            let (pass, margin) = if s.max.is_some() {
                (v <= bound, (bound > 0.0).then(|| (bound - v) / bound))
            } else {
                (v >= bound, (bound > 0.0).then(|| (v - bound) / bound))
            };
            let shown = s.metric.prose_value(v);
            let limit = s.metric.prose_value(bound);
            let cmp = match (s.max.is_some(), pass) {
                (true, true) => "<=",
                (true, false) => ">",
                (false, true) => ">=",
                (false, false) => "<",
            };
            let words = match (margin, s.max.is_some(), pass) {
                (None, _, _) => String::new(),
                (Some(m), true, true) => format!(", {:.0}% headroom", m * 100.0),
                (Some(m), true, false) => format!(", {:.0}% over", -m * 100.0),
                (Some(m), false, true) => format!(", {:.1}% above the minimum", m * 100.0),
                (Some(m), false, false) => format!(", {:.1}% short", -m * 100.0),
            };
            Check {
                requirement,
                outcome: if pass { Outcome::Pass } else { Outcome::Fail },
                detail: format!("{name} {shown} {cmp} {limit}{words}{suffix}"),
                margin,
                value: Some(v),
                shown: Some(format!("{name} {shown}")),
            }
        }
    }
}

fn winners(r: &RunResults) -> Vec<Winner> {
    let mut out = Vec::new();
    for p in super::phase_views(r) {
        for o in &p.ops {
            let ran: Vec<(&EngineResult, &OpResult)> =
                o.engines.iter().copied().filter(|(_, op)| op.status == OpStatus::Ok && op.count > 0).collect();
            let by_p99: Vec<(&EngineResult, &OpResult, f64)> =
                ran.iter().filter_map(|(e, op)| op.latency_ms.p99.map(|v| (*e, *op, v))).collect();
            let (by, candidates) = if by_p99.is_empty() {
                ("p50", ran.iter().filter_map(|(e, op)| op.latency_ms.p50.map(|v| (*e, *op, v))).collect::<Vec<_>>())
            } else {
                ("p99", by_p99)
            };
            let best = candidates.iter().min_by(|a, b| a.2.partial_cmp(&b.2).unwrap_or(std::cmp::Ordering::Equal));
            let Some((e, op, v)) = best else {
                out.push(Winner {
                    phase: p.name.clone(),
                    op: o.label.clone(),
                    engine: None,
                    by: "p99",
                    value_ms: None,
                    note: "no engine measured this op".into(),
                });
                continue;
            };
            let mut notes = Vec::new();
            if by == "p50" {
                notes.push("too few requests for p99 on every engine".to_string());
            }
            if candidates.len() == 1 {
                notes.push("the only engine measured".to_string());
            }
            if let Some(rec) = op.quality.recall_at_k {
                let mut s = format!("recall@{} {rec:.3}", op.k.unwrap_or(0));
                let better = ran
                    .iter()
                    .filter_map(|(e2, o2)| o2.quality.recall_at_k.map(|x| (e2, x)))
                    .filter(|(_, x)| *x > rec + 1e-9)
                    .max_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal));
                if let Some((e2, x)) = better {
                    s.push_str(&format!(", lower than {} ({x:.3})", e2.name));
                }
                notes.push(s);
            }
            if let Some(n) = op.quality.ndcg_at_10 {
                notes.push(format!("nDCG@10 {n:.3}"));
            }
            if op.errors > 0 {
                notes.push(format!("{} errors", op.errors));
            }
            out.push(Winner {
                phase: p.name.clone(),
                op: o.label.clone(),
                engine: Some(e.name.clone()),
                by,
                value_ms: Some(*v),
                note: notes.join("; "),
            });
        }
    }
    out
}
