//! Relay messages and local sends in any order against the session state machine. (See iap_ssh::fuzzing.)
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| iap_ssh::fuzzing::session(data));
