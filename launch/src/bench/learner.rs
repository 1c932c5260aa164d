//! `rrl bench learner`: SAC updates/s of our learner beside the PyTorch
//! reference update, same shapes, same device.

use anyhow::Context;
use policies::{Sac, SacConfig};
use serde_json::{json, Value};

use super::{peer_file, run_peer};

#[derive(clap::Args)]
pub struct LearnerBenchArgs {
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
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
    /// Learning from two 128x128 cameras instead: each encoder mode's
    /// updates/s and end-to-end practice steps/s (`--updates` per mode).
    #[arg(long)]
    pixels: bool,
    /// With --pixels: random transitions in the replay the updates draw from.
    #[arg(long, default_value_t = 1000)]
    pixel_rows: usize,
    /// With --pixels: practice steps timed past the warm-up (the frozen
    /// trunk run on every batch gets a fifth of them).
    #[arg(long, default_value_t = 50)]
    practice_steps: u64,
}

/// One learner configuration of `rrl bench learner`.
struct LearnerCase {
    preset: &'static str,
    utd: u32,
}

const LEARNER_CASES: [LearnerCase; 3] =
    [LearnerCase { preset: "cleanrl", utd: 1 }, LearnerCase { preset: "rlpd", utd: 4 }, LearnerCase { preset: "rlpd", utd: 20 }];

impl LearnerBenchArgs {
    /// SAC updates/s of our learner and of the PyTorch peer, same shapes
    /// (HalfCheetah-sized: 17 observations, 6 actions), same device.
    pub fn run(self) -> anyhow::Result<Value> {
        let LearnerBenchArgs { updates, rounds, device, threads, pixels, pixel_rows, practice_steps, .. } = self;
        if threads > 0 {
            policies::set_cpu_threads(threads);
        }
        let device = policies::select_device(crate::train::parse_device(&device)?)?;
        if pixels {
            return super::pixels::run(updates, pixel_rows, practice_steps, device);
        }
        let (obs, act, buffer) = (17usize, 6usize, 100_000usize);
        let mut rows = Vec::new();
        for case in LEARNER_CASES {
            let learner = crate::train::learner_preset(case.preset, Some(case.utd))?;
            let mut sac = Sac::new(SacConfig::from_learner(&learner, obs, act, 0), device);
            let mut replay = policies::bench::random_replay(obs, act, buffer, device, 1);
            let warmup = (updates / 10).max(3);
            policies::bench::updates_per_second(&mut sac, &mut replay, warmup);
            let peer_device = if device == tch::Device::Cpu { "cpu" } else { "cuda" };
            let mut peer_args = vec![
                "--preset".to_string(),
                case.preset.to_string(),
                "--utd".to_string(),
                case.utd.to_string(),
                "--updates".to_string(),
                updates.to_string(),
                "--warmup".to_string(),
                warmup.to_string(),
                "--device".to_string(),
                peer_device.to_string(),
            ];
            if threads > 0 {
                peer_args.extend(["--threads".to_string(), threads.to_string()]);
            }
            // Interleaved rounds, best of each: a shared machine's noise hits both alike.
            let (mut ours, mut theirs, mut peer) = (0.0f64, 0.0f64, Value::Null);
            for _ in 0..rounds.max(1) {
                ours = ours.max(policies::bench::updates_per_second(&mut sac, &mut replay, updates));
                let run = run_peer(&peer_script(), &peer_args)?;
                let rate = run["updates_per_s"].as_f64().context("peer JSON lacks updates_per_s")?;
                if rate > theirs {
                    theirs = rate;
                    peer = run;
                }
            }
            rows.push(json!({
                "preset": case.preset,
                "critics": learner.critics,
                "layer_norm": learner.critic_layer_norm,
                "utd": case.utd,
                "batch": learner.batch_size,
                "rrl_updates_per_s": ours,
                "pytorch_updates_per_s": theirs,
                "ratio": ours / theirs,
                "peer": peer,
            }));
        }
        Ok(json!({ "bench": "learner", "device": format!("{device:?}"), "threads": tch::get_num_threads(), "rounds": rounds, "results": rows }))
    }
}

fn peer_script() -> String {
    peer_file("torch_sac_update.py")
}
