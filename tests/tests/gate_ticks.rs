//! The safety gate's ticks recorded beside the episodes survive a SIGKILL:
//! practice on the simulated Panda (reach, gate ticks recorded every other
//! quiet tick, every eventful one) is killed mid-episode, and the ticks on
//! disk are unbroken up to the last one written and cover every step on
//! disk; at most the step in flight's ticks are lost.

use std::path::Path;

use policies::practice::{self, PracticeSettings};
use policies::SacConfig;
use rrl_types::config::{LearnerConfig, SafetyConfig};
use rrl_types::{Environment, TickDecimator};
use sim_bridge::panda::{PandaTask, PandaVariant, RewardKind};

/// Gate ticks per environment step: the inverse kinematics' 100 Hz under a 10 Hz policy.
const TICKS_PER_STEP: u64 = 10;
const EVERY: u64 = 2;

/// Reach in a box the random policy leaves now and then, so the gate acts.
fn reach_task() -> PandaTask {
    let mut task = PandaTask::new(PandaVariant::Reach, RewardKind::Dense).unwrap();
    let safety: SafetyConfig = ron::from_str("(preset: Some(FrankaPanda), workspace: Some((min: (0.25, -0.25, 0.0), max: (0.55, 0.25, 0.45), max_step_m: 0.017, max_speed_mps: 1.7, tool_offset_m: (0.0, 0.0, 0.1488))))").unwrap();
    let names: Vec<String> = sim_bridge::arm::PANDA_JOINTS.iter().map(|s| s.to_string()).collect();
    task.set_gate(safety::Gate::build(&safety, &names, task.control_rate_hz()).unwrap());
    task.record_gate_ticks(TickDecimator::new(EVERY));
    task.set_home_noise(0.05);
    task.set_max_episode_steps(30);
    task
}

/// The killed child of `gate_ticks_survive_a_sigkill`.
#[test]
#[ignore = "the killed child of gate_ticks_survive_a_sigkill"]
fn practice_with_gate_ticks_until_killed() {
    let Some(run) = std::env::var_os("RRL_TEST_KILLED_RUN") else { return };
    let mut task = reach_task();
    let learner = LearnerConfig { hidden: vec![32, 32], batch_size: 32, ..LearnerConfig::default() };
    let config = SacConfig::from_learner(&learner, task.observation_size(), task.action_size(), 3);
    let settings = PracticeSettings { warmup_steps: 1_000_000, max_episode_steps: 30, seed: 9, lockstep: false, checkpoint_every: 1_000_000, ..tests::reach_practice_settings(Path::new(&run), 1_000_000) };
    practice::practice_with_link(&mut task, config, &mut tests::CapturedStream::default(), &mut tests::SlowNobody, &settings, &mut |_| {}).unwrap();
}

#[test]
fn gate_ticks_survive_a_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let (run, log) = (dir.path().join("run"), dir.path().join("unused.log"));
    tests::sigkill_after_episodes("practice_with_gate_ticks_until_killed", &run, &log, 4, std::time::Duration::from_secs(120));
    let episodes: Vec<recording::Episode> = recording::list_episodes(&run.join("episodes")).unwrap().iter().map(|p| recording::read_episode(p).unwrap()).collect();
    let steps: u64 = episodes.iter().map(|e| e.steps.len() as u64).sum();
    let ticks: Vec<&rrl_types::GateTick> = episodes.iter().flat_map(|e| &e.gate_ticks).collect();
    assert!(steps >= 3 * 30, "three whole episodes before the kill: {steps} steps");
    assert!(ticks.iter().any(|t| t.protective) && ticks.iter().any(|t| t.violation), "the random policy met the box");
    // Unbroken: from the first tick on, no gap wider than the decimation's.
    assert!(ticks[0].index <= EVERY, "the first recorded tick is {}", ticks[0].index);
    for pair in ticks.windows(2) {
        assert!(pair[1].index > pair[0].index && pair[1].index - pair[0].index <= EVERY, "ticks {} then {}: recorded ticks were lost", pair[0].index, pair[1].index);
    }
    // Every step on disk has its ticks on disk, and at most one step's more are there.
    let last = ticks.last().unwrap().index;
    assert!(last + EVERY > TICKS_PER_STEP * steps, "{steps} steps on disk, ticks only up to {last}");
    assert!(last <= TICKS_PER_STEP * (steps + 1), "{steps} steps on disk, ticks up to {last}");
}

/// Scripted demos and evaluations record the gate's ticks beside their
/// steps too: every step's ticks, unbroken, with the gate's verdicts.
#[test]
fn demos_and_evaluations_record_the_gate_ticks_of_every_step() {
    let dir = tempfile::tempdir().unwrap();
    let mut task = reach_task();
    let mut expert = sim_bridge::panda::ScriptedExpert::default();
    practice::record_demo_episodes(&mut task, dir.path(), "PandaReach", 2, 4, |obs, start| {
        if start {
            expert.reset();
        }
        expert.act(PandaVariant::Reach, obs).to_vec()
    }, &mut practice::Judge::Task).unwrap();
    // An evaluation that pushes into the box's floor: the gate clips.
    let eval = dir.path().join("eval");
    practice::evaluate_recorded(&mut task, "PandaReach", &eval, 1, 40, |_, _| vec![0.0, 0.0, -1.0, 0.0], &mut practice::Judge::Task).unwrap();
    for folder in [dir.path().join("demos"), eval] {
        for path in recording::list_episodes(&folder).unwrap() {
            let episode = recording::read_episode(&path).unwrap();
            let ticks = &episode.gate_ticks;
            assert!(!ticks.is_empty(), "{}: no gate ticks", path.display());
            assert!(ticks.windows(2).all(|w| w[1].index > w[0].index && w[1].index - w[0].index <= EVERY), "{}: ticks lost", path.display());
            let spanned = ticks.last().unwrap().index - ticks[0].index + 1;
            assert!(spanned + EVERY >= TICKS_PER_STEP * episode.steps.len() as u64, "{}: {} steps, ticks span {spanned}", path.display(), episode.steps.len());
        }
    }
    let evaluated = recording::read_episode(&recording::list_episodes(&dir.path().join("eval")).unwrap()[0]).unwrap();
    assert!(evaluated.gate_ticks.iter().any(|t| t.protective), "pushing into the floor, the gate protected");
}
