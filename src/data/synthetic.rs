//! The seeded generator: clustered vectors of any dimension, documents drawn from a Zipf
//! vocabulary, and queries from the same distributions. The same seed gives the same
//! bytes on every machine (ChaCha8, no platform-dependent maths beyond f32 arithmetic).

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Zipf};

use super::{DocIds, Queries, RawDataset};
use crate::driver::Metric;
use crate::spec::SyntheticSpec;

const SYLLABLES: [&str; 24] = [
    "ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "zu", "be", "do", "fa", "gi", "ho", "ju", "ke", "li", "mo", "nu",
    "pa", "qi", "re", "si", "ta",
];

/// The `rank`-th word of the vocabulary (rank 0 is the most frequent): distinct,
/// pronounceable, and never a stop word of any engine's analyzer.
pub fn word(rank: usize) -> String {
    let mut n = rank;
    let mut w = String::from("x");
    loop {
        w.push_str(SYLLABLES[n % SYLLABLES.len()]);
        n /= SYLLABLES.len();
        if n == 0 {
            break;
        }
    }
    w
}

pub fn generate(spec: &SyntheticSpec, seed: u64) -> RawDataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dim = spec.dim;
    let unit = Normal::new(0.0f32, 1.0).expect("valid normal");
    let centres: Vec<Vec<f32>> =
        (0..spec.clusters).map(|_| normalised((0..dim).map(|_| unit.sample(&mut rng)).collect())).collect();
    let sigma = spec.spread / (dim as f32).sqrt();
    let noise = Normal::new(0.0f32, sigma.max(f32::MIN_POSITIVE)).expect("valid normal");
    let draw_vector = |rng: &mut ChaCha8Rng| -> Vec<f32> {
        let c = &centres[rng.gen_range(0..centres.len())];
        let v: Vec<f32> = c.iter().map(|x| x + noise.sample(rng)).collect();
        if spec.metric == Metric::Cosine {
            normalised(v)
        } else {
            v
        }
    };

    let mut vectors = Vec::with_capacity(spec.docs * dim);
    for _ in 0..spec.docs {
        vectors.extend(draw_vector(&mut rng));
    }
    let mut query_vectors = Vec::with_capacity(spec.queries * dim);
    for _ in 0..spec.queries {
        query_vectors.extend(draw_vector(&mut rng));
    }

    let zipf = Zipf::new(spec.vocabulary as u64, spec.zipf_exponent).expect("vocabulary >= 1, exponent > 0");
    let mut doc_words: Vec<Vec<usize>> = Vec::with_capacity(spec.docs);
    for _ in 0..spec.docs {
        doc_words.push((0..spec.words_per_doc).map(|_| zipf.sample(&mut rng) as usize - 1).collect());
    }
    let texts: Vec<Arc<str>> =
        doc_words.iter().map(|ws| Arc::from(ws.iter().map(|w| word(*w)).collect::<Vec<_>>().join(" "))).collect();
    // A query takes its words from one document, preferring its rarer words, so that every
    // query has at least one matching document and is not all stop-like frequent words.
    let query_texts: Vec<String> = (0..spec.queries)
        .map(|_| {
            let mut ws = doc_words[rng.gen_range(0..doc_words.len())].clone();
            ws.sort_unstable_by(|a, b| b.cmp(a));
            ws.dedup();
            ws.truncate(spec.words_per_query);
            ws.iter().map(|w| word(*w)).collect::<Vec<_>>().join(" ")
        })
        .collect();

    RawDataset {
        name: "synthetic".into(),
        source: format!(
            "synthetic (seed {seed}: {} docs, {} queries, dim {dim}, {} clusters, {} metric)",
            spec.docs,
            spec.queries,
            spec.clusters,
            spec.metric.as_str()
        ),
        metric: spec.metric,
        dim,
        doc_ids: DocIds::Numbered(spec.docs),
        vectors,
        texts,
        metadata: Vec::new(),
        judgments: None,
        queries: Queries {
            ids: (0..spec.queries).map(|i| format!("q{i}")).collect(),
            vectors: query_vectors,
            texts: query_texts,
            judgments: None,
        },
    }
}

fn normalised(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_distinct() {
        let words: std::collections::HashSet<String> = (0..5000).map(word).collect();
        assert_eq!(words.len(), 5000);
    }

    #[test]
    fn generator_is_seeded_and_shaped() {
        let spec = SyntheticSpec { docs: 300, queries: 20, dim: 16, ..Default::default() };
        let a = generate(&spec, 9);
        let b = generate(&spec, 9);
        assert_eq!(a.vectors, b.vectors);
        assert_eq!(a.vectors.len(), 300 * 16);
        assert_eq!(a.queries.vectors.len(), 20 * 16);
        let norm: f32 = a.vectors[..16].iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4, "cosine data is normalised");
        // Every query's words appear together in some document.
        for q in &a.queries.texts {
            let words: Vec<&str> = q.split(' ').collect();
            assert!(a.texts.iter().any(|t| words.iter().all(|w| t.split(' ').any(|x| x == *w))), "{q}");
        }
    }
}
