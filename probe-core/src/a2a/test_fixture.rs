//! What the deterministic session and multiplexer tests share: a fixed start time, units,
//! a local clock, and a sender session with short hello and give-up times.

use std::time::Duration;

use super::{Limit, Pace, SenderConfig, SenderSession, SessionConfig};
use crate::time::{BootId, ClockInfo};

/// The tests' start time, ns since the UNIX epoch.
pub(super) const T0: u64 = 1_700_000_000_000_000_000;
/// One millisecond, ns.
pub(super) const MS: u64 = 1_000_000;
/// One microsecond, ns.
pub(super) const US: u64 = 1_000;

/// The local clock: a fixed boot id, not synchronized.
pub(super) fn clock() -> ClockInfo {
    ClockInfo {
        boot_id: BootId([3; 16]),
        synchronized: false,
        max_error: None,
    }
}

/// A sender session `ssid` with three hellos 200 ms apart, a 500 ms wait and a 2 s give-up.
pub(super) fn test_session(
    ssid: u16,
    pace: Pace,
    limit: Limit,
    report_interval: Option<Duration>,
) -> SenderSession {
    let mut sc = SenderConfig::new("sim", ssid);
    sc.clock = clock();
    let cfg = SessionConfig::builder()
        .pace(pace)
        .limit(limit)
        .hellos(3)
        .hello_interval(Duration::from_millis(200))
        .wait(Duration::from_millis(500))
        .no_answer_timeout(Duration::from_secs(2))
        .report_interval(report_interval)
        .build()
        .expect("valid session settings");
    SenderSession::new(sc, cfg).expect("valid session")
}
