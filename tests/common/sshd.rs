//! A private OpenSSH sshd per test, run inetd-style (`sshd -i` per tunnel
//! session, so no fixed port is needed), and simulated VMs with their own
//! sshd whose authorized keys the fake's guest agent writes.

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use fake_gcp::{Backend, Instance};

fn run_ok(cmd: &mut StdCommand) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A private sshd configuration; the daemon runs per connection as
/// `/usr/sbin/sshd -i` under the fake relay.
pub struct Sshd {
    pub dir: PathBuf,
    pub client_key: PathBuf,
    pub config: PathBuf,
    pub known_hosts: PathBuf,
}

impl Sshd {
    pub fn new(dir: &Path) -> Sshd {
        let sshd = Path::new("/usr/sbin/sshd");
        assert!(
            sshd.exists(),
            "/usr/sbin/sshd is missing: install openssh-server (the README's test command does)"
        );
        std::fs::create_dir_all(dir).unwrap();
        // Privilege separation directory required by sshd.
        let _ = std::fs::create_dir_all("/run/sshd");
        let hostkey = dir.join("hostkey");
        let client_key = dir.join("client");
        for (f, c) in [(&hostkey, "host"), (&client_key, "client")] {
            run_ok(
                StdCommand::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-C", c, "-f"])
                    .arg(f),
            );
        }
        std::fs::copy(dir.join("client.pub"), dir.join("authorized_keys")).unwrap();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "HostKey {d}/hostkey\nPidFile none\nAuthorizedKeysFile {d}/authorized_keys\n\
                 PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n\
                 Subsystem sftp /usr/lib/openssh/sftp-server\nLogLevel VERBOSE\n",
                d = dir.display()
            ),
        )
        .unwrap();
        run_ok(StdCommand::new(sshd).arg("-t").arg("-f").arg(&config));
        Sshd {
            dir: dir.to_path_buf(),
            client_key,
            config,
            known_hosts: dir.join("known_hosts"),
        }
    }

    pub fn backend(&self) -> Backend {
        Backend::Exec(vec![
            "/usr/sbin/sshd".into(),
            "-i".into(),
            "-e".into(),
            "-f".into(),
            self.config.display().to_string(),
        ])
    }
}

/// A simulated VM for setup tests: its own sshd (host key published as a
/// guest attribute), authorized keys written per user by the fake's
/// guest-agent simulation into `dir/keys/USER`.
pub struct GuestVm {
    pub name: String,
    pub dir: PathBuf,
    pub host_key: String,
}

impl GuestVm {
    pub fn new(root: &Path, name: &str) -> GuestVm {
        let dir = root.join(format!("vm-{name}"));
        std::fs::create_dir_all(dir.join("keys")).unwrap();
        let _ = std::fs::create_dir_all("/run/sshd");
        run_ok(
            StdCommand::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
                .arg(dir.join("hostkey")),
        );
        std::fs::write(
            dir.join("sshd_config"),
            format!(
                "HostKey {d}/hostkey\nPidFile none\nAuthorizedKeysFile {d}/keys/%u\n\
                 PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n\
                 Subsystem sftp /usr/lib/openssh/sftp-server\nLogLevel VERBOSE\n",
                d = dir.display()
            ),
        )
        .unwrap();
        let pubkey = std::fs::read_to_string(dir.join("hostkey.pub")).unwrap();
        let host_key = pubkey
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        GuestVm {
            name: name.into(),
            dir,
            host_key,
        }
    }

    /// A fake instance backed by this VM's sshd on port 22.
    pub fn instance(&self, project: &str, zone: &str, id: &str) -> Instance {
        let mut i = Instance::new(project, zone, &self.name, id);
        i.ports.insert(
            22,
            Backend::Exec(vec![
                "/usr/sbin/sshd".into(),
                "-i".into(),
                "-e".into(),
                "-f".into(),
                self.dir.join("sshd_config").display().to_string(),
            ]),
        );
        i.host_keys = vec![self.host_key.clone()];
        i.guest_keys_dir = Some(self.dir.join("keys"));
        i
    }
}

/// Listens on 127.0.0.1 (a port the OS picks) and runs `argv` for each
/// connection with the socket as its stdin and stdout, as inetd does
/// (e.g. a VM's `sshd -i`): the VM's "internal IP" for `--internal-ip`.
pub fn inetd(argv: Vec<String>) -> u16 {
    use std::os::fd::OwnedFd;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { continue };
            let fd: OwnedFd = s.into();
            let Ok(fd2) = fd.try_clone() else { continue };
            let _ = StdCommand::new(&argv[0])
                .args(&argv[1..])
                .stdin(std::process::Stdio::from(fd))
                .stdout(std::process::Stdio::from(fd2))
                .stderr(std::process::Stdio::null())
                .spawn();
        }
    });
    port
}
