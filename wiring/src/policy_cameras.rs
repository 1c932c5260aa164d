//! The cameras a real robot's policy sees (an arm's `task.observe: [..,
//! Camera(name)]`, a car's `observe_cameras`):
//! each grabbed on its own thread at the policy's resolution (an OpenCV
//! camera cropped and resized by its grabber, or a `sensor_msgs/Image`
//! topic another node publishes, resized as it arrives), the newest frame
//! of each taken for every observation. A frame belongs to its step: one captured before the
//! step's actions took effect is never shown. While a camera has no fresh
//! frame the task waits (the gate holds the robot, which gets no command),
//! says so once, and goes on by itself when frames come again.

use std::time::{Duration, Instant};

use robot_drivers::camera::{CameraGrabber, NewestFrame, StampedFrame};
use robot_drivers::image_topic::ImageTopicCamera;
use rrl_types::config::{CameraConfig, CameraSource};
use rrl_types::{Clock, FrameLayout, LiveStatus, SystemClock, Timestamp, Waiting};

/// Why the policy's cameras could not start or deliver.
#[derive(Debug, thiserror::Error)]
pub enum CameraError {
    /// The launch file names cameras this robot's policy cannot see.
    #[error("{0}")]
    Unfit(String),
    #[error("{0}")]
    Camera(String),
}

/// Where a camera's frames come from.
enum Grabber {
    OpenCv(CameraGrabber),
    Topic(ImageTopicCamera),
}

impl Grabber {
    fn newest(&self) -> &NewestFrame {
        match self {
            Grabber::OpenCv(g) => g.newest(),
            Grabber::Topic(t) => t.newest(),
        }
    }
}

struct PolicyCamera {
    name: String,
    grabber: Grabber,
    newest: Option<StampedFrame>,
}

pub(crate) struct PolicyCameras {
    cameras: Vec<PolicyCamera>,
    layout: FrameLayout,
    /// The current observation's frames, cameras one after another.
    frames: Vec<u8>,
    /// A camera whose newest frame is older than this has stalled.
    stall_after: Duration,
}

impl PolicyCameras {
    /// Starts the launch file's cameras `names` (OpenCV sources or image
    /// topics, in `namespace`, of one size; check-config made sure);
    /// `section` names the field that lists them, for messages.
    pub(crate) fn start(section: &str, names: &[String], cameras: &[CameraConfig], namespace: &str, stall_after: Duration) -> Result<Option<PolicyCameras>, CameraError> {
        if names.is_empty() {
            return Ok(None);
        }
        let mut started = Vec::new();
        let mut layout: Option<FrameLayout> = None;
        for name in names {
            let config = cameras.iter().find(|c| &c.name == name).ok_or_else(|| CameraError::Unfit(format!("{section}: no camera `{name}` in the cameras section")))?;
            if let CameraSource::Sim(_) = config.source {
                return Err(CameraError::Unfit(format!("{section}: camera `{name}`: a real robot's policy sees real cameras (OpenCV sources or image topics)")));
            }
            let size = FrameLayout { cameras: names.len(), height: config.height as usize, width: config.width as usize };
            if layout.is_some_and(|l| l != size) {
                return Err(CameraError::Unfit(format!("{section}: camera `{name}` is {}x{}; the policy's cameras share one size", config.width, config.height)));
            }
            layout = Some(size);
            let grabber = match &config.source {
                CameraSource::Topic(topic) => Grabber::Topic(ImageTopicCamera::subscribe(name, namespace, topic, config.width, config.height).map_err(|e| CameraError::Camera(e.to_string()))?),
                _ => Grabber::OpenCv(CameraGrabber::start(config, |_| Ok(())).map_err(|e| CameraError::Camera(e.to_string()))?),
            };
            started.push(PolicyCamera { name: name.clone(), grabber, newest: None });
        }
        let layout = layout.expect("at least one camera");
        Ok(Some(PolicyCameras { cameras: started, frames: vec![0; layout.bytes()], layout, stall_after }))
    }

    pub(crate) fn layout(&self) -> FrameLayout {
        self.layout
    }

    pub(crate) fn frames(&self) -> &[u8] {
        &self.frames
    }

    /// Takes every camera's newest frame captured at or after `since`,
    /// waiting while one has none that fresh (a stall past `stall_after`
    /// is logged once and shown to the operator). A camera that stopped
    /// for good is an error naming it.
    pub(crate) fn capture(&mut self, since: Timestamp, live: &LiveStatus) -> Result<(), CameraError> {
        let mut stalled: Option<Instant> = None;
        // Frames that keep arriving stamped before `since`: a clock that disagrees, not a stall.
        let mut arriving_old: Option<(String, u64)> = None;
        loop {
            let mut missing = None;
            for camera in &mut self.cameras {
                if let Some(frame) = camera.grabber.newest().take() {
                    if frame.stamp < since {
                        arriving_old = Some((camera.name.clone(), since.nanos_since(frame.stamp) / 1_000_000));
                    }
                    camera.newest = Some(frame);
                }
                if let Some(why) = camera.grabber.newest().failure() {
                    return Err(CameraError::Camera(why.to_string()));
                }
                if !camera.newest.as_ref().is_some_and(|f| f.stamp >= since) {
                    missing = Some(camera.name.as_str());
                }
            }
            let Some(missing) = missing else { break };
            let now = SystemClock.now();
            if stalled.is_none() && Duration::from_nanos(now.nanos_since(since)) > self.stall_after {
                match &arriving_old {
                    Some((camera, behind_ms)) => tracing::warn!(%camera, behind_ms, "frames keep arriving, stamped before the step they would show: the camera's clock (or its driver's stamps) is behind this machine's; practice is paused until they are current"),
                    None => tracing::warn!(camera = missing, "a camera the policy sees has stalled: practice is paused (the gate holds the robot) until it delivers frames again"),
                }
                live.wait_for(Waiting::PolicyCamera);
                stalled = Some(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if let Some(since) = stalled {
            tracing::warn!(paused_s = since.elapsed().as_secs_f64(), "the policy's cameras deliver again: practice resumes");
            live.came(Waiting::PolicyCamera);
        }
        let camera_bytes = self.layout.height * self.layout.width * 3;
        for (camera, out) in self.cameras.iter().zip(self.frames.chunks_exact_mut(camera_bytes)) {
            let frame = camera.newest.as_ref().expect("checked: every camera has a fresh frame");
            if frame.rgb.len() != camera_bytes {
                return Err(CameraError::Camera(format!("camera `{}` gave a {}x{} frame, the policy sees {}x{}", camera.name, frame.width, frame.height, self.layout.width, self.layout.height)));
            }
            out.copy_from_slice(&frame.rgb);
        }
        Ok(())
    }
}
