//! Agent-to-agent tests: STAMP (RFC 8762) sender and reflector.
//!
//! The sessions here are sans-IO: the reflector and sender are fed datagrams and timestamps as
//! values and produce bytes and reports; the socket and runtime glue drives them.

mod admission;
mod allow_list;
mod direction;
mod interval;
mod mux;
mod rate_limit;
mod reflect_tlv;
mod reflector;
pub mod runtime;
mod schedule;
mod sender;
mod sender_config;
mod sender_report;
mod sender_state;
mod session;
mod session_config;
mod stamp_keys;
#[cfg(test)]
mod test_fixture;
pub mod throughput;
mod timeline;
mod voice;

pub use crate::wire::stamp_hmac::{StampKey, StampKeyError};
pub use admission::{Admission, SessionCounts, SessionStats};
pub use allow_list::{AllowList, AllowListError, MAX_ALLOW_PREFIXES};
pub use direction::{Direction, ParseDirectionError};
pub use mux::{SessionKey, SessionMux, TX_OWNERS};
pub use rate_limit::RateLimiter;
pub use reflector::{
    Datagram, DropReason, Reflector, ReflectorConfig, ReflectorConfigBuilder, ReflectorCounters,
};
pub use schedule::Schedule;
pub use sender::{
    HELLO_SSID_FLIP, IgnoreReason, Limit, MAX_SIZE, OFFSET_WINDOW_EXCHANGES, ReplyOutcome, Sender,
    SenderConfig, SenderError, Sent,
};
pub use sender_state::{MAX_RING, REORDER_SLOTS};
pub use session::{
    Pace, SenderSession, SessionConfig, SessionConfigBuilder, TX_ID_SLOTS, TestOutcome, Transmit,
    planned_duration,
};
pub use stamp_keys::StampKeyring;
pub use voice::{VoiceConfig, VoiceMonitor};

/// The UDP port probe agents answer STAMP on.
pub const DEFAULT_PORT: u16 = 49_153;
