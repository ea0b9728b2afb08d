//! The user's ssh config: claims, keyword lines, patterns, the managed section. (See iap_ssh::fuzzing.)
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| iap_ssh::fuzzing::ssh_config(data));
