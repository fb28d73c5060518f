//! One module per subcommand: its clap `Args` and a `run`.

pub mod chat;
pub mod compress;
pub mod device;
pub mod embed;
pub mod exercise;
pub mod findings;
pub mod flops;
pub mod generate;
pub mod inspect;
pub mod lora;
pub mod svd_image;
pub mod sweep;
pub mod train;
pub mod tucker;
