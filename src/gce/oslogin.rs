//! OS Login calls: the login profile, importing a key (with expiry), and
//! refreshing a key's expiry; and choosing the POSIX username.

use std::collections::BTreeMap;

use http::Method;
use serde::Deserialize;
use serde_json::json;

use super::{Api, ApiError, segment};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PosixAccount {
    #[serde(default)]
    pub primary: bool,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub operating_system_type: Option<String>,
    /// The project the account is for (`users/U/projects/P`).
    #[serde(default)]
    pub account_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SshPublicKey {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub expiration_time_usec: Option<String>,
    #[serde(default)]
    pub fingerprint: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginProfile {
    #[serde(default)]
    pub posix_accounts: Vec<PosixAccount>,
    #[serde(default)]
    pub ssh_public_keys: BTreeMap<String, SshPublicKey>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImportResponse {
    #[serde(default)]
    login_profile: LoginProfile,
    #[serde(default)]
    details: String,
}

impl LoginProfile {
    /// Our key in the profile (matched on the base64 blob): (fingerprint,
    /// expiry in µs, None when it never expires).
    pub fn find_key(&self, blob: &str) -> Option<(String, Option<i64>)> {
        self.ssh_public_keys.iter().find_map(|(fp, k)| {
            (k.key.split_whitespace().nth(1) == Some(blob)).then(|| {
                (
                    k.fingerprint.clone().unwrap_or_else(|| fp.clone()),
                    k.expiration_time_usec
                        .as_deref()
                        .and_then(|e| e.parse().ok()),
                )
            })
        })
    }

    /// The POSIX user: `wanted` if the profile has it, else the primary
    /// Linux account, else the first.
    /// The POSIX user for `project`: `wanted` when the profile has it, else
    /// the Linux account made for that project, else [`Self::username`].
    pub fn username_in(&self, project: &str, wanted: Option<&str>) -> Option<String> {
        if let Some(w) = wanted
            && self.posix_accounts.iter().any(|a| a.username == w)
        {
            return Some(w.to_string());
        }
        self.posix_accounts
            .iter()
            .filter(|a| a.operating_system_type.as_deref() != Some("WINDOWS"))
            .find(|a| a.account_id.as_deref() == Some(project))
            .map(|a| a.username.clone())
            .or_else(|| self.username(wanted))
    }

    pub fn username(&self, wanted: Option<&str>) -> Option<String> {
        let linux = |a: &&PosixAccount| {
            a.operating_system_type
                .as_deref()
                .is_none_or(|t| t != "WINDOWS")
        };
        if let Some(w) = wanted
            && let Some(a) = self.posix_accounts.iter().find(|a| a.username == w)
        {
            return Some(a.username.clone());
        }
        self.posix_accounts
            .iter()
            .filter(linux)
            .find(|a| a.primary)
            .or_else(|| self.posix_accounts.iter().find(linux))
            .map(|a| a.username.clone())
    }
}

/// The `v1beta` base beside the configured `v1` one (certificates are
/// `v1beta` only).
fn beta(v1: &str) -> String {
    match v1.strip_suffix("v1/") {
        Some(b) => format!("{b}v1beta/"),
        None => format!("{v1}../v1beta/"),
    }
}

impl Api {
    /// `signSshPublicKey` (v1beta): an OpenSSH certificate for `public_key`
    /// (`TYPE BASE64`) on the VM, for the caller's POSIX account in
    /// `project` (the location is the zone's region).
    pub async fn sign_key(
        &self,
        project: &str,
        zone: &str,
        instance_id: &str,
        service_account: &str,
        public_key: &str,
    ) -> Result<String, ApiError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Signed {
            #[serde(default)]
            signed_ssh_public_key: String,
        }
        let region = zone.rsplit_once('-').map_or(zone, |(r, _)| r);
        let url = format!(
            "{}projects/{}/locations/{}:signSshPublicKey",
            beta(&self.endpoints.oslogin),
            segment(project),
            segment(region)
        );
        let body = json!({
            "computeInstance": format!("projects/{project}/zones/{zone}/instances/{instance_id}"),
            "serviceAccount": service_account,
            "sshPublicKey": public_key,
        });
        let s: Signed = self
            .call(
                Method::POST,
                &url,
                Some(&body),
                "signing the SSH key (OS Login certificate)",
            )
            .await?;
        Ok(s.signed_ssh_public_key)
    }

    /// Creates the caller's POSIX account in `project` (v1beta), as gcloud
    /// does when signing finds none.
    pub async fn provision_posix(
        &self,
        user: &str,
        project: &str,
        region: &str,
    ) -> Result<(), ApiError> {
        let url = format!(
            "{}users/{}/projects/{}",
            beta(&self.endpoints.oslogin),
            segment(user),
            segment(project)
        );
        let _: serde_json::Value = self
            .call(
                Method::POST,
                &url,
                Some(&json!({"regions": [region]})),
                &format!("creating the OS Login POSIX account of {user} in {project}"),
            )
            .await?;
        Ok(())
    }

    fn user_url(&self, user: &str, rest: &str) -> String {
        format!("{}users/{}{rest}", self.endpoints.oslogin, segment(user))
    }

    pub async fn login_profile(&self, user: &str, project: &str) -> Result<LoginProfile, ApiError> {
        let q = form_urlencoded::Serializer::new(String::new())
            .append_pair("projectId", project)
            .finish();
        let url = self.user_url(user, &format!("/loginProfile?{q}"));
        self.call(
            Method::GET,
            &url,
            None,
            &format!("OS Login profile of {user}"),
        )
        .await
    }

    /// Imports `key` (`TYPE BASE64 [COMMENT]`), expiring at `expire_usec`;
    /// returns the new profile. A key the organisation's policy refuses is
    /// missing from the returned profile: reported with the `details`.
    pub async fn import_key(
        &self,
        user: &str,
        key: &str,
        blob: &str,
        expire_usec: Option<i64>,
        project: &str,
        region: Option<&str>,
    ) -> Result<LoginProfile, ApiError> {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("projectId", project);
        if let Some(r) = region {
            q.append_pair("regions", r);
        }
        let url = self.user_url(user, &format!(":importSshPublicKey?{}", q.finish()));
        let mut body = json!({"key": key});
        if let Some(e) = expire_usec {
            body["expirationTimeUsec"] = json!(e.to_string());
        }
        let what = format!("importing the SSH key into OS Login for {user}");
        let r: ImportResponse = self.call(Method::POST, &url, Some(&body), &what).await?;
        if r.login_profile.find_key(blob).is_none() {
            return Err(ApiError::Operation {
                what,
                detail: format!("the key is not in the returned profile ({})", r.details),
            });
        }
        Ok(r.login_profile)
    }

    /// Sets a key's expiry.
    pub async fn update_key_expiry(
        &self,
        user: &str,
        fingerprint: &str,
        key: &str,
        expire_usec: Option<i64>,
    ) -> Result<(), ApiError> {
        let url = self.user_url(
            user,
            &format!(
                "/sshPublicKeys/{}?updateMask=expirationTimeUsec",
                segment(fingerprint)
            ),
        );
        let mut body = json!({"key": key});
        if let Some(e) = expire_usec {
            body["expirationTimeUsec"] = json!(e.to_string());
        }
        let _: serde_json::Value = self
            .call(
                Method::PATCH,
                &url,
                Some(&body),
                &format!("updating the OS Login key of {user}"),
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_and_keys() {
        let p: LoginProfile = serde_json::from_value(serde_json::json!({
            "posixAccounts": [
                {"username": "win_x", "primary": true, "operatingSystemType": "WINDOWS"},
                {"username": "alt", "primary": false},
                {"username": "alice_example_com", "primary": true, "operatingSystemType": "LINUX"}
            ],
            "sshPublicKeys": {"ff": {"key": "ssh-ed25519 BLOB c", "expirationTimeUsec": "17", "fingerprint": "ff"}}
        })).unwrap();
        assert_eq!(p.username(None).as_deref(), Some("alice_example_com"));
        assert_eq!(p.username(Some("alt")).as_deref(), Some("alt"));
        assert_eq!(
            p.username(Some("nobody")).as_deref(),
            Some("alice_example_com")
        );
        assert_eq!(p.find_key("BLOB"), Some(("ff".into(), Some(17))));
        assert_eq!(p.find_key("BLO"), None);
        assert_eq!(LoginProfile::default().username(None), None);
    }
}
