//! `rrl reward-node --config FILE`: the launch file's `Vlm(..)` reward as
//! a ROS 2 node (`ros_edge::reward_node`), scoring its first reward
//! camera: the camera's `Topic(..)` source, else
//! `<namespace>/<camera>/image_raw`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use rewards::pipeline::ProgressPipeline;
use ros_edge::reward_node::RewardNodeSpec;
use rrl_types::config::{CameraSource, LaunchFile, RewardConfig};

#[derive(clap::Args)]
pub struct RewardNodeArgs {
    /// Launch file with a `Vlm(..)` reward.
    #[arg(long)]
    pub config: PathBuf,
    /// Stop after this many seconds (default: run until killed).
    #[arg(long)]
    pub duration_s: Option<f64>,
}

impl RewardNodeArgs {
    pub fn run(self) -> anyhow::Result<serde_json::Value> {
        let config = &self.config;
        let launch = LaunchFile::load(config)?;
        let RewardConfig::Vlm(vlm) = &launch.reward else {
            bail!("{}: `rrl reward-node` serves a Vlm(..) reward; this launch file's reward is {:?}", config.display(), launch.reward);
        };
        let (_, camera) = wiring::practice_env::vlm_reward(&launch, config)?.context("a Vlm(..) reward")?;
        let topic = match &camera.source {
            CameraSource::Topic(topic) => topic.clone(),
            _ => format!("{}/image_raw", camera.name),
        };
        let critic = wiring::practice_env::critic_of(vlm, config)?;
        tracing::info!(endpoint = %vlm.endpoint, max_concurrent = vlm.max_concurrent, "VLM reward");
        let pipeline = ProgressPipeline::new(critic, vlm.max_concurrent as usize);
        let spec = RewardNodeSpec { namespace: &launch.namespace, image_topic: &topic, camera: &camera.name, task: &vlm.task, duration_s: self.duration_s };
        Ok(ros_edge::reward_node::serve(pipeline, spec)?)
    }
}
