//! Rendering a simulated scene's cameras (the Panda's, the car twin's) off
//! the thread that steps it (the control loop of `rrl sim`, the actor of
//! `rrl practice`).
//!
//! The stepping thread hands over a copy of the scene's positions (into
//! recycled buffers: no allocation, no lock, never waits; when the renderer
//! is busy the newest pose replaces the waiting one); a camera thread with
//! its own copy of the scene renders and hands each frame to a sink
//! (publish it, score it). Software rendering (a few frames per second on
//! a small VM) therefore never delays a control tick or a policy step.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crossbeam::queue::ArrayQueue;
use robot_drivers::worker::{stopping, Worker};
use rrl_types::Timestamp;
use crate::arm::PandaSim;
use crate::assets::SimError;
use crate::camera::{RenderScene, SimCamera};

/// Why a sink could not take a frame (it stops the camera thread).
pub type SinkError = Box<dyn std::error::Error + Send + Sync>;

/// A camera of the scene to render.
pub struct CameraSpec {
    /// The camera's name in the MJCF model.
    pub model_camera: String,
    pub width: u32,
    pub height: u32,
    /// At most this many frames per second of the stamps' time; infinite: every pose offered.
    pub fps: f64,
}

/// What happens to rendered frames, on the camera thread.
pub trait FrameSink: Send + 'static {
    /// A frame of camera `camera` (index into the specs) showing the pose stamped `stamp`.
    fn frame(&mut self, camera: usize, stamp: Timestamp, width: u32, height: u32, rgb: &[u8]) -> Result<(), SinkError>;
    /// Called while no pose waits (every few milliseconds).
    fn idle(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

pub struct SceneSnapshots {
    waiting: Arc<ArrayQueue<(Timestamp, Vec<f64>)>>,
    free: Arc<ArrayQueue<Vec<f64>>>,
    /// Set once by the camera thread when it stops on an error.
    failure: Arc<OnceLock<String>>,
    /// The camera thread; joined before its owner goes (publishing while
    /// the process tears ROS down is not safe).
    _worker: Worker,
}

impl SceneSnapshots {
    /// The Panda scene's cameras.
    pub fn start(cameras: Vec<CameraSpec>, sink: impl FrameSink) -> std::io::Result<SceneSnapshots> {
        Self::start_with(cameras, sink, PandaSim::load)
    }

    /// Cameras of the scene `load` makes (on the camera thread: its copy to render).
    pub fn start_with<S: RenderScene + 'static>(cameras: Vec<CameraSpec>, mut sink: impl FrameSink, load: impl FnOnce() -> Result<S, SimError> + Send + 'static) -> std::io::Result<SceneSnapshots> {
        let waiting = Arc::new(ArrayQueue::<(Timestamp, Vec<f64>)>::new(1));
        let free = Arc::new(ArrayQueue::<Vec<f64>>::new(3));
        for _ in 0..3 {
            let _ = free.push(Vec::with_capacity(64));
        }
        let failure = Arc::new(OnceLock::new());
        let (thread_waiting, thread_free, thread_failure) = (waiting.clone(), free.clone(), failure.clone());
        let worker = Worker::spawn("sim-cameras", move |stop| {
            let run = || -> Result<(), SinkError> {
                let mut scene = load()?;
                let mut renderers = Vec::new();
                for spec in &cameras {
                    renderers.push((SimCamera::new(&scene, &spec.model_camera, spec.width, spec.height)?, 1.0 / spec.fps, f64::NEG_INFINITY));
                }
                loop {
                    if stopping(stop) {
                        return Ok(());
                    }
                    let Some((stamp, positions)) = thread_waiting.pop() else {
                        sink.idle()?;
                        std::thread::sleep(Duration::from_millis(2));
                        continue;
                    };
                    scene.show_positions(&positions);
                    let _ = thread_free.push(positions);
                    for (camera, (renderer, every, last)) in renderers.iter_mut().enumerate() {
                        if stamp.as_secs_f64() - *last + 1e-9 < *every {
                            continue;
                        }
                        *last = stamp.as_secs_f64();
                        let (width, height) = renderer.size();
                        sink.frame(camera, stamp, width, height, renderer.render(&mut scene)?)?;
                    }
                }
            };
            if let Err(e) = run() {
                let _ = thread_failure.set(e.to_string());
            }
        })?;
        Ok(SceneSnapshots { waiting, free, failure, _worker: worker })
    }

    /// Hands the scene's current pose to the camera thread (stepping thread side).
    pub fn offer(&self, sim: &impl RenderScene, stamp: Timestamp) {
        let Some(mut buffer) = self.free.pop() else { return };
        sim.copy_positions(&mut buffer);
        if let Some((_, displaced)) = self.waiting.force_push((stamp, buffer)) {
            let _ = self.free.push(displaced);
        }
    }

    pub fn failure(&self) -> Option<String> {
        // A lock-free read: the stepping thread never waits on the camera thread.
        self.failure.get().map(|e| format!("sim cameras: {e}"))
    }
}
