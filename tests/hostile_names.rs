//! What setup writes into ~/.ssh/config cannot be turned against the user:
//! a host name never reaches the shell (substituted the way ssh does and
//! run with `sh -c`, independently of the ssh version, and through a real
//! OpenSSH 8.4, which predates 9.6's host-name checks), and a VM named
//! like one of the user's own hosts does not capture it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use common::*;
use fake_gcp::Instance;
use iap_ssh::ssh::pattern::host_line_applies;

const ZONE_A: &str = "us-central1-a";

/// Names an attacker might give a VM, or type to reach one.
const HOSTILE: &[&str] = &[
    "$(touch pwned)",
    "`touch pwned`",
    "a;touch pwned",
    "a|touch pwned",
    "a&&touch pwned",
    "a>pwned",
    "a b",
    "*",
    "?",
    "[ab]",
    "$HOME",
    "a\"b",
    "a\\b",
    "~root",
    "-oProxyCommand=touch pwned",
    "a\nb",
];

/// A stand-in for iap-ssh that records its arguments (one per line) in
/// `$RECORD`.
fn recorder(dir: &Path) -> PathBuf {
    let p = dir.join("recorder");
    std::fs::write(&p, "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$RECORD\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// OpenSSH's `percent_expand` for a ProxyCommand, with `exec ` in front
/// as ssh runs it.
fn expand(command: &str, name: &str, port: &str) -> String {
    let mut out = String::from("exec ");
    let mut it = command.chars();
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('%') => out.push('%'),
            Some('n') | Some('h') => out.push_str(name),
            Some('p') => out.push_str(port),
            Some(x) => panic!("unexpected %{x}"),
            None => panic!("trailing %"),
        }
    }
    out
}

/// A scratch directory with files a glob could expand to.
fn bait_dir(root: &Path, name: &str) -> PathBuf {
    let d = root.join(name);
    std::fs::create_dir_all(&d).unwrap();
    for f in ["a", "b", "ab"] {
        std::fs::write(d.join(f), "").unwrap();
    }
    d
}

/// The `Host` patterns and `ProxyCommand` of the block whose Host line
/// starts with `first`.
fn block(config: &str, first: &str) -> (Vec<String>, String) {
    let mut lines = config.lines();
    while let Some(l) = lines.next() {
        if let Some(rest) = l.strip_prefix("Host ")
            && rest.starts_with(first)
        {
            let pats = iap_ssh::ssh::pattern::split_words(rest).unwrap();
            for l in lines.by_ref() {
                if let Some(pc) = l.trim_start().strip_prefix("ProxyCommand ") {
                    return (pats, pc.to_string());
                }
            }
        }
    }
    panic!("no block for {first} in:\n{config}")
}

/// Upstream OpenSSH 8.4p1 built by scripts/old-openssh.sh, if it is there.
fn old_ssh() -> Option<StdCommand> {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/old-openssh/ssh");
    let v = StdCommand::new(&bin).arg("-V").output().ok()?;
    let v = String::from_utf8_lossy(&v.stderr).into_owned();
    if !v.starts_with("OpenSSH_8.4") {
        eprintln!("old ssh unusable: {v}");
        return None;
    }
    Some(StdCommand::new(bin))
}

fn old_ssh_or_note() -> Option<StdCommand> {
    let s = old_ssh();
    if s.is_none() {
        eprintln!("note: OpenSSH 8.4 not found (scripts/old-openssh.sh); local ssh only");
    }
    s
}

/// `ssh -G`'s value of `key` for `host` with `config` (None: ssh refused).
fn ssh_g(mut ssh: StdCommand, home: &Path, config: &Path, host: &str, key: &str) -> Option<String> {
    let out = ssh
        .env("HOME", home)
        .arg("-G")
        .arg("-F")
        .arg(config)
        .arg(host)
        .output()
        .unwrap();
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key} ")).map(str::to_string))
        .or(Some(String::new()))
}

/// A fleet whose project A also has VMs named like the user's own hosts.
fn fleet_with_lookalikes() -> Fleet {
    Fleet::new(|c| {
        for (i, n) in [
            "bastion",
            "localhost",
            "jump",
            "gitlab",
            "vault",
            "freeforall",
        ]
        .iter()
        .enumerate()
        {
            c.instances.push(Instance::new(
                PROJ_A,
                ZONE_A,
                n,
                &format!("70000000000000001{i:02}"),
            ));
        }
    })
}

const USER_CONFIG: &str = "Host bastion\n    HostName 127.0.0.1\n    ForwardAgent yes\n\n\
                           Match host jump\n    User jumpuser\n";

fn setup_with(f: &Fleet, exe: &Path) -> (String, String) {
    let ssh = f.ssh_dir();
    std::fs::create_dir_all(&ssh).unwrap();
    std::fs::write(f.config_path(), USER_CONFIG).unwrap();
    // known_hosts with gitlab and vault, hashed by the real ssh-keygen.
    let kh = ssh.join("known_hosts");
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    std::fs::write(&kh, format!("gitlab {key}\nvault {key}\n")).unwrap();
    let st = StdCommand::new("ssh-keygen")
        .args(["-q", "-H", "-f"])
        .arg(&kh)
        .output()
        .unwrap();
    assert!(st.status.success());
    assert!(!std::fs::read_to_string(&kh).unwrap().contains("vault"));
    let out = f.setup(&["--exe", exe.to_str().unwrap()]);
    let config = std::fs::read_to_string(f.config_path()).unwrap();
    (config, stderr_of(&out))
}

#[test]
fn host_names_never_reach_the_shell_whatever_the_ssh_version() {
    let f = fleet_with_lookalikes();
    let rec = recorder(f.tmp.path());
    let (config, _) = setup_with(&f, &rec);
    let (patterns, command) = block(&config, &format!("*.*.{PROJ_A}"));
    assert!(command.contains("'%n'"), "{command}");
    let record = f.tmp.path().join("argv");
    for (i, h) in HOSTILE.iter().enumerate() {
        let name = format!("{h}.{ZONE_A}.{PROJ_A}");
        assert!(host_line_applies(&name, &patterns), "{name:?}");
        let dir = bait_dir(f.tmp.path(), &format!("run{i}"));
        let _ = std::fs::remove_file(&record);
        let st = StdCommand::new("sh")
            .arg("-c")
            .arg(expand(&command, &name, "22"))
            .current_dir(&dir)
            .env("RECORD", &record)
            .status()
            .unwrap();
        assert!(st.success(), "{name:?}");
        assert!(!dir.join("pwned").exists(), "{name:?} ran a command");
        assert_eq!(
            std::fs::read_to_string(&record).unwrap(),
            format!("proxy\n--\n{name}\n22\n"),
            "{name:?} must reach proxy as one word, unexpanded"
        );
    }
    // A `'` would close the quotes: such names never match the block...
    for h in [
        "a'$(touch pwned)'b",
        "a';touch pwned;'b",
        "'",
        "x'`touch pwned`",
    ] {
        let name = format!("{h}.{ZONE_A}.{PROJ_A}");
        assert!(!host_line_applies(&name, &patterns), "{name:?}");
        // ...and that matters: substituted anyway, it would run.
        let dir = bait_dir(f.tmp.path(), "control");
        let _ = StdCommand::new("sh")
            .arg("-c")
            .arg(expand(&command, &name, "22"))
            .current_dir(&dir)
            .env("RECORD", &record)
            .status();
        // (Command substitution runs before `exec`; `;` after it never.)
        if h.matches('\'').count() == 2 && h.contains("$(") {
            assert!(dir.join("pwned").exists(), "control: {name:?}");
            std::fs::remove_file(dir.join("pwned")).unwrap();
        }
    }
    // Real ssh agrees on which names the block takes.
    let home = &f.home;
    let cfg = f.config_path();
    let mut sshes = vec![("local", StdCommand::new("ssh"))];
    if let Some(o) = old_ssh_or_note() {
        sshes.push(("8.4", o));
    }
    for (which, _) in &sshes {
        let mk = || match *which {
            "local" => StdCommand::new("ssh"),
            _ => old_ssh().unwrap(),
        };
        let ok = ssh_g(
            mk(),
            home,
            &cfg,
            &format!("new-vm.{ZONE_A}.{PROJ_A}"),
            "proxycommand",
        );
        assert!(
            ok.as_deref().is_some_and(|p| p.contains("proxy -- '")),
            "{which}: {ok:?}"
        );
        let q = ssh_g(
            mk(),
            home,
            &cfg,
            &format!("a'b.{ZONE_A}.{PROJ_A}"),
            "proxycommand",
        );
        assert!(
            q.as_deref().is_none_or(|p| !p.contains("proxy")),
            "{which}: a quote must not get the wildcard ProxyCommand: {q:?}"
        );
    }
}

#[test]
fn an_old_ssh_runs_the_wildcard_block_without_injection() {
    let Some(_) = old_ssh_or_note() else {
        return;
    };
    let f = fleet_with_lookalikes();
    let rec = recorder(f.tmp.path());
    let (config, _) = setup_with(&f, &rec);
    let record = f.tmp.path().join("argv");
    let run = |cfg: &Path, name: &str, dir: &Path| {
        let _ = std::fs::remove_file(&record);
        old_ssh()
            .unwrap()
            .env("HOME", &f.home)
            .env("RECORD", &record)
            .current_dir(dir)
            .args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-F"])
            .arg(cfg)
            .arg(name)
            .arg("true")
            .output()
            .unwrap()
    };
    for h in [
        "$(touch pwned)",
        "`touch pwned`",
        "a;touch pwned",
        "a|touch pwned",
    ] {
        let name = format!("{h}.{ZONE_A}.{PROJ_A}");
        let dir = bait_dir(f.tmp.path(), "old");
        run(&f.config_path(), &name, &dir);
        assert!(!dir.join("pwned").exists(), "OpenSSH 8.4 ran {name:?}");
        assert_eq!(
            std::fs::read_to_string(&record).unwrap_or_default(),
            format!("proxy\n--\n{name}\n22\n")
        );
    }
    // The line setup used to write (`proxy %n %p`), as a control: with it,
    // OpenSSH 8.4 does run the name.
    let old_line = config.replace("proxy -- '%n' %p", "proxy %n %p");
    let old_cfg = f.tmp.path().join("old_config");
    std::fs::write(&old_cfg, old_line).unwrap();
    let dir = bait_dir(f.tmp.path(), "old-control");
    run(&old_cfg, &format!("$(touch pwned).{ZONE_A}.{PROJ_A}"), &dir);
    assert!(
        dir.join("pwned").exists(),
        "control: the old line is injectable"
    );
}

#[test]
fn a_vm_cannot_take_over_the_users_own_host_names() {
    let f = fleet_with_lookalikes();
    let exe = iap_ssh_bin();
    let (config, summary) = setup_with(&f, &exe);
    for n in ["bastion", "localhost", "jump", "gitlab", "vault"] {
        assert!(
            !config.contains(&format!("Host {n} ")),
            "short alias {n} written:\n{config}"
        );
        assert!(
            config.contains(&format!("Host {n}.{ZONE_A}.{PROJ_A}\n")),
            "{config}"
        );
        assert!(
            summary.contains(&format!("no short alias `{n}` (")),
            "{n}: {summary}"
        );
        assert!(
            summary.contains(&format!("use: ssh {n}.{ZONE_A}.{PROJ_A}")),
            "{summary}"
        );
    }
    assert!(
        summary.contains("your `Host bastion` (~/.ssh/config line"),
        "{summary}"
    );
    assert!(summary.contains("your `Match host jump`"), "{summary}");
    assert!(
        summary.contains("a host in ~/.ssh/known_hosts"),
        "{summary}"
    );
    assert!(
        summary.contains("no short alias `localhost` (a local"),
        "{summary}"
    );
    // Names nobody uses keep their short alias.
    assert!(config.contains(&format!("Host freeforall freeforall.{ZONE_A}.{PROJ_A}\n")));
    assert!(config.ends_with(USER_CONFIG), "user content kept");
    // What ssh itself makes of it, old and new.
    let cfg = f.config_path();
    let mut runs: Vec<Box<dyn Fn() -> StdCommand>> = vec![Box::new(|| StdCommand::new("ssh"))];
    if old_ssh_or_note().is_some() {
        runs.push(Box::new(|| old_ssh().unwrap()));
    }
    for mk in &runs {
        assert_eq!(
            ssh_g(mk(), &f.home, &cfg, "bastion", "hostname").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(
            ssh_g(mk(), &f.home, &cfg, "bastion", "forwardagent").as_deref(),
            Some("yes")
        );
        let pc = ssh_g(mk(), &f.home, &cfg, "bastion", "proxycommand").unwrap();
        assert!(!pc.contains("iap-ssh"), "bastion captured: {pc}");
        assert_eq!(
            ssh_g(mk(), &f.home, &cfg, "jump", "user").as_deref(),
            Some("jumpuser")
        );
        let pc = ssh_g(
            mk(),
            &f.home,
            &cfg,
            &format!("bastion.{ZONE_A}.{PROJ_A}"),
            "proxycommand",
        )
        .unwrap();
        assert!(pc.contains("--zone us-central1-a bastion %p"), "{pc}");
        let pc = ssh_g(mk(), &f.home, &cfg, "freeforall", "proxycommand").unwrap();
        assert!(pc.contains("freeforall %p"), "{pc}");
    }
}
