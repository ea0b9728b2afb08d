//! `--internal-ip`: for users on the VPC (or a VPN into it), `ssh`, `scp`
//! and `setup` go straight to the VM's internal address with the same
//! key, user and host-key pinning, and IAP sees no tunnel. The fake gives
//! `vm-project` the internal IP 127.0.0.1, where its sshd listens
//! inetd-style on a port the OS picked.

mod common;

use common::*;
use fake_gcp::Backend;

const VM: &str = "vm-project.us-central1-b.iap-proj-a";

fn fleet() -> (Fleet, u16) {
    let mut argv = None;
    let f = Fleet::new(|c| {
        let vm = c.instance_mut("vm-project");
        vm.network_ip = Some("127.0.0.1".into());
        if let Some(Backend::Exec(a)) = vm.ports.get(&22) {
            argv = Some(a.clone());
        }
    });
    let port = inetd(argv.expect("vm-project runs sshd"));
    (f, port)
}

fn tunnels(f: &Fleet) -> usize {
    f.count("connect project=iap-proj-a zone=us-central1-b instance=vm-project")
}

#[test]
fn ssh_and_scp_go_to_the_internal_ip_without_a_tunnel() {
    let (f, port) = fleet();
    let port_s = port.to_string();
    let dry = f
        .iap_ssh()
        .args([
            "ssh",
            "--internal-ip",
            "--port",
            &port_s,
            "--dry-run",
            VM,
            "true",
        ])
        .output()
        .unwrap();
    assert!(dry.status.success(), "{}", stderr_of(&dry));
    let line = String::from_utf8_lossy(&dry.stdout).to_string();
    assert!(line.contains("-o HostKeyAlias=compute.7000000000000000002 -o HostName=127.0.0.1 -o IdentitiesOnly=yes"), "{line}");
    assert!(!line.contains("ProxyCommand"), "{line}");

    let out = f
        .iap_ssh()
        .args([
            "ssh",
            "--internal-ip",
            "--port",
            &port_s,
            VM,
            "--",
            "echo",
            "ok",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    // The host key was pinned under the VM's alias, as through IAP.
    let kh = std::fs::read_to_string(f.ssh_dir().join("google_compute_known_hosts")).unwrap();
    assert!(
        kh.starts_with("compute.7000000000000000002 ssh-ed25519 "),
        "{kh}"
    );

    let src = f.tmp.path().join("payload");
    std::fs::write(&src, b"internal bytes\n").unwrap();
    let dest = f.shared_dir().join("copied");
    let out = f
        .iap_ssh()
        .args(["scp", "--internal-ip", "--port", &port_s])
        .arg(&src)
        .arg(format!("{VM}:{}", dest.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(std::fs::read(&dest).unwrap(), b"internal bytes\n");
    assert_eq!(tunnels(&f), 0, "no IAP tunnel: {:?}", f.fake.state.events());
}

#[test]
fn setup_writes_host_names_and_ssh_uses_them() {
    let (f, port) = fleet();
    f.setup(&["--internal-ip"]);
    let cfg = std::fs::read_to_string(f.config_path()).unwrap();
    let block: String = cfg
        .split("\n\n")
        .find(|b| b.contains("Host vm-project "))
        .unwrap()
        .to_string();
    assert!(block.starts_with("# vm-project in us-central1-b of iap-proj-a; key via project metadata; direct to its internal IP\n"), "{block}");
    assert!(
        block.lines().any(|l| l == "    HostName 127.0.0.1"),
        "{block}"
    );
    assert!(
        block.contains("    HostKeyAlias compute.7000000000000000002\n"),
        "{block}"
    );
    assert!(!block.contains("ProxyCommand"), "{block}");
    // Others keep their fake 10.128.x.y; wildcards still go through IAP.
    assert!(cfg.lines().any(|l| l == "    HostName 10.128.0.2"), "{cfg}");
    assert!(cfg.contains("proxy -- '%n' %p"), "{cfg}");

    f.wait_keys("vm-project", LOCAL_USER);
    let out = f
        .tool("ssh")
        .arg("-F")
        .arg(f.config_path())
        .args([
            "-p",
            &port.to_string(),
            "-o",
            "BatchMode=yes",
            "vm-project",
            "whoami",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), LOCAL_USER);
    assert_eq!(tunnels(&f), 0);

    // Back to IAP: a plain setup rewrites the section with ProxyCommands.
    f.setup(&[]);
    let cfg = std::fs::read_to_string(f.config_path()).unwrap();
    assert!(!cfg.contains("HostName"), "{cfg}");
}

#[test]
fn a_vm_without_an_internal_ip_is_an_error_for_ssh() {
    let f = Fleet::new(|c| {
        let vm = c.instance_mut("vm-project");
        vm.network_ip = Some("not an address\n    ProxyCommand evil".into());
    });
    let out = f
        .iap_ssh()
        .args(["ssh", "--internal-ip", "--dry-run", VM, "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(
        one_line(&out)
            .contains("vm-project has no internal IP address; hint: leave out --internal-ip"),
        "{}",
        stderr_of(&out)
    );
    // setup falls back to IAP for it, and says so.
    f.setup(&["--internal-ip"]);
    let cfg = std::fs::read_to_string(f.config_path()).unwrap();
    assert!(!cfg.contains("evil"), "{cfg}");
    let block: String = cfg
        .split("\n\n")
        .find(|b| b.contains("Host vm-project "))
        .unwrap()
        .to_string();
    assert!(
        block.contains("; through IAP (no internal IP)\n") && block.contains("ProxyCommand"),
        "{block}"
    );
}
