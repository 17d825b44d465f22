//! BEIR collections: `corpus.jsonl` (`_id`, `title`, `text`), `queries.jsonl` (`_id`,
//! `text`), `qrels/*.tsv` (`query-id`, `corpus-id`, `score`, header line first), with
//! document and query embeddings from vector files whose rows follow the jsonl lines.
//!
//! When judgments are given, only judged queries are kept (as BEIR's evaluation does),
//! with their embedding rows.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use super::vecfile::read_matrix;
use super::{DocIds, Queries, RawDataset};
use crate::driver::Metric;
use crate::error::{Error, Result};
use crate::spec::DatasetPlan;

#[derive(Deserialize)]
struct CorpusLine {
    #[serde(rename = "_id")]
    id: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    metadata: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct QueryLine {
    #[serde(rename = "_id")]
    id: String,
    text: String,
}

fn bad(path: &Path, message: impl Into<String>) -> Error {
    Error::Dataset { path: path.to_path_buf(), message: message.into() }
}

fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| Error::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(&line).map_err(|e| bad(path, format!("line {}: {e}", i + 1)))?);
    }
    Ok(out)
}

/// Judgments: query id -> (corpus id, grade).
pub fn read_qrels(path: &Path) -> Result<HashMap<String, Vec<(String, u32)>>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut out: HashMap<String, Vec<(String, u32)>> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let cols: Vec<&str> = line.split('\t').collect();
        if i == 0 && cols.first().is_some_and(|c| c.contains("query")) {
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let [q, d, s] = cols[..] else {
            return Err(bad(path, format!("line {}: expected query-id<TAB>corpus-id<TAB>score", i + 1)));
        };
        let grade: i64 =
            s.trim().parse().map_err(|_| bad(path, format!("line {}: score {s:?} is not an integer", i + 1)))?;
        if grade > 0 {
            out.entry(q.to_string()).or_default().push((d.to_string(), grade as u32));
        }
    }
    Ok(out)
}

pub fn load(plan: &DatasetPlan) -> Result<RawDataset> {
    let dir = plan.path.as_deref().expect("validated: beir needs path");
    let corpus_path = dir.join("corpus.jsonl");
    let corpus: Vec<CorpusLine> = read_jsonl(&corpus_path)?;
    let queries_path = dir.join("queries.jsonl");
    let query_lines: Vec<QueryLine> = read_jsonl(&queries_path)?;

    let (dim, vectors) = match &plan.corpus_vectors {
        Some(p) => {
            let m = read_matrix(p)?;
            if m.rows != corpus.len() {
                return Err(bad(p, format!("{} rows, but corpus.jsonl has {} documents", m.rows, corpus.len())));
            }
            (m.cols, m.data)
        }
        None => (0, Vec::new()),
    };
    let query_matrix = match &plan.query_vectors {
        Some(p) => {
            let m = read_matrix(p)?;
            if m.rows != query_lines.len() {
                return Err(bad(p, format!("{} rows, but queries.jsonl has {} queries", m.rows, query_lines.len())));
            }
            if dim != 0 && m.cols != dim {
                return Err(bad(p, format!("{} dimensions, the corpus vectors have {dim}", m.cols)));
            }
            Some(m)
        }
        None => None,
    };

    let row_of: HashMap<&str, u64> = corpus.iter().enumerate().map(|(i, d)| (d.id.as_str(), i as u64)).collect();
    let qrels = match &plan.qrels {
        Some(p) => Some(read_qrels(p)?),
        None => None,
    };

    let mut queries = Queries::default();
    let mut judgments = Vec::new();
    for (row, q) in query_lines.iter().enumerate() {
        let judged: Option<Vec<(u64, u32)>> = qrels.as_ref().map(|qr| {
            qr.get(&q.id)
                .map(|docs| docs.iter().filter_map(|(d, g)| row_of.get(d.as_str()).map(|r| (*r, *g))).collect())
                .unwrap_or_default()
        });
        if let Some(j) = &judged {
            if j.is_empty() {
                continue;
            }
        }
        queries.ids.push(q.id.clone());
        queries.texts.push(q.text.clone());
        if let Some(m) = &query_matrix {
            queries.vectors.extend_from_slice(&m.data[row * m.cols..(row + 1) * m.cols]);
        }
        if let Some(j) = judged {
            judgments.push(j);
        }
    }
    if qrels.is_some() {
        if queries.ids.is_empty() {
            return Err(bad(
                plan.qrels.as_deref().unwrap_or(dir),
                "no query has a judgment for a document of the corpus",
            ));
        }
        queries.judgments = Some(judgments);
    }

    let name = plan
        .name
        .clone()
        .unwrap_or_else(|| dir.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "beir".into()));
    Ok(RawDataset {
        name,
        source: format!("beir folder {}", dir.display()),
        metric: plan.metric.unwrap_or(Metric::Cosine),
        dim,
        doc_ids: DocIds::Named(corpus.iter().map(|d| d.id.clone()).collect()),
        texts: corpus
            .iter()
            .map(|d| {
                let t = if d.title.is_empty() { d.text.clone() } else { format!("{} {}", d.title, d.text) };
                Arc::from(t)
            })
            .collect(),
        vectors,
        metadata: corpus.into_iter().map(|d| d.metadata).collect(),
        judgments: judgments_kind(dir)?,
        queries,
    })
}

/// What `dataset.json` beside the corpus says the judgments are (`"judgments": "pseudo"`
/// in a folder dbbench's WordNet builder wrote); `None` without the file or the key.
fn judgments_kind(dir: &Path) -> Result<Option<String>> {
    let path = dir.join("dataset.json");
    let Ok(text) = std::fs::read_to_string(&path) else { return Ok(None) };
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(&path, format!("not JSON: {e}")))?;
    Ok(v.get("judgments").and_then(|j| j.as_str()).map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{DatasetSource, Fallback, SyntheticSpec};

    #[test]
    fn loads_a_small_collection_and_keeps_judged_queries() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(
            p.join("corpus.jsonl"),
            "{\"_id\":\"d1\",\"title\":\"Cats\",\"text\":\"purr\"}\n{\"_id\":\"d2\",\"text\":\"dogs bark\"}\n",
        )
        .unwrap();
        std::fs::write(
            p.join("queries.jsonl"),
            "{\"_id\":\"q1\",\"text\":\"cat\"}\n{\"_id\":\"q2\",\"text\":\"unjudged\"}\n",
        )
        .unwrap();
        std::fs::create_dir(p.join("qrels")).unwrap();
        std::fs::write(p.join("qrels/test.tsv"), "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\tmissing\t1\n").unwrap();
        let plan = DatasetPlan {
            source: DatasetSource::Beir,
            name: None,
            path: Some(p.to_path_buf()),
            corpus_vectors: None,
            query_vectors: None,
            qrels: Some(p.join("qrels/test.tsv")),
            base_vectors: None,
            metric: None,
            max_docs: None,
            sizes: Vec::new(),
            stream: None,
            links: None,
            max_queries: None,
            query_sample: None,
            missing_hint: None,
            fallback: Fallback::Error,
            synthetic: SyntheticSpec::default(),
        };
        let raw = load(&plan).unwrap();
        assert_eq!(raw.doc_ids, DocIds::Named(vec!["d1".into(), "d2".into()]));
        assert_eq!(&*raw.texts[0], "Cats purr");
        assert_eq!(raw.queries.ids, vec!["q1"]);
        assert_eq!(raw.queries.judgments, Some(vec![vec![(0, 1)]]));
    }
}
