//! Property tests of the relay frame codec: the decoder never panics on any
//! input, and every valid frame round-trips.

use bytes::Bytes;
use iap_ssh::relay::frame::{Frame, MAX_DATA_LEN};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 100_000, ..ProptestConfig::default() })]

    #[test]
    fn decoder_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = Frame::decode(&Bytes::from(data));
    }

    #[test]
    fn decoder_never_panics_on_known_tags(tag in 0u16..12, rest in proptest::collection::vec(any::<u8>(), 0..40)) {
        let mut v = tag.to_be_bytes().to_vec();
        v.extend(rest);
        let _ = Frame::decode(&Bytes::from(v));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn data_round_trips(p in proptest::collection::vec(any::<u8>(), 1..=MAX_DATA_LEN)) {
        let f = Frame::Data(Bytes::from(p));
        prop_assert_eq!(Frame::decode(&f.encode()), Ok(f));
    }

    #[test]
    fn acks_round_trip(v in any::<u64>()) {
        for f in [Frame::Ack(v), Frame::ReconnectSuccessAck(v)] {
            prop_assert_eq!(Frame::decode(&f.encode()), Ok(f.clone()));
        }
    }

    #[test]
    fn sids_round_trip(s in "[!-~]{1,200}") {
        let f = Frame::ConnectSuccessSid(Bytes::from(s));
        prop_assert_eq!(Frame::decode(&f.encode()), Ok(f));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

    /// Random interleavings of local sends, reconnects and relay messages:
    /// the session state machine may reject them, but never panics and its
    /// counters stay consistent.
    #[test]
    fn session_never_panics(ops in proptest::collection::vec((0u8..4, proptest::collection::vec(any::<u8>(), 0..12)), 0..40)) {
        use iap_ssh::relay::session::Session;
        let mut s = Session::new();
        for (op, bytes) in ops {
            match op {
                0 if !bytes.is_empty() => s.record_sent(Bytes::from(bytes)),
                1 => s.begin_reconnect(),
                _ => {
                    if let Ok(f) = Frame::decode(&Bytes::from(bytes)) {
                        let _ = s.on_frame(f);
                    }
                }
            }
            prop_assert!(s.unconfirmed_bytes() <= s.sent());
        }
    }
}
