//! A real crash of the episode writer: a child process writes steps as
//! fast as it can and says which step's `step()` has returned; it is killed
//! with SIGKILL mid-episode, with a write pending or under way. Every step
//! the writer had returned from is on disk, read back value for value; at
//! most the one being written when the kill landed is torn off.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use recording::{EpisodeHeader, EpisodeStep, EpisodeWriter, StepFlags};

/// Large observations (32 KiB a record), so writing is most of the child's work.
const OBSERVATION: usize = 4096;

fn header() -> EpisodeHeader {
    EpisodeHeader { task: "killed".into(), episode: 0, observation_size: OBSERVATION, action_size: 2, source: "practice".into(), seed: 1, started_unix_ns: 1 }
}

fn step(i: u32) -> EpisodeStep {
    let x = i as f32;
    EpisodeStep {
        time_ns: u64::from(i),
        observation: (0..OBSERVATION).map(|k| x + k as f32).collect(),
        action: vec![x, -x],
        reward: x,
        next_observation: (0..OBSERVATION).map(|k| x - k as f32).collect(),
        flags: StepFlags::default(),
        next_frames: None,
    }
}

/// The half of `every_step_the_writer_returned_from_survives_a_sigkill`
/// that is killed: writes steps until killed, printing each index once its
/// write has returned.
#[test]
#[ignore = "the killed child of every_step_the_writer_returned_from_survives_a_sigkill"]
fn writer_until_killed() {
    let Some(folder) = std::env::var_os("RRL_TEST_KILLED_FOLDER") else { return };
    let mut writer = EpisodeWriter::create(std::path::Path::new(&folder), &header(), false).unwrap();
    for i in 0.. {
        writer.step(&step(i)).unwrap();
        println!("{i}"); // stdout is line-buffered: the parent sees it at once
    }
}

/// Fault matrix: actor killed | the episode writer's process SIGKILLed mid-write | the file keeps every whole record | every step whose write returned reads back, value for value; at most one more
#[test]
fn every_step_the_writer_returned_from_survives_a_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["writer_until_killed", "--exact", "--ignored", "--test-threads", "1", "--nocapture", "--quiet"])
        .env("RRL_TEST_KILLED_FOLDER", dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acknowledged = 0u32;
    // Wait on the child's own word that 300 steps have been written.
    while acknowledged < 300 {
        let line = lines.next().expect("the writer stopped before 300 steps").unwrap();
        if let Ok(i) = line.trim().parse::<u32>() {
            acknowledged = i + 1;
        }
    }
    child.kill().unwrap(); // SIGKILL, wherever the writer is
    child.wait().unwrap();
    // What it printed before dying: the steps whose write had returned.
    for line in lines.map_while(Result::ok) {
        if let Ok(i) = line.trim().parse::<u32>() {
            acknowledged = i + 1;
        }
    }

    let files = recording::list_episodes(dir.path()).unwrap();
    assert_eq!(files.len(), 1);
    let episode = recording::read_episode(&files[0]).unwrap();
    assert!(episode.outcome.is_none(), "the killed episode has no outcome");
    let on_disk = episode.steps.len() as u32;
    assert!(on_disk >= acknowledged, "{} of the {acknowledged} steps whose write had returned are lost", acknowledged - on_disk);
    assert!(on_disk <= acknowledged + 1, "{on_disk} steps on disk, only {acknowledged} acknowledged and one in flight");
    for (i, s) in episode.steps.iter().enumerate() {
        assert_eq!(s, &step(i as u32), "step {i} reads back changed");
    }
}
