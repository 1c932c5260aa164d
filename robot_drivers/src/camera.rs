//! Cameras through OpenCV: devices, video files and image sequences, with
//! frames brought to the policy's resolution.

use opencv::core::{Mat, Size};
use opencv::prelude::*;
use opencv::{imgproc, videoio};
use rrl_types::config::CameraSource;

#[derive(Debug, thiserror::Error)]
pub enum CameraError {
    #[error("camera `{camera}`: cannot open {source_desc}")]
    Open { camera: String, source_desc: String },
    #[error("camera `{camera}`: source {source_desc} is not an OpenCV source (it is served by {served_by})")]
    NotOpenCv { camera: String, source_desc: String, served_by: &'static str },
    #[error("camera `{camera}`: OpenCV error: {source}")]
    OpenCv { camera: String, source: opencv::Error },
}

/// An opened OpenCV capture that yields frames at a fixed output size.
pub struct OpenCvCamera {
    name: String,
    capture: videoio::VideoCapture,
    out_size: Size,
    raw: Mat,
}

impl OpenCvCamera {
    pub fn open(name: &str, source: &CameraSource, width: u32, height: u32) -> Result<OpenCvCamera, CameraError> {
        let cv = |source| CameraError::OpenCv { camera: name.to_string(), source };
        let capture = match source {
            CameraSource::Device(index) => videoio::VideoCapture::new(*index, videoio::CAP_ANY).map_err(cv)?,
            CameraSource::Path(path) | CameraSource::ImageSequence(path) => {
                videoio::VideoCapture::from_file(path, videoio::CAP_ANY).map_err(cv)?
            }
            CameraSource::Topic(topic) => {
                return Err(CameraError::NotOpenCv { camera: name.into(), source_desc: format!("topic {topic}"), served_by: "the ROS 2 image subscriber" })
            }
            CameraSource::Sim(cam) => {
                return Err(CameraError::NotOpenCv { camera: name.into(), source_desc: format!("sim camera {cam}"), served_by: "sim_bridge's renderer" })
            }
        };
        if !capture.is_opened().map_err(cv)? {
            return Err(CameraError::Open { camera: name.to_string(), source_desc: format!("{source:?}") });
        }
        Ok(OpenCvCamera { name: name.to_string(), capture, out_size: Size::new(width as i32, height as i32), raw: Mat::default() })
    }

    /// The next frame as BGR at the output size; `None` at the end of a file.
    pub fn read(&mut self, out: &mut Mat) -> Result<Option<()>, CameraError> {
        let cv = |source| CameraError::OpenCv { camera: self.name.clone(), source };
        if !self.capture.read(&mut self.raw).map_err(cv)? || self.raw.empty() {
            return Ok(None);
        }
        if self.raw.size().map_err(cv)? == self.out_size {
            self.raw.copy_to(out).map_err(cv)?;
        } else {
            imgproc::resize(&self.raw, out, self.out_size, 0.0, 0.0, imgproc::INTER_AREA).map_err(cv)?;
        }
        Ok(Some(()))
    }
}

/// A BGR frame as tightly packed RGB bytes (width, height, bytes).
pub fn bgr_to_rgb_bytes(bgr: &Mat) -> Result<(u32, u32, Vec<u8>), opencv::Error> {
    let mut rgb = Mat::default();
    imgproc::cvt_color(bgr, &mut rgb, imgproc::COLOR_BGR2RGB, 0)?;
    let size = rgb.size()?;
    let bytes = if rgb.is_continuous() { rgb.data_bytes()?.to_vec() } else { rgb.try_clone()?.data_bytes()?.to_vec() };
    Ok((size.width as u32, size.height as u32, bytes))
}

/// Reads an image file (PNG, JPEG, ...) resized to `width` x `height`, as RGB bytes.
pub fn read_image_rgb(path: &std::path::Path, width: u32, height: u32) -> Result<Vec<u8>, CameraError> {
    let name = path.display().to_string();
    let cv = |source| CameraError::OpenCv { camera: name.clone(), source };
    let raw = opencv::imgcodecs::imread(&name, opencv::imgcodecs::IMREAD_COLOR).map_err(cv)?;
    if raw.empty() {
        return Err(CameraError::Open { camera: name.clone(), source_desc: "an image file OpenCV can decode".into() });
    }
    let mut resized = Mat::default();
    imgproc::resize(&raw, &mut resized, Size::new(width as i32, height as i32), 0.0, 0.0, imgproc::INTER_AREA).map_err(cv)?;
    Ok(bgr_to_rgb_bytes(&resized).map_err(cv)?.2)
}

/// The OpenCV library version this binary runs with.
pub fn opencv_version() -> String {
    opencv::core::get_version_string().unwrap_or_else(|e| format!("unknown ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opencv::core::{Scalar, CV_8UC3};

    /// Writes an MJPG video whose frames have known colours, reads it back
    /// through the camera at a smaller size, and checks count and colours.
    #[test]
    fn a_written_video_reads_back_resized_with_its_colours() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("colours.avi");
        let fourcc = videoio::VideoWriter::fourcc('M', 'J', 'P', 'G').unwrap();
        let mut writer = videoio::VideoWriter::new(path.to_str().unwrap(), fourcc, 10.0, Size::new(64, 48), true).unwrap();
        assert!(writer.is_opened().unwrap());
        let colours = [(255.0, 0.0, 0.0), (0.0, 255.0, 0.0), (0.0, 0.0, 255.0), (200.0, 200.0, 200.0)];
        for &(b, g, r) in &colours {
            let frame = Mat::new_rows_cols_with_default(48, 64, CV_8UC3, Scalar::new(b, g, r, 0.0)).unwrap();
            writer.write(&frame).unwrap();
        }
        writer.release().unwrap();

        let source = CameraSource::Path(path.to_str().unwrap().to_string());
        let mut camera = OpenCvCamera::open("test", &source, 32, 24).unwrap();
        let mut frame = Mat::default();
        let mut seen = Vec::new();
        while camera.read(&mut frame).unwrap().is_some() {
            assert_eq!(frame.size().unwrap(), Size::new(32, 24));
            let mean = opencv::core::mean(&frame, &opencv::core::no_array()).unwrap();
            seen.push((mean[0], mean[1], mean[2]));
        }
        assert_eq!(seen.len(), colours.len());
        for (got, want) in seen.iter().zip(colours.iter()) {
            for (g, w) in [(got.0, want.0), (got.1, want.1), (got.2, want.2)] {
                assert!((g - w).abs() < 12.0, "colour {got:?} vs {want:?}");
            }
        }
    }

    #[test]
    fn a_missing_file_is_an_open_error_naming_the_camera() {
        let source = CameraSource::Path("/nonexistent/video.avi".into());
        match OpenCvCamera::open("front", &source, 32, 32) {
            Err(CameraError::Open { camera, .. }) => assert_eq!(camera, "front"),
            Err(other) => panic!("expected an Open error, got {other}"),
            Ok(_) => panic!("opening a missing file must fail"),
        }
    }
}
