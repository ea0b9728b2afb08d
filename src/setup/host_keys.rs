//! Stage 4 of setup: host keys — fetched from guest attributes for the
//! running VMs the known-hosts file has no line for, then appended to it
//! under its lock (re-read first: a parallel run may have added some).

use std::collections::BTreeMap;

use futures_util::StreamExt;

use super::plan::Vm;
use super::{Options, PARALLEL, files, io_error, progress};

/// Guest-attribute reads in flight at once.
const HOST_KEYS_PARALLEL: usize = PARALLEL * 2;
use crate::error::UserError;
use crate::gce::compute::Metadata;
use crate::gce::flags::{self, KeySource};
use crate::gce::{Api, ApiError};
use crate::ssh::known_hosts;

/// One VM's answer: its known-hosts lines (None: it publishes no keys),
/// turned into text as it arrives (the most compact form to hold 50,000
/// of); the error boxed to keep the list small.
type HostKeyResult<'a> = (&'a Vm, Result<Option<String>, Box<ApiError>>);

/// `known` with the guest-attribute host keys of every running VM it has
/// no line for (only VMs with guest attributes on are asked).
pub(crate) async fn fetch_host_keys(
    api: &Api,
    vms: &[Vm],
    project_meta: &BTreeMap<String, Metadata>,
    known: &str,
    quiet: bool,
) -> (FoundKeys, Vec<String>) {
    let have = known_hosts::aliases(known);
    let wanted: Vec<&Vm> = vms
        .iter()
        .filter(|v| v.status == "RUNNING" && v.source != KeySource::Windows)
        .filter(|v| !have.contains(known_hosts::alias(&v.id).as_str()))
        .filter(|v| {
            flags::flag(
                &project_meta[&v.project],
                v.kept.metadata(),
                "enable-guest-attributes",
            )
        })
        .collect();
    drop(have);
    let pb = progress(quiet, wanted.len() as u64, "fetching host keys");
    let mut fetched: Vec<HostKeyResult> = futures_util::stream::iter(wanted)
        .map(|v| {
            let pb = &pb;
            async move {
                let r = api.host_keys(&v.project, &v.zone, &v.name).await;
                pb.inc(1);
                let r = match r {
                    Ok(keys) if keys.is_empty() => Ok(None),
                    Ok(keys) => {
                        let mut lines = String::new();
                        known_hosts::append(&mut lines, &known_hosts::alias(&v.id), &keys);
                        lines.shrink_to_fit();
                        Ok(Some(lines))
                    }
                    Err(e) => Err(Box::new(e)),
                };
                (v, r)
            }
        })
        .buffer_unordered(HOST_KEYS_PARALLEL)
        .collect()
        .await;
    pb.finish_and_clear();
    fetched.sort_unstable_by(|a, b| a.0.id.cmp(&b.0.id));
    let mut found = Vec::with_capacity(fetched.len());
    let mut warnings = vec![];
    for (v, r) in fetched {
        match r {
            Ok(Some(lines)) => found.push(lines),
            Ok(None) => {}
            Err(e) => warnings.push(format!("iap-ssh: warning: host keys of {}: {e}", v.name)),
        }
    }
    (found, warnings)
}

/// Host keys fetched: for each VM, the known-hosts lines to add where its
/// alias (their first word) is still unknown; text, the most compact form
/// to hold 50,000 of.
pub(crate) type FoundKeys = Vec<String>;

fn alias_of(lines: &str) -> &str {
    lines.split(' ').next().unwrap_or("")
}

/// The lines to append to known-hosts text `now` for `found`: aliases it
/// already lists are left alone (another run may have added them).
fn new_host_lines(now: &str, found: &FoundKeys) -> String {
    let have = known_hosts::aliases(now);
    let new = || found.iter().filter(|l| !have.contains(alias_of(l)));
    let mut add = String::with_capacity(new().map(String::len).sum());
    for lines in new() {
        add.push_str(lines);
    }
    add
}

/// The known-hosts text after adding `found` to `old` (what was read at
/// the start), and what was done: computed only (dry run), or appended to
/// the file as it is now, under its lock.
pub(super) fn record(
    opts: &Options,
    old: &str,
    found: FoundKeys,
) -> Result<(String, files::Outcome), UserError> {
    if opts.dry_run {
        let mut t = old.to_string();
        let add = new_host_lines(&t, &found);
        if !add.is_empty() && !t.is_empty() && !t.ends_with('\n') {
            t.push('\n');
        }
        t.push_str(&add);
        return Ok((t, files::Outcome::Unchanged));
    }
    let (outcome, now) = files::append(&opts.known_hosts, 0o600, |now| {
        let add = new_host_lines(now, &found);
        drop(found);
        add
    })
    .map_err(|e| io_error(&opts.known_hosts, e))?;
    Ok((now, outcome))
}
