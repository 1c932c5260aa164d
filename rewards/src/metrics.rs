//! How good a reward source is, on recorded episodes: Value-Order
//! Correlation (Spearman's rank correlation of predicted progress with
//! time), its value on the time-reversed episode (should be negative), the
//! rate of negative deltas on successful episodes, correlation with known
//! true progress, and success precision / recall / F1.

/// Ranks with ties sharing their average rank (1-based).
fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let average = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = average;
        }
        i = j + 1;
    }
    ranks
}

/// Pearson correlation; `None` when either side is constant or too short.
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 2 {
        return None;
    }
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx).powi(2);
        syy += (b - my).powi(2);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

/// Spearman's rank correlation.
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    pearson(&ranks(x), &ranks(y))
}

/// Value-Order Correlation of a value sequence in time order.
pub fn value_order_correlation(values: &[f64]) -> Option<f64> {
    let time: Vec<f64> = (0..values.len()).map(|t| t as f64).collect();
    spearman(values, &time)
}

/// Share of steps whose value fell.
pub fn negative_delta_rate(values: &[f64]) -> f64 {
    let deltas = values.len().saturating_sub(1);
    let negative = values.windows(2).filter(|w| w[1] < w[0]).count();
    negative as f64 / deltas.max(1) as f64
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Classification {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub true_positives: u64,
    pub false_positives: u64,
    pub false_negatives: u64,
}

/// Precision, recall and F1 of predicted against actual labels.
pub fn classification(predicted: &[bool], actual: &[bool]) -> Classification {
    let (mut tp, mut fp, mut fn_) = (0u64, 0u64, 0u64);
    for (&p, &a) in predicted.iter().zip(actual) {
        match (p, a) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fn_ += 1,
            (false, false) => {}
        }
    }
    let ratio = |a: u64, b: u64| if a + b == 0 { 0.0 } else { a as f64 / (a + b) as f64 };
    let (precision, recall) = (ratio(tp, fp), ratio(tp, fn_));
    let f1 = if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) };
    Classification { precision, recall, f1, true_positives: tp, false_positives: fp, false_negatives: fn_ }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_handles_ties_and_monotone_maps() {
        // Any increasing transform keeps rank correlation 1.
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let y: Vec<f64> = x.iter().map(|v: &f64| v.powi(3) + 7.0).collect();
        assert!((spearman(&x, &y).unwrap() - 1.0).abs() < 1e-12);
        // Textbook tie case: ranks 1, 2.5, 2.5, 4.
        assert_eq!(ranks(&[10.0, 20.0, 20.0, 30.0]), vec![1.0, 2.5, 2.5, 4.0]);
        assert!(spearman(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).is_none());
    }

    #[test]
    fn voc_is_positive_forward_and_negative_reversed() {
        let values = [0.0, 10.0, 8.0, 30.0, 60.0, 55.0, 90.0];
        let forward = value_order_correlation(&values).unwrap();
        let reversed: Vec<f64> = values.iter().rev().copied().collect();
        assert!(forward > 0.8);
        assert!((value_order_correlation(&reversed).unwrap() + forward).abs() < 1e-12);
        assert!((negative_delta_rate(&values) - 2.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn precision_recall_f1_count_correctly() {
        let c = classification(&[true, true, false, false, true], &[true, false, true, false, true]);
        assert_eq!((c.true_positives, c.false_positives, c.false_negatives), (2, 1, 1));
        assert!((c.precision - 2.0 / 3.0).abs() < 1e-12 && (c.recall - 2.0 / 3.0).abs() < 1e-12 && (c.f1 - 2.0 / 3.0).abs() < 1e-12);
    }
}
