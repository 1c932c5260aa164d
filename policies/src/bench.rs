//! The learner's half of `rrl bench learner`, shared with the standalone
//! `learner_bench` example that runs on GPU machines without ROS.

use rrl_types::rng::Rng;

use crate::pixels::{PixelReplay, PixelTransition};
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

/// A pixel replay of `rows` random transitions over episodes of 50 steps
/// (each observation's frames stored once), for `sac`'s encoder; the seconds
/// its frames took to enter the store (a precomputing replay runs its
/// trunk on each).
pub fn random_pixel_replay(sac: &Sac, rows: usize, seed: u64) -> Result<(PixelReplay, f64), crate::pixels::EncoderError> {
    let (observation, action) = (sac.config.observation_size, sac.config.action_size);
    let pixels = sac.config.pixels.as_ref().expect("a pixel learner");
    let mut replay = PixelReplay::new(observation, action, pixels, rows, sac.device)?;
    let mut rng = Rng::seed(seed);
    let frame = |rng: &mut Rng| -> Vec<u8> { (0..pixels.frame_bytes()).map(|_| (rng.next_u64() & 0xff) as u8).collect() };
    let started = std::time::Instant::now();
    let mut current = replay.add_frame(&frame(&mut rng));
    for row in 0..rows {
        let next = replay.add_frame(&frame(&mut rng));
        let state = Transition {
            observation: (0..observation).map(|_| rng.normal() as f32).collect(),
            action: (0..action).map(|_| rng.uniform(-1.0, 1.0) as f32).collect(),
            reward: rng.normal() as f32,
            next_observation: (0..observation).map(|_| rng.normal() as f32).collect(),
            terminal: false,
            discount: 0.99,
        };
        replay.push(&PixelTransition { state, frame: current, next_frame: next });
        current = if row % 50 == 49 { replay.add_frame(&frame(&mut rng)) } else { next };
    }
    Ok((replay, started.elapsed().as_secs_f64()))
}

/// Pixel updates per second over `updates` updates.
pub fn pixel_updates_per_second(sac: &mut Sac, replay: &mut PixelReplay, updates: u64) -> f64 {
    synchronize(sac);
    let started = std::time::Instant::now();
    for _ in 0..updates {
        sac.update_pixels(replay, None);
    }
    synchronize(sac);
    updates as f64 / started.elapsed().as_secs_f64()
}
