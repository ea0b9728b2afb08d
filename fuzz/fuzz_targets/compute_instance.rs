//! A Compute instance from a listing: what passes validation is safe in a config line. (See iap_ssh::fuzzing.)
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| iap_ssh::fuzzing::compute_instance(data));
