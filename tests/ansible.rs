//! Ansible through the config `setup` wrote: a real `ansible-playbook`
//! (ansible-core from PyPI, installed into target/ansible by
//! scripts/ansible.sh) pings two VMs (one on metadata keys, one on OS
//! Login), runs a command and copies a binary file, which is compared
//! byte for byte; then the same with `--control-master`, where each VM
//! gets one tunnel for the whole play.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn ansible_playbook() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ansible/bin/ansible-playbook");
    assert!(
        p.exists(),
        "{} is missing: run scripts/ansible.sh (scripts/test.sh does)",
        p.display()
    );
    p
}

const PLAYBOOK: &str = r#"- hosts: vms
  gather_facts: false
  tasks:
    - name: reachable
      ping:
    - name: who am I
      command: id -un
      register: who
    - name: record it
      copy:
        content: "{{ who.stdout }}"
        dest: "{{ shared }}/{{ inventory_hostname }}.who"
    - name: copy a binary file
      copy:
        src: "{{ payload }}"
        dest: "{{ shared }}/{{ inventory_hostname }}.bin"
        mode: "0644"
"#;

/// Runs the play against vm-project and vm-oslogin; returns its output.
fn play(f: &Fleet, tag: &str) -> (String, Vec<u8>, PathBuf) {
    let work = f.tmp.path().join(format!("ansible-{tag}"));
    std::fs::create_dir_all(&work).unwrap();
    let shared = f.shared_dir().join(tag);
    std::fs::create_dir_all(&shared).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    }
    let mut payload = vec![0u8; 300 * 1024];
    let mut x: u32 = 0x1234_5678;
    for b in payload.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    let payload_path = work.join("payload.bin");
    std::fs::write(&payload_path, &payload).unwrap();
    std::fs::write(
        work.join("inventory"),
        "[vms]\nvm-project\nvm-oslogin\n\n[vms:vars]\nansible_python_interpreter=/usr/bin/python3\n",
    )
    .unwrap();
    // ssh_args replaces Ansible's own ControlMaster options: what the
    // config says is what is used.
    std::fs::write(
        work.join("ansible.cfg"),
        format!(
            "[defaults]\nhost_key_checking = True\nremote_tmp = /tmp/.ansible-{tag}-${{USER}}\nlocal_tmp = {}/local\n\n[ssh_connection]\nssh_args = -F {}\n",
            work.display(),
            f.config_path().display()
        ),
    )
    .unwrap();
    std::fs::write(work.join("play.yml"), PLAYBOOK).unwrap();
    let mut c = Command::new(ansible_playbook());
    isolate(&mut c, &f.fake, &f.home, Some(&f.fake.info.access_token));
    c.env("LOGNAME", LOCAL_USER)
        .env("USER", LOCAL_USER)
        .env("ANSIBLE_CONFIG", work.join("ansible.cfg"))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_FORCE_COLOR", "0")
        .current_dir(&work)
        .args(["-i", "inventory", "play.yml", "-e"])
        .arg(format!(
            "shared={} payload={}",
            shared.display(),
            payload_path.display()
        ));
    let out = c.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "ansible-playbook failed:\n{text}");
    (text, payload, shared)
}

fn check(text: &str, payload: &[u8], shared: &Path) {
    for (vm, user) in [("vm-project", LOCAL_USER), ("vm-oslogin", OSLOGIN_USER)] {
        assert!(
            text.lines().any(|l| l.starts_with(vm)
                && l.contains("ok=4")
                && l.contains("failed=0")
                && l.contains("unreachable=0")),
            "{vm} in the recap:\n{text}"
        );
        assert_eq!(
            std::fs::read_to_string(shared.join(format!("{vm}.who"))).unwrap(),
            user
        );
        assert!(
            std::fs::read(shared.join(format!("{vm}.bin"))).unwrap() == payload,
            "{vm}: the copied file differs"
        );
    }
}

fn tunnels(f: &Fleet) -> usize {
    f.count("connect project=iap-proj-a zone=us-central1-b instance=vm-project")
}

#[test]
fn a_playbook_runs_through_the_written_config() {
    let f = Fleet::new(|_| {});
    f.setup(&[]);
    f.wait_keys("vm-project", LOCAL_USER);
    f.wait_keys("vm-oslogin", OSLOGIN_USER);
    let (text, payload, shared) = play(&f, "plain");
    check(&text, &payload, &shared);
    // Without connection sharing Ansible opens several ssh sessions per
    // task, each its own tunnel.
    eprintln!("plain: {} tunnels to vm-project for the play", tunnels(&f));
    assert!(tunnels(&f) > 4, "{} tunnels", tunnels(&f));
}

#[test]
fn with_control_master_each_vm_gets_one_tunnel_for_the_play() {
    let f = Fleet::new(|_| {});
    f.setup(&["--control-master=60s"]);
    f.wait_keys("vm-project", LOCAL_USER);
    f.wait_keys("vm-oslogin", OSLOGIN_USER);
    let (text, payload, shared) = play(&f, "shared");
    check(&text, &payload, &shared);
    assert_eq!(
        tunnels(&f),
        1,
        "one tunnel to vm-project for the whole play"
    );
    // Let the masters go.
    for vm in ["vm-project", "vm-oslogin"] {
        let _ = f
            .tool("ssh")
            .arg("-F")
            .arg(f.config_path())
            .args(["-O", "exit", vm])
            .output();
    }
}
