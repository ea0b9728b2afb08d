//! The firewall check of `doctor`: does a rule let IAP's range (IPv4 and,
//! for VMs with IPv6, IPv6) reach the port? With the rule `--fix` would
//! create when none does.

use super::Report;
use super::fix::Fix;
use crate::error::exit;
use crate::gce::Api;
use crate::gce::compute::{Instance, last_segment};
use crate::gce::firewall::{self, Verdict};

/// The project that owns the VM's network (Shared VPC puts it elsewhere)
/// and the network's name.
fn network_of(inst: &Instance, project: &str) -> (String, String) {
    let url = inst
        .network_interfaces
        .first()
        .map(|n| n.network.as_str())
        .unwrap_or("");
    let net = if url.is_empty() {
        "default"
    } else {
        last_segment(url)
    };
    let host_project = url
        .split('/')
        .skip_while(|s| *s != "projects")
        .nth(1)
        .unwrap_or(project);
    (host_project.to_string(), net.to_string())
}

/// The firewall check for IAP's IPv4 range and, when the VM has an IPv6
/// address, its IPv6 range (a failure for an IPv6-only VM, a warning for
/// a dual-stack one, which IAP reaches over IPv4). Returns the rules
/// `--fix` would create.
pub(super) async fn check_firewall(
    r: &mut Report,
    api: &Api,
    inst: &Instance,
    project: &str,
    port: u16,
) -> Vec<Fix> {
    let (fw_project, network) = network_of(inst, project);
    let nic0 = inst.network_interfaces.first();
    let (v4, v6) = match nic0 {
        Some(n) if n.ipv6_only() => (false, true),
        Some(n) => (true, n.has_ipv6()),
        None => (true, false),
    };
    let ranges: Vec<&str> = [(v4, firewall::IAP_RANGE), (v6, firewall::IAP_RANGE_V6)]
        .into_iter()
        .filter_map(|(on, r)| on.then_some(r))
        .collect();
    let rules = match api.firewalls(&fw_project).await {
        Ok(x) => x,
        Err(e) => {
            r.warn(&format!(
                "firewall: cannot read the rules of project {fw_project} ({e}); check that one admits {} on tcp:{port}",
                ranges.join(" and ")
            ));
            return vec![];
        }
    };
    let sas: Vec<String> = inst
        .service_accounts
        .iter()
        .map(|s| s.email.clone())
        .collect();
    let t = firewall::Target {
        network: &network,
        tags: &inst.tags.items,
        service_accounts: &sas,
        port,
    };
    let network_url = nic0
        .map(|n| n.network.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| format!("projects/{fw_project}/global/networks/{network}"));
    let mut fixes = vec![];
    for range in ranges {
        let v6 = range == firewall::IAP_RANGE_V6;
        let name = format!(
            "allow-ingress-from-iap{}-tcp-{port}",
            if v6 { "-v6" } else { "" }
        );
        let create = |prio: Option<i64>| {
            format!(
                "gcloud compute firewall-rules create {name} --project={fw_project} --network={network} --direction=INGRESS --action=allow --rules=tcp:{port} --source-ranges={range}{}{}",
                prio.map(|p| format!(" --priority={p}")).unwrap_or_default(),
                if inst.tags.items.is_empty() {
                    String::new()
                } else {
                    format!(" --target-tags={}", inst.tags.items.join(","))
                }
            )
        };
        let mut propose = |prio: i64| {
            fixes.push(Fix::Firewall {
                project: fw_project.clone(),
                rule: firewall::iap_rule(&name, &network_url, port, prio, &inst.tags.items, range),
            })
        };
        // A dual-stack VM is reached over IPv4: IPv6 is advice there.
        let fail = |r: &mut Report, msg: &str, fix: &str| {
            if v6 && v4 {
                r.warn(&format!("{msg} (IAP reaches this dual-stack VM over IPv4; needed if it becomes IPv6-only)"));
            } else {
                r.fail(exit::BACKEND_UNREACHABLE, msg, fix);
            }
        };
        match firewall::evaluate_from(&rules, &t, range) {
            Verdict::Admitted(name) => r.ok(&format!(
                "firewall: rule {name} admits {range} on tcp:{port} (network {network})"
            )),
            Verdict::Blocked(None) => {
                fail(
                    r,
                    &format!(
                        "firewall: no ingress rule in network {network} admits {range} on tcp:{port}"
                    ),
                    &create(None),
                );
                propose(1000);
            }
            Verdict::Blocked(Some(deny)) => {
                let prio = rules
                    .iter()
                    .find(|x| x.name == deny)
                    .and_then(|x| x.priority)
                    .unwrap_or(1000);
                let msg = format!(
                    "firewall: deny rule {deny} (priority {prio}) blocks {range} on tcp:{port} (network {network})"
                );
                if prio > 0 {
                    fail(r, &msg, &create(Some(prio - 1)));
                    propose(prio - 1);
                } else {
                    fail(
                        r,
                        &msg,
                        &format!(
                            "deny rule {deny} has priority 0: narrow it so that it leaves out {range}"
                        ),
                    );
                }
            }
            Verdict::Partial(names) => {
                fail(
                    r,
                    &format!(
                        "firewall: rules {} cover only part of {range} on tcp:{port}; IAP may connect from any address in it",
                        names.join(", ")
                    ),
                    &create(None),
                );
                propose(1000);
            }
        }
    }
    fixes
}
