//! Durable episode recording: every transition of every episode (practice,
//! teleoperated demos, evaluation) goes to an append-only, checksummed log
//! file as it happens, and recorded runs export to MCAP for Foxglove and
//! the ros2 bag tools.
//!
//! Owns the on-disk episode format, its crash recovery (a torn last record
//! is reported and dropped, damage anywhere else is an error naming the
//! file and byte offset) and the MCAP writer with its CDR encoding.
//! Must never talk to hardware, ROS or libtorch, and never rewrites a
//! recorded episode in place: files are appended to, then only read.

pub mod atomic;
mod crc;
pub mod episode;
pub mod frames;
pub mod gate_ticks;
pub mod mcap;

pub use crc::crc32;
pub use episode::{Episode, EpisodeHeader, EpisodeOutcome, EpisodeStep, EpisodeWriter, RecordingError, StepFlags, is_storage_full, list_episodes, read_episode, retry_while_storage_full, sweep_stale_partials};
