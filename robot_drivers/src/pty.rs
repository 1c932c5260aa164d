//! Linked pseudo-terminal pairs from `socat`, the wire between a driver and a
//! device emulator in tests and benchmarks.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum PtyError {
    #[error("cannot start socat (install it: apt-get install socat): {0}")]
    Spawn(std::io::Error),
    #[error("socat did not create {0} within 5 s")]
    NotReady(PathBuf),
}

/// Two pseudo-terminals joined back to back; bytes written to one are read
/// from the other. The pair lives as long as this value.
pub struct PtyPair {
    socat: Child,
    dir: PathBuf,
    a: String,
    b: String,
}

impl PtyPair {
    pub fn spawn() -> Result<PtyPair, PtyError> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let unique = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("rrl-pty-{}-{unique}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(PtyError::Spawn)?;
        let a = dir.join("a");
        let b = dir.join("b");
        let socat = Command::new("socat")
            .arg(format!("pty,raw,echo=0,link={}", a.display()))
            .arg(format!("pty,raw,echo=0,link={}", b.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(PtyError::Spawn)?;
        let mut pair = PtyPair { socat, dir, a: a.display().to_string(), b: b.display().to_string() };
        let deadline = Instant::now() + Duration::from_secs(5);
        for link in [&a, &b] {
            while !link.exists() {
                if Instant::now() > deadline {
                    let _ = pair.socat.kill();
                    return Err(PtyError::NotReady(link.clone()));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        Ok(pair)
    }

    pub fn a(&self) -> &str {
        &self.a
    }

    pub fn b(&self) -> &str {
        &self.b
    }
}

impl Drop for PtyPair {
    fn drop(&mut self) {
        let _ = self.socat.kill();
        let _ = self.socat.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
