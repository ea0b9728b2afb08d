//! Flow control keeps memory bounded: a 1 GiB echo (both directions at
//! once) through `iap-ssh proxy` with its peak RSS read from /proc.

mod common;

use std::io::{Read, Write};
use std::process::Stdio;
use std::time::Duration;

use common::*;

struct Xorshift(u64);

impl Xorshift {
    fn fill(&mut self, buf: &mut [u8]) {
        for c in buf.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            let b = self.0.to_le_bytes();
            c.copy_from_slice(&b[..c.len()]);
        }
    }
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn one_gib_echo_peak_rss_under_16_mib() {
    const TOTAL: u64 = 1 << 30;
    let w = World::new();
    let mut child = w
        .iap_ssh_std(true)
        .args(["proxy", "vm1.us-central1-a.p1", "7"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let writer = std::thread::spawn(move || {
        let mut g = Xorshift(0x9e3779b97f4a7c15);
        let mut buf = vec![0u8; 256 * 1024];
        let mut sent = 0u64;
        while sent < TOTAL {
            g.fill(&mut buf);
            stdin.write_all(&buf).unwrap();
            sent += buf.len() as u64;
        }
    });
    let reader = std::thread::spawn(move || {
        let mut g = Xorshift(0x9e3779b97f4a7c15);
        let mut got = vec![0u8; 256 * 1024];
        let mut want = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        let mut equal = true;
        let mut filled = 0usize;
        loop {
            let n = stdout.read(&mut got[filled..]).unwrap();
            if n == 0 {
                break;
            }
            filled += n;
            total += n as u64;
            if filled == got.len() {
                g.fill(&mut want);
                equal &= got == want;
                filled = 0;
            }
        }
        (total, equal && filled == 0)
    });
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        if let Some(h) = vm_hwm_kib(pid) {
            peak = peak.max(h);
        }
        if reader.is_finished() {
            // Output complete: the process is in its final linger.
            if let Some(h) = vm_hwm_kib(pid) {
                peak = peak.max(h);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    writer.join().unwrap();
    let (total, equal) = reader.join().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(total, TOTAL);
    assert!(equal, "echoed bytes differ");
    eprintln!("1 GiB echo: peak RSS {peak} KiB");
    assert!(peak > 0, "could not read VmHWM");
    assert!(peak < 16 * 1024, "peak RSS {peak} KiB is over 16 MiB");
}
