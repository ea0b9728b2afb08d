//! The `iap-ssh` binary: parse arguments, run, print one line on failure.

use clap::Parser;

fn main() {
    let cli = iap_ssh::cli::Cli::parse();
    if cli.verbose > 0 {
        let level = if cli.verbose > 1 {
            tracing::Level::DEBUG
        } else {
            tracing::Level::INFO
        };
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_max_level(level)
            .with_target(false)
            .without_time()
            .with_ansi(iap_ssh::cli::color_enabled(
                std::io::IsTerminal::is_terminal(&std::io::stderr()),
            ))
            .init();
    }
    let code = match iap_ssh::cli::run(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}", e.line());
            e.code
        }
    };
    std::process::exit(code);
}
