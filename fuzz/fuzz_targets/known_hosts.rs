//! known_hosts text: aliases, keys, merge, claims. (See iap_ssh::fuzzing.)
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| iap_ssh::fuzzing::known_hosts(data));
