//! A scripted engine for testing the harness only: programmed latencies, stalls and
//! errors, so the runner's numbers can be pinned exactly (with tokio's paused clock).
//! Hidden from `dbbench engines`; never a stand-in for a real engine.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::*;

/// The script, from `[engines.NAME.settings]` with `driver = "scripted"`, or built in code.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Script {
    /// Service time of every request, microseconds.
    pub latency_us: u64,
    /// Extra service time, uniform in [0, jitter_us), from a hash of the request number.
    pub jitter_us: u64,
    /// Mixed into that hash: another seed, another pattern of the same jitter.
    pub jitter_seed: u64,
    /// Request numbers (0-based, across all workers) that stall instead.
    pub stall_at: Vec<u64>,
    /// How long a stall lasts, milliseconds.
    pub stall_ms: u64,
    /// Every n-th request fails with `error_kind` (0: never).
    pub error_every: u64,
    pub error_kind: Option<String>,
    /// Fail `ping`, as an unreachable engine would.
    pub unreachable: bool,
    /// Ids returned by every search (to script recall).
    pub hits: Vec<u64>,
    /// Recall as a function of the `effort` search param (the driver's effort knob), as
    /// `[[effort, recall], ...]` ascending: a search at effort e gets the recall of the
    /// last entry at or below e (the first entry's below them all). It returns that share
    /// of the exact top k over what was loaded, then ids outside it. Empty: `hits`.
    pub recall_curve: Vec<(u64, f64)>,
    /// Extra service time per unit of effort, microseconds (a costlier search).
    pub latency_per_effort_us: u64,
    /// With `recall_curve`: an inserted record is stored and searchable this long after
    /// its insert returns (a deleted one goes at once), as an engine with a refresh
    /// interval would make it.
    pub visible_after_ms: u64,
    /// Makes effort a setting of the index, configured at this value (as Chroma's
    /// `ef_search` is): `set_effort` changes it, and the per-request `effort` param is
    /// not read. Absent: effort is the per-request param.
    pub index_effort: Option<u64>,
    /// The name of an environment variable which, when set, holds settings (TOML, e.g.
    /// `latency_us = 13000, jitter_seed = 2`) that replace these at open time. It stands in
    /// for an engine that changed between two runs of the same workload file (whose
    /// sha256 `compare` insists on), as a new engine build would.
    pub override_env: Option<String>,
}

/// The script of `cfg`, with the overrides of its `override_env` applied.
fn script_of(cfg: &EngineConfig) -> Result<Script, String> {
    let script: Script = parse_settings(cfg)?;
    let Some(var) = &script.override_env else { return Ok(script) };
    let Ok(text) = std::env::var(var) else { return Ok(script) };
    let bad = |why: String| format!("engines.{}.settings: {var}={text:?} is not TOML settings: {why}", cfg.name);
    let mut wrapped: toml::Table =
        toml::from_str(&format!("o = {{ {text} }}")).map_err(|e| bad(e.message().to_string()))?;
    let Some(toml::Value::Table(overrides)) = wrapped.remove("o") else {
        return Err(bad("not key = value pairs".into()));
    };
    let mut cfg = cfg.clone();
    cfg.settings.extend(overrides);
    parse_settings(&cfg)
}

/// The scripted engine's effort knob: a per-request param that shapes recall and latency.
const EFFORT: ParamDef = ParamDef {
    name: "effort",
    kind: ParamKind::Integer { min: 1, max: 1_000_000 },
    ops: params::VECTOR_SEARCH,
    summary: "scripted search effort: picks the recall of `recall_curve` and adds latency_per_effort_us",
};

pub const KIND: DriverKind = DriverKind {
    kind: "scripted",
    summary: "programmed latencies, stalls and errors, for testing dbbench itself",
    default_url: None,
    start_hint: "nothing to start",
    capabilities: Capabilities::all_native,
    params: &[EFFORT],
    validate: |cfg| script_of(cfg).map(|_| ()),
    open: |cfg| Ok(Box::new(Scripted::new(script_of(cfg)?))),
    hidden: true,
};

/// The schema, and each record stored with when it turns searchable.
type Stored = (Schema, Vec<(Record, tokio::time::Instant)>);

pub struct Scripted {
    script: Script,
    requests: AtomicU64,
    /// Per worker (`current_worker`), the names of the threads its requests came from.
    placements: Mutex<BTreeMap<usize, BTreeSet<String>>>,
    /// What was loaded and inserted, kept only with a `recall_curve` (to know the exact
    /// top k), each record with when it turns searchable.
    stored: Mutex<Option<Stored>>,
    /// The index's effort in force, with `index_effort`.
    index_now: AtomicU64,
}

impl Scripted {
    pub fn new(script: Script) -> Self {
        Scripted {
            requests: AtomicU64::new(0),
            placements: Mutex::new(BTreeMap::new()),
            stored: Mutex::new(None),
            index_now: AtomicU64::new(script.index_effort.unwrap_or(0)),
            script,
        }
    }

    /// The scripted recall at `effort`.
    fn recall_at(&self, effort: u64) -> f64 {
        let curve = &self.script.recall_curve;
        curve.iter().rev().find(|(e, _)| *e <= effort).or(curve.first()).map(|(_, r)| *r).unwrap_or(1.0)
    }

    /// `round(recall x k)` of the exact top k for `vector` (among records `filter`
    /// admits), then the farthest admitted records in place of the rest.
    fn scripted_hits(&self, vector: &[f32], k: usize, filter: Option<&Filter>, effort: u64) -> Vec<u64> {
        let stored = self.stored.lock().expect("stored lock");
        let Some((schema, records)) = stored.as_ref() else { return Vec::new() };
        let now = tokio::time::Instant::now();
        let mut ranked: Vec<(f32, u64)> = records
            .iter()
            .filter(|(_, visible)| *visible <= now)
            .map(|(r, _)| r)
            .filter(|r| filter.is_none_or(|f| f.matches(schema, &r.attributes)))
            .map(|r| (schema.metric.distance(vector, &r.vector), r.id))
            .collect();
        ranked.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let k = k.min(ranked.len());
        let exact = ((self.recall_at(effort) * k as f64).round() as usize).min(k);
        let mut hits: Vec<u64> = ranked[..exact].iter().map(|(_, id)| *id).collect();
        hits.extend(ranked.iter().rev().take(k - exact).map(|(_, id)| *id));
        hits
    }

    /// Requests executed so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The workers that requests came from, in order.
    pub fn workers_seen(&self) -> Vec<usize> {
        self.placements.lock().expect("placements lock").keys().copied().collect()
    }

    /// Per worker, the names of the threads its requests ran on (unnamed: "").
    pub fn threads_seen(&self) -> BTreeMap<usize, BTreeSet<String>> {
        self.placements.lock().expect("placements lock").clone()
    }
}

fn error_kind(name: Option<&str>) -> ErrorKind {
    match name {
        Some("unreachable") => ErrorKind::Unreachable,
        Some("timeout") => ErrorKind::Timeout,
        Some("protocol") => ErrorKind::Protocol,
        Some("unsupported") => ErrorKind::Unsupported,
        _ => ErrorKind::Rejected,
    }
}

#[async_trait]
impl Driver for Scripted {
    fn write_visibility(&self) -> String {
        match self.script.visible_after_ms {
            0 => "scripted: visible on acknowledgement".into(),
            ms => format!("scripted: an insert is searchable {ms} ms after its acknowledgement"),
        }
    }
    fn kind(&self) -> &'static str {
        "scripted"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::all_native()
    }
    async fn ping(&self) -> DriverResult<()> {
        if self.script.unreachable {
            Err(DriverError::unreachable("scripted: connection refused"))
        } else {
            Ok(())
        }
    }
    // The script shapes requests only: like the no-op engine, it stores nothing, so
    // its lifecycle is the no-op engine's.
    async fn prepare(&self, schema: &Schema) -> DriverResult<()> {
        if !self.script.recall_curve.is_empty() {
            *self.stored.lock().expect("stored lock") = Some((schema.clone(), Vec::new()));
        }
        noop::Noop.prepare(schema).await
    }
    async fn load(&self, batch: &[Record]) -> DriverResult<()> {
        if let Some((_, records)) = self.stored.lock().expect("stored lock").as_mut() {
            let now = tokio::time::Instant::now();
            records.extend(batch.iter().map(|r| (r.clone(), now)));
        }
        noop::Noop.load(batch).await
    }
    async fn load_links(&self, links: &[Link]) -> DriverResult<()> {
        noop::Noop.load_links(links).await
    }
    async fn finish_load(&self) -> DriverResult<IndexStats> {
        noop::Noop.finish_load().await
    }
    async fn execute(&self, op: &Op<'_>) -> DriverResult<Outcome> {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(w) = current_worker() {
            let thread = std::thread::current();
            let name = thread.name().unwrap_or_default();
            let mut placements = self.placements.lock().expect("placements lock");
            let seen = placements.entry(w).or_default();
            if !seen.contains(name) {
                seen.insert(name.to_string());
            }
        }
        let s = &self.script;
        let effort = match op {
            Op::Knn { .. } | Op::Hybrid { .. } if s.index_effort.is_some() => {
                Some(self.index_now.load(Ordering::Relaxed))
            }
            Op::Knn { params, .. } | Op::Hybrid { params, .. } => {
                EFFORT.integer("scripted", params)?.map(|e| e.max(0) as u64)
            }
            _ => None,
        };
        let delay = if s.stall_at.contains(&n) {
            Duration::from_millis(s.stall_ms)
        } else {
            let jitter = if s.jitter_us > 0 {
                (n ^ s.jitter_seed).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17) % s.jitter_us
            } else {
                0
            };
            Duration::from_micros(s.latency_us + jitter + effort.unwrap_or(0) * s.latency_per_effort_us)
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if s.error_every > 0 && (n + 1) % s.error_every == 0 {
            return Err(DriverError::new(
                error_kind(s.error_kind.as_deref()),
                format!("scripted error at request {n}"),
            ));
        }
        if let Some((_, records)) = self.stored.lock().expect("stored lock").as_mut() {
            match op {
                Op::Insert { record } => {
                    let visible = tokio::time::Instant::now() + Duration::from_millis(s.visible_after_ms);
                    records.push(((*record).clone(), visible));
                }
                Op::Delete { id } => records.retain(|(r, _)| r.id != *id),
                _ => {}
            }
        }
        Ok(match op {
            Op::Knn { vector, k, filter, .. } | Op::Hybrid { vector, k, filter, .. } if !s.recall_curve.is_empty() => {
                Outcome::Hits(self.scripted_hits(vector, *k, *filter, effort.unwrap_or(0)))
            }
            Op::Knn { k, .. } | Op::Text { k, .. } | Op::Hybrid { k, .. } => {
                Outcome::Hits(s.hits.iter().take(*k).copied().collect())
            }
            Op::Expand { max_results, .. } => Outcome::Hits(s.hits.iter().take(*max_results).copied().collect()),
            Op::Scan { .. } => Outcome::Hits(Vec::new()),
            Op::Get { .. } => Outcome::Found(None),
            _ => Outcome::Written(1),
        })
    }
    async fn describe(&self) -> DriverResult<EngineInfo> {
        // The script as applied, overrides included, so results say what was measured.
        let settings = match serde_json::to_value(&self.script) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => Default::default(),
        };
        Ok(EngineInfo { version: "scripted".into(), settings })
    }
    async fn cleanup(&self) -> DriverResult<()> {
        self.stored.lock().expect("stored lock").take();
        noop::Noop.cleanup().await
    }

    fn effort_knob(&self, _op: OpKind) -> Option<Knob> {
        let knob = Knob::request(EFFORT.name, 1_000_000);
        let scope = match self.script.index_effort {
            Some(configured) => KnobScope::Index { configured },
            None => KnobScope::Request,
        };
        (!self.script.recall_curve.is_empty()).then_some(Knob { scope, ..knob })
    }

    async fn set_effort(&self, value: Option<u64>) -> DriverResult<()> {
        let Some(configured) = self.script.index_effort else {
            return Err(DriverError::other("scripted: set_effort without index_effort"));
        };
        self.index_now.store(value.unwrap_or(configured), Ordering::Relaxed);
        Ok(())
    }
}
