//! The fake's mutable cloud: project and instance metadata (with
//! fingerprints), instance status, long-running operations and the
//! principal's OS Login profile. Compute and OS Login handlers read and
//! write it; the guest-agent simulation turns it into authorized keys.

use std::collections::{BTreeMap, HashMap};

use base64::Engine;
use serde_json::{Value, json};

use crate::config::Config;
use crate::state::random_hex;

/// Metadata of a project or an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub items: BTreeMap<String, String>,
    pub fingerprint: String,
}

impl Meta {
    fn new(items: BTreeMap<String, String>) -> Meta {
        Meta {
            items,
            fingerprint: new_fingerprint(),
        }
    }

    pub fn json(&self) -> Value {
        let items: Vec<Value> = self
            .items
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        let mut m = json!({"kind": "compute#metadata", "fingerprint": self.fingerprint});
        if !items.is_empty() {
            m["items"] = Value::Array(items);
        }
        m
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.items.get(key).map(String::as_str)
    }
}

fn fingerprint_bytes(f: &str) -> Option<Vec<u8>> {
    let std: String = f
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(std)
        .ok()
}

fn new_fingerprint() -> String {
    let mut b = [0u8; 8];
    use rand::RngCore;
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// One OS Login key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginKey {
    pub key: String,
    pub expiration_usec: Option<i64>,
}

/// The principal's OS Login state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    /// Has a POSIX account been created (by the first key import)?
    pub posix: bool,
    pub keys: BTreeMap<String, LoginKey>,
}

/// A write rejected because the fingerprint was stale.
pub struct Conflict;

pub struct Cloud {
    pub projects: BTreeMap<String, Meta>,
    /// (project, zone, name) → (metadata, status)
    pub instances: BTreeMap<(String, String, String), (Meta, String)>,
    pub ops: HashMap<String, (Value, u32)>,
    /// OS Login profiles by principal email.
    pub profiles: BTreeMap<String, Profile>,
    conflicts_left: u32,
    pub metadata_writes: u64,
    pub oslogin_writes: u64,
    /// The firewall model (see `Config::firewalls`), changed by
    /// firewalls.insert.
    pub firewalls: Option<Vec<Value>>,
}

pub fn now_usec() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// OS Login's key fingerprint: SHA-256 (hex) of `TYPE BASE64`. The bytes
/// the real service hashes are UNCONFIRMED; any stable hash serves a fake.
pub fn key_fingerprint(key: &str) -> String {
    use sha2::Digest;
    let mut f = key.split_whitespace();
    let canon = format!("{} {}", f.next().unwrap_or(""), f.next().unwrap_or(""));
    sha2::Sha256::digest(canon.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Cloud {
    pub fn new(config: &Config) -> Cloud {
        let mut projects = BTreeMap::new();
        for p in &config.projects {
            projects.insert(p.id.clone(), Meta::new(p.metadata.clone()));
        }
        let mut instances = BTreeMap::new();
        for i in &config.instances {
            projects
                .entry(i.project.clone())
                .or_insert_with(|| Meta::new(BTreeMap::new()));
            instances.insert(
                (i.project.clone(), i.zone.clone(), i.name.clone()),
                (Meta::new(i.metadata.clone()), i.status.clone()),
            );
        }
        Cloud {
            projects,
            instances,
            ops: HashMap::new(),
            profiles: BTreeMap::new(),
            conflicts_left: config.faults.metadata_conflicts,
            metadata_writes: 0,
            oslogin_writes: 0,
            firewalls: config.firewalls.clone(),
        }
    }

    pub fn status(&self, project: &str, zone: &str, name: &str) -> String {
        self.instances
            .get(&(project.into(), zone.into(), name.into()))
            .map(|(_, s)| s.clone())
            .unwrap_or_default()
    }

    /// Compare-and-set of a metadata item list. `target` is None for the
    /// project, else (zone, name).
    pub fn set_metadata(
        &mut self,
        project: &str,
        target: Option<(&str, &str)>,
        fingerprint: &str,
        items: BTreeMap<String, String>,
    ) -> Result<(), Conflict> {
        let race = if self.conflicts_left > 0 {
            self.conflicts_left -= 1;
            Some(format!("concurrent-writer-{}", self.conflicts_left))
        } else {
            None
        };
        let meta = match target {
            None => self.projects.get_mut(project),
            Some((z, n)) => self
                .instances
                .get_mut(&(project.into(), z.into(), n.into()))
                .map(|(m, _)| m),
        }
        .ok_or(Conflict)?;
        if let Some(k) = race {
            // Another writer got there first.
            meta.items.insert(k, "1".into());
            meta.fingerprint = new_fingerprint();
        }
        // The field is `bytes`: clients may send it back in the URL-safe
        // alphabet (gcloud's apitools does), so compare the bytes.
        if fingerprint_bytes(&meta.fingerprint) != fingerprint_bytes(fingerprint) {
            return Err(Conflict);
        }
        meta.items = items;
        meta.fingerprint = new_fingerprint();
        self.metadata_writes += 1;
        Ok(())
    }

    /// Records a finished operation and returns it (status RUNNING on the
    /// first `get`, DONE afterwards and from `wait`).
    pub fn new_operation(
        &mut self,
        base: &str,
        kind: &str,
        target: &str,
        zone: Option<&str>,
        project: &str,
    ) -> Value {
        let name = format!("operation-{}", random_hex(10));
        let scope = match zone {
            Some(z) => format!("projects/{project}/zones/{z}"),
            None => format!("projects/{project}/global"),
        };
        let mut op = json!({
            "kind": "compute#operation",
            "id": format!("{}", rand::random::<u64>()),
            "name": name,
            "operationType": kind,
            "targetLink": format!("{base}{target}"),
            "status": "RUNNING",
            "progress": 0,
            "selfLink": format!("{base}{scope}/operations/{name}"),
        });
        if let Some(z) = zone {
            op["zone"] = json!(format!("{base}projects/{project}/zones/{z}"));
        }
        self.ops.insert(name, (op.clone(), 0));
        op
    }

    /// An operation's current view; `wait` finishes it.
    pub fn operation(&mut self, name: &str, wait: bool) -> Option<Value> {
        let (op, polls) = self.ops.get_mut(name)?;
        *polls += 1;
        if wait || *polls > 1 {
            op["status"] = json!("DONE");
            op["progress"] = json!(100);
        }
        Some(op.clone())
    }

    /// Everything a client can change, for "nothing changed" assertions.
    pub fn snapshot(&self) -> String {
        format!(
            "{:?}\n{:?}\n{:?}",
            self.projects, self.instances, self.profiles
        )
    }
}
