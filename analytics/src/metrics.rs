//! The field's ranking metrics: capture of next-year breaks in the top k % of network length,
//! and AUC.
//!
//! Ties are scored as their expectation under a random order: a group of mains with the same
//! score that straddles the k % line is credited with the share of its breaks equal to the
//! share of its length that fits. Without that, "rank by prior breaks" (where most mains tie
//! at zero) would score by the accident of file order.

use rayon::slice::ParallelSliceMut;

/// Share (0–1) of `breaks` that falls on the highest-scored mains making up `k` (0–1) of the
/// total length. `scores`, `lengths` and `breaks` are per main.
pub fn capture(scores: &[f64], lengths: &[f64], breaks: &[f64], k: f64) -> f64 {
    capture_in_order(&descending(scores), scores, lengths, breaks, k)
}

/// [`capture`] at each of `ks` with one sort of the mains (a sort of a million mains costs
/// more than the walk).
pub fn captures<const N: usize>(scores: &[f64], lengths: &[f64], breaks: &[f64], ks: [f64; N]) -> [f64; N] {
    let order = descending(scores);
    ks.map(|k| capture_in_order(&order, scores, lengths, breaks, k))
}

/// [`capture`] with the mains already in [`descending`] order of `scores`.
fn capture_in_order(order: &[usize], scores: &[f64], lengths: &[f64], breaks: &[f64], k: f64) -> f64 {
    let total_breaks: f64 = breaks.iter().sum();
    if total_breaks == 0.0 {
        return 0.0;
    }
    let budget = k * lengths.iter().sum::<f64>();
    let mut used = 0.0;
    let mut caught = 0.0;
    let mut i = 0;
    while i < order.len() && used < budget {
        let mut j = i;
        let (mut len, mut brk) = (0.0, 0.0);
        while j < order.len() && scores[order[j]] == scores[order[i]] {
            len += lengths[order[j]];
            brk += breaks[order[j]];
            j += 1;
        }
        let share = if len > 0.0 { ((budget - used) / len).min(1.0) } else { 1.0 };
        caught += brk * share;
        used += len;
        i = j;
    }
    caught / total_breaks
}

/// The cumulative-gain curve: breaks caught (not a share) by the highest-scored mains making
/// up 0, 1/`points`, 2/`points` … all of the total length, with ties credited as in
/// [`capture`]. Starts at 0 and ends at all of `breaks`. One sort and one walk, where calling
/// [`capture`] per point would sort `points` times.
pub fn gain_curve(scores: &[f64], lengths: &[f64], breaks: &[f64], points: usize) -> Vec<f64> {
    let points = points.max(1);
    let total_length: f64 = lengths.iter().sum();
    let order = descending(scores);
    // The group of equal scores starting at `i`: (end, length, breaks).
    let group = |i: usize| {
        let mut j = i;
        let (mut len, mut brk) = (0.0, 0.0);
        while j < order.len() && scores[order[j]] == scores[order[i]] {
            len += lengths[order[j]];
            brk += breaks[order[j]];
            j += 1;
        }
        (j, len, brk)
    };
    let (mut used, mut caught, mut i) = (0.0, 0.0, 0);
    let mut current = (i < order.len()).then(|| group(i));
    let mut curve = Vec::with_capacity(points + 1);
    for k in 0..=points {
        // The last point takes every main, whatever the rounding of the length sums.
        let budget = if k == points { f64::INFINITY } else { total_length * k as f64 / points as f64 };
        while let Some((end, len, brk)) = current {
            if used + len > budget {
                break;
            }
            used += len;
            caught += brk;
            i = end;
            current = (i < order.len()).then(|| group(i));
        }
        let partial = match current {
            Some((_, len, brk)) if len > 0.0 => brk * (budget - used) / len,
            _ => 0.0,
        };
        curve.push(caught + partial);
    }
    curve
}

/// Indices sorted by score, highest first; NaN last.
pub fn descending(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    // rayon's stable sort: the same order as `sort_by`, over the cores.
    order.par_sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
}

/// Area under the ROC curve of `scores` for "the main broke at least once", with ties
/// counted as one half (the Mann–Whitney statistic). `None` when one class is empty.
pub fn auc(scores: &[f64], breaks: &[f64]) -> Option<f64> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let positives = breaks.iter().filter(|b| **b > 0.0).count() as f64;
    let negatives = scores.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return None;
    }
    // Sum of the (average) ranks of the positives.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j < order.len() && scores[order[j]] == scores[order[i]] {
            j += 1;
        }
        let mean_rank = (i + j + 1) as f64 / 2.0;
        rank_sum += mean_rank * order[i..j].iter().filter(|&&k| breaks[k] > 0.0).count() as f64;
        i = j;
    }
    Some((rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    #[test]
    fn the_gain_curve_runs_from_nothing_to_every_break_and_agrees_with_capture() {
        // Two mains tie at 1.0 and straddle several points of the curve.
        let scores = [3.0, 1.0, 2.0, 1.0, 0.5];
        let lengths = [7.0, 20.0, 13.0, 40.0, 20.0];
        let breaks = [2.0, 1.0, 0.0, 3.0, 1.0];
        let curve = gain_curve(&scores, &lengths, &breaks, 100);
        assert_eq!(curve.len(), 101);
        close(curve[0], 0.0);
        close(curve[100], 7.0);
        for (k, caught) in curve.iter().enumerate() {
            close(caught / 7.0, capture(&scores, &lengths, &breaks, k as f64 / 100.0));
        }
        let [c1, c5, c50] = captures(&scores, &lengths, &breaks, [0.01, 0.05, 0.5]);
        close(c1, curve[1] / 7.0);
        close(c5, curve[5] / 7.0);
        close(c50, curve[50] / 7.0);
        assert!(curve.windows(2).all(|w| w[1] >= w[0] - 1e-12), "never falls: {curve:?}");
    }

    #[test]
    fn capture_walks_down_the_ranking_by_length() {
        let scores = [3.0, 2.0, 1.0, 0.0];
        let lengths = [10.0, 10.0, 30.0, 50.0];
        let breaks = [1.0, 0.0, 2.0, 1.0];
        close(capture(&scores, &lengths, &breaks, 0.10), 0.25);
        close(capture(&scores, &lengths, &breaks, 0.20), 0.25);
        // Half of the third main's length fits: half its breaks count.
        close(capture(&scores, &lengths, &breaks, 0.35), 0.5);
        close(capture(&scores, &lengths, &breaks, 1.0), 1.0);
        close(capture(&scores, &lengths, &[0.0; 4], 0.1), 0.0);
    }

    #[test]
    fn ties_score_as_a_random_order_would() {
        let scores = [1.0, 1.0, 1.0, 1.0];
        let lengths = [25.0; 4];
        let breaks = [4.0, 0.0, 0.0, 0.0];
        close(capture(&scores, &lengths, &breaks, 0.25), 0.25);
    }

    #[test]
    fn auc_of_perfect_random_and_inverted_rankings() {
        let breaks = [1.0, 1.0, 0.0, 0.0];
        close(auc(&[4.0, 3.0, 2.0, 1.0], &breaks).unwrap(), 1.0);
        close(auc(&[1.0, 1.0, 1.0, 1.0], &breaks).unwrap(), 0.5);
        close(auc(&[1.0, 2.0, 3.0, 4.0], &breaks).unwrap(), 0.0);
        close(auc(&[4.0, 1.0, 2.0, 3.0], &breaks).unwrap(), 0.5);
        assert_eq!(auc(&[1.0, 2.0], &[0.0, 0.0]), None);
    }
}
