//! `rrl train` leaves what a user looks at: an evaluation CSV, TensorBoard
//! events that TensorBoard itself reads back, a PNG learning curve, and a
//! checkpoint that `--resume` continues from.

use std::path::PathBuf;
use std::process::Command;

fn rrl(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rrl")).args(args).env("RRL_LOG", "warn").output().expect("run rrl")
}

#[test]
fn train_writes_csv_tensorboard_png_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let common = ["train", "--task", "InvertedPendulum-v5", "--warmup", "300", "--eval-every", "400", "--eval-episodes", "2", "--out", out.to_str().unwrap()];
    let first = rrl(&[&common[..], &["--steps", "800"]].concat());
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let second = rrl(&[&common[..], &["--steps", "1200", "--resume"]].concat());
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    let report: serde_json::Value = serde_json::from_slice(second.stdout.split(|b| *b == b'\n').find(|l| l.starts_with(b"{")).unwrap()).unwrap();
    let steps: Vec<u64> = report["evals"].as_array().unwrap().iter().map(|e| e["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, vec![1200], "the resumed run starts after the checkpoint at 800");

    let csv = std::fs::read_to_string(out.join("eval.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "step,mean_return,success_rate,seconds");
    let csv_steps: Vec<&str> = rows[1..].iter().map(|r| r.split(',').next().unwrap()).collect();
    assert_eq!(csv_steps, vec!["400", "800", "1200"], "{csv}");

    let png = std::fs::read(out.join("learning_curve.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(png.len() > 10_000, "a drawn chart, not an empty image");

    let python = std::env::var_os("VIRTUAL_ENV").map(|v| PathBuf::from(v).join("bin/python")).unwrap_or_else(|| "python3".into());
    let script = "import sys\nfrom tensorboard.backend.event_processing.event_accumulator import EventAccumulator\nsteps=[]\nimport glob\nfor f in sorted(glob.glob(sys.argv[1]+'/*')):\n    ea=EventAccumulator(f); ea.Reload()\n    steps+=[e.step for e in ea.Scalars('eval/mean_return')]\nprint(sorted(steps))";
    let read = Command::new(python).args(["-c", script, out.join("tensorboard").to_str().unwrap()]).output().unwrap();
    assert!(read.status.success(), "{}", String::from_utf8_lossy(&read.stderr));
    assert_eq!(String::from_utf8_lossy(&read.stdout).trim(), "[400, 800, 1200]");
}

/// Names and shapes of the tensors in a safetensors file (its JSON header).
fn safetensors_shapes(path: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u64>> {
    let bytes = std::fs::read(path).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    header.as_object().unwrap().iter().filter(|(k, _)| *k != "__metadata__").map(|(k, v)| (k.clone(), v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap()).collect())).collect()
}

/// Pixels end to end: the simulated Panda's two cameras rendered for every
/// step, a learner with a conv encoder, the frame store saved with the
/// checkpoint (each frame once) and restored by `--resume`; resuming with
/// other cameras is refused, naming the encoder's shapes.
#[test]
fn train_learns_from_camera_frames_and_resumes_with_its_frame_store() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pixels");
    let common = ["train", "--task", "PandaPickCube", "--cameras", "front,handcam_rgb", "--image-size", "24", "--warmup", "60", "--eval-every", "80", "--eval-episodes", "1", "--demo-episodes", "1", "--device", "cpu", "--out", out.to_str().unwrap()];
    let first = rrl(&[&common[..], &["--steps", "160"]].concat());
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let replay = safetensors_shapes(&out.join("checkpoint/replay.safetensors"));
    let (rows, frames) = (&replay["pixels.rows"], &replay["pixels.frames"]);
    assert_eq!(frames[1], 2 * 24 * 24 * 3, "both cameras' frames per observation");
    assert_eq!(replay["pixels.frame_ids"], vec![rows[0], 2]);
    // 160 transitions: one frame per step plus one per reset, not two per transition.
    assert!(rows[0] == 160 && frames[0] > 160 && frames[0] < 170, "rows {rows:?}, frames {frames:?}");
    assert_eq!(rows[1], 2 * 11 + 4 + 3, "pick-cube's state without the cube (11), action, reward, terminal, discount");
    let learner = safetensors_shapes(&out.join("checkpoint/learner.safetensors"));
    assert_eq!(learner["encoder.conv0.weight"], vec![32, 6, 3, 3]);

    let second = rrl(&[&common[..], &["--steps", "200", "--resume"]].concat());
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    let csv = std::fs::read_to_string(out.join("eval.csv")).unwrap();
    let steps: Vec<&str> = csv.lines().skip(1).map(|r| r.split(',').next().unwrap()).collect();
    assert_eq!(steps, vec!["80", "160", "200"], "{csv}");
    assert_eq!(safetensors_shapes(&out.join("checkpoint/replay.safetensors"))["pixels.rows"][0], 200, "the restored 160 transitions and 40 new ones");

    let mut other = common.to_vec();
    other[4] = "front";
    let refused = rrl(&[&other[..], &["--steps", "240", "--resume"]].concat());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("encoder.conv0.weight") && stderr.contains("[32, 6, 3, 3]"), "{stderr}");
}
