//! The learner settings of a launch file.

use policies::pixels::PixelConfig;
use policies::SacConfig;
use ros_edge::learner_link::LearnerNodeSpec;
use rrl_types::config::{LaunchFile, PixelEncoder, PixelEncoderConfig, PracticeBase};
use rrl_types::{Environment, FrameLayout};

/// SAC for `env`'s sizes with the launch file's learner section; with the
/// encoder of `learner.pixels` when `env` shows the policy camera frames.
pub fn sac_config(launch: &LaunchFile, env: &impl Environment, seed: u64) -> SacConfig {
    let mut config = SacConfig::from_learner(&launch.learner, env.observation_size(), env.action_size(), seed);
    config.pixels = env.frame_layout().map(|layout| pixel_config(&launch.learner.pixels, layout));
    config
}

/// The camera frames the policy of `launch` sees (cameras, and the size
/// they share), known from the launch file alone; `None` for state only.
pub fn observed_frames(launch: &LaunchFile) -> Option<FrameLayout> {
    let names = launch.observed_cameras();
    let first = launch.cameras.iter().find(|c| names.first() == Some(&&c.name))?;
    Some(FrameLayout { cameras: names.len(), height: first.height as usize, width: first.width as usize })
}

/// The encoder the policy of `launch` sees its cameras with, if it sees any.
pub fn policy_pixels(launch: &LaunchFile) -> Option<PixelConfig> {
    observed_frames(launch).map(|layout| pixel_config(&launch.learner.pixels, layout))
}

/// The encoder of `section` for frames laid out as `layout`.
pub fn pixel_config(section: &PixelEncoderConfig, layout: FrameLayout) -> PixelConfig {
    PixelConfig {
        cameras: layout.cameras as i64,
        height: layout.height as i64,
        width: layout.width as i64,
        feature_size: i64::from(section.features),
        shift_pad: i64::from(section.shift_for(layout.height.min(layout.width))),
        filters: i64::from(section.filters),
        pretrained: match &section.encoder {
            PixelEncoder::Drq => None,
            PixelEncoder::Frozen(path) => Some(path.into()),
        },
    }
}

/// A learner node's checkpoint cadence unless told otherwise (`rrl learner --checkpoint-every-updates`).
pub const CHECKPOINT_EVERY_UPDATES: u64 = 500;

/// What a learner node trains for the robot of `launch`, whose task has
/// `sizes` (observation, action) values; with a residual base the actors
/// observe the task together with the base's action.
pub fn learner_node_spec(launch: &LaunchFile, sizes: (usize, usize), device: tch::Device) -> LearnerNodeSpec {
    let mut config = SacConfig::from_learner(&launch.learner, sizes.0, sizes.1, 1);
    config.pixels = policy_pixels(launch);
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
        checkpoint_every: CHECKPOINT_EVERY_UPDATES,
        task: launch.name.clone(),
        risk_critic: online_risk(launch, 3),
    }
}

/// The risk critic the learner trains during practice, when the launch
/// file's `safety.risk_critic.online` asks for one.
pub fn online_risk(launch: &LaunchFile, seed: u64) -> Option<policies::practice::OnlineRiskSettings> {
    let critic = launch.safety.risk_critic.as_ref()?;
    Some(policies::practice::OnlineRiskSettings { config: critic.online.clone()?, threshold: critic.threshold as f32, seed })
}
