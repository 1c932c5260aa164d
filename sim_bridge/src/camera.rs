//! Cameras of the simulated robot, rendered offscreen by MuJoCo through EGL
//! (on a GPU when there is one, else Mesa's software renderer): the Panda
//! scene's `front` and wrist `handcam_rgb` cameras, the car twin's `front`,
//! at the policy's resolution, as tightly packed RGB8.

use std::sync::Arc;

use mujoco_rs::prelude::{MjData, MjModel, MjtObjBase};
use mujoco_rs::renderer::MjRenderer;
use mujoco_rs::wrappers::mj_visualization::MjvCamera;

use crate::arm::{PandaSim, RenderQuality};
use crate::assets::SimError;

/// A simulated scene cameras can render: its MuJoCo data, and its pose as
/// generalised positions (so a copy of the scene on another thread can be
/// put in the same pose and rendered there).
pub trait RenderScene {
    fn data(&self) -> &MjData<Arc<MjModel>>;
    fn data_mut(&mut self) -> &mut MjData<Arc<MjModel>>;

    /// Generalised positions of the whole scene, into `out` (no allocation
    /// once `out` has the capacity).
    fn copy_positions(&self, out: &mut Vec<f64>) {
        out.clear();
        out.extend_from_slice(self.data().qpos());
    }

    /// Puts the scene in the pose `positions` (from `copy_positions`)
    /// without stepping: for a second copy that only renders.
    fn show_positions(&mut self, positions: &[f64]) {
        let data = self.data_mut();
        let n = data.qpos().len().min(positions.len());
        data.qpos_mut()[..n].copy_from_slice(&positions[..n]);
        data.forward();
    }
}

impl RenderScene for PandaSim {
    fn data(&self) -> &MjData<Arc<MjModel>> {
        &self.data
    }
    fn data_mut(&mut self) -> &mut MjData<Arc<MjModel>> {
        &mut self.data
    }
}

pub struct SimCamera {
    name: String,
    renderer: MjRenderer,
    width: u32,
    height: u32,
}

impl SimCamera {
    /// The model's id of camera `name`, or an error listing the cameras it has.
    pub fn check_name(sim: &impl RenderScene, name: &str) -> Result<usize, SimError> {
        let model = sim.data().model();
        model.name_to_id(MjtObjBase::mjOBJ_CAMERA, name).ok_or_else(|| {
            let known: Vec<String> = (0..model.ffi().ncam as usize).filter_map(|i| model.id_to_name(MjtObjBase::mjOBJ_CAMERA, i).map(str::to_string)).collect();
            SimError::UnknownCamera { name: name.into(), known: known.join(", ") }
        })
    }

    /// A renderer for the model camera `name` at `width` x `height`.
    pub fn new(sim: &impl RenderScene, name: &str, width: u32, height: u32) -> Result<SimCamera, SimError> {
        let id = Self::check_name(sim, name)?;
        let model = sim.data().model();
        let renderer = MjRenderer::builder()
            .width(width)
            .height(height)
            .camera(MjvCamera::new_fixed(id))
            .rgb(true)
            .depth(false)
            .build(model)
            .map_err(|e| SimError::Render { camera: name.into(), reason: e.to_string() })?;
        Ok(SimCamera { name: name.into(), renderer, width, height })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Renders the scene as it is now; RGB8, row-major, top row first.
    pub fn render(&mut self, sim: &mut impl RenderScene) -> Result<&[u8], SimError> {
        let failed = |e: mujoco_rs::renderer::RendererError| SimError::Render { camera: self.name.clone(), reason: e.to_string() };
        self.renderer.sync_data(sim.data_mut()).map_err(failed)?;
        self.renderer.render().map_err(|e| SimError::Render { camera: self.name.clone(), reason: e.to_string() })?;
        self.renderer.rgb_flat().ok_or_else(|| SimError::Render { camera: self.name.clone(), reason: "no RGB buffer".into() })
    }
}

/// One render request: the scene's positions in, the frames out (both
/// buffers travel back to be reused).
struct RenderJob {
    positions: Vec<f64>,
    frames: Vec<u8>,
    result: Result<(), SimError>,
}

/// A scene's cameras (the Panda's, the car twin's) rendered on a thread
/// of their own, from scene poses sent to it. A GL context belongs to the thread that made it; with
/// the rig, the task that owns the cameras can itself move between threads
/// (an actor thread, a learner's loop).
pub struct CameraRig {
    jobs: Option<std::sync::mpsc::Sender<RenderJob>>,
    done: std::sync::mpsc::Receiver<RenderJob>,
    thread: Option<std::thread::JoinHandle<()>>,
    spare: Option<RenderJob>,
    layout: rrl_types::FrameLayout,
}

impl CameraRig {
    /// Starts the render thread with a copy of the scene at `quality` and
    /// the cameras `names` at `side` x `side`; fails (naming the camera)
    /// if any cannot be made.
    pub fn start(names: &[String], side: u32, quality: RenderQuality) -> Result<CameraRig, SimError> {
        Self::start_with(names, side, move || PandaSim::load_with(quality))
    }

    /// The rig for the scene `load` makes (its copy on the render thread).
    pub fn start_with<S: RenderScene + 'static>(names: &[String], side: u32, load: impl FnOnce() -> Result<S, SimError> + Send + 'static) -> Result<CameraRig, SimError> {
        let (jobs, job_queue) = std::sync::mpsc::channel::<RenderJob>();
        let (done_sender, done) = std::sync::mpsc::channel::<RenderJob>();
        let layout = rrl_types::FrameLayout { cameras: names.len(), height: side as usize, width: side as usize };
        let names = names.to_vec();
        let thread = std::thread::Builder::new()
            .name("sim-cameras".into())
            .spawn(move || {
                let made = load().and_then(|sim| {
                    let cameras = names.iter().map(|name| SimCamera::new(&sim, name, side, side)).collect::<Result<Vec<_>, _>>()?;
                    Ok((sim, cameras))
                });
                let (mut sim, mut cameras) = match made {
                    Ok(made) => made,
                    Err(error) => {
                        let _ = done_sender.send(RenderJob { positions: Vec::new(), frames: Vec::new(), result: Err(error) });
                        return;
                    }
                };
                let _ = done_sender.send(RenderJob { positions: Vec::new(), frames: Vec::new(), result: Ok(()) });
                while let Ok(mut job) = job_queue.recv() {
                    sim.show_positions(&job.positions);
                    job.frames.clear();
                    job.result = cameras.iter_mut().try_for_each(|camera| {
                        job.frames.extend_from_slice(camera.render(&mut sim)?);
                        Ok(())
                    });
                    if done_sender.send(job).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| SimError::Render { camera: "(render thread)".into(), reason: e.to_string() })?;
        let started = done.recv().map_err(|_| SimError::Render { camera: "(render thread)".into(), reason: "the render thread ended at start-up".into() })?;
        started.result?;
        let spare = RenderJob { positions: Vec::new(), frames: Vec::with_capacity(layout.bytes()), result: Ok(()) };
        Ok(CameraRig { jobs: Some(jobs), done, thread: Some(thread), spare: Some(spare), layout })
    }

    /// How one set of frames (all cameras, one after another) is laid out.
    pub fn layout(&self) -> rrl_types::FrameLayout {
        self.layout
    }

    /// Renders every camera for the scene at `sim`'s current pose into
    /// `out` (cameras one after another, RGB8 rows top first).
    pub fn render(&mut self, sim: &impl RenderScene, out: &mut [u8]) -> Result<(), SimError> {
        let lost = || SimError::Render { camera: "(render thread)".into(), reason: "the render thread has ended".into() };
        let mut job = self.spare.take().ok_or_else(lost)?;
        sim.copy_positions(&mut job.positions);
        self.jobs.as_ref().ok_or_else(lost)?.send(job).map_err(|_| lost())?;
        let mut job = self.done.recv().map_err(|_| lost())?;
        let result = std::mem::replace(&mut job.result, Ok(()));
        if result.is_ok() {
            out.copy_from_slice(&job.frames);
        }
        self.spare = Some(job);
        result
    }
}

impl Drop for CameraRig {
    fn drop(&mut self) {
        // Closing the queue ends the thread's loop.
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_abs_difference(a: &[u8], b: &[u8]) -> f64 {
        a.iter().zip(b).map(|(x, y)| (f64::from(*x) - f64::from(*y)).abs()).sum::<f64>() / a.len() as f64
    }

    #[test]
    fn the_front_camera_sees_the_cube_move_and_the_wrist_camera_differs() {
        let mut sim = PandaSim::load().unwrap();
        sim.place_block(0.35, -0.1);
        let mut front = SimCamera::new(&sim, "front", 128, 128).unwrap();
        let first = front.render(&mut sim).unwrap().to_vec();
        assert_eq!(first.len(), 128 * 128 * 3);
        let spread = first.iter().map(|&v| f64::from(v)).fold((255.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
        assert!(spread.1 - spread.0 > 50.0, "a real image has contrast: {spread:?}");
        let again = front.render(&mut sim).unwrap().to_vec();
        assert_eq!(first, again, "rendering the same state twice gives the same image");
        sim.place_block(0.45, 0.12);
        let moved = front.render(&mut sim).unwrap().to_vec();
        // The cube (a few dozen pixels at 128x128) leaves one place and shows
        // up at another; shading elsewhere changes only slightly.
        let changed = first.iter().zip(&moved).filter(|(a, b)| (i32::from(**a) - i32::from(**b)).abs() > 40).count();
        assert!(changed > 30 && changed < 3000, "moving the cube changes a small part of the image strongly: {changed} bytes");
        let mut wrist = SimCamera::new(&sim, "handcam_rgb", 128, 128).unwrap();
        let hand = wrist.render(&mut sim).unwrap().to_vec();
        assert!(mean_abs_difference(&hand, &moved) > 5.0, "the wrist camera has its own view");
    }

    #[test]
    fn an_unknown_camera_is_refused_with_the_known_ones() {
        let sim = PandaSim::load().unwrap();
        let err = SimCamera::new(&sim, "top", 64, 64).err().unwrap().to_string();
        assert!(err.contains("`top`") && err.contains("front") && err.contains("handcam_rgb"), "{err}");
    }
}
