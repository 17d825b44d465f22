//! The Cypher text of the neo4j driver: the names a collection's objects get, filters as
//! predicates with parameters, the escaped Lucene query, and every statement a search
//! runs (built once per collection in `prepare`).
//!
//! Nothing from a workload or a dataset reaches Cypher text except through `quoted`
//! (names) or as a parameter (values).

use neo4rs::BoltType;

use super::{LINK, RANK_SPAN};
use crate::driver::{AttrKind, AttrValue, Filter, Schema};

/// A Cypher name in backticks. Backticks are doubled; a backslash is refused before it
/// gets here (Cypher reads `\u0060` inside backticks as a backtick).
pub(super) fn quoted(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// The part of dbbench's names that comes from the collection: letters, digits and `_`,
/// anything else replaced by `_`.
pub(super) fn name_part(collection: &str) -> String {
    collection.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

/// The names a collection's objects get in Neo4j.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub label: String,
    pub vector_index: String,
    pub text_index: String,
    pub constraint: String,
}

impl Names {
    pub fn of(collection: &str) -> Names {
        let p = name_part(collection);
        Names {
            label: format!("DbbenchDoc_{p}"),
            vector_index: format!("dbbench_vec_{p}"),
            text_index: format!("dbbench_text_{p}"),
            constraint: format!("dbbench_id_{p}"),
        }
    }

    pub(super) fn indexes(&self) -> Vec<String> {
        vec![self.vector_index.clone(), self.text_index.clone()]
    }
}

/// The property an attribute is stored in, quoted.
pub fn attr_property(name: &str) -> String {
    quoted(&format!("a_{name}"))
}

/// A filter parameter's value.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterParam {
    Int(i64),
    Str(String),
    Ints(Vec<i64>),
    Strs(Vec<String>),
}

impl From<FilterParam> for BoltType {
    fn from(p: FilterParam) -> BoltType {
        match p {
            FilterParam::Int(i) => i.into(),
            FilterParam::Str(s) => s.into(),
            FilterParam::Ints(v) => v.into(),
            FilterParam::Strs(v) => v.into(),
        }
    }
}

/// A filter as a Cypher predicate on one node variable, with its parameters (`$f0`,
/// `$f1`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct CypherFilter {
    pub predicate: String,
    pub params: Vec<(String, FilterParam)>,
}

/// The filter as a Cypher predicate on node `var`, meaning exactly what `Filter::matches`
/// means: a value of the wrong kind for its attribute, an unknown attribute or a range on
/// a keyword attribute matches nothing (`false`, decided here rather than left to Cypher's
/// comparisons across types, which give null), an in-list keeps only the values of its
/// attribute's kind, an empty `and` matches everything and an empty `or` nothing. Every
/// stored node has every attribute, of its schema kind (load, insert and update refuse
/// anything else), so no predicate meets a null.
pub fn filter_cypher(f: &Filter, schema: &Schema, var: &str) -> CypherFilter {
    let mut params = Vec::new();
    let predicate = predicate(f, schema, var, &mut params);
    CypherFilter { predicate, params }
}

fn predicate(f: &Filter, schema: &Schema, var: &str, params: &mut Vec<(String, FilterParam)>) -> String {
    let kind = |field: &str| schema.attributes.iter().find(|a| a.name == field).map(|a| a.kind);
    let mut param = |v: FilterParam| {
        let name = format!("f{}", params.len());
        params.push((name.clone(), v));
        format!("${name}")
    };
    match f {
        Filter::Eq { field, value } => match (kind(field), value) {
            (Some(AttrKind::Integer), AttrValue::Integer(i)) => {
                format!("{var}.{} = {}", attr_property(field), param(FilterParam::Int(*i)))
            }
            (Some(AttrKind::Keyword), AttrValue::Keyword(s)) => {
                format!("{var}.{} = {}", attr_property(field), param(FilterParam::Str(s.clone())))
            }
            _ => "false".into(),
        },
        Filter::In { field, values } => {
            let (ints, keywords) = AttrValue::by_kind(values);
            let p = match kind(field) {
                Some(AttrKind::Integer) if !ints.is_empty() => FilterParam::Ints(ints),
                Some(AttrKind::Keyword) if !keywords.is_empty() => FilterParam::Strs(keywords),
                _ => return "false".into(),
            };
            format!("{var}.{} IN {}", attr_property(field), param(p))
        }
        Filter::Range { field, gte, lt } => {
            if kind(field) != Some(AttrKind::Integer) {
                return "false".into();
            }
            let prop = format!("{var}.{}", attr_property(field));
            let mut parts = Vec::new();
            if let Some(g) = gte {
                parts.push(format!("{prop} >= {}", param(FilterParam::Int(*g))));
            }
            if let Some(l) = lt {
                parts.push(format!("{prop} < {}", param(FilterParam::Int(*l))));
            }
            match parts.len() {
                0 => format!("{prop} IS NOT NULL"),
                1 => parts.remove(0),
                _ => format!("({})", parts.join(" AND ")),
            }
        }
        Filter::And(parts) if parts.is_empty() => "true".into(),
        Filter::Or(parts) if parts.is_empty() => "false".into(),
        Filter::And(parts) | Filter::Or(parts) => {
            let sep = if matches!(f, Filter::And(_)) { " AND " } else { " OR " };
            let ps: Vec<String> = parts.iter().map(|p| predicate(p, schema, var, params)).collect();
            format!("({})", ps.join(sep))
        }
    }
}

/// A text query as a Lucene query for Neo4j's full-text index: every word escaped so that
/// none is read as syntax, the words OR-ed (the query parser's default), `AND`, `OR` and
/// `NOT` quoted so that they are words, not operators. `None` when there is no word
/// (Lucene refuses an empty query; an empty query finds nothing).
pub fn lucene_query(text: &str) -> Option<String> {
    const SPECIAL: &str = "\\+-!():^[]\"{}~*?|&/";
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| {
            if matches!(w, "AND" | "OR" | "NOT") {
                return format!("\"{w}\"");
            }
            let mut out = String::with_capacity(w.len() + 4);
            for c in w.chars() {
                if SPECIAL.contains(c) {
                    out.push('\\');
                }
                out.push(c);
            }
            out
        })
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// The Cypher of every request, built once per prepared schema.
pub struct Cypher {
    label: String,
    pub(super) load: String,
    pub(super) insert: String,
    pub(super) get: String,
    pub(super) rmw_read: String,
    /// Per attribute (schema order): set it by id.
    pub(super) update: Vec<String>,
    pub(super) rmw_write: Vec<String>,
    pub(super) delete: String,
    pub(super) scan: String,
    pub(super) link: String,
}

impl Cypher {
    pub fn new(schema: &Schema, names: &Names) -> Cypher {
        let label = quoted(&names.label);
        let props: Vec<String> = schema.attributes.iter().map(|a| attr_property(&a.name)).collect();
        let from_row: String = props.iter().enumerate().map(|(i, p)| format!(", {p}: r.a{i}")).collect();
        let from_params: String = props.iter().enumerate().map(|(i, p)| format!(", {p}: $a{i}")).collect();
        let record_items = format!(
            "n.id AS id, n.embedding AS v, n.text AS text{}",
            props.iter().enumerate().map(|(i, p)| format!(", n.{p} AS a{i}")).collect::<String>()
        );
        let set = |p: &String, extra: &str| {
            format!("MATCH (n:{label} {{id: $id}}) SET n.{p} = $value{extra} RETURN count(n) AS c")
        };
        Cypher {
            load: format!(
                "UNWIND $rows AS r CREATE (n:{label} {{id: r.id, text: r.text{from_row}}}) \
                 WITH n, r CALL db.create.setNodeVectorProperty(n, 'embedding', r.v)"
            ),
            insert: format!(
                "CREATE (n:{label} {{id: $id, text: $text{from_params}}}) \
                 WITH n CALL db.create.setNodeVectorProperty(n, 'embedding', $v)"
            ),
            get: format!("MATCH (n:{label} {{id: $id}}) RETURN {record_items}"),
            // Setting a property takes the node's write lock, held to the commit: the read
            // of a read-modify-write locks as SELECT ... FOR UPDATE does (Neo4j's documented
            // way to lock in Cypher); the write removes the property again.
            rmw_read: format!("MATCH (n:{label} {{id: $id}}) SET n.dbbench_lock = true RETURN {record_items}"),
            update: props.iter().map(|p| set(p, "")).collect(),
            rmw_write: props.iter().map(|p| set(p, " REMOVE n.dbbench_lock")).collect(),
            delete: format!(
                "MATCH (n:{label} {{id: $id}}) OPTIONAL MATCH (n)-[r:{LINK}]-() DELETE r \
                 WITH DISTINCT n DELETE n RETURN count(*) AS c"
            ),
            scan: format!(
                "MATCH (n:{label}) WHERE n.id >= $start WITH n.id AS id ORDER BY id LIMIT $limit RETURN collect(id) AS ids"
            ),
            link: format!(
                "UNWIND $pairs AS p MATCH (a:{label} {{id: p[0]}}) MATCH (b:{label} {{id: p[1]}}) \
                 CREATE (a)-[:{LINK}]->(b) RETURN count(*) AS c"
            ),
            label,
        }
    }

    /// The vector index's candidates that pass `filter`, best first, as `node, score`.
    fn vector_candidates(&self, filter: Option<&str>) -> String {
        let mut q = "CALL db.index.vector.queryNodes($vidx, $vn, $vec) YIELD node, score".to_string();
        if let Some(w) = filter {
            q.push_str(&format!(" WHERE {w}"));
        }
        q
    }

    /// kNN: `$vn` candidates from the vector index, filtered, the first `$k` ids.
    pub fn knn(&self, filter: Option<&str>) -> String {
        format!(
            "{} WITH node.id AS id, score ORDER BY score DESC, id LIMIT $k RETURN collect(id) AS ids",
            self.vector_candidates(filter)
        )
    }

    fn text_candidates(&self, filter: Option<&str>) -> String {
        match filter {
            // Unfiltered, Lucene collects only the top `$tn`; filtered, every match is
            // filtered before the top ones are taken.
            None => "CALL db.index.fulltext.queryNodes($tidx, $q, {limit: $tn}) YIELD node, score".into(),
            Some(w) => format!("CALL db.index.fulltext.queryNodes($tidx, $q) YIELD node, score WHERE {w}"),
        }
    }

    /// Text: the full-text index's matches, filtered, the first `$k` ids by BM25 score.
    pub fn text(&self, filter: Option<&str>) -> String {
        format!(
            "{} WITH node.id AS id, score ORDER BY score DESC, id LIMIT $k RETURN collect(id) AS ids",
            self.text_candidates(filter)
        )
    }

    /// Hybrid: the first `$n` of each side, fused by reciprocal rank fusion (ranks from 1,
    /// `$rrf_k`), ties by id, the first `$k`. Without text words, the vector side alone.
    pub fn hybrid(&self, filter: Option<&str>, with_text: bool) -> String {
        let ranked = |candidates: String| {
            format!(
                "{candidates} WITH node.id AS id, score ORDER BY score DESC, id LIMIT $n \
                 WITH collect(id) AS ids UNWIND range(0, size(ids) - 1) AS i \
                 RETURN ids[i] AS id, 1.0 / ($rrf_k + i + 1) AS s"
            )
        };
        let mut sides = ranked(self.vector_candidates(filter));
        if with_text {
            sides.push_str(" UNION ALL ");
            sides.push_str(&ranked(self.text_candidates(filter)));
        }
        format!(
            "CALL () {{ {sides} }} WITH id, sum(s) AS score ORDER BY score DESC, id LIMIT $k RETURN collect(id) AS ids"
        )
    }

    /// Expand: `$seeds` seeds from `$vn` vector candidates that pass the filter (rank 0
    /// the nearest), every node within `hops` links of a seed keyed by the least
    /// `hops * RANK_SPAN + rank` over the paths that reach it, the first `$max` by key,
    /// then id. The shortest path from a seed is always among the matched paths (a
    /// shortest path repeats no relationship), so the least key is the reference's.
    pub fn expand(&self, filter: Option<&str>, hops: usize) -> String {
        format!(
            "{} WITH node ORDER BY score DESC, node.id LIMIT $seeds \
             WITH collect(node) AS seeds UNWIND range(0, size(seeds) - 1) AS rank \
             WITH seeds[rank] AS s, rank \
             MATCH p = (s)-[:{LINK}*0..{hops}]-(m:{label}) \
             WITH m, min(length(p) * {RANK_SPAN} + rank) AS key \
             WITH m.id AS id, key ORDER BY key, id LIMIT $max RETURN collect(id) AS ids",
            self.vector_candidates(filter),
            label = self.label,
        )
    }
}
