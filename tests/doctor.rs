//! `iap-ssh doctor`: each seeded misconfiguration of the fake (no firewall
//! rule, a deny rule, missing IAP permission, a stopped VM, OS Login
//! without the role) is reported with its fix; a healthy VM passes every
//! check down to the SSH banner through a real tunnel.

mod common;

use common::*;
use serde_json::json;

fn allow_iap(port: &str) -> serde_json::Value {
    json!({"name": "allow-iap", "network": "default", "direction": "INGRESS", "priority": 1000,
           "sourceRanges": ["35.235.240.0/20"], "allowed": [{"IPProtocol": "tcp", "ports": [port]}]})
}

fn doctor(f: &Fleet, target: &str) -> (i32, String) {
    let out = f.iap_ssh().args(["doctor", target]).output().unwrap();
    assert!(
        out.stderr.is_empty(),
        "doctor reports on stdout: {}",
        stderr_of(&out)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains('\x1b'),
        "no colour when not a terminal: {text}"
    );
    (out.status.code().unwrap(), text)
}

const VM_PROJECT: &str = "vm-project.us-central1-b.iap-proj-a";

#[test]
fn healthy_vm_passes_every_check_down_to_the_ssh_banner() {
    let f = Fleet::new(|c| c.firewalls = Some(vec![allow_iap("22")]));
    let (code, text) = doctor(&f, VM_PROJECT);
    assert_eq!(code, 0, "{text}");
    let lines: Vec<&str> = text.lines().collect();
    // The network path first: no proxy here.
    assert_eq!(lines[0], "✓ network: direct to 127.0.0.1", "{text}");
    assert!(lines[1].starts_with("✓ credentials: static token from IAP_SSH_ACCESS_TOKEN; token accepted for iaptest.alice@example.com"), "{text}");
    assert_eq!(
        lines[2],
        "✓ instance vm-project exists in us-central1-b of iap-proj-a and is RUNNING"
    );
    assert_eq!(
        lines[3],
        "✓ firewall: rule allow-iap admits 35.235.240.0/20 on tcp:22 (network default)"
    );
    assert_eq!(
        lines[4],
        "✓ IAM: you hold iap.tunnelInstances.accessViaIAP on vm-project"
    );
    assert_eq!(
        lines[5],
        "✓ OS Login: off for vm-project; keys come from project metadata"
    );
    assert!(
        lines[6].starts_with("✓ tunnel to port 22: SSH-2.0-OpenSSH"),
        "{text}"
    );
    assert_eq!(lines.len(), 7, "{text}");
}

#[test]
fn missing_firewall_rule_is_reported_with_the_create_command() {
    let f = Fleet::new(|c| c.firewalls = Some(vec![allow_iap("3389")]));
    let (code, text) = doctor(&f, VM_PROJECT);
    assert_eq!(code, 6, "{text}");
    assert!(text.contains("✗ firewall: no ingress rule in network default admits 35.235.240.0/20 on tcp:22\n    fix: gcloud compute firewall-rules create allow-ingress-from-iap-tcp-22 --project=iap-proj-a --network=default --direction=INGRESS --action=allow --rules=tcp:22 --source-ranges=35.235.240.0/20\n"), "{text}");
    assert!(
        text.contains("✗ tunnel to port 22: IAP could not connect to port 22 of vm-project"),
        "{text}"
    );
    // The other port is open.
    let out = f
        .iap_ssh()
        .args(["doctor", "--port", "3389", VM_PROJECT])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("✓ firewall: rule allow-iap admits 35.235.240.0/20 on tcp:3389"),
        "{text}"
    );
}

#[test]
fn deny_rule_is_named_and_outranked_in_the_fix() {
    let f = Fleet::new(|c| {
        c.firewalls = Some(vec![
            allow_iap("22"),
            json!({"name": "deny-all-in", "network": "default", "priority": 900,
                   "sourceRanges": ["0.0.0.0/0"], "denied": [{"IPProtocol": "all"}]}),
        ])
    });
    let (code, text) = doctor(&f, VM_PROJECT);
    assert_eq!(code, 6, "{text}");
    assert!(text.contains("✗ firewall: deny rule deny-all-in (priority 900) blocks 35.235.240.0/20 on tcp:22 (network default)\n"), "{text}");
    assert!(
        text.contains("--rules=tcp:22 --source-ranges=35.235.240.0/20 --priority=899\n"),
        "{text}"
    );
}

#[test]
fn missing_iap_permission_gets_the_binding_command() {
    let f = Fleet::new(|c| {
        c.firewalls = Some(vec![allow_iap("22")]);
        c.iap_access = false;
    });
    let (code, text) = doctor(&f, VM_PROJECT);
    assert_eq!(code, 4, "{text}");
    assert!(text.contains("✗ IAM: you lack iap.tunnelInstances.accessViaIAP on vm-project\n    fix: iap-ssh grant --project iap-proj-a --zone us-central1-b --instance vm-project --port 22 --member user:iaptest.alice@example.com (or, project-wide: gcloud projects add-iam-policy-binding iap-proj-a --member=user:iaptest.alice@example.com --role=roles/iap.tunnelResourceAccessor)\n"), "{text}");
    assert!(
        text.contains("✗ tunnel to port 22: IAP denied access"),
        "{text}"
    );
}

#[test]
fn stopped_vm_gets_the_start_command() {
    let f = Fleet::new(|_| {});
    let (code, text) = doctor(&f, "stopped.europe-west1-c.iap-proj-b");
    assert_eq!(code, 6, "{text}");
    assert!(text.contains("✗ instance stopped is TERMINATED, not RUNNING\n    fix: gcloud compute instances start stopped --zone=europe-west1-c --project=iap-proj-b\n"), "{text}");
}

#[test]
fn os_login_without_the_role_and_unknown_instances() {
    let f = Fleet::new(|c| {
        c.firewalls = Some(vec![allow_iap("22")]);
        c.oslogin_access = false;
    });
    let (code, text) = doctor(&f, "vm-oslogin.us-central1-a.iap-proj-a");
    assert_eq!(code, 4, "{text}");
    assert!(text.contains("✗ OS Login: on for vm-oslogin, but you may not log in (compute.instances.osLogin)\n    fix: gcloud projects add-iam-policy-binding iap-proj-a --member=user:iaptest.alice@example.com --role=roles/compute.osLogin\n"), "{text}");

    let (code, text) = doctor(&f, "ghost.us-central1-a.iap-proj-a");
    assert_eq!(code, 5, "{text}");
    assert!(
        text.contains(
            "✗ instance ghost: instance ghost not found in zone us-central1-a of project iap-proj-a"
        ),
        "{text}"
    );

    // Without credentials: the first check fails with its fix.
    let out = f
        .iap_ssh()
        .env_remove("IAP_SSH_ACCESS_TOKEN")
        .env_remove("IAP_SSH_METADATA_URL")
        .args(["doctor", VM_PROJECT])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.starts_with("✓ network: direct to 127.0.0.1\n✗ credentials: no Google credentials found\n    fix: run `gcloud auth application-default login`"), "{text}");
}

fn doctor_fix(f: &Fleet, args: &[&str], stdin: &str) -> (i32, String, String) {
    let out = f
        .iap_ssh()
        .args(["doctor", "--fix"])
        .args(args)
        .arg(VM_PROJECT)
        .write_stdin(stdin)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout.clone()).unwrap(),
        stderr_of(&out),
    )
}

fn created_rules(f: &Fleet) -> Vec<serde_json::Value> {
    f.fake
        .state
        .cloud
        .lock()
        .unwrap()
        .firewalls
        .clone()
        .unwrap_or_default()
}

#[test]
fn fix_creates_the_firewall_rule_and_grants_the_role_then_the_tunnel_works() {
    let f = Fleet::new(|c| {
        c.firewalls = Some(vec![allow_iap("3389")]);
        c.iap_policies = Some(Default::default());
    });
    let (code, text, _) = doctor_fix(&f, &["--yes"], "");
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(
            "✗ firewall: no ingress rule in network default admits 35.235.240.0/20 on tcp:22\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("✗ IAM: you lack iap.tunnelInstances.accessViaIAP on vm-project\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "✓ fixed: created firewall rule allow-ingress-from-iap-tcp-22 in iap-proj-a\n"
        ),
        "{text}"
    );
    assert!(text.contains("✓ fixed: grant user:iaptest.alice@example.com roles/iap.tunnelResourceAccessor on vm-project in us-central1-b of iap-proj-a for tcp:22\n"), "{text}");
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with("✓ tunnel to port 22: SSH-2.0-OpenSSH"),
        "{text}"
    );
    let rules = created_rules(&f);
    let r = rules
        .iter()
        .find(|r| r["name"] == "allow-ingress-from-iap-tcp-22")
        .expect("created");
    assert_eq!(r["sourceRanges"], json!(["35.235.240.0/20"]));
    assert_eq!(
        r["allowed"],
        json!([{"IPProtocol": "tcp", "ports": ["22"]}])
    );
    assert_eq!(r["priority"], 1000);
    assert_eq!(r["direction"], "INGRESS");
    assert!(
        r["network"]
            .as_str()
            .unwrap()
            .ends_with("/projects/iap-proj-a/global/networks/default"),
        "{r}"
    );
    assert!(r.get("targetTags").is_none(), "{r}");
    let p = f.fake.state.iap.lock().unwrap().map
        ["projects/iap-proj-a/iap_tunnel/zones/us-central1-b/instances/vm-project"]
        .clone();
    assert_eq!(
        p["bindings"][0]["members"],
        json!(["user:iaptest.alice@example.com"])
    );
    assert_eq!(
        p["bindings"][0]["condition"]["expression"],
        "destination.port == 22"
    );
    // Healthy now, without --fix.
    let (code, text) = doctor(&f, VM_PROJECT);
    assert_eq!(code, 0, "{text}");
}

#[test]
fn fix_asks_and_a_no_changes_nothing() {
    let f = Fleet::new(|c| {
        c.firewalls = Some(vec![allow_iap("3389")]);
        c.iap_policies = Some(Default::default());
    });
    let before = created_rules(&f);
    let (code, text, err) = doctor_fix(&f, &[], "n\n");
    assert_eq!(code, 6, "{text}");
    assert!(err.contains("apply: create firewall rule allow-ingress-from-iap-tcp-22 in iap-proj-a: allow 35.235.240.0/20 to tcp:22 on default at priority 1000? [y/N]"), "{err}");
    assert!(
        text.contains("! not applied: create firewall rule"),
        "{text}"
    );
    // No answer at all (stdin closed) is no as well.
    assert!(
        text.contains("! not applied: grant user:iaptest.alice@example.com"),
        "{text}"
    );
    assert_eq!(created_rules(&f), before);
    assert_eq!(f.fake.state.iap.lock().unwrap().writes, 0);
    // Yes to both.
    let (code, text, _) = doctor_fix(&f, &[], "y\nyes\n");
    assert_eq!(code, 0, "{text}");
}

#[test]
fn fix_outranks_a_deny_rule_and_keeps_the_vms_tags() {
    let f = Fleet::new(|c| {
        c.firewalls = Some(vec![
            allow_iap("22"),
            json!({"name": "deny-all-in", "network": "default", "priority": 900,
                   "sourceRanges": ["0.0.0.0/0"], "denied": [{"IPProtocol": "all"}]}),
            // The name is taken (by a rule of another network).
            json!({"name": "allow-ingress-from-iap-tcp-22", "project": "iap-proj-a", "network": "other", "priority": 1000,
                   "sourceRanges": ["35.235.240.0/20"], "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]}),
        ]);
        let vm = c.instance_mut("vm-project");
        vm.tags = vec!["ssh".into(), "web".into()];
    });
    let (code, text, _) = doctor_fix(&f, &["--yes"], "");
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(
            "✓ fixed: created firewall rule allow-ingress-from-iap-tcp-22-2 in iap-proj-a\n"
        ),
        "{text}"
    );
    let rules = created_rules(&f);
    let r = rules
        .iter()
        .find(|r| r["name"] == "allow-ingress-from-iap-tcp-22-2")
        .expect("created");
    assert_eq!(r["priority"], 899);
    assert_eq!(r["targetTags"], json!(["ssh", "web"]));
}

/// IAP's IPv4 range admitted on 22; vm-project with this `stackType`.
fn with_stack(stack: &str) -> Fleet {
    Fleet::new(|c| {
        c.firewalls = Some(vec![allow_iap("22")]);
        let vm = c.instance_mut("vm-project");
        vm.stack_type = Some(stack.into());
    })
}

#[test]
fn an_ipv6_only_vm_needs_and_gets_the_ipv6_range() {
    let f = with_stack("IPV6_ONLY");
    let (code, text) = doctor(&f, VM_PROJECT);
    assert_eq!(code, 6, "{text}");
    assert!(text.contains("✗ firewall: no ingress rule in network default admits 2600:2d00:1:7::/64 on tcp:22\n    fix: gcloud compute firewall-rules create allow-ingress-from-iap-v6-tcp-22 --project=iap-proj-a --network=default --direction=INGRESS --action=allow --rules=tcp:22 --source-ranges=2600:2d00:1:7::/64\n"), "{text}");
    assert!(
        !text.contains("admits 35.235.240.0/20"),
        "an IPv6-only VM is not reached over IPv4: {text}"
    );
    let (code, text, _) = doctor_fix(&f, &["--yes"], "");
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(
            "✓ fixed: created firewall rule allow-ingress-from-iap-v6-tcp-22 in iap-proj-a"
        ),
        "{text}"
    );
    // A dual-stack VM gets a warning only.
    let f = with_stack("IPV4_IPV6");
    let (code, text) = doctor(&f, VM_PROJECT);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("! firewall: no ingress rule in network default admits 2600:2d00:1:7::/64 on tcp:22 (IAP reaches this dual-stack VM over IPv4"), "{text}");
}

#[test]
fn a_refused_fix_is_one_failed_line_with_who_can_do_it() {
    let f = Fleet::new(|c| {
        c.firewalls = Some(vec![allow_iap("3389")]);
        c.firewall_admin = false;
    });
    let (code, text, _) = doctor_fix(&f, &["--yes"], "");
    // The firewall check's own status: it is still failing.
    assert_eq!(code, 6, "{text}");
    assert!(text.contains("✗ fix failed: creating firewall rule allow-ingress-from-iap-tcp-22 in iap-proj-a: HTTP 403"), "{text}");
    assert!(text.contains("fix: creating firewall rules needs compute.firewalls.create on iap-proj-a (roles/compute.securityAdmin)"), "{text}");
}
