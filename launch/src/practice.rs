//! `rrl practice`, `rrl eval` and `rrl export-mcap`: the practice workflow
//! on the robot of a launch file (the simulated Panda's tasks, or the reach
//! task on a real arm), evaluation of a checkpoint, and export of a run's
//! episodes.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use policies::practice::{EpisodeReport, Operator, PracticeSettings};
use policies::{Sac, SacConfig};
use rrl_types::config::{BehaviourCloningBase, FileBase, LaunchFile, PracticeBase, ResidualScale, RewardConfig, RobotConfig};
use rrl_types::Environment;
use sim_bridge::panda::{PandaVariant, ScriptedExpert};
use wiring::robot::Placement;

use crate::operator::OperatorKind;

/// Where the learner runs (`--learner`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LearnerPlacement {
    /// A thread of this process.
    Local,
    /// A learner node in this process, reached over ROS 2 like a remote one.
    Node,
    /// An `rrl learner` node elsewhere, over ROS 2.
    Remote,
}

#[derive(clap::Args)]
pub struct PracticeArgs {
    /// Launch file; its `practice` and `learner` sections set the schedule.
    #[arg(long)]
    pub config: PathBuf,
    /// Run folder (episodes, checkpoint, metrics). Default: runs/<launch name>.
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Online steps in all (overrides practice.total_steps).
    #[arg(long)]
    pub steps: Option<u64>,
    /// Continue the run in --run-dir: its episodes refill the buffers and its checkpoint restores the learner.
    #[arg(long)]
    pub resume: bool,
    /// `none` (autonomous), `joy` (gamepad / SpaceMouse over ROS 2 takes over; commands on practice/command) or `keyboard` (this terminal; keys listed at start).
    #[arg(long, value_enum, default_value = "none")]
    pub operator: OperatorKind,
    /// Joy topic for `--operator joy` (a SpaceMouse publishes /spacenav/joy).
    #[arg(long, default_value = "/spacenav/joy")]
    pub joy_topic: String,
    /// Pace episodes to the policy rate, as on a robot (the actor then never waits for the learner).
    #[arg(long)]
    pub realtime: bool,
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Evaluation episodes at the end (overrides practice.eval_episodes).
    #[arg(long)]
    pub eval_episodes: Option<u32>,
    /// `local` (a thread of this process), `node` (a learner node in this process, reached over ROS 2
    /// like a remote one) or `remote` (an `rrl learner` node elsewhere, over ROS 2).
    #[arg(long, value_enum, default_value = "local")]
    pub learner: LearnerPlacement,
    #[command(flatten)]
    pub robot: crate::robot_choice::RobotChoice,
    /// This actor's id on a remote learner (unique per actor).
    #[arg(long, default_value_t = 1)]
    pub actor_id: u64,
    /// No progress bar; each episode's status line goes to the log instead
    /// (several actors in one process, under `rrl launch`).
    #[arg(skip)]
    pub log_status: bool,
    /// Residual RL on a frozen base policy: `bc.safetensors` from `rrl bc train`, or a TorchScript file (.pt/.ts) taking [1, O] observations (overrides practice.base).
    #[arg(long)]
    pub base: Option<PathBuf>,
    /// Largest residual, in the task's [-1, 1] action units: one number, or one per action (`0.3,0.3,0.3,1`).
    #[arg(long, default_value = "0.3")]
    pub residual_scale: ResidualScale,
    /// Actions played from each action chunk of a TorchScript base.
    #[arg(long, default_value_t = 1)]
    pub base_execute: usize,
}

#[derive(clap::Args)]
pub struct TeleopArgs {
    /// Launch file of the robot and task.
    #[arg(long)]
    pub config: PathBuf,
    /// Run folder; demos go to its demos/ and seed `rrl practice --run-dir` on it. Default: runs/<launch name>.
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Demo episodes to record (the session also ends on a `stop` command).
    #[arg(long, default_value_t = 10)]
    pub episodes: u32,
    /// Joy topic of the gamepad or SpaceMouse.
    #[arg(long, default_value = "/spacenav/joy")]
    pub joy_topic: String,
    /// `joy` (gamepad / SpaceMouse over ROS 2; labels on practice/command) or `keyboard` (this terminal).
    #[arg(long, value_enum, default_value = "joy")]
    pub operator: OperatorKind,
    #[command(flatten)]
    pub robot: crate::robot_choice::RobotChoice,
}

#[derive(clap::Args)]
pub struct EvalArgs {
    /// The learner checkpoint (`learner.safetensors` of a run).
    pub checkpoint: PathBuf,
    /// Launch file of the robot and task the checkpoint was trained on.
    #[arg(long)]
    pub config: PathBuf,
    #[arg(long, default_value_t = 20)]
    pub episodes: u32,
    /// Output folder for episodes, eval.json and plots. Default: <checkpoint folder>/eval.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, default_value_t = 50_000)]
    pub seed: u64,
    #[command(flatten)]
    pub robot: crate::robot_choice::RobotChoice,
}

pub fn run(args: PracticeArgs) -> anyhow::Result<serde_json::Value> {
    let launch = LaunchFile::load(&args.config)?;
    let seed = match &launch.robot {
        RobotConfig::Sim(sim) => sim.seed,
        _ => 0,
    };
    let run_dir = args.run_dir.clone().unwrap_or_else(|| PathBuf::from("runs").join(&launch.name));
    let recorded = recording::list_episodes(&run_dir.join("episodes"))?.len();
    if recorded > 0 && !args.resume {
        bail!("{} already holds {recorded} practice episodes: pass --resume to continue that run, or choose another --run-dir", run_dir.display());
    }
    args.robot.check(&launch, &args.config)?;
    match &launch.robot {
        RobotConfig::Sim(_) if args.robot.placement != Placement::Local => {
            if let RewardConfig::Vlm(_) = launch.reward {
                bail!("{}: --robot {} learns from the task's own reward; a Vlm(..) reward renders the scene in the actor's process (use --robot local)", args.config.display(), args.robot.placement);
            }
            let (_, variant) = wiring::robot::panda_variant(&launch, &args.config)?;
            let started = args.robot.start(&launch, &args.config, seed)?;
            std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
            let mut report = practise_task(started.task, &args, &launch, run_dir, seed, started.name, scripted_demo(variant), |_| None)?;
            if let Some(node) = started.node {
                report["robot_node"] = node.finish().context("the simulated robot's task node")?;
            }
            Ok(report)
        }
        RobotConfig::Sim(_) => {
            let (task, variant) = wiring::robot::panda_task(&launch, &args.config)?;
            std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
            // With a Vlm(..) reward, demos and practice learn from the VLM's progress rewards.
            let env = wiring::practice_env::PracticeEnv::for_launch(task, &launch, &args.config, &run_dir)?;
            practise_task(env, &args, &launch, run_dir, seed, format!("{variant:?}"), scripted_demo(variant), |env| env.vlm_counts())
        }
        RobotConfig::TopicArm(_) | RobotConfig::SerialArm(_) => {
            // A real robot runs on the wall clock: the actor never waits for the learner.
            let args = PracticeArgs { realtime: true, ..args };
            let env = wiring::robot::start_arm(&launch, &args.config, seed)?;
            std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
            // With a Vlm(..) reward, a real camera's frames are scored for the reach task's steps.
            let env = wiring::practice_env::PracticeEnv::for_arm(env, &launch, &args.config, &run_dir)?;
            let demo = wiring::arm_task::reach_expert(launch.practice.tool_step_m);
            practise_task(env, &args, &launch, run_dir, seed, "ArmReach".into(), demo, |env| env.vlm_counts())
        }
        RobotConfig::Car(_) => bail!("{}: practice drives arms (tool-space actions); a car has no end effector", args.config.display()),
    }
}

/// The scripted expert's demo controller for a Panda task.
fn scripted_demo(variant: PandaVariant) -> impl FnMut(&[f64], bool) -> Vec<f64> {
    let mut expert = ScriptedExpert::default();
    move |obs: &[f64], start: bool| {
        if start {
            expert.reset();
        }
        expert.act(variant, obs).to_vec()
    }
}

/// Practice on `env` with `expert` for demos: directly, or as a residual
/// on top of a frozen base policy (`--base`, or the launch file's
/// `practice.base`; demos relabelled as the residual that turns the base's
/// action into the expert's).
#[allow(clippy::too_many_arguments)]
fn practise_task<E: rrl_types::PracticeTask + 'static>(
    mut env: E,
    args: &PracticeArgs,
    launch: &LaunchFile,
    run_dir: PathBuf,
    seed: u64,
    task_name: String,
    mut expert: impl FnMut(&[f64], bool) -> Vec<f64>,
    vlm_counts: fn(&E) -> Option<serde_json::Value>,
) -> anyhow::Result<serde_json::Value> {
    let choice = if args.device == "auto" { launch.learner.device } else { crate::train::parse_device(&args.device)? };
    let device = policies::select_device(choice)?;
    let task_size = (env.observation_size(), env.action_size());
    let base_choice = match &args.base {
        Some(path) => PracticeBase::File(FileBase { path: path.display().to_string(), execute: args.base_execute, residual_scale: args.residual_scale.clone() }),
        None => launch.practice.base.clone(),
    };
    let (base, scale, mut base_report) = match base_choice {
        PracticeBase::None => return practise_on(env, args, launch, run_dir, device, seed, task_name, false, expert, vlm_counts, serde_json::Value::Null),
        PracticeBase::File(file) => {
            let path = PathBuf::from(&file.path);
            (load_base(&path, task_size.0, task_size.1, file.execute)?, file.residual_scale, serde_json::json!({"path": file.path}))
        }
        PracticeBase::BehaviourCloning(bc) => {
            let (path, report) = behaviour_cloning_base(&mut env, &bc, &run_dir.join("base"), &task_name, launch.practice.demo_episodes, seed + 20_000, &mut expert)?;
            (load_base(&path, task_size.0, task_size.1, bc.execute)?, bc.residual_scale, report)
        }
    };
    base_report["residual_scale"] = serde_json::json!(scale);
    let env = policies::residual::ResidualEnv::new(env, base, &scale).context("the base policy")?;
    let scales = env.scales.clone();
    let demo = move |obs: &[f64], start: bool| {
        let (task_obs, base_action) = obs.split_at(task_size.0);
        policies::residual::residual_for(&expert(task_obs, start), base_action, &scales)
    };
    practise_on(env, args, launch, run_dir, device, seed, task_name, true, demo, move |env| vlm_counts(&env.env), base_report)
}

/// The behaviour-cloning base of a run: demos of the task itself in
/// `folder/demos`, the policy cloned from them in `folder/bc.safetensors`.
/// A resumed run finds both there and trains nothing.
fn behaviour_cloning_base<E: rrl_types::PracticeTask>(
    env: &mut E,
    bc: &BehaviourCloningBase,
    folder: &Path,
    task_name: &str,
    demo_episodes: u32,
    seed: u64,
    expert: &mut impl FnMut(&[f64], bool) -> Vec<f64>,
) -> anyhow::Result<(PathBuf, serde_json::Value)> {
    let path = folder.join("bc.safetensors");
    let mut report = serde_json::json!({"path": path.display().to_string(), "trained": false});
    if path.exists() {
        tracing::info!(path = %path.display(), "behaviour-cloning base found: practice corrects it");
        return Ok((path, report));
    }
    let successes = policies::practice::record_demo_episodes(env, folder, task_name, demo_episodes, seed, expert)?;
    let (observation_size, action_size) = (env.observation_size(), env.action_size());
    let progress = indicatif::ProgressBar::new_spinner().with_message(format!("behaviour cloning: {} gradient steps on {demo_episodes} demos", bc.steps));
    progress.enable_steady_tick(std::time::Duration::from_millis(200));
    let cloned = train_bc_on_demos(&folder.join("demos"), observation_size, action_size, bc.horizon, bc.execute, bc.steps);
    progress.finish_and_clear();
    let (policy, loss, demos, steps) = cloned?;
    policy.save(&path)?;
    tracing::info!(demos, demo_successes = successes, steps, final_loss = loss, path = %path.display(), "behaviour-cloning base trained: practice corrects it");
    report["trained"] = serde_json::json!(true);
    report["demos"] = serde_json::json!(demos);
    report["demo_successes"] = serde_json::json!(successes);
    report["final_loss"] = serde_json::json!(loss);
    Ok((path, report))
}

/// A frozen base policy from a file: BC from `rrl bc train` (safetensors)
/// or a user's TorchScript module, checked against the task's sizes.
fn load_base(path: &Path, observation_size: usize, action_size: usize, execute: usize) -> anyhow::Result<Box<dyn policies::residual::BasePolicy>> {
    use policies::residual::BasePolicy;
    let base: Box<dyn BasePolicy> = match path.extension().and_then(|e| e.to_str()) {
        Some("safetensors") => Box::new(policies::residual::BcPolicy::load(path, &BC_HIDDEN)?),
        Some("pt" | "ts") => Box::new(policies::residual::TorchScriptPolicy::load(path, observation_size, action_size, execute)?),
        _ => bail!("{}: a base policy is a .safetensors file from `rrl bc train` or a TorchScript .pt/.ts file", path.display()),
    };
    if (base.observation_size(), base.action_size()) != (observation_size, action_size) {
        bail!("{}: a policy for {}/{} observation/action values; the task has {observation_size}/{action_size}", path.display(), base.observation_size(), base.action_size());
    }
    Ok(base)
}

/// Practice on `env` (the task, or a residual on top of a base): demos,
/// actor and learner, metrics, final evaluation.
#[allow(clippy::too_many_arguments)]
fn practise_on<E: rrl_types::PracticeTask>(
    mut env: E,
    args: &PracticeArgs,
    launch: &LaunchFile,
    run_dir: PathBuf,
    device: tch::Device,
    seed: u64,
    task_name: String,
    residual: bool,
    demo_controller: impl FnMut(&[f64], bool) -> Vec<f64>,
    vlm_counts: impl Fn(&E) -> Option<serde_json::Value>,
    base_report: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let demo_successes = policies::practice::record_demo_episodes(&mut env, &run_dir, &task_name, launch.practice.demo_episodes, seed + 10_000, demo_controller)?;
    if launch.practice.demo_episodes > 0 {
        tracing::info!(episodes = launch.practice.demo_episodes, successes = demo_successes, "demo episodes ready");
    }

    let eval_episodes = args.eval_episodes.unwrap_or(launch.practice.eval_episodes);
    let mut base_report = base_report;
    let base_eval = run_dir.join("base").join("eval");
    if residual && !base_eval.join("eval.json").exists() {
        // The base alone (no residual) on the episodes the final evaluation
        // plays, so the report says what practice added.
        let zero = vec![0.0; env.action_size()];
        let result = evaluate_policy(&mut env, ("policy", "the base alone".into()), &task_name, &base_eval, eval_episodes, seed + 50_000, |_| zero.clone())?;
        tracing::info!(success_rate = result["success_rate"].as_f64(), "the base policy alone, before practice");
        base_report["eval"] = result;
    }

    let mut config = wiring::learner::sac_config(launch, &env, seed + 1);
    // A residual starts as exactly the base.
    config.zero_actor_output = residual;
    let settings = PracticeSettings {
        task: task_name.clone(),
        total_steps: args.steps.unwrap_or(launch.practice.total_steps),
        warmup_steps: launch.learner.warmup_steps,
        max_episode_steps: u64::from(launch.practice.max_episode_steps),
        stuck_steps: (launch.practice.stuck_timeout_s * launch.practice.policy_rate_hz).round() as usize,
        stuck_tolerance: 1e-3,
        seed,
        run_dir: run_dir.clone(),
        sync_every_step: args.realtime,
        // A learner of this process (a thread, or a node over ROS 2) can keep step with the simulation.
        lockstep: !args.realtime && args.learner != LearnerPlacement::Remote,
        publish_every: if args.realtime { launch.learner.publish_every_updates } else { 1 },
        checkpoint_every: 1000,
        replay_capacity: launch.learner.replay_capacity as usize,
        max_backlog: 20_000,
        stop_at_success: launch.practice.stop_at_success,
    };
    let mut operator = args.operator.start(&launch.namespace, &args.joy_topic, env.action_size())?;
    let pace = args.realtime.then(|| std::time::Duration::from_secs_f64(1.0 / launch.practice.policy_rate_hz));
    let mut paced = Paced { inner: operator.as_mut(), period: pace, last: None };

    let progress = if args.log_status { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new(settings.total_steps) };
    progress.set_style(indicatif::ProgressStyle::with_template("{bar:25} {pos}/{len} steps eta {eta} {msg}").expect("valid template"));
    let mut status = StatusLine::default();
    let csv_path = run_dir.join("practice.csv");
    let mut csv = std::fs::OpenOptions::new().create(true).append(true).open(&csv_path).with_context(|| format!("opening {}", csv_path.display()))?;
    if csv.metadata()?.len() == 0 {
        writeln!(csv, "episode,steps,total_steps,return,success,interventions,safety_events,reason,learner_updates,seconds")?;
    }
    let mut board = Some(crate::metrics::TensorBoardWriter::create(&run_dir.join("tensorboard")).context("creating the TensorBoard event file")?);
    let mut write_error: Option<anyhow::Error> = None;
    let mut on_episode = |episode: &EpisodeReport| {
        status.push(episode);
        progress.set_position(episode.total_steps);
        progress.set_message(status.line());
        if args.log_status {
            tracing::info!(robot = %launch.name, total_steps = episode.total_steps, "{}", status.line());
        }
        let success = episode.success.map(|s| u8::from(s).to_string()).unwrap_or_default();
        let row = format!(
            "{},{},{},{:.4},{},{},{},{},{},{:.3}\n",
            episode.episode, episode.steps, episode.total_steps, episode.episode_return, success, episode.interventions, episode.safety_events, episode.reason, episode.learner_updates, episode.seconds
        );
        // Like the episodes, the row waits out a full disk (the actor, and so the robot, holds meanwhile).
        let appended = recording::retry_while_storage_full(
            || append_whole_line(&mut csv, &row),
            recording::is_storage_full,
            std::time::Duration::from_secs(1),
            |e| tracing::warn!("the disk is full ({e}) writing practice.csv: practice is paused and retries every second; free some space to go on"),
            |waited| tracing::warn!(paused_s = waited, "practice.csv is written again: practice resumes"),
        );
        if let Err(e) = appended {
            write_error.get_or_insert(anyhow::Error::from(e).context("writing practice.csv"));
        }
        let mut scalars = vec![("practice/return", episode.episode_return), ("practice/success_rate_20", status.success_rate()), ("practice/intervention_rate", status.intervention_rate()), ("practice/safety_events", episode.safety_events as f64)];
        scalars.push(("learner/updates", episode.learner_updates as f64));
        if let Some(writer) = board.as_mut() {
            for (tag, value) in scalars {
                if let Err(e) = writer.scalar(tag, episode.total_steps, value) {
                    // A diagnostic, not the run's data: the curves stop here, practice goes on.
                    tracing::warn!("TensorBoard events are no longer written: {e}");
                    board = None;
                    break;
                }
            }
        }
    };
    let mut link_report = serde_json::Value::Null;
    let report = match args.learner {
        LearnerPlacement::Local => policies::practice::practice(&mut env, config.clone(), device, &mut paced, &settings, &mut on_episode)?,
        LearnerPlacement::Remote => {
            let mut link = ros_edge::learner_link::RosLearnerLink::connect(launch.learner_namespace(), args.actor_id)?;
            let report = policies::practice::practice_with_link(&mut env, config.clone(), &mut link, &mut paced, &settings, &mut on_episode);
            let (stream_items, unconfirmed) = link.close(std::time::Duration::from_secs(60));
            link_report = serde_json::json!({"actor_id": args.actor_id, "stream_items": stream_items, "unconfirmed": unconfirmed});
            report?
        }
        LearnerPlacement::Node => {
            // The learner as a ROS 2 node of this process: the actor reaches it
            // over DDS exactly as it reaches one on another machine.
            let resume = !recording::list_episodes(&run_dir.join("episodes"))?.is_empty();
            let spec = ros_edge::learner_link::LearnerNodeSpec {
                namespace: launch.learner_namespace().to_string(),
                config: config.clone(),
                device,
                warmup_steps: settings.warmup_steps,
                max_episode_steps: settings.max_episode_steps,
                publish_every: settings.publish_every,
                replay_capacity: settings.replay_capacity,
                checkpoint_every: settings.checkpoint_every,
                task: task_name.clone(),
            };
            let node = ros_edge::learner_link::InProcessLearnerNode::start(spec, run_dir.clone(), resume)?;
            let link = ros_edge::learner_link::RosLearnerLink::connect(launch.learner_namespace(), args.actor_id)?;
            let mut link = ros_edge::learner_link::InProcessLink { link, node: &node };
            let report = policies::practice::practice_with_link(&mut env, config.clone(), &mut link, &mut paced, &settings, &mut on_episode);
            // A node that failed confirms nothing more: do not wait for it.
            let confirm_within = if node.failure().is_some() { std::time::Duration::ZERO } else { std::time::Duration::from_secs(60) };
            let (stream_items, unconfirmed) = link.link.close(confirm_within);
            // Only once the node has confirmed the whole stream may it end (and checkpoint).
            let node_report = node.finish();
            let mut report = report?;
            let node_report = node_report.context("the learner node")?;
            if unconfirmed > 0 {
                bail!("the learner node confirmed {} of the actor's {stream_items} stream items within 60 s", stream_items - unconfirmed);
            }
            report.learner_updates = node_report["updates"].as_u64().unwrap_or(report.learner_updates);
            link_report = serde_json::json!({"actor_id": args.actor_id, "stream_items": stream_items, "unconfirmed": unconfirmed, "learner_node": node_report});
            report
        }
    };
    progress.finish_and_clear();
    if let Some(e) = write_error {
        return Err(e);
    }
    let curve: Vec<(u64, f64)> = status.curve.clone();
    if !curve.is_empty() {
        crate::metrics::learning_curve_png(&run_dir.join("success_rate.png"), &format!("{task_name} practice"), "environment steps", "success rate, last 20 episodes", &curve)?;
    }
    // A remote learner keeps its checkpoint: evaluate it with `rrl eval` there.
    let eval = if args.learner != LearnerPlacement::Remote {
        evaluate_checkpoint(&mut env, &config, &run_dir.join("learner.safetensors"), &task_name, &run_dir.join("eval"), eval_episodes, seed + 50_000)?
    } else {
        serde_json::Value::Null
    };
    Ok(serde_json::json!({
        "task": task_name,
        "run_dir": run_dir.display().to_string(),
        "episodes": report.episodes.len(),
        "resumed_episodes": report.resumed_episodes,
        "total_steps": report.total_steps,
        "learner_updates": report.learner_updates,
        "success_rate_last_20": status.success_rate(),
        "intervention_rate": status.intervention_rate(),
        "safety_events": status.safety_events,
        "stopped_by_operator": report.stopped_by_operator,
        "reached_success_target": report.reached_success,
        "success_confirmations": report.confirmations.iter().map(|(steps, successes)| serde_json::json!({"total_steps": steps, "successes": successes, "of": policies::practice::CONFIRM_EPISODES})).collect::<Vec<_>>(),
        "device": format!("{device:?}"),
        "controller": match &launch.robot {
            RobotConfig::Sim(sim) => serde_json::json!(format!("{:?}", sim.controller)),
            _ => serde_json::Value::Null,
        },
        "learned_rewards": {
            "joined": report.episodes.iter().map(|e| e.learned_rewards.0).sum::<u64>(),
            "missing": report.episodes.iter().map(|e| e.learned_rewards.1).sum::<u64>(),
            "vlm": vlm_counts(&env),
        },
        "eval": eval,
        "link": link_report,
        "base": base_report,
    }))
}

/// Appends `line` to `file` (opened for appending) whole or not at all: a
/// failed write is cut back, so a retry leaves no torn row.
fn append_whole_line(file: &mut std::fs::File, line: &str) -> std::io::Result<()> {
    let before = file.metadata()?.len();
    file.write_all(line.as_bytes()).inspect_err(|_| {
        let _ = file.set_len(before);
    })
}

/// `rrl teleop`: a human records demo episodes with a gamepad or SpaceMouse
/// over ROS 2, through the safety gate, labelling each on `practice/command`.
pub fn teleop(args: TeleopArgs) -> anyhow::Result<serde_json::Value> {
    if args.operator == OperatorKind::None {
        bail!("teleop needs a human: --operator joy or keyboard");
    }
    let launch = LaunchFile::load(&args.config)?;
    let seed = match &launch.robot {
        RobotConfig::Sim(sim) => sim.seed + 20_000,
        _ => 20_000,
    };
    let started = args.robot.start(&launch, &args.config, seed)?;
    let mut env = started.task;
    let run_dir = args.run_dir.clone().unwrap_or_else(|| PathBuf::from("runs").join(&launch.name));
    let mut operator = args.operator.start(&launch.namespace, &args.joy_topic, env.action_size())?;
    let mut paced = Paced { inner: operator.as_mut(), period: Some(std::time::Duration::from_secs_f64(1.0 / launch.practice.policy_rate_hz)), last: None };
    // Holding still: no displacement (and the Panda's gripper, its fourth action, open).
    let mut idle = vec![0.0; env.action_size()];
    if idle.len() == 4 {
        idle[3] = -1.0;
    }
    if args.operator == OperatorKind::Joy {
        eprintln!("teleop: move the SpaceMouse/gamepad to drive the arm; publish success, failure, pause, resume or stop on {}/practice/command", launch.namespace);
    }
    let reports = policies::practice::teleoperate(&mut env, &mut paced, &run_dir, &started.name, args.episodes, u64::from(launch.practice.max_episode_steps), seed, &idle, |e| {
        tracing::info!(episode = e.episode, steps = e.steps, success = ?e.success, reason = %e.reason, "demo recorded");
    })?;
    let robot_node = started.node.map(|node| node.finish().context("the simulated robot's task node")).transpose()?;
    Ok(serde_json::json!({
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

/// Paces policy steps to the robot's rate (`--realtime`) by waiting in the
/// operator poll, which happens once per step.
struct Paced<'a> {
    inner: &'a mut dyn Operator,
    period: Option<std::time::Duration>,
    last: Option<std::time::Instant>,
}

impl Operator for Paced<'_> {
    fn poll(&mut self, observation: &[f64]) -> policies::practice::OperatorInput {
        if let (Some(period), Some(last)) = (self.period, self.last) {
            if let Some(wait) = (last + period).checked_duration_since(std::time::Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        self.last = Some(std::time::Instant::now());
        self.inner.poll(observation)
    }
}

/// Running numbers for the live status line.
#[derive(Default)]
struct StatusLine {
    recent: std::collections::VecDeque<bool>,
    episodes: u64,
    steps: u64,
    interventions: u64,
    safety_events: u64,
    last_return: f64,
    updates: u64,
    started: Option<std::time::Instant>,
    curve: Vec<(u64, f64)>,
}

impl StatusLine {
    fn push(&mut self, e: &EpisodeReport) {
        self.started.get_or_insert_with(std::time::Instant::now);
        self.recent.push_back(e.success == Some(true));
        if self.recent.len() > 20 {
            self.recent.pop_front();
        }
        self.episodes += 1;
        self.steps += e.steps;
        self.interventions += e.interventions;
        self.safety_events += e.safety_events;
        self.last_return = e.episode_return;
        self.updates = e.learner_updates;
        self.curve.push((e.total_steps, self.success_rate()));
    }

    fn success_rate(&self) -> f64 {
        self.recent.iter().filter(|&&s| s).count() as f64 / self.recent.len().max(1) as f64
    }

    fn intervention_rate(&self) -> f64 {
        self.interventions as f64 / self.steps.max(1) as f64
    }

    fn line(&self) -> String {
        let seconds = self.started.map_or(0.0, |t| t.elapsed().as_secs_f64()).max(1e-3);
        format!(
            "ep {} | success(20) {:.0}% | takeover {:.1}% | safety {} | return {:.1} | {} updates ({:.0}/s)",
            self.episodes,
            100.0 * self.success_rate(),
            100.0 * self.intervention_rate(),
            self.safety_events,
            self.last_return,
            self.updates,
            self.updates as f64 / seconds
        )
    }
}

/// Loads a learner checkpoint and runs `episodes` deterministic episodes,
/// recorded under `out`; writes `eval.json` and `eval_returns.png` there.
fn evaluate_checkpoint<E: rrl_types::PracticeTask>(env: &mut E, config: &SacConfig, checkpoint: &Path, task: &str, out: &Path, episodes: u32, seed: u64) -> anyhow::Result<serde_json::Value> {
    let mut sac = Sac::new(config.clone(), tch::Device::Cpu);
    policies::checkpoint::load(&mut sac, checkpoint).with_context(|| format!("loading {}", checkpoint.display()))?;
    evaluate_policy(env, ("checkpoint", checkpoint.display().to_string()), task, out, episodes, seed, |obs| sac.act(obs, true))
}

/// Recorded evaluation episodes of `policy` in `out`, with `eval.json`
/// (naming the policy by `label`) and a plot of the returns.
fn evaluate_policy<E: rrl_types::PracticeTask>(env: &mut E, label: (&str, String), task: &str, out: &Path, episodes: u32, seed: u64, policy: impl FnMut(&[f64]) -> Vec<f64>) -> anyhow::Result<serde_json::Value> {
    let (returns, successes) = policies::practice::evaluate_recorded(env, task, &out.join("episodes"), episodes, seed, policy)?;
    let result = serde_json::json!({
        label.0: label.1,
        "episodes": episodes,
        "success_rate": f64::from(successes) / f64::from(episodes.max(1)),
        "mean_return": returns.iter().sum::<f64>() / returns.len().max(1) as f64,
        "returns": returns,
    });
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("eval.json"), serde_json::to_vec_pretty(&result)?).with_context(|| format!("writing {}", out.join("eval.json").display()))?;
    if !returns.is_empty() {
        let points: Vec<(u64, f64)> = returns.iter().enumerate().map(|(i, &r)| (i as u64, r)).collect();
        crate::metrics::learning_curve_png(&out.join("eval_returns.png"), &format!("{task}: {successes}/{episodes} successes"), "episode", "return", &points)?;
    }
    Ok(result)
}

/// `rrl eval CHECKPOINT --config FILE`.
pub fn eval(args: EvalArgs) -> anyhow::Result<serde_json::Value> {
    let launch = LaunchFile::load(&args.config)?;
    let started = args.robot.start(&launch, &args.config, args.seed)?;
    let mut env = started.task;
    let out = args.out.clone().unwrap_or_else(|| args.checkpoint.parent().unwrap_or(Path::new(".")).join("eval"));
    let config = wiring::learner::sac_config(&launch, &env, 0);
    let mut report = evaluate_checkpoint(&mut env, &config, &args.checkpoint, &started.name, &out, args.episodes, args.seed)?;
    if let Some(node) = started.node {
        report["robot_node"] = node.finish().context("the simulated robot's task node")?;
    }
    Ok(report)
}

/// `rrl export-mcap RUN_DIR --out FILE.mcap|BAG_DIR`: demos, practice and
/// eval episodes, as one MCAP file or as a rosbag2 folder.
pub fn export_mcap(run_dir: &Path, out: &Path) -> anyhow::Result<serde_json::Value> {
    let mut episodes = Vec::new();
    for folder in ["demos", "episodes", "eval/episodes"] {
        for path in recording::list_episodes(&run_dir.join(folder))? {
            episodes.push(recording::read_episode(&path)?);
        }
    }
    if episodes.is_empty() {
        bail!("{}: no recorded episodes (looked in demos/, episodes/, eval/episodes/)", run_dir.display());
    }
    // A path ending in .mcap is one file (Foxglove); anything else a rosbag2 folder (ros2 bag).
    let summary = match out.extension().is_some_and(|e| e == "mcap") {
        true => recording::mcap::export(&episodes, out)?,
        false => recording::mcap::export_bag(&episodes, out)?,
    };
    Ok(serde_json::json!({ "out": out.display().to_string(), "episodes": summary.episodes, "messages": summary.messages, "bytes": summary.bytes }))
}

#[derive(clap::Args)]
pub struct BcArgs {
    /// Launch file of the robot and task.
    #[arg(long)]
    pub config: PathBuf,
    /// Run folder: demos are read from its demos/, the policy is `bc.safetensors` there.
    #[arg(long)]
    pub run_dir: PathBuf,
    /// Actions predicted per chunk.
    #[arg(long, default_value_t = 4)]
    pub horizon: usize,
    /// Actions of each chunk played before predicting again.
    #[arg(long, default_value_t = 2)]
    pub execute: usize,
    /// Gradient steps (train).
    #[arg(long, default_value_t = 2000)]
    pub steps: usize,
    /// Evaluation episodes (eval).
    #[arg(long, default_value_t = 20)]
    pub episodes: u32,
}

pub(crate) const BC_HIDDEN: [i64; 2] = [256, 256];

/// `rrl bc train`: behaviour cloning with action chunks on the run's demos.
pub fn bc_train(args: BcArgs) -> anyhow::Result<serde_json::Value> {
    let launch = LaunchFile::load(&args.config)?;
    let (env, _) = wiring::robot::panda_task(&launch, &args.config)?;
    let (policy, loss, demos, steps) = train_bc_on_demos(&args.run_dir.join("demos"), env.observation_size(), env.action_size(), args.horizon, args.execute, args.steps)?;
    let path = args.run_dir.join("bc.safetensors");
    policy.save(&path)?;
    Ok(serde_json::json!({"policy": path.display().to_string(), "demos": demos, "steps": steps, "final_loss": loss}))
}

/// Behaviour cloning on the demo episodes in `folder`: the policy, its
/// final loss, and how many episodes and steps it learned from.
fn train_bc_on_demos(folder: &Path, o: usize, a: usize, horizon: usize, execute: usize, gradient_steps: usize) -> anyhow::Result<(policies::residual::BcPolicy, f64, usize, usize)> {
    let mut episodes = Vec::new();
    for path in recording::list_episodes(folder)? {
        let episode = recording::read_episode(&path)?;
        if (episode.header.observation_size, episode.header.action_size) != (o, a) {
            bail!("{}: recorded with {}/{} observation/action values, the task has {o}/{a}", path.display(), episode.header.observation_size, episode.header.action_size);
        }
        episodes.push(episode);
    }
    if episodes.is_empty() {
        bail!("{}: no demos (record them with `rrl teleop`, or `rrl practice` records scripted ones)", folder.display());
    }
    // Per episode: its observations and its actions, row by row.
    type Columns = (Vec<Vec<f32>>, Vec<Vec<f32>>);
    let columns: Vec<Columns> = episodes.iter().map(|e| (e.steps.iter().map(|s| s.observation.clone()).collect(), e.steps.iter().map(|s| s.action.clone()).collect())).collect();
    let demos = policies::residual::Demos { episodes: columns.iter().map(|(o, a)| (o.as_slice(), a.as_slice())).collect() };
    let (policy, loss) = policies::residual::BcPolicy::train(&demos, o, a, horizon, execute, &BC_HIDDEN, gradient_steps, 0)?;
    Ok((policy, loss, episodes.len(), columns.iter().map(|c| c.0.len()).sum()))
}

/// `rrl bc eval`: the BC policy's success rate and returns, recorded.
pub fn bc_eval(args: BcArgs) -> anyhow::Result<serde_json::Value> {
    let launch = LaunchFile::load(&args.config)?;
    let (mut env, variant) = wiring::robot::panda_task(&launch, &args.config)?;
    let path = args.run_dir.join("bc.safetensors");
    let mut policy = load_base(&path, env.observation_size(), env.action_size(), 1)?;
    let out = args.run_dir.join("bc_eval");
    let action_size = env.action_size();
    let mut failure = None;
    let (returns, successes) = policies::practice::evaluate_recorded(&mut env, &format!("{variant:?}"), &out.join("episodes"), args.episodes, 60_000, |obs| {
        policy.act(obs).unwrap_or_else(|e| {
            failure.get_or_insert(e.to_string());
            vec![0.0; action_size]
        })
    })?;
    if let Some(e) = failure {
        bail!("the BC policy failed: {e}");
    }
    let result = serde_json::json!({
        "policy": path.display().to_string(),
        "episodes": args.episodes,
        "success_rate": f64::from(successes) / f64::from(args.episodes.max(1)),
        "mean_return": returns.iter().sum::<f64>() / returns.len().max(1) as f64,
        "returns": returns,
    });
    std::fs::write(out.join("eval.json"), serde_json::to_vec_pretty(&result)?)?;
    Ok(result)
}
