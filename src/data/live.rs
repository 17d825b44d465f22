//! Exact kNN truth over the records live at one moment of a run that writes: the loaded
//! records (the first `loaded` of the dataset) minus those deleted by then, plus the
//! held-out records (the rest) inserted by then.
//!
//! Incremental, not a fresh scan per search: for each query the candidates are the base's
//! exact top `depth` (from the truth cache, `depth` > k so that deletes have a margin) and
//! every held-out record the filter admits, sorted once by distance. The truth at a moment
//! is the first k live candidates. That is exact as long as the k-th of them is no farther
//! than the farthest base candidate (a base record past it cannot be nearer); when deletes
//! have eaten the margin, that query is answered by brute force over the live records.

use std::sync::Arc;

use rayon::prelude::*;

use super::Dataset;
use crate::driver::{Filter, Schema};

/// One query's candidates.
#[derive(Debug, Clone)]
struct Candidates {
    /// (distance, id), nearest first, ties by id.
    list: Vec<(f32, u64)>,
    /// Distance of the farthest base candidate; base records not listed are at least this far.
    base_bound: f32,
    /// Every base record the filter admits is listed.
    base_complete: bool,
}

/// The truth of one (k, filter) over a changing set of records.
pub struct LiveTruth {
    ds: Arc<Dataset>,
    schema: Schema,
    loaded: usize,
    k: usize,
    filter: Option<Filter>,
    per_query: Vec<Candidates>,
}

impl LiveTruth {
    /// `base_top[q]`: the exact nearest base records (ids below `loaded`) of query q, as
    /// many as `depth`, nearest first (fewer: all the filter admits).
    pub fn build(
        ds: Arc<Dataset>,
        loaded: usize,
        k: usize,
        filter: Option<Filter>,
        base_top: &[Vec<u64>],
        depth: usize,
    ) -> Self {
        let schema = ds.schema("truth");
        let admitted = |i: usize| filter.as_ref().is_none_or(|f| f.matches(&schema, &ds.attributes[i]));
        let held_out: Vec<u64> = (loaded..ds.len()).filter(|&i| admitted(i)).map(|i| i as u64).collect();
        let per_query = (0..ds.queries.len())
            .into_par_iter()
            .map(|q| {
                let qv = ds.query_vector(q);
                let dist = |id: u64| ds.metric.distance(qv, ds.vector(id as usize));
                let base = base_top.get(q).map(Vec::as_slice).unwrap_or_default();
                let mut list: Vec<(f32, u64)> = base.iter().chain(&held_out).map(|&id| (dist(id), id)).collect();
                list.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                let base_bound = base.iter().map(|&id| dist(id)).fold(f32::NEG_INFINITY, f32::max);
                Candidates { list, base_bound, base_complete: base.len() < depth }
            })
            .collect();
        LiveTruth { ds, schema, loaded, k, filter, per_query }
    }

    pub fn k(&self) -> usize {
        self.k
    }

    /// The exact top k of `query` among the records for which `live(id)` holds (ids below
    /// `loaded` are base records, the rest held-out ones), nearest first.
    pub fn at(&self, query: usize, live: &dyn Fn(u64) -> bool) -> Vec<u64> {
        self.answer(query, live).0
    }

    /// `at`, and whether the candidates ran out and the live records were scanned.
    fn answer(&self, query: usize, live: &dyn Fn(u64) -> bool) -> (Vec<u64>, bool) {
        let c = &self.per_query[query];
        let mut out = Vec::with_capacity(self.k);
        let mut kth = f32::NEG_INFINITY;
        for &(d, id) in &c.list {
            if live(id) {
                out.push(id);
                kth = d;
                if out.len() == self.k {
                    break;
                }
            }
        }
        let exact = if out.len() == self.k { c.base_complete || kth <= c.base_bound } else { c.base_complete };
        if exact {
            (out, false)
        } else {
            (self.brute(query, live), true)
        }
    }

    /// The top k by a scan of every live record the filter admits.
    fn brute(&self, query: usize, live: &dyn Fn(u64) -> bool) -> Vec<u64> {
        let ds = &self.ds;
        let qv = ds.query_vector(query);
        let mut all: Vec<(f32, u64)> = (0..ds.len())
            .filter(|&i| live(i as u64))
            .filter(|&i| self.filter.as_ref().is_none_or(|f| f.matches(&self.schema, &ds.attributes[i])))
            .map(|i| (ds.metric.distance(qv, ds.vector(i)), i as u64))
            .collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        all.into_iter().take(self.k).map(|(_, id)| id).collect()
    }

    /// Records of the base (the load).
    pub fn loaded(&self) -> usize {
        self.loaded
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::data::{build, truth};
    use crate::driver::{AttrKind, AttributeDef};
    use crate::spec::{AttributeGen, AttributePlan, DatasetPlan, SyntheticSpec};

    fn dataset() -> Arc<Dataset> {
        let attrs = vec![AttributePlan {
            def: AttributeDef { name: "bucket".into(), kind: AttrKind::Integer },
            gen: AttributeGen::Integer { min: 0, max: 3 },
            origin: "w.toml:1".into(),
        }];
        let plan = DatasetPlan::synthetic(SyntheticSpec { docs: 1500, queries: 25, dim: 16, ..Default::default() });
        Arc::new(build(&plan, &attrs, 7).unwrap())
    }

    /// The truth by brute force over exactly the live set, the way the test states it.
    fn brute(ds: &Dataset, q: usize, k: usize, filter: Option<&Filter>, live: &HashSet<u64>) -> Vec<u64> {
        let schema = ds.schema("t");
        let mut all: Vec<(f32, u64)> = live
            .iter()
            .filter(|&&id| filter.is_none_or(|f| f.matches(&schema, &ds.attributes[id as usize])))
            .map(|&id| (ds.metric.distance(ds.query_vector(q), ds.vector(id as usize)), id))
            .collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        all.into_iter().take(k).map(|(_, id)| id).collect()
    }

    #[test]
    fn the_live_truth_is_the_brute_force_truth_after_inserts_and_deletes() {
        let ds = dataset();
        let loaded = 1200;
        let k = 10;
        let filter = Filter::Range { field: "bucket".into(), gte: Some(1), lt: None };
        for filter in [None, Some(filter)] {
            let base = ds.prefix(loaded);
            let depth = 2 * k;
            let top = truth::exact_knn(&base, depth, filter.as_ref());
            let live_truth = LiveTruth::build(ds.clone(), loaded, k, filter.clone(), &top, depth);
            let mut live: HashSet<u64> = (0..loaded as u64).collect();
            let mut rng = ChaCha8Rng::seed_from_u64(3);
            let mut held: Vec<u64> = (loaded as u64..ds.len() as u64).collect();
            let (mut scanned, mut answered) = (0, 0);
            // Rounds of inserts and deletes; deletes favour the records nearest query 0, so
            // its margin runs out and the brute-force path is exercised too.
            for round in 0..12 {
                for _ in 0..25 {
                    if let Some(id) = held.pop() {
                        live.insert(id);
                    }
                }
                let nearest = brute(&ds, 0, 3, filter.as_ref(), &live);
                for id in nearest {
                    live.remove(&id);
                }
                for _ in 0..10 {
                    let v: Vec<u64> = live.iter().copied().collect();
                    live.remove(&v[rng.gen_range(0..v.len())]);
                }
                let is_live = |id: u64| live.contains(&id);
                for q in 0..ds.queries.len() {
                    let want = brute(&ds, q, k, filter.as_ref(), &live);
                    let (got, scan) = live_truth.answer(q, &is_live);
                    assert_eq!(got, want, "round {round}, query {q}, filter {filter:?}");
                    scanned += scan as usize;
                    answered += 1;
                }
            }
            assert!(scanned > 0, "query 0 lost more than its margin of base neighbours: the scan must have answered");
            assert!(scanned * 4 < answered, "the candidates answer most queries ({scanned} of {answered} scanned)");
        }
    }
}
