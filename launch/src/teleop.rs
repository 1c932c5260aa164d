//! `rrl teleop`: a human records demo episodes with a leader arm, a gamepad
//! or SpaceMouse over ROS 2, or the keyboard, through the safety gate,
//! labelling each on `practice/command` or with keys.

use std::path::PathBuf;

use anyhow::bail;
use rrl_types::config::LaunchFile;
use rrl_types::Environment;

use crate::operator::{OperatorKind, Paced};

#[derive(clap::Args)]
pub struct TeleopArgs {
    /// Launch file of the robot and task.
    #[arg(long)]
    config: PathBuf,
    /// Run folder; demos go to its demos/ and seed `rrl practice --run-dir` on it. Default: runs/<launch name>.
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// Demo episodes to record (the session also ends on a `stop` command).
    #[arg(long, default_value_t = 10)]
    episodes: u32,
    /// Joy topic of the gamepad or SpaceMouse.
    #[arg(long, default_value = "/spacenav/joy")]
    joy_topic: String,
    /// `joy` (gamepad / SpaceMouse over ROS 2; labels on practice/command), `keyboard` (this terminal), or `none` (a leader arm of the launch file drives alone).
    #[arg(long, value_enum, default_value = "joy")]
    operator: OperatorKind,
    /// Label every step's frames for `rrl classifier train`: success while
    /// the operator marks the view a success (gamepad button 5 held; `m`
    /// toggles it on the keyboard), failure otherwise.
    #[arg(long)]
    label_frames: bool,
    /// Serve the operator's browser console at the launch file's
    /// `console.address` (labels, pause, resume, reset done, stop).
    #[arg(long)]
    console: bool,
    #[command(flatten)]
    robot: crate::robot_choice::RobotChoice,
}

impl TeleopArgs {
    pub fn run(self) -> anyhow::Result<serde_json::Value> {
        let launch = LaunchFile::load(&self.config)?;
        if self.operator == OperatorKind::None && launch.leader.is_none() {
            bail!("teleop needs a human: --operator joy or keyboard, or a leader arm in the launch file");
        }
        if self.label_frames && self.operator == OperatorKind::None {
            bail!("--label-frames needs a human who marks successes: --operator joy (button 5 held) or keyboard (`m` toggles)");
        }
        let seed = crate::robot_choice::sim_seed(&launch) + 20_000;
        let started = self.robot.start(&launch, &self.config, seed)?;
        let mut env = started.task;
        let run_dir = crate::practice::run_folder(self.run_dir.clone(), &launch);
        // The follower tracks a leader arm from its first move on.
        let leader = env.leader(&launch, &self.config, wiring::leader::Tracking::Always)?;
        if leader.is_some() {
            eprintln!("teleop: move the leader arm on {} to drive the follower", launch.leader.as_ref().map_or("", |l| l.bus.port.as_str()));
        }
        let mut operator = crate::operator::with_leader(self.operator.start(&launch, &self.joy_topic, env.action_size())?, leader);
        let console = match self.console {
            true => Some(crate::operator_console::OperatorConsole::start(&launch, &format!("{} · teleop {}", launch.name, started.name), rrl_types::PracticeTask::live_status(&env), None)?),
            false => None,
        };
        if let Some(console) = &console {
            operator = console.operator(operator, &launch.namespace)?;
        }
        let mut paced = Paced::new(operator.as_mut(), Some(std::time::Duration::from_secs_f64(1.0 / launch.practice.policy_rate_hz)));
        // The operator's live view on practice/live (a real arm's task keeps one).
        let _live_view = match rrl_types::PracticeTask::live_status(&env) {
            Some(live) => Some(ros_edge::live_topic::LiveTopic::start(&launch.namespace, live, |_| {})?),
            None => None,
        };
        // Holding still: no displacement (and the Panda's gripper, its fourth action, open).
        let mut idle = vec![0.0; env.action_size()];
        if idle.len() == 4 {
            idle[3] = -1.0;
        }
        if self.operator == OperatorKind::Joy {
            eprintln!("teleop: move the SpaceMouse/gamepad to drive the arm; publish success, failure, pause, resume or stop on {}/practice/command", launch.namespace);
        }
        let reports = policies::practice::teleoperate(&mut env, &mut paced, &run_dir, &started.name, self.episodes, u64::from(launch.practice.max_episode_steps), seed, &idle, self.label_frames, console.as_ref().map(|c| c.live()), |e| {
            tracing::info!(episode = e.episode, steps = e.steps, success = ?e.success, reason = %e.reason, "demo recorded");
            if let Some(console) = &console {
                console.episode(e);
            }
        })?;
        let robot_node = crate::robot_choice::finish_node(started.node)?;
        // What this session labelled, from the files themselves.
        let (mut marked_success, mut marked_failure) = (0u64, 0u64);
        for report in &reports {
            let episode = recording::read_episode(&run_dir.join("demos").join(recording::episode::episode_file_name(report.episode)))?;
            for label in episode.steps.iter().filter_map(|s| s.flags.label) {
                *(if label { &mut marked_success } else { &mut marked_failure }) += 1;
            }
        }
        Ok(serde_json::json!({
            "labelled_frames": {"success": marked_success, "failure": marked_failure},
            "task": started.name,
            "robot_node": robot_node,
            "run_dir": run_dir.display().to_string(),
            "episodes": reports.len(),
            "successes": reports.iter().filter(|r| r.success == Some(true)).count(),
            "steps": reports.iter().map(|r| r.steps).sum::<u64>(),
            "human_steps": reports.iter().map(|r| r.interventions).sum::<u64>(),
            "reports": reports,
        }))
    }
}
