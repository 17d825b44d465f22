//! The Qdrant server over gRPC, with the official `qdrant-client` crate.
//!
//! dbbench's collection is `Schema::collection` (`dbbench_<workload>`), created with
//! collection metadata `created_by = "dbbench"`; `prepare` drops an existing collection
//! of that name only when its metadata carries that marker. Dense vectors are the named
//! vector `dense` (HNSW, optional int8 scalar quantization with rescoring), text is the
//! named sparse vector `bm25` with the IDF modifier, embedded by the server itself from
//! `Document { model: "qdrant/bm25" }` (the server's built-in BM25, so documents and
//! queries go through the same tokenizer). Hybrid is one query: a dense and a BM25
//! prefetch fused by parameterised reciprocal rank fusion on the server.
//!
//! Writes wait for the server to apply them (`wait = true`), so a read that follows
//! sees them, and `finish_load` returns once the collection is green and its indexed
//! vector count has settled.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use qdrant_client::qdrant::point_id::PointIdOptions;
use qdrant_client::qdrant::r#match::MatchValue;
use qdrant_client::qdrant::value::Kind;
use qdrant_client::qdrant::vector_output::Vector as VectorOut;
use qdrant_client::qdrant::{
    CollectionStatus, Condition, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder, DeleteCollectionBuilder,
    DeletePointsBuilder, Distance, Document, FieldType, Filter as QFilter, GetPointsBuilder, HnswConfigDiffBuilder,
    Modifier, OptimizersConfigDiffBuilder, PointId, PointStruct, PointsIdsList, PrefetchQueryBuilder,
    QuantizationSearchParamsBuilder, QuantizationType, Query, QueryPointsBuilder, Range, RrfBuilder,
    ScalarQuantizationBuilder, ScrollPointsBuilder, SearchParams as QSearchParams, SearchParamsBuilder,
    SetPayloadPointsBuilder, SparseVectorParamsBuilder, SparseVectorsConfigBuilder, UpsertPointsBuilder, Value, Vector,
    VectorInput, VectorParamsBuilder, VectorsConfigBuilder, VectorsSelector,
};
use qdrant_client::{Payload, Qdrant as Client, QdrantError};

use crate::driver::shared::{self, Found, Namespace, Prepared, MARKER_KEY, MARKER_VALUE};
use crate::driver::*;

use super::common::{capabilities, qdrant_settings, Flavor};
pub use super::common::{DENSE, SPARSE, TEXT_KEY};
/// The server's built-in BM25 model.
const BM25_MODEL: &str = "qdrant/bm25";

qdrant_settings! {
    /// The server driver's settings: its own keys, then those it shares with qdrant-edge.
    pub struct Settings {
        /// API key sent with every request (`api-key` header); unset: the environment
        /// variable `QDRANT_API_KEY`, if set. Never printed.
        api_key: Option<String> = None,
        /// Per-request timeout, seconds.
        timeout_s: u64 = 30,
        /// How long `finish_load` waits for the collection to turn green, seconds.
        index_timeout_s: u64 = 1800,
    }
}

impl Settings {
    fn bm25_options(&self) -> HashMap<String, Value> {
        HashMap::from([
            ("k".to_string(), Value::from(self.bm25_k1)),
            ("b".to_string(), Value::from(self.bm25_b)),
            ("avg_len".to_string(), Value::from(self.bm25_avg_len)),
            ("language".to_string(), Value::from(self.language.clone())),
        ])
    }

    fn document(&self, text: &str) -> Document {
        Document { text: text.to_string(), model: BM25_MODEL.to_string(), options: self.bm25_options() }
    }

    fn search_params(&self, params: &SearchParams) -> DriverResult<QSearchParams> {
        let mut b = SearchParamsBuilder::default();
        let (hnsw_ef, exact) = super::common::search_knobs("qdrant", params, self.hnsw_ef)?;
        if let Some(ef) = hnsw_ef {
            b = b.hnsw_ef(ef as u64);
        }
        if let Some(exact) = exact {
            b = b.exact(exact);
        }
        if self.quantization != "none" {
            b = b.quantization(
                QuantizationSearchParamsBuilder::default()
                    .ignore(false)
                    .rescore(self.rescore)
                    .oversampling(self.oversampling),
            );
        }
        Ok(b.build())
    }
}

pub fn distance(metric: Metric) -> Distance {
    match metric {
        Metric::Cosine => Distance::Cosine,
        Metric::Dot => Distance::Dot,
        Metric::L2 => Distance::Euclid,
    }
}

fn never() -> Condition {
    Condition::has_id(Vec::<u64>::new())
}

/// dbbench's filter as a Qdrant filter with the meaning of `Filter::matches`: `And` is
/// `must`, `Or` is `should`, `In` is match-any, `Range` is `gte`/`lt`. Keyword values are
/// always exact keyword matches (never full-text, whatever they contain). An empty `Or`
/// or `In` matches nothing, as in the reference semantics.
pub fn translate(f: &Filter) -> QFilter {
    QFilter::must([condition(f)])
}

fn condition(f: &Filter) -> Condition {
    match f {
        Filter::Eq { field, value } => Condition::matches(
            field.clone(),
            match value {
                AttrValue::Keyword(s) => MatchValue::Keyword(s.clone()),
                AttrValue::Integer(i) => MatchValue::Integer(*i),
            },
        ),
        Filter::In { field, values } => {
            let (ints, strings) = AttrValue::by_kind(values);
            let mut parts = Vec::new();
            if !strings.is_empty() {
                parts.push(Condition::matches(field.clone(), strings));
            }
            if !ints.is_empty() {
                parts.push(Condition::matches(field.clone(), ints));
            }
            match parts.len() {
                0 => never(),
                1 => parts.remove(0),
                _ => QFilter::should(parts).into(),
            }
        }
        Filter::Range { field, gte, lt } => Condition::range(
            field.clone(),
            Range { gte: gte.map(|g| g as f64), lt: lt.map(|l| l as f64), gt: None, lte: None },
        ),
        Filter::And(parts) => QFilter::must(parts.iter().map(condition)).into(),
        Filter::Or(parts) if parts.is_empty() => never(),
        Filter::Or(parts) => QFilter::should(parts.iter().map(condition)).into(),
    }
}

fn err(e: QdrantError) -> DriverError {
    let status = match &e {
        QdrantError::ResponseError { status } | QdrantError::ResourceExhaustedError { status, .. } => Some(status),
        _ => None,
    };
    let msg = format!("qdrant: {e}");
    match status.map(|s| s.code()) {
        Some(tonic::Code::Unavailable) => DriverError::unreachable(msg),
        Some(tonic::Code::DeadlineExceeded) => DriverError::new(ErrorKind::Timeout, msg),
        Some(tonic::Code::Unknown) if msg.contains("transport error") || msg.contains("connect") => {
            DriverError::unreachable(msg)
        }
        Some(tonic::Code::Unauthenticated | tonic::Code::PermissionDenied) => DriverError::new(ErrorKind::Auth, msg),
        Some(_) => DriverError::rejected(msg),
        None => DriverError::other(msg),
    }
}

/// An error in one line: tonic folds the transport error's Debug form into a status
/// message ("Failed to connect to URL: tonic::transport::Error(...)"); its first clause,
/// and whether the connection was refused, say what a user needs.
fn brief(e: &QdrantError) -> String {
    match e {
        QdrantError::ResponseError { status } => {
            let full = status.message();
            let head = full.split(": tonic::").next().unwrap_or(full).trim_end_matches('/');
            if full.contains("Connection refused") {
                format!("{head}: connection refused")
            } else {
                head.to_string()
            }
        }
        other => other.to_string(),
    }
}

fn is_not_found(e: &QdrantError) -> bool {
    matches!(e, QdrantError::ResponseError { status } if status.code() == tonic::Code::NotFound)
}

fn attr_value(v: &AttrValue) -> Value {
    match v {
        AttrValue::Keyword(s) => Value::from(s.clone()),
        AttrValue::Integer(i) => Value::from(*i),
    }
}

fn num_id(id: Option<&PointId>) -> DriverResult<u64> {
    match id.and_then(|p| p.point_id_options.as_ref()) {
        Some(PointIdOptions::Num(n)) => Ok(*n),
        other => Err(DriverError::protocol(format!("qdrant: unexpected point id {other:?}"))),
    }
}

pub struct QdrantServer {
    settings: Settings,
    client: Client,
    url: String,
    collection: Prepared<Schema>,
}

impl Flavor for QdrantServer {
    type Settings = Settings;

    fn settings(cfg: &EngineConfig) -> Result<Settings, String> {
        let s: Settings = parse_settings(cfg)?;
        s.check_shared(&cfg.name)?;
        if s.timeout_s == 0 {
            return Err(format!("engines.{}.settings.timeout_s: must be at least 1", cfg.name));
        }
        Ok(s)
    }

    fn open(cfg: &EngineConfig) -> Result<Self, String> {
        let mut settings = Self::settings(cfg)?;
        if settings.api_key.is_none() {
            settings.api_key = std::env::var("QDRANT_API_KEY").ok().filter(|k| !k.is_empty());
        }
        let url = cfg.url.clone().unwrap_or_else(|| super::SERVER.default_url.unwrap_or_default().to_string());
        let client = Client::from_url(&url)
            .api_key(settings.api_key.clone())
            .timeout(Duration::from_secs(settings.timeout_s))
            .connect_timeout(Duration::from_secs(5))
            .skip_compatibility_check()
            .build()
            .map_err(|e| format!("engines.{}: cannot use url {}: {e}", cfg.name, redact_url(&url)))?;
        Ok(QdrantServer { settings, client, url, collection: Prepared::new("qdrant") })
    }
}

impl QdrantServer {
    fn schema(&self) -> DriverResult<Arc<Schema>> {
        self.collection.get()
    }

    fn point(&self, schema: &Schema, r: &Record) -> PointStruct {
        let mut payload = Payload::new();
        payload.insert(TEXT_KEY, r.text.to_string());
        for (a, v) in schema.attributes.iter().zip(&r.attributes) {
            payload.insert(a.name.clone(), attr_value(v));
        }
        let vectors: HashMap<String, Vector> = HashMap::from([
            (DENSE.to_string(), Vector::from(r.vector.to_vec())),
            (SPARSE.to_string(), Vector::from(self.settings.document(&r.text))),
        ]);
        PointStruct::new(r.id, vectors, payload)
    }

    /// Create dbbench's collection for `schema`, its metadata carrying the marker, with a
    /// payload index per attribute.
    async fn create_collection(&self, schema: &Schema) -> DriverResult<()> {
        let c = &schema.collection;
        let s = &self.settings;
        let mut vectors = VectorsConfigBuilder::default();
        vectors.add_named_vector_params(DENSE, VectorParamsBuilder::new(schema.dim as u64, distance(schema.metric)));
        let mut sparse = SparseVectorsConfigBuilder::default();
        sparse.add_named_vector_params(SPARSE, SparseVectorParamsBuilder::default().modifier(Modifier::Idf as i32));
        let metadata: HashMap<String, serde_json::Value> = HashMap::from([
            (MARKER_KEY.to_string(), serde_json::json!(MARKER_VALUE)),
            ("collection".to_string(), serde_json::json!(c)),
        ]);
        let mut create = CreateCollectionBuilder::new(c.clone())
            .vectors_config(vectors)
            .sparse_vectors_config(sparse)
            .hnsw_config(
                HnswConfigDiffBuilder::default()
                    .m(s.m as u64)
                    .ef_construct(s.ef_construct as u64)
                    .full_scan_threshold(s.full_scan_threshold_kb as u64),
            )
            .optimizers_config(
                OptimizersConfigDiffBuilder::default().indexing_threshold(s.indexing_threshold_kb as u64),
            )
            .on_disk_payload(s.on_disk_payload)
            .metadata(metadata);
        if s.quantization == "int8" {
            create = create.quantization_config(
                ScalarQuantizationBuilder::default()
                    .r#type(QuantizationType::Int8 as i32)
                    .quantile(0.99)
                    .always_ram(true),
            );
        }
        self.client.create_collection(create).await.map_err(err)?;
        for a in &schema.attributes {
            let ty = match a.kind {
                AttrKind::Keyword => FieldType::Keyword,
                AttrKind::Integer => FieldType::Integer,
            };
            self.client
                .create_field_index(CreateFieldIndexCollectionBuilder::new(c.clone(), a.name.clone(), ty).wait(true))
                .await
                .map_err(err)?;
        }
        Ok(())
    }

    fn knn_query(
        &self,
        c: &str,
        vector: &[f32],
        k: usize,
        filter: Option<&Filter>,
        params: &SearchParams,
    ) -> DriverResult<QueryPointsBuilder> {
        let mut q = QueryPointsBuilder::new(c)
            .query(Query::new_nearest(vector.to_vec()))
            .using(DENSE)
            .limit(k as u64)
            .params(self.settings.search_params(params)?)
            .with_payload(false);
        if let Some(f) = filter {
            q = q.filter(translate(f));
        }
        Ok(q)
    }

    async fn ids(&self, q: QueryPointsBuilder) -> DriverResult<Outcome> {
        let res = self.client.query(q).await.map_err(err)?;
        let ids = res.result.iter().map(|p| num_id(p.id.as_ref())).collect::<DriverResult<Vec<u64>>>()?;
        Ok(Outcome::Hits(ids))
    }
}

fn record(schema: &Schema, id: u64, p: &qdrant_client::qdrant::RetrievedPoint) -> DriverResult<Record> {
    let text = match p.payload.get(TEXT_KEY).and_then(|v| v.kind.as_ref()) {
        Some(Kind::StringValue(s)) => s.clone(),
        _ => return Err(DriverError::protocol("qdrant: point has no text")),
    };
    let mut attributes = Vec::with_capacity(schema.attributes.len());
    for a in &schema.attributes {
        let v = p.payload.get(&a.name).and_then(|v| v.kind.as_ref());
        attributes.push(match (a.kind, v) {
            (AttrKind::Keyword, Some(Kind::StringValue(s))) => AttrValue::Keyword(s.clone()),
            (AttrKind::Integer, Some(Kind::IntegerValue(i))) => AttrValue::Integer(*i),
            (AttrKind::Integer, Some(Kind::DoubleValue(d))) if d.fract() == 0.0 => AttrValue::Integer(*d as i64),
            _ => return Err(DriverError::protocol(format!("qdrant: attribute {} missing or mistyped: {v:?}", a.name))),
        });
    }
    let dense = p.vectors.as_ref().and_then(|v| v.get_vector_by_name(DENSE));
    let vector = match dense {
        Some(VectorOut::Dense(d)) => d.data,
        _ => return Err(DriverError::protocol("qdrant: point has no dense vector")),
    };
    Ok(Record { id, vector: vector.into(), text: text.into(), attributes })
}

/// The Qdrant server's calls on dbbench's namespace: collections marked by their metadata.
struct Collections<'a>(&'a QdrantServer);

#[async_trait]
impl Namespace for Collections<'_> {
    type Created = ();

    const ENGINE: &'static str = "qdrant";

    fn object(&self, collection: &str) -> String {
        format!("collection {collection}")
    }

    fn marker(&self) -> String {
        format!("{MARKER_KEY} = {MARKER_VALUE:?} in its metadata")
    }

    const REMEDY: &'static str = "drop or rename it yourself";

    async fn find(&mut self, collection: &str) -> DriverResult<Found> {
        let client = &self.0.client;
        if !client.collection_exists(collection).await.map_err(err)? {
            return Ok(Found::Absent);
        }
        let info = client.collection_info(collection).await.map_err(err)?;
        let marked = info
            .result
            .and_then(|i| i.config)
            .and_then(|c| c.metadata.get(MARKER_KEY).cloned())
            .and_then(|v| match v.kind {
                Some(Kind::StringValue(s)) => Some(s),
                _ => None,
            })
            .is_some_and(|s| s == MARKER_VALUE);
        Ok(if marked { Found::Marked } else { Found::Unmarked })
    }

    async fn create(&mut self, schema: &Schema) -> DriverResult<()> {
        self.0.create_collection(schema).await
    }

    async fn drop_marked(&mut self, collection: &str) -> DriverResult<()> {
        self.0.client.delete_collection(DeleteCollectionBuilder::new(collection)).await.map_err(err)?;
        Ok(())
    }
}

#[async_trait]
impl Driver for QdrantServer {
    fn write_visibility(&self) -> String {
        "writes are sent with wait = true: acknowledged once the server has applied them".into()
    }
    async fn durability(&self) -> String {
        "writes are sent with wait = true: the server answers once the update is in its write-ahead log and applied; \
         when that log reaches the disk is the server's WAL setting, which this driver does not read"
            .into()
    }
    fn kind(&self) -> &'static str {
        "qdrant"
    }

    fn capabilities(&self) -> Capabilities {
        capabilities()
    }

    async fn ping(&self) -> DriverResult<()> {
        self.client.health_check().await.map(|_| ()).map_err(|e| {
            // A server that refuses the API key is there: a configuration error.
            let refused = matches!(&e, QdrantError::ResponseError { status }
                    if matches!(status.code(), tonic::Code::Unauthenticated | tonic::Code::PermissionDenied));
            let kind = if refused { ErrorKind::Auth } else { ErrorKind::Unreachable };
            DriverError::new(kind, format!("qdrant at {}: {}", redact_url(&self.url), brief(&e)))
        })
    }

    async fn prepare(&self, schema: &Schema) -> DriverResult<()> {
        super::common::check_attributes("qdrant", schema)?;
        shared::prepare_own(&mut Collections(self), schema).await?;
        self.collection.set(schema.clone());
        Ok(())
    }

    async fn load(&self, batch: &[Record]) -> DriverResult<()> {
        let schema = self.schema()?;
        let points: Vec<PointStruct> = batch.iter().map(|r| self.point(&schema, r)).collect();
        self.client
            .upsert_points(UpsertPointsBuilder::new(schema.collection.clone(), points).wait(true))
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn finish_load(&self) -> DriverResult<IndexStats> {
        let schema = self.schema()?;
        let started = Instant::now();
        let deadline = started + Duration::from_secs(self.settings.index_timeout_s);
        let mut last_indexed: Option<u64> = None;
        loop {
            let info = self
                .client
                .collection_info(schema.collection.clone())
                .await
                .map_err(err)?
                .result
                .ok_or_else(|| DriverError::protocol("qdrant: collection info without a result"))?;
            let green = info.status == CollectionStatus::Green as i32;
            let indexed = info.indexed_vectors_count.unwrap_or(0);
            // Green means no optimisation is pending; the indexed count must also have
            // stopped moving between two polls, so the HNSW graphs are really built.
            if green && last_indexed == Some(indexed) {
                let mut details = std::collections::BTreeMap::new();
                details.insert("segments".into(), serde_json::json!(info.segments_count));
                details.insert("indexed_vectors".into(), serde_json::json!(indexed));
                details.insert("index_wait_seconds".into(), serde_json::json!(started.elapsed().as_secs_f64()));
                let indexes: Vec<&String> = info.payload_schema.keys().collect();
                details.insert("payload_indexes".into(), serde_json::json!(indexes));
                details.insert(
                    "hnsw".into(),
                    serde_json::json!(format!(
                        "m = {}, ef_construct = {}",
                        self.settings.m, self.settings.ef_construct
                    )),
                );
                details.insert(
                    "text".into(),
                    serde_json::json!("server-side BM25 (qdrant/bm25) sparse vectors with the IDF modifier"),
                );
                return Ok(IndexStats { records: info.points_count, size_bytes: None, details });
            }
            if Instant::now() > deadline {
                return Err(DriverError::new(
                    ErrorKind::Timeout,
                    format!(
                        "qdrant: collection not green with a settled index after {} s (status {}, {indexed} vectors indexed)",
                        self.settings.index_timeout_s, info.status
                    ),
                ));
            }
            last_indexed = Some(indexed);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn execute(&self, op: &Op<'_>) -> DriverResult<Outcome> {
        let schema = self.schema()?;
        let c = schema.collection.as_str();
        match op {
            Op::Knn { vector, k, filter, params } => self.ids(self.knn_query(c, vector, *k, *filter, params)?).await,
            Op::Text { query, k, filter, .. } => {
                let mut q = QueryPointsBuilder::new(c)
                    .query(Query::new_nearest(VectorInput::from(self.settings.document(query))))
                    .using(SPARSE)
                    .limit(*k as u64)
                    .with_payload(false);
                if let Some(f) = filter {
                    q = q.filter(translate(f));
                }
                self.ids(q).await
            }
            Op::Hybrid { vector, query, k, filter, params } => {
                let n = self.settings.hybrid_candidates.max(*k) as u64;
                let mut dense = PrefetchQueryBuilder::default()
                    .query(Query::new_nearest(vector.to_vec()))
                    .using(DENSE)
                    .params(self.settings.search_params(params)?)
                    .limit(n);
                let mut text = PrefetchQueryBuilder::default()
                    .query(Query::new_nearest(VectorInput::from(self.settings.document(query))))
                    .using(SPARSE)
                    .limit(n);
                if let Some(f) = filter {
                    dense = dense.filter(translate(f));
                    text = text.filter(translate(f));
                }
                let q = QueryPointsBuilder::new(c)
                    .add_prefetch(dense)
                    .add_prefetch(text)
                    .query(Query::new_rrf(RrfBuilder::with_k(self.settings.rrf_k)))
                    .limit(*k as u64)
                    .with_payload(false);
                self.ids(q).await
            }
            Op::Get { id } => {
                let res = self
                    .client
                    .get_points(
                        GetPointsBuilder::new(c, vec![PointId::from(*id)])
                            .with_payload(true)
                            .with_vectors(VectorsSelector { names: vec![DENSE.to_string()] }),
                    )
                    .await
                    .map_err(err)?;
                match res.result.first() {
                    None => Ok(Outcome::Found(None)),
                    Some(p) => Ok(Outcome::Found(Some(record(&schema, *id, p)?))),
                }
            }
            Op::Insert { record } => {
                let point = self.point(&schema, record);
                self.client.upsert_points(UpsertPointsBuilder::new(c, vec![point]).wait(true)).await.map_err(err)?;
                Ok(Outcome::Written(1))
            }
            Op::Update { id, field, value } => {
                let mut payload = Payload::new();
                payload.insert(field.to_string(), attr_value(value));
                let req = SetPayloadPointsBuilder::new(c, payload)
                    .points_selector(PointsIdsList { ids: vec![PointId::from(*id)] })
                    .wait(true);
                match self.client.set_payload(req).await {
                    Ok(_) => Ok(Outcome::Written(1)),
                    Err(e) if is_not_found(&e) => Ok(Outcome::Written(0)),
                    Err(e) => Err(err(e)),
                }
            }
            Op::Delete { id } => {
                // The server does not say whether the id existed; one point was asked for.
                self.client
                    .delete_points(
                        DeletePointsBuilder::new(c).points(PointsIdsList { ids: vec![PointId::from(*id)] }).wait(true),
                    )
                    .await
                    .map_err(err)?;
                Ok(Outcome::Written(1))
            }
            Op::Scan { start, limit } => {
                let res = self
                    .client
                    .scroll(
                        ScrollPointsBuilder::new(c)
                            .offset(PointId::from(*start))
                            .limit(*limit as u32)
                            .with_payload(false)
                            .with_vectors(false),
                    )
                    .await
                    .map_err(err)?;
                let ids = res.result.iter().map(|p| num_id(p.id.as_ref())).collect::<DriverResult<Vec<u64>>>()?;
                Ok(Outcome::Hits(ids))
            }
            Op::ReadModifyWrite { .. } => {
                Err(DriverError::unsupported("qdrant: no transactions, so no atomic read-modify-write"))
            }
            Op::Expand { .. } => {
                Err(DriverError::unsupported("qdrant: no links between points, so no graph expansion"))
            }
        }
    }

    async fn describe(&self) -> DriverResult<EngineInfo> {
        let health = self.client.health_check().await.map_err(err)?;
        let s = &self.settings;
        let settings = s.describe_with(
            serde_json::json!({
                "url": redact_url(&self.url),
                "api_key": s.api_key.as_ref().map(|_| "***"),
                "timeout_s": s.timeout_s,
            }),
            format!(
                "server-side BM25 ({BM25_MODEL}: k1 = {}, b = {}, avg_len = {}, {}), IDF modifier",
                s.bm25_k1, s.bm25_b, s.bm25_avg_len, s.language
            ),
            ("client", "qdrant-client 1.16 (gRPC)"),
        );
        let commit = health.commit.map(|c| format!(" ({c})")).unwrap_or_default();
        Ok(EngineInfo { version: format!("{} {}{commit}", health.title, health.version), settings })
    }

    async fn cleanup(&self) -> DriverResult<()> {
        let schema = self.collection.take();
        shared::release_prepared(&mut Collections(self), schema.as_deref().map(|s| s.collection.as_str())).await
    }

    fn effort_knob(&self, _op: OpKind) -> Option<Knob> {
        Some(super::common::EFFORT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kw(s: &str) -> AttrValue {
        AttrValue::Keyword(s.into())
    }

    #[test]
    fn keyword_with_spaces_stays_an_exact_keyword_match() {
        let f = Filter::Eq { field: "lang".into(), value: kw("new york") };
        assert_eq!(translate(&f), QFilter::must([Condition::matches("lang", MatchValue::Keyword("new york".into()))]));
    }

    #[test]
    fn in_range_and_or_translate_to_their_qdrant_forms() {
        let f = Filter::Or(vec![
            Filter::In { field: "lang".into(), values: vec![kw("de"), kw("fr")] },
            Filter::And(vec![
                Filter::Range { field: "year".into(), gte: Some(2005), lt: Some(2008) },
                Filter::Eq { field: "year".into(), value: AttrValue::Integer(2006) },
            ]),
        ]);
        let expected = QFilter::must([QFilter::should([
            Condition::matches("lang", vec!["de".to_string(), "fr".to_string()]),
            QFilter::must([
                Condition::range("year", Range { gte: Some(2005.0), lt: Some(2008.0), gt: None, lte: None }),
                Condition::matches("year", MatchValue::Integer(2006)),
            ])
            .into(),
        ])
        .into()]);
        assert_eq!(translate(&f), expected);
    }

    #[test]
    fn empty_or_and_in_match_nothing() {
        assert_eq!(translate(&Filter::Or(vec![])), QFilter::must([never()]));
        assert_eq!(translate(&Filter::In { field: "lang".into(), values: vec![] }), QFilter::must([never()]));
    }

    #[test]
    fn api_key_never_shows_in_describe_settings() {
        let mut settings = toml::Table::new();
        settings.insert("api_key".into(), toml::Value::String("s3cret".into()));
        let cfg =
            EngineConfig { name: "q".into(), url: Some("http://127.0.0.1:1".into()), settings, base_dir: ".".into() };
        let s = <QdrantServer as Flavor>::settings(&cfg).expect("parses");
        assert_eq!(s.api_key.as_deref(), Some("s3cret"));
        let shown = redact_settings(&cfg.settings);
        assert_eq!(shown["api_key"], serde_json::json!("***"));
        assert!(<QdrantServer as Flavor>::settings(&EngineConfig {
            settings: toml::Table::from_iter([("bogus".to_string(), toml::Value::Integer(1))]),
            ..cfg
        })
        .is_err());
    }
}
