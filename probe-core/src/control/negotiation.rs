//! Test negotiation messages: a client asks for a test ([`TestRequest`]), the responder
//! grants it ([`TestAccepted`]) or refuses it with an error naming the limit; later the client
//! asks for the far end's view of the test ([`ResultsRequest`] → [`FarEndResults`]).
//!
//! Times are integer milliseconds or nanoseconds and rates are intervals, so that messages
//! compare exactly and round-trip through JSON unchanged.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::messages::ClockFacts;
use crate::a2a::{Direction, ReflectorCounters, SessionCounts};
use crate::a2a::{StampKey, StampKeyError};
use crate::report::A2aReport;
use crate::report::udp_throughput::{ReceiverCounts, SenderCounts};

/// The kinds of test a client can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestKind {
    /// STAMP (RFC 8762) on the responder's 49153/udp.
    Stamp,
    /// UDP throughput (exclusive: one at a time).
    UdpThroughput,
    /// TCP throughput on 49153/tcp (exclusive: one at a time).
    TcpThroughput,
    /// TCP connect latency on 49153/tcp.
    TcpConnect,
    /// QUIC handshakes and the datagram round trip, on the control endpoint's test ALPN.
    QuicRtt,
    /// QUIC stream throughput (exclusive: one at a time).
    QuicThroughput,
    /// A kind this build does not know (asked for by a newer peer).
    #[serde(other)]
    Unknown,
}

impl TestKind {
    /// The kind as the wire spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            TestKind::Stamp => "stamp",
            TestKind::UdpThroughput => "udp_throughput",
            TestKind::TcpThroughput => "tcp_throughput",
            TestKind::TcpConnect => "tcp_connect",
            TestKind::QuicRtt => "quic_rtt",
            TestKind::QuicThroughput => "quic_throughput",
            TestKind::Unknown => "unknown",
        }
    }

    /// Whether tests of this kind run one at a time (throughput tests would measure each
    /// other).
    pub fn exclusive(self) -> bool {
        matches!(
            self,
            TestKind::UdpThroughput | TestKind::TcpThroughput | TestKind::QuicThroughput
        )
    }
}

/// A client's request for a test.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestRequest {
    /// What to run.
    pub kind: TestKind,
    /// Which way the traffic flows (`from`: the far end sends toward the client).
    pub direction: Direction,
    /// Interval between packets, ns; absent for as fast as possible (`--rate max`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ns: Option<u64>,
    /// Packets to send, when the test is limited by count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// How long the test sends, ms (for a count: the planned duration, when known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// UDP payload size (STAMP) or write size (TCP), octets.
    pub size: u32,
    /// DSCP codepoint of the test packets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dscp: Option<u8>,
    /// STAMP Session-Sender Identifier of the test (both directions use it).
    pub ssid: u16,
    /// The client's own test port, when it has one (the STAMP reflector of a `from` test;
    /// informational: the far end sends to the address its punch came from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The client's clock facts (the far end's sender of a `from` test needs no hellos).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockFacts>,
    /// Asks for STAMP authenticated mode (RFC 8762) with a key of the session
    /// (`probe a2a --stamp-auth`); a responder with `--require-auth` hands one out unasked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auth: bool,
}

impl TestRequest {
    /// The sending rate, packets per second; `None` for as fast as possible.
    pub fn rate_pps(&self) -> Option<f64> {
        self.interval_ns.filter(|&n| n > 0).map(|n| 1e9 / n as f64)
    }

    /// How long the test sends: the duration, or count × interval; `None` when unknown (a
    /// counted flood).
    pub fn planned(&self) -> Option<Duration> {
        match (self.duration_ms, self.count, self.interval_ns) {
            (Some(ms), _, _) => Some(Duration::from_millis(ms)),
            (None, Some(c), Some(i)) => Some(Duration::from_nanos(c.saturating_mul(i))),
            _ => None,
        }
    }
}

/// The responder's grant of a [`TestRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestAccepted {
    /// The session id: name it to fetch results or end the test.
    pub session: u64,
    /// The session is forgotten this long after the grant, ms.
    pub expires_in_ms: u64,
    /// The responder's STAMP port (send the `to` test there).
    pub stamp_port: u16,
    /// For `from`: the port the far end's Session-Sender sends from. The client sends a punch
    /// ([`punch`]) from its reflector socket to this port; the far end then sends its test to
    /// the source address the punch arrived from (the client's NAT mapping).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_port: Option<u16>,
    /// The responder's clock facts (replaces the STAMP hello TLV).
    pub clock: ClockFacts,
    /// Whether the responder answers only negotiated sessions on its STAMP port.
    #[serde(default)]
    pub require_auth: bool,
    /// The session's STAMP key (hex; RFC 8762 authenticated mode), fresh for this session and
    /// sent only over the TLS-protected control connection: both directions of the test are
    /// then authenticated with it, and the responder drops packets of this sender and SSID
    /// that do not carry its HMAC. Given when the request asked (`auth`) or the responder
    /// requires auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stamp_key: Option<String>,
    /// The session's TCP cookie (32 hex digits): the in-band request of every connection of
    /// the negotiated TCP throughput test carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
}

impl TestAccepted {
    /// The session's STAMP key, if one was handed out; a key that is not valid hex is an
    /// error naming it.
    pub fn session_key(&self) -> Result<Option<StampKey>, StampKeyError> {
        self.stamp_key
            .as_deref()
            .map(|hex| StampKey::from_hex(hex, "the session key of the control plane"))
            .transpose()
    }

    /// The session's TCP cookie, if one was handed out and is 16 octets of hex.
    pub fn tcp_cookie(&self) -> Option<[u8; COOKIE_LEN]> {
        self.cookie.as_deref().and_then(cookie_from_hex)
    }
}

/// Length of a TCP session cookie, octets.
pub const COOKIE_LEN: usize = 16;
/// Length of a fresh session STAMP key, octets.
pub const SESSION_KEY_LEN: usize = 32;

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            use std::fmt::Write as _;
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A cookie from its 32 hex digits.
pub fn cookie_from_hex(hex: &str) -> Option<[u8; COOKIE_LEN]> {
    let digits = hex.as_bytes();
    if digits.len() != COOKIE_LEN * 2 {
        return None;
    }
    let mut out = [0; COOKIE_LEN];
    for (o, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let text = std::str::from_utf8(pair).ok()?;
        *o = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

/// A request for the far end's view of a session; `end` also ends the session (after the
/// far end's own sender, if any, finished).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultsRequest {
    /// The session id of the grant.
    pub session: u64,
    /// End the session once answered.
    #[serde(default)]
    pub end: bool,
}

/// The far end's own view of a session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FarEndResults {
    /// The session id.
    pub session: u64,
    /// What the far end's reflector saw of the client's test packets (`to`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reflector: Option<SessionCounts>,
    /// The far end's reflector totals (all sessions): drops, rate-limit refusals, junk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reflector_totals: Option<ReflectorCounters>,
    /// The far end's Session-Sender report (`from`): `forward` is toward the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<Box<A2aReport>>,
    /// Why the far end's Session-Sender failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_error: Option<String>,
    /// The far end's Session-Sender (`from`): `waiting_punch` (the client's punch has not
    /// arrived), `running` (partial results), `done` or `failed`; absent without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_state: Option<String>,
    /// The far end's view of a UDP throughput test: what its receiver counted (`to`) and
    /// what its sender sent (`from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<FarEndThroughput>,
    /// The far end's clock facts now.
    pub clock: ClockFacts,
}

/// The far end's side of a UDP throughput test.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FarEndThroughput {
    /// What the far end's counting receiver saw of the client's datagrams (`to`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received: Option<ReceiverCounts>,
    /// What the far end's sender handed to its kernel (`from`), once it finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent: Option<SenderCounts>,
}

/// A random Session-Sender Identifier for a negotiated test.
pub fn random_ssid() -> u16 {
    rand::random()
}

/// Magic of a punch datagram: `PRBP` then the session id, big-endian.
pub const PUNCH_MAGIC: [u8; 4] = *b"PRBP";

/// The punch a client sends from its reflector socket to [`TestAccepted::sender_port`].
pub fn punch(session: u64) -> [u8; 12] {
    let mut p = [0; 12];
    p[..4].copy_from_slice(&PUNCH_MAGIC);
    p[4..].copy_from_slice(&session.to_be_bytes());
    p
}

/// Whether `bytes` is the punch of `session`.
pub fn is_punch(bytes: &[u8], session: u64) -> bool {
    bytes == punch(session)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips_and_plans() {
        let r = TestRequest {
            kind: TestKind::Stamp,
            direction: Direction::Both,
            interval_ns: Some(10_000_000),
            count: Some(50),
            duration_ms: None,
            size: 44,
            dscp: Some(46),
            ssid: 7,
            port: None,
            clock: None,
            auth: false,
        };
        let text = serde_json::to_string(&r).expect("json");
        assert!(text.contains(r#""direction":"both""#), "{text}");
        assert_eq!(
            serde_json::from_str::<TestRequest>(&text).expect("parse"),
            r
        );
        assert_eq!(r.planned(), Some(Duration::from_millis(500)));
        assert_eq!(r.rate_pps(), Some(100.0));
        let k: TestKind = serde_json::from_str(r#""quic_rtt""#).expect("quic kind parses");
        assert_eq!(k, TestKind::QuicRtt);
        assert!(TestKind::QuicThroughput.exclusive() && !TestKind::QuicRtt.exclusive());
        let k: TestKind = serde_json::from_str(r#""quic""#).expect("unknown kind parses");
        assert_eq!(k, TestKind::Unknown);
        assert!(TestKind::TcpThroughput.exclusive() && !TestKind::Stamp.exclusive());
    }

    #[test]
    fn keys_and_cookies_travel_as_hex() {
        assert_eq!(to_hex(&[0, 0xab, 0x10]), "00ab10");
        let cookie: [u8; 16] = std::array::from_fn(|i| i as u8 * 17);
        assert_eq!(cookie_from_hex(&to_hex(&cookie)), Some(cookie));
        assert_eq!(cookie_from_hex("00"), None);
        assert_eq!(cookie_from_hex(&"zz".repeat(16)), None);
        let key = [7_u8; SESSION_KEY_LEN];
        let accepted = TestAccepted {
            session: 1,
            expires_in_ms: 1,
            stamp_port: 49153,
            sender_port: None,
            clock: ClockFacts {
                boot_id: String::new(),
                synced: false,
                max_error_ns: None,
            },
            require_auth: true,
            stamp_key: Some(to_hex(&key)),
            cookie: Some(to_hex(&cookie)),
        };
        let got = accepted.session_key().expect("hex").expect("a key");
        assert_eq!(got.id(), StampKey::new(&key).expect("key").id());
        assert_eq!(accepted.tcp_cookie(), Some(cookie));
        let text = serde_json::to_string(&accepted).expect("json");
        assert_eq!(
            serde_json::from_str::<TestAccepted>(&text).expect("parse"),
            accepted
        );
        let bad = TestAccepted {
            stamp_key: Some("xyz".into()),
            ..accepted
        };
        assert!(bad.session_key().is_err());
    }

    #[test]
    fn punches_name_their_session() {
        let p = punch(0x0102_0304_0506_0708);
        assert_eq!(&p[..4], b"PRBP");
        assert!(is_punch(&p, 0x0102_0304_0506_0708));
        assert!(!is_punch(&p, 1) && !is_punch(&p[..11], 0x0102_0304_0506_0708));
    }
}
