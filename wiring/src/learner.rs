//! The learner settings of a launch file.

use policies::SacConfig;
use ros_edge::learner_link::LearnerNodeSpec;
use rrl_types::config::{LaunchFile, PracticeBase};
use rrl_types::Environment;

/// SAC for `env`'s sizes with the launch file's learner section.
pub fn sac_config(launch: &LaunchFile, env: &impl Environment, seed: u64) -> SacConfig {
    SacConfig::from_learner(&launch.learner, env.observation_size(), env.action_size(), seed)
}

/// What a learner node trains for the robot of `launch`, whose task has
/// `sizes` (observation, action) values; with a residual base the actors
/// observe the task together with the base's action.
pub fn learner_node_spec(launch: &LaunchFile, sizes: (usize, usize), device: tch::Device) -> LearnerNodeSpec {
    let mut config = SacConfig::from_learner(&launch.learner, sizes.0, sizes.1, 1);
    if launch.practice.base != PracticeBase::None {
        // The actors practise a residual: they observe the task and the base's action.
        config.observation_size += config.action_size;
        config.zero_actor_output = true;
    }
    LearnerNodeSpec {
        namespace: launch.learner_namespace().to_string(),
        config,
        device,
        warmup_steps: launch.learner.warmup_steps,
        max_episode_steps: u64::from(launch.practice.max_episode_steps),
        publish_every: launch.learner.publish_every_updates,
        replay_capacity: launch.learner.replay_capacity as usize,
        checkpoint_every: 500,
        task: launch.name.clone(),
    }
}
