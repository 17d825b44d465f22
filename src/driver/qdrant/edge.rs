//! Qdrant's own engine, embedded: the `qdrant-edge` crate runs Qdrant's segments, HNSW,
//! payload indexes, sparse vectors and query planner inside the dbbench process.
//!
//! One shard per collection, in a folder dbbench owns (`<dir>/<collection>/`, marked by
//! a `dbbench.json` file; `prepare` removes only a folder that carries it). Dense vectors
//! are the named vector `dense` (HNSW, optional int8 scalar quantization with rescoring),
//! text is the named sparse vector `bm25`: documents are embedded with Qdrant's own BM25
//! tokenizer and model, and the engine applies the IDF modifier at query time, which is
//! how the Qdrant server ranks text too. Hybrid is the query API: two prefetches (dense,
//! BM25) fused by reciprocal rank fusion in the engine.
//!
//! The engine's calls are synchronous and CPU-bound. They run through
//! `tokio::task::spawn_blocking`, never on the async workers' threads, so that a long
//! search or an index build cannot stall the runner's timers and other workers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ::qdrant_edge::bm25_embed::{EdgeBm25, EdgeBm25Config};
use ::qdrant_edge::external::ordered_float::OrderedFloat;
use ::qdrant_edge::external::serde_json::{Map as JsonMap, Value as JsonValue};
use ::qdrant_edge::{
    AnyVariants, Condition, CreateIndex, Distance, EdgeConfig, EdgeShard, EdgeSparseVectorParams, EdgeVectorParams,
    FieldCondition, FieldIndexOperations, Filter as QFilter, Fusion, HasIdCondition, HnswIndexConfig, JsonPath, Match,
    Modifier, NamedQuery, OperationError, PayloadFieldSchema, PayloadOps, PayloadSchemaType, PointId,
    PointInsertOperations, PointOperations, PointStruct, Prefetch, QuantizationConfig, QuantizationSearchParams,
    QueryEnum, QueryRequest, Range, ScalarQuantizationConfig, ScalarType, ScoringQuery, ScrollRequest,
    SearchParams as QSearchParams, SetPayloadOp, UpdateOperation, ValueVariants, Vector, VectorInternal,
    VectorStructInternal, Vectors, WithPayloadInterface, WithVector,
};
use async_trait::async_trait;

use crate::driver::shared::{self, Found, Namespace, Prepared, MARKER_KEY, MARKER_VALUE};
use crate::driver::*;

use super::common::{capabilities, qdrant_settings, Flavor};
pub use super::common::{DENSE, SPARSE, TEXT_KEY};
const MARKER: &str = "dbbench.json";

qdrant_settings! {
    /// The embedded driver's settings: its own keys, then those it shares with the server
    /// driver.
    pub struct Settings {
        /// Folder holding one shard folder per collection (relative to the current directory).
        dir: PathBuf = PathBuf::from(".dbbench/qdrant-edge"),
    }
}

impl Settings {
    fn bm25(&self) -> Result<EdgeBm25, String> {
        let nn = |x: f64, what: &str| {
            ::qdrant_edge::external::ordered_float::NotNan::new(x).map_err(|_| format!("bm25_{what} is not a number"))
        };
        EdgeBm25::new(EdgeBm25Config {
            k: nn(self.bm25_k1, "k1")?,
            b: nn(self.bm25_b, "b")?,
            avg_len: nn(self.bm25_avg_len, "avg_len")?,
            language: Some(self.language.clone()),
            ..Default::default()
        })
        .map_err(|e| format!("bm25: {e}"))
    }

    fn hnsw(&self) -> HnswIndexConfig {
        HnswIndexConfig {
            m: self.m,
            ef_construct: self.ef_construct,
            full_scan_threshold: self.full_scan_threshold_kb,
            ..Default::default()
        }
    }

    fn quantization_config(&self) -> Option<QuantizationConfig> {
        (self.quantization == "int8").then(|| {
            QuantizationConfig::from(ScalarQuantizationConfig {
                r#type: ScalarType::Int8,
                quantile: Some(0.99),
                always_ram: Some(true),
            })
        })
    }

    /// The engine's configuration for a shard of `schema`.
    pub fn edge_config(&self, schema: &Schema) -> EdgeConfig {
        let mut config = EdgeConfig {
            on_disk_payload: self.on_disk_payload,
            hnsw_config: self.hnsw(),
            quantization_config: self.quantization_config(),
            ..Default::default()
        };
        config.vectors.insert(
            DENSE.into(),
            EdgeVectorParams {
                size: schema.dim,
                distance: distance(schema.metric),
                on_disk: None,
                multivector_config: None,
                datatype: None,
                quantization_config: None,
                hnsw_config: None,
            },
        );
        config
            .sparse_vectors
            .insert(SPARSE.into(), EdgeSparseVectorParams { modifier: Some(Modifier::Idf), ..Default::default() });
        config.optimizers.indexing_threshold = Some(self.indexing_threshold_kb);
        config
    }

    /// Search params for one op: `hnsw_ef` and `exact` from the op override the settings.
    fn search_params(&self, params: &SearchParams) -> DriverResult<QSearchParams> {
        let (hnsw_ef, exact) = super::common::search_knobs("qdrant-edge", params, self.hnsw_ef)?;
        let exact = exact.unwrap_or(false);
        let quantization = (self.quantization != "none").then_some(QuantizationSearchParams {
            ignore: false,
            rescore: Some(self.rescore),
            oversampling: Some(self.oversampling),
        });
        Ok(QSearchParams { hnsw_ef, exact, quantization, ..Default::default() })
    }
}

pub fn distance(metric: Metric) -> Distance {
    match metric {
        Metric::Cosine => Distance::Cosine,
        Metric::Dot => Distance::Dot,
        Metric::L2 => Distance::Euclid,
    }
}

fn key(field: &str) -> DriverResult<JsonPath> {
    field.parse::<JsonPath>().map_err(|_| DriverError::rejected(format!("qdrant-edge: {field:?} is not a payload key")))
}

fn value_variant(v: &AttrValue) -> ValueVariants {
    match v {
        AttrValue::Keyword(s) => ValueVariants::String(s.clone()),
        AttrValue::Integer(i) => ValueVariants::Integer(*i),
    }
}

/// A condition no point satisfies: membership in the empty id set.
fn never() -> Condition {
    Condition::HasId(std::iter::empty::<PointId>().collect::<HasIdCondition>())
}

/// dbbench's filter as a Qdrant filter with the same meaning as `Filter::matches`:
/// `And` is `must` (all of), `Or` is `should` (at least one of), `In` is `match any`,
/// `Range` is `gte`/`lt` on the number. An empty `Or` matches nothing, as in the
/// reference semantics (Qdrant treats an empty `should` as no constraint).
pub fn translate(f: &Filter) -> DriverResult<QFilter> {
    Ok(QFilter::new_must(condition(f)?))
}

fn condition(f: &Filter) -> DriverResult<Condition> {
    Ok(match f {
        Filter::Eq { field, value } => {
            Condition::Field(FieldCondition::new_match(key(field)?, Match::new_value(value_variant(value))))
        }
        Filter::In { field, values } => {
            let (ints, strings) = AttrValue::by_kind(values);
            let k = key(field)?;
            let mut parts = Vec::new();
            if !strings.is_empty() {
                parts.push(Condition::Field(FieldCondition::new_match(
                    k.clone(),
                    Match::new_any(AnyVariants::Strings(strings.into_iter().collect())),
                )));
            }
            if !ints.is_empty() {
                parts.push(Condition::Field(FieldCondition::new_match(
                    k,
                    Match::new_any(AnyVariants::Integers(ints.into_iter().collect())),
                )));
            }
            match parts.len() {
                0 => never(),
                1 => parts.remove(0),
                _ => Condition::Filter(QFilter { should: Some(parts), ..Default::default() }),
            }
        }
        Filter::Range { field, gte, lt } => Condition::Field(FieldCondition::new_range(
            key(field)?,
            Range {
                gte: gte.map(|g| OrderedFloat(g as f64)),
                lt: lt.map(|l| OrderedFloat(l as f64)),
                gt: None,
                lte: None,
            },
        )),
        Filter::And(parts) => Condition::Filter(QFilter {
            must: Some(parts.iter().map(condition).collect::<DriverResult<_>>()?),
            ..Default::default()
        }),
        Filter::Or(parts) if parts.is_empty() => never(),
        Filter::Or(parts) => Condition::Filter(QFilter {
            should: Some(parts.iter().map(condition).collect::<DriverResult<_>>()?),
            ..Default::default()
        }),
    })
}

fn err(e: OperationError) -> DriverError {
    match e {
        OperationError::Timeout { .. } => DriverError::new(ErrorKind::Timeout, format!("qdrant-edge: {e}")),
        OperationError::ServiceError { .. }
        | OperationError::InconsistentStorage { .. }
        | OperationError::OutOfMemory { .. } => DriverError::other(format!("qdrant-edge: {e}")),
        _ => DriverError::rejected(format!("qdrant-edge: {e}")),
    }
}

fn io_err(path: &Path, e: std::io::Error) -> DriverError {
    DriverError::other(format!("qdrant-edge: {}: {e}", path.display()))
}

/// The payload stored with a record: its text and one key per attribute.
pub fn payload(schema: &Schema, r: &Record) -> JsonValue {
    let mut m = JsonMap::new();
    m.insert(TEXT_KEY.into(), JsonValue::String(r.text.to_string()));
    for (a, v) in schema.attributes.iter().zip(&r.attributes) {
        m.insert(a.name.clone(), attr_json(v));
    }
    JsonValue::Object(m)
}

fn attr_json(v: &AttrValue) -> JsonValue {
    match v {
        AttrValue::Keyword(s) => JsonValue::String(s.clone()),
        AttrValue::Integer(i) => JsonValue::from(*i),
    }
}

fn point_id(id: &PointId) -> DriverResult<u64> {
    match id {
        PointId::NumId(n) => Ok(*n),
        PointId::Uuid(u) => Err(DriverError::protocol(format!("qdrant-edge: unexpected uuid point id {u}"))),
    }
}

struct State {
    shard: Arc<EdgeShard>,
    schema: Schema,
    folder: PathBuf,
}

pub struct QdrantEdge {
    settings: Settings,
    bm25: Arc<EdgeBm25>,
    state: Prepared<State>,
}

/// Close a shard: it flushes when its last handle goes (on the blocking pool, as it
/// writes).
async fn close(st: Arc<State>) -> DriverResult<()> {
    blocking(move || {
        drop(st);
        Ok(())
    })
    .await
}

/// Run an engine call on tokio's blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> DriverResult<T> + Send + 'static) -> DriverResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DriverError::other(format!("qdrant-edge: engine call failed: {e}")))?
}

impl Flavor for QdrantEdge {
    type Settings = Settings;

    fn settings(cfg: &EngineConfig) -> Result<Settings, String> {
        let s: Settings = parse_settings(cfg)?;
        s.check_shared(&cfg.name)?;
        // The embedded tokenizer is at hand: it refuses a language it has no stemmer for.
        s.bm25().map_err(|e| format!("engines.{}.settings: {e}", cfg.name))?;
        Ok(s)
    }

    fn open(cfg: &EngineConfig) -> Result<Self, String> {
        let settings = Self::settings(cfg)?;
        let bm25 = Arc::new(settings.bm25()?);
        Ok(QdrantEdge { settings, bm25, state: Prepared::new("qdrant-edge") })
    }
}

impl QdrantEdge {
    fn point(&self, schema: &Schema, r: &Record) -> PointStruct {
        let sparse = self.bm25.embed_document(&r.text);
        let vectors =
            Vectors::new_named([(DENSE, Vector::new_dense(r.vector.to_vec())), (SPARSE, Vector::from(sparse))]);
        PointStruct::new(r.id, vectors, payload(schema, r))
    }

    fn upsert(&self, schema: &Schema, records: &[Record]) -> UpdateOperation {
        let points = records.iter().map(|r| self.point(schema, r).into()).collect();
        UpdateOperation::PointOperation(PointOperations::UpsertPoints(PointInsertOperations::PointsList(points)))
    }

    fn dense_query(vector: &[f32]) -> ScoringQuery {
        ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery {
            query: VectorInternal::Dense(vector.to_vec()),
            using: Some(DENSE.into()),
        }))
    }

    /// The BM25 query vector, or None when the text has no searchable term.
    fn text_query(&self, text: &str) -> Option<ScoringQuery> {
        let sparse = self.bm25.embed_query(text);
        (!sparse.indices.is_empty()).then(|| {
            ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery {
                query: VectorInternal::Sparse(sparse),
                using: Some(SPARSE.into()),
            }))
        })
    }

    fn request(query: ScoringQuery, k: usize, filter: Option<QFilter>, params: Option<QSearchParams>) -> QueryRequest {
        QueryRequest {
            prefetches: vec![],
            query: Some(query),
            filter,
            score_threshold: None,
            limit: k,
            offset: 0,
            params,
            with_vector: WithVector::Bool(false),
            with_payload: WithPayloadInterface::Bool(false),
        }
    }

    fn hybrid_request(
        &self,
        vector: &[f32],
        text: &str,
        k: usize,
        filter: Option<QFilter>,
        params: QSearchParams,
    ) -> QueryRequest {
        let n = self.settings.hybrid_candidates.max(k);
        let mut prefetches = vec![Prefetch {
            prefetches: vec![],
            query: Some(Self::dense_query(vector)),
            limit: n,
            params: Some(params),
            filter: filter.clone(),
            score_threshold: None,
        }];
        if let Some(q) = self.text_query(text) {
            prefetches.push(Prefetch {
                prefetches: vec![],
                query: Some(q),
                limit: n,
                params: None,
                filter: filter.clone(),
                score_threshold: None,
            });
        }
        QueryRequest {
            prefetches,
            query: Some(ScoringQuery::Fusion(Fusion::Rrf { k: self.settings.rrf_k as usize, weights: None })),
            filter,
            score_threshold: None,
            limit: k,
            offset: 0,
            params: None,
            with_vector: WithVector::Bool(false),
            with_payload: WithPayloadInterface::Bool(false),
        }
    }

    async fn search(st: Arc<State>, request: QueryRequest) -> DriverResult<Outcome> {
        blocking(move || {
            let points = st.shard.query(request).map_err(err)?;
            let ids = points.iter().map(|p| point_id(&p.id)).collect::<DriverResult<Vec<u64>>>()?;
            Ok(Outcome::Hits(ids))
        })
        .await
    }
}

/// A stored point back as a record.
fn record(
    schema: &Schema,
    id: u64,
    payload: Option<&JsonMap<String, JsonValue>>,
    vector: Option<&VectorStructInternal>,
) -> DriverResult<Record> {
    let payload = payload.ok_or_else(|| DriverError::protocol("qdrant-edge: point has no payload"))?;
    let text = payload
        .get(TEXT_KEY)
        .and_then(|t| t.as_str())
        .ok_or_else(|| DriverError::protocol("qdrant-edge: point has no text"))?;
    let mut attributes = Vec::with_capacity(schema.attributes.len());
    for a in &schema.attributes {
        let v = payload.get(&a.name);
        attributes.push(match (a.kind, v) {
            (AttrKind::Keyword, Some(JsonValue::String(s))) => AttrValue::Keyword(s.clone()),
            (AttrKind::Integer, Some(v)) if v.as_i64().is_some() => AttrValue::Integer(v.as_i64().unwrap_or_default()),
            _ => {
                return Err(DriverError::protocol(format!(
                    "qdrant-edge: attribute {} missing or mistyped: {v:?}",
                    a.name
                )))
            }
        });
    }
    let dense = match vector {
        Some(VectorStructInternal::Single(v)) => v.clone(),
        Some(VectorStructInternal::Named(m)) => match m.get(DENSE) {
            Some(VectorInternal::Dense(v)) => v.clone(),
            _ => return Err(DriverError::protocol("qdrant-edge: point has no dense vector")),
        },
        _ => return Err(DriverError::protocol("qdrant-edge: point has no dense vector")),
    };
    Ok(Record { id, vector: Arc::from(dense), text: Arc::from(text), attributes })
}

fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Qdrant Edge's calls on dbbench's namespace: one folder per collection under
/// `settings.dir`, marked by a `dbbench.json` file in it.
struct Folders<'a>(&'a QdrantEdge);

impl Folders<'_> {
    fn folder(&self, collection: &str) -> PathBuf {
        self.0.settings.dir.join(collection)
    }
}

#[async_trait]
impl Namespace for Folders<'_> {
    type Created = State;

    const ENGINE: &'static str = "qdrant-edge";

    fn object(&self, collection: &str) -> String {
        format!("folder {}", self.folder(collection).display())
    }

    fn marker(&self) -> String {
        format!("{MARKER} file with {MARKER_KEY} = {MARKER_VALUE:?}")
    }

    const REMEDY: &'static str = "move it away or set settings.dir to another folder";

    async fn find(&mut self, collection: &str) -> DriverResult<Found> {
        let folder = self.folder(collection);
        blocking(move || {
            if !folder.exists() {
                return Ok(Found::Absent);
            }
            let marked = std::fs::read_to_string(folder.join(MARKER))
                .ok()
                .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
                .is_some_and(|v| v.get(MARKER_KEY).and_then(|c| c.as_str()) == Some(MARKER_VALUE));
            Ok(if marked { Found::Marked } else { Found::Unmarked })
        })
        .await
    }

    async fn create(&mut self, schema: &Schema) -> DriverResult<State> {
        let folder = self.folder(&schema.collection);
        let config = self.0.settings.edge_config(schema);
        let schema_c = schema.clone();
        blocking(move || {
            std::fs::create_dir_all(&folder).map_err(|e| io_err(&folder, e))?;
            let marker = serde_json::json!({MARKER_KEY: MARKER_VALUE, "collection": schema_c.collection});
            std::fs::write(folder.join(MARKER), marker.to_string()).map_err(|e| io_err(&folder, e))?;
            let shard_dir = folder.join("shard");
            std::fs::create_dir_all(&shard_dir).map_err(|e| io_err(&shard_dir, e))?;
            let shard = EdgeShard::new(&shard_dir, config).map_err(err)?;
            for a in &schema_c.attributes {
                let ty = match a.kind {
                    AttrKind::Keyword => PayloadSchemaType::Keyword,
                    AttrKind::Integer => PayloadSchemaType::Integer,
                };
                shard
                    .update(UpdateOperation::FieldIndexOperation(FieldIndexOperations::CreateIndex(CreateIndex {
                        field_name: key(&a.name)?,
                        field_schema: Some(PayloadFieldSchema::FieldType(ty)),
                    })))
                    .map_err(err)?;
            }
            Ok(State { shard: Arc::new(shard), schema: schema_c, folder })
        })
        .await
    }

    async fn open(&mut self, schema: &Schema) -> DriverResult<State> {
        let folder = self.folder(&schema.collection);
        let schema = schema.clone();
        blocking(move || {
            let shard = EdgeShard::load(&folder.join("shard"), None).map_err(err)?;
            Ok(State { shard: Arc::new(shard), schema, folder })
        })
        .await
    }

    async fn drop_marked(&mut self, collection: &str) -> DriverResult<()> {
        let folder = self.folder(collection);
        blocking(move || std::fs::remove_dir_all(&folder).map_err(|e| io_err(&folder, e))).await
    }
}

#[async_trait]
impl Driver for QdrantEdge {
    fn write_visibility(&self) -> String {
        "the shard applies each update before it returns; new points are searched in an appendable segment until the optimizer indexes them".into()
    }
    fn kind(&self) -> &'static str {
        "qdrant-edge"
    }

    fn capabilities(&self) -> Capabilities {
        capabilities()
    }

    async fn ping(&self) -> DriverResult<()> {
        // Embedded: the engine is here when the folder can be written.
        let dir = self.settings.dir.clone();
        blocking(move || std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))).await
    }

    async fn prepare(&self, schema: &Schema) -> DriverResult<()> {
        super::common::check_attributes("qdrant-edge", schema)?;
        // Close a shard this driver still holds before its folder goes.
        if let Some(old) = self.state.take() {
            close(old).await?;
        }
        let st = shared::prepare_own(&mut Folders(self), schema).await?;
        self.state.set(st);
        Ok(())
    }

    async fn load(&self, batch: &[Record]) -> DriverResult<()> {
        let st = self.state.get()?;
        let op = self.upsert(&st.schema, batch);
        blocking(move || st.shard.update(op).map_err(err)).await
    }

    async fn finish_load(&self) -> DriverResult<IndexStats> {
        let st = self.state.get()?;
        let s = &self.settings;
        let hnsw = format!(
            "m = {}, ef_construct = {}, full_scan_threshold = {} KiB",
            s.m, s.ef_construct, s.full_scan_threshold_kb
        );
        let quantization = s.quantization.clone();
        let threshold = s.indexing_threshold_kb;
        blocking(move || {
            let started = std::time::Instant::now();
            st.shard.optimize().map_err(err)?;
            let optimize_s = started.elapsed().as_secs_f64();
            let info = st.shard.info();
            let mut details = std::collections::BTreeMap::new();
            details.insert("segments".into(), serde_json::json!(info.segments_count));
            details.insert("indexed_vectors".into(), serde_json::json!(info.indexed_vectors_count));
            details.insert("optimize_seconds".into(), serde_json::json!(optimize_s));
            details.insert("hnsw".into(), serde_json::json!(hnsw));
            details.insert("indexing_threshold_kb".into(), serde_json::json!(threshold));
            details.insert("quantization".into(), serde_json::json!(quantization));
            let indexed: Vec<String> = info.payload_schema.keys().map(|k| k.to_string()).collect();
            details.insert("payload_indexes".into(), serde_json::json!(indexed));
            details.insert("text".into(), serde_json::json!("BM25 sparse vectors with the IDF modifier"));
            Ok(IndexStats { records: Some(info.points_count as u64), size_bytes: Some(dir_size(&st.folder)), details })
        })
        .await
    }

    async fn execute(&self, op: &Op<'_>) -> DriverResult<Outcome> {
        let st = self.state.get()?;
        match op {
            Op::Knn { vector, k, filter, params } => {
                let filter = filter.map(translate).transpose()?;
                let req =
                    Self::request(Self::dense_query(vector), *k, filter, Some(self.settings.search_params(params)?));
                Self::search(st, req).await
            }
            Op::Text { query, k, filter, .. } => {
                let Some(q) = self.text_query(query) else {
                    return Ok(Outcome::Hits(Vec::new()));
                };
                let filter = filter.map(translate).transpose()?;
                Self::search(st, Self::request(q, *k, filter, None)).await
            }
            Op::Hybrid { vector, query, k, filter, params } => {
                let filter = filter.map(translate).transpose()?;
                let req = self.hybrid_request(vector, query, *k, filter, self.settings.search_params(params)?);
                Self::search(st, req).await
            }
            Op::Get { id } => {
                let id = *id;
                blocking(move || {
                    let found = st
                        .shard
                        .retrieve(
                            &[PointId::NumId(id)],
                            Some(WithPayloadInterface::Bool(true)),
                            Some(WithVector::Selector(vec![DENSE.into()])),
                        )
                        .map_err(err)?;
                    match found.first() {
                        None => Ok(Outcome::Found(None)),
                        Some(p) => Ok(Outcome::Found(Some(record(
                            &st.schema,
                            id,
                            p.payload.as_ref().map(|p| &p.0),
                            p.vector.as_ref(),
                        )?))),
                    }
                })
                .await
            }
            Op::Insert { record } => {
                let upsert = self.upsert(&st.schema, std::slice::from_ref(*record));
                blocking(move || st.shard.update(upsert).map_err(err).map(|_| Outcome::Written(1))).await
            }
            Op::Update { id, field, value } => {
                let mut payload = JsonMap::new();
                payload.insert(field.to_string(), attr_json(value));
                let update = UpdateOperation::PayloadOperation(PayloadOps::SetPayload(SetPayloadOp {
                    payload: ::qdrant_edge::Payload(payload),
                    points: Some(vec![PointId::NumId(*id)]),
                    filter: None,
                    key: None,
                }));
                blocking(move || match st.shard.update(update) {
                    Ok(()) => Ok(Outcome::Written(1)),
                    Err(OperationError::PointIdError { .. }) => Ok(Outcome::Written(0)),
                    Err(e) => Err(err(e)),
                })
                .await
            }
            Op::Delete { id } => {
                // The engine does not say whether the id existed; one point was asked for.
                let delete =
                    UpdateOperation::PointOperation(PointOperations::DeletePoints { ids: vec![PointId::NumId(*id)] });
                blocking(move || st.shard.update(delete).map_err(err).map(|_| Outcome::Written(1))).await
            }
            Op::Scan { start, limit } => {
                let req = ScrollRequest {
                    offset: Some(PointId::NumId(*start)),
                    limit: Some(*limit),
                    filter: None,
                    with_payload: Some(WithPayloadInterface::Bool(false)),
                    with_vector: WithVector::Bool(false),
                    order_by: None,
                };
                blocking(move || {
                    let (points, _) = st.shard.scroll(req).map_err(err)?;
                    let ids = points.iter().map(|p| point_id(&p.id)).collect::<DriverResult<Vec<u64>>>()?;
                    Ok(Outcome::Hits(ids))
                })
                .await
            }
            Op::ReadModifyWrite { .. } => {
                Err(DriverError::unsupported("qdrant-edge: no transactions, so no atomic read-modify-write"))
            }
            Op::Expand { .. } => {
                Err(DriverError::unsupported("qdrant-edge: no links between points, so no graph expansion"))
            }
        }
    }

    async fn describe(&self) -> DriverResult<EngineInfo> {
        let s = &self.settings;
        let settings = s.describe_with(
            serde_json::json!({ "dir": s.dir.display().to_string() }),
            format!(
                "BM25 sparse vectors (k1 = {}, b = {}, avg_len = {}, {}), IDF modifier in the engine",
                s.bm25_k1, s.bm25_b, s.bm25_avg_len, s.language
            ),
            ("engine_calls", "tokio spawn_blocking"),
        );
        Ok(EngineInfo { version: format!("qdrant-edge {}", EDGE_VERSION), settings })
    }

    async fn cleanup(&self) -> DriverResult<()> {
        let Some(st) = self.state.take() else { return Ok(()) };
        let collection = st.schema.collection.clone();
        close(st).await?;
        shared::release_own(&mut Folders(self), &collection).await
    }

    async fn attach(&self, schema: &Schema) -> DriverResult<()> {
        super::common::check_attributes("qdrant-edge", schema)?;
        if let Some(old) = self.state.take() {
            close(old).await?;
        }
        let st = shared::attach_own(&mut Folders(self), schema).await?;
        self.state.set(st);
        Ok(())
    }

    async fn count(&self) -> DriverResult<u64> {
        let st = self.state.get()?;
        blocking(move || {
            st.shard.count(::qdrant_edge::CountRequest { filter: None, exact: true }).map(|n| n as u64).map_err(err)
        })
        .await
    }

    async fn close(&self) -> DriverResult<()> {
        match self.state.take() {
            Some(st) => close(st).await,
            None => Ok(()),
        }
    }

    async fn durability(&self) -> String {
        "an update is appended to the shard's write-ahead log before it returns, but qdrant-edge 0.7 does not replay \
         that log when it opens a shard (EdgeShard::load reads the segments only): what was written since the \
         shard last flushed (it flushes when closed) is gone if the process dies"
            .into()
    }

    /// qdrant-edge 0.7 can unpack and recover a snapshot but not make one: the backup is
    /// the shard's folder, copied while the shard is closed (closing flushes it).
    async fn backup(&self, target: &BackupTarget<'_>) -> DriverResult<Backup> {
        let st = self.state.take().ok_or_else(|| DriverError::other("qdrant-edge: prepare was not called"))?;
        let (schema, folder) = (st.schema.clone(), st.folder.clone());
        close(st).await?;
        let to = target.dir.join("shard");
        let from = folder.join("shard");
        let to_c = to.clone();
        let copied = blocking(move || copy_dir(&from, &to_c).map_err(|e| io_err(&from, e))).await;
        // Open it again whatever the copy did: the collection stays in service.
        let reopened = shared::attach_own(&mut Folders(self), &schema).await?;
        self.state.set(reopened);
        copied?;
        Ok(Backup::of_files("a copy of the closed shard's folder (qdrant-edge 0.7 makes no snapshots)".into(), to))
    }

    async fn restore(&self, backup: &Backup, _target: &BackupTarget<'_>) -> DriverResult<()> {
        let st = self.state.take().ok_or_else(|| DriverError::other("qdrant-edge: prepare was not called"))?;
        let schema = st.schema.clone();
        if shared::Found::Marked != Folders(self).find(&schema.collection).await? {
            return Err(DriverError::other("qdrant-edge: the collection's folder is no longer dbbench's"));
        }
        let shard_dir = st.folder.join("shard");
        close(st).await?;
        let from = backup.location.clone();
        blocking(move || {
            std::fs::remove_dir_all(&shard_dir).map_err(|e| io_err(&shard_dir, e))?;
            copy_dir(&from, &shard_dir).map_err(|e| io_err(&from, e))
        })
        .await?;
        let st = shared::attach_own(&mut Folders(self), &schema).await?;
        self.state.set(st);
        Ok(())
    }

    fn effort_knob(&self, _op: OpKind) -> Option<Knob> {
        Some(super::common::EFFORT)
    }
}

/// The embedded engine's crate version (pinned in Cargo.toml).
pub const EDGE_VERSION: &str = "0.7.0";

#[cfg(test)]
mod tests {
    use super::*;

    fn kw(s: &str) -> AttrValue {
        AttrValue::Keyword(s.into())
    }

    fn json(f: &Filter) -> serde_json::Value {
        serde_json::to_value(translate(f).expect("translates")).expect("serializes")
    }

    #[test]
    fn eq_and_in_become_match_value_and_match_any() {
        let f = Filter::Eq { field: "lang".into(), value: kw("de") };
        assert_eq!(json(&f), serde_json::json!({"must": [{"key": "lang", "match": {"value": "de"}}]}));
        let f = Filter::In { field: "year".into(), values: vec![AttrValue::Integer(1), AttrValue::Integer(2)] };
        assert_eq!(json(&f), serde_json::json!({"must": [{"key": "year", "match": {"any": [1, 2]}}]}));
    }

    #[test]
    fn range_is_inclusive_below_and_exclusive_above() {
        let f = Filter::Range { field: "year".into(), gte: Some(2005), lt: Some(2008) };
        assert_eq!(
            json(&f),
            serde_json::json!({"must": [{"key": "year", "range": {"gte": 2005.0, "lt": 2008.0, "gt": null, "lte": null}}]})
        );
    }

    #[test]
    fn and_is_must_and_or_is_should() {
        let f = Filter::Or(vec![
            Filter::Eq { field: "lang".into(), value: kw("fr") },
            Filter::And(vec![
                Filter::Eq { field: "lang".into(), value: kw("en") },
                Filter::Range { field: "year".into(), gte: Some(2010), lt: None },
            ]),
        ]);
        assert_eq!(
            json(&f),
            serde_json::json!({"must": [{"should": [
                {"key": "lang", "match": {"value": "fr"}},
                {"must": [{"key": "lang", "match": {"value": "en"}}, {"key": "year", "range": {"gte": 2010.0, "lt": null, "gt": null, "lte": null}}]}
            ]}]})
        );
    }

    #[test]
    fn empty_or_and_empty_in_match_nothing() {
        assert_eq!(json(&Filter::Or(vec![])), serde_json::json!({"must": [{"has_id": []}]}));
        assert_eq!(
            json(&Filter::In { field: "lang".into(), values: vec![] }),
            serde_json::json!({"must": [{"has_id": []}]})
        );
    }

    #[test]
    fn settings_reject_unknown_keys_and_bad_values() {
        let cfg = |k: &str, v: toml::Value| {
            let mut settings = toml::Table::new();
            settings.insert(k.into(), v);
            EngineConfig { name: "q".into(), url: None, settings, base_dir: ".".into() }
        };
        assert!(<QdrantEdge as Flavor>::settings(&cfg("nope", toml::Value::Integer(1))).is_err());
        assert!(<QdrantEdge as Flavor>::settings(&cfg("quantization", toml::Value::String("pq".into()))).is_err());
        assert!(<QdrantEdge as Flavor>::settings(&cfg("language", toml::Value::String("klingon".into()))).is_err());
        assert!(<QdrantEdge as Flavor>::settings(&cfg("quantization", toml::Value::String("int8".into()))).is_ok());
    }
}
