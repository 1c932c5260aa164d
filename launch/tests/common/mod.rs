//! Support shared by the `rrl` command-line tests.

// Each test binary uses part of it.
#![allow(dead_code)]

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The project venv's Python (rclpy, torch, the emulators' dependencies).
pub fn venv_python() -> PathBuf {
    std::env::var_os("VIRTUAL_ENV").map(|v| PathBuf::from(v).join("bin/python")).unwrap_or_else(|| "python3".into())
}

/// The emulated OpenAI-compatible VLM endpoint (rewards' device emulator)
/// on 127.0.0.1, stopped when dropped.
pub struct VlmEmulator {
    child: Child,
    pub port: u16,
}

impl VlmEmulator {
    pub fn start() -> VlmEmulator {
        let mut child = Command::new(venv_python())
            .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../rewards/tests/python/vlm_endpoint_emulator.py"))
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the VLM endpoint emulator");
        let mut port = String::new();
        std::io::BufReader::new(child.stdout.take().expect("piped")).read_line(&mut port).expect("the emulator prints its port");
        VlmEmulator { port: port.trim().parse().expect("a port number"), child }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1/chat/completions", self.port)
    }
}

impl Drop for VlmEmulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Three solid 40x30 PNG images in `dir` — red, green, blue (RGB) — as an
/// image sequence a launch file's camera can replay; returns its pattern.
pub fn write_colour_sequence(dir: &std::path::Path) -> String {
    for (i, rgb) in [[255u8, 0, 0], [0, 255, 0], [0, 0, 255]].iter().enumerate() {
        let pixels: Vec<u8> = rgb.iter().copied().cycle().take(40 * 30 * 3).collect();
        std::fs::write(dir.join(format!("{i:04}.png")), rewards::encode::png_rgb(40, 30, &pixels)).unwrap();
    }
    dir.join("%04d.png").display().to_string()
}
