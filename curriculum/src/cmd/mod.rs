//! One module per subcommand: its clap `Args` and a `run`.

pub mod flops;
pub mod svd_image;
pub mod tucker;
