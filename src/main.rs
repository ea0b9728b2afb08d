//! The `iap-ssh` binary: parse arguments, run, print one line on failure.

use clap::Parser;

/// A panic is a bug, but the user still gets one line, not a backtrace,
/// and stdin/stdout are put back as they were (non-blocking flags on a
/// shared terminal or pipe would break the parent shell or ssh).
fn panic_hook(info: &std::panic::PanicHookInfo<'_>) {
    iap_ssh::tunnel::stdio::restore_flags_after_panic();
    let what = info
        .payload()
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| info.payload().downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into());
    let at = info
        .location()
        .map(|l| format!(" at {}:{}", l.file(), l.line()))
        .unwrap_or_default();
    let line = format!(
        "iap-ssh: internal error: {}{at}; hint: this is a bug in iap-ssh: please report it with the command you ran",
        what.split_whitespace().collect::<Vec<_>>().join(" ")
    );
    eprintln!("{line}");
    std::process::exit(iap_ssh::error::exit::OTHER);
}

fn main() {
    std::panic::set_hook(Box::new(panic_hook));
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
