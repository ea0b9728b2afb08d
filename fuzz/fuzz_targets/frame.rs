//! Any byte string given to the relay frame decoder: never a panic, and a
//! decoded known frame re-encodes to the same bytes.
#![no_main]

use bytes::Bytes;
use iap_ssh::relay::frame::Frame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let b = Bytes::copy_from_slice(data);
    if let Ok(f) = Frame::decode(&b) {
        match f {
            Frame::Unknown(_) | Frame::LongClose { .. } => {}
            known => assert_eq!(known.encode(), b),
        }
    }
});
