//! What the policy sees of the cameras: which cameras a simulated robot's
//! policy observes (`robot: Sim((observe_cameras: [..]))`; a real arm's
//! task names its own in `task.observe`), and how the learner encodes
//! frames (`learner.pixels`).

use serde::{Deserialize, Serialize};

use super::{CameraConfig, CameraSource, Checker};

/// How frames become the features actor and critics see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PixelEncoderConfig {
    /// Default: `Drq`.
    pub encoder: PixelEncoder,
    /// Features the encoder hands actor and critics. Default: 50 (DrQ-v2, SERL).
    pub features: u32,
    /// Channels of the DrQ convolutions. Default: 32 (DrQ-v2).
    pub filters: u32,
    /// Random shift each way, in pixels; 0 turns the augmentation off.
    /// Default: `None`, DrQ's 4 at 84x84 scaled to the frame size.
    pub shift_pixels: Option<u32>,
}

impl Default for PixelEncoderConfig {
    fn default() -> Self {
        PixelEncoderConfig { encoder: PixelEncoder::Drq, features: 50, filters: 32, shift_pixels: None }
    }
}

impl PixelEncoderConfig {
    /// The random shift for frames of `side` pixels.
    pub fn shift_for(&self, side: usize) -> u32 {
        self.shift_pixels.unwrap_or_else(|| ((side as f64 * 4.0 / 84.0).round() as u32).max(1))
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub enum PixelEncoder {
    /// Four 3x3 convolutions, a linear layer, LayerNorm and tanh, trained
    /// by the critic (DrQ-v2's encoder).
    #[default]
    Drq,
    /// A pretrained trunk (path, relative to the launch file): TorchScript
    /// taking [B, 3·cameras, H, W] images in [0, 1] and giving [B, F]
    /// features, or `.safetensors` from `rrl trunk train`; it stays frozen
    /// and only a head (linear, LayerNorm, tanh) trains.
    Frozen(String),
}

/// Checks the cameras a policy sees (`(where, name)` pairs): known
/// cameras, all of one size that the encoder can take; a simulated robot's
/// are square cameras of its scene, a real arm's OpenCV cameras.
pub(super) fn check_observed_cameras(observed: &[(String, &String)], sim: bool, cameras: &[CameraConfig], pixels: &PixelEncoderConfig, c: &mut Checker) {
    if observed.len() > crate::MAX_POLICY_CAMERAS {
        c.fail(observed[crate::MAX_POLICY_CAMERAS].0.clone(), format!("{} cameras; a policy sees at most {}", observed.len(), crate::MAX_POLICY_CAMERAS), None);
    }
    let mut size = None;
    for (path, name) in observed {
        let path = path.clone();
        let Some(camera) = cameras.iter().find(|cam| &cam.name == *name) else {
            c.fail(path, format!("unknown camera `{name}`"), Some("name one of the `cameras` entries"));
            continue;
        };
        match (sim, &camera.source) {
            (true, CameraSource::Sim(_)) | (false, CameraSource::Device(_) | CameraSource::Path(_) | CameraSource::ImageSequence(_) | CameraSource::Topic(_)) => {}
            (true, _) => {
                c.fail(path, format!("camera `{name}` is not one of the simulated scene's"), Some("a simulated robot's policy sees Sim(..) cameras, e.g. Sim(\"front\") or Sim(\"handcam_rgb\")"));
                continue;
            }
            (false, _) => {
                c.fail(path, format!("camera `{name}` is a simulated scene's; a real robot's policy sees real cameras"), Some("a Device(..), a Path(..) (device path, stream URL or video), an ImageSequence(..) or a Topic(..)"));
                continue;
            }
        }
        if camera.width as usize > crate::MAX_POLICY_CAMERA_SIDE || camera.height as usize > crate::MAX_POLICY_CAMERA_SIDE {
            c.fail(path.clone(), format!("camera `{name}` is {}x{}; a policy's frames are at most {} pixels a side", camera.width, camera.height, crate::MAX_POLICY_CAMERA_SIDE), Some("policies see 64 to 256 pixels a side; crop and resize to that"));
        }
        if sim && camera.width != camera.height {
            c.fail(path.clone(), format!("camera `{name}` is {}x{}; the simulated cameras the policy sees are square", camera.width, camera.height), None);
        }
        match size {
            None => size = Some((camera.width, camera.height)),
            Some((w, h)) if (w, h) != (camera.width, camera.height) => {
                c.fail(path, format!("camera `{name}` is {}x{}, the first observed camera {w}x{h}; the policy's cameras share one size", camera.width, camera.height), None);
            }
            Some(_) => {}
        }
    }
    if let (Some((w, h)), PixelEncoder::Drq) = (size, &pixels.encoder) {
        if w.min(h) < 15 {
            c.fail(observed[0].0.clone(), format!("frames of {w}x{h} are too small for the DrQ encoder's convolutions"), Some("at least 15x15"));
        }
    }
}

impl PixelEncoderConfig {
    pub(super) fn check(&self, c: &mut Checker) {
        if self.features == 0 {
            c.fail("learner.pixels.features", "must be positive", Some("DrQ-v2 and SERL use 50"));
        }
        if self.filters == 0 {
            c.fail("learner.pixels.filters", "must be positive", Some("DrQ-v2 uses 32"));
        }
        if let PixelEncoder::Frozen(path) = &self.encoder {
            if path.trim().is_empty() {
                c.fail("learner.pixels.encoder", "names no trunk file (TorchScript, or safetensors from `rrl trunk train`)", None);
            }
        }
    }
}
