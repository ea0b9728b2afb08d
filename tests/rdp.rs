//! `iap-ssh rdp` against the fake's Windows guest agent: the password is
//! requested through `windows-keys` (a fresh RSA-2048 key, OAEP), read back
//! from serial port 4 and decrypted; the tunnel to 3389 carries bytes; an
//! RDP client found on PATH is started; the agent's errors and silence are
//! one line each.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use fake_gcp::Backend;

const WIN: &str = "win-1.us-central1-a.iap-proj-a";
const WIN_USER: &str = "iaptest_alice";

fn fleet(tweak: impl FnOnce(&mut fake_gcp::Config)) -> Fleet {
    Fleet::new(|c| {
        let mut w =
            fake_gcp::Instance::new(PROJ_A, "us-central1-a", "win-1", "7000000000000000010");
        w.os_features = vec!["WINDOWS".into()];
        // Port 3389 echoes, standing in for the RDP server.
        w.ports.insert(3389, Backend::Exec(vec!["cat".into()]));
        c.instances.push(w);
        tweak(c);
    })
}

fn password_of(f: &Fleet, user: &str) -> Option<String> {
    f.fake
        .state
        .windows
        .lock()
        .unwrap()
        .passwords
        .get(&(
            PROJ_A.into(),
            "us-central1-a".into(),
            "win-1".into(),
            user.into(),
        ))
        .cloned()
}

struct Rdp(Spawned);

impl Rdp {
    fn start(f: &Fleet, args: &[&str], path_dir: Option<&std::path::Path>) -> Rdp {
        let mut c = f.iap_ssh_std();
        if let Some(d) = path_dir {
            let path = format!(
                "{}:{}",
                d.display(),
                std::env::var("PATH").unwrap_or_default()
            );
            c.env("PATH", path);
        }
        Rdp(Spawned::start(c.arg("rdp").args(args)))
    }

    /// The local port from `RDP to … : localhost:PORT (file …)`.
    fn port(&self) -> (u16, String) {
        loop {
            let l = self.0.line();
            if let Some(rest) = l.split("localhost:").nth(1) {
                let port = rest.split_whitespace().next().unwrap().parse().unwrap();
                return (port, l);
            }
        }
    }
}

fn echo(port: u16, data: &[u8]) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(data).unwrap();
    let mut got = vec![0u8; data.len()];
    s.read_exact(&mut got).unwrap();
    assert_eq!(got, data);
}

#[test]
fn reset_password_then_rdp_through_the_tunnel() {
    let f = fleet(|_| {});
    let pw_file = f.tmp.path().join("pw");
    let rdp_file = f.tmp.path().join("win.rdp");
    let mut r = Rdp::start(
        &f,
        &[
            "--reset-password",
            "--password-file",
            pw_file.to_str().unwrap(),
            "--rdp-file",
            rdp_file.to_str().unwrap(),
            "--no-launch",
            WIN,
        ],
        None,
    );
    let (port, line) = r.port();
    assert_eq!(
        line,
        format!(
            "RDP to win-1 as {WIN_USER}: localhost:{port} (file {})",
            rdp_file.display()
        )
    );
    // The password the agent set, decrypted, in a 0600 file; not on stdout.
    let pw = password_of(&f, WIN_USER).expect("the agent set a password");
    assert_eq!(
        std::fs::read_to_string(&pw_file).unwrap(),
        format!("{pw}\n")
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&pw_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The request as the agent read it: instance metadata, sha256 asked.
    let keys = {
        let c = f.fake.state.cloud.lock().unwrap();
        let k = (
            PROJ_A.to_string(),
            "us-central1-a".to_string(),
            "win-1".to_string(),
        );
        c.instances[&k].0.get("windows-keys").unwrap().to_string()
    };
    let req: serde_json::Value = serde_json::from_str(keys.lines().last().unwrap()).unwrap();
    assert_eq!(req["userName"], WIN_USER);
    assert_eq!(req["hashFunction"], "sha256");
    assert_eq!(req["exponent"], "AQAB");
    assert_eq!(req["email"], ACCOUNT);
    // The tunnel to 3389 carries bytes both ways.
    echo(port, b"RDP bytes through IAP");
    let rdp = std::fs::read_to_string(&rdp_file).unwrap();
    assert!(
        rdp.starts_with(&format!(
            "full address:s:localhost:{port}\r\nusername:s:{WIN_USER}\r\n"
        )),
        "{rdp}"
    );
    let (code, err) = r.0.term();
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains(&pw), "the password never reaches stderr");

    // A second reset: a new key, a new password; the first line is kept
    // until it expires.
    let out = f
        .iap_ssh()
        .args([
            "rdp",
            "--reset-password",
            "--user",
            "bob",
            "--no-launch",
            "--local-host-port",
            "localhost:0",
            WIN,
        ])
        .timeout(Duration::from_secs(5))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let pw = password_of(&f, "bob").expect("bob's password");
    assert!(
        stdout.starts_with(&format!(
            "Windows user: bob\nPassword: {pw}\nRDP to win-1 as bob: localhost:"
        )),
        "{stdout}"
    );
    let c = f.fake.state.cloud.lock().unwrap();
    let k = (
        PROJ_A.to_string(),
        "us-central1-a".to_string(),
        "win-1".to_string(),
    );
    let keys = c.instances[&k].0.get("windows-keys").unwrap().to_string();
    assert_eq!(keys.lines().count(), 2, "{keys}");
}

#[test]
fn an_rdp_client_on_path_is_started_with_the_tunnel() {
    let f = fleet(|_| {});
    // A stand-in for FreeRDP 2: records its arguments, talks through the
    // tunnel, exits; rdp then stops.
    let bin = f.tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let args_file = f.tmp.path().join("args");
    let script = format!(
        "#!/bin/sh\necho \"$@\" > {f}\nport=${{1#/v:localhost:}}\nexec python3 -c \"import socket; s=socket.create_connection(('127.0.0.1', $port)); s.sendall(b'hello rdp'); open('{f}', 'a').write(s.recv(9).decode())\"\n",
        f = args_file.display()
    );
    std::fs::write(bin.join("xfreerdp"), script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("xfreerdp"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut r = Rdp::start(&f, &[WIN], Some(&bin));
    let (port, _) = r.port();
    let (code, err) = r.0.wait();
    assert_eq!(code, 0, "{err}");
    let args = std::fs::read_to_string(&args_file).unwrap();
    assert_eq!(
        args,
        format!("/v:localhost:{port} /u:{WIN_USER} /cert-ignore\nhello rdp")
    );
    assert!(err.contains("starting "), "{err}");
}

#[test]
fn the_agents_error_and_its_silence_are_one_line_each() {
    let f = fleet(|c| {
        c.windows_agent_errors.insert(
            "locked".into(),
            "error running createUser: Access is denied.".into(),
        );
    });
    let out = f
        .iap_ssh()
        .args([
            "-q",
            "rdp",
            "--reset-password",
            "--user",
            "locked",
            "--no-launch",
            WIN,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let line = one_line(&out);
    assert!(line.contains("the Windows guest agent on win-1 could not set the password of locked: error running createUser: Access is denied."), "{line}");

    // An agent that never answers (account manager disabled).
    let f = fleet(|c| {
        let w = c.instance_mut("win-1");
        w.metadata
            .insert("disable-account-manager".into(), "true".into());
    });
    let out = f
        .iap_ssh()
        .args([
            "-q",
            "rdp",
            "--reset-password",
            "--password-timeout",
            "2",
            "--no-launch",
            WIN,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let line = one_line(&out);
    assert!(
        line.contains("did not answer within 2 s") && line.contains("disable-account-manager"),
        "{line}"
    );

    // Not Windows; a bad user name.
    let out = f
        .iap_ssh()
        .args([
            "rdp",
            "--reset-password",
            "--no-launch",
            "vm-project.us-central1-b.iap-proj-a",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(one_line(&out).contains("is not a Windows VM"));
    let out = f
        .iap_ssh()
        .args(["rdp", "--user", "a/b", WIN])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(one_line(&out).contains("is not a Windows account name"));
}

#[test]
fn setup_names_windows_vms_with_the_rdp_command() {
    let f = fleet(|_| {});
    let out = f.setup(&[]);
    let err = stderr_of(&out);
    assert!(
        err.contains("  Windows VM (RDP, no SSH): iap-ssh rdp --reset-password win-1.us-central1-a.iap-proj-a\n"),
        "{err}"
    );
    let cfg = std::fs::read_to_string(f.config_path()).unwrap();
    assert!(!cfg.contains("Host win-1"), "{cfg}");
}
