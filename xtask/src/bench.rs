pub fn math(_sh: &xshell::Shell) -> anyhow::Result<()> { anyhow::bail!("todo") }
