//! Stuck detection: a robot whose observation stopped changing gets the
//! task's recovery manoeuvre instead of more of the same.

use std::collections::VecDeque;

/// The last observations of an episode, as many as make the stuck window.
pub(super) struct StuckWatch {
    window: VecDeque<Vec<f64>>,
    /// Steps in the window (0: never stuck).
    steps: usize,
    tolerance: f64,
    /// Observation components compared.
    components: usize,
}

impl StuckWatch {
    pub(super) fn new(steps: usize, tolerance: f64, components: usize) -> StuckWatch {
        StuckWatch { window: VecDeque::new(), steps, tolerance, components }
    }

    /// A new episode: its observations only.
    pub(super) fn clear(&mut self) {
        self.window.clear();
    }

    /// Adds the step's next observation; stuck when nothing moved over the
    /// full window and the episode did not finish at this step.
    pub(super) fn push(&mut self, observation: Vec<f64>, done: bool) -> bool {
        self.window.push_back(observation);
        if self.window.len() > self.steps {
            self.window.pop_front();
        }
        self.steps > 0
            && self.window.len() == self.steps
            && !done
            && (0..self.components).all(|k| {
                let (lo, hi) = self.window.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), w| (lo.min(w[k]), hi.max(w[k])));
                hi - lo <= self.tolerance
            })
    }
}
