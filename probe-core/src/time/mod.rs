//! Time: nanosecond timestamps, NTP 64-bit conversion and clock state.

mod nanos;

pub use nanos::Nanos;
