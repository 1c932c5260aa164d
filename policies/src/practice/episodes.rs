//! Scripted episodes recorded whole: demos of a controller for the run's
//! `demos/`, and the episodes an evaluation plays.

use std::path::Path;
use std::time::Instant;

use recording::{EpisodeHeader, EpisodeOutcome, EpisodeStep, EpisodeWriter, StepFlags};
use rrl_types::PracticeTask;

use super::operator::{Operator, OperatorCommand};
use super::reward_wait::{AwaitedStep, RewardWait};
use super::run_files::{durably, record_gate_ticks, encoded_frames_of, unix_ns};
use super::{to_policy_action, PracticeError};
use crate::replay::Transition;
use crate::train::to_env_action;

/// The reason recorded for an episode the task itself ended (or cut at
/// its time limit), from the task's verdict at that step.
pub(super) fn task_end_reason(success: Option<bool>, terminated: bool) -> &'static str {
    if success == Some(true) {
        "success"
    } else if terminated {
        "failure"
    } else {
        "timeout"
    }
}

/// Who judges a recorded (scripted or evaluation) episode.
pub enum Judge<'a> {
    /// The task's own success and reward.
    Task,
    /// A human's success and failure labels, polled from `operator` after
    /// every step: a label ends the episode with that outcome, and `stop`
    /// ends it and the episodes after it. With `rewards` (`reward: Human`)
    /// the label is the reward as well — the labelled step is terminal with
    /// 1 or 0, every other step has 0, and a task that ends itself is cut
    /// like a time limit — as in practice. With `overrides` (a learned
    /// reward such as a classifier's) the labelled step is terminal with 1
    /// or 0 and the other steps keep the learned reward. Otherwise (a VLM's
    /// or the task's reward) the label judges the outcome only.
    Human { operator: &'a mut dyn Operator, rewards: bool, overrides: bool, stopped: bool },
}

impl<'a> Judge<'a> {
    /// Labels from `operator` when it gives them, else the task.
    pub fn of(operator: &'a mut dyn Operator, human_reward: bool) -> Judge<'a> {
        match operator.labels() {
            true => Judge::Human { operator, rewards: human_reward, overrides: false, stopped: false },
            false => Judge::Task,
        }
    }

    /// The human's newest command, if they judge.
    fn poll(&mut self, observation: &[f64]) -> Option<OperatorCommand> {
        match self {
            Judge::Task => None,
            Judge::Human { operator, .. } => operator.poll(observation).command,
        }
    }

    /// With `on`, a human's labels override a learned reward (as
    /// `PracticeSettings::labels_override` does in practice).
    pub fn overriding_learned(mut self, on: bool) -> Judge<'a> {
        if let Judge::Human { overrides, .. } = &mut self {
            *overrides = on;
        }
        self
    }

    fn human_rewards(&self) -> bool {
        matches!(self, Judge::Human { rewards: true, .. })
    }

    /// Whether a label sets its step's reward (1 or 0) and ends it terminal.
    fn label_rewards(&self) -> bool {
        matches!(self, Judge::Human { rewards: true, .. } | Judge::Human { overrides: true, .. })
    }

    /// Whether the human asked to stop.
    pub fn stopped(&self) -> bool {
        matches!(self, Judge::Human { stopped: true, .. })
    }
}

/// One episode of `act` (the task as it is now, first step -> action in the
/// learner's [-1, 1]) recorded under `folder` with the task's camera
/// frames, if it has any; used for scripted demos and evaluations.
/// Returns (return, success).
#[allow(clippy::too_many_arguments)]
pub(super) fn record_one_episode<E: PracticeTask>(
    env: &mut E,
    folder: &Path,
    task: &str,
    source: &str,
    episode: u64,
    seed: u64,
    by_human_or_script: bool,
    act: &mut dyn FnMut(&E, bool) -> Vec<f64>,
    judge: &mut Judge,
) -> Result<(f64, Option<bool>), PracticeError> {
    let (low, high) = (env.action_low().to_vec(), env.action_high().to_vec());
    let started = unix_ns();
    let header = EpisodeHeader { task: task.into(), episode, observation_size: env.observation_size(), action_size: env.action_size(), source: source.into(), seed, started_unix_ns: started };
    let mut writer = durably(|| EpisodeWriter::create(folder, &header, false))?;
    let mut observation = env.reset(seed).to_vec();
    if let Some(encoded) = encoded_frames_of(env)? {
        durably(|| writer.reset_frames(&encoded))?;
    }
    // A label given during the reset judged the episode before: it must
    // not end this one at its first step.
    let _ = judge.poll(&observation);
    let mut env_action = Vec::new();
    let mut ticks = Vec::new();
    let (mut total, mut steps, mut safety_events) = (0.0, 0u64, 0u64);
    let mut wait = RewardWait::default();
    let mut label: Option<bool>;
    let terminated = loop {
        let action = act(env, steps == 0);
        to_env_action(&action, &low, &high, &mut env_action);
        let mut result = env.step(&env_action).map_err(|err| PracticeError::Environment { step: steps, message: err.to_string() })?;
        if judge.human_rewards() {
            result.reward = 0.0;
            result.truncated |= std::mem::take(&mut result.terminated);
        }
        label = None;
        match judge.poll(env.observation()) {
            Some(OperatorCommand::Success) => label = Some(true),
            Some(OperatorCommand::Failure) => label = Some(false),
            Some(OperatorCommand::Stop) => {
                if let Judge::Human { stopped, .. } = judge {
                    *stopped = true;
                }
                result.truncated |= !result.terminated;
            }
            // Pausing a scripted episode is not offered: it runs to its end.
            _ => {}
        }
        if let Some(success) = label {
            if judge.label_rewards() {
                (result.reward, result.terminated, result.truncated) = (f64::from(u8::from(success)), true, false);
            } else {
                result.truncated |= !result.terminated;
            }
        }
        let events = env.take_safety_events();
        env.take_gate_ticks(&mut ticks);
        record_gate_ticks(&mut writer, &ticks)?;
        ticks.clear();
        safety_events += events.protective;
        steps += 1;
        let next = env.observation().to_vec();
        let record = EpisodeStep {
            time_ns: started + steps * 100_000_000,
            observation: observation.iter().map(|&x| x as f32).collect(),
            action: action.iter().map(|&x| x as f32).collect(),
            reward: result.reward as f32,
            next_observation: next.iter().map(|&x| x as f32).collect(),
            flags: StepFlags { terminated: result.terminated, truncated: result.truncated, intervention: by_human_or_script, safety_event: events.any(), reflex: events.reflexes > 0, recovery: false, label },
            next_frames: encoded_frames_of(env)?,
        };
        // Only the record matters here (no learner): the transition is a placeholder.
        let transition = Transition { observation: Vec::new(), action: Vec::new(), reward: 0.0, next_observation: Vec::new(), terminal: false, discount: 0.0 };
        // A label that sets the reward keeps it from the learned reward.
        let labelled = label.is_some() && judge.label_rewards();
        wait.push(AwaitedStep { step: steps, record, transition, over: result.done(), demo: by_human_or_script, since: Instant::now(), labelled, next_frames: None });
        // Scripted demos and evaluations run in simulation, where time can
        // stand still: each step waits for its reward (up to the deadline).
        wait.release(env, true, false, &mut |s| {
            total += f64::from(s.record.reward);
            Ok(durably(|| writer.step(&s.record))?)
        })?;
        observation = next;
        if result.done() {
            break result.terminated;
        }
    };
    let success = match label {
        Some(success) => Some(success),
        // The human is the judge: no label, no success.
        None if judge.human_rewards() => None,
        None => env.success(),
    };
    let reason = match label {
        Some(true) => "success",
        Some(false) => "failure",
        None if judge.stopped() => "stopped",
        None => task_end_reason(success, terminated),
    };
    let interventions = if by_human_or_script { steps } else { 0 };
    let outcome = EpisodeOutcome { steps, episode_return: total, success, interventions, safety_events, reason: reason.into() };
    durably(|| writer.finish(&outcome))?;
    Ok((total, success))
}

/// Records `episodes` of a scripted `controller` (acting on the task's
/// `expert_observation`, actions in the environment's bounds) as demo
/// episodes of the run, unless the run already has demos, each judged by
/// `judge`. Returns how many succeeded.
pub fn record_demo_episodes<E: PracticeTask>(
    env: &mut E,
    run_dir: &Path,
    task: &str,
    episodes: u32,
    seed: u64,
    mut controller: impl FnMut(&[f64], bool) -> Vec<f64>,
    judge: &mut Judge,
) -> Result<u32, PracticeError> {
    let folder = run_dir.join("demos");
    if !recording::list_episodes(&folder)?.is_empty() {
        return Ok(0);
    }
    let (low, high) = (env.action_low().to_vec(), env.action_high().to_vec());
    let mut act = |env: &E, first: bool| to_policy_action(&controller(env.expert_observation(), first), &low, &high);
    let mut successes = 0;
    for e in 0..u64::from(episodes) {
        let (_, success) = record_one_episode(env, &folder, task, "demo", e, seed + e, true, &mut act, judge)?;
        successes += u32::from(success.unwrap_or(false));
        if judge.stopped() {
            break;
        }
    }
    Ok(successes)
}
