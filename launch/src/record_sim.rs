//! `rrl record-sim`: rendered episodes of the simulated Panda with their
//! true task progress, for judging reward sources (`rrl reward-eval` reads
//! the frames, `progress.csv` and `labels.json` it writes). The scripted
//! expert acts, except in the last `--random-episodes`, which act at random
//! and mostly fail, so success metrics have both kinds.

use std::path::PathBuf;

use anyhow::{bail, Context};
use rrl_types::config::{CameraSource, LaunchFile};
use rrl_types::rng::Rng;
use rrl_types::Environment;
use sim_bridge::camera::SimCamera;
use sim_bridge::panda::{PandaTask, PandaVariant, ScriptedExpert};

#[derive(clap::Args)]
pub struct RecordSimArgs {
    /// Launch file of a simulated Panda task with at least one `Sim(..)` camera.
    #[arg(long)]
    pub config: PathBuf,
    /// Output folder: one sub-folder of PNG frames and progress.csv per episode, and labels.json.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 10)]
    pub episodes: u32,
    /// The last N episodes act uniformly at random.
    #[arg(long, default_value_t = 0)]
    pub random_episodes: u32,
    /// Which of the launch file's cameras to record. Default: its first simulated one.
    #[arg(long)]
    pub camera: Option<String>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// True progress in [0, 1] of the task's current state: reach, the share
/// of the starting distance to the goal covered; pick, half for bringing
/// the fingertips to the cube and half for lifting it the 10 cm that count.
struct ProgressMeter {
    start_distance: f64,
    cube_start_z: f64,
}

fn distance(a: [f64; 3], b: [f64; 3]) -> f64 {
    (0..3).map(|k| (a[k] - b[k]).powi(2)).sum::<f64>().sqrt()
}

impl ProgressMeter {
    fn target(task: &PandaTask) -> [f64; 3] {
        match task.variant() {
            PandaVariant::Reach => task.goal(),
            PandaVariant::PickCube => task.sim().block_position(),
        }
    }

    fn start(task: &PandaTask) -> ProgressMeter {
        ProgressMeter { start_distance: distance(task.sim().pinch_position(), Self::target(task)).max(1e-6), cube_start_z: task.sim().block_position()[2] }
    }

    fn progress(&self, task: &PandaTask) -> f64 {
        let approach = (1.0 - distance(task.sim().pinch_position(), Self::target(task)) / self.start_distance).clamp(0.0, 1.0);
        match task.variant() {
            PandaVariant::Reach => approach,
            PandaVariant::PickCube => {
                let lift = ((task.sim().block_position()[2] - self.cube_start_z) / 0.1).clamp(0.0, 1.0);
                0.5 * approach + 0.5 * lift
            }
        }
    }
}

impl RecordSimArgs {
    pub fn run(self) -> anyhow::Result<serde_json::Value> {
        let launch = LaunchFile::load(&self.config)?;
        let (mut task, variant) = wiring::robot::panda_task(&launch, &self.config)?;
        let camera = launch
            .cameras
            .iter()
            .filter(|c| matches!(c.source, CameraSource::Sim(_)))
            .find(|c| self.camera.as_ref().is_none_or(|name| *name == c.name))
            .with_context(|| match &self.camera {
                Some(name) => format!("{}: no simulated camera named `{name}`", self.config.display()),
                None => format!("{}: no `Sim(..)` camera to record", self.config.display()),
            })?;
        let CameraSource::Sim(model_camera) = &camera.source else { unreachable!("filtered to Sim cameras") };
        let mut renderer = SimCamera::new(task.sim(), model_camera, camera.width, camera.height)?;
        if self.random_episodes > self.episodes {
            bail!("--random-episodes {} exceeds --episodes {}", self.random_episodes, self.episodes);
        }
        std::fs::create_dir_all(&self.out).with_context(|| format!("creating {}", self.out.display()))?;
        let mut labels = serde_json::Map::new();
        let mut rng = Rng::seed(self.seed ^ 0x5eed);
        let mut expert = ScriptedExpert::default();
        let (mut frames, mut successes) = (0usize, 0usize);
        let progress_bar = indicatif::ProgressBar::new(u64::from(self.episodes));
        for e in 0..self.episodes {
            let name = format!("episode_{e:03}");
            let folder = self.out.join(&name);
            std::fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
            let random = e >= self.episodes - self.random_episodes;
            let mut observation = task.reset(self.seed + u64::from(e)).to_vec();
            expert.reset();
            let meter = ProgressMeter::start(&task);
            let mut progress = Vec::new();
            let mut record = |task: &mut PandaTask, index: usize| -> anyhow::Result<f64> {
                let rgb = renderer.render(task.sim_mut())?;
                let png = rewards::encode::png_rgb(camera.width, camera.height, rgb);
                let file = folder.join(format!("{index:04}.png"));
                std::fs::write(&file, png).with_context(|| format!("writing {}", file.display()))?;
                Ok(meter.progress(task))
            };
            progress.push(record(&mut task, 0)?);
            loop {
                let action = if random { (0..4).map(|_| rng.uniform(-1.0, 1.0)).collect() } else { expert.act(variant, &observation).to_vec() };
                let step = task.step(&action)?;
                observation = task.observation().to_vec();
                progress.push(record(&mut task, progress.len())?);
                if step.done() {
                    break;
                }
            }
            let csv: String = progress.iter().map(|p| format!("{p:.6}\n")).collect();
            std::fs::write(folder.join("progress.csv"), csv).with_context(|| format!("writing {}", folder.join("progress.csv").display()))?;
            let success = task.is_success();
            successes += usize::from(success);
            frames += progress.len();
            labels.insert(name, serde_json::Value::Bool(success));
            progress_bar.inc(1);
        }
        progress_bar.finish_and_clear();
        let labels_file = self.out.join("labels.json");
        std::fs::write(&labels_file, serde_json::to_vec_pretty(&labels)?).with_context(|| format!("writing {}", labels_file.display()))?;
        Ok(serde_json::json!({
            "out": self.out.display().to_string(),
            "task": format!("{variant:?}"),
            "camera": camera.name,
            "episodes": self.episodes,
            "successes": successes,
            "frames": frames,
        }))
    }
}
