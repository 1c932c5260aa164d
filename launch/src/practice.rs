//! `rrl practice`: the practice workflow on the robot of a launch file (the
//! simulated Panda's tasks, or the launch file's task on a real arm), directly or as
//! a residual on a frozen base policy.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use policies::practice::{EpisodeReport, Judge, PracticeSettings};
use rrl_types::config::{BehaviourCloningBase, FileBase, LaunchFile, PracticeBase, ResidualScale, RewardConfig, RobotConfig};
use sim_bridge::panda::{PandaVariant, ScriptedExpert};
use wiring::robot::Placement;

use crate::bc::{load_base, train_bc_on_demos};
use crate::eval::{evaluate_checkpoint, evaluate_policy};
use crate::operator::{OperatorKind, Paced};
use crate::operator_console::OperatorConsole;
use crate::practice_output::PracticeOutput;

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
    /// Serve the operator's browser console at the launch file's
    /// `console.address` (default 127.0.0.1:8765): cameras, curves, the
    /// gate's verdicts; success, failure, pause, resume, reset done, stop.
    #[arg(long)]
    pub console: bool,
    /// Count, from the simulated Panda's measured state, the steps whose
    /// fingertips leave this box (min, max) or whose joints pass their
    /// limits, and report them for practice and evaluation (`rrl bench safety`).
    #[arg(skip)]
    pub violation_box: Option<([f64; 3], [f64; 3])>,
}

impl PracticeArgs {
    /// Practice on `config` with every other flag at its command-line
    /// default, so the defaults stay in one place (clap's) for the commands
    /// that practise on a file themselves (`rrl launch`, `rrl bench safety`).
    pub fn with_defaults(config: PathBuf) -> PracticeArgs {
        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            practice: PracticeArgs,
        }
        let flags = [std::ffi::OsString::from("practice"), "--config".into(), config.into_os_string()];
        <Flags as clap::Parser>::try_parse_from(flags).expect("every practice flag but --config has a default").practice
    }

    pub fn run(self) -> anyhow::Result<serde_json::Value> {
        let launch = LaunchFile::load(&self.config)?;
        let seed = crate::robot_choice::sim_seed(&launch);
        let run_dir = run_folder(self.run_dir.clone(), &launch);
        let recorded = recording::list_episodes(&run_dir.join("episodes"))?.len();
        if recorded > 0 && !self.resume {
            bail!("{} already holds {recorded} practice episodes: pass --resume to continue that run, or choose another --run-dir", run_dir.display());
        }
        self.robot.check(&launch, &self.config)?;
        match &launch.reward {
            RewardConfig::Human if self.operator == OperatorKind::None && !self.console => bail!("{}: reward: Human comes from a person's success and failure labels: pass --operator keyboard or joy, or --console", self.config.display()),
            _ => {}
        }
        match &launch.robot {
            RobotConfig::Sim(_) if wiring::robot::is_car_twin(&launch) => {
                if !matches!(launch.reward, RewardConfig::Task) {
                    bail!("{}: the car twin learns from its course's reward (progress toward the next checkpoint); use `reward: Task`", self.config.display());
                }
                let started = self.robot.start(&launch, &self.config, seed)?;
                std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
                let mut report = practise_task(started.task, &self, &launch, run_dir.clone(), seed, started.name, car_demo, |_| serde_json::Value::Null, None)?;
                report["laps"] = crate::car_laps::summarise(&run_dir, sim_bridge::car::CAR_CONTROL_DT)?;
                if let Some(node) = crate::robot_choice::finish_node(started.node)? {
                    report["robot_node"] = node;
                }
                Ok(report)
            }
            RobotConfig::Sim(_) if self.robot.placement != Placement::Local => {
                if matches!(launch.reward, RewardConfig::Vlm(_) | RewardConfig::Classifier(_)) {
                    bail!("{}: --robot {} learns from the task's own reward; a Vlm(..) or Classifier(..) reward scores the scene in the actor's process (use --robot local)", self.config.display(), self.robot.placement);
                }
                let (_, variant) = wiring::robot::panda_variant(&launch, &self.config)?;
                let started = self.robot.start(&launch, &self.config, seed)?;
                std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
                let mut report = practise_task(started.task, &self, &launch, run_dir, seed, started.name, scripted_demo(variant), |_| serde_json::Value::Null, None)?;
                if let Some(node) = crate::robot_choice::finish_node(started.node)? {
                    report["robot_node"] = node;
                }
                Ok(report)
            }
            RobotConfig::Sim(_) => {
                let (mut task, variant) = wiring::robot::panda_task(&launch, &self.config)?;
                if let Some((min, max)) = self.violation_box {
                    task.monitor_violations(min, max);
                }
                std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
                // With a Vlm(..) reward, demos and practice learn from the VLM's progress rewards.
                let env = wiring::practice_env::PracticeEnv::for_launch(task, &launch, &self.config, &run_dir)?;
                practise_task(env, &self, &launch, run_dir, seed, format!("{variant:?}"), scripted_demo(variant), |env| env.reward_counts(), None)
            }
            RobotConfig::TopicArm(_) | RobotConfig::SerialArm(_) => {
                // A real robot runs on the wall clock: the actor never waits for the learner.
                let args = PracticeArgs { realtime: true, ..self };
                let mut env = wiring::robot::start_arm(&launch, &args.config, seed)?;
                // A leader arm takes over when the human moves it.
                let leader = wiring::leader::LeaderOperator::for_task(&launch, &mut env, wiring::leader::Tracking::WhileMoved)?;
                std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
                // With a Vlm(..) reward, a real camera's frames are scored for the task's steps.
                let demo = match env.scripted_expert() {
                    Some(expert) => expert,
                    None if launch.practice.demo_episodes == 0 => Box::new(|_: &[f64], _: bool| -> Vec<f64> { unreachable!("no scripted demos are recorded") }),
                    None => bail!("{}: practice.demo_episodes is {}, and this task has no scripted demonstrator (a task with a goal and a pick observing the tool and the object's pose have one); set it to 0 and record demos with `rrl teleop`", args.config.display(), launch.practice.demo_episodes),
                };
                let env = wiring::practice_env::PracticeEnv::for_arm(env, &launch, &args.config, &run_dir)?;
                practise_task(env, &args, &launch, run_dir, seed, wiring::arm_task::task_name(&launch).into(), demo, |env| env.reward_counts(), leader)
            }
            RobotConfig::Car(_) => {
                if !matches!(launch.reward, RewardConfig::Task | RewardConfig::Human) {
                    bail!("{}: a car learns from its course's reward (progress toward the next checkpoint) or a human's labels; use `reward: Task` or `reward: Human`", self.config.display());
                }
                // A real car runs on the wall clock: the actor never waits for the learner.
                let args = PracticeArgs { realtime: true, ..self };
                let env = wiring::robot::start_car(&launch, &args.config)?;
                std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
                let mut report = practise_task(env, &args, &launch, run_dir.clone(), seed, "CarCourse".into(), car_demo, |_| serde_json::Value::Null, None)?;
                report["laps"] = crate::car_laps::summarise(&run_dir, 1.0 / launch.practice.policy_rate_hz)?;
                Ok(report)
            }
        }
    }
}

/// The run folder: `--run-dir`, else runs/<launch name>.
pub fn run_folder(chosen: Option<PathBuf>, launch: &LaunchFile) -> PathBuf {
    chosen.unwrap_or_else(|| PathBuf::from("runs").join(&launch.name))
}

/// The scripted driver's demo controller for the car: steer at the next checkpoint.
fn car_demo(observation: &[f64], _start: bool) -> Vec<f64> {
    rrl_types::course::pursue(observation).to_vec()
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

/// The scripted demonstrator with uniform noise (±`noise[i]`) on action
/// i, kept within the task's bounds; the demonstrator itself when `noise`
/// is empty.
fn with_demo_noise(mut expert: impl FnMut(&[f64], bool) -> Vec<f64>, noise: &[f64], low: &[f64], high: &[f64], seed: u64) -> anyhow::Result<impl FnMut(&[f64], bool) -> Vec<f64>> {
    if !noise.is_empty() && noise.len() != low.len() {
        bail!("names {} noise values, one per action, but the task has {} actions", noise.len(), low.len());
    }
    let (noise, low, high) = (noise.to_vec(), low.to_vec(), high.to_vec());
    let mut rng = rrl_types::rng::Rng::seed(seed);
    Ok(move |obs: &[f64], start: bool| {
        let mut action = expert(obs, start);
        for (i, n) in noise.iter().enumerate().filter(|(_, n)| **n > 0.0) {
            action[i] = (action[i] + rng.uniform(-n, *n)).clamp(low[i], high[i]);
        }
        action
    })
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
    expert: impl FnMut(&[f64], bool) -> Vec<f64>,
    reward_counts: fn(&E) -> serde_json::Value,
    leader: Option<wiring::leader::LeaderOperator>,
) -> anyhow::Result<serde_json::Value> {
    let choice = if args.device == "auto" { launch.learner.device } else { crate::train::parse_device(&args.device)? };
    let device = policies::select_device(choice)?;
    let task_size = (env.observation_size(), env.action_size());
    let mut expert = with_demo_noise(expert, &launch.practice.demo_noise, env.action_low(), env.action_high(), seed + 30_000).with_context(|| format!("{}: practice.demo_noise", args.config.display()))?;
    // The human is there from the first demo on: with `reward: Human` their
    // labels judge demos and evaluations as they judge practice.
    let mut operator = crate::operator::with_leader(args.operator.start(launch, &args.joy_topic, task_size.1)?, leader);
    let console = match args.console {
        true => Some(OperatorConsole::start(launch, &format!("{} · {task_name}", launch.name), env.live_status(), Some(&run_dir))?),
        false => None,
    };
    if let Some(console) = &console {
        operator = console.operator(operator, &launch.namespace)?;
    }
    let human_reward = launch.reward == RewardConfig::Human;
    // A human's labels override a classifier's verdicts.
    let labels_override = matches!(launch.reward, RewardConfig::Classifier(_));
    let base_choice = match &args.base {
        Some(path) => PracticeBase::File(FileBase { path: path.display().to_string(), execute: args.base_execute, residual_scale: args.residual_scale.clone() }),
        None => launch.practice.base.clone(),
    };
    // A base cloned here from pixel demos sees the cameras as the policy does.
    let pixels = wiring::learner::policy_pixels(launch);
    if let Some(p) = pixels.as_ref().filter(|p| p.pretrained.is_some()) {
        // A frozen trunk that does not fit the cameras is refused now, before demos are recorded.
        policies::pixels::ConvEncoder::try_new(&mut rrl_types::rng::Rng::seed(0), p, tch::Device::Cpu).with_context(|| format!("learner.pixels in {}", args.config.display()))?;
    }
    let (base, scale, mut base_report) = match base_choice {
        PracticeBase::None => return practise_on(env, args, launch, run_dir, device, seed, task_name, false, expert, reward_counts, serde_json::Value::Null, operator.as_mut(), console.as_ref()),
        PracticeBase::File(file) => {
            let path = PathBuf::from(&file.path);
            (load_base(&path, task_size.0, task_size.1, file.execute, pixels.as_ref())?, file.residual_scale, serde_json::json!({"path": file.path}))
        }
        PracticeBase::BehaviourCloning(bc) => {
            let mut judge = Judge::of(operator.as_mut(), human_reward).overriding_learned(labels_override);
            let (path, report) = behaviour_cloning_base(&mut env, &bc, &run_dir.join("base"), &task_name, launch.practice.demo_episodes, seed + 20_000, &mut expert, &mut judge, pixels.as_ref())?;
            (load_base(&path, task_size.0, task_size.1, bc.execute, pixels.as_ref())?, bc.residual_scale, report)
        }
    };
    base_report["residual_scale"] = serde_json::json!(scale);
    let env = policies::residual::ResidualEnv::new(env, base, &scale).context("the base policy")?;
    let scales = env.scales.clone();
    let demo = move |obs: &[f64], start: bool| {
        // The base action comes last, after the task's expert observation.
        let (task_obs, base_action) = obs.split_at(obs.len() - task_size.1);
        policies::residual::residual_for(&expert(task_obs, start), base_action, &scales)
    };
    practise_on(env, args, launch, run_dir, device, seed, task_name, true, demo, move |env| reward_counts(&env.env), base_report, operator.as_mut(), console.as_ref())
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
    judge: &mut Judge,
    pixels: Option<&policies::pixels::PixelConfig>,
) -> anyhow::Result<(PathBuf, serde_json::Value)> {
    let path = folder.join("bc.safetensors");
    let mut report = serde_json::json!({"path": path.display().to_string(), "trained": false});
    if path.exists() {
        tracing::info!(path = %path.display(), "behaviour-cloning base found: practice corrects it");
        return Ok((path, report));
    }
    let successes = policies::practice::record_demo_episodes(env, folder, task_name, demo_episodes, seed, expert, judge)?;
    let (observation_size, action_size) = (env.observation_size(), env.action_size());
    let progress = indicatif::ProgressBar::new_spinner().with_message(format!("behaviour cloning: {} gradient steps on {demo_episodes} demos", bc.steps));
    progress.enable_steady_tick(std::time::Duration::from_millis(200));
    let cloned = train_bc_on_demos(&folder.join("demos"), observation_size, action_size, bc.horizon, bc.execute, bc.steps, pixels);
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
    reward_counts: impl Fn(&E) -> serde_json::Value,
    base_report: serde_json::Value,
    operator: &mut dyn policies::practice::Operator,
    console: Option<&OperatorConsole>,
) -> anyhow::Result<serde_json::Value> {
    let human_reward = launch.reward == RewardConfig::Human;
    // A human's labels override a classifier's verdicts.
    let labels_override = matches!(launch.reward, RewardConfig::Classifier(_));
    let demo_successes = policies::practice::record_demo_episodes(&mut env, &run_dir, &task_name, launch.practice.demo_episodes, seed + 10_000, demo_controller, &mut Judge::of(operator, human_reward).overriding_learned(labels_override))?;
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
        let result = evaluate_policy(&mut env, ("policy", "the base alone".into()), &task_name, &base_eval, eval_episodes, seed + 50_000, |_, _| zero.clone(), &mut Judge::of(operator, human_reward).overriding_learned(labels_override))?;
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
        confirm_episodes: launch.practice.confirm_episodes,
        human_reward,
        labels_override,
        // A real arm's task section may add a dense term to a sparse success
        // (check-config allows a task section on real arms only).
        shaping: wiring::arm_task::shaping(launch),
        // `safety.risk_critic.online`: the learner trains the gate's critic from its ticks.
        risk_critic: wiring::learner::online_risk(launch, seed + 2),
        live: console.map(OperatorConsole::live),
    };
    // Violations measured in the demos and the base's evaluation are not practice's.
    env.take_measured_violations();
    let pace = args.realtime.then(|| std::time::Duration::from_secs_f64(1.0 / launch.practice.policy_rate_hz));
    let mut paced = Paced::new(&mut *operator, pace);
    let mut output = PracticeOutput::create(&run_dir, settings.total_steps, args.log_status.then(|| launch.name.clone()))?;
    // The operator's live view: a line under the bar, and practice/live over ROS 2.
    let live_view = match env.live_status() {
        Some(live) => Some(ros_edge::live_topic::LiveTopic::start(&launch.namespace, live, output.live_line())?),
        None => None,
    };
    let mut on_episode = |episode: &EpisodeReport| {
        output.episode(episode);
        if let Some(console) = console {
            console.episode(episode);
        }
    };
    let mut link_report = serde_json::Value::Null;
    let report = match args.learner {
        LearnerPlacement::Local => policies::practice::practice(&mut env, config.clone(), device, &mut paced, &settings, &mut on_episode)?,
        LearnerPlacement::Remote => {
            let mut link = ros_edge::learner_link::RosLearnerLink::connect(launch.learner_namespace(), args.actor_id, Some(&run_dir))?;
            let report = policies::practice::practice_with_link(&mut env, config.clone(), &mut link, &mut paced, &settings, &mut on_episode);
            link_report = link.close(std::time::Duration::from_secs(60)).to_json(args.actor_id);
            report?
        }
        LearnerPlacement::Node => {
            // The learner as a ROS 2 node of this process: the actor reaches it
            // over DDS exactly as it reaches one on another machine.
            let resume = !recording::list_episodes(&run_dir.join("episodes"))?.is_empty();
            let spec = ros_edge::learner_link::LearnerNodeSpec::for_practice(launch.learner_namespace(), config.clone(), device, &settings);
            let node = ros_edge::learner_link::InProcessLearnerNode::start(spec, run_dir.clone(), resume)?;
            let link = ros_edge::learner_link::RosLearnerLink::connect(launch.learner_namespace(), args.actor_id, Some(&run_dir))?;
            let mut link = ros_edge::learner_link::InProcessLink { link, node: &node };
            let report = policies::practice::practice_with_link(&mut env, config.clone(), &mut link, &mut paced, &settings, &mut on_episode);
            // A node that failed confirms nothing more: do not wait for it.
            let confirm_within = if node.failure().is_some() { std::time::Duration::ZERO } else { std::time::Duration::from_secs(60) };
            let closed = link.link.close(confirm_within);
            // Only once the node has confirmed the whole stream may it end (and checkpoint).
            let node_report = node.finish();
            let mut report = report?;
            let node_report = node_report.context("the learner node")?;
            if closed.unconfirmed > 0 {
                bail!("the learner node confirmed {} of the actor's {} stream items within 60 s", closed.stream_items - closed.unconfirmed, closed.stream_items);
            }
            report.learner_updates = node_report["updates"].as_u64().unwrap_or(report.learner_updates);
            link_report = closed.to_json(args.actor_id);
            link_report["learner_node"] = node_report;
            report
        }
    };
    drop(live_view);
    let status = output.finish(&task_name)?;
    // The learned reward's counts of practice, before evaluation adds to them.
    let counts = reward_counts(&env);
    // Each episode took its own count at its end; anything after the last is practice's too.
    let practice_violations = env.take_measured_violations().map(|rest| rest + policies::practice::episodes_measured_violations(&report.episodes));
    // A remote learner keeps its checkpoint: evaluate it with `rrl eval` there.
    let eval = if args.learner != LearnerPlacement::Remote {
        evaluate_checkpoint(&mut env, &config, &run_dir.join("learner.safetensors"), &task_name, &run_dir.join("eval"), eval_episodes, seed + 50_000, &mut Judge::of(operator, human_reward).overriding_learned(labels_override))?
    } else {
        serde_json::Value::Null
    };
    // Recovery manoeuvres move the robot too: their violations count, their steps are not the policy's.
    let measured_violations = practice_violations.map(|practice| {
        let eval_violations = env.take_measured_violations().filter(|_| !eval.is_null());
        serde_json::json!({"practice": practice, "practice_steps": report.episodes.iter().map(|e| e.steps).sum::<u64>(), "eval": eval_violations})
    });
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
        "risk_critics": {"taken": report.risk_critics.0, "acting": report.risk_critics.1},
        // What the critic did per episode: the A/B arms under `alternate_episodes`.
        "by_critic_role": policies::practice::by_critic_role(&report.episodes),
        "success_confirmations": report.confirmations.iter().map(|(steps, successes)| serde_json::json!({"total_steps": steps, "successes": successes, "of": launch.practice.confirm_episodes})).collect::<Vec<_>>(),
        "device": format!("{device:?}"),
        "controller": match &launch.robot {
            RobotConfig::Sim(sim) if !wiring::robot::is_car_twin(launch) => serde_json::json!(format!("{:?}", sim.controller)),
            _ => serde_json::Value::Null,
        },
        "learned_rewards": {
            "joined": report.episodes.iter().map(|e| e.learned_rewards.0).sum::<u64>(),
            "missing": report.episodes.iter().map(|e| e.learned_rewards.1).sum::<u64>(),
            "vlm": counts["vlm"],
            "classifier": counts["classifier"],
        },
        "eval": eval,
        "measured_violations": measured_violations,
        "link": link_report,
        "base": base_report,
    }))
}

#[cfg(test)]
mod tests {
    use super::with_demo_noise;

    /// What `rrl launch` and the benches practise with is what the command
    /// line gives when only the launch file is named.
    #[test]
    fn the_defaults_of_practice_are_the_command_lines() {
        let args = super::PracticeArgs::with_defaults("x.ron".into());
        assert_eq!(args.config, std::path::PathBuf::from("x.ron"));
        assert!(matches!(args.operator, crate::operator::OperatorKind::None));
        assert!(matches!(args.learner, super::LearnerPlacement::Local));
        assert!(matches!(args.robot.placement, wiring::robot::Placement::Local));
        assert_eq!((args.device.as_str(), args.joy_topic.as_str(), args.actor_id, args.base_execute, args.robot.answer_s), ("auto", "/spacenav/joy", 1, 1, 60.0));
        assert!(args.run_dir.is_none() && args.steps.is_none() && !args.resume && !args.realtime && !args.console && args.violation_box.is_none());
    }

    #[test]
    fn demo_noise_moves_each_action_within_its_bound_and_the_task_keeps_the_rest() {
        let expert = |_: &[f64], _: bool| vec![0.9, 0.0, -0.2, 1.0];
        let (low, high) = ([-1.0; 4], [1.0; 4]);
        let mut noisy = with_demo_noise(expert, &[0.4, 0.4, 0.0, 0.0], &low, &high, 7).unwrap();
        let actions: Vec<Vec<f64>> = (0..200).map(|k| noisy(&[], k == 0)).collect();
        for a in &actions {
            assert!((0.5..=1.0).contains(&a[0]), "kept within the task's bound: {a:?}");
            assert!(a[1].abs() <= 0.4, "{a:?}");
            assert_eq!((a[2], a[3]), (-0.2, 1.0), "no noise where it is 0");
        }
        let spread = |i: usize| actions.iter().map(|a| a[i]).fold(f64::MAX, f64::min)..=actions.iter().map(|a| a[i]).fold(f64::MIN, f64::max);
        assert!(*spread(1).start() < -0.3 && *spread(1).end() > 0.3, "the noise spans its bound: {:?}", spread(1));
        let mut again = with_demo_noise(expert, &[0.4, 0.4, 0.0, 0.0], &low, &high, 7).unwrap();
        assert_eq!((0..200).map(|k| again(&[], k == 0)).collect::<Vec<_>>(), actions, "the same seed, the same demos");
        let mut clean = with_demo_noise(expert, &[], &low, &high, 7).unwrap();
        assert_eq!(clean(&[], true), vec![0.9, 0.0, -0.2, 1.0]);
        let wrong = with_demo_noise(expert, &[0.4, 0.4], &low, &high, 7).err().unwrap().to_string();
        assert!(wrong.contains("2 noise values") && wrong.contains("4 actions"), "{wrong}");
    }
}
