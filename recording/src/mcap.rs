//! Export of recorded episodes to MCAP (profile `ros2`, CDR messages with
//! `ros2msg` schemas), the format Foxglove opens and `ros2 bag` reads with
//! its MCAP storage plugin.
//!
//! Topics: `/rrl/observation` and `/rrl/action` (`std_msgs/Float64MultiArray`),
//! `/rrl/reward` (`std_msgs/Float64`), `/rrl/intervention` (`std_msgs/Bool`),
//! and `/rrl/episode` (`std_msgs/String`, the episode's header and outcome as
//! JSON at its first and last step); for episodes recorded with camera
//! frames, `/rrl/camera_<i>/image/compressed` (`sensor_msgs/CompressedImage`,
//! the PNG as recorded) per camera, each step's observation frames beside
//! its `/rrl/observation`. The file is unchunked, with a summary
//! section (schemas, channels, statistics) and both CRCs filled in; its
//! messages are in log-time order, as readers of an unindexed file require.

use std::io::Write;
use std::path::Path;

use crate::crc::crc32_update;
use crate::episode::{Episode, RecordingError};

const MAGIC: &[u8; 8] = b"\x89MCAP0\r\n";
const OP_HEADER: u8 = 0x01;
const OP_FOOTER: u8 = 0x02;
const OP_SCHEMA: u8 = 0x03;
const OP_CHANNEL: u8 = 0x04;
const OP_MESSAGE: u8 = 0x05;
const OP_STATISTICS: u8 = 0x0B;
const OP_DATA_END: u8 = 0x0F;

const MULTI_ARRAY_SCHEMA: &str = "MultiArrayLayout layout\nfloat64[] data\n\
================================================================================\n\
MSG: std_msgs/MultiArrayLayout\nMultiArrayDimension[] dim\nuint32 data_offset\n\
================================================================================\n\
MSG: std_msgs/MultiArrayDimension\nstring label\nuint32 size\nuint32 stride\n";

const COMPRESSED_IMAGE_SCHEMA: &str = "std_msgs/Header header\nstring format\nuint8[] data\n\
================================================================================\n\
MSG: std_msgs/Header\nbuiltin_interfaces/Time stamp\nstring frame_id\n\
================================================================================\n\
MSG: builtin_interfaces/Time\nint32 sec\nuint32 nanosec\n";

struct Topic {
    name: String,
    schema: (&'static str, &'static str),
}

/// The topics of every export, then one per camera (channel ids in this order).
const FIXED_TOPICS: [(&str, (&str, &str)); 5] = [
    ("/rrl/observation", ("std_msgs/msg/Float64MultiArray", MULTI_ARRAY_SCHEMA)),
    ("/rrl/action", ("std_msgs/msg/Float64MultiArray", MULTI_ARRAY_SCHEMA)),
    ("/rrl/reward", ("std_msgs/msg/Float64", "float64 data\n")),
    ("/rrl/intervention", ("std_msgs/msg/Bool", "bool data\n")),
    ("/rrl/episode", ("std_msgs/msg/String", "string data\n")),
];

/// The channel of camera 0; camera i is `FIRST_CAMERA + i`.
const FIRST_CAMERA: usize = FIXED_TOPICS.len();

fn topics(cameras: usize) -> Vec<Topic> {
    let fixed = FIXED_TOPICS.iter().map(|(name, schema)| Topic { name: name.to_string(), schema: *schema });
    let images = (0..cameras).map(|i| Topic { name: format!("/rrl/camera_{i}/image/compressed"), schema: ("sensor_msgs/msg/CompressedImage", COMPRESSED_IMAGE_SCHEMA) });
    fixed.chain(images).collect()
}

/// CDR (XCDR1, little endian) encoders for the few messages exported.
/// Alignment counts from the end of the 4-byte encapsulation header.
pub mod cdr {
    const ENCAPSULATION_LE: [u8; 4] = [0x00, 0x01, 0x00, 0x00];

    fn align(out: &mut Vec<u8>, to: usize) {
        while (out.len() - 4) % to != 0 {
            out.push(0);
        }
    }

    /// `std_msgs/Float64MultiArray` with an empty layout.
    pub fn float64_multi_array(values: impl ExactSizeIterator<Item = f64>, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&ENCAPSULATION_LE);
        out.extend_from_slice(&0u32.to_le_bytes()); // layout.dim: empty sequence
        out.extend_from_slice(&0u32.to_le_bytes()); // layout.data_offset
        out.extend_from_slice(&(values.len() as u32).to_le_bytes());
        align(out, 8);
        for v in values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// `std_msgs/Float64`.
    pub fn float64(value: f64, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&ENCAPSULATION_LE);
        out.extend_from_slice(&value.to_le_bytes());
    }

    /// `std_msgs/Bool`.
    pub fn bool(value: bool, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&ENCAPSULATION_LE);
        out.push(u8::from(value));
    }

    /// `std_msgs/String` (length counts the terminating NUL).
    pub fn string(value: &str, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&ENCAPSULATION_LE);
        put_string(value, out);
    }

    fn put_string(value: &str, out: &mut Vec<u8>) {
        align(out, 4);
        out.extend_from_slice(&(value.len() as u32 + 1).to_le_bytes());
        out.extend_from_slice(value.as_bytes());
        out.push(0);
    }

    /// `sensor_msgs/CompressedImage` stamped `time_ns`, `format` e.g. "png".
    pub fn compressed_image(time_ns: u64, frame_id: &str, format: &str, data: &[u8], out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&ENCAPSULATION_LE);
        out.extend_from_slice(&((time_ns / 1_000_000_000) as i32).to_le_bytes());
        out.extend_from_slice(&((time_ns % 1_000_000_000) as u32).to_le_bytes());
        put_string(frame_id, out);
        put_string(format, out);
        align(out, 4);
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
    }
}

/// Writes records while keeping a CRC of the data section.
struct RecordWriter<W: Write> {
    out: W,
    crc: u32,
    written: u64,
    record: Vec<u8>,
}

impl<W: Write> RecordWriter<W> {
    fn raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.crc = crc32_update(self.crc, bytes);
        self.written += bytes.len() as u64;
        self.out.write_all(bytes)
    }

    fn record(&mut self, op: u8, build: impl FnOnce(&mut Vec<u8>)) -> std::io::Result<()> {
        let mut body = std::mem::take(&mut self.record);
        body.clear();
        build(&mut body);
        let mut head = [0u8; 9];
        head[0] = op;
        head[1..].copy_from_slice(&(body.len() as u64).to_le_bytes());
        self.raw(&head)?;
        self.raw(&body)?;
        self.record = body;
        Ok(())
    }
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn schema_record(out: &mut Vec<u8>, id: u16, name: &str, text: &str) {
    out.extend_from_slice(&id.to_le_bytes());
    put_string(out, name);
    put_string(out, "ros2msg");
    put_string(out, text);
}

fn channel_record(out: &mut Vec<u8>, id: u16, schema_id: u16, topic: &str) {
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&schema_id.to_le_bytes());
    put_string(out, topic);
    put_string(out, "cdr");
    out.extend_from_slice(&0u32.to_le_bytes()); // no metadata
}

/// Summary of an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    pub episodes: usize,
    pub messages: u64,
    pub bytes: u64,
    /// Messages per topic, in the order of the file's channels.
    pub per_topic: Vec<(String, &'static str, u64)>,
    /// Log times of the first and last message, ns since the epoch.
    pub first_time_ns: u64,
    pub last_time_ns: u64,
}

/// Writes `episodes` as a rosbag2 folder: `DIR/<name>_0.mcap` and the
/// `metadata.yaml` that `ros2 bag info/play` (and other rosbag2 readers)
/// open the folder by. Both files are written atomically, the metadata
/// last, so the folder never names a file that is not complete.
pub fn export_bag(episodes: &[Episode], dir: &Path) -> Result<ExportSummary, RecordingError> {
    let io = |source| RecordingError::Io { path: dir.to_path_buf(), source };
    std::fs::create_dir_all(dir).map_err(io)?;
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).filter(|n| !n.is_empty()).unwrap_or_else(|| "rrl".into());
    let file_name = format!("{name}_0.mcap");
    let summary = export(episodes, &dir.join(&file_name))?;
    let yaml = bag_metadata(&summary, &file_name);
    crate::atomic::write_file(&dir.join("metadata.yaml"), yaml.as_bytes())?;
    Ok(summary)
}

/// rosbag2's metadata (format version 5, as ROS 2 Humble writes it).
fn bag_metadata(summary: &ExportSummary, file_name: &str) -> String {
    use std::fmt::Write as _;
    let duration = summary.last_time_ns.saturating_sub(summary.first_time_ns);
    let mut y = String::new();
    let _ = writeln!(y, "rosbag2_bagfile_information:");
    let _ = writeln!(y, "  version: 5");
    let _ = writeln!(y, "  storage_identifier: mcap");
    let _ = writeln!(y, "  duration:\n    nanoseconds: {duration}");
    let _ = writeln!(y, "  starting_time:\n    nanoseconds_since_epoch: {}", summary.first_time_ns);
    let _ = writeln!(y, "  message_count: {}", summary.messages);
    let _ = writeln!(y, "  topics_with_message_count:");
    for (topic, kind, count) in &summary.per_topic {
        let _ = writeln!(y, "    - topic_metadata:\n        name: {topic}\n        type: {kind}\n        serialization_format: cdr\n        offered_qos_profiles: \"\"\n      message_count: {count}");
    }
    let _ = writeln!(y, "  compression_format: \"\"\n  compression_mode: \"\"");
    let _ = writeln!(y, "  relative_file_paths:\n    - {file_name}");
    let _ = writeln!(y, "  files:\n    - path: {file_name}\n      starting_time:\n        nanoseconds_since_epoch: {}\n      duration:\n        nanoseconds: {duration}\n      message_count: {}", summary.first_time_ns, summary.messages);
    y
}

/// Writes `episodes` to `path` as MCAP, atomically (temporary file, fsync,
/// rename): an interrupted export never leaves a half file under the name.
pub fn export(episodes: &[Episode], path: &Path) -> Result<ExportSummary, RecordingError> {
    let io = |source| RecordingError::Io { path: path.to_path_buf(), source };
    let tmp = path.with_extension("mcap.partial");
    let file = std::fs::File::create(&tmp).map_err(io)?;
    let mut w = RecordWriter { out: std::io::BufWriter::new(file), crc: 0, written: 0, record: Vec::new() };
    let summary = write_all(&mut w, episodes).map_err(io)?;
    let file = w.out.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(summary)
}

/// Each camera's PNG of a step's observation, at most `cameras` of them.
fn camera_pngs(encoded: Option<&[u8]>) -> Vec<&[u8]> {
    // Frames that do not decode are left out of the export, not fatal: the
    // episode's numbers are still worth seeing.
    encoded.and_then(|e| crate::frames::camera_pngs(e).ok()).map(|(_, pngs)| pngs).unwrap_or_default()
}

fn write_all<W: Write>(w: &mut RecordWriter<W>, episodes: &[Episode]) -> std::io::Result<ExportSummary> {
    let cameras = episodes.iter().filter_map(|e| e.reset_frames.as_deref()).filter_map(|f| crate::frames::layout(f).ok()).map(|l| l.cameras).max().unwrap_or(0);
    let topics = topics(cameras);
    w.raw(MAGIC)?;
    w.record(OP_HEADER, |b| {
        put_string(b, "ros2");
        put_string(b, "rrl recording");
    })?;
    // One schema per distinct message type, one channel per topic.
    let mut schemas: Vec<(&str, &str)> = Vec::new();
    let mut channel_schema = Vec::new();
    for topic in &topics {
        let id = match schemas.iter().position(|s| s.0 == topic.schema.0) {
            Some(i) => i,
            None => {
                schemas.push(topic.schema);
                schemas.len() - 1
            }
        };
        channel_schema.push(id as u16 + 1);
    }
    let write_definitions = |w: &mut RecordWriter<W>| -> std::io::Result<()> {
        for (i, (name, text)) in schemas.iter().enumerate() {
            w.record(OP_SCHEMA, |b| schema_record(b, i as u16 + 1, name, text))?;
        }
        for (i, topic) in topics.iter().enumerate() {
            w.record(OP_CHANNEL, |b| channel_record(b, i as u16, channel_schema[i], &topic.name))?;
        }
        Ok(())
    };
    write_definitions(w)?;
    let mut counts = vec![0u64; topics.len()];
    let (mut first_time, mut last_time) = (u64::MAX, 0u64);
    let mut message = Vec::new();
    let mut emit = |w: &mut RecordWriter<W>, channel: usize, time: u64, data: &[u8]| -> std::io::Result<()> {
        let sequence = counts[channel] as u32;
        counts[channel] += 1;
        first_time = first_time.min(time);
        last_time = last_time.max(time);
        w.record(OP_MESSAGE, |b| {
            b.extend_from_slice(&(channel as u16).to_le_bytes());
            b.extend_from_slice(&sequence.to_le_bytes());
            b.extend_from_slice(&time.to_le_bytes());
            b.extend_from_slice(&time.to_le_bytes());
            b.extend_from_slice(data);
        })
    };
    // An unindexed file must hold its messages in log-time order. Episodes
    // practised faster than real time (simulation in lockstep) carry
    // nominal step times, a policy period apart from their wall-clock
    // start, which overlap the next episode's: such an episode is moved
    // later, whole, to start just after the one before it ends.
    let mut in_time_order: Vec<&Episode> = episodes.iter().filter(|e| !e.steps.is_empty()).collect();
    in_time_order.sort_by_key(|e| e.steps[0].time_ns);
    let mut timeline_end = 0u64;
    for episode in in_time_order {
        let shift = if timeline_end == 0 { 0 } else { (timeline_end + 1).saturating_sub(episode.steps[0].time_ns) };
        let mut log_time = |step: &crate::episode::EpisodeStep| {
            timeline_end = (step.time_ns + shift).max(timeline_end);
            timeline_end
        };
        let first_time = log_time(&episode.steps[0]);
        let header_json = serde_json::to_string(&episode.header).expect("header serializes");
        cdr::string(&header_json, &mut message);
        emit(w, 4, first_time, &message)?;
        let mut observation_frames = episode.reset_frames.as_deref();
        for step in &episode.steps {
            let time = log_time(step);
            cdr::float64_multi_array(step.observation.iter().map(|&v| f64::from(v)), &mut message);
            emit(w, 0, time, &message)?;
            for (camera, png) in camera_pngs(observation_frames).into_iter().enumerate().take(cameras) {
                cdr::compressed_image(time, &format!("camera_{camera}"), "png", png, &mut message);
                emit(w, FIRST_CAMERA + camera, time, &message)?;
            }
            observation_frames = step.next_frames.as_deref();
            cdr::float64_multi_array(step.action.iter().map(|&v| f64::from(v)), &mut message);
            emit(w, 1, time, &message)?;
            cdr::float64(f64::from(step.reward), &mut message);
            emit(w, 2, time, &message)?;
            cdr::bool(step.flags.intervention, &mut message);
            emit(w, 3, time, &message)?;
        }
        if let Some(outcome) = &episode.outcome {
            cdr::string(&serde_json::to_string(outcome).expect("outcome serializes"), &mut message);
            emit(w, 4, timeline_end, &message)?;
        }
    }
    let data_crc = w.crc;
    w.record(OP_DATA_END, |b| b.extend_from_slice(&data_crc.to_le_bytes()))?;
    let summary_start = w.written;
    w.crc = 0; // the summary CRC covers the summary section and the footer's first fields
    write_definitions(w)?;
    let total: u64 = counts.iter().sum();
    if total == 0 {
        first_time = 0;
    }
    w.record(OP_STATISTICS, |b| {
        b.extend_from_slice(&total.to_le_bytes());
        b.extend_from_slice(&(schemas.len() as u16).to_le_bytes());
        b.extend_from_slice(&(topics.len() as u32).to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes()); // attachments
        b.extend_from_slice(&0u32.to_le_bytes()); // metadata
        b.extend_from_slice(&0u32.to_le_bytes()); // chunks
        b.extend_from_slice(&first_time.to_le_bytes());
        b.extend_from_slice(&last_time.to_le_bytes());
        b.extend_from_slice(&((topics.len() * 10) as u32).to_le_bytes());
        for (channel, count) in counts.iter().enumerate() {
            b.extend_from_slice(&(channel as u16).to_le_bytes());
            b.extend_from_slice(&count.to_le_bytes());
        }
    })?;
    // Footer: its CRC covers the summary and the footer up to the CRC field.
    let mut footer_head = Vec::with_capacity(25);
    footer_head.push(OP_FOOTER);
    footer_head.extend_from_slice(&20u64.to_le_bytes());
    footer_head.extend_from_slice(&summary_start.to_le_bytes());
    footer_head.extend_from_slice(&0u64.to_le_bytes()); // no summary offset section
    let summary_crc = crc32_update(w.crc, &footer_head);
    w.raw(&footer_head)?;
    w.raw(&summary_crc.to_le_bytes())?;
    w.raw(MAGIC)?;
    w.out.flush()?;
    let per_topic = topics.into_iter().zip(counts).map(|(topic, count)| (topic.name, topic.schema.0, count)).collect();
    Ok(ExportSummary { episodes: episodes.len(), messages: total, bytes: w.written, per_topic, first_time_ns: first_time, last_time_ns: last_time })
}

#[cfg(test)]
mod tests {
    use super::cdr;

    #[test]
    fn cdr_sequences_of_doubles_are_aligned_to_eight_after_the_header() {
        let mut out = Vec::new();
        cdr::float64_multi_array([1.5f64, -2.0].into_iter(), &mut out);
        // header 4, dim count 4, data_offset 4, length 4 -> 12 bytes of body, pad to 16
        assert_eq!(out.len(), 4 + 16 + 16);
        assert_eq!(&out[4 + 8..4 + 12], &2u32.to_le_bytes());
        assert_eq!(&out[4 + 16..4 + 24], &1.5f64.to_le_bytes());
        cdr::string("ab", &mut out);
        assert_eq!(out, [0, 1, 0, 0, 3, 0, 0, 0, b'a', b'b', 0]);
    }
}
