//! Many-target ping (`probe ping`): ICMP echo, UDP (closed port or STAMP reflector) or TCP SYN
//! to thousands of targets at once, from one set of sockets per address family.
//!
//! - [`Ping`]: the sans-IO state machine. It implements [`crate::trace::ProbeMachine`], so the
//!   path-test driver runs it on the same sockets as traceroute. Every target has its own
//!   schedule (`interval` between its probes); one token bucket caps the rate over all targets.
//!   Probe ids are unique among the probes in flight, so an answer is matched by (target, id):
//!   the echo sequence number, the UDP checksum or the TCP sequence number.
//! - [`RttSummary`]: a constant-size per-target summary (exact min/max/mean/stddev, median).
//! - [`runtime`]: resolution, sockets and the run ([`runtime::run_ping`]).
//! - [`parse_target_list`]: the `-f FILE` format.
//!
//! ```
//! use std::net::IpAddr;
//! use probe_core::ping::{Ping, PingConfig, PingTarget};
//! use probe_core::time::Nanos;
//! use probe_core::trace::{ProbeMachine, Protocol};
//! let addr: IpAddr = "192.0.2.7".parse().unwrap();
//! let target = PingTarget { name: "a".into(), addr, src: "192.0.2.1".parse().unwrap() };
//! let mut ping = Ping::new(PingConfig::new(Protocol::Icmp), vec![target], Nanos(1)).unwrap();
//! let mut buf = Vec::new();
//! let tx = ping.poll_transmit(Nanos(1), &mut buf).unwrap();
//! assert_eq!(tx.probe.dst, addr);
//! ```

mod config;
mod machine;
mod options;
pub mod rate;
pub mod runtime;
pub mod summary;
mod targets;

pub use config::{PingConfig, PingConfigBuilder, PingConfigError};
pub use machine::{Ping, PingTarget, PortState, TargetStats};
pub use rate::TokenBucket;
pub use summary::RttSummary;
pub use targets::{TargetError, is_valid_target, parse_target_list};
