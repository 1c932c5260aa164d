//! Practice from cameras on the simulated Panda (reach, seen by its front
//! camera): every observation's frames reach the learner once, numbered,
//! ahead of the transitions that name them; the episode files keep the
//! same frames; a run SIGKILLed mid-episode resumes by sending its learner
//! the very frames and transitions the killed one had; and a short pixel
//! practice on a frozen pretrained trunk (the CPU mode) improves on its
//! warm-up.

use std::path::Path;

use policies::practice::{self, NoOperator, PracticeSettings, ToLearner};
use policies::SacConfig;
use rrl_types::config::{LearnerConfig, SafetyConfig};
use rrl_types::{Environment, FrameLayout};
use sim_bridge::panda::{PandaTask, PandaVariant, RewardKind, ScriptedExpert};

const SIDE: u32 = 24;

fn camera_reach_task(max_steps: u32) -> PandaTask {
    let mut task = PandaTask::with_cameras(PandaVariant::Reach, RewardKind::Dense, &["front".to_string()], SIDE).unwrap();
    let safety: SafetyConfig = ron::from_str("(preset: Some(FrankaPanda))").unwrap();
    let names: Vec<String> = sim_bridge::arm::PANDA_JOINTS.iter().map(|s| s.to_string()).collect();
    task.set_gate(safety::Gate::build(&safety, &names, task.control_rate_hz()).unwrap());
    task.set_home_noise(0.05);
    task.set_max_episode_steps(max_steps);
    task
}

/// A small DrQ learner for the task's frames.
fn pixel_learner(task: &PandaTask) -> SacConfig {
    let learner = LearnerConfig { hidden: vec![64, 64], batch_size: 32, initial_temperature: 0.01, n_step: 3, critic_lr: 1e-3, ..LearnerConfig::default() };
    let mut config = SacConfig::from_learner(&learner, task.observation_size(), task.action_size(), 3);
    let section = rrl_types::config::PixelEncoderConfig { features: 16, filters: 8, ..Default::default() };
    config.pixels = Some(wiring::learner::pixel_config(&section, task.frame_layout().unwrap()));
    config
}

fn settings(run_dir: &Path, total_steps: u64) -> PracticeSettings {
    PracticeSettings { max_episode_steps: 30, lockstep: false, ..tests::reach_practice_settings(run_dir, total_steps) }
}

/// A stream item as one comparable line: frames by number, size and
/// checksum; transitions by their values and the frames they name.
fn line_of(item: &ToLearner) -> Option<serde_json::Value> {
    match item {
        ToLearner::Frames { index, layout, rgb } => Some(serde_json::json!({"frames": index, "cameras": layout.cameras, "bytes": rgb.len(), "crc": recording::crc32(rgb)})),
        ToLearner::Transition { transition: t, demo, frames } => {
            let values = serde_json::json!([t.observation, t.action, t.reward, t.next_observation, t.terminal, demo, frames]);
            // Through text, as the log has it (f32 values printed and read back).
            Some(serde_json::from_str(&values.to_string()).unwrap())
        }
        ToLearner::OnlineStep | ToLearner::GateTicks { .. } => None,
    }
}

/// The learner's end of the link in a process about to be killed: each
/// item goes to a log file as it is sent (written through to the kernel,
/// so a SIGKILL loses none that was sent).
struct LoggedStream(std::fs::File);

impl practice::LearnerLink for LoggedStream {
    fn send(&mut self, item: ToLearner) {
        use std::io::Write;
        if let Some(line) = line_of(&item) {
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

use tests::CapturedStream;

use tests::SlowNobody;

/// The half of `a_sigkilled_pixel_practice_resumes_with_the_same_frames`
/// that is killed: pixel practice logging what it sends its learner.
#[test]
#[ignore = "the killed child of a_sigkilled_pixel_practice_resumes_with_the_same_frames"]
fn pixel_practice_until_killed() {
    let (Some(run), Some(log)) = (std::env::var_os("RRL_TEST_KILLED_RUN"), std::env::var_os("RRL_TEST_SENT_LOG")) else { return };
    let mut task = camera_reach_task(30);
    let config = pixel_learner(&task);
    // All warm-up: the actor's random actions need no learner.
    let settings = PracticeSettings { warmup_steps: 100_000, ..settings(Path::new(&run), 100_000) };
    let mut stream = LoggedStream(std::fs::File::create(log).unwrap());
    practice::practice_with_link(&mut task, config, &mut stream, &mut SlowNobody, &settings, &mut |_| {}).unwrap();
}

/// Pixel practice SIGKILLed mid-run and resumed: the resumed learner gets
/// first exactly the frames and transitions the killed one had, in order
/// and under the same numbers, each frame once; every transition names
/// frames sent before it; the frames are those the episode files hold.
#[test]
fn a_sigkilled_pixel_practice_resumes_with_the_same_frames() {
    let dir = tempfile::tempdir().unwrap();
    let (run, log) = (dir.path().join("run"), dir.path().join("sent.jsonl"));
    tests::sigkill_after_episodes("pixel_practice_until_killed", &run, &log, 4, std::time::Duration::from_secs(300));
    let sent: Vec<serde_json::Value> = std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let recorded: Vec<recording::Episode> = recording::list_episodes(&run.join("episodes")).unwrap().iter().map(|p| recording::read_episode(p).unwrap()).collect();
    let recorded_steps: u64 = recorded.iter().map(|e| e.steps.len() as u64).sum();
    assert!(sent.iter().filter(|l| l.get("frames").is_some()).count() >= 60, "too few frames were sent before the kill");

    // The resumed run (a few more steps) resends the files first.
    let mut task = camera_reach_task(30);
    let config = pixel_learner(&task);
    let settings = PracticeSettings { warmup_steps: 100_000, ..settings(&run, recorded_steps + 5) };
    let mut resumed = CapturedStream::default();
    let report = practice::practice_with_link(&mut task, config, &mut resumed, &mut NoOperator, &settings, &mut |_| {}).unwrap();
    assert_eq!(report.resumed_steps, recorded_steps);
    let lines: Vec<serde_json::Value> = resumed.0.iter().filter_map(line_of).collect();
    if let Some(k) = (0..sent.len()).find(|&k| lines.get(k) != Some(&sent[k])) {
        panic!("item {k} of the {} the killed learner had differs at the resumed learner: {} vs {}", sent.len(), sent[k], lines.get(k).map_or("none".into(), |l| l.to_string()));
    }

    // Frames are numbered 0, 1, 2, … once each, before any transition names them.
    let mut frames_sent = 0u64;
    for item in &resumed.0 {
        match item {
            ToLearner::Frames { index, layout, .. } => {
                assert_eq!(*index, frames_sent, "frames are numbered in order, each once");
                assert_eq!(*layout, FrameLayout { cameras: 1, height: SIDE as usize, width: SIDE as usize });
                frames_sent += 1;
            }
            ToLearner::Transition { frames: Some((frame, next)), .. } => assert!(*frame < *next && *next < frames_sent, "a transition names frames {frame}, {next} with {frames_sent} sent"),
            ToLearner::Transition { frames: None, .. } => panic!("a pixel learner's transition without frames"),
            ToLearner::OnlineStep | ToLearner::GateTicks { .. } => {}
        }
    }
    // One frame per observation of the recorded episodes: each first one, then each step's next.
    let resent: Vec<u32> = resumed.0.iter().filter_map(|i| if let ToLearner::Frames { rgb, .. } = i { Some(recording::crc32(rgb)) } else { None }).collect();
    let on_disk: Vec<u32> = recorded
        .iter()
        .filter(|e| !e.steps.is_empty())
        .flat_map(|e| std::iter::once(e.reset_frames.as_deref().unwrap()).chain(e.steps.iter().map(|s| s.next_frames.as_deref().unwrap())))
        .map(|encoded| recording::crc32(&recording::frames::decode(encoded).unwrap().1))
        .collect();
    assert_eq!(&resent[..on_disk.len()], &on_disk[..], "the learner's frames are the episode files' frames");
}

/// A short pixel practice on a frozen pretrained trunk (a fixed
/// convolution exported as TorchScript by the venv's torch; its head
/// trains) with five scripted demos: over its last ten episodes the arm
/// gets to its goals far sooner than over its warm-up of random actions.
#[test]
fn a_short_pixel_practice_on_a_frozen_trunk_improves_over_its_warmup() {
    let dir = tempfile::tempdir().unwrap();
    let trunk = dir.path().join("trunk.pt");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/tests/python/make_frozen_encoder.py");
    let made = std::process::Command::new(tests::venv_python()).arg(&script).arg(&trunk).output().unwrap();
    assert!(made.status.success(), "exporting the trunk: {}", String::from_utf8_lossy(&made.stderr));
    let mut task = camera_reach_task(30);
    let learner = LearnerConfig { hidden: vec![64, 64], batch_size: 64, utd: 2, initial_temperature: 0.01, n_step: 3, critic_lr: 1e-3, actor_lr: 1e-3, ..LearnerConfig::default() };
    let mut config = SacConfig::from_learner(&learner, task.observation_size(), task.action_size(), 3);
    let section = rrl_types::config::PixelEncoderConfig { features: 16, encoder: rrl_types::config::PixelEncoder::Frozen(trunk.display().to_string()), shift_pixels: Some(0), ..Default::default() };
    config.pixels = Some(wiring::learner::pixel_config(&section, task.frame_layout().unwrap()));
    let mut expert = ScriptedExpert::default();
    practice::record_demo_episodes(&mut task, dir.path(), "PandaReach", 5, 99, |obs, _| expert.act(PandaVariant::Reach, obs).to_vec(), &mut practice::Judge::Task).unwrap();
    let settings = PracticeSettings { lockstep: true, warmup_steps: 200, ..settings(dir.path(), 1_500) };
    let report = practice::practice(&mut task, config, tch::Device::Cpu, &mut NoOperator, &settings, |_| {}).unwrap();
    let mean = |episodes: &[practice::EpisodeReport]| episodes.iter().map(|e| e.episode_return).sum::<f64>() / episodes.len() as f64;
    let warmup: Vec<_> = report.episodes.iter().filter(|e| e.total_steps <= 200).cloned().collect();
    let last = &report.episodes[report.episodes.len() - 10..];
    let (before, after) = (mean(&warmup), mean(last));
    // Returns are negative (the distance to the goal, every step until it is reached).
    assert!(after > 0.7 * before, "mean return over the warm-up {before:.2}, over the last 10 episodes {after:.2}");
}
