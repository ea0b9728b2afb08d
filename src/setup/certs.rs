//! OS Login certificates (`enable-oslogin-certificates`): the VM's sshd
//! trusts OS Login's CA and no plain key, so each VM gets a certificate
//! of the key, signed by `signSshPublicKey` for its project and region,
//! kept where gcloud keeps it. OpenSSH loads certificate files before it
//! runs the ProxyCommand, so renewal cannot live in `proxy`: each Host
//! block gets a `Match host … exec "iap-ssh oslogin-cert …"` line, which
//! ssh runs while reading its config; it returns at once (no API call)
//! while the certificate is good and signs a new one when it is not.

use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use super::vm::Vm;
pub use super::vm::service_account;
use crate::error::{UserError, exit};
use crate::gce::Api;
use crate::gce::compute::Metadata;
use crate::gce::flags::KeySource;
use crate::ssh::cert;
use crate::ssh::keys::PublicKeyInfo;

pub(crate) const FIX_CERT: &str = "certificates need roles/compute.osLogin (or osAdminLogin) on the VM; check `iap-ssh doctor VM`";

/// Does this VM want certificates (`enable-oslogin-certificates`, the
/// instance's value over the project's)?
pub fn wants_certificates(
    project_meta: &crate::gce::compute::Metadata,
    instance_meta: &crate::gce::compute::Metadata,
) -> bool {
    crate::gce::flags::flag(project_meta, instance_meta, "enable-oslogin-certificates")
}

/// What [`ensure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertOutcome {
    Present,
    Signed,
}

/// Makes sure `path` holds a good certificate of `key` for the VM: signs
/// one when it is missing, for another key, expired or about to expire
/// (a 404 means no POSIX account in the project yet: created, then signed
/// again); written 0600 in a 0700 folder.
#[allow(clippy::too_many_arguments)]
pub async fn ensure(
    api: &Api,
    email: &str,
    project: &str,
    zone: &str,
    instance_id: &str,
    service_account: &str,
    key: &PublicKeyInfo,
    path: &Path,
) -> Result<CertOutcome, UserError> {
    let now = crate::timefmt::unix_now();
    if std::fs::read_to_string(path).is_ok_and(|t| cert::still_good(&t, &key.blob, now)) {
        return Ok(CertOutcome::Present);
    }
    let public = key.type_blob();
    let mut provisioned = false;
    let signed = loop {
        match api
            .sign_key(project, zone, instance_id, service_account, &public)
            .await
        {
            Ok(c) => break c,
            Err(e) if e.status() == Some(404) && !provisioned => {
                provisioned = true;
                let region = zone.rsplit_once('-').map_or(zone, |(r, _)| r);
                api.provision_posix(email, project, region)
                    .await
                    .map_err(|e| e.to_user(FIX_CERT))?;
            }
            Err(e) => return Err(e.to_user(FIX_CERT)),
        }
    };
    // What comes back is written to a file ssh reads: it must be a
    // certificate of our key, and one line.
    if !cert::is_cert_of(&signed, &key.blob) {
        return Err(UserError::new(
            exit::OTHER,
            "OS Login returned something that is not a valid certificate of your key",
        )
        .with_fix("run the command again; if it persists, report it with -v"));
    }
    if let Some(dir) = path.parent() {
        crate::fsutil::create_private_dir(dir).map_err(|e| super::io_error(dir, e))?;
    }
    crate::fsutil::write_private_atomic(path, format!("{}\n", signed.trim()).as_bytes())
        .map_err(|e| super::io_error(path, e))?;
    Ok(CertOutcome::Signed)
}

/// The certificate VMs among `vms` (OS Login on, certificates wanted):
/// instance id → (certificate file, service account).
pub fn plan(
    vms: &[Vm],
    project_meta: &BTreeMap<String, Metadata>,
    key_file: &Path,
) -> BTreeMap<String, (String, String)> {
    vms.iter()
        .filter(|v| {
            v.source == KeySource::OsLogin
                && project_meta
                    .get(&v.project)
                    .is_some_and(|m| wants_certificates(m, v.kept.metadata()))
        })
        .map(|v| {
            let file = path_for(key_file, &v.project, &v.zone, &v.id);
            (
                v.id.clone(),
                (
                    file.display().to_string(),
                    v.kept.service_account.to_string(),
                ),
            )
        })
        .collect()
}

/// [`ensure`] for every VM of `certs` (from [`plan`]), 8 at a time.
pub async fn ensure_all(
    api: &Api,
    email: &str,
    key: &PublicKeyInfo,
    vms: &[Vm],
    certs: &BTreeMap<String, (String, String)>,
) -> Result<Vec<CertOutcome>, UserError> {
    use futures_util::StreamExt;
    let by_id: BTreeMap<&str, &Vm> = vms.iter().map(|v| (v.id.as_str(), v)).collect();
    futures_util::stream::iter(certs.iter().map(|(id, (file, sa))| {
        let v = by_id[id.as_str()];
        ensure(
            api,
            email,
            &v.project,
            &v.zone,
            id,
            sa,
            key,
            Path::new(file),
        )
    }))
    .buffer_unordered(8)
    .collect::<Vec<_>>()
    .await
    .into_iter()
    .collect()
}

/// The certificate file of a VM beside the key file.
pub fn path_for(key_file: &Path, project: &str, zone: &str, instance_id: &str) -> PathBuf {
    let dir = key_file.parent().unwrap_or(Path::new("."));
    cert::path(dir, project, zone, instance_id)
}
