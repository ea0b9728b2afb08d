//! The command line itself: help, version, and the shipped completion
//! scripts staying in sync with the clap definitions.

mod common;

use assert_cmd::Command;

#[test]
fn shipped_completions_are_current() {
    for (shell, file) in [
        ("bash", "completions/iap-ssh.bash"),
        ("zsh", "completions/_iap-ssh"),
        ("fish", "completions/iap-ssh.fish"),
    ] {
        let out = Command::new(common::iap_ssh_bin())
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success());
        let shipped = std::fs::read(file).unwrap();
        assert!(
            out.stdout == shipped,
            "{file} is stale: regenerate with `iap-ssh completions {shell} > {file}`"
        );
    }
}

#[test]
fn version_and_help() {
    let out = Command::new(common::iap_ssh_bin())
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("iap-ssh {}\n", env!("CARGO_PKG_VERSION"))
    );
    let out = Command::new(common::iap_ssh_bin())
        .args(["proxy", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("NAME.ZONE.PROJECT"), "{help}");
    let out = Command::new(common::iap_ssh_bin())
        .arg("bogus")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
