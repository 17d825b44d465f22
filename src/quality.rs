//! Retrieval quality: recall@k against exact ground truth, and nDCG@10, recall@100 and
//! MRR@10 against relevance judgments (trec_eval's definitions: linear gain, log2
//! discount, ideal ranking from the judgments).

use serde::Serialize;

/// |found[..k] ∩ truth[..k]| / min(k, |truth|). None when the truth is empty (a filter
/// that admits nothing): there is nothing to recall.
pub fn recall_at_k(found: &[u64], truth: &[u64], k: usize) -> Option<f64> {
    let truth = &truth[..truth.len().min(k)];
    if truth.is_empty() {
        return None;
    }
    let found = &found[..found.len().min(k)];
    let hits = found.iter().filter(|id| truth.contains(id)).count();
    Some(hits as f64 / truth.len() as f64)
}

fn grade_of(judged: &[(u64, u32)], id: u64) -> u32 {
    judged.iter().find(|(d, _)| *d == id).map(|(_, g)| *g).unwrap_or(0)
}

/// nDCG@k with linear gain (the BEIR / pytrec_eval definition).
pub fn ndcg_at(found: &[u64], judged: &[(u64, u32)], k: usize) -> f64 {
    let discount = |rank: usize| 1.0 / ((rank + 2) as f64).log2();
    let dcg: f64 = found.iter().take(k).enumerate().map(|(r, id)| grade_of(judged, *id) as f64 * discount(r)).sum();
    let mut ideal: Vec<u32> = judged.iter().map(|(_, g)| *g).collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal.iter().take(k).enumerate().map(|(r, g)| *g as f64 * discount(r)).sum();
    if idcg == 0.0 {
        0.0
    } else {
        dcg / idcg
    }
}

/// Share of the relevant documents found in the first k.
pub fn judged_recall_at(found: &[u64], judged: &[(u64, u32)], k: usize) -> f64 {
    if judged.is_empty() {
        return 0.0;
    }
    let hits = found.iter().take(k).filter(|id| grade_of(judged, **id) > 0).count();
    hits as f64 / judged.len() as f64
}

/// Reciprocal rank of the first relevant document within k (0 when none).
pub fn mrr_at(found: &[u64], judged: &[(u64, u32)], k: usize) -> f64 {
    found.iter().take(k).position(|id| grade_of(judged, *id) > 0).map(|r| 1.0 / (r + 1) as f64).unwrap_or(0.0)
}

/// Running sums for one op; merged across workers by adding.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QualitySums {
    pub recall_sum: f64,
    pub recall_n: u64,
    pub ndcg10_sum: f64,
    pub recall100_sum: f64,
    pub mrr10_sum: f64,
    pub judged_n: u64,
}

impl QualitySums {
    pub fn add(&mut self, other: &QualitySums) {
        self.recall_sum += other.recall_sum;
        self.recall_n += other.recall_n;
        self.ndcg10_sum += other.ndcg10_sum;
        self.recall100_sum += other.recall100_sum;
        self.mrr10_sum += other.mrr10_sum;
        self.judged_n += other.judged_n;
    }

    /// Score one answer. `truth` is the exact kNN top-k for this query (if computed),
    /// `judged` its relevance judgments (if the corpus is judged).
    pub fn record(&mut self, found: &[u64], k: usize, truth: Option<&[u64]>, judged: Option<&[(u64, u32)]>) {
        if let Some(r) = truth.and_then(|t| recall_at_k(found, t, k)) {
            self.recall_sum += r;
            self.recall_n += 1;
        }
        if let Some(j) = judged {
            self.ndcg10_sum += ndcg_at(found, j, 10);
            self.recall100_sum += judged_recall_at(found, j, 100);
            self.mrr10_sum += mrr_at(found, j, 10);
            self.judged_n += 1;
        }
    }

    pub fn summary(&self, k: usize) -> QualitySummary {
        let mean = |s: f64, n: u64| (n > 0).then(|| s / n as f64);
        QualitySummary {
            recall_at_k: mean(self.recall_sum, self.recall_n),
            ndcg_at_10: if k >= 10 { mean(self.ndcg10_sum, self.judged_n) } else { None },
            recall_at_100: if k >= 100 { mean(self.recall100_sum, self.judged_n) } else { None },
            mrr_at_10: if k >= 10 { mean(self.mrr10_sum, self.judged_n) } else { None },
            quality_samples: self.recall_n.max(self.judged_n),
        }
    }
}

/// Means over the answers scored. A metric that needs more results than the op asked
/// for (nDCG@10 with k = 5) is absent rather than misleading.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct QualitySummary {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recall_at_k: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ndcg_at_10: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recall_at_100: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mrr_at_10: Option<f64>,
    pub quality_samples: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recall_counts_overlap_within_k() {
        assert_eq!(recall_at_k(&[1, 2, 3], &[3, 2, 9], 3), Some(2.0 / 3.0));
        assert_eq!(recall_at_k(&[1, 2, 3, 4], &[4], 3), Some(0.0), "hit beyond k does not count");
        assert_eq!(recall_at_k(&[1], &[1, 2], 10), Some(0.5), "truth shorter than k: divide by truth");
        assert_eq!(recall_at_k(&[1], &[], 10), None);
    }

    #[test]
    fn ndcg_matches_hand_computation() {
        let judged = [(7, 1), (9, 2)];
        // Ranking: 9 (grade 2) at rank 0, 7 (grade 1) at rank 2.
        let dcg = 2.0 / 1.0 + 1.0 / 4f64.log2();
        let idcg = 2.0 + 1.0 / 3f64.log2();
        let got = ndcg_at(&[9, 1, 7], &judged, 10);
        assert!((got - dcg / idcg).abs() < 1e-12, "{got}");
        assert_eq!(ndcg_at(&[9, 7], &judged, 10), 1.0);
        assert_eq!(ndcg_at(&[1, 2], &judged, 10), 0.0);
    }

    #[test]
    fn mrr_and_judged_recall() {
        let judged = [(5, 1), (6, 1)];
        assert_eq!(mrr_at(&[1, 2, 5], &judged, 10), 1.0 / 3.0);
        assert_eq!(mrr_at(&[1, 2, 5], &judged, 2), 0.0);
        assert_eq!(judged_recall_at(&[6, 1], &judged, 100), 0.5);
    }

    #[test]
    fn summary_hides_metrics_k_cannot_support() {
        let mut s = QualitySums::default();
        s.record(&[1, 2], 5, Some(&[1, 3]), Some(&[(1, 1)]));
        let sum = s.summary(5);
        assert_eq!(sum.recall_at_k, Some(0.5));
        assert_eq!(sum.ndcg_at_10, None);
        let sum = s.summary(100);
        assert_eq!(sum.ndcg_at_10, Some(1.0));
        assert_eq!(sum.recall_at_100, Some(1.0));
    }
}
