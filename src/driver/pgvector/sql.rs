//! The SQL text of the pgvector driver: literals, the text query, and every statement a
//! collection's table is used with (filters come from `driver::sql_filter`, shared with
//! sqlite).
//!
//! Nothing from a workload or a dataset ever reaches SQL text except through `ident` and
//! `literal` (names) or as a bound parameter (values).

use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::Postgres;

use super::{Settings, SCHEMA};
use crate::driver::sql_filter::Bind;
pub(super) use crate::driver::sql_filter::{column, ident};
use crate::driver::{Metric, Schema};

/// A single-quoted SQL string literal.
pub(super) fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Bind a filter's values, in placeholder order.
pub(super) fn bind_args<'q>(
    mut q: Query<'q, Postgres, PgArguments>,
    binds: &[Bind],
) -> Query<'q, Postgres, PgArguments> {
    for b in binds {
        q = match b {
            Bind::Int(i) => q.bind(*i),
            Bind::Text(s) => q.bind(s.clone()),
            Bind::Ints(v) => q.bind(v.clone()),
            Bind::Texts(v) => q.bind(v.clone()),
        };
    }
    q
}

/// Free text as a tsquery source: every word, OR-ed, for `to_tsquery`. Only letters and
/// digits reach it, so tsquery operators in the user's text cannot become syntax.
/// `plainto_tsquery` and `websearch_to_tsquery` would AND the words, and a BEIR query
/// of ten words would then match almost nothing.
pub fn or_query(text: &str) -> String {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" | ")
}

pub(super) struct State {
    pub(super) schema: Schema,
    /// `dbbench."<collection>"`.
    pub(super) table: String,
    /// Distance operator for the metric.
    pub(super) op: &'static str,
    /// `'english'::regconfig`.
    pub(super) config: String,
    /// Attribute columns as a select list suffix: `, "a_x", "a_y"`.
    pub(super) attr_cols: String,
    pub(super) knn_sql: String,
    pub(super) text_sql: String,
    pub(super) hybrid_sql: String,
    pub(super) get_sql: String,
    /// `get_sql` locking the row, for read-modify-write.
    pub(super) get_for_update_sql: String,
    pub(super) insert_sql: String,
    /// `COPY ... FROM STDIN (FORMAT binary)`, the bulk load.
    pub(super) copy_sql: String,
    /// `UPDATE ... SET <attribute> = $1 WHERE id = $2`, one per attribute in schema order.
    pub(super) update_sql: Vec<String>,
    pub(super) delete_sql: String,
    pub(super) scan_sql: String,
    /// `dbbench."<collection>_links"`: each link both ways, for expand.
    pub(super) links_table: String,
    /// Unfiltered expand.
    pub(super) expand_sql: String,
}

impl State {
    /// The update statement for an attribute. `execute` has already rejected unknown
    /// attributes (`check_field`), so the error here is a safety net, not a path.
    pub(super) fn update_sql(&self, field: &str) -> Result<&str, sqlx::Error> {
        self.schema
            .attribute_index(field)
            .and_then(|i| self.update_sql.get(i))
            .map(String::as_str)
            .ok_or_else(|| sqlx::Error::ColumnNotFound(format!("a_{field}")))
    }

    /// The statements for `schema`, built once in `prepare`.
    pub(super) fn new(schema: &Schema, settings: &Settings) -> State {
        let table = format!("{SCHEMA}.{}", ident(&schema.collection));
        let op = match schema.metric {
            Metric::Cosine => "<=>",
            Metric::L2 => "<->",
            Metric::Dot => "<#>",
        };
        let config = format!("{}::regconfig", literal(&settings.text_config));
        let attr_cols: String = schema.attributes.iter().map(|a| format!(", {}", column(&a.name))).collect();
        let n = schema.attributes.len();
        let marks: String = (0..n).map(|i| format!(", ${}", i + 4)).collect();
        let norm = settings.rank_normalization;
        let knn_sql = knn_sql(&table, op, None);
        let text_sql = text_sql(&table, &config, norm, None);
        let hybrid_sql = hybrid_sql(settings, &table, op, &config, None);
        let get_sql = format!("SELECT id, embedding, text{attr_cols} FROM {table} WHERE id = $1");
        State {
            get_for_update_sql: format!("{get_sql} FOR UPDATE"),
            get_sql,
            update_sql: schema
                .attributes
                .iter()
                .map(|a| format!("UPDATE {table} SET {} = $1 WHERE id = $2", column(&a.name)))
                .collect(),
            delete_sql: format!("DELETE FROM {table} WHERE id = $1"),
            scan_sql: format!("SELECT id FROM {table} WHERE id >= $1 ORDER BY id LIMIT $2"),
            insert_sql: format!("INSERT INTO {table} (id, embedding, text{attr_cols}) VALUES ($1, $2, $3{marks})"),
            copy_sql: super::copy::copy_sql(&table, &attr_cols),
            knn_sql,
            text_sql,
            hybrid_sql,
            expand_sql: expand_sql(&table, &links_table(&schema.collection), op, None),
            links_table: links_table(&schema.collection),
            schema: schema.clone(),
            table,
            op,
            config,
            attr_cols,
        }
    }
}

/// kNN: `$1` vector, `$2` k, filter from `$3`. A filtered search is re-sorted outside
/// the index scan because relaxed-order iterative scans may return rows slightly out
/// of distance order.
pub(super) fn knn_sql(table: &str, op: &str, filter: Option<&str>) -> String {
    match filter {
        None => format!("SELECT id FROM {table} ORDER BY embedding {op} $1 LIMIT $2"),
        Some(w) => format!(
            "SELECT id FROM (SELECT id, embedding {op} $1 AS d FROM {table} WHERE {w} ORDER BY embedding {op} $1 LIMIT $2) s ORDER BY d, id"
        ),
    }
}

/// The links table of a collection (created only when the schema has links).
pub(super) fn links_table(collection: &str) -> String {
    format!("{SCHEMA}.{}", ident(&format!("{collection}_links")))
}

/// Expand (`sql_filter::expand_sql`): the seeds are the index's kNN, re-sorted as
/// `knn_sql` does, ranked from 0.
pub(super) fn expand_sql(table: &str, links: &str, op: &str, filter: Option<&str>) -> String {
    let w = filter.map(|w| format!(" WHERE {w}")).unwrap_or_default();
    let seeds = format!(
        "SELECT id, (row_number() OVER (ORDER BY d, id)) - 1 AS r FROM \
           (SELECT id, embedding {op} $1 AS d FROM {table}{w} ORDER BY embedding {op} $1 LIMIT $2) s"
    );
    crate::driver::sql_filter::expand_sql(crate::driver::sql_filter::Dialect::Postgres, &seeds, links)
}

/// Text: `$1` OR-query, `$2` k, filter from `$3`.
pub(super) fn text_sql(table: &str, config: &str, norm: u32, filter: Option<&str>) -> String {
    let w = filter.map(|w| format!(" AND {w}")).unwrap_or_default();
    format!(
        "SELECT t.id FROM {table} t, to_tsquery({config}, $1) q WHERE t.tsv @@ q{w} ORDER BY ts_rank_cd(t.tsv, q, {norm}) DESC, t.id LIMIT $2"
    )
}

/// Hybrid: `$1` vector, `$2` OR-query, `$3` candidates per side, `$4` k, filter from
/// `$5` (the same placeholders serve both sides).
pub(super) fn hybrid_sql(settings: &Settings, table: &str, op: &str, config: &str, filter: Option<&str>) -> String {
    let norm = settings.rank_normalization;
    let wk = filter.map(|w| format!(" WHERE {w}")).unwrap_or_default();
    let wt = filter.map(|w| format!(" AND {w}")).unwrap_or_default();
    format!(
        "WITH knn AS (SELECT id, row_number() OVER (ORDER BY d, id) AS r FROM \
           (SELECT id, embedding {op} $1 AS d FROM {table}{wk} ORDER BY embedding {op} $1 LIMIT $3) s), \
         txt AS (SELECT id, row_number() OVER (ORDER BY s DESC, id) AS r FROM \
           (SELECT t.id, ts_rank_cd(t.tsv, q, {norm}) AS s FROM {table} t, to_tsquery({config}, $2) q \
            WHERE t.tsv @@ q{wt} ORDER BY s DESC, t.id LIMIT $3) s) \
         SELECT id FROM (SELECT id, r FROM knn UNION ALL SELECT id, r FROM txt) u \
         GROUP BY id ORDER BY sum(1.0 / ({rrf} + r)) DESC, id LIMIT $4",
        rrf = settings.rrf_k
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    #[test]
    fn text_query_is_an_or_of_plain_words() {
        assert_eq!(or_query("Cancer & !cells: a*b 'x' | y"), "cancer | cells | a | b | x | y");
        assert_eq!(or_query(" ... "), "");
        assert_eq!(or_query("Ünïcode wörds"), "ünïcode | wörds");
    }
}
