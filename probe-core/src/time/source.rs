//! Where a timestamp came from.

use serde::{Deserialize, Serialize};

/// Where one timestamp (or a report's timestamps) came from; serialized `"kernel"` / `"user"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimestampSource {
    /// Taken by the kernel when the packet passed through the stack (`SO_TIMESTAMPING`
    /// software timestamps).
    Kernel,
    /// Read from `CLOCK_REALTIME` in user space around the system call; it includes
    /// scheduling and wake-up delay.
    #[default]
    User,
}
