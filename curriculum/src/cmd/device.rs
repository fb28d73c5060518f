//! `--device cpu|cuda`, the same flag for every model subcommand.

use anyhow::{Result, bail};
use models::candle::Device;

#[derive(Clone, Copy, Debug, Default, clap::ValueEnum)]
pub enum DeviceArg {
    #[default]
    Cpu,
    /// The first CUDA GPU; needs a build with `--features cuda`.
    Cuda,
}

impl DeviceArg {
    pub fn open(self) -> Result<Device> {
        match self {
            DeviceArg::Cpu => Ok(Device::Cpu),
            DeviceArg::Cuda if cfg!(feature = "cuda") => Ok(Device::new_cuda(0)?),
            DeviceArg::Cuda => bail!(
                "this lowrank was built without CUDA: rebuild with `cargo build --release --features cuda` \
                 (needs nvcc), or use --device cpu"
            ),
        }
    }
}
