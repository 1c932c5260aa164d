//! The practice curves the page draws: one point per finished episode.

use rrl_types::EpisodeSummary;
use serde::Serialize;

/// Episodes the success rate looks back over (as `rrl practice`'s status line).
pub const SUCCESS_WINDOW: usize = 20;

/// Points the console keeps: the oldest go first past this (a week of
/// 10 s episodes fits).
const MAX_POINTS: usize = 100_000;

/// An episode as the page draws it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CurvePoint {
    pub episode: u64,
    pub steps: u64,
    pub total_steps: u64,
    #[serde(rename = "return")]
    pub episode_return: f64,
    pub success: Option<bool>,
    pub interventions: u64,
    /// Successes among the last `SUCCESS_WINDOW` episodes (this one included) the console saw.
    pub success_rate: f64,
}

/// The points so far; `first` numbers the oldest kept.
#[derive(Debug, Default)]
pub struct Curve {
    points: Vec<CurvePoint>,
    first: usize,
}

impl Curve {
    /// Adds an episode; its success rate follows from the ones before it.
    pub fn push(&mut self, e: EpisodeSummary) {
        let window = self.points.iter().rev().take(SUCCESS_WINDOW - 1).map(|p| p.success);
        let (wins, count) = window.chain(std::iter::once(e.success)).fold((0usize, 0usize), |(w, n), s| (w + usize::from(s == Some(true)), n + 1));
        self.points.push(CurvePoint { episode: e.episode, steps: e.steps, total_steps: e.total_steps, episode_return: e.episode_return, success: e.success, interventions: e.interventions, success_rate: wins as f64 / count as f64 });
        if self.points.len() > MAX_POINTS {
            let drop = self.points.len() - MAX_POINTS / 2;
            self.points.drain(..drop);
            self.first += drop;
        }
    }

    /// The share of steps the human drove over the last `SUCCESS_WINDOW` episodes.
    pub fn intervention_rate(&self) -> Option<f64> {
        let recent = self.points.iter().rev().take(SUCCESS_WINDOW);
        let (driven, steps) = recent.fold((0u64, 0u64), |(d, s), p| (d + p.interventions, s + p.steps));
        (steps > 0).then(|| driven as f64 / steps as f64)
    }

    /// Points numbered `from` on (numbers count every point ever pushed),
    /// and the number after the last.
    pub fn since(&self, from: usize) -> (&[CurvePoint], usize) {
        let start = from.saturating_sub(self.first).min(self.points.len());
        (&self.points[start..], self.first + self.points.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_success_rate_looks_back_twenty_episodes_and_pages_resume() {
        let mut curve = Curve::default();
        for i in 0..25u64 {
            curve.push(EpisodeSummary { episode: i, steps: 10, total_steps: 10 * (i + 1), episode_return: i as f64, success: Some(i < 5), interventions: u64::from(i >= 20) * 5 });
        }
        let (all, next) = curve.since(0);
        assert_eq!((all.len(), next), (25, 25));
        assert_eq!(all[0].success_rate, 1.0);
        assert_eq!(all[24].success_rate, 0.0, "the last 20 are failures");
        assert_eq!(all[23].success_rate, 1.0 / 20.0);
        let (newer, _) = curve.since(23);
        assert_eq!(newer.iter().map(|p| p.episode).collect::<Vec<_>>(), vec![23, 24]);
        assert!(curve.since(99).0.is_empty());
        assert_eq!(curve.intervention_rate(), Some(25.0 / 200.0), "5 of 10 steps in 5 of the last 20 episodes");
    }
}
