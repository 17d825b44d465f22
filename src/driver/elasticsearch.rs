//! Elasticsearch over its REST API (reqwest, pooled keep-alive connections, rustls for
//! https URLs).
//!
//! One index per collection. kNN is the `knn` search section on an HNSW (or int8 HNSW)
//! `dense_vector` field, text is a BM25 `match` query, hybrid is a kNN search and a text
//! search sent together in one `_msearch` round trip and fused by reciprocal rank fusion
//! here (the `rrf` retriever is a paid feature, and absent from some builds). Writes use
//! the configured refresh policy; the default `wait_for` makes them visible to the next
//! search, which is what read-your-write needs.
//!
//! The index carries `_meta.created_by = "dbbench"` in its mapping; `prepare` and
//! `cleanup` delete an index only when that marker is there, so an index dbbench did not
//! create is never touched.
//!
//! Recovery: `attach` takes up the marked index as it is; `count` is `_count` after a
//! refresh; `durability` reads the index's `index.translog.durability`. `backup` is the
//! snapshot API: a snapshot of the index alone into an `fs` repository of dbbench's own,
//! named after the index and marked by a `created_by` setting, in a folder of that name
//! under the server's `path.repo` (services/engines/elasticsearch.sh sets it). `restore`
//! deletes the marked index and restores it from the snapshot; `cleanup` removes the
//! repository (snapshots, folder, registration) with the index.
//!
//! Topology: after the load, `_cluster/health` of the index (nodes, data nodes, status),
//! the index's `number_of_shards` and `number_of_replicas`, and `_cat/shards` (where each
//! copy is) say how the index is laid out, one node or several; a replica that cannot be
//! placed (a replica never shares a node with its primary, so on one node it stays
//! unassigned and the index is yellow) is said so, not counted as a copy.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde_json::{json, Value};

use super::shared::http::{self, status_error};
use super::shared::{self, Found, Namespace, Prepared, MARKER_KEY, MARKER_VALUE};
use super::*;

pub const KIND: DriverKind = DriverKind {
    kind: "elasticsearch",
    summary: "Elasticsearch REST: HNSW/int8 kNN with filters, BM25 text, hybrid fused client-side from one _msearch",
    default_url: Some("http://127.0.0.1:9200"),
    start_hint: "services/up.sh elasticsearch (or: docker compose -f docker-compose.bench.yml up -d elasticsearch)",
    capabilities,
    params: &[NUM_CANDIDATES],
    validate: |cfg| Settings::parse(cfg).map(|_| ()),
    open: |cfg| Ok(Box::new(Elasticsearch::new(cfg)?)),
    hidden: false,
};

/// Sent in the kNN clause of the request, over `settings.num_candidates`.
const NUM_CANDIDATES: ParamDef = ParamDef {
    name: "num_candidates",
    kind: ParamKind::Integer { min: 1, max: 10_000 },
    ops: params::VECTOR_SEARCH,
    summary: "HNSW candidates per shard (raised to k if lower); default settings.num_candidates",
};

const HYBRID_NOTE: &str = "kNN and BM25 searches sent together in one _msearch round trip, fused by reciprocal rank fusion in dbbench (Elasticsearch's rrf retriever needs a paid licence and is missing from some builds)";

fn capabilities() -> Capabilities {
    let mut ops: BTreeMap<OpKind, Support> = OpKind::ALL.iter().map(|k| (*k, Support::Native)).collect();
    ops.insert(OpKind::Hybrid, Support::Client(HYBRID_NOTE));
    // Documents are addressed by _id, which has no order a search can walk by key; a
    // sorted range search over a numeric copy would be a search, seeing only refreshed
    // documents, not the key-ordered read that scan measures.
    ops.insert(OpKind::Scan, Support::No);
    // No multi-document transactions: a read then a write would be two requests with no
    // isolation between them, and scripted updates need painless, which not every build has.
    ops.insert(OpKind::ReadModifyWrite, Support::No);
    // No links between documents: an expansion would be a search per hop sent by
    // dbbench, not the engine's own, and is not offered.
    ops.insert(OpKind::Expand, Support::No);
    Capabilities { ops, filters: Support::Native, transactions: false }
}

/// Writes wait this long at most for bulk loads and index maintenance (force-merge of a
/// large index can take minutes), whatever `timeout_ms` says for measured requests.
const MAINTENANCE_TIMEOUT: Duration = Duration::from_secs(3600);

/// How long finish_load waits for the index's shard copies to start on their nodes.
const COPIES_STARTED_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Vector index: "none" (float32 HNSW, `hnsw`) or "int8" (scalar-quantized, `int8_hnsw`).
    pub quantization: String,
    /// HNSW graph degree.
    pub m: u32,
    /// HNSW build-time candidate list.
    pub ef_construction: u32,
    /// Candidates per shard for kNN, unless an op's params give `num_candidates`.
    pub num_candidates: usize,
    /// Analyzer of the text field (only analyzers built into the server exist everywhere).
    pub analyzer: String,
    /// BM25 k1 and b for the text field; absent: Elasticsearch's defaults (1.2, 0.75).
    pub bm25_k1: Option<f64>,
    pub bm25_b: Option<f64>,
    pub shards: u32,
    pub replicas: u32,
    /// Refresh policy of writes: "wait_for" (visible to the next search), "true" (forced
    /// refresh) or "false" (visible after the next periodic refresh).
    pub refresh: String,
    /// Force-merge to one segment in finish_load (one HNSW graph to search instead of many).
    pub force_merge: bool,
    /// Candidates taken from each side before reciprocal rank fusion (at least k).
    pub hybrid_candidates: usize,
    /// The k of reciprocal rank fusion: score = sum 1 / (rrf_k + rank).
    pub rrf_k: u32,
    /// Basic auth (overrides user info in the URL).
    pub username: Option<String>,
    pub password: Option<String>,
    /// An API key, as the encoded string Elasticsearch returns (base64 of id:key).
    pub api_key: Option<String>,
    /// Timeout of one measured request.
    pub timeout_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            quantization: "none".into(),
            m: 16,
            ef_construction: 100,
            num_candidates: 100,
            analyzer: "standard".into(),
            bm25_k1: None,
            bm25_b: None,
            shards: 1,
            replicas: 0,
            refresh: "wait_for".into(),
            force_merge: true,
            hybrid_candidates: 100,
            rrf_k: 60,
            username: None,
            password: None,
            api_key: None,
            timeout_ms: 30_000,
        }
    }
}

impl Settings {
    fn parse(cfg: &EngineConfig) -> Result<Self, String> {
        let s: Settings = parse_settings(cfg)?;
        let key = |k: &str| format!("engines.{}.settings.{k}", cfg.name);
        if !["none", "int8"].contains(&s.quantization.as_str()) {
            return Err(format!("{}: use \"none\" (hnsw) or \"int8\" (int8_hnsw)", key("quantization")));
        }
        if !["wait_for", "true", "false"].contains(&s.refresh.as_str()) {
            return Err(format!("{}: use \"wait_for\", \"true\" or \"false\"", key("refresh")));
        }
        if s.m < 2 || s.ef_construction == 0 {
            return Err(format!("{}: m must be at least 2 and ef_construction at least 1", key("m")));
        }
        if s.num_candidates == 0 || s.num_candidates > 10_000 {
            return Err(format!("{}: between 1 and 10000 (Elasticsearch's limit)", key("num_candidates")));
        }
        if s.hybrid_candidates == 0 || s.shards == 0 || s.timeout_ms == 0 {
            return Err(format!(
                "engines.{}.settings: hybrid_candidates, shards and timeout_ms must be at least 1",
                cfg.name
            ));
        }
        if s.api_key.is_some() && (s.username.is_some() || s.password.is_some()) {
            return Err(format!("engines.{}.settings: give api_key or username/password, not both", cfg.name));
        }
        if s.password.is_some() && s.username.is_none() {
            return Err(format!("{}: a password needs a username", key("password")));
        }
        Ok(s)
    }
}

/// How the driver authenticates, for describe (never the secret itself).
fn auth_kind(url: &Url, s: &Settings) -> String {
    if s.api_key.is_some() {
        "api_key".into()
    } else if let Some(u) = &s.username {
        format!("basic (user {u})")
    } else if !url.username().is_empty() {
        format!("basic (user {})", url.username())
    } else {
        "none".into()
    }
}

struct State {
    schema: Schema,
    index: String,
}

pub struct Elasticsearch {
    settings: Settings,
    /// Base URL with any user info removed (credentials travel in a default header).
    base: Url,
    auth: String,
    client: reqwest::Client,
    timeout: Duration,
    state: Prepared<State>,
}

/// An Elasticsearch index name for a collection: lower case, and characters an index name
/// cannot hold replaced by `_`. Collection names already start with `dbbench_`.
pub fn index_name(collection: &str) -> String {
    collection
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '_' | '-' | '.') => c,
            _ => '_',
        })
        .collect()
}

fn field_path(attr: &str) -> String {
    format!("attr.{attr}")
}

/// The filter as an Elasticsearch query in filter context, meaning exactly what
/// `Filter::matches` means: a value of the wrong kind for its attribute, an unknown
/// attribute or a range on a keyword attribute matches nothing (rather than being coerced
/// the way Elasticsearch's `term` on a numeric field would coerce "5" to 5), an empty
/// `and` matches everything and an empty `or` nothing.
pub fn filter_query(f: &Filter, schema: &Schema) -> Value {
    let kind = |field: &str| schema.attributes.iter().find(|a| a.name == field).map(|a| a.kind);
    let same_kind = |k: AttrKind, v: &AttrValue| {
        matches!((k, v), (AttrKind::Keyword, AttrValue::Keyword(_)) | (AttrKind::Integer, AttrValue::Integer(_)))
    };
    let none = || json!({ "match_none": {} });
    match f {
        Filter::Eq { field, value } => match kind(field) {
            Some(k) if same_kind(k, value) => json!({ "term": { field_path(field): value } }),
            _ => none(),
        },
        Filter::In { field, values } => {
            let Some(k) = kind(field) else { return none() };
            let kept: Vec<&AttrValue> = values.iter().filter(|v| same_kind(k, v)).collect();
            if kept.is_empty() {
                none()
            } else {
                json!({ "terms": { field_path(field): kept } })
            }
        }
        Filter::Range { field, gte, lt } => match kind(field) {
            Some(AttrKind::Integer) => {
                if gte.is_none() && lt.is_none() {
                    return json!({ "exists": { "field": field_path(field) } });
                }
                let mut bounds = serde_json::Map::new();
                if let Some(g) = gte {
                    bounds.insert("gte".into(), json!(g));
                }
                if let Some(l) = lt {
                    bounds.insert("lt".into(), json!(l));
                }
                json!({ "range": { field_path(field): bounds } })
            }
            _ => none(),
        },
        Filter::And(parts) if parts.is_empty() => json!({ "match_all": {} }),
        Filter::And(parts) => {
            let qs: Vec<Value> = parts.iter().map(|p| filter_query(p, schema)).collect();
            json!({ "bool": { "filter": qs } })
        }
        Filter::Or(parts) if parts.is_empty() => none(),
        Filter::Or(parts) => {
            let qs: Vec<Value> = parts.iter().map(|p| filter_query(p, schema)).collect();
            json!({ "bool": { "should": qs, "minimum_should_match": 1 } })
        }
    }
}

/// The body of a kNN search for `k` hits.
pub fn knn_body(vector: &[f32], k: usize, num_candidates: usize, filter: Option<&Filter>, schema: &Schema) -> Value {
    let mut knn = json!({
        "field": "vector",
        "query_vector": vector,
        "k": k,
        "num_candidates": num_candidates.max(k),
    });
    if let Some(f) = filter {
        knn["filter"] = filter_query(f, schema);
    }
    json!({ "knn": knn, "size": k, "_source": false, "track_total_hits": false })
}

/// The body of a BM25 search for `k` hits: any query word may match (OR), the filter
/// restricts without scoring.
pub fn text_body(query: &str, k: usize, filter: Option<&Filter>, schema: &Schema) -> Value {
    let matching = json!({ "match": { "text": { "query": query, "operator": "or" } } });
    let q = match filter {
        Some(f) => json!({ "bool": { "must": [matching], "filter": [filter_query(f, schema)] } }),
        None => matching,
    };
    json!({ "query": q, "size": k, "_source": false, "track_total_hits": false })
}

/// Reciprocal rank fusion of ranked lists (ranks from 1): score = sum 1 / (rrf_k + rank),
/// ties broken by the smaller id, so the order is deterministic.
pub fn rrf(lists: &[Vec<u64>], rrf_k: u32, k: usize) -> Vec<u64> {
    let mut score: HashMap<u64, f64> = HashMap::new();
    for list in lists {
        for (i, id) in list.iter().enumerate() {
            *score.entry(*id).or_default() += 1.0 / (rrf_k as f64 + i as f64 + 1.0);
        }
    }
    let mut fused: Vec<(u64, f64)> = score.into_iter().collect();
    fused.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    fused.into_iter().take(k).map(|(id, _)| id).collect()
}

fn transport_err(path: &str, e: reqwest::Error) -> DriverError {
    // The URL carries no credentials (they live in a header), and the path says what.
    http::transport_error("elasticsearch", path.split('?').next().unwrap_or(path), e)
}

/// Elasticsearch's own error as one line: `type: reason (root cause)`.
fn error_reason(body: &Value) -> String {
    let err = &body["error"];
    if let Some(s) = err.as_str() {
        return s.to_string();
    }
    let mut out = format!(
        "{}: {}",
        err["type"].as_str().unwrap_or("error"),
        err["reason"].as_str().unwrap_or("(no reason given)")
    );
    if let Some(cause) = err["caused_by"]["reason"].as_str() {
        out.push_str(&format!(" (caused by: {cause})"));
    }
    out
}

fn rejected(status: StatusCode, body: &Value, what: &str) -> DriverError {
    status_error("elasticsearch", what, status, &error_reason(body))
}

/// Ids of a search response's hits, best first.
fn hit_ids(resp: &Value) -> DriverResult<Vec<u64>> {
    let Some(hits) = resp["hits"]["hits"].as_array() else {
        // filter_path drops `hits` entirely when there are none.
        return Ok(Vec::new());
    };
    hits.iter()
        .map(|h| {
            h["_id"]
                .as_str()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| DriverError::protocol(format!("elasticsearch: hit without a numeric _id: {h}")))
        })
        .collect()
}

fn shard_failures(resp: &Value, what: &str) -> DriverResult<()> {
    if resp["_shards"]["failed"].as_u64().unwrap_or(0) > 0 {
        let why = resp["_shards"]["failures"][0]["reason"]["reason"].as_str().unwrap_or("unknown reason");
        return Err(DriverError::rejected(format!("elasticsearch {what}: a shard failed: {why}")));
    }
    if resp["timed_out"].as_bool() == Some(true) {
        return Err(DriverError::new(
            ErrorKind::Timeout,
            format!("elasticsearch {what}: search timed out on the server"),
        ));
    }
    Ok(())
}

fn document(r: &Record, schema: &Schema) -> DriverResult<Value> {
    if r.attributes.len() != schema.attributes.len() {
        return Err(DriverError::other(format!(
            "record {} has {} attributes, the schema {}",
            r.id,
            r.attributes.len(),
            schema.attributes.len()
        )));
    }
    let attr: serde_json::Map<String, Value> =
        schema.attributes.iter().zip(&r.attributes).map(|(a, v)| (a.name.clone(), json!(v))).collect();
    Ok(json!({ "vector": &*r.vector, "text": &*r.text, "attr": attr }))
}

fn record_from_source(id: u64, source: &Value, schema: &Schema) -> DriverResult<Record> {
    let bad = |what: &str| DriverError::protocol(format!("elasticsearch: document {id} has no {what} in _source"));
    let vector: Vec<f32> = source["vector"]
        .as_array()
        .ok_or_else(|| bad("vector"))?
        .iter()
        .map(|x| x.as_f64().map(|f| f as f32).ok_or_else(|| bad("numeric vector")))
        .collect::<DriverResult<_>>()?;
    let text = source["text"].as_str().ok_or_else(|| bad("text"))?;
    let mut attributes = Vec::with_capacity(schema.attributes.len());
    for a in &schema.attributes {
        let v = &source["attr"][&a.name];
        attributes.push(match a.kind {
            AttrKind::Keyword => AttrValue::Keyword(v.as_str().ok_or_else(|| bad(&a.name))?.to_string()),
            AttrKind::Integer => AttrValue::Integer(v.as_i64().ok_or_else(|| bad(&a.name))?),
        });
    }
    Ok(Record { id, vector: Arc::from(vector), text: Arc::from(text), attributes })
}

/// How the cluster lays the index out, from `_cluster/health/<index>`, the index's
/// `_settings` (flat) and `_cat/shards/<index>?format=json`, as the server answered them.
pub fn topology_of(index: &str, health: &Value, settings: &Value, shards: &Value) -> DriverResult<Topology> {
    let count = |v: &Value, what: &str| {
        // Health gives numbers; settings and _cat give strings.
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| DriverError::protocol(format!("elasticsearch topology: no {what} in the answer: {v}")))
    };
    let nodes = count(&health["number_of_nodes"], "number_of_nodes")?;
    let data_nodes = count(&health["number_of_data_nodes"], "number_of_data_nodes")?;
    let set = &settings[index]["settings"];
    let primaries = count(&set["index.number_of_shards"], "index.number_of_shards")?;
    let replicas = count(&set["index.number_of_replicas"], "index.number_of_replicas")?;
    let copies = shards.as_array().map(Vec::as_slice).unwrap_or(&[]);
    let state = |c: &Value, st: &str| c["state"].as_str() == Some(st);
    let started: Vec<&Value> = copies.iter().filter(|c| state(c, "STARTED") || state(c, "RELOCATING")).collect();
    let holding: std::collections::BTreeSet<&str> = started.iter().filter_map(|c| c["node"].as_str()).collect();
    let unassigned = |prirep: &str| copies.iter().filter(|c| state(c, "UNASSIGNED") && c["prirep"] == prirep).count();
    let initializing = copies.iter().filter(|c| state(c, "INITIALIZING")).count();
    let total = primaries as usize * (replicas as usize + 1);
    let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });

    let mut note = format!(
        "cluster {}, status {}, ",
        health["cluster_name"].as_str().unwrap_or("(unnamed)"),
        health["status"].as_str().unwrap_or("unknown")
    );
    let on = plural(holding.len(), "node", "nodes");
    if started.len() == total {
        note.push_str(&format!("{} on {on}", plural(total, "shard copy", "shard copies")));
    } else {
        note.push_str(&format!(
            "{} of {} started, on {on}",
            started.len(),
            plural(total, "shard copy", "shard copies")
        ));
    }
    let (lost_primaries, lost_replicas) = (unassigned("p"), unassigned("r"));
    if lost_primaries > 0 {
        note.push_str(&format!("; {} unassigned", plural(lost_primaries, "primary", "primaries")));
    }
    if lost_replicas > 0 {
        note.push_str(&format!("; {} unassigned", plural(lost_replicas, "replica copy", "replica copies")));
        if replicas >= data_nodes {
            note.push_str(&format!(
                " (a replica never shares a node with its primary, and the cluster has {})",
                plural(data_nodes as usize, "data node", "data nodes")
            ));
        }
    }
    if initializing > 0 {
        note.push_str(&format!("; {initializing} still initializing"));
    }
    Ok(Topology {
        nodes,
        data_nodes: Some(data_nodes),
        shards: Some(primaries),
        replicas: Some(replicas),
        note: Some(note),
    })
}

impl Elasticsearch {
    pub fn new(cfg: &EngineConfig) -> Result<Self, String> {
        let settings = Settings::parse(cfg)?;
        let raw = cfg.url.as_deref().or(KIND.default_url).unwrap_or("http://127.0.0.1:9200");
        let mut base = Url::parse(raw).map_err(|e| format!("engines.{}.url {}: {e}", cfg.name, redact_url(raw)))?;
        if !["http", "https"].contains(&base.scheme()) {
            return Err(format!("engines.{}.url: use http:// or https://", cfg.name));
        }
        let auth = auth_kind(&base, &settings);
        let mut headers = HeaderMap::new();
        let url_user = (!base.username().is_empty())
            .then(|| (percent_decode(base.username()), base.password().map(percent_decode)));
        let credentials = if let Some(key) = &settings.api_key {
            Some(format!("ApiKey {key}"))
        } else if let Some(user) = &settings.username {
            Some(basic(user, settings.password.as_deref().unwrap_or("")))
        } else {
            url_user.map(|(u, p)| basic(&u, p.as_deref().unwrap_or("")))
        };
        if let Some(c) = credentials {
            let mut v = HeaderValue::from_str(&c).map_err(|_| {
                format!("engines.{}: credentials hold characters an HTTP header cannot carry", cfg.name)
            })?;
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        let _ = base.set_username("");
        let _ = base.set_password(None);
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        // No client-wide timeout: measured requests take `timeout_ms`, maintenance longer.
        let client = http::client(cfg, headers, Duration::from_secs(10), None)?;
        Ok(Elasticsearch {
            timeout: Duration::from_millis(settings.timeout_ms),
            settings,
            base,
            auth,
            client,
            state: Prepared::new("elasticsearch"),
        })
    }

    fn url(&self, path: &str) -> DriverResult<Url> {
        self.base.join(path).map_err(|e| DriverError::other(format!("elasticsearch: bad path {path}: {e}")))
    }

    /// One request; returns the status and the body as JSON (Null when empty).
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Body>,
        timeout: Duration,
    ) -> DriverResult<(StatusCode, Value)> {
        let mut req = self.client.request(method, self.url(path)?).timeout(timeout);
        match body {
            Some(Body::Json(v)) => {
                req = req
                    .header(CONTENT_TYPE, "application/json")
                    .body(serde_json::to_vec(&v).map_err(|e| DriverError::other(e.to_string()))?)
            }
            Some(Body::NdJson(b)) => req = req.header(CONTENT_TYPE, "application/x-ndjson").body(b),
            None => {}
        }
        let resp = req.send().await.map_err(|e| transport_err(path, e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| transport_err(path, e))?;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice(&bytes) {
                Ok(v) => v,
                // A failure status with a body that is not Elasticsearch's JSON (a proxy's
                // 502 page, a plain-text 429) is classified by its status, not as garbage.
                Err(_) if !status.is_success() => {
                    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]);
                    return Err(status_error("elasticsearch", path, status, text.trim()));
                }
                Err(e) => {
                    return Err(DriverError::protocol(format!(
                        "elasticsearch {path}: HTTP {}: not JSON ({e}): {}",
                        status.as_u16(),
                        String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
                    )))
                }
            }
        };
        Ok((status, value))
    }

    /// A request that must succeed (2xx).
    async fn ok(&self, method: Method, path: &str, body: Option<Body>, timeout: Duration) -> DriverResult<Value> {
        let (status, v) = self.call(method, path, body, timeout).await?;
        if status.is_success() {
            Ok(v)
        } else {
            Err(rejected(status, &v, path))
        }
    }

    fn refresh_param(&self) -> &str {
        &self.settings.refresh
    }

    fn num_candidates(&self, params: &SearchParams) -> DriverResult<usize> {
        Ok(NUM_CANDIDATES.integer("elasticsearch", params)?.map_or(self.settings.num_candidates, |n| n as usize))
    }

    fn mapping(&self, schema: &Schema) -> Value {
        let s = &self.settings;
        let similarity = match schema.metric {
            Metric::Cosine => "cosine",
            Metric::L2 => "l2_norm",
            // `dot_product` requires unit-length vectors and rejects others at index time;
            // dbbench's dot metric is a plain inner product, which is what
            // max_inner_product ranks by (and the same order on unit vectors).
            Metric::Dot => "max_inner_product",
        };
        let index_type = if s.quantization == "int8" { "int8_hnsw" } else { "hnsw" };
        let attrs: serde_json::Map<String, Value> = schema
            .attributes
            .iter()
            .map(|a| {
                // Integers are i64 in dbbench, hence `long` rather than `integer`.
                let ty = match a.kind {
                    AttrKind::Keyword => "keyword",
                    AttrKind::Integer => "long",
                };
                (a.name.clone(), json!({ "type": ty }))
            })
            .collect();
        let mut text = json!({ "type": "text", "analyzer": s.analyzer });
        let mut index_settings = json!({ "number_of_shards": s.shards, "number_of_replicas": s.replicas });
        if s.bm25_k1.is_some() || s.bm25_b.is_some() {
            let mut bm25 = json!({ "type": "BM25" });
            if let Some(k1) = s.bm25_k1 {
                bm25["k1"] = json!(k1);
            }
            if let Some(b) = s.bm25_b {
                bm25["b"] = json!(b);
            }
            index_settings["similarity"] = json!({ "dbbench_bm25": bm25 });
            text["similarity"] = json!("dbbench_bm25");
        }
        json!({
            "settings": index_settings,
            "mappings": {
                "_meta": { MARKER_KEY: MARKER_VALUE, "collection": schema.collection },
                "dynamic": "strict",
                "properties": {
                    "vector": {
                        "type": "dense_vector",
                        "dims": schema.dim,
                        "index": true,
                        "similarity": similarity,
                        "index_options": { "type": index_type, "m": s.m, "ef_construction": s.ef_construction },
                    },
                    "text": text,
                    "attr": { "properties": attrs },
                },
            },
        })
    }

    async fn search(&self, index: &str, body: Value) -> DriverResult<Vec<u64>> {
        let path = format!("{index}/_search?filter_path=hits.hits._id,_shards.failed,_shards.failures,timed_out,error");
        let v = self.ok(Method::POST, &path, Some(Body::Json(body)), self.timeout).await?;
        shard_failures(&v, "search")?;
        hit_ids(&v)
    }
}

/// How long a restore may take before it counts as failed, and how long the restored
/// index then has to become searchable: a snapshot that cannot be restored (damaged files)
/// comes back as an error, never as a wait without end.
const RESTORE_TIMEOUT: Duration = Duration::from_secs(1800);
const RESTORED_HEALTH_TIMEOUT: Duration = Duration::from_secs(120);

/// The snapshot repository of an index: registered under the index's own name (a
/// namespace apart from indices), type `fs`, in a folder of that name under the server's
/// `path.repo`, and marked by a `created_by = "dbbench"` setting of its own.
pub fn repository_name(index: &str) -> String {
    index.to_string()
}

/// The folder of repository location `location` on the server: an absolute location as
/// it is, a relative one under the `path.repo` entry that holds it (else the first).
fn repository_dir(path_repo: &[String], location: &str) -> Option<std::path::PathBuf> {
    let loc = std::path::Path::new(location);
    if loc.is_absolute() {
        return Some(loc.to_path_buf());
    }
    let under = |r: &String| std::path::Path::new(r).join(loc);
    path_repo.iter().map(under).find(|d| d.exists()).or_else(|| path_repo.first().map(under))
}

/// A repository registration as `GET _snapshot/<name>` returns it.
struct Repository {
    marked: bool,
    location: Option<String>,
}

impl Elasticsearch {
    /// The server's `path.repo` entries (empty when it has none).
    async fn path_repo(&self) -> DriverResult<Vec<String>> {
        let path = "_nodes/_local/settings?filter_path=nodes.*.settings.path.repo";
        let v = self.ok(Method::GET, path, None, self.timeout).await?;
        let repo =
            v["nodes"].as_object().and_then(|m| m.values().next()).map(|n| n["settings"]["path"]["repo"].clone());
        Ok(match repo {
            Some(Value::String(s)) => vec![s],
            Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        })
    }

    /// The repository registered under `name`, if any.
    async fn repository(&self, name: &str) -> DriverResult<Option<Repository>> {
        let (status, v) = self.call(Method::GET, &format!("_snapshot/{name}"), None, self.timeout).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(rejected(status, &v, "get snapshot repository"));
        }
        let r = &v[name];
        Ok(Some(Repository {
            marked: r["type"].as_str() == Some("fs") && r["settings"][MARKER_KEY].as_str() == Some(MARKER_VALUE),
            location: r["settings"]["location"].as_str().map(str::to_string),
        }))
    }

    /// Remove dbbench's repository `name` if there is one: its snapshots, its folder when
    /// it is on this machine, then its registration. A repository without dbbench's
    /// marker is left alone.
    async fn drop_repository(&self, name: &str) -> DriverResult<()> {
        let Some(repo) = self.repository(name).await? else { return Ok(()) };
        if !repo.marked {
            return Ok(());
        }
        let mut snapshot_error = None;
        let listed = self
            .ok(Method::GET, &format!("_snapshot/{name}/_all?filter_path=snapshots.snapshot"), None, self.timeout)
            .await;
        match listed {
            Ok(v) => {
                let snaps: Vec<&str> =
                    v["snapshots"].as_array().into_iter().flatten().filter_map(|s| s["snapshot"].as_str()).collect();
                if !snaps.is_empty() {
                    let path = format!("_snapshot/{name}/{}", snaps.join(","));
                    if let Err(e) = self.ok(Method::DELETE, &path, None, MAINTENANCE_TIMEOUT).await {
                        snapshot_error = Some(e);
                    }
                }
            }
            Err(e) => snapshot_error = Some(e),
        }
        let dir = match &repo.location {
            Some(loc) => repository_dir(&self.path_repo().await?, loc),
            None => None,
        };
        match dir.filter(|d| d.is_dir()) {
            Some(d) => std::fs::remove_dir_all(&d).map_err(|e| {
                DriverError::other(format!(
                    "elasticsearch: cannot remove the snapshot repository folder {}: {e}",
                    d.display()
                ))
            })?,
            // The folder is not on this machine: what the server deleted is all there is.
            None => {
                if let Some(e) = snapshot_error {
                    return Err(e);
                }
            }
        }
        self.ok(Method::DELETE, &format!("_snapshot/{name}"), None, self.timeout).await.map(|_| ())
    }

    /// Delete the restored index again after a failed restore, so a red index does not
    /// hold the whole cluster's health at red; only ever dbbench's own.
    async fn drop_failed_restore(&self, collection: &str) {
        let _ = shared::release_own(&mut Indices(self), collection).await;
    }

    /// Why the index's primary shard is not allocated, as `: reason`, or nothing when the
    /// server does not say (a failed restore's cause, such as a corrupt file, is there).
    async fn unassigned_why(&self, index: &str) -> String {
        let body = json!({ "index": index, "shard": 0, "primary": true });
        let explained = self.ok(Method::GET, "_cluster/allocation/explain", Some(Body::Json(body)), self.timeout).await;
        let Ok(e) = explained else { return String::new() };
        let why = e["unassigned_info"]["details"].as_str().or_else(|| e["allocate_explanation"].as_str());
        // The details are a Java stack trace; its last cause names the fault (a corrupt file).
        let root = |w: &str| {
            let cause = w.rsplit("Caused by: ").next().unwrap_or(w);
            cause.lines().next().unwrap_or(cause).chars().take(400).collect::<String>()
        };
        why.map(|w| format!(": {}", root(w))).unwrap_or_default()
    }

    /// Wait until the restored index is allocated (yellow at least) and answers a count.
    async fn wait_restored(&self, index: &str) -> DriverResult<u64> {
        let secs = RESTORED_HEALTH_TIMEOUT.as_secs();
        let path = format!("_cluster/health/{index}?wait_for_status=yellow&timeout={secs}s");
        let (status, v) =
            self.call(Method::GET, &path, None, RESTORED_HEALTH_TIMEOUT + Duration::from_secs(10)).await?;
        let health = v["status"].as_str().unwrap_or("unknown");
        if !(status.is_success() && matches!(health, "green" | "yellow")) || v["timed_out"].as_bool() == Some(true) {
            return Err(DriverError::other(format!(
                "elasticsearch restore: index {index} is {health} {secs} s after the restore, not searchable{}",
                self.unassigned_why(index).await
            )));
        }
        self.ok(Method::POST, &format!("{index}/_refresh"), None, self.timeout).await?;
        let count = self.ok(Method::GET, &format!("{index}/_count"), None, self.timeout).await?;
        count["count"]
            .as_u64()
            .ok_or_else(|| DriverError::protocol(format!("elasticsearch _count: no count in {count}")))
    }
}

enum Body {
    Json(Value),
    NdJson(Vec<u8>),
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// Elasticsearch's calls on dbbench's namespace: one index per collection, marked by
/// `_meta.created_by` in its mapping.
struct Indices<'a>(&'a Elasticsearch);

#[async_trait]
impl Namespace for Indices<'_> {
    type Created = ();

    const ENGINE: &'static str = "elasticsearch";

    fn object(&self, collection: &str) -> String {
        format!("index or alias {}", index_name(collection))
    }

    fn marker(&self) -> String {
        format!("_meta.{MARKER_KEY} = {MARKER_VALUE:?} in its mapping")
    }

    const REMEDY: &'static str = "delete or rename it yourself, or rename the workload";

    async fn find(&mut self, collection: &str) -> DriverResult<Found> {
        let index = index_name(collection);
        let path = format!("{index}?filter_path=*.mappings._meta");
        let (status, v) = self.0.call(Method::GET, &path, None, MAINTENANCE_TIMEOUT).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(Found::Absent);
        }
        if !status.is_success() {
            return Err(rejected(status, &v, &index));
        }
        // An alias answers with the name of the index behind it: never ours to drop.
        let marked = v.as_object().is_some_and(|m| m.len() == 1 && m.contains_key(&index))
            && v[&index]["mappings"]["_meta"][MARKER_KEY].as_str() == Some(MARKER_VALUE);
        Ok(if marked { Found::Marked } else { Found::Unmarked })
    }

    async fn create(&mut self, schema: &Schema) -> DriverResult<()> {
        let body = Some(Body::Json(self.0.mapping(schema)));
        self.0.ok(Method::PUT, &index_name(&schema.collection), body, MAINTENANCE_TIMEOUT).await.map(|_| ())
    }

    async fn drop_marked(&mut self, collection: &str) -> DriverResult<()> {
        self.0.ok(Method::DELETE, &index_name(collection), None, MAINTENANCE_TIMEOUT).await.map(|_| ())
    }

    /// The index as it is, once its vectors are known to have the workload's dimension.
    async fn open(&mut self, schema: &Schema) -> DriverResult<()> {
        let index = index_name(&schema.collection);
        let path = format!("{index}/_mapping?filter_path=*.mappings.properties.vector.dims");
        let v = self.0.ok(Method::GET, &path, None, self.0.timeout).await?;
        let dims = v[&index]["mappings"]["properties"]["vector"]["dims"].as_u64();
        if dims != Some(schema.dim as u64) {
            return Err(DriverError::rejected(format!(
                "elasticsearch: index {index} holds vectors of {} dimensions, the workload's have {}",
                dims.map_or("unknown".into(), |d| d.to_string()),
                schema.dim
            )));
        }
        Ok(())
    }
}

#[async_trait]
impl Driver for Elasticsearch {
    fn write_visibility(&self) -> String {
        match self.settings.refresh.as_str() {
            "wait_for" => "refresh=wait_for: a write is acknowledged once a refresh has made it searchable".into(),
            "true" => "refresh=true: each write forces a refresh before it is acknowledged".into(),
            other => format!(
                "refresh={other}: a write is searchable after the next periodic refresh (index.refresh_interval)"
            ),
        }
    }
    fn kind(&self) -> &'static str {
        "elasticsearch"
    }

    fn capabilities(&self) -> Capabilities {
        capabilities()
    }

    async fn ping(&self) -> DriverResult<()> {
        self.ok(Method::GET, "_cluster/health", None, self.timeout).await.map(|_| ())
    }

    async fn prepare(&self, schema: &Schema) -> DriverResult<()> {
        let index = index_name(&schema.collection);
        if !index.starts_with("dbbench_") {
            return Err(DriverError::other(format!(
                "elasticsearch: refusing index name {index}: not in dbbench's namespace"
            )));
        }
        shared::prepare_own(&mut Indices(self), schema).await?;
        self.state.set(State { schema: schema.clone(), index });
        Ok(())
    }

    async fn load(&self, batch: &[Record]) -> DriverResult<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let st = self.state.get()?;
        let mut body = Vec::with_capacity(batch.len() * (st.schema.dim * 12 + 256));
        for r in batch {
            let action = json!({ "index": { "_id": r.id.to_string() } });
            for v in [action, document(r, &st.schema)?] {
                serde_json::to_writer(&mut body, &v).map_err(|e| DriverError::other(e.to_string()))?;
                body.push(b'\n');
            }
        }
        // No refresh here: finish_load refreshes once, after everything is in.
        let path = format!("{}/_bulk?filter_path=errors,items.*.status,items.*.error,items.*._id", st.index);
        let v = self.ok(Method::POST, &path, Some(Body::NdJson(body)), MAINTENANCE_TIMEOUT).await?;
        let items = v["items"].as_array().map(|a| a.as_slice()).unwrap_or(&[]);
        let failed: Vec<&Value> = items
            .iter()
            .filter_map(|it| it.as_object().and_then(|o| o.values().next()))
            .filter(|r| !r["status"].as_u64().is_some_and(|s| (200..300).contains(&s)))
            .collect();
        if v["errors"].as_bool() != Some(false) || !failed.is_empty() || items.len() != batch.len() {
            let first = failed
                .first()
                .map(|r| {
                    format!("document {}: HTTP {}: {}", r["_id"].as_str().unwrap_or("?"), r["status"], error_reason(r))
                })
                .unwrap_or_else(|| format!("{} results for {} documents", items.len(), batch.len()));
            return Err(DriverError::rejected(format!(
                "elasticsearch _bulk: {} of {} documents failed; first: {first}",
                failed.len().max(1),
                batch.len()
            )));
        }
        Ok(())
    }

    async fn finish_load(&self) -> DriverResult<IndexStats> {
        let st = self.state.get()?;
        let i = &st.index;
        self.ok(Method::POST, &format!("{i}/_refresh"), None, MAINTENANCE_TIMEOUT).await?;
        if self.settings.force_merge {
            self.ok(Method::POST, &format!("{i}/_forcemerge?max_num_segments=1"), None, MAINTENANCE_TIMEOUT).await?;
            self.ok(Method::POST, &format!("{i}/_refresh"), None, MAINTENANCE_TIMEOUT).await?;
        }
        // The index is built when every copy that can be placed has started: replicas on
        // other nodes copy what the primaries hold. One that cannot be placed (a replica
        // on a single node) is not waited for; topology says so. wait_for_events first
        // lets the master place what it can (a replica of a new index is unassigned, not
        // yet initializing, until it has).
        let secs = COPIES_STARTED_TIMEOUT.as_secs();
        let path = format!(
            "_cluster/health/{i}?wait_for_events=languid&wait_for_no_initializing_shards=true\
             &wait_for_no_relocating_shards=true&timeout={secs}s"
        );
        // A 408 (still initializing at the timeout) is not a failure of the load.
        self.call(Method::GET, &path, None, COPIES_STARTED_TIMEOUT + Duration::from_secs(10)).await?;
        let count = self.ok(Method::GET, &format!("{i}/_count"), None, MAINTENANCE_TIMEOUT).await?;
        let stats = self.ok(Method::GET, &format!("{i}/_stats/store,segments"), None, MAINTENANCE_TIMEOUT).await?;
        let total = &stats["indices"][i]["total"];
        let s = &self.settings;
        let mut details = BTreeMap::new();
        let index_type = if s.quantization == "int8" { "int8_hnsw" } else { "hnsw" };
        details.insert(
            "knn".into(),
            json!(format!(
                "{index_type} (m {}, ef_construction {}), num_candidates {}",
                s.m, s.ef_construction, s.num_candidates
            )),
        );
        details.insert("text".into(), json!(format!("BM25 match (OR) on one text field, {} analyzer", s.analyzer)));
        if let Some(n) = total["segments"]["count"].as_u64() {
            details.insert("segments".into(), json!(n));
        }
        details.insert("force_merged".into(), json!(s.force_merge));
        Ok(IndexStats {
            records: count["count"].as_u64(),
            size_bytes: total["store"]["size_in_bytes"].as_u64(),
            details,
        })
    }

    async fn execute(&self, op: &Op<'_>) -> DriverResult<Outcome> {
        let st = self.state.get()?;
        let (schema, index) = (&st.schema, &st.index);
        match op {
            Op::Knn { vector, k, filter, params } => {
                let body = knn_body(vector, *k, self.num_candidates(params)?, *filter, schema);
                Ok(Outcome::Hits(self.search(index, body).await?))
            }
            Op::Text { query, k, filter, .. } => {
                Ok(Outcome::Hits(self.search(index, text_body(query, *k, *filter, schema)).await?))
            }
            Op::Hybrid { vector, query, k, filter, params } => {
                let n = self.settings.hybrid_candidates.max(*k);
                let knn = knn_body(vector, n, self.num_candidates(params)?, *filter, schema);
                let text = text_body(query, n, *filter, schema);
                let mut body = Vec::with_capacity(vector.len() * 12 + 512);
                for part in [json!({}), knn, json!({}), text] {
                    serde_json::to_writer(&mut body, &part).map_err(|e| DriverError::other(e.to_string()))?;
                    body.push(b'\n');
                }
                let path = format!(
                    "{index}/_msearch?filter_path=responses.hits.hits._id,responses._shards.failed,responses._shards.failures,responses.timed_out,responses.error,responses.status,error"
                );
                let v = self.ok(Method::POST, &path, Some(Body::NdJson(body)), self.timeout).await?;
                let responses = v["responses"].as_array().filter(|r| r.len() == 2).ok_or_else(|| {
                    DriverError::protocol(format!(
                        "elasticsearch _msearch: expected 2 responses, got {}",
                        v["responses"]
                    ))
                })?;
                let mut lists = Vec::with_capacity(2);
                for (r, what) in responses.iter().zip(["hybrid knn", "hybrid text"]) {
                    if r.get("error").is_some() {
                        let status = r["status"].as_u64().and_then(|s| StatusCode::from_u16(s as u16).ok());
                        return Err(rejected(status.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), r, what));
                    }
                    shard_failures(r, what)?;
                    lists.push(hit_ids(r)?);
                }
                Ok(Outcome::Hits(rrf(&lists, self.settings.rrf_k, *k)))
            }
            Op::Get { id } => {
                let (status, v) = self.call(Method::GET, &format!("{index}/_doc/{id}"), None, self.timeout).await?;
                if status == StatusCode::NOT_FOUND && v["found"].as_bool() == Some(false) {
                    return Ok(Outcome::Found(None));
                }
                if !status.is_success() {
                    return Err(rejected(status, &v, "get"));
                }
                Ok(Outcome::Found(Some(record_from_source(*id, &v["_source"], schema)?)))
            }
            Op::Insert { record } => {
                // _create, not index: an insert of an existing id fails as it would in SQL.
                let path = format!("{index}/_create/{}?refresh={}", record.id, self.refresh_param());
                self.ok(Method::PUT, &path, Some(Body::Json(document(record, schema)?)), self.timeout).await?;
                Ok(Outcome::Written(1))
            }
            Op::Update { id, field, value } => {
                if schema.attribute_index(field).is_none() {
                    return Err(DriverError::rejected(format!("elasticsearch update: no attribute {field}")));
                }
                let path = format!("{index}/_update/{id}?refresh={}", self.refresh_param());
                let body = json!({ "doc": { "attr": { *field: value } } });
                let (status, v) = self.call(Method::POST, &path, Some(Body::Json(body)), self.timeout).await?;
                if status == StatusCode::NOT_FOUND && v["error"]["type"].as_str() == Some("document_missing_exception")
                {
                    return Ok(Outcome::Written(0));
                }
                if !status.is_success() {
                    return Err(rejected(status, &v, "update"));
                }
                // "noop" (the value was already there) still found and matched the document.
                Ok(Outcome::Written(1))
            }
            Op::Delete { id } => {
                let path = format!("{index}/_doc/{id}?refresh={}", self.refresh_param());
                let (status, v) = self.call(Method::DELETE, &path, None, self.timeout).await?;
                if status == StatusCode::NOT_FOUND && v["result"].as_str() == Some("not_found") {
                    return Ok(Outcome::Written(0));
                }
                if !status.is_success() {
                    return Err(rejected(status, &v, "delete"));
                }
                Ok(Outcome::Written(1))
            }
            Op::Scan { .. } | Op::ReadModifyWrite { .. } | Op::Expand { .. } => {
                Err(DriverError::unsupported(format!("elasticsearch: {} is not supported", op.kind())))
            }
        }
    }

    async fn describe(&self) -> DriverResult<EngineInfo> {
        // `GET /` lives in a module some distributions leave out; the nodes API is core.
        let (status, root) = self.call(Method::GET, "", None, self.timeout).await?;
        let (version, flavor, build) = if status.is_success() && root["version"]["number"].is_string() {
            let v = &root["version"];
            (v["number"].clone(), v["build_flavor"].clone(), v["build_hash"].clone())
        } else {
            let nodes = self
                .ok(
                    Method::GET,
                    "_nodes/_local?filter_path=nodes.*.version,nodes.*.build_flavor,nodes.*.build_hash",
                    None,
                    self.timeout,
                )
                .await?;
            let node = nodes["nodes"].as_object().and_then(|m| m.values().next()).cloned().unwrap_or(Value::Null);
            (node["version"].clone(), node["build_flavor"].clone(), node["build_hash"].clone())
        };
        let version = version
            .as_str()
            .ok_or_else(|| DriverError::protocol("elasticsearch: neither / nor /_nodes/_local gave a version"))?;
        let flavor = flavor.as_str().unwrap_or("unknown flavor");
        let build: String = build.as_str().unwrap_or("unknown").chars().take(12).collect();
        let s = &self.settings;
        let settings = json!({
            "url": redact_url(self.base.as_str()),
            "auth": self.auth,
            "quantization": s.quantization,
            "index": if s.quantization == "int8" { "int8_hnsw" } else { "hnsw" },
            "m": s.m,
            "ef_construction": s.ef_construction,
            "num_candidates": s.num_candidates,
            "analyzer": s.analyzer,
            "bm25_k1": s.bm25_k1.map(|x| json!(x)).unwrap_or(json!("default (1.2)")),
            "bm25_b": s.bm25_b.map(|x| json!(x)).unwrap_or(json!("default (0.75)")),
            "shards": s.shards,
            "replicas": s.replicas,
            "refresh": s.refresh,
            "force_merge": s.force_merge,
            "hybrid": format!("reciprocal rank fusion in dbbench over one _msearch, {} candidates per side, k = {}", s.hybrid_candidates, s.rrf_k),
            "timeout_ms": s.timeout_ms,
            "build": format!("{flavor}, {build}"),
        });
        Ok(EngineInfo {
            version: format!("Elasticsearch {version} ({flavor}, build {build})"),
            settings: settings.as_object().cloned().unwrap_or_default(),
        })
    }

    /// Nodes, data nodes, primary shards and replicas of dbbench's index, and where its
    /// copies are, as the cluster reports them; one node is a topology too, so a report
    /// can put it beside a cluster.
    async fn topology(&self) -> DriverResult<Option<Topology>> {
        let st = self.state.get()?;
        let i = &st.index;
        let health = self.ok(Method::GET, &format!("_cluster/health/{i}"), None, self.timeout).await?;
        let path = format!("{i}/_settings/index.number_of_shards,index.number_of_replicas?flat_settings=true");
        let settings = self.ok(Method::GET, &path, None, self.timeout).await?;
        let path = format!("_cat/shards/{i}?format=json&h=shard,prirep,state,node");
        let shards = self.ok(Method::GET, &path, None, self.timeout).await?;
        topology_of(i, &health, &settings, &shards).map(Some)
    }

    /// The index, and the snapshot repository `backup` made for it (snapshots, folder and
    /// registration), when they carry dbbench's marker.
    async fn cleanup(&self) -> DriverResult<()> {
        let st = self.state.take();
        shared::release_prepared(&mut Indices(self), st.as_deref().map(|s| s.schema.collection.as_str())).await?;
        match st {
            Some(st) => self.drop_repository(&repository_name(&st.index)).await,
            None => Ok(()),
        }
    }

    async fn attach(&self, schema: &Schema) -> DriverResult<()> {
        let index = index_name(&schema.collection);
        if !index.starts_with("dbbench_") {
            return Err(DriverError::other(format!(
                "elasticsearch: refusing index name {index}: not in dbbench's namespace"
            )));
        }
        shared::namespace::attach_own(&mut Indices(self), schema).await?;
        self.state.set(State { schema: schema.clone(), index });
        Ok(())
    }

    /// `_count` after a refresh, so writes made with `refresh = false` are counted too.
    async fn count(&self) -> DriverResult<u64> {
        let st = self.state.get()?;
        self.ok(Method::POST, &format!("{}/_refresh", st.index), None, self.timeout).await?;
        let v = self.ok(Method::GET, &format!("{}/_count", st.index), None, self.timeout).await?;
        v["count"].as_u64().ok_or_else(|| DriverError::protocol(format!("elasticsearch _count: no count in {v}")))
    }

    /// The index's `index.translog.durability` (and `sync_interval` when it is async), as
    /// the server reports them, and the refresh policy of writes.
    async fn durability(&self) -> String {
        let refresh = format!("refresh {}", self.settings.refresh);
        let Some(st) = self.state.peek() else {
            return format!(
                "translog durability not read (no index yet; Elasticsearch's default is request); {refresh}"
            );
        };
        let path = format!("{}/_settings/index.translog.*?include_defaults=true&flat_settings=true", st.index);
        let v = match self.ok(Method::GET, &path, None, self.timeout).await {
            Ok(v) => v,
            Err(e) => return format!("translog durability not read ({}); {refresh}", e.message),
        };
        let setting = |key: &str| {
            let i = &v[&st.index];
            i["settings"][key].as_str().or_else(|| i["defaults"][key].as_str()).map(str::to_string)
        };
        match setting("index.translog.durability").map(|d| d.to_ascii_lowercase()).as_deref() {
            Some("request") => {
                format!("translog durability request (fsync before each write is acknowledged); {refresh}")
            }
            Some("async") => format!(
                "translog durability async (fsync every {}, so writes acknowledged since the last one can be lost in a crash); {refresh}",
                setting("index.translog.sync_interval").unwrap_or_else(|| "sync_interval".into())
            ),
            Some(other) => format!("translog durability {other}; {refresh}"),
            None => format!("translog durability not reported by the server; {refresh}"),
        }
    }

    /// A snapshot of dbbench's index alone (no global state) into dbbench's own `fs`
    /// repository (`repository_name`), which needs the server's `path.repo`. An earlier
    /// repository of dbbench's under that name is removed first, so the repository holds
    /// this snapshot's files only. `target.dir` stays empty: the files are the server's.
    async fn backup(&self, _target: &BackupTarget<'_>) -> DriverResult<Backup> {
        let st = self.state.get()?;
        let path_repo = self.path_repo().await?;
        if path_repo.is_empty() {
            return Err(DriverError::unsupported(
                "elasticsearch: the server has no path.repo, so it has no place for a filesystem snapshot repository; \
                 set path.repo in elasticsearch.yml and restart it (services/engines/elasticsearch.sh sets it: \
                 bash services/down.sh elasticsearch && bash services/up.sh elasticsearch)",
            ));
        }
        let name = repository_name(&st.index);
        match self.repository(&name).await? {
            Some(r) if !r.marked => {
                return Err(DriverError::rejected(format!(
                    "elasticsearch: snapshot repository {name} exists and was not created by dbbench \
                     (no settings.{MARKER_KEY} = {MARKER_VALUE:?}); remove or rename it yourself"
                )))
            }
            Some(_) => self.drop_repository(&name).await?,
            None => {}
        }
        let dir = repository_dir(&path_repo, &name);
        if let Some(d) = dir.as_ref().filter(|d| std::fs::read_dir(d).is_ok_and(|mut e| e.next().is_some())) {
            return Err(DriverError::rejected(format!(
                "elasticsearch: {} is not empty and no repository of dbbench's is registered on it; \
                 remove it yourself if it is not needed",
                d.display()
            )));
        }
        let body = json!({
            "type": "fs",
            "settings": { "location": name, MARKER_KEY: MARKER_VALUE, "collection": st.schema.collection },
        });
        self.ok(Method::PUT, &format!("_snapshot/{name}"), Some(Body::Json(body)), MAINTENANCE_TIMEOUT).await?;
        let millis = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let snapshot = format!("{}-{millis}", st.index);
        let body = json!({
            "indices": st.index,
            "include_global_state": false,
            "metadata": { MARKER_KEY: MARKER_VALUE, "collection": st.schema.collection },
        });
        let path = format!("_snapshot/{name}/{snapshot}?wait_for_completion=true");
        let v = self.ok(Method::PUT, &path, Some(Body::Json(body)), MAINTENANCE_TIMEOUT).await?;
        let snap = &v["snapshot"];
        if snap["state"].as_str() != Some("SUCCESS") || snap["shards"]["failed"].as_u64() != Some(0) {
            return Err(DriverError::other(format!(
                "elasticsearch snapshot {snapshot}: state {}, {} shard(s) failed: {}",
                snap["state"], snap["shards"]["failed"], snap["failures"]
            )));
        }
        let location = dir.unwrap_or_else(|| std::path::PathBuf::from(&name));
        let tool = format!(
            "Elasticsearch snapshot API: snapshot {snapshot} of index {} alone, into fs repository {name} ({})",
            st.index,
            location.display()
        );
        let mut made = if location.is_dir() {
            Backup::of_files(tool, location)
        } else {
            // The server's folder is not on this machine: its size as the server counts it.
            let status =
                self.ok(Method::GET, &format!("_snapshot/{name}/{snapshot}/_status"), None, self.timeout).await?;
            let size = status["snapshots"][0]["stats"]["total"]["size_in_bytes"].as_u64();
            Backup { tool, location, files: Vec::new(), size_bytes: size, id: String::new() }
        };
        made.id = snapshot;
        Ok(made)
    }

    /// Delete dbbench's index (only when it carries the marker) and restore it from the
    /// snapshot, then wait until it is allocated and answers. A restore that fails (a
    /// damaged snapshot) deletes what it left of the index, so the cluster is not held at
    /// red, and is an error within `RESTORE_TIMEOUT` and `RESTORED_HEALTH_TIMEOUT`.
    async fn restore(&self, backup: &Backup, _target: &BackupTarget<'_>) -> DriverResult<()> {
        let st = self.state.get()?;
        let name = repository_name(&st.index);
        if backup.id.is_empty() {
            return Err(DriverError::other("elasticsearch restore: the backup names no snapshot"));
        }
        match self.repository(&name).await? {
            Some(r) if r.marked => {}
            _ => {
                return Err(DriverError::other(format!(
                    "elasticsearch restore: dbbench's snapshot repository {name} is not registered any more"
                )))
            }
        }
        shared::release_own(&mut Indices(self), &st.schema.collection).await?;
        let body = json!({ "indices": st.index, "include_global_state": false, "include_aliases": false });
        let path = format!("_snapshot/{name}/{}/_restore?wait_for_completion=true", backup.id);
        let restored = self.ok(Method::POST, &path, Some(Body::Json(body)), RESTORE_TIMEOUT).await;
        let result = match restored {
            Err(e) => Err(e),
            Ok(v) => {
                let shards = &v["snapshot"]["shards"];
                match (shards["total"].as_u64(), shards["failed"].as_u64()) {
                    (Some(t), Some(0)) if t > 0 => self.wait_restored(&st.index).await.map(|_| ()),
                    _ => Err(DriverError::other(format!(
                        "elasticsearch restore of snapshot {}: {} of {} shard(s) failed{}",
                        backup.id,
                        shards["failed"],
                        shards["total"],
                        self.unassigned_why(&st.index).await
                    ))),
                }
            }
        };
        if result.is_err() {
            self.drop_failed_restore(&st.schema.collection).await;
        }
        result
    }

    fn effort_knob(&self, _op: OpKind) -> Option<Knob> {
        Some(Knob { at_least_k: true, ..Knob::request(NUM_CANDIDATES.name, 10_000) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema {
            collection: "dbbench_t".into(),
            dim: 2,
            metric: Metric::Cosine,
            links: false,
            attributes: vec![
                AttributeDef { name: "lang".into(), kind: AttrKind::Keyword },
                AttributeDef { name: "year".into(), kind: AttrKind::Integer },
            ],
        }
    }

    fn kw(s: &str) -> AttrValue {
        AttrValue::Keyword(s.into())
    }

    #[test]
    fn filters_translate_to_term_terms_range_and_bool() {
        let s = schema();
        let f = Filter::Or(vec![
            Filter::Eq { field: "lang".into(), value: kw("de") },
            Filter::And(vec![
                Filter::In { field: "year".into(), values: vec![AttrValue::Integer(1), AttrValue::Integer(2)] },
                Filter::Range { field: "year".into(), gte: Some(2000), lt: Some(2010) },
                Filter::Range { field: "year".into(), gte: None, lt: Some(5) },
            ]),
        ]);
        assert_eq!(
            filter_query(&f, &s),
            json!({ "bool": { "should": [
                { "term": { "attr.lang": "de" } },
                { "bool": { "filter": [
                    { "terms": { "attr.year": [1, 2] } },
                    { "range": { "attr.year": { "gte": 2000, "lt": 2010 } } },
                    { "range": { "attr.year": { "lt": 5 } } },
                ] } },
            ], "minimum_should_match": 1 } })
        );
    }

    #[test]
    fn filters_that_match_nothing_in_the_reference_match_nothing_here() {
        let s = schema();
        let none = json!({ "match_none": {} });
        // Elasticsearch would coerce "2011" to 2011 on a long field; Filter::matches does not.
        assert_eq!(filter_query(&Filter::Eq { field: "year".into(), value: kw("2011") }, &s), none);
        assert_eq!(filter_query(&Filter::Eq { field: "nope".into(), value: kw("x") }, &s), none);
        assert_eq!(filter_query(&Filter::Range { field: "lang".into(), gte: Some(1), lt: None }, &s), none);
        assert_eq!(filter_query(&Filter::In { field: "lang".into(), values: vec![] }, &s), none);
        assert_eq!(
            filter_query(&Filter::In { field: "lang".into(), values: vec![AttrValue::Integer(1), kw("en")] }, &s),
            json!({ "terms": { "attr.lang": ["en"] } })
        );
        assert_eq!(filter_query(&Filter::Or(vec![]), &s), none);
        assert_eq!(filter_query(&Filter::And(vec![]), &s), json!({ "match_all": {} }));
        // An open range still requires an integer value, as the reference does.
        assert_eq!(
            filter_query(&Filter::Range { field: "year".into(), gte: None, lt: None }, &s),
            json!({ "exists": { "field": "attr.year" } })
        );
    }

    #[test]
    fn search_bodies_ask_for_ids_only() {
        let s = schema();
        let f = Filter::Eq { field: "lang".into(), value: kw("en") };
        let b = knn_body(&[1.0, 0.0], 10, 5, Some(&f), &s);
        assert_eq!(b["knn"]["num_candidates"], json!(10), "num_candidates is raised to k");
        assert_eq!(b["knn"]["filter"], json!({ "term": { "attr.lang": "en" } }));
        assert_eq!(b["_source"], json!(false));
        assert_eq!(b["size"], json!(10));
        let t = text_body("a b", 3, Some(&f), &s);
        assert_eq!(t["query"]["bool"]["must"][0]["match"]["text"]["operator"], json!("or"));
        assert_eq!(t["query"]["bool"]["filter"][0], json!({ "term": { "attr.lang": "en" } }));
        assert_eq!(
            text_body("a", 3, None, &s)["query"],
            json!({ "match": { "text": { "query": "a", "operator": "or" } } })
        );
    }

    #[test]
    fn rrf_sums_reciprocal_ranks_and_breaks_ties_by_id() {
        // 7: 1/61 + 1/62; 3: 1/61; 9: 1/62 + 1/61 (tie with 7, loses on id); 5: 1/63.
        let fused = rrf(&[vec![7, 3, 5], vec![9, 7], vec![9]], 60, 10);
        assert_eq!(fused, vec![9, 7, 3, 5]);
        assert_eq!(rrf(&[vec![1, 2], vec![2, 1]], 60, 1), vec![1]);
        assert!(rrf(&[vec![], vec![]], 60, 5).is_empty());
    }

    #[test]
    fn index_names_are_lower_case_and_legal() {
        assert_eq!(index_name("dbbench_RAG test*x"), "dbbench_rag_test_x");
    }

    #[test]
    fn mapping_marks_the_index_and_maps_metrics() {
        let cfg = EngineConfig { name: "es".into(), url: None, settings: toml::Table::new(), base_dir: ".".into() };
        let es = Elasticsearch::new(&cfg).expect("defaults are valid");
        let mut s = schema();
        let m = es.mapping(&s);
        assert_eq!(m["mappings"]["_meta"]["created_by"], json!("dbbench"));
        assert_eq!(m["mappings"]["properties"]["vector"]["similarity"], json!("cosine"));
        assert_eq!(m["mappings"]["properties"]["vector"]["index_options"]["type"], json!("hnsw"));
        assert_eq!(m["mappings"]["properties"]["attr"]["properties"]["year"]["type"], json!("long"));
        s.metric = Metric::Dot;
        assert_eq!(es.mapping(&s)["mappings"]["properties"]["vector"]["similarity"], json!("max_inner_product"));
        s.metric = Metric::L2;
        assert_eq!(es.mapping(&s)["mappings"]["properties"]["vector"]["similarity"], json!("l2_norm"));
    }

    #[test]
    fn settings_are_checked_and_credentials_never_shown() {
        let mut t = toml::Table::new();
        t.insert("quantization".into(), toml::Value::String("int4".into()));
        let cfg = EngineConfig { name: "es".into(), url: None, settings: t, base_dir: ".".into() };
        assert!(Settings::parse(&cfg).expect_err("int4 is not a quantization").contains("quantization"));
        let mut t = toml::Table::new();
        t.insert("typo".into(), toml::Value::Boolean(true));
        let cfg = EngineConfig { name: "es".into(), url: None, settings: t, base_dir: ".".into() };
        assert!(Settings::parse(&cfg).is_err(), "unknown keys are refused");
        let cfg = EngineConfig {
            name: "es".into(),
            url: Some("https://elastic:s3cret@h:9200".into()),
            settings: toml::Table::new(),
            base_dir: ".".into(),
        };
        let es = Elasticsearch::new(&cfg).expect("url with credentials");
        assert_eq!(es.base.as_str(), "https://h:9200/");
        assert_eq!(es.auth, "basic (user elastic)");
    }

    fn health(cluster: &str, status: &str, nodes: u32) -> Value {
        // As `GET _cluster/health/<index>` answers (the fields topology reads, and others).
        json!({ "cluster_name": cluster, "status": status, "timed_out": false, "number_of_nodes": nodes,
                "number_of_data_nodes": nodes, "active_primary_shards": 3, "active_shards": 6 })
    }

    fn index_settings(shards: &str, replicas: &str) -> Value {
        json!({ "dbbench_t": { "settings": { "index.number_of_shards": shards, "index.number_of_replicas": replicas } } })
    }

    fn copy(shard: &str, prirep: &str, state: &str, node: Option<&str>) -> Value {
        json!({ "shard": shard, "prirep": prirep, "state": state, "node": node })
    }

    #[test]
    fn topology_of_a_green_three_node_cluster() {
        let shards = json!([
            copy("0", "p", "STARTED", Some("dbbench-es-1")),
            copy("0", "r", "STARTED", Some("dbbench-es-2")),
            copy("1", "p", "STARTED", Some("dbbench-es-3")),
            copy("1", "r", "STARTED", Some("dbbench-es-1")),
            copy("2", "r", "STARTED", Some("dbbench-es-3")),
            copy("2", "p", "STARTED", Some("dbbench-es-2")),
        ]);
        let t = topology_of("dbbench_t", &health("dbbench-cluster", "green", 3), &index_settings("3", "1"), &shards)
            .unwrap();
        assert_eq!((t.nodes, t.data_nodes, t.shards, t.replicas), (3, Some(3), Some(3), Some(1)));
        assert_eq!(t.note.as_deref(), Some("cluster dbbench-cluster, status green, 6 shard copies on 3 nodes"));
        assert_eq!(t.summary(), "3 nodes, 3 shards × 2 copies");
    }

    #[test]
    fn topology_of_one_node_is_one_node() {
        let shards = json!([copy("0", "p", "STARTED", Some("dbbench-es"))]);
        let t = topology_of("dbbench_t", &health("dbbench", "green", 1), &index_settings("1", "0"), &shards).unwrap();
        assert_eq!((t.nodes, t.data_nodes, t.shards, t.replicas), (1, Some(1), Some(1), Some(0)));
        assert_eq!(t.note.as_deref(), Some("cluster dbbench, status green, 1 shard copy on 1 node"));
        assert_eq!(t.summary(), "1 node, 1 shard × 1 copy");
    }

    /// A replica is never put on the node that holds its primary: on one node it stays
    /// unassigned and the index is yellow. The topology says so instead of counting it.
    #[test]
    fn topology_says_when_replicas_are_unassigned() {
        let shards = json!([
            copy("0", "p", "STARTED", Some("dbbench-es")),
            copy("0", "r", "UNASSIGNED", None),
            copy("1", "p", "STARTED", Some("dbbench-es")),
            copy("1", "r", "UNASSIGNED", None),
        ]);
        let t = topology_of("dbbench_t", &health("dbbench", "yellow", 1), &index_settings("2", "1"), &shards).unwrap();
        assert_eq!((t.nodes, t.shards, t.replicas), (1, Some(2), Some(1)), "the replicas asked for");
        assert_eq!(
            t.note.as_deref(),
            Some(
                "cluster dbbench, status yellow, 2 of 4 shard copies started, on 1 node; 2 replica copies unassigned \
                 (a replica never shares a node with its primary, and the cluster has 1 data node)"
            )
        );
        // Two replicas on two data nodes: one of them can never be placed, and a copy
        // still being built on its node is named too.
        let shards = json!([
            copy("0", "p", "STARTED", Some("a")),
            copy("0", "r", "INITIALIZING", Some("b")),
            copy("0", "r", "UNASSIGNED", None),
        ]);
        let mut h = health("c", "yellow", 2);
        h["number_of_data_nodes"] = json!(2);
        let t = topology_of("dbbench_t", &h, &index_settings("1", "2"), &shards).unwrap();
        assert_eq!(
            t.note.as_deref(),
            Some(
                "cluster c, status yellow, 1 of 3 shard copies started, on 1 node; 1 replica copy unassigned \
                 (a replica never shares a node with its primary, and the cluster has 2 data nodes); 1 still initializing"
            )
        );
    }

    #[test]
    fn topology_refuses_answers_without_its_numbers() {
        let err = topology_of("dbbench_t", &json!({ "status": "green" }), &index_settings("1", "0"), &json!([]))
            .expect_err("no node count");
        assert!(err.message.contains("number_of_nodes"), "{}", err.message);
        let err = topology_of("dbbench_t", &health("c", "green", 1), &json!({ "other": {} }), &json!([]))
            .expect_err("settings of another index");
        assert!(err.message.contains("index.number_of_shards"), "{}", err.message);
    }

    #[test]
    fn user_info_is_percent_decoded() {
        assert_eq!(percent_decode("p%40ss%3Aw"), "p@ss:w");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
