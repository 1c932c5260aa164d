//! `reward: Classifier((..))`: a success classifier scores the frames each
//! step records (the policy's cameras, or some of them) on a thread of its
//! own; the step waits for its score up to the deadline. A success gives
//! reward 1 and, with `terminate`, ends the episode there; a score that
//! comes later than the deadline (or none) leaves the step's reward 0 and
//! is counted (`late`, `failed`, `dropped`).
//!
//! Where the task knows its own success (the simulator's truth), that
//! truth still judges the episodes' outcomes and evaluations, and the
//! classifier's verdicts are counted against it (its false successes
//! during practice); it ends no episode: the classifier (with
//! `terminate`) and the time limit do. A classifier thread that dies
//! pauses practice with a message; the classifier is loaded again from
//! its file and practice resumes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, RecvTimeoutError, Sender};
use policies::classifier::FrameClassifier;
use rrl_types::config::{ClassifierRewardConfig, LaunchFile};
use rrl_types::FrameLayout;

use crate::WiringError;

/// Frames waiting for the classifier at most; more are dropped (counted).
const QUEUE: usize = 16;
/// While the classifier cannot be started again, it is retried this often.
const RESTART_EVERY: Duration = Duration::from_secs(1);

/// One step's frames to score, stamped with (episode, step).
struct Job {
    episode: u64,
    step: u64,
    rgb: Vec<u8>,
}

/// Verdicts and their agreement with the task's truth, for the report.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    scored: u64,
    successes: u64,
    dropped: u64,
    late: u64,
    failed: u64,
    restarts: u64,
    /// Tries to load the classifier again that failed.
    reload_failures: u64,
    /// Against the task's truth where it has one.
    false_positives: u64,
    true_negatives: u64,
    true_positives: u64,
    false_negatives: u64,
}

/// The classifier's thread.
struct Worker {
    jobs: Sender<Job>,
    verdicts: Receiver<(u64, u64, Result<f64, String>)>,
    thread: std::thread::JoinHandle<()>,
}

impl Worker {
    fn start(classifier: FrameClassifier) -> Worker {
        let (jobs, inbox) = crossbeam::channel::bounded::<Job>(QUEUE);
        let (outbox, verdicts) = crossbeam::channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("reward-classifier".into())
            .spawn(move || {
                for job in inbox {
                    let score = classifier.scores(&job.rgb).map(|s| s[0]).map_err(|e| e.to_string());
                    if outbox.send((job.episode, job.step, score)).is_err() {
                        return;
                    }
                }
            })
            .expect("spawn the classifier thread");
        Worker { jobs, verdicts, thread }
    }
}

/// The actor's end of classifier rewards.
pub struct ClassifierRewards {
    /// The launch file, for messages.
    config: PathBuf,
    model: PathBuf,
    trunk: Option<PathBuf>,
    threshold: f64,
    terminate: bool,
    deadline: Duration,
    /// Which of the policy's cameras it scores, by index.
    cameras: Vec<usize>,
    /// The policy's frames.
    policy: FrameLayout,
    worker: Option<Worker>,
    episode: u64,
    step: u64,
    /// This episode's rewards that have arrived, by step.
    known: HashMap<u64, f64>,
    /// The first step of this episode called a success.
    success_at: Option<u64>,
    /// The launch file's episode length: a task's own success (which ends
    /// nothing here) may hide its time limit.
    max_episode_steps: u64,
    counts: Counts,
}

fn load(model: &Path, trunk: Option<&Path>, config: &Path) -> Result<FrameClassifier, WiringError> {
    FrameClassifier::load(model, trunk).map_err(|e| WiringError::launch(config, format!("reward: {e}")))
}

impl ClassifierRewards {
    /// The classifier of `settings` for the policy's frames `policy`:
    /// refused when its file is damaged or takes other frames than the
    /// cameras it is to score.
    pub fn start(settings: &ClassifierRewardConfig, launch: &LaunchFile, policy: Option<FrameLayout>, config: &Path) -> Result<ClassifierRewards, WiringError> {
        let policy = policy.ok_or_else(|| WiringError::launch(config, "reward: a classifier scores the cameras the policy sees, and it sees none"))?;
        let observed = launch.observed_cameras();
        let cameras: Vec<usize> = match settings.cameras.is_empty() {
            true => (0..observed.len()).collect(),
            false => settings
                .cameras
                .iter()
                .map(|name| observed.iter().position(|o| *o == name).ok_or_else(|| WiringError::launch(config, format!("reward.cameras: `{name}` is not a camera the policy sees"))))
                .collect::<Result<_, _>>()?,
        };
        let (model, trunk) = (PathBuf::from(&settings.model), settings.trunk.as_ref().map(PathBuf::from));
        let classifier = load(&model, trunk.as_deref(), config)?;
        let wanted = FrameLayout { cameras: cameras.len(), ..policy };
        let takes = classifier.pixels().layout();
        if takes != wanted {
            return Err(WiringError::launch(config, format!("reward: classifier {} takes {takes}; the cameras it is to score give {wanted}", model.display())));
        }
        let threshold = settings.threshold.unwrap_or(classifier.threshold);
        Ok(ClassifierRewards {
            config: config.to_path_buf(),
            model,
            trunk,
            threshold,
            terminate: settings.terminate,
            deadline: Duration::from_millis(settings.deadline_ms),
            cameras,
            policy,
            worker: Some(Worker::start(classifier)),
            episode: 0,
            step: 0,
            known: HashMap::new(),
            success_at: None,
            max_episode_steps: u64::from(launch.practice.max_episode_steps),
            counts: Counts::default(),
        })
    }

    pub(crate) fn episode_started(&mut self) {
        self.episode += 1;
        self.step = 0;
        self.known.clear();
        self.success_at = None;
    }

    /// Returns once the classifier's thread runs. One that died (a panic
    /// in libtorch, say) pauses practice here before the next step (the
    /// gate holds the arm), says so, and is started again from its file.
    pub(crate) fn wait_for_classifier(&mut self) {
        let alive = self.worker.as_ref().is_some_and(|w| !w.thread.is_finished());
        if alive {
            return;
        }
        let paused_since = Instant::now();
        tracing::warn!(model = %self.model.display(), "the reward classifier's thread stopped: practice is paused (the gate holds the robot) until it runs again");
        self.worker = None;
        loop {
            match load(&self.model, self.trunk.as_deref(), &self.config) {
                Ok(classifier) => {
                    self.worker = Some(Worker::start(classifier));
                    self.counts.restarts += 1;
                    tracing::warn!(paused_s = paused_since.elapsed().as_secs_f64(), "the reward classifier runs again: practice resumes");
                    return;
                }
                Err(e) => {
                    self.counts.reload_failures += 1;
                    tracing::warn!("the reward classifier cannot be started again ({e}); retrying");
                    std::thread::sleep(RESTART_EVERY);
                }
            }
        }
    }

    /// Scores the step just taken on `frames` (the policy's), waiting for
    /// the verdict up to the deadline; whether the classifier calls it a
    /// success. The step's reward is settled here: a verdict that comes
    /// later, or none at all, leaves it 0. `truth` is the task's own
    /// success, where it knows it.
    pub(crate) fn score_step(&mut self, frames: Option<&[u8]>, truth: Option<bool>) -> bool {
        self.step += 1;
        let verdict = self.verdict_of_step(frames);
        self.known.insert(self.step, if verdict == Some(true) { 1.0 } else { 0.0 });
        if let (Some(success), Some(truth)) = (verdict, truth) {
            let c = &mut self.counts;
            match (success, truth) {
                (true, true) => c.true_positives += 1,
                (true, false) => c.false_positives += 1,
                (false, false) => c.true_negatives += 1,
                (false, true) => c.false_negatives += 1,
            }
        }
        let success = verdict == Some(true);
        if success && self.success_at.is_none() {
            self.success_at = Some(self.step);
        }
        success
    }

    /// Whether this episode has had its steps.
    pub(crate) fn at_time_limit(&self) -> bool {
        self.step >= self.max_episode_steps
    }

    /// The classifier's verdict on this step's frames, if one comes in time.
    fn verdict_of_step(&mut self, frames: Option<&[u8]>) -> Option<bool> {
        let Some(frames) = frames.filter(|f| f.len() == self.policy.bytes()) else {
            self.counts.failed += 1;
            return None;
        };
        let camera = self.policy.height * self.policy.width * 3;
        let rgb: Vec<u8> = self.cameras.iter().flat_map(|&c| &frames[c * camera..(c + 1) * camera]).copied().collect();
        let worker = self.worker.as_ref()?;
        if worker.jobs.try_send(Job { episode: self.episode, step: self.step, rgb }).is_err() {
            self.counts.dropped += 1;
            return None;
        }
        let waited = Instant::now();
        loop {
            let left = self.deadline.saturating_sub(waited.elapsed());
            let verdicts = &self.worker.as_ref()?.verdicts;
            match verdicts.recv_timeout(left) {
                Ok(answer) => {
                    if let Some(verdict) = self.take(answer) {
                        return verdict;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.counts.late += 1;
                    return None;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    // Died mid-step: the next step waits for it to run again.
                    self.counts.failed += 1;
                    return None;
                }
            }
        }
    }

    /// An answer from the classifier's thread: `Some(verdict)` for the step
    /// in hand (`Some(None)`: it failed on the frames), `None` for an
    /// earlier step, settled already and ignored.
    fn take(&mut self, (episode, step, score): (u64, u64, Result<f64, String>)) -> Option<Option<bool>> {
        if (episode, step) != (self.episode, self.step) {
            return None;
        }
        match score {
            Ok(score) => {
                self.counts.scored += 1;
                let success = score >= self.threshold;
                self.counts.successes += u64::from(success);
                Some(Some(success))
            }
            Err(e) => {
                self.counts.failed += 1;
                tracing::warn!("the reward classifier failed on a frame: {e}");
                Some(None)
            }
        }
    }

    /// Whether this episode's success ends it now.
    pub(crate) fn ends_now(&self) -> bool {
        self.terminate && self.success_at.is_some()
    }

    /// Whether the classifier called a step of this episode a success.
    pub(crate) fn succeeded(&self) -> bool {
        self.success_at.is_some()
    }

    /// Verdicts and, where the task knows its success, their agreement with it.
    pub fn report(&self) -> serde_json::Value {
        let c = self.counts;
        let judged = c.false_positives + c.true_negatives + c.true_positives + c.false_negatives;
        serde_json::json!({
            "model": self.model.display().to_string(),
            "threshold": self.threshold,
            "scored": c.scored,
            "successes": c.successes,
            "dropped": c.dropped,
            "late": c.late,
            "failed": c.failed,
            "restarts": c.restarts,
            "reload_failures": c.reload_failures,
            "against_truth": if judged == 0 { serde_json::Value::Null } else { serde_json::json!({
                "true_positives": c.true_positives,
                "false_positives": c.false_positives,
                "true_negatives": c.true_negatives,
                "false_negatives": c.false_negatives,
                "false_positive_rate": c.false_positives as f64 / (c.false_positives + c.true_negatives).max(1) as f64,
            })},
        })
    }
}

impl rrl_types::LearnedRewards for ClassifierRewards {
    /// Settled when the step was taken (`score_step`).
    fn reward_of(&mut self, step: u64) -> Option<f64> {
        self.known.get(&step).copied()
    }
    fn deadline(&self) -> Duration {
        self.deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use policies::classifier::{ClassifierTraining, LabelledFrames};
    use rrl_types::config::RewardConfig;
    use policies::pixels::PixelConfig;

    const SIDE: usize = 16;

    /// A small classifier of 16x16 frames: bright frames are successes.
    fn write_classifier(path: &Path) {
        let pixels = PixelConfig { cameras: 1, height: SIDE as i64, width: SIDE as i64, feature_size: 8, shift_pad: 1, filters: 4, pretrained: None };
        let labels: Vec<bool> = (0..20).map(|i| i % 2 == 0).collect();
        let frames: Vec<u8> = labels.iter().flat_map(|&l| vec![if l { 230 } else { 20 }; SIDE * SIDE * 3]).collect();
        let settings = ClassifierTraining { steps: 60, min_per_class: 5, ..ClassifierTraining::default() };
        let classifier = FrameClassifier::train(&LabelledFrames { frames: &frames, labels: &labels }, &pixels, &settings, |_, _| {}).unwrap();
        classifier.save(path).unwrap();
    }

    fn launch(model: &Path) -> LaunchFile {
        let text = format!(
            r#"(name: "t", robot: Sim((task: PandaPickCube, observe_cameras: ["wrist"])),
                cameras: [(name: "wrist", source: Sim("handcam_rgb"), width: {SIDE}, height: {SIDE})],
                safety: (), reward: Classifier((model: "{}")))"#,
            model.display()
        );
        LaunchFile::parse(&text, Path::new("t.ron")).unwrap()
    }

    /// The recovery manoeuvre's steps are not the policy's: the classifier
    /// scores the policy's steps of the sim Panda and none of them.
    #[test]
    fn the_classifier_scores_the_policys_steps_and_not_the_recovery_manoeuvres() {
        use rrl_types::{Environment, PracticeTask};
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("success.safetensors");
        write_classifier(&model);
        let launch = launch(&model);
        let (task, _) = crate::robot::panda_task(&launch, Path::new("t.ron")).unwrap();
        let mut env = crate::practice_env::PracticeEnv::for_launch(task, &launch, Path::new("t.ron"), dir.path()).unwrap();
        env.reset(3);
        let recovery = env.recovery_actions();
        assert!(!recovery.is_empty(), "the sim Panda has a recovery manoeuvre");
        for _ in 0..2 {
            env.step(&[0.0, 0.0, -0.5, 0.0]).unwrap();
        }
        for action in &recovery {
            // The task's own (dense) reward is the truth the learner must not see.
            assert_eq!(env.recovery_step(action).unwrap().reward, 0.0, "a recovery step's reward under a learned reward");
        }
        let report = env.reward_counts();
        let classifier = &report["classifier"];
        assert_eq!(classifier["scored"], 2, "{report}");
        let truth = &classifier["against_truth"];
        let judged: u64 = ["true_positives", "false_positives", "true_negatives", "false_negatives"].iter().map(|k| truth[*k].as_u64().unwrap()).sum();
        assert_eq!(judged, 2, "{report}");
    }

    /// The classifier's thread dies; the next step pauses until the
    /// classifier can be loaded again (its file is back), then scores on.
    /// Fault matrix: classifier thread dead | the classifier's thread ends while its file is moved away | practice pauses; reloads when the file is back | reload failures counted; one restart; scores again
    #[test]
    fn a_dead_classifier_thread_pauses_practice_until_it_is_loaded_again() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("success.safetensors");
        write_classifier(&model);
        let launch = launch(&model);
        let RewardConfig::Classifier(settings) = &launch.reward else { unreachable!() };
        let layout = FrameLayout { cameras: 1, height: SIDE, width: SIDE };
        let mut rewards = ClassifierRewards::start(settings, &launch, Some(layout), Path::new("t.ron")).unwrap();
        rewards.episode_started();
        let bright = vec![230u8; layout.bytes()];
        assert!(rewards.score_step(Some(&bright), Some(true)), "a bright frame is a success");
        // The thread ends (as a panic would end it) while its file is gone.
        let hidden = dir.path().join("moved_away");
        std::fs::rename(&model, &hidden).unwrap();
        let Worker { jobs, verdicts, thread } = rewards.worker.take().unwrap();
        drop(jobs);
        while !thread.is_finished() {
            std::thread::sleep(Duration::from_millis(5));
        }
        rewards.worker = Some(Worker { jobs: crossbeam::channel::bounded(1).0, verdicts, thread });
        // The file comes back once the pause began (the first reload failed).
        let back = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1500));
            std::fs::rename(&hidden, &model).unwrap();
        });
        rewards.wait_for_classifier();
        back.join().unwrap();
        assert!(rewards.counts.reload_failures >= 1, "it tried while the file was gone, and waited");
        assert_eq!(rewards.counts.restarts, 1);
        let dark = vec![20u8; layout.bytes()];
        assert!(!rewards.score_step(Some(&dark), Some(false)), "it scores again after the restart");
        assert!(rewards.score_step(Some(&bright), Some(true)));
        let report = rewards.report();
        assert_eq!(report["restarts"], 1);
        assert_eq!(report["against_truth"]["true_positives"], 2, "{report}");
        assert_eq!(report["against_truth"]["true_negatives"], 1, "{report}");
    }
}
