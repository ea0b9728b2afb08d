//! `iap-ssh grant` against the fake's IAP IAM: the relay admits a tunnel
//! only when a tunnel binding on the project, zone or VM names the caller
//! and its condition holds for the port, so every grant is checked by
//! opening a real tunnel to a real sshd.

mod common;

use common::*;
use serde_json::{Value, json};

const VM_RES: &str = "projects/iap-proj-a/iap_tunnel/zones/us-central1-b/instances/vm-project";
const ROLE: &str = "roles/iap.tunnelResourceAccessor";

fn fleet_with(policies: Value, tweak: impl FnOnce(&mut fake_gcp::Config)) -> Fleet {
    Fleet::new(|c| {
        c.iap_policies = Some(serde_json::from_value(policies).unwrap());
        tweak(c);
    })
}

fn policy(f: &Fleet, res: &str) -> Value {
    f.fake
        .state
        .iap
        .lock()
        .unwrap()
        .map
        .get(res)
        .cloned()
        .unwrap_or(Value::Null)
}

fn writes(f: &Fleet) -> u64 {
    f.fake.state.iap.lock().unwrap().writes
}

fn grant(f: &Fleet, args: &[&str]) -> std::process::Output {
    f.iap_ssh()
        .args(["grant", "--project", PROJ_A])
        .args(args)
        .output()
        .unwrap()
}

fn stdout_of(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_two_port_grant_on_one_vm_opens_its_tunnel_and_nothing_else() {
    let f = fleet_with(json!({}), |_| {});
    let member = format!("user:{ACCOUNT}");
    let vm = ["--zone", "us-central1-b", "--instance", "vm-project"];
    // Nobody is granted anything yet.
    let out = f.banner(&[], &[], &[]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("roles/iap.tunnelResourceAccessor"));

    // A dry run prints the change and writes nothing.
    let mut args = vec![
        "--member",
        member.as_str(),
        "--port",
        "3389",
        "--port",
        "22",
    ];
    args.extend(vm);
    let out = grant(&f, &[&args[..], &["--dry-run"]].concat());
    assert!(out.status.success(), "{}", stderr_of(&out));
    let expr = "(destination.port == 22 || destination.port == 3389)";
    assert_eq!(
        stdout_of(&out),
        format!("IAM policy of {VM_RES}:\n+ {member} {ROLE} if iap-ssh: ports 22, 3389: {expr}\n")
    );
    assert_eq!(writes(&f), 0);

    let out = grant(&f, &args);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains(&format!(
            "granted: {member} {ROLE} on vm-project in us-central1-b of iap-proj-a if {expr}"
        )),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(
        policy(&f, VM_RES),
        json!({"bindings": [{
            "role": ROLE,
            "members": [member],
            "condition": {"title": "iap-ssh: ports 22, 3389", "description": "Written by iap-ssh grant", "expression": expr}
        }]})
    );
    assert!(f.count("iap setIamPolicy projects/iap-proj-a/iap_tunnel/zones/us-central1-b/instances/vm-project version=3 etag_sent=true") == 1);
    assert_banner(&f.banner(&[], &[], &[]));
    // Another VM of the project is still closed.
    let other = f
        .iap_ssh()
        .args([
            "proxy",
            "--project",
            PROJ_A,
            "--zone",
            "us-central1-a",
            "vm-oslogin",
            "22",
        ])
        .write_stdin("")
        .output()
        .unwrap();
    assert_eq!(other.status.code(), Some(4), "{}", stderr_of(&other));

    // Granting the same again writes nothing.
    let out = grant(&f, &args);
    assert!(out.status.success());
    assert!(
        stderr_of(&out).contains("nothing to write"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(writes(&f), 1);

    // --list shows it, at VM level.
    let out = grant(&f, &["--list"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let list = stdout_of(&out);
    assert!(
        list.lines()
            .any(|l| l.starts_with("vm vm-project (us-central1-b)")
                && l.contains(&member)
                && l.contains(expr)),
        "{list}"
    );

    // --remove takes it away: the tunnel closes again.
    let out = grant(&f, &[&args[..], &["--remove"]].concat());
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("removed: "), "{}", stderr_of(&out));
    assert_eq!(policy(&f, VM_RES), json!({}));
    let out = f.banner(&[], &[], &[]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr_of(&out));
}

#[test]
fn a_grant_for_another_port_does_not_open_ssh() {
    let f = fleet_with(json!({}), |_| {});
    let member = format!("user:{ACCOUNT}");
    let out = grant(
        &f,
        &[
            "--zone",
            "us-central1-b",
            "--member",
            &member,
            "--port",
            "3389",
        ],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(policy(&f, "projects/iap-proj-a/iap_tunnel/zones/us-central1-b").is_object());
    let out = f.banner(&[], &[], &[]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr_of(&out));
    assert!(f.count("iap iam: iaptest.alice@example.com may not reach vm-project port 22") >= 1);
    // Project-wide, any port: open.
    let out = grant(&f, &["--member", &member]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_banner(&f.banner(&[], &[], &[]));
}

#[test]
fn concurrent_changes_are_read_again_and_nothing_else_is_lost() {
    // The policy already has a Console-made binding, an audit config this
    // client knows nothing about, and two other administrators write
    // between our read and our write.
    let seed = json!({
        "bindings": [
            {"role": ROLE, "members": ["group:ops@example.com"],
             "condition": {"title": "ssh only", "description": "made in the Console", "expression": "destination.port == 22"}},
            {"role": "roles/iap.tunnelResourceAccessor", "members": ["user:carol@example.com"]}
        ],
        "auditConfigs": [{"service": "iap.googleapis.com", "auditLogConfigs": [{"logType": "DATA_READ"}]}]
    });
    let f = fleet_with(json!({ VM_RES: seed }), |c| {
        c.faults.iap_policy_conflicts = 2
    });
    let member = format!("user:{ACCOUNT}");
    let out = grant(
        &f,
        &[
            "--zone",
            "us-central1-b",
            "--instance",
            "vm-project",
            "--member",
            &member,
            "--port",
            "22",
        ],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("changed 2 time(s) meanwhile"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(f.count("stale etag"), 2);
    let p = policy(&f, VM_RES);
    let b = p["bindings"].as_array().unwrap();
    // Ours joined the Console binding with the same expression; the rest
    // is as it was, the other writers' bindings included.
    assert_eq!(b[0]["condition"], seed["bindings"][0]["condition"]);
    assert_eq!(b[0]["members"], json!(["group:ops@example.com", member]));
    assert_eq!(b[1], seed["bindings"][1]);
    assert_eq!(b[2]["members"], json!(["user:other-admin-0@example.com"]));
    assert_eq!(b[3]["members"], json!(["user:other-admin-1@example.com"]));
    assert_eq!(p["auditConfigs"], seed["auditConfigs"]);
    assert_banner(&f.banner(&[], &[], &[]));
}

#[test]
fn endless_conflicts_end_with_one_line() {
    let f = fleet_with(json!({}), |c| c.faults.iap_policy_conflicts = 100);
    let out = grant(&f, &["--member", &format!("user:{ACCOUNT}")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let err = one_line(&out);
    assert!(
        err.contains("HTTP 409") && err.contains("run the command again"),
        "{err}"
    );
    assert_eq!(f.count("stale etag"), 5);
}

#[test]
fn bad_input_and_refusals_get_one_line_each() {
    let f = fleet_with(json!({}), |c| c.iap_admin = false);
    let out = grant(&f, &["--member", &format!("user:{ACCOUNT}")]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr_of(&out));
    let err = one_line(&out);
    assert!(
        err.contains("HTTP 403") && err.contains("iap.tunnel.setIamPolicy"),
        "{err}"
    );

    for (args, want) in [
        (
            vec!["--member", "alice@example.com"],
            "did you mean user:alice@example.com",
        ),
        (vec!["--member", "allUsers"], "anyone"),
        (
            vec![
                "--member",
                "user:a@example.com",
                "--expires",
                "2001-01-01T00:00:00Z",
            ],
            "in the past",
        ),
        (
            vec!["--member", "user:a@example.com", "--access-level", "corp"],
            "full access level name",
        ),
        (
            vec!["--member", "user:a@example.com", "--instance", "vm-project"],
            "--zone",
        ),
        (
            vec![
                "--member",
                "user:a@example.com",
                "--zone",
                "us-central1-b",
                "--instance",
                "x'y",
            ],
            "not a valid name",
        ),
        (vec![], "no --member given"),
    ] {
        let out = grant(&f, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr_of(&out));
        assert!(
            stderr_of(&out).contains(want),
            "{args:?}: {}",
            stderr_of(&out)
        );
    }
    assert_eq!(writes(&f), 0);
}

#[test]
fn an_expiring_grant_with_an_ip_is_honoured_by_the_relay() {
    let f = fleet_with(json!({}), |_| {});
    let member = format!("user:{ACCOUNT}");
    // vm-project is the second configured VM: nic0 is 10.128.0.3.
    let out = grant(
        &f,
        &[
            "--member",
            &member,
            "--ip",
            "10.128.0.3",
            "--port",
            "22",
            "--expires",
            "8h",
        ],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let p = policy(&f, "projects/iap-proj-a/iap_tunnel");
    let expr = p["bindings"][0]["condition"]["expression"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        expr.starts_with("destination.port == 22 && destination.ip == \"10.128.0.3\" && request.time < timestamp(\"20"),
        "{expr}"
    );
    assert_banner(&f.banner(&[], &[], &[]));
    // A grant for another address does not open this one.
    let f = fleet_with(json!({}), |_| {});
    let out = grant(&f, &["--member", &member, "--ip", "10.128.0.9"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(f.banner(&[], &[], &[]).status.code(), Some(4));
}

#[test]
fn a_destination_group_grant_opens_tunnels_to_its_hosts() {
    // A host outside Compute Engine (vm-project's sshd stands in for it),
    // reached through destination group `corp` of us-central1.
    let f = fleet_with(json!({}), |c| {
        let sshd = c.instance("vm-project").ports[&22].clone();
        c.hosts.push(fake_gcp::config::Host {
            project: PROJ_A.into(),
            region: "us-central1".into(),
            network: "default".into(),
            host: "10.20.0.5".into(),
            dest_group: Some("corp".into()),
            ports: [(22, sshd)].into_iter().collect(),
        });
    });
    let proxy = || {
        f.iap_ssh()
            .args([
                "proxy",
                "--project",
                PROJ_A,
                "--region",
                "us-central1",
                "--network",
                "default",
                "--dest-group",
                "corp",
                "10.20.0.5",
                "22",
            ])
            .write_stdin("")
            .output()
            .unwrap()
    };
    let out = proxy();
    assert_eq!(out.status.code(), Some(4), "{}", stderr_of(&out));
    assert!(
        one_line(&out).contains("(an admin: `iap-ssh grant --project iap-proj-a --region us-central1 --dest-group corp --port 22 --member user:YOU`)"),
        "{}",
        stderr_of(&out)
    );
    let member = format!("user:{ACCOUNT}");
    let out = grant(
        &f,
        &[
            "--region",
            "us-central1",
            "--dest-group",
            "corp",
            "--member",
            &member,
            "--port",
            "22",
        ],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains(
            "on destination group corp in us-central1 of iap-proj-a if destination.port == 22"
        ),
        "{}",
        stderr_of(&out)
    );
    let p = policy(
        &f,
        "projects/iap-proj-a/iap_tunnel/locations/us-central1/destGroups/corp",
    );
    assert_eq!(p["bindings"][0]["members"], json!([member]));
    assert_banner(&proxy());
}

#[test]
fn the_projects_own_policy_opens_tunnels_and_is_listed() {
    let member = format!("user:{ACCOUNT}");
    // The tunnel role on the project's own (Resource Manager) policy, as
    // `gcloud projects add-iam-policy-binding` grants it: every tunnel.
    let f = fleet_with(
        json!({
            "projects/iap-proj-a": {"bindings": [
                {"role": "roles/iap.tunnelResourceAccessor", "members": [member]},
                {"role": "roles/owner", "members": ["user:boss@example.com"]},
                {"role": "roles/viewer", "members": ["user:viewer@example.com"]},
            ]}
        }),
        |_| {},
    );
    assert_banner(&f.banner(&[], &[], &[]));
    let out = grant(&f, &["--list"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let list = stdout_of(&out);
    let has = |level: &str, who: &str| {
        list.lines().any(|l| {
            l.split("  ").next().map(str::trim) == Some(level)
                && l.contains(who)
                && l.ends_with("any port")
        })
    };
    assert!(has("project IAM", &member), "{list}");
    assert!(
        has("project IAM (Owner)", "user:boss@example.com"),
        "{list}"
    );
    assert!(
        !list.contains("viewer") && !list.contains("# not shown"),
        "{list}"
    );
    assert_eq!(f.count("crm getIamPolicy iap-proj-a"), 1);

    // Owner alone opens tunnels too; a caller who may not read the
    // project's policy gets the rest of the list and one line saying so.
    let f = fleet_with(
        json!({"projects/iap-proj-a": {"bindings": [
            {"role": "roles/owner", "members": [member]},
        ]}}),
        |c| c.project_policy_readable = false,
    );
    assert_banner(&f.banner(&[], &[], &[]));
    let out = grant(&f, &["--list"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let list = stdout_of(&out);
    let last = list.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("# not shown: the project's own IAM policy")
            && last.contains("HTTP 403")
            && last.contains("gcloud projects get-iam-policy iap-proj-a"),
        "{list}"
    );
    assert!(!list.contains("project IAM"), "{list}");
}
