//! Cameras through OpenCV: devices, video files and image sequences, with
//! frames brought to the policy's resolution and grabbed on their own
//! thread so that only the newest frame is ever handed on.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crossbeam::queue::ArrayQueue;
use opencv::core::{Mat, Size};
use opencv::prelude::*;
use opencv::{imgproc, videoio};
use rrl_types::config::{CameraConfig, CameraSource};

use crate::pacing::Pacer;
use crate::worker::{stopping, Worker};
use rrl_types::Timestamp;

#[derive(Debug, thiserror::Error)]
pub enum CameraError {
    #[error("camera `{camera}`: cannot open {source_desc}")]
    Open { camera: String, source_desc: String },
    #[error("camera `{camera}`: source {source_desc} is not an OpenCV source (it is served by {served_by})")]
    NotOpenCv { camera: String, source_desc: String, served_by: &'static str },
    #[error("camera `{camera}`: OpenCV error: {source}")]
    OpenCv { camera: String, source: opencv::Error },
    #[error("camera `{camera}`: crop x {x}, y {y}, {width}x{height} reaches outside its {frame_width}x{frame_height} frames")]
    CropOutside { camera: String, x: u32, y: u32, width: u32, height: u32, frame_width: i32, frame_height: i32 },
}

/// An opened OpenCV capture that yields frames at a fixed output size.
pub struct OpenCvCamera {
    name: String,
    capture: videoio::VideoCapture,
    out_size: Size,
    /// The region of interest cut out first, if any.
    crop: Option<rrl_types::config::CameraCrop>,
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
        Ok(OpenCvCamera { name: name.to_string(), capture, out_size: Size::new(width as i32, height as i32), crop: None, raw: Mat::default() })
    }

    /// Cuts `crop` out of every frame before bringing it to the output size.
    pub fn with_crop(mut self, crop: Option<rrl_types::config::CameraCrop>) -> OpenCvCamera {
        self.crop = crop;
        self
    }

    /// The next frame as BGR at the output size; `None` at the end of a file.
    pub fn read(&mut self, out: &mut Mat) -> Result<Option<()>, CameraError> {
        let cv = |source| CameraError::OpenCv { camera: self.name.clone(), source };
        if !self.capture.read(&mut self.raw).map_err(cv)? || self.raw.empty() {
            return Ok(None);
        }
        let full = self.raw.size().map_err(cv)?;
        let roi = match self.crop {
            None => opencv::core::Rect::new(0, 0, full.width, full.height),
            Some(c) if i64::from(c.x) + i64::from(c.width) <= i64::from(full.width) && i64::from(c.y) + i64::from(c.height) <= i64::from(full.height) => {
                opencv::core::Rect::new(c.x as i32, c.y as i32, c.width as i32, c.height as i32)
            }
            Some(c) => return Err(CameraError::CropOutside { camera: self.name.clone(), x: c.x, y: c.y, width: c.width, height: c.height, frame_width: full.width, frame_height: full.height }),
        };
        let region = Mat::roi(&self.raw, roi).map_err(cv)?;
        if roi.size() == self.out_size {
            region.copy_to(out).map_err(cv)?;
        } else {
            // Centre-crop to the policy's aspect ratio first, so nothing is stretched.
            let centred = centre_crop(roi.size(), self.out_size);
            let centred = Mat::roi(&region, centred).map_err(cv)?;
            imgproc::resize(&centred, out, self.out_size, 0.0, 0.0, imgproc::INTER_AREA).map_err(cv)?;
        }
        Ok(Some(()))
    }
}

/// The largest centred rectangle of `from` with the aspect ratio of `to`.
fn centre_crop(from: Size, to: Size) -> opencv::core::Rect {
    let (w, h, tw, th) = (i64::from(from.width), i64::from(from.height), i64::from(to.width.max(1)), i64::from(to.height.max(1)));
    if w * th > h * tw {
        // Too wide: keep the full height.
        let width = (h * tw / th).max(1);
        opencv::core::Rect::new(((w - width) / 2) as i32, 0, width as i32, h as i32)
    } else {
        let height = (w * th / tw).max(1);
        opencv::core::Rect::new(0, ((h - height) / 2) as i32, w as i32, height as i32)
    }
}

/// One camera frame: tightly packed RGB at the policy's resolution, with
/// when it was captured and its number in the camera's stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StampedFrame {
    pub stamp: Timestamp,
    pub sequence: u64,
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

/// The newest frame of a camera, handed from a producer thread to a
/// consumer without locks: a one-place queue where a new frame displaces
/// the unread one (newest wins, nothing queues up behind a slow consumer).
#[derive(Clone)]
pub struct NewestFrame {
    slot: Arc<ArrayQueue<StampedFrame>>,
    /// Set once when the producer stops on an error.
    failure: Arc<OnceLock<String>>,
}

impl Default for NewestFrame {
    fn default() -> Self {
        NewestFrame { slot: Arc::new(ArrayQueue::new(1)), failure: Arc::new(OnceLock::new()) }
    }
}

impl NewestFrame {
    pub fn offer(&self, frame: StampedFrame) {
        let _ = self.slot.force_push(frame);
    }
    /// The newest frame not taken before, if any arrived since.
    pub fn take(&self) -> Option<StampedFrame> {
        self.slot.pop()
    }
    /// Why the producer stopped, once it has.
    pub fn failure(&self) -> Option<&str> {
        self.failure.get().map(String::as_str)
    }
    /// Records why the producer stopped (the first reason wins).
    pub fn fail(&self, why: String) {
        let _ = self.failure.set(why);
    }
}

/// An OpenCV camera read on its own thread, keeping only the newest frame
/// with its capture time. Devices pace themselves; video files and image
/// sequences are read at the configured fps and start over at their end,
/// so a recording can stand in for a live camera. A device that stops
/// delivering (unplugged) is reopened every half second until it returns;
/// consumers see it as frames that stop getting newer.
pub struct CameraGrabber {
    newest: NewestFrame,
    _worker: Worker,
}

impl CameraGrabber {
    /// Opens the camera (so a wrong source fails here, at start-up) and
    /// starts grabbing. `on_frame` runs on the grabber thread for every
    /// frame before it becomes the newest (e.g. to publish it).
    pub fn start(config: &CameraConfig, mut on_frame: impl FnMut(&StampedFrame) -> Result<(), String> + Send + 'static) -> Result<CameraGrabber, CameraError> {
        let mut camera = OpenCvCamera::open(&config.name, &config.source, config.width, config.height)?.with_crop(config.crop);
        let newest = NewestFrame::default();
        let (thread_newest, config) = (newest.clone(), config.clone());
        let live = matches!(config.source, CameraSource::Device(_));
        let period = Duration::from_secs_f64(1.0 / config.fps.max(0.1));
        let name = format!("camera-{}", config.name);
        let worker = Worker::spawn(&name, move |stop| {
                let mut bgr = Mat::default();
                let mut sequence = 0u64;
                let (mut pacer, mut first) = (Pacer::new(period, rrl_types::MonotonicClock), true);
                while !stopping(stop) {
                    // Files would be read as fast as the disk allows: pace them (the first frame at once).
                    if !live && !std::mem::replace(&mut first, false) {
                        pacer.wait();
                    }
                    let got = camera.read(&mut bgr);
                    let stamp = rrl_types::Clock::now(&rrl_types::SystemClock);
                    match got {
                        Ok(Some(())) => {}
                        // A crop that does not fit the frames will not fit them later either.
                        Err(e @ CameraError::CropOutside { .. }) => {
                            thread_newest.fail(e.to_string());
                            return;
                        }
                        Ok(None) | Err(_) => {
                            if !live && sequence == 0 {
                                thread_newest.fail(format!("camera `{}`: {:?} holds no readable frame", config.name, config.source));
                                return;
                            }
                            if live {
                                tracing::warn!(camera = %config.name, "no frame from the device; reopening");
                            }
                            // A source that stopped (unplugged, files gone) is retried at a calm pace.
                            std::thread::sleep(if live { Duration::from_millis(500) } else { period });
                            // Start the file over, or reconnect the device.
                            if let Ok(reopened) = OpenCvCamera::open(&config.name, &config.source, config.width, config.height) {
                                camera = reopened.with_crop(config.crop);
                            }
                            continue;
                        }
                    }
                    let frame = match bgr_to_rgb_bytes(&bgr) {
                        Ok((width, height, rgb)) => StampedFrame { stamp, sequence, width, height, rgb },
                        Err(e) => {
                            thread_newest.fail(format!("camera `{}`: OpenCV error: {e}", config.name));
                            return;
                        }
                    };
                    sequence += 1;
                    if let Err(why) = on_frame(&frame) {
                        thread_newest.fail(format!("camera `{}`: {why}", config.name));
                        return;
                    }
                    thread_newest.offer(frame);
                }
            })
            .map_err(|e| CameraError::Open { camera: "grabber thread".into(), source_desc: e.to_string() })?;
        Ok(CameraGrabber { newest, _worker: worker })
    }

    /// Where the newest frame is found.
    pub fn newest(&self) -> &NewestFrame {
        &self.newest
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
    use std::time::Instant;
    use std::sync::atomic::Ordering;
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

    /// An image sequence of three colours, grabbed at 40 fps: the grabber
    /// hands on frames in order with growing stamps, starts the sequence
    /// over at its end, and a consumer that looks rarely gets the newest
    /// frame, not a backlog.
    #[test]
    fn the_grabber_keeps_the_newest_frame_and_replays_a_sequence_in_a_loop() {
        let dir = tempfile::tempdir().unwrap();
        let colours = [(255.0, 0.0, 0.0), (0.0, 255.0, 0.0), (0.0, 0.0, 255.0)];
        for (i, &(b, g, r)) in colours.iter().enumerate() {
            let frame = Mat::new_rows_cols_with_default(24, 32, CV_8UC3, Scalar::new(b, g, r, 0.0)).unwrap();
            let path = dir.path().join(format!("{i:04}.png"));
            assert!(opencv::imgcodecs::imwrite(path.to_str().unwrap(), &frame, &opencv::core::Vector::new()).unwrap());
        }
        let pattern = dir.path().join("%04d.png").to_str().unwrap().to_string();
        let config: CameraConfig = ron::from_str(&format!("(name: \"seq\", source: ImageSequence(\"{pattern}\"), width: 16, height: 12, fps: 40.0)")).unwrap();
        let published = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = published.clone();
        let grabber = CameraGrabber::start(&config, move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
        .unwrap();
        let mut seen: Vec<StampedFrame> = Vec::new();
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(600) {
            if let Some(frame) = grabber.newest().take() {
                seen.push(frame);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(grabber.newest().failure().is_none(), "{:?}", grabber.newest().failure());
        assert!(seen.len() >= 12, "{} frames in 0.6 s at 40 fps", seen.len());
        for pair in seen.windows(2) {
            assert!(pair[1].sequence > pair[0].sequence && pair[1].stamp > pair[0].stamp);
        }
        let first_blue = seen.iter().position(|f| f.rgb[..3] == [0, 0, 255]).expect("the first image (blue) comes round");
        for (k, frame) in seen[first_blue..].iter().enumerate() {
            assert_eq!((frame.width, frame.height, frame.rgb.len()), (16, 12, 16 * 12 * 3));
            let step = frame.sequence - seen[first_blue].sequence;
            let want = colours[step as usize % 3];
            assert_eq!(frame.rgb[..3], [want.2 as u8, want.1 as u8, want.0 as u8], "frame {k} (sequence {})", frame.sequence);
        }
        assert!(seen.last().unwrap().sequence >= 3, "the sequence of three must have started over");
        // A slow consumer: the frames it missed are gone, the one it gets is the newest.
        std::thread::sleep(Duration::from_millis(200));
        let late = grabber.newest().take().unwrap();
        assert!(late.sequence >= seen.last().unwrap().sequence + 5, "a backlog was handed on: {} after {}", late.sequence, seen.last().unwrap().sequence);
        assert!(published.load(Ordering::Relaxed) > late.sequence, "every frame passes through on_frame");
    }

    /// A 64x48 picture with 8-pixel red bands left and right read at
    /// 32x32: the centre 48x48 is kept, so no red reaches the frame.
    #[test]
    fn frames_of_another_aspect_ratio_are_centre_cropped_not_stretched() {
        let dir = tempfile::tempdir().unwrap();
        let mut picture = Mat::new_rows_cols_with_default(48, 64, CV_8UC3, Scalar::new(255.0, 0.0, 0.0, 0.0)).unwrap();
        for band in [0, 56] {
            let mut roi = Mat::roi_mut(&mut picture, opencv::core::Rect::new(band, 0, 8, 48)).unwrap();
            roi.set_to(&Scalar::new(0.0, 0.0, 255.0, 0.0), &opencv::core::no_array()).unwrap();
        }
        let path = dir.path().join("0000.png");
        assert!(opencv::imgcodecs::imwrite(path.to_str().unwrap(), &picture, &opencv::core::Vector::new()).unwrap());
        let source = CameraSource::ImageSequence(dir.path().join("%04d.png").to_str().unwrap().to_string());
        let mut camera = OpenCvCamera::open("wide", &source, 32, 32).unwrap();
        let mut frame = Mat::default();
        camera.read(&mut frame).unwrap().unwrap();
        assert_eq!(frame.size().unwrap(), Size::new(32, 32));
        let (_, _, rgb) = bgr_to_rgb_bytes(&frame).unwrap();
        assert!(rgb.chunks(3).all(|p| p[0] < 10 && p[2] > 245), "a red band was stretched in instead of cropped");
        assert_eq!(centre_crop(Size::new(48, 64), Size::new(32, 32)), opencv::core::Rect::new(0, 8, 48, 48));
    }

    /// A crop keeps only its region: a 64x48 picture, blue but for a green
    /// 16x16 square at (40, 8), cropped to that square reads all green at
    /// 8x8; a crop reaching past the frame is refused naming both sizes.
    #[test]
    fn a_crop_keeps_its_region_only_and_one_outside_the_frame_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut picture = Mat::new_rows_cols_with_default(48, 64, CV_8UC3, Scalar::new(255.0, 0.0, 0.0, 0.0)).unwrap();
        let mut square = Mat::roi_mut(&mut picture, opencv::core::Rect::new(40, 8, 16, 16)).unwrap();
        square.set_to(&Scalar::new(0.0, 255.0, 0.0, 0.0), &opencv::core::no_array()).unwrap();
        let path = dir.path().join("0000.png");
        assert!(opencv::imgcodecs::imwrite(path.to_str().unwrap(), &picture, &opencv::core::Vector::new()).unwrap());
        let source = CameraSource::ImageSequence(dir.path().join("%04d.png").to_str().unwrap().to_string());
        let crop = |x, y, width, height| Some(rrl_types::config::CameraCrop { x, y, width, height });
        let mut camera = OpenCvCamera::open("wrist", &source, 8, 8).unwrap().with_crop(crop(40, 8, 16, 16));
        let mut frame = Mat::default();
        camera.read(&mut frame).unwrap().unwrap();
        let (width, height, rgb) = bgr_to_rgb_bytes(&frame).unwrap();
        assert_eq!((width, height), (8, 8));
        assert!(rgb.chunks(3).all(|p| p == [0, 255, 0]), "the crop let the blue around the square in");
        let mut outside = OpenCvCamera::open("wrist", &source, 8, 8).unwrap().with_crop(crop(56, 8, 16, 16));
        let err = outside.read(&mut frame).unwrap_err().to_string();
        assert!(err.contains("crop x 56, y 8, 16x16") && err.contains("64x48"), "{err}");
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
