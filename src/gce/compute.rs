//! Compute Engine calls iap-ssh makes: aggregatedList (paged), instances.get,
//! projects.get, setMetadata / setCommonInstanceMetadata (fingerprint
//! locked), operation wait, getGuestAttributes and firewalls.list; with
//! the fields of their JSON that iap-ssh reads.

use std::time::{Duration, Instant};

use http::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Api, ApiError, segment};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Item {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Metadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(default)]
    pub items: Vec<Item>,
}

impl Metadata {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.items
            .iter()
            .find(|i| i.key == key)
            .map(|i| i.value.as_str())
    }

    /// The values that can hold SSH keys: `ssh-keys` and legacy `sshKeys`.
    pub fn ssh_key_values(&self) -> Vec<&str> {
        ["ssh-keys", "sshKeys"]
            .iter()
            .filter_map(|k| self.get(k))
            .collect()
    }

    /// Sets `key` (kept in place if present, else appended).
    pub fn set(&mut self, key: &str, value: String) {
        match self.items.iter_mut().find(|i| i.key == key) {
            Some(i) => i.value = value,
            None => self.items.push(Item {
                key: key.to_string(),
                value,
            }),
        }
    }

    pub fn from_items(items: impl IntoIterator<Item = (String, String)>) -> Metadata {
        Metadata {
            fingerprint: None,
            items: items
                .into_iter()
                .map(|(key, value)| Item { key, value })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessConfig {
    #[serde(default)]
    pub nat_i_p: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Nic {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub network: String,
    #[serde(default, rename = "networkIP")]
    pub network_ip: Option<String>,
    #[serde(default)]
    pub access_configs: Vec<AccessConfig>,
    /// `IPV4_ONLY` (or absent), `IPV4_IPV6`, `IPV6_ONLY`.
    #[serde(default)]
    pub stack_type: Option<String>,
    #[serde(default)]
    pub ipv6_address: Option<String>,
}

impl Nic {
    /// Has this interface an IPv6 address (dual-stack or IPv6-only)?
    pub fn has_ipv6(&self) -> bool {
        self.ipv6_address.is_some()
            || matches!(self.stack_type.as_deref(), Some("IPV4_IPV6" | "IPV6_ONLY"))
    }

    pub fn ipv6_only(&self) -> bool {
        self.stack_type.as_deref() == Some("IPV6_ONLY")
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OsFeature {
    #[serde(default, rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Disk {
    #[serde(default)]
    pub boot: bool,
    #[serde(default)]
    pub guest_os_features: Vec<OsFeature>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ServiceAccount {
    #[serde(default)]
    pub email: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Tags {
    #[serde(default)]
    pub items: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    pub id: String,
    pub name: String,
    /// Zone URL; see [`Instance::zone_name`].
    pub zone: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub network_interfaces: Vec<Nic>,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub disks: Vec<Disk>,
    #[serde(default)]
    pub service_accounts: Vec<ServiceAccount>,
    #[serde(default)]
    pub tags: Tags,
}

impl Instance {
    /// nic0's internal address: its IPv4 `networkIP`, or for an IPv6-only
    /// VM its `ipv6Address`. Parsed, so it is safe in a config line.
    pub fn internal_ip(&self) -> Option<std::net::IpAddr> {
        let nic = self.network_interfaces.first()?;
        let v4 = nic
            .network_ip
            .as_deref()
            .and_then(|a| a.parse::<std::net::Ipv4Addr>().ok());
        let v6 = nic
            .ipv6_address
            .as_deref()
            .and_then(|a| a.parse::<std::net::Ipv6Addr>().ok());
        match (nic.ipv6_only(), v4, v6) {
            (true, _, Some(a)) | (false, None, Some(a)) => Some(a.into()),
            (_, Some(a), _) => Some(a.into()),
            _ => None,
        }
    }
}

/// The last segment of a resource URL (`…/zones/us-central1-a` → zone).
pub fn last_segment(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

impl Instance {
    pub fn zone_name(&self) -> &str {
        last_segment(&self.zone)
    }

    pub fn is_windows(&self) -> bool {
        self.disks
            .iter()
            .filter(|d| d.boot)
            .flat_map(|d| &d.guest_os_features)
            .any(|f| f.kind == "WINDOWS")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    pub name: String,
    #[serde(default)]
    pub common_instance_metadata: Metadata,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    pub name: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub zone: Option<String>,
    #[serde(default)]
    pub error: Option<Value>,
    #[serde(default)]
    pub http_error_message: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AggregatedPage {
    #[serde(default)]
    items: std::collections::BTreeMap<String, ScopedList>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ScopedList {
    #[serde(default)]
    instances: Vec<Instance>,
}

/// How long to wait for one metadata operation.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(300);

impl Api {
    fn compute_url(&self, path: &str) -> String {
        format!("{}{path}", self.endpoints.compute)
    }

    /// Follows `nextPageToken` from `path` (500 per page, optional
    /// filter) and gathers what `items` takes out of each page.
    async fn all_pages<P: serde::de::DeserializeOwned, T>(
        &self,
        path: &str,
        filter: Option<&str>,
        what: &str,
        mut items: impl FnMut(P) -> (Vec<T>, Option<String>),
    ) -> Result<Vec<T>, ApiError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut q = form_urlencoded::Serializer::new(String::new());
            if let Some(f) = filter {
                q.append_pair("filter", f);
            }
            q.append_pair("maxResults", "500");
            if let Some(t) = &token {
                q.append_pair("pageToken", t);
            }
            let url = self.compute_url(&format!("{path}?{}", q.finish()));
            let page: P = self.call(Method::GET, &url, None, what).await?;
            let (list, next) = items(page);
            out.extend(list);
            match next.filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }

    /// Every instance of `project` (all pages), optionally filtered.
    pub async fn aggregated_instances(
        &self,
        project: &str,
        filter: Option<&str>,
    ) -> Result<Vec<Instance>, ApiError> {
        self.aggregated_instances_map(project, filter, Some).await
    }

    /// [`Api::aggregated_instances`], each instance turned by `keep` into
    /// what the caller holds on to (None: nothing) as its page arrives, so
    /// that a large fleet is never whole in memory as [`Instance`]s.
    pub async fn aggregated_instances_map<T>(
        &self,
        project: &str,
        filter: Option<&str>,
        mut keep: impl FnMut(Instance) -> Option<T>,
    ) -> Result<Vec<T>, ApiError> {
        self.all_pages(
            &format!("projects/{}/aggregated/instances", segment(project)),
            filter,
            &format!("listing instances of project {project}"),
            |page: AggregatedPage| {
                let list = page
                    .items
                    .into_values()
                    .flat_map(|s| s.instances)
                    .filter_map(&mut keep)
                    .collect();
                (list, page.next_page_token)
            },
        )
        .await
    }

    pub async fn get_instance(
        &self,
        project: &str,
        zone: &str,
        name: &str,
    ) -> Result<Instance, ApiError> {
        let url = self.compute_url(&format!(
            "projects/{}/zones/{}/instances/{}",
            segment(project),
            segment(zone),
            segment(name)
        ));
        self.call(
            Method::GET,
            &url,
            None,
            &format!("instance {name} ({zone}, {project})"),
        )
        .await
    }

    pub async fn get_project(&self, project: &str) -> Result<Project, ApiError> {
        let url = self.compute_url(&format!("projects/{}", segment(project)));
        self.call(Method::GET, &url, None, &format!("project {project}"))
            .await
    }

    /// Writes project-wide metadata; HTTP 412 when `meta.fingerprint` is stale.
    pub async fn set_project_metadata(
        &self,
        project: &str,
        meta: &Metadata,
    ) -> Result<Operation, ApiError> {
        let url = self.compute_url(&format!(
            "projects/{}/setCommonInstanceMetadata",
            segment(project)
        ));
        let body = json!(meta);
        self.call(
            Method::POST,
            &url,
            Some(&body),
            &format!("setting metadata of project {project}"),
        )
        .await
    }

    /// Writes instance metadata; HTTP 412 when `meta.fingerprint` is stale.
    pub async fn set_instance_metadata(
        &self,
        project: &str,
        zone: &str,
        name: &str,
        meta: &Metadata,
    ) -> Result<Operation, ApiError> {
        let url = self.compute_url(&format!(
            "projects/{}/zones/{}/instances/{}/setMetadata",
            segment(project),
            segment(zone),
            segment(name)
        ));
        let body = json!(meta);
        self.call(
            Method::POST,
            &url,
            Some(&body),
            &format!("setting metadata of instance {name}"),
        )
        .await
    }

    /// Waits until `op` is DONE (zonal or global `wait`), then reports its error.
    pub async fn wait_operation(&self, project: &str, mut op: Operation) -> Result<(), ApiError> {
        let deadline = Instant::now() + OPERATION_TIMEOUT;
        let what = format!("operation {}", op.name);
        while op.status != "DONE" {
            if Instant::now() > deadline {
                return Err(ApiError::Operation {
                    what,
                    detail: format!("not done after {} s", OPERATION_TIMEOUT.as_secs()),
                });
            }
            let scope = match &op.zone {
                Some(z) => format!("zones/{}", segment(last_segment(z))),
                None => "global".into(),
            };
            let url = self.compute_url(&format!(
                "projects/{}/{scope}/operations/{}/wait",
                segment(project),
                segment(&op.name)
            ));
            op = self.call(Method::POST, &url, None, &what).await?;
        }
        if let Some(e) = op.error.filter(|e| !e.is_null()) {
            let detail = e["errors"][0]["message"]
                .as_str()
                .map(str::to_string)
                .or(op.http_error_message)
                .unwrap_or_else(|| e.to_string());
            return Err(ApiError::Operation { what, detail });
        }
        Ok(())
    }

    /// Host keys the guest agent published (`hostkeys/` guest attributes),
    /// only those of a supported type with a canonical base64 value;
    /// empty when there are none.
    pub async fn host_keys(
        &self,
        project: &str,
        zone: &str,
        name: &str,
    ) -> Result<Vec<(String, String)>, ApiError> {
        let url = self.compute_url(&format!(
            "projects/{}/zones/{}/instances/{}/getGuestAttributes?queryPath=hostkeys%2F",
            segment(project),
            segment(zone),
            segment(name)
        ));
        let r: Result<Value, ApiError> = self
            .call(Method::GET, &url, None, &format!("host keys of {name}"))
            .await;
        let v = match r {
            Ok(v) => v,
            Err(ApiError::Status { status: 404, .. }) => return Ok(vec![]),
            Err(e) => return Err(e),
        };
        Ok(v["queryValue"]["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["namespace"] == "hostkeys")
            .filter_map(|i| {
                crate::ssh::known_hosts::clean_key(i["key"].as_str()?, i["value"].as_str()?)
            })
            .collect())
    }
}

#[derive(Debug, Deserialize)]
struct FirewallList {
    #[serde(default)]
    items: Vec<super::firewall::Rule>,
    #[serde(default, rename = "nextPageToken")]
    next_page_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Permissions {
    #[serde(default)]
    permissions: Vec<String>,
}

impl Api {
    /// Every firewall rule of `project` (all pages).
    pub async fn firewalls(&self, project: &str) -> Result<Vec<super::firewall::Rule>, ApiError> {
        self.all_pages(
            &format!("projects/{}/global/firewalls", segment(project)),
            None,
            &format!("firewall rules of {project}"),
            |page: FirewallList| (page.items, page.next_page_token),
        )
        .await
    }

    /// Which of `permissions` the caller holds on the instance (Compute).
    pub async fn instance_permissions(
        &self,
        project: &str,
        zone: &str,
        name: &str,
        permissions: &[&str],
    ) -> Result<Vec<String>, ApiError> {
        let url = self.compute_url(&format!(
            "projects/{}/zones/{}/instances/{}/testIamPermissions",
            segment(project),
            segment(zone),
            segment(name)
        ));
        let body = json!({"permissions": permissions});
        let p: Permissions = self
            .call(
                Method::POST,
                &url,
                Some(&body),
                &format!("permissions on {name}"),
            )
            .await?;
        Ok(p.permissions)
    }

    /// `getSerialPortOutput` of `port` from byte `start` (None: the oldest
    /// byte kept): (contents, next offset).
    pub async fn serial_port(
        &self,
        project: &str,
        zone: &str,
        name: &str,
        port: u32,
        start: Option<u64>,
    ) -> Result<(String, u64), ApiError> {
        #[derive(Deserialize)]
        struct Out {
            #[serde(default)]
            contents: String,
            #[serde(default)]
            next: Option<String>,
        }
        let mut q = format!("port={port}");
        if let Some(s) = start {
            q.push_str(&format!("&start={s}"));
        }
        let url = self.compute_url(&format!(
            "projects/{}/zones/{}/instances/{}/serialPort?{q}",
            segment(project),
            segment(zone),
            segment(name)
        ));
        let o: Out = self
            .call(
                Method::GET,
                &url,
                None,
                &format!("reading serial port {port} of {name}"),
            )
            .await?;
        let next = o.next.and_then(|n| n.parse().ok()).unwrap_or(0);
        Ok((o.contents, next))
    }

    /// firewalls.insert, then waits for its global operation.
    pub async fn insert_firewall(&self, project: &str, rule: &Value) -> Result<(), ApiError> {
        let url = self.compute_url(&format!("projects/{}/global/firewalls", segment(project)));
        let what = format!(
            "creating firewall rule {} in {project}",
            rule["name"].as_str().unwrap_or("?")
        );
        let op: Operation = self.call(Method::POST, &url, Some(rule), &what).await?;
        self.wait_operation(project, op).await
    }

    /// Does the caller hold `iap.tunnelInstances.accessViaIAP` on the
    /// instance (IAP's testIamPermissions)?
    pub async fn iap_tunnel_access(
        &self,
        project: &str,
        zone: &str,
        name: &str,
    ) -> Result<bool, ApiError> {
        let url = format!(
            "{}projects/{}/iap_tunnel/zones/{}/instances/{}:testIamPermissions",
            self.endpoints.iap,
            segment(project),
            segment(zone),
            segment(name)
        );
        let body = json!({"permissions": ["iap.tunnelInstances.accessViaIAP"]});
        let p: Permissions = self
            .call(
                Method::POST,
                &url,
                Some(&body),
                &format!("IAP permissions on {name}"),
            )
            .await?;
        Ok(p.permissions
            .iter()
            .any(|x| x == "iap.tunnelInstances.accessViaIAP"))
    }
}
