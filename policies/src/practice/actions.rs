//! Actions between the environment's bounds and the learner's [-1, 1]
//! (the other way is `crate::train::to_env_action`).

/// Maps an action in the environment's bounds to the learner's [-1, 1].
pub fn to_policy_action(action: &[f64], low: &[f64], high: &[f64]) -> Vec<f64> {
    action
        .iter()
        .zip(low.iter().zip(high))
        .map(|(a, (l, h))| if l.is_finite() && h.is_finite() { (2.0 * (a - l) / (h - l) - 1.0).clamp(-1.0, 1.0) } else { *a })
        .collect()
}
