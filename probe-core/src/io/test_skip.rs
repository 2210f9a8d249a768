//! Test-only: how capability-gated unit tests skip, and how CI forbids it.
//!
//! A test that needs a capability the process may lack (raw sockets, a ping group range) asks
//! [`require`] first. Without the capability it prints why and skips, unless
//! `PROBE_REQUIRE_ROOT_TESTS=1` is set (`scripts/test-all.sh` sets it when run as root, as on
//! CI): then the test fails, so nothing is skipped silently. The integration tests follow the
//! same rule through `probe_lab::require_root`.

use std::fmt::Display;

/// The variable that turns a skip into a failure (the same one `probe-lab` reads).
pub(crate) const REQUIRE_ROOT_ENV: &str = "PROBE_REQUIRE_ROOT_TESTS";

/// Whether `PROBE_REQUIRE_ROOT_TESTS=1` is set.
pub(crate) fn skips_forbidden() -> bool {
    std::env::var(REQUIRE_ROOT_ENV).as_deref() == Ok("1")
}

/// Whether a test can run: `true` when it has what it needs (`available`). Otherwise it prints
/// `skipped: {why}` and returns `false`, or panics when skips are forbidden.
///
/// # Panics
/// When `available` is false and `PROBE_REQUIRE_ROOT_TESTS=1` is set.
pub(crate) fn require(available: bool, why: impl Display) -> bool {
    decide(available, &why, skips_forbidden())
}

fn decide(available: bool, why: &dyn Display, forbidden: bool) -> bool {
    if available {
        return true;
    }
    assert!(
        !forbidden,
        "{REQUIRE_ROOT_ENV}=1 but this test cannot run: {why}"
    );
    eprintln!("skipped: {why}");
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn available_runs_whatever_the_variable() {
        assert!(decide(true, &"unused", true));
        assert!(decide(true, &"unused", false));
    }

    #[test]
    fn missing_capability_skips_when_allowed() {
        assert!(!decide(false, &"no CAP_NET_RAW", false));
    }

    #[test]
    #[should_panic(
        expected = "PROBE_REQUIRE_ROOT_TESTS=1 but this test cannot run: no CAP_NET_RAW"
    )]
    fn missing_capability_fails_when_skips_are_forbidden() {
        decide(false, &"no CAP_NET_RAW", true);
    }

    #[test]
    fn require_reads_the_variable() {
        // The suite runs with and without the variable; `require` must agree with it.
        let forbidden = skips_forbidden();
        let outcome = std::panic::catch_unwind(|| require(false, "simulated missing capability"));
        assert_eq!(outcome.is_err(), forbidden);
        assert_eq!(outcome.ok(), (!forbidden).then_some(false));
    }
}
