//! `rrl launch FILE`: starts the nodes a launch file describes — the robot
//! (simulated Panda or serial-servo arm, through the gate, with its
//! cameras) and, when the file has a `Vlm(..)` reward, the reward node — in
//! one process, each on its own thread and ROS context. `--only` starts a
//! subset, so the same file splits the nodes across processes or machines
//! (same `ROS_DOMAIN_ID`; discovery range `SUBNET` between machines).
//! Practice and the learner have their own commands (`rrl practice`,
//! `rrl learner`) because they own the terminal's progress display.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use rrl_types::config::{LaunchFile, RewardConfig, RobotConfig};

/// Which nodes of a launch file `rrl launch` starts.
fn nodes_of(launch: &LaunchFile, only: &[String]) -> anyhow::Result<Vec<&'static str>> {
    let mut available = vec!["robot"];
    if matches!(launch.reward, RewardConfig::Vlm(_)) {
        available.push("reward");
    }
    if only.is_empty() {
        return Ok(available);
    }
    only.iter()
        .map(|name| available.iter().find(|a| **a == name.as_str()).copied().with_context(|| format!("--only {name}: this launch file has the nodes {}", available.join(", "))))
        .collect()
}

pub fn run(config: &Path, only: &[String], duration_s: Option<f64>) -> anyhow::Result<serde_json::Value> {
    let launch = LaunchFile::load(config)?;
    let nodes = nodes_of(&launch, only)?;
    let mut threads = Vec::new();
    for node in nodes {
        let config: PathBuf = config.to_path_buf();
        let robot_kind = launch.robot.kind_name();
        let is_sim = matches!(launch.robot, RobotConfig::Sim(_));
        let handle = std::thread::Builder::new().name(format!("node-{node}")).spawn(move || -> anyhow::Result<serde_json::Value> {
            match node {
                "robot" if is_sim => crate::sim_node::run(&config, duration_s),
                "robot" if robot_kind == "SerialArm" => crate::sim_node::run_driver(&config, duration_s),
                "robot" => bail!("{}: `rrl launch` runs Sim and SerialArm robots; a {robot_kind} robot has no node yet", config.display()),
                _ => crate::reward_node::run(&config, duration_s),
            }
        })?;
        threads.push((node, handle));
    }
    let mut report = serde_json::Map::new();
    for (node, handle) in threads {
        let result = handle.join().map_err(|_| anyhow::anyhow!("node `{node}` panicked"))?.with_context(|| format!("node `{node}`"))?;
        report.insert(node.to_string(), result);
    }
    Ok(serde_json::Value::Object(report))
}
