//! `rrl`: the command line of the real-robot RL stack. It reads launch files,
//! wires ROS 2 nodes and runs the workflows (drivers, simulation, training,
//! practice, evaluation, benchmarks).
//!
//! Owns the binary edge: argument parsing, logging setup, progress display
//! and turning typed errors into messages (anyhow context lives only here).
//! Must never hold logic another crate needs: nothing depends on `launch`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod ablation;
mod bench;
mod doctor;
mod driver;
mod launcher;
mod learner;
mod metrics;
mod operator;
mod practice;
mod record_sim;
mod reward_eval;
mod residual_bench;
mod reward_node;
mod robot_choice;
mod sim;
mod train;

#[derive(Parser)]
#[command(name = "rrl", version, about = "Real-robot reinforcement learning on ROS 2: drivers, safety gate, learner, rewards, workflows")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate launch files: every problem with file:line:column, field path and a hint.
    CheckConfig {
        /// RON launch files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Check the machine: libtorch (and CUDA), MuJoCo and its assets, OpenCV, ROS 2 settings.
    Doctor {
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run the simulated robot of a launch file as a ROS 2 node (joint_states, /clock, joint_commands through the safety gate).
    Sim(sim::SimArgs),
    /// Run the real robot of a launch file as a ROS 2 node: a serial-servo arm, a ros2_control arm over topics or a car (joint_states; commands through the safety gate).
    Driver(driver::DriverArgs),
    /// Start the nodes of a launch file (robot with its cameras, reward node) in this process.
    Launch {
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
    },
    /// Train SAC on a simulated task: progress bar, periodic evaluation, metrics CSV.
    Train(train::TrainArgs),
    /// Practise on the robot of a launch file: act, learn online, reset, repeat; human takeover; every episode recorded.
    Practice(practice::PracticeArgs),
    /// Record demo episodes by teleoperation (gamepad or SpaceMouse over ROS 2), through the safety gate.
    Teleop(practice::TeleopArgs),
    /// The learner as a ROS 2 node: actors (`rrl practice --learner remote`) feed it transitions; it publishes weights.
    Learner {
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
    },
    /// Behaviour cloning with action chunks on a run's demos (the base for residual RL).
    Bc {
        #[command(subcommand)]
        which: BcCommand,
    },
    /// Evaluate a learner checkpoint: N recorded episodes, success rate, returns, plot.
    Eval(practice::EvalArgs),
    /// Run the VLM progress critic of a launch file as a ROS 2 node (camera images in, stamped progress/reward/done out).
    RewardNode(reward_node::RewardNodeArgs),
    /// Score recorded episodes (videos or frame folders) with a reward source: VOC, reversed VOC, success F1, and correlation with true progress where the episodes carry it.
    RewardEval(reward_eval::RewardEvalArgs),
    /// Record rendered episodes of a simulated Panda task with their true progress (progress.csv) and success labels (labels.json), for `rrl reward-eval`.
    RecordSim(record_sim::RecordSimArgs),
    /// Export a run's recorded episodes: --out X.mcap writes one MCAP file (Foxglove); any other path a rosbag2 folder with metadata.yaml (ros2 bag info/play).
    ExportMcap {
        /// Run folder (holds demos/, episodes/, eval/).
        run_dir: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Benchmarks beside their peers, same run, same machine; JSON with ratios.
    Bench {
        #[command(subcommand)]
        which: BenchCommand,
    },
}

#[derive(Subcommand)]
enum BcCommand {
    /// Train on the run's demos/ and write bc.safetensors.
    Train(practice::BcArgs),
    /// Run recorded evaluation episodes of bc.safetensors.
    Eval(practice::BcArgs),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Residual RL on a weak BC base vs RLPD from scratch with the same demos, simulated Panda pick-cube, several seeds: success of the base, steps each learner needs to reach the target.
    Residual(residual_bench::ResidualBenchArgs),
    /// `rrl train` vs the PyTorch peer trainer (gym_sac.py) on a Gymnasium task: env steps/s end to end, evaluation returns with IQM and 95% interval over seeds.
    Train {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = "HalfCheetah-v5")]
        task: String,
        #[arg(long, default_value_t = 20_000)]
        steps: u64,
        /// Random-action steps before learning (the peer's learning_starts).
        #[arg(long, default_value_t = 5_000)]
        warmup: u64,
        #[arg(long, default_value_t = 10_000)]
        eval_every: u64,
        #[arg(long, default_value_t = 5)]
        eval_episodes: u32,
        /// Seeds, comma-separated; each runs both trainers.
        #[arg(long, value_delimiter = ',', default_value = "1")]
        seeds: Vec<u64>,
        /// libtorch threads of both (0: their default).
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
    /// Single-thread steps/s of each simulated task vs Python Gymnasium.
    Sim {
        /// Print one JSON object (the default output is also JSON, pretty-printed).
        #[arg(long)]
        json: bool,
        /// Steps per task and implementation.
        #[arg(long, default_value_t = 20_000)]
        steps: u64,
        /// Tasks to run (Gymnasium ids); default: all.
        #[arg(long = "task")]
        tasks: Vec<String>,
    },
    /// Dynamixel sync-read round trips on the emulator vs ROBOTIS' Python SDK.
    Serial {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 6)]
        servos: u8,
        #[arg(long, default_value_t = 2000)]
        rounds: u32,
    },
    /// VLM reward client: per-frame overhead and frames/s with N requests in flight, against the emulated endpoint, vs a Python client.
    Reward {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Frames scored one at a time for the latency.
        #[arg(long, default_value_t = 20)]
        frames: u64,
        /// Seconds of the throughput run.
        #[arg(long, default_value_t = 8.0)]
        seconds: f64,
        #[arg(long, default_value_t = 4)]
        concurrency: u32,
        /// Frame side in pixels.
        #[arg(long, default_value_t = 128)]
        side: u32,
    },
    /// The safety gate's ablation on the simulated Panda: constraint violations per 1000 steps with no gate, rules, rules + a risk critic trained on the rules' labels; random exploration and SAC training.
    Safety {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Random-exploration steps per condition.
        #[arg(long, default_value_t = 5_000)]
        random_steps: u64,
        /// SAC training steps per condition.
        #[arg(long, default_value_t = 5_000)]
        sac_steps: u64,
        /// Scripted-expert episodes per condition.
        #[arg(long, default_value_t = 20)]
        expert_episodes: u64,
        /// Gradient steps of the risk critic.
        #[arg(long, default_value_t = 3_000)]
        critic_updates: usize,
        /// Risk above this triggers the critic's Recover reflex.
        #[arg(long, default_value_t = 0.5)]
        risk_threshold: f32,
        /// Discount of the Recovery RL target (how far ahead "soon" reaches: 1/(1-γ) ticks).
        #[arg(long, default_value_t = 0.5)]
        gamma_risk: f64,
        /// The critic's reflex: hold, decelerate or recover.
        #[arg(long, default_value = "decelerate")]
        reflex: String,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Safety gate per-tick latency (rules + 2x256 risk critic), a paced 1 kHz loop, vs numpy.
    Gate {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Ticks for the latency percentiles.
        #[arg(long, default_value_t = 1_000_000)]
        ticks: u64,
        /// Seconds of the paced 1 kHz loop.
        #[arg(long, default_value_t = 60.0)]
        loop_seconds: f64,
    },
    /// SAC updates/s (cleanrl; rlpd at UTD 4 and 20) vs the PyTorch reference update.
    Learner {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Timed updates per configuration and implementation.
        #[arg(long, default_value_t = 200)]
        updates: u64,
        /// Interleaved rounds of both implementations; the best of each counts.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// auto, cpu or cuda.
        #[arg(long, default_value = "auto")]
        device: String,
        /// CPU threads for both implementations (0: libtorch's default).
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("RRL_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::CheckConfig { files } => check_config(&files),
        Command::Doctor { json } => doctor::run(json),
        Command::Bench { which: BenchCommand::Serial { json, servos, rounds } } => bench::serial(servos, rounds).map(|report| print_report(&report, json)),
        Command::Bench { which: BenchCommand::Reward { json, frames, seconds, concurrency, side } } => bench::reward(frames, seconds, concurrency, side).map(|report| print_report(&report, json)),
        Command::Bench { which: BenchCommand::Safety { json, random_steps, sac_steps, expert_episodes, critic_updates, risk_threshold, gamma_risk, reflex, seed } } => ablation::parse_reflex(&reflex).and_then(|reflex| ablation::run(random_steps, sac_steps, expert_episodes, critic_updates, risk_threshold, gamma_risk, reflex, seed)).map(|report| print_report(&report, json)),
        Command::Bench { which: BenchCommand::Gate { json, ticks, loop_seconds } } => bench::gate(ticks, loop_seconds).map(|report| print_report(&report, json)),
        Command::Bench { which: BenchCommand::Learner { json, updates, rounds, device, threads } } => bench::learner(updates, rounds, &device, threads).map(|report| print_report(&report, json)),
        Command::Sim(args) => args.run().map(|report| print_report(&report, true)),
        Command::Driver(args) => args.run().map(|report| print_report(&report, true)),
        Command::Launch { configs, only, run_dir, steps, realtime, resume, duration_s, learner_idle_s } => {
            launcher::run(launcher::LaunchArgs { configs, only, run_dir, steps, realtime, resume, duration_s, learner_idle_s }).map(|report| print_report(&report, true))
        }
        Command::Train(args) => train::run(args).map(|report| print_report(&report, true)),
        Command::Practice(args) => practice::run(args).map(|report| print_report(&report, true)),
        Command::RewardNode(args) => args.run().map(|report| print_report(&report, true)),
        Command::RewardEval(args) => reward_eval::run(args).map(|report| print_report(&report, true)),
        Command::RecordSim(args) => record_sim::run(args).map(|report| print_report(&report, true)),
        Command::Learner { config, run_dir, resume, until_idle_s } => learner::run_learner_node(&config, run_dir, resume, until_idle_s).map(|report| print_report(&report, true)),
        Command::Bc { which: BcCommand::Train(args) } => practice::bc_train(args).map(|report| print_report(&report, true)),
        Command::Bc { which: BcCommand::Eval(args) } => practice::bc_eval(args).map(|report| print_report(&report, true)),
        Command::Teleop(args) => practice::teleop(args).map(|report| print_report(&report, true)),
        Command::Eval(args) => practice::eval(args).map(|report| print_report(&report, true)),
        Command::ExportMcap { run_dir, out } => practice::export_mcap(&run_dir, &out).map(|report| print_report(&report, true)),
        Command::Bench { which: BenchCommand::Residual(args) } => residual_bench::run(&args).map(|report| print_report(&report, args.json)),
        Command::Bench { which: BenchCommand::Train { json, task, steps, warmup, eval_every, eval_episodes, seeds, threads } } => bench::train(&task, steps, warmup, eval_every, eval_episodes, &seeds, threads).map(|report| print_report(&report, json)),
        Command::Bench { which: BenchCommand::Sim { json, steps, tasks } } => bench::sim(steps, &tasks).map(|report| print_report(&report, json)),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn print_report(report: &serde_json::Value, compact: bool) -> ExitCode {
    if compact {
        println!("{report}");
    } else {
        println!("{}", serde_json::to_string_pretty(report).unwrap_or_default());
    }
    ExitCode::SUCCESS
}

fn check_config(files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut failed = 0;
    for file in files {
        // The gate is built too: it reads the files the safety section names (a URDF).
        let checked = rrl_types::config::LaunchFile::load(file).map_err(anyhow::Error::from).and_then(|launch| {
            safety::Gate::build(&launch.safety, &launch.robot.joint_names(), launch.robot.control_rate_hz())
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            Ok(launch)
        });
        match checked {
            Ok(launch) => println!("{}: ok ({} robot `{}`)", file.display(), launch.robot.kind_name(), launch.name),
            Err(err) => {
                failed += 1;
                eprintln!("{err}");
            }
        }
    }
    if failed > 0 {
        eprintln!("{failed} of {} launch files invalid", files.len());
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}
