//! What one end knows about its clock, and how two ends' clocks relate ([`ClockMode`]).
//!
//! Reading the facts is IO (the kernel boot id from `/proc/sys/kernel/random/boot_id`, the
//! synchronization state and maximum error from `adjtimex`); this module only models them.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ErrorEstimate;

/// How one-way delays relate the two ends' clocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockMode {
    /// Both ends run on one kernel (same boot id): one clock, one-way delays are exact.
    Shared,
    /// Both clocks are synchronized to UTC externally: one-way delays are taken as measured,
    /// within the sum of both ends' maximum errors.
    Synced,
    /// The offset between the clocks is estimated from the test's own timestamps.
    Estimated,
}

impl fmt::Display for ClockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClockMode::Shared => "shared",
            ClockMode::Synced => "synced",
            ClockMode::Estimated => "estimated",
        })
    }
}

/// A kernel boot id: 16 random bytes the kernel draws at boot, the same in every container and
/// network namespace running on that kernel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BootId(pub [u8; 16]);

/// A boot id text that is not a UUID.
#[derive(Debug, thiserror::Error)]
#[error("invalid boot id {text:?}: {source}")]
pub struct BootIdError {
    text: String,
    source: uuid::Error,
}

impl BootId {
    /// Parses the text of `/proc/sys/kernel/random/boot_id` (a UUID, trailing newline allowed).
    pub fn parse(text: &str) -> Result<Self, BootIdError> {
        let trimmed = text.trim();
        match uuid::Uuid::try_parse(trimmed) {
            Ok(u) => Ok(BootId(*u.as_bytes())),
            Err(source) => Err(BootIdError {
                text: trimmed.chars().take(64).collect(),
                source,
            }),
        }
    }

    /// Whether this is the all-zero id, which stands for "unknown".
    pub fn is_unknown(&self) -> bool {
        self.0 == [0; 16]
    }
}

impl fmt::Display for BootId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        uuid::Uuid::from_bytes(self.0).hyphenated().fmt(f)
    }
}

/// What one end knows about its own clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ClockInfo {
    /// The kernel boot id (all zeros when unknown).
    pub boot_id: BootId,
    /// Whether the clock is synchronized to UTC by an external source (NTP, PTP).
    pub synchronized: bool,
    /// The kernel's maximum error estimate; `None` when unknown.
    pub max_error: Option<Duration>,
}

impl ClockInfo {
    /// The STAMP Error Estimate field for timestamps of this clock (NTP format). Its S bit is set
    /// only when the clock really is synchronized.
    pub fn error_estimate(&self) -> ErrorEstimate {
        ErrorEstimate::from_error(self.synchronized, self.max_error)
    }

    /// Whether this clock and `peer` are provably one clock: both boot ids known and equal.
    pub fn shares_kernel_with(&self, peer: &ClockInfo) -> bool {
        !self.boot_id.is_unknown() && self.boot_id == peer.boot_id
    }
}

/// What the sender learned about the reflector's clock during a test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerClock {
    /// The reflector answered the clock TLV with its own facts.
    Known(ClockInfo),
    /// Only the reflector's Error Estimates were seen: whether every one had the S bit set, and
    /// the largest error they announced.
    ErrorEstimates {
        /// Every reply's S bit was set.
        all_synchronized: bool,
        /// Largest announced error; `None` when some estimate was invalid.
        max_error: Option<Duration>,
    },
    /// Nothing was heard from the reflector.
    Unknown,
}

/// The clock mode and the error bound of one-way delays that `local` and `peer` allow, before
/// any offset estimation: `Shared` (error zero) when both run on one kernel, `Synced` (error the
/// sum of both maximum errors, `None` if one is unknown) when both are synchronized, otherwise
/// `Estimated` (error from the estimator, so `None` here).
pub fn decide_mode(local: &ClockInfo, peer: &PeerClock) -> (ClockMode, Option<Duration>) {
    let (peer_synced, peer_error) = match peer {
        PeerClock::Known(p) if local.shares_kernel_with(p) => {
            return (ClockMode::Shared, Some(Duration::ZERO));
        }
        PeerClock::Known(p) => (p.synchronized, p.max_error),
        PeerClock::ErrorEstimates {
            all_synchronized,
            max_error,
        } => (*all_synchronized, *max_error),
        PeerClock::Unknown => (false, None),
    };
    if local.synchronized && peer_synced {
        let error = local.max_error.zip(peer_error).map(|(a, b)| a + b);
        (ClockMode::Synced, error)
    } else {
        (ClockMode::Estimated, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "5f0c2a3e-9b1d-4c7e-8a2f-0123456789ab\n";

    #[test]
    fn boot_id_parse_and_print() {
        let id = BootId::parse(TEXT).expect("uuid");
        assert_eq!(id.0[0], 0x5f);
        assert_eq!(id.0[15], 0xab);
        assert_eq!(id.to_string(), TEXT.trim());
        assert!(BootId::parse("not-a-uuid").is_err());
        assert!(BootId::default().is_unknown());
    }

    #[test]
    fn mode_serializes_lower_case() {
        let json =
            serde_json::to_string(&[ClockMode::Shared, ClockMode::Synced, ClockMode::Estimated])
                .expect("json");
        assert_eq!(json, r#"["shared","synced","estimated"]"#);
        let back: ClockMode = serde_json::from_str("\"synced\"").expect("parse");
        assert_eq!(back, ClockMode::Synced);
    }

    #[test]
    fn deciding_the_mode() {
        let id = BootId::parse(TEXT).expect("uuid");
        let local = ClockInfo {
            boot_id: id,
            synchronized: true,
            max_error: Some(Duration::from_millis(2)),
        };
        let same = PeerClock::Known(ClockInfo {
            synchronized: false,
            max_error: None,
            ..local
        });
        assert_eq!(
            decide_mode(&local, &same),
            (ClockMode::Shared, Some(Duration::ZERO))
        );
        let other = ClockInfo {
            boot_id: BootId([1; 16]),
            synchronized: true,
            max_error: Some(Duration::from_millis(3)),
        };
        assert_eq!(
            decide_mode(&local, &PeerClock::Known(other)),
            (ClockMode::Synced, Some(Duration::from_millis(5)))
        );
        let unsynced = ClockInfo {
            synchronized: false,
            ..other
        };
        assert_eq!(
            decide_mode(&local, &PeerClock::Known(unsynced)),
            (ClockMode::Estimated, None)
        );
        let by_estimates = PeerClock::ErrorEstimates {
            all_synchronized: true,
            max_error: Some(Duration::from_millis(1)),
        };
        assert_eq!(
            decide_mode(&local, &by_estimates),
            (ClockMode::Synced, Some(Duration::from_millis(3)))
        );
        assert_eq!(
            decide_mode(&local, &PeerClock::Unknown),
            (ClockMode::Estimated, None)
        );
        // Two unknown boot ids are not proof of one kernel.
        let anon = ClockInfo::default();
        assert_eq!(
            decide_mode(&anon, &PeerClock::Known(anon)),
            (ClockMode::Estimated, None)
        );
    }

    #[test]
    fn error_estimate_follows_sync_state() {
        let mut c = ClockInfo {
            synchronized: false,
            max_error: Some(Duration::from_millis(1)),
            ..ClockInfo::default()
        };
        assert!(!c.error_estimate().synchronized());
        c.synchronized = true;
        assert!(c.error_estimate().synchronized());
        assert!(c.error_estimate().error_ns().expect("valid") >= 1_000_000);
    }
}
