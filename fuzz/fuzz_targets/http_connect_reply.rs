//! An HTTP proxy's answer to CONNECT. (See iap_ssh::fuzzing.)
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| iap_ssh::fuzzing::http_connect_reply(data));
