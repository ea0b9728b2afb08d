//! The relay subprotocol as the server sees it. Written independently of
//! iap-ssh's codec on purpose, so a bug in one is caught by the other.

use bytes::{BufMut, Bytes, BytesMut};

pub const SID: u16 = 0x0001;
pub const RECONNECT_ACK: u16 = 0x0002;
pub const DATA: u16 = 0x0004;
pub const ACK: u16 = 0x0007;
pub const LONG_CLOSE: u16 = 0x000A;
pub const MAX_DATA: usize = 16384;

#[derive(Debug, PartialEq, Eq)]
pub enum ClientMsg {
    Data(Bytes),
    Ack(u64),
    Bad(&'static str),
    UnknownTag(u16),
}

pub fn decode_client(m: &Bytes) -> ClientMsg {
    if m.len() < 2 {
        return ClientMsg::Bad("truncated tag");
    }
    let tag = u16::from_be_bytes([m[0], m[1]]);
    match tag {
        DATA => {
            if m.len() < 6 {
                return ClientMsg::Bad("truncated DATA length");
            }
            let len = u32::from_be_bytes([m[2], m[3], m[4], m[5]]) as usize;
            if len == 0 || len > MAX_DATA {
                return ClientMsg::Bad("DATA length out of range");
            }
            if m.len() != 6 + len {
                return ClientMsg::Bad("DATA length does not match the message");
            }
            ClientMsg::Data(m.slice(6..))
        }
        ACK => {
            if m.len() != 10 {
                return ClientMsg::Bad("ACK must be 10 bytes");
            }
            let mut a = [0u8; 8];
            a.copy_from_slice(&m[2..10]);
            ClientMsg::Ack(u64::from_be_bytes(a))
        }
        other => ClientMsg::UnknownTag(other),
    }
}

pub fn sid(s: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(6 + s.len());
    b.put_u16(SID);
    b.put_u32(s.len() as u32);
    b.put_slice(s.as_bytes());
    b.freeze()
}

pub fn u64_msg(tag: u16, v: u64) -> Bytes {
    let mut b = BytesMut::with_capacity(10);
    b.put_u16(tag);
    b.put_u64(v);
    b.freeze()
}

pub fn data(p: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(6 + p.len());
    b.put_u16(DATA);
    b.put_u32(p.len() as u32);
    b.put_slice(p);
    b.freeze()
}
