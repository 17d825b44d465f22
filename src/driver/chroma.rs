//! Chroma over its REST API v2 (one pooled reqwest client).
//!
//! Everything lives in tenant `dbbench`, database `dbbench`, in one collection named by
//! `Schema::collection` whose metadata carries `created_by = "dbbench"`. `prepare` deletes
//! an existing collection of that name only when it carries that marker, and refuses
//! otherwise. kNN is Chroma's HNSW `query` with a `where` clause; text is a
//! `where_document` match through `get`, which filters and never ranks, so it is declared
//! `Partial`. Chroma has no ranked text to fuse, no scan in id order and no transactions:
//! those ops are `No`.
//!
//! Chroma ids are strings: dbbench's u64 ids are sent as decimal strings and parsed back.
//!
//! Recovery: `attach` takes up the marked collection by name (its id, checked against the
//! workload's space and dimension and the settings' `ef_search`); `count` is the
//! collection's count. Chroma has no backup API, so `backup` copies the folder of the
//! server `services/up.sh` started while it is stopped, and `restore` rolls that whole
//! folder back (see `restore`), which is why both need that server.
//!
//! Limits worth knowing when reading results: `ef_search` is part of the collection's
//! configuration (`settings.ef_search`), not of a query, so Chroma declares no per-op
//! params: a workload's per-op `params.ef_search` (pgvector's knob) is recorded in
//! Chroma's results as not applicable, and Chroma searches at its collection's value,
//! which its settings in results show. Refusing it instead would make every workload that
//! tunes another engine per op unable to run Chroma beside it. Sweeps and tuning reach
//! other values through `set_effort`: a copy of the collection (ids, vectors, metadata;
//! no documents) built at that `ef_search`, named `<collection>-ef<value>` and marked
//! like the collection, searched by kNN until the configured value is put back. A copy
//! is kept for later steps until a write to the collection makes it stale. `add` keeps an existing
//! id without an error, `update` and `delete` succeed on unknown ids, so write counts are
//! what the server says, not rows found. `/api/v2/version` reports the server API version ("1.0.0" for chromadb
//! 1.5.9); the package version is not exposed over HTTP.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::shared::http::{self, status_error};
use super::shared::{self, Found, Namespace, Prepared};
use super::*;

pub const KIND: DriverKind = DriverKind {
    kind: "chroma",
    summary: "Chroma server (REST v2): HNSW kNN with metadata filters, unranked word filter as text",
    default_url: Some("http://127.0.0.1:8000"),
    start_hint: "services/up.sh chroma (or: docker compose -f docker-compose.bench.yml up -d chroma)",
    capabilities,
    params: &[],
    validate: |cfg| Settings::parse(cfg).map(|_| ()),
    open: |cfg| Ok(Box::new(Chroma::new(cfg)?)),
    hidden: false,
};

/// Tenant and database that hold every dbbench collection.
pub const TENANT: &str = "dbbench";
/// The largest `ef_search` a sweep or tuning asks Chroma for.
const MAX_EF_SEARCH: u64 = 10_000;
pub const DATABASE: &str = "dbbench";
/// Collection metadata key and value that mark a collection as dbbench's own.
pub use super::shared::{MARKER_KEY, MARKER_VALUE};

const TEXT_NOTE: &str = "substring filter without ranking: where_document keeps documents holding any query word \
     (whole word, case-insensitive; settings.text_match = \"contains\" for Chroma's case-sensitive substring match) \
     and get returns the first k of them in storage order";

pub fn capabilities() -> Capabilities {
    let mut ops: std::collections::BTreeMap<OpKind, Support> = OpKind::ALL.iter().map(|k| (*k, Support::No)).collect();
    for k in [OpKind::Knn, OpKind::Get, OpKind::Insert, OpKind::Update, OpKind::Delete] {
        ops.insert(k, Support::Native);
    }
    ops.insert(OpKind::Text, Support::Partial(TEXT_NOTE));
    Capabilities { ops, filters: Support::Native, transactions: false }
}

/// How a text query becomes a `where_document` clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TextMatch {
    /// Any query word as a whole word, case-insensitive: one `$regex` `(?i)\b(?:w1|w2)\b`.
    Word,
    /// Any query word as a case-sensitive substring: `$contains` per word, `$or`-ed.
    Contains,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// HNSW space. Derived from the workload's metric; if given it must agree with it.
    pub space: Option<String>,
    pub ef_construction: u32,
    /// The collection's, fixed once its index is loaded: a per-op `params.ef_search` cannot
    /// change it (it is recorded as not applicable); sweeps and tuning search copies of
    /// the collection built at their values.
    pub ef_search: u32,
    pub max_neighbors: u32,
    /// Auth token (`${ENV}` is expanded). Never printed or written.
    pub token: Option<String>,
    /// "x-chroma-token" (the token as is) or "authorization" (`Bearer <token>`).
    pub token_header: String,
    /// Per-request timeout.
    pub timeout_ms: u64,
    pub text_match: TextMatch,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            space: None,
            ef_construction: 100,
            ef_search: 100,
            max_neighbors: 16,
            token: None,
            token_header: "x-chroma-token".into(),
            timeout_ms: 30_000,
            text_match: TextMatch::Word,
        }
    }
}

impl Settings {
    fn parse(cfg: &EngineConfig) -> Result<Self, String> {
        let s: Settings = parse_settings(cfg)?;
        let bad = |m: &str| Err(format!("engines.{}.settings.{m}", cfg.name));
        if let Some(space) = &s.space {
            if !["cosine", "l2", "ip"].contains(&space.as_str()) {
                return bad("space: use \"cosine\", \"l2\" or \"ip\" (or leave it out: it follows the metric)");
            }
        }
        if !["x-chroma-token", "authorization"].contains(&s.token_header.to_ascii_lowercase().as_str()) {
            return bad("token_header: use \"x-chroma-token\" or \"authorization\"");
        }
        if s.ef_construction == 0 || s.ef_search == 0 || s.max_neighbors == 0 || s.timeout_ms == 0 {
            return bad("ef_construction, ef_search, max_neighbors and timeout_ms must be at least 1");
        }
        Ok(s)
    }
}

/// Chroma's HNSW space for a dbbench metric. `ip` is 1 - dot, which ranks as dbbench's
/// negative dot product does.
pub fn space(metric: Metric) -> &'static str {
    match metric {
        Metric::Cosine => "cosine",
        Metric::L2 => "l2",
        Metric::Dot => "ip",
    }
}

fn value_json(v: &AttrValue) -> Value {
    match v {
        AttrValue::Keyword(s) => Value::String(s.clone()),
        AttrValue::Integer(i) => Value::from(*i),
    }
}

/// A where clause that matches nothing (`$in` with no values is rejected by Chroma).
fn nothing() -> Value {
    json!({ "$or": [] })
}

/// The filter as a Chroma `where` clause with exactly `Filter::matches` semantics.
///
/// Chroma rejects a where object with two keys, so every conjunction is an explicit
/// `$and` list; single-element and empty `$and`/`$or` lists are accepted by the server
/// (empty `$and` matches all, empty `$or` nothing, as in `Filter::matches`).
pub fn where_clause(f: &Filter) -> Value {
    match f {
        Filter::Eq { field, value } => json!({ field.as_str(): { "$eq": value_json(value) } }),
        Filter::In { field, values } if values.is_empty() => nothing(),
        Filter::In { field, values } => {
            json!({ field.as_str(): { "$in": values.iter().map(value_json).collect::<Vec<_>>() } })
        }
        Filter::Range { field, gte, lt } => {
            // An open range still requires an integer value, as `Filter::matches` does.
            let lower = gte.unwrap_or(i64::MIN);
            let low = json!({ field.as_str(): { "$gte": lower } });
            match lt {
                None => low,
                Some(l) => json!({ "$and": [low, { field.as_str(): { "$lt": l } }] }),
            }
        }
        Filter::And(parts) => json!({ "$and": parts.iter().map(where_clause).collect::<Vec<_>>() }),
        Filter::Or(parts) => json!({ "$or": parts.iter().map(where_clause).collect::<Vec<_>>() }),
    }
}

/// The distinct words of a text query, in order of first appearance.
fn words(text: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for w in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        if !out.contains(&w) {
            out.push(w);
        }
    }
    out
}

/// A text query as a `where_document` clause, or None when it has no words.
///
/// Only alphanumeric runs of the query are kept, so nothing the user typed can become
/// regex syntax. `Word` is one regex so the server scans each document once.
pub fn document_clause(text: &str, mode: TextMatch) -> Option<Value> {
    let ws = words(text);
    if ws.is_empty() {
        return None;
    }
    Some(match mode {
        TextMatch::Word => {
            let mut lower: Vec<String> = Vec::with_capacity(ws.len());
            for w in ws.iter().map(|w| w.to_lowercase()) {
                if !lower.contains(&w) {
                    lower.push(w);
                }
            }
            json!({ "$regex": format!("(?i)\\b(?:{})\\b", lower.join("|")) })
        }
        TextMatch::Contains if ws.len() == 1 => json!({ "$contains": ws[0] }),
        TextMatch::Contains => {
            json!({ "$or": ws.iter().map(|w| json!({ "$contains": w })).collect::<Vec<_>>() })
        }
    })
}

struct State {
    schema: Schema,
    collection_id: String,
    query_url: String,
    get_url: String,
    add_url: String,
    update_url: String,
    delete_url: String,
    count_url: String,
    max_batch: usize,
}

pub struct Chroma {
    settings: Settings,
    /// `<url>/api/v2`, without a trailing slash.
    api: String,
    /// The URL as printed (credentials redacted).
    shown_url: String,
    client: Client,
    state: Prepared<State>,
    /// Records sent to `load` since `prepare`: `add` keeps an existing id silently, so
    /// `finish_load` compares this with the server's count.
    sent: AtomicU64,
    /// Writes to the collection since `prepare`: a copy made before the last one is stale.
    writes: AtomicU64,
    /// Copies of the collection at other `ef_search` values (`set_effort`).
    copies: tokio::sync::Mutex<BTreeMap<u32, EffortCopy>>,
    /// The query URL of the copy kNN searches, when one is in force.
    searching: std::sync::RwLock<Option<Arc<str>>>,
}

/// The collection rebuilt at another `ef_search`.
struct EffortCopy {
    name: String,
    query_url: Arc<str>,
    /// `Chroma::writes` when it was copied.
    writes: u64,
}

/// One page of records as `get` returns them and `add` takes them (documents left out:
/// a copy serves kNN only).
#[derive(Serialize, Deserialize)]
struct Page {
    ids: Vec<String>,
    embeddings: Vec<Vec<f32>>,
    metadatas: Vec<Option<Map<String, Value>>>,
}

#[derive(Serialize)]
struct QueryBody<'a> {
    query_embeddings: [&'a [f32]; 1],
    n_results: usize,
    include: [&'static str; 0],
    #[serde(rename = "where", skip_serializing_if = "Option::is_none")]
    where_: Option<Value>,
}

#[derive(Serialize)]
struct GetBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    ids: Option<[&'a str; 1]>,
    #[serde(rename = "where", skip_serializing_if = "Option::is_none")]
    where_: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    where_document: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<usize>,
    include: &'a [&'static str],
}

#[derive(Serialize)]
struct AddBody<'a> {
    ids: Vec<String>,
    embeddings: Vec<&'a [f32]>,
    documents: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadatas: Option<Vec<Map<String, Value>>>,
}

#[derive(Deserialize)]
struct QueryResponse {
    ids: Vec<Vec<String>>,
}

#[derive(Deserialize)]
struct GetResponse {
    ids: Vec<String>,
    #[serde(default)]
    embeddings: Option<Vec<Vec<f32>>>,
    #[serde(default)]
    documents: Option<Vec<Option<String>>>,
    #[serde(default)]
    metadatas: Option<Vec<Option<Map<String, Value>>>>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: String,
    #[serde(default)]
    message: String,
}

fn parse_id(s: &str) -> DriverResult<u64> {
    s.parse().map_err(|_| DriverError::protocol(format!("chroma: id {s:?} is not a dbbench id")))
}

fn transport_error(what: &str, e: reqwest::Error) -> DriverError {
    http::transport_error("chroma", what, e)
}

impl Chroma {
    pub fn new(cfg: &EngineConfig) -> Result<Self, String> {
        let settings = Settings::parse(cfg)?;
        let url = cfg.url.clone().or(KIND.default_url.map(str::to_string)).unwrap_or_default();
        let base = url.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(format!("engines.{}.url: expected http://host:port, got {}", cfg.name, redact_url(base)));
        }
        let mut headers = HeaderMap::new();
        if let Some(raw) = &settings.token {
            let token = crate::env::expand_env(raw, |k| std::env::var(k).ok())
                .map_err(|e| format!("engines.{}.settings.token: {e}", cfg.name))?;
            let header = settings.token_header.to_ascii_lowercase();
            let value = if header == "authorization" { format!("Bearer {token}") } else { token };
            let mut value = HeaderValue::from_str(&value)
                .map_err(|_| format!("engines.{}.settings.token: not a valid header value", cfg.name))?;
            value.set_sensitive(true);
            let name = HeaderName::from_bytes(header.as_bytes())
                .map_err(|e| format!("engines.{}.settings.token_header: {e}", cfg.name))?;
            headers.insert(name, value);
        }
        let client = http::client(
            cfg,
            headers,
            Duration::from_millis(settings.timeout_ms.min(5_000)),
            Some(Duration::from_millis(settings.timeout_ms)),
        )?;
        Ok(Chroma {
            settings,
            api: format!("{base}/api/v2"),
            shown_url: redact_url(base),
            client,
            state: Prepared::new("chroma"),
            sent: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            copies: tokio::sync::Mutex::new(BTreeMap::new()),
            searching: std::sync::RwLock::new(None),
        })
    }

    fn collections(&self, ef_search: u32) -> Collections<'_> {
        Collections { db: self, ef_search }
    }

    fn records_url(&self, id: &str) -> String {
        format!("{}/collections/{id}", self.database_url())
    }

    fn search_in(&self, url: Option<Arc<str>>) {
        *self.searching.write().unwrap_or_else(|p| p.into_inner()) = url;
    }

    /// Build `<collection>-ef<value>`: created like the collection but at `ef_search`,
    /// filled page by page from it, and checked to hold as many records.
    async fn copy_at(&self, st: &State, ef_search: u32) -> DriverResult<EffortCopy> {
        let writes = self.writes.load(Ordering::Relaxed);
        let mut schema = st.schema.clone();
        schema.collection = format!("{}-ef{ef_search}", st.schema.collection);
        let id = shared::prepare_own(&mut self.collections(ef_search), &schema).await?;
        let records = self.records_url(&id);
        let add_url = format!("{records}/add");
        let mut offset = 0;
        loop {
            let body = GetBody {
                ids: None,
                where_: None,
                where_document: None,
                limit: Some(st.max_batch),
                offset: Some(offset),
                include: &["embeddings", "metadatas"],
            };
            let page: Page = self
                .post("copy: get", &st.get_url, &body)
                .await?
                .json()
                .await
                .map_err(|e| transport_error("copy: get", e))?;
            if page.ids.is_empty() {
                break;
            }
            offset += page.ids.len();
            self.post("copy: add", &add_url, &page).await?;
        }
        let (from, to): (u64, u64) =
            (self.get_json("count", &st.count_url).await?, self.get_json("count", &format!("{records}/count")).await?);
        if from != to || to != offset as u64 {
            return Err(DriverError::other(format!(
                "chroma: the copy {} holds {to} records, the collection {from}, {offset} were read",
                schema.collection
            )));
        }
        Ok(EffortCopy { name: schema.collection, query_url: Arc::from(format!("{records}/query")), writes })
    }

    fn database_url(&self) -> String {
        format!("{}/tenants/{TENANT}/databases/{DATABASE}", self.api)
    }

    /// Turn a response into its body, or the engine's error.
    async fn check(what: &str, resp: reqwest::Response) -> DriverResult<reqwest::Response> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let text = resp.text().await.unwrap_or_default();
        let msg = match serde_json::from_str::<ErrorBody>(&text) {
            Ok(b) if !b.message.is_empty() => format!("{} {}", b.error, b.message),
            _ => text.chars().take(300).collect(),
        };
        Err(status_error("chroma", what, status, &msg))
    }

    async fn post<B: Serialize + ?Sized>(&self, what: &str, url: &str, body: &B) -> DriverResult<reqwest::Response> {
        let resp = self.client.post(url).json(body).send().await.map_err(|e| transport_error(what, e))?;
        Self::check(what, resp).await
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, what: &str, url: &str) -> DriverResult<T> {
        let resp = self.client.get(url).send().await.map_err(|e| transport_error(what, e))?;
        Self::check(what, resp).await?.json().await.map_err(|e| transport_error(what, e))
    }

    /// POST that accepts 409 (already exists) as success.
    async fn create_if_missing(&self, what: &str, url: &str, name: &str) -> DriverResult<()> {
        let resp =
            self.client.post(url).json(&json!({ "name": name })).send().await.map_err(|e| transport_error(what, e))?;
        if resp.status() == StatusCode::CONFLICT {
            return Ok(());
        }
        Self::check(what, resp).await.map(|_| ())
    }

    fn metadata(schema: &Schema, attrs: &[AttrValue]) -> Map<String, Value> {
        schema.attributes.iter().zip(attrs).map(|(a, v)| (a.name.clone(), value_json(v))).collect()
    }

    fn add_body<'a>(schema: &Schema, records: &'a [Record]) -> AddBody<'a> {
        AddBody {
            ids: records.iter().map(|r| r.id.to_string()).collect(),
            embeddings: records.iter().map(|r| &*r.vector).collect(),
            documents: records.iter().map(|r| &*r.text).collect(),
            metadatas: (!schema.attributes.is_empty())
                .then(|| records.iter().map(|r| Self::metadata(schema, &r.attributes)).collect()),
        }
    }

    fn record(schema: &Schema, resp: GetResponse) -> DriverResult<Option<Record>> {
        let Some(id) = resp.ids.first() else {
            return Ok(None);
        };
        let id = parse_id(id)?;
        let vector = resp
            .embeddings
            .and_then(|mut e| (!e.is_empty()).then(|| e.swap_remove(0)))
            .ok_or_else(|| DriverError::protocol("chroma get: no embedding in the answer"))?;
        let text =
            resp.documents.and_then(|mut d| (!d.is_empty()).then(|| d.swap_remove(0))).flatten().unwrap_or_default();
        let meta =
            resp.metadatas.and_then(|mut m| (!m.is_empty()).then(|| m.swap_remove(0))).flatten().unwrap_or_default();
        let mut attributes = Vec::with_capacity(schema.attributes.len());
        for a in &schema.attributes {
            let v = meta.get(&a.name);
            attributes.push(match (a.kind, v) {
                (AttrKind::Keyword, Some(Value::String(s))) => AttrValue::Keyword(s.clone()),
                (AttrKind::Integer, Some(Value::Number(n))) if n.is_i64() => {
                    AttrValue::Integer(n.as_i64().unwrap_or_default())
                }
                _ => {
                    return Err(DriverError::protocol(format!(
                        "chroma get: record {id} has no {:?} value for attribute {}",
                        a.kind, a.name
                    )))
                }
            });
        }
        Ok(Some(Record { id, vector: Arc::from(vector), text: Arc::from(text), attributes }))
    }

    async fn knn(&self, st: &State, vector: &[f32], k: usize, filter: Option<&Filter>) -> DriverResult<Outcome> {
        let body =
            QueryBody { query_embeddings: [vector], n_results: k, include: [], where_: filter.map(where_clause) };
        let copy = self.searching.read().unwrap_or_else(|p| p.into_inner()).clone();
        let url = copy.as_deref().unwrap_or(&st.query_url);
        let resp: QueryResponse =
            self.post("query", url, &body).await?.json().await.map_err(|e| transport_error("query", e))?;
        let ids = resp.ids.into_iter().next().unwrap_or_default();
        Ok(Outcome::Hits(ids.iter().map(|s| parse_id(s)).collect::<DriverResult<_>>()?))
    }

    async fn text(&self, st: &State, query: &str, k: usize, filter: Option<&Filter>) -> DriverResult<Outcome> {
        let Some(doc) = document_clause(query, self.settings.text_match) else {
            return Ok(Outcome::Hits(Vec::new()));
        };
        let body = GetBody {
            ids: None,
            where_: filter.map(where_clause),
            where_document: Some(doc),
            limit: Some(k),
            offset: None,
            include: &[],
        };
        let resp: GetResponse =
            self.post("get", &st.get_url, &body).await?.json().await.map_err(|e| transport_error("get", e))?;
        Ok(Outcome::Hits(resp.ids.iter().map(|s| parse_id(s)).collect::<DriverResult<_>>()?))
    }
}

/// How long a restarted server may take to answer for dbbench's collection, after its
/// launcher said it is up.
const SERVER_ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// The server `services/up.sh` started, which `backup` and `restore` need: Chroma has no
/// backup API, so dbbench copies the stopped server's folder.
fn server<'a>(target: &BackupTarget<'a>) -> DriverResult<&'a crate::service::Service> {
    let svc = target.service.ok_or_else(|| {
        DriverError::unsupported(
            "Chroma has no backup API; dbbench copies the stopped server's folder, which needs a server services/up.sh started",
        )
    })?;
    svc.watch().map_err(|e| {
        DriverError::other(format!(
            "chroma: no server that services/up.sh started is running to back up or restore ({e})"
        ))
    })?;
    Ok(svc)
}

/// The launcher's output while a backup or restore stops and starts the server: beside
/// the backup's folder, never inside it.
fn service_log(dir: &std::path::Path) -> std::path::PathBuf {
    let name = dir.file_name().map_or_else(|| "backup".into(), |n| n.to_string_lossy().into_owned());
    dir.parent().unwrap_or(dir).join(format!("{name}.service.log"))
}

/// `copy_dir` off the async runtime's threads.
async fn copy_folder(from: &std::path::Path, to: &std::path::Path) -> DriverResult<()> {
    let (f, t) = (from.to_path_buf(), to.to_path_buf());
    tokio::task::spawn_blocking(move || copy_dir(&f, &t))
        .await
        .map_err(|e| DriverError::other(format!("chroma: the copy stopped: {e}")))?
        .map_err(|e| DriverError::other(format!("chroma: cannot copy {} to {}: {e}", from.display(), to.display())))
}

impl Chroma {
    /// The driver's state for collection `id` (what `prepare` and `attach` set up).
    async fn install(&self, schema: &Schema, id: String) -> DriverResult<()> {
        let preflight: Value = self.get_json("pre-flight-checks", &format!("{}/pre-flight-checks", self.api)).await?;
        let max_batch = preflight.get("max_batch_size").and_then(Value::as_u64).unwrap_or(1000).max(1) as usize;
        let records = self.records_url(&id);
        self.state.set(State {
            schema: schema.clone(),
            query_url: format!("{records}/query"),
            get_url: format!("{records}/get"),
            add_url: format!("{records}/add"),
            update_url: format!("{records}/update"),
            delete_url: format!("{records}/delete"),
            count_url: format!("{records}/count"),
            collection_id: id,
            max_batch,
        });
        self.sent.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// Stop the server with its stopper, then make sure the URL this driver talks to went
    /// quiet with it: a server that still answers is not the one `services/up.sh`
    /// started, so its folder is not dbbench's to copy or replace (the stopped one is
    /// started again).
    async fn stop_server(&self, svc: &crate::service::Service, log: &std::path::Path) -> DriverResult<()> {
        svc.stop(log).await.map_err(|e| DriverError::other(format!("chroma: {e}")))?;
        if self.ping().await.is_ok() {
            let restarted = svc.start(log).await.err().map(|e| format!(" (and starting it again failed: {e})"));
            return Err(DriverError::rejected(format!(
                "chroma: {} still answers after services/down.sh {} stopped the server it started, so it is another \
                 server, whose folder is not dbbench's to copy or replace{}",
                self.shown_url,
                svc.name,
                restarted.unwrap_or_default()
            )));
        }
        Ok(())
    }

    /// Start the server with its launcher and take up dbbench's collection again (its id
    /// as the server's folder now has it), within `SERVER_ANSWER_TIMEOUT`.
    async fn start_server(
        &self,
        svc: &crate::service::Service,
        log: &std::path::Path,
        schema: &Schema,
    ) -> DriverResult<()> {
        svc.start(log).await.map_err(|e| DriverError::other(format!("chroma: {e}")))?;
        let deadline = std::time::Instant::now() + SERVER_ANSWER_TIMEOUT;
        loop {
            let answered = async {
                self.ping().await?;
                let id = shared::namespace::attach_own(&mut self.collections(self.settings.ef_search), schema).await?;
                self.install(schema, id).await?;
                self.count().await
            }
            .await;
            match answered {
                Ok(_) => return Ok(()),
                Err(e) if std::time::Instant::now() > deadline => {
                    return Err(DriverError::other(format!(
                        "chroma: the server was started again but does not answer for collection {} within {} s: {}",
                        schema.collection,
                        SERVER_ANSWER_TIMEOUT.as_secs(),
                        e.message
                    )))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }
}

/// Chroma's calls on dbbench's namespace: collections in tenant and database `dbbench`,
/// marked by their metadata, created at `ef_search`.
struct Collections<'a> {
    db: &'a Chroma,
    ef_search: u32,
}

#[async_trait]
impl Namespace for Collections<'_> {
    /// The new collection's id.
    type Created = String;

    const ENGINE: &'static str = "chroma";

    fn object(&self, collection: &str) -> String {
        format!("collection {collection} in tenant {TENANT}, database {DATABASE}")
    }

    fn marker(&self) -> String {
        format!("metadata {MARKER_KEY} = {MARKER_VALUE:?}")
    }

    const REMEDY: &'static str = "rename or delete it yourself";

    async fn find(&mut self, collection: &str) -> DriverResult<Found> {
        let url = format!("{}/collections/{collection}", self.db.database_url());
        let resp = self.db.client.get(&url).send().await.map_err(|e| transport_error("get collection", e))?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(Found::Absent);
        }
        let v: Value = Chroma::check("get collection", resp)
            .await?
            .json()
            .await
            .map_err(|e| transport_error("get collection", e))?;
        let marked = v.get("metadata").and_then(|m| m.get(MARKER_KEY)).and_then(Value::as_str) == Some(MARKER_VALUE);
        Ok(if marked { Found::Marked } else { Found::Unmarked })
    }

    async fn create(&mut self, schema: &Schema) -> DriverResult<String> {
        let s = &self.db.settings;
        let body = json!({
            "name": schema.collection,
            "configuration": { "hnsw": {
                "space": space(schema.metric),
                "ef_construction": s.ef_construction,
                "ef_search": self.ef_search,
                "max_neighbors": s.max_neighbors,
            }},
            "metadata": { MARKER_KEY: MARKER_VALUE },
        });
        let created: Value = self
            .db
            .post("create collection", &format!("{}/collections", self.db.database_url()), &body)
            .await?
            .json()
            .await
            .map_err(|e| transport_error("create collection", e))?;
        created
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| DriverError::protocol("chroma create collection: no id in the answer"))
    }

    async fn drop_marked(&mut self, collection: &str) -> DriverResult<()> {
        let url = format!("{}/collections/{collection}", self.db.database_url());
        let resp = self.db.client.delete(&url).send().await.map_err(|e| transport_error("delete collection", e))?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(());
        }
        Chroma::check("delete collection", resp).await.map(|_| ())
    }

    /// The collection's id, once its space, `ef_search` and dimension are known to be what
    /// the workload and the settings say (a collection searched at another `ef_search`
    /// than the settings show would be reported wrongly).
    async fn open(&mut self, schema: &Schema) -> DriverResult<String> {
        let url = format!("{}/collections/{}", self.db.database_url(), schema.collection);
        let v: Value = self.db.get_json("get collection", &url).await?;
        let hnsw = &v["configuration_json"]["hnsw"];
        let name = &schema.collection;
        let want = space(schema.metric);
        if let Some(got) = hnsw["space"].as_str().filter(|s| *s != want) {
            return Err(DriverError::rejected(format!(
                "chroma: collection {name} has space {got}, the workload's metric {} needs {want}",
                schema.metric.as_str()
            )));
        }
        if let Some(ef) = hnsw["ef_search"].as_u64().filter(|ef| *ef != u64::from(self.ef_search)) {
            return Err(DriverError::rejected(format!(
                "chroma: collection {name} searches at ef_search {ef}, the settings say {}; set ef_search = {ef}",
                self.ef_search
            )));
        }
        if let Some(d) = v["dimension"].as_u64().filter(|d| *d != schema.dim as u64) {
            return Err(DriverError::rejected(format!(
                "chroma: collection {name} holds vectors of {d} dimensions, the workload's have {}",
                schema.dim
            )));
        }
        v.get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| DriverError::protocol("chroma get collection: no id in the answer"))
    }
}

#[async_trait]
impl Driver for Chroma {
    fn write_visibility(&self) -> String {
        "a write is acknowledged once it is in Chroma's write-ahead log; there is no per-write visibility setting"
            .into()
    }
    fn kind(&self) -> &'static str {
        "chroma"
    }

    fn capabilities(&self) -> Capabilities {
        capabilities()
    }

    async fn ping(&self) -> DriverResult<()> {
        let url = format!("{}/heartbeat", self.api);
        let resp = self.client.get(&url).send().await.map_err(|e| {
            let mut err = transport_error("heartbeat", e);
            err.message = format!("{} (at {}; start it with: {})", err.message, self.shown_url, KIND.start_hint);
            err
        })?;
        Self::check("heartbeat", resp).await.map(|_| ())
    }

    async fn prepare(&self, schema: &Schema) -> DriverResult<()> {
        let space = space(schema.metric);
        if let Some(s) = &self.settings.space {
            if s != space {
                return Err(DriverError::rejected(format!(
                    "chroma: settings.space = {s:?} disagrees with the workload's metric {} (space {space}); remove the setting",
                    schema.metric.as_str()
                )));
            }
        }
        self.create_if_missing("create tenant", &format!("{}/tenants", self.api), TENANT).await?;
        self.create_if_missing("create database", &format!("{}/tenants/{TENANT}/databases", self.api), DATABASE)
            .await?;
        let id = shared::prepare_own(&mut self.collections(self.settings.ef_search), schema).await?;
        self.install(schema, id).await
    }

    async fn load(&self, batch: &[Record]) -> DriverResult<()> {
        let st = self.state.get()?;
        for chunk in batch.chunks(st.max_batch) {
            self.post("add", &st.add_url, &Self::add_body(&st.schema, chunk)).await?;
            self.sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn finish_load(&self) -> DriverResult<IndexStats> {
        // Chroma applies each write before answering it, so there is nothing to wait for;
        // the count checks that no id was silently kept by `add`.
        let st = self.state.get()?;
        let count: u64 = self.get_json("count", &st.count_url).await?;
        let sent = self.sent.load(Ordering::Relaxed);
        if count != sent {
            return Err(DriverError::rejected(format!(
                "chroma: {sent} records were sent but the collection holds {count} (add keeps an existing id silently)"
            )));
        }
        let s = &self.settings;
        let mut details = std::collections::BTreeMap::new();
        details.insert("collection_id".into(), json!(st.collection_id));
        details.insert(
            "index".into(),
            json!(format!(
                "HNSW, space {}, max_neighbors {}, ef_construction {}, ef_search {}",
                space(st.schema.metric),
                s.max_neighbors,
                s.ef_construction,
                s.ef_search
            )),
        );
        details.insert("text".into(), json!(TEXT_NOTE));
        Ok(IndexStats { records: Some(count), size_bytes: None, details })
    }

    async fn execute(&self, op: &Op<'_>) -> DriverResult<Outcome> {
        let st = self.state.get()?;
        match op {
            Op::Knn { vector, k, filter, .. } => self.knn(&st, vector, *k, *filter).await,
            Op::Text { query, k, filter, .. } => self.text(&st, query, *k, *filter).await,
            Op::Get { id } => {
                let id = id.to_string();
                let body = GetBody {
                    ids: Some([&id]),
                    where_: None,
                    where_document: None,
                    limit: None,
                    offset: None,
                    include: &["embeddings", "documents", "metadatas"],
                };
                let resp: GetResponse =
                    self.post("get", &st.get_url, &body).await?.json().await.map_err(|e| transport_error("get", e))?;
                Ok(Outcome::Found(Self::record(&st.schema, resp)?))
            }
            Op::Insert { record } => {
                // `add` rather than `upsert`: an insert must never overwrite a record. Chroma
                // answers an existing id with success and keeps the old record, which one
                // round trip cannot detect; dbbench inserts only ids it never loaded.
                self.writes.fetch_add(1, Ordering::Relaxed);
                self.post("add", &st.add_url, &Self::add_body(&st.schema, std::slice::from_ref(*record))).await?;
                Ok(Outcome::Written(1))
            }
            Op::Update { id, field, value } => {
                if st.schema.attribute_index(field).is_none() {
                    return Err(DriverError::rejected(format!("chroma update: unknown attribute {field:?}")));
                }
                // Chroma merges the given metadata keys into the record's metadata. It
                // answers an unknown id with success too, so one row is reported.
                let body = json!({ "ids": [id.to_string()], "metadatas": [{ *field: value_json(value) }] });
                self.writes.fetch_add(1, Ordering::Relaxed);
                self.post("update", &st.update_url, &body).await?;
                Ok(Outcome::Written(1))
            }
            Op::Delete { id } => {
                #[derive(Deserialize)]
                struct Deleted {
                    #[serde(default)]
                    deleted: Option<u64>,
                }
                self.writes.fetch_add(1, Ordering::Relaxed);
                let resp: Deleted = self
                    .post("delete", &st.delete_url, &json!({ "ids": [id.to_string()] }))
                    .await?
                    .json()
                    .await
                    .map_err(|e| transport_error("delete", e))?;
                // The server's own figure; it counts requested ids, found or not.
                Ok(Outcome::Written(resp.deleted.unwrap_or(1)))
            }
            Op::Hybrid { .. } => Err(DriverError::unsupported(
                "chroma: hybrid needs ranked text to fuse, and Chroma's document filter does not rank",
            )),
            Op::Scan { .. } => {
                Err(DriverError::unsupported("chroma: get cannot order by id, so there is no scan by id range"))
            }
            Op::ReadModifyWrite { .. } => Err(DriverError::unsupported("chroma: no transactions")),
            Op::Expand { .. } => {
                Err(DriverError::unsupported("chroma: no links between records, so no graph expansion"))
            }
        }
    }

    async fn describe(&self) -> DriverResult<EngineInfo> {
        let version: Value = self.get_json("version", &format!("{}/version", self.api)).await?;
        let version = version.as_str().map(str::to_string).unwrap_or_else(|| version.to_string());
        let s = &self.settings;
        let st = self.state.peek();
        let mut settings = Map::new();
        settings.insert("url".into(), json!(self.shown_url));
        settings.insert("tenant".into(), json!(TENANT));
        settings.insert("database".into(), json!(DATABASE));
        if let Some(st) = &st {
            settings.insert("collection".into(), json!(st.schema.collection));
            settings.insert("space".into(), json!(space(st.schema.metric)));
            settings.insert("max_batch_size".into(), json!(st.max_batch));
        }
        settings.insert("ef_construction".into(), json!(s.ef_construction));
        settings.insert(
            "ef_search".into(),
            json!(format!(
                "{} (fixed per collection: a per-op params.ef_search is not applicable; sweeps and tuning search \
                 copies of the collection built at their values)",
                s.ef_search
            )),
        );
        settings.insert("max_neighbors".into(), json!(s.max_neighbors));
        settings.insert("timeout_ms".into(), json!(s.timeout_ms));
        settings.insert("text_match".into(), json!(s.text_match));
        if s.token.is_some() {
            settings.insert("token".into(), json!("***"));
            settings.insert("token_header".into(), json!(s.token_header));
        }
        settings.insert("server_version".into(), json!(version));
        settings.insert(
            "version_note".into(),
            json!("GET /api/v2/version reports the server API version; the chromadb package version is not exposed over HTTP"),
        );
        Ok(EngineInfo { version: format!("Chroma server {version} (as /api/v2/version reports)"), settings })
    }

    async fn cleanup(&self) -> DriverResult<()> {
        self.search_in(None);
        let copies = std::mem::take(&mut *self.copies.lock().await);
        let mut first_error = None;
        for (ef, copy) in copies {
            if let Err(e) = shared::release_prepared(&mut self.collections(ef), Some(&copy.name)).await {
                first_error.get_or_insert(e);
            }
        }
        let st = self.state.take();
        let ns = &mut self.collections(self.settings.ef_search);
        shared::release_prepared(ns, st.as_deref().map(|s| s.schema.collection.as_str())).await?;
        first_error.map_or(Ok(()), Err)
    }

    async fn attach(&self, schema: &Schema) -> DriverResult<()> {
        let id = shared::namespace::attach_own(&mut self.collections(self.settings.ef_search), schema).await?;
        self.install(schema, id).await
    }

    async fn count(&self) -> DriverResult<u64> {
        let st = self.state.get()?;
        self.get_json("count", &st.count_url).await
    }

    /// Chroma has no durability setting to read over HTTP; this is what the single-node
    /// server does, as its documentation and its files show.
    async fn durability(&self) -> String {
        "Chroma's single-node server acknowledges a write once it is in its write-ahead log, the embeddings_queue \
         table of chroma.sqlite3 in the server's folder; that file is SQLite in rollback-journal mode and Chroma \
         sets no synchronous pragma, so SQLite's default FULL applies and the commit is fsynced; the HNSW files \
         are built from the log later, and from it again after a crash; no Chroma setting changes this"
            .into()
    }

    /// Chroma has no backup API: dbbench stops the server `services/up.sh` started, copies
    /// its whole folder (`<state>/data`) into `target.dir/data`, and starts it again.
    async fn backup(&self, target: &BackupTarget<'_>) -> DriverResult<Backup> {
        let st = self.state.get()?;
        let svc = server(target)?;
        let data = svc.state_dir().join("data");
        if !data.is_dir() {
            return Err(DriverError::other(format!("chroma: the server's folder {} is not there", data.display())));
        }
        let log = service_log(target.dir);
        self.stop_server(svc, &log).await?;
        let copy = target.dir.join("data");
        let copied = copy_folder(&data, &copy).await;
        let started = self.start_server(svc, &log, &st.schema).await;
        copied?;
        started?;
        Ok(Backup::of_files(
            format!(
                "a copy of the stopped server's folder {} (Chroma has no backup API): services/down.sh {name}, copy, services/up.sh {name}",
                data.display(),
                name = svc.name
            ),
            copy,
        ))
    }

    /// Roll the server back to the copy: stop it, move its folder aside
    /// (`data.before-restore`), copy the backup in, start it, and remove the folder set
    /// aside once dbbench's collection answers. This rolls back the whole server, every
    /// tenant and collection in it, not dbbench's collection alone, which is why it needs
    /// the server dbbench's launcher started: that server and its folder are dbbench's.
    /// A restore that does not come up (a damaged copy) puts the folder from before back,
    /// starts the server on it and is an error.
    async fn restore(&self, backup: &Backup, target: &BackupTarget<'_>) -> DriverResult<()> {
        let st = self.state.get()?;
        let schema = st.schema.clone();
        let svc = server(target)?;
        let data = svc.state_dir().join("data");
        let aside = svc.state_dir().join("data.before-restore");
        if aside.exists() {
            return Err(DriverError::other(format!(
                "chroma: {} is there: an earlier restore was interrupted, and it holds the server's folder from \
                 before it; move it back to {} or remove it",
                aside.display(),
                data.display()
            )));
        }
        if !backup.location.is_dir() {
            return Err(DriverError::other(format!("chroma: the backup {} is not there", backup.location.display())));
        }
        let log = service_log(target.dir);
        self.stop_server(svc, &log).await?;
        if let Err(e) = std::fs::rename(&data, &aside) {
            let again = self
                .start_server(svc, &log, &schema)
                .await
                .err()
                .map(|e| format!("; starting it again failed: {}", e.message));
            return Err(DriverError::other(format!(
                "chroma: cannot move {} aside: {e}{}",
                data.display(),
                again.unwrap_or_default()
            )));
        }
        let restored = match copy_folder(&backup.location, &data).await {
            Ok(()) => self.start_server(svc, &log, &schema).await,
            Err(e) => Err(e),
        };
        // The copy was left by a previous phase or process: a new write makes any
        // `ef_search` copy stale, and kNN goes back to the collection itself.
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.search_in(None);
        match restored {
            Ok(()) => {
                let _ = std::fs::remove_dir_all(&aside);
                Ok(())
            }
            Err(e) => {
                let _ = svc.stop(&log).await;
                let back = std::fs::remove_dir_all(&data)
                    .or_else(|e| if data.exists() { Err(e) } else { Ok(()) })
                    .and_then(|()| std::fs::rename(&aside, &data));
                let state = match back {
                    Ok(()) => match self.start_server(svc, &log, &schema).await {
                        Ok(()) => {
                            "the server's folder from before the restore is back in place and answers".to_string()
                        }
                        Err(e2) => {
                            format!("the server's folder from before the restore is back in place, but: {}", e2.message)
                        }
                    },
                    Err(io) => {
                        format!("the server's folder from before the restore is still in {} ({io})", aside.display())
                    }
                };
                Err(DriverError::other(format!("{}; {state}", e.message)))
            }
        }
    }

    /// `ef_search` is part of the collection's configuration, read when the server loads
    /// the collection's HNSW index; a loaded index keeps it (changing the configuration
    /// afterwards updates the stored value only, as measured: recall stayed the same at
    /// every value), so another value needs another collection (`set_effort`).
    fn effort_knob(&self, _op: OpKind) -> Option<Knob> {
        let configured = u64::from(self.settings.ef_search);
        Some(Knob { scope: KnobScope::Index { configured }, ..Knob::request("ef_search", MAX_EF_SEARCH) })
    }

    /// kNN searches the collection itself at its configured `ef_search` (and at `None`),
    /// else a copy at `value`, built now unless one made since the last write exists.
    async fn set_effort(&self, value: Option<u64>) -> DriverResult<()> {
        let ef = value.map(|v| v.clamp(1, MAX_EF_SEARCH) as u32).filter(|&v| v != self.settings.ef_search);
        let Some(ef) = ef else {
            self.search_in(None);
            return Ok(());
        };
        let st = self.state.get()?;
        let mut copies = self.copies.lock().await;
        let writes = self.writes.load(Ordering::Relaxed);
        if copies.get(&ef).is_none_or(|c| c.writes != writes) {
            // A stale copy is replaced (`prepare_own` drops the marked collection first).
            copies.remove(&ef);
            self.search_in(None);
            let copy = self.copy_at(&st, ef).await?;
            copies.insert(ef, copy);
        }
        self.search_in(copies.get(&ef).map(|c| c.query_url.clone()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kw(s: &str) -> AttrValue {
        AttrValue::Keyword(s.into())
    }

    #[test]
    fn leaf_filters_translate_to_single_key_clauses() {
        assert_eq!(where_clause(&Filter::Eq { field: "lang".into(), value: kw("de") }), json!({"lang": {"$eq": "de"}}));
        assert_eq!(
            where_clause(&Filter::In {
                field: "year".into(),
                values: vec![AttrValue::Integer(1), AttrValue::Integer(2)]
            }),
            json!({"year": {"$in": [1, 2]}})
        );
        assert_eq!(where_clause(&Filter::In { field: "lang".into(), values: vec![] }), json!({"$or": []}));
    }

    #[test]
    fn ranges_wrap_both_bounds_in_and_and_keep_open_ranges_integer_only() {
        assert_eq!(
            where_clause(&Filter::Range { field: "year".into(), gte: Some(2005), lt: Some(2008) }),
            json!({"$and": [{"year": {"$gte": 2005}}, {"year": {"$lt": 2008}}]})
        );
        assert_eq!(
            where_clause(&Filter::Range { field: "year".into(), gte: None, lt: Some(2002) }),
            json!({"$and": [{"year": {"$gte": i64::MIN}}, {"year": {"$lt": 2002}}]})
        );
        assert_eq!(
            where_clause(&Filter::Range { field: "year".into(), gte: Some(7), lt: None }),
            json!({"year": {"$gte": 7}})
        );
    }

    #[test]
    fn boolean_filters_nest_as_lists() {
        let f = Filter::Or(vec![
            Filter::Eq { field: "lang".into(), value: kw("fr") },
            Filter::And(vec![Filter::Eq { field: "lang".into(), value: kw("en") }]),
        ]);
        assert_eq!(where_clause(&f), json!({"$or": [{"lang": {"$eq": "fr"}}, {"$and": [{"lang": {"$eq": "en"}}]}]}));
    }

    #[test]
    fn text_words_become_one_escaped_regex_or_contains_list() {
        assert_eq!(
            document_clause("Fox? fox (jumps) a.*b", TextMatch::Word),
            Some(json!({"$regex": "(?i)\\b(?:fox|jumps|a|b)\\b"}))
        );
        assert_eq!(document_clause("fox", TextMatch::Contains), Some(json!({"$contains": "fox"})));
        assert_eq!(
            document_clause("fox dog fox", TextMatch::Contains),
            Some(json!({"$or": [{"$contains": "fox"}, {"$contains": "dog"}]}))
        );
        assert_eq!(document_clause(" ... ", TextMatch::Word), None);
    }

    #[test]
    fn settings_reject_unknown_keys_and_bad_headers() {
        let cfg = |t: &str| EngineConfig {
            name: "chroma".into(),
            url: None,
            settings: toml::from_str(t).expect("toml"),
            base_dir: ".".into(),
        };
        assert!(Settings::parse(&cfg("ef_search = 64")).is_ok());
        assert!(Settings::parse(&cfg("ef = 64")).expect_err("unknown key").contains("unknown field"));
        assert!(Settings::parse(&cfg("token_header = \"x-api-key\""))
            .expect_err("bad header")
            .contains("token_header"));
        assert!(Settings::parse(&cfg("space = \"dot\"")).expect_err("bad space").contains("space"));
    }

    #[test]
    fn metric_maps_to_chroma_space() {
        assert_eq!(space(Metric::Cosine), "cosine");
        assert_eq!(space(Metric::L2), "l2");
        assert_eq!(space(Metric::Dot), "ip");
    }
}
