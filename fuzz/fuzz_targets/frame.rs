//! Relay frames: never a panic; a known frame re-encodes to the same bytes. (See iap_ssh::fuzzing.)
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| iap_ssh::fuzzing::frame(data));
