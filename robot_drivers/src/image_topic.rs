//! Cameras published by other nodes: a `sensor_msgs/Image` topic as a frame
//! source (sensor-data QoS), the newest frame kept with the stamp of its
//! header, brought to the policy's resolution. The other half, publishing a
//! frame as a `sensor_msgs/Image`, lives here too so that both ends agree
//! on the encoding.

use std::time::Duration;

use futures::{FutureExt, StreamExt};
use opencv::core::{Mat, Size, CV_8UC3};
use opencv::imgproc;
use opencv::prelude::*;
use rrl_types::Timestamp;

use crate::camera::{CameraError, NewestFrame, StampedFrame};
use crate::worker::{stopping, Worker};

pub fn ros_time(t: Timestamp) -> r2r::builtin_interfaces::msg::Time {
    r2r::builtin_interfaces::msg::Time { sec: (t.0 / 1_000_000_000) as i32, nanosec: (t.0 % 1_000_000_000) as u32 }
}

/// When a received message was stamped: its header time, or now when the
/// publisher left the stamp empty.
pub fn received_stamp(stamp: &r2r::builtin_interfaces::msg::Time) -> Timestamp {
    if stamp.sec == 0 && stamp.nanosec == 0 {
        rrl_types::Clock::now(&rrl_types::SystemClock)
    } else {
        Timestamp(stamp.sec as u64 * 1_000_000_000 + u64::from(stamp.nanosec))
    }
}

/// A frame as an rgb8 `sensor_msgs/Image` stamped with its capture time.
pub fn image_message(frame: &StampedFrame, frame_id: &str) -> r2r::sensor_msgs::msg::Image {
    r2r::sensor_msgs::msg::Image {
        header: r2r::std_msgs::msg::Header { stamp: ros_time(frame.stamp), frame_id: frame_id.to_string() },
        height: frame.height,
        width: frame.width,
        encoding: "rgb8".into(),
        is_bigendian: 0,
        step: 3 * frame.width,
        data: frame.rgb.clone(),
    }
}

/// An image message as tightly packed RGB with its header stamp: rgb8,
/// bgr8 and mono8 with any row padding; `None` for other encodings or a
/// message whose data is shorter than its header says.
pub fn rgb_of_image(msg: &r2r::sensor_msgs::msg::Image) -> Option<(Timestamp, Vec<u8>)> {
    let (w, h) = (msg.width as usize, msg.height as usize);
    let stamp = Timestamp(msg.header.stamp.sec.max(0) as u64 * 1_000_000_000 + u64::from(msg.header.stamp.nanosec));
    let channels = match msg.encoding.as_str() {
        "rgb8" | "bgr8" => 3,
        "mono8" => 1,
        _ => return None,
    };
    let step = msg.step as usize;
    if step < w * channels || msg.data.len() < step * h {
        return None;
    }
    let mut rgb = Vec::with_capacity(w * h * 3);
    for row in msg.data.chunks(step).take(h) {
        for px in row[..w * channels].chunks(channels) {
            match msg.encoding.as_str() {
                "rgb8" => rgb.extend_from_slice(px),
                "bgr8" => rgb.extend_from_slice(&[px[2], px[1], px[0]]),
                _ => rgb.extend_from_slice(&[px[0], px[0], px[0]]),
            }
        }
    }
    Some((stamp, rgb))
}

/// Packed RGB resized to `width` x `height` (area averaging), or as is when
/// it already has that size.
fn resized(rgb: Vec<u8>, from: (u32, u32), to: (u32, u32)) -> Result<Vec<u8>, opencv::Error> {
    if from == to {
        return Ok(rgb);
    }
    let flat = Mat::from_slice(&rgb)?;
    let image = flat.reshape(3, from.1 as i32)?;
    let mut out = Mat::new_rows_cols_with_default(to.1 as i32, to.0 as i32, CV_8UC3, opencv::core::Scalar::all(0.0))?;
    imgproc::resize(&image, &mut out, Size::new(to.0 as i32, to.1 as i32), 0.0, 0.0, imgproc::INTER_AREA)?;
    Ok(out.data_bytes()?.to_vec())
}

/// Subscribes to an image topic on its own node and thread; the newest
/// frame, at `width` x `height`, is in `newest()`. Messages in encodings it
/// does not read are counted in the log, not fatal: a camera driver
/// switching encoding should not stop the robot.
pub struct ImageTopicCamera {
    newest: NewestFrame,
    _worker: Worker,
}

impl ImageTopicCamera {
    pub fn subscribe(name: &str, namespace: &str, topic: &str, width: u32, height: u32) -> Result<ImageTopicCamera, CameraError> {
        let ros = |e: r2r::Error| CameraError::Open { camera: name.to_string(), source_desc: format!("topic {topic}: {e}") };
        let ctx = r2r::Context::create().map_err(ros)?;
        let mut node = r2r::Node::create(ctx, &format!("camera_{name}"), namespace).map_err(ros)?;
        let mut images = node.subscribe::<r2r::sensor_msgs::msg::Image>(topic, r2r::QosProfile::sensor_data()).map_err(ros)?;
        let newest = NewestFrame::default();
        let (thread_newest, camera, topic) = (newest.clone(), name.to_string(), topic.to_string());
        let worker = Worker::spawn(&format!("image-topic-{name}"), move |stop| {
                let (mut sequence, mut unreadable) = (0u64, 0u64);
                while !stopping(stop) {
                    node.spin_once(Duration::from_millis(5));
                    while let Some(Some(msg)) = images.next().now_or_never() {
                        let Some((_, rgb)) = rgb_of_image(&msg) else {
                            if unreadable == 0 {
                                tracing::warn!(%camera, %topic, encoding = %msg.encoding, "images must be rgb8, bgr8 or mono8 with a consistent step; skipping");
                            }
                            unreadable += 1;
                            continue;
                        };
                        // A driver that leaves the stamp empty: the frame counts from its arrival.
                        let stamp = received_stamp(&msg.header.stamp);
                        match resized(rgb, (msg.width, msg.height), (width, height)) {
                            Ok(rgb) => {
                                thread_newest.offer(StampedFrame { stamp, sequence, width, height, rgb });
                                sequence += 1;
                            }
                            Err(e) => {
                                thread_newest.fail(format!("camera `{camera}` on {topic}: resizing failed: {e}"));
                                return;
                            }
                        }
                    }
                }
            })
            .map_err(|e| CameraError::Open { camera: name.to_string(), source_desc: e.to_string() })?;
        Ok(ImageTopicCamera { newest, _worker: worker })
    }

    pub fn newest(&self) -> &NewestFrame {
        &self.newest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(encoding: &str, width: u32, height: u32, step: u32, data: Vec<u8>) -> r2r::sensor_msgs::msg::Image {
        r2r::sensor_msgs::msg::Image { encoding: encoding.into(), width, height, step, data, ..Default::default() }
    }

    #[test]
    fn bgr_and_mono_images_with_row_padding_become_packed_rgb() {
        // 2x2 bgr8 with two bytes of padding per row.
        let bgr = message("bgr8", 2, 2, 8, vec![1, 2, 3, 4, 5, 6, 99, 99, 7, 8, 9, 10, 11, 12, 99, 99]);
        assert_eq!(rgb_of_image(&bgr).unwrap().1, vec![3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10]);
        let mono = message("mono8", 2, 1, 2, vec![5, 9]);
        assert_eq!(rgb_of_image(&mono).unwrap().1, vec![5, 5, 5, 9, 9, 9]);
        assert!(rgb_of_image(&message("rgb8", 2, 2, 6, vec![0; 11])).is_none(), "short data must be refused");
        assert!(rgb_of_image(&message("16UC1", 1, 1, 2, vec![0; 2])).is_none(), "unread encodings are refused");
    }

    #[test]
    fn a_frame_round_trips_through_an_image_message_and_resizes_by_averaging() {
        let frame = StampedFrame { stamp: Timestamp(3_500_000_000), sequence: 0, width: 2, height: 2, rgb: vec![10, 20, 30, 10, 20, 30, 50, 60, 70, 50, 60, 70] };
        let msg = image_message(&frame, "front");
        let (stamp, rgb) = rgb_of_image(&msg).unwrap();
        assert_eq!((stamp, &rgb), (frame.stamp, &frame.rgb));
        assert_eq!(resized(rgb, (2, 2), (1, 1)).unwrap(), vec![30, 40, 50]);
    }
}
