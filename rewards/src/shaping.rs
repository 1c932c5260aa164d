//! Potential-based shaping (Ng, Harada and Russell, 1999):
//! r' = r + γ·Φ(s') − Φ(s), with Φ(terminal) = 0. Any policy optimal for r
//! stays optimal for r', so a progress estimate can guide learning without
//! being able to redefine the task.

/// Shapes one transition's reward with potentials `phi` (state) and
/// `phi_next` (next state), the latter ignored at a terminal state.
pub fn shaped_reward(reward: f64, gamma: f64, phi: f64, phi_next: f64, terminal: bool) -> f64 {
    let next = if terminal { 0.0 } else { phi_next };
    reward + gamma * next - phi
}

/// Progress in [0, 100] as a potential in [0, `scale`].
pub fn progress_potential(progress: f64, scale: f64) -> f64 {
    progress.clamp(0.0, 100.0) / 100.0 * scale
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The discounted shaped return of any episode equals the original one
    /// minus Φ(s₀) (plus γᵀΦ(s_T) when cut by a time limit): a constant per
    /// start state, so shaping cannot change which policy is best.
    #[test]
    fn shaped_returns_differ_from_the_original_by_the_start_potential_only() {
        let gamma = 0.97;
        let mut seed = 12345u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        for terminal_end in [true, false] {
            let steps = 30;
            let phis: Vec<f64> = (0..=steps).map(|_| 100.0 * next()).collect();
            let rewards: Vec<f64> = (0..steps).map(|_| next() - 0.5).collect();
            let (mut original, mut shaped, mut discount) = (0.0, 0.0, 1.0);
            for t in 0..steps {
                let terminal = terminal_end && t == steps - 1;
                original += discount * rewards[t];
                shaped += discount * shaped_reward(rewards[t], gamma, phis[t], phis[t + 1], terminal);
                discount *= gamma;
            }
            let tail = if terminal_end { 0.0 } else { discount * phis[steps] };
            assert!((shaped - (original - phis[0] + tail)).abs() < 1e-9, "terminal {terminal_end}: {shaped} vs {}", original - phis[0] + tail);
        }
    }

    #[test]
    fn the_terminal_potential_is_zero() {
        assert_eq!(shaped_reward(1.0, 0.9, 5.0, 80.0, true), 1.0 - 5.0);
        assert_eq!(progress_potential(150.0, 1.0), 1.0);
    }
}
