//! A relay close code and reason become one printable line. (See iap_ssh::fuzzing.)
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| iap_ssh::fuzzing::close_reason(data));
