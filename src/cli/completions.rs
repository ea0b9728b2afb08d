//! `iap-ssh completions SHELL`: prints a completion script (the files in
//! `completions/` are generated with it).

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::error::UserError;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell
    pub shell: Shell,
}

pub fn run(a: CompletionsArgs) -> Result<i32, UserError> {
    let mut cmd = super::Cli::command();
    clap_complete::generate(a.shell, &mut cmd, "iap-ssh", &mut std::io::stdout());
    Ok(0)
}
