//! Datasets: what gets loaded into every engine and what queries are asked of them.
//!
//! A dataset is built once per run from the plan (BEIR folder, vector files, or the
//! seeded generator), gets the workload's attributes attached from the same seed, and is
//! then read-only: every engine sees exactly the same records and queries. Records carry
//! dense ids (row numbers); the source's own ids are kept for reports and judgments.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use rand::distributions::{Distribution, WeightedIndex};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use crate::driver::{AttrValue, AttributeDef, Metric, Record, Schema};
use crate::error::{Error, Result};
use crate::spec::{hex, AttributeGen, AttributePlan, DatasetPlan, DatasetSource, Fallback, LinksPlan};

pub mod beir;
pub mod links;
pub mod live;
pub mod synthetic;
pub mod truth;
pub mod vecfile;

/// The queries of a dataset. Row i of `vectors` and `texts[i]` are the same query.
#[derive(Debug, Default)]
pub struct Queries {
    pub ids: Vec<String>,
    /// Row-major, `ids.len() * dim` values; empty when the dataset has no query vectors.
    pub vectors: Vec<f32>,
    /// Empty when the dataset has no query text.
    pub texts: Vec<String>,
    /// Relevance judgments per query: (record id, grade > 0). None: the corpus is not judged.
    pub judgments: Option<Vec<Vec<(u64, u32)>>>,
}

impl Queries {
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

#[derive(Debug)]
pub struct Dataset {
    pub name: String,
    /// Where it came from, in words ("beir folder ...", "synthetic (seed 42)").
    pub source: String,
    /// Set when the workload's dataset was missing and synthetic data stands in.
    pub fallback_reason: Option<String>,
    pub metric: Metric,
    pub dim: usize,
    pub doc_ids: DocIds,
    /// Row-major, `len() * dim` values.
    pub vectors: Vec<f32>,
    pub texts: Vec<Arc<str>>,
    pub attribute_defs: Vec<AttributeDef>,
    /// Per record, one value per attribute in `attribute_defs` order.
    pub attributes: Vec<Vec<AttrValue>>,
    pub queries: Queries,
    /// What the judgments are, when the dataset says (`"pseudo"`: not human judgments).
    pub judgments: Option<String>,
    /// Links between records, for the `expand` op (`dataset.links`).
    pub links: Option<links::Links>,
    /// SHA-256 over everything an engine or the ground truth sees.
    pub fingerprint: String,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.doc_ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.doc_ids.is_empty()
    }
    pub fn vector(&self, i: usize) -> &[f32] {
        &self.vectors[i * self.dim..(i + 1) * self.dim]
    }
    pub fn query_vector(&self, i: usize) -> &[f32] {
        &self.queries.vectors[i * self.dim..(i + 1) * self.dim]
    }
    pub fn has_query_vectors(&self) -> bool {
        !self.queries.vectors.is_empty()
    }
    pub fn has_text(&self) -> bool {
        !self.queries.texts.is_empty() && self.texts.iter().any(|t| !t.is_empty())
    }
    pub fn record(&self, i: usize) -> Record {
        Record {
            id: i as u64,
            vector: Arc::from(self.vector(i)),
            text: self.texts.get(i).cloned().unwrap_or_else(|| Arc::from("")),
            attributes: self.attributes[i].clone(),
        }
    }
    pub fn schema(&self, collection: &str) -> Schema {
        Schema {
            collection: collection.to_string(),
            dim: self.dim,
            metric: self.metric,
            attributes: self.attribute_defs.clone(),
            links: self.links.is_some(),
        }
    }
    pub fn judged(&self) -> bool {
        self.queries.judgments.is_some()
    }

    /// The first `n` documents (all of them when `n >= len()`), with the same queries,
    /// for a run at one of `dataset.sizes`. Judgments keep only the documents kept, as
    /// `max_docs` does; the fingerprint names the prefix, so its ground truth is its own.
    pub fn prefix(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        let mut doc_ids = self.doc_ids.clone();
        doc_ids.truncate(n);
        let judgments =
            self.queries.judgments.as_ref().map(|j| {
                j.iter().map(|q| q.iter().copied().filter(|(doc, _)| (*doc as usize) < n).collect()).collect()
            });
        Dataset {
            name: self.name.clone(),
            source: self.source.clone(),
            fallback_reason: self.fallback_reason.clone(),
            metric: self.metric,
            dim: self.dim,
            doc_ids,
            vectors: self.vectors[..n * self.dim].to_vec(),
            texts: self.texts[..n.min(self.texts.len())].to_vec(),
            attribute_defs: self.attribute_defs.clone(),
            attributes: self.attributes[..n].to_vec(),
            queries: Queries {
                ids: self.queries.ids.clone(),
                vectors: self.queries.vectors.clone(),
                texts: self.queries.texts.clone(),
                judgments,
            },
            judgments: self.judgments.clone(),
            links: self.links.as_ref().map(|l| l.prefix(n)),
            fingerprint: if n == self.len() {
                self.fingerprint.clone()
            } else {
                hex(&Sha256::digest(format!("{} prefix {n}", self.fingerprint)))
            },
        }
    }
}

/// Documents' own ids: named (a BEIR corpus's), or numbered 0..n (generated data and
/// vector files, where a string per record would cost more memory than it says: 56 bytes
/// a record, half a gigabyte at 10 million).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocIds {
    Numbered(usize),
    Named(Vec<String>),
}

impl DocIds {
    pub fn len(&self) -> usize {
        match self {
            DocIds::Numbered(n) => *n,
            DocIds::Named(ids) => ids.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The id of document `i` (`i < len()`).
    pub fn get(&self, i: usize) -> std::borrow::Cow<'_, str> {
        match self {
            DocIds::Numbered(_) => i.to_string().into(),
            DocIds::Named(ids) => ids[i].as_str().into(),
        }
    }

    pub fn truncate(&mut self, max: usize) {
        match self {
            DocIds::Numbered(n) => *n = (*n).min(max),
            DocIds::Named(ids) => ids.truncate(max),
        }
    }
}

/// The raw material a source provides, before attributes are attached.
pub struct RawDataset {
    pub name: String,
    pub source: String,
    pub metric: Metric,
    pub dim: usize,
    pub doc_ids: DocIds,
    pub vectors: Vec<f32>,
    pub texts: Vec<Arc<str>>,
    /// Each document's `metadata` object (BEIR), for attributes read from the dataset;
    /// empty when the source has none.
    pub metadata: Vec<serde_json::Map<String, serde_json::Value>>,
    /// What the judgments are, when the dataset says (`"pseudo"`: not human judgments).
    pub judgments: Option<String>,
    pub queries: Queries,
}

/// Build the dataset a plan asks for. Falls back to synthetic data only when the plan
/// says so, and records why.
pub fn build(plan: &DatasetPlan, attributes: &[AttributePlan], seed: u64) -> Result<Dataset> {
    let (raw, fallback_reason) = match plan.source {
        DatasetSource::Synthetic => (synthetic::generate(&plan.synthetic, seed), None),
        DatasetSource::Beir | DatasetSource::Vectors => {
            let missing = missing_files(plan);
            match (missing, plan.fallback) {
                (Some(m), Fallback::Synthetic) => {
                    let reason = format!("{m} is missing, so synthetic data stands in (see [dataset.synthetic])");
                    (synthetic::generate(&plan.synthetic, seed), Some(reason))
                }
                (Some(m), Fallback::Error) => {
                    let what_to_do = plan
                        .missing_hint
                        .clone()
                        .unwrap_or_else(|| "fetch the dataset or set dataset.fallback = \"synthetic\"".to_string());
                    return Err(Error::Dataset {
                        path: plan.path.clone().unwrap_or_default(),
                        message: format!("{m} is missing; {what_to_do}"),
                    });
                }
                (None, _) if plan.source == DatasetSource::Beir => (beir::load(plan)?, None),
                (None, _) => (vecfile::load_vectors_dataset(plan)?, None),
            }
        }
    };
    attach(raw, plan, attributes, seed, fallback_reason)
}

fn missing_files(plan: &DatasetPlan) -> Option<String> {
    let mut needed: Vec<&Path> = Vec::new();
    if let Some(p) = &plan.path {
        needed.push(p);
    }
    for p in [&plan.corpus_vectors, &plan.query_vectors, &plan.qrels, &plan.base_vectors].into_iter().flatten() {
        needed.push(p);
    }
    if let Some(LinksPlan::File(p)) = &plan.links {
        needed.push(p);
    }
    if plan.source == DatasetSource::Beir {
        if let Some(p) = &plan.path {
            if !p.join("corpus.jsonl").exists() {
                return Some(format!("{}", p.join("corpus.jsonl").display()));
            }
        }
    }
    needed.into_iter().find(|p| !p.exists()).map(|p| p.display().to_string())
}

fn attach(
    raw: RawDataset,
    plan: &DatasetPlan,
    attributes: &[AttributePlan],
    seed: u64,
    fallback_reason: Option<String>,
) -> Result<Dataset> {
    let mut raw = raw;
    if let Some(max) = plan.max_docs {
        truncate_docs(&mut raw, max);
    }
    if let Some(max) = plan.max_queries {
        truncate_queries(&mut raw.queries, max, raw.dim);
    }
    if let Some(n) = plan.query_sample {
        sample_queries(&mut raw.queries, n, raw.dim, seed);
    }
    let n = raw.doc_ids.len();
    let mut per_record: Vec<Vec<AttrValue>> = vec![Vec::with_capacity(attributes.len()); n];
    for a in attributes {
        // Each attribute has its own stream, so adding an attribute leaves the others unchanged.
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ name_hash(&a.def.name));
        match &a.gen {
            AttributeGen::Keyword { values, weights } => {
                let dist = WeightedIndex::new(weights).expect("weights validated positive");
                for rec in per_record.iter_mut() {
                    rec.push(AttrValue::Keyword(values[dist.sample(&mut rng)].clone()));
                }
            }
            AttributeGen::Integer { min, max } => {
                for rec in per_record.iter_mut() {
                    rec.push(AttrValue::Integer(rng.gen_range(*min..=*max)));
                }
            }
            AttributeGen::Data { field } => {
                let values = data_attribute(&raw, a, field)
                    .map_err(|message| Error::Dataset { path: plan.path.clone().unwrap_or_default(), message })?;
                for (rec, v) in per_record.iter_mut().zip(values) {
                    rec.push(v);
                }
            }
        }
    }
    let attribute_defs: Vec<AttributeDef> = attributes.iter().map(|a| a.def.clone()).collect();
    let fingerprint = fingerprint(&raw, &attribute_defs, &per_record);
    let links = match &plan.links {
        None => None,
        Some(LinksPlan::Generated { degree }) => Some(links::Links::generate(n, *degree, seed)),
        // Data standing in for a missing corpus cannot have that corpus's links.
        Some(LinksPlan::File(_)) if fallback_reason.is_some() => Some(links::Links::generate(n, 3, seed)),
        Some(LinksPlan::File(path)) => {
            let index: HashMap<String, u64> = (0..n).map(|i| (raw.doc_ids.get(i).into_owned(), i as u64)).collect();
            Some(links::Links::read(path, &index, n, plan.max_docs.is_some())?)
        }
    };
    Ok(Dataset {
        name: raw.name,
        source: raw.source,
        fallback_reason,
        metric: raw.metric,
        dim: raw.dim,
        doc_ids: raw.doc_ids,
        vectors: raw.vectors,
        texts: raw.texts,
        attribute_defs,
        attributes: per_record,
        queries: raw.queries,
        judgments: raw.judgments,
        links,
        fingerprint,
    })
}

/// Attribute `a` of every document, read from its `metadata.<field>`.
fn data_attribute(raw: &RawDataset, a: &AttributePlan, field: &str) -> std::result::Result<Vec<AttrValue>, String> {
    let name = &a.def.name;
    let n = raw.doc_ids.len();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let v = raw.metadata.get(i).and_then(|m| m.get(field));
        let value = match (a.def.kind, v) {
            (crate::driver::AttrKind::Keyword, Some(serde_json::Value::String(s))) => {
                Some(AttrValue::Keyword(s.clone()))
            }
            (crate::driver::AttrKind::Integer, Some(serde_json::Value::Number(x))) => {
                x.as_i64().map(AttrValue::Integer)
            }
            _ => None,
        };
        let Some(value) = value else {
            let found = v.map_or_else(|| "missing".to_string(), |v| format!("{v}"));
            return Err(format!(
                "document {} (line {}): metadata {field:?} is {found}, but attribute {name:?} ({}) reads it as {}",
                raw.doc_ids.get(i),
                i + 1,
                a.origin,
                format!("{:?}", a.def.kind).to_lowercase()
            ));
        };
        out.push(value);
    }
    Ok(out)
}

/// Keep `n` of the queries, drawn with `seed`, in their order.
fn sample_queries(q: &mut Queries, n: usize, dim: usize, seed: u64) {
    if q.ids.len() <= n {
        return;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ name_hash("query_sample"));
    let mut keep = rand::seq::index::sample(&mut rng, q.ids.len(), n).into_vec();
    keep.sort_unstable();
    q.ids = keep.iter().map(|&i| std::mem::take(&mut q.ids[i])).collect();
    if !q.vectors.is_empty() {
        q.vectors = keep.iter().flat_map(|&i| q.vectors[i * dim..(i + 1) * dim].to_vec()).collect();
    }
    if !q.texts.is_empty() {
        q.texts = keep.iter().map(|&i| std::mem::take(&mut q.texts[i])).collect();
    }
    if let Some(j) = &mut q.judgments {
        *j = keep.iter().map(|&i| std::mem::take(&mut j[i])).collect();
    }
}

fn truncate_docs(raw: &mut RawDataset, max: usize) {
    if raw.doc_ids.len() <= max {
        return;
    }
    raw.doc_ids.truncate(max);
    raw.vectors.truncate(max * raw.dim);
    raw.texts.truncate(max);
    raw.metadata.truncate(max);
    if let Some(j) = &mut raw.queries.judgments {
        for q in j.iter_mut() {
            q.retain(|(doc, _)| (*doc as usize) < max);
        }
    }
}

fn truncate_queries(q: &mut Queries, max: usize, dim: usize) {
    if q.ids.len() <= max {
        return;
    }
    q.ids.truncate(max);
    if !q.vectors.is_empty() {
        q.vectors.truncate(max * dim);
    }
    q.texts.truncate(max.min(q.texts.len()));
    if let Some(j) = &mut q.judgments {
        j.truncate(max);
    }
}

fn name_hash(name: &str) -> u64 {
    let d = Sha256::digest(name.as_bytes());
    u64::from_le_bytes(d[..8].try_into().expect("8 bytes"))
}

fn fingerprint(raw: &RawDataset, defs: &[AttributeDef], attrs: &[Vec<AttrValue>]) -> String {
    let mut h = Sha256::new();
    h.update(format!("{}|{}|{}|{}\n", raw.doc_ids.len(), raw.dim, raw.metric.as_str(), raw.queries.len()));
    for v in &raw.vectors {
        h.update(v.to_le_bytes());
    }
    for v in &raw.queries.vectors {
        h.update(v.to_le_bytes());
    }
    for t in &raw.texts {
        h.update(t.as_bytes());
        h.update([0]);
    }
    for d in defs {
        h.update(format!("{}:{:?}\n", d.name, d.kind));
    }
    for rec in attrs {
        for v in rec {
            h.update(v.to_string().as_bytes());
            h.update([0]);
        }
    }
    hex(&h.finalize()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SyntheticSpec;

    #[test]
    fn numbered_ids_are_positions_and_truncate_like_named_ones() {
        let mut n = DocIds::Numbered(5);
        let mut named = DocIds::Named(["a", "b", "c", "d", "e"].map(String::from).to_vec());
        assert_eq!((n.len(), n.get(3).as_ref()), (5, "3"));
        assert_eq!(named.get(3), "d");
        n.truncate(2);
        named.truncate(2);
        assert_eq!((n.len(), named.len()), (2, 2));
        n.truncate(9);
        assert_eq!(n, DocIds::Numbered(2), "truncating never adds documents");
        assert!(DocIds::Numbered(0).is_empty());
        // A synthetic dataset numbers its documents: no string per record.
        assert_eq!(build(&plan(), &[], 1).unwrap().doc_ids, DocIds::Numbered(2000));
    }

    #[test]
    fn a_prefix_is_the_first_documents_with_their_own_fingerprint() {
        let mut ds = build(&plan(), &[], 1).unwrap();
        ds.queries.judgments = Some(vec![vec![(3, 1), (1500, 2)]; ds.queries.len()]);
        let p = ds.prefix(1000);
        assert_eq!((p.len(), p.vectors.len(), p.texts.len(), p.attributes.len()), (1000, 8000, 1000, 1000));
        assert_eq!(p.vector(999), ds.vector(999));
        assert_eq!(p.queries.vectors, ds.queries.vectors, "the same queries at every size");
        assert_eq!(p.queries.judgments.as_ref().unwrap()[0], vec![(3, 1)], "judged documents past the prefix go");
        assert_ne!(p.fingerprint, ds.fingerprint, "a prefix's ground truth is cached apart");
        assert_eq!(ds.prefix(1000).fingerprint, p.fingerprint);
        assert_eq!(ds.prefix(5000).fingerprint, ds.fingerprint, "all of it is the dataset itself");
    }

    fn plan() -> DatasetPlan {
        DatasetPlan::synthetic(SyntheticSpec { docs: 2000, queries: 10, dim: 8, ..Default::default() })
    }

    #[test]
    fn attributes_follow_their_declared_selectivity() {
        let attrs = vec![
            AttributePlan {
                def: AttributeDef { name: "bucket".into(), kind: crate::driver::AttrKind::Integer },
                gen: AttributeGen::Integer { min: 0, max: 9 },
                origin: "w.toml:1".into(),
            },
            AttributePlan {
                def: AttributeDef { name: "lang".into(), kind: crate::driver::AttrKind::Keyword },
                gen: AttributeGen::Keyword { values: vec!["en".into(), "de".into()], weights: vec![9.0, 1.0] },
                origin: "w.toml:6".into(),
            },
        ];
        let ds = build(&plan(), &attrs, 1).unwrap();
        let low = ds.attributes.iter().filter(|a| matches!(a[0], AttrValue::Integer(x) if x < 1)).count();
        let de = ds.attributes.iter().filter(|a| a[1] == AttrValue::Keyword("de".into())).count();
        // 10% and 10% of 2000, within a generous binomial margin.
        assert!((140..260).contains(&low), "bucket < 1: {low}");
        assert!((140..260).contains(&de), "lang = de: {de}");
        let again = build(&plan(), &attrs, 1).unwrap();
        assert_eq!(ds.fingerprint, again.fingerprint, "same seed, same data");
        let other = build(&plan(), &attrs, 2).unwrap();
        assert_ne!(ds.fingerprint, other.fingerprint);
    }

    /// A BEIR folder with `pos` and `lemmas` in each document's metadata.
    fn beir_with_metadata(dir: &Path, second_pos: &str) -> DatasetPlan {
        std::fs::write(
            dir.join("corpus.jsonl"),
            format!(
                "{{\"_id\":\"a\",\"text\":\"x\",\"metadata\":{{\"pos\":\"n\",\"lemmas\":2}}}}\n\
                 {{\"_id\":\"b\",\"text\":\"y\",\"metadata\":{{\"pos\":{second_pos},\"lemmas\":1}}}}\n"
            ),
        )
        .unwrap();
        let queries: String = (0..20).map(|i| format!("{{\"_id\":\"q{i}\",\"text\":\"x\"}}\n")).collect();
        std::fs::write(dir.join("queries.jsonl"), queries).unwrap();
        std::fs::write(dir.join("dataset.json"), "{\"judgments\": \"pseudo\"}").unwrap();
        let mut p = plan();
        p.source = DatasetSource::Beir;
        p.path = Some(dir.to_path_buf());
        p
    }

    fn read(name: &str, kind: crate::driver::AttrKind, field: &str) -> AttributePlan {
        AttributePlan {
            def: AttributeDef { name: name.into(), kind },
            gen: AttributeGen::Data { field: field.into() },
            origin: "w.toml:9".into(),
        }
    }

    #[test]
    fn attributes_read_from_the_dataset_take_each_documents_own_value() {
        use crate::driver::AttrKind;
        let dir = tempfile::tempdir().unwrap();
        let p = beir_with_metadata(dir.path(), "\"v\"");
        let attrs = [read("pos", AttrKind::Keyword, "pos"), read("lemmas", AttrKind::Integer, "lemmas")];
        let ds = build(&p, &attrs, 1).unwrap();
        assert_eq!(
            ds.attributes,
            vec![
                vec![AttrValue::Keyword("n".into()), AttrValue::Integer(2)],
                vec![AttrValue::Keyword("v".into()), AttrValue::Integer(1)]
            ]
        );
        assert_eq!(build(&p, &attrs, 99).unwrap().attributes, ds.attributes, "the seed does not touch them");
        assert_eq!(ds.judgments.as_deref(), Some("pseudo"), "dataset.json says what the judgments are");
        // A value of the wrong type names the document, the key and the declaration.
        let p = beir_with_metadata(dir.path(), "7");
        let Err(Error::Dataset { message, .. }) = build(&p, &attrs, 1) else { panic!("a number is not a keyword") };
        assert!(
            message.contains("document b (line 2): metadata \"pos\" is 7") && message.contains("w.toml:9"),
            "{message}"
        );
    }

    #[test]
    fn a_query_sample_is_seeded_and_keeps_file_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = beir_with_metadata(dir.path(), "\"v\"");
        p.query_sample = Some(5);
        let ids = |seed| build(&p, &[], seed).unwrap().queries.ids;
        let a = ids(1);
        assert_eq!(a.len(), 5);
        assert_eq!(a, ids(1), "same seed, same sample");
        assert_ne!(a, ids(2), "another seed, another sample");
        let mut sorted = a.clone();
        sorted.sort_by_key(|q| q[1..].parse::<u32>().unwrap());
        assert_eq!(a, sorted, "in file order");
    }

    #[test]
    fn missing_beir_falls_back_only_when_asked() {
        let mut p = plan();
        p.source = DatasetSource::Beir;
        p.path = Some("/nonexistent/scifact".into());
        assert!(matches!(build(&p, &[], 1), Err(Error::Dataset { .. })));
        p.fallback = Fallback::Synthetic;
        let ds = build(&p, &[], 1).unwrap();
        assert!(ds.fallback_reason.as_deref().unwrap().contains("/nonexistent/scifact"));
        assert_eq!(ds.len(), 2000);
    }
}
