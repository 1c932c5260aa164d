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
