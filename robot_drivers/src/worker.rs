//! A background thread that lives exactly as long as its owner: dropping
//! the owner raises the thread's stop flag and joins it, so nothing the
//! thread holds (a ROS node, a serial port, a renderer) outlives the owner
//! or is torn down while it still runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

pub struct Worker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Runs `body` on a thread named `name`; `body` should return soon
    /// after the flag it is given turns true.
    pub fn spawn(name: &str, body: impl FnOnce(&AtomicBool) + Send + 'static) -> std::io::Result<Worker> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new().name(name.to_string()).spawn(move || body(&flag))?;
        Ok(Worker { stop, thread: Some(thread) })
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Whether a worker's stop flag is up.
pub fn stopping(flag: &AtomicBool) -> bool {
    flag.load(Ordering::Acquire)
}
