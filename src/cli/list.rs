//! `iap-ssh list [--project P]... [--format table|json]`: the VMs with the
//! alias setup gives them, zone, status, the user you log in as, and where
//! your key is (or would be) published. Read-only.

use std::collections::BTreeMap;

use clap::{Args, ValueEnum};

use crate::error::{UserError, exit};
use crate::gce::Api;
use crate::gcloud::GcloudConfig;
use crate::setup::{self, list::Row};
use crate::ssh::keys::{self, KeyState};

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
    let config = super::args::home_file(&[".ssh", "config"])?;
    let rows = rt.block_on(async {
        let api = Api::from_env()?;
        setup::list::rows(&api, gcloud, &selection, key.as_ref(), &config, quiet).await
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
