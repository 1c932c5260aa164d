//! The learner's half of `rrl bench learner`, shared with the standalone
//! `learner_bench` example that runs on GPU machines without ROS.

use rrl_types::rng::Rng;

use crate::replay::{ReplayBuffer, Transition};
use crate::sac::Sac;

/// A buffer of `rows` random transitions, like the PyTorch peer's.
pub fn random_replay(observation: usize, action: usize, rows: usize, device: tch::Device, seed: u64) -> ReplayBuffer {
    let mut replay = ReplayBuffer::new(observation, action, rows, device);
    let mut rng = Rng::seed(seed);
    for _ in 0..rows {
        replay.push(&Transition {
            observation: (0..observation).map(|_| rng.normal() as f32).collect(),
            action: (0..action).map(|_| rng.uniform(-1.0, 1.0) as f32).collect(),
            reward: rng.normal() as f32,
            next_observation: (0..observation).map(|_| rng.normal() as f32).collect(),
            terminal: rng.unit() < 0.01,
            discount: 0.99,
        });
    }
    replay.flush();
    replay
}

/// Waits for queued device work (reading a value synchronizes).
pub fn synchronize(sac: &Sac) {
    let _ = sac.log_temperature.double_value(&[]);
}

/// Updates per second over `updates` updates (after the caller's warm-up).
pub fn updates_per_second(sac: &mut Sac, replay: &mut ReplayBuffer, updates: u64) -> f64 {
    synchronize(sac);
    let started = std::time::Instant::now();
    for _ in 0..updates {
        sac.update(replay, None);
    }
    synchronize(sac);
    updates as f64 / started.elapsed().as_secs_f64()
}
