//! Engine-neutral vocabulary shared by the runner and every driver: the schema an engine
//! is asked to create, the records it loads, the ops it runs, the filters those ops carry
//! and what an op returns.
//!
//! A `Filter` must mean the same thing on every engine. `Filter::matches` is the
//! reference semantics: the exact ground truth is computed with it, and the
//! conformance suite checks every driver against it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

/// Distance used for vector search. Every engine is configured with the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// 1 - cosine similarity. Vectors need not be normalised.
    Cosine,
    /// Negative inner product (higher dot product ranks first).
    Dot,
    /// Euclidean distance.
    L2,
}

impl Metric {
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::Dot => "dot",
            Metric::L2 => "l2",
        }
    }

    /// Distance between two vectors; smaller is nearer. L2 is returned squared, which
    /// ranks the same.
    pub fn distance(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Metric::Cosine => {
                let (mut dot, mut na, mut nb) = (0f32, 0f32, 0f32);
                for (x, y) in a.iter().zip(b) {
                    dot += x * y;
                    na += x * x;
                    nb += y * y;
                }
                let denom = (na * nb).sqrt();
                if denom == 0.0 {
                    1.0
                } else {
                    1.0 - dot / denom
                }
            }
            Metric::Dot => -a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>(),
            Metric::L2 => a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum(),
        }
    }
}

/// The type of a metadata attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttrKind {
    Keyword,
    Integer,
}

/// One attribute column of the schema.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct AttributeDef {
    pub name: String,
    pub kind: AttrKind,
}

/// What an engine is asked to create in `prepare`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Schema {
    /// Name of dbbench's own collection/table/index for this workload, e.g. `dbbench_rag`.
    /// Drivers create exactly this (inside their own schema or prefix) and nothing else.
    pub collection: String,
    pub dim: usize,
    pub metric: Metric,
    /// Attribute columns; every record carries one value per attribute, in this order.
    pub attributes: Vec<AttributeDef>,
    /// Whether the workload loads links between records (`Driver::load_links`) for the
    /// `expand` op; a driver that stores links creates their table or relationship type
    /// in `prepare` only then.
    pub links: bool,
}

impl Schema {
    pub fn attribute_index(&self, name: &str) -> Option<usize> {
        self.attributes.iter().position(|a| a.name == name)
    }
}

/// A metadata value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum AttrValue {
    Keyword(String),
    Integer(i64),
}

impl AttrValue {
    /// The integers and the keywords of an in-list, each in list order (engines match an
    /// in-list one kind at a time).
    pub fn by_kind(values: &[AttrValue]) -> (Vec<i64>, Vec<String>) {
        let (mut ints, mut keywords) = (Vec::new(), Vec::new());
        for v in values {
            match v {
                AttrValue::Integer(i) => ints.push(*i),
                AttrValue::Keyword(s) => keywords.push(s.clone()),
            }
        }
        (ints, keywords)
    }
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Keyword(s) => write!(f, "{s:?}"),
            AttrValue::Integer(i) => write!(f, "{i}"),
        }
    }
}

/// A link between two records, for graph expansion. Links are undirected: `expand` walks
/// them both ways. The runner hands each pair once, with `a < b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Link {
    pub a: u64,
    pub b: u64,
}

/// Seed ranks of an expand are below this (the plan allows at most 1,000 seeds), so the
/// one integer `hops * EXPAND_RANK_SPAN + rank` orders a reached record by hops, then by
/// seed rank: the key every engine's single-query expansion sorts by.
pub const EXPAND_RANK_SPAN: i64 = 1_000_000;

/// One document: id, embedding, text and attributes (in schema order).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: u64,
    pub vector: Arc<[f32]>,
    pub text: Arc<str>,
    pub attributes: Vec<AttrValue>,
}

/// A filter expression over attributes. Ranges are on integer attributes only; bounds
/// that are `None` are open.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Filter {
    Eq {
        field: String,
        value: AttrValue,
    },
    In {
        field: String,
        values: Vec<AttrValue>,
    },
    Range {
        field: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        gte: Option<i64>,
        /// Exclusive upper bound.
        #[serde(skip_serializing_if = "Option::is_none")]
        lt: Option<i64>,
    },
    And(Vec<Filter>),
    Or(Vec<Filter>),
}

impl Filter {
    /// The reference semantics: does a record with these attributes match?
    pub fn matches(&self, schema: &Schema, attrs: &[AttrValue]) -> bool {
        let value = |field: &str| schema.attribute_index(field).and_then(|i| attrs.get(i));
        match self {
            Filter::Eq { field, value: v } => value(field) == Some(v),
            Filter::In { field, values } => value(field).is_some_and(|x| values.contains(x)),
            Filter::Range { field, gte, lt } => match value(field) {
                Some(AttrValue::Integer(x)) => gte.is_none_or(|g| *x >= g) && lt.is_none_or(|l| *x < l),
                _ => false,
            },
            Filter::And(parts) => parts.iter().all(|p| p.matches(schema, attrs)),
            Filter::Or(parts) => parts.iter().any(|p| p.matches(schema, attrs)),
        }
    }

    /// Every field the filter reads.
    pub fn fields(&self) -> Vec<&str> {
        match self {
            Filter::Eq { field, .. } | Filter::In { field, .. } | Filter::Range { field, .. } => {
                vec![field.as_str()]
            }
            Filter::And(p) | Filter::Or(p) => p.iter().flat_map(|f| f.fields()).collect(),
        }
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Eq { field, value } => write!(f, "{field} = {value}"),
            Filter::In { field, values } => {
                let v: Vec<String> = values.iter().map(|v| v.to_string()).collect();
                write!(f, "{field} in [{}]", v.join(", "))
            }
            Filter::Range { field, gte, lt } => match (gte, lt) {
                (Some(g), Some(l)) => write!(f, "{g} <= {field} < {l}"),
                (Some(g), None) => write!(f, "{field} >= {g}"),
                (None, Some(l)) => write!(f, "{field} < {l}"),
                (None, None) => write!(f, "{field} any"),
            },
            Filter::And(p) | Filter::Or(p) => {
                let sep = if matches!(self, Filter::And(_)) { " and " } else { " or " };
                let parts: Vec<String> = p.iter().map(|x| format!("({x})")).collect();
                write!(f, "{}", parts.join(sep))
            }
        }
    }
}

/// Per-op search parameters from the workload (`ef_search`, `num_candidates`, ...).
/// Each driver reads the ones it knows; the rest are reported back as ignored.
pub type SearchParams = BTreeMap<String, serde_json::Value>;

/// The kinds of operation, as named in workload files and results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    Knn,
    Text,
    Hybrid,
    Get,
    Insert,
    Update,
    Delete,
    Scan,
    ReadModifyWrite,
    /// Graph expansion (GraphRAG): kNN seeds, then the records their links reach.
    Expand,
}

impl OpKind {
    pub const ALL: [OpKind; 10] = [
        OpKind::Knn,
        OpKind::Text,
        OpKind::Hybrid,
        OpKind::Get,
        OpKind::Insert,
        OpKind::Update,
        OpKind::Delete,
        OpKind::Scan,
        OpKind::ReadModifyWrite,
        OpKind::Expand,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Knn => "knn",
            OpKind::Text => "text",
            OpKind::Hybrid => "hybrid",
            OpKind::Get => "get",
            OpKind::Insert => "insert",
            OpKind::Update => "update",
            OpKind::Delete => "delete",
            OpKind::Scan => "scan",
            OpKind::ReadModifyWrite => "read_modify_write",
            OpKind::Expand => "expand",
        }
    }

    /// Ops whose result is a ranked list that retrieval quality can be scored on (and
    /// that take a filter: expand filters its seeds).
    pub fn is_search(self) -> bool {
        matches!(self, OpKind::Knn | OpKind::Text | OpKind::Hybrid | OpKind::Expand)
    }

    /// Ops that search by the query's vector.
    pub fn needs_vectors(self) -> bool {
        matches!(self, OpKind::Knn | OpKind::Hybrid | OpKind::Expand)
    }

    /// Ops that change the stored data.
    pub fn is_write(self) -> bool {
        matches!(self, OpKind::Insert | OpKind::Update | OpKind::Delete | OpKind::ReadModifyWrite)
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One request. Borrowed data (vectors, text) lives in the dataset for the whole run, so
/// building an op costs no allocation on the timed path.
#[derive(Debug, Clone)]
pub enum Op<'a> {
    Knn {
        vector: &'a [f32],
        k: usize,
        filter: Option<&'a Filter>,
        params: &'a SearchParams,
    },
    /// Ranked full-text search (BM25 or the engine's own ranking).
    Text {
        query: &'a str,
        k: usize,
        filter: Option<&'a Filter>,
        params: &'a SearchParams,
    },
    /// Vector and text together, fused (reciprocal rank fusion unless the driver says
    /// otherwise in its capabilities).
    Hybrid {
        vector: &'a [f32],
        query: &'a str,
        k: usize,
        filter: Option<&'a Filter>,
        params: &'a SearchParams,
    },
    Get {
        id: u64,
    },
    Insert {
        record: &'a Record,
    },
    /// Sets one attribute of an existing record (a metadata write).
    Update {
        id: u64,
        field: &'a str,
        value: AttrValue,
    },
    Delete {
        id: u64,
    },
    /// Ids `>= start`, ascending, at most `limit` of them.
    Scan {
        start: u64,
        limit: usize,
    },
    /// In one transaction: read the record, then set `field` to `value`.
    ReadModifyWrite {
        id: u64,
        field: &'a str,
        value: AttrValue,
    },
    /// Graph expansion: the `seeds` nearest records to `vector` that pass `filter` (seed
    /// rank 0 is the nearest), then every record within `hops` links of a seed (links
    /// walked both ways; the filter applies to the seeds only). Each record reached is
    /// keyed by the least (hops from a seed, that seed's rank) over the seeds that reach
    /// it, seeds themselves at hop 0; the answer is the records in key order, ties by
    /// ascending id, at most `max_results` of them. `data::links::expand` is the
    /// reference semantics.
    Expand {
        vector: &'a [f32],
        seeds: usize,
        hops: usize,
        max_results: usize,
        filter: Option<&'a Filter>,
        params: &'a SearchParams,
    },
}

impl Op<'_> {
    pub fn kind(&self) -> OpKind {
        match self {
            Op::Knn { .. } => OpKind::Knn,
            Op::Text { .. } => OpKind::Text,
            Op::Hybrid { .. } => OpKind::Hybrid,
            Op::Get { .. } => OpKind::Get,
            Op::Insert { .. } => OpKind::Insert,
            Op::Update { .. } => OpKind::Update,
            Op::Delete { .. } => OpKind::Delete,
            Op::Scan { .. } => OpKind::Scan,
            Op::ReadModifyWrite { .. } => OpKind::ReadModifyWrite,
            Op::Expand { .. } => OpKind::Expand,
        }
    }
}

/// What one request returned.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Ranked ids, best first (search ops) or ascending ids (scan).
    Hits(Vec<u64>),
    /// The record read by get (None: no such id).
    Found(Option<Record>),
    /// Rows written by a write op.
    Written(u64),
}

impl Outcome {
    pub fn hits(&self) -> Option<&[u64]> {
        match self {
            Outcome::Hits(h) => Some(h),
            _ => None,
        }
    }
}
