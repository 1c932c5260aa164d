//! `rrl learner`: the learner of a launch file as a ROS 2 node that actors
//! feed (`ros_edge::learner_link` serves it).

use std::path::{Path, PathBuf};

use policies::practice::LearnerShared;
use ros_edge::learner_link::serve_learner;

#[derive(clap::Args)]
pub struct LearnerArgs {
    /// Launch file (learner section, task sizes).
    #[arg(long)]
    config: PathBuf,
    /// Folder of its checkpoint.
    #[arg(long)]
    run_dir: PathBuf,
    /// Continue from the checkpoint in --run-dir.
    #[arg(long)]
    resume: bool,
    /// Exit when no transition arrived for this many seconds (after the first).
    #[arg(long)]
    until_idle_s: Option<f64>,
    /// Write the checkpoint every this many updates (and at the end).
    #[arg(long, default_value_t = wiring::learner::CHECKPOINT_EVERY_UPDATES, value_parser = clap::value_parser!(u64).range(1..))]
    checkpoint_every_updates: u64,
}

impl LearnerArgs {
    pub fn run(self) -> anyhow::Result<serde_json::Value> {
        let node = learner_node_spec(&self.config)?;
        let node = ros_edge::learner_link::LearnerNodeSpec { checkpoint_every: self.checkpoint_every_updates, ..node };
        Ok(serve_learner(node, self.run_dir, self.resume, LearnerShared::new(), self.until_idle_s, &|| true)?)
    }
}

/// The learner node, whose idle timeout only counts once `may_stop` says
/// so (e.g. after the actors of this process have finished).
pub fn run_learner_node_until(config: &Path, run_dir: PathBuf, resume: bool, until_idle_s: Option<f64>, may_stop: &dyn Fn() -> bool) -> anyhow::Result<serde_json::Value> {
    Ok(serve_learner(learner_node_spec(config)?, run_dir, resume, LearnerShared::new(), until_idle_s, may_stop)?)
}

/// The learner node of the launch file at `config`.
fn learner_node_spec(config: &Path) -> anyhow::Result<ros_edge::learner_link::LearnerNodeSpec> {
    let launch = rrl_types::config::LaunchFile::load(config)?;
    let sizes = wiring::robot::task_sizes(&launch, config)?;
    Ok(wiring::learner::learner_node_spec(&launch, sizes, policies::select_device(launch.learner.device)?))
}
