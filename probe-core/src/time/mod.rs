//! Time: nanosecond timestamps, NTP 64-bit conversion and clock state.

mod clock;
mod error_estimate;
mod nanos;
mod ntp;
mod offset;
mod source;

pub use clock::{BootId, BootIdError, ClockInfo, ClockMode, PeerClock, decide_mode};
pub use error_estimate::ErrorEstimate;
pub use nanos::Nanos;
pub use ntp::{NTP_UNIX_OFFSET_SECS, NtpTimestamp, TAI_UTC_OFFSET_SECS};
pub use offset::{OffsetEstimate, OffsetEstimator};
pub use source::TimestampSource;
