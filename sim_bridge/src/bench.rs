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

/// Renders the Panda scene's front and wrist cameras at `size` x `size`,
/// one physics step between frame pairs, as the Python peer does; returns
/// frames per second.
pub fn panda_frames_per_second(frames: u64, size: u32) -> Result<f64, SimError> {
    let mut sim = crate::arm::PandaSim::load()?;
    let mut cameras = [crate::camera::SimCamera::new(&sim, "front", size, size)?, crate::camera::SimCamera::new(&sim, "handcam_rgb", size, size)?];
    let hold = crate::arm::PANDA_HOME;
    let mut checksum = 0u64;
    let start = Instant::now();
    for _ in 0..frames / 2 {
        sim.step_toward(&hold);
        for camera in &mut cameras {
            checksum += u64::from(camera.render(&mut sim)?[0]);
        }
    }
    std::hint::black_box(checksum);
    Ok((frames / 2 * 2) as f64 / start.elapsed().as_secs_f64())
}
