//! OS Login certificates and a certificate provider's PEM output. (See iap_ssh::fuzzing.)
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| iap_ssh::fuzzing::certificate(data));
