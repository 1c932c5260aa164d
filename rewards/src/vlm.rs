//! The VLM progress critic (VLAC style): the previous and the current frame
//! (and optionally frames of a reference trajectory) go with the task text
//! to an OpenAI-compatible chat-completions endpoint; the model answers how
//! much the task progressed between them. Deltas accumulate into a value in
//! [0, 100]: a positive delta closes that share of the remaining gap, a
//! negative one gives back that share of what was achieved, so the value
//! never leaves its range and late progress counts as much as early. A
//! separate done query on the current frame ends the episode above a
//! threshold; on an episode's first frame its answer (how complete the task
//! looks, 0..100) is also where the value starts.

use std::time::Duration;

use serde_json::json;

use crate::encode::png_data_url;
use crate::http::Endpoint;
use crate::source::{Frame, RewardError, RewardEstimate, RewardSource};

/// Prompt templates; `{task}` is replaced by the task description.
#[derive(Debug, Clone, PartialEq)]
pub struct VlmPrompts {
    pub system: String,
    pub progress: String,
    pub done: String,
}

impl Default for VlmPrompts {
    fn default() -> Self {
        VlmPrompts {
            system: "You judge a robot's progress on a task from camera images.".into(),
            progress: "Task: {task}. The first image shows the scene earlier, the second now. By how many percentage points did the task progress from the first image to the second? Answer with one signed number between -100 and 100.".into(),
            done: "Task: {task}. Is the task complete in this image? Answer with one number from 0 (certainly not) to 100 (certainly).".into(),
        }
    }
}

#[derive(Clone, PartialEq)]
pub struct VlmSettings {
    /// e.g. `http://127.0.0.1:8000/v1/chat/completions`.
    pub endpoint: String,
    pub model: String,
    /// Sent as a bearer token; never logged.
    pub api_key: Option<String>,
    pub prompts: VlmPrompts,
    /// Done when the done query answers at least this (0..100).
    pub done_threshold: f64,
    pub timeout: Duration,
    /// Frames of a successful reference run, shown before the pair.
    pub reference_frames: Vec<Frame>,
    /// A PEM file of the root certificates an https endpoint is checked
    /// against instead of the system's (a private certificate authority).
    pub root_certificates: Option<std::path::PathBuf>,
}

/// Everything but the API key, which no `Debug` print or log may show.
impl std::fmt::Debug for VlmSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VlmSettings")
            .field("endpoint", &self.endpoint)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("prompts", &self.prompts)
            .field("done_threshold", &self.done_threshold)
            .field("timeout", &self.timeout)
            .field("reference_frames", &self.reference_frames.len())
            .field("root_certificates", &self.root_certificates)
            .finish()
    }
}

/// Accumulates progress deltas (percentage points) into a value in [0, 100].
pub fn accumulate(value: f64, delta: f64) -> f64 {
    let delta = delta.clamp(-100.0, 100.0) / 100.0;
    let next = if delta >= 0.0 { value + (100.0 - value) * delta } else { value + value * delta };
    next.clamp(0.0, 100.0)
}

/// The first number in a model's answer (e.g. "+15", "Progress: -7.5%").
pub fn first_number(text: &str) -> Option<f64> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let starts_number = bytes[i].is_ascii_digit() || ((bytes[i] == b'-' || bytes[i] == b'+') && bytes.get(i + 1).is_some_and(|b| b.is_ascii_digit()));
        if starts_number {
            let mut j = i + 1;
            while j < bytes.len() && (bytes[j].is_ascii_digit() || (bytes[j] == b'.' && bytes.get(j + 1).is_some_and(|b| b.is_ascii_digit()))) {
                j += 1;
            }
            return text[i..j].parse().ok();
        }
        i += 1;
    }
    None
}

pub struct VlmProgressCritic {
    settings: VlmSettings,
    endpoint: Endpoint,
    task: String,
    previous: Option<Frame>,
    tracker: ProgressTracker,
}

impl VlmProgressCritic {
    pub fn new(settings: VlmSettings) -> Result<VlmProgressCritic, RewardError> {
        let endpoint = Endpoint::parse(&settings.endpoint)?.trusting(settings.root_certificates.as_deref())?;
        if !(0.0..=100.0).contains(&settings.done_threshold) {
            return Err(RewardError::Invalid(format!("done threshold {} is outside 0..100", settings.done_threshold)));
        }
        for (name, template) in [("progress", &settings.prompts.progress), ("done", &settings.prompts.done)] {
            if !template.contains("{task}") {
                return Err(RewardError::Invalid(format!("the {name} prompt template has no {{task}} placeholder")));
            }
        }
        Ok(VlmProgressCritic { settings, endpoint, task: String::new(), previous: None, tracker: ProgressTracker::default() })
    }


    /// One chat completion with `text` after `images`; the answer's text.
    fn ask(&self, text: &str, images: &[&Frame]) -> Result<String, RewardError> {
        let mut content: Vec<serde_json::Value> = images.iter().map(|f| json!({"type": "image_url", "image_url": {"url": png_data_url(f.width, f.height, &f.rgb)}})).collect();
        content.push(json!({"type": "text", "text": text}));
        let request = json!({
            "model": self.settings.model,
            "temperature": 0.0,
            "max_tokens": 16,
            "messages": [
                {"role": "system", "content": self.settings.prompts.system},
                {"role": "user", "content": content},
            ],
        });
        let body = self.endpoint.post_json(request.to_string().as_bytes(), self.settings.api_key.as_deref(), self.settings.timeout)?;
        let answer: serde_json::Value = serde_json::from_slice(&body).map_err(|e| RewardError::Endpoint { url: self.endpoint.url.clone(), message: format!("answer is not JSON: {e}") })?;
        answer["choices"][0]["message"]["content"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| RewardError::Endpoint { url: self.endpoint.url.clone(), message: format!("no choices[0].message.content in {}", answer.to_string().chars().take(200).collect::<String>()) })
    }

    fn number(&self, answer: String) -> Result<f64, RewardError> {
        first_number(&answer).ok_or(RewardError::Unparseable { url: self.endpoint.url.clone(), answer })
    }
}

/// What the model said about one frame: the progress delta from the frame
/// before (none for an episode's first frame) and how complete the task
/// looks (0..100).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assessment {
    pub delta: Option<f64>,
    pub completion: f64,
}

impl VlmProgressCritic {
    /// Asks the model about `current` (after `previous`). Needs only `&self`,
    /// so several requests can be in flight at once; `ProgressTracker`
    /// applies their answers in frame order.
    pub fn assess(&self, task: &str, previous: Option<&Frame>, current: &Frame) -> Result<Assessment, RewardError> {
        let delta = match previous {
            Some(previous) => {
                let mut images: Vec<&Frame> = self.settings.reference_frames.iter().collect();
                images.push(previous);
                images.push(current);
                Some(self.number(self.ask(&self.settings.prompts.progress.replace("{task}", task), &images)?)?)
            }
            None => None,
        };
        let completion = self.number(self.ask(&self.settings.prompts.done.replace("{task}", task), &[current])?)?;
        Ok(Assessment { delta, completion })
    }

    pub fn done_threshold(&self) -> f64 {
        self.settings.done_threshold
    }
}

/// Turns assessments, in frame order, into progress, reward and done.
#[derive(Debug, Clone, Default)]
pub struct ProgressTracker {
    value: Option<f64>,
}

impl ProgressTracker {
    pub fn reset(&mut self) {
        self.value = None;
    }

    pub fn apply(&mut self, stamp: rrl_types::Timestamp, assessment: Assessment, done_threshold: f64) -> RewardEstimate {
        let (value, reward) = match (self.value, assessment.delta) {
            (Some(before), Some(delta)) => {
                let after = accumulate(before, delta);
                (after, (after - before) / 100.0)
            }
            // An episode may start part-way (or, played backwards, finished):
            // the first frame's completion estimate is where the value starts.
            _ => (assessment.completion.clamp(0.0, 100.0), 0.0),
        };
        self.value = Some(value);
        RewardEstimate { stamp, progress: Some(value), reward, done: assessment.completion >= done_threshold }
    }
}

impl RewardSource for VlmProgressCritic {
    fn name(&self) -> &str {
        "vlm_progress"
    }

    fn reset(&mut self, task: &str) -> Result<(), RewardError> {
        if task.trim().is_empty() {
            return Err(RewardError::Invalid("the task description is empty".into()));
        }
        self.task = task.to_string();
        self.previous = None;
        self.tracker.reset();
        Ok(())
    }

    /// Scores the first camera's frame against the one scored before.
    fn score(&mut self, frames: &[Frame]) -> Result<RewardEstimate, RewardError> {
        let current = frames.first().ok_or_else(|| RewardError::Invalid("no frame to score".into()))?;
        let assessment = self.assess(&self.task, self.previous.as_ref(), current)?;
        self.previous = Some(current.clone());
        Ok(self.tracker.apply(current.stamp, assessment, self.settings.done_threshold))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_key_never_shows_in_a_debug_print() {
        let settings = VlmSettings {
            endpoint: "http://127.0.0.1:8000/v1/chat/completions".into(),
            model: "m".into(),
            api_key: Some("sk-very-secret".into()),
            prompts: VlmPrompts::default(),
            done_threshold: 90.0,
            timeout: Duration::from_secs(1),
            reference_frames: Vec::new(),
            root_certificates: None,
        };
        let printed = format!("{settings:?} {settings:#?}");
        assert!(!printed.contains("sk-very-secret"), "{printed}");
        assert!(printed.contains("<redacted>") && printed.contains("127.0.0.1:8000"), "{printed}");
    }

    #[test]
    fn accumulated_progress_stays_in_range_and_closes_shares_of_the_gap() {
        assert_eq!(accumulate(0.0, 50.0), 50.0);
        assert_eq!(accumulate(50.0, 50.0), 75.0);
        assert_eq!(accumulate(80.0, -25.0), 60.0);
        assert_eq!(accumulate(60.0, -300.0), 0.0);
        assert_eq!(accumulate(99.0, 500.0), 100.0);
    }

    #[test]
    fn numbers_are_found_in_free_text() {
        assert_eq!(first_number("+15"), Some(15.0));
        assert_eq!(first_number("Progress delta: -7.5%."), Some(-7.5));
        assert_eq!(first_number("about 3. Then"), Some(3.0));
        assert_eq!(first_number("I cannot tell - sorry"), None);
    }
}
