//! The task `rrl practice` steps (the simulated Panda, or a real arm's
//! task) with, when the launch file's reward is `Vlm(..)`, rewards
//! from the VLM progress critic instead of the task's own; or, with
//! `Classifier(..)`, from a success classifier on the policy's frames
//! (`crate::classifier_reward`).
//!
//! With a VLM reward, the reward camera's view after every reset and step
//! is offered to the progress pipeline (newest wins; requests run on the
//! pipeline's threads). In simulation the pose goes to a camera thread
//! that renders it; on a real arm the camera's newest frame (grabbed on its
//! own thread) is taken. The actor joins the estimates to its steps by the
//! frames' stamps and never waits on the model during an episode (see
//! `rrl_types::LearnedRewards`). Every estimate is also written to
//! `learned_rewards.csv` in the run folder.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rewards::pipeline::{PipelineCounts, ProgressPipeline};
use rewards::{Frame, VlmProgressCritic, VlmPrompts, VlmSettings};
use robot_drivers::camera::{CameraGrabber, StampedFrame};
use rrl_types::config::{CameraSource, LaunchFile, RewardConfig, VlmRewardConfig};
use rrl_types::{Environment, LearnedRewards, PracticeTask, Step, Timestamp};
use sim_bridge::arm::PandaSim;
use sim_bridge::camera::SimCamera;
use sim_bridge::panda::PandaTask;

use crate::arm_task::ArmTask;
use crate::classifier_reward::ClassifierRewards;
use sim_bridge::scene_cameras::{CameraSpec, FrameSink, SceneSnapshots, SinkError};
use crate::WiringError;

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
    /// The operator's view: the reward camera's frames as scored.
    view: Arc<rrl_types::LiveStatus>,
}

impl Scoring {
    fn forward(&mut self) {
        for estimate in self.pipeline.poll() {
            // The actor may be gone at shutdown; nothing is lost that it still wants.
            let _ = self.estimates.send(estimate);
        }
    }
}

impl FrameSink for Scoring {
    fn frame(&mut self, _camera: usize, stamp: Timestamp, width: u32, height: u32, rgb: &[u8]) -> Result<(), SinkError> {
        let episode = stamp.0 >> 32;
        if episode != self.episode {
            self.episode = episode;
            self.pipeline.reset(&self.task_text);
        }
        let layout = rrl_types::FrameLayout { cameras: 1, height: height as usize, width: width as usize };
        self.view.reward_frames.offer(layout, rgb, stamp.0 & 0xffff_ffff);
        self.pipeline.offer(Frame::new(stamp, width, height, rgb.to_vec())?);
        self.forward();
        Ok(())
    }
    fn idle(&mut self) -> Result<(), SinkError> {
        self.forward();
        Ok(())
    }
}

/// Where the reward camera's frames come from.
enum RewardFrames {
    /// Rendered from the simulated scene's pose on a camera thread.
    Scene(SceneSnapshots),
    /// A real camera's newest frame, scored from the actor's thread (the
    /// pipeline's requests run on its own threads). The last frame stands
    /// in when no newer one arrived since the previous step.
    Camera { grabber: CameraGrabber, scoring: Scoring, last: Option<StampedFrame> },
}

/// Keeps the camera's newest frame in `last` when one arrived since the last look.
fn take_newest(grabber: &CameraGrabber, last: &mut Option<StampedFrame>) {
    if let Some(frame) = grabber.newest().take() {
        *last = Some(frame);
    }
}

/// The simulated scene behind a task, where there is one to render.
pub trait Scene {
    fn scene(&mut self) -> Option<&mut PandaSim>;
}

impl Scene for PandaTask {
    fn scene(&mut self) -> Option<&mut PandaSim> {
        Some(self.sim_mut())
    }
}

impl Scene for ArmTask {
    fn scene(&mut self) -> Option<&mut PandaSim> {
        None
    }
}

/// Failed requests in a row after which the reward endpoint counts as down.
const ENDPOINT_DOWN_AFTER: u64 = 3;
/// The step number of frames offered to probe an endpoint that is down.
const PROBE_STEP: u64 = 0xffff_ffff;
/// While the endpoint is down, the current view is offered again this often.
const ENDPOINT_RETRY: Duration = Duration::from_secs(1);

/// The actor's end of VLM rewards.
struct VlmRewards {
    frames: RewardFrames,
    estimates: crossbeam::channel::Receiver<rewards::RewardEstimate>,
    counts: Arc<PipelineCounts>,
    episode: u64,
    step: u64,
    /// Rewards of this episode's steps that have arrived.
    known: HashMap<u64, f64>,
    /// The critic's `done` ends the episode (`done_ends_episode`).
    done_ends_episode: bool,
    /// The first step of this episode the critic called done, once one came.
    done_at: Option<u64>,
    /// Beside a classifier: steps whose progress came too late to shape them.
    shaping_missing: u64,
    deadline: Duration,
    /// A reward camera whose newest frame is older than this has stalled.
    stall_after: Duration,
    log: std::fs::File,
    warned: bool,
    /// What the operator sees, when the task keeps it.
    live: Option<Arc<rrl_types::LiveStatus>>,
}

impl VlmRewards {
    /// Offers the reward camera's view of now, stamped with the current step.
    fn offer(&mut self, scene: Option<&mut PandaSim>) {
        self.offer_stamped(scene, stamp(self.episode, self.step));
    }

    fn offer_stamped(&mut self, scene: Option<&mut PandaSim>, stamp: Timestamp) {
        match (&mut self.frames, scene) {
            (RewardFrames::Scene(snapshots), Some(sim)) => snapshots.offer(sim, stamp),
            (RewardFrames::Scene(_), None) => unreachable!("scene cameras are only built for simulated tasks"),
            (RewardFrames::Camera { grabber, scoring, last }, _) => {
                take_newest(grabber, last);
                if let Some(frame) = last {
                    if let Err(e) = scoring.frame(0, stamp, frame.width, frame.height, &frame.rgb) {
                        // A frame the pipeline refuses loses that step's reward (counted missing), not the run.
                        tracing::warn!("reward camera frame refused: {e:#}");
                    }
                }
            }
        }
    }

    /// Returns once the reward camera's newest frame is recent. While it is
    /// not (the camera stalled), practice pauses here before the next step
    /// (the gate holds the arm, which gets no command), says so once, and
    /// resumes by itself when frames come again: rewards are never scored
    /// on a stale view. Scene cameras render every pose and never stall.
    fn wait_for_camera(&mut self) {
        let RewardFrames::Camera { grabber, last, scoring } = &mut self.frames else { return };
        let mut paused_since: Option<std::time::Instant> = None;
        loop {
            take_newest(grabber, last);
            let now = rrl_types::Clock::now(&rrl_types::SystemClock);
            let age = last.as_ref().map(|f| Duration::from_nanos(now.nanos_since(f.stamp)));
            if age.is_some_and(|age| age <= self.stall_after) {
                if let Some(since) = paused_since {
                    tracing::warn!(paused_s = since.elapsed().as_secs_f64(), "the reward camera delivers frames again: practice resumes");
                    if let Some(live) = &self.live {
                        live.came(rrl_types::Waiting::RewardCamera);
                    }
                }
                return;
            }
            if let Some(why) = grabber.newest().failure() {
                // Gone for good: the rewards will be missing (counted), practice goes on.
                if !self.warned {
                    tracing::warn!("{why}");
                    self.warned = true;
                }
                return;
            }
            if paused_since.is_none() {
                tracing::warn!(newest_frame_age_ms = age.map(|a| a.as_millis() as u64), "the reward camera has stalled: practice is paused (the gate holds the robot) until it delivers frames again");
                if let Some(live) = &self.live {
                    live.wait_for(rrl_types::Waiting::RewardCamera);
                }
                paused_since = Some(std::time::Instant::now());
            }
            // Estimates keep arriving for steps already taken.
            scoring.forward();
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Returns once the reward endpoint answers. While its last
    /// `ENDPOINT_DOWN_AFTER` requests all failed (the endpoint died, hangs
    /// past its timeout, or refuses), practice pauses here before the next
    /// step (the gate holds the arm, which gets no command), says so once,
    /// and offers the current view again every `ENDPOINT_RETRY` until an
    /// answer comes back: steps are not spent on rewards that cannot come.
    fn wait_for_endpoint(&mut self, mut scene: Option<&mut PandaSim>) {
        let failing = || self.counts.failed_in_a_row.load(Ordering::Relaxed);
        if failing() < ENDPOINT_DOWN_AFTER {
            return;
        }
        tracing::warn!(failed_in_a_row = failing(), "the reward endpoint does not answer (its failures are logged above): practice is paused (the gate holds the robot) until it answers again");
        if let Some(live) = &self.live {
            live.wait_for(rrl_types::Waiting::RewardEndpoint);
        }
        let paused_since = std::time::Instant::now();
        let mut offered_at: Option<std::time::Instant> = None;
        while self.counts.failed_in_a_row.load(Ordering::Relaxed) > 0 {
            if offered_at.is_none_or(|t| t.elapsed() >= ENDPOINT_RETRY) {
                // A probe: its answer belongs to no step (the last step's
                // reward is settled already) but restarts the progress
                // chain at this view, from which the next step goes on.
                self.offer_stamped(scene.as_deref_mut(), stamp(self.episode, PROBE_STEP));
                offered_at = Some(std::time::Instant::now());
            }
            // Answers for steps already taken still count when they come.
            self.collect();
            std::thread::sleep(Duration::from_millis(20));
        }
        tracing::warn!(paused_s = paused_since.elapsed().as_secs_f64(), "the reward endpoint answers again: practice resumes");
        if let Some(live) = &self.live {
            live.came(rrl_types::Waiting::RewardEndpoint);
        }
    }

    /// Whether the critic's `done` ends the episode in hand.
    fn ends_now(&self) -> bool {
        self.done_ends_episode && self.done_at.is_some()
    }

    fn failure(&self) -> Option<String> {
        match &self.frames {
            RewardFrames::Scene(snapshots) => snapshots.failure(),
            RewardFrames::Camera { grabber, .. } => grabber.newest().failure().map(str::to_string),
        }
    }

    fn collect(&mut self) {
        if let RewardFrames::Camera { scoring, .. } = &mut self.frames {
            scoring.forward();
        }
        while let Ok(estimate) = self.estimates.try_recv() {
            let (episode, step) = (estimate.stamp.0 >> 32, estimate.stamp.0 & 0xffff_ffff);
            if step == PROBE_STEP {
                continue;
            }
            // A failed log line loses a diagnostic, not a reward.
            let _ = writeln!(self.log, "{episode},{step},{:.3},{:.6},{}", estimate.progress.unwrap_or(f64::NAN), estimate.reward, u8::from(estimate.done));
            if episode == self.episode {
                self.known.insert(step, estimate.reward);
                if estimate.done && self.done_at.is_none() {
                    self.done_at = Some(step);
                }
            }
        }
    }
}

pub struct PracticeEnv<T = PandaTask> {
    task: T,
    vlm: Option<VlmRewards>,
    classifier: Option<ClassifierRewards>,
    /// With both: when each step's reward was first asked for (a VLM
    /// estimate later than its deadline leaves the classifier's alone).
    asked: HashMap<u64, std::time::Instant>,
}

impl<T: Environment> PracticeEnv<T> {
    /// The task alone, its own rewards final.
    pub fn plain(task: T) -> PracticeEnv<T> {
        PracticeEnv { task, vlm: None, classifier: None, asked: HashMap::new() }
    }

    /// The task with the launch file's VLM critic (`vlm`, built) and its
    /// `Classifier(..)`, if it has one. Beside a classifier the critic's
    /// progress only shapes: its `done` ends nothing.
    fn with_rewards(task: T, mut vlm: Option<VlmRewards>, launch: &LaunchFile, config: &Path) -> Result<PracticeEnv<T>, WiringError> {
        let classifier = match &launch.reward {
            RewardConfig::Classifier(settings) => Some(ClassifierRewards::start(settings, launch, task.frame_layout(), config)?),
            _ => None,
        };
        if let (Some(vlm), Some(_)) = (vlm.as_mut(), &classifier) {
            vlm.done_ends_episode = false;
        }
        Ok(PracticeEnv { task, vlm, classifier, asked: HashMap::new() })
    }
}

/// The launch file's VLM critic (a `Vlm(..)` reward, or a classifier's
/// `progress`) and its reward camera, if it has one.
pub fn vlm_reward<'a>(launch: &'a LaunchFile, config: &Path) -> Result<Option<(&'a VlmRewardConfig, &'a rrl_types::config::CameraConfig)>, WiringError> {
    let Some(vlm) = launch.reward.vlm() else { return Ok(None) };
    let name = vlm.cameras.first().ok_or_else(|| WiringError::launch(config, "reward.cameras is empty"))?;
    let camera = launch.cameras.iter().find(|c| &c.name == name).ok_or_else(|| WiringError::launch(config, format!("reward camera `{name}` is not among the cameras")))?;
    Ok(Some((vlm, camera)))
}

/// The VLM progress critic of a launch file's `Vlm(..)` reward; the API key
/// comes from the environment variable the file names.
pub fn critic_of(vlm: &VlmRewardConfig, config: &Path) -> Result<VlmProgressCritic, WiringError> {
    let api_key = match &vlm.api_key_env {
        Some(var) => Some(std::env::var(var).map_err(|_| WiringError::launch(config, format!("reward.api_key_env names {var}, which is not set")))?),
        None => None,
    };
    let settings = VlmSettings {
        endpoint: vlm.endpoint.clone(),
        model: vlm.model.clone(),
        api_key,
        prompts: VlmPrompts::default(),
        done_threshold: 90.0,
        timeout: Duration::from_millis(vlm.timeout_ms),
        reference_frames: Vec::new(),
        root_certificates: vlm.root_certificates.as_ref().map(std::path::PathBuf::from),
    };
    VlmProgressCritic::new(settings).map_err(|e| WiringError::Reward(format!("{}: the VLM reward: {e}", config.display())))
}

/// The VLM critic's scoring end and the actor's end, with the frames from `frames`.
/// `view`: what the operator sees (the task's, or the reward's own for a task that keeps none).
fn vlm_rewards(vlm: &VlmRewardConfig, camera_fps: f64, config: &Path, run_dir: &Path, view: Arc<rrl_types::LiveStatus>, frames: impl FnOnce(Scoring) -> Result<RewardFrames, WiringError>) -> Result<VlmRewards, WiringError> {
    let critic = critic_of(vlm, config)?;
    let path = run_dir.join("learned_rewards.csv");
    let mut log = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(WiringError::io(format!("opening {}", path.display())))?;
    if log.metadata().map_err(WiringError::io(format!("reading {}", path.display())))?.len() == 0 {
        writeln!(log, "episode,step,progress,reward,done").map_err(WiringError::io(format!("writing {}", path.display())))?;
    }
    let (sender, estimates) = crossbeam::channel::unbounded();
    let pipeline = ProgressPipeline::new(critic, vlm.max_concurrent as usize);
    let counts = pipeline.shared_counts();
    let scoring = Scoring { pipeline, task_text: vlm.task.clone(), episode: u64::MAX, estimates: sender, view: view.clone() };
    Ok(VlmRewards {
        frames: frames(scoring)?,
        estimates,
        counts,
        episode: 0,
        step: 0,
        known: HashMap::new(),
        done_ends_episode: vlm.done_ends_episode,
        done_at: None,
        shaping_missing: 0,
        // A request may take its timeout; then the answer needs a moment to come back.
        deadline: Duration::from_millis(vlm.timeout_ms + 500),
        stall_after: Duration::from_secs_f64((10.0 / camera_fps).max(1.0)),
        log,
        warned: false,
        live: Some(view),
    })
}

impl PracticeEnv<PandaTask> {
    /// The simulated task with the launch file's reward: the simulator's
    /// own, or a `Vlm(..)` critic scoring the first reward camera, which
    /// must be a `Sim(..)` camera of the scene.
    pub fn for_launch(task: PandaTask, launch: &LaunchFile, config: &Path, run_dir: &Path) -> Result<PracticeEnv, WiringError> {
        let Some((vlm, camera)) = vlm_reward(launch, config)? else {
            return PracticeEnv::with_rewards(task, None, launch, config);
        };
        let name = &camera.name;
        let CameraSource::Sim(model_camera) = &camera.source else {
            return Err(WiringError::launch(config, format!("practice on the simulated Panda scores a Sim(..) camera; reward camera `{name}` is {:?}", camera.source)));
        };
        SimCamera::check_name(task.sim(), model_camera).map_err(|e| WiringError::launch(config, format!("camera `{name}`: {e}")))?;
        // Every pose offered is rendered when the renderer keeps up; else the newest.
        let spec = CameraSpec { model_camera: model_camera.clone(), width: camera.width, height: camera.height, fps: f64::INFINITY };
        let vlm = vlm_rewards(vlm, camera.fps, config, run_dir, Arc::default(), |scoring| Ok(RewardFrames::Scene(SceneSnapshots::start(vec![spec], scoring).map_err(WiringError::io("starting the reward camera's renderer"))?)))?;
        PracticeEnv::with_rewards(task, Some(vlm), launch, config)
    }
}

impl PracticeEnv<ArmTask> {
    /// A real arm's task with the launch file's reward: the task's
    /// own, or a `Vlm(..)` critic scoring the first reward camera, a real
    /// camera (device, video, image sequence) grabbed on its own thread.
    pub fn for_arm(task: ArmTask, launch: &LaunchFile, config: &Path, run_dir: &Path) -> Result<PracticeEnv<ArmTask>, WiringError> {
        let Some((vlm, camera)) = vlm_reward(launch, config)? else {
            return PracticeEnv::with_rewards(task, None, launch, config);
        };
        if matches!(camera.source, CameraSource::Sim(_)) {
            return Err(WiringError::launch(config, format!("reward camera `{}` is a Sim(..) camera; a real arm is seen by a real camera", camera.name)));
        }
        let grabber = CameraGrabber::start(camera, |_| Ok(())).map_err(|e| WiringError::launch(config, format!("reward camera `{}`: {e}", camera.name)))?;
        let vlm = vlm_rewards(vlm, camera.fps, config, run_dir, task.live_status().unwrap_or_default(), |scoring| Ok(RewardFrames::Camera { grabber, scoring, last: None }))?;
        PracticeEnv::with_rewards(task, Some(vlm), launch, config)
    }
}

impl<T: PracticeTask + Scene> PracticeEnv<T> {
    /// The learned reward's counts: frames offered to, dropped by, scored
    /// and failed by the VLM pipeline (`vlm`), or the classifier's verdicts
    /// and their agreement with the task's truth (`classifier`).
    pub fn reward_counts(&self) -> serde_json::Value {
        let vlm = self.vlm.as_ref().map(|v| {
            let c = &v.counts;
            let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
            serde_json::json!({"offered": load(&c.offered), "dropped": load(&c.dropped), "scored": load(&c.scored), "failed": load(&c.failed), "shaping_missing": v.shaping_missing})
        });
        serde_json::json!({"vlm": vlm, "classifier": self.classifier.as_ref().map(ClassifierRewards::report)})
    }

    fn episode_started(&mut self) {
        self.asked.clear();
        if let Some(classifier) = self.classifier.as_mut() {
            classifier.episode_started();
        }
        if let Some(vlm) = self.vlm.as_mut() {
            vlm.episode += 1;
            vlm.step = 0;
            vlm.known.clear();
            vlm.done_at = None;
            // The first frame anchors the episode's progress.
            vlm.offer(self.task.scene());
        }
    }
}

impl<T: PracticeTask + Scene> Environment for PracticeEnv<T> {
    type Error = T::Error;

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
    fn step(&mut self, action: &[f64]) -> Result<Step, T::Error> {
        if let Some(vlm) = self.vlm.as_mut() {
            vlm.wait_for_camera();
            vlm.wait_for_endpoint(self.task.scene());
        }
        if let Some(classifier) = self.classifier.as_mut() {
            classifier.wait_for_classifier();
        }
        let mut step = self.task.step(action)?;
        if let Some(vlm) = self.vlm.as_mut() {
            vlm.step += 1;
            vlm.offer(self.task.scene());
            // The critic's answers lag the steps: a `done` for an earlier
            // step of this episode ends it now, as a success.
            vlm.collect();
            if vlm.ends_now() {
                step.terminated = true;
                step.truncated = false;
            }
        }
        if let Some(classifier) = self.classifier.as_mut() {
            // The classifier's verdict is the reward and the end; the task's
            // own (the simulator's truth) only judges outcomes, unseen by the learner.
            let truth = self.task.success();
            let success = classifier.score_step(self.task.frames(), truth);
            step.reward = f64::from(u8::from(success));
            // The classifier ends the episode, as on a real arm. The task's
            // own success ends nothing: cut there, the classifier would see
            // one success frame, the barely-lifted one it is least sure of.
            // A task that ends itself otherwise (a cube lost) is cut like a
            // time limit: the learner never sees why. A task ending on its
            // success reports no time limit, so the limit is counted here.
            let ended = std::mem::replace(&mut step.terminated, classifier.ends_now());
            let cut = (ended && truth != Some(true)) || classifier.at_time_limit();
            step.truncated = !step.terminated && (step.truncated || cut);
        }
        Ok(step)
    }
    fn success(&self) -> Option<bool> {
        match (&self.vlm, &self.classifier) {
            (Some(vlm), _) if vlm.ends_now() => Some(true),
            // The task's truth, where it knows it, judges; else the classifier.
            (_, Some(classifier)) => self.task.success().or(Some(classifier.succeeded())),
            _ => self.task.success(),
        }
    }
    fn frames(&self) -> Option<&[u8]> {
        self.task.frames()
    }
    fn frame_layout(&self) -> Option<rrl_types::FrameLayout> {
        self.task.frame_layout()
    }
}

impl<T: PracticeTask + Scene> PracticeTask for PracticeEnv<T> {
    fn recovery_actions(&self) -> Vec<Vec<f64>> {
        self.task.recovery_actions()
    }
    /// Straight to the task: neither the classifier nor the VLM scores a
    /// step that is not the policy's. With a learned reward the step's
    /// reward is 0, never the task's own (the truth the learner must not see).
    fn recovery_step(&mut self, action: &[f64]) -> Result<Step, T::Error> {
        let mut step = self.task.recovery_step(action)?;
        if self.vlm.is_some() || self.classifier.is_some() {
            step.reward = 0.0;
        }
        Ok(step)
    }
    fn expert_observation(&self) -> &[f64] {
        self.task.expert_observation()
    }
    fn take_safety_events(&mut self) -> rrl_types::SafetyEvents {
        self.task.take_safety_events()
    }
    fn take_gate_ticks(&mut self, out: &mut Vec<rrl_types::GateTick>) {
        self.task.take_gate_ticks(out)
    }
    fn take_measured_violations(&mut self) -> Option<u64> {
        self.task.take_measured_violations()
    }
    fn offer_risk_critic(&mut self, layers: &[(Vec<Vec<f32>>, Vec<f32>)], acting: bool) -> Result<(), String> {
        self.task.offer_risk_critic(layers, acting)
    }
    fn learned_rewards(&mut self) -> Option<&mut dyn LearnedRewards> {
        match (&self.vlm, &self.classifier) {
            (None, None) => None,
            _ => Some(self as &mut dyn LearnedRewards),
        }
    }
    /// The task's view; a simulated task keeps none, and its VLM reward keeps one (with the reward camera's frames).
    fn live_status(&self) -> Option<Arc<rrl_types::LiveStatus>> {
        self.task.live_status().or_else(|| self.vlm.as_ref().and_then(|v| v.live.clone()))
    }
}

/// The learned reward of a step: the VLM's, the classifier's, or with both
/// the classifier's verdict plus the VLM's progress shaping (the verdict
/// alone once the VLM's estimate is later than its deadline; counted).
impl<T: PracticeTask + Scene> LearnedRewards for PracticeEnv<T> {
    fn reward_of(&mut self, step: u64) -> Option<f64> {
        match (&mut self.vlm, &mut self.classifier) {
            (Some(vlm), None) => vlm.reward_of(step),
            (None, Some(classifier)) => classifier.reward_of(step),
            (None, None) => None,
            (Some(vlm), Some(classifier)) => {
                let verdict = classifier.reward_of(step)?;
                let asked = *self.asked.entry(step).or_insert_with(std::time::Instant::now);
                let shaping = match vlm.reward_of(step) {
                    Some(shaping) => shaping,
                    None if asked.elapsed() >= vlm.deadline => {
                        vlm.shaping_missing += 1;
                        0.0
                    }
                    None => return None,
                };
                self.asked.remove(&step);
                Some(verdict + shaping)
            }
        }
    }
    fn deadline(&self) -> Duration {
        let vlm = self.vlm.as_ref().map_or(Duration::ZERO, |v| v.deadline);
        let classifier = self.classifier.as_ref().map_or(Duration::ZERO, LearnedRewards::deadline);
        vlm + classifier
    }
}

impl LearnedRewards for VlmRewards {
    fn reward_of(&mut self, step: u64) -> Option<f64> {
        if let Some(e) = self.failure().filter(|_| !self.warned) {
            // The camera stopped: every later reward will be missing; the log says why, once.
            tracing::warn!("{e}");
            self.warned = true;
        }
        self.collect();
        self.known.get(&step).copied()
    }
    fn deadline(&self) -> Duration {
        self.deadline
    }
}
