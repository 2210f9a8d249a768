//! Time: nanosecond timestamps, NTP 64-bit conversion and clock state.

mod clock;
mod error_estimate;
mod nanos;
mod ntp;
mod offset;
mod source;

pub use clock::{BootId, BootIdError, ClockInfo, ClockMode, PeerClock, decide_mode};
pub use error_estimate::ErrorEstimate;
pub use nanos::{Nanos, duration_ns};
pub use ntp::{NTP_UNIX_OFFSET_SECS, NtpTimestamp, TAI_UTC_OFFSET_SECS};
pub use offset::{MAX_POINTS as OFFSET_MAX_POINTS, OffsetEstimate, OffsetEstimator};
pub use source::TimestampSource;
