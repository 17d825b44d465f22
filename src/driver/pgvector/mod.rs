//! PostgreSQL with pgvector, over sqlx (binary protocol, prepared statements).
//!
//! Everything lives in one table `dbbench.<collection>`: an HNSW or IVFFlat index for
//! kNN, a generated `tsvector` column with a GIN index for text ranked by `ts_rank_cd`,
//! btree indexes on the attribute columns, and hybrid as reciprocal rank fusion in one
//! SQL statement. A table is only ever dropped when its comment says dbbench created it.
//!
//! The connection pool (one round trip per request, search knobs set per session) is
//! in `pool`; every SQL statement and the filter translation in `sql`.

mod backup;
mod copy;
mod pool;
mod sql;

pub use sql::or_query;

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgConnection, PgRow};
use sqlx::query::Query;
use sqlx::{ConnectOptions, Connection, Postgres, Row};

use super::sql_filter::Dialect;
use super::*;
use crate::driver::shared::{self, Found, Namespace, Prepared};
use pool::{pg_err, simple, Knobs, Pool};
use sql::{bind_args, column, ident, literal, State};

pub const DEFAULT_URL: &str = "postgres://dbbench:dbbench@127.0.0.1:5433/dbbench";

pub const KIND: DriverKind = DriverKind {
    kind: "pgvector",
    summary:
        "PostgreSQL + pgvector: HNSW/IVFFlat kNN with SQL filters, GIN ts_rank_cd text, RRF hybrid in SQL, transactions",
    default_url: Some(DEFAULT_URL),
    start_hint: "services/up.sh pgvector (or: docker compose -f docker-compose.bench.yml up -d pgvector)",
    capabilities,
    params: &[EF_SEARCH, PROBES],
    validate: |cfg| Settings::parse(cfg).map(|_| ()),
    open: |cfg| Ok(Box::new(PgVector::new(cfg)?)),
    hidden: false,
};

/// Set per request as a session knob, over `settings.ef_search`.
const EF_SEARCH: ParamDef = ParamDef {
    name: "ef_search",
    kind: ParamKind::Integer { min: 1, max: 1000 },
    ops: params::VECTOR_SEARCH_AND_EXPAND,
    summary: "HNSW candidate list while searching (hnsw.ef_search); default settings.ef_search",
};

/// Set per request as a session knob, over `settings.probes`.
const PROBES: ParamDef = ParamDef {
    name: "probes",
    kind: ParamKind::Integer { min: 1, max: 32768 },
    ops: params::VECTOR_SEARCH_AND_EXPAND,
    summary: "IVFFlat lists probed (ivfflat.probes); default settings.probes",
};

/// Text is ranked by `ts_rank_cd`, PostgreSQL's own ranking (cover density, not BM25):
/// that is what the op asks for ("BM25 or the engine's own ranking"), so it is native.
fn capabilities() -> Capabilities {
    Capabilities::all_native()
}

/// The schema every dbbench table lives in.
pub(super) const SCHEMA: &str = "dbbench";
/// The start of the table comment that marks a table as dbbench's own.
const MARKER: &str = "dbbench:";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Vector index: "hnsw", "ivfflat" or "none" (exact scan).
    pub index: String,
    /// HNSW: links per node.
    pub m: u32,
    /// HNSW: candidate list size while building.
    pub ef_construction: u32,
    /// IVFFlat: number of lists.
    pub lists: u32,
    /// HNSW: candidate list size while searching (per op: params `ef_search`).
    pub ef_search: u32,
    /// IVFFlat: lists probed per search (per op: params `probes`). Default: sqrt(lists).
    pub probes: Option<u32>,
    /// Filtered kNN: "relaxed_order", "strict_order" (HNSW only) or "off".
    pub iterative_scan: String,
    /// Idle connections kept open for work outside the measured phases (the load runs
    /// `[load] concurrency` of them). Each phase worker keeps a connection of its own on
    /// top, as a client keeps its session, whatever this is.
    pub pool_size: usize,
    /// Text search configuration for the tsvector and the queries.
    pub text_config: String,
    /// `ts_rank_cd` normalization bits (0: none; 1: divide by 1 + log(length); ...).
    pub rank_normalization: u32,
    /// Candidates taken from each side before reciprocal rank fusion.
    pub hybrid_candidates: usize,
    /// The k of reciprocal rank fusion: score = sum 1 / (rrf_k + rank).
    pub rrf_k: u32,
    /// Seconds to wait for a new connection before the server counts as unreachable.
    pub connect_timeout_s: f64,
    /// `maintenance_work_mem` for the index build's session (e.g. "4GB"), over the
    /// server's. pgvector builds an HNSW graph in memory while it fits there and much
    /// more slowly on disk once it does not (1M x 384 needs about 2 GB).
    pub maintenance_work_mem: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Settings {
            index: "hnsw".into(),
            m: 16,
            ef_construction: 64,
            lists: 100,
            ef_search: 40,
            probes: None,
            iterative_scan: "relaxed_order".into(),
            pool_size: (2 * cores + 1).min(32),
            text_config: "english".into(),
            rank_normalization: 0,
            hybrid_candidates: 100,
            rrf_k: 60,
            connect_timeout_s: 10.0,
            maintenance_work_mem: None,
        }
    }
}

impl Settings {
    fn parse(cfg: &EngineConfig) -> Result<Self, String> {
        let s: Settings = parse_settings(cfg)?;
        let bad = |key: &str, why: &str| Err(format!("engines.{}.settings.{key}: {why}", cfg.name));
        if !["hnsw", "ivfflat", "none"].contains(&s.index.as_str()) {
            return bad("index", "use \"hnsw\", \"ivfflat\" or \"none\"");
        }
        if !["relaxed_order", "strict_order", "off"].contains(&s.iterative_scan.as_str()) {
            return bad("iterative_scan", "use \"relaxed_order\", \"strict_order\" or \"off\"");
        }
        if s.index == "ivfflat" && s.iterative_scan == "strict_order" {
            return bad("iterative_scan", "IVFFlat supports only \"relaxed_order\" or \"off\"");
        }
        if !(2..=100).contains(&s.m) {
            return bad("m", "between 2 and 100");
        }
        if !(4..=1000).contains(&s.ef_construction) || s.ef_construction < 2 * s.m {
            return bad("ef_construction", "between 4 and 1000, and at least 2 * m");
        }
        if !(1..=1000).contains(&s.ef_search) {
            return bad("ef_search", "between 1 and 1000");
        }
        if !(1..=32768).contains(&s.lists) {
            return bad("lists", "between 1 and 32768");
        }
        if s.probes.is_some_and(|p| p == 0 || p > s.lists) {
            return bad("probes", "between 1 and lists");
        }
        if s.pool_size == 0 || s.hybrid_candidates == 0 {
            return bad("pool_size", "pool_size and hybrid_candidates must be at least 1");
        }
        let ident = |x: &str| {
            !x.is_empty()
                && x.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
                && !x.starts_with(|c: char| c.is_ascii_digit())
        };
        if !ident(&s.text_config) {
            return bad("text_config", "a text search configuration name such as \"english\" or \"simple\"");
        }
        if s.rank_normalization > 63 {
            return bad("rank_normalization", "ts_rank_cd normalization bits, 0 to 63");
        }
        if !(s.connect_timeout_s > 0.0 && s.connect_timeout_s <= 600.0) {
            return bad("connect_timeout_s", "seconds, more than 0 and at most 600");
        }
        if s.maintenance_work_mem.as_deref().is_some_and(|m| !memory_size(m)) {
            return bad("maintenance_work_mem", "a size in PostgreSQL's units, such as \"512MB\" or \"4GB\"");
        }
        Ok(s)
    }

    fn probes(&self) -> u32 {
        self.probes.unwrap_or_else(|| ((self.lists as f64).sqrt().round() as u32).max(1))
    }
}

/// Creates dbbench's schema unless it is there. `CREATE SCHEMA IF NOT EXISTS` is not
/// atomic: two sessions creating it at once can both find it missing, and the one that
/// loses fails with a unique violation (23505) or duplicate_schema (42P06). It lost a race
/// whose outcome it wanted, so that is success.
async fn ensure_schema(pg: &mut PgConnection) -> DriverResult<()> {
    match simple(pg, &format!("CREATE SCHEMA IF NOT EXISTS {SCHEMA}")).await {
        Err(sqlx::Error::Database(db)) if matches!(db.code().as_deref(), Some("23505" | "42P06")) => Ok(()),
        r => r.map_err(pg_err),
    }
}

pub struct PgVector {
    settings: Settings,
    url: String,
    pool: Pool,
    state: Prepared<State>,
}

impl PgVector {
    pub fn new(cfg: &EngineConfig) -> Result<Self, String> {
        let settings = Settings::parse(cfg)?;
        let url = cfg.url.clone().unwrap_or_else(|| DEFAULT_URL.to_string());
        let options = PgConnectOptions::from_str(&url)
            .map_err(|e| format!("engines.{}.url {}: {e}", cfg.name, redact_url(&url)))?
            .application_name("dbbench")
            .disable_statement_logging();
        let probes = settings.probes();
        let iterative = &settings.iterative_scan;
        let ivf_iterative = if iterative == "off" { "off" } else { "relaxed_order" };
        let init_sql = format!(
            "SET hnsw.iterative_scan = {iterative}; SET ivfflat.iterative_scan = {ivf_iterative}; \
             SET hnsw.ef_search = {}; SET ivfflat.probes = {probes}",
            settings.ef_search
        );
        Ok(PgVector {
            pool: Pool {
                options,
                init_sql,
                idle: Mutex::new(Vec::new()),
                max_idle: settings.pool_size,
                connect_timeout: Duration::from_secs_f64(settings.connect_timeout_s),
            },
            settings,
            url,
            state: Prepared::new("pgvector"),
        })
    }

    fn default_knobs(&self) -> Knobs {
        Knobs { ef_search: self.settings.ef_search, probes: self.settings.probes() }
    }

    /// The knobs for a search, from the op's params over the settings.
    fn knobs(&self, params: &SearchParams) -> DriverResult<Knobs> {
        let mut k = self.default_knobs();
        if let Some(x) = EF_SEARCH.integer("pgvector", params)? {
            k.ef_search = x as u32;
        }
        if let Some(x) = PROBES.integer("pgvector", params)? {
            k.probes = x as u32;
        }
        Ok(k)
    }

    fn decode_record(row: &PgRow, schema: &Schema) -> Result<Record, sqlx::Error> {
        let mut attributes = Vec::with_capacity(schema.attributes.len());
        for (i, a) in schema.attributes.iter().enumerate() {
            attributes.push(match a.kind {
                AttrKind::Integer => AttrValue::Integer(row.try_get(3 + i)?),
                AttrKind::Keyword => AttrValue::Keyword(row.try_get(3 + i)?),
            });
        }
        // One copy each from the row into the record (not through an owned Vec / String).
        let v: ::pgvector::Vector = row.try_get(1)?;
        Ok(Record {
            id: row.try_get::<i64, _>(0)? as u64,
            vector: Arc::from(v.as_slice()),
            text: Arc::from(row.try_get::<&str, _>(2)?),
            attributes,
        })
    }

    fn bind_attr<'q>(q: Query<'q, Postgres, PgArguments>, v: &AttrValue) -> Query<'q, Postgres, PgArguments> {
        match v {
            AttrValue::Integer(i) => q.bind(*i),
            AttrValue::Keyword(s) => q.bind(s.clone()),
        }
    }

    fn check_field(schema: &Schema, field: &str) -> DriverResult<()> {
        match schema.attribute_index(field) {
            Some(_) => Ok(()),
            None => Err(DriverError::rejected(format!("pgvector: no attribute {field:?} in the schema"))),
        }
    }

    async fn run(&self, st: &State, pg: &mut PgConnection, op: &Op<'_>) -> Result<Outcome, sqlx::Error> {
        let ids = |rows: Vec<i64>| Outcome::Hits(rows.into_iter().map(|x| x as u64).collect());
        match op {
            Op::Knn { vector, k, filter, .. } => {
                let v = ::pgvector::Vector::from(vector.to_vec());
                let rows: Vec<i64> = match filter {
                    None => sqlx::query_scalar(&st.knn_sql).bind(v).bind(*k as i64).fetch_all(pg).await?,
                    Some(f) => {
                        let w =
                            Dialect::Postgres.filter(f, &st.schema, 3).map_err(|e| sqlx::Error::Protocol(e.message))?;
                        let sql = sql::knn_sql(&st.table, st.op, Some(&w.sql));
                        let q = bind_args(sqlx::query(&sql).bind(v).bind(*k as i64), &w.binds);
                        q.fetch_all(pg).await?.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?
                    }
                };
                Ok(ids(rows))
            }
            Op::Text { query, k, filter, .. } => {
                let q_text = or_query(query);
                let rows: Vec<i64> = match filter {
                    None => sqlx::query_scalar(&st.text_sql).bind(q_text).bind(*k as i64).fetch_all(pg).await?,
                    Some(f) => {
                        let w =
                            Dialect::Postgres.filter(f, &st.schema, 3).map_err(|e| sqlx::Error::Protocol(e.message))?;
                        let sql = sql::text_sql(&st.table, &st.config, self.settings.rank_normalization, Some(&w.sql));
                        let q = bind_args(sqlx::query(&sql).bind(q_text).bind(*k as i64), &w.binds);
                        q.fetch_all(pg).await?.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?
                    }
                };
                Ok(ids(rows))
            }
            Op::Hybrid { vector, query, k, filter, .. } => {
                let v = ::pgvector::Vector::from(vector.to_vec());
                let n = self.settings.hybrid_candidates.max(*k) as i64;
                let q_text = or_query(query);
                let rows: Vec<i64> = match filter {
                    None => {
                        sqlx::query_scalar(&st.hybrid_sql)
                            .bind(v)
                            .bind(q_text)
                            .bind(n)
                            .bind(*k as i64)
                            .fetch_all(pg)
                            .await?
                    }
                    Some(f) => {
                        let w =
                            Dialect::Postgres.filter(f, &st.schema, 5).map_err(|e| sqlx::Error::Protocol(e.message))?;
                        let sql = sql::hybrid_sql(&self.settings, &st.table, st.op, &st.config, Some(&w.sql));
                        let q = bind_args(sqlx::query(&sql).bind(v).bind(q_text).bind(n).bind(*k as i64), &w.binds);
                        q.fetch_all(pg).await?.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?
                    }
                };
                Ok(ids(rows))
            }
            Op::Expand { vector, seeds, hops, max_results, filter, .. } => {
                let v = ::pgvector::Vector::from(vector.to_vec());
                let (sql, binds) = match filter {
                    None => (std::borrow::Cow::Borrowed(st.expand_sql.as_str()), Vec::new()),
                    Some(f) => {
                        let w =
                            Dialect::Postgres.filter(f, &st.schema, 5).map_err(|e| sqlx::Error::Protocol(e.message))?;
                        (sql::expand_sql(&st.table, &st.links_table, st.op, Some(&w.sql)).into(), w.binds)
                    }
                };
                let q = sqlx::query(&sql).bind(v).bind(*seeds as i64).bind(*hops as i32).bind(*max_results as i64);
                let rows = bind_args(q, &binds).fetch_all(pg).await?;
                Ok(ids(rows.iter().map(|r| r.try_get(0)).collect::<Result<Vec<i64>, _>>()?))
            }
            Op::Get { id } => {
                let row = sqlx::query(&st.get_sql).bind(*id as i64).fetch_optional(pg).await?;
                Ok(Outcome::Found(row.map(|r| Self::decode_record(&r, &st.schema)).transpose()?))
            }
            Op::Insert { record } => {
                let mut q = sqlx::query(&st.insert_sql)
                    .bind(record.id as i64)
                    .bind(::pgvector::Vector::from(record.vector.to_vec()))
                    .bind(record.text.to_string());
                for v in &record.attributes {
                    q = Self::bind_attr(q, v);
                }
                Ok(Outcome::Written(q.execute(pg).await?.rows_affected()))
            }
            Op::Update { id, field, value } => {
                let q = Self::bind_attr(sqlx::query(st.update_sql(field)?), value).bind(*id as i64);
                Ok(Outcome::Written(q.execute(pg).await?.rows_affected()))
            }
            Op::Delete { id } => {
                Ok(Outcome::Written(sqlx::query(&st.delete_sql).bind(*id as i64).execute(pg).await?.rows_affected()))
            }
            Op::Scan { start, limit } => {
                let rows: Vec<i64> =
                    sqlx::query_scalar(&st.scan_sql).bind(*start as i64).bind(*limit as i64).fetch_all(pg).await?;
                Ok(ids(rows))
            }
            Op::ReadModifyWrite { id, field, value } => {
                let update = st.update_sql(field)?;
                let mut tx = pg.begin().await?;
                let found = sqlx::query(&st.get_for_update_sql).bind(*id as i64).fetch_optional(&mut *tx).await?;
                let n = match found {
                    Some(row) => {
                        Self::decode_record(&row, &st.schema)?;
                        Self::bind_attr(sqlx::query(update), value)
                            .bind(*id as i64)
                            .execute(&mut *tx)
                            .await?
                            .rows_affected()
                    }
                    None => 0,
                };
                tx.commit().await?;
                Ok(Outcome::Written(n))
            }
        }
    }

    /// The comment of `dbbench.<name>`: `None` when there is no such table,
    /// `Some(None)` when it has no comment.
    async fn table_comment(&self, pg: &mut PgConnection, name: &str) -> DriverResult<Option<Option<String>>> {
        let row: Option<(Option<String>,)> = sqlx::query_as(
            "SELECT obj_description(c.oid, 'pg_class') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2",
        )
        .bind(SCHEMA)
        .bind(name)
        .fetch_optional(&mut *pg)
        .await
        .map_err(pg_err)?;
        Ok(row.map(|r| r.0))
    }

    /// Create `dbbench.<collection>` for `schema`, its comment carrying the marker.
    async fn create_table(&self, pg: &mut PgConnection, schema: &Schema) -> DriverResult<State> {
        let st = State::new(schema, &self.settings);
        let mut cols = String::new();
        for a in &schema.attributes {
            let ty = match a.kind {
                AttrKind::Integer => "bigint",
                AttrKind::Keyword => "text",
            };
            cols.push_str(&format!(", {} {ty} NOT NULL", column(&a.name)));
        }
        let comment =
            format!("{MARKER} created by dbbench for collection {}; dbbench drops it when done", schema.collection);
        let ddl = format!(
            "BEGIN; \
             CREATE TABLE {t} (id bigint PRIMARY KEY, embedding vector({d}) NOT NULL, text text NOT NULL, \
               tsv tsvector GENERATED ALWAYS AS (to_tsvector({cfg}, text)) STORED{cols}); \
             COMMENT ON TABLE {t} IS {comment}; \
             {links} \
             COMMIT",
            t = st.table,
            d = schema.dim,
            cfg = st.config,
            comment = literal(&comment),
            // Each link both ways, so a step is one index lookup on src.
            links = if schema.links {
                format!(
                    "CREATE TABLE {l} (src bigint NOT NULL, dst bigint NOT NULL, PRIMARY KEY (src, dst)); \
                     COMMENT ON TABLE {l} IS {comment};",
                    l = st.links_table,
                    comment = literal(&format!("{comment} (its links)")),
                )
            } else {
                String::new()
            },
        );
        simple(&mut *pg, &ddl).await.map_err(pg_err)?;
        Ok(st)
    }

    /// EXPLAIN (plan only) of one statement with its parameters bound.
    async fn explain(pg: &mut PgConnection, q: Query<'_, Postgres, PgArguments>) -> serde_json::Value {
        match q.fetch_all(pg).await {
            Ok(rows) => {
                let lines: Vec<String> = rows.iter().filter_map(|r| r.try_get::<String, _>(0).ok()).collect();
                serde_json::Value::String(lines.join("\n"))
            }
            Err(e) => serde_json::Value::String(format!("EXPLAIN failed: {e}")),
        }
    }

    async fn sample_plans(
        &self,
        st: &State,
        pg: &mut PgConnection,
    ) -> DriverResult<serde_json::Map<String, serde_json::Value>> {
        let mut plans = serde_json::Map::new();
        let sample =
            sqlx::query(&format!("SELECT id, embedding, text{} FROM {} ORDER BY id LIMIT 1", st.attr_cols, st.table))
                .fetch_optional(&mut *pg)
                .await
                .map_err(pg_err)?;
        let Some(row) = sample else { return Ok(plans) };
        let rec = Self::decode_record(&row, &st.schema).map_err(pg_err)?;
        let v = || ::pgvector::Vector::from(rec.vector.to_vec());
        let words: Vec<&str> = rec.text.split_whitespace().take(4).collect();
        let q_text = or_query(&words.join(" "));
        let k = 10i64;
        let sql = format!("EXPLAIN (FORMAT TEXT) {}", st.knn_sql);
        plans.insert("knn".into(), Self::explain(pg, sqlx::query(&sql).bind(v()).bind(k)).await);
        if let (Some(a), Some(val)) = (st.schema.attributes.first(), rec.attributes.first()) {
            let f = Filter::Eq { field: a.name.clone(), value: val.clone() };
            let w = Dialect::Postgres.filter(&f, &st.schema, 3)?;
            let sql = format!("EXPLAIN (FORMAT TEXT) {}", sql::knn_sql(&st.table, st.op, Some(&w.sql)));
            let q = bind_args(sqlx::query(&sql).bind(v()).bind(k), &w.binds);
            plans.insert(format!("knn where {f}"), Self::explain(pg, q).await);
        }
        let sql = format!("EXPLAIN (FORMAT TEXT) {}", st.text_sql);
        plans.insert("text".into(), Self::explain(pg, sqlx::query(&sql).bind(q_text.clone()).bind(k)).await);
        let sql = format!("EXPLAIN (FORMAT TEXT) {}", st.hybrid_sql);
        let n = self.settings.hybrid_candidates as i64;
        plans
            .insert("hybrid".into(), Self::explain(pg, sqlx::query(&sql).bind(v()).bind(q_text).bind(n).bind(k)).await);
        Ok(plans)
    }

    fn index_description(&self) -> String {
        let s = &self.settings;
        match s.index.as_str() {
            "hnsw" => {
                format!("HNSW (m = {}, ef_construction = {}), ef_search = {}", s.m, s.ef_construction, s.ef_search)
            }
            "ivfflat" => format!("IVFFlat (lists = {}), probes = {}", s.lists, s.probes()),
            _ => "none: exact scan".into(),
        }
    }
}

/// A memory size as PostgreSQL's settings take it: digits, then kB, MB, GB or TB.
fn memory_size(s: &str) -> bool {
    let unit = s.trim_start_matches(|c: char| c.is_ascii_digit());
    unit.len() < s.len() && ["kB", "MB", "GB", "TB"].contains(&unit)
}

/// PostgreSQL's calls on dbbench's namespace: tables in schema `dbbench`, marked by a
/// table comment starting with `dbbench:`, over one connection.
struct Tables<'a> {
    driver: &'a PgVector,
    pg: &'a mut PgConnection,
}

#[async_trait]
impl Namespace for Tables<'_> {
    type Created = State;

    const ENGINE: &'static str = "pgvector";

    fn object(&self, collection: &str) -> String {
        format!("table {SCHEMA}.{collection}")
    }

    fn marker(&self) -> String {
        format!("comment starting with the {MARKER:?} marker")
    }

    const REMEDY: &'static str = "rename or move it, or run the workload under another name";

    async fn find(&mut self, collection: &str) -> DriverResult<Found> {
        Ok(match self.driver.table_comment(self.pg, collection).await? {
            None => Found::Absent,
            Some(Some(c)) if c.starts_with(MARKER) => Found::Marked,
            Some(_) => Found::Unmarked,
        })
    }

    async fn create(&mut self, schema: &Schema) -> DriverResult<State> {
        self.driver.create_table(self.pg, schema).await
    }

    async fn open(&mut self, schema: &Schema) -> DriverResult<State> {
        Ok(State::new(schema, &self.driver.settings))
    }

    async fn drop_marked(&mut self, collection: &str) -> DriverResult<()> {
        // No CASCADE: a view or foreign key someone else built on our table makes the
        // drop fail rather than silently taking their object with it.
        simple(&mut *self.pg, &format!("DROP TABLE {SCHEMA}.{}", ident(collection))).await.map_err(pg_err)?;
        // The links table goes with it, when there is one and it carries our marker.
        let links = format!("{collection}_links");
        if let Some(Some(c)) = self.driver.table_comment(self.pg, &links).await? {
            if c.starts_with(MARKER) {
                simple(&mut *self.pg, &format!("DROP TABLE {SCHEMA}.{}", ident(&links))).await.map_err(pg_err)?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Driver for PgVector {
    fn write_visibility(&self) -> String {
        "each write is its own committed transaction (read committed): a search sent after the commit sees it".into()
    }
    fn kind(&self) -> &'static str {
        "pgvector"
    }

    fn capabilities(&self) -> Capabilities {
        capabilities()
    }

    async fn ping(&self) -> DriverResult<()> {
        let mut c = self.pool.acquire(None).await?;
        sqlx::query("SELECT 1").execute(&mut c.pg).await.map_err(pg_err)?;
        self.pool.release(c);
        Ok(())
    }

    async fn prepare(&self, schema: &Schema) -> DriverResult<()> {
        if schema.dim == 0 || schema.dim > 16000 {
            return Err(DriverError::unsupported(format!(
                "pgvector: vector(d) takes 1 to 16000 dimensions, not {}",
                schema.dim
            )));
        }
        if self.settings.index != "none" && schema.dim > 2000 {
            return Err(DriverError::unsupported(format!(
                "pgvector: HNSW and IVFFlat index at most 2000 dimensions of vector, not {}; set index = \"none\"",
                schema.dim
            )));
        }
        let mut c = self.pool.acquire(None).await?;
        let pg = &mut c.pg;
        let ext: Option<String> = sqlx::query_scalar("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            .fetch_optional(&mut *pg)
            .await
            .map_err(pg_err)?;
        if ext.is_none() {
            return Err(DriverError::rejected(
                "pgvector: the vector extension is not installed in this database; as a superuser run: CREATE EXTENSION vector",
            ));
        }
        ensure_schema(&mut *pg).await?;
        let st = shared::prepare_own(&mut Tables { driver: self, pg }, schema).await?;
        self.pool.release(c);
        self.state.set(st);
        Ok(())
    }

    async fn load(&self, batch: &[Record]) -> DriverResult<()> {
        let st = self.state.get()?;
        let data = copy::encode(batch, &st.schema).map_err(|m| {
            DriverError::rejected(match m {
                copy::Mismatch::Attribute(i) => {
                    let a = &st.schema.attributes[i];
                    format!("pgvector: a record's {} is not a {:?}", a.name, a.kind)
                }
                copy::Mismatch::Dim { got } => {
                    format!("pgvector: a record has {got} dimensions, the table {}", st.schema.dim)
                }
            })
        })?;
        let mut c = self.pool.acquire(None).await?;
        // A COPY that fails part-way leaves its connection mid-protocol: it is dropped,
        // not released to the pool.
        let mut copy = c.pg.copy_in_raw(&st.copy_sql).await.map_err(pg_err)?;
        copy.send(data).await.map_err(pg_err)?;
        copy.finish().await.map_err(pg_err)?;
        self.pool.release(c);
        Ok(())
    }

    async fn load_links(&self, links: &[Link]) -> DriverResult<()> {
        let st = self.state.get()?;
        let (src, dst): (Vec<i64>, Vec<i64>) =
            links.iter().flat_map(|l| [(l.a as i64, l.b as i64), (l.b as i64, l.a as i64)]).unzip();
        let mut c = self.pool.acquire(None).await?;
        sqlx::query(&format!(
            "INSERT INTO {} (src, dst) SELECT * FROM unnest($1::bigint[], $2::bigint[])",
            st.links_table
        ))
        .bind(src)
        .bind(dst)
        .execute(&mut c.pg)
        .await
        .map_err(pg_err)?;
        self.pool.release(c);
        Ok(())
    }

    async fn finish_load(&self) -> DriverResult<IndexStats> {
        let st = self.state.get()?;
        let s = &self.settings;
        let mut c = self.pool.acquire(None).await?;
        let pg = &mut c.pg;
        let opclass = match st.schema.metric {
            Metric::Cosine => "vector_cosine_ops",
            Metric::L2 => "vector_l2_ops",
            Metric::Dot => "vector_ip_ops",
        };
        let mut ddl = Vec::new();
        if let Some(m) = &s.maintenance_work_mem {
            ddl.push(format!("SET maintenance_work_mem = {}", literal(m)));
        }
        match s.index.as_str() {
            "hnsw" => ddl.push(format!(
                "CREATE INDEX ON {} USING hnsw (embedding {opclass}) WITH (m = {}, ef_construction = {})",
                st.table, s.m, s.ef_construction
            )),
            "ivfflat" => ddl.push(format!(
                "CREATE INDEX ON {} USING ivfflat (embedding {opclass}) WITH (lists = {})",
                st.table, s.lists
            )),
            _ => {}
        }
        ddl.push(format!("CREATE INDEX ON {} USING gin (tsv)", st.table));
        for a in &st.schema.attributes {
            ddl.push(format!("CREATE INDEX ON {} ({})", st.table, column(&a.name)));
        }
        // VACUUM as well as ANALYZE (as `pgbench -i` does after its load): hint bits set,
        // visibility map written, so neither the first reads nor an autovacuum woken by
        // the bulk insert do that work inside a measured phase.
        ddl.push(format!("VACUUM (ANALYZE) {}", st.table));
        if st.schema.links {
            ddl.push(format!("VACUUM (ANALYZE) {}", st.links_table));
        }
        if s.maintenance_work_mem.is_some() {
            ddl.push("RESET maintenance_work_mem".into());
        }
        for sql in &ddl {
            simple(&mut *pg, sql).await.map_err(pg_err)?;
        }
        let (records, size): (i64, i64) = sqlx::query_as(&format!(
            "SELECT (SELECT count(*) FROM {t}), pg_total_relation_size('{t}') \
                 + coalesce(pg_total_relation_size(to_regclass('{l}')), 0)",
            t = st.table,
            l = st.links_table
        ))
        .fetch_one(&mut *pg)
        .await
        .map_err(pg_err)?;
        let plans = self.sample_plans(&st, pg).await?;
        self.pool.release(c);
        let mut details = BTreeMap::new();
        details.insert("knn".into(), serde_json::json!(self.index_description()));
        details.insert(
            "text".into(),
            serde_json::json!(format!(
                "GIN on tsvector ({}), ts_rank_cd normalization {}, query = OR of the words",
                s.text_config, s.rank_normalization
            )),
        );
        details.insert("plans".into(), serde_json::Value::Object(plans));
        details.insert("load".into(), serde_json::json!("COPY ... FROM STDIN (FORMAT binary), one per batch"));
        if let Some(m) = &s.maintenance_work_mem {
            details.insert("maintenance_work_mem".into(), serde_json::json!(format!("{m} (the build's session)")));
        }
        Ok(IndexStats { records: Some(records as u64), size_bytes: Some(size as u64), details })
    }

    async fn execute(&self, op: &Op<'_>) -> DriverResult<Outcome> {
        let st = self.state.get()?;
        let knobs = match op {
            Op::Knn { params, .. } | Op::Hybrid { params, .. } | Op::Expand { params, .. } => Some(self.knobs(params)?),
            _ => None,
        };
        match op {
            Op::Update { field, .. } | Op::ReadModifyWrite { field, .. } => Self::check_field(&st.schema, field)?,
            _ => {}
        }
        let mut c = self.pool.acquire(knobs).await?;
        let out = self.run(&st, &mut c.pg, op).await.map_err(pg_err);
        // A connection whose request failed for any reason other than the server saying
        // no may be broken: drop it rather than hand it to the next request.
        match &out {
            Ok(_) => self.pool.release(c),
            Err(e) if e.kind == ErrorKind::Rejected => self.pool.release(c),
            Err(_) => {}
        }
        out
    }

    async fn describe(&self) -> DriverResult<EngineInfo> {
        let mut c = self.pool.acquire(None).await?;
        let server: String = sqlx::query_scalar("SHOW server_version").fetch_one(&mut c.pg).await.map_err(pg_err)?;
        let ext: Option<String> = sqlx::query_scalar("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            .fetch_optional(&mut c.pg)
            .await
            .map_err(pg_err)?;
        self.pool.release(c);
        let ext = ext.unwrap_or_else(|| "not installed".into());
        let s = &self.settings;
        let settings = serde_json::json!({
            "url": redact_url(&self.url),
            "schema": SCHEMA,
            "index": s.index,
            "index_description": self.index_description(),
            "m": s.m,
            "ef_construction": s.ef_construction,
            "lists": s.lists,
            "ef_search": s.ef_search,
            "probes": s.probes(),
            "iterative_scan": s.iterative_scan,
            "pool_size": s.pool_size,
            "text_config": s.text_config,
            "rank_normalization": s.rank_normalization,
            "hybrid": format!("reciprocal rank fusion in one SQL statement, {} candidates per side, k = {}", s.hybrid_candidates, s.rrf_k),
            "connections": "each worker gets back the connection it used last, as a client keeps its session",
            "after_load": "indexes built, then VACUUM (ANALYZE)",
            "search_knobs": "session SET on a pooled connection only when its ef_search/probes differ from the op's",
            "connect_timeout_s": s.connect_timeout_s,
            "pgvector": ext,
        });
        Ok(EngineInfo {
            version: format!("PostgreSQL {server}, pgvector {ext}"),
            settings: settings.as_object().cloned().unwrap_or_default(),
        })
    }

    async fn attach(&self, schema: &Schema) -> DriverResult<()> {
        let mut c = self.pool.acquire(None).await?;
        let st = shared::attach_own(&mut Tables { driver: self, pg: &mut c.pg }, schema).await?;
        self.pool.release(c);
        self.state.set(st);
        Ok(())
    }

    async fn count(&self) -> DriverResult<u64> {
        let st = self.state.get()?;
        let mut c = self.pool.acquire(None).await?;
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {}", st.table))
            .fetch_one(&mut c.pg)
            .await
            .map_err(pg_err)?;
        self.pool.release(c);
        Ok(n as u64)
    }

    async fn index_ready(&self) -> DriverResult<bool> {
        // finish_load creates the primary key's, the vector's (unless index = "none"),
        // the text's and one per attribute, each committed on its own: all valid = built.
        let st = self.state.get()?;
        let vector = usize::from(matches!(self.settings.index.as_str(), "hnsw" | "ivfflat"));
        let want = 1 + vector + 1 + st.schema.attributes.len();
        let mut c = self.pool.acquire(None).await?;
        let valid: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM pg_index WHERE indrelid = to_regclass('{}') AND indisvalid",
            st.table
        ))
        .fetch_one(&mut c.pg)
        .await
        .map_err(pg_err)?;
        self.pool.release(c);
        Ok(valid as usize >= want)
    }

    async fn durability(&self) -> String {
        let read = async {
            let mut c = self.pool.acquire(None).await?;
            let row: (String, String, String) = sqlx::query_as(
                "SELECT current_setting('fsync'), current_setting('synchronous_commit'), current_setting('wal_writer_delay')",
            )
            .fetch_one(&mut c.pg)
            .await
            .map_err(pg_err)?;
            self.pool.release(c);
            DriverResult::Ok(row)
        };
        match read.await {
            Ok((fsync, sync, delay)) => {
                format!("fsync = {fsync}, synchronous_commit = {sync}: {}", backup::promise(&fsync, &sync, &delay))
            }
            Err(e) => format!("not read: {}", e.message),
        }
    }

    async fn backup(&self, target: &BackupTarget<'_>) -> DriverResult<Backup> {
        let st = self.state.get()?;
        let file = target.dir.join(format!("{}.pgdump", st.schema.collection));
        let tools = backup::Tools::find(self).await?;
        let mut tables = vec![format!("--table={SCHEMA}.{}", st.schema.collection)];
        if st.schema.links {
            tables.push(format!("--table={SCHEMA}.{}_links", st.schema.collection));
        }
        let mut args = vec!["--format=custom".to_string(), format!("--file={}", file.display())];
        args.extend(tables);
        tools.run("pg_dump", &args, &self.url).await?;
        Ok(Backup::of_files(format!("pg_dump --format=custom of dbbench's table(s), {}", tools.version), file))
    }

    async fn restore(&self, backup: &Backup, _target: &BackupTarget<'_>) -> DriverResult<()> {
        let st = self.state.get()?;
        let tools = backup::Tools::find(self).await?;
        {
            let mut c = self.pool.acquire(None).await?;
            shared::release_own(&mut Tables { driver: self, pg: &mut c.pg }, &st.schema.collection).await?;
            self.pool.release(c);
        }
        // Every pooled session planned against the dropped table.
        self.pool.clear();
        let args = [
            "--no-owner".to_string(),
            "--no-privileges".into(),
            "--single-transaction".into(),
            "--exit-on-error".into(),
            backup.location.display().to_string(),
        ];
        tools.run("pg_restore", &args, &self.url).await
    }

    async fn cleanup(&self) -> DriverResult<()> {
        let Some(st) = self.state.take() else { return Ok(()) };
        let mut c = self.pool.acquire(None).await?;
        let r = shared::release_own(&mut Tables { driver: self, pg: &mut c.pg }, &st.schema.collection).await;
        drop(c);
        self.pool.clear();
        r
    }

    fn effort_knob(&self, _op: OpKind) -> Option<Knob> {
        match self.settings.index.as_str() {
            "hnsw" => Some(Knob::request(EF_SEARCH.name, 1000)),
            "ivfflat" => Some(Knob::request(PROBES.name, u64::from(self.settings.lists))),
            _ => None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn cfg(settings: &str) -> EngineConfig {
        EngineConfig {
            name: "pg".into(),
            url: Some("postgres://u:secret@127.0.0.1:1/db".into()),
            settings: toml::from_str(settings).unwrap(),
            base_dir: ".".into(),
        }
    }

    #[test]
    fn settings_are_checked() {
        let s = Settings::parse(&cfg("")).unwrap();
        assert_eq!((s.index.as_str(), s.m, s.ef_construction, s.ef_search, s.probes()), ("hnsw", 16, 64, 40, 10));
        assert!(s.pool_size >= 1 && s.pool_size <= 32);
        let err = |t: &str| Settings::parse(&cfg(t)).unwrap_err();
        assert!(err("index = \"diskann\"").contains("settings.index"));
        assert!(err("iterative_scan = \"strict_order\"\nindex = \"ivfflat\"").contains("IVFFlat"));
        assert!(err("text_config = \"english'; drop\"").contains("text_config"));
        assert!(err("ef_serch = 3").contains("unknown field"));
        assert!(err("m = 40").contains("ef_construction"));
        assert_eq!(Settings::parse(&cfg("lists = 400")).unwrap().probes(), 20);
        let mem = Settings::parse(&cfg("maintenance_work_mem = \"4GB\"")).unwrap().maintenance_work_mem;
        assert_eq!(mem.as_deref(), Some("4GB"));
        for bad in ["4 GB", "GB", "4gb", "4GB'; drop", ""] {
            assert!(err(&format!("maintenance_work_mem = {bad:?}")).contains("maintenance_work_mem"), "{bad}");
        }
    }

    #[test]
    fn per_op_params_override_and_are_checked() {
        let d = PgVector::new(&cfg("ef_search = 80")).unwrap();
        let mut p = SearchParams::new();
        assert_eq!(d.knobs(&p).unwrap(), Knobs { ef_search: 80, probes: 10 });
        p.insert("ef_search".into(), serde_json::json!(200));
        p.insert("probes".into(), serde_json::json!(3));
        assert_eq!(d.knobs(&p).unwrap(), Knobs { ef_search: 200, probes: 3 });
        p.insert("ef_search".into(), serde_json::json!("lots"));
        assert_eq!(d.knobs(&p).unwrap_err().kind, ErrorKind::Rejected);
    }
}
