//! A dense shaping term beside a sparse success (a human's label, a
//! direction's detector): potential-based (`rewards::shaping`),
//! so it can guide learning without changing which policy is best. The
//! potential is minus a scale times the distance between two points of
//! the observation (e.g. the tool and the object's pose), so it is
//! computed from recorded observations alone: the learner gets the same
//! shaped transitions live, on resume and from demos. Episodes on disk
//! keep their rewards unshaped.

use crate::replay::Transition;

/// Φ(obs) = −scale · ‖obs[from..from+3] − obs[to..to+3]‖.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shaping {
    pub from: usize,
    pub to: usize,
    pub scale: f64,
}

impl Shaping {
    pub fn potential(&self, observation: &[f32]) -> f64 {
        let d2: f64 = (0..3).map(|k| (f64::from(observation[self.from + k]) - f64::from(observation[self.to + k])).powi(2)).sum();
        -self.scale * d2.sqrt()
    }

    /// r' = r + γ·Φ(s') − Φ(s) (γ: the transition's discount), with Φ = 0
    /// at a terminal state. An episode cut by a time limit keeps Φ(s'), so
    /// its shaped return differs from the unshaped one by the start's
    /// potential and the cut's alone.
    pub fn apply(&self, transition: &mut Transition) {
        let (phi, phi_next) = (self.potential(&transition.observation), self.potential(&transition.next_observation));
        transition.reward = rewards::shaping::shaped_reward(f64::from(transition.reward), f64::from(transition.discount), phi, phi_next, transition.terminal) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transition(tool: [f32; 3], next_tool: [f32; 3], reward: f32, terminal: bool) -> Transition {
        let object = [0.5f32, 0.0, 0.0];
        let obs = |t: [f32; 3]| t.iter().chain(&object).copied().collect::<Vec<f32>>();
        Transition { observation: obs(tool), action: vec![0.0], reward, next_observation: obs(next_tool), terminal, discount: 0.9 }
    }

    #[test]
    fn moving_toward_the_object_is_rewarded_and_a_terminal_state_has_no_potential() {
        let shaping = Shaping { from: 0, to: 3, scale: 2.0 };
        let mut closer = transition([0.0, 0.0, 0.0], [0.1, 0.0, 0.0], 0.0, false);
        shaping.apply(&mut closer);
        // Φ(s) = −1.0, Φ(s') = −0.8: 0.9·(−0.8) + 1.0.
        assert!((closer.reward - 0.28).abs() < 1e-6, "{}", closer.reward);
        let mut success = transition([0.4, 0.0, 0.0], [0.5, 0.0, 0.0], 1.0, true);
        shaping.apply(&mut success);
        assert!((success.reward - 1.2).abs() < 1e-6, "the label's 1 plus Φ(s) = −0.2 given back: {}", success.reward);
    }
}
