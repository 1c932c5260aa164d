//! `rrl`: the command line of the real-robot RL stack. It reads launch files,
//! has `wiring` build their parts and `ros_edge` serve them, and runs the
//! workflows (drivers, simulation, training, practice, evaluation,
//! benchmarks).
//!
//! Owns the binary edge: argument parsing, logging setup, progress display
//! and turning typed errors into messages (anyhow context lives only here).
//! Each command is a module with its arguments struct and a `run`; this file
//! only parses, dispatches and prints the report.
//! Must never hold logic another crate needs: nothing depends on `launch`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bc;
mod bench;
mod car_laps;
mod check_config;
mod classifier;
mod discovery;
mod doctor;
mod driver;
mod eval;
mod export_mcap;
mod launcher;
mod learner;
mod metrics;
mod operator;
mod operator_console;
mod practice;
mod practice_output;
mod record_sim;
mod reward_eval;
mod reward_node;
mod robot_choice;
mod run_folders;
mod safety_critic;
mod sim;
mod stop_signal;
mod teleop;
mod train;
mod trunk;

#[derive(Parser)]
#[command(name = "rrl", version, about = "Real-robot reinforcement learning on ROS 2: drivers, safety gate, learner, rewards, workflows")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate launch files: every problem with file:line:column, field path and a hint.
    CheckConfig(check_config::CheckConfigArgs),
    /// Check the machine: libtorch (and CUDA), MuJoCo and its assets, OpenCV, ROS 2 settings.
    Doctor(doctor::DoctorArgs),
    /// Run the simulated robot of a launch file as a ROS 2 node (joint_states, /clock, joint_commands through the safety gate).
    Sim(sim::SimArgs),
    /// Run the real robot of a launch file as a ROS 2 node: a serial-servo arm, a ros2_control arm over topics or a car (joint_states; commands through the safety gate).
    Driver(driver::DriverArgs),
    /// Start the nodes of a launch file (robot with its cameras, reward node) in this process.
    Launch(launcher::LaunchArgs),
    /// Train SAC on a simulated task: progress bar, periodic evaluation, metrics CSV.
    Train(train::TrainArgs),
    /// Practise on the robot of a launch file: act, learn online, reset, repeat; human takeover; every episode recorded.
    Practice(practice::PracticeArgs),
    /// Record demo episodes by teleoperation (leader arm, gamepad or SpaceMouse over ROS 2, keyboard), through the safety gate.
    Teleop(teleop::TeleopArgs),
    /// The learner as a ROS 2 node: actors (`rrl practice --learner remote`) feed it transitions; it publishes weights.
    Learner(learner::LearnerArgs),
    /// Behaviour cloning with action chunks on a run's demos (the base for residual RL).
    Bc(bc::BcArgs),
    /// Evaluate a learner checkpoint: N recorded episodes, success rate, returns, plot.
    Eval(eval::EvalArgs),
    /// Run the VLM progress critic of a launch file as a ROS 2 node (camera images in, stamped progress/reward/done out).
    RewardNode(reward_node::RewardNodeArgs),
    /// Score recorded episodes (videos or frame folders) with a reward source: VOC, reversed VOC, success F1, and correlation with true progress where the episodes carry it.
    RewardEval(reward_eval::RewardEvalArgs),
    /// Record rendered episodes of a simulated Panda task with their true progress (progress.csv) and success labels (labels.json), for `rrl reward-eval`.
    RecordSim(record_sim::RecordSimArgs),
    /// Success classifiers from labelled frames: `train` on runs' labelled frames (held-out episodes choose the threshold for precision), `eval` on others (precision, recall, F1, a sheet of the misclassified frames).
    Classifier(classifier::ClassifierArgs),
    /// A frozen pixel trunk from the camera frames of recorded runs: it learns what the robot's state cannot tell (where the actions and state go next); held-out episodes judge it beside a state-only head.
    Trunk(trunk::TrunkArgs),
    /// The safety gate's learned risk critic from recorded runs: `train-critic` on their gate ticks, `eval` how early and precisely it flags violations of other runs, `report` a run's violations per 1000 gate ticks.
    Safety(safety_critic::SafetyArgs),
    /// Export a run's recorded episodes: --out X.mcap writes one MCAP file (Foxglove); any other path a rosbag2 folder with metadata.yaml (ros2 bag info/play).
    ExportMcap(export_mcap::ExportMcapArgs),
    /// Benchmarks beside their peers, same run, same machine; JSON with ratios.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    // Before anything else, while this is the only thread.
    let discovery = discovery::enforce();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("RRL_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let discovery = match discovery {
        Ok(in_force) => in_force,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    if !matches!(discovery.range.as_str(), "LOCALHOST" | "OFF") {
        tracing::warn!(range = %discovery.range, "DDS discovery reaches beyond this machine ({} from the environment): any participant of the domain may publish robot commands; see docs/guide/several-machines.md (DDS Security)", discovery::VARIABLE);
    }
    let cli = Cli::parse();
    // Most commands' report goes out on one line, for scripts.
    let one_line = |report: serde_json::Value| {
        print_report(&report, true);
        ExitCode::SUCCESS
    };
    let result = match cli.command {
        Command::CheckConfig(args) => args.run(),
        Command::Doctor(args) => args.run(),
        Command::Sim(args) => args.run().map(one_line),
        Command::Driver(args) => args.run().map(one_line),
        Command::Launch(args) => args.run().map(one_line),
        Command::Train(args) => args.run().map(one_line),
        Command::Practice(args) => args.run().map(one_line),
        Command::Teleop(args) => args.run().map(one_line),
        Command::Learner(args) => args.run().map(one_line),
        Command::Bc(args) => args.run().map(one_line),
        Command::Eval(args) => args.run().map(one_line),
        Command::RewardNode(args) => args.run().map(one_line),
        Command::RewardEval(args) => args.run().map(one_line),
        Command::RecordSim(args) => args.run().map(one_line),
        Command::Classifier(args) => args.run().map(one_line),
        Command::Trunk(args) => args.run().map(one_line),
        Command::Safety(args) => args.run().map(one_line),
        Command::ExportMcap(args) => args.run().map(one_line),
        Command::Bench(args) => args.run().map(|(report, one_line)| {
            print_report(&report, one_line);
            ExitCode::SUCCESS
        }),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// A command's JSON report on stdout: on one line, or indented for a reader.
fn print_report(report: &serde_json::Value, one_line: bool) {
    if one_line {
        println!("{report}");
    } else {
        println!("{}", serde_json::to_string_pretty(report).unwrap_or_default());
    }
}
