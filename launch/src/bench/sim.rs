//! `rrl bench sim`: single-thread steps/s of each simulated task beside
//! Python Gymnasium, and the Panda cameras' frames/s beside MuJoCo's Python
//! renderer.

use anyhow::Context;
use serde_json::{json, Value};
use sim_bridge::GymTask;

use super::run_peer;

#[derive(clap::Args)]
pub struct SimBenchArgs {
    /// Print one JSON object (the default output is also JSON, pretty-printed).
    #[arg(long)]
    pub json: bool,
    /// Steps per task and implementation.
    #[arg(long, default_value_t = 20_000)]
    steps: u64,
    /// Tasks to run (Gymnasium ids); default: all.
    #[arg(long = "task")]
    tasks: Vec<String>,
}

impl SimBenchArgs {
    pub fn run(self) -> anyhow::Result<Value> {
        let SimBenchArgs { steps, tasks, .. } = self;
        let selected: Vec<GymTask> = if tasks.is_empty() {
            GymTask::ALL.to_vec()
        } else {
            tasks.iter().map(|t| GymTask::from_name(t).with_context(|| format!("unknown task `{t}`; tasks: {}", GymTask::ALL.map(|t| t.gym_id()).join(", ")))).collect::<anyhow::Result<_>>()?
        };
        let progress = indicatif::ProgressBar::new(selected.len() as u64 * 2);
        progress.set_style(indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}").expect("valid template"));
        let mut rows = Vec::new();
        for task in selected {
            progress.set_message(format!("{} (rrl)", task.gym_id()));
            let ours = sim_bridge::bench::gym_steps_per_second(task, steps, 0)?;
            progress.inc(1);
            progress.set_message(format!("{} (gymnasium)", task.gym_id()));
            let peer = run_peer("sim_bridge/bench/gym_steps.py", &[task.gym_id().to_string(), steps.to_string(), "0".to_string()])?;
            progress.inc(1);
            let theirs = peer["steps_per_s"].as_f64().context("peer JSON lacks steps_per_s")?;
            rows.push(json!({
                "task": task.gym_id(),
                "steps": steps,
                "rrl_steps_per_s": ours,
                "gymnasium_steps_per_s": theirs,
                "ratio": ours / theirs,
            }));
        }
        progress.set_message("Panda cameras (rrl)");
        let frames = 4000;
        let ours = sim_bridge::bench::panda_frames_per_second(frames, 128)?;
        progress.set_message("Panda cameras (MuJoCo Python renderer)");
        let scene = sim_bridge::assets::AssetPackage::GymHil.path("scene.xml")?;
        let peer = run_peer("sim_bridge/bench/panda_render.py", &[scene.display().to_string(), frames.to_string(), "128".to_string(), sim_bridge::arm::SHADOW_MAP_SIZE.to_string()])?;
        let theirs = peer["frames_per_s"].as_f64().context("peer JSON lacks frames_per_s")?;
        let rendering = json!({
            "cameras": ["front", "handcam_rgb"],
            "size": 128,
            "frames": frames,
            "rrl_frames_per_s": ours,
            "mujoco_python_frames_per_s": theirs,
            "ratio": ours / theirs,
        });
        progress.finish_and_clear();
        Ok(json!({ "bench": "sim", "threads": 1, "results": rows, "rendering": rendering }))
    }
}
