//! Relay session state: SID, byte counters, ACK bookkeeping and the queue of
//! sent-but-unconfirmed DATA that a resume must re-send.
//!
//! Pure state machine: feed it decoded [`Frame`]s and local events, it tells
//! what happened or which rule of the protocol the peer broke. No I/O.

use std::collections::VecDeque;

use bytes::Bytes;

use super::frame::{Frame, FrameError};

/// ACK as soon as more than this many received bytes are unacknowledged
/// (gcloud's threshold: 2 × 16 KiB).
pub const ACK_THRESHOLD: u64 = 2 * 16 * 1024;

/// A rule of the relay protocol broken by the peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("relay sent DATA before the session was established")]
    EarlyData,
    #[error("relay sent an ACK before the session was established")]
    EarlyAck,
    #[error("relay sent a second CONNECT_SUCCESS_SID")]
    SecondSid,
    #[error("relay sent RECONNECT_SUCCESS_ACK outside a reconnect")]
    UnexpectedReconnectAck,
    #[error("relay sent CONNECT_SUCCESS_SID in answer to a reconnect")]
    SidOnReconnect,
    #[error("relay ACK went backwards (from {prev} to {got})")]
    AckBackwards { prev: u64, got: u64 },
    #[error("relay acknowledged {got} bytes but only {sent} were sent")]
    AckBeyondSent { sent: u64, got: u64 },
    #[error("relay sent a WebSocket {0} message; only binary messages are allowed")]
    BadOpcode(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for CONNECT_SUCCESS_SID after `/v4/connect`.
    AwaitSid,
    /// Waiting for RECONNECT_SUCCESS_ACK after `/v4/reconnect`.
    AwaitReconnectAck,
    /// DATA and ACK may flow.
    Established,
}

/// What an incoming frame meant.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// The session is established; the SID is stored.
    Connected,
    /// A reconnect was confirmed; these chunks must be re-sent, in order,
    /// before any new data.
    Resumed { resend: Vec<Bytes> },
    /// Bytes for the local side.
    Data(Bytes),
    /// The peer confirmed bytes; send credit may have grown.
    Acked,
    /// Nothing to do (unknown tag).
    Ignored,
    /// A LONG_CLOSE notice: logged, otherwise ignored (the WebSocket Close
    /// frame is what ends a session).
    LongClose { code: u32, reason: String },
}

/// State of one relay session across any number of WebSocket connections.
#[derive(Debug)]
pub struct Session {
    phase: Phase,
    sid: Option<Bytes>,
    /// DATA payload bytes received from the relay (the reconnect `ack`).
    received: u64,
    /// Value of the last ACK we sent.
    acked_to_peer: u64,
    /// DATA payload bytes handed to the transport.
    sent: u64,
    /// Highest ACK received from the relay.
    confirmed: u64,
    /// Sent chunks not yet covered by an ACK, oldest first.
    unconfirmed: VecDeque<Bytes>,
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

impl Session {
    pub fn new() -> Self {
        Session {
            phase: Phase::AwaitSid,
            sid: None,
            received: 0,
            acked_to_peer: 0,
            sent: 0,
            confirmed: 0,
            unconfirmed: VecDeque::new(),
        }
    }

    /// The SID, once connected.
    pub fn sid(&self) -> Option<&Bytes> {
        self.sid.as_ref()
    }

    /// True once DATA may be sent on the current connection.
    pub fn is_established(&self) -> bool {
        self.phase == Phase::Established
    }

    /// Total DATA bytes received (for ACKs and the reconnect query).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Total DATA bytes sent.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Bytes sent but not yet acknowledged by the relay.
    pub fn unconfirmed_bytes(&self) -> u64 {
        self.sent - self.confirmed
    }

    /// Marks the start of a reconnect on a new WebSocket.
    pub fn begin_reconnect(&mut self) {
        self.phase = Phase::AwaitReconnectAck;
    }

    /// Records a chunk handed to the transport. Record *before* sending, so
    /// an ACK that races the send is still valid.
    pub fn record_sent(&mut self, chunk: Bytes) {
        self.sent += chunk.len() as u64;
        self.unconfirmed.push_back(chunk);
    }

    /// Records DATA bytes delivered to the local side.
    fn record_received(&mut self, n: usize) {
        self.received += n as u64;
    }

    /// The ACK to send now because the threshold is crossed, if any.
    pub fn ack_due(&self) -> Option<u64> {
        (self.received - self.acked_to_peer > ACK_THRESHOLD).then_some(self.received)
    }

    /// The ACK to send on an idle tick or before closing, if anything is
    /// unacknowledged. Never 0.
    pub fn ack_pending(&self) -> Option<u64> {
        (self.received > self.acked_to_peer).then_some(self.received)
    }

    /// Notes that an ACK carrying `v` was sent.
    pub fn mark_acked(&mut self, v: u64) {
        if v > self.acked_to_peer {
            self.acked_to_peer = v;
        }
    }

    fn confirm(&mut self, v: u64) -> Result<(), ProtocolError> {
        if v < self.confirmed {
            return Err(ProtocolError::AckBackwards {
                prev: self.confirmed,
                got: v,
            });
        }
        if v > self.sent {
            return Err(ProtocolError::AckBeyondSent {
                sent: self.sent,
                got: v,
            });
        }
        let mut drop = v - self.confirmed;
        while drop > 0 {
            let front = self.unconfirmed.front_mut().expect("counters match queue");
            let len = front.len() as u64;
            if len <= drop {
                drop -= len;
                self.unconfirmed.pop_front();
            } else {
                // A partially confirmed chunk is split.
                *front = front.slice(drop as usize..);
                drop = 0;
            }
        }
        self.confirmed = v;
        Ok(())
    }

    /// Applies one decoded frame from the relay.
    pub fn on_frame(&mut self, frame: Frame) -> Result<Event, ProtocolError> {
        match (frame, self.phase) {
            (Frame::ConnectSuccessSid(sid), Phase::AwaitSid) => {
                self.sid = Some(sid);
                self.phase = Phase::Established;
                Ok(Event::Connected)
            }
            (Frame::ConnectSuccessSid(_), Phase::AwaitReconnectAck) => {
                Err(ProtocolError::SidOnReconnect)
            }
            (Frame::ConnectSuccessSid(_), Phase::Established) => Err(ProtocolError::SecondSid),
            (Frame::ReconnectSuccessAck(v), Phase::AwaitReconnectAck) => {
                self.confirm(v)?;
                self.phase = Phase::Established;
                Ok(Event::Resumed {
                    resend: self.unconfirmed.iter().cloned().collect(),
                })
            }
            (Frame::ReconnectSuccessAck(_), _) => Err(ProtocolError::UnexpectedReconnectAck),
            (Frame::Data(_), Phase::AwaitSid | Phase::AwaitReconnectAck) => {
                Err(ProtocolError::EarlyData)
            }
            (Frame::Data(d), Phase::Established) => {
                self.record_received(d.len());
                Ok(Event::Data(d))
            }
            (Frame::Ack(_), Phase::AwaitSid | Phase::AwaitReconnectAck) => {
                Err(ProtocolError::EarlyAck)
            }
            (Frame::Ack(v), Phase::Established) => {
                self.confirm(v)?;
                Ok(Event::Acked)
            }
            (Frame::LongClose { code, reason }, _) => Ok(Event::LongClose { code, reason }),
            (Frame::Unknown(_), _) => Ok(Event::Ignored),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connected() -> Session {
        let mut s = Session::new();
        assert_eq!(
            s.on_frame(Frame::ConnectSuccessSid(Bytes::from_static(b"sid")))
                .unwrap(),
            Event::Connected
        );
        s
    }

    #[test]
    fn data_and_ack_before_sid_are_errors() {
        let mut s = Session::new();
        assert_eq!(
            s.on_frame(Frame::Data(Bytes::from_static(b"x"))),
            Err(ProtocolError::EarlyData)
        );
        let mut s = Session::new();
        assert_eq!(s.on_frame(Frame::Ack(1)), Err(ProtocolError::EarlyAck));
    }

    #[test]
    fn second_sid_is_an_error() {
        let mut s = connected();
        assert_eq!(
            s.on_frame(Frame::ConnectSuccessSid(Bytes::from_static(b"again"))),
            Err(ProtocolError::SecondSid)
        );
    }

    #[test]
    fn ack_rules() {
        let mut s = connected();
        s.record_sent(Bytes::from_static(b"0123456789"));
        assert_eq!(s.on_frame(Frame::Ack(4)), Ok(Event::Acked));
        assert_eq!(s.unconfirmed_bytes(), 6);
        assert_eq!(s.on_frame(Frame::Ack(4)), Ok(Event::Acked), "equal is ok");
        assert_eq!(
            s.on_frame(Frame::Ack(3)),
            Err(ProtocolError::AckBackwards { prev: 4, got: 3 })
        );
        assert_eq!(
            s.on_frame(Frame::Ack(11)),
            Err(ProtocolError::AckBeyondSent { sent: 10, got: 11 })
        );
    }

    #[test]
    fn partial_ack_splits_chunk_and_resume_resends_the_rest_in_order() {
        let mut s = connected();
        s.record_sent(Bytes::from_static(b"abcd"));
        s.record_sent(Bytes::from_static(b"efgh"));
        s.on_frame(Frame::Ack(2)).unwrap();
        s.begin_reconnect();
        assert!(!s.is_established());
        let ev = s.on_frame(Frame::ReconnectSuccessAck(5)).unwrap();
        assert_eq!(
            ev,
            Event::Resumed {
                resend: vec![Bytes::from_static(b"fgh")]
            }
        );
        assert!(s.is_established());
        assert_eq!(s.unconfirmed_bytes(), 3);
    }

    #[test]
    fn reconnect_ack_checked_like_an_ack() {
        let mut s = connected();
        s.record_sent(Bytes::from_static(b"ab"));
        s.begin_reconnect();
        assert_eq!(
            s.on_frame(Frame::ReconnectSuccessAck(3)),
            Err(ProtocolError::AckBeyondSent { sent: 2, got: 3 })
        );
        let mut s = connected();
        assert_eq!(
            s.on_frame(Frame::ReconnectSuccessAck(0)),
            Err(ProtocolError::UnexpectedReconnectAck)
        );
        let mut s = connected();
        s.begin_reconnect();
        assert_eq!(
            s.on_frame(Frame::ConnectSuccessSid(Bytes::from_static(b"x"))),
            Err(ProtocolError::SidOnReconnect)
        );
    }

    #[test]
    fn ack_threshold_and_pending() {
        let mut s = connected();
        assert_eq!(s.ack_pending(), None, "never ACK 0");
        s.on_frame(Frame::Data(Bytes::from(vec![0u8; 16384])))
            .unwrap();
        s.on_frame(Frame::Data(Bytes::from(vec![0u8; 16384])))
            .unwrap();
        assert_eq!(
            s.ack_due(),
            None,
            "exactly 32 KiB is not over the threshold"
        );
        assert_eq!(s.ack_pending(), Some(32768));
        s.on_frame(Frame::Data(Bytes::from_static(b"x"))).unwrap();
        assert_eq!(s.ack_due(), Some(32769));
        s.mark_acked(32769);
        assert_eq!(s.ack_due(), None);
        assert_eq!(s.ack_pending(), None);
        assert_eq!(s.received(), 32769);
    }

    #[test]
    fn unknown_and_long_close_are_ignored_in_any_phase() {
        let mut s = Session::new();
        assert_eq!(s.on_frame(Frame::Unknown(9)), Ok(Event::Ignored));
        assert_eq!(
            s.on_frame(Frame::LongClose {
                code: 1,
                reason: String::new()
            }),
            Ok(Event::LongClose {
                code: 1,
                reason: String::new()
            })
        );
    }
}
