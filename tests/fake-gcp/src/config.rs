//! The fake's configuration file: the instance table and token settings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a VM port is connected to on this machine.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A TCP address, e.g. `127.0.0.1:2222`.
    Tcp(String),
    /// A command run per tunnel session with the byte stream on its
    /// stdin/stdout, inetd style (e.g. `/usr/sbin/sshd -i -f cfg`).
    Exec(Vec<String>),
}

/// One simulated VM.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Instance {
    pub project: String,
    pub zone: String,
    pub name: String,
    /// Numeric instance id (a decimal string, as the API returns it).
    #[serde(default = "default_id")]
    pub id: String,
    /// NIC names the relay accepts for this VM.
    #[serde(default = "default_interfaces")]
    pub interfaces: Vec<String>,
    /// Port → backend. A port not listed answers like a port nothing
    /// listens on (close 4003).
    #[serde(default)]
    pub ports: BTreeMap<u16, Backend>,
}

fn default_id() -> String {
    "1000000000000000001".into()
}

fn default_interfaces() -> Vec<String> {
    vec!["nic0".into()]
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Config {
    #[serde(default)]
    pub instances: Vec<Instance>,
    /// The static access token the relay accepts (printed in the ready
    /// line). Random when absent.
    #[serde(default)]
    pub access_token: Option<String>,
    /// Lifetime of tokens minted by the token endpoints, in seconds.
    #[serde(default = "default_lifetime")]
    pub token_lifetime_secs: u64,
}

fn default_lifetime() -> u64 {
    3599
}

impl Config {
    pub fn find(&self, project: &str, zone: &str, name: &str) -> Option<&Instance> {
        self.instances
            .iter()
            .find(|i| i.project == project && i.zone == zone && i.name == name)
    }

    pub fn has_project(&self, project: &str) -> bool {
        self.instances.iter().any(|i| i.project == project)
    }
}
