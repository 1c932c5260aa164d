//! The task `rrl practice` steps: the simulated Panda of a launch file,
//! with, when the file's reward is `Vlm(..)`, rewards from the VLM progress
//! critic instead of the simulator's own.
//!
//! With a VLM reward, the pose after every reset and step goes to a camera
//! thread that renders the reward camera and offers the frame to the
//! progress pipeline (newest wins; requests run on the pipeline's threads);
//! the actor joins the estimates to its
//! steps by the frames' stamps and never waits on the model during an
//! episode (see `rrl_types::LearnedRewards`). Every estimate is also
//! written to `learned_rewards.csv` in the run folder.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use rewards::pipeline::ProgressPipeline;
use rewards::Frame;
use rrl_types::config::{CameraSource, LaunchFile, RewardConfig};
use rrl_types::{Environment, LearnedRewards, PracticeTask, Step, Timestamp};
use sim_bridge::assets::SimError;
use sim_bridge::camera::SimCamera;
use sim_bridge::panda::PandaTask;

use crate::scene_cameras::{CameraSpec, FrameSink, SceneSnapshots};

/// Frames are stamped (episode << 32 | step), so an estimate that arrives
/// after its episode ended is recognised as stale.
fn stamp(episode: u64, step: u64) -> Timestamp {
    Timestamp(episode << 32 | step)
}

/// The camera thread's end: scores each rendered frame with the VLM
/// pipeline (a frame of a new episode restarts its progress chain) and
/// sends the estimates back to the actor.
struct Scoring {
    pipeline: ProgressPipeline,
    task_text: String,
    episode: u64,
    estimates: crossbeam::channel::Sender<rewards::RewardEstimate>,
    counts: Arc<Mutex<serde_json::Value>>,
}

impl Scoring {
    fn forward(&mut self) {
        for estimate in self.pipeline.poll() {
            // The actor may be gone at shutdown; nothing is lost that it still wants.
            let _ = self.estimates.send(estimate);
        }
        let c = self.pipeline.counts();
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        *self.counts.lock().expect("counts") = serde_json::json!({"offered": load(&c.offered), "dropped": load(&c.dropped), "scored": load(&c.scored), "failed": load(&c.failed)});
    }
}

impl FrameSink for Scoring {
    fn frame(&mut self, _camera: usize, stamp: Timestamp, width: u32, height: u32, rgb: &[u8]) -> anyhow::Result<()> {
        let episode = stamp.0 >> 32;
        if episode != self.episode {
            self.episode = episode;
            self.pipeline.reset(&self.task_text);
        }
        self.pipeline.offer(Frame::new(stamp, width, height, rgb.to_vec())?);
        self.forward();
        Ok(())
    }
    fn idle(&mut self) -> anyhow::Result<()> {
        self.forward();
        Ok(())
    }
}

/// The actor's end of VLM rewards.
struct VlmRewards {
    snapshots: SceneSnapshots,
    estimates: crossbeam::channel::Receiver<rewards::RewardEstimate>,
    counts: Arc<Mutex<serde_json::Value>>,
    episode: u64,
    step: u64,
    /// Rewards of this episode's steps that have arrived.
    known: HashMap<u64, f64>,
    deadline: Duration,
    log: std::fs::File,
    warned: bool,
}

impl VlmRewards {
    fn offer_pose(&mut self, task: &mut PandaTask) {
        self.snapshots.offer(task.sim_mut(), stamp(self.episode, self.step));
    }

    fn collect(&mut self) {
        while let Ok(estimate) = self.estimates.try_recv() {
            let (episode, step) = (estimate.stamp.0 >> 32, estimate.stamp.0 & 0xffff_ffff);
            // A failed log line loses a diagnostic, not a reward.
            let _ = writeln!(self.log, "{episode},{step},{:.3},{:.6},{}", estimate.progress.unwrap_or(f64::NAN), estimate.reward, u8::from(estimate.done));
            if episode == self.episode {
                self.known.insert(step, estimate.reward);
            }
        }
    }
}

pub struct PracticeEnv {
    task: PandaTask,
    vlm: Option<VlmRewards>,
}

impl PracticeEnv {
    /// The task alone, its own rewards final.
    pub fn plain(task: PandaTask) -> PracticeEnv {
        PracticeEnv { task, vlm: None }
    }

    /// The task with the launch file's reward: the simulator's own, or a
    /// `Vlm(..)` critic scoring the first reward camera, which must be a
    /// `Sim(..)` camera of the scene.
    pub fn for_launch(task: PandaTask, launch: &LaunchFile, config: &Path, run_dir: &Path) -> anyhow::Result<PracticeEnv> {
        let RewardConfig::Vlm(vlm) = &launch.reward else {
            return Ok(PracticeEnv::plain(task));
        };
        let name = vlm.cameras.first().with_context(|| format!("{}: reward.cameras is empty", config.display()))?;
        let camera = launch.cameras.iter().find(|c| &c.name == name).with_context(|| format!("{}: reward camera `{name}` is not among the cameras", config.display()))?;
        let CameraSource::Sim(model_camera) = &camera.source else {
            bail!("{}: practice on the simulated Panda scores a Sim(..) camera; reward camera `{name}` is {:?}", config.display(), camera.source);
        };
        SimCamera::check_name(task.sim(), model_camera).with_context(|| format!("{}: camera `{name}`", config.display()))?;
        let critic = crate::reward_node::critic_of(vlm, config)?;
        let path = run_dir.join("learned_rewards.csv");
        let mut log = std::fs::OpenOptions::new().create(true).append(true).open(&path).with_context(|| format!("opening {}", path.display()))?;
        if log.metadata()?.len() == 0 {
            writeln!(log, "episode,step,progress,reward,done")?;
        }
        let (sender, estimates) = crossbeam::channel::unbounded();
        let counts = Arc::new(Mutex::new(serde_json::Value::Null));
        let scoring = Scoring { pipeline: ProgressPipeline::new(critic, vlm.max_concurrent as usize), task_text: vlm.task.clone(), episode: u64::MAX, estimates: sender, counts: counts.clone() };
        // Every pose offered is rendered when the renderer keeps up; else the newest.
        let spec = CameraSpec { model_camera: model_camera.clone(), width: camera.width, height: camera.height, fps: f64::INFINITY };
        let vlm = VlmRewards {
            snapshots: SceneSnapshots::start(vec![spec], scoring)?,
            estimates,
            counts,
            episode: 0,
            step: 0,
            known: HashMap::new(),
            // A request may take its timeout; then the answer needs a moment to come back.
            deadline: Duration::from_millis(vlm.timeout_ms + 500),
            log,
            warned: false,
        };
        Ok(PracticeEnv { task, vlm: Some(vlm) })
    }

    /// Frames offered to, dropped by, scored and failed by the VLM pipeline.
    pub fn vlm_counts(&self) -> Option<serde_json::Value> {
        self.vlm.as_ref().map(|v| v.counts.lock().expect("counts").clone())
    }

    fn episode_started(&mut self) {
        if let Some(vlm) = self.vlm.as_mut() {
            vlm.episode += 1;
            vlm.step = 0;
            vlm.known.clear();
            // The first frame anchors the episode's progress.
            vlm.offer_pose(&mut self.task);
        }
    }
}

impl Environment for PracticeEnv {
    type Error = SimError;

    fn observation_size(&self) -> usize {
        self.task.observation_size()
    }
    fn action_size(&self) -> usize {
        self.task.action_size()
    }
    fn action_low(&self) -> &[f64] {
        self.task.action_low()
    }
    fn action_high(&self) -> &[f64] {
        self.task.action_high()
    }
    fn observation(&self) -> &[f64] {
        self.task.observation()
    }
    fn reset(&mut self, seed: u64) -> &[f64] {
        self.task.reset(seed);
        self.episode_started();
        self.task.observation()
    }
    fn reset_next(&mut self) -> &[f64] {
        self.task.reset_next();
        self.episode_started();
        self.task.observation()
    }
    fn step(&mut self, action: &[f64]) -> Result<Step, SimError> {
        let step = self.task.step(action)?;
        if let Some(vlm) = self.vlm.as_mut() {
            vlm.step += 1;
            vlm.offer_pose(&mut self.task);
        }
        Ok(step)
    }
    fn success(&self) -> Option<bool> {
        self.task.success()
    }
}

impl PracticeTask for PracticeEnv {
    fn recovery_actions(&self) -> Vec<Vec<f64>> {
        self.task.recovery_actions()
    }
    fn take_safety_events(&mut self) -> u64 {
        self.task.take_safety_events()
    }
    fn learned_rewards(&mut self) -> Option<&mut dyn LearnedRewards> {
        self.vlm.as_mut().map(|v| v as &mut dyn LearnedRewards)
    }
}

impl LearnedRewards for VlmRewards {
    fn reward_of(&mut self, step: u64) -> Option<f64> {
        if let Some(e) = self.snapshots.failure().filter(|_| !self.warned) {
            // Rendering stopped: every later reward will be missing; the log says why, once.
            tracing::warn!("{e:#}");
            self.warned = true;
        }
        self.collect();
        self.known.get(&step).copied()
    }
    fn deadline(&self) -> Duration {
        self.deadline
    }
}
