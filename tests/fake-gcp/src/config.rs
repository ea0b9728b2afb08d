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
    /// `RUNNING`, `TERMINATED`, … (tunnels to a VM that is not RUNNING
    /// fail like a closed port, 4003).
    #[serde(default = "default_status")]
    pub status: String,
    /// Initial instance metadata items.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// VPC network name of nic0.
    #[serde(default = "default_network")]
    pub network: String,
    /// Network tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Email of the attached service account, if any.
    #[serde(default)]
    pub service_account: Option<String>,
    /// `guestOsFeatures` of the boot disk (e.g. `WINDOWS`).
    #[serde(default)]
    pub os_features: Vec<String>,
    /// Host keys published as guest attributes (`hostkeys/<type>`), as
    /// `TYPE BASE64` lines. Empty: the attribute is "not found".
    #[serde(default)]
    pub host_keys: Vec<String>,
    /// The simulated guest agent writes one authorized-keys file per user
    /// into this directory (the VM's sshd reads `DIR/%u`). None: no agent.
    #[serde(default)]
    pub guest_keys_dir: Option<std::path::PathBuf>,
    /// False: a VM created after the client listed instances
    /// (`aggregatedList` leaves it out; everything else sees it).
    #[serde(default = "yes")]
    pub listed: bool,
    /// A booting VM: its `status` (e.g. `STAGING`) turns `RUNNING` this
    /// many ms after the fake starts; until then tunnels get close 4003.
    #[serde(default)]
    pub boot_ms: Option<u64>,
    /// nic0's `stackType` (`IPV4_ONLY` when absent, `IPV4_IPV6`,
    /// `IPV6_ONLY`); with IPv6, nic0 gets an `ipv6Address`. IAP reaches an
    /// IPv6-only VM from its IPv6 range.
    #[serde(default)]
    pub stack_type: Option<String>,
    /// nic0's `networkIP` (default: 10.128.X.Y from the VM's position).
    #[serde(default)]
    pub network_ip: Option<String>,
    /// Labels (`labels.KEY` in list filters).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn default_status() -> String {
    "RUNNING".into()
}

fn default_network() -> String {
    "default".into()
}

/// A project's own settings (projects that only have instances exist too).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Project {
    pub id: String,
    /// Initial project-wide (common instance) metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Cloud Resource Manager's `lifecycleState` (default `ACTIVE`;
    /// `DELETE_REQUESTED` projects are not listed as active).
    #[serde(default)]
    pub lifecycle_state: Option<String>,
    /// The Compute Engine API is not enabled: its calls answer 403
    /// `accessNotConfigured`.
    #[serde(default)]
    pub compute_disabled: bool,
}

/// The signed-in principal, as OS Login and tokeninfo see it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    pub email: String,
    /// POSIX username OS Login generates; default: the email with `.`
    /// and `@` replaced by `_` (what Google does for users).
    #[serde(default)]
    pub username: Option<String>,
}

impl Default for Account {
    fn default() -> Self {
        Account {
            email: "alice@example.com".into(),
            username: None,
        }
    }
}

/// A service account principals may impersonate (IAM Credentials).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceAccount {
    pub email: String,
    /// The numeric unique ID (21 digits); its OS Login user is `sa_<id>`.
    pub unique_id: String,
    /// Principals (user or service account emails) holding
    /// `roles/iam.serviceAccountTokenCreator` on this account.
    #[serde(default)]
    pub token_creators: Vec<String>,
}

impl Account {
    pub fn posix_username(&self) -> String {
        self.username
            .clone()
            .unwrap_or_else(|| self.email.replace(['.', '@'], "_"))
    }
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
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// Projects with project-wide metadata.
    #[serde(default)]
    pub projects: Vec<Project>,
    /// The principal every accepted token belongs to.
    #[serde(default)]
    pub account: Account,
    /// How long the simulated guest agent takes to apply a key change, ms.
    #[serde(default = "default_guest_delay")]
    pub guest_delay_ms: u64,
    /// Let the simulated guest agent create missing local users with
    /// `useradd` (needs root), as the real agent does.
    #[serde(default)]
    pub create_users: bool,
    /// Largest page `aggregatedList` returns (the API's cap is 500).
    #[serde(default = "default_page")]
    pub max_page_size: usize,
    /// Added to every Compute / OS Login answer, ms (real calls take
    /// tens to hundreds of ms; benchmarks use it).
    #[serde(default)]
    pub api_latency_ms: u64,
    /// Firewall rules in the API's JSON shape (`firewalls.list` items,
    /// plus an optional `project`). None: no firewall model, every port is
    /// reachable. Some: the relay admits a tunnel only when the rules let
    /// 35.235.240.0/20 in (ingress, priority, deny, target tags and
    /// service accounts), else close 4003.
    #[serde(default)]
    pub firewalls: Option<Vec<serde_json::Value>>,
    /// IAM: does the principal hold `iap.tunnelInstances.accessViaIAP`?
    /// (false: tunnels get 4033, IAP testIamPermissions grants nothing)
    #[serde(default = "yes")]
    pub iap_access: bool,
    /// tokeninfo answers 405 to POST (only the documented GET works).
    #[serde(default)]
    pub tokeninfo_get_only: bool,
    /// IAM: may the principal write project metadata
    /// (`compute.projects.setCommonInstanceMetadata`)? false: HTTP 403.
    #[serde(default = "yes")]
    pub project_metadata_writable: bool,
    /// IAM: does the principal hold `compute.instances.osLogin`?
    #[serde(default = "yes")]
    pub oslogin_access: bool,
    /// More static tokens the fake accepts, each for another account
    /// (token → email); the relay checks on reconnect that the account
    /// is the session's.
    #[serde(default)]
    pub extra_tokens: BTreeMap<String, String>,
    /// Certificate-based access: `ask` (the server asks for a client
    /// certificate from the fake's client CA, none is fine), `require`
    /// (asks; a tunnel without one is upgraded, then closed with 4033, as
    /// IAP does under a certificate access policy) or `require_tls` (the
    /// TLS handshake fails without one). None: never asks.
    #[serde(default)]
    pub client_certs: Option<String>,
    /// Service accounts that can be impersonated.
    #[serde(default)]
    pub service_accounts: Vec<ServiceAccount>,
    /// IAM on tunnels by principal: when set, only these accounts may
    /// open tunnels (others get 4033), on top of `iap_access`.
    #[serde(default)]
    pub tunnel_principals: Option<Vec<String>>,
    /// IAP's IAM on tunnel resources: resource path
    /// (`projects/P/iap_tunnel[/zones/Z[/instances/N]]`) → initial policy
    /// (`{"bindings": [...]}`). When set, the relay also requires a
    /// `roles/iap.tunnelResourceAccessor` binding for the principal on the
    /// project, zone or VM whose condition holds (else close 4033); an
    /// empty map means nobody has been granted anything yet. A key
    /// `projects/P` is the project's own (Cloud Resource Manager) policy,
    /// whose tunnel-role and `roles/owner` bindings count for every tunnel
    /// of the project.
    #[serde(default)]
    pub iap_policies: Option<BTreeMap<String, serde_json::Value>>,
    /// IAM: may the principal read projects' own policies
    /// (`resourcemanager.projects.getIamPolicy`)? false: HTTP 403.
    #[serde(default = "yes")]
    pub project_policy_readable: bool,
    /// IAM: may the principal create firewall rules
    /// (`compute.firewalls.create`)? false: HTTP 403.
    #[serde(default = "yes")]
    pub firewall_admin: bool,
    /// IAM: may the principal change IAP tunnel policies
    /// (`iap.tunnel*.setIamPolicy`)? false: HTTP 403.
    #[serde(default = "yes")]
    pub iap_admin: bool,
    /// OS Login certificates: the CA's private key (OpenSSH format) that
    /// `signSshPublicKey` signs with. None: signing answers 400.
    #[serde(default)]
    pub oslogin_ca_key: Option<std::path::PathBuf>,
    /// How long a signed certificate is valid, in seconds.
    #[serde(default = "default_cert_secs")]
    pub oslogin_cert_secs: u64,
    /// The configured account's OS Login POSIX user per project, where it
    /// differs from the default (POSIX accounts are per project).
    #[serde(default)]
    pub oslogin_usernames: BTreeMap<String, String>,
    /// Windows agents answer these users with this `errorMessage` instead
    /// of a password.
    #[serde(default)]
    pub windows_agent_errors: BTreeMap<String, String>,
    /// Access levels the caller's device satisfies
    /// (`request.auth.access_levels` in conditions).
    #[serde(default)]
    pub access_levels: Vec<String>,
}

fn default_guest_delay() -> u64 {
    200
}

fn default_cert_secs() -> u64 {
    3600
}

fn default_page() -> usize {
    500
}

fn yes() -> bool {
    true
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
    /// seconds (on the session's clock, across reconnects; a new link is
    /// left alone for at least half that period).
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
    /// The next K metadata writes lose a race: a concurrent writer adds an
    /// item (`concurrent-writer-N`) first, so the client's fingerprint is
    /// stale and the write gets HTTP 412.
    #[serde(default)]
    pub metadata_conflicts: u32,
    /// The next K IAP setIamPolicy calls lose a race: another administrator
    /// adds a binding (`roles/iap.admin` for `user:other-admin-N@…`) first,
    /// so the client's etag is stale and the write gets HTTP 409.
    #[serde(default)]
    pub iap_policy_conflicts: u32,
    /// ACK client data once more than this many bytes are unacknowledged
    /// (default 32 KiB). Nothing says IAP ACKs promptly: e.g. 524288 models
    /// a relay that ACKs every 512 KiB.
    #[serde(default)]
    pub ack_every_bytes: Option<u64>,
    /// Never ACK on the idle timer (only [`Faults::ack_every_bytes`]).
    #[serde(default)]
    pub no_idle_acks: bool,
    /// A session whose link dropped is forgotten this many seconds later
    /// (a reconnect then gets 4001). None: kept until the backend ends.
    #[serde(default)]
    pub session_expiry_secs: Option<u64>,
    /// Answer the first connects with these HTTP statuses, one each, in
    /// order (e.g. `[401]`, `[429, 503]`), before any upgrade.
    #[serde(default)]
    pub connect_http: Vec<u16>,
    /// The same for reconnects (after [`Faults::refuse_reconnects`]).
    #[serde(default)]
    pub reconnect_http: Vec<u16>,
    /// A `Retry-After` value (seconds or an HTTP date) sent with the
    /// statuses of `connect_http`, `reconnect_http` and `api_http`.
    #[serde(default)]
    pub retry_after: Option<String>,
    /// Answer the first REST calls (Compute, OS Login, IAP, Resource
    /// Manager) with these HTTP statuses, one each, in order, as a
    /// rate-limited or failing API does (`[429, 429]`, `[503]`).
    #[serde(default)]
    pub api_http: Vec<u16>,
    /// Answer the first token requests (OAuth `/token`) with these HTTP
    /// statuses, one each, in order.
    #[serde(default)]
    pub token_http: Vec<u16>,
    /// Only calls whose path contains this take part in `api_http`.
    #[serde(default)]
    pub api_http_path: Option<String>,
    /// Close the first connects right after the upgrade with these codes,
    /// one each, in order (e.g. `[4000]`).
    #[serde(default)]
    pub connect_close: Vec<u16>,
    /// Close the link with `code` once the session has carried
    /// `after_bytes`, `times` times in all (on successive links).
    #[serde(default)]
    pub close_at_bytes: Option<CloseAt>,
    /// Invalid or expired tokens get this HTTP status on the upgrade
    /// instead of close 4033 after it.
    #[serde(default)]
    pub bad_token_http: Option<u16>,
    /// The refresh-token grant answers `access_denied` / `Account
    /// restricted`, as Google does when Context Aware Access blocks the
    /// device.
    #[serde(default)]
    pub token_caa_denied: bool,
    /// After a link is lost the relay keeps the SID attached for this long
    /// (it has not noticed yet); reconnects meanwhile get close 4002. 0: a
    /// reconnect evicts the old link at once.
    #[serde(default)]
    pub sid_in_use_ms: u64,
    /// When the backend closed while the client was away, answer the
    /// reconnect with close 4010 at once (buffered data is not re-sent).
    #[serde(default)]
    pub eof_on_reconnect: bool,
    /// Accept every reconnect (RECONNECT_SUCCESS_ACK) and drop the
    /// connection right after, without a Close frame.
    #[serde(default)]
    pub reconnect_accept_then_drop: bool,
    /// Hold the 101 answer to every connect for this long.
    #[serde(default)]
    pub upgrade_delay_ms: u64,
    /// A relay front end that admits at most this many WebSocket
    /// handshakes at once (from the upgrade request to the 101): any more
    /// get HTTP 429, as a rate-limited relay answers a burst.
    #[serde(default)]
    pub max_concurrent_handshakes: Option<u64>,
    /// After a connect's upgrade, send nothing (no SID) and wait.
    #[serde(default)]
    pub silent_after_upgrade: bool,
    /// Also send malformed LONG_CLOSE messages (short, lying lengths) with
    /// [`Faults::unknown_tags`].
    #[serde(default)]
    pub malformed_long_close: bool,
    /// Random faults at random times, for soak runs (`scripts/soak.sh`).
    #[serde(default)]
    pub chaos: Option<Chaos>,
}

/// Random faults: on every relay link, after a random time between
/// `min_ms` and `max_ms`, one of `kinds`, picked at random:
/// - `drop`: the connection is dropped (no Close frame);
/// - `4004`: Close 4004, re-authentication required;
/// - `stall`: the relay goes silent (reads nothing, sends nothing) for
///   `stall_ms`, then carries on on the same link (a client that gave up
///   on it meanwhile has reconnected);
/// - `429`: the connection is dropped and the reconnect that follows is
///   answered HTTP 429 (with the `retry_after` fault's header).
///
/// A link that survives its fault (a stall) draws the next one. Every
/// fault is an event `fault: chaos KIND sid=…` (`FAKE_GCP_LOG=1` prints
/// them), so a run can count them against the client's reconnects.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Chaos {
    pub min_ms: u64,
    pub max_ms: u64,
    pub kinds: Vec<String>,
    #[serde(default = "default_stall_ms")]
    pub stall_ms: u64,
    /// Seed of the random choices (times and kinds): the same seed, the
    /// same sequence per link number. None: a random seed.
    #[serde(default)]
    pub seed: Option<u64>,
}

fn default_stall_ms() -> u64 {
    5000
}

/// A close code to inject at a byte offset of the session.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CloseAt {
    pub code: u16,
    pub after_bytes: u64,
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

fn default_lifetime() -> u64 {
    3599
}

impl Default for Config {
    /// The same defaults as an empty configuration file.
    fn default() -> Self {
        serde_json::from_str("{}").expect("empty config")
    }
}

impl Instance {
    /// A RUNNING VM with defaults (nic0, network `default`, no ports).
    pub fn new(project: &str, zone: &str, name: &str, id: &str) -> Instance {
        serde_json::from_value(serde_json::json!({
            "project": project, "zone": zone, "name": name, "id": id
        }))
        .expect("instance")
    }
}

impl Config {
    /// The configured instance named `name` (the first, if several
    /// projects have one); panics when there is none (a test's mistake).
    pub fn instance(&self, name: &str) -> &Instance {
        self.instances
            .iter()
            .find(|i| i.name == name)
            .unwrap_or_else(|| panic!("no instance {name} in the fake's config"))
    }

    /// [`Config::instance`], to change.
    pub fn instance_mut(&mut self, name: &str) -> &mut Instance {
        self.instances
            .iter_mut()
            .find(|i| i.name == name)
            .unwrap_or_else(|| panic!("no instance {name} in the fake's config"))
    }

    /// The OS Login POSIX user of a principal: the configured account's,
    /// `sa_<uniqueId>` for a known service account, else the email with
    /// `.` and `@` replaced by `_`.
    pub fn posix_username_of(&self, email: &str) -> String {
        if email == self.account.email {
            return self.account.posix_username();
        }
        match self.service_account(email) {
            Some(sa) => format!("sa_{}", sa.unique_id),
            None => email.replace(['.', '@'], "_"),
        }
    }

    /// The OS Login POSIX user of a principal in `project`: the configured
    /// account's per-project name when `oslogin_usernames` has one, else
    /// [`Config::posix_username_of`].
    pub fn posix_username_in(&self, email: &str, project: &str) -> String {
        match self.oslogin_usernames.get(project) {
            Some(u) if email == self.account.email => u.clone(),
            _ => self.posix_username_of(email),
        }
    }

    /// A service account by email or unique ID.
    pub fn service_account(&self, id: &str) -> Option<&ServiceAccount> {
        self.service_accounts
            .iter()
            .find(|s| s.email == id || s.unique_id == id)
    }

    /// May `principal` open tunnels (IAM on the tunnel resource)?
    pub fn may_tunnel(&self, principal: Option<&str>) -> bool {
        self.iap_access
            && match &self.tunnel_principals {
                None => true,
                Some(list) => principal.is_some_and(|p| list.iter().any(|x| x == p)),
            }
    }

    pub fn find(&self, project: &str, zone: &str, name: &str) -> Option<&Instance> {
        self.instances
            .iter()
            .find(|i| i.project == project && i.zone == zone && i.name == name)
    }

    pub fn has_project(&self, project: &str) -> bool {
        self.projects.iter().any(|p| p.id == project)
            || self.instances.iter().any(|i| i.project == project)
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
