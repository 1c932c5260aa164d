//! `rrl bench ...`: benchmarks that run the peer a user would otherwise pick
//! in the same run, on the same machine, and print JSON with the ratios.
//! One module a benchmark; the Python peers are started from here.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};
use serde_json::Value;

mod console_page;
mod gate;
mod learner;
mod pixels;
mod residual;
mod reward;
mod safety;
mod serial;
mod sim;
mod train;

#[derive(clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    which: BenchCommand,
}

#[derive(clap::Subcommand)]
enum BenchCommand {
    /// Residual RL on a weak BC base vs RLPD from scratch with the same demos, simulated Panda pick-cube, several seeds: success of the base, steps each learner needs to reach the target.
    Residual(residual::ResidualBenchArgs),
    /// `rrl train` vs the PyTorch peer trainer (gym_sac.py) on a Gymnasium task: env steps/s end to end, evaluation returns with IQM and 95% interval over seeds.
    Train(train::TrainBenchArgs),
    /// Single-thread steps/s of each simulated task vs Python Gymnasium.
    Sim(sim::SimBenchArgs),
    /// Dynamixel sync-read round trips on the emulator vs ROBOTIS' Python SDK.
    Serial(serial::SerialBenchArgs),
    /// VLM reward client: per-frame overhead and frames/s with N requests in flight, against the emulated endpoint, vs a Python client.
    Reward(reward::RewardBenchArgs),
    /// The safety gate's ablation on the simulated Panda: constraint violations per 1000 steps with no gate, rules, rules + a risk critic trained on the rules' labels; random exploration and SAC training.
    Safety(safety::SafetyBenchArgs),
    /// Safety gate per-tick latency (rules + 2x256 risk critic), a paced 1 kHz loop, vs numpy.
    Gate(gate::GateBenchArgs),
    /// SAC updates/s (cleanrl; rlpd at UTD 4 and 20) vs the PyTorch reference update; with --pixels, each pixel encoder mode with two 128x128 cameras: updates/s and end-to-end practice steps/s.
    Learner(learner::LearnerBenchArgs),
}

impl BenchArgs {
    /// The benchmark's report, and whether `--json` asked for it on one line.
    pub fn run(self) -> anyhow::Result<(Value, bool)> {
        let (json, report) = match self.which {
            BenchCommand::Residual(args) => (args.json, args.run()?),
            BenchCommand::Train(args) => (args.json, args.run()?),
            BenchCommand::Sim(args) => (args.json, args.run()?),
            BenchCommand::Serial(args) => (args.json, args.run()?),
            BenchCommand::Reward(args) => (args.json, args.run()?),
            BenchCommand::Safety(args) => (args.json, args.run()?),
            BenchCommand::Gate(args) => (args.json, args.run()?),
            BenchCommand::Learner(args) => (args.json, args.run()?),
        };
        Ok((report, json))
    }
}

/// A file of the repository, found from the env file's RRL_ROOT or from
/// where this binary was built.
pub fn repo_file(relative: &str) -> PathBuf {
    let root = std::env::var_os("RRL_ROOT").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/..")));
    root.join(relative)
}

pub fn python() -> PathBuf {
    std::env::var_os("VIRTUAL_ENV").map(|v| PathBuf::from(v).join("bin/python")).unwrap_or_else(|| "python3".into())
}

/// Runs a Python peer and returns its last JSON line.
pub fn run_peer(script: &str, args: &[String]) -> anyhow::Result<Value> {
    run_peer_lines(script, args)?.pop().with_context(|| format!("peer {} printed no JSON", repo_file(script).display()))
}

/// Runs a Python peer and returns every JSON line it printed.
pub fn run_peer_lines(script: &str, args: &[String]) -> anyhow::Result<Vec<Value>> {
    let path = repo_file(script);
    let out = Command::new(python()).arg(&path).args(args).output().with_context(|| format!("running the peer {}", path.display()))?;
    if !out.status.success() {
        bail!("peer {} failed: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout.lines().filter(|l| l.trim_start().starts_with('{')).map(|l| serde_json::from_str(l).with_context(|| format!("peer {} printed malformed JSON: {l}", path.display()))).collect()
}

/// A PyTorch reference program beside the repository (`../shared/peers`),
/// or where RRL_PEERS points.
fn peer_file(name: &str) -> String {
    std::env::var("RRL_PEERS").map(|dir| format!("{dir}/{name}")).unwrap_or_else(|_| format!("../shared/peers/{name}"))
}
