//! The embedded engine: SQLite (bundled) with sqlite-vec for vectors and FTS5 for text.
//!
//! One database file per collection, in dbbench's own folder. kNN is an exact scan with
//! sqlite-vec's distance functions under any filter; text is FTS5 ranked by bm25; hybrid
//! is reciprocal rank fusion in one SQL statement; writes are plain transactions.
//!
//! Calls are synchronous and run on the calling worker's thread: an embedded engine's
//! work is CPU the harness shares with it, and a short blocking call costs less than a
//! hand-off to another thread. A file that dbbench did not create is never touched:
//! `prepare` replaces a database only when its `dbbench_meta` table says dbbench made it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Deserialize;

use super::shared::{self, Found, Namespace, Prepared, MARKER_KEY, MARKER_VALUE};
use super::sql_filter::{column, Bind, Dialect, SqlFilter};
use super::*;

pub const KIND: DriverKind = DriverKind {
    kind: "sqlite",
    summary: "embedded SQLite: sqlite-vec exact kNN with any filter, FTS5 bm25, RRF hybrid, transactions",
    default_url: None,
    start_hint: "nothing to start: sqlite is embedded in dbbench",
    capabilities: Capabilities::all_native,
    params: &[],
    validate: |cfg| parse_settings::<Settings>(cfg).map(|_| ()),
    open: |cfg| Ok(Box::new(Sqlite::new(cfg)?)),
    hidden: false,
};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Folder for the database files (relative to the current directory).
    pub dir: PathBuf,
    /// Connections kept open (more are opened on demand when workers outnumber them).
    pub connections: usize,
    /// PRAGMA synchronous: "off", "normal" or "full".
    pub synchronous: String,
    /// Page cache per connection, MiB.
    pub cache_mib: u32,
    /// Candidates taken from each side before reciprocal rank fusion.
    pub hybrid_candidates: usize,
    /// The k of reciprocal rank fusion: score = sum 1 / (rrf_k + rank).
    pub rrf_k: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            dir: PathBuf::from(".dbbench/sqlite"),
            connections: 4,
            synchronous: "normal".into(),
            cache_mib: 64,
            hybrid_candidates: 100,
            rrf_k: 60,
        }
    }
}

struct State {
    path: PathBuf,
    schema: Schema,
}

pub struct Sqlite {
    settings: Settings,
    state: Prepared<State>,
    pool: Mutex<Vec<Connection>>,
}

fn register_sqlite_vec() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // SAFETY: sqlite3_vec_init is sqlite-vec's extension entry point, compiled into this
        // binary against the bundled SQLite; auto_extension calls it for every new
        // connection with the signature SQLite expects of an entry point.
        unsafe {
            type EntryPoint = unsafe extern "C" fn(
                *mut rusqlite::ffi::sqlite3,
                *mut *mut std::os::raw::c_char,
                *const rusqlite::ffi::sqlite3_api_routines,
            ) -> std::os::raw::c_int;
            rusqlite::ffi::sqlite3_auto_extension(Some(std::mem::transmute::<*const (), EntryPoint>(
                sqlite_vec::sqlite3_vec_init as *const (),
            )));
        }
    });
}

fn err(e: rusqlite::Error) -> DriverError {
    DriverError::rejected(format!("sqlite: {e}"))
}

/// A filter's bound value as a SQLite value.
fn sqlite_value(b: Bind) -> DriverResult<rusqlite::types::Value> {
    match b {
        Bind::Int(i) => Ok(i.into()),
        Bind::Text(t) => Ok(t.into()),
        Bind::Ints(_) | Bind::Texts(_) => {
            Err(DriverError::other("sqlite: an array bind, which the SQLite dialect never makes (a dbbench bug)"))
        }
    }
}

/// Free text as an FTS5 query: every word, quoted, OR-ed (bm25 ranks the matches). Quoting
/// keeps punctuation and FTS5 operators in the user's text from being parsed as syntax.
pub fn fts_query(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{}\"", w.to_lowercase()))
        .collect();
    (!words.is_empty()).then(|| words.join(" OR "))
}

fn vector_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn blob_vector(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

impl Sqlite {
    pub fn new(cfg: &EngineConfig) -> Result<Self, String> {
        let settings: Settings = parse_settings(cfg)?;
        if !["off", "normal", "full"].contains(&settings.synchronous.as_str()) {
            return Err(format!("engines.{}.settings.synchronous: use \"off\", \"normal\" or \"full\"", cfg.name));
        }
        if settings.connections == 0 || settings.hybrid_candidates == 0 {
            return Err(format!("engines.{}.settings: connections and hybrid_candidates must be at least 1", cfg.name));
        }
        register_sqlite_vec();
        Ok(Sqlite { settings, state: Prepared::new("sqlite"), pool: Mutex::new(Vec::new()) })
    }

    /// Create the database of `schema` at `path`, with the `dbbench_meta` marker row.
    fn create_database(&self, path: &Path, schema: &Schema) -> DriverResult<Connection> {
        let conn = self.open(path)?;
        let mut cols = String::new();
        let mut indexes = String::new();
        for a in &schema.attributes {
            let ty = match a.kind {
                AttrKind::Integer => "INTEGER",
                AttrKind::Keyword => "TEXT",
            };
            cols.push_str(&format!(", {} {ty} NOT NULL", column(&a.name)));
            indexes.push_str(&format!("CREATE INDEX \"docs_{0}\" ON docs ({1});\n", a.name, column(&a.name)));
        }
        conn.execute_batch(&format!(
            "CREATE TABLE dbbench_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             INSERT INTO dbbench_meta VALUES ('{MARKER_KEY}', '{MARKER_VALUE}'), ('collection', '{collection}');
             CREATE TABLE docs (id INTEGER PRIMARY KEY, embedding BLOB NOT NULL, text TEXT NOT NULL{cols});
             {indexes}
             CREATE VIRTUAL TABLE docs_fts USING fts5(text, content = 'docs', content_rowid = 'id', tokenize = 'porter unicode61');
             CREATE TRIGGER docs_ai AFTER INSERT ON docs BEGIN
               INSERT INTO docs_fts (rowid, text) VALUES (new.id, new.text);
             END;
             CREATE TRIGGER docs_ad AFTER DELETE ON docs BEGIN
               INSERT INTO docs_fts (docs_fts, rowid, text) VALUES ('delete', old.id, old.text);
             END;
             CREATE TRIGGER docs_au AFTER UPDATE OF text ON docs BEGIN
               INSERT INTO docs_fts (docs_fts, rowid, text) VALUES ('delete', old.id, old.text);
               INSERT INTO docs_fts (rowid, text) VALUES (new.id, new.text);
             END;
             {links}",
            collection = schema.collection.replace('\'', "''"),
            // Each link both ways, so a step of a walk is one primary-key range.
            links = if schema.links {
                "CREATE TABLE links (src INTEGER NOT NULL, dst INTEGER NOT NULL, PRIMARY KEY (src, dst)) WITHOUT ROWID;"
            } else {
                ""
            },
        ))
        .map_err(err)?;
        Ok(conn)
    }

    fn open(&self, path: &Path) -> DriverResult<Connection> {
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(err)?;
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; PRAGMA cache_size = -{};",
            self.settings.synchronous,
            self.settings.cache_mib as u64 * 1024
        ))
        .map_err(err)?;
        Ok(conn)
    }

    /// Run `f` on a pooled connection.
    fn with_conn<T>(&self, f: impl FnOnce(&mut Connection, &State) -> DriverResult<T>) -> DriverResult<T> {
        let state = self.state.get()?;
        let conn = self.pool.lock().expect("pool lock").pop();
        let mut conn = match conn {
            Some(c) => c,
            None => self.open(&state.path)?,
        };
        let out = f(&mut conn, &state);
        let mut pool = self.pool.lock().expect("pool lock");
        if pool.len() < self.settings.connections {
            pool.push(conn);
        }
        out
    }

    fn distance_fn(metric: Metric) -> &'static str {
        match metric {
            Metric::L2 => "vec_distance_l2",
            // Dot is refused in prepare; cosine is the default.
            Metric::Cosine | Metric::Dot => "vec_distance_cosine",
        }
    }

    /// kNN: `?1` vector, `?2` k, filter from `?3`.
    fn knn_sql(&self, schema: &Schema, filter: Option<&str>) -> String {
        let w = filter.map(|f| format!("WHERE {f}")).unwrap_or_default();
        let dist = Self::distance_fn(schema.metric);
        format!("SELECT d.id FROM docs d {w} ORDER BY {dist}(d.embedding, ?1), d.id LIMIT ?2")
    }

    /// Text: `?1` FTS5 query, `?2` k, filter from `?3`.
    fn text_sql(filter: Option<&str>) -> String {
        let w = filter.map(|f| format!("AND {f}")).unwrap_or_default();
        format!("SELECT f.rowid FROM docs_fts f JOIN docs d ON d.id = f.rowid WHERE docs_fts MATCH ?1 {w} ORDER BY f.rank, f.rowid LIMIT ?2")
    }

    /// Hybrid: `?1` vector, `?2` FTS5 query, `?3` candidates per side, `?4` k, filter
    /// from `?5` (the same placeholders serve both sides).
    fn hybrid_sql(&self, schema: &Schema, filter: Option<&str>) -> String {
        let dist = Self::distance_fn(schema.metric);
        let wk = filter.map(|f| format!("WHERE {f}")).unwrap_or_default();
        let wt = filter.map(|f| format!("AND {f}")).unwrap_or_default();
        // Rank within each top-N only: the window functions run over N rows, not the table.
        format!(
            "WITH knn AS (SELECT id, ROW_NUMBER() OVER (ORDER BY dist, id) AS r FROM \
               (SELECT d.id AS id, {dist}(d.embedding, ?1) AS dist FROM docs d {wk} ORDER BY dist, d.id LIMIT ?3)), \
             fts AS (SELECT id, ROW_NUMBER() OVER (ORDER BY score, id) AS r FROM \
               (SELECT f.rowid AS id, f.rank AS score FROM docs_fts f JOIN docs d ON d.id = f.rowid \
                WHERE docs_fts MATCH ?2 {wt} ORDER BY f.rank, f.rowid LIMIT ?3)) \
             SELECT id FROM (SELECT id, r FROM knn UNION ALL SELECT id, r FROM fts) \
             GROUP BY id ORDER BY SUM(1.0 / ({} + r)) DESC, id LIMIT ?4",
            self.settings.rrf_k
        )
    }

    /// Expand (`sql_filter::expand_sql`): the seeds ranked from 0 by the exact scan.
    fn expand_sql(&self, schema: &Schema, filter: Option<&str>) -> String {
        let dist = Self::distance_fn(schema.metric);
        let w = filter.map(|f| format!("WHERE {f}")).unwrap_or_default();
        let seeds = format!(
            "SELECT id, ROW_NUMBER() OVER (ORDER BY dist, id) - 1 AS r FROM \
               (SELECT d.id AS id, {dist}(d.embedding, ?1) AS dist FROM docs d {w} ORDER BY dist, d.id LIMIT ?2)"
        );
        super::sql_filter::expand_sql(Dialect::Sqlite, &seeds, "links")
    }

    /// A search's statement and its values: `fixed` for the placeholders before the
    /// filter's, then the filter's.
    fn search(
        conn: &Connection,
        schema: &Schema,
        filter: Option<&Filter>,
        fixed: Vec<rusqlite::types::Value>,
        sql: impl FnOnce(Option<&str>) -> String,
    ) -> DriverResult<Vec<u64>> {
        let f = filter.map(|f| Dialect::Sqlite.filter(f, schema, fixed.len() + 1)).transpose()?;
        let (text, binds) = match f {
            Some(SqlFilter { sql, binds }) => (Some(sql), binds),
            None => (None, Vec::new()),
        };
        let values: Vec<rusqlite::types::Value> =
            fixed.into_iter().map(Ok).chain(binds.into_iter().map(sqlite_value)).collect::<DriverResult<_>>()?;
        let mut stmt = conn.prepare_cached(&sql(text.as_deref())).map_err(err)?;
        Self::ids(&mut stmt, rusqlite::params_from_iter(values))
    }

    fn ids(stmt: &mut rusqlite::CachedStatement<'_>, params: impl rusqlite::Params) -> DriverResult<Vec<u64>> {
        let rows = stmt.query_map(params, |r| r.get::<_, i64>(0)).map_err(err)?;
        rows.map(|r| r.map(|x| x as u64).map_err(err)).collect()
    }

    fn insert(conn: &Connection, schema: &Schema, r: &Record) -> DriverResult<()> {
        let cols: String = schema.attributes.iter().map(|a| format!(", {}", column(&a.name))).collect();
        let marks: String = (0..schema.attributes.len()).map(|i| format!(", ?{}", i + 4)).collect();
        let sql = format!("INSERT INTO docs (id, embedding, text{cols}) VALUES (?1, ?2, ?3{marks})");
        let mut stmt = conn.prepare_cached(&sql).map_err(err)?;
        let mut values: Vec<rusqlite::types::Value> =
            vec![(r.id as i64).into(), vector_blob(&r.vector).into(), r.text.to_string().into()];
        for v in &r.attributes {
            values.push(match v {
                AttrValue::Integer(i) => (*i).into(),
                AttrValue::Keyword(s) => s.clone().into(),
            });
        }
        stmt.execute(rusqlite::params_from_iter(values)).map_err(err)?;
        Ok(())
    }

    fn get(conn: &Connection, schema: &Schema, id: u64) -> DriverResult<Option<Record>> {
        let cols: String = schema.attributes.iter().map(|a| format!(", {}", column(&a.name))).collect();
        let mut stmt =
            conn.prepare_cached(&format!("SELECT id, embedding, text{cols} FROM docs WHERE id = ?1")).map_err(err)?;
        stmt.query_row(params![id as i64], |row| {
            let mut attributes = Vec::new();
            for (i, a) in schema.attributes.iter().enumerate() {
                attributes.push(match a.kind {
                    AttrKind::Integer => AttrValue::Integer(row.get(3 + i)?),
                    AttrKind::Keyword => AttrValue::Keyword(row.get(3 + i)?),
                });
            }
            Ok(Record {
                id: row.get::<_, i64>(0)? as u64,
                vector: Arc::from(blob_vector(&row.get::<_, Vec<u8>>(1)?)),
                text: Arc::from(row.get::<_, String>(2)?),
                attributes,
            })
        })
        .optional()
        .map_err(err)
    }
}

/// The database file of a collection in the settings' folder.
fn database_path(dir: &Path, collection: &str) -> PathBuf {
    dir.join(format!("{collection}.db"))
}

/// SQLite's calls on dbbench's namespace: one database file per collection, marked by a
/// `dbbench_meta` row.
struct DatabaseFiles<'a>(&'a Sqlite);

#[async_trait]
impl Namespace for DatabaseFiles<'_> {
    /// The connection that created the database, for the pool.
    type Created = Connection;

    const ENGINE: &'static str = "sqlite";

    fn object(&self, collection: &str) -> String {
        format!("database file {}", database_path(&self.0.settings.dir, collection).display())
    }

    fn marker(&self) -> String {
        format!("dbbench_meta row {MARKER_KEY} = '{MARKER_VALUE}'")
    }

    const REMEDY: &'static str = "move it away or set settings.dir to another folder";

    async fn find(&mut self, collection: &str) -> DriverResult<Found> {
        let path = database_path(&self.0.settings.dir, collection);
        if !path.exists() {
            return Ok(Found::Absent);
        }
        let marked = Connection::open(&path)
            .and_then(|c| {
                c.query_row(&format!("SELECT value FROM dbbench_meta WHERE key = '{MARKER_KEY}'"), [], |r| {
                    r.get::<_, String>(0)
                })
                .optional()
            })
            .ok()
            .flatten()
            .is_some_and(|v| v == MARKER_VALUE);
        Ok(if marked { Found::Marked } else { Found::Unmarked })
    }

    async fn create(&mut self, schema: &Schema) -> DriverResult<Connection> {
        self.0.create_database(&database_path(&self.0.settings.dir, &schema.collection), schema)
    }

    async fn open(&mut self, schema: &Schema) -> DriverResult<Connection> {
        self.0.open(&database_path(&self.0.settings.dir, &schema.collection))
    }

    async fn drop_marked(&mut self, collection: &str) -> DriverResult<()> {
        let path = database_path(&self.0.settings.dir, collection);
        for suffix in ["", "-wal", "-shm"] {
            let p = PathBuf::from(format!("{}{suffix}", path.display()));
            if p.exists() {
                std::fs::remove_file(&p)
                    .map_err(|e| DriverError::other(format!("cannot remove {}: {e}", p.display())))?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Driver for Sqlite {
    fn write_visibility(&self) -> String {
        format!(
            "each write commits before it is acknowledged, and a later read sees it (synchronous = {})",
            self.settings.synchronous
        )
    }
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::all_native()
    }

    async fn ping(&self) -> DriverResult<()> {
        let conn = Connection::open_in_memory().map_err(err)?;
        conn.query_row("SELECT vec_version()", [], |r| r.get::<_, String>(0)).map_err(err)?;
        Ok(())
    }

    async fn prepare(&self, schema: &Schema) -> DriverResult<()> {
        if schema.metric == Metric::Dot {
            return Err(DriverError::unsupported(
                "sqlite-vec has no inner-product distance; use metric \"cosine\" (same ranking for normalised vectors) or \"l2\"",
            ));
        }
        std::fs::create_dir_all(&self.settings.dir)
            .map_err(|e| DriverError::other(format!("cannot create {}: {e}", self.settings.dir.display())))?;
        self.pool.lock().expect("pool lock").clear();
        let path = database_path(&self.settings.dir, &schema.collection);
        let conn = shared::prepare_own(&mut DatabaseFiles(self), schema).await?;
        self.state.set(State { path, schema: schema.clone() });
        self.pool.lock().expect("pool lock").push(conn);
        Ok(())
    }

    async fn load(&self, batch: &[Record]) -> DriverResult<()> {
        self.with_conn(|conn, st| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(err)?;
            for r in batch {
                Self::insert(&tx, &st.schema, r)?;
            }
            tx.commit().map_err(err)
        })
    }

    async fn load_links(&self, links: &[Link]) -> DriverResult<()> {
        self.with_conn(|conn, _| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(err)?;
            {
                let mut stmt = tx.prepare_cached("INSERT INTO links (src, dst) VALUES (?1, ?2)").map_err(err)?;
                for l in links {
                    stmt.execute(params![l.a as i64, l.b as i64]).map_err(err)?;
                    stmt.execute(params![l.b as i64, l.a as i64]).map_err(err)?;
                }
            }
            tx.commit().map_err(err)
        })
    }

    async fn finish_load(&self) -> DriverResult<IndexStats> {
        self.with_conn(|conn, st| {
            conn.execute_batch(
                "INSERT INTO docs_fts (docs_fts) VALUES ('optimize'); ANALYZE; PRAGMA wal_checkpoint(TRUNCATE);",
            )
            .map_err(err)?;
            let records: i64 = conn.query_row("SELECT count(*) FROM docs", [], |r| r.get(0)).map_err(err)?;
            let size = std::fs::metadata(&st.path).map(|m| m.len()).ok();
            let mut details = std::collections::BTreeMap::new();
            details.insert("knn".into(), serde_json::json!("exact scan with sqlite-vec distance functions"));
            details.insert("text".into(), serde_json::json!("FTS5, porter unicode61 tokenizer, bm25 ranking"));
            Ok(IndexStats { records: Some(records as u64), size_bytes: size, details })
        })
    }

    async fn execute(&self, op: &Op<'_>) -> DriverResult<Outcome> {
        self.with_conn(|conn, st| {
            let schema = &st.schema;
            match op {
                Op::Knn { vector, k, filter, .. } => {
                    let fixed = vec![vector_blob(vector).into(), (*k as i64).into()];
                    Ok(Outcome::Hits(Self::search(conn, schema, *filter, fixed, |w| self.knn_sql(schema, w))?))
                }
                Op::Text { query, k, filter, .. } => {
                    let Some(q) = fts_query(query) else { return Ok(Outcome::Hits(Vec::new())) };
                    let fixed = vec![q.into(), (*k as i64).into()];
                    Ok(Outcome::Hits(Self::search(conn, schema, *filter, fixed, Self::text_sql)?))
                }
                Op::Hybrid { vector, query, k, filter, .. } => {
                    let q = fts_query(query).unwrap_or_else(|| "\"\"".into());
                    let n = self.settings.hybrid_candidates.max(*k) as i64;
                    let fixed = vec![vector_blob(vector).into(), q.into(), n.into(), (*k as i64).into()];
                    Ok(Outcome::Hits(Self::search(conn, schema, *filter, fixed, |w| self.hybrid_sql(schema, w))?))
                }
                Op::Expand { vector, seeds, hops, max_results, filter, .. } => {
                    let fixed = vec![
                        vector_blob(vector).into(),
                        (*seeds as i64).into(),
                        (*hops as i64).into(),
                        (*max_results as i64).into(),
                    ];
                    Ok(Outcome::Hits(Self::search(conn, schema, *filter, fixed, |w| self.expand_sql(schema, w))?))
                }
                Op::Get { id } => Ok(Outcome::Found(Self::get(conn, schema, *id)?)),
                Op::Insert { record } => {
                    Self::insert(conn, schema, record)?;
                    Ok(Outcome::Written(1))
                }
                Op::Update { id, field, value } => {
                    let mut stmt = conn
                        .prepare_cached(&format!("UPDATE docs SET {} = ?1 WHERE id = ?2", column(field)))
                        .map_err(err)?;
                    let n = match value {
                        AttrValue::Integer(i) => stmt.execute(params![i, *id as i64]),
                        AttrValue::Keyword(s) => stmt.execute(params![s, *id as i64]),
                    }
                    .map_err(err)?;
                    Ok(Outcome::Written(n as u64))
                }
                Op::Delete { id } => {
                    let mut stmt = conn.prepare_cached("DELETE FROM docs WHERE id = ?1").map_err(err)?;
                    Ok(Outcome::Written(stmt.execute(params![*id as i64]).map_err(err)? as u64))
                }
                Op::Scan { start, limit } => {
                    let mut stmt =
                        conn.prepare_cached("SELECT id FROM docs WHERE id >= ?1 ORDER BY id LIMIT ?2").map_err(err)?;
                    Ok(Outcome::Hits(Self::ids(&mut stmt, params![*start as i64, *limit as i64])?))
                }
                Op::ReadModifyWrite { id, field, value } => {
                    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(err)?;
                    let found = Self::get(&tx, schema, *id)?;
                    let n = if found.is_some() {
                        let sql = format!("UPDATE docs SET {} = ?1 WHERE id = ?2", column(field));
                        match value {
                            AttrValue::Integer(i) => tx.execute(&sql, params![i, *id as i64]),
                            AttrValue::Keyword(s) => tx.execute(&sql, params![s, *id as i64]),
                        }
                        .map_err(err)?
                    } else {
                        0
                    };
                    tx.commit().map_err(err)?;
                    Ok(Outcome::Written(n as u64))
                }
            }
        })
    }

    async fn describe(&self) -> DriverResult<EngineInfo> {
        let conn = Connection::open_in_memory().map_err(err)?;
        let (sqlite, vec): (String, String) = conn
            .query_row("SELECT sqlite_version(), vec_version()", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(err)?;
        let s = &self.settings;
        let settings = serde_json::json!({
            "dir": s.dir.display().to_string(),
            "connections": s.connections,
            "synchronous": s.synchronous,
            "cache_mib": s.cache_mib,
            "hybrid": format!("reciprocal rank fusion in SQL, {} candidates per side, k = {}", s.hybrid_candidates, s.rrf_k),
            "sqlite_vec": vec,
        });
        Ok(EngineInfo {
            version: format!("SQLite {sqlite}, sqlite-vec {vec}"),
            settings: settings.as_object().cloned().unwrap_or_default(),
        })
    }

    async fn cleanup(&self) -> DriverResult<()> {
        self.pool.lock().expect("pool lock").clear();
        let st = self.state.take();
        shared::release_prepared(&mut DatabaseFiles(self), st.as_deref().map(|s| s.schema.collection.as_str())).await
    }

    async fn attach(&self, schema: &Schema) -> DriverResult<()> {
        self.pool.lock().expect("pool lock").clear();
        let conn = shared::attach_own(&mut DatabaseFiles(self), schema).await?;
        self.state.set(State { path: database_path(&self.settings.dir, &schema.collection), schema: schema.clone() });
        self.pool.lock().expect("pool lock").push(conn);
        Ok(())
    }

    async fn count(&self) -> DriverResult<u64> {
        self.with_conn(|conn, _| conn.query_row("SELECT count(*) FROM docs", [], |r| r.get::<_, i64>(0)).map_err(err))
            .map(|n| n as u64)
    }

    async fn close(&self) -> DriverResult<()> {
        self.pool.lock().expect("pool lock").clear();
        self.state.take();
        Ok(())
    }

    async fn durability(&self) -> String {
        let what = match self.settings.synchronous.as_str() {
            "full" => "the WAL is fsynced at every commit: an acknowledged write survives a process kill and a power loss",
            "normal" => "a commit is written to the WAL file before it is acknowledged and fsynced only at checkpoints: it survives a process kill, not a power loss",
            _ => "nothing is ever fsynced: a commit is in the WAL file (it survives a process kill), a power loss can take any of it",
        };
        format!("journal_mode = wal, synchronous = {}: {what}", self.settings.synchronous)
    }

    async fn backup(&self, target: &BackupTarget<'_>) -> DriverResult<Backup> {
        let file = target.dir.join("backup.db");
        self.with_conn(|conn, _| {
            conn.backup(rusqlite::DatabaseName::Main, &file, None).map_err(err)?;
            Ok(())
        })?;
        Ok(Backup::of_files("SQLite's online backup API (sqlite3_backup), into one database file".into(), file))
    }

    async fn restore(&self, backup: &Backup, _target: &BackupTarget<'_>) -> DriverResult<()> {
        let state = self.state.get()?;
        // Every pooled connection goes: the restore rewrites the file under them.
        self.pool.lock().expect("pool lock").clear();
        let mut conn = self.open(&state.path)?;
        conn.restore(rusqlite::DatabaseName::Main, &backup.location, None::<fn(rusqlite::backup::Progress)>)
            .map_err(err)?;
        // A damaged source copies without complaint page by page; say so here, before a
        // search trips over it.
        let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0)).map_err(err)?;
        if check != "ok" {
            return Err(DriverError::other(format!(
                "sqlite: the restored database fails its integrity check: {check}"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_cannot_inject_fts_syntax() {
        assert_eq!(fts_query("NOT a \"b\" OR c*").unwrap(), "\"not\" OR \"a\" OR \"b\" OR \"or\" OR \"c\"");
        assert_eq!(fts_query("  ...  "), None);
    }
}
