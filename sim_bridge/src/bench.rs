//! Single-copy stepping speed, measured the way the Python peer measures it.

use std::time::Instant;

use crate::{Environment, GymEnv, GymTask, SimError};
use rrl_types::rng::Rng;

/// Steps `task` `steps` times with uniform random actions, resetting when an
/// episode ends; returns steps per second of wall time on this thread.
pub fn gym_steps_per_second(task: GymTask, steps: u64, seed: u64) -> Result<f64, SimError> {
    let mut env = GymEnv::new(task)?;
    env.reset(seed);
    let mut rng = Rng::seed(seed);
    let mut action = vec![0.0; env.action_size()];
    let (low, high) = (env.action_low().to_vec(), env.action_high().to_vec());
    let start = Instant::now();
    for _ in 0..steps {
        for (a, (l, h)) in action.iter_mut().zip(low.iter().zip(&high)) {
            *a = rng.uniform(*l, *h);
        }
        if env.step(&action)?.done() {
            env.reset_next();
        }
    }
    Ok(steps as f64 / start.elapsed().as_secs_f64())
}
