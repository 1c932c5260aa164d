//! Checkpoints of the whole learner state in safetensors: networks, target
//! critics, temperature, the optimizers' moments and step counts, the update
//! counter and the generator state, plus a checksum over all of it. Written
//! atomically (temporary file, fsync, rename, fsync of the folder), so a
//! crash leaves either the old checkpoint or the new one, never half of one.

use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor};

use rrl_types::rng::Rng;

use crate::adam::Adam;
use crate::sac::Sac;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint {path}: cannot write: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("checkpoint {path}: unreadable or truncated: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("checkpoint {path}: checksum mismatch (stored {stored:#018x}, computed {computed:#018x}); the file was damaged after it was written")]
    Checksum { path: PathBuf, stored: u64, computed: u64 },
    #[error("checkpoint {path}: tensor `{name}` is missing; it was written for another network layout")]
    Missing { path: PathBuf, name: String },
    #[error("checkpoint {path}: holds tensor `{name}`, which this network does not have; it was written for another network layout (e.g. one with pixels)")]
    Unexpected { path: PathBuf, name: String },
    #[error("checkpoint {path}: tensor `{name}` has shape {found:?}, this network needs {expected:?}")]
    Shape { path: PathBuf, name: String, expected: Vec<i64>, found: Vec<i64> },
    #[error("checkpoint {path}: written with {saved}, this learner has {ours}: its head was trained on another trunk's features")]
    Trunk { path: PathBuf, saved: String, ours: String },
}

impl CheckpointError {
    /// The write failed for want of space (disk or quota full, file size
    /// limit): it succeeds once space is freed.
    pub fn is_storage_full(&self) -> bool {
        // libtorch reports I/O failures as text; these are Linux's ENOSPC, EDQUOT and EFBIG.
        matches!(self, CheckpointError::Write { reason, .. } if ["(os error 28)", "(os error 122)", "(os error 27)", "No space left on device"].iter().any(|m| reason.contains(m)))
    }
}

const CHECKSUM: &str = "meta.checksum";
/// The fingerprint of a frozen trunk's file (absent for a trained encoder).
const TRUNK: &str = "meta.trunk";

pub(crate) fn fnv1a(hash: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *hash ^= u64::from(*b);
        *hash = hash.wrapping_mul(0x0000_0100_0000_01B3);
    }
}

/// Checksum of named tensors in name order (bytes of names and contents).
fn checksum(tensors: &[(String, Tensor)]) -> u64 {
    let mut sorted: Vec<&(String, Tensor)> = tensors.iter().filter(|(n, _)| n != CHECKSUM).collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for (name, tensor) in sorted {
        fnv1a(&mut hash, name.as_bytes());
        let cpu = tensor.to_device(Device::Cpu).contiguous();
        let bytes = cpu.numel() * cpu.kind().elt_size_in_bytes();
        let mut buffer = vec![0u8; bytes];
        cpu.copy_data_u8(&mut buffer, cpu.numel());
        fnv1a(&mut hash, &buffer);
    }
    hash
}

fn u64s_to_tensor(values: &[u64]) -> Tensor {
    let as_i64: Vec<i64> = values.iter().map(|&v| v as i64).collect();
    Tensor::from_slice(&as_i64)
}

fn optimizer_tensors(prefix: &str, opt: &Adam, out: &mut Vec<(String, Tensor)>) {
    for (i, (m, v)) in opt.first_moments.iter().zip(&opt.second_moments).enumerate() {
        out.push((format!("{prefix}.m{i}"), m.to_device(Device::Cpu)));
        out.push((format!("{prefix}.v{i}"), v.to_device(Device::Cpu)));
    }
    out.push((format!("{prefix}.steps"), Tensor::from_slice(&[opt.steps])));
}

/// Every tensor of the learner's state, by name, on the CPU.
pub fn state_tensors(sac: &Sac) -> Vec<(String, Tensor)> {
    let mut out: Vec<(String, Tensor)> = Vec::new();
    for p in sac.actor.trunk.params("actor").into_iter().chain(sac.critic.params("critic")).chain(sac.target.params("target")) {
        out.push((p.name, p.tensor.detach().to_device(Device::Cpu)));
    }
    for p in sac.encoder.iter().flat_map(|e| e.params("encoder")) {
        out.push((p.name, p.tensor.detach().to_device(Device::Cpu)));
    }
    out.push(("log_temperature".into(), sac.log_temperature.detach().to_device(Device::Cpu)));
    optimizer_tensors("adam.actor", &sac.actor_opt, &mut out);
    optimizer_tensors("adam.critic", &sac.critic_opt, &mut out);
    optimizer_tensors("adam.temperature", &sac.temperature_opt, &mut out);
    out.push(("meta.updates".into(), u64s_to_tensor(&[sac.updates])));
    if let Some(trunk) = sac.encoder.as_ref().and_then(crate::pixels::ConvEncoder::trunk_fingerprint) {
        out.push((TRUNK.into(), u64s_to_tensor(&[trunk])));
    }
    out.push(("meta.rng".into(), u64s_to_tensor(&sac.rng.state())));
    out
}

/// Writes `tensors` to `path` atomically, with a checksum.
pub fn write_atomically(path: &Path, mut tensors: Vec<(String, Tensor)>) -> Result<(), CheckpointError> {
    let fail = |reason: String| CheckpointError::Write { path: path.to_path_buf(), reason };
    let sum = checksum(&tensors);
    tensors.push((CHECKSUM.into(), u64s_to_tensor(&[sum])));
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let sync = |p: &Path| std::fs::File::open(p).and_then(|f| f.sync_all());
    let written = Tensor::write_safetensors(&tensors, &temporary).map_err(|e| fail(e.to_string())).and_then(|()| sync(&temporary).map_err(|e| fail(format!("fsync: {e}"))));
    if let Err(e) = written {
        // A partial temporary file would only hold space the retry needs.
        let _ = std::fs::remove_file(&temporary);
        return Err(e);
    }
    std::fs::rename(&temporary, path).map_err(|e| fail(format!("rename: {e}")))?;
    sync(dir).map_err(|e| fail(format!("fsync of the folder: {e}")))?;
    Ok(())
}

/// Why stored tensors do not fit a network's parameters.
#[derive(Debug)]
pub enum ParamMismatch {
    Missing(String),
    Shape { name: String, stored: Vec<i64>, needed: Vec<i64> },
}

/// Copies each of `params` from the tensor of its name in `stored`,
/// without gradients; the first one missing or of another shape stops it.
pub fn copy_params(params: impl IntoIterator<Item = crate::nets::Param>, stored: &[(String, Tensor)]) -> Result<(), ParamMismatch> {
    tch::no_grad(|| {
        for param in params {
            let (_, value) = stored.iter().find(|(n, _)| *n == param.name).ok_or_else(|| ParamMismatch::Missing(param.name.clone()))?;
            if value.size() != param.tensor.size() {
                return Err(ParamMismatch::Shape { stored: value.size(), needed: param.tensor.size(), name: param.name });
            }
            param.tensor.shallow_clone().copy_(value);
        }
        Ok(())
    })
}

/// Reads a file written by `write_atomically`, verifying its checksum.
pub fn read_verified(path: &Path) -> Result<Vec<(String, Tensor)>, CheckpointError> {
    let tensors = Tensor::read_safetensors(path).map_err(|e| CheckpointError::Corrupt { path: path.to_path_buf(), reason: e.to_string() })?;
    let stored = tensors
        .iter()
        .find(|(n, _)| n == CHECKSUM)
        .map(|(_, t)| t.int64_value(&[0]) as u64)
        .ok_or_else(|| CheckpointError::Missing { path: path.to_path_buf(), name: CHECKSUM.into() })?;
    let computed = checksum(&tensors);
    if stored != computed {
        return Err(CheckpointError::Checksum { path: path.to_path_buf(), stored, computed });
    }
    Ok(tensors)
}

/// Saves the learner, with `extra` named counters (e.g. environment steps).
pub fn save(sac: &Sac, path: &Path, extra: &[(&str, u64)]) -> Result<(), CheckpointError> {
    let mut tensors = state_tensors(sac);
    tensors.extend(extra.iter().map(|(name, value)| (format!("extra.{name}"), u64s_to_tensor(&[*value]))));
    write_atomically(path, tensors)
}

/// A counter saved through `save`'s `extra`.
pub fn read_extra(path: &Path, name: &str) -> Result<u64, CheckpointError> {
    let key = format!("extra.{name}");
    read_verified(path)?
        .iter()
        .find(|(n, _)| *n == key)
        .map(|(_, t)| t.int64_value(&[0]) as u64)
        .ok_or_else(|| CheckpointError::Missing { path: path.to_path_buf(), name: key })
}

/// Restores a learner saved by `save` into `sac`, which must have the same
/// layout; nothing is changed unless every tensor fits.
pub fn load(sac: &mut Sac, path: &Path) -> Result<(), CheckpointError> {
    let stored = read_verified(path)?;
    let find = |name: &str| stored.iter().find(|(n, _)| n == name).map(|(_, t)| t);
    let ours = state_tensors(sac);
    // The frozen trunk the head was trained on, when either side has one.
    let trunk_of = |tensors: Option<&Tensor>| tensors.map(|t| t.int64_value(&[0]) as u64);
    let (saved_trunk, our_trunk) = (trunk_of(find(TRUNK)), trunk_of(ours.iter().find(|(n, _)| n == TRUNK).map(|(_, t)| t)));
    if saved_trunk != our_trunk {
        let describe = |trunk: Option<u64>| trunk.map_or("the trained DrQ encoder".to_string(), |h| format!("the frozen trunk of fingerprint {h:#018x}"));
        return Err(CheckpointError::Trunk { path: path.to_path_buf(), saved: describe(saved_trunk), ours: describe(our_trunk) });
    }
    // Check everything before touching anything.
    for (name, _) in &stored {
        if name != CHECKSUM && !name.starts_with("extra.") && !ours.iter().any(|(n, _)| n == name) {
            return Err(CheckpointError::Unexpected { path: path.to_path_buf(), name: name.clone() });
        }
    }
    for (name, tensor) in &ours {
        let found = find(name).ok_or_else(|| CheckpointError::Missing { path: path.to_path_buf(), name: name.clone() })?;
        if found.size() != tensor.size() {
            return Err(CheckpointError::Shape { path: path.to_path_buf(), name: name.clone(), expected: tensor.size(), found: found.size() });
        }
    }
    let device = sac.device;
    tch::no_grad(|| {
        let copy_params = |params: Vec<crate::nets::Param>| {
            for mut p in params {
                p.tensor.copy_(&find(&p.name).expect("checked above").to_device(device));
            }
        };
        copy_params(sac.actor.trunk.params("actor"));
        copy_params(sac.critic.params("critic"));
        copy_params(sac.target.params("target"));
        if let Some(encoder) = &sac.encoder {
            copy_params(encoder.params("encoder"));
        }
        sac.log_temperature.copy_(&find("log_temperature").expect("checked").to_device(device));
        for (prefix, opt) in [("adam.actor", &mut sac.actor_opt), ("adam.critic", &mut sac.critic_opt), ("adam.temperature", &mut sac.temperature_opt)] {
            for i in 0..opt.first_moments.len() {
                opt.first_moments[i].copy_(&find(&format!("{prefix}.m{i}")).expect("checked").to_device(device));
                opt.second_moments[i].copy_(&find(&format!("{prefix}.v{i}")).expect("checked").to_device(device));
            }
            opt.steps = find(&format!("{prefix}.steps")).expect("checked").int64_value(&[0]);
        }
    });
    sac.updates = find("meta.updates").expect("checked").int64_value(&[0]) as u64;
    let rng = find("meta.rng").expect("checked");
    sac.rng = Rng::from_state(std::array::from_fn(|i| rng.int64_value(&[i as i64]) as u64));
    Ok(())
}

/// Saves a replay buffer's rows (oldest first) atomically.
pub fn save_replay(replay: &mut crate::replay::ReplayBuffer, path: &Path) -> Result<(), CheckpointError> {
    write_atomically(path, vec![("replay.rows".into(), replay.export_rows())])
}

/// Loads rows saved by `save_replay` into `replay`.
pub fn load_replay(replay: &mut crate::replay::ReplayBuffer, path: &Path) -> Result<(), CheckpointError> {
    let stored = read_verified(path)?;
    let rows = stored.iter().find(|(n, _)| n == "replay.rows").map(|(_, t)| t).ok_or_else(|| CheckpointError::Missing { path: path.to_path_buf(), name: "replay.rows".into() })?;
    replay.import_rows(&rows.to_kind(Kind::Float)).map_err(|reason| CheckpointError::Corrupt { path: path.to_path_buf(), reason })
}

/// Exports an MLP for the safety gate's pure-Rust risk critic:
/// `layer{i}.weight` [out, in] and `layer{i}.bias` [out], f32, atomically.
/// `layers` are (weight [in, out], bias [out]) as this crate stores them.
pub fn export_risk_critic(layers: &[(Tensor, Tensor)], path: &Path) -> Result<(), CheckpointError> {
    let tensors = layers
        .iter()
        .enumerate()
        .flat_map(|(i, (w, b))| {
            [
                (format!("layer{i}.weight"), w.detach().to_device(Device::Cpu).to_kind(Kind::Float).transpose(0, 1).contiguous()),
                (format!("layer{i}.bias"), b.detach().to_device(Device::Cpu).to_kind(Kind::Float).reshape([-1])),
            ]
        })
        .collect();
    write_atomically(path, tensors)
}
