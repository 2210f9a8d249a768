//! probe-lab: the development testbed of probe.
//!
//! * Network-namespace topologies ([`topology`]): `direct`, Docker-like `nat` and `macvlan`,
//!   router `chain`s, an `ecmp` diamond and an `impaired` path, each an RAII value whose
//!   drop deletes its namespaces and kills what runs inside them.
//! * [`Host`]: one namespace, with its addresses, `command()`/`spawn()` for programs
//!   (`ip netns exec`) and `run_in()` for in-process code on a thread inside the namespace.
//! * The userspace impairment hop ([`impair`]), since the kernel has no netem.
//! * Helpers for tests: [`require_root`], nftables counters ([`Host::nft_counter`]) and
//!   small independent probes ([`check`]).
//!
//! Everything needs root (`CAP_NET_ADMIN` and `CAP_SYS_ADMIN`) and the `ip` and `nft` commands.

pub mod background;
pub mod check;
pub mod error;
pub mod host;
pub mod impair;
pub mod netns;
pub mod topology;

pub use background::Background;
pub use error::{Error, Result};
pub use host::{Host, NftCounter};
pub use netns::{cleanup_all, cleanup_stale};

/// Environment variable that turns "skip without root" into a test failure (CI sets it).
pub const REQUIRE_ROOT_ENV: &str = "PROBE_REQUIRE_ROOT_TESTS";

/// Whether tests that need network namespaces can run. Without root it prints
/// `skipping: needs root for network namespaces` and returns `false`, unless
/// `PROBE_REQUIRE_ROOT_TESTS=1` is set, in which case it panics (so CI cannot skip silently).
///
/// # Panics
/// When not root and `PROBE_REQUIRE_ROOT_TESTS=1`.
pub fn require_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var(REQUIRE_ROOT_ENV).as_deref() != Ok("1"),
        "{REQUIRE_ROOT_ENV}=1 but not running as root: network-namespace tests cannot run"
    );
    eprintln!("skipping: needs root for network namespaces");
    false
}
