//! Pixel observations for the learner: a convolutional encoder (DrQ-v2
//! shape: one stride-2 and three stride-1 3x3 convolutions, then a linear
//! layer, LayerNorm and tanh), random-shift augmentation, and a replay
//! buffer whose frame store keeps each camera frame once.
//!
//! Observations are a state vector plus one RGB frame per camera, all
//! cameras the same size; the cameras are stacked along the channels. The
//! encoder is shared by actor and critic: critic gradients train it, the
//! actor sees its features detached (DrQ), so only the critic's optimizer
//! holds its parameters.
//!
//! A frozen pretrained trunk without augmentation gives each frame the
//! same features every time it is sampled: the replay then computes them
//! once, as the frame enters the store, and keeps the features instead of
//! the frame, so the learner's updates cost what a state learner's do (the
//! mode for CPU-only machines).

use tch::{Device, Kind, Tensor};

use rrl_types::rng::Rng;

use crate::nets::Param;
use crate::replay::{Batch, ReplayBuffer, Transition};

/// The pixel part of an observation and how the encoder treats it.
#[derive(Debug, Clone, PartialEq)]
pub struct PixelConfig {
    pub cameras: i64,
    pub height: i64,
    pub width: i64,
    /// Encoder output size. DrQ-v2/SERL use 50.
    pub feature_size: i64,
    /// Random shift of up to this many pixels each way (DrQ: 4 at 84x84); 0 turns it off.
    pub shift_pad: i64,
    /// Channels of the convolutions. DrQ-v2: 32.
    pub filters: i64,
    /// A frozen pretrained trunk instead of the convolutions: a TorchScript
    /// module taking [B, 3·cameras, H, W] float images in [0, 1] and giving
    /// [B, F] features, or a `.safetensors` encoder trained on the user's
    /// own demos by `rrl trunk train` (`crate::trunk`); only the head
    /// (linear, LayerNorm, tanh) trains.
    pub pretrained: Option<std::path::PathBuf>,
}

impl PixelConfig {
    /// Bytes of one observation's frames: cameras x height x width x RGB.
    pub fn frame_bytes(&self) -> usize {
        (self.cameras * self.height * self.width * 3) as usize
    }

    fn channels(&self) -> i64 {
        3 * self.cameras
    }

    /// Whether the replay keeps a frozen trunk's features rather than frames
    /// (a frozen trunk, and no random shift that would change them).
    pub fn precomputes(&self) -> bool {
        self.pretrained.is_some() && self.shift_pad == 0
    }

    /// How the frames this encoder takes are laid out.
    pub fn layout(&self) -> rrl_types::FrameLayout {
        rrl_types::FrameLayout { cameras: self.cameras as usize, height: self.height as usize, width: self.width as usize }
    }
}

fn uniform(rng: &mut Rng, shape: &[i64], fan_in: i64, device: Device) -> Tensor {
    let bound = 1.0 / (fan_in as f64).sqrt();
    let count: i64 = shape.iter().product();
    let values: Vec<f32> = (0..count).map(|_| rng.uniform(-bound, bound) as f32).collect();
    Tensor::from_slice(&values).reshape(shape).to_device(device).set_requires_grad(true)
}

/// The part of the encoder before its head.
enum Trunk {
    /// Trained with the critic.
    Convs(Vec<(Tensor, Tensor, i64)>),
    /// A pretrained trunk, never trained here, and its file's fingerprint.
    Frozen(FrozenTrunk, u64),
}

/// A pretrained trunk: a user's TorchScript module, or an encoder trained
/// on the user's own demos (`rrl trunk train`).
pub(crate) enum FrozenTrunk {
    TorchScript(tch::CModule),
    Trained(Box<ConvEncoder>),
}

impl FrozenTrunk {
    /// Features of u8 frames [B, C, H, W]: [B, F], without gradients.
    fn features(&self, images: &Tensor) -> Tensor {
        tch::no_grad(|| match self {
            FrozenTrunk::TorchScript(module) => module.forward_ts(&[images.to_kind(Kind::Float) / 255.0]).expect("the module ran on the probe at load"),
            FrozenTrunk::Trained(encoder) => encoder.forward(images),
        })
    }
}

/// Images to features. Input: u8 frames as [B, cameras*3, H, W] (any
/// integer or float kind holding 0..255).
pub struct ConvEncoder {
    trunk: Trunk,
    linear: (Tensor, Tensor),
    norm: (Tensor, Tensor),
    pub config: PixelConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    #[error("pretrained encoder {path}: cannot load: {reason}")]
    Load { path: std::path::PathBuf, reason: String },
    #[error("pretrained encoder {path}: for [1, {channels}, {height}, {width}] images it must give [1, F] features, it gave {got:?}")]
    Shape { path: std::path::PathBuf, channels: i64, height: i64, width: i64, got: Vec<i64> },
    #[error("pretrained encoder {path}: trained on frames of {trained}; the policy sees {given}")]
    Layout { path: std::path::PathBuf, trained: rrl_types::FrameLayout, given: rrl_types::FrameLayout },
}

/// A fingerprint of a file's bytes (FNV-1a): which trunk a head, a base or
/// a replay of features was made with.
pub fn file_fingerprint(path: &std::path::Path) -> std::io::Result<u64> {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    crate::checkpoint::fnv1a(&mut hash, &std::fs::read(path)?);
    // Stored as i64 in checkpoints: keep it positive.
    Ok(hash >> 1)
}

/// Loads a pretrained trunk (TorchScript, or `.safetensors` from `rrl
/// trunk train`, whose frames must be `config`'s) and probes it with one
/// blank observation of `config`'s frames; the trunk, its feature count
/// and the fingerprint of its file.
fn load_trunk(path: &std::path::Path, config: &PixelConfig, device: Device) -> Result<(FrozenTrunk, i64, u64), EncoderError> {
    let load = |reason: String| EncoderError::Load { path: path.to_path_buf(), reason };
    if !path.exists() {
        return Err(load("no such file: make one from recorded frames with `rrl trunk train`, or a TorchScript trunk with scripts/make_resnet10_trunk.py".into()));
    }
    let fingerprint = file_fingerprint(path).map_err(|e| load(e.to_string()))?;
    let probe = Tensor::zeros([1, config.channels(), config.height, config.width], (Kind::Uint8, device));
    let (trunk, size) = if path.extension().is_some_and(|e| e == "safetensors") {
        let trunk = FrozenTrunk::Trained(Box::new(crate::trunk::load(path, config.layout(), device)?));
        let size = trunk.features(&probe).size();
        (trunk, size)
    } else {
        let mut module = tch::CModule::load_on_device(path, device).map_err(|e| load(e.to_string()))?;
        module.set_eval();
        let out = tch::no_grad(|| module.forward_ts(&[probe.to_kind(Kind::Float)])).map_err(|e| load(e.to_string()))?;
        (FrozenTrunk::TorchScript(module), out.size())
    };
    if size.len() != 2 || size[0] != 1 || size[1] < 1 {
        return Err(EncoderError::Shape { path: path.to_path_buf(), channels: config.channels(), height: config.height, width: config.width, got: size });
    }
    Ok((trunk, size[1], fingerprint))
}

impl ConvEncoder {
    /// The encoder of `config`: convolutions trained with the critic, or a
    /// frozen TorchScript trunk, which is loaded and probed here.
    pub fn try_new(rng: &mut Rng, config: &PixelConfig, device: Device) -> Result<ConvEncoder, EncoderError> {
        let Some(path) = &config.pretrained else {
            return Ok(ConvEncoder::new(rng, config, device));
        };
        let (trunk, features, fingerprint) = load_trunk(path, config, device)?;
        let (linear, norm) = Self::head(rng, features, config.feature_size, device);
        Ok(ConvEncoder { trunk: Trunk::Frozen(trunk, fingerprint), linear, norm, config: config.clone() })
    }

    /// A frozen trunk's features of u8 frames [B, C, H, W] ([B, F], what
    /// `forward` takes precomputed); `None` for the trained convolutions.
    pub fn trunk_features(&self, images: &Tensor) -> Option<Tensor> {
        match &self.trunk {
            Trunk::Frozen(trunk, _) => Some(trunk.features(images)),
            Trunk::Convs(_) => None,
        }
    }

    /// The fingerprint of a frozen trunk's file; `None` for the trained convolutions.
    pub fn trunk_fingerprint(&self) -> Option<u64> {
        match &self.trunk {
            Trunk::Frozen(_, fingerprint) => Some(*fingerprint),
            Trunk::Convs(_) => None,
        }
    }

    fn head(rng: &mut Rng, flat: i64, features: i64, device: Device) -> ((Tensor, Tensor), (Tensor, Tensor)) {
        let linear = (uniform(rng, &[flat, features], flat, device), uniform(rng, &[features], flat, device));
        let norm = (
            Tensor::ones([features], (Kind::Float, device)).set_requires_grad(true),
            Tensor::zeros([features], (Kind::Float, device)).set_requires_grad(true),
        );
        (linear, norm)
    }

    /// The trainable convolutional encoder (DrQ-v2 shape).
    pub fn new(rng: &mut Rng, config: &PixelConfig, device: Device) -> ConvEncoder {
        let mut convs = Vec::new();
        let (mut channels, mut height, mut width) = (config.channels(), config.height, config.width);
        for stride in [2, 1, 1, 1] {
            let fan_in = channels * 9;
            convs.push((uniform(rng, &[config.filters, channels, 3, 3], fan_in, device), uniform(rng, &[config.filters], fan_in, device), stride));
            channels = config.filters;
            height = (height - 3) / stride + 1;
            width = (width - 3) / stride + 1;
        }
        assert!(height > 0 && width > 0, "frames of {}x{} are too small for the encoder (at least 15x15)", config.width, config.height);
        let flat = channels * height * width;
        let (linear, norm) = Self::head(rng, flat, config.feature_size, device);
        ConvEncoder { trunk: Trunk::Convs(convs), linear, norm, config: config.clone() }
    }

    /// Features of u8 frames [B, cameras*3, H, W] or, for a frozen trunk
    /// whose features the replay precomputed, of those features [B, F].
    pub fn forward(&self, images: &Tensor) -> Tensor {
        let h = match &self.trunk {
            Trunk::Frozen(..) if images.dim() == 2 => images.shallow_clone(),
            Trunk::Convs(convs) => {
                let mut h = images.to_kind(Kind::Float) / 255.0 - 0.5;
                for (weight, bias, stride) in convs {
                    h = h.conv2d(weight, Some(bias), [*stride, *stride], [0, 0], [1, 1], 1).relu();
                }
                h.flatten(1, -1)
            }
            // Frozen: no gradient reaches (or is kept for) the pretrained weights.
            Trunk::Frozen(trunk, _) => trunk.features(images),
        };
        let h = h.matmul(&self.linear.0) + &self.linear.1;
        h.layer_norm([self.config.feature_size], Some(&self.norm.0), Some(&self.norm.1), 1e-5, false).tanh()
    }

    /// Parameters in a fixed order, named `prefix.conv{i}.{weight,bias}`, `prefix.linear.*`, `prefix.norm.*`.
    /// The trained parameters (a frozen trunk has none).
    pub fn params(&self, prefix: &str) -> Vec<Param> {
        let mut out = Vec::new();
        if let Trunk::Convs(convs) = &self.trunk {
            for (i, (weight, bias, _)) in convs.iter().enumerate() {
                out.push(Param { name: format!("{prefix}.conv{i}.weight"), tensor: weight.shallow_clone() });
                out.push(Param { name: format!("{prefix}.conv{i}.bias"), tensor: bias.shallow_clone() });
            }
        }
        out.push(Param { name: format!("{prefix}.linear.weight"), tensor: self.linear.0.shallow_clone() });
        out.push(Param { name: format!("{prefix}.linear.bias"), tensor: self.linear.1.shallow_clone() });
        out.push(Param { name: format!("{prefix}.norm.gain"), tensor: self.norm.0.shallow_clone() });
        out.push(Param { name: format!("{prefix}.norm.offset"), tensor: self.norm.1.shallow_clone() });
        out
    }
}

/// `f` over the rows of `images`, `batch` at a time, without gradients;
/// the results concatenated (scoring many frames without holding every
/// intermediate at once).
pub fn in_batches(images: &Tensor, batch: i64, f: impl Fn(&Tensor) -> Tensor) -> Tensor {
    let n = images.size()[0];
    let parts: Vec<Tensor> = (0..n).step_by(batch.max(1) as usize).map(|start| tch::no_grad(|| f(&images.narrow(0, start, (n - start).min(batch))))).collect();
    Tensor::cat(&parts, 0)
}

/// Random shift (DrQ): each image is padded by `pad` pixels repeating its
/// border and cropped back at an offset drawn from libtorch's generator,
/// the same offset for all channels of one image. Computed for the whole
/// batch at once by sampling a shifted pixel grid (nearest pixel, so values
/// are copied exactly).
pub fn random_shift(images: &Tensor, pad: i64) -> Tensor {
    if pad == 0 {
        return images.shallow_clone();
    }
    let size = images.size();
    let (batch, height, width) = (size[0], size[2], size[3]);
    let device = images.device();
    let padded = images.to_kind(Kind::Float).replication_pad2d([pad, pad, pad, pad]);
    let (padded_h, padded_w) = (height + 2 * pad, width + 2 * pad);
    // Pixel centres of the padded image in [-1, 1] (align_corners = false), the first H x W of them.
    let centres = |n: i64, keep: i64| Tensor::linspace(-1.0 + 1.0 / n as f64, 1.0 - 1.0 / n as f64, n, (Kind::Float, device)).narrow(0, 0, keep);
    let xs = centres(padded_w, width).view([1, 1, width, 1]).expand([1, height, width, 1], false);
    let ys = centres(padded_h, height).view([1, height, 1, 1]).expand([1, height, width, 1], false);
    let base = Tensor::cat(&[xs, ys], 3);
    let steps = Tensor::randint(2 * pad + 1, [batch, 1, 1, 2], (Kind::Float, device));
    let scale = Tensor::from_slice(&[2.0 / padded_w as f32, 2.0 / padded_h as f32]).to_device(device).view([1, 1, 1, 2]);
    let grid = base + steps * scale;
    // Interpolation 1 = nearest, padding 0 = zeros (never reached: the grid stays inside).
    padded.grid_sampler(&grid, 1, 0, false)
}

/// Where a frame sits in a `PixelReplay`'s frame store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameId(u64);

/// A transition whose observations also have frames in the store.
#[derive(Debug, Clone, PartialEq)]
pub struct PixelTransition {
    pub state: Transition,
    pub frame: FrameId,
    pub next_frame: FrameId,
}

/// Replay for state + pixel observations. Frames are stored once, in a
/// ring of their own; a transition names its frames, so the next
/// observation of one step and the observation of the following step share
/// a frame. The frame ring holds `capacity` + 1/8 frames; when short
/// episodes use more frames than that, the oldest transitions whose frames
/// were overwritten are no longer sampled.
pub struct PixelReplay {
    states: ReplayBuffer,
    config: PixelConfig,
    /// The frozen trunk whose features are kept instead of frames, their
    /// count and the trunk file's fingerprint (`PixelConfig::precomputes`).
    trunk: Option<(FrozenTrunk, i64, u64)>,
    /// One record per frame: its RGB bytes, or its features as f32 bytes.
    frames: Vec<u8>,
    frame_capacity: u64,
    frames_added: u64,
    /// Per transition slot: (frame, next frame).
    frame_ids: Vec<(u64, u64)>,
    capacity: usize,
    next: usize,
    /// Slots, newest last, whose frames are all still stored.
    live: usize,
    device: Device,
}

impl PixelReplay {
    /// A replay for `config`'s frames; one that precomputes a frozen
    /// trunk's features loads the trunk here.
    pub fn new(state_size: usize, action_size: usize, config: &PixelConfig, capacity: usize, device: Device) -> Result<PixelReplay, EncoderError> {
        let trunk = match (&config.pretrained, config.precomputes()) {
            (Some(path), true) => Some(load_trunk(path, config, device)?),
            _ => None,
        };
        Ok(PixelReplay {
            states: ReplayBuffer::new(state_size, action_size, capacity, device),
            config: config.clone(),
            trunk,
            frames: Vec::new(),
            frame_capacity: (capacity + capacity / 8 + 2) as u64,
            frames_added: 0,
            frame_ids: vec![(0, 0); capacity],
            capacity,
            next: 0,
            live: 0,
            device,
        })
    }

    /// Bytes of one stored record: a frame, or its features.
    fn record_bytes(&self) -> usize {
        match &self.trunk {
            Some((_, features, _)) => 4 * *features as usize,
            None => self.config.frame_bytes(),
        }
    }

    /// Stores one observation's frames (cameras one after another, each
    /// H x W x RGB, row-major) and names them; a replay that precomputes
    /// stores the trunk's features of them instead.
    pub fn add_frame(&mut self, rgb: &[u8]) -> FrameId {
        let bytes = self.config.frame_bytes();
        assert_eq!(rgb.len(), bytes, "a frame of {} bytes, the replay stores {bytes}", rgb.len());
        match &self.trunk {
            None => self.add_record(rgb),
            Some((trunk, _, _)) => {
                let features = trunk.features(&frames_tensor(rgb, self.config.layout(), self.device)).to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
                let values: Vec<f32> = Vec::try_from(features.view([-1])).expect("f32 features");
                let record: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                self.add_record(&record)
            }
        }
    }

    /// Stores one record as `frame` returns it (frames, or precomputed
    /// features): how another replay's frames are copied in.
    pub fn add_record(&mut self, record: &[u8]) -> FrameId {
        let bytes = self.record_bytes();
        assert_eq!(record.len(), bytes, "a record of {} bytes, the replay stores {bytes}", record.len());
        let slot = (self.frames_added % self.frame_capacity) as usize;
        // The store grows as frames arrive, up to its capacity.
        if self.frames.len() < (slot + 1) * bytes {
            self.frames.resize((slot + 1) * bytes, 0);
        }
        self.frames[slot * bytes..(slot + 1) * bytes].copy_from_slice(record);
        self.frames_added += 1;
        let id = FrameId(self.frames_added - 1);
        // Transitions whose frames were just overwritten leave the sample.
        let oldest_kept = self.frames_added.saturating_sub(self.frame_capacity);
        while self.live > 0 {
            let oldest = (self.next + self.capacity - self.live) % self.capacity;
            if self.frame_ids[oldest].0 >= oldest_kept {
                break;
            }
            self.live -= 1;
        }
        id
    }

    /// The frame added `index`-th (0 = the first this replay was given),
    /// if it is still stored: a stream that numbers its frames in order
    /// names them by that number.
    pub fn stored_frame(&self, index: u64) -> Option<FrameId> {
        let id = FrameId(index);
        self.frame(id).is_some().then_some(id)
    }

    pub fn config(&self) -> &PixelConfig {
        &self.config
    }

    /// Frames added so far (the next one gets this index).
    pub fn frames_added(&self) -> u64 {
        self.frames_added
    }

    /// The stored record of a frame (its RGB bytes, or its features'
    /// f32 bytes when the replay precomputes), if it is still stored.
    pub fn frame(&self, id: FrameId) -> Option<&[u8]> {
        let bytes = self.record_bytes();
        (id.0 < self.frames_added && id.0 + self.frame_capacity >= self.frames_added).then(|| {
            let slot = (id.0 % self.frame_capacity) as usize;
            &self.frames[slot * bytes..(slot + 1) * bytes]
        })
    }

    pub fn push(&mut self, t: &PixelTransition) {
        assert!(self.frame(t.frame).is_some() && self.frame(t.next_frame).is_some(), "a transition must name stored frames");
        self.states.push(&t.state);
        self.frame_ids[self.next] = (t.frame.0, t.next_frame.0);
        self.next = (self.next + 1) % self.capacity;
        self.live = (self.live + 1).min(self.capacity);
    }

    /// Transitions that can be sampled.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Frames held (each once).
    pub fn frames_stored(&self) -> u64 {
        self.frames_added.min(self.frame_capacity)
    }

    /// `size` transitions drawn uniformly by libtorch's generator, with
    /// their frames as u8 [B, cameras*3, H, W] on the buffer's device.
    pub fn sample(&mut self, size: usize) -> Batch {
        assert!(self.live > 0, "sampling an empty replay buffer");
        let draws: Vec<i64> = Vec::try_from(Tensor::randint(self.live as i64, [size as i64], (Kind::Int64, Device::Cpu))).expect("i64 indices");
        let first = self.next + self.capacity - self.live;
        let slots: Vec<i64> = draws.iter().map(|&k| ((first + k as usize) % self.capacity) as i64).collect();
        let mut batch = self.states.sample_at(&Tensor::from_slice(&slots).to_device(self.device));
        let bytes = self.record_bytes();
        let (mut images, mut next_images) = (Vec::with_capacity(size * bytes), Vec::with_capacity(size * bytes));
        for &slot in &slots {
            let (frame, next) = self.frame_ids[slot as usize];
            images.extend_from_slice(self.frame(FrameId(frame)).expect("live transitions have their frames"));
            next_images.extend_from_slice(self.frame(FrameId(next)).expect("live transitions have their frames"));
        }
        let c = &self.config;
        let trunk_features = self.trunk.as_ref().map(|(_, f, _)| *f);
        let shape = |bytes: Vec<u8>| match trunk_features {
            // Precomputed: [B, F] features for the encoder's head.
            Some(features) => Tensor::from_data_size(&bytes, &[size as i64, features], Kind::Float).to_device(self.device),
            // Stored as [B, cameras, H, W, RGB]; the encoder wants [B, cameras*RGB, H, W].
            None => frames_tensor(&bytes, c.layout(), self.device),
        };
        batch.images = Some(shape(images));
        batch.next_images = Some(shape(next_images));
        batch
    }
}

impl PixelReplay {
    /// The sampleable transitions (oldest first) and the frames they name,
    /// as named CPU tensors for a checkpoint: `pixels.rows` (the state
    /// rows), `pixels.frame_ids` ([n, 2], frame and next frame, counted
    /// from the first saved frame) and `pixels.frames` ([frames, bytes], u8:
    /// each frame's record, its RGB or its precomputed features).
    pub fn export(&mut self) -> Vec<(String, Tensor)> {
        let rows = self.states.export_rows();
        let live = self.live as i64;
        let rows = rows.narrow(0, rows.size()[0] - live, live);
        let first = self.next + self.capacity - self.live;
        let ids: Vec<(u64, u64)> = (0..self.live).map(|k| self.frame_ids[(first + k) % self.capacity]).collect();
        let oldest = ids.iter().map(|&(a, b)| a.min(b)).min().unwrap_or(self.frames_added);
        let bytes = self.record_bytes();
        let mut frames = Vec::with_capacity((self.frames_added - oldest) as usize * bytes);
        for id in oldest..self.frames_added {
            frames.extend_from_slice(self.frame(FrameId(id)).expect("frames of live transitions are stored"));
        }
        let relative: Vec<i64> = ids.iter().flat_map(|&(a, b)| [(a - oldest) as i64, (b - oldest) as i64]).collect();
        let mut tensors = vec![
            ("pixels.rows".into(), rows),
            ("pixels.frame_ids".into(), Tensor::from_slice(&relative).view([live, 2])),
            ("pixels.frames".into(), Tensor::from_slice(&frames).view([(self.frames_added - oldest) as i64, bytes as i64])),
        ];
        if let Some((_, _, fingerprint)) = &self.trunk {
            // Features are only good for the trunk that computed them.
            tensors.push(("pixels.trunk".into(), Tensor::from_slice(&[*fingerprint as i64])));
        }
        tensors
    }

    /// Replaces the contents with what `export` wrote; refuses (saying why)
    /// tensors that do not fit this buffer's frames or capacity.
    pub fn import(&mut self, tensors: &[(String, Tensor)]) -> Result<(), String> {
        let find = |name: &str| tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t).ok_or_else(|| format!("no `{name}`"));
        let (rows, ids, frames) = (find("pixels.rows")?, find("pixels.frame_ids")?, find("pixels.frames")?);
        let saved_trunk = find("pixels.trunk").ok().map(|t| t.int64_value(&[0]) as u64);
        let our_trunk = self.trunk.as_ref().map(|(_, _, fingerprint)| *fingerprint);
        if saved_trunk != our_trunk {
            let describe = |trunk: Option<u64>| trunk.map_or("frames".to_string(), |h| format!("features of the trunk of fingerprint {h:#018x}"));
            return Err(format!("saved {}; this learner keeps {}", describe(saved_trunk), describe(our_trunk)));
        }
        let bytes = self.record_bytes();
        let (saved_frames, saved_bytes) = match frames.size()[..] {
            [n, b] => (n as u64, b as usize),
            ref other => return Err(format!("`pixels.frames` of shape {other:?}, expected [frames, bytes]")),
        };
        if saved_bytes != bytes {
            let kept = match &self.trunk {
                Some((_, features, _)) => format!("{features} precomputed trunk features"),
                None => format!("{} x {}x{} RGB", self.config.cameras, self.config.height, self.config.width),
            };
            return Err(format!("saved frames of {saved_bytes} bytes; this learner keeps {bytes} a frame ({kept})"));
        }
        let live = rows.size()[0] as usize;
        if ids.size() != [live as i64, 2] {
            return Err(format!("`pixels.frame_ids` of shape {:?} for {live} rows", ids.size()));
        }
        if live > self.capacity || saved_frames > self.frame_capacity {
            return Err(format!("{live} transitions and {saved_frames} frames saved; this buffer holds {} and {}", self.capacity, self.frame_capacity));
        }
        let ids: Vec<i64> = Vec::try_from(ids.reshape([-1]).to_kind(Kind::Int64)).map_err(|e: tch::TchError| e.to_string())?;
        if let Some(bad) = ids.iter().find(|&&id| id < 0 || id as u64 >= saved_frames) {
            return Err(format!("a transition names frame {bad} of {saved_frames} saved"));
        }
        self.states.import_rows(rows)?;
        let frames: Vec<u8> = Vec::try_from(frames.reshape([-1]).to_kind(Kind::Uint8)).map_err(|e: tch::TchError| e.to_string())?;
        self.frames.clear();
        self.frames_added = 0;
        self.live = 0;
        for record in frames.chunks_exact(bytes) {
            self.add_record(record);
        }
        for (slot, pair) in ids.chunks_exact(2).enumerate() {
            self.frame_ids[slot] = (pair[0] as u64, pair[1] as u64);
        }
        self.next = live % self.capacity;
        self.live = live;
        Ok(())
    }
}

/// Whole frames (each the layout's cameras one after another, H x W x RGB,
/// row-major) as the encoder takes them: [N, cameras·3, H, W] u8 on `device`.
pub fn frames_tensor(rgb: &[u8], layout: rrl_types::FrameLayout, device: Device) -> Tensor {
    let (c, h, w) = (layout.cameras as i64, layout.height as i64, layout.width as i64);
    Tensor::from_slice(rgb).to_device(device).view([-1, c, h, w, 3]).permute([0, 1, 4, 2, 3]).reshape([-1, 3 * c, h, w])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(cameras: i64, side: i64) -> PixelConfig {
        PixelConfig { cameras, height: side, width: side, feature_size: 8, shift_pad: 2, filters: 4, pretrained: None }
    }

    /// Every shifted image is its padded original cropped at one of the
    /// (2 pad + 1)² offsets, the same for all its channels; offsets vary.
    #[test]
    fn a_random_shift_is_a_crop_of_the_border_padded_image() {
        tch::manual_seed(5);
        let pad = 2;
        let images = Tensor::randint(256, [6, 3, 10, 12], (Kind::Float, Device::Cpu));
        let shifted = random_shift(&images, pad);
        assert_eq!(shifted.size(), images.size());
        let padded = images.replication_pad2d([pad, pad, pad, pad]);
        let mut offsets = std::collections::HashSet::new();
        for b in 0..6 {
            let found: Vec<(i64, i64)> = (0..=2 * pad)
                .flat_map(|dy| (0..=2 * pad).map(move |dx| (dy, dx)))
                .filter(|&(dy, dx)| {
                    let crop = padded.get(b).narrow(1, dy, 10).narrow(2, dx, 12);
                    crop.equal(&shifted.get(b))
                })
                .collect();
            assert!(!found.is_empty(), "image {b} is no crop of its padded original");
            offsets.insert(found[0]);
        }
        assert!(offsets.len() > 1, "six images all shifted alike: {offsets:?}");
        assert!(random_shift(&images, 0).equal(&images));
    }

    /// Two cameras of 2x2: frames round-trip into [B, 6, H, W] with each
    /// camera's RGB planes in place, next frames are the following step's
    /// frames, and each frame is stored once.
    #[test]
    fn the_frame_store_keeps_each_frame_once_and_rebuilds_next_observations() {
        let config = config(2, 2);
        let mut replay = PixelReplay::new(1, 1, &config, 100, Device::Cpu).unwrap();
        // Frame k: every byte of camera c, channel ch = 10k + 3c + ch.
        let frame = |k: u8| -> Vec<u8> { (0..2u8).flat_map(|c| (0..4).flat_map(move |_| (0..3u8).map(move |ch| 10 * k + 3 * c + ch))).collect() };
        let mut previous = replay.add_frame(&frame(0));
        for k in 1..=5u8 {
            let next = replay.add_frame(&frame(k));
            let state = Transition { observation: vec![f32::from(k - 1)], action: vec![0.0], reward: 0.0, next_observation: vec![f32::from(k)], terminal: false, discount: 0.99 };
            replay.push(&PixelTransition { state, frame: previous, next_frame: next });
            previous = next;
        }
        assert_eq!((replay.len(), replay.frames_stored()), (5, 6), "five steps of one episode: six frames, not ten");
        tch::manual_seed(1);
        let batch = replay.sample(16);
        let (images, next_images) = (batch.images.unwrap(), batch.next_images.unwrap());
        assert_eq!(images.size(), [16, 6, 2, 2]);
        for row in 0..16 {
            let k = batch.observation.double_value(&[row, 0]) as i64;
            for plane in 0..6 {
                let (c, ch) = (plane / 3, plane % 3);
                assert_eq!(images.int64_value(&[row, plane, 1, 0]), 10 * k + 3 * c + ch, "row {row} plane {plane}");
                assert_eq!(next_images.int64_value(&[row, plane, 0, 1]), 10 * (k + 1) + 3 * c + ch);
            }
        }
    }

    /// One-step episodes use two frames per transition: once the frame ring
    /// wraps, transitions whose frames were overwritten are never sampled.
    #[test]
    fn transitions_whose_frames_were_overwritten_leave_the_sample() {
        let config = config(1, 1);
        let mut replay = PixelReplay::new(1, 1, &config, 16, Device::Cpu).unwrap();
        for k in 0..40u8 {
            let first = replay.add_frame(&[k, k, k]);
            let second = replay.add_frame(&[k, k, 255 - k]);
            let state = Transition { observation: vec![f32::from(k)], action: vec![0.0], reward: 0.0, next_observation: vec![0.0], terminal: true, discount: 0.99 };
            replay.push(&PixelTransition { state, frame: first, next_frame: second });
        }
        assert!(replay.len() < 16 && replay.len() >= 8, "live transitions: {}", replay.len());
        tch::manual_seed(2);
        let batch = replay.sample(64);
        let images = batch.images.unwrap();
        let next_images = batch.next_images.unwrap();
        for row in 0..64 {
            let k = batch.observation.double_value(&[row, 0]) as i64;
            assert!(k >= 40 - replay.len() as i64, "sampled an evicted transition {k}");
            assert_eq!(images.int64_value(&[row, 0, 0, 0]), k);
            assert_eq!(next_images.int64_value(&[row, 2, 0, 0]), 255 - k);
        }
    }

    /// A saved replay (after its frame ring wrapped) restores the same
    /// transitions with the same frames: identical samples for one seed;
    /// frames of another size are refused, saying both sizes.
    #[test]
    fn an_exported_replay_imports_to_identical_samples() {
        let config = config(2, 2);
        let mut replay = PixelReplay::new(1, 1, &config, 24, Device::Cpu).unwrap();
        let frame = |k: u8| -> Vec<u8> { (0..24u8).map(|i| k.wrapping_mul(7).wrapping_add(i)).collect() };
        let mut previous = replay.add_frame(&frame(0));
        for k in 1..60u8 {
            let next = replay.add_frame(&frame(k));
            let state = Transition { observation: vec![f32::from(k)], action: vec![0.5], reward: f32::from(k) * 0.1, next_observation: vec![f32::from(k) + 1.0], terminal: k % 9 == 0, discount: 0.99 };
            replay.push(&PixelTransition { state, frame: previous, next_frame: next });
            // Episodes of 9 steps: a reset observation gets a frame of its own.
            previous = if k % 9 == 0 { replay.add_frame(&frame(k.wrapping_add(100))) } else { next };
        }
        let saved = replay.export();
        let mut restored = PixelReplay::new(1, 1, &config, 24, Device::Cpu).unwrap();
        restored.import(&saved).unwrap();
        assert_eq!(restored.len(), replay.len());
        tch::manual_seed(8);
        let a = replay.sample(32);
        tch::manual_seed(8);
        let b = restored.sample(32);
        assert!(a.observation.equal(&b.observation) && a.reward.equal(&b.reward) && a.terminal.equal(&b.terminal));
        assert!(a.images.unwrap().equal(&b.images.unwrap()) && a.next_images.unwrap().equal(&b.next_images.unwrap()));
        // The restored buffer keeps going: new frames evict the oldest as before.
        let id = restored.add_frame(&frame(200));
        assert_eq!(restored.frame(id).unwrap(), &frame(200)[..]);
        let mut other = PixelReplay::new(1, 1, &super::PixelConfig { cameras: 1, ..config.clone() }, 24, Device::Cpu).unwrap();
        let err = other.import(&saved).unwrap_err();
        assert!(err.contains("24 bytes") && err.contains("12"), "{err}");
    }

    #[test]
    fn the_encoder_maps_a_batch_of_frames_to_bounded_features() {
        let mut rng = Rng::seed(4);
        let config = config(2, 16);
        let encoder = ConvEncoder::new(&mut rng, &config, Device::Cpu);
        let images = Tensor::randint(256, [5, 6, 16, 16], (Kind::Uint8, Device::Cpu));
        let features = encoder.forward(&images);
        assert_eq!(features.size(), [5, 8]);
        assert!(features.abs().max().double_value(&[]) <= 1.0);
        assert!((features.get(0) - features.get(1)).abs().max().double_value(&[]) > 1e-4, "different frames, different features");
        assert_eq!(encoder.params("enc").len(), 4 * 2 + 4);
    }
}
