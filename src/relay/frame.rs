//! Pure encode/decode of the IAP relay v4 subprotocol messages.
//!
//! One subprotocol message travels in one binary WebSocket message. All
//! integers are big-endian. This module does no I/O and keeps no session
//! state: it turns bytes into [`Frame`]s (or a typed [`FrameError`]) and back.
//! Session-level rules (ACK monotonicity, "SID first") live in
//! [`crate::relay::session`].

use bytes::{BufMut, Bytes, BytesMut};

/// Tag of CONNECT_SUCCESS_SID (server → client, first message after `/v4/connect`).
pub const TAG_CONNECT_SUCCESS_SID: u16 = 0x0001;
/// Tag of RECONNECT_SUCCESS_ACK (server → client, first message after `/v4/reconnect`).
pub const TAG_RECONNECT_SUCCESS_ACK: u16 = 0x0002;
/// Tag of DATA (both directions).
pub const TAG_DATA: u16 = 0x0004;
/// Tag of ACK (both directions).
pub const TAG_ACK: u16 = 0x0007;
/// Tag of LONG_CLOSE (server → client; ignored by every known client).
pub const TAG_LONG_CLOSE: u16 = 0x000A;

/// Largest DATA payload either side may send.
pub const MAX_DATA_LEN: usize = 16 * 1024;
/// Largest SID we accept (IAP Desktop and iapc both cap it at 16 KiB).
pub const MAX_SID_LEN: usize = 16 * 1024;
/// Largest LONG_CLOSE reason we accept.
pub const MAX_REASON_LEN: usize = 16 * 1024;
/// Bytes of framing in front of a DATA payload.
pub const DATA_HEADER_LEN: usize = 6;

/// One decoded relay message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The session id, to be used for `/v4/reconnect`.
    ConnectSuccessSid(Bytes),
    /// Client DATA bytes the server holds for the whole session.
    ReconnectSuccessAck(u64),
    /// A chunk of the byte stream (1..=16 KiB).
    Data(Bytes),
    /// Cumulative count of DATA payload bytes the peer has received.
    Ack(u64),
    /// A close notice with a code and reason. Clients ignore it (the
    /// WebSocket Close frame is authoritative); decoded for logging.
    LongClose { code: u32, reason: String },
    /// A tag this client does not know; must be ignored.
    Unknown(u16),
}

/// Why a message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("truncated relay message: {what} needs {needed} bytes, {available} present")]
    Truncated {
        what: &'static str,
        needed: usize,
        available: usize,
    },
    #[error("relay DATA of {0} bytes exceeds the 16384-byte limit")]
    DataTooLong(usize),
    #[error("relay DATA message with an empty payload")]
    EmptyData,
    #[error("relay SID of {0} bytes exceeds the 16384-byte limit")]
    SidTooLong(usize),
    #[error("relay SID is empty")]
    EmptySid,
    #[error("relay SID contains a byte that is not printable ASCII")]
    SidNotPrintable,
    #[error("relay message has {0} bytes after its end")]
    TrailingBytes(usize),
}

fn need(buf: &[u8], n: usize, what: &'static str) -> Result<(), FrameError> {
    if buf.len() < n {
        Err(FrameError::Truncated {
            what,
            needed: n,
            available: buf.len(),
        })
    } else {
        Ok(())
    }
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

/// Checks that a message of `len` bytes ends exactly at `end`.
fn exact(len: usize, end: usize) -> Result<(), FrameError> {
    if len > end {
        Err(FrameError::TrailingBytes(len - end))
    } else {
        Ok(())
    }
}

impl Frame {
    /// Decodes one whole WebSocket binary message.
    ///
    /// The payload of DATA and the SID are zero-copy slices of `msg`.
    /// Trailing bytes after a known message are an error (gcloud silently
    /// loses them, which would corrupt the stream); unknown tags are
    /// returned as [`Frame::Unknown`] whatever follows them.
    pub fn decode(msg: &Bytes) -> Result<Frame, FrameError> {
        need(msg, 2, "tag")?;
        let tag = u16::from_be_bytes([msg[0], msg[1]]);
        match tag {
            TAG_CONNECT_SUCCESS_SID => {
                need(msg, 6, "CONNECT_SUCCESS_SID length")?;
                let len = be_u32(&msg[2..]) as usize;
                if len > MAX_SID_LEN {
                    return Err(FrameError::SidTooLong(len));
                }
                need(msg, 6 + len, "CONNECT_SUCCESS_SID")?;
                exact(msg.len(), 6 + len)?;
                let sid = msg.slice(6..6 + len);
                if sid.is_empty() {
                    return Err(FrameError::EmptySid);
                }
                if !sid.iter().all(|b| (0x21..=0x7e).contains(b)) {
                    return Err(FrameError::SidNotPrintable);
                }
                Ok(Frame::ConnectSuccessSid(sid))
            }
            TAG_RECONNECT_SUCCESS_ACK | TAG_ACK => {
                let what = if tag == TAG_ACK {
                    "ACK"
                } else {
                    "RECONNECT_SUCCESS_ACK"
                };
                need(msg, 10, what)?;
                exact(msg.len(), 10)?;
                let v = be_u64(&msg[2..]);
                Ok(if tag == TAG_ACK {
                    Frame::Ack(v)
                } else {
                    Frame::ReconnectSuccessAck(v)
                })
            }
            TAG_DATA => {
                need(msg, 6, "DATA length")?;
                let len = be_u32(&msg[2..]) as usize;
                if len > MAX_DATA_LEN {
                    return Err(FrameError::DataTooLong(len));
                }
                if len == 0 {
                    return Err(FrameError::EmptyData);
                }
                need(msg, 6 + len, "DATA")?;
                exact(msg.len(), 6 + len)?;
                Ok(Frame::Data(msg.slice(6..6 + len)))
            }
            TAG_LONG_CLOSE => {
                // Best effort, never an error: every known client ignores
                // LONG_CLOSE and whether IAP sends it is unknown, so a short
                // or odd one must not end a session. Missing fields read as
                // 0 / empty; the reason is cut at 16 KiB or the message end.
                let code = if msg.len() >= 6 { be_u32(&msg[2..]) } else { 0 };
                let reason = if msg.len() >= 10 {
                    let len = (be_u32(&msg[6..]) as usize).min(MAX_REASON_LEN);
                    let end = msg.len().min(10 + len);
                    String::from_utf8_lossy(&msg[10..end]).into_owned()
                } else {
                    String::new()
                };
                Ok(Frame::LongClose { code, reason })
            }
            other => Ok(Frame::Unknown(other)),
        }
    }

    /// Encodes the frame into a fresh buffer (one WebSocket binary message).
    ///
    /// Panics never; callers must keep DATA within 1..=16 KiB (use
    /// [`encode_data`] for payloads read from the local side).
    pub fn encode(&self) -> Bytes {
        match self {
            Frame::ConnectSuccessSid(sid) => {
                let mut b = BytesMut::with_capacity(6 + sid.len());
                b.put_u16(TAG_CONNECT_SUCCESS_SID);
                b.put_u32(sid.len() as u32);
                b.put_slice(sid);
                b.freeze()
            }
            Frame::ReconnectSuccessAck(v) => encode_u64(TAG_RECONNECT_SUCCESS_ACK, *v),
            Frame::Ack(v) => encode_u64(TAG_ACK, *v),
            Frame::Data(d) => encode_data(d),
            Frame::LongClose { code, reason } => {
                let mut b = BytesMut::with_capacity(10 + reason.len());
                b.put_u16(TAG_LONG_CLOSE);
                b.put_u32(*code);
                b.put_u32(reason.len() as u32);
                b.put_slice(reason.as_bytes());
                b.freeze()
            }
            Frame::Unknown(tag) => {
                let mut b = BytesMut::with_capacity(2);
                b.put_u16(*tag);
                b.freeze()
            }
        }
    }
}

fn encode_u64(tag: u16, v: u64) -> Bytes {
    let mut b = BytesMut::with_capacity(10);
    b.put_u16(tag);
    b.put_u64(v);
    b.freeze()
}

/// Encodes an ACK message.
pub fn encode_ack(v: u64) -> Bytes {
    encode_u64(TAG_ACK, v)
}

/// Encodes a DATA message. `payload` must be 1..=16 KiB.
pub fn encode_data(payload: &[u8]) -> Bytes {
    debug_assert!(!payload.is_empty() && payload.len() <= MAX_DATA_LEN);
    let mut b = BytesMut::with_capacity(DATA_HEADER_LEN + payload.len());
    b.put_u16(TAG_DATA);
    b.put_u32(payload.len() as u32);
    b.put_slice(payload);
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Bytes {
        let v: Vec<u8> = s
            .split_whitespace()
            .map(|h| u8::from_str_radix(h, 16).unwrap())
            .collect();
        Bytes::from(v)
    }

    #[test]
    fn spec_worked_examples_round_trip() {
        let cases = [
            (
                "00 01 00 00 00 0a 66 61 6b 65 2d 73 69 64 2d 31",
                Frame::ConnectSuccessSid(Bytes::from_static(b"fake-sid-1")),
            ),
            (
                "00 02 00 00 00 00 00 00 00 11",
                Frame::ReconnectSuccessAck(17),
            ),
            (
                "00 04 00 00 00 05 68 65 6c 6c 6f",
                Frame::Data(Bytes::from_static(b"hello")),
            ),
            ("00 07 00 00 00 00 00 00 00 11", Frame::Ack(17)),
        ];
        for (h, f) in cases {
            assert_eq!(Frame::decode(&hex(h)).unwrap(), f, "{h}");
            assert_eq!(f.encode(), hex(h));
        }
    }

    #[test]
    fn data_over_16k_is_rejected() {
        let mut m = BytesMut::new();
        m.put_u16(TAG_DATA);
        m.put_u32(16385);
        m.put_slice(&[0u8; 16385]);
        assert_eq!(
            Frame::decode(&m.freeze()),
            Err(FrameError::DataTooLong(16385))
        );
    }

    #[test]
    fn data_of_exactly_16k_is_accepted() {
        let p = vec![7u8; MAX_DATA_LEN];
        let f = Frame::decode(&encode_data(&p)).unwrap();
        assert_eq!(f, Frame::Data(Bytes::from(p)));
    }

    #[test]
    fn empty_data_is_rejected() {
        assert_eq!(
            Frame::decode(&hex("00 04 00 00 00 00")),
            Err(FrameError::EmptyData)
        );
    }

    #[test]
    fn truncated_messages_are_rejected() {
        for h in [
            "",
            "00",
            "00 04 00 00",
            "00 04 00 00 00 05 68 65",
            "00 07 00 00 00 00 00 00 00",
            "00 02 00",
            "00 01 00 00 00 0a 66 61",
        ] {
            assert!(
                matches!(Frame::decode(&hex(h)), Err(FrameError::Truncated { .. })),
                "{h:?} should be truncated"
            );
        }
        // LONG_CLOSE is decoded best effort instead.
        for h in [
            "00 0a 00 00 0f a0 00 00",
            "00 0a 00 00 0f a0 00 00 00 05 61",
        ] {
            assert!(
                matches!(
                    Frame::decode(&hex(h)),
                    Ok(Frame::LongClose { code: 4000, .. })
                ),
                "{h:?}"
            );
        }
    }

    #[test]
    fn trailing_bytes_after_known_message_are_rejected() {
        assert_eq!(
            Frame::decode(&hex("00 07 00 00 00 00 00 00 00 11 00")),
            Err(FrameError::TrailingBytes(1))
        );
        // Two DATA messages packed into one WS message: gcloud loses the
        // second silently; we refuse the whole message.
        assert_eq!(
            Frame::decode(&hex("00 04 00 00 00 01 61 00 04 00 00 00 01 62")),
            Err(FrameError::TrailingBytes(7))
        );
    }

    #[test]
    fn sid_rules() {
        assert_eq!(
            Frame::decode(&hex("00 01 00 00 00 00")),
            Err(FrameError::EmptySid)
        );
        assert_eq!(
            Frame::decode(&hex("00 01 00 00 00 02 61 0a")),
            Err(FrameError::SidNotPrintable)
        );
        assert_eq!(
            Frame::decode(&hex("00 01 00 00 40 01")),
            Err(FrameError::SidTooLong(16385))
        );
    }

    #[test]
    fn unknown_tags_and_long_close_are_decoded_not_errors() {
        assert_eq!(Frame::decode(&hex("00 03 01 02 03")), Ok(Frame::Unknown(3)));
        assert_eq!(Frame::decode(&hex("12 34")), Ok(Frame::Unknown(0x1234)));
        let lc = Frame::LongClose {
            code: 4004,
            reason: "reauth".into(),
        };
        assert_eq!(Frame::decode(&lc.encode()), Ok(lc));
        // Malformed LONG_CLOSE: decoded as far as it goes, never an error.
        assert_eq!(
            Frame::decode(&hex("00 0a")),
            Ok(Frame::LongClose {
                code: 0,
                reason: String::new()
            })
        );
        assert_eq!(
            Frame::decode(&hex("00 0a 00 00 0f a0 ff ff ff ff 68 69")),
            Ok(Frame::LongClose {
                code: 4000,
                reason: "hi".into()
            })
        );
    }

    #[test]
    fn large_counters_round_trip() {
        let f = Frame::Ack(u64::MAX - 1);
        assert_eq!(Frame::decode(&f.encode()), Ok(f));
    }
}
