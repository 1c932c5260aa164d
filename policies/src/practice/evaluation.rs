//! Evaluation episodes, recorded like any other.

use std::path::Path;

use rrl_types::PracticeTask;

use super::episodes::{record_one_episode, Judge};
use super::PracticeError;

/// Runs `episodes` evaluation episodes of `policy` (the observation and,
/// for a task with cameras, its frames in; deterministic actions in
/// [-1, 1] out), each recorded under `folder` with source `eval` and
/// judged by `judge`. Returns (returns, successes).
pub fn evaluate_recorded<E: PracticeTask>(
    env: &mut E,
    task: &str,
    folder: &Path,
    episodes: u32,
    seed: u64,
    mut policy: impl FnMut(&[f64], Option<&[u8]>) -> Vec<f64>,
    judge: &mut Judge,
) -> Result<(Vec<f64>, u32), PracticeError> {
    let first = recording::list_episodes(folder)?.len() as u64;
    let mut act = |env: &E, _: bool| policy(env.observation(), env.frames());
    let (mut returns, mut successes) = (Vec::new(), 0);
    for e in 0..u64::from(episodes) {
        let (total, success) = record_one_episode(env, folder, task, "eval", first + e, seed + e, false, &mut act, judge)?;
        successes += u32::from(success.unwrap_or(false));
        returns.push(total);
        if judge.stopped() {
            break;
        }
    }
    Ok((returns, successes))
}
