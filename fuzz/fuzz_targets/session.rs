//! Random sequences of relay messages and local sends fed to the session
//! state machine: errors are fine, panics and broken counters are not.
#![no_main]

use bytes::Bytes;
use iap_ssh::relay::frame::Frame;
use iap_ssh::relay::session::Session;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut s = Session::new();
    for chunk in data.chunks(11) {
        match chunk.first().copied().unwrap_or(0) % 4 {
            0 => s.record_sent(Bytes::copy_from_slice(&chunk[1..])),
            1 => s.begin_reconnect(),
            _ => {
                if let Ok(f) = Frame::decode(&Bytes::copy_from_slice(&chunk[1..])) {
                    let _ = s.on_frame(f);
                }
            }
        }
        assert!(s.unconfirmed_bytes() <= s.sent());
    }
});
