//! Placeholder until this subcommand lands.

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: &Args) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
