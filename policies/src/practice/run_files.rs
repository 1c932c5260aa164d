//! The run's episode files, the source of truth: read back at start and
//! resent to the learner, written durably as practice goes.

use std::path::Path;
use std::time::Duration;

use recording::{Episode, EpisodeStep};
use rrl_types::FrameLayout;

use super::{PracticeError, ToLearner};
use crate::replay::{NStepWriter, Transition};
use crate::sac::SacConfig;

/// Reads every episode recorded under `folder`; refused when one was
/// recorded for other (observation, action) sizes than `expected`.
pub(super) fn read_all(folder: &Path, expected: (usize, usize)) -> Result<Vec<Episode>, PracticeError> {
    // A crashed writer's hidden partial file is never read: tidy it away.
    for path in recording::sweep_stale_partials(folder)? {
        tracing::info!(path = %path.display(), "removed the partial file of a writer that is gone (killed while starting an episode)");
    }
    let mut episodes = Vec::new();
    for path in recording::list_episodes(folder)? {
        let episode = recording::read_episode(&path)?;
        if (episode.header.observation_size, episode.header.action_size) != expected {
            return Err(PracticeError::Mismatch {
                problem: format!(
                    "recorded with observation/action sizes {}/{}, the task has {}/{}",
                    episode.header.observation_size, episode.header.action_size, expected.0, expected.1
                ),
                path,
            });
        }
        if episode.torn_tail_bytes > 0 {
            tracing::warn!(path = %path.display(), bytes = episode.torn_tail_bytes, steps = episode.steps.len(), "episode cut short by a crash: its intact steps are kept");
        }
        episodes.push(episode);
    }
    Ok(episodes)
}

/// Numbers the camera frames of the stream a pixel learner gets: each
/// observation's frames are sent once, before the transitions that name
/// them. `None` for a state learner, which gets no frames.
pub(super) struct FrameCounter(pub(super) Option<u64>);

impl FrameCounter {
    pub(super) fn for_learner(config: &SacConfig) -> FrameCounter {
        FrameCounter(config.pixels.as_ref().map(|_| 0))
    }

    /// Sends `rgb` if the learner sees frames; the index it goes by.
    pub(super) fn send(&mut self, layout: FrameLayout, rgb: Vec<u8>, out: &mut dyn FnMut(ToLearner)) -> Option<u64> {
        let index = self.0.as_mut()?;
        out(ToLearner::Frames { index: *index, layout, rgb });
        *index += 1;
        Some(*index - 1)
    }
}

/// One observation's frames encoded for an episode file.
pub(super) fn encode_frames(rgb: &[u8], layout: FrameLayout) -> Result<Vec<u8>, PracticeError> {
    recording::frames::encode(rgb, layout).map_err(|e| PracticeError::Cameras(e.to_string()))
}

/// The frames `env` shows now, encoded for an episode file; `None` for a task without cameras.
pub(super) fn encoded_frames_of<E: rrl_types::Environment>(env: &E) -> Result<Option<Vec<u8>>, PracticeError> {
    match (env.frame_layout(), env.frames()) {
        (Some(layout), Some(frames)) => Ok(Some(encode_frames(frames, layout)?)),
        _ => Ok(None),
    }
}

/// Recorded frames decoded for a pixel learner; refused when missing or
/// of another layout than `expected`.
fn decoded_frames(encoded: Option<&[u8]>, expected: FrameLayout, episode: &Episode, what: &str) -> Result<Vec<u8>, PracticeError> {
    let mismatch = |problem: String| PracticeError::Mismatch { path: episode.path.clone(), problem };
    let encoded = encoded.ok_or_else(|| mismatch(format!("{what} has no camera frames; this learner sees {expected}: was it recorded for a state-only task?")))?;
    recording::frames::decode_as(encoded, expected).map_err(|e| mismatch(format!("{what}: {e}")))
}

/// Feeds recorded episodes to `out` exactly as the live actor sent them:
/// per step its next observation's frames (a pixel learner's, after the
/// episode's first frames before its first step), its completed n-step
/// transitions, then (online steps only) an `OnlineStep`. The stream is
/// therefore a pure function of the files, so a restarted actor resends
/// the same items under the same sequence numbers and frame numbers.
/// Recovery steps are not the policy's and are skipped; demo episodes and
/// interventions are flagged as demos. Returns the online steps.
pub(super) fn replay_recorded(
    episodes: &[Episode],
    config: &SacConfig,
    human_reward: bool,
    shaping: Option<super::Shaping>,
    frames: &mut FrameCounter,
    out: &mut dyn FnMut(ToLearner),
) -> Result<u64, PracticeError> {
    let mut online = 0;
    let layout = config.pixels.as_ref().map(crate::pixels::PixelConfig::layout);
    for episode in episodes {
        let demo_episode = episode.header.source == "demo";
        let mut writer = NStepWriter::tagged(config.n_step, config.gamma);
        let policy_steps: Vec<&EpisodeStep> = episode.steps.iter().filter(|s| !s.flags.recovery).collect();
        // With human rewards an episode's outcome is its label: its last step
        // is terminal with reward 1 or 0, every other step has reward 0 (a
        // scripted or teleoperated demo is labelled by its own outcome).
        let label = episode.outcome.as_ref().and_then(|o| o.success);
        // The frame numbers of the current observation, and of each step's pair.
        let (mut observation_tag, mut tags) = (None, (None, None));
        for (i, step) in policy_steps.iter().enumerate() {
            if let Some(layout) = layout {
                if i == 0 {
                    observation_tag = frames.send(layout, decoded_frames(episode.reset_frames.as_deref(), layout, episode, "the first observation")?, out);
                }
                let next = frames.send(layout, decoded_frames(step.next_frames.as_deref(), layout, episode, &format!("step {}", i + 1))?, out);
                tags = (observation_tag, next);
                observation_tag = next;
            }
            let demo = demo_episode || step.flags.intervention;
            let last = i + 1 == policy_steps.len();
            let over = step.flags.terminated || step.flags.truncated || last;
            let (reward, terminal) = match (human_reward, label) {
                (false, _) => (step.reward, step.flags.terminated),
                (true, Some(success)) if last => (f32::from(u8::from(success)), true),
                (true, _) => (0.0, false),
            };
            let mut transition = Transition {
                observation: step.observation.clone(),
                action: step.action.clone(),
                reward,
                next_observation: step.next_observation.clone(),
                terminal,
                discount: config.gamma as f32,
            };
            if let Some(shaping) = shaping {
                shaping.apply(&mut transition);
            }
            // An n-step transition counts as a demo when the step completing it was one.
            writer.push_tagged(transition, tags, over, &mut |t, (frame, next_frame)| out(ToLearner::Transition { transition: t, demo, frames: frame.zip(next_frame) }));
            if !demo_episode {
                online += 1;
                out(ToLearner::OnlineStep);
            }
        }
    }
    Ok(online)
}

/// Makes one write of the run's episodes. While the disk is full, the
/// caller (the actor) waits here: the robot gets no command, so the gate
/// holds it; the log says so once and the write is retried every second
/// until space is freed. Nothing written before is touched, and the step
/// in hand is written when the retry succeeds.
pub(super) fn durably<T>(write: impl FnMut() -> Result<T, recording::RecordingError>) -> Result<T, recording::RecordingError> {
    recording::retry_while_storage_full(
        write,
        recording::RecordingError::is_storage_full,
        Duration::from_secs(1),
        |e| tracing::warn!("the disk is full ({e}): practice is paused (the gate holds the robot) and retries every second; free some space to go on"),
        |waited| tracing::warn!(paused_s = waited, "the episode is written again: practice resumes"),
    )
}

/// Writes the safety gate's ticks of the step just taken to its episode.
pub(super) fn record_gate_ticks(writer: &mut recording::EpisodeWriter, ticks: &[rrl_types::GateTick]) -> Result<(), recording::RecordingError> {
    durably(|| writer.gate_ticks(ticks))
}

/// Wall-clock time for episode headers and step stamps.
pub(super) fn unix_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}
