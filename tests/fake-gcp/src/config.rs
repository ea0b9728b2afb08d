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

/// A non-GCE host reached through an IAP destination group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Host {
    pub project: String,
    pub region: String,
    pub network: String,
    /// IP address or FQDN, as the client sends it.
    pub host: String,
    /// When set, the client must name this destination group.
    #[serde(default)]
    pub dest_group: Option<String>,
    #[serde(default)]
    pub ports: BTreeMap<u16, Backend>,
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Config {
    #[serde(default)]
    pub instances: Vec<Instance>,
    #[serde(default)]
    pub hosts: Vec<Host>,
    /// The static access token the relay accepts (printed in the ready
    /// line). Random when absent.
    #[serde(default)]
    pub access_token: Option<String>,
    /// Lifetime of tokens minted by the token endpoints, in seconds. A
    /// relay link whose token expires is closed with 4004.
    #[serde(default = "default_lifetime")]
    pub token_lifetime_secs: u64,
    /// Fault injection (all off by default).
    #[serde(default)]
    pub faults: Faults,
}

/// A one-time silence: once a session has carried `after_bytes` (both
/// directions), the relay neither reads nor writes for `secs`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Stall {
    pub after_bytes: u64,
    pub secs: u64,
}

/// Faults the relay injects, to test resume and validation.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Drop the connection (no Close frame) after this many DATA bytes in
    /// either direction on one WebSocket; counted afresh on each.
    #[serde(default)]
    pub drop_every_bytes: Option<u64>,
    /// Close 4004 once when a session has carried this many bytes.
    #[serde(default)]
    pub close_4004_at_bytes: Option<u64>,
    /// Close the session's current WebSocket with 4004 every this many
    /// seconds (on the session's clock, across reconnects).
    #[serde(default)]
    pub close_4004_every_secs: Option<u64>,
    /// Refuse the first K reconnects with HTTP 503.
    #[serde(default)]
    pub refuse_reconnects: u32,
    /// Go silent once.
    #[serde(default)]
    pub stall: Option<Stall>,
    /// Send unknown tags and LONG_CLOSE messages between the real ones.
    #[serde(default)]
    pub unknown_tags: bool,
    /// Delay every ACK by this many milliseconds.
    #[serde(default)]
    pub ack_delay_ms: u64,
    /// Never ACK client data.
    #[serde(default)]
    pub withhold_acks: bool,
    /// Answer every reconnect with this close code (e.g. 4001 or 4074).
    #[serde(default)]
    pub resume_refuse_code: Option<u16>,
    /// Break the protocol: `data_before_sid`, `second_sid`, `ack_backwards`,
    /// `ack_beyond`, `data_too_long`, `truncated`, `text`.
    #[serde(default)]
    pub violation: Option<String>,
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
            || self.hosts.iter().any(|h| h.project == project)
    }

    pub fn find_host(
        &self,
        project: &str,
        region: &str,
        network: &str,
        host: &str,
    ) -> Option<&Host> {
        self.hosts.iter().find(|h| {
            h.project == project && h.region == region && h.network == network && h.host == host
        })
    }
}
