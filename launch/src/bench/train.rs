//! `rrl bench train`: `rrl train` beside the PyTorch peer trainer on a
//! Gymnasium task, seed by seed.

use anyhow::Context;
use serde_json::{json, Value};
use sim_bridge::GymTask;

use super::{peer_file, run_peer_lines};

#[derive(clap::Args)]
pub struct TrainBenchArgs {
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
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
}

impl TrainBenchArgs {
    /// `rrl train` against the PyTorch peer trainer (`gym_sac.py`) on a
    /// Gymnasium task, same steps, warm-up, evaluation and seeds, one after the
    /// other on the same machine: environment steps/s end to end, and the
    /// evaluation returns with their IQM and 95 % interval over the seeds.
    pub fn run(self) -> anyhow::Result<Value> {
        let TrainBenchArgs { ref task, steps, warmup, eval_every, eval_episodes, ref seeds, threads, .. } = self;
        GymTask::from_name(task).with_context(|| format!("unknown task `{task}`; tasks: {}", GymTask::ALL.map(|t| t.gym_id()).join(", ")))?;
        if threads > 0 {
            policies::set_cpu_threads(threads);
        }
        let scratch = tempfile::tempdir().context("a scratch folder for the runs")?;
        let mut runs = Vec::new();
        for &seed in seeds {
            let args = crate::train::TrainArgs {
                task: task.clone(),
                demo_episodes: 0,
                reward: "dense".into(),
                steps,
                seed,
                warmup,
                eval_every,
                eval_episodes,
                preset: "cleanrl".into(),
                utd: None,
                device: "cpu".into(),
                out: Some(scratch.path().join(format!("seed{seed}"))),
                resume: false,
                cameras: Vec::new(),
                image_size: 64,
                pretrained_encoder: None,
                replay_capacity: None,
            };
            let ours = args.run()?;
            let mut peer_args = vec!["--env", task.as_str()].into_iter().map(String::from).collect::<Vec<_>>();
            for (flag, value) in [("--steps", steps), ("--seed", seed), ("--learning-starts", warmup), ("--eval-every", eval_every), ("--eval-episodes", u64::from(eval_episodes)), ("--threads", threads as u64)] {
                peer_args.extend([flag.to_string(), value.to_string()]);
            }
            let peer_lines = run_peer_lines(&peer_file("gym_sac.py"), &peer_args)?;
            let peer_final = peer_lines.iter().rev().find(|l| l["final"].as_bool() == Some(true)).context("gym_sac.py printed no final line")?;
            let peer_evals: Vec<Value> = peer_lines.iter().filter(|l| l.get("step").is_some()).map(|l| json!({ "step": l["step"], "mean_return": l["eval_return"] })).collect();
            let our_evals: Vec<Value> = ours["evals"].as_array().cloned().unwrap_or_default().iter().map(|e| json!({ "step": e["step"], "mean_return": e["mean_return"] })).collect();
            let run = json!({
                "seed": seed,
                "rrl_sps": ours["sps"],
                "pytorch_sps": peer_final["sps"],
                "rrl_evals": our_evals,
                "pytorch_evals": peer_evals,
            });
            // Each seed's result as it lands (a long comparison cut short keeps what it measured).
            eprintln!("{run}");
            runs.push(run);
        }
        let column = |key: &str| -> Vec<f64> { runs.iter().filter_map(|r| r[key].as_f64()).collect() };
        let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len().max(1) as f64;
        let (ours_sps, theirs_sps) = (mean(&column("rrl_sps")), mean(&column("pytorch_sps")));
        // Returns per evaluation step over the seeds.
        let mut by_step = Vec::new();
        let mut step = eval_every.max(1);
        while step <= steps {
            let at = |key: &str| -> Vec<f64> { runs.iter().filter_map(|r| r[key].as_array()?.iter().find(|e| e["step"].as_u64() == Some(step))?["mean_return"].as_f64()).collect() };
            let (ours, theirs) = (at("rrl_evals"), at("pytorch_evals"));
            let summary = |xs: &[f64]| {
                let (iqm, low, high) = iqm_with_interval(xs, 2000, step);
                json!({ "iqm": iqm, "ci95": [low, high], "returns": xs })
            };
            by_step.push(json!({ "step": step, "rrl": summary(&ours), "pytorch": summary(&theirs) }));
            step += eval_every.max(1);
        }
        Ok(json!({
            "bench": "train",
            "task": task,
            "steps": steps,
            "warmup": warmup,
            "seeds": seeds,
            "threads": tch::get_num_threads(),
            "rrl_sps": ours_sps,
            "pytorch_sps": theirs_sps,
            "sps_ratio": ours_sps / theirs_sps,
            "returns": by_step,
            "runs": runs,
        }))
    }
}

/// Interquartile mean (the mean of the middle half, as scipy's
/// `trim_mean(x, 0.25)`: ⌊n/4⌋ dropped at each end) and a 95 % percentile
/// bootstrap interval of it over the seeds.
pub fn iqm_with_interval(values: &[f64], resamples: usize, seed: u64) -> (f64, f64, f64) {
    let iqm = |xs: &mut Vec<f64>| {
        xs.sort_by(|a, b| a.total_cmp(b));
        let cut = xs.len() / 4;
        let middle = &xs[cut..xs.len() - cut];
        middle.iter().sum::<f64>() / middle.len().max(1) as f64
    };
    let point = iqm(&mut values.to_vec());
    let mut rng = rrl_types::rng::Rng::seed(seed);
    let mut draws: Vec<f64> = (0..resamples)
        .map(|_| {
            let mut sample: Vec<f64> = (0..values.len()).map(|_| values[rng.below(values.len() as u64) as usize]).collect();
            iqm(&mut sample)
        })
        .collect();
    draws.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| draws[((q * (draws.len() - 1) as f64).round() as usize).min(draws.len() - 1)];
    if draws.is_empty() {
        return (point, point, point);
    }
    (point, at(0.025), at(0.975))
}
