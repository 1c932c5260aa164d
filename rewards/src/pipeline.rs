//! The reward node's engine, without ROS: frames are offered as they
//! arrive and never wait; up to `max_concurrent` model requests run at
//! once; while all are busy, a newer frame replaces the one waiting (the
//! dropped frame's delta is folded into the newer pair, so progress still
//! chains frame to frame); answers come back in any order and are applied
//! in frame order. A failed or timed-out request is counted and skipped.
//! `RewardJoiner` then joins rewards to transitions by timestamp.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam::channel::{Receiver, Sender};

use crate::source::{Frame, RewardError, RewardEstimate};
use crate::vlm::{Assessment, ProgressTracker, VlmProgressCritic};

struct Job {
    sequence: u64,
    task: String,
    episode: u64,
    previous: Option<Frame>,
    current: Frame,
}

/// Counters of what happened to offered frames.
#[derive(Debug, Default)]
pub struct PipelineCounts {
    pub offered: AtomicU64,
    /// Replaced by a newer frame before a worker was free.
    pub dropped: AtomicU64,
    pub scored: AtomicU64,
    /// Errors and timeouts of the endpoint.
    pub failed: AtomicU64,
    /// Failures since the endpoint last answered: a dead or hung endpoint
    /// shows here (an occasional failure resets at the next answer).
    pub failed_in_a_row: AtomicU64,
}

/// The waiting job: one slot, newest wins.
#[derive(Default)]
struct Mailbox {
    job: Option<Job>,
    closed: bool,
}

pub struct ProgressPipeline {
    mailbox: Arc<(Mutex<Mailbox>, std::sync::Condvar)>,
    results: Receiver<(u64, u64, rrl_types::Timestamp, Result<Assessment, RewardError>)>,
    counts: Arc<PipelineCounts>,
    next_sequence: u64,
    episode: u64,
    task: String,
    last_offered: Option<Frame>,
    /// Answers waiting for an earlier one, by sequence.
    pending: BTreeMap<u64, (u64, rrl_types::Timestamp, Option<Assessment>)>,
    next_to_apply: u64,
    tracker: ProgressTracker,
    done_threshold: f64,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl ProgressPipeline {
    pub fn new(critic: VlmProgressCritic, max_concurrent: usize) -> ProgressPipeline {
        let critic = Arc::new(critic);
        let mailbox = Arc::new((Mutex::new(Mailbox::default()), std::sync::Condvar::new()));
        let (sender, results) = crossbeam::channel::unbounded();
        let counts = Arc::new(PipelineCounts::default());
        let workers = (0..max_concurrent.max(1))
            .map(|i| {
                let (critic, mailbox, sender, counts): (Arc<VlmProgressCritic>, _, Sender<_>, Arc<PipelineCounts>) = (critic.clone(), mailbox.clone(), sender.clone(), counts.clone());
                std::thread::Builder::new()
                    .name(format!("reward-{i}"))
                    .spawn(move || loop {
                        let job = {
                            let (lock, ready) = &*mailbox;
                            let mut slot = lock.lock().expect("mailbox");
                            loop {
                                if let Some(job) = slot.job.take() {
                                    break job;
                                }
                                if slot.closed {
                                    return;
                                }
                                slot = ready.wait(slot).expect("mailbox");
                            }
                        };
                        let answer = critic.assess(&job.task, job.previous.as_ref(), &job.current);
                        match &answer {
                            Ok(_) => {
                                counts.failed_in_a_row.store(0, Ordering::Relaxed);
                                counts.scored.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => {
                                tracing::warn!("reward request failed: {e}");
                                counts.failed_in_a_row.fetch_add(1, Ordering::Relaxed);
                                counts.failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        if sender.send((job.sequence, job.episode, job.current.stamp, answer)).is_err() {
                            return;
                        }
                    })
                    .expect("spawn a reward worker")
            })
            .collect();
        let done_threshold = critic.done_threshold();
        ProgressPipeline { mailbox, results, counts, next_sequence: 0, episode: 0, task: String::new(), last_offered: None, pending: BTreeMap::new(), next_to_apply: 0, tracker: ProgressTracker::default(), done_threshold, workers }
    }

    pub fn counts(&self) -> &PipelineCounts {
        &self.counts
    }

    /// The counters, shared: they stay current while the pipeline runs on another thread.
    pub fn shared_counts(&self) -> Arc<PipelineCounts> {
        self.counts.clone()
    }

    /// Starts an episode of `task`: the next frame starts the progress chain.
    pub fn reset(&mut self, task: &str) {
        self.task = task.to_string();
        self.episode += 1;
        self.last_offered = None;
    }

    /// Offers the newest frame; never blocks on the model.
    pub fn offer(&mut self, frame: Frame) {
        self.counts.offered.fetch_add(1, Ordering::Relaxed);
        let mailbox = self.mailbox.clone();
        let (lock, ready) = &*mailbox;
        let mut slot = lock.lock().expect("mailbox");
        // A waiting job is replaced; its start frame becomes the new pair's,
        // and its sequence number is reused so the order has no hole.
        let (previous, sequence) = match slot.job.take() {
            Some(waiting) if waiting.episode == self.episode => {
                self.counts.dropped.fetch_add(1, Ordering::Relaxed);
                (waiting.previous, waiting.sequence)
            }
            Some(waiting) => {
                // From an episode that has ended: skip its slot in the order.
                self.counts.dropped.fetch_add(1, Ordering::Relaxed);
                self.pending.insert(waiting.sequence, (waiting.episode, waiting.current.stamp, None));
                (self.last_offered.take(), self.take_sequence())
            }
            None => (self.last_offered.take(), self.take_sequence()),
        };
        self.last_offered = Some(frame.clone());
        slot.job = Some(Job { sequence, task: self.task.clone(), episode: self.episode, previous, current: frame });
        ready.notify_one();
    }

    fn take_sequence(&mut self) -> u64 {
        self.next_sequence += 1;
        self.next_sequence - 1
    }

    /// Estimates ready now, in frame order (never blocks).
    pub fn poll(&mut self) -> Vec<RewardEstimate> {
        while let Ok((sequence, episode, stamp, answer)) = self.results.try_recv() {
            self.pending.insert(sequence, (episode, stamp, answer.ok()));
        }
        let mut out = Vec::new();
        while let Some((_episode, stamp, answer)) = self.pending.remove(&self.next_to_apply) {
            self.next_to_apply += 1;
            // An episode's first frame has no delta: the tracker restarts on it.
            if let Some(assessment) = answer {
                out.push(self.tracker.apply(stamp, assessment, self.done_threshold));
            }
        }
        out
    }
}

impl Drop for ProgressPipeline {
    fn drop(&mut self) {
        let (lock, ready) = &*self.mailbox;
        lock.lock().expect("mailbox").closed = true;
        ready.notify_all();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

/// Joins rewards to transitions by time: a transition stamped `t` takes the
/// newest estimate of a frame taken at or before `t`, if that frame is no
/// older than `tolerance_ns`; otherwise the reward is missing (counted).
pub struct RewardJoiner {
    estimates: VecDeque<RewardEstimate>,
    tolerance_ns: u64,
    pub joined: u64,
    pub missing: u64,
}

impl RewardJoiner {
    pub fn new(tolerance_ns: u64) -> RewardJoiner {
        RewardJoiner { estimates: VecDeque::with_capacity(256), tolerance_ns, joined: 0, missing: 0 }
    }

    pub fn push(&mut self, estimate: RewardEstimate) {
        if self.estimates.len() == 256 {
            self.estimates.pop_front();
        }
        self.estimates.push_back(estimate);
    }

    pub fn reward_at(&mut self, stamp: rrl_types::Timestamp) -> Option<RewardEstimate> {
        let found = self.estimates.iter().rev().find(|e| e.stamp <= stamp).filter(|e| stamp.0 - e.stamp.0 <= self.tolerance_ns).copied();
        match found {
            Some(_) => self.joined += 1,
            None => self.missing += 1,
        }
        found
    }
}
