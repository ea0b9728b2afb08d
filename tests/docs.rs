//! The documentation's command lines, run. Every fenced block in `docs/*.md`
//! whose info string is `sh runnable` is run with bash (`-e -o pipefail`)
//! against the fake Google endpoints and a real sshd behind VM `my-vm` of
//! project `my-project` (zone `us-central1-a`), the blocks of one page in
//! order, in one scratch HOME, so a page's `setup` serves its later `ssh`.
//! `sh runnable exit=N` expects status N instead of 0. A block of info
//! `text output` right after one lists lines its output must contain: each
//! line, cut at `…`, must appear in that order within one output line.
//!
//! The reader's machine is simulated as little as possible: `iap-ssh` is
//! the built binary, first on PATH; gcloud's default project is
//! `CLOUDSDK_CORE_PROJECT=my-project` (what `gcloud config set project
//! my-project` gives); `ssh`, `scp` and `sftp` are the system's, run with
//! `-F $HOME/.ssh/config` once setup wrote it (OpenSSH reads the passwd
//! home, not `$HOME`) and `BatchMode=yes`; the working directory holds
//! `site/index.html`, `data/a.txt` and `notes.txt` to copy; Ansible is
//! the one `scripts/ansible.sh` installs into `target/ansible/`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

/// The pages with runnable blocks; a test below fails when a page has
/// some and is not listed here.
const PAGES: &[&str] = &[
    "corporate-networks.md",
    "os-login.md",
    "preparing-a-project.md",
    "using.md",
    "fleets-and-automation.md",
    "putty-windows-rdp.md",
    "troubleshooting.md",
];

#[derive(Debug)]
struct Block {
    line: usize,
    code: String,
    exit: i32,
    expect: Vec<String>,
}

/// The runnable blocks of a Markdown text, with what their output must hold.
fn blocks(md: &str) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    let lines: Vec<&str> = md.lines().collect();
    let mut i = 0;
    // Whether the last fence closed was a runnable block (output blocks
    // attach to it only when nothing but blank lines lie between).
    let mut last_runnable: Option<usize> = None;
    while i < lines.len() {
        let Some(info) = lines[i].trim_start().strip_prefix("```") else {
            if !lines[i].trim().is_empty() {
                last_runnable = None;
            }
            i += 1;
            continue;
        };
        let start = i;
        let body_start = i + 1;
        let mut j = body_start;
        while j < lines.len() && !lines[j].trim_start().starts_with("```") {
            j += 1;
        }
        let body = lines[body_start..j].join("\n");
        let words: Vec<&str> = info.split_whitespace().collect();
        if words.first() == Some(&"sh") && words.contains(&"runnable") {
            let exit = words
                .iter()
                .find_map(|w| w.strip_prefix("exit="))
                .map_or(0, |n| n.parse().expect("exit=N"));
            out.push(Block {
                line: start + 1,
                code: body,
                exit,
                expect: Vec::new(),
            });
            last_runnable = Some(out.len() - 1);
        } else if words == ["text", "output"] {
            let k = last_runnable.unwrap_or_else(|| {
                panic!(
                    "line {}: a `text output` block must follow a runnable block",
                    start + 1
                )
            });
            out[k].expect = body
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(String::from)
                .collect();
            last_runnable = None;
        } else {
            last_runnable = None;
        }
        i = j + 1;
    }
    out
}

/// Whether `line`'s `…`-separated parts appear in order in one output line.
fn shows(output: &str, line: &str) -> bool {
    let parts: Vec<&str> = line.trim().split('…').filter(|p| !p.is_empty()).collect();
    output.lines().any(|o| {
        let mut at = 0;
        parts.iter().all(|p| match o[at..].find(p.trim()) {
            Some(k) => {
                at += k + p.trim().len();
                true
            }
            None => false,
        })
    })
}

fn real_tool(name: &str) -> PathBuf {
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let p = dir.join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} is not installed (scripts/install-test-deps.sh installs it)");
}

/// The scratch machine a page runs on: the fleet (plus `my-vm` with its
/// own sshd), a bin directory of shims, a working directory of files.
struct Reader {
    fleet: Fleet,
    bin: PathBuf,
    work: PathBuf,
}

impl Reader {
    fn new() -> Reader {
        // A project whose VMs publish host keys, with more `flags` set.
        let project = |id: &str, flags: &[&str]| fake_gcp::config::Project {
            id: id.into(),
            metadata: ["enable-guest-attributes"]
                .iter()
                .chain(flags)
                .map(|f| (f.to_string(), "TRUE".to_string()))
                .collect(),
            ..Default::default()
        };
        let fleet = Fleet::with_root(|c, root| {
            let vm = GuestVm::new(root, "my-vm");
            c.instances
                .push(vm.instance("my-project", "us-central1-a", "4242424242424242424"));
            c.projects.push(project("my-project", &[]));
            // A Windows VM whose port 3389 echoes, standing in for the RDP
            // server; the fake's guest agent answers password requests.
            let mut win = fake_gcp::Instance::new(
                "my-project",
                "us-central1-a",
                "win-vm",
                "4242424242424242426",
            );
            win.os_features = vec!["WINDOWS".into()];
            win.ports
                .insert(3389, fake_gcp::Backend::Exec(vec!["cat".into()]));
            c.instances.push(win);
            // A project with OS Login on for every VM (docs/os-login.md).
            let os = GuestVm::new(root, "os-vm");
            c.instances.push(os.instance(
                "os-login-project",
                "europe-west1-b",
                "4242424242424242425",
            ));
            c.projects
                .push(project("os-login-project", &["enable-oslogin"]));
            // A service account the reader may act as (docs/corporate-networks.md).
            c.service_accounts = vec![fake_gcp::config::ServiceAccount {
                email: "deployer@my-project.iam.gserviceaccount.com".into(),
                unique_id: "100110341521630214262".into(),
                token_creators: vec![ACCOUNT.into()],
            }];
            c.firewalls = Some(vec![serde_json::json!({
                "name": "allow-ingress-from-iap", "network": "default", "direction": "INGRESS",
                "priority": 1000, "sourceRanges": ["35.235.240.0/20"],
                "allowed": [{"IPProtocol": "tcp", "ports": ["22", "3389"]}]})]);
        });
        let bin = fleet.tmp.path().join("bin");
        let work = fleet.tmp.path().join("work");
        for d in [&bin, &work.join("site"), &work.join("data")] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(work.join("site/index.html"), "<p>hello</p>\n").unwrap();
        std::fs::write(work.join("data/a.txt"), "a\n").unwrap();
        std::fs::write(work.join("notes.txt"), "notes\n").unwrap();
        std::os::unix::fs::symlink(iap_ssh_bin(), bin.join("iap-ssh")).unwrap();
        for tool in ["ssh", "scp", "sftp"] {
            let shim = format!(
                "#!/bin/sh\n# {tool} with the config setup writes under $HOME (OpenSSH reads the passwd home).\n\
                 if [ -f \"$HOME/.ssh/config\" ]; then set -- -F \"$HOME/.ssh/config\" \"$@\"; fi\n\
                 exec {} -o BatchMode=yes \"$@\"\n",
                real_tool(tool).display()
            );
            let p = bin.join(tool);
            std::fs::write(&p, shim).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Reader { fleet, bin, work }
    }

    /// Runs one block: Ok, or what went wrong.
    fn run(&self, b: &Block) -> Result<(), String> {
        let mut cmd = std::process::Command::new("bash");
        cmd.args(["-e", "-o", "pipefail", "-c", &b.code]);
        isolate(
            &mut cmd,
            &self.fleet.fake,
            &self.fleet.home,
            Some(&self.fleet.fake.info.access_token),
        );
        // Ansible as scripts/ansible.sh installs it (scripts/test.sh does).
        let ansible = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ansible/bin");
        let path = std::env::join_paths([self.bin.clone(), ansible].into_iter().chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ))
        .unwrap();
        cmd.env("PATH", path)
            .env("LOGNAME", LOCAL_USER)
            .env("USER", LOCAL_USER)
            .env("CLOUDSDK_CORE_PROJECT", "my-project")
            .current_dir(&self.work)
            .stdin(Stdio::null());
        let out_file = self.work.join(format!(".out-{}", b.line));
        let f = std::fs::File::create(&out_file).unwrap();
        cmd.stdout(f.try_clone().unwrap()).stderr(f);
        let mut child = cmd.spawn().unwrap();
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > Duration::from_secs(240) {
                let _ = child.kill();
                let _ = child.wait();
                return Err("still running after 240 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let output = std::fs::read_to_string(&out_file).unwrap_or_default();
        let _ = std::fs::remove_file(&out_file);
        let code = status.code().unwrap_or(-1);
        if code != b.exit {
            return Err(format!(
                "exit status {code}, the page expects {}; output:\n{output}",
                b.exit
            ));
        }
        for want in &b.expect {
            if !shows(&output, want) {
                return Err(format!(
                    "the output does not show `{want}`; output:\n{output}"
                ));
            }
        }
        Ok(())
    }
}

fn docs_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/docs"))
}

/// Runs a page's blocks in order on a fresh machine; every failure, with
/// the page's line number.
fn run_page(md: &str, name: &str) -> Vec<String> {
    let bs = blocks(md);
    assert!(!bs.is_empty(), "{name} has no `sh runnable` block");
    let r = Reader::new();
    bs.iter()
        .filter_map(|b| {
            r.run(b)
                .err()
                .map(|e| format!("docs/{name}:{}: block\n{}\n→ {e}", b.line, b.code))
        })
        .collect()
}

fn page(name: &str) {
    let md = std::fs::read_to_string(docs_dir().join(name)).unwrap();
    let bad = run_page(&md, name);
    assert!(bad.is_empty(), "{}", bad.join("\n\n"));
}

#[test]
fn preparing_a_project() {
    page("preparing-a-project.md");
}

#[test]
fn using() {
    page("using.md");
}

#[test]
fn fleets_and_automation() {
    page("fleets-and-automation.md");
}

#[test]
fn putty_windows_rdp() {
    page("putty-windows-rdp.md");
}

#[test]
fn corporate_networks() {
    page("corporate-networks.md");
}

#[test]
fn os_login() {
    page("os-login.md");
}

#[test]
fn troubleshooting() {
    page("troubleshooting.md");
}

#[test]
fn every_page_with_runnable_blocks_is_run_and_every_link_resolves() {
    let mut with_blocks = Vec::new();
    for e in std::fs::read_dir(docs_dir()).unwrap() {
        let p = e.unwrap().path();
        let md = std::fs::read_to_string(&p).unwrap();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if !blocks(&md).is_empty() {
            with_blocks.push(name.clone());
        }
        // Relative links between the pages (and to the README) resolve.
        for (k, _) in md.match_indices("](") {
            let target: String = md[k + 2..].chars().take_while(|c| *c != ')').collect();
            if target.contains("://") || target.starts_with('#') {
                continue;
            }
            let file = target.split('#').next().unwrap();
            assert!(
                docs_dir().join(file).exists(),
                "docs/{name}: link to {target} is broken"
            );
        }
    }
    with_blocks.sort();
    let mut listed: Vec<String> = PAGES.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(
        with_blocks, listed,
        "pages with `sh runnable` blocks vs PAGES in tests/docs.rs"
    );
    // The README links every page.
    let readme = std::fs::read_to_string(docs_dir().join("../README.md")).unwrap();
    for e in std::fs::read_dir(docs_dir()).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            readme.contains(&format!("(docs/{name}")),
            "the README does not link docs/{name}"
        );
    }
}

#[test]
fn a_failing_block_or_missing_output_fails_the_page() {
    let md = "```sh runnable\nfalse\n```\n\n```sh runnable exit=3\nexit 3\n```\n\n```sh runnable\necho 'listening on port 4242'\n```\n\n```text output\nlistening on … 4243\n```\n\n```sh runnable\necho ok\n```\n";
    let bs = blocks(md);
    assert_eq!(bs.len(), 4);
    assert_eq!(bs[1].exit, 3);
    assert_eq!(bs[2].expect, vec!["listening on … 4243".to_string()]);
    assert!(bs[3].expect.is_empty());
    let bad = run_page(md, "planted.md");
    assert_eq!(bad.len(), 2, "{bad:#?}");
    assert!(
        bad[0].contains("planted.md:1:") && bad[0].contains("exit status 1"),
        "{}",
        bad[0]
    );
    assert!(
        bad[1].contains("does not show `listening on … 4243`"),
        "{}",
        bad[1]
    );
    assert!(shows("x: listening on port 4243", "listening on … 4243"));
    assert!(!shows("4243 listening on", "listening on … 4243"));
}
