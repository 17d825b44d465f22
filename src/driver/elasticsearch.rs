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

    async fn cleanup(&self) -> DriverResult<()> {
        let st = self.state.take();
        shared::release_prepared(&mut Indices(self), st.as_deref().map(|s| s.schema.collection.as_str())).await
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

    #[test]
    fn user_info_is_percent_decoded() {
        assert_eq!(percent_decode("p%40ss%3Aw"), "p@ss:w");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
