//! `iap-ssh man`: one man page rendered from the clap definitions: the
//! main page, then a synopsis and options section per subcommand.

use std::io::Write;

use clap::Args;

use crate::error::{UserError, exit};

#[derive(Debug, Args)]
pub struct ManArgs {}

fn render(cmd: clap::Command) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
    for sub in cmd.get_subcommands() {
        let full = format!("iap-ssh {}", sub.get_name());
        writeln!(out, ".SH \"{}\"", full.to_uppercase())?;
        if let Some(about) = sub.get_about() {
            writeln!(out, "{}", about.to_string().replace('\\', "\\\\"))?;
        }
        let cmd = sub.clone().bin_name(full);
        let man = clap_mangen::Man::new(cmd);
        let mut section = Vec::new();
        man.render_synopsis_section(&mut section)?;
        man.render_options_section(&mut section)?;
        // Sub-sections, not new top-level sections.
        let text = String::from_utf8_lossy(&section).replace(".SH ", ".SS ");
        out.extend_from_slice(text.as_bytes());
    }
    Ok(out)
}

/// `cmd`: the whole command line, from the caller (which owns its definition).
pub fn run(_: ManArgs, cmd: clap::Command) -> Result<i32, UserError> {
    let out = render(cmd)
        .map_err(|e| UserError::new(exit::OTHER, format!("cannot render the man page: {e}")))?;
    let _ = std::io::stdout().write_all(&out);
    Ok(exit::OK)
}
