//! Running binaries in a clean environment: no ambient credentials,
//! gcloud settings or proxies; HOME in the test's directory; every endpoint
//! pointing at the fake.

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use assert_cmd::Command;
use fake_gcp::FakeGcp;

pub fn iap_ssh_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_iap-ssh"))
}

/// Both kinds of command the tests run.
pub trait EnvCommand {
    fn unset(&mut self, key: &str);
    fn set(&mut self, key: &str, value: &std::ffi::OsStr);
}

impl EnvCommand for Command {
    fn unset(&mut self, key: &str) {
        self.env_remove(key);
    }
    fn set(&mut self, key: &str, value: &std::ffi::OsStr) {
        self.env(key, value);
    }
}

impl EnvCommand for StdCommand {
    fn unset(&mut self, key: &str) {
        self.env_remove(key);
    }
    fn set(&mut self, key: &str, value: &std::ffi::OsStr) {
        self.env(key, value);
    }
}

/// A clean environment for `cmd`: no ambient Google credentials, gcloud
/// settings, XDG directories or proxies; HOME in the test's directory;
/// every endpoint pointing at `fake`; and `token` as the static token.
pub fn isolate(cmd: &mut impl EnvCommand, fake: &FakeGcp, home: &Path, token: Option<&str>) {
    for (k, _) in std::env::vars() {
        if k.starts_with("IAP_SSH_")
            || k.starts_with("CLOUDSDK_")
            || k.starts_with("XDG_")
            || k == "GOOGLE_APPLICATION_CREDENTIALS"
            || k.ends_with("_proxy")
            || k.ends_with("_PROXY")
        {
            cmd.unset(&k);
        }
    }
    cmd.set("HOME", home.as_os_str());
    cmd.set("RUST_BACKTRACE", "0".as_ref());
    for (k, v) in fake.info.iap_ssh_env() {
        cmd.set(k, v.as_ref());
    }
    if let Some(t) = token {
        cmd.set("IAP_SSH_ACCESS_TOKEN", t.as_ref());
    }
}
