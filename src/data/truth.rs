//! Exact ground truth for kNN: brute force over every record (that the filter admits),
//! one query per rayon task, cached on disk keyed by the dataset's fingerprint, the
//! metric, k and the filter.
//!
//! Ties are broken by id, so the truth is deterministic; an engine that returns a tied
//! neighbour in another order loses nothing in recall as long as the tie is within k.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::Dataset;
use crate::driver::{Filter, Schema};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::spec::hex;

/// Exact top-`k` ids for every query of the dataset, nearest first.
pub fn exact_knn(ds: &Dataset, k: usize, filter: Option<&Filter>) -> Vec<Vec<u64>> {
    let schema = ds.schema("truth");
    let admitted: Vec<u32> = (0..ds.len())
        .filter(|i| filter.is_none_or(|f| f.matches(&schema, &ds.attributes[*i])))
        .map(|i| i as u32)
        .collect();
    (0..ds.queries.len()).into_par_iter().map(|q| top_k(ds, ds.query_vector(q), &admitted, k)).collect()
}

fn top_k(ds: &Dataset, query: &[f32], admitted: &[u32], k: usize) -> Vec<u64> {
    let mut scored: Vec<(f32, u32)> =
        admitted.iter().map(|&i| (ds.metric.distance(query, ds.vector(i as usize)), i)).collect();
    let by_distance = |a: &(f32, u32), b: &(f32, u32)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
    if scored.len() > k {
        scored.select_nth_unstable_by(k, by_distance);
        scored.truncate(k);
    }
    scored.sort_unstable_by(by_distance);
    scored.into_iter().map(|(_, i)| i as u64).collect()
}

/// Ground truth cached in a folder, one file per (dataset, metric, k, filter).
pub struct TruthCache {
    dir: PathBuf,
}

impl TruthCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        TruthCache { dir: dir.into() }
    }

    pub fn key(ds: &Dataset, k: usize, filter: Option<&Filter>) -> String {
        let mut h = Sha256::new();
        h.update(format!(
            "v1|{}|{}|{}|{}",
            ds.fingerprint,
            ds.metric.as_str(),
            k,
            filter.map(|f| f.to_string()).unwrap_or_default()
        ));
        hex(&h.finalize()[..16])
    }

    /// The truth from the cache, computing and storing it when absent or unreadable.
    /// Returns whether it was computed (false: read from the cache).
    pub fn get_or_compute(&self, ds: &Dataset, k: usize, filter: Option<&Filter>) -> Result<(Vec<Vec<u64>>, bool)> {
        let path = self.dir.join(format!("knn-{}.bin", Self::key(ds, k, filter)));
        if let Some(truth) = read(&path, ds.queries.len()) {
            return Ok((truth, false));
        }
        let truth = exact_knn(ds, k, filter);
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        write_atomic(&path, &encode(&truth))?;
        Ok((truth, true))
    }
}

fn encode(truth: &[Vec<u64>]) -> Vec<u8> {
    let mut out = b"DBBT1".to_vec();
    out.extend((truth.len() as u32).to_le_bytes());
    for row in truth {
        out.extend((row.len() as u32).to_le_bytes());
        for id in row {
            out.extend(id.to_le_bytes());
        }
    }
    out
}

fn read(path: &Path, queries: usize) -> Option<Vec<Vec<u64>>> {
    let bytes = std::fs::read(path).ok()?;
    let mut rest = bytes.strip_prefix(b"DBBT1")?;
    let mut take = |n: usize| -> Option<&[u8]> {
        let (a, b) = rest.split_at_checked(n)?;
        rest = b;
        Some(a)
    };
    let n = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
    if n != queries {
        return None;
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let len = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
        let ids = take(len * 8)?;
        out.push(ids.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect());
    }
    Some(out)
}

/// Check a filter against the schema's attributes without a dataset (used by drivers'
/// tests to pin their translation against the reference semantics).
pub fn admitted_ids(schema: &Schema, attrs: &[Vec<crate::driver::AttrValue>], filter: &Filter) -> Vec<u64> {
    attrs.iter().enumerate().filter(|(_, a)| filter.matches(schema, a)).map(|(i, _)| i as u64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{build, synthetic};
    use crate::driver::{AttrKind, AttributeDef};
    use crate::spec::{AttributeGen, AttributePlan, DatasetPlan, SyntheticSpec};

    fn dataset() -> Dataset {
        let plan = DatasetPlan::synthetic(SyntheticSpec { docs: 500, queries: 7, dim: 12, ..Default::default() });
        let attrs = vec![AttributePlan {
            def: AttributeDef { name: "bucket".into(), kind: AttrKind::Integer },
            gen: AttributeGen::Integer { min: 0, max: 9 },
        }];
        build(&plan, &attrs, 3).unwrap()
    }

    #[test]
    fn truth_is_sorted_filtered_and_matches_a_naive_scan() {
        let ds = dataset();
        let filter = Filter::Range { field: "bucket".into(), gte: None, lt: Some(3) };
        let truth = exact_knn(&ds, 10, Some(&filter));
        let schema = ds.schema("t");
        for (q, ids) in truth.iter().enumerate() {
            assert_eq!(ids.len(), 10);
            let mut naive: Vec<(f32, u64)> = (0..ds.len())
                .filter(|i| filter.matches(&schema, &ds.attributes[*i]))
                .map(|i| (ds.metric.distance(ds.query_vector(q), ds.vector(i)), i as u64))
                .collect();
            naive.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let expected: Vec<u64> = naive.iter().take(10).map(|x| x.1).collect();
            assert_eq!(ids, &expected);
        }
        let _ = synthetic::word(0);
    }

    #[test]
    fn cache_round_trips_and_is_keyed_by_filter() {
        let ds = dataset();
        let dir = tempfile::tempdir().unwrap();
        let cache = TruthCache::new(dir.path());
        let (a, computed) = cache.get_or_compute(&ds, 5, None).unwrap();
        assert!(computed);
        let (b, computed) = cache.get_or_compute(&ds, 5, None).unwrap();
        assert!(!computed);
        assert_eq!(a, b);
        let f = Filter::Eq { field: "bucket".into(), value: crate::driver::AttrValue::Integer(1) };
        assert_ne!(TruthCache::key(&ds, 5, None), TruthCache::key(&ds, 5, Some(&f)));
    }
}
