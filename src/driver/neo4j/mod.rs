//! Neo4j 5.26 over Bolt, with the `neo4rs` client (0.8: Bolt 4.1, which Neo4j 5.26 still
//! speaks).
//!
//! Records are nodes labelled `DbbenchDoc_<collection>` with properties `id`, `embedding`
//! (a float32 array written by `db.create.setNodeVectorProperty`), `text` and one
//! property `a_<name>` per attribute (the prefix keeps an attribute called `id` or `text`
//! from clashing). A uniqueness constraint on `id` gives lookups by id and ordered scans
//! their range index. After the load come a vector index (Lucene HNSW) on `embedding` and
//! a full-text index (Lucene, BM25) on `text`. Links are `DBBENCH_LINK` relationships
//! between the namespace's nodes, walked both ways.
//!
//! Ownership: `prepare` writes a marker node `(:DbbenchMeta {label, collection,
//! created_by: "dbbench"})` before it creates anything. A label that holds nodes, or an
//! index or constraint under one of dbbench's names, without that marker is refused and
//! left alone. Dropping a namespace drops its indexes and constraint by name, deletes its
//! links and then its nodes (plain `DELETE`, not `DETACH DELETE`: a relationship someone
//! else attached to one of them makes the drop fail rather than taking it along), and the
//! marker last.
//!
//! Searches, one Cypher query each:
//! - kNN: `db.index.vector.queryNodes(index, n, vector)`. Neo4j 5.26 has no search-time
//!   `ef` setting, but `n`, the neighbours asked for, is the width of Lucene's HNSW search
//!   (measured on 5.26.30: recall@10 on 2000 clustered 16-d vectors is 0.92 asking for
//!   10, 0.97 for 20, 1.0 for 40). So `n` is `max(k, candidates)` (the `candidates` param or
//!   setting, default k) and the first k are kept: `candidates` is the effort knob, as
//!   `num_candidates` is Elasticsearch's. Neo4j 5.26 cannot filter inside the vector
//!   index either, so a filter is applied to what the index returns: `n` is then
//!   multiplied by `overfetch`, the filter keeps the candidates that pass, and the first k
//!   are the answer. A selective filter can so return fewer than k, or miss nearer
//!   matches; filters are therefore declared `Partial`.
//! - text: `db.index.fulltext.queryNodes` on an escaped Lucene query (any word may
//!   match), ranked by Lucene's BM25 score. With a filter every match is filtered before
//!   the top k are taken, so filtered text is exact.
//! - hybrid: both searches in one query, fused by reciprocal rank fusion in Cypher.
//! - expand: seeds from the vector index (filtered like kNN), then a variable-length
//!   match over `DBBENCH_LINK` keyed by the least (hops, seed rank).
//!
//! Writes, gets and scans run in explicit transactions. Two properties of neo4rs 0.8
//! matter for latency and are stated in `describe`: it sends RESET whenever it takes a
//! connection from its pool, and it waits for RUN's answer before it sends PULL, so an
//! auto-commit query costs three round trips and a transaction five. It also cannot
//! abandon a request without leaving its connection mid-answer, so measured requests
//! have no client-side timeout (a `ping` has one).
//!
//! Recovery: `attach` takes up a marked label as it is (its vector index checked against
//! the workload's dimension), `count` counts the label's nodes, `durability` states what
//! a commit promises with the server's checkpoint settings. There is no backup route:
//! see `NO_BACKUP`.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use neo4rs::{BoltList, BoltMap, BoltString, BoltType, ConfigBuilder, Graph, Query, Row, Txn};
use serde::Deserialize;
use serde_json::json;

use super::shared::{self, Found, Namespace, Prepared, MARKER_KEY, MARKER_VALUE};
use super::*;

mod cypher;
pub use cypher::*;

pub const DEFAULT_URL: &str = "bolt://127.0.0.1:7687";

pub const KIND: DriverKind = DriverKind {
    kind: "neo4j",
    summary: "Neo4j 5.26 over Bolt: HNSW kNN post-filtered, Lucene BM25 text, RRF hybrid and graph expansion in Cypher, transactions",
    default_url: Some(DEFAULT_URL),
    start_hint: "bash services/up.sh neo4j (or: docker compose -f docker-compose.bench.yml up -d neo4j)",
    capabilities,
    params: &[CANDIDATES],
    validate: |cfg| Settings::parse(cfg).map(|_| ()),
    open: |cfg| Ok(Box::new(Neo4j::new(cfg)?)),
    hidden: false,
};

/// The most neighbours asked of the vector index in one search.
const MAX_CANDIDATES: u64 = 10_000;

/// The width of the vector index's search, over `settings.candidates`.
const CANDIDATES: ParamDef = ParamDef {
    name: "candidates",
    kind: ParamKind::Integer { min: 1, max: MAX_CANDIDATES as i64 },
    ops: params::VECTOR_SEARCH_AND_EXPAND,
    summary: "neighbours asked of the vector index, i.e. the width of its HNSW search (raised to k; times overfetch with a filter); default settings.candidates, else k",
};

const FILTER_NOTE: &str = "applied after the vector index (Neo4j 5.26 has no filtered vector search): knn, hybrid and expand seeds ask the index for settings.overfetch times the candidates an unfiltered search asks for and keep those that pass, so a selective filter returns fewer than k or misses nearer matches; filtered text is exact";

fn capabilities() -> Capabilities {
    let mut caps = Capabilities::all_native();
    caps.filters = Support::Partial(FILTER_NOTE);
    caps
}

/// The relationship type of links.
const LINK: &str = "DBBENCH_LINK";
/// The label of marker nodes.
const META: &str = "DbbenchMeta";
use crate::data::links::MAX_HOPS;
use crate::driver::EXPAND_RANK_SPAN as RANK_SPAN;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// HNSW graph degree (`vector.hnsw.m`, 1 to 512).
    pub m: u32,
    /// HNSW build-time candidate list (`vector.hnsw.ef_construction`, 1 to 3200).
    pub ef_construction: u32,
    /// `vector.quantization.enabled`. Neo4j's default is on; dbbench's is off, so the
    /// index ranks by the float vectors as the other engines' defaults do.
    pub quantization: bool,
    /// Neighbours asked of the vector index (the width of its HNSW search; raised to the
    /// op's k, or to the seeds or hybrid candidates wanted), unless an op's params give
    /// `candidates`. None: exactly as many as wanted, as a plain `queryNodes(index, k,
    /// vector)` asks.
    pub candidates: Option<usize>,
    /// Filtered vector search (knn, hybrid, expand seeds): the vector index is asked for
    /// this many times the candidates an unfiltered search asks for, and the filter
    /// applied to them (Neo4j 5.26 cannot filter inside the index). Higher finds more of
    /// a selective filter's matches, at the cost of a larger index search.
    pub overfetch: usize,
    /// Credentials (over user info in the URL). Without any, neo4rs sends user `neo4j`
    /// with an empty password, which a server without auth accepts.
    pub user: Option<String>,
    pub password: Option<String>,
    pub database: String,
    /// Rows per UNWIND statement inside one load batch (all of a batch is one transaction).
    pub batch_size: usize,
    /// The k of reciprocal rank fusion: score = sum 1 / (rrf_k + rank).
    pub rrf_k: u32,
    /// Candidates taken from each side before fusion (at least k).
    pub hybrid_candidates: usize,
    /// Analyzer of the full-text index (`db.index.fulltext.listAvailableAnalyzers`).
    pub analyzer: String,
    /// Most connections in the pool (opened as needed; requests beyond wait for one).
    pub max_connections: usize,
    /// Seconds `ping` waits for an answer before the server counts as unreachable.
    pub connect_timeout_s: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            m: 16,
            ef_construction: 100,
            quantization: false,
            candidates: None,
            overfetch: 10,
            user: None,
            password: None,
            database: "neo4j".into(),
            batch_size: 1000,
            rrf_k: 60,
            hybrid_candidates: 100,
            analyzer: "standard-no-stop-words".into(),
            max_connections: 256,
            connect_timeout_s: 10.0,
        }
    }
}

fn plain_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

impl Settings {
    fn parse(cfg: &EngineConfig) -> Result<Self, String> {
        let s: Settings = parse_settings(cfg)?;
        let bad = |key: &str, why: &str| Err(format!("engines.{}.settings.{key}: {why}", cfg.name));
        if !(1..=512).contains(&s.m) {
            return bad("m", "between 1 and 512 (vector.hnsw.m)");
        }
        if !(1..=3200).contains(&s.ef_construction) {
            return bad("ef_construction", "between 1 and 3200 (vector.hnsw.ef_construction)");
        }
        if s.candidates.is_some_and(|c| c == 0 || c as u64 > MAX_CANDIDATES) {
            return bad("candidates", "neighbours asked of the vector index, 1 to 10000");
        }
        if !(1..=1000).contains(&s.overfetch) {
            return bad("overfetch", "candidates per result wanted, 1 to 1000");
        }
        if !plain_name(&s.database) {
            return bad("database", "a database name (letters, digits, '_', '-', '.')");
        }
        if !plain_name(&s.analyzer) {
            return bad("analyzer", "an analyzer name such as \"standard-no-stop-words\" or \"english\"");
        }
        if s.batch_size == 0 || s.hybrid_candidates == 0 || s.max_connections == 0 {
            return bad("batch_size", "batch_size, hybrid_candidates and max_connections must be at least 1");
        }
        if !(s.connect_timeout_s > 0.0 && s.connect_timeout_s <= 600.0) {
            return bad("connect_timeout_s", "seconds, more than 0 and at most 600");
        }
        if s.password.is_some() && s.user.is_none() {
            return bad("password", "a password needs a user");
        }
        Ok(s)
    }
}

struct State {
    schema: Schema,
    names: Names,
    cypher: Cypher,
    /// Unfiltered searches, built once.
    knn: String,
    text: String,
    hybrid: String,
    hybrid_vector_only: String,
    expand: Vec<String>,
}

impl State {
    fn new(schema: &Schema) -> State {
        let names = Names::of(&schema.collection);
        let cypher = Cypher::new(schema, &names);
        State {
            knn: cypher.knn(None),
            text: cypher.text(None),
            hybrid: cypher.hybrid(None, true),
            hybrid_vector_only: cypher.hybrid(None, false),
            expand: (0..=MAX_HOPS).map(|h| cypher.expand(None, h)).collect(),
            schema: schema.clone(),
            names,
            cypher,
        }
    }
}

pub struct Neo4j {
    settings: Settings,
    /// URL without credentials, for describe.
    url: String,
    /// How the driver authenticates (never the password).
    auth: String,
    config: neo4rs::Config,
    graph: tokio::sync::OnceCell<Graph>,
    state: Prepared<State>,
}

/// A neo4rs error as a driver error: connection failures are `Unreachable` (the runner
/// then skips the engine with its start hint), refused credentials `Auth`, Neo4j's own
/// errors `Rejected` (client errors, transient ones such as a deadlock) or `Other`
/// (database errors), with Neo4j's code and message.
fn neo_err(what: &str, e: neo4rs::Error) -> DriverError {
    use neo4rs::{Neo4jClientErrorKind as Client, Neo4jErrorKind as K};
    let kind = match &e {
        // Refused, reset, timed out or closed: the engine is not answering.
        neo4rs::Error::IOError { .. } | neo4rs::Error::ConnectionError => ErrorKind::Unreachable,
        neo4rs::Error::AuthenticationError(_) => ErrorKind::Auth,
        neo4rs::Error::Neo4j(n) => match n.kind() {
            K::Client(Client::Security(_)) => ErrorKind::Auth,
            K::Client(_) | K::Transient => ErrorKind::Rejected,
            K::Database | K::Unknown => ErrorKind::Other,
        },
        neo4rs::Error::UrlParseError(_)
        | neo4rs::Error::UnsupportedScheme(_)
        | neo4rs::Error::InvalidDnsName(_)
        | neo4rs::Error::InvalidConfig => ErrorKind::Other,
        // neo4rs reports a failure that arrives while rows are pulled as an unexpected
        // message; it carries Neo4j's code.
        neo4rs::Error::UnexpectedMessage(m) if m.contains("Failure") => {
            if m.contains("Neo.ClientError.Security") {
                ErrorKind::Auth
            } else if m.contains("Neo.ClientError") || m.contains("Neo.TransientError") {
                ErrorKind::Rejected
            } else {
                ErrorKind::Other
            }
        }
        _ => ErrorKind::Protocol,
    };
    let message = match &e {
        neo4rs::Error::Neo4j(n) => format!("{}: {}", n.code(), n.message()),
        neo4rs::Error::UnexpectedMessage(m) => failure_text(m).unwrap_or_else(|| m.clone()),
        other => other.to_string(),
    };
    DriverError::new(kind, format!("neo4j {what}: {message}"))
}

/// Neo4j's code and message out of neo4rs's debug text of a FAILURE that arrived while
/// pulling rows (`... "code": String(BoltString { value: "Neo...." }) ... "message": ...`).
fn failure_text(m: &str) -> Option<String> {
    let value_after = |key: &str| -> Option<String> {
        let at = m.find(&format!("value: \"{key}\""))?;
        let rest = &m[at + key.len() + 9..];
        let start = rest.find("value: \"")? + 8;
        let mut out = String::new();
        let mut escaped = false;
        for c in rest[start..].chars() {
            match (escaped, c) {
                (true, c) => {
                    out.push(if c == 'n' { '\n' } else { c });
                    escaped = false;
                }
                (false, '\\') => escaped = true,
                (false, '"') => return Some(out),
                (false, c) => out.push(c),
            }
        }
        None
    };
    let code = value_after("code")?;
    Some(match value_after("message") {
        Some(msg) => format!("{code}: {msg}"),
        None => code,
    })
}

fn decode<T: serde::de::DeserializeOwned>(row: &Row, key: &str, what: &str) -> DriverResult<T> {
    row.get::<T>(key).map_err(|e| DriverError::protocol(format!("neo4j {what}: column {key}: {e}")))
}

/// The `ids` list of a search's one row.
fn ids_of(rows: &[Row], what: &str) -> DriverResult<Vec<u64>> {
    let Some(row) = rows.first() else { return Ok(Vec::new()) };
    let ids: Vec<i64> = decode(row, "ids", what)?;
    Ok(ids.into_iter().map(|i| i as u64).collect())
}

fn count_of(rows: &[Row], what: &str) -> DriverResult<u64> {
    match rows.first() {
        Some(row) => Ok(decode::<i64>(row, "c", what)?.max(0) as u64),
        None => Ok(0),
    }
}

fn record_of(row: &Row, schema: &Schema) -> DriverResult<Record> {
    let what = "get";
    let id: i64 = decode(row, "id", what)?;
    let v: Vec<f64> = decode(row, "v", what)?;
    let text: String = decode(row, "text", what)?;
    let mut attributes = Vec::with_capacity(schema.attributes.len());
    for (i, a) in schema.attributes.iter().enumerate() {
        let key = format!("a{i}");
        attributes.push(match a.kind {
            AttrKind::Integer => AttrValue::Integer(decode(row, &key, what)?),
            AttrKind::Keyword => AttrValue::Keyword(decode(row, &key, what)?),
        });
    }
    Ok(Record {
        id: id as u64,
        vector: v.into_iter().map(|x| x as f32).collect::<Vec<f32>>().into(),
        text: Arc::from(text),
        attributes,
    })
}

fn vector_param(v: &[f32]) -> BoltType {
    BoltType::List(BoltList { value: v.iter().map(|x| BoltType::from(*x)).collect() })
}

fn attr_param(v: &AttrValue) -> BoltType {
    match v {
        AttrValue::Integer(i) => (*i).into(),
        AttrValue::Keyword(s) => s.as_str().into(),
    }
}

fn with_filter(mut q: Query, f: Option<CypherFilter>) -> Query {
    if let Some(f) = f {
        for (name, v) in f.params {
            q = q.param(&name, BoltType::from(v));
        }
    }
    q
}

/// Whether a record fits the schema: its dimension, and each attribute of its kind.
fn check_record(r: &Record, schema: &Schema) -> DriverResult<()> {
    if r.vector.len() != schema.dim {
        return Err(DriverError::rejected(format!(
            "neo4j: record {} has {} dimensions, the index {}",
            r.id,
            r.vector.len(),
            schema.dim
        )));
    }
    if r.attributes.len() != schema.attributes.len() {
        return Err(DriverError::rejected(format!(
            "neo4j: record {} has {} attributes, the schema {}",
            r.id,
            r.attributes.len(),
            schema.attributes.len()
        )));
    }
    for (a, v) in schema.attributes.iter().zip(&r.attributes) {
        check_kind(a, v)?;
    }
    if schema.metric == Metric::Dot {
        let norm = r.vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        if (norm - 1.0).abs() > 1e-3 {
            return Err(DriverError::unsupported(format!(
                "neo4j: metric dot is served by a cosine index, which ranks the same only for unit vectors; record {} has norm {norm}",
                r.id
            )));
        }
    }
    Ok(())
}

fn check_kind(a: &AttributeDef, v: &AttrValue) -> DriverResult<()> {
    match (a.kind, v) {
        (AttrKind::Integer, AttrValue::Integer(_)) | (AttrKind::Keyword, AttrValue::Keyword(_)) => Ok(()),
        _ => Err(DriverError::rejected(format!("neo4j: attribute {} takes a {:?}, not {v}", a.name, a.kind))),
    }
}

fn row_param(r: &Record) -> BoltType {
    let mut m = BoltMap::with_capacity(3 + r.attributes.len());
    m.put(BoltString::from("id"), (r.id as i64).into());
    m.put(BoltString::from("v"), vector_param(&r.vector));
    m.put(BoltString::from("text"), (&*r.text).into());
    for (i, v) in r.attributes.iter().enumerate() {
        m.put(BoltString::from(format!("a{i}").as_str()), attr_param(v));
    }
    BoltType::Map(m)
}

impl Neo4j {
    pub fn new(cfg: &EngineConfig) -> Result<Self, String> {
        let settings = Settings::parse(cfg)?;
        let raw = cfg.url.as_deref().unwrap_or(DEFAULT_URL);
        let mut url =
            reqwest::Url::parse(raw).map_err(|e| format!("engines.{}.url {}: {e}", cfg.name, redact_url(raw)))?;
        if !["bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc"].contains(&url.scheme()) {
            return Err(format!("engines.{}.url: use bolt:// (or bolt+s://, neo4j://, ...)", cfg.name));
        }
        if url.host_str().is_none() {
            return Err(format!("engines.{}.url {}: no host", cfg.name, redact_url(raw)));
        }
        let url_user = (!url.username().is_empty()).then(|| percent_decode(url.username()));
        let url_password = url.password().map(percent_decode);
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let (user, password, auth) = match (&settings.user, &url_user) {
            (Some(u), _) => (u.clone(), settings.password.clone().unwrap_or_default(), format!("basic (user {u})")),
            (None, Some(u)) => (u.clone(), url_password.unwrap_or_default(), format!("basic (user {u})")),
            (None, None) => (
                "neo4j".to_string(),
                String::new(),
                "none given (user neo4j, empty password: what a server without auth accepts)".to_string(),
            ),
        };
        let mut target = url.to_string();
        if target.ends_with('/') && url.path() == "/" {
            target.pop();
        }
        let config = ConfigBuilder::default()
            .uri(target.clone())
            .user(user)
            .password(password)
            .db(settings.database.as_str())
            .max_connections(settings.max_connections)
            .build()
            .map_err(|e| format!("engines.{}: {e}", cfg.name))?;
        Ok(Neo4j {
            settings,
            url: target,
            auth,
            config,
            graph: tokio::sync::OnceCell::new(),
            state: Prepared::new("neo4j"),
        })
    }

    /// The connection pool, made on first use (neo4rs connects lazily).
    async fn graph(&self) -> DriverResult<&Graph> {
        self.graph.get_or_try_init(|| Graph::connect(self.config.clone())).await.map_err(|e| neo_err("connect", e))
    }

    /// One auto-commit query, every row.
    async fn rows(&self, q: Query, what: &str) -> DriverResult<Vec<Row>> {
        let mut stream = self.graph().await?.execute(q).await.map_err(|e| neo_err(what, e))?;
        let mut rows = Vec::new();
        while let Some(row) = stream.next().await.map_err(|e| neo_err(what, e))? {
            rows.push(row);
        }
        Ok(rows)
    }

    /// One auto-commit statement whose rows are not needed (schema commands).
    async fn run(&self, q: &str, what: &str) -> DriverResult<()> {
        self.graph().await?.run(neo4rs::query(q)).await.map_err(|e| neo_err(what, e))
    }

    async fn begin(&self, what: &str) -> DriverResult<Txn> {
        self.graph().await?.start_txn().await.map_err(|e| neo_err(what, e))
    }

    /// The neighbours to ask the vector index for when `want` are wanted: at least the
    /// candidates of the op's params or the settings, times overfetch when filtered.
    fn candidates(&self, want: usize, params: &SearchParams, filtered: bool) -> DriverResult<i64> {
        let c = match CANDIDATES.integer("neo4j", params)? {
            Some(c) => Some(c as usize),
            None => self.settings.candidates,
        };
        let n = want.max(c.unwrap_or(0));
        Ok((if filtered { n.saturating_mul(self.settings.overfetch) } else { n }) as i64)
    }

    async fn search(&self, st: &State, op: &Op<'_>) -> DriverResult<Outcome> {
        let schema = &st.schema;
        let filter_of = |f: &Option<&Filter>| f.map(|f| filter_cypher(f, schema, "node"));
        let (q, what) = match op {
            Op::Knn { vector, k, filter, params } => {
                if *k == 0 {
                    return Ok(Outcome::Hits(Vec::new()));
                }
                let f = filter_of(filter);
                let text = match &f {
                    Some(f) => Cow::Owned(st.cypher.knn(Some(&f.predicate))),
                    None => Cow::Borrowed(&st.knn),
                };
                let q = neo4rs::query(&text)
                    .param("vidx", st.names.vector_index.as_str())
                    .param("vn", self.candidates(*k, params, f.is_some())?)
                    .param("vec", vector_param(vector))
                    .param("k", *k as i64);
                (with_filter(q, f), "knn")
            }
            Op::Text { query, k, filter, .. } => {
                let Some(lucene) = lucene_query(query) else { return Ok(Outcome::Hits(Vec::new())) };
                if *k == 0 {
                    return Ok(Outcome::Hits(Vec::new()));
                }
                let f = filter_of(filter);
                let text = match &f {
                    Some(f) => Cow::Owned(st.cypher.text(Some(&f.predicate))),
                    None => Cow::Borrowed(&st.text),
                };
                let q = neo4rs::query(&text)
                    .param("tidx", st.names.text_index.as_str())
                    .param("q", lucene)
                    .param("tn", *k as i64)
                    .param("k", *k as i64);
                (with_filter(q, f), "text")
            }
            Op::Hybrid { vector, query, k, filter, params } => {
                if *k == 0 {
                    return Ok(Outcome::Hits(Vec::new()));
                }
                let lucene = lucene_query(query);
                let f = filter_of(filter);
                let text = match (&f, lucene.is_some()) {
                    (Some(f), t) => Cow::Owned(st.cypher.hybrid(Some(&f.predicate), t)),
                    (None, true) => Cow::Borrowed(&st.hybrid),
                    (None, false) => Cow::Borrowed(&st.hybrid_vector_only),
                };
                let n = self.settings.hybrid_candidates.max(*k);
                let mut q = neo4rs::query(&text)
                    .param("vidx", st.names.vector_index.as_str())
                    .param("vn", self.candidates(n, params, f.is_some())?)
                    .param("vec", vector_param(vector))
                    .param("n", n as i64)
                    .param("rrf_k", i64::from(self.settings.rrf_k))
                    .param("k", *k as i64);
                if let Some(l) = lucene {
                    q = q.param("tidx", st.names.text_index.as_str()).param("q", l).param("tn", n as i64);
                }
                (with_filter(q, f), "hybrid")
            }
            Op::Expand { vector, seeds, hops, max_results, filter, params } => {
                if *hops > MAX_HOPS {
                    return Err(DriverError::unsupported(format!(
                        "neo4j: expand walks at most {MAX_HOPS} hops, not {hops}"
                    )));
                }
                if *seeds as i64 >= RANK_SPAN {
                    return Err(DriverError::unsupported(format!(
                        "neo4j: expand takes fewer than {RANK_SPAN} seeds, not {seeds}"
                    )));
                }
                if *seeds == 0 || *max_results == 0 {
                    return Ok(Outcome::Hits(Vec::new()));
                }
                let f = filter_of(filter);
                let text = match &f {
                    Some(f) => Cow::Owned(st.cypher.expand(Some(&f.predicate), *hops)),
                    None => Cow::Borrowed(&st.expand[*hops]),
                };
                let q = neo4rs::query(&text)
                    .param("vidx", st.names.vector_index.as_str())
                    .param("vn", self.candidates(*seeds, params, f.is_some())?)
                    .param("vec", vector_param(vector))
                    .param("seeds", *seeds as i64)
                    .param("max", *max_results as i64);
                (with_filter(q, f), "expand")
            }
            _ => return Err(DriverError::other(format!("neo4j: {} is not a search", op.kind()))),
        };
        Ok(Outcome::Hits(ids_of(&self.rows(q, what).await?, what)?))
    }

    /// A write, get or scan in one explicit transaction.
    async fn in_txn(&self, st: &State, op: &Op<'_>) -> DriverResult<Outcome> {
        let c = &st.cypher;
        let what = op.kind().as_str();
        let attr = |field: &str| {
            st.schema
                .attribute_index(field)
                .ok_or_else(|| DriverError::rejected(format!("neo4j {what}: no attribute {field:?} in the schema")))
        };
        // Checked before the transaction starts: a refused op costs no round trip.
        match op {
            Op::Insert { record } => check_record(record, &st.schema)?,
            Op::Update { field, value, .. } | Op::ReadModifyWrite { field, value, .. } => {
                check_kind(&st.schema.attributes[attr(field)?], value)?
            }
            _ => {}
        }
        let mut txn = self.begin(what).await?;
        let out = match op {
            Op::Get { id } => {
                let rows = txn_rows(&mut txn, neo4rs::query(&c.get).param("id", *id as i64), what).await?;
                Outcome::Found(rows.first().map(|r| record_of(r, &st.schema)).transpose()?)
            }
            Op::Insert { record } => {
                let mut q = neo4rs::query(&c.insert)
                    .param("id", record.id as i64)
                    .param("text", &*record.text)
                    .param("v", vector_param(&record.vector));
                for (i, v) in record.attributes.iter().enumerate() {
                    q = q.param(&format!("a{i}"), attr_param(v));
                }
                txn.run(q).await.map_err(|e| neo_err(what, e))?;
                Outcome::Written(1)
            }
            Op::Update { id, field, value } => {
                let q =
                    neo4rs::query(&c.update[attr(field)?]).param("id", *id as i64).param("value", attr_param(value));
                Outcome::Written(count_of(&txn_rows(&mut txn, q, what).await?, what)?)
            }
            Op::Delete { id } => {
                let q = neo4rs::query(&c.delete).param("id", *id as i64);
                Outcome::Written(count_of(&txn_rows(&mut txn, q, what).await?, what)?)
            }
            Op::Scan { start, limit } => {
                let q = neo4rs::query(&c.scan).param("start", *start as i64).param("limit", *limit as i64);
                Outcome::Hits(ids_of(&txn_rows(&mut txn, q, what).await?, what)?)
            }
            Op::ReadModifyWrite { id, field, value } => {
                let rows = txn_rows(&mut txn, neo4rs::query(&c.rmw_read).param("id", *id as i64), what).await?;
                match rows.first() {
                    Some(row) => {
                        record_of(row, &st.schema)?;
                        let q = neo4rs::query(&c.rmw_write[attr(field)?])
                            .param("id", *id as i64)
                            .param("value", attr_param(value));
                        Outcome::Written(count_of(&txn_rows(&mut txn, q, what).await?, what)?)
                    }
                    None => Outcome::Written(0),
                }
            }
            _ => return Err(DriverError::other(format!("neo4j: {what} does not run in a transaction"))),
        };
        txn.commit().await.map_err(|e| neo_err(what, e))?;
        Ok(out)
    }

    /// What Neo4j holds under `names`: (dbbench's marker nodes, nodes with the label,
    /// indexes and constraints under dbbench's names).
    async fn holdings(&self, names: &Names) -> DriverResult<(u64, u64, u64)> {
        let what = "prepare";
        let q = neo4rs::query(&format!(
            "MATCH (m:{META} {{label: $label}}) WHERE m.{MARKER_KEY} = $marker RETURN count(m) AS c"
        ))
        .param("label", names.label.as_str())
        .param("marker", MARKER_VALUE);
        let marked = count_of(&self.rows(q, what).await?, what)?;
        let q = neo4rs::query(&format!("MATCH (n:{}) RETURN count(n) AS c", quoted(&names.label)));
        let nodes = count_of(&self.rows(q, what).await?, what)?;
        let mut schema_objects = 0;
        for show in ["SHOW INDEXES", "SHOW CONSTRAINTS"] {
            let q = neo4rs::query(&format!("{show} YIELD name WHERE name IN $names RETURN count(*) AS c"))
                .param("names", vec![names.vector_index.clone(), names.text_index.clone(), names.constraint.clone()]);
            schema_objects += count_of(&self.rows(q, what).await?, what)?;
        }
        Ok((marked, nodes, schema_objects))
    }

    async fn wait_for_indexes(&self, names: &Names) -> DriverResult<()> {
        let what = "finish_load";
        loop {
            let q = neo4rs::query(
                "SHOW INDEXES YIELD name, state, failureMessage WHERE name IN $names \
                 RETURN name, state, failureMessage",
            )
            .param("names", names.indexes());
            let rows = self.rows(q, what).await?;
            let mut online = 0;
            for row in &rows {
                let name: String = decode(row, "name", what)?;
                let state: String = decode(row, "state", what)?;
                match state.as_str() {
                    "ONLINE" => online += 1,
                    "FAILED" => {
                        let why: String = row.get("failureMessage").unwrap_or_default();
                        return Err(DriverError::rejected(format!("neo4j: index {name} failed: {why}")));
                    }
                    _ => {}
                }
            }
            if rows.len() < names.indexes().len() {
                return Err(DriverError::other(format!(
                    "neo4j: indexes {:?} vanished while building",
                    names.indexes()
                )));
            }
            if online == rows.len() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    fn similarity(&self, metric: Metric) -> &'static str {
        match metric {
            // Dot is served by cosine, which ranks the same for unit vectors; load and
            // insert refuse any other.
            Metric::Cosine | Metric::Dot => "cosine",
            Metric::L2 => "euclidean",
        }
    }

    fn index_description(&self, schema: Option<&Schema>) -> String {
        let s = &self.settings;
        format!(
            "vector index (Lucene HNSW, {}m = {}, ef_construction = {}, quantization {}); neighbours asked = max(k, {}), times {} with a filter",
            schema.map(|x| format!("{} similarity, ", self.similarity(x.metric))).unwrap_or_default(),
            s.m,
            s.ef_construction,
            if s.quantization { "on" } else { "off" },
            s.candidates.map_or("candidates param".to_string(), |c| format!("candidates param or {c}")),
            s.overfetch
        )
    }
}

/// Every row of a query inside a transaction.
async fn txn_rows(txn: &mut Txn, q: Query, what: &str) -> DriverResult<Vec<Row>> {
    let mut stream = txn.execute(q).await.map_err(|e| neo_err(what, e))?;
    let mut rows = Vec::new();
    while let Some(row) = stream.next(txn.handle()).await.map_err(|e| neo_err(what, e))? {
        rows.push(row);
    }
    Ok(rows)
}

/// Neo4j's calls on dbbench's namespace: a label marked by a `DbbenchMeta` node.
struct Labels<'a>(&'a Neo4j);

#[async_trait]
impl Namespace for Labels<'_> {
    type Created = ();

    const ENGINE: &'static str = "neo4j";

    fn object(&self, collection: &str) -> String {
        let n = Names::of(collection);
        format!("label {} (or index {}, {} or constraint {})", n.label, n.vector_index, n.text_index, n.constraint)
    }

    fn marker(&self) -> String {
        format!("node (:{META} {{label, {MARKER_KEY}: {MARKER_VALUE:?}}})")
    }

    const REMEDY: &'static str = "delete or relabel those nodes yourself, or run the workload under another name";

    async fn find(&mut self, collection: &str) -> DriverResult<Found> {
        let (marked, nodes, schema_objects) = self.0.holdings(&Names::of(collection)).await?;
        Ok(if marked > 0 {
            Found::Marked
        } else if nodes > 0 || schema_objects > 0 {
            Found::Unmarked
        } else {
            Found::Absent
        })
    }

    async fn create(&mut self, schema: &Schema) -> DriverResult<()> {
        let names = Names::of(&schema.collection);
        // The marker first: whatever exists after it is covered by it.
        let q = neo4rs::query(&format!(
            "CREATE (:{META} {{label: $label, collection: $collection, {MARKER_KEY}: $marker, created_at: datetime()}})"
        ))
        .param("label", names.label.as_str())
        .param("collection", schema.collection.as_str())
        .param("marker", MARKER_VALUE);
        self.0.rows(q, "prepare").await?;
        self.0
            .run(
                &format!(
                    "CREATE CONSTRAINT {} FOR (n:{}) REQUIRE n.id IS UNIQUE",
                    quoted(&names.constraint),
                    quoted(&names.label)
                ),
                "prepare",
            )
            .await
    }

    async fn drop_marked(&mut self, collection: &str) -> DriverResult<()> {
        let n = Names::of(collection);
        let label = quoted(&n.label);
        let what = "drop";
        for index in n.indexes() {
            self.0.run(&format!("DROP INDEX {} IF EXISTS", quoted(&index)), what).await?;
        }
        self.0.run(&format!("DROP CONSTRAINT {} IF EXISTS", quoted(&n.constraint)), what).await?;
        self.0
            .run(
                &format!(
                    "MATCH (:{label})-[r:{LINK}]->(:{label}) CALL (r) {{ DELETE r }} IN TRANSACTIONS OF 10000 ROWS"
                ),
                what,
            )
            .await?;
        // No DETACH: a relationship of someone else's on one of these nodes fails the
        // drop instead of being deleted with it.
        self.0.run(&format!("MATCH (n:{label}) CALL (n) {{ DELETE n }} IN TRANSACTIONS OF 10000 ROWS"), what).await?;
        let q = neo4rs::query(&format!("MATCH (m:{META} {{label: $label}}) WHERE m.{MARKER_KEY} = $marker DELETE m"))
            .param("label", n.label.as_str())
            .param("marker", MARKER_VALUE);
        self.0.rows(q, what).await?;
        Ok(())
    }

    /// The label as it is, once its vector index (when there is one) is known to take the
    /// workload's dimension.
    async fn open(&mut self, schema: &Schema) -> DriverResult<()> {
        let n = Names::of(&schema.collection);
        let q = neo4rs::query(
            "SHOW INDEXES YIELD name, options WHERE name = $name \
             RETURN options.indexConfig['vector.dimensions'] AS c",
        )
        .param("name", n.vector_index.as_str());
        let rows = self.0.rows(q, "attach").await?;
        if let Some(dims) = rows.first().and_then(|r| r.get::<i64>("c").ok()) {
            if dims != schema.dim as i64 {
                return Err(DriverError::rejected(format!(
                    "neo4j: vector index {} takes {dims} dimensions, the workload's vectors have {}",
                    n.vector_index, schema.dim
                )));
            }
        }
        Ok(())
    }
}

/// Why `backup` and `restore` are not offered.
const NO_BACKUP: &str = "neo4j: no backup route in dbbench. Neo4j Community's backup is `neo4j-admin database dump` \
     of a stopped database (online `neo4j-admin database backup` is Enterprise only): it dumps the whole database, \
     not dbbench's label alone, and `neo4j-admin database load` overwrites the whole database; the server \
     services/engines/neo4j.sh runs is Neo4j embedded in a small Java main, and the launcher offers no admin \
     command to dump or load it";

#[async_trait]
impl Driver for Neo4j {
    fn kind(&self) -> &'static str {
        "neo4j"
    }

    fn capabilities(&self) -> Capabilities {
        capabilities()
    }

    async fn ping(&self) -> DriverResult<()> {
        let wait = Duration::from_secs_f64(self.settings.connect_timeout_s);
        // neo4rs retries a refused connection until its own deadline; a plain TCP connect
        // first says at once that nothing listens there.
        if self.graph.get().is_none() {
            if let Ok(u) = reqwest::Url::parse(&self.url) {
                let addr = (u.host_str().unwrap_or("127.0.0.1").to_string(), u.port().unwrap_or(7687));
                match tokio::time::timeout(wait, tokio::net::TcpStream::connect((addr.0.as_str(), addr.1))).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        return Err(DriverError::unreachable(format!("neo4j at {}: {e}", self.url)));
                    }
                    Err(_) => {
                        return Err(DriverError::unreachable(format!(
                            "neo4j ping: no answer from {} within {wait:?}",
                            self.url
                        )))
                    }
                }
            }
        }
        match tokio::time::timeout(wait, self.rows(neo4rs::query("RETURN 1 AS c"), "ping")).await {
            Ok(r) => r.map(|_| ()),
            Err(_) => {
                Err(DriverError::unreachable(format!("neo4j ping: no answer from {} within {:?}", self.url, wait)))
            }
        }
    }

    async fn prepare(&self, schema: &Schema) -> DriverResult<()> {
        if schema.dim == 0 || schema.dim > 4096 {
            return Err(DriverError::unsupported(format!(
                "neo4j: the vector index takes 1 to 4096 dimensions, not {}",
                schema.dim
            )));
        }
        if let Some(a) =
            schema.attributes.iter().find(|a| a.name.contains('\\') || a.name.chars().any(char::is_control))
        {
            return Err(DriverError::unsupported(format!(
                "neo4j: attribute name {:?}: backslashes and control characters are not taken in property names",
                a.name
            )));
        }
        shared::prepare_own(&mut Labels(self), schema).await?;
        self.state.set(State::new(schema));
        Ok(())
    }

    async fn load(&self, batch: &[Record]) -> DriverResult<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let st = self.state.get()?;
        for r in batch {
            check_record(r, &st.schema)?;
        }
        let mut txn = self.begin("load").await?;
        for chunk in batch.chunks(self.settings.batch_size) {
            let rows = BoltType::List(BoltList { value: chunk.iter().map(row_param).collect() });
            txn.run(neo4rs::query(&st.cypher.load).param("rows", rows)).await.map_err(|e| neo_err("load", e))?;
        }
        txn.commit().await.map_err(|e| neo_err("load", e))
    }

    async fn load_links(&self, links: &[Link]) -> DriverResult<()> {
        let st = self.state.get()?;
        let g = self.graph().await?;
        for chunk in links.chunks(self.settings.batch_size) {
            let pairs: Vec<BoltType> = chunk.iter().map(|l| vec![l.a as i64, l.b as i64].into()).collect();
            // Auto-commit, which neo4rs retries on transient errors: a deadlock between
            // link batches meeting at a hub is retried, not fatal.
            let mut stream = g
                .execute(neo4rs::query(&st.cypher.link).param("pairs", BoltType::List(BoltList { value: pairs })))
                .await
                .map_err(|e| neo_err("load_links", e))?;
            let mut rows = Vec::new();
            while let Some(row) = stream.next().await.map_err(|e| neo_err("load_links", e))? {
                rows.push(row);
            }
            let made = count_of(&rows, "load_links")?;
            if made != chunk.len() as u64 {
                return Err(DriverError::rejected(format!(
                    "neo4j load_links: {made} of {} links made; the others name records that are not loaded",
                    chunk.len()
                )));
            }
        }
        Ok(())
    }

    async fn finish_load(&self) -> DriverResult<IndexStats> {
        let st = self.state.get()?;
        let s = &self.settings;
        let (names, label) = (&st.names, quoted(&st.names.label));
        self.run(
            &format!(
                "CREATE VECTOR INDEX {} IF NOT EXISTS FOR (n:{label}) ON (n.embedding) OPTIONS {{indexConfig: {{\
                 `vector.dimensions`: {}, `vector.similarity_function`: '{}', `vector.hnsw.m`: {}, \
                 `vector.hnsw.ef_construction`: {}, `vector.quantization.enabled`: {}}}}}",
                quoted(&names.vector_index),
                st.schema.dim,
                self.similarity(st.schema.metric),
                s.m,
                s.ef_construction,
                s.quantization
            ),
            "finish_load",
        )
        .await?;
        self.run(
            &format!(
                "CREATE FULLTEXT INDEX {} IF NOT EXISTS FOR (n:{label}) ON EACH [n.text] OPTIONS {{indexConfig: {{\
                 `fulltext.analyzer`: '{}', `fulltext.eventually_consistent`: false}}}}",
                quoted(&names.text_index),
                s.analyzer
            ),
            "finish_load",
        )
        .await?;
        self.wait_for_indexes(names).await?;
        let what = "finish_load";
        let records =
            count_of(&self.rows(neo4rs::query(&format!("MATCH (n:{label}) RETURN count(n) AS c")), what).await?, what)?;
        let mut details = BTreeMap::new();
        details.insert("knn".into(), json!(self.index_description(Some(&st.schema))));
        details.insert(
            "text".into(),
            json!(format!(
                "full-text index (Lucene BM25), analyzer {}, eventually_consistent false; query = the words OR-ed",
                s.analyzer
            )),
        );
        details.insert(
            "load".into(),
            json!(format!(
                "UNWIND of {} rows per statement, one transaction per batch; embedding stored as a float32 array",
                s.batch_size
            )),
        );
        if st.schema.links {
            let q = neo4rs::query(&format!("MATCH (:{label})-[r:{LINK}]->() RETURN count(r) AS c"));
            details.insert("links".into(), json!(count_of(&self.rows(q, what).await?, what)?));
        }
        details.insert("size".into(), json!("Neo4j reports no size per label or index"));
        Ok(IndexStats { records: Some(records), size_bytes: None, details })
    }

    async fn execute(&self, op: &Op<'_>) -> DriverResult<Outcome> {
        let st = self.state.get()?;
        if op.kind().is_search() {
            self.search(&st, op).await
        } else {
            self.in_txn(&st, op).await
        }
    }

    async fn describe(&self) -> DriverResult<EngineInfo> {
        let what = "describe";
        let rows = self
            .rows(
                neo4rs::query("CALL dbms.components() YIELD name, versions, edition RETURN name, versions, edition"),
                what,
            )
            .await?;
        let row = rows.first().ok_or_else(|| DriverError::protocol("neo4j: dbms.components() returned nothing"))?;
        let versions: Vec<String> = decode(row, "versions", what)?;
        let edition: String = decode(row, "edition", what)?;
        let version = versions.first().cloned().unwrap_or_else(|| "unknown".into());
        let mut memory = serde_json::Map::new();
        let q = neo4rs::query(
            "CALL dbms.listConfig() YIELD name, value WHERE name IN $names RETURN name, value ORDER BY name",
        )
        .param(
            "names",
            vec!["server.memory.heap.initial_size", "server.memory.heap.max_size", "server.memory.pagecache.size"],
        );
        for row in self.rows(q, what).await? {
            let name: String = decode(&row, "name", what)?;
            let value: Option<String> = row.get("value").ok();
            memory.insert(name, json!(value.unwrap_or_else(|| "not set".into())));
        }
        // The JVM's own figure: in-process there is no heap setting to read back.
        let q = neo4rs::query(
            "CALL dbms.queryJmx('java.lang:type=Memory') YIELD attributes \
             RETURN attributes.HeapMemoryUsage.value.properties.max AS c",
        );
        if let Ok(rows) = self.rows(q, what).await {
            if let Ok(max) = count_of(&rows, what) {
                memory.insert("jvm_heap_max_bytes".into(), json!(max));
            }
        }
        memory.insert(
            "note".into(),
            json!("services/engines/neo4j.sh runs Neo4j in-process (a Java main), without the neo4j launcher and its config defaults, so heap (-Xms/-Xmx) and page cache (server.memory.pagecache.size) are set explicitly there"),
        );
        let s = &self.settings;
        let settings = json!({
            "url": redact_url(&self.url),
            "auth": self.auth,
            "database": s.database,
            "index": self.index_description(self.state.peek().as_ref().map(|st| &st.schema)),
            "m": s.m,
            "ef_construction": s.ef_construction,
            "quantization": s.quantization,
            "candidates": s.candidates.map_or(json!("k (the op's, or its params.candidates)"), |c| json!(c)),
            "overfetch": s.overfetch,
            "filters": "Cypher WHERE on the vector index's candidates (no filtered vector search in Neo4j 5.26)",
            "analyzer": s.analyzer,
            "hybrid": format!("reciprocal rank fusion in one Cypher query, {} candidates per side, k = {}", s.hybrid_candidates, s.rrf_k),
            "expand": "one Cypher query: vector-index seeds, then a variable-length match over DBBENCH_LINK (both ways)",
            "batch_size": s.batch_size,
            "max_connections": s.max_connections,
            "client": "neo4rs 0.8 over Bolt 4.1: RESET when a pooled connection is taken, RUN and PULL not pipelined (3 round trips per auto-commit query, 5 per transaction); no client-side timeout on measured requests",
            "transactions": "get, insert, update, delete, scan and read_modify_write each in one explicit transaction; searches auto-commit",
            "memory": memory,
        });
        Ok(EngineInfo {
            version: format!("Neo4j {version} ({edition})"),
            settings: settings.as_object().cloned().unwrap_or_default(),
        })
    }

    fn write_visibility(&self) -> String {
        "each write is one explicit transaction, committed before the op returns; Neo4j applies index updates at commit \
         (the vector index, and the full-text index with fulltext.eventually_consistent = false, its default), so the \
         next query sees the write"
            .into()
    }

    async fn cleanup(&self) -> DriverResult<()> {
        let st = self.state.take();
        shared::release_prepared(&mut Labels(self), st.as_deref().map(|s| s.schema.collection.as_str())).await
    }

    async fn attach(&self, schema: &Schema) -> DriverResult<()> {
        shared::namespace::attach_own(&mut Labels(self), schema).await?;
        self.state.set(State::new(schema));
        Ok(())
    }

    /// The nodes under dbbench's label (Neo4j's count store answers it).
    async fn count(&self) -> DriverResult<u64> {
        let st = self.state.get()?;
        let q = neo4rs::query(&format!("MATCH (n:{}) RETURN count(n) AS c", quoted(&st.names.label)));
        count_of(&self.rows(q, "count").await?, "count")
    }

    /// What a commit promises in Neo4j 5, with the checkpoint settings the server reports
    /// (`dbms.listConfig`); no public setting turns off the log's force at commit.
    async fn durability(&self) -> String {
        let promise = "each write is one transaction; at commit Neo4j appends it to the database's transaction log \
                       and forces the log to disk (fsync) before the commit returns, the store files catch up at \
                       checkpoints, and recovery replays the log after a crash";
        let q = neo4rs::query(
            "CALL dbms.listConfig() YIELD name, value \
             WHERE name = 'db.checkpoint' OR name STARTS WITH 'db.checkpoint.interval.' \
             RETURN name, value ORDER BY name",
        );
        match self.rows(q, "durability").await {
            Ok(rows) => {
                let settings: Vec<String> = rows
                    .iter()
                    .filter_map(|r| {
                        let name: String = r.get("name").ok()?;
                        let value: Option<String> = r.get("value").ok();
                        Some(format!("{name} = {}", value.unwrap_or_else(|| "not set".into())))
                    })
                    .collect();
                format!("{promise} (as configured: {})", settings.join(", "))
            }
            Err(e) => format!("{promise} (settings not read: {})", e.message),
        }
    }

    async fn backup(&self, _target: &BackupTarget<'_>) -> DriverResult<Backup> {
        Err(DriverError::unsupported(NO_BACKUP))
    }

    async fn restore(&self, _backup: &Backup, _target: &BackupTarget<'_>) -> DriverResult<()> {
        Err(DriverError::unsupported(NO_BACKUP))
    }

    /// The neighbours asked of the vector index: the width of Lucene's HNSW search
    /// (Neo4j 5.26 has no other search-time knob), raised to k.
    fn effort_knob(&self, _op: OpKind) -> Option<Knob> {
        Some(Knob { at_least_k: true, ..Knob::request(CANDIDATES.name, MAX_CANDIDATES) })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema {
            collection: "dbbench_t".into(),
            dim: 2,
            metric: Metric::Cosine,
            attributes: vec![
                AttributeDef { name: "lang".into(), kind: AttrKind::Keyword },
                AttributeDef { name: "year".into(), kind: AttrKind::Integer },
            ],
            links: false,
        }
    }

    fn kw(s: &str) -> AttrValue {
        AttrValue::Keyword(s.into())
    }

    fn cfg(settings: &str, url: Option<&str>) -> EngineConfig {
        EngineConfig {
            name: "neo".into(),
            url: url.map(str::to_string),
            settings: toml::from_str(settings).unwrap(),
            base_dir: ".".into(),
        }
    }

    #[test]
    fn filters_translate_to_cypher_with_parameters() {
        let s = schema();
        let f = Filter::Or(vec![
            Filter::Eq { field: "lang".into(), value: kw("de") },
            Filter::And(vec![
                Filter::In { field: "year".into(), values: vec![AttrValue::Integer(1), AttrValue::Integer(2)] },
                Filter::Range { field: "year".into(), gte: Some(2000), lt: Some(2010) },
                Filter::Range { field: "year".into(), gte: None, lt: Some(5) },
            ]),
        ]);
        let c = filter_cypher(&f, &s, "node");
        assert_eq!(
            c.predicate,
            "(node.`a_lang` = $f0 OR (node.`a_year` IN $f1 AND (node.`a_year` >= $f2 AND node.`a_year` < $f3) AND node.`a_year` < $f4))"
        );
        assert_eq!(
            c.params,
            vec![
                ("f0".into(), FilterParam::Str("de".into())),
                ("f1".into(), FilterParam::Ints(vec![1, 2])),
                ("f2".into(), FilterParam::Int(2000)),
                ("f3".into(), FilterParam::Int(2010)),
                ("f4".into(), FilterParam::Int(5)),
            ]
        );
    }

    #[test]
    fn filters_that_match_nothing_in_the_reference_are_false_here() {
        let s = schema();
        let p = |f: Filter| filter_cypher(&f, &s, "n");
        // Cypher's 2011 = "2011" is false, but a range across types is null: decided here.
        assert_eq!(p(Filter::Eq { field: "year".into(), value: kw("2011") }).predicate, "false");
        assert_eq!(p(Filter::Eq { field: "nope".into(), value: kw("x") }).predicate, "false");
        assert_eq!(p(Filter::Range { field: "lang".into(), gte: Some(1), lt: None }).predicate, "false");
        assert_eq!(p(Filter::In { field: "lang".into(), values: vec![] }).predicate, "false");
        assert_eq!(p(Filter::In { field: "lang".into(), values: vec![AttrValue::Integer(1)] }).predicate, "false");
        let mixed = p(Filter::In { field: "lang".into(), values: vec![AttrValue::Integer(1), kw("en"), kw("fr")] });
        assert_eq!(mixed.predicate, "n.`a_lang` IN $f0");
        assert_eq!(mixed.params, vec![("f0".into(), FilterParam::Strs(vec!["en".into(), "fr".into()]))]);
        assert_eq!(p(Filter::Or(vec![])).predicate, "false");
        assert_eq!(p(Filter::And(vec![])).predicate, "true");
        assert_eq!(p(Filter::Range { field: "year".into(), gte: None, lt: None }).predicate, "n.`a_year` IS NOT NULL");
        assert_eq!(p(Filter::Range { field: "year".into(), gte: Some(3), lt: None }).predicate, "n.`a_year` >= $f0");
    }

    #[test]
    fn names_are_quoted_and_collections_made_plain() {
        assert_eq!(attr_property("we`ird name"), "`a_we``ird name`");
        let n = Names::of("dbbench_rag-test 1");
        assert_eq!(n.label, "DbbenchDoc_dbbench_rag_test_1");
        assert_eq!(n.vector_index, "dbbench_vec_dbbench_rag_test_1");
        assert_eq!(n.constraint, "dbbench_id_dbbench_rag_test_1");
    }

    #[test]
    fn lucene_queries_are_escaped_words() {
        assert_eq!(lucene_query("  "), None);
        assert_eq!(lucene_query(""), None);
        assert_eq!(lucene_query("graph databases"), Some("graph databases".into()));
        assert_eq!(
            lucene_query("a+b (c) title:x \"q\" AND or NOT C++ -x a/b *?~ ^2 [1 TO 2] {x} !&&|| \\"),
            Some(
                "a\\+b \\(c\\) title\\:x \\\"q\\\" \"AND\" or \"NOT\" C\\+\\+ \\-x a\\/b \\*\\?\\~ \\^2 \\[1 TO 2\\] \\{x\\} \\!\\&\\&\\|\\| \\\\"
                    .into()
            )
        );
    }

    #[test]
    fn search_cypher_has_the_documented_shape() {
        let s = schema();
        let c = Cypher::new(&s, &Names::of(&s.collection));
        assert_eq!(
            c.knn(None),
            "CALL db.index.vector.queryNodes($vidx, $vn, $vec) YIELD node, score WITH node.id AS id, score ORDER BY score DESC, id LIMIT $k RETURN collect(id) AS ids"
        );
        assert!(c.knn(Some("node.`a_year` >= $f0")).contains("YIELD node, score WHERE node.`a_year` >= $f0 WITH"));
        assert!(c.text(None).contains("{limit: $tn}"));
        assert!(!c.text(Some("true")).contains("limit"), "filtered text filters every match");
        let e = c.expand(None, 2);
        assert!(e.contains("MATCH p = (s)-[:DBBENCH_LINK*0..2]-(m:`DbbenchDoc_dbbench_t`)"), "{e}");
        assert!(e.contains("min(length(p) * 1000000 + rank) AS key"), "{e}");
        assert!(e.contains("ORDER BY key, id LIMIT $max"), "{e}");
        let h = c.hybrid(None, true);
        assert!(h.starts_with("CALL () {") && h.contains("UNION ALL") && h.contains("1.0 / ($rrf_k + i + 1)"), "{h}");
        assert!(!c.hybrid(None, false).contains("fulltext"));
        assert!(c
            .load
            .contains("CREATE (n:`DbbenchDoc_dbbench_t` {id: r.id, text: r.text, `a_lang`: r.a0, `a_year`: r.a1})"));
        assert!(c.delete.contains("DELETE r") && !c.delete.contains("DETACH"));
    }

    #[test]
    fn settings_are_checked_and_credentials_kept_out_of_describe() {
        let s = Settings::parse(&cfg("", None)).unwrap();
        assert_eq!((s.m, s.ef_construction, s.overfetch, s.rrf_k, s.hybrid_candidates), (16, 100, 10, 60, 100));
        assert_eq!(s.database, "neo4j");
        let err = |t: &str| Settings::parse(&cfg(t, None)).unwrap_err();
        assert!(err("m = 0").contains("settings.m"));
        assert!(err("ef_construction = 5000").contains("ef_construction"));
        assert!(err("overfetch = 0").contains("overfetch"));
        assert!(err("database = \"neo4j`; DROP\"").contains("database"));
        assert!(err("analyzer = \"english'\"").contains("analyzer"));
        assert!(err("password = \"x\"").contains("needs a user"));
        assert!(err("ef_search = 3").contains("unknown field"));
        let d = Neo4j::new(&cfg("", Some("bolt://neo:s3cret@127.0.0.1:7687"))).unwrap();
        assert_eq!(d.url, "bolt://127.0.0.1:7687");
        assert_eq!(d.auth, "basic (user neo)");
        let d = Neo4j::new(&cfg("user = \"u\"\npassword = \"p%40\"", None)).unwrap();
        assert_eq!(d.auth, "basic (user u)");
        assert!(!format!("{} {}", d.url, d.auth).contains("p%40"));
        assert!(Neo4j::new(&cfg("", Some("http://127.0.0.1:7474"))).is_err(), "not a Bolt URL");
        assert_eq!(percent_decode("p%40ss%3Aw"), "p@ss:w");
    }

    #[test]
    fn candidates_widen_the_search_and_overfetch_multiplies_it() {
        let d = Neo4j::new(&cfg("overfetch = 4", None)).unwrap();
        let mut p = SearchParams::new();
        assert_eq!(d.candidates(10, &p, false).unwrap(), 10, "as many as wanted by default");
        assert_eq!(d.candidates(10, &p, true).unwrap(), 40);
        p.insert("candidates".into(), json!(100));
        assert_eq!(d.candidates(10, &p, false).unwrap(), 100);
        assert_eq!(d.candidates(10, &p, true).unwrap(), 400);
        assert_eq!(d.candidates(200, &p, false).unwrap(), 200, "raised to what is wanted");
        let d = Neo4j::new(&cfg("candidates = 50", None)).unwrap();
        assert_eq!(d.candidates(10, &SearchParams::new(), false).unwrap(), 50);
        p.insert("candidates".into(), json!("many"));
        assert_eq!(d.candidates(10, &p, false).unwrap_err().kind, ErrorKind::Rejected);
        let knob = d.effort_knob(OpKind::Knn).unwrap();
        assert_eq!((knob.param, knob.value(5, 10), knob.value(50_000, 10)), ("candidates", 10, 10_000));
        assert!(Settings::parse(&cfg("candidates = 0", None)).is_err());
    }

    #[test]
    fn dot_needs_unit_vectors() {
        let mut s = schema();
        s.metric = Metric::Dot;
        let r = |v: Vec<f32>| Record {
            id: 1,
            vector: v.into(),
            text: "x".into(),
            attributes: vec![kw("en"), AttrValue::Integer(1)],
        };
        assert!(check_record(&r(vec![0.6, 0.8]), &s).is_ok());
        assert_eq!(check_record(&r(vec![3.0, 4.0]), &s).unwrap_err().kind, ErrorKind::Unsupported);
        let mut bad = r(vec![0.6, 0.8]);
        bad.attributes = vec![AttrValue::Integer(1), AttrValue::Integer(1)];
        assert_eq!(check_record(&bad, &s).unwrap_err().kind, ErrorKind::Rejected);
        assert!(check_record(&r(vec![1.0]), &s).is_err(), "dimension");
    }

    #[test]
    fn failures_while_pulling_keep_neo4js_code_and_message() {
        let m = r#"unexpected response for PULL: Ok(Failure(Failure { metadata: BoltMap { value: {BoltString { value: "code" }: String(BoltString { value: "Neo.ClientError.Procedure.ProcedureCallFailed" }), BoltString { value: "message" }: String(BoltString { value: "Failed to invoke \"x\"" })} } }))"#;
        assert_eq!(
            failure_text(m).as_deref(),
            Some("Neo.ClientError.Procedure.ProcedureCallFailed: Failed to invoke \"x\"")
        );
        let e = neo_err("knn", neo4rs::Error::UnexpectedMessage(m.into()));
        assert_eq!(e.kind, ErrorKind::Rejected);
        // As neo4rs 0.8 reported `UNWIND [1, 0] AS x RETURN 1 / x` (keys in any order).
        let m = r#"unexpected response for PULL: Ok(Failure(Failure { metadata: BoltMap { value: {BoltString { value: "message" }: String(BoltString { value: "/ by zero" }), BoltString { value: "code" }: String(BoltString { value: "Neo.ClientError.Statement.ArithmeticError" })} } }))"#;
        let e = neo_err("scan", neo4rs::Error::UnexpectedMessage(m.into()));
        assert_eq!(e.message, "neo4j scan: Neo.ClientError.Statement.ArithmeticError: / by zero");
        let e = neo_err("ping", neo4rs::Error::IOError { detail: std::io::ErrorKind::ConnectionRefused.into() });
        assert_eq!(e.kind, ErrorKind::Unreachable);
    }
}
