//! `rrl bench learner --pixels`: what learning from two 128x128 cameras
//! costs, per encoder mode — the DrQ encoder trained by the critic, a
//! frozen pretrained trunk (ResNet-10, exported by the venv's torch) run on
//! every batch, and the same trunk with its features computed once as each
//! frame enters the store. For each: learner updates/s at UTD 1, batch 256,
//! how fast frames enter the store, and end-to-end practice steps/s on the
//! simulated Panda rendering both cameras, actor and learner in lockstep.
//! `../shared/peers/` has no pixel learner, so no ratio is given.

use std::path::{Path, PathBuf};

use anyhow::Context;
use policies::practice::{EpisodeReport, NoOperator, PracticeSettings};
use policies::Sac;
use rrl_types::config::{LaunchFile, PixelEncoder};
use serde_json::{json, Value};

/// The launch file every mode shares but for `learner.pixels`.
const LAUNCH: &str = r#"(
    name: "bench_pixels",
    robot: Sim((task: PandaPickCube, observe_cameras: ["front", "wrist"])),
    cameras: [
        (name: "front", source: Sim("front"), width: 128, height: 128),
        (name: "wrist", source: Sim("handcam_rgb"), width: 128, height: 128),
    ],
    safety: (preset: Some(FrankaPanda)),
    learner: (hidden: [256, 256], critics: 2, batch_size: 256, utd: 1, warmup_steps: 300, pixels: PIXELS),
    practice: (max_episode_steps: 50),
)"#;

struct Mode {
    name: &'static str,
    /// The `learner.pixels` section; TRUNK stands for the exported trunk's path.
    pixels: &'static str,
    /// Practice steps measured (the slow mode gets fewer).
    steps_share: f64,
}

const MODES: [Mode; 3] = [
    Mode { name: "drq", pixels: "(encoder: Drq)", steps_share: 1.0 },
    Mode { name: "frozen_trunk", pixels: r#"(encoder: Frozen("TRUNK"))"#, steps_share: 0.2 },
    Mode { name: "frozen_trunk_precomputed", pixels: r#"(encoder: Frozen("TRUNK"), shift_pixels: Some(0))"#, steps_share: 1.0 },
];

/// Exports the ResNet-10 trunk for two cameras into `dir`.
fn export_trunk(dir: &Path) -> anyhow::Result<PathBuf> {
    let path = dir.join("resnet10_2cams.pt");
    let script = super::repo_file("scripts/make_resnet10_trunk.py");
    let out = std::process::Command::new(super::python()).arg(&script).arg(&path).args(["--cameras", "2"]).output().with_context(|| format!("running {}", script.display()))?;
    anyhow::ensure!(out.status.success(), "{} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr));
    Ok(path)
}

/// Runs every mode: `updates` timed updates on a replay of `rows` random
/// transitions, then practice until `practice_steps` steps past the warm-up.
pub fn run(updates: u64, rows: usize, practice_steps: u64, device: tch::Device) -> anyhow::Result<Value> {
    let dir = tempfile::tempdir()?;
    let trunk = export_trunk(dir.path())?;
    let mut results = Vec::new();
    for mode in MODES {
        let text = LAUNCH.replace("PIXELS", &mode.pixels.replace("TRUNK", &trunk.display().to_string()));
        let config_path = dir.path().join(format!("{}.ron", mode.name));
        let launch = LaunchFile::parse(&text, &config_path)?;
        let (task, _) = wiring::robot::panda_task(&launch, &config_path)?;
        let config = wiring::learner::sac_config(&launch, &task, 1);
        let pixels = config.pixels.clone().context("the bench's task sees cameras")?;

        let mut sac = Sac::try_new(config.clone(), device)?;
        let (mut replay, fill_s) = policies::bench::random_pixel_replay(&sac, rows, 1)?;
        let frames = replay.frames_added();
        policies::bench::pixel_updates_per_second(&mut sac, &mut replay, 2);
        let updates_per_s = policies::bench::pixel_updates_per_second(&mut sac, &mut replay, updates);
        drop(replay);

        let steps = ((practice_steps as f64 * mode.steps_share).round() as u64).max(5);
        let practice = practise(task, config.clone(), device, &launch, dir.path().join(mode.name), steps)?;
        results.push(json!({
            "mode": mode.name,
            "precomputed": pixels.precomputes(),
            "frozen_trunk": matches!(launch.learner.pixels.encoder, PixelEncoder::Frozen(_)),
            "shift_pixels": pixels.shift_pad,
            "cameras": pixels.cameras,
            "side": pixels.width,
            "batch": config.batch_size,
            "utd": config.utd,
            "updates_per_s": updates_per_s,
            "frames_into_store_per_s": frames as f64 / fill_s,
            "keeps_up_with_10_hz": updates_per_s * 1.0 >= 10.0,
            "practice": practice,
        }));
    }
    Ok(json!({
        "bench": "learner_pixels",
        "device": format!("{device:?}"),
        "threads": tch::get_num_threads(),
        "peer": Value::Null,
        "peer_note": "../shared/peers has no pixel learner",
        "results": results,
    }))
}

/// Practice on the pick-cube with both cameras, learner in lockstep (one
/// update a step after the warm-up): steps/s over `steps` steps past it.
fn practise(mut task: sim_bridge::panda::PandaTask, config: policies::SacConfig, device: tch::Device, launch: &LaunchFile, run_dir: PathBuf, steps: u64) -> anyhow::Result<Value> {
    let warmup = launch.learner.warmup_steps;
    let settings = PracticeSettings {
        task: "PandaPickCube".into(),
        total_steps: warmup + steps,
        warmup_steps: warmup,
        max_episode_steps: 10,
        stuck_steps: 0,
        stuck_tolerance: 1e-3,
        seed: 0,
        run_dir,
        sync_every_step: false,
        lockstep: true,
        publish_every: 1,
        checkpoint_every: 1_000_000,
        replay_capacity: 10_000,
        max_backlog: 20_000,
        stop_at_success: None,
        confirm_episodes: 10,
        human_reward: false,
        labels_override: false,
        shaping: None,
        risk_critic: None,
        live: None,
    };
    task.set_max_episode_steps(10);
    let mut ends: Vec<(u64, f64)> = Vec::new();
    let report = policies::practice::practice(&mut task, config, device, &mut NoOperator, &settings, |e: &EpisodeReport| ends.push((e.total_steps, e.seconds)))?;
    // Episodes of 10 steps: the warm-up ends with one, the rest are timed.
    let start = ends.iter().rev().find(|(total, _)| *total <= warmup).copied().unwrap_or((0, 0.0));
    let end = *ends.last().context("no episode ended")?;
    let warmup_rate = start.0 as f64 / start.1.max(1e-9);
    Ok(json!({
        "steps_per_s": (end.0 - start.0) as f64 / (end.1 - start.1).max(1e-9),
        "warmup_steps_per_s": warmup_rate,
        "timed_steps": end.0 - start.0,
        "learner_updates": report.learner_updates,
    }))
}
