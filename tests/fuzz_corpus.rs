//! Every fuzz target's corpus (`fuzz/corpus/TARGET/`: the seeds from the
//! tests' vectors, inputs the fuzzer kept, and every crash it found, once
//! fixed) replayed through the same entry points on stable Rust, so that
//! a find stays fixed without nightly. Also keeps `fuzz/` in step with
//! `iap_ssh::fuzzing::TARGETS`.

use std::path::Path;

use iap_ssh::fuzzing::TARGETS;

fn fuzz_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz"))
}

#[test]
fn every_corpus_input_passes_its_target() {
    let mut n = 0;
    for (name, run) in TARGETS {
        let dir = fuzz_dir().join("corpus").join(name);
        let files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        assert!(!files.is_empty(), "{} has no seed", dir.display());
        for f in files {
            let data = std::fs::read(&f).unwrap();
            let r = std::panic::catch_unwind(|| run(&data));
            assert!(r.is_ok(), "{name}: {} fails", f.display());
            n += 1;
        }
    }
    eprintln!(
        "{n} corpus inputs replayed through {} targets",
        TARGETS.len()
    );
}

#[test]
fn every_target_is_a_fuzz_binary() {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    for (name, _) in TARGETS {
        let src = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        let body =
            std::fs::read_to_string(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        assert!(
            body.contains(&format!("iap_ssh::fuzzing::{name}(")),
            "{} must call iap_ssh::fuzzing::{name}",
            src.display()
        );
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] {name}"
        );
    }
}

#[test]
fn hostile_inputs_are_refused_whole() {
    // A few finds and near-misses kept as plain cases (they are in the
    // corpus too): a name with a newline never becomes a Host line, a
    // proxy's escape sequences never reach the terminal.
    iap_ssh::fuzzing::compute_instance(
        br#"{"id":"1","name":"a\nHost *","zone":"z/us-central1-a"}"#,
    );
    iap_ssh::fuzzing::http_connect_reply(b"HTTP/1.1 403 \x1b[2J\r\n\r\n");
    iap_ssh::fuzzing::close_reason(b"\x0f\xa0evil\r\n\x1b[31m");
}
