//! `rrl learner`: the learner of a launch file as a ROS 2 node that actors
//! feed (`ros_edge::learner_link` serves it).

use std::path::{Path, PathBuf};

use ros_edge::learner_link::{serve_learner, LearnerNodeSpec};

/// `rrl learner`: the learner as a ROS 2 node that actors feed.
pub fn run_learner_node(config: &Path, run_dir: PathBuf, resume: bool, until_idle_s: Option<f64>) -> anyhow::Result<serde_json::Value> {
    run_learner_node_until(config, run_dir, resume, until_idle_s, &|| true)
}

/// The learner node, whose idle timeout only counts once `may_stop` says
/// so (e.g. after the actors of this process have finished).
pub fn run_learner_node_until(config: &Path, run_dir: PathBuf, resume: bool, until_idle_s: Option<f64>, may_stop: &dyn Fn() -> bool) -> anyhow::Result<serde_json::Value> {
    let launch = rrl_types::config::LaunchFile::load(config)?;
    let (env, _) = crate::practice::panda_task(&launch, config)?;
    let mut sac_config = crate::practice::sac_config(&launch, &env, 1);
    drop(env);
    if launch.practice.base != rrl_types::config::PracticeBase::None {
        // The actors practise a residual: they observe the task and the base's action.
        sac_config.observation_size += sac_config.action_size;
        sac_config.zero_actor_output = true;
    }
    let device = policies::select_device(launch.learner.device)?;
    let node = LearnerNodeSpec {
        namespace: launch.learner_namespace().to_string(),
        config: sac_config,
        device,
        warmup_steps: launch.learner.warmup_steps,
        max_episode_steps: u64::from(launch.practice.max_episode_steps),
        publish_every: launch.learner.publish_every_updates,
        replay_capacity: launch.learner.replay_capacity as usize,
        checkpoint_every: 500,
        task: launch.name.clone(),
    };
    Ok(serve_learner(node, run_dir, resume, until_idle_s, may_stop)?)
}

