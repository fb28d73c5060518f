//! One module per subcommand: its clap `Args` and a `run`.

pub mod device;
pub mod embed;
pub mod flops;
pub mod generate;
pub mod lora;
pub mod svd_image;
pub mod train;
pub mod tucker;
