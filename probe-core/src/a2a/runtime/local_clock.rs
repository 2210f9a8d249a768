//! The local clock's facts for the STAMP clock exchange.

use std::time::Duration;

use crate::io;
use crate::time::{BootId, ClockInfo};

/// Reads the kernel boot id and synchronization state (adjtimex). Facts that can't be read
/// are reported as unknown, never invented.
pub fn local_clock_info() -> ClockInfo {
    let boot_id = match io::boot_id() {
        Ok(id) => BootId(id),
        Err(e) => {
            tracing::debug!("boot id unavailable: {e}");
            BootId([0; 16])
        }
    };
    let (synchronized, max_error) = match io::clock_sync() {
        Ok(s) => (s.synchronized, Some(Duration::from_nanos(s.max_error_ns))),
        Err(e) => {
            tracing::debug!("clock state unavailable: {e}");
            (false, None)
        }
    };
    ClockInfo {
        boot_id,
        synchronized,
        max_error,
    }
}
