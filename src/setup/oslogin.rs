//! The OS Login half of setup: the key into the account's login profile
//! (import, or renew its expiry) and the POSIX user it gives in each
//! project, the identity for security-key VMs (`enable-oslogin-sk`), and
//! certificates for the VMs that take nothing else ([`super::certs`]).

use std::collections::{BTreeMap, BTreeSet};

use super::plan::Vm;
use super::publish::{Published, Tally, now, renew_margin};
use super::{Options, certs, discover::account_email, key, path_value};
use crate::error::{UserError, exit};
use crate::gce::Api;
use crate::gce::compute::Metadata;
use crate::gce::flags::{self, KeySource};
use crate::ssh::keys::PublicKeyInfo;
use crate::ssh::names;

pub(crate) const FIX_OSLOGIN: &str =
    "grant roles/compute.osLogin (or roles/compute.osAdminLogin) on the project";

/// What the OS Login stage found and did, for the Host blocks and the
/// summary.
#[derive(Default)]
pub(crate) struct Stage {
    /// The POSIX user in the first OS Login project, the default for the
    /// others (None: no OS Login VM).
    pub user: Option<String>,
    /// Project → POSIX user, for every project with OS Login VMs.
    pub users: BTreeMap<String, String>,
    /// The instance ids of the VMs that accept only security keys.
    pub sk_vms: BTreeSet<String>,
    /// The user's own sk- key for those VMs, as a config value.
    pub sk_identity: Option<String>,
    /// There are such VMs, and no sk- key to offer them.
    pub sk_missing: bool,
    /// The certificate VMs: instance id → (certificate file, service account).
    pub certs: BTreeMap<String, (String, String)>,
}

/// Publishes the key for the OS Login VMs among `vms`, one profile per
/// project (each project's POSIX user may differ), picks the identity for
/// security-key VMs and signs the certificates OS Login requires; every
/// outcome is added to `tally`.
pub(crate) async fn stage(
    api: &Api,
    gcloud: &crate::gcloud::GcloudConfig,
    vms: &[Vm],
    project_meta: &BTreeMap<String, Metadata>,
    key: Option<&PublicKeyInfo>,
    opts: &Options,
    tally: &mut Tally,
) -> Result<Stage, UserError> {
    let mut st = Stage {
        certs: certs::plan(vms, project_meta, &opts.key_file),
        ..Stage::default()
    };
    let Some(first) = vms.iter().find(|v| v.source == KeySource::OsLogin) else {
        return Ok(st);
    };
    let n = vms
        .iter()
        .filter(|v| v.source == KeySource::OsLogin)
        .count();
    let (user, email, outcome) = publish(api, gcloud, first, key, opts).await?;
    // The other projects with OS Login VMs: their own POSIX users.
    let mut others: Vec<(String, String)> = vms
        .iter()
        .filter(|v| v.source == KeySource::OsLogin && v.project != first.project)
        .map(|v| (v.project.clone(), v.region().to_string()))
        .collect();
    others.sort();
    others.dedup_by(|a, b| a.0 == b.0);
    st.users = users_elsewhere(api, &email, &user, &others, key, opts).await?;
    let differ: Vec<String> = st
        .users
        .iter()
        .filter(|(_, u)| **u != user)
        .map(|(p, u)| format!("{u} in {p}"))
        .collect();
    let also = if differ.is_empty() {
        String::new()
    } else {
        format!(", {}", differ.join(", "))
    };
    tally.add(format!("OS Login ({email} as {user}{also})"), outcome, n);
    st.users.insert(first.project.clone(), user.clone());
    st.user = Some(user);

    // Security-key VMs (`enable-oslogin-sk`) accept only keys registered
    // with the Google account: the key itself when it is an sk- key, else
    // the user's own sk- key when there is one, else they are told.
    st.sk_vms = vms
        .iter()
        .filter(|v| {
            v.source == KeySource::OsLogin
                && project_meta
                    .get(&v.project)
                    .is_some_and(|m| flags::flag(m, v.kept.metadata(), "enable-oslogin-sk"))
        })
        .map(|v| v.id.clone())
        .collect();
    if !st.sk_vms.is_empty() && !key.is_some_and(|k| k.is_security_key()) {
        match key::find_security_key(&opts.key_file) {
            Some(p) => st.sk_identity = Some(path_value(&p)?),
            None => st.sk_missing = true,
        }
    }

    // OS Login certificates, for the VMs that take nothing else.
    if let (Some(k), false) = (key, opts.dry_run) {
        for outcome in certs::ensure_all(api, &email, k, vms, &st.certs).await? {
            let p = match outcome {
                certs::CertOutcome::Present => Published::Present,
                certs::CertOutcome::Signed => Published::Written,
            };
            tally.add("OS Login certificate".into(), p, 1);
        }
    }
    Ok(st)
}

impl Stage {
    /// The summary line for security-key VMs without a key to offer them.
    pub(crate) fn sk_notice(&self, vms: &[Vm]) -> Option<String> {
        if !self.sk_missing {
            return None;
        }
        let names: Vec<&str> = vms
            .iter()
            .filter(|v| self.sk_vms.contains(&v.id))
            .map(|v| v.name.as_str())
            .collect();
        Some(format!(
            "  security keys: {} accept only a security key registered with your Google account (enable-oslogin-sk), and none was found: create one with `ssh-keygen -t ed25519-sk -f ~/.ssh/id_ed25519_sk` on the device, register it in your Google Account's security keys, then run setup again",
            names.join(", ")
        ))
    }
}

/// OS Login: make sure the key is in the profile (import, or renew its
/// expiry), and return (POSIX user, account, outcome).
pub(crate) async fn publish(
    api: &Api,
    gcloud: &crate::gcloud::GcloudConfig,
    first: &Vm,
    key: Option<&PublicKeyInfo>,
    opts: &Options,
) -> Result<(String, String, Published), UserError> {
    let e = account_email(api, gcloud).await?;
    let profile = api
        .login_profile(&e, &first.project)
        .await
        .map_err(|x| x.to_user(FIX_OSLOGIN))?;
    let ttl_us = expiry_us(opts);
    let fresh =
        |exp: Option<i64>| exp.is_none_or(|x| x / 1_000_000 > now() + renew_margin(opts.key_ttl));
    let (profile, outcome) = match key {
        None => (profile, Published::WouldWrite),
        // Whether OS Login's import would take one is UNCONFIRMED; its
        // documented way for security keys is the account's own keys.
        Some(k) if k.is_security_key() => (profile, Published::NotImportable),
        Some(k) => match profile.find_key(&k.blob) {
            Some((_, exp)) if fresh(exp) => (profile, Published::Present),
            _ if opts.dry_run => (profile, Published::WouldWrite),
            Some((fp, _)) => {
                api.update_key_expiry(&e, &fp, &k.type_blob(), ttl_us)
                    .await
                    .map_err(|x| x.to_user(FIX_OSLOGIN))?;
                (profile, Published::Written)
            }
            None => {
                let region = Some(first.region());
                let p = api
                    .import_key(&e, &k.type_blob(), &k.blob, ttl_us, &first.project, region)
                    .await
                    .map_err(|x| x.to_user(FIX_OSLOGIN))?;
                (p, Published::Written)
            }
        },
    };
    let user = match profile.username_in(&first.project, opts.user.as_deref()) {
        Some(u) => u,
        // First use of OS Login: the account is created by the import;
        // Google's rule for users is the email with `.` and `@` as `_`.
        None if opts.dry_run || outcome == Published::NotImportable => e.replace(['.', '@'], "_"),
        None => {
            return Err(UserError::new(
                exit::NOT_AUTHORIZED,
                format!("OS Login has no POSIX account for {e}"),
            )
            .with_fix(FIX_OSLOGIN));
        }
    };
    Ok((checked_user(user, "")?, e, outcome))
}

/// When an imported key expires (OS Login's microseconds), from
/// `--key-ttl`; None: never.
fn expiry_us(opts: &Options) -> Option<i64> {
    opts.key_ttl.map(|s| (now() + s as i64) * 1_000_000)
}

/// `user` if it is safe to write into an ssh config and a command line
/// (it comes from the API); `place` is said in the error (` in PROJECT`).
fn checked_user(user: String, place: &str) -> Result<String, UserError> {
    if names::is_user_name(&user) {
        return Ok(user);
    }
    Err(UserError::new(
        exit::OTHER,
        format!(
            "OS Login user name `{}`{place} is not a safe user name",
            user.escape_default()
        ),
    )
    .with_fix("use --user to pick another POSIX account of the profile"))
}

/// The OS Login POSIX user in each of `projects` besides the first (a
/// profile read each, in parallel): POSIX accounts are per project, and a
/// project's may differ. A project whose profile has no account yet (the
/// key was imported for another one) gets the key imported for it, which
/// creates the account, as gcloud does.
pub(crate) async fn users_elsewhere(
    api: &Api,
    email: &str,
    first_user: &str,
    projects: &[(String, String)],
    key: Option<&PublicKeyInfo>,
    opts: &Options,
) -> Result<BTreeMap<String, String>, UserError> {
    let found = futures_util::future::join_all(projects.iter().map(|(p, region)| async move {
        let profile = api
            .login_profile(email, p)
            .await
            .map_err(|x| x.to_user(FIX_OSLOGIN))?;
        let has_account = profile
            .posix_accounts
            .iter()
            .any(|a| a.account_id.as_deref() == Some(p.as_str()));
        let profile = match key {
            Some(k) if !has_account && !opts.dry_run && !k.is_security_key() => api
                .import_key(
                    email,
                    &k.type_blob(),
                    &k.blob,
                    expiry_us(opts),
                    p,
                    Some(region),
                )
                .await
                .map_err(|x| x.to_user(FIX_OSLOGIN))?,
            _ => profile,
        };
        let user = profile
            .username_in(p, opts.user.as_deref())
            .unwrap_or_else(|| first_user.to_string());
        Ok::<_, UserError>((p.clone(), checked_user(user, &format!(" in {p}"))?))
    }))
    .await;
    found.into_iter().collect()
}
