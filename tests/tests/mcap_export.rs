//! Recorded episodes exported to MCAP and read back by independent
//! readers: Foxglove's `mcap` Python library with its ROS 2 CDR decoder
//! (one file), and the `rosbags` library opening the rosbag2 folder as
//! `ros2 bag` does (metadata.yaml, then the MCAP storage file).

use recording::{Episode, EpisodeHeader, EpisodeOutcome, EpisodeStep, EpisodeWriter, StepFlags};

/// (topic, log time, values) of every numeric message the export must hold.
type Expected = Vec<(&'static str, u64, Vec<f64>)>;

/// Two recorded episodes, the second cut short by a "crash" before its outcome.
fn recorded_episodes(dir: &std::path::Path) -> (Vec<Episode>, Expected) {
    recorded_episodes_apart(dir, 10)
}

/// The same, the second episode starting `apart` policy periods after the
/// first: 10 leaves a gap, 2 overlaps the first's 4 steps (nominal times of
/// episodes practised faster than real time).
fn recorded_episodes_apart(dir: &std::path::Path, apart: u64) -> (Vec<Episode>, Expected) {
    let episodes_dir = dir.join("episodes");
    let mut expected = Vec::new(); // (topic, log_time, values)
    for e in 0..2u64 {
        let header = EpisodeHeader { task: "PandaReach".into(), episode: e, observation_size: 3, action_size: 2, source: "practice".into(), seed: e, started_unix_ns: 1_700_000_000_000_000_000 };
        let mut writer = EpisodeWriter::create(&episodes_dir, &header, false).unwrap();
        for i in 0..4u64 {
            let t = header.started_unix_ns + (apart * e + i) * 100_000_000;
            let x = (e * 10 + i) as f32;
            let step = EpisodeStep {
                time_ns: t,
                observation: vec![x, 0.5, -x],
                action: vec![0.25, -x / 10.0],
                reward: -1.0 + x / 100.0,
                next_observation: vec![x + 1.0, 0.5, -x - 1.0],
                flags: StepFlags { intervention: i == 2, ..StepFlags::default() },
                next_frames: None,
            };
            writer.step(&step).unwrap();
            expected.push(("/rrl/observation", t, step.observation.iter().map(|&v| f64::from(v)).collect::<Vec<_>>()));
            expected.push(("/rrl/action", t, step.action.iter().map(|&v| f64::from(v)).collect()));
            expected.push(("/rrl/reward", t, vec![f64::from(step.reward)]));
            expected.push(("/rrl/intervention", t, vec![f64::from(u8::from(i == 2))]));
        }
        if e == 0 {
            writer.finish(&EpisodeOutcome { steps: 4, episode_return: -3.9, success: Some(false), interventions: 1, safety_events: 0, reason: "timeout".into() }).unwrap();
        } // episode 1: the process "died" before its outcome
    }
    let episodes: Vec<_> = recording::list_episodes(&episodes_dir).unwrap().iter().map(|p| recording::read_episode(p).unwrap()).collect();
    assert!(episodes[1].outcome.is_none());
    (episodes, expected)
}

fn as_values(data: &serde_json::Value) -> Vec<f64> {
    match data {
        serde_json::Value::Array(a) => a.iter().map(|v| v.as_f64().unwrap()).collect(),
        serde_json::Value::Bool(b) => vec![f64::from(u8::from(*b))],
        v => vec![v.as_f64().unwrap()],
    }
}

#[test]
fn foxglove_mcap_reader_decodes_every_exported_message() {
    let dir = tempfile::tempdir().unwrap();
    let (episodes, expected) = recorded_episodes(dir.path());
    let out = dir.path().join("run.mcap");
    let summary = recording::mcap::export(&episodes, &out).unwrap();
    assert_eq!(summary.messages, 32 + 3);

    let result = tests::python_script("mcap_read.py").arg(&out).output().unwrap();
    assert!(result.status.success(), "reader failed: {}", String::from_utf8_lossy(&result.stderr));
    let read: serde_json::Value = serde_json::from_slice(&result.stdout).unwrap();
    assert_eq!(read["profile"], "ros2");
    assert_eq!(read["topics"]["/rrl/observation"], "std_msgs/msg/Float64MultiArray");
    assert_eq!(read["topics"]["/rrl/reward"], "std_msgs/msg/Float64");
    assert_eq!(read["statistics"]["message_count"], 35);
    let messages = read["messages"].as_array().unwrap();
    let numeric: Vec<_> = messages.iter().filter(|m| m["topic"] != "/rrl/episode").collect();
    assert_eq!(numeric.len(), expected.len());
    for (m, (topic, time, values)) in numeric.iter().zip(&expected) {
        assert_eq!(m["topic"], *topic);
        assert_eq!(m["log_time"].as_u64().unwrap(), *time);
        assert_eq!(&as_values(&m["data"]), values, "{topic} at {time}");
    }
    let episode_texts: Vec<_> = messages.iter().filter(|m| m["topic"] == "/rrl/episode").map(|m| m["data"].as_str().unwrap().to_string()).collect();
    assert_eq!(episode_texts.len(), 3, "two headers, one outcome");
    assert!(episode_texts[1].contains("\"reason\":\"timeout\""), "{episode_texts:?}");
}

#[test]
fn a_rosbag2_reader_opens_the_exported_bag_folder() {
    let dir = tempfile::tempdir().unwrap();
    let (episodes, expected) = recorded_episodes(dir.path());
    let bag = dir.path().join("practice_run");
    let summary = recording::mcap::export_bag(&episodes, &bag).unwrap();
    assert!(bag.join("practice_run_0.mcap").is_file() && bag.join("metadata.yaml").is_file());
    let result = tests::python_script("rosbag_read.py").arg(&bag).output().unwrap();
    assert!(result.status.success(), "rosbags failed: {}", String::from_utf8_lossy(&result.stderr));
    let read: serde_json::Value = serde_json::from_slice(&result.stdout).unwrap();
    assert_eq!(read["message_count"].as_u64(), Some(35));
    assert_eq!(read["start_time"].as_u64(), Some(summary.first_time_ns));
    assert_eq!(read["topics"]["/rrl/action"], serde_json::json!({ "type": "std_msgs/msg/Float64MultiArray", "count": 8 }));
    assert_eq!(read["topics"]["/rrl/episode"]["count"], 3);
    let messages = read["messages"].as_array().unwrap();
    let numeric: Vec<_> = messages.iter().filter(|m| m["topic"] != "/rrl/episode").collect();
    assert_eq!(numeric.len(), expected.len());
    // rosbag2 readers return messages in time order; within one step, per topic.
    for (topic, time, values) in &expected {
        let found = numeric.iter().find(|m| m["topic"] == *topic && m["log_time"].as_u64() == Some(*time)).unwrap_or_else(|| panic!("{topic} at {time} missing"));
        assert_eq!(&as_values(&found["data"]), values, "{topic} at {time}");
    }
}

#[test]
fn episodes_whose_nominal_times_overlap_are_exported_end_to_end_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let (episodes, expected) = recorded_episodes_apart(dir.path(), 2);
    let bag = dir.path().join("lockstep_run");
    recording::mcap::export_bag(&episodes, &bag).unwrap();
    // rosbags refuses an unindexed MCAP whose messages go back in time.
    let result = tests::python_script("rosbag_read.py").arg(&bag).output().unwrap();
    assert!(result.status.success(), "rosbags failed: {}", String::from_utf8_lossy(&result.stderr));
    let read: serde_json::Value = serde_json::from_slice(&result.stdout).unwrap();
    assert_eq!(read["message_count"].as_u64(), Some(35));
    let observations: Vec<(u64, Vec<f64>)> = read["messages"].as_array().unwrap().iter().filter(|m| m["topic"] == "/rrl/observation").map(|m| (m["log_time"].as_u64().unwrap(), as_values(&m["data"]))).collect();
    let recorded: Vec<&Vec<f64>> = expected.iter().filter(|e| e.0 == "/rrl/observation").map(|e| &e.2).collect();
    assert_eq!(observations.iter().map(|o| &o.1).collect::<Vec<_>>(), recorded, "every step, the first episode's first");
    let times: Vec<u64> = observations.iter().map(|o| o.0).collect();
    let first_start = expected[0].1;
    // The first episode keeps its times; the second follows it, its steps still 0.1 s apart.
    assert_eq!(&times[..4], &[0, 1, 2, 3].map(|i| first_start + i * 100_000_000));
    assert!(times[4] > times[3], "{times:?}");
    assert!(times[4..].windows(2).all(|w| w[1] - w[0] == 100_000_000), "{times:?}");
}

/// A pixel run's episodes (two cameras, frames recorded with every step):
/// Foxglove's reader finds a `sensor_msgs/CompressedImage` topic per
/// camera, one image per step beside its observation, each the PNG the
/// episode file holds for that camera and observation, stamped with the
/// step's time.
#[test]
fn foxglove_mcap_reader_shows_a_pixel_runs_camera_frames() {
    let dir = tempfile::tempdir().unwrap();
    let layout = rrl_types::FrameLayout { cameras: 2, height: 8, width: 6 };
    let frames = |k: u64| -> Vec<u8> { recording::frames::encode(&(0..layout.bytes()).map(|i| (i as u64 * 7 + k * 31) as u8).collect::<Vec<_>>(), layout).unwrap() };
    let header = EpisodeHeader { task: "PandaPickCube".into(), episode: 0, observation_size: 2, action_size: 1, source: "practice".into(), seed: 0, started_unix_ns: 1_700_000_000_000_000_000 };
    let mut writer = EpisodeWriter::create(&dir.path().join("episodes"), &header, false).unwrap();
    writer.reset_frames(&frames(0)).unwrap();
    for i in 0..3u64 {
        let step = EpisodeStep {
            time_ns: header.started_unix_ns + i * 100_000_000,
            observation: vec![i as f32, 0.0],
            action: vec![0.5],
            reward: 0.0,
            next_observation: vec![i as f32 + 1.0, 0.0],
            flags: StepFlags::default(),
            next_frames: Some(frames(i + 1)),
        };
        writer.step(&step).unwrap();
    }
    let path = writer.finish(&EpisodeOutcome { steps: 3, episode_return: 0.0, success: Some(true), interventions: 0, safety_events: 0, reason: "success".into() }).unwrap();
    let episode = recording::read_episode(&path).unwrap();
    let out = dir.path().join("pixels.mcap");
    let summary = recording::mcap::export(&[episode], &out).unwrap();
    assert_eq!(summary.messages, 3 * 4 + 2 + 3 * 2, "four numeric topics a step, header and outcome, two images a step");

    let result = tests::python_script("mcap_read.py").arg(&out).output().unwrap();
    assert!(result.status.success(), "reader failed: {}", String::from_utf8_lossy(&result.stderr));
    let read: serde_json::Value = serde_json::from_slice(&result.stdout).unwrap();
    for camera in 0..2 {
        let topic = format!("/rrl/camera_{camera}/image/compressed");
        assert_eq!(read["topics"][&topic], "sensor_msgs/msg/CompressedImage");
        let images: Vec<&serde_json::Value> = read["messages"].as_array().unwrap().iter().filter(|m| m["topic"] == topic.as_str()).collect();
        assert_eq!(images.len(), 3, "{topic}: one image per step");
        for (k, image) in images.iter().enumerate() {
            // Step k's observation frames: the reset's, then each step's next ones.
            let encoded = frames(k as u64);
            let png = recording::frames::camera_pngs(&encoded).unwrap().1[camera];
            let time = header.started_unix_ns + k as u64 * 100_000_000;
            assert_eq!(image["data"]["format"], "png");
            assert_eq!(image["data"]["frame_id"], format!("camera_{camera}"));
            assert_eq!(image["data"]["crc32"].as_u64(), Some(u64::from(recording::crc32(png))), "{topic} image {k} is the recorded PNG");
            assert_eq!(image["data"]["stamp_ns"].as_u64(), Some(time));
            assert_eq!(image["log_time"].as_u64(), Some(time));
        }
    }
}
