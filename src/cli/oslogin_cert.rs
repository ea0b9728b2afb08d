//! `iap-ssh oslogin-cert`: run by ssh (a `Match host … exec` line that
//! `setup` writes for OS Login certificate VMs) while it reads its config,
//! before it loads the certificate. While the certificate is good it
//! returns at once, reading two small files and making no API call; when
//! it is missing, for another key, expired or about to expire, it signs a
//! new one. It always exits non-zero, so the `Match` applies nothing; a
//! failure is one line on stderr (ssh then fails to log in with the old
//! certificate, and says so).

use std::path::PathBuf;

use clap::Args;

use crate::error::{UserError, exit};
use crate::ssh::keys::{self, KeyState};
use crate::ssh::names;

#[derive(Debug, Args)]
pub struct OsloginCertArgs {
    #[arg(long)]
    pub project: String,
    #[arg(long)]
    pub zone: String,
    #[arg(long)]
    pub instance: String,
    #[arg(long)]
    pub instance_id: String,
    /// The VM's service account (sent with the signing request)
    #[arg(long, default_value = "")]
    pub service_account: String,
    /// The private key whose public half is certified
    #[arg(long)]
    pub key_file: PathBuf,
    /// Where the certificate is kept
    #[arg(long)]
    pub cert_file: PathBuf,
}

/// "No match" for ssh's `Match exec`.
const NO_MATCH: i32 = 1;

pub fn run(a: OsloginCertArgs) -> Result<i32, UserError> {
    names::require_project(&a.project)?;
    if !names::is_resource_name(&a.zone)
        || !names::is_resource_name(&a.instance)
        || !names::is_instance_id(&a.instance_id)
    {
        return Err(
            UserError::new(exit::USAGE, "invalid zone, instance or instance id")
                .with_fix("run `iap-ssh setup` again to rewrite the config"),
        );
    }
    let key = match keys::inspect(&a.key_file) {
        Ok(KeyState::Existing(k)) => k,
        Ok(_) => {
            return Err(UserError::new(
                exit::OTHER,
                format!("{} does not exist", a.key_file.display()),
            )
            .with_fix("run `iap-ssh setup` again"));
        }
        Err(e) => return Err(UserError::new(exit::OTHER, e.to_string()).with_fix(e.fix())),
    };
    let now = crate::timefmt::unix_now();
    if std::fs::read_to_string(&a.cert_file)
        .is_ok_and(|t| crate::ssh::cert::still_good(&t, &key.blob, now))
    {
        return Ok(NO_MATCH);
    }
    let rt = super::args::runtime()?;
    rt.block_on(async {
        let api = crate::gce::Api::from_env()?;
        let email =
            crate::setup::account_email(&api, crate::gcloud::GcloudConfig::process()).await?;
        crate::setup::certs::ensure(
            &api,
            &email,
            &a.project,
            &a.zone,
            &a.instance_id,
            &a.service_account,
            &key,
            &a.cert_file,
        )
        .await?;
        tracing::info!("renewed the OS Login certificate of {}", a.instance);
        Ok(NO_MATCH)
    })
}
