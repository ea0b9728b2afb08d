//! `iap-ssh completions SHELL`: prints a completion script (the files in
//! `completions/` are generated with it).

use clap::Args;
use clap_complete::Shell;

use crate::error::UserError;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell
    pub shell: Shell,
}

/// `cmd`: the whole command line, from the caller (which owns its definition).
pub fn run(a: CompletionsArgs, mut cmd: clap::Command) -> Result<i32, UserError> {
    clap_complete::generate(a.shell, &mut cmd, "iap-ssh", &mut std::io::stdout());
    Ok(0)
}
