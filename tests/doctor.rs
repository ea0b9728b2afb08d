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
    assert!(text.contains("✗ firewall: no ingress rule in network default admits 35.235.240.0/20 on tcp:22\n    fix: gcloud compute firewall-rules create allow-ingress-from-iap --project=iap-proj-a --network=default --direction=INGRESS --action=allow --rules=tcp:22 --source-ranges=35.235.240.0/20\n"), "{text}");
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
    assert!(text.contains("✗ IAM: you lack iap.tunnelInstances.accessViaIAP on vm-project\n    fix: gcloud projects add-iam-policy-binding iap-proj-a --member=user:iaptest.alice@example.com --role=roles/iap.tunnelResourceAccessor\n"), "{text}");
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
