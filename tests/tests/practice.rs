//! Autonomous practice on the simulated Panda (reach): every episode is
//! recorded and reads back whole, a resumed run refills its buffers from
//! the recorded episodes and goes on numbering them, human takeover and
//! operator commands are honoured and recorded, and a stuck robot triggers
//! the recovery manoeuvre.

use std::path::Path;

use policies::practice::{self, NoOperator, Operator, OperatorCommand, OperatorInput, PracticeSettings};
use policies::SacConfig;
use rrl_types::config::{LearnerConfig, SafetyConfig};
use rrl_types::{Environment, PracticeTask};
use sim_bridge::panda::{PandaTask, PandaVariant, RewardKind, ScriptedExpert};

fn reach_task(max_steps: u32) -> PandaTask {
    let mut task = PandaTask::new(PandaVariant::Reach, RewardKind::Dense).unwrap();
    let safety: SafetyConfig = ron::from_str("(preset: Some(FrankaPanda))").unwrap();
    let names: Vec<String> = sim_bridge::arm::PANDA_JOINTS.iter().map(|s| s.to_string()).collect();
    task.set_gate(safety::Gate::build(&safety, &names, task.control_rate_hz()).unwrap());
    task.set_home_noise(0.05);
    task.set_max_episode_steps(max_steps);
    task
}

fn small_learner(task: &PandaTask) -> SacConfig {
    let learner = LearnerConfig { hidden: vec![64, 64], batch_size: 64, initial_temperature: 0.01, ..LearnerConfig::default() };
    SacConfig::from_learner(&learner, task.observation_size(), task.action_size(), 3)
}

fn settings(run_dir: &Path, total_steps: u64) -> PracticeSettings {
    tests::reach_practice_settings(run_dir, total_steps)
}

fn read_folder(folder: &Path) -> Vec<recording::Episode> {
    recording::list_episodes(folder).unwrap().iter().map(|p| recording::read_episode(p).unwrap()).collect()
}

#[test]
fn practice_records_every_episode_and_a_resumed_run_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path();
    let mut task = reach_task(40);
    let mut expert = ScriptedExpert::default();
    let demo_successes = practice::record_demo_episodes(&mut task, run, "PandaReach", 3, 99, |obs, _| expert.act(PandaVariant::Reach, obs).to_vec(), &mut practice::Judge::Task).unwrap();
    assert_eq!(demo_successes, 3, "the expert reaches every goal through the gate");
    let config = small_learner(&task);

    let first = practice::practice(&mut task, config.clone(), tch::Device::Cpu, &mut NoOperator, &settings(run, 400), |_| {}).unwrap();
    assert_eq!(first.total_steps, 400);
    assert_eq!(first.resumed_steps, 0);
    // One update per step after warm-up (lockstep), none lost at the end.
    assert!(first.learner_updates >= 400 - 100 - (64 + 3) as u64, "updates {}", first.learner_updates);
    let recorded = read_folder(&run.join("episodes"));
    assert_eq!(recorded.len(), first.episodes.len());
    for (episode, report) in recorded.iter().zip(&first.episodes) {
        let outcome = episode.outcome.as_ref().expect("finished episodes carry their outcome");
        assert_eq!(episode.steps.len() as u64, report.steps);
        assert_eq!(outcome.steps, report.steps);
        assert!((outcome.episode_return - report.episode_return).abs() < 1e-3);
        assert!(episode.steps.iter().all(|s| !s.flags.intervention));
        // Transitions chain: each step starts where the last one ended.
        for pair in episode.steps.windows(2) {
            assert_eq!(pair[0].next_observation, pair[1].observation);
        }
    }
    assert_eq!(recorded.iter().map(|e| e.steps.len() as u64).sum::<u64>(), 400);
    assert!(run.join("learner.safetensors").exists());

    // A new session on the same run: the buffers refill from the files, the
    // learner resumes from its checkpoint, episodes continue numbering, and
    // demos are not recorded twice.
    let again = practice::record_demo_episodes(&mut task, run, "PandaReach", 3, 99, |obs, _| expert.act(PandaVariant::Reach, obs).to_vec(), &mut practice::Judge::Task).unwrap();
    assert_eq!(again, 0);
    assert_eq!(recording::list_episodes(&run.join("demos")).unwrap().len(), 3);
    let second = practice::practice(&mut task, config, tch::Device::Cpu, &mut NoOperator, &settings(run, 600), |_| {}).unwrap();
    assert_eq!(second.resumed_steps, 400);
    assert_eq!(second.resumed_episodes, first.episodes.len() as u64);
    assert_eq!(second.total_steps, 600);
    assert_eq!(second.episodes[0].episode, first.episodes.len() as u64);
    assert!(second.learner_updates > first.learner_updates + 150, "{} then {}", first.learner_updates, second.learner_updates);
    let all = read_folder(&run.join("episodes"));
    assert_eq!(all.iter().map(|e| e.steps.len() as u64).sum::<u64>(), 600);
}

/// Stands in for a human: takes over for the first `takeover_steps` of
/// each episode with the scripted expert, pauses once, labels every
/// episode a success after `label_after` steps, and stops after `episodes`.
struct ScriptedHuman {
    expert: ScriptedExpert,
    step_in_episode: u32,
    episodes_done: u32,
    takeover_steps: u32,
    label_after: u32,
    episodes: u32,
    paused_polls: Option<u32>,
    paused_once: bool,
}

impl Operator for ScriptedHuman {
    fn poll(&mut self, observation: &[f64]) -> OperatorInput {
        let mut resumed = None;
        if let Some(polls) = self.paused_polls.as_mut() {
            *polls += 1;
            if *polls < 5 {
                return OperatorInput::default();
            }
            // The poll that resumes also acts for this step.
            self.paused_polls = None;
            resumed = Some(OperatorCommand::Resume);
        }
        if self.episodes_done == self.episodes {
            return OperatorInput { takeover: None, command: Some(OperatorCommand::Stop), ..Default::default() };
        }
        if self.step_in_episode == 3 && !self.paused_once {
            self.paused_once = true;
            self.paused_polls = Some(0);
            return OperatorInput { takeover: None, command: Some(OperatorCommand::Pause), ..Default::default() };
        }
        if self.step_in_episode == self.label_after {
            self.step_in_episode = 0;
            self.episodes_done += 1;
            return OperatorInput { takeover: None, command: Some(OperatorCommand::Success), ..Default::default() };
        }
        let takeover = (self.step_in_episode < self.takeover_steps).then(|| self.expert.act(PandaVariant::Reach, observation).to_vec());
        self.step_in_episode += 1;
        OperatorInput { takeover, command: resumed, ..Default::default() }
    }
}

#[test]
fn human_takeover_is_recorded_as_intervention_and_commands_steer_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let mut task = reach_task(100);
    let config = small_learner(&task);
    let mut human = ScriptedHuman { expert: ScriptedExpert::default(), step_in_episode: 0, episodes_done: 0, takeover_steps: 6, label_after: 10, episodes: 3, paused_polls: None, paused_once: false };
    let report = practice::practice(&mut task, config, tch::Device::Cpu, &mut human, &settings(dir.path(), 10_000), |_| {}).unwrap();
    assert!(report.stopped_by_operator);
    assert_eq!(report.episodes.len(), 4, "three labelled episodes and the stopped one");
    let recorded = read_folder(&dir.path().join("episodes"));
    for episode in &recorded[..3] {
        let outcome = episode.outcome.as_ref().unwrap();
        assert_eq!((outcome.reason.as_str(), outcome.success), ("success", Some(true)), "the human's label wins");
        // The pause stepped nothing: exactly label_after steps per episode.
        assert_eq!(episode.steps.len(), 10);
        let flagged: Vec<bool> = episode.steps.iter().map(|s| s.flags.intervention).collect();
        assert_eq!(flagged, [vec![true; 6], vec![false; 4]].concat());
        assert_eq!(outcome.interventions, 6);
    }
    let last = recorded[3].outcome.as_ref().unwrap();
    assert_eq!((last.reason.as_str(), last.steps), ("stopped", 0));
}

/// Holds still: the robot never moves, so it is "stuck".
struct FrozenHuman;

impl Operator for FrozenHuman {
    fn poll(&mut self, _: &[f64]) -> OperatorInput {
        OperatorInput { takeover: Some(vec![0.0, 0.0, 0.0, -1.0]), command: None, ..Default::default() }
    }
}

#[test]
fn a_stuck_robot_runs_the_recovery_manoeuvre_and_the_episode_ends() {
    let dir = tempfile::tempdir().unwrap();
    let mut task = still_at_home();
    let config = small_learner(&task);
    let report = practice::practice(&mut task, config, tch::Device::Cpu, &mut FrozenHuman, &stuck_settings(dir.path()), |_| {}).unwrap();
    assert!(report.episodes.iter().all(|e| e.reason == "stuck" && e.steps == 10), "{:?}", report.episodes);
    let episode = &read_folder(&dir.path().join("episodes"))[0];
    let recovery: Vec<_> = episode.steps.iter().filter(|s| s.flags.recovery).collect();
    assert_eq!(recovery.len(), task.recovery_actions().len());
    // The manoeuvre lifted the hand (observation 9 is the fingertips' z).
    let before = episode.steps[9].next_observation[9];
    let after = recovery.last().unwrap().next_observation[9];
    assert!(after > before + 0.05, "lifted from {before} to {after}");

    // Beside a learned reward the manoeuvre goes through `recovery_step`,
    // which a classifier or VLM does not score: every policy step kept its
    // learned reward, and no recovery step reached the learned reward's count.
    let dir = tempfile::tempdir().unwrap();
    let mut task = WithLearnedReward { task: still_at_home(), steps: 0, recovery_steps: 0 };
    let config = small_learner(&task.task);
    let report = practice::practice(&mut task, config, tch::Device::Cpu, &mut FrozenHuman, &stuck_settings(dir.path()), |_| {}).unwrap();
    let episodes = report.episodes.len() as u64;
    assert!(episodes >= 2 && report.episodes.iter().all(|e| e.reason == "stuck" && e.steps == 10), "{:?}", report.episodes);
    assert_eq!(task.recovery_steps, episodes * task.recovery_actions().len() as u64, "each stuck episode's manoeuvre, step by step through recovery_step");
    assert_eq!(task.steps, 10, "the learned reward counts the last episode's policy steps only");
    let episode = &read_folder(&dir.path().join("episodes"))[0];
    assert!(episode.steps.iter().filter(|s| !s.flags.recovery).all(|s| s.reward == LEARNED as f32), "every policy step has its learned reward");
}

/// The reach task started from the exact home pose, where nothing pulls
/// the arm anywhere.
fn still_at_home() -> PandaTask {
    let mut task = reach_task(100);
    task.set_home_noise(0.0);
    task
}

/// 60 steps of practice; 10 unchanged steps make the robot stuck.
fn stuck_settings(dir: &Path) -> PracticeSettings {
    PracticeSettings { stuck_steps: 10, ..settings(dir, 60) }
}

/// Labels each episode after `steps` steps (two unless set): the first
/// five and the listed episodes failures, every other one a success.
struct Labeller {
    episode: u32,
    step: u32,
    /// Episodes labelled failures (all others from episode 5 on succeed).
    failures: &'static [u32],
    steps: u32,
}

impl Labeller {
    fn failing(failures: &'static [u32]) -> Labeller {
        Labeller { episode: 0, step: 0, failures, steps: 2 }
    }
}

impl Operator for Labeller {
    fn poll(&mut self, _: &[f64]) -> OperatorInput {
        if self.step < self.steps {
            self.step += 1;
            return OperatorInput::default();
        }
        let success = self.episode >= 5 && !self.failures.contains(&self.episode);
        (self.episode, self.step) = (self.episode + 1, 0);
        OperatorInput { takeover: None, command: Some(if success { OperatorCommand::Success } else { OperatorCommand::Failure }), ..Default::default() }
    }
}

/// `stop_at_success: 0.9` is reached after the first 20 episodes past the
/// warm-up (10 steps: episodes 0-4) with 18 successes: episodes 5-24, one
/// failure among them (were the warm-up counted, one episode sooner:
/// episodes 4-23 hold two failures). Then 10 episodes with the
/// deterministic policy (25-34) confirm it, and practice ends.
#[test]
fn practice_ends_once_its_success_target_is_reached_over_the_last_20_episodes_and_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let mut task = reach_task(100);
    let config = small_learner(&task);
    let settings = PracticeSettings { stop_at_success: Some(0.9), warmup_steps: 10, ..settings(dir.path(), 10_000) };
    let report = practice::practice(&mut task, config, tch::Device::Cpu, &mut Labeller::failing(&[10]), &settings, |_| {}).unwrap();
    assert!(report.reached_success && !report.stopped_by_operator);
    assert_eq!(report.episodes.len(), 35);
    assert_eq!(report.total_steps, 35 * 2);
    assert_eq!(report.confirmations, vec![(35 * 2, 10)]);
    let deterministic: Vec<u64> = report.episodes.iter().filter(|e| e.deterministic).map(|e| e.episode).collect();
    assert_eq!(deterministic, (25..35).collect::<Vec<_>>());
    assert_eq!(read_folder(&dir.path().join("episodes")).len(), 35, "every episode recorded");
}

/// A confirmation that falls short (episodes 26 and 27 fail: 8 of 10)
/// sends practice on with a fresh window: 20 more sampled episodes
/// (35-54), a second confirmation (55-64), the end.
#[test]
fn a_confirmation_that_falls_short_sends_practice_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut task = reach_task(100);
    let config = small_learner(&task);
    let settings = PracticeSettings { stop_at_success: Some(0.9), warmup_steps: 10, ..settings(dir.path(), 10_000) };
    let report = practice::practice(&mut task, config, tch::Device::Cpu, &mut Labeller::failing(&[10, 26, 27]), &settings, |_| {}).unwrap();
    assert!(report.reached_success);
    assert_eq!(report.confirmations, vec![(35 * 2, 8), (65 * 2, 10)]);
    assert_eq!(report.episodes.len(), 65);
    let deterministic: Vec<u64> = report.episodes.iter().filter(|e| e.deterministic).map(|e| e.episode).collect();
    assert_eq!(deterministic, (25..35).chain(55..65).collect::<Vec<_>>());
}

/// The learner holds still while `confirm_episodes` (5) deterministic
/// episodes confirm the early stop, so the policy confirmed is the one
/// checkpointed: every confirming episode reports the same learner
/// updates, the final checkpoint has exactly those, and its deterministic
/// actions are the ones the confirming episodes took. Ten-step episodes
/// (warm-up: episodes 0-4; the learner updates from step 64 on); the window is reached at
/// episode 24, episodes 25-29 confirm.
#[test]
fn the_learner_holds_still_while_the_deterministic_policy_confirms_so_the_checkpoint_is_the_policy_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let mut task = reach_task(100);
    let config = small_learner(&task);
    let settings = confirming_settings(dir.path());
    let mut labeller = Labeller { steps: 10, ..Labeller::failing(&[]) };
    let report = practice::practice(&mut task, config.clone(), tch::Device::Cpu, &mut labeller, &settings, |_| {}).unwrap();
    assert_the_policy_confirmed_is_checkpointed(&report, config, dir.path());
}

/// The same over README command A's learner: a node of practice's own
/// process, whose weights and acknowledgements reach the actor over DDS.
#[test]
fn a_learner_node_of_practices_own_process_holds_still_while_the_policy_confirms() {
    tests::isolate_ros_domain();
    let dir = tempfile::tempdir().unwrap();
    let mut task = reach_task(100);
    let config = small_learner(&task);
    let settings = confirming_settings(dir.path());
    let spec = ros_edge::learner_link::LearnerNodeSpec::for_practice("held", config.clone(), tch::Device::Cpu, &settings);
    let node = ros_edge::learner_link::InProcessLearnerNode::start(spec, dir.path().to_path_buf(), false).unwrap();
    let link = ros_edge::learner_link::RosLearnerLink::connect("held", 1, Some(dir.path())).unwrap();
    let mut link = ros_edge::learner_link::InProcessLink { link, node: &node };
    let mut labeller = Labeller { steps: 10, ..Labeller::failing(&[]) };
    let report = practice::practice_with_link(&mut task, config.clone(), &mut link, &mut labeller, &settings, &mut |_| {}).unwrap();
    assert_eq!(link.link.close(std::time::Duration::from_secs(60)).unconfirmed, 0);
    node.finish().unwrap();
    assert_the_policy_confirmed_is_checkpointed(&report, config, dir.path());
}

/// A confirmation runs under one gate as well as one policy: the actor asks
/// its link for no new risk critic while the learner is held.
#[test]
fn no_risk_critic_is_taken_while_the_policy_confirms() {
    let dir = tempfile::tempdir().unwrap();
    let mut task = reach_task(100);
    let config = small_learner(&task);
    let settings = confirming_settings(dir.path());
    let learner = practice::LocalLearner::start(config.clone(), tch::Device::Cpu, dir.path().join("learner.safetensors"), false, settings.clone()).unwrap();
    let mut link = CountingHeld { learner, held: false, critics_asked: (0, 0) };
    let mut labeller = Labeller { steps: 10, ..Labeller::failing(&[]) };
    let report = practice::practice_with_link(&mut task, config.clone(), &mut link, &mut labeller, &settings, &mut |_| {}).unwrap();
    let (asked_free, asked_held) = link.critics_asked;
    link.learner.finish().unwrap();
    assert!(asked_free >= 250 && asked_held == 0, "risk critics asked for: {asked_free} while learning, {asked_held} while held");
    assert_the_policy_confirmed_is_checkpointed(&report, config, dir.path());
}

/// A learner thread whose link counts the actor's asks for a risk critic,
/// apart while the learner is held.
struct CountingHeld {
    learner: practice::LocalLearner,
    held: bool,
    critics_asked: (u64, u64),
}

impl practice::LearnerLink for CountingHeld {
    fn send(&mut self, item: practice::ToLearner) {
        self.learner.send(item)
    }
    fn updates(&self) -> u64 {
        self.learner.updates()
    }
    fn take_weights(&mut self) -> Option<practice::ActorWeights> {
        self.learner.take_weights()
    }
    fn take_risk_critic(&mut self) -> Option<practice::PublishedCritic> {
        if self.held { self.critics_asked.1 += 1 } else { self.critics_asked.0 += 1 }
        self.learner.take_risk_critic()
    }
    fn failure(&self) -> Option<String> {
        self.learner.failure()
    }
    fn backlog(&self) -> u64 {
        self.learner.backlog()
    }
    fn hold_updates(&mut self, hold: bool) -> bool {
        let answered = self.learner.hold_updates(hold);
        self.held = hold && answered;
        answered
    }
}

/// Practice that ends once 90 % of 20 episodes succeed and 5 deterministic
/// episodes confirm it.
fn confirming_settings(run_dir: &Path) -> PracticeSettings {
    PracticeSettings { stop_at_success: Some(0.9), confirm_episodes: 5, warmup_steps: 50, ..settings(run_dir, 10_000) }
}

fn assert_the_policy_confirmed_is_checkpointed(report: &practice::PracticeReport, config: SacConfig, run_dir: &Path) {
    assert!(report.reached_success);
    assert_eq!(report.confirmations, vec![(300, 5)]);
    let confirming: Vec<&practice::EpisodeReport> = report.episodes.iter().filter(|e| e.deterministic).collect();
    assert_eq!(confirming.iter().map(|e| e.episode).collect::<Vec<_>>(), (25..30).collect::<Vec<_>>());
    let updates: Vec<u64> = confirming.iter().map(|e| e.learner_updates).collect();
    assert!(updates[0] > 100 && updates.iter().all(|u| *u == updates[0]), "learner updates at the confirming episodes' ends: {updates:?}");
    let mut checkpoint = policies::sac::Sac::try_new(config, tch::Device::Cpu).unwrap();
    policies::checkpoint::load(&mut checkpoint, &run_dir.join("learner.safetensors")).unwrap();
    assert_eq!(checkpoint.updates, updates[0], "the final checkpoint is the policy confirmed");
    let recorded = read_folder(&run_dir.join("episodes"));
    let mut largest = 0f64;
    for step in recorded[25..30].iter().flat_map(|e| &e.steps) {
        let observation: Vec<f64> = step.observation.iter().map(|v| f64::from(*v)).collect();
        let action = checkpoint.act(&observation, true);
        largest = action.iter().zip(&step.action).map(|(a, b)| (a - f64::from(*b)).abs()).fold(largest, f64::max);
    }
    assert!(largest < 1e-4, "the confirming episodes' actions differ from the checkpoint's deterministic ones by up to {largest}");
}

/// A human who takes over with one fixed motion for three steps and then
/// labels what they saw: success in even episodes, failure in odd ones. A
/// labelling operator, so the newest step waits for their word.
struct LabellingHuman {
    polls: u64,
    action: Vec<f64>,
}

impl Operator for LabellingHuman {
    fn labels(&self) -> bool {
        true
    }
    fn poll(&mut self, _: &[f64]) -> OperatorInput {
        self.polls += 1;
        let (episode, poll) = ((self.polls - 1) / 4, (self.polls - 1) % 4);
        match poll {
            3 => OperatorInput { takeover: None, command: Some(if episode % 2 == 0 { OperatorCommand::Success } else { OperatorCommand::Failure }), ..Default::default() },
            _ => OperatorInput { takeover: Some(self.action.clone()), command: None, ..Default::default() },
        }
    }
}

use tests::CapturedStream;

/// The transitions of a captured stream, in order.
fn transitions(stream: &CapturedStream) -> Vec<policies::replay::Transition> {
    stream.0.iter().filter_map(|item| match item {
        practice::ToLearner::Transition { transition, .. } => Some(transition.clone()),
        practice::ToLearner::OnlineStep | practice::ToLearner::Frames { .. } | practice::ToLearner::GateTicks { .. } => None,
    }).collect()
}

fn labelled_practice(run: &Path, total_steps: u64) -> (CapturedStream, practice::PracticeReport) {
    labelled_practice_shaped(run, total_steps, None)
}

fn labelled_practice_shaped(run: &Path, total_steps: u64, shaping: Option<practice::Shaping>) -> (CapturedStream, practice::PracticeReport) {
    let mut task = reach_task(40);
    let config = small_learner(&task);
    let mut human = LabellingHuman { polls: 0, action: vec![0.3, -0.2, 0.1, -1.0] };
    let settings = PracticeSettings { human_reward: true, lockstep: false, warmup_steps: 10_000, shaping, ..settings(run, total_steps) };
    let mut stream = CapturedStream::default();
    let report = practice::practice_with_link(&mut task, config, &mut stream, &mut human, &settings, &mut |_| {}).unwrap();
    (stream, report)
}

/// The reach task with a learned reward source beside it, as a
/// classifier's or a VLM's: every step's reward comes from
/// `LearnedRewards` (0.25 each), never from the task.
struct WithLearnedReward {
    task: PandaTask,
    steps: u64,
    /// Steps of the task's recovery manoeuvre taken, unseen by the learned reward.
    recovery_steps: u64,
}

const LEARNED: f64 = 0.25;

impl Environment for WithLearnedReward {
    type Error = <PandaTask as Environment>::Error;
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
        self.steps = 0;
        self.task.reset(seed)
    }
    fn reset_next(&mut self) -> &[f64] {
        self.steps = 0;
        self.task.reset_next()
    }
    fn step(&mut self, action: &[f64]) -> Result<rrl_types::Step, Self::Error> {
        self.steps += 1;
        self.task.step(action)
    }
}

impl PracticeTask for WithLearnedReward {
    fn learned_rewards(&mut self) -> Option<&mut dyn rrl_types::LearnedRewards> {
        Some(self)
    }
    fn recovery_actions(&self) -> Vec<Vec<f64>> {
        self.task.recovery_actions()
    }
    fn recovery_step(&mut self, action: &[f64]) -> Result<rrl_types::Step, Self::Error> {
        self.recovery_steps += 1;
        self.task.recovery_step(action)
    }
}

impl rrl_types::LearnedRewards for WithLearnedReward {
    fn reward_of(&mut self, step: u64) -> Option<f64> {
        (step <= self.steps).then_some(LEARNED)
    }
    fn deadline(&self) -> std::time::Duration {
        std::time::Duration::from_secs(5)
    }
}

/// A learned reward with a human beside it (`reward: Classifier(..)` and an
/// operator): the human's labels override it — the labelled step is
/// terminal with reward 1 or 0 — and every other step keeps the learned
/// reward, on disk and at the learner.
#[test]
fn labels_override_a_learned_reward_and_leave_the_other_steps_theirs() {
    let run = tempfile::tempdir().unwrap();
    let mut task = WithLearnedReward { task: reach_task(40), steps: 0, recovery_steps: 0 };
    let config = small_learner(&task.task);
    let mut human = LabellingHuman { polls: 0, action: vec![0.3, -0.2, 0.1, -1.0] };
    let settings = PracticeSettings { labels_override: true, lockstep: false, warmup_steps: 10_000, ..settings(run.path(), 12) };
    let mut stream = CapturedStream::default();
    practice::practice_with_link(&mut task, config, &mut stream, &mut human, &settings, &mut |_| {}).unwrap();
    let recorded = read_folder(&run.path().join("episodes"));
    assert_eq!(recorded.len(), 4);
    let sent = transitions(&stream);
    assert_eq!(sent.len(), 12);
    for (i, episode) in recorded.iter().enumerate() {
        let success = i % 2 == 0;
        let steps: Vec<(f32, bool, Option<bool>)> = episode.steps.iter().map(|s| (s.reward, s.flags.terminated, s.flags.label)).collect();
        assert_eq!(steps[2], (if success { 1.0 } else { 0.0 }, true, Some(success)), "episode {i}: the label's reward, terminal");
        for (k, step) in steps[..2].iter().enumerate() {
            assert_eq!(*step, (LEARNED as f32, false, None), "episode {i} step {k}: the learned reward stays");
        }
        let at_learner: Vec<(f32, bool)> = sent[3 * i..3 * i + 3].iter().map(|t| (t.reward, t.terminal)).collect();
        let on_disk: Vec<(f32, bool)> = steps.iter().map(|(r, t, _)| (*r, *t)).collect();
        assert_eq!(at_learner, on_disk, "episode {i}: the learner gets what the disk keeps");
    }
}

/// The same in scripted demos (and evaluations, which record episodes the
/// same way): a label overriding a learned reward makes its step terminal
/// with 1 or 0; the other steps keep the learned reward.
#[test]
fn labels_override_a_learned_reward_in_scripted_demos() {
    let run = tempfile::tempdir().unwrap();
    let mut task = WithLearnedReward { task: reach_task(40), steps: 0, recovery_steps: 0 };
    let mut human = LabellingHuman { polls: 0, action: vec![0.0; 4] };
    let mut judge = practice::Judge::of(&mut human, false).overriding_learned(true);
    practice::record_demo_episodes(&mut task, run.path(), "reach", 2, 7, |_, _| vec![0.3, -0.2, 0.1, -1.0], &mut judge).unwrap();
    let demos = read_folder(&run.path().join("demos"));
    assert_eq!(demos.len(), 2);
    for (i, demo) in demos.iter().enumerate() {
        let success = i == 0;
        let steps: Vec<(f32, bool)> = demo.steps.iter().map(|s| (s.reward, s.flags.terminated)).collect();
        assert_eq!(steps, vec![(LEARNED as f32, false), (LEARNED as f32, false), (if success { 1.0 } else { 0.0 }, true)], "demo {i}");
        assert_eq!(demo.outcome.as_ref().unwrap().success, Some(success), "demo {i}");
    }
}

/// `reward: Human`: a success label ends the episode with exactly one
/// terminal transition of reward 1, a failure label with one of reward 0,
/// every other step has reward 0 — on disk and at the learner alike; and
/// a run that stops and resumes sends the learner the very transitions an
/// uninterrupted run sends.
#[test]
fn human_labels_make_one_terminal_transition_on_disk_and_at_the_learner_and_survive_a_resume() {
    let whole = tempfile::tempdir().unwrap();
    let (stream, report) = labelled_practice(whole.path(), 12);
    assert_eq!(report.episodes.len(), 4, "{:?}", report.episodes.iter().map(|e| (e.steps, &e.reason)).collect::<Vec<_>>());
    let recorded = read_folder(&whole.path().join("episodes"));
    assert_eq!(recorded.len(), 4);
    for (i, episode) in recorded.iter().enumerate() {
        let success = i % 2 == 0;
        assert_eq!(episode.outcome.as_ref().unwrap().success, Some(success), "episode {i}");
        assert_eq!(episode.steps.len(), 3, "episode {i}");
        let terminal: Vec<(usize, f32)> = episode.steps.iter().enumerate().filter(|(_, s)| s.flags.terminated).map(|(k, s)| (k, s.reward)).collect();
        assert_eq!(terminal, vec![(2, if success { 1.0 } else { 0.0 })], "episode {i}: one terminal step, the last, with the label's reward");
        assert!(episode.steps[..2].iter().all(|s| s.reward == 0.0), "episode {i}: only a label gives reward");
    }
    // The learner got the same: 3 transitions an episode (1-step returns), the third terminal.
    let sent = transitions(&stream);
    assert_eq!(sent.len(), 12);
    for (i, chunk) in sent.chunks(3).enumerate() {
        let rewards: Vec<(f32, bool)> = chunk.iter().map(|t| (t.reward, t.terminal)).collect();
        assert_eq!(rewards, vec![(0.0, false), (0.0, false), (if i % 2 == 0 { 1.0 } else { 0.0 }, true)], "episode {i} at the learner");
    }
    for (t, s) in sent.iter().zip(recorded.iter().flat_map(|e| &e.steps)) {
        assert_eq!((&t.observation, &t.next_observation, t.reward, t.terminal), (&s.observation, &s.next_observation, s.reward, s.flags.terminated));
    }

    // Stopped after two episodes, then resumed to the same budget: the
    // resumed session's learner gets the recorded ones again, then the new.
    let split = tempfile::tempdir().unwrap();
    let (_, first) = labelled_practice(split.path(), 6);
    assert_eq!(first.episodes.len(), 2);
    let (resumed, second) = labelled_practice(split.path(), 12);
    assert_eq!((second.resumed_episodes, second.episodes.len()), (2, 2));
    assert_eq!(transitions(&resumed), sent, "the learner receives the same transitions as without the stop");
}

/// A human at the robot who guides it with the scripted reacher and never
/// labels (a labelling operator all the same).
struct SilentGuide {
    expert: ScriptedExpert,
}

impl Operator for SilentGuide {
    fn labels(&self) -> bool {
        true
    }
    fn poll(&mut self, observation: &[f64]) -> OperatorInput {
        OperatorInput { takeover: Some(self.expert.act(PandaVariant::Reach, observation).to_vec()), command: None, ..Default::default() }
    }
}

/// With `reward: Human` only labels judge: a recorded demo counts by its
/// outcome (its last step terminal with reward 1 for a success, every other
/// step 0), and a task that ends itself (the reach succeeded) is cut like a
/// time limit — no terminal step, no reward, no success — unless labelled.
#[test]
fn with_human_rewards_a_demo_counts_by_its_outcome_and_a_task_ending_itself_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path();
    let mut task = reach_task(40);
    let mut expert = ScriptedExpert::default();
    assert_eq!(practice::record_demo_episodes(&mut task, run, "PandaReach", 1, 99, |obs, _| expert.act(PandaVariant::Reach, obs).to_vec(), &mut practice::Judge::Task).unwrap(), 1);
    let demo_steps = read_folder(&run.join("demos"))[0].steps.len();
    let config = small_learner(&task);
    let settings = PracticeSettings { human_reward: true, lockstep: false, warmup_steps: 10_000, ..settings(run, 30) };
    let mut stream = CapturedStream::default();
    let mut guide = SilentGuide { expert: ScriptedExpert::default() };
    let report = practice::practice_with_link(&mut task, config, &mut stream, &mut guide, &settings, &mut |_| {}).unwrap();
    let sent = transitions(&stream);
    let (demo, online) = sent.split_at(demo_steps);
    assert!(demo[..demo_steps - 1].iter().all(|t| t.reward == 0.0 && !t.terminal), "demo steps before the last carry no reward");
    assert_eq!((demo[demo_steps - 1].reward, demo[demo_steps - 1].terminal), (1.0, true), "a successful demo ends terminal with reward 1");
    // The guided reach ends itself on success: cut, not terminal, not rewarded, not a success.
    let reached = report.episodes.iter().filter(|e| e.steps < 30 && e.reason == "success").count();
    assert!(reached >= 1, "{:?}", report.episodes.iter().map(|e| (e.steps, &e.reason)).collect::<Vec<_>>());
    assert!(report.episodes.iter().all(|e| e.success.is_none()), "no label, no success");
    assert!(online.iter().all(|t| t.reward == 0.0 && !t.terminal), "only a label rewards or terminates");
    let recorded = read_folder(&run.join("episodes"));
    assert!(recorded.iter().flat_map(|e| &e.steps).all(|s| s.reward == 0.0 && !s.flags.terminated));
}

/// The learner's end of the link in a process about to be killed: each
/// transition goes to a log file as it is sent (one JSON line, written
/// through to the kernel, so a SIGKILL loses none that was sent).
struct LoggedStream(std::fs::File);

impl practice::LearnerLink for LoggedStream {
    fn send(&mut self, item: practice::ToLearner) {
        use std::io::Write;
        if let practice::ToLearner::Transition { transition: t, .. } = item {
            let line = serde_json::json!([t.observation, t.action, t.reward, t.next_observation, t.terminal]).to_string();
            self.0.write_all(format!("{line}\n").as_bytes()).expect("the sent log");
        }
    }
    fn updates(&self) -> u64 {
        0
    }
    fn take_weights(&mut self) -> Option<practice::ActorWeights> {
        None
    }
    fn failure(&self) -> Option<String> {
        None
    }
}

/// A transition as the sent log has it.
fn logged(t: &policies::replay::Transition) -> serde_json::Value {
    serde_json::from_str(&serde_json::json!([t.observation, t.action, t.reward, t.next_observation, t.terminal]).to_string()).unwrap()
}

/// The half of `labelled_transitions_survive_a_sigkill` that is killed:
/// labelled practice (a few milliseconds a step) that logs what it sends
/// the learner, run in a child process of that test.
#[test]
#[ignore = "the killed child of labelled_transitions_survive_a_sigkill"]
fn labelled_practice_until_killed() {
    let (Some(run), Some(log)) = (std::env::var_os("RRL_TEST_KILLED_RUN"), std::env::var_os("RRL_TEST_SENT_LOG")) else { return };
    let mut task = reach_task(40);
    let config = small_learner(&task);
    let mut human = SlowLabellingHuman(LabellingHuman { polls: 0, action: vec![0.3, -0.2, 0.1, -1.0] });
    let settings = PracticeSettings { human_reward: true, lockstep: false, warmup_steps: 10_000, ..settings(Path::new(&run), 100_000) };
    let mut stream = LoggedStream(std::fs::File::create(log).unwrap());
    practice::practice_with_link(&mut task, config, &mut stream, &mut human, &settings, &mut |_| {}).unwrap();
}

/// The labelling human, a few milliseconds a poll (a kill lands anywhere in an episode).
struct SlowLabellingHuman(LabellingHuman);

impl Operator for SlowLabellingHuman {
    fn labels(&self) -> bool {
        true
    }
    fn poll(&mut self, observation: &[f64]) -> OperatorInput {
        std::thread::sleep(std::time::Duration::from_millis(3));
        self.0.poll(observation)
    }
}

/// Labelled practice SIGKILLed mid-run and resumed: the resumed learner
/// receives first exactly the transitions the killed one had, in order —
/// the labels' terminal transitions among them, reward 1 for a success and
/// 0 for a failure — then what was recorded but not yet sent, and nothing
/// else from before the kill.
/// Fault matrix: actor killed | labelled practice in a child process SIGKILLed mid-run | the resumed run resends what was recorded | the resumed learner gets exactly the killed one's transitions in order, labels' terminals included
#[test]
fn labelled_transitions_survive_a_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let (run, log) = (dir.path().join("run"), dir.path().join("sent.jsonl"));
    tests::sigkill_after_episodes("labelled_practice_until_killed", &run, &log, 6, std::time::Duration::from_secs(120));
    let sent: Vec<serde_json::Value> = std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let recorded = read_folder(&run.join("episodes"));
    let recorded_steps: usize = recorded.iter().map(|e| e.steps.len()).sum();
    assert!(sent.len() >= 12, "only {} transitions were sent before the kill", sent.len());

    let (resumed, report) = labelled_practice(&run, recorded_steps as u64 + 6);
    assert_eq!(report.resumed_steps as usize, recorded_steps);
    let replayed: Vec<serde_json::Value> = transitions(&resumed).iter().take(recorded_steps).map(logged).collect();
    if let Some(k) = (0..sent.len()).find(|&k| replayed.get(k) != Some(&sent[k])) {
        panic!("transition {k} of {} the killed learner had differs at the resumed learner: {} vs {}", sent.len(), sent[k], replayed.get(k).map_or("none".into(), |t| t.to_string()));
    }
    assert!(replayed.len() - sent.len() <= 1, "{} transitions were recorded but never sent before the kill", replayed.len() - sent.len());
    // The labels: one terminal transition per finished episode, its reward the label's.
    let mut at = 0;
    for episode in &recorded {
        let steps = &replayed[at..at + episode.steps.len()];
        at += episode.steps.len();
        let terminal: Vec<(f64, bool)> = steps.iter().filter(|t| t[4] == true).map(|t| (t[2].as_f64().unwrap(), true)).collect();
        match episode.outcome.as_ref().and_then(|o| o.success) {
            Some(success) => assert_eq!(terminal, vec![(if success { 1.0 } else { 0.0 }, true)], "episode {}", episode.header.episode),
            None => assert!(terminal.is_empty(), "an unlabelled episode has no terminal transition"),
        }
        // On disk, the label marks the labelled step's frames, and only those.
        let labels: Vec<(usize, bool)> = episode.steps.iter().enumerate().filter_map(|(i, s)| s.flags.label.map(|l| (i, l))).collect();
        match episode.outcome.as_ref().and_then(|o| o.success) {
            Some(success) => assert_eq!(labels, vec![(episode.steps.len() - 1, success)], "episode {}", episode.header.episode),
            None => assert!(labels.is_empty(), "episode {}: unlabelled", episode.header.episode),
        }
    }
    assert!(recorded.iter().filter(|e| e.outcome.as_ref().and_then(|o| o.success) == Some(true)).count() >= 2);
    assert!(recorded.iter().filter(|e| e.outcome.as_ref().and_then(|o| o.success) == Some(false)).count() >= 2);
}

/// A human's sparse labels with a dense shaping term: the learner gets each
/// label's reward plus γ·Φ(s') − Φ(s) (no Φ(s') at the labelled, terminal
/// step), the episodes on disk keep the labels' rewards alone, and a run
/// stopped and resumed hands the learner the same shaped transitions.
#[test]
fn a_shaping_term_joins_the_labels_at_the_learner_and_survives_a_resume() {
    // Φ = −2 × the distance between the first three observed values and the next three.
    let shaping = practice::Shaping { from: 0, to: 3, scale: 2.0 };
    let whole = tempfile::tempdir().unwrap();
    let (stream, _) = labelled_practice_shaped(whole.path(), 12, Some(shaping));
    let sent = transitions(&stream);
    let recorded = read_folder(&whole.path().join("episodes"));
    let steps: Vec<&recording::EpisodeStep> = recorded.iter().flat_map(|e| &e.steps).collect();
    assert_eq!(sent.len(), steps.len());
    let mut shaped_any = false;
    for (t, s) in sent.iter().zip(&steps) {
        let next = if s.flags.terminated { 0.0 } else { shaping.potential(&s.next_observation) };
        let expected = f64::from(s.reward) + f64::from(t.discount) * next - shaping.potential(&s.observation);
        assert!((f64::from(t.reward) - expected).abs() < 1e-5, "learner {} vs label {} shaped {expected}", t.reward, s.reward);
        assert!(s.reward == 0.0 || s.flags.terminated, "the disk keeps the labels' rewards alone");
        shaped_any |= (t.reward - s.reward).abs() > 1e-4;
    }
    assert!(shaped_any, "the shaping term changed no reward");

    let split = tempfile::tempdir().unwrap();
    labelled_practice_shaped(split.path(), 6, Some(shaping));
    let (resumed, _) = labelled_practice_shaped(split.path(), 12, Some(shaping));
    let again = transitions(&resumed);
    assert_eq!(again.len(), sent.len());
    if let Some(k) = (0..sent.len()).find(|&k| again[k] != sent[k]) {
        panic!("transition {k}: the resumed learner got reward {} (terminal {}), the whole run's got {} (terminal {})", again[k].reward, again[k].terminal, sent[k].reward, sent[k].terminal);
    }
}
