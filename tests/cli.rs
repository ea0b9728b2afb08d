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
        ("elvish", "completions/iap-ssh.elv"),
        ("powershell", "completions/_iap-ssh.ps1"),
    ] {
        let out = Command::new(common::iap_ssh_bin())
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success());
        let shipped = std::fs::read(file).unwrap();
        assert!(
            out.stdout == shipped,
            "{file} is stale: regenerate with scripts/completions.sh"
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

#[test]
fn man_page_documents_every_subcommand() {
    let out = Command::new(common::iap_ssh_bin())
        .arg("man")
        .output()
        .unwrap();
    assert!(out.status.success());
    let roff = String::from_utf8(out.stdout).unwrap();
    assert!(roff.contains(".TH iap-ssh 1"), "{roff}");
    for sub in ["SETUP", "SSH", "SCP", "LIST", "DOCTOR", "PROXY", "FORWARD"] {
        assert!(
            roff.contains(&format!(".SH \"IAP-SSH {sub}\"")),
            "{sub} missing"
        );
    }
    assert!(roff.contains("\\-\\-dry\\-run"), "options rendered");
    // groff (when present) renders it without complaint.
    if std::path::Path::new("/usr/bin/groff").exists() {
        let mut child = std::process::Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(roff.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "groff warnings");
    }
}

#[test]
fn quiet_and_verbose_conflict_and_quiet_silences_setup() {
    let out = Command::new(common::iap_ssh_bin())
        .args(["-q", "-v", "setup", "--remove"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(common::iap_ssh_bin())
        .env("HOME", home.path())
        .args(["setup", "--remove"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no iap-ssh section"));
    let out = Command::new(common::iap_ssh_bin())
        .env("HOME", home.path())
        .args(["-q", "setup", "--remove"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
