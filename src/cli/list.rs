//! `iap-ssh list [--project P]... [--format table|json]`: the VMs with the
//! alias setup gives them, zone, status, the user you log in as, and where
//! your key is (or would be) published. Read-only.

use std::collections::BTreeMap;

use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::error::{UserError, exit};
use crate::gce::Api;
use crate::gce::flags::KeySource;
use crate::gcloud::GcloudConfig;
use crate::setup::{self, metadata_user};
use crate::ssh::keys::{self, KeyState};
use crate::ssh::metadata_keys;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub select: super::args::SelectionArgs,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Private key whose publication is reported (default: ~/.ssh/google_compute_engine)
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Serialize)]
struct Row {
    alias: String,
    name: String,
    zone: String,
    project: String,
    id: String,
    status: String,
    user: String,
    /// os-login, project, instance, instance-legacy, windows
    key_source: &'static str,
    /// Is your key there and valid?
    key_published: bool,
}

fn source_id(s: KeySource) -> &'static str {
    match s {
        KeySource::OsLogin => "os-login",
        KeySource::Project => "project",
        KeySource::Instance => "instance",
        KeySource::InstanceLegacy => "instance-legacy",
        KeySource::Windows => "windows",
    }
}

pub fn run(a: ListArgs, quiet: bool) -> Result<i32, UserError> {
    let gcloud = GcloudConfig::process();
    let selection = a.select.selection()?;
    let key_file = match a.key_file {
        Some(k) => k,
        None => super::args::home_file(&[".ssh", "google_compute_engine"])?,
    };
    let key = match keys::inspect(&key_file) {
        Ok(KeyState::Existing(k)) => Some(k),
        _ => None,
    };
    let rt = super::args::runtime()?;
    let rows = rt.block_on(async {
        let api = Api::from_env()?;
        let mut sink = std::io::sink();
        let mut err: Box<dyn std::io::Write> = if quiet {
            Box::new(&mut sink)
        } else {
            Box::new(std::io::stderr())
        };
        let setup::Found {
            project_meta, vms, ..
        } = setup::discover(&api, &selection, quiet, &mut err).await?;
        let muser = metadata_user(&api, gcloud, None).await?;
        // OS Login: one profile read per project gives that project's POSIX
        // user and whether the key is there.
        let mut os_users: BTreeMap<String, String> = BTreeMap::new();
        let mut os_has_key = false;
        let mut os_projects: Vec<&str> = vms
            .iter()
            .filter(|v| v.source == KeySource::OsLogin)
            .map(|v| v.project.as_str())
            .collect();
        os_projects.dedup();
        if !os_projects.is_empty() {
            let email = setup::account_email(&api, gcloud).await?;
            let profiles = futures_util::future::join_all(
                os_projects.iter().map(|p| api.login_profile(&email, p)),
            )
            .await;
            for (p, r) in os_projects.iter().zip(profiles) {
                match r {
                    Ok(prof) => {
                        if let Some(u) = prof.username_in(p, None) {
                            os_users.insert(p.to_string(), u);
                        }
                        os_has_key |= key
                            .as_ref()
                            .is_some_and(|k| prof.find_key(&k.blob).is_some());
                    }
                    Err(e) => tracing::info!("OS Login profile in {p}: {e}"),
                }
            }
        }
        let now = crate::timefmt::unix_now() as i64;
        let names = crate::setup::plan::NameCounts::of(&vms);
        let claims = crate::setup::reserved::gather(
            &super::args::home_file(&[".ssh", "config"])?,
            dirs::home_dir().as_deref(),
        );
        let rows: Vec<Row> = vms
            .iter()
            .map(|v| {
                let has = |meta: &crate::gce::compute::Metadata| {
                    key.as_ref().is_some_and(|k| {
                        metadata_keys::has_valid(&meta.ssh_key_values(), &muser, k, now, 0)
                    })
                };
                let (user, published) = match v.source {
                    KeySource::OsLogin => (
                        os_users
                            .get(&v.project)
                            .cloned()
                            .unwrap_or_else(|| "?".into()),
                        os_has_key,
                    ),
                    KeySource::Project => (muser.clone(), has(&project_meta[&v.project])),
                    KeySource::Instance | KeySource::InstanceLegacy => {
                        (muser.clone(), has(v.kept.metadata()))
                    }
                    KeySource::Windows => ("-".into(), false),
                };
                Row {
                    alias: names.patterns(v, &claims).0.swap_remove(0),
                    name: v.name.clone(),
                    zone: v.zone.clone(),
                    project: v.project.clone(),
                    id: v.id.clone(),
                    status: v.status.to_string(),
                    user,
                    key_source: source_id(v.source),
                    key_published: published,
                }
            })
            .collect();
        Ok::<_, UserError>(rows)
    })?;
    match a.format {
        Format::Json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&rows).unwrap_or_default()
            );
        }
        Format::Table => print_table(&rows),
    }
    Ok(exit::OK)
}

fn print_table(rows: &[Row]) {
    let head = ["ALIAS", "ZONE", "PROJECT", "STATUS", "USER", "KEY"];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let key = format!(
                "{} ({})",
                r.key_source,
                if r.key_published {
                    "published"
                } else {
                    "not yet: run iap-ssh setup"
                }
            );
            [
                r.alias.clone(),
                r.zone.clone(),
                r.project.clone(),
                r.status.clone(),
                r.user.clone(),
                key,
            ]
        })
        .collect();
    let mut width: BTreeMap<usize, usize> = BTreeMap::new();
    for (i, h) in head.iter().enumerate() {
        width.insert(i, h.len());
    }
    for c in &cells {
        for (i, x) in c.iter().enumerate() {
            let w = width.entry(i).or_default();
            *w = (*w).max(x.chars().count());
        }
    }
    let line = |c: &[String]| {
        c.iter()
            .enumerate()
            .map(|(i, x)| {
                if i + 1 == c.len() {
                    x.clone()
                } else {
                    format!("{x:<w$}", w = width[&i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    println!("{}", line(&head.map(String::from)));
    for c in &cells {
        println!("{}", line(c));
    }
}
