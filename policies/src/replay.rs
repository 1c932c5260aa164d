//! A preallocated replay buffer for state observations, resident on the
//! learner's device: new transitions are staged on the CPU and copied over in
//! one transfer before the next sample, and a batch is one `index_select`.
//! Also the n-step return writer that feeds it.

use std::collections::VecDeque;

use tch::{Device, Kind, Tensor};

/// One transition as the buffer stores it. `discount` is γ^k for the k
/// rewards summed into `reward` (n-step), `terminal` is 1 when the episode
/// ended by the task's rule within those steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub observation: Vec<f32>,
    pub action: Vec<f32>,
    pub reward: f32,
    pub next_observation: Vec<f32>,
    pub terminal: bool,
    pub discount: f32,
}

/// A sampled batch on the learner's device.
pub struct Batch {
    pub observation: Tensor,
    pub action: Tensor,
    pub reward: Tensor,
    pub next_observation: Tensor,
    pub terminal: Tensor,
    pub discount: Tensor,
    /// Frames of pixel observations, u8 [B, cameras*3, H, W] (see `pixels`).
    pub images: Option<Tensor>,
    pub next_images: Option<Tensor>,
}

impl Batch {
    /// Rows of `a` then rows of `b` (demo/online mixing).
    pub fn concat(a: &Batch, b: &Batch) -> Batch {
        let cat = |x: &Tensor, y: &Tensor| Tensor::cat(&[x, y], 0);
        Batch {
            observation: cat(&a.observation, &b.observation),
            action: cat(&a.action, &b.action),
            reward: cat(&a.reward, &b.reward),
            next_observation: cat(&a.next_observation, &b.next_observation),
            terminal: cat(&a.terminal, &b.terminal),
            discount: cat(&a.discount, &b.discount),
            images: a.images.as_ref().zip(b.images.as_ref()).map(|(x, y)| cat(x, y)),
            next_images: a.next_images.as_ref().zip(b.next_images.as_ref()).map(|(x, y)| cat(x, y)),
        }
    }
}

pub struct ReplayBuffer {
    observation_size: usize,
    action_size: usize,
    capacity: usize,
    /// [capacity, row] on the device; a row is obs | action | reward | next obs | terminal | discount.
    rows: Tensor,
    staged: Vec<f32>,
    staged_from: usize,
    next: usize,
    len: usize,
}

impl ReplayBuffer {
    pub fn new(observation_size: usize, action_size: usize, capacity: usize, device: Device) -> ReplayBuffer {
        let width = 2 * observation_size + action_size + 3;
        ReplayBuffer {
            observation_size,
            action_size,
            capacity,
            rows: Tensor::zeros([capacity as i64, width as i64], (Kind::Float, device)),
            staged: Vec::new(),
            staged_from: 0,
            next: 0,
            len: 0,
        }
    }

    fn width(&self) -> usize {
        2 * self.observation_size + self.action_size + 3
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn push(&mut self, t: &Transition) {
        debug_assert_eq!(t.observation.len(), self.observation_size);
        debug_assert_eq!(t.action.len(), self.action_size);
        if self.staged.is_empty() {
            self.staged_from = self.next;
        }
        self.staged.extend_from_slice(&t.observation);
        self.staged.extend_from_slice(&t.action);
        self.staged.push(t.reward);
        self.staged.extend_from_slice(&t.next_observation);
        self.staged.push(if t.terminal { 1.0 } else { 0.0 });
        self.staged.push(t.discount);
        self.next = (self.next + 1) % self.capacity;
        self.len = (self.len + 1).min(self.capacity);
        // Never stage more than a full ring: older staged rows are overwritten anyway.
        if self.staged.len() / self.width() == self.capacity {
            self.flush();
        }
    }

    /// Copies staged rows to the device (at most two transfers, for the wrap).
    pub fn flush(&mut self) {
        if self.staged.is_empty() {
            return;
        }
        let width = self.width();
        let count = self.staged.len() / width;
        let first = count.min(self.capacity - self.staged_from);
        let device = self.rows.device();
        let upload = |slice: &[f32], rows: usize| Tensor::from_slice(slice).reshape([rows as i64, width as i64]).to_device(device);
        self.rows.narrow(0, self.staged_from as i64, first as i64).copy_(&upload(&self.staged[..first * width], first));
        if count > first {
            self.rows.narrow(0, 0, (count - first) as i64).copy_(&upload(&self.staged[first * width..], count - first));
        }
        self.staged.clear();
    }

    /// `size` transitions drawn uniformly by libtorch's generator on the
    /// buffer's device.
    pub fn sample(&mut self, size: usize) -> Batch {
        assert!(self.len > 0, "sampling an empty replay buffer");
        self.flush();
        let index = Tensor::randint(self.len as i64, [size as i64], (Kind::Int64, self.rows.device()));
        self.sample_at(&index)
    }

    /// The transitions in ring slots `index` (i64 on the buffer's device).
    pub fn sample_at(&mut self, index: &Tensor) -> Batch {
        self.flush();
        let rows = self.rows.index_select(0, index);
        let (o, a) = (self.observation_size as i64, self.action_size as i64);
        let column = |start: i64, width: i64| rows.narrow(1, start, width);
        Batch {
            observation: column(0, o),
            action: column(o, a),
            reward: column(o + a, 1).squeeze_dim(1),
            next_observation: column(o + a + 1, o),
            terminal: column(2 * o + a + 1, 1).squeeze_dim(1),
            discount: column(2 * o + a + 2, 1).squeeze_dim(1),
            images: None,
            next_images: None,
        }
    }

    /// All stored rows in insertion order (oldest first), for saving.
    pub fn export_rows(&mut self) -> Tensor {
        self.flush();
        if self.len < self.capacity {
            self.rows.narrow(0, 0, self.len as i64).to_device(Device::Cpu)
        } else {
            Tensor::cat(&[self.rows.narrow(0, self.next as i64, (self.capacity - self.next) as i64), self.rows.narrow(0, 0, self.next as i64)], 0).to_device(Device::Cpu)
        }
    }

    /// Replaces the contents with `rows` (as `export_rows` wrote them).
    pub fn import_rows(&mut self, rows: &Tensor) -> Result<(), String> {
        let size = rows.size();
        if size.len() != 2 || size[1] != self.width() as i64 {
            return Err(format!("replay rows of shape {size:?}, expected [n, {}]", self.width()));
        }
        let n = (size[0] as usize).min(self.capacity);
        let keep = rows.narrow(0, size[0] - n as i64, n as i64);
        self.staged.clear();
        self.rows.narrow(0, 0, n as i64).copy_(&keep.to_device(self.rows.device()));
        self.len = n;
        self.next = n % self.capacity;
        Ok(())
    }
}

/// Turns a stream of 1-step transitions into n-step ones (γ-discounted
/// reward sums, bootstrapping from the observation n steps later). Each
/// step may carry tags for its observation and next observation (where
/// their camera frames are stored); an n-step transition keeps the first
/// step's observation tag and the last step's next-observation tag.
pub struct NStepWriter<Tag: Copy = ()> {
    n: usize,
    gamma: f32,
    window: VecDeque<(Transition, Tag, Tag)>,
}

impl NStepWriter<()> {
    pub fn new(n: usize, gamma: f64) -> NStepWriter<()> {
        NStepWriter::tagged(n, gamma)
    }

    /// Adds a 1-step transition; `episode_over` (terminated or truncated)
    /// flushes the window. Emits completed n-step transitions into `out`.
    pub fn push(&mut self, step: Transition, episode_over: bool, out: &mut impl FnMut(Transition)) {
        self.push_tagged(step, ((), ()), episode_over, &mut |t, _| out(t));
    }
}

impl<Tag: Copy> NStepWriter<Tag> {
    pub fn tagged(n: usize, gamma: f64) -> NStepWriter<Tag> {
        NStepWriter { n: n.max(1), gamma: gamma as f32, window: VecDeque::new() }
    }

    /// `push` for a step whose observation and next observation carry tags.
    pub fn push_tagged(&mut self, step: Transition, tags: (Tag, Tag), episode_over: bool, out: &mut impl FnMut(Transition, (Tag, Tag))) {
        self.window.push_back((step, tags.0, tags.1));
        if self.window.len() == self.n {
            let (t, tags) = self.combine();
            out(t, tags);
            self.window.pop_front();
        }
        if episode_over {
            while !self.window.is_empty() {
                let (t, tags) = self.combine();
                out(t, tags);
                self.window.pop_front();
            }
        }
    }

    fn combine(&self) -> (Transition, (Tag, Tag)) {
        let (first, first_tag, _) = &self.window[0];
        let mut reward = 0.0;
        let mut discount = 1.0;
        let (mut last, mut last_tag) = (first, self.window[0].2);
        for (t, _, next_tag) in &self.window {
            reward += discount * t.reward;
            discount *= self.gamma;
            last = t;
            last_tag = *next_tag;
            if t.terminal {
                break;
            }
        }
        let combined = Transition {
            observation: first.observation.clone(),
            action: first.action.clone(),
            reward,
            next_observation: last.next_observation.clone(),
            terminal: last.terminal,
            discount,
        };
        (combined, (*first_tag, last_tag))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transition(i: usize) -> Transition {
        Transition { observation: vec![i as f32; 2], action: vec![-(i as f32)], reward: i as f32, next_observation: vec![i as f32 + 0.5; 2], terminal: i % 7 == 0, discount: 0.99 }
    }

    #[test]
    fn samples_are_stored_rows_and_the_ring_wraps() {
        let mut buffer = ReplayBuffer::new(2, 1, 10, Device::Cpu);
        for i in 0..25 {
            buffer.push(&transition(i));
        }
        assert_eq!(buffer.len(), 10);
        tch::manual_seed(0);
        let batch = buffer.sample(64);
        let rewards: Vec<f32> = Vec::try_from(&batch.reward).unwrap();
        let obs: Vec<f32> = Vec::try_from(&batch.observation.flatten(0, -1)).unwrap();
        let terminal: Vec<f32> = Vec::try_from(&batch.terminal).unwrap();
        for (k, r) in rewards.iter().enumerate() {
            assert!((15.0..25.0).contains(r), "only the newest 10 remain, got {r}");
            assert_eq!(obs[2 * k], *r);
            assert_eq!(terminal[k] == 1.0, (*r as usize) % 7 == 0);
        }
        let exported = buffer.export_rows();
        let first: Vec<f32> = Vec::try_from(&exported.get(0)).unwrap();
        assert_eq!(first[3], 15.0, "export is oldest first");
    }

    /// Tags (where frames are stored) follow the n-step window: the first
    /// step's observation, the next observation of the step it bootstraps from.
    #[test]
    fn n_step_tags_name_the_first_observation_and_the_last_next_observation() {
        let mut writer = NStepWriter::tagged(3, 0.9);
        let mut out = Vec::new();
        for i in 0..5u32 {
            let step = Transition { observation: vec![i as f32], action: vec![0.0], reward: 1.0, next_observation: vec![i as f32 + 1.0], terminal: false, discount: 1.0 };
            writer.push_tagged(step, (10 * i, 10 * i + 10), i == 4, &mut |t, tags| out.push((t.observation[0], t.next_observation[0], tags)));
        }
        assert_eq!(out, vec![(0.0, 3.0, (0, 30)), (1.0, 4.0, (10, 40)), (2.0, 5.0, (20, 50)), (3.0, 5.0, (30, 50)), (4.0, 5.0, (40, 50))]);
    }

    #[test]
    fn n_step_sums_discounted_rewards_and_stops_at_terminals() {
        let mut writer = NStepWriter::new(3, 0.5);
        let mut out = Vec::new();
        let step = |r: f32, terminal: bool| Transition { observation: vec![r], action: vec![0.0], reward: r, next_observation: vec![r + 1.0], terminal, discount: 1.0 };
        for (i, r) in [1.0, 2.0, 4.0, 8.0].into_iter().enumerate() {
            writer.push(step(r, i == 3), i == 3, &mut |t| out.push(t));
        }
        assert_eq!(out.len(), 4);
        assert_eq!(out[0].reward, 1.0 + 0.5 * 2.0 + 0.25 * 4.0);
        assert_eq!(out[0].discount, 0.125);
        assert_eq!(out[0].next_observation, vec![5.0]);
        assert_eq!(out[1].reward, 2.0 + 0.5 * 4.0 + 0.25 * 8.0);
        assert!(out[1].terminal);
        assert_eq!(out[3].reward, 8.0);
        assert_eq!(out[3].discount, 0.5);
    }
}
