//! The actor: practice episodes played with the actor's copy of the
//! policy, every step recorded and sent to the learner as it happens.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use recording::{EpisodeHeader, EpisodeOutcome, EpisodeStep, EpisodeWriter, StepFlags};
use rrl_types::{FrameLayout, PracticeTask, Step};
use tch::Device;

use super::early_stop::EarlyStop;
use super::gate_critic::GateCritic;
use super::episodes::task_end_reason;
use super::operator::EpisodeControls;
use super::policy_copy::ActorCopy;
use super::reward_wait::{AwaitedStep, RewardWait};
use super::run_files::{durably, encode_frames, read_all, record_gate_ticks, replay_recorded, unix_ns, FrameCounter};
use super::stuck::StuckWatch;
use super::{to_policy_action, EpisodeReport, LearnerLink, LocalLearner, Operator, PracticeError, PracticeReport, PracticeSettings, ToLearner};
use crate::replay::{NStepWriter, Transition};
use crate::sac::SacConfig;
use crate::train::to_env_action;

/// Practises on `env` until `settings.total_steps` online steps (counting a
/// resumed run's recorded ones) or the operator stops. `on_episode` sees
/// every finished episode.
pub fn practice<E: PracticeTask>(
    env: &mut E,
    config: SacConfig,
    device: Device,
    operator: &mut dyn Operator,
    settings: &PracticeSettings,
    mut on_episode: impl FnMut(&EpisodeReport),
) -> Result<PracticeReport, PracticeError> {
    let (o, a) = (env.observation_size(), env.action_size());
    if (config.observation_size, config.action_size) != (o, a) {
        return Err(PracticeError::Mismatch { path: settings.run_dir.clone(), problem: format!("learner built for {}/{}, task has {o}/{a}", config.observation_size, config.action_size) });
    }
    let checkpoint = settings.run_dir.join("learner.safetensors");

    let resume = !read_all(&settings.run_dir.join("episodes"), (o, a))?.is_empty();
    let mut learner = LocalLearner::start(config.clone(), device, checkpoint, resume, settings.clone())?;
    let result = practice_with_link(env, config, &mut learner, operator, settings, &mut on_episode);
    let updates = learner.finish();
    let mut report = result?;
    report.learner_updates = updates?;
    Ok(report)
}

/// Practice against any learner link: first the run's recorded demos and
/// episodes are (re)sent, then live practice continues the stream.
pub fn practice_with_link<E: PracticeTask>(
    env: &mut E,
    config: SacConfig,
    link: &mut dyn LearnerLink,
    operator: &mut dyn Operator,
    settings: &PracticeSettings,
    on_episode: &mut dyn FnMut(&EpisodeReport),
) -> Result<PracticeReport, PracticeError> {
    let (o, a) = (env.observation_size(), env.action_size());
    let frame_layout = env.frame_layout();
    if let Some(pixels) = &config.pixels {
        if frame_layout != Some(pixels.layout()) {
            return Err(PracticeError::Cameras(format!("the policy sees {}; the task gives {}", pixels.layout(), frame_layout.map_or("no frames".into(), |l| l.to_string()))));
        }
    }
    let demos = read_all(&settings.run_dir.join("demos"), (o, a))?;
    let recorded = read_all(&settings.run_dir.join("episodes"), (o, a))?;
    let mut frames = FrameCounter::for_learner(&config);
    // The recorded stream goes out no faster than the learner takes it in.
    let mut resend = |item: ToLearner| {
        while link.backlog() > settings.max_backlog && link.failure().is_none() {
            std::thread::sleep(Duration::from_millis(2));
        }
        link.send(item);
    };
    replay_recorded(&demos, &config, settings.human_reward, settings.shaping, &mut frames, &mut resend)?;
    let resumed_steps = replay_recorded(&recorded, &config, settings.human_reward, settings.shaping, &mut frames, &mut resend)?;
    if settings.risk_critic.is_some() {
        // The risk critic's data: the gate ticks of the recorded practice (outside the ordered stream).
        for episode in &recorded {
            for chunk in episode.gate_ticks.chunks(TICKS_PER_ITEM) {
                resend(ToLearner::GateTicks { actor: 0, episode: episode.header.episode, ticks: chunk.to_vec() });
            }
        }
    }
    let mut policy = ActorCopy::new(&config, o, a)?;
    let next_episode = recorded.last().map_or(0, |e| e.header.episode + 1);
    let (low, high) = (env.action_low().to_vec(), env.action_high().to_vec());
    // The task's own view (a real robot's), else the one a console watches.
    let live = env.live_status().or_else(|| settings.live.clone());
    let actor = Actor {
        env,
        policy: &mut policy,
        operator,
        settings,
        config: &config,
        link: &mut *link,
        on_episode,
        observation_size: o,
        action_size: a,
        low,
        high,
        episodes_dir: settings.run_dir.join("episodes"),
        started: Instant::now(),
        report: PracticeReport {
            episodes: Vec::new(),
            resumed_episodes: next_episode,
            resumed_steps,
            total_steps: resumed_steps,
            learner_updates: 0,
            stopped_by_operator: false,
            reached_success: false,
            confirmations: Vec::new(),
            risk_critics: (0, 0),
        },
        env_action: Vec::new(),
        stuck: StuckWatch::new(settings.stuck_steps, settings.stuck_tolerance, o),
        released: 0,
        next_episode,
        early_stop: EarlyStop::new(settings.confirm_episodes),
        learner_held: false,
        live,
        frame_layout,
        frames,
        ticks: Vec::new(),
        gate_critic: GateCritic::new(settings.risk_critic.as_ref().is_some_and(|r| r.config.alternate_episodes)),
    };
    let mut report = actor.run()?;
    report.learner_updates = link.updates();
    Ok(report)
}

/// Where an episode's released steps go: its file and the learner's stream.
struct EpisodeSink {
    writer: EpisodeWriter,
    /// Tagged with the learner's numbers for the observations' frames.
    nstep: NStepWriter<Option<u64>>,
    /// The return of the steps released so far.
    total: f64,
    /// The first observation's frames, until the first step takes them along.
    reset_frames: Option<Vec<u8>>,
    /// The learner's number for the current observation's frames.
    frame_tag: Option<u64>,
}

/// Hands one released online step on: its record (with its next
/// observation's frames) to the episode file; to the learner its frames,
/// its n-step transitions (shaped, with a shaping term) and an `OnlineStep`.
/// The file is written first, so what the learner got is always on disk.
fn emit_online(mut step: AwaitedStep, sink: &mut EpisodeSink, layout: Option<FrameLayout>, frames: &mut FrameCounter, shaping: Option<super::Shaping>, link: &mut dyn LearnerLink, released: &mut u64) -> Result<(), PracticeError> {
    let mut send_frames = None;
    if let Some(layout) = layout {
        let missing = |what: &str| PracticeError::Cameras(format!("{what} of episode step {} came without camera frames", step.step));
        let next = step.next_frames.take().ok_or_else(|| missing("the observation after"))?;
        // The first step of an episode takes the episode's first frames along.
        let first = match sink.reset_frames.take() {
            Some(first) => Some(first),
            None if sink.frame_tag.is_none() && step.step == 1 => return Err(missing("the first observation before")),
            None => None,
        };
        if let Some(first) = &first {
            let encoded = encode_frames(first, layout)?;
            durably(|| sink.writer.reset_frames(&encoded))?;
        }
        step.record.next_frames = Some(encode_frames(&next, layout)?);
        send_frames = Some((layout, first, next));
    }
    durably(|| sink.writer.step(&step.record))?;
    // Only what is on disk goes to the learner: a resumed run resends exactly it.
    let mut tags = (None, None);
    if let Some((layout, first, next)) = send_frames {
        if let Some(first) = first {
            sink.frame_tag = frames.send(layout, first, &mut |item| link.send(item));
        }
        let next_tag = frames.send(layout, next, &mut |item| link.send(item));
        tags = (sink.frame_tag, next_tag);
        sink.frame_tag = next_tag;
    }
    sink.total += f64::from(step.record.reward);
    *released += 1;
    if let Some(shaping) = shaping {
        shaping.apply(&mut step.transition);
    }
    let demo = step.demo;
    sink.nstep.push_tagged(step.transition, tags, step.over, &mut |t, (frame, next_frame)| link.send(ToLearner::Transition { transition: t, demo, frames: frame.zip(next_frame) }));
    link.send(ToLearner::OnlineStep);
    Ok(())
}

/// Gate ticks per `ToLearner::GateTicks` item at most (about 1 MB).
pub const TICKS_PER_ITEM: usize = 4096;

/// The actor loop, and what it keeps across the episodes of a session.
struct Actor<'a, E> {
    env: &'a mut E,
    policy: &'a mut ActorCopy,
    operator: &'a mut dyn Operator,
    settings: &'a PracticeSettings,
    config: &'a SacConfig,
    link: &'a mut dyn LearnerLink,
    on_episode: &'a mut dyn FnMut(&EpisodeReport),
    observation_size: usize,
    action_size: usize,
    low: Vec<f64>,
    high: Vec<f64>,
    episodes_dir: PathBuf,
    /// Episode reports count seconds from here.
    started: Instant,
    report: PracticeReport,
    /// The action in the environment's bounds (one buffer for all steps).
    env_action: Vec<f64>,
    stuck: StuckWatch,
    /// Online steps handed to the learner in this session.
    released: u64,
    next_episode: u64,
    early_stop: EarlyStop,
    /// The learner holds its updates while a confirmation runs.
    learner_held: bool,
    /// What the operator sees, when the task keeps it.
    live: Option<Arc<rrl_types::LiveStatus>>,
    /// The task's camera frames (recorded with its episodes), if it has any.
    frame_layout: Option<FrameLayout>,
    /// Numbers the frames a pixel learner gets.
    frames: FrameCounter,
    /// The safety gate's ticks on their way to the episode file.
    ticks: Vec<rrl_types::GateTick>,
    /// The risk critic trained during practice, as the gate holds it.
    gate_critic: GateCritic,
}

/// One practice episode in progress.
struct EpisodeState {
    number: u64,
    /// Online steps before it: the early stop counts it only past the warm-up.
    started_at_step: u64,
    start_ns: u64,
    sink: EpisodeSink,
    observation: Vec<f64>,
    steps: u64,
    interventions: u64,
    safety_events: u64,
    controls: EpisodeControls,
    wait: RewardWait,
}

/// What the end of an episode needs to know of the step just taken.
struct TakenStep {
    result: Step,
    truncated: bool,
    stuck: bool,
    /// 1-based over the run, for errors.
    step_number: u64,
}

impl<E: PracticeTask> Actor<'_, E> {
    /// Episodes until the step budget is spent, the operator stops, or the
    /// early stop is confirmed.
    fn run(mut self) -> Result<PracticeReport, PracticeError> {
        while self.report.total_steps < self.settings.total_steps && !self.report.stopped_by_operator && !self.report.reached_success {
            let mut episode = self.start_episode()?;
            let reason = self.play(&mut episode)?;
            self.finish_episode(episode, reason)?;
        }
        Ok(self.report)
    }

    /// Opens the episode's file and resets the task; each episode's seed
    /// follows from its number, so a resumed run plays what a whole one would.
    fn start_episode(&mut self) -> Result<EpisodeState, PracticeError> {
        let number = self.next_episode;
        let started_at_step = self.report.total_steps;
        let seed = self.settings.seed.wrapping_add(number * 7919);
        let start_ns = unix_ns();
        let header = EpisodeHeader {
            task: self.settings.task.clone(),
            episode: number,
            observation_size: self.observation_size,
            action_size: self.action_size,
            source: "practice".into(),
            seed,
            started_unix_ns: start_ns,
        };
        let writer = durably(|| EpisodeWriter::create(&self.episodes_dir, &header, self.settings.sync_every_step))?;
        let nstep = NStepWriter::tagged(self.config.n_step, self.config.gamma);
        // The critic's arm for this episode is set before the reset moves the robot.
        if let Err(why) = self.gate_critic.start_episode(number, &mut *self.env) {
            tracing::warn!("the gate refused the risk critic in its arm for episode {number}: {why}; it keeps the one it had");
        }
        let observation = self.env.reset(seed).to_vec();
        let reset_frames = self.env.frames().map(<[u8]>::to_vec);
        self.stuck.clear();
        if let Some(live) = &self.live {
            live.episode_started(number);
        }
        Ok(EpisodeState {
            number,
            started_at_step,
            start_ns,
            sink: EpisodeSink { writer, nstep, total: 0.0, reset_frames, frame_tag: None },
            observation,
            steps: 0,
            interventions: 0,
            safety_events: 0,
            controls: EpisodeControls::default(),
            wait: RewardWait::default(),
        })
    }

    /// Steps the episode until it ends; why it ended.
    fn play(&mut self, episode: &mut EpisodeState) -> Result<&'static str, PracticeError> {
        loop {
            self.take_newest_weights()?;
            self.hold_for_learner()?;
            let takeover = self.poll_operator(episode);
            if episode.steps == 0 && episode.controls.label.is_some() {
                // Nothing to judge yet (a second key press): no empty labelled episode.
                episode.controls.label = None;
            }
            if let Some(reason) = episode.controls.end_reason() {
                // The label judges the step the human just saw (held for it).
                episode.wait.end_newest(episode.controls.label, self.settings.human_reward || self.settings.labels_override);
                return Ok(reason);
            }
            if self.report.total_steps >= self.settings.total_steps {
                // The budget is spent (after the human had their word on the
                // last step): the episode is cut here, like a time limit.
                return Ok("budget");
            }
            if episode.controls.paused {
                // The robot holds (nothing is sent); the episode clock stops.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            let intervention = takeover.is_some();
            let action = self.choose_action(&episode.observation, takeover.as_deref())?;
            let taken = self.step_and_record(episode, action, intervention)?;
            // Recovery steps follow in the file: everything before them goes
            // first. In lockstep (simulation) time can stand still, so each
            // step waits for its reward; on a robot only the episode's end does.
            self.release(episode, taken.stuck || self.settings.lockstep, !taken.stuck)?;
            if self.settings.lockstep && !self.learner_held {
                self.keep_lockstep();
            }
            if taken.stuck {
                self.recover(episode, taken.step_number)?;
                return Ok("stuck");
            }
            if taken.result.done() || taken.truncated {
                return Ok(task_end_reason(self.env.success(), taken.result.terminated));
            }
        }
    }

    /// The learner's newest weights, when new ones came since the last
    /// step: the actor never waits for them.
    fn take_newest_weights(&mut self) -> Result<(), PracticeError> {
        // A confirmation judges one policy under one gate: new weights and
        // risk critics wait for its end.
        if self.early_stop.confirming() {
            return Ok(());
        }
        if let Some(weights) = self.link.take_weights() {
            self.policy.load(&weights)?;
        }
        if let Some(critic) = self.link.take_risk_critic() {
            let (update, critic_updates) = (critic.update, critic.critic_updates);
            match self.gate_critic.take(critic, &mut *self.env) {
                Ok(held) => {
                    self.report.risk_critics.0 += 1;
                    self.report.risk_critics.1 += u64::from(held.acting);
                    let (precision, recall, onsets, anticipated) = (held.precision, held.recall, held.onsets, held.anticipated_onsets);
                    let role = self.gate_critic.role_now().name();
                    tracing::info!(update, precision, recall, onsets, anticipated, role, "the gate takes the risk critic of {critic_updates} critic updates")
                }
                Err(why) => tracing::warn!(update, "the gate refused the risk critic of {critic_updates} critic updates: {why}; it keeps the one it had"),
            }
        }
        Ok(())
    }

    /// The gate's ticks of the step just taken: to the episode file, and to
    /// the learner when it trains the risk critic.
    fn record_ticks(&mut self, episode: &mut EpisodeState) -> Result<(), PracticeError> {
        self.env.take_gate_ticks(&mut self.ticks);
        record_gate_ticks(&mut episode.sink.writer, &self.ticks)?;
        if let Some(live) = &self.live {
            live.show_ticks(&self.ticks);
        }
        if self.settings.risk_critic.is_some() {
            // Bounded items: what a wire peer may send is bounded too.
            for chunk in self.ticks.chunks(TICKS_PER_ITEM) {
                self.link.send(ToLearner::GateTicks { actor: 0, episode: episode.number, ticks: chunk.to_vec() });
            }
        }
        self.ticks.clear();
        Ok(())
    }

    /// Ends practice when the learner failed for good; backpressure: the
    /// robot holds while the learner is far behind.
    fn hold_for_learner(&self) -> Result<(), PracticeError> {
        if let Some(e) = self.link.failure() {
            return Err(PracticeError::Learner(e));
        }
        while self.link.backlog() > self.settings.max_backlog {
            if let Some(e) = self.link.failure() {
                return Err(PracticeError::Learner(e));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Polls the human once per step: their commands take effect at once
    /// (a stop ends practice after this episode); returns their takeover.
    fn poll_operator(&mut self, episode: &mut EpisodeState) -> Option<Vec<f64>> {
        let input = self.operator.poll(&episode.observation);
        episode.controls.apply(input.command);
        if let Some(live) = &self.live {
            live.set_paused(episode.controls.paused);
        }
        if episode.controls.stop {
            self.report.stopped_by_operator = true;
        }
        input.takeover
    }

    /// The step's action in [-1, 1]: the human's while they take over,
    /// uniformly random in a fresh run's warm-up, else the policy's (its
    /// mean while an early stop is being confirmed).
    fn choose_action(&mut self, observation: &[f64], takeover: Option<&[f64]>) -> Result<Vec<f64>, PracticeError> {
        Ok(match takeover {
            Some(human) if human.len() != self.action_size => return Err(PracticeError::TakeoverSize { expected: self.action_size, got: human.len() }),
            Some(human) => to_policy_action(human, &self.low, &self.high),
            None if self.report.total_steps < self.settings.warmup_steps => self.policy.random_action(),
            None => self.policy.act(observation, self.env.frames(), self.early_stop.confirming())?,
        })
    }

    /// Steps the task with `policy_action`, counts the step, and queues its
    /// record and transition until its reward is known.
    fn step_and_record(&mut self, episode: &mut EpisodeState, policy_action: Vec<f64>, intervention: bool) -> Result<TakenStep, PracticeError> {
        to_env_action(&policy_action, &self.low, &self.high, &mut self.env_action);
        let step_number = self.report.total_steps + 1;
        let mut result = self.env.step(&self.env_action).map_err(|e| PracticeError::Environment { step: step_number, message: e.to_string() })?;
        if self.settings.human_reward {
            // Only a label gives reward, and only a label is terminal: a
            // task that ends itself is cut like a time limit.
            result.reward = 0.0;
            result.truncated |= std::mem::take(&mut result.terminated);
        }
        let events = self.env.take_safety_events();
        self.record_ticks(episode)?;
        if let Some(live) = &self.live {
            live.stepped(result.reward, intervention);
            if let (Some(layout), Some(frames)) = (self.frame_layout, self.env.frames()) {
                live.frames.offer(layout, frames, step_number);
            }
        }
        episode.steps += 1;
        self.report.total_steps += 1;
        episode.interventions += u64::from(intervention);
        episode.safety_events += events.protective;
        let next = self.env.observation().to_vec();
        let truncated = result.truncated || (!result.terminated && episode.steps >= self.settings.max_episode_steps);
        let flags = StepFlags { terminated: result.terminated, truncated, intervention, safety_event: events.any(), recovery: false, reflex: events.reflexes > 0, label: None };
        let record = EpisodeStep {
            time_ns: episode.start_ns + episode.steps * 100_000_000,
            observation: episode.observation.iter().map(|&x| x as f32).collect(),
            action: policy_action.iter().map(|&x| x as f32).collect(),
            reward: result.reward as f32,
            next_observation: next.iter().map(|&x| x as f32).collect(),
            flags,
            next_frames: None,
        };
        // Stuck by the observation, or by the task's own judgement (a car's collision).
        let stuck = self.stuck.push(next.clone(), result.done()) | (!result.done() && self.env.needs_recovery());
        let over = result.done() || truncated || stuck || self.report.total_steps >= self.settings.total_steps;
        let transition = Transition {
            observation: episode.observation.iter().map(|&x| x as f32).collect(),
            action: policy_action.iter().map(|&x| x as f32).collect(),
            reward: result.reward as f32,
            next_observation: next.iter().map(|&x| x as f32).collect(),
            terminal: result.terminated,
            discount: self.config.gamma as f32,
        };
        let next_frames = self.env.frames().map(<[u8]>::to_vec);
        episode.wait.push(AwaitedStep { step: episode.steps, record, transition, over, demo: intervention, since: Instant::now(), labelled: false, next_frames });
        episode.observation = next;
        Ok(TakenStep { result, truncated, stuck, step_number })
    }

    /// Sends the queued steps whose rewards are known to the episode file
    /// and the learner; with `until_empty`, waits for all of them. While
    /// the episode goes on (`going_on`) and a human can label it, the
    /// newest step waits for their next word.
    fn release(&mut self, episode: &mut EpisodeState, until_empty: bool, going_on: bool) -> Result<(), PracticeError> {
        let hold_newest = going_on && self.operator.labels();
        let sink = &mut episode.sink;
        let (link, released, shaping, layout, frames) = (&mut *self.link, &mut self.released, self.settings.shaping, self.frame_layout, &mut self.frames);
        episode.wait.release(self.env, until_empty, hold_newest, &mut |s| emit_online(s, sink, layout, frames, shaping, link, released))
    }

    /// Lockstep (simulation): waits for one learner update per released
    /// step after the warm-up, as synchronous training does; not before the
    /// replay can fill a batch, as the learner could not start.
    fn keep_lockstep(&self) {
        let ready_at = self.settings.warmup_steps.max((self.config.batch_size + self.config.n_step) as u64);
        let wanted = (self.report.resumed_steps + self.released).saturating_sub(ready_at);
        let mut spins = 0u32;
        while self.link.updates() < wanted && self.link.failure().is_none() {
            // A learner over ROS 2 answers in milliseconds: past the first
            // spins, sleep so its threads get these two cores.
            spins += 1;
            if spins < 200 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
    }

    /// Frees a stuck robot with the task's recovery manoeuvre. Its steps
    /// are recorded, flagged, after the episode's policy steps; the learner
    /// never gets them (they are not the policy's).
    fn recover(&mut self, episode: &mut EpisodeState, step_number: u64) -> Result<(), PracticeError> {
        for recovery in self.env.recovery_actions() {
            let before = self.env.observation().to_vec();
            let r = self.env.recovery_step(&recovery).map_err(|e| PracticeError::Environment { step: step_number, message: e.to_string() })?;
            let events = self.env.take_safety_events();
            self.record_ticks(episode)?;
            episode.safety_events += events.protective;
            let record = EpisodeStep {
                time_ns: episode.start_ns + (episode.steps + 1) * 100_000_000,
                observation: before.iter().map(|&x| x as f32).collect(),
                action: to_policy_action(&recovery, &self.low, &self.high).iter().map(|&x| x as f32).collect(),
                reward: r.reward as f32,
                next_observation: self.env.observation().iter().map(|&x| x as f32).collect(),
                flags: StepFlags { recovery: true, safety_event: events.any(), reflex: events.reflexes > 0, ..StepFlags::default() },
                // Not the policy's: no learner sees these observations.
                next_frames: None,
            };
            durably(|| episode.sink.writer.step(&record))?;
        }
        Ok(())
    }

    /// Waits for the episode's last rewards, closes its file with the
    /// outcome, reports it, and counts it for the early stop.
    fn finish_episode(&mut self, mut episode: EpisodeState, reason: &'static str) -> Result<(), PracticeError> {
        self.release(&mut episode, true, false)?;
        let success = match self.settings.human_reward {
            // The human is the judge: no label, no success.
            true => episode.controls.label,
            false => episode.controls.label.or(self.env.success().map(|s| s && reason == "success")),
        };
        let outcome = EpisodeOutcome { steps: episode.steps, episode_return: episode.sink.total, success, interventions: episode.interventions, safety_events: episode.safety_events, reason: reason.into() };
        durably(|| episode.sink.writer.finish(&outcome))?;
        if let Some(live) = &self.live {
            live.episode_ended(success);
        }
        let episode_report = EpisodeReport {
            episode: episode.number,
            steps: episode.steps,
            total_steps: self.report.total_steps,
            episode_return: episode.sink.total,
            success,
            interventions: episode.interventions,
            safety_events: episode.safety_events,
            reason: reason.into(),
            learner_updates: self.link.updates(),
            seconds: self.started.elapsed().as_secs_f64(),
            learned_rewards: (episode.wait.joined, episode.wait.missing),
            deterministic: self.early_stop.confirming(),
            risk_critic: self.gate_critic.episode_role(),
            measured_violations: self.env.take_measured_violations(),
        };
        (self.on_episode)(&episode_report);
        self.report.episodes.push(episode_report);
        self.next_episode += 1;
        if let Some(target) = self.settings.stop_at_success {
            let after_warmup = episode.started_at_step >= self.settings.warmup_steps;
            let was_confirming = self.early_stop.confirming();
            self.early_stop.episode_ended(target, success == Some(true), after_warmup, &mut self.report);
            match (was_confirming, self.early_stop.confirming()) {
                (false, true) => self.start_confirming()?,
                (true, false) if !self.report.reached_success && self.learner_held => {
                    self.link.hold_updates(false);
                    self.learner_held = false;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Holds the learner and takes its weights as they stand: the
    /// confirmation, the checkpoint and the final evaluation then judge
    /// one policy.
    fn start_confirming(&mut self) -> Result<(), PracticeError> {
        self.learner_held = self.link.hold_updates(true);
        if self.learner_held {
            if let Some(weights) = self.link.take_weights() {
                self.policy.load(&weights)?;
            }
        } else {
            tracing::info!("the learner keeps learning while the deterministic policy confirms (a node of another process, or one that did not hold in time): the confirmation judges the actor's weights as they stand, the learner's checkpoint moves on");
        }
        Ok(())
    }
}
