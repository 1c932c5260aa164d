//! Practice on the car twin (launch/files/sim_car_course.ron, built as
//! `rrl practice` builds it): a short practice from three scripted laps
//! makes more progress per step than its random warm-up did, and a car
//! driven into a wall recovers by itself and practice goes on from where
//! it stopped, with no reset.

use std::path::{Path, PathBuf};

use policies::practice::{self, NoOperator, Operator, OperatorInput, PracticeSettings};
use policies::SacConfig;
use rrl_types::config::LaunchFile;
use rrl_types::{Environment, PracticeTask};

fn launch_file() -> (LaunchFile, PathBuf) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../launch/files/sim_car_course.ron");
    (LaunchFile::load(&path).unwrap(), path)
}

fn settings(run_dir: &Path, total_steps: u64, warmup_steps: u64) -> PracticeSettings {
    PracticeSettings { task: "CarCourse".into(), warmup_steps, max_episode_steps: 300, ..tests::reach_practice_settings(run_dir, total_steps) }
}

fn read_folder(folder: &Path) -> Vec<recording::Episode> {
    recording::list_episodes(folder).unwrap().iter().map(|p| recording::read_episode(p).unwrap()).collect()
}

/// Mean reward per step of the episodes that ended within `(from, to]` total steps.
fn progress_per_step(report: &practice::PracticeReport, from: u64, to: u64) -> f64 {
    let window: Vec<_> = report.episodes.iter().filter(|e| e.total_steps > from && e.total_steps <= to).collect();
    window.iter().map(|e| e.episode_return).sum::<f64>() / window.iter().map(|e| e.steps).sum::<u64>().max(1) as f64
}

#[test]
fn a_short_practice_on_the_car_twin_makes_more_progress_per_step_than_its_warm_up() {
    let (launch, path) = launch_file();
    let mut task = wiring::robot::car_task(&launch, &path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path();
    let laps = practice::record_demo_episodes(&mut task, run, "CarCourse", 3, 7, |obs, _| rrl_types::course::pursue(obs).to_vec(), &mut practice::Judge::Task).unwrap();
    assert_eq!(laps, 3, "the scripted driver laps the course through the gate");
    let config = SacConfig::from_learner(&launch.learner, task.observation_size(), task.action_size(), 3);
    let (total, warmup) = (2500, 500);
    let report = practice::practice(&mut task, config, tch::Device::Cpu, &mut NoOperator, &settings(run, total, warmup), |_| {}).unwrap();
    let random = progress_per_step(&report, 0, warmup);
    let practised = progress_per_step(&report, total - 500, total);
    eprintln!("progress per step: warm-up {random:.3}, last 500 steps {practised:.3}");
    // Random driving makes no headway (about 0, less its collisions); a
    // car that learned to drive at the checkpoints makes about half of
    // full speed toward them (0.5 in the reward's units); 2500 steps get
    // about 0.27 (no learning: -0.03).
    assert!(practised > random + 0.15 && practised > 0.15, "progress per step: warm-up {random:.3}, last 500 steps {practised:.3}; episodes {:?}", report.episodes.iter().map(|e| (e.steps, e.reason.as_str())).collect::<Vec<_>>());
}

/// Full throttle ahead for the first `steps` polls, then nobody.
struct FullThrottle {
    steps: u32,
}

impl Operator for FullThrottle {
    fn poll(&mut self, _: &[f64]) -> OperatorInput {
        let takeover = (self.steps > 0).then(|| vec![1.0, 0.0]);
        self.steps = self.steps.saturating_sub(1);
        OperatorInput { takeover, ..OperatorInput::default() }
    }
}

#[test]
fn a_car_driven_into_a_wall_backs_out_by_itself_and_practice_goes_on_from_there() {
    let (mut launch, path) = launch_file();
    // Start 0.6 m short of the east wall, facing it.
    launch.course.as_mut().unwrap().start = (2.0, 0.0, 0.0);
    let mut task = wiring::robot::car_task(&launch, &path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = SacConfig::from_learner(&launch.learner, task.observation_size(), task.action_size(), 3);
    let report = practice::practice(&mut task, config, tch::Device::Cpu, &mut FullThrottle { steps: 30 }, &settings(dir.path(), 60, 60), |_| {}).unwrap();
    assert_eq!(report.episodes[0].reason, "stuck", "the wall ends the first episode in the recovery: {:?}", report.episodes);
    assert!(task.progress().collisions() >= 1, "the bump was felt");
    let episodes = read_folder(&dir.path().join("episodes"));
    let first = &episodes[0];
    let recovery: Vec<_> = first.steps.iter().filter(|s| s.flags.recovery).collect();
    assert!(!recovery.is_empty() && first.steps.iter().rev().take(recovery.len()).all(|s| s.flags.recovery), "the recovery's steps close the episode, flagged");
    assert!(recovery.iter().all(|s| s.action[0] < 0.0), "it reverses");
    // The car was not carried anywhere: the next episode starts where the recovery left it.
    assert_eq!(episodes[1].steps[0].observation, recovery.last().unwrap().next_observation, "no reset between the episodes");
    // Backed out: the first checkpoint (1.8, 0), behind the car at the wall, is farther behind it now.
    let ahead = |o: &[f32]| o[2];
    assert!(ahead(&recovery.last().unwrap().next_observation) > ahead(&recovery[0].observation) + 0.05, "the checkpoint behind the car is less far behind after backing out");
    assert_eq!(report.total_steps, 60, "practice went on to its budget without a human");
    assert!(!task.needs_recovery());
}
