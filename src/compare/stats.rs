//! The statistics behind a verdict: medians, quantiles and the seeded percentile
//! bootstrap of a ratio of medians.
//!
//! Pure functions of their inputs: the same samples and seed always give the same
//! interval, so a CI verdict can be reproduced from the two results files alone.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Bootstrap resamples; 2,000 keeps the 2.5% and 97.5% percentiles stable to a few
/// resamples and takes milliseconds.
pub const RESAMPLES: usize = 2000;
/// Two-sided confidence of the interval.
pub const CONFIDENCE: f64 = 0.95;
/// The bootstrap's seed: the same inputs always give the same verdict.
pub const SEED: u64 = 0xDBBE_4C0C_0A4E;

/// The median (the mean of the two middle values for an even count); None when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// The p-quantile (0..=1) of sorted values by linear interpolation between order
/// statistics (Hyndman and Fan type 7, numpy's default).
pub fn quantile_sorted(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * p.clamp(0.0, 1.0);
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Percentile bootstrap interval of median(candidate) / median(baseline): each side is
/// resampled with replacement, independently, `resamples` times, from a seeded generator
/// (the same inputs always give the same interval). Resamples whose baseline median is
/// zero are dropped; None when more than half are, or a side is empty.
pub fn bootstrap_ratio_of_medians(
    baseline: &[f64],
    candidate: &[f64],
    resamples: usize,
    confidence: f64,
    seed: u64,
) -> Option<(f64, f64)> {
    if baseline.is_empty() || candidate.is_empty() || resamples == 0 {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut b = vec![0.0; baseline.len()];
    let mut c = vec![0.0; candidate.len()];
    let mut ratios = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        b.iter_mut().for_each(|x| *x = baseline[rng.gen_range(0..baseline.len())]);
        c.iter_mut().for_each(|x| *x = candidate[rng.gen_range(0..candidate.len())]);
        let mb = median(&b)?;
        let mc = median(&c)?;
        if mb > 0.0 {
            ratios.push(mc / mb);
        }
    }
    if ratios.len() * 2 < resamples {
        return None;
    }
    ratios.sort_by(f64::total_cmp);
    let alpha = 1.0 - confidence;
    Some((quantile_sorted(&ratios, alpha / 2.0), quantile_sorted(&ratios, 1.0 - alpha / 2.0)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn quantile_matches_numpy_linear_interpolation() {
        // numpy.percentile([1, 2, 3, 4], 25) == 1.75; numpy.percentile(range(1, 11), 97.5) == 9.775
        assert!((quantile_sorted(&[1.0, 2.0, 3.0, 4.0], 0.25) - 1.75).abs() < 1e-12);
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert!((quantile_sorted(&ten, 0.975) - 9.775).abs() < 1e-12);
        assert_eq!(quantile_sorted(&ten, 0.0), 1.0);
        assert_eq!(quantile_sorted(&ten, 1.0), 10.0);
    }

    #[test]
    fn bootstrap_of_constant_samples_is_the_exact_ratio() {
        let ci = bootstrap_ratio_of_medians(&[2.0; 5], &[3.0; 4], 500, 0.95, 1).unwrap();
        assert_eq!(ci, (1.5, 1.5));
    }

    #[test]
    fn bootstrap_interval_matches_the_exact_resampling_distribution() {
        // With the baseline constant at 10 and the candidate {10, 20, 30}, the median of a
        // resample of three is 10 or 30 with probability 7/27 each and 20 with 13/27, so
        // the 2.5% and 97.5% points of the ratio are exactly 1 and 3.
        let (lo, hi) = bootstrap_ratio_of_medians(&[10.0; 3], &[10.0, 20.0, 30.0], 2000, 0.95, SEED).unwrap();
        assert_eq!((lo, hi), (1.0, 3.0));
        // And the middle of the distribution sits where 13/27 of the mass is: a 40%
        // interval (30% .. 70%) lies entirely at ratio 2.
        let (lo, hi) = bootstrap_ratio_of_medians(&[10.0; 3], &[10.0, 20.0, 30.0], 2000, 0.40, SEED).unwrap();
        assert_eq!((lo, hi), (2.0, 2.0));
    }

    #[test]
    fn bootstrap_is_deterministic_and_seeded() {
        let base: Vec<f64> = (0..40).map(|i| 10.0 + (i * 7 % 13) as f64 / 10.0).collect();
        let cand: Vec<f64> = (0..40).map(|i| 11.0 + (i * 5 % 11) as f64 / 10.0).collect();
        let a = bootstrap_ratio_of_medians(&base, &cand, 2000, 0.95, SEED).unwrap();
        let b = bootstrap_ratio_of_medians(&base, &cand, 2000, 0.95, SEED).unwrap();
        assert_eq!(a, b);
        assert!(a.0 < a.1 && a.0 > 1.0 && a.1 < 1.3, "{a:?}");
    }

    #[test]
    fn bootstrap_refuses_a_zero_baseline() {
        assert_eq!(bootstrap_ratio_of_medians(&[0.0; 4], &[1.0; 4], 100, 0.95, 1), None);
        assert_eq!(bootstrap_ratio_of_medians(&[], &[1.0], 100, 0.95, 1), None);
    }
}
