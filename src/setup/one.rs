//! One VM made ready for the system `ssh`/`scp` without `setup`: its key
//! published where the VM reads keys (OS Login, project or instance
//! metadata), its host keys fetched into the known-hosts file, and the
//! options a setup Host block would carry. With `dry_run`, reads only.

use super::discover::FIX_LIST;
use super::key::ensure_key;
use super::oslogin;
use super::publish::{Level, Published, fix_setmetadata, publish_metadata};
use super::{
    Options, io_error, metadata_user, path_value,
    plan::{self, Vm},
};
use crate::error::{UserError, exit};
use crate::gce::Api;
use crate::gce::compute::Instance;
use crate::gce::flags::{self, KeySource};
use crate::gcloud::GcloudConfig;
use crate::setup::files;
use crate::ssh::command::ConnOptions;
use crate::ssh::config::{Route, Strict};
use crate::ssh::known_hosts;

/// Everything needed to run ssh or scp against the VM.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub user: String,
    /// The host token given to ssh (the instance name).
    pub host: String,
    pub conn: ConnOptions,
    /// A metadata entry was written in this run: the guest agent needs a
    /// moment before sshd accepts the key.
    pub wrote_metadata: bool,
    /// The entry was there, but written moments ago (by a parallel run):
    /// check quietly that it has reached the VM.
    pub fresh_metadata: bool,
}

pub async fn prepare(
    api: &Api,
    gcloud: &GcloudConfig,
    inst: Instance,
    project: &str,
    opts: &Options,
) -> Result<Prepared, UserError> {
    plan::validate(project, &inst).map_err(|why| {
        UserError::new(exit::OTHER, why)
            .with_fix("this instance cannot be reached safely by name; report it")
    })?;
    let known_hosts_value = path_value(&opts.known_hosts)?;
    let (key, generated) = ensure_key(opts)?;
    if generated && !opts.quiet {
        eprintln!("iap-ssh: generated {}", opts.key_file.display());
    }
    let proj = api
        .get_project(project)
        .await
        .map_err(|e| e.to_user(FIX_LIST))?;
    let pmeta = proj.common_instance_metadata;
    let source = flags::key_source(&pmeta, &inst);
    let vm = Vm {
        project: project.to_string(),
        zone: inst.zone_name().to_string(),
        name: inst.name.clone(),
        id: inst.id.clone(),
        status: crate::setup::plan::status(&inst.status),
        source,
        kept: crate::setup::plan::Kept::whole(inst.clone()),
    };
    let mut wrote_metadata = false;
    let mut fresh_metadata = false;
    let user = match source {
        KeySource::Windows => {
            return Err(UserError::new(
                exit::OTHER,
                format!("{} is a Windows VM; it does not take SSH keys", vm.name),
            )
            .with_fix(format!(
                "use RDP through a tunnel: iap-ssh forward {} 3389 --local-host-port localhost:3389",
                vm.full_alias()
            )));
        }
        KeySource::OsLogin => {
            let (u, _, outcome) = oslogin::publish(api, gcloud, &vm, key.as_ref(), opts).await?;
            if outcome == Published::NotImportable && !opts.quiet {
                eprintln!(
                    "iap-ssh: {} is a security key, which OS Login does not import; this works only if it is registered with your Google account and the VM has enable-oslogin-sk",
                    opts.key_file.display()
                );
            }
            if let Some(w) = &opts.user
                && w != &u
                && !opts.quiet
            {
                eprintln!("iap-ssh: using OS Login user {u} instead of the requested {w}");
            }
            u
        }
        KeySource::Project | KeySource::Instance | KeySource::InstanceLegacy => {
            let user = metadata_user(api, gcloud, opts.user.as_deref()).await?;
            if let Some(k) = &key {
                let (level, meta, fix) = if source == KeySource::Project {
                    (
                        Level::Project(project.to_string()),
                        pmeta.clone(),
                        "project",
                    )
                } else {
                    let level = Level::Instance {
                        project: project.to_string(),
                        zone: vm.zone.clone(),
                        name: vm.name.clone(),
                    };
                    (level, inst.metadata.clone(), "instance")
                };
                let r = publish_metadata(
                    api,
                    &level,
                    meta,
                    source.metadata_key(),
                    &user,
                    k,
                    opts.key_ttl,
                    opts.dry_run,
                )
                .await
                .map_err(|e| e.to_user(&fix_setmetadata(fix)))?;
                wrote_metadata = r == Published::Written;
                fresh_metadata = r == Published::JustPresent;
            }
            user
        }
    };

    // Host keys: pinned when the guest agent published them.
    let alias = known_hosts::alias(&vm.id);
    let old_kh = files::read(&files::resolve(&opts.known_hosts))
        .map_err(|e| io_error(&opts.known_hosts, e))?;
    let mut known = known_hosts::has_alias(&old_kh, &alias);
    if !known
        && !opts.dry_run
        && vm.status == "RUNNING"
        && flags::flag(&pmeta, &inst.metadata, "enable-guest-attributes")
    {
        match api.host_keys(project, &vm.zone, &vm.name).await {
            Ok(keys) if !keys.is_empty() => {
                // Under the lock, on the file as it is now: parallel runs
                // (xargs -P8 iap-ssh ssh …) each add their own VM's keys.
                let (_, now) = files::append(&opts.known_hosts, 0o600, |now| {
                    let mut add = String::new();
                    if !known_hosts::has_alias(now, &alias) {
                        known_hosts::append(&mut add, &alias, &keys);
                    }
                    add
                })
                .map_err(|e| io_error(&opts.known_hosts, e))?;
                known = known_hosts::has_alias(&now, &alias);
            }
            Ok(_) => {}
            Err(e) => tracing::info!("host keys of {}: {e}", vm.name),
        }
    }
    // OS Login certificate VMs take nothing but a certificate of the key.
    let mut certificate = None;
    if source == KeySource::OsLogin
        && crate::setup::certs::wants_certificates(&pmeta, &inst.metadata)
    {
        let file = crate::setup::certs::path_for(&opts.key_file, project, &vm.zone, &vm.id);
        if let (Some(k), false) = (key.as_ref(), opts.dry_run) {
            let email = crate::setup::account_email(api, gcloud).await?;
            let sa = crate::setup::certs::service_account(&inst);
            crate::setup::certs::ensure(api, &email, project, &vm.zone, &vm.id, sa, k, &file)
                .await?;
        }
        certificate = Some(file.display().to_string());
    }
    let route = if opts.internal_ip {
        let ip = inst.internal_ip().ok_or_else(|| {
            UserError::new(
                exit::OTHER,
                format!("{} has no internal IP address", vm.name),
            )
            .with_fix("leave out --internal-ip to go through IAP")
        })?;
        Route::Direct(ip)
    } else {
        Route::Proxy(plan::proxy_command_with(
            &opts.exe,
            &opts.global_args,
            &opts.proxy_args,
            project,
            &vm.zone,
            &vm.name,
        ))
    };
    Ok(Prepared {
        user,
        host: vm.name.clone(),
        conn: ConnOptions {
            identity_file: opts.key_file.display().to_string(),
            known_hosts: known_hosts_value,
            host_key_alias: alias,
            strict: if known {
                Strict::Yes
            } else {
                Strict::AcceptNew
            },
            route,
            certificate,
        },
        wrote_metadata,
        fresh_metadata,
    })
}
