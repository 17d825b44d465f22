//! dbbench's `Filter` as a SQL boolean expression with bound parameters, for the SQL
//! engines (SQLite and PostgreSQL). The two drivers name attribute columns the same way
//! (`"a_<attribute>"`) and differ here only in how a placeholder is written and how an
//! in-list is bound.
//!
//! The meaning is `Filter::matches`, exactly, whatever the column types would let SQL do
//! on its own: a field the schema does not declare matches nothing (SQL would fail on the
//! missing column), a value of the other kind than the attribute matches nothing (SQLite
//! would compare `'1'` with `1` through type affinity and match), a range on a keyword
//! attribute matches nothing (SQLite would compare text with integers and match every
//! row), an empty `in` or `or` matches nothing and an empty `and` everything.
//!
//! It must never put a value into the SQL text: every value is a placeholder and a
//! `Bind`, so no value can change the statement, and the statement text depends only on
//! the filter's shape (PostgreSQL binds an in-list as one array; SQLite, which has none,
//! one placeholder per value).

use super::{AttrKind, AttrValue, DriverError, DriverResult, Filter, Schema};

/// The SQL engine a filter is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `?N` placeholders; an in-list is `IN (?N, ?N+1, ...)`.
    Sqlite,
    /// `$N` placeholders; an in-list is one array, `= ANY($N)`.
    Postgres,
}

/// A value bound to a placeholder, in placeholder order.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Int(i64),
    Text(String),
    /// PostgreSQL only: an integer in-list as one `bigint[]`.
    Ints(Vec<i64>),
    /// PostgreSQL only: a keyword in-list as one `text[]`.
    Texts(Vec<String>),
}

/// A filter translated: `sql` reads placeholders `first..first + binds.len()`.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlFilter {
    pub sql: String,
    pub binds: Vec<Bind>,
}

impl Dialect {
    /// Placeholder `n` (1-based).
    fn placeholder(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}"),
        }
    }
}

/// An expand as one SQL statement (`Op::Expand`'s semantics), after `seeds`, a query of
/// the seeds as `(id, r)` with r their rank from 0. Placeholders: 1 and 2 are the seeds
/// query's (vector, seed count), 3 the hops, 4 the most results, filters from 5. The walk
/// follows `links` (each link stored both ways) and UNION drops repeated (record, hop,
/// seed) rows, so it is bounded by records x hops x seeds, not by paths; a record's key
/// is its least (hop, seed rank).
pub fn expand_sql(dialect: Dialect, seeds: &str, links: &str) -> String {
    let (hops, most) = (dialect.placeholder(3), dialect.placeholder(4));
    format!(
        "WITH RECURSIVE seeds AS ({seeds}), \
         walk(id, hop, r) AS (SELECT id, 0, r FROM seeds \
           UNION SELECT l.dst, w.hop + 1, w.r FROM walk w JOIN {links} l ON l.src = w.id WHERE w.hop < {hops}) \
         SELECT id FROM walk GROUP BY id ORDER BY min(hop * {span} + r), id LIMIT {most}",
        span = super::EXPAND_RANK_SPAN
    )
}

/// A double-quoted SQL identifier (both dialects).
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The column of attribute `attr`, in every SQL driver's tables.
pub fn column(attr: &str) -> String {
    ident(&format!("a_{attr}"))
}

impl Dialect {
    /// `f` over `schema`'s attribute columns, its first placeholder numbered `first`.
    /// Fails (`Rejected`) only on an in-list that mixes integers and keywords, which no
    /// workload can write and no column can hold.
    pub fn filter(self, f: &Filter, schema: &Schema, first: usize) -> DriverResult<SqlFilter> {
        let mut w = Writer { dialect: self, schema, first, binds: Vec::new() };
        let sql = w.expr(f)?;
        Ok(SqlFilter { sql, binds: w.binds })
    }
}

struct Writer<'a> {
    dialect: Dialect,
    schema: &'a Schema,
    first: usize,
    binds: Vec<Bind>,
}

const TRUE: &str = "TRUE";
const FALSE: &str = "FALSE";

impl Writer<'_> {
    /// A placeholder for `b`.
    fn bind(&mut self, b: Bind) -> String {
        self.binds.push(b);
        let n = self.first + self.binds.len() - 1;
        match self.dialect {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}"),
        }
    }

    fn kind(&self, field: &str) -> Option<AttrKind> {
        self.schema.attributes.iter().find(|a| a.name == field).map(|a| a.kind)
    }

    fn expr(&mut self, f: &Filter) -> DriverResult<String> {
        Ok(match f {
            Filter::Eq { field, value } => match (self.kind(field), value) {
                (Some(AttrKind::Integer), AttrValue::Integer(i)) => {
                    format!("{} = {}", column(field), self.bind(Bind::Int(*i)))
                }
                (Some(AttrKind::Keyword), AttrValue::Keyword(s)) => {
                    format!("{} = {}", column(field), self.bind(Bind::Text(s.clone())))
                }
                _ => FALSE.into(),
            },
            Filter::In { field, values } => self.in_list(field, values)?,
            Filter::Range { field, gte, lt } => {
                if self.kind(field) != Some(AttrKind::Integer) {
                    return Ok(FALSE.into());
                }
                let mut parts = Vec::new();
                if let Some(g) = gte {
                    parts.push(format!("{} >= {}", column(field), self.bind(Bind::Int(*g))));
                }
                if let Some(l) = lt {
                    parts.push(format!("{} < {}", column(field), self.bind(Bind::Int(*l))));
                }
                match parts.len() {
                    // Attribute columns are NOT NULL: an open range holds for every row.
                    0 => TRUE.into(),
                    1 => parts.remove(0),
                    _ => format!("({})", parts.join(" AND ")),
                }
            }
            Filter::And(parts) | Filter::Or(parts) => {
                let and = matches!(f, Filter::And(_));
                if parts.is_empty() {
                    return Ok(if and { TRUE } else { FALSE }.into());
                }
                let mut out = Vec::with_capacity(parts.len());
                for p in parts {
                    out.push(self.expr(p)?);
                }
                format!("({})", out.join(if and { " AND " } else { " OR " }))
            }
        })
    }

    fn in_list(&mut self, field: &str, values: &[AttrValue]) -> DriverResult<String> {
        let (ints, texts) = AttrValue::by_kind(values);
        if !ints.is_empty() && !texts.is_empty() {
            return Err(DriverError::rejected(format!("filter on {field}: in-list mixes integers and keywords")));
        }
        let col = column(field);
        let (ints, texts) = match self.kind(field) {
            Some(AttrKind::Integer) if !ints.is_empty() => (ints, Vec::new()),
            Some(AttrKind::Keyword) if !texts.is_empty() => (Vec::new(), texts),
            // Empty, of the other kind than the attribute, or no such attribute.
            _ => return Ok(FALSE.into()),
        };
        Ok(match self.dialect {
            Dialect::Postgres => {
                let array = if ints.is_empty() { Bind::Texts(texts) } else { Bind::Ints(ints) };
                format!("{col} = ANY({})", self.bind(array))
            }
            Dialect::Sqlite => {
                let values = ints.into_iter().map(Bind::Int).chain(texts.into_iter().map(Bind::Text));
                let marks: Vec<String> = values.map(|b| self.bind(b)).collect();
                format!("{col} IN ({})", marks.join(", "))
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::driver::{AttributeDef, ErrorKind, Metric};

    fn kw(s: &str) -> AttrValue {
        AttrValue::Keyword(s.into())
    }

    fn schema() -> Schema {
        let attr = |name: &str, kind| AttributeDef { name: name.into(), kind };
        Schema {
            collection: "t".into(),
            dim: 2,
            metric: Metric::L2,
            links: false,
            attributes: vec![
                attr("lang", AttrKind::Keyword),
                attr("year", AttrKind::Integer),
                attr("n", AttrKind::Integer),
                attr("y", AttrKind::Integer),
                attr("we\"ird", AttrKind::Integer),
            ],
        }
    }

    fn example() -> Filter {
        Filter::Or(vec![
            Filter::Eq { field: "lang".into(), value: kw("o'brien") },
            Filter::Range { field: "year".into(), gte: Some(2000), lt: Some(2010) },
            Filter::And(vec![
                Filter::In { field: "n".into(), values: vec![AttrValue::Integer(1), AttrValue::Integer(2)] },
                Filter::In { field: "lang".into(), values: vec![kw("de"), kw("fr")] },
            ]),
            Filter::Range { field: "year".into(), gte: None, lt: Some(5) },
        ])
    }

    #[test]
    fn postgres_binds_every_value_and_an_in_list_as_one_array() {
        let out = Dialect::Postgres.filter(&example(), &schema(), 3).unwrap();
        assert_eq!(
            out.sql,
            "(\"a_lang\" = $3 OR (\"a_year\" >= $4 AND \"a_year\" < $5) OR (\"a_n\" = ANY($6) AND \"a_lang\" = ANY($7)) OR \"a_year\" < $8)"
        );
        assert_eq!(
            out.binds,
            vec![
                Bind::Text("o'brien".into()),
                Bind::Int(2000),
                Bind::Int(2010),
                Bind::Ints(vec![1, 2]),
                Bind::Texts(vec!["de".into(), "fr".into()]),
                Bind::Int(5),
            ]
        );
    }

    #[test]
    fn sqlite_binds_every_value_and_an_in_list_value_by_value() {
        let out = Dialect::Sqlite.filter(&example(), &schema(), 3).unwrap();
        assert_eq!(
            out.sql,
            "(\"a_lang\" = ?3 OR (\"a_year\" >= ?4 AND \"a_year\" < ?5) OR (\"a_n\" IN (?6, ?7) AND \"a_lang\" IN (?8, ?9)) OR \"a_year\" < ?10)"
        );
        assert_eq!(
            out.binds,
            vec![
                Bind::Text("o'brien".into()),
                Bind::Int(2000),
                Bind::Int(2010),
                Bind::Int(1),
                Bind::Int(2),
                Bind::Text("de".into()),
                Bind::Text("fr".into()),
                Bind::Int(5),
            ]
        );
    }

    #[test]
    fn edge_cases_follow_the_reference_semantics_in_both_dialects() {
        let s = schema();
        for d in [Dialect::Sqlite, Dialect::Postgres] {
            let sql = |f: &Filter| {
                let out = d.filter(f, &s, 1).unwrap();
                assert!(out.binds.is_empty(), "{f} binds nothing");
                out.sql
            };
            assert_eq!(sql(&Filter::Range { field: "y".into(), gte: None, lt: None }), "TRUE");
            assert_eq!(sql(&Filter::Or(vec![])), "FALSE");
            assert_eq!(sql(&Filter::And(vec![])), "TRUE");
            assert_eq!(sql(&Filter::In { field: "lang".into(), values: vec![] }), "FALSE");
            // Values of the other kind, ranges on keywords, undeclared fields: nothing.
            assert_eq!(sql(&Filter::Eq { field: "lang".into(), value: AttrValue::Integer(1) }), "FALSE");
            assert_eq!(sql(&Filter::Eq { field: "year".into(), value: kw("2001") }), "FALSE");
            assert_eq!(sql(&Filter::In { field: "year".into(), values: vec![kw("2001")] }), "FALSE");
            assert_eq!(sql(&Filter::Range { field: "lang".into(), gte: Some(1), lt: None }), "FALSE");
            assert_eq!(sql(&Filter::Eq { field: "nope".into(), value: kw("x") }), "FALSE");
            let mixed = Filter::In { field: "y".into(), values: vec![AttrValue::Integer(1), kw("a")] };
            assert_eq!(d.filter(&mixed, &s, 1).unwrap_err().kind, ErrorKind::Rejected);
        }
        let quoted = Filter::Eq { field: "we\"ird".into(), value: AttrValue::Integer(1) };
        assert_eq!(Dialect::Postgres.filter(&quoted, &s, 1).unwrap().sql, "\"a_we\"\"ird\" = $1");
        assert_eq!(Dialect::Sqlite.filter(&quoted, &s, 1).unwrap().sql, "\"a_we\"\"ird\" = ?1");
    }

    /// The SQLite dialect run on a real table, against `Filter::matches` on every row:
    /// the reference semantics, including the cases where SQLite's type affinity would
    /// have matched on its own.
    #[test]
    fn sqlite_selects_exactly_the_rows_that_match() {
        // Rows hold the first two attributes of `schema()`: lang and year.
        let s = schema();
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE docs (id INTEGER PRIMARY KEY, \"a_lang\" TEXT NOT NULL, \"a_year\" INTEGER NOT NULL)",
        )
        .unwrap();
        let rows: Vec<(i64, Vec<AttrValue>)> = (0..40)
            .map(|i| {
                let lang = ["en", "de", "fr", "2001", "o'x"][i % 5];
                (i as i64, vec![kw(lang), AttrValue::Integer(1995 + i as i64)])
            })
            .collect();
        for (id, a) in &rows {
            let (AttrValue::Keyword(l), AttrValue::Integer(y)) = (&a[0], &a[1]) else { unreachable!() };
            conn.execute("INSERT INTO docs VALUES (?1, ?2, ?3)", rusqlite::params![id, l, y]).unwrap();
        }
        let int = AttrValue::Integer;
        let filters = vec![
            Filter::Eq { field: "lang".into(), value: kw("de") },
            Filter::Eq { field: "lang".into(), value: kw("o'x") },
            Filter::Eq { field: "lang".into(), value: int(2001) },
            Filter::Eq { field: "year".into(), value: kw("2001") },
            Filter::Eq { field: "missing".into(), value: kw("de") },
            Filter::In { field: "lang".into(), values: vec![kw("de"), kw("fr")] },
            Filter::In { field: "lang".into(), values: vec![] },
            Filter::In { field: "year".into(), values: vec![int(2000), int(2003), int(1)] },
            Filter::Range { field: "year".into(), gte: Some(2005), lt: Some(2008) },
            Filter::Range { field: "year".into(), gte: None, lt: None },
            Filter::Range { field: "lang".into(), gte: Some(0), lt: None },
            Filter::And(vec![]),
            Filter::Or(vec![]),
            Filter::And(vec![
                Filter::Eq { field: "lang".into(), value: kw("en") },
                Filter::Range { field: "year".into(), gte: Some(2010), lt: None },
            ]),
            Filter::Or(vec![
                Filter::Eq { field: "lang".into(), value: kw("fr") },
                Filter::Or(vec![]),
                Filter::Range { field: "year".into(), gte: Some(2030), lt: None },
            ]),
        ];
        for f in &filters {
            let out = Dialect::Sqlite.filter(f, &s, 1).unwrap();
            let values: Vec<rusqlite::types::Value> = out
                .binds
                .iter()
                .map(|b| match b {
                    Bind::Int(i) => (*i).into(),
                    Bind::Text(t) => t.clone().into(),
                    other => panic!("sqlite never binds {other:?}"),
                })
                .collect();
            let mut stmt = conn.prepare(&format!("SELECT id FROM docs WHERE {} ORDER BY id", out.sql)).unwrap();
            let got: Vec<i64> =
                stmt.query_map(rusqlite::params_from_iter(values), |r| r.get(0)).unwrap().map(|r| r.unwrap()).collect();
            let want: Vec<i64> = rows.iter().filter(|(_, a)| f.matches(&s, a)).map(|(id, _)| *id).collect();
            assert_eq!(got, want, "{f}: {}", out.sql);
        }
    }
}
