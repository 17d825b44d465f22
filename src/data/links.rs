//! Links between records, for the `expand` op (GraphRAG): the graph itself, the
//! reference expansion every engine is held to, and the two ways a dataset gets links
//! (generated from the seed, or read from a file of id pairs).
//!
//! Links are undirected: a pair `a - b` lets an expansion step from either end. This
//! module must never depend on an engine: it is the ground truth.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufRead;
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::driver::Link;
use crate::error::{Error, Result};

/// The deepest expansion a workload may ask for. Past three hops a link graph of any real
/// density reaches most of the corpus, and the answer says more about `max_results` than
/// about the engine.
pub const MAX_HOPS: usize = 3;

/// An undirected graph over record ids `0..n`, as adjacency lists (compressed: one offsets
/// array and one neighbours array, 12 bytes a link end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    offsets: Vec<u32>,
    neighbours: Vec<u32>,
    /// Each link once, `a < b`, sorted.
    pairs: Vec<Link>,
    /// Where they came from, in words.
    pub source: String,
}

impl Links {
    /// The graph over `n` records from pairs (either order; self-links and repeats are
    /// dropped). Pairs naming a record `>= n` are dropped too: a prefix of the data keeps
    /// the links among the records it keeps.
    pub fn from_pairs(n: usize, pairs: impl IntoIterator<Item = (u64, u64)>, source: impl Into<String>) -> Self {
        let mut pairs: Vec<Link> = pairs
            .into_iter()
            .filter(|(a, b)| a != b && (*a as usize) < n && (*b as usize) < n)
            .map(|(a, b)| Link { a: a.min(b), b: a.max(b) })
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        let mut degree = vec![0u32; n + 1];
        for l in &pairs {
            degree[l.a as usize] += 1;
            degree[l.b as usize] += 1;
        }
        let mut offsets = Vec::with_capacity(n + 1);
        let mut acc = 0u32;
        for d in &degree[..n] {
            offsets.push(acc);
            acc += d;
        }
        offsets.push(acc);
        let mut fill = offsets.clone();
        let mut neighbours = vec![0u32; acc as usize];
        for l in &pairs {
            for (from, to) in [(l.a, l.b), (l.b, l.a)] {
                neighbours[fill[from as usize] as usize] = to as u32;
                fill[from as usize] += 1;
            }
        }
        for i in 0..n {
            neighbours[offsets[i] as usize..offsets[i + 1] as usize].sort_unstable();
        }
        Links { offsets, neighbours, pairs, source: source.into() }
    }

    /// Records the graph spans.
    pub fn nodes(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Every link once, `a < b`, sorted: what an engine loads.
    pub fn pairs(&self) -> &[Link] {
        &self.pairs
    }

    pub fn neighbours(&self, id: u64) -> &[u32] {
        let i = id as usize;
        if i + 1 >= self.offsets.len() {
            return &[];
        }
        &self.neighbours[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    /// The links among the first `n` records.
    pub fn prefix(&self, n: usize) -> Links {
        if n >= self.nodes() {
            return self.clone();
        }
        Links::from_pairs(n, self.pairs.iter().map(|l| (l.a, l.b)), self.source.clone())
    }

    /// Mean and largest number of links a record has.
    pub fn degree_stats(&self) -> (f64, usize) {
        let n = self.nodes().max(1);
        let max = (0..self.nodes()).map(|i| self.neighbours(i as u64).len()).max().unwrap_or(0);
        (2.0 * self.pairs.len() as f64 / n as f64, max)
    }

    /// Generated links over `n` records: record i links to `d_i` others, `d_i` drawn
    /// uniformly from `1..=2*degree-1` (mean `degree`); each target is, with equal chance,
    /// any record (uniform) or one drawn by a Zipf law over a seeded ranking (exponent 1),
    /// so a few records are hubs, as in citation and knowledge graphs. Undirected, without
    /// repeats: the mean number of links a record has is about `2 * degree`.
    pub fn generate(n: usize, degree: usize, seed: u64) -> Links {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x11_4E_C5);
        if n < 2 || degree == 0 {
            return Links::from_pairs(n, [], format!("generated (none: {n} records)"));
        }
        // Hubs: a seeded permutation, ranked; rank r drawn with weight 1/(r+1).
        let mut hubs: Vec<u64> = (0..n as u64).collect();
        rand::seq::SliceRandom::shuffle(hubs.as_mut_slice(), &mut rng);
        let harmonic: Vec<f64> = (1..=n)
            .scan(0.0, |acc, r| {
                *acc += 1.0 / r as f64;
                Some(*acc)
            })
            .collect();
        let total = *harmonic.last().unwrap_or(&1.0);
        let mut pairs = Vec::with_capacity(n * degree);
        for i in 0..n as u64 {
            let d = rng.gen_range(1..=2 * degree - 1);
            for _ in 0..d {
                let target = if rng.gen_bool(0.5) {
                    rng.gen_range(0..n as u64)
                } else {
                    let u = rng.gen::<f64>() * total;
                    hubs[harmonic.partition_point(|c| *c < u).min(n - 1)]
                };
                pairs.push((i, target));
            }
        }
        Links::from_pairs(
            n,
            pairs,
            format!("generated (seed {seed}, out-degree uniform 1..={}, half to Zipf hubs)", 2 * degree - 1),
        )
    }

    /// Links from a file: one pair a line, two document ids separated by a tab or spaces,
    /// and optionally a third column (the relation, as the WordNet builder writes it),
    /// which is kept in no way: every link is one kind. `#` starts a comment; a first line
    /// naming columns (`source-id target-id relation`, `source target`, `a b`) is skipped. Ids are
    /// the corpus's own (`index` maps them to record numbers); a pair naming an id the
    /// corpus does not have is an error naming the line, unless `max_docs` cut the corpus
    /// (then pairs past it are dropped, as `prefix` does).
    pub fn read(path: &Path, index: &HashMap<String, u64>, n: usize, cut: bool) -> Result<Links> {
        let bad =
            |line: usize, m: String| Error::Dataset { path: path.to_path_buf(), message: format!("line {line}: {m}") };
        let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut pairs = Vec::new();
        for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
            let line = line.map_err(|e| Error::io(path, e))?;
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (Some(a), Some(b), _, None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
                return Err(bad(i + 1, format!("expected two document ids (and a relation), found {line:?}")));
            };
            if i == 0 && matches!(a, "a" | "source" | "source-id" | "src") {
                continue;
            }
            match (index.get(a), index.get(b)) {
                (Some(&x), Some(&y)) => pairs.push((x, y)),
                _ if cut => {}
                (x, _) => {
                    let missing = if x.is_none() { a } else { b };
                    return Err(bad(i + 1, format!("document {missing:?} is not in the corpus")));
                }
            }
        }
        Ok(Links::from_pairs(n, pairs, format!("file {}", path.display())))
    }
}

/// The reference expansion (`Op::Expand`'s semantics): from `seeds` (best first), every
/// record within `hops` links, keyed by the least (hops, seed rank), ties by id, the first
/// `max_results`.
pub fn expand(links: &Links, seeds: &[u64], hops: usize, max_results: usize) -> Vec<u64> {
    // Breadth-first from each seed in rank order: the first (hop, rank) that reaches a
    // record is its least key, because hops dominate and, at equal hops, the lower rank
    // was walked first. A map keeps it small when the graph is large and the walk is not.
    let mut best: BTreeMap<u64, (usize, usize)> = BTreeMap::new();
    for (rank, &s) in seeds.iter().enumerate() {
        let mut frontier = vec![s];
        let mut seen_here = HashSet::from([s]);
        for hop in 0..=hops {
            let mut next = Vec::new();
            for &id in &frontier {
                let key = (hop, rank);
                best.entry(id).and_modify(|k| *k = (*k).min(key)).or_insert(key);
                if hop < hops {
                    for &nb in links.neighbours(id) {
                        if seen_here.insert(nb as u64) {
                            next.push(nb as u64);
                        }
                    }
                }
            }
            frontier = next;
        }
    }
    let mut all: Vec<(usize, usize, u64)> = best.into_iter().map(|(id, (h, r))| (h, r, id)).collect();
    all.sort_unstable();
    all.into_iter().take(max_results).map(|(_, _, id)| id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_graph() -> Links {
        // 0 - 1 - 2 - 3 - 4, and 5 - 1
        Links::from_pairs(6, [(0, 1), (2, 1), (2, 3), (3, 4), (5, 1), (1, 0), (3, 3)], "test")
    }

    #[test]
    fn pairs_are_undirected_once_and_without_self_links() {
        let g = path_graph();
        assert_eq!(g.pairs().len(), 5);
        assert_eq!(g.neighbours(1), &[0, 2, 5]);
        assert_eq!(g.neighbours(3), &[2, 4]);
        assert_eq!(g.neighbours(9), &[] as &[u32]);
        assert_eq!(g.degree_stats(), (10.0 / 6.0, 3));
    }

    #[test]
    fn expand_orders_by_hops_then_seed_rank_then_id() {
        let g = path_graph();
        // Seeds 4 (rank 0) and 0 (rank 1). Hop 0: 4, 0. Hop 1: 3 (from 4), 1 (from 0).
        // Hop 2: 2 (from 4, rank 0), then 5 (from 0 via 1, rank 1); 2 is also 2 hops from
        // 0 but rank 0 reached it first.
        assert_eq!(expand(&g, &[4, 0], 2, 100), vec![4, 0, 3, 1, 2, 5]);
        assert_eq!(expand(&g, &[4, 0], 1, 100), vec![4, 0, 3, 1]);
        assert_eq!(expand(&g, &[4, 0], 2, 3), vec![4, 0, 3], "cut at max_results");
        assert_eq!(expand(&g, &[1], 1, 100), vec![1, 0, 2, 5], "ties at equal key by id");
        assert_eq!(expand(&g, &[1, 2], 1, 100), vec![1, 2, 0, 5, 3], "a seed reached by another seed stays at hop 0");
    }

    #[test]
    fn a_prefix_keeps_the_links_among_its_records() {
        let g = path_graph().prefix(3);
        assert_eq!(g.nodes(), 3);
        assert_eq!(g.pairs(), &[Link { a: 0, b: 1 }, Link { a: 1, b: 2 }]);
    }

    #[test]
    fn generated_links_follow_the_documented_degrees_and_seed() {
        let g = Links::generate(2000, 3, 7);
        assert_eq!(g, Links::generate(2000, 3, 7), "same seed, same graph");
        assert_ne!(g.pairs(), Links::generate(2000, 3, 8).pairs());
        let (mean, max) = g.degree_stats();
        // 3 out-links a record on average, both ends counted, less the repeats dropped.
        assert!((5.0..=6.0).contains(&mean), "mean degree {mean}");
        assert!(max > 50, "Zipf hubs: the largest degree is {max}");
        assert!((0..2000).all(|i| !g.neighbours(i).is_empty()), "every record has a link");
    }

    #[test]
    fn a_links_file_maps_corpus_ids_and_names_a_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("links.tsv");
        let index: HashMap<String, u64> = [("d0", 0), ("d1", 1), ("d2", 2)].map(|(k, v)| (k.to_string(), v)).into();
        std::fs::write(&p, "source\ttarget\nd0\td1\n# comment\nd2 d1\n").unwrap();
        let g = Links::read(&p, &index, 3, false).unwrap();
        assert_eq!(g.pairs(), &[Link { a: 0, b: 1 }, Link { a: 1, b: 2 }]);
        std::fs::write(&p, "d0\td1\nd0\tdX\n").unwrap();
        let e = Links::read(&p, &index, 3, false).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("\"dX\" is not in the corpus"), "{e}");
        assert_eq!(Links::read(&p, &index, 3, true).unwrap().pairs().len(), 1, "a cut corpus drops pairs past it");
        std::fs::write(&p, "source-id\ttarget-id\trelation\nd2\td0\thypernym\n").unwrap();
        assert_eq!(
            Links::read(&p, &index, 3, false).unwrap().pairs(),
            &[Link { a: 0, b: 2 }],
            "the WordNet builder's file"
        );
        std::fs::write(&p, "d0 d1 x d2\n").unwrap();
        assert!(Links::read(&p, &index, 3, false).unwrap_err().to_string().contains("two document ids"));
    }
}
