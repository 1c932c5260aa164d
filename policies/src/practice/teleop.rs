//! Teleoperation: demos the human drives, recorded into the run's `demos/`.

use std::path::Path;
use std::time::{Duration, Instant};

use recording::{EpisodeHeader, EpisodeOutcome, EpisodeStep, EpisodeWriter, StepFlags};
use rrl_types::PracticeTask;

use super::episodes::task_end_reason;
use super::operator::EpisodeControls;
use super::run_files::{durably, record_gate_ticks, encoded_frames_of, read_all, unix_ns};
use super::{to_policy_action, CriticRole, EpisodeReport, Operator, PracticeError};

/// Teleoperation: the human drives every step through `operator` (an
/// episode starts at the first move; later steps without takeover hold
/// still: `idle_action`), `Success` / `Failure`
/// label and end an episode, `Stop` ends the session. Episodes go to the
/// run's `demos/` (source `demo`), continuing its numbering, so practice on
/// the same run starts from them. With `label_frames` every step's frames
/// are labelled as the human marks them (`OperatorInput::marking_success`)
/// when they see them: success while marked, failure otherwise (a label
/// that ends the episode judges its last step). Returns one report per
/// episode.
#[allow(clippy::too_many_arguments)]
pub fn teleoperate<E: PracticeTask>(
    env: &mut E,
    operator: &mut dyn Operator,
    run_dir: &Path,
    task: &str,
    episodes: u32,
    max_episode_steps: u64,
    seed: u64,
    idle_action: &[f64],
    label_frames: bool,
    console_view: Option<std::sync::Arc<rrl_types::LiveStatus>>,
    mut on_episode: impl FnMut(&EpisodeReport),
) -> Result<Vec<EpisodeReport>, PracticeError> {
    let folder = run_dir.join("demos");
    let existing = read_all(&folder, (env.observation_size(), env.action_size()))?;
    let first = existing.last().map_or(0, |e| e.header.episode + 1);
    let (low, high) = (env.action_low().to_vec(), env.action_high().to_vec());
    let started = Instant::now();
    // The task's own view (a real robot's), else the one a console watches.
    let live = env.live_status().or(console_view);
    let frame_layout = env.frame_layout();
    let mut reports = Vec::new();
    let mut total_steps = 0;
    'session: for index in first..first + u64::from(episodes) {
        let episode_start = unix_ns();
        let header = EpisodeHeader { task: task.into(), episode: index, observation_size: env.observation_size(), action_size: env.action_size(), source: "demo".into(), seed: seed + index, started_unix_ns: episode_start };
        let mut writer = durably(|| EpisodeWriter::create(&folder, &header, true))?;
        let mut observation = env.reset(seed + index).to_vec();
        // A pixel task's demos keep their frames: the first observation's
        // (as the first move starts), each step's next one in its record.
        let mut reset_frames = None;
        if let Some(live) = &live {
            live.episode_started(index);
        }
        let (mut steps, mut total, mut interventions, mut safety_events) = (0u64, 0.0, 0u64, 0u64);
        let mut controls = EpisodeControls::default();
        let mut ticks = Vec::new();
        // The newest step waits for the next poll: a label then judges the
        // frames the human saw when they gave it.
        let mut newest: Option<EpisodeStep> = None;
        let reason = loop {
            let input = operator.poll(&observation);
            controls.apply(input.command);
            if let Some(live) = &live {
                live.set_paused(controls.paused);
            }
            if let Some(mut step) = newest.take() {
                step.flags.label = controls.label.or(label_frames.then_some(input.marking_success));
                durably(|| writer.step(&step))?;
            }
            if let Some(reason) = controls.end_reason() {
                break reason;
            }
            // The episode starts at the human's first move: until then the
            // robot holds and the episode clock does not run.
            // The gate ticks on while the robot waits: its ticks go with the next step.
            env.take_gate_ticks(&mut ticks);
            if controls.paused || (steps == 0 && input.takeover.is_none()) {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            let human = input.takeover.is_some();
            let action = input.takeover.unwrap_or_else(|| idle_action.to_vec());
            if action.len() != env.action_size() {
                return Err(PracticeError::TakeoverSize { expected: env.action_size(), got: action.len() });
            }
            if steps == 0 {
                reset_frames = encoded_frames_of(env)?;
            }
            let result = env.step(&action).map_err(|e| PracticeError::Environment { step: total_steps, message: e.to_string() })?;
            let events = env.take_safety_events();
            env.take_gate_ticks(&mut ticks);
            record_gate_ticks(&mut writer, &ticks)?;
            if let Some(live) = &live {
                live.stepped(result.reward, human);
                live.show_ticks(&ticks);
                if let (Some(layout), Some(frames)) = (frame_layout, env.frames()) {
                    live.frames.offer(layout, frames, total_steps + 1);
                }
            }
            ticks.clear();
            steps += 1;
            total_steps += 1;
            total += result.reward;
            interventions += u64::from(human);
            safety_events += events.protective;
            let next = env.observation().to_vec();
            let truncated = result.truncated || (!result.terminated && steps >= max_episode_steps);
            let record = EpisodeStep {
                time_ns: episode_start + started.elapsed().as_nanos() as u64,
                observation: observation.iter().map(|&x| x as f32).collect(),
                action: to_policy_action(&action, &low, &high).iter().map(|&x| x as f32).collect(),
                reward: result.reward as f32,
                next_observation: next.iter().map(|&x| x as f32).collect(),
                flags: StepFlags { terminated: result.terminated, truncated, intervention: human, safety_event: events.any(), recovery: false, reflex: events.reflexes > 0, label: None },
                next_frames: encoded_frames_of(env)?,
            };
            // The first observation is the one before the first move (the
            // reset's may be long gone while the robot waited).
            if let Some(first) = reset_frames.take() {
                durably(|| writer.reset_frames(&first))?;
            }
            observation = next;
            if result.done() || truncated {
                // The last step: judged by the marking the human held as it began.
                let mut record = record;
                record.flags.label = label_frames.then_some(input.marking_success);
                durably(|| writer.step(&record))?;
                break task_end_reason(env.success(), result.terminated);
            }
            newest = Some(record);
        };
        let success = controls.label.or(env.success().map(|s| s && reason == "success"));
        let outcome = EpisodeOutcome { steps, episode_return: total, success, interventions, safety_events, reason: reason.into() };
        durably(|| writer.finish(&outcome))?;
        if let Some(live) = &live {
            live.episode_ended(success);
        }
        let report = EpisodeReport { episode: index, steps, total_steps, episode_return: total, success, interventions, safety_events, reason: reason.into(), learner_updates: 0, seconds: started.elapsed().as_secs_f64(), learned_rewards: (0, 0), deterministic: false, risk_critic: CriticRole::None, measured_violations: None };
        on_episode(&report);
        reports.push(report);
        if controls.stop {
            break 'session;
        }
    }
    Ok(reports)
}
