//! Choosing where tensors live: CUDA when asked for or available, else CPU.

use rrl_types::config::DeviceChoice;
use tch::Device;

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("CUDA was requested (learner.device: Cuda) but libtorch sees no GPU; use Auto or Cpu, or check the NVIDIA driver")]
    CudaUnavailable,
}

/// What libtorch reports about CUDA in this process.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CudaReport {
    pub cuda_available: bool,
    pub cudnn_available: bool,
    pub device_count: i64,
}

impl CudaReport {
    pub fn probe() -> CudaReport {
        CudaReport {
            cuda_available: tch::Cuda::is_available(),
            cudnn_available: tch::Cuda::cudnn_is_available(),
            device_count: tch::Cuda::device_count(),
        }
    }
}

/// Threads libtorch uses for one CPU operation (process-wide).
pub fn set_cpu_threads(threads: usize) {
    tch::set_num_threads(threads as i32);
}

/// The device for a configured choice.
pub fn select_device(choice: DeviceChoice) -> Result<Device, PolicyError> {
    let cuda = tch::Cuda::is_available();
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Auto if cuda => Ok(Device::Cuda(0)),
        DeviceChoice::Auto => Ok(Device::Cpu),
        DeviceChoice::Cuda if cuda => Ok(Device::Cuda(0)),
        DeviceChoice::Cuda => Err(PolicyError::CudaUnavailable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::{self, Module, OptimizerConfig};
    use tch::{Kind, Tensor};

    #[test]
    fn cpu_is_always_selectable_and_cuda_choice_matches_the_probe() {
        assert_eq!(select_device(DeviceChoice::Cpu).unwrap(), Device::Cpu);
        let report = CudaReport::probe();
        assert_eq!(select_device(DeviceChoice::Cuda).is_ok(), report.cuda_available);
        assert_eq!(report.cuda_available, report.device_count > 0);
    }

    /// A real Adam step on CPU: an MLP fits a fixed regression target, and the
    /// loss falls by more than half within 200 steps.
    #[test]
    fn mlp_adam_steps_reduce_a_regression_loss_on_cpu() {
        tch::manual_seed(7);
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let net = nn::seq()
            .add(nn::linear(&root / "l1", 8, 64, Default::default()))
            .add_fn(|x| x.relu())
            .add(nn::linear(&root / "l2", 64, 1, Default::default()));
        let mut opt = nn::Adam::default().build(&vs, 1e-3).unwrap();
        let x = Tensor::randn([256, 8], (Kind::Float, Device::Cpu));
        let y = x.sum_dim_intlist(1, true, Kind::Float).sin();
        let loss_of = |net: &nn::Sequential| net.forward(&x).mse_loss(&y, tch::Reduction::Mean);
        let initial = loss_of(&net).double_value(&[]);
        for _ in 0..200 {
            let loss = loss_of(&net);
            opt.backward_step(&loss);
        }
        let last = loss_of(&net).double_value(&[]);
        assert!(last < 0.5 * initial, "loss {initial} -> {last}");
    }
}
