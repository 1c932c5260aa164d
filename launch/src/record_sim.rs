//! `rrl record-sim`: rendered episodes of the simulated Panda with their
//! true task progress, for judging reward sources (`rrl reward-eval` reads
//! the frames, `progress.csv` and `labels.json` it writes). The scripted
//! expert acts, except in the last `--random-episodes`, which act at random
//! and mostly fail, so success metrics have both kinds.
//!
//! With `--run-dir` it records, instead, episodes in a run's format under
//! `RUN/labelled/`: the policy's cameras (`observe_cameras`) with every
//! step's frames labelled by the simulator's own success, for training and
//! judging a success classifier (`rrl classifier`). Expert episodes go on
//! for `--hold-steps` past their success, so successes are more than one
//! frame each; `--noisy-episodes` add noise to the expert's actions.

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
    #[arg(long, required_unless_present = "run_dir", conflicts_with = "run_dir")]
    pub out: Option<PathBuf>,
    /// Instead of `--out`: a run folder whose `labelled/` gets episodes with
    /// the policy's camera frames, each step labelled by the simulator's success.
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// With `--run-dir`: expert steps recorded after a success (the task
    /// would end there), so successes are more than one frame each.
    #[arg(long, default_value_t = 10)]
    pub hold_steps: u64,
    /// With `--run-dir`: the N episodes before the random ones add Gaussian
    /// noise (`--noise`) to the expert's actions, so they fail sometimes and
    /// pass through near-successes.
    #[arg(long, default_value_t = 0)]
    pub noisy_episodes: u32,
    #[arg(long, default_value_t = 0.5)]
    pub noise: f64,
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
        if self.random_episodes + self.noisy_episodes > self.episodes {
            bail!("--random-episodes {} and --noisy-episodes {} exceed --episodes {}", self.random_episodes, self.noisy_episodes, self.episodes);
        }
        let Some(out) = self.out.clone() else {
            return self.record_labelled_run(&launch, task, variant);
        };
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
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        let mut labels = serde_json::Map::new();
        let mut rng = Rng::seed(self.seed ^ 0x5eed);
        let mut expert = ScriptedExpert::default();
        let (mut frames, mut successes) = (0usize, 0usize);
        let progress_bar = indicatif::ProgressBar::new(u64::from(self.episodes));
        for e in 0..self.episodes {
            let name = format!("episode_{e:03}");
            let folder = out.join(&name);
            std::fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
            let random = e >= self.episodes - self.random_episodes;
            task.reset(self.seed + u64::from(e));
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
                let action = if random { (0..4).map(|_| rng.uniform(-1.0, 1.0)).collect() } else { expert.act(variant, task.full_observation()).to_vec() };
                let step = task.step(&action)?;
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
        let labels_file = out.join("labels.json");
        std::fs::write(&labels_file, serde_json::to_vec_pretty(&labels)?).with_context(|| format!("writing {}", labels_file.display()))?;
        Ok(serde_json::json!({
            "out": out.display().to_string(),
            "task": format!("{variant:?}"),
            "camera": camera.name,
            "episodes": self.episodes,
            "successes": successes,
            "frames": frames,
        }))
    }
}

/// How an episode of a labelled run acts.
#[derive(Clone, Copy, PartialEq)]
enum Actor {
    Expert,
    NoisyExpert,
    Random,
}

impl RecordSimArgs {
    fn actor_of(&self, episode: u32) -> Actor {
        if episode >= self.episodes - self.random_episodes {
            Actor::Random
        } else if episode >= self.episodes - self.random_episodes - self.noisy_episodes {
            Actor::NoisyExpert
        } else {
            Actor::Expert
        }
    }

    /// Episodes in a run's format under `RUN/labelled/`, every step's
    /// frames labelled by the simulator's success at that step.
    fn record_labelled_run(&self, launch: &LaunchFile, mut task: PandaTask, variant: PandaVariant) -> anyhow::Result<serde_json::Value> {
        let run_dir = self.run_dir.as_ref().expect("--out or --run-dir");
        let layout = task.frame_layout().with_context(|| format!("{}: the robot observes no cameras; name them in `robot: Sim((.., observe_cameras: [..]))`", self.config.display()))?;
        let folder = run_dir.join("labelled");
        // After the episodes already there (a second recording adds to them).
        let first = match recording::list_episodes(&folder) {
            Ok(existing) => existing.iter().filter_map(|p| recording::read_episode(p).ok()).map(|e| e.header.episode + 1).max().unwrap_or(0),
            Err(_) => 0,
        };
        let mut rng = Rng::seed(self.seed ^ 0x5eed);
        let mut expert = ScriptedExpert::default();
        let (mut frames, mut positives, mut successes) = (0u64, 0u64, 0u64);
        let progress_bar = indicatif::ProgressBar::new(u64::from(self.episodes));
        for e in 0..self.episodes {
            let actor = self.actor_of(e);
            let seed = self.seed + u64::from(e);
            let index = first + u64::from(e);
            let source = match actor {
                Actor::Expert => "scripted",
                Actor::NoisyExpert => "noisy-scripted",
                Actor::Random => "random",
            };
            let header = recording::EpisodeHeader { task: launch.name.clone(), episode: index, observation_size: task.observation_size(), action_size: task.action_size(), source: source.into(), seed, started_unix_ns: 0 };
            let mut writer = recording::EpisodeWriter::create(&folder, &header, false)?;
            task.reset(seed);
            expert.reset();
            let encode = |task: &PandaTask| recording::frames::encode(task.frames().expect("a task with cameras has frames"), layout);
            writer.reset_frames(&encode(&task)?)?;
            let (mut steps, mut total, mut held) = (0u64, 0.0, 0u64);
            let mut ever_succeeded = false;
            loop {
                let observation: Vec<f32> = task.observation().iter().map(|&x| x as f32).collect();
                let mut action: Vec<f64> = match actor {
                    Actor::Random => (0..4).map(|_| rng.uniform(-1.0, 1.0)).collect(),
                    _ => expert.act(variant, task.full_observation()).to_vec(),
                };
                if actor == Actor::NoisyExpert {
                    for a in &mut action {
                        *a = (*a + self.noise * rng.normal()).clamp(-1.0, 1.0);
                    }
                }
                let step = task.step(&action)?;
                steps += 1;
                total += step.reward;
                let success = task.is_success();
                ever_succeeded |= success;
                positives += u64::from(success);
                held += u64::from(ever_succeeded);
                // Past a success the task would end; the expert holds on for
                // `hold_steps` so successes are several frames.
                let over = step.truncated || (step.terminated && !success) || held > self.hold_steps || (ever_succeeded && self.hold_steps == 0);
                let record = recording::EpisodeStep {
                    time_ns: steps * 100_000_000,
                    observation,
                    action: action.iter().map(|&x| x as f32).collect(),
                    reward: step.reward as f32,
                    next_observation: task.observation().iter().map(|&x| x as f32).collect(),
                    flags: recording::StepFlags { terminated: over && !step.truncated, truncated: step.truncated, label: Some(success), ..Default::default() },
                    next_frames: Some(encode(&task)?),
                };
                writer.step(&record)?;
                if over {
                    break;
                }
            }
            frames += steps;
            successes += u64::from(ever_succeeded);
            let reason = if ever_succeeded { "success" } else { "timeout" };
            let outcome = recording::EpisodeOutcome { steps, episode_return: total, success: Some(ever_succeeded), interventions: 0, safety_events: 0, reason: reason.into() };
            writer.finish(&outcome)?;
            progress_bar.inc(1);
        }
        progress_bar.finish_and_clear();
        Ok(serde_json::json!({
            "run_dir": run_dir.display().to_string(),
            "task": format!("{variant:?}"),
            "layout": layout.to_string(),
            "episodes": self.episodes,
            "successes": successes,
            "frames": frames,
            "success_frames": positives,
        }))
    }
}

