//! The `Driver` trait every engine implements, its capabilities, and the registry that
//! turns an `[engines.NAME]` table of a workload into a live driver.
//!
//! A driver must never touch data it did not create: it works only inside its own
//! namespace (a schema, table prefix, collection or index name marked as dbbench's).
//! Credentials come from URLs or the environment and never reach results or reports:
//! `redact_url` is the one place that strips them.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::Serialize;

pub use crate::error::{DriverError, DriverResult, ErrorKind};

tokio::task_local! {
    /// Which of a phase's workers sends the current request (0-based); set by the runner
    /// around each worker task.
    static WORKER: usize;
}

/// The worker sending the current request, inside a measured or warmup phase. A driver
/// with a connection pool uses it to give each worker the same connection every time, as
/// a real client keeps its session (and pgbench each of its clients).
pub fn current_worker() -> Option<usize> {
    WORKER.try_with(|w| *w).ok()
}

/// Run `f` as worker `w` (see `current_worker`).
pub async fn as_worker<F: std::future::Future>(w: usize, f: F) -> F::Output {
    WORKER.scope(w, f).await
}

pub mod chroma;
pub mod elasticsearch;
pub mod neo4j;
pub mod noop;
pub mod op;
pub mod params;
pub mod pgvector;
#[cfg(any(feature = "qdrant", feature = "qdrant-edge"))]
pub mod qdrant;
/// The embedded Qdrant driver under its older path.
#[cfg(feature = "qdrant-edge")]
pub use qdrant::edge as qdrant_edge;
pub mod scripted;
pub mod shared;
pub mod sql_filter;
pub mod sqlite;

pub use op::*;
pub use params::{ParamDef, ParamKind, ParamUse};

/// How a driver supports one kind of op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "support", content = "note", rename_all = "snake_case")]
pub enum Support {
    /// The engine does it itself.
    Native,
    /// Done with help on the client side (e.g. hybrid fused by dbbench): the note says
    /// how, and reports show it.
    Client(&'static str),
    /// Something weaker than the op asks for (e.g. text as a filter without ranking):
    /// the note says what; it runs, and reports show the note next to its numbers.
    Partial(&'static str),
    /// Cannot run it; reported as unsupported, never emulated.
    No,
}

impl Support {
    pub fn runs(&self) -> bool {
        !matches!(self, Support::No)
    }
    pub fn note(&self) -> Option<&'static str> {
        match self {
            Support::Client(n) | Support::Partial(n) => Some(n),
            _ => None,
        }
    }
}

/// What a driver can do.
#[derive(Debug, Clone, Serialize)]
pub struct Capabilities {
    pub ops: BTreeMap<OpKind, Support>,
    /// Whether search ops accept a `Filter`.
    pub filters: Support,
    /// Whether writes run in real transactions.
    pub transactions: bool,
}

impl Capabilities {
    /// All ops native, filters native, transactions: the embedded engine's profile.
    pub fn all_native() -> Self {
        Capabilities {
            ops: OpKind::ALL.iter().map(|k| (*k, Support::Native)).collect(),
            filters: Support::Native,
            transactions: true,
        }
    }

    pub fn support(&self, kind: OpKind) -> &Support {
        self.ops.get(&kind).unwrap_or(&Support::No)
    }

    /// Can the driver run this op kind, with or without a filter? `Err` says why not.
    pub fn check(&self, kind: OpKind, filtered: bool) -> Result<(), String> {
        if !self.support(kind).runs() {
            return Err(format!("{kind} is not supported"));
        }
        if filtered && kind.is_search() && !self.filters.runs() {
            return Err(format!("filtered {kind} is not supported"));
        }
        Ok(())
    }
}

/// Figures from `finish_load`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IndexStats {
    /// Records the engine reports holding after the load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<u64>,
    /// Bytes on disk or in memory, if the engine says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// Anything else worth keeping (index kind, segments, plan of a sample query...).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, serde_json::Value>,
}

/// What an engine is: version and effective settings, for the run's conditions.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EngineInfo {
    pub version: String,
    /// Settings as the driver applied them, credentials redacted.
    pub settings: serde_json::Map<String, serde_json::Value>,
}

/// One engine. All methods take `&self` so one driver serves every worker; drivers keep
/// their connection pools inside.
///
/// Timing rule: the runner times `execute` from call to return, so `execute` must be one
/// request and one round trip (or the engine's native equivalent), with no setup work
/// that could have been done in `prepare`.
#[async_trait]
pub trait Driver: Send + Sync {
    /// The driver's kind (`sqlite`, `pgvector`, ...).
    fn kind(&self) -> &'static str;

    fn capabilities(&self) -> Capabilities;

    /// Check that the engine answers. Fails with `ErrorKind::Unreachable` when it does not.
    async fn ping(&self) -> DriverResult<()>;

    /// Create dbbench's own namespace for `schema`, dropping a previous one that dbbench
    /// created for the same collection name.
    async fn prepare(&self, schema: &Schema) -> DriverResult<()>;

    async fn load(&self, batch: &[Record]) -> DriverResult<()>;

    /// Store links between loaded records (called after every record is loaded and before
    /// `finish_load`, only when the schema has `links` and the driver supports
    /// `OpKind::Expand`). Each pair comes once, `a < b`; the links are undirected.
    async fn load_links(&self, _links: &[Link]) -> DriverResult<()> {
        Err(DriverError::unsupported(format!("{} stores no links (expand is not supported)", self.kind())))
    }

    /// Build or refresh indexes and return once everything loaded is searchable.
    async fn finish_load(&self) -> DriverResult<IndexStats>;

    /// Run one request.
    async fn execute(&self, op: &Op<'_>) -> DriverResult<Outcome>;

    async fn describe(&self) -> DriverResult<EngineInfo>;

    /// What the driver's writes promise about when a search sees them, as configured
    /// (Elasticsearch's `refresh`, Qdrant's `wait`, a SQL commit); recorded beside the
    /// freshness a stream phase measures.
    fn write_visibility(&self) -> String {
        "not stated by the driver".into()
    }

    /// Drop only what `prepare` created.
    async fn cleanup(&self) -> DriverResult<()>;

    /// Take up dbbench's collection for `schema` as an earlier `prepare` and load left it
    /// (after the engine restarted, or from another process), without dropping or
    /// creating anything; refuse a same-named object without dbbench's marker, as
    /// `prepare` does. Recovery phases need it.
    async fn attach(&self, _schema: &Schema) -> DriverResult<()> {
        Err(DriverError::unsupported(format!("{} cannot attach to an existing collection", self.kind())))
    }

    /// Records the collection holds now, as the engine counts them.
    async fn count(&self) -> DriverResult<u64> {
        Err(DriverError::unsupported(format!("{} cannot count its records", self.kind())))
    }

    /// Whether what `finish_load` builds (indexes, refresh) is all there, as a driver
    /// attached to the collection from another process sees it: the shards of a sharded
    /// run that do not load wait for it. Engines that index as they load have nothing to
    /// wait for once the records are counted.
    async fn index_ready(&self) -> DriverResult<bool> {
        Ok(true)
    }

    /// Let go of the engine's files and connections without dropping any data, so another
    /// process (or a new driver) can open them; the driver is not used afterwards.
    /// Embedded engines must implement it; a server's driver has nothing to release.
    async fn close(&self) -> DriverResult<()> {
        Ok(())
    }

    /// What an acknowledged write promises to survive, as the engine is configured
    /// (PostgreSQL's `fsync` and `synchronous_commit`, SQLite's `synchronous`,
    /// Elasticsearch's translog durability...); recorded beside the writes a crash lost.
    async fn durability(&self) -> String {
        "not stated by the driver".into()
    }

    /// How the engine serving dbbench's collection is laid out (nodes, shards, replicas),
    /// as the engine reports it after the load; `None` for a single process with nothing
    /// to say. Recorded in results.json and shown beside the engine's figures.
    async fn topology(&self) -> DriverResult<Option<Topology>> {
        Ok(None)
    }

    /// Back dbbench's collection up with the engine's own tool into `target.dir` (a
    /// folder dbbench created for it, empty) or, for a server-side snapshot, into a
    /// repository named after the collection. Nothing else is backed up or touched.
    async fn backup(&self, _target: &BackupTarget<'_>) -> DriverResult<Backup> {
        Err(DriverError::unsupported(format!("{} has no backup route in dbbench", self.kind())))
    }

    /// Replace dbbench's collection with what `backup` holds, with the engine's own
    /// tool. An error (a damaged backup) is reported as a failed restore. The harness
    /// attaches a new driver afterwards to check what came back.
    async fn restore(&self, _backup: &Backup, _target: &BackupTarget<'_>) -> DriverResult<()> {
        Err(DriverError::unsupported(format!("{} has no restore route in dbbench", self.kind())))
    }

    /// The knob that search effort turns for `op` (knn or hybrid), as this engine is
    /// configured; `None` when it searches exactly, so a sweep has one step.
    fn effort_knob(&self, _op: OpKind) -> Option<Knob> {
        None
    }

    /// Put a value of a `KnobScope::Index` knob in force for the searches that follow
    /// (`None`: back to the value the engine is configured with). The driver may build an
    /// index for it, which takes time outside every measurement; writes go on to the
    /// index as configured. Drivers without such a knob need not implement it.
    async fn set_effort(&self, _value: Option<u64>) -> DriverResult<()> {
        Ok(())
    }
}

/// An engine's layout as it reported it: a cluster of several nodes, or one.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Topology {
    /// Nodes in the cluster (1 for a single node).
    pub nodes: u32,
    /// Nodes that hold data, where the engine tells them apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_nodes: Option<u32>,
    /// Primary shards (or partitions) of dbbench's collection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<u32>,
    /// Copies of each shard beyond the primary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// Anything else the engine says about its layout (cluster name, health...), in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Topology {
    /// "3 nodes, 3 shards × 2 copies" for tables.
    pub fn summary(&self) -> String {
        let mut out = match self.nodes {
            1 => "1 node".to_string(),
            n => format!("{n} nodes"),
        };
        if let Some(s) = self.shards {
            out.push_str(&format!(", {s} shard{}", if s == 1 { "" } else { "s" }));
            if let Some(r) = self.replicas {
                out.push_str(&format!(" × {} cop{}", r + 1, if r == 0 { "y" } else { "ies" }));
            }
        }
        out
    }
}

/// Where a backup goes, and the engine's server when `services/up.sh` started it (a
/// driver whose only route is a copy of the stopped server's folder needs it).
pub struct BackupTarget<'a> {
    /// A folder of dbbench's own for this backup, created empty by the harness.
    pub dir: &'a std::path::Path,
    pub service: Option<&'a crate::service::Service>,
}

/// A backup `Driver::backup` made.
#[derive(Debug, Clone, Serialize)]
pub struct Backup {
    /// The tool or API, in words ("pg_dump --format=custom of table dbbench_x").
    pub tool: String,
    /// Where it is (a file or folder).
    pub location: std::path::PathBuf,
    /// Its files on this machine, largest first (what a damage test truncates); empty when
    /// dbbench cannot reach them.
    pub files: Vec<std::path::PathBuf>,
    pub size_bytes: Option<u64>,
    /// The driver's own name for it (a snapshot name), when it has one.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
}

impl Backup {
    /// A backup held in files under `location`: their sizes summed, listed largest first.
    pub fn of_files(tool: String, location: std::path::PathBuf) -> Backup {
        let mut files = Vec::new();
        collect_files(&location, &mut files);
        let mut sized: Vec<(u64, std::path::PathBuf)> =
            files.into_iter().map(|f| (std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0), f)).collect();
        sized.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let size_bytes = Some(sized.iter().map(|(n, _)| n).sum());
        Backup { tool, location, files: sized.into_iter().map(|(_, f)| f).collect(), size_bytes, id: String::new() }
    }
}

fn collect_files(path: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            if let Ok(entries) = std::fs::read_dir(path) {
                for e in entries.flatten() {
                    collect_files(&e.path(), out);
                }
            }
        }
        Ok(m) if m.is_file() => out.push(path.to_path_buf()),
        _ => {}
    }
}

/// Copy the folder `from` to `to` (created; must not exist), files and folders only.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let ty = e.file_type()?;
        let dest = to.join(e.file_name());
        if ty.is_dir() {
            copy_dir(&e.path(), &dest)?;
        } else if ty.is_file() {
            std::fs::copy(e.path(), &dest)?;
        }
    }
    Ok(())
}

/// Where an effort knob is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnobScope {
    /// A per-request search param (`Op::params`), named `Knob::param`.
    Request,
    /// A setting of the index itself, configured at `configured` (Chroma 1.5 reads its
    /// collection's `ef_search` when it loads the index, and a loaded index keeps it):
    /// before each step the runner calls `Driver::set_effort`, which builds an index at
    /// that value if it has none, and afterwards puts the configured one back.
    Index { configured: u64 },
}

/// An engine's search-effort knob: what an engine-neutral effort value becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Knob {
    /// The engine's name for it (`ef_search`, `hnsw_ef`, `num_candidates`, `probes`).
    pub param: &'static str,
    pub scope: KnobScope,
    /// The largest value the engine takes; engine-neutral values above it are clamped.
    pub max: u64,
    /// The engine refuses a value below the op's k (Elasticsearch's `num_candidates`).
    pub at_least_k: bool,
}

impl Knob {
    pub const fn request(param: &'static str, max: u64) -> Self {
        Knob { param, scope: KnobScope::Request, max, at_least_k: false }
    }

    /// The knob value for engine-neutral `effort` at `k`.
    pub fn value(&self, effort: u64, k: usize) -> u64 {
        let v = effort.clamp(1, self.max.max(1));
        if self.at_least_k {
            v.max(k as u64)
        } else {
            v
        }
    }
}

/// Everything a driver factory needs from the workload.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The engine's name in the workload (`[engines.NAME]`).
    pub name: String,
    /// URL with `${ENV}` already expanded. May hold credentials: never print it, use
    /// `redact_url`.
    pub url: Option<String>,
    /// The driver's own settings table, parsed by the driver.
    pub settings: toml::Table,
    /// Where relative paths in settings are resolved (the workload file's folder).
    pub base_dir: std::path::PathBuf,
}

/// A driver kind known to this build.
pub struct DriverKind {
    pub kind: &'static str,
    pub summary: &'static str,
    /// URL used when the workload gives none.
    pub default_url: Option<&'static str>,
    /// How to bring the engine up, printed when it cannot be reached.
    pub start_hint: &'static str,
    /// Capabilities, known without connecting.
    pub capabilities: fn() -> Capabilities,
    /// The per-op search params it reads (`params = { ... }` on an op), checked by the
    /// plan before anything runs. Any other param is not applicable to it: sent, ignored,
    /// and recorded so in results; never a request error.
    pub params: &'static [ParamDef],
    /// Check settings without connecting (for `dbbench validate`).
    pub validate: fn(&EngineConfig) -> Result<(), String>,
    pub open: fn(&EngineConfig) -> Result<Box<dyn Driver>, String>,
    /// Hidden from `dbbench engines` (test doubles).
    pub hidden: bool,
}

/// Every driver kind compiled in.
pub fn registry() -> &'static [DriverKind] {
    static KINDS: &[DriverKind] = &[
        sqlite::KIND,
        pgvector::KIND,
        chroma::KIND,
        elasticsearch::KIND,
        neo4j::KIND,
        #[cfg(feature = "qdrant")]
        qdrant::SERVER,
        #[cfg(feature = "qdrant-edge")]
        qdrant::EDGE,
        noop::KIND,
        scripted::KIND,
    ];
    KINDS
}

pub fn find_kind(kind: &str) -> Option<&'static DriverKind> {
    registry().iter().find(|k| k.kind == kind)
}

/// Parse a driver's settings table into its own serde struct, with a message that names
/// the engine and the key.
pub fn parse_settings<T: serde::de::DeserializeOwned>(cfg: &EngineConfig) -> Result<T, String> {
    T::deserialize(toml::Value::Table(cfg.settings.clone()))
        .map_err(|e| format!("engines.{}.settings: {}", cfg.name, e.message()))
}

/// Percent-decoding of a URL's user info (`p%40ss` is `p@ss`); a `%` not followed by
/// two hex digits stays as it is.
pub fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The URL with any password (and token-like query parameters) replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..].find(['/', '?', '#']).map(|i| rest_start + i).unwrap_or(out.len());
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                let user = userinfo[..colon].to_string();
                out.replace_range(rest_start..rest_start + at, &format!("{user}:***"));
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let redacted: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if is_secret_key(k) => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        out = format!("{head}{}", redacted.join("&"));
    }
    out
}

/// Keys whose values are secrets wherever they appear (settings, query strings).
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["password", "passwd", "token", "api_key", "apikey", "secret", "sslpassword"].iter().any(|s| k.contains(s))
}

/// A settings table as JSON with secret values replaced by `***`.
pub fn redact_settings(table: &toml::Table) -> serde_json::Map<String, serde_json::Value> {
    table
        .iter()
        .map(|(k, v)| {
            let json = if is_secret_key(k) {
                serde_json::Value::String("***".into())
            } else {
                serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
            };
            (k.clone(), json)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn current_worker_is_set_only_inside_as_worker() {
        assert_eq!(current_worker(), None);
        assert_eq!(as_worker(3, async { current_worker() }).await, Some(3));
        assert_eq!(
            as_worker(0, async {
                tokio::task::yield_now().await;
                current_worker()
            })
            .await,
            Some(0)
        );
        assert_eq!(current_worker(), None);
    }

    #[test]
    fn redact_url_hides_password_and_tokens() {
        assert_eq!(
            redact_url("postgres://bench:s3cret@db:5432/x?sslmode=require&password=p"),
            "postgres://bench:***@db:5432/x?sslmode=require&password=***"
        );
        assert_eq!(redact_url("http://127.0.0.1:8000"), "http://127.0.0.1:8000");
        assert_eq!(redact_url("http://user@h/"), "http://user@h/");
        assert_eq!(redact_url("https://h/?api_key=abc"), "https://h/?api_key=***");
    }

    #[test]
    fn capabilities_check_names_the_gap() {
        let mut caps = Capabilities::all_native();
        caps.filters = Support::No;
        assert!(caps.check(OpKind::Knn, false).is_ok());
        assert_eq!(caps.check(OpKind::Knn, true).unwrap_err(), "filtered knn is not supported");
        caps.ops.insert(OpKind::Scan, Support::No);
        assert_eq!(caps.check(OpKind::Scan, false).unwrap_err(), "scan is not supported");
    }
}
