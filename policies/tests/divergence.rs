//! A NaN in training stops the run, naming the step and the loss, and the
//! checkpoint on disk is the last good one.

use policies::{checkpoint, Sac, SacConfig, TrainError, TrainSettings};
use rrl_types::config::LearnerConfig;
use rrl_types::{Environment, Step};

/// A one-dimensional fault-injection task: the reward turns NaN after
/// `poison_after` steps, as a broken reward source would.
struct PoisonedReward {
    steps: u64,
    poison_after: u64,
    observation: [f64; 2],
}

#[derive(Debug, thiserror::Error)]
#[error("never fails")]
struct Never;

impl Environment for PoisonedReward {
    type Error = Never;
    fn observation_size(&self) -> usize {
        2
    }
    fn action_size(&self) -> usize {
        1
    }
    fn action_low(&self) -> &[f64] {
        &[-1.0]
    }
    fn action_high(&self) -> &[f64] {
        &[1.0]
    }
    fn observation(&self) -> &[f64] {
        &self.observation
    }
    fn reset(&mut self, _seed: u64) -> &[f64] {
        self.reset_next()
    }
    fn reset_next(&mut self) -> &[f64] {
        self.observation = [0.0, 1.0];
        &self.observation
    }
    fn step(&mut self, action: &[f64]) -> Result<Step, Never> {
        self.steps += 1;
        self.observation = [action[0], 1.0];
        let reward = if self.steps > self.poison_after { f64::NAN } else { -action[0].abs() };
        Ok(Step { reward, terminated: false, truncated: self.steps % 20 == 0 })
    }
}

#[test]
fn a_nan_reward_stops_training_and_keeps_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let learner = LearnerConfig { hidden: vec![16], batch_size: 16, ..LearnerConfig::default() };
    let mut sac = Sac::new(SacConfig::from_learner(&learner, 2, 1, 0), tch::Device::Cpu);
    let mut env = PoisonedReward { steps: 0, poison_after: 250, observation: [0.0; 2] };
    let mut eval_env = PoisonedReward { steps: 0, poison_after: u64::MAX, observation: [0.0; 2] };
    let settings = TrainSettings {
        total_steps: 1_000,
        warmup_steps: 50,
        eval_every: 100,
        eval_episodes: 1,
        replay_capacity: 1_000,
        seed: 0,
        stop_at_return: None,
        stop_at_success: None,
        checkpoint_dir: Some(dir.path().to_path_buf()),
        resume: false,
    };
    let err = policies::train(&mut env, &mut eval_env, &mut sac, None, &settings, |_| {}).unwrap_err();
    match &err {
        TrainError::NonFinite { step, loss, .. } => {
            assert_eq!(*step, 300, "first check after the poison");
            assert_eq!(*loss, "critic loss");
        }
        other => panic!("expected divergence, got {other}"),
    }
    assert!(err.to_string().contains("step 300") && err.to_string().contains("critic loss"), "{err}");
    let path = dir.path().join("learner.safetensors");
    assert_eq!(checkpoint::read_extra(&path, "env_step").unwrap(), 200, "the last good checkpoint");
    let mut restored = Sac::new(SacConfig::from_learner(&learner, 2, 1, 5), tch::Device::Cpu);
    checkpoint::load(&mut restored, &path).unwrap();
    for (name, tensor) in checkpoint::state_tensors(&restored) {
        if tensor.is_floating_point() {
            assert!(bool::try_from(tensor.isfinite().all()).unwrap(), "{name} holds a non-finite value");
        }
    }
}
