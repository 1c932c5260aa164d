//! `rrl launch FILE...`: starts the nodes the launch files describe in one
//! process, each on its own thread and ROS context; one file per robot,
//! each in its own namespace.
//!
//! Without `--run-dir` a file's nodes are its robot (driver or simulated
//! Panda, through the gate, with its cameras) and, with a `Vlm(..)` reward,
//! the reward node. With `--run-dir` the robots practise: each file's actor
//! (`rrl practice --learner remote`, actor id = its place on the command
//! line) and one learner per learner namespace (`learner.namespace`, so
//! several robots can feed one learner). A simulated robot then runs as
//! its practice task's lockstep node (`rrl sim --lockstep`), which its
//! actor steps over ROS 2 (`--robot remote`); a real arm's actor drives
//! the arm through its driver, as `rrl practice` does, and with `reward:
//! Human` takes the labels from `practice/command`.
//! `--only` starts a subset, so the same files split the nodes across
//! processes or machines (same `ROS_DOMAIN_ID`; discovery range `SUBNET`
//! between machines).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::bail;
use rrl_types::config::{LaunchFile, RewardConfig, RobotConfig};

#[derive(clap::Args)]
pub struct LaunchArgs {
    /// Launch files, one per robot (each in its own namespace).
    #[arg(required = true)]
    configs: Vec<PathBuf>,
    /// Start only these nodes (robot, reward; with --run-dir actor, learner), to split the files across processes or machines.
    #[arg(long)]
    only: Vec<String>,
    /// Practise: each robot's actor (in <run-dir>/<launch name>) feeds the learner of its learner namespace (in <run-dir>/learner).
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// Online steps per actor (overrides practice.total_steps).
    #[arg(long)]
    steps: Option<u64>,
    /// Pace the actors' episodes to the policy rate, as on a robot.
    #[arg(long)]
    realtime: bool,
    /// Continue the runs in --run-dir.
    #[arg(long)]
    resume: bool,
    /// Stop the robot and reward nodes after this many seconds (default: run until killed).
    #[arg(long)]
    duration_s: Option<f64>,
    /// A learner started with actors stops this long after their last transition.
    #[arg(long, default_value_t = 10.0)]
    learner_idle_s: f64,
    /// With --run-dir: each robot's actor serves an operator console at its
    /// launch file's `console.address` (give each robot its own, or port 0).
    #[arg(long)]
    console: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Robot { file: usize },
    Reward { file: usize },
    Actor { file: usize },
    Learner { namespace: String, file: usize },
}

impl Node {
    fn kind(&self) -> &'static str {
        match self {
            Node::Robot { .. } => "robot",
            Node::Reward { .. } => "reward",
            Node::Actor { .. } => "actor",
            Node::Learner { .. } => "learner",
        }
    }
}

/// The nodes to start, checked before any starts.
fn plan(launches: &[(PathBuf, LaunchFile)], only: &[String], practising: bool) -> anyhow::Result<Vec<Node>> {
    for name in only {
        if !["robot", "reward", "actor", "learner"].contains(&name.as_str()) {
            bail!("--only {name}: the nodes are robot, reward, actor and learner");
        }
    }
    let wanted = |kind: &str| only.is_empty() || only.iter().any(|o| o == kind);
    let mut nodes = Vec::new();
    // Files sharing a learner namespace share one learner: same network shapes needed.
    let mut learners: BTreeMap<String, usize> = BTreeMap::new();
    for (file, (path, launch)) in launches.iter().enumerate() {
        let is_sim = matches!(launch.robot, RobotConfig::Sim(_));
        if practising {
            // A real robot's actor drives it through its driver itself
            // (a serial bus is its alone; a ros2_control arm or a car's
            // driver runs elsewhere).
            if wanted("robot") && is_sim {
                nodes.push(Node::Robot { file });
            }
            if wanted("actor") {
                nodes.push(Node::Actor { file });
            }
            let namespace = launch.learner_namespace().to_string();
            match learners.get(&namespace) {
                Some(&first) => {
                    let (first_path, first_launch) = &launches[first];
                    if first_launch.learner != launch.learner || first_launch.robot != launch.robot {
                        bail!(
                            "{} and {} share the learner namespace `{namespace}` but differ in their robot or learner sections: one learner trains one network",
                            first_path.display(),
                            path.display()
                        );
                    }
                }
                None => {
                    learners.insert(namespace.clone(), file);
                    if wanted("learner") {
                        nodes.push(Node::Learner { namespace, file });
                    }
                }
            }
        } else {
            if wanted("robot") {
                nodes.push(Node::Robot { file });
            }
            if wanted("reward") && matches!(launch.reward, RewardConfig::Vlm(_)) {
                nodes.push(Node::Reward { file });
            }
        }
    }
    if nodes.is_empty() {
        let available = if practising {
            "robot, actor, learner".to_string()
        } else if launches.iter().any(|(_, l)| matches!(l.reward, RewardConfig::Vlm(_))) {
            "robot, reward (actor, learner with --run-dir)".to_string()
        } else {
            "robot (actor, learner with --run-dir)".to_string()
        };
        bail!("--only {}: these launch files have the nodes {available}", only.join(","));
    }
    let names: Vec<&str> = launches.iter().map(|(_, l)| l.namespace.as_str()).collect();
    for (i, a) in names.iter().enumerate() {
        if names[..i].contains(a) && nodes.iter().any(|n| matches!(n, Node::Robot { .. } | Node::Actor { .. })) {
            bail!("{}: namespace `{a}` is used by another launch file too; each robot needs its own", launches[i].0.display());
        }
    }
    Ok(nodes)
}

impl LaunchArgs {
    pub fn run(self) -> anyhow::Result<serde_json::Value> {
        let mut launches = Vec::new();
        for path in &self.configs {
            launches.push((path.clone(), LaunchFile::load(path)?));
        }
        let nodes = plan(&launches, &self.only, self.run_dir.is_some())?;
        if self.console {
            if self.run_dir.is_none() {
                bail!("--console shows practice: pass --run-dir too");
            }
            // Each actor's console needs an address of its own (port 0: any free one).
            let actors: Vec<&LaunchFile> = nodes.iter().filter_map(|n| match n { Node::Actor { file } => Some(&launches[*file].1), _ => None }).collect();
            // Same port, and the same address or one of them every address (0.0.0.0, ::).
            let clash = |a: std::net::SocketAddr, b: std::net::SocketAddr| a.port() != 0 && a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified());
            for (i, a) in actors.iter().enumerate() {
                let Ok(mine) = a.console.socket_address() else { continue };
                if let Some(b) = actors[..i].iter().find(|b| b.console.socket_address().is_ok_and(|theirs| clash(mine, theirs))) {
                    bail!("--console: robots {} and {} both serve their console on port {} ({} and {}); give each its own console.address (or port 0)", b.name, a.name, mine.port(), b.console.address, a.console.address);
                }
            }
        }
        let several = launches.len() > 1;
        let learner_count = nodes.iter().filter(|n| matches!(n, Node::Learner { .. })).count();
        let actors_here = nodes.iter().filter(|n| matches!(n, Node::Actor { .. })).count();
        let actors_left = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(actors_here));

        let mut threads = Vec::new();
        for node in nodes {
            let (path, launch) = match &node {
                Node::Robot { file } | Node::Reward { file } | Node::Actor { file } | Node::Learner { file, .. } => launches[*file].clone(),
            };
            let key = match &node {
                Node::Learner { namespace, .. } if learner_count > 1 => format!("learner {namespace}"),
                Node::Learner { .. } => "learner".to_string(),
                other if several => format!("{}/{}", launch.name, other.kind()),
                other => other.kind().to_string(),
            };
            let run_dir = self.run_dir.clone();
            let (steps, realtime, resume, duration_s, idle_s, console) = (self.steps, self.realtime, self.resume, self.duration_s, self.learner_idle_s, self.console);
            let actors_left = actors_left.clone();
            let handle = std::thread::Builder::new().name(format!("node-{key}")).spawn(move || -> anyhow::Result<serde_json::Value> {
                match node {
                    Node::Robot { .. } if run_dir.is_some() => {
                        // Steps as its actor asks; with the actor in this process, ends after it.
                        let until = move || actors_here > 0 && actors_left.load(std::sync::atomic::Ordering::Acquire) == 0;
                        crate::sim::run_lockstep(&path, duration_s, &until)
                    }
                    Node::Robot { .. } if matches!(launch.robot, RobotConfig::Sim(_)) => crate::sim::run(&path, duration_s),
                    Node::Robot { .. } => crate::driver::run(&path, duration_s),
                    Node::Reward { .. } => crate::reward_node::RewardNodeArgs { config: path.clone(), duration_s }.run(),
                    Node::Actor { file } => {
                        let is_sim = matches!(launch.robot, RobotConfig::Sim(_));
                        // With `reward: Human` the labels come over ROS 2 (`practice/command`).
                        let operator = match launch.reward {
                            RewardConfig::Human => crate::operator::OperatorKind::Joy,
                            _ => crate::operator::OperatorKind::None,
                        };
                        let defaults = crate::practice::PracticeArgs::with_defaults(path.clone());
                        let result = crate::practice::PracticeArgs {
                            run_dir: Some(run_dir.expect("practising").join(&launch.name)),
                            steps,
                            resume,
                            operator,
                            realtime,
                            learner: crate::practice::LearnerPlacement::Remote,
                            robot: crate::robot_choice::RobotChoice { placement: if is_sim { wiring::robot::Placement::Remote } else { wiring::robot::Placement::Local }, ..defaults.robot.clone() },
                            actor_id: file as u64 + 1,
                            log_status: true,
                            console,
                            ..defaults
                        }
                        .run();
                        actors_left.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
                        result
                    }
                    Node::Learner { namespace, .. } => {
                        let folder = if learner_count > 1 { format!("learner_{}", namespace.trim_matches('/').replace('/', "_")) } else { "learner".into() };
                        let learner_dir = run_dir.expect("practising").join(folder);
                        // With actors in this process the learner ends after them; alone, it serves until killed.
                        let until_idle = (actors_here > 0).then_some(idle_s);
                        let until = move || actors_left.load(std::sync::atomic::Ordering::Acquire) == 0;
                        crate::learner::run_learner_node_until(&path, learner_dir, resume, until_idle, &until)
                    }
                }
            })?;
            threads.push((key, handle));
        }
        let mut report = serde_json::Map::new();
        let mut failures = Vec::new();
        for (key, handle) in threads {
            match handle.join() {
                Ok(Ok(result)) => {
                    report.insert(key, result);
                }
                Ok(Err(e)) => failures.push(format!("node `{key}`: {e:#}")),
                Err(_) => failures.push(format!("node `{key}` panicked")),
            }
        }
        if !failures.is_empty() {
            bail!("{}", failures.join("; "));
        }
        Ok(serde_json::Value::Object(report))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn launch(namespace: &str, learner_namespace: Option<&str>, hidden: u32) -> (PathBuf, LaunchFile) {
        let ns = learner_namespace.map(|n| format!(", namespace: Some(\"{n}\")")).unwrap_or_default();
        let text = format!("(name: \"r_{namespace}\", namespace: \"{namespace}\", robot: Sim((task: PandaReach)), safety: (preset: Some(FrankaPanda)), learner: (hidden: [{hidden}]{ns}))");
        (PathBuf::from(format!("{namespace}.ron")), LaunchFile::parse(&text, Path::new("test.ron")).unwrap())
    }

    #[test]
    fn robots_sharing_a_learner_namespace_get_one_learner_and_one_actor_each() {
        let files = [launch("r1", Some("fleet"), 32), launch("r2", Some("fleet"), 32), launch("r3", None, 32)];
        let nodes = plan(&files, &[], true).unwrap();
        assert_eq!(
            nodes,
            vec![
                Node::Robot { file: 0 },
                Node::Actor { file: 0 },
                Node::Learner { namespace: "fleet".into(), file: 0 },
                Node::Robot { file: 1 },
                Node::Actor { file: 1 },
                Node::Robot { file: 2 },
                Node::Actor { file: 2 },
                Node::Learner { namespace: "r3".into(), file: 2 },
            ]
        );
        assert_eq!(plan(&files, &["learner".into()], true).unwrap().len(), 2);
        assert_eq!(plan(&files, &["robot".into()], true).unwrap().len(), 3);
        assert_eq!(plan(&files[..1], &[], false).unwrap(), vec![Node::Robot { file: 0 }]);
    }

    #[test]
    fn a_shared_learner_with_different_networks_or_a_shared_robot_namespace_is_refused() {
        let err = plan(&[launch("r1", Some("fleet"), 32), launch("r2", Some("fleet"), 64)], &[], true).unwrap_err().to_string();
        assert!(err.contains("r1.ron") && err.contains("r2.ron") && err.contains("`fleet`"), "{err}");
        let err = plan(&[launch("r1", None, 32), launch("r1", None, 32)], &[], false).unwrap_err().to_string();
        assert!(err.contains("namespace `r1`"), "{err}");
        let err = plan(&[launch("r1", None, 32)], &["planner".into()], false).unwrap_err().to_string();
        assert!(err.contains("--only planner"), "{err}");
    }
}
