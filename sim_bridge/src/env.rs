//! Batched stepping of several copies of a simulated task.

use rrl_types::{Environment, Step};

use crate::assets::SimError;

/// Several copies of one task stepped together; a copy whose episode ended
/// starts its next one at once (its `Step` still reports the end).
pub struct BatchedEnv<E> {
    copies: Vec<E>,
}

impl<E: Environment<Error = SimError>> BatchedEnv<E> {
    /// Copy `i` is reset with seed `seed + i`.
    pub fn new(mut copies: Vec<E>, seed: u64) -> BatchedEnv<E> {
        for (i, env) in copies.iter_mut().enumerate() {
            env.reset(seed + i as u64);
        }
        BatchedEnv { copies }
    }

    pub fn len(&self) -> usize {
        self.copies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.copies.is_empty()
    }

    pub fn copy(&self, i: usize) -> &E {
        &self.copies[i]
    }

    /// `actions` holds one action per copy, back to back. Writes each copy's
    /// step into `steps` and its final observation (before any automatic
    /// reset) into `final_observations`, back to back. With `threads > 1`,
    /// copies are stepped on that many threads.
    pub fn step(&mut self, actions: &[f64], threads: usize, steps: &mut Vec<Step>, final_observations: &mut Vec<f64>) -> Result<(), SimError> {
        let n = self.copies.len();
        let (act, obs) = match self.copies.first() {
            Some(e) => (e.action_size(), e.observation_size()),
            None => return Ok(()),
        };
        if actions.len() != n * act {
            return Err(SimError::ActionSize { task: "batched", expected: n * act, got: actions.len() });
        }
        steps.clear();
        steps.resize(n, Step { reward: 0.0, terminated: false, truncated: false });
        final_observations.clear();
        final_observations.resize(n * obs, 0.0);
        let chunk = n.div_ceil(threads.max(1));
        let work = |copies: &mut [E], actions: &[f64], steps: &mut [Step], finals: &mut [f64]| -> Result<(), SimError> {
            for (i, env) in copies.iter_mut().enumerate() {
                let step = env.step(&actions[i * act..(i + 1) * act])?;
                finals[i * obs..(i + 1) * obs].copy_from_slice(env.observation());
                if step.done() {
                    env.reset_next();
                }
                steps[i] = step;
            }
            Ok(())
        };
        if threads <= 1 {
            return work(&mut self.copies, actions, steps, final_observations);
        }
        std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .copies
                .chunks_mut(chunk)
                .zip(actions.chunks(chunk * act))
                .zip(steps.chunks_mut(chunk))
                .zip(final_observations.chunks_mut(chunk * obs))
                .map(|(((copies, actions), steps), finals)| scope.spawn(move || work(copies, actions, steps, finals)))
                .collect();
            handles.into_iter().try_for_each(|h| h.join().expect("a simulation thread panicked"))
        })
    }
}
