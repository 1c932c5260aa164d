//! The episode log: one file per episode, `episode_NNNNNN.rrlep`.
//!
//! Layout: the 8-byte magic, then records `[kind u8][length u32 LE]
//! [payload][crc32 u32 LE over kind, length and payload]`. Kinds: a JSON
//! header first, one binary step per transition, a JSON outcome last.
//! Episodes whose observations have camera frames add the first
//! observation's frames (encoded, `crate::frames`) after the header, and
//! each step then carries its next observation's frames in the same record
//! (`[step length u32 LE][step][frames]`), so a step and its frames are
//! written, and survive a crash, together. The safety gate's ticks of a
//! step go in a record of their own (`crate::gate_ticks`) as soon as the
//! step is taken, which can be before the step's record (a step waits for
//! its learned reward). Each
//! step is written with one `write` call as soon as it happens, so a crash
//! of the process loses at most the transition in flight; `sync_every_step`
//! also survives a power cut at the cost of an fsync per step (cheap at a
//! robot's 10 Hz, wasteful for a simulation running flat out).

use std::fs::{File, OpenOptions};
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rrl_types::GateTick;
use serde::{Deserialize, Serialize};

use crate::crc::{crc32, crc32_update};

const MAGIC: &[u8; 8] = b"RRLEPIS1";
const KIND_HEADER: u8 = 1;
const KIND_STEP: u8 = 2;
const KIND_OUTCOME: u8 = 3;
const KIND_RESET_FRAMES: u8 = 4;
const KIND_STEP_WITH_FRAMES: u8 = 5;
const KIND_GATE_TICKS: u8 = 6;
/// Kind, length and checksum around each payload.
const FRAMING: usize = 1 + 4 + 4;
/// Larger records are refused as damage rather than allocated.
const MAX_RECORD: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not an episode file (bad magic at byte 0)")]
    BadMagic { path: PathBuf },
    #[error("{path}: record at byte {offset} is damaged: {problem}; the records before it are intact")]
    Damaged { path: PathBuf, offset: u64, problem: String },
    #[error("{path}: step at byte {offset} has {got} values, the header promises {expected}")]
    StepSize { path: PathBuf, offset: u64, expected: usize, got: usize },
    #[error("episode step: {what} has {got} values, the episode was opened with {expected}")]
    WrongSize { what: &'static str, expected: usize, got: usize },
    #[error("{path}: the episode is already finished")]
    Finished { path: PathBuf },
}

impl RecordingError {
    /// The storage has no room (disk or quota full, file size limit): a
    /// fault that clears when space is freed, after which the same write
    /// can simply be made again.
    pub fn is_storage_full(&self) -> bool {
        matches!(self, RecordingError::Io { source, .. } if is_storage_full(source))
    }
}

/// Whether `error` says the storage has no room (ENOSPC, EDQUOT, EFBIG).
pub fn is_storage_full(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{FileTooLarge, QuotaExceeded, StorageFull};
    matches!(error.kind(), StorageFull | QuotaExceeded | FileTooLarge)
}

/// Runs `write` until it succeeds or fails for another reason than a full
/// storage. While the storage is full, `on_full` is called once (with the
/// error) and the write is retried every `retry`; `on_cleared` is called
/// with the seconds waited when it succeeds again. The writes of this
/// crate leave no partial record behind when they fail, so a retry writes
/// exactly what the failed attempt would have.
pub fn retry_while_storage_full<T, E: std::fmt::Display>(
    mut write: impl FnMut() -> Result<T, E>,
    is_full: impl Fn(&E) -> bool,
    retry: std::time::Duration,
    mut on_full: impl FnMut(&E),
    mut on_cleared: impl FnMut(f64),
) -> Result<T, E> {
    let mut waiting: Option<std::time::Instant> = None;
    loop {
        match write() {
            Ok(value) => {
                if let Some(since) = waiting {
                    on_cleared(since.elapsed().as_secs_f64());
                }
                return Ok(value);
            }
            Err(e) if is_full(&e) => {
                if waiting.is_none() {
                    on_full(&e);
                    waiting = Some(std::time::Instant::now());
                }
                std::thread::sleep(retry);
            }
            Err(e) => return Err(e),
        }
    }
}

/// What an episode is about, written first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpisodeHeader {
    pub task: String,
    pub episode: u64,
    pub observation_size: usize,
    pub action_size: usize,
    /// practice, demo (teleoperated or scripted), eval.
    pub source: String,
    pub seed: u64,
    pub started_unix_ns: u64,
}

/// How an episode ended, written last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpisodeOutcome {
    pub steps: u64,
    pub episode_return: f64,
    pub success: Option<bool>,
    pub interventions: u64,
    pub safety_events: u64,
    /// success, failure, timeout, stuck, stopped.
    pub reason: String,
}

/// Per-step markers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepFlags {
    pub terminated: bool,
    pub truncated: bool,
    /// A human's action replaced the policy's.
    pub intervention: bool,
    /// The safety gate clipped, held or reflexed during this step.
    pub safety_event: bool,
    /// Part of an automatic recovery manoeuvre, not of the policy's attempt.
    pub recovery: bool,
    /// The gate's learned risk critic ran its reflex during this step.
    pub reflex: bool,
    /// A success (`Some(true)`) or failure label of this step's next frames:
    /// a human's key or button, or a simulator's truth; what a success
    /// classifier learns from. `None`: not labelled.
    pub label: Option<bool>,
}

impl StepFlags {
    fn to_byte(self) -> u8 {
        let label = match self.label {
            None => 0,
            Some(false) => 1 << 6,
            Some(true) => 3 << 6,
        };
        u8::from(self.terminated) | u8::from(self.truncated) << 1 | u8::from(self.intervention) << 2 | u8::from(self.safety_event) << 3 | u8::from(self.recovery) << 4 | u8::from(self.reflex) << 5 | label
    }

    fn from_byte(b: u8) -> StepFlags {
        // Bit 6: labelled; bit 7: the label says success.
        let label = (b & 64 != 0).then_some(b & 128 != 0);
        StepFlags { terminated: b & 1 != 0, truncated: b & 2 != 0, intervention: b & 4 != 0, safety_event: b & 8 != 0, recovery: b & 16 != 0, reflex: b & 32 != 0, label }
    }
}

/// One transition as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct EpisodeStep {
    /// Wall (robot) or simulated time of the step, nanoseconds.
    pub time_ns: u64,
    pub observation: Vec<f32>,
    /// The action sent to the robot, in the learner's [-1, 1] space.
    pub action: Vec<f32>,
    pub reward: f32,
    pub next_observation: Vec<f32>,
    pub flags: StepFlags,
    /// The next observation's camera frames, encoded (`crate::frames`);
    /// `None` for state-only tasks and recovery steps.
    pub next_frames: Option<Vec<u8>>,
}

/// A recorded episode as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    pub path: PathBuf,
    pub header: EpisodeHeader,
    /// The first observation's camera frames, encoded; `None` for state-only tasks.
    pub reset_frames: Option<Vec<u8>>,
    pub steps: Vec<EpisodeStep>,
    /// `None` when the process stopped before the episode ended.
    pub outcome: Option<EpisodeOutcome>,
    /// The safety gate's recorded ticks over the episode (decimated: see
    /// `rrl_types::TickDecimator`), in tick order; empty when the task's
    /// gate runs in another process.
    pub gate_ticks: Vec<GateTick>,
    /// Gate-tick records whose checksum held but whose ticks did not decode
    /// (written by another version): skipped.
    pub unreadable_tick_records: u64,
    /// Bytes of a last record cut short by a crash, dropped.
    pub torn_tail_bytes: u64,
}

/// The file name of episode `index` in a run's episode folder.
pub fn episode_file_name(index: u64) -> String {
    format!("episode_{index:06}.rrlep")
}

/// Appends one episode to its file as it happens.
pub struct EpisodeWriter {
    path: PathBuf,
    file: File,
    observation_size: usize,
    action_size: usize,
    sync_every_step: bool,
    record: Vec<u8>,
    finished: bool,
    /// Bytes of whole records in the file: a failed write is cut back to it.
    written: u64,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> RecordingError + '_ {
    move |source| RecordingError::Io { path: path.to_path_buf(), source }
}

/// Gives the written `partial` its episode name. A hard link never
/// replaces an existing name, unlike a rename; file systems without hard
/// links (FAT, some network mounts) get a rename while the name is free.
fn link_into_place(partial: &Path, path: &Path) -> Result<(), RecordingError> {
    match std::fs::hard_link(partial, path) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists && !path.exists() => std::fs::rename(partial, path),
        linked => linked,
    }
    .map_err(io_error(path))
}

impl EpisodeWriter {
    /// Creates `folder/episode_NNNNNN.rrlep` (never overwriting one) and
    /// writes the header durably. The name appears only once the header is
    /// in the file: magic and header go to a hidden partial file first,
    /// which is then hard-linked into place, so a crash at any moment
    /// leaves either no episode file or one that opens (and at most a
    /// hidden partial file of one header). A failed create leaves no file
    /// behind, so it can be retried.
    pub fn create(folder: &Path, header: &EpisodeHeader, sync_every_step: bool) -> Result<EpisodeWriter, RecordingError> {
        static PARTIALS: AtomicU64 = AtomicU64::new(0);
        std::fs::create_dir_all(folder).map_err(io_error(folder))?;
        let path = folder.join(episode_file_name(header.episode));
        if path.exists() {
            return Err(RecordingError::Io { path, source: std::io::ErrorKind::AlreadyExists.into() });
        }
        // Hidden (list_episodes skips it); process id and count keep any two writers apart.
        let partial = folder.join(partial_file_name(header.episode, std::process::id(), PARTIALS.fetch_add(1, Ordering::Relaxed)));
        let file = OpenOptions::new().write(true).create_new(true).open(&partial).map_err(io_error(&partial))?;
        let mut writer = EpisodeWriter {
            path,
            file,
            observation_size: header.observation_size,
            action_size: header.action_size,
            sync_every_step,
            record: Vec::with_capacity(64 + 8 * (2 * header.observation_size + header.action_size)),
            finished: false,
            written: 0,
        };
        writer.record.extend_from_slice(MAGIC);
        let json = serde_json::to_vec(header).expect("header serializes");
        let started = writer.append_record(KIND_HEADER, &json, true).and_then(|()| link_into_place(&partial, &writer.path));
        let _ = std::fs::remove_file(&partial);
        started?;
        // The new directory entry itself must survive a power cut too.
        if let Ok(dir) = File::open(folder) {
            let _ = dir.sync_all();
        }
        Ok(writer)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record (and syncs it when `sync`). On failure the file
    /// is cut back to its last whole record, so the same record can be
    /// written again once the fault clears.
    fn append_record(&mut self, kind: u8, payload: &[u8], sync: bool) -> Result<(), RecordingError> {
        let start = self.record.len();
        self.record.push(kind);
        self.record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        self.record.extend_from_slice(payload);
        let crc = crc32(&self.record[start..]);
        self.record.extend_from_slice(&crc.to_le_bytes());
        // One write per record: the kernel has it once this returns.
        let mut result = self.file.write_all(&self.record);
        if result.is_ok() && sync {
            result = self.file.sync_data();
        }
        match result {
            Ok(()) => {
                self.written += self.record.len() as u64;
                self.record.clear();
                Ok(())
            }
            Err(e) => {
                // The magic stays queued ahead of the header until it is written.
                self.record.truncate(if self.written == 0 { MAGIC.len() } else { 0 });
                let _ = self.file.set_len(self.written);
                let _ = self.file.seek(std::io::SeekFrom::Start(self.written));
                Err(RecordingError::Io { path: self.path.clone(), source: e })
            }
        }
    }

    /// Appends the first observation's camera frames (encoded), before the
    /// first step.
    pub fn reset_frames(&mut self, encoded: &[u8]) -> Result<(), RecordingError> {
        if self.finished {
            return Err(RecordingError::Finished { path: self.path.clone() });
        }
        self.append_record(KIND_RESET_FRAMES, encoded, self.sync_every_step)
    }

    /// Appends one transition (with its next observation's frames, if any).
    pub fn step(&mut self, step: &EpisodeStep) -> Result<(), RecordingError> {
        if self.finished {
            return Err(RecordingError::Finished { path: self.path.clone() });
        }
        for (what, expected, got) in [
            ("observation", self.observation_size, step.observation.len()),
            ("next observation", self.observation_size, step.next_observation.len()),
            ("action", self.action_size, step.action.len()),
        ] {
            if expected != got {
                return Err(RecordingError::WrongSize { what, expected, got });
            }
        }
        let step_bytes = 13 + 4 * (2 * self.observation_size + self.action_size);
        let frames = step.next_frames.as_deref();
        let mut payload = Vec::with_capacity(step_bytes + frames.map_or(0, |f| 4 + f.len()));
        if frames.is_some() {
            payload.extend_from_slice(&(step_bytes as u32).to_le_bytes());
        }
        payload.extend_from_slice(&step.time_ns.to_le_bytes());
        payload.push(step.flags.to_byte());
        payload.extend_from_slice(&step.reward.to_le_bytes());
        for values in [&step.observation, &step.action, &step.next_observation] {
            for v in values.iter() {
                payload.extend_from_slice(&v.to_le_bytes());
            }
        }
        if let Some(frames) = frames {
            payload.extend_from_slice(frames);
        }
        let kind = if frames.is_some() { KIND_STEP_WITH_FRAMES } else { KIND_STEP };
        self.append_record(kind, &payload, self.sync_every_step)
    }

    /// Appends the safety gate's ticks of the last step (compressed; none:
    /// nothing is written). Written as soon as the step happened, so a crash
    /// loses only the ticks of the step in flight.
    pub fn gate_ticks(&mut self, ticks: &[GateTick]) -> Result<(), RecordingError> {
        if self.finished {
            return Err(RecordingError::Finished { path: self.path.clone() });
        }
        if ticks.is_empty() {
            return Ok(());
        }
        self.append_record(KIND_GATE_TICKS, &crate::gate_ticks::encode(ticks), self.sync_every_step)
    }

    /// Writes the outcome and syncs the file; the episode is then complete.
    /// A failed finish can be retried.
    pub fn finish(&mut self, outcome: &EpisodeOutcome) -> Result<PathBuf, RecordingError> {
        if !self.finished {
            let json = serde_json::to_vec(outcome).expect("outcome serializes");
            self.append_record(KIND_OUTCOME, &json, false)?;
            self.finished = true;
        }
        self.file.sync_all().map_err(io_error(&self.path))?;
        Ok(self.path.clone())
    }
}

/// Reads an episode file. A last record cut short (the process died while
/// writing it) is dropped and counted in `torn_tail_bytes`; damage before
/// the last record is an error naming the byte offset.
pub fn read_episode(path: &Path) -> Result<Episode, RecordingError> {
    let bytes = std::fs::read(path).map_err(io_error(path))?;
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(RecordingError::BadMagic { path: path.to_path_buf() });
    }
    let damaged = |offset: usize, problem: String| RecordingError::Damaged { path: path.to_path_buf(), offset: offset as u64, problem };
    let mut offset = MAGIC.len();
    let mut header: Option<EpisodeHeader> = None;
    let mut reset_frames = None;
    let mut steps = Vec::new();
    let mut outcome = None;
    let mut gate_ticks = Vec::new();
    let mut unreadable_tick_records = 0;
    let mut torn_tail_bytes = 0;
    while offset < bytes.len() {
        let remaining = bytes.len() - offset;
        if remaining < FRAMING {
            torn_tail_bytes = remaining as u64;
            break;
        }
        let kind = bytes[offset];
        let length = u32::from_le_bytes(bytes[offset + 1..offset + 5].try_into().expect("4 bytes")) as usize;
        if length > MAX_RECORD {
            return Err(damaged(offset, format!("length {length} exceeds the {MAX_RECORD}-byte record limit")));
        }
        if FRAMING + length > remaining {
            torn_tail_bytes = remaining as u64;
            break;
        }
        let payload = &bytes[offset + 5..offset + 5 + length];
        let stored = u32::from_le_bytes(bytes[offset + 5 + length..offset + FRAMING + length].try_into().expect("4 bytes"));
        let computed = crc32_update(crc32(&bytes[offset..offset + 5]), payload);
        let is_last = offset + FRAMING + length == bytes.len();
        if stored != computed {
            if is_last && outcome.is_none() {
                // A power cut can leave the last record's blocks unwritten.
                torn_tail_bytes = remaining as u64;
                break;
            }
            return Err(damaged(offset, format!("checksum {stored:#010x} stored, {computed:#010x} computed")));
        }
        match (kind, &header) {
            (KIND_HEADER, None) => {
                header = Some(serde_json::from_slice(payload).map_err(|e| damaged(offset, format!("header: {e}")))?);
            }
            (KIND_STEP, Some(h)) => steps.push(decode_step(path, offset, payload, h)?),
            (KIND_RESET_FRAMES, Some(_)) if steps.is_empty() && reset_frames.is_none() => reset_frames = Some(payload.to_vec()),
            (KIND_STEP_WITH_FRAMES, Some(h)) => {
                let step_bytes = payload.get(..4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize);
                let Some(step_bytes) = step_bytes.filter(|&n| n <= payload.len() - 4) else {
                    return Err(damaged(offset, format!("a step with frames whose step part is longer than its {} bytes", payload.len())));
                };
                let mut step = decode_step(path, offset, &payload[4..4 + step_bytes], h)?;
                step.next_frames = Some(payload[4 + step_bytes..].to_vec());
                steps.push(step);
            }
            // Ticks are the critic's data, not the episode: a batch that does
            // not decode (its checksum held) is counted, not fatal.
            (KIND_GATE_TICKS, Some(_)) => match crate::gate_ticks::decode(payload, MAX_RECORD) {
                Ok(ticks) => gate_ticks.extend(ticks),
                Err(_) => unreadable_tick_records += 1,
            },
            (KIND_OUTCOME, Some(_)) => outcome = Some(serde_json::from_slice(payload).map_err(|e| damaged(offset, format!("outcome: {e}")))?),
            (kind, _) => return Err(damaged(offset, format!("unexpected record kind {kind} here"))),
        }
        offset += FRAMING + length;
    }
    let Some(header) = header else {
        return Err(damaged(MAGIC.len(), "no header record".into()));
    };
    Ok(Episode { path: path.to_path_buf(), header, reset_frames, steps, outcome, gate_ticks, unreadable_tick_records, torn_tail_bytes })
}

fn decode_step(path: &Path, offset: usize, payload: &[u8], header: &EpisodeHeader) -> Result<EpisodeStep, RecordingError> {
    let (o, a) = (header.observation_size, header.action_size);
    let values = payload.len().saturating_sub(13) / 4;
    if payload.len() < 13 || (payload.len() - 13) % 4 != 0 || values != 2 * o + a {
        return Err(RecordingError::StepSize { path: path.to_path_buf(), offset: offset as u64, expected: 2 * o + a, got: values });
    }
    let time_ns = u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
    let flags = StepFlags::from_byte(payload[8]);
    let reward = f32::from_le_bytes(payload[9..13].try_into().expect("4 bytes"));
    let floats: Vec<f32> = payload[13..].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
    Ok(EpisodeStep {
        time_ns,
        observation: floats[..o].to_vec(),
        action: floats[o..o + a].to_vec(),
        reward,
        next_observation: floats[o + a..].to_vec(),
        flags,
        next_frames: None,
    })
}

/// Episode files of a folder in episode order (missing folder: none).
pub fn list_episodes(folder: &Path) -> Result<Vec<PathBuf>, RecordingError> {
    let entries = match std::fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(RecordingError::Io { path: folder.to_path_buf(), source: e }),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("episode_") && n.ends_with(".rrlep")))
        .collect();
    files.sort();
    Ok(files)
}

/// Removes the hidden partial files (see `EpisodeWriter::create`) that a
/// writer killed between making one and linking it into place left in
/// `folder`: those of processes no longer running. A live writer's,
/// this process's included, stay (a killed run's partial that carries
/// this process's id too, the safe side); so do all where `/proc` is
/// missing. One run folder has one writer at a time, so a writer in
/// another pid namespace is not looked for. The removed files' paths.
pub fn sweep_stale_partials(folder: &Path) -> Result<Vec<PathBuf>, RecordingError> {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return Ok(Vec::new());
    }
    let entries = match std::fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(RecordingError::Io { path: folder.to_path_buf(), source: e }),
    };
    let mut removed = Vec::new();
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let Some(pid) = path.file_name().and_then(|n| n.to_str()).and_then(partial_writer_pid) else { continue };
        if pid != std::process::id() && !proc.join(pid.to_string()).exists() {
            match std::fs::remove_file(&path) {
                Ok(()) => removed.push(path),
                // Another process swept it first.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(RecordingError::Io { path, source: e }),
            }
        }
    }
    Ok(removed)
}

/// The hidden partial file of `episode` made by process `pid` (its `k`-th).
fn partial_file_name(episode: u64, pid: u32, k: u64) -> String {
    format!(".{}.{pid}-{k}.partial", episode_file_name(episode))
}

/// The writing process of a partial file named by `partial_file_name`.
fn partial_writer_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(".episode_")?.strip_suffix(".partial")?;
    let (_, writer) = rest.split_once(".rrlep.")?;
    writer.split_once('-')?.0.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(episode: u64) -> EpisodeHeader {
        EpisodeHeader { task: "test".into(), episode, observation_size: 3, action_size: 2, source: "practice".into(), seed: 7, started_unix_ns: 1 }
    }

    fn step(i: u32) -> EpisodeStep {
        let x = i as f32;
        EpisodeStep {
            time_ns: u64::from(i) * 100_000_000,
            observation: vec![x, x + 0.5, -x],
            action: vec![0.25, -0.75],
            reward: -x,
            next_observation: vec![x + 1.0, x + 1.5, -x - 1.0],
            flags: StepFlags { intervention: i % 3 == 0, safety_event: i == 4, reflex: i == 4, label: [None, Some(true), Some(false)][i as usize % 3], ..StepFlags::default() },
            next_frames: None,
        }
    }

    fn outcome() -> EpisodeOutcome {
        EpisodeOutcome { steps: 5, episode_return: -10.0, success: Some(true), interventions: 2, safety_events: 1, reason: "success".into() }
    }

    #[test]
    fn an_episode_reads_back_exactly_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = EpisodeWriter::create(dir.path(), &header(3), true).unwrap();
        for i in 0..5 {
            writer.step(&step(i)).unwrap();
        }
        let path = writer.finish(&outcome()).unwrap();
        assert!(path.ends_with("episode_000003.rrlep"));
        let episode = read_episode(&path).unwrap();
        assert_eq!(episode.header, header(3));
        assert_eq!(episode.steps, (0..5).map(step).collect::<Vec<_>>());
        assert_eq!(episode.outcome, Some(outcome()));
        assert_eq!(episode.torn_tail_bytes, 0);
        assert_eq!(list_episodes(dir.path()).unwrap(), vec![path]);
    }

    /// Fault matrix: corrupt episode file | the file cut at every byte inside its last record | the torn tail is dropped | the three whole steps kept, the torn bytes counted
    #[test]
    fn a_crash_mid_write_loses_only_the_transition_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = EpisodeWriter::create(dir.path(), &header(0), false).unwrap();
        for i in 0..4 {
            writer.step(&step(i)).unwrap();
        }
        let path = writer.path().to_path_buf();
        drop(writer); // the process died: no outcome
        let full = std::fs::read(&path).unwrap();
        // Every cut inside the last record keeps the three before it.
        let record = FRAMING + 13 + 4 * 8;
        for cut in 1..record {
            std::fs::write(&path, &full[..full.len() - cut]).unwrap();
            let episode = read_episode(&path).unwrap();
            assert_eq!(episode.steps.len(), 3, "cut {cut}");
            assert_eq!(episode.torn_tail_bytes as usize, record - cut);
            assert!(episode.outcome.is_none());
        }
    }

    /// Fault matrix: corrupt episode file | a byte of a step record flipped; the file replaced by a ZIP header | reading refuses it | names the record's byte offset and `checksum`; `bad magic`
    #[test]
    fn damage_before_the_last_record_names_the_byte_offset() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = EpisodeWriter::create(dir.path(), &header(0), false).unwrap();
        for i in 0..3 {
            writer.step(&step(i)).unwrap();
        }
        let path = writer.finish(&outcome()).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let header_len = FRAMING + serde_json::to_vec(&header(0)).unwrap().len();
        let second_step = MAGIC.len() + header_len + FRAMING + 13 + 4 * 8;
        bytes[second_step + 20] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let err = read_episode(&path).unwrap_err().to_string();
        assert!(err.contains(&format!("record at byte {second_step}")), "{err}");
        assert!(err.contains("checksum"), "{err}");
        std::fs::write(&path, b"PK\x03\x04 not an episode").unwrap();
        assert!(read_episode(&path).unwrap_err().to_string().contains("bad magic"));
    }

    #[test]
    fn wrong_sizes_are_refused_and_existing_episodes_are_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = EpisodeWriter::create(dir.path(), &header(1), false).unwrap();
        let mut bad = step(0);
        bad.action.push(1.0);
        let err = writer.step(&bad).unwrap_err().to_string();
        assert!(err.contains("action has 3 values") && err.contains("opened with 2"), "{err}");
        writer.step(&step(0)).unwrap();
        assert!(EpisodeWriter::create(dir.path(), &header(1), false).is_err());
        // The refused create left the first file as it was, and nothing beside it.
        assert_eq!(read_episode(writer.path()).unwrap().steps, vec![step(0)]);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("episode_000001.rrlep")]);
        // A writer that loses the race for the name (it was free when it
        // looked) is refused at the link, never replacing the winner's file.
        let partial = dir.path().join(".late.partial");
        std::fs::write(&partial, b"late").unwrap();
        let err = link_into_place(&partial, writer.path()).unwrap_err();
        assert!(matches!(&err, RecordingError::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists), "{err}");
        assert_eq!(read_episode(writer.path()).unwrap().steps, vec![step(0)]);
    }

    /// A writer killed between its partial file and the link leaves the
    /// partial behind: the sweep removes it once its process is gone, and
    /// leaves a running writer's (another process's, and this one's).
    #[test]
    fn partial_files_of_writers_no_longer_running_are_swept_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut finished = std::process::Command::new("true").spawn().unwrap();
        finished.wait().unwrap();
        let mut running = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let partial = |episode: u64, pid: u32| dir.path().join(partial_file_name(episode, pid, 0));
        let (dead, live, own) = (partial(3, finished.id()), partial(4, running.id()), partial(5, std::process::id()));
        for path in [&dead, &live, &own] {
            std::fs::write(path, MAGIC).unwrap();
        }
        let unrelated = dir.path().join(".episode_000006.rrlep.notes");
        std::fs::write(&unrelated, b"kept").unwrap();
        assert_eq!(sweep_stale_partials(dir.path()).unwrap(), vec![dead.clone()]);
        assert!(!dead.exists() && live.exists() && own.exists() && unrelated.exists());
        running.kill().unwrap();
        running.wait().unwrap();
        assert_eq!(sweep_stale_partials(dir.path()).unwrap(), vec![live.clone()], "its writer is gone now");
        assert!(own.exists());
        assert_eq!(sweep_stale_partials(&dir.path().join("none")).unwrap(), Vec::<PathBuf>::new(), "no folder, nothing to sweep");
    }

    /// Fault matrix: crash at episode start | a reader (a resumed run, or a test waiting to SIGKILL) looks the moment a new episode's name appears | every episode file it finds opens with its header | none is empty or bad magic
    #[test]
    fn an_episode_file_appears_only_with_its_header_in_it() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().to_path_buf();
        let creating = {
            let folder = folder.clone();
            std::thread::spawn(move || {
                for i in 0..400 {
                    EpisodeWriter::create(&folder, &header(i), false).unwrap();
                }
            })
        };
        // Spins on the next name, so it reads a file the moment it appears.
        let mut next = 0;
        while next < 400 {
            let path = folder.join(episode_file_name(next));
            if !path.exists() {
                if creating.is_finished() {
                    break;
                }
                std::thread::yield_now();
                continue;
            }
            if let Err(e) = read_episode(&path) {
                panic!("an episode file was seen before its header was in it: {e}");
            }
            next += 1;
        }
        creating.join().unwrap();
        assert_eq!(list_episodes(&folder).unwrap().len(), 400);
        assert!(std::fs::read_dir(&folder).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".partial")), "a partial file was left behind");
    }

    /// A pixel episode: the reset frames and each step's next frames read
    /// back as written, and a crash inside a step's record loses that step
    /// and its frames together, never one without the other.
    #[test]
    fn frames_read_back_with_their_steps_and_a_torn_step_takes_its_frames_along() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = EpisodeWriter::create(dir.path(), &header(2), false).unwrap();
        writer.reset_frames(b"reset frames").unwrap();
        let with_frames = |i: u32| EpisodeStep { next_frames: Some(format!("frames after step {i}").into_bytes()), ..step(i) };
        for i in 0..3 {
            writer.step(&with_frames(i)).unwrap();
        }
        let path = writer.path().to_path_buf();
        drop(writer);
        let episode = read_episode(&path).unwrap();
        assert_eq!(episode.reset_frames.as_deref(), Some(&b"reset frames"[..]));
        assert_eq!(episode.steps, (0..3).map(with_frames).collect::<Vec<_>>());
        let full = std::fs::read(&path).unwrap();
        std::fs::write(&path, &full[..full.len() - 6]).unwrap();
        let torn = read_episode(&path).unwrap();
        assert_eq!(torn.steps, (0..2).map(with_frames).collect::<Vec<_>>());
        assert!(torn.torn_tail_bytes > 0);
    }
}
