//! # probe-core
//!
//! The measurement engine behind the `probe` command and agent.
//!
//! The crate is split the way the feature list reads:
//!
//! - [`wire`]: typed views over packet bytes (STAMP, ICMP, probe headers); parse and emit are symmetric.
//! - [`time`]: nanosecond timestamps, NTP conversion and clock-state estimation.
//! - [`stats`]: delay distributions (hdrhistogram), loss/duplicate/reorder, jitter and IPDV.
//! - [`io`]: the thin socket layer (socket2, kernel timestamps, batching, privileges). The only
//!   module with `unsafe`.
//! - [`a2a`]: agent-to-agent tests (STAMP sender and reflector), sans-IO sessions plus tokio glue.
//! - [`control`]: the control plane between probes (QUIC on 49152/udp): identity, pinning,
//!   token access and the versioned message protocol.
//! - [`trace`]: path tests (traceroute, MDA, PMTU), sans-IO state machines plus runtime.
//! - [`dns`]: name resolution on hickory-resolver: forward, reverse (PTR) in bounded batches,
//!   and timed per-server queries.
//! - [`report`]: serde result types shared by the CLI, the agent and library users.
//!
//! Measurement logic is sans-IO: state machines are fed packets and timestamps as values, so the
//! unit tests drive them deterministically without sockets.

pub mod a2a;
pub mod control;
pub mod dns;
pub mod io;
pub mod report;
pub mod stats;
pub mod time;
pub mod trace;
pub mod wire;
