//! Metadata flags as the Linux guest agent reads them (Go `ParseBool`;
//! project value overridden by the instance's), and where a VM takes its
//! SSH keys from. Pure. We follow the agent, not gcloud, because the agent
//! decides what the VM accepts (`enable-oslogin=1` is on for the agent but
//! off for gcloud).

use super::compute::{Instance, Metadata};

/// Go's `strconv.ParseBool`; other values are ignored.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// A flag: project value, then the instance's value if it parses.
pub fn flag(project: &Metadata, instance: &Metadata, key: &str) -> bool {
    let mut on = false;
    if let Some(b) = project.get(key).and_then(parse_bool) {
        on = b;
    }
    if let Some(b) = instance.get(key).and_then(parse_bool) {
        on = b;
    }
    on
}

/// Where a VM reads authorized keys from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeySource {
    OsLogin,
    /// Project-wide `ssh-keys`.
    Project,
    /// The instance's own `ssh-keys` (it blocks project keys).
    Instance,
    /// The instance's legacy `sshKeys` (its presence blocks project keys).
    InstanceLegacy,
    /// Windows VMs take no SSH keys this way.
    Windows,
}

impl KeySource {
    pub fn metadata_key(self) -> &'static str {
        match self {
            KeySource::InstanceLegacy => "sshKeys",
            _ => "ssh-keys",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            KeySource::OsLogin => "OS Login",
            KeySource::Project => "project metadata",
            KeySource::Instance => "instance metadata",
            KeySource::InstanceLegacy => "instance metadata (legacy sshKeys)",
            KeySource::Windows => "none (Windows)",
        }
    }
}

pub fn key_source(project: &Metadata, inst: &Instance) -> KeySource {
    key_source_of(project, &inst.metadata, inst.is_windows())
}

/// [`key_source`] from the instance's metadata (`m`) and whether it runs
/// Windows.
pub fn key_source_of(project: &Metadata, m: &Metadata, windows: bool) -> KeySource {
    if windows {
        return KeySource::Windows;
    }
    if flag(project, m, "enable-oslogin") {
        return KeySource::OsLogin;
    }
    instance_keys(m).unwrap_or(KeySource::Project)
}

/// Where a VM that does not use OS Login takes keys when its own metadata
/// `m` decides: its legacy `sshKeys` (their presence blocks project keys),
/// or its `ssh-keys` when it blocks project keys; None: the project's.
pub fn instance_keys(m: &Metadata) -> Option<KeySource> {
    if m.get("sshKeys").is_some_and(|v| !v.trim().is_empty()) {
        return Some(KeySource::InstanceLegacy);
    }
    (m.get("block-project-ssh-keys").and_then(parse_bool) == Some(true))
        .then_some(KeySource::Instance)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(items: &[(&str, &str)]) -> Metadata {
        Metadata::from_items(items.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    fn inst(items: &[(&str, &str)]) -> Instance {
        let mut i: Instance = serde_json::from_value(serde_json::json!({
            "id": "1", "name": "vm", "zone": "z"}))
        .unwrap();
        i.metadata = meta(items);
        i
    }

    #[test]
    fn sources() {
        let none = meta(&[]);
        let on = meta(&[("enable-oslogin", "TRUE")]);
        assert_eq!(key_source(&none, &inst(&[])), KeySource::Project);
        assert_eq!(key_source(&on, &inst(&[])), KeySource::OsLogin);
        assert_eq!(
            key_source(&on, &inst(&[("enable-oslogin", "false")])),
            KeySource::Project
        );
        // The agent's truth values, not gcloud's.
        assert_eq!(
            key_source(&none, &inst(&[("enable-oslogin", "1")])),
            KeySource::OsLogin
        );
        assert_eq!(
            key_source(&on, &inst(&[("enable-oslogin", "yes")])),
            KeySource::OsLogin
        );
        assert_eq!(
            key_source(&none, &inst(&[("block-project-ssh-keys", "true")])),
            KeySource::Instance
        );
        assert_eq!(
            key_source(&none, &inst(&[("sshKeys", "u:ssh-rsa A")])),
            KeySource::InstanceLegacy
        );
        assert_eq!(
            key_source(&none, &inst(&[("sshKeys", " ")])),
            KeySource::Project
        );
    }
}
