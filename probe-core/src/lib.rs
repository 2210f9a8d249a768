//! # probe-core
//!
//! The measurement engine behind the `probe` command and agent: agent-to-agent STAMP tests,
//! path tests (traceroute, multipath discovery, path MTU) and DNS, with the statistics behind
//! them. Every test is a tokio `async fn` taking checked options and returning a serde report;
//! the measurement logic underneath is sans-IO, so it runs as well on other socket layers.
//!
//! ## Path tests
//!
//! [`run_trace`], [`run_mda`] and [`run_pmtu`] take [`TraceOptions`] from
//! [`TraceOptions::builder`], which refuses settings that cannot work, and return a
//! [`TraceReport`] (the JSON of `probe trace --json`) or a [`TraceError`] naming the problem.
//! Raw sockets are used when `CAP_NET_RAW` is held, unprivileged ones otherwise.
//!
//! ```no_run
//! use probe_core::trace::Protocol;
//! use probe_core::{TraceOptions, run_trace};
//!
//! # async fn demo() -> Result<(), probe_core::TraceError> {
//! let opts = TraceOptions::builder("192.0.2.1".parse().expect("address"))
//!     .protocol(Protocol::Udp)
//!     .max_ttl(20)
//!     .count(5)
//!     .build()?;
//! let report = run_trace(&opts).await?;
//! println!("{}", serde_json::to_string_pretty(&report).expect("json"));
//! print!("{}", probe_core::report::trace::render_table(&report));
//! # Ok(()) }
//! ```
//!
//! ## Agent-to-agent tests
//!
//! [`run_test`] measures delay, loss and jitter both ways against a peer's STAMP responder
//! (`probe serve`, or [`a2a::runtime::Responder`] in the same program) and returns an
//! [`A2aReport`] in its [`TestOutcome`].
//!
//! ```no_run
//! use probe_core::{A2aOptions, run_test};
//!
//! # async fn demo() -> Result<(), probe_core::A2aError> {
//! let outcome = run_test(A2aOptions::new("192.0.2.7:49153".parse().expect("peer"))).await?;
//! println!("{}", serde_json::to_string(&outcome.report).expect("json"));
//! # Ok(()) }
//! ```
//!
//! ## DNS
//!
//! [`dns::Resolver`] resolves names with the system configuration or given servers, and
//! reverse-resolves addresses in bounded batches.
//!
//! ```no_run
//! use probe_core::dns::{DnsConfig, Family, Resolver};
//!
//! # async fn demo() -> Result<(), probe_core::dns::DnsError> {
//! let resolver = Resolver::new(&DnsConfig::default())?;
//! let addrs = resolver.lookup_host("example.net", Family::Any).await?;
//! let names = resolver.reverse_many(&addrs).await;
//! println!("{addrs:?} {names:?}");
//! # Ok(()) }
//! ```
//!
//! ## Modules
//!
//! - [`trace`]: path tests (traceroute, MDA, PMTU): entry points, options, and the sans-IO
//!   state machines underneath.
//! - [`a2a`]: agent-to-agent tests (STAMP sender and reflector), sans-IO sessions plus tokio
//!   glue.
//! - [`control`]: the control plane between probes (QUIC on 49152/udp): identity, pinning,
//!   token access and the versioned message protocol.
//! - [`dns`]: name resolution on hickory-resolver: forward, reverse (PTR) in bounded batches,
//!   and timed per-server queries; the DNS test of `probe dns` ([`dns::Resolver::run_test`]).
//! - [`http`]: HTTP(S) tests with per-phase timing, proxies (CONNECT for https) and classified
//!   failures ([`http::run_http`]).
//! - [`report`]: serde result types shared by the CLI, the agent and library users.
//! - [`wire`]: typed views over packet bytes (STAMP, ICMP, probe headers). Emitters that only
//!   tests need are behind the `test-util` feature.
//! - [`time`]: nanosecond timestamps, NTP conversion and clock-state estimation.
//! - [`stats`]: delay distributions (hdrhistogram), loss/duplicate/reorder, jitter and IPDV.
//! - [`io`]: the thin socket layer (socket2, kernel timestamps, batching, privileges). The only
//!   module with `unsafe`.

pub mod a2a;
pub mod control;
pub mod dns;
pub mod http;
pub mod io;
pub mod ping;
pub mod report;
pub mod stats;
pub mod time;
pub mod trace;
pub mod wire;

// Agent-to-agent entry points, kept to what exists today (the a2a options are being reworked).
pub use a2a::runtime::{A2aError, A2aOptions, TestOutcome, run_test};
pub use report::A2aReport;

// Path-test entry points.
pub use report::trace::TraceReport;
pub use trace::{
    MdaOptions, MdaOptionsBuilder, PmtuOutcome, TraceError, TraceOptions, TraceOptionsBuilder,
    run_mda, run_pmtu, run_trace,
};
