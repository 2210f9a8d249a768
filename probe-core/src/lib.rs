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
//! (`probe serve`, or a [`Responder`] in the same program) and returns an [`A2aReport`] (the
//! JSON of `probe a2a --json`) in its [`TestOutcome`]. It takes [`A2aOptions`] from
//! [`A2aOptions::builder`], which refuses settings that cannot work with an
//! [`A2aConfigError`]; a test that cannot run fails with an [`A2aError`].
//!
//! ```no_run
//! use std::time::Duration;
//! use probe_core::a2a::{Limit, Pace};
//! use probe_core::{A2aOptions, run_test};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let (reports, mut incoming) = tokio::sync::mpsc::channel(16);
//! let opts = A2aOptions::builder("192.0.2.7:49153".parse()?)
//!     .limit(Limit::Duration(Duration::from_secs(10)))
//!     .pace(Pace::Interval(Duration::from_millis(20)))
//!     .interval_reports(Duration::from_secs(1), reports)
//!     .build()?;
//! let show = async {
//!     while let Some(i) = incoming.recv().await {
//!         println!("{:.0} s: {} of {} answered", i.end_s, i.received, i.sent);
//!     }
//! };
//! let (outcome, ()) = tokio::join!(run_test(opts), show);
//! println!("{}", serde_json::to_string(&outcome?.report)?);
//! # Ok(()) }
//! ```
//!
//! A [`Responder`] answers STAMP (what `probe serve` runs) until its shutdown future
//! completes:
//!
//! ```no_run
//! use probe_core::a2a::ReflectorConfig;
//! use probe_core::{Responder, ResponderConfig};
//!
//! # async fn demo() -> Result<(), probe_core::A2aError> {
//! let listen = "[::]:49153".parse().expect("address");
//! let responder = Responder::bind(&ResponderConfig::new([listen], ReflectorConfig::default())?)?;
//! println!("listening on {:?}", responder.local_addrs());
//! let counters = responder.run(async { tokio::signal::ctrl_c().await.ok(); }).await?;
//! println!("reflected {}", counters.reflected);
//! # Ok(()) }
//! ```
//!
//! ## DNS
//!
//! [`Resolver`] resolves names with the system configuration or given servers
//! ([`DnsConfig`]), reverse-resolves addresses in bounded batches, and times one query at
//! each server; failures are [`DnsError`]s.
//!
//! ```no_run
//! use probe_core::dns::{Family, RecordType};
//! use probe_core::{DnsConfig, Resolver};
//!
//! # async fn demo() -> Result<(), probe_core::DnsError> {
//! let resolver = Resolver::new(&DnsConfig::default())?;
//! let addrs = resolver.lookup_host("example.net", Family::Any).await?;
//! let names = resolver.reverse_many(&addrs).await;
//! println!("{addrs:?} {names:?}");
//!
//! let servers = vec![probe_core::dns::parse_server("[2001:db8::53]")?];
//! let each = Resolver::new(&DnsConfig::custom(servers))?;
//! for r in each.query_each("example.net", RecordType::AAAA).await? {
//!     println!("{} in {:?}: {:?}", r.server, r.elapsed, r.outcome.map(|a| a.rcode));
//! }
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

#![warn(unreachable_pub)]

pub mod a2a;
pub mod control;
pub mod dns;
pub mod http;
pub mod io;
pub mod ping;
pub mod quic_test;
pub mod report;
pub mod stats;
pub mod tcp;
pub mod time;
pub mod trace;
pub mod wire;

// Agent-to-agent entry points.
pub use a2a::runtime::{
    A2aError, A2aOptions, A2aOptionsBuilder, ConfigError as A2aConfigError, Responder,
    ResponderConfig, TestOutcome, run_test, run_test_until,
};
pub use report::{A2aReport, IntervalReport};

// DNS entry points.
pub use dns::{DnsConfig, DnsError, Resolver};

// Path-test entry points.
pub use report::trace::TraceReport;
pub use trace::{
    MdaOptions, MdaOptionsBuilder, PmtuOutcome, TraceError, TraceOptions, TraceOptionsBuilder,
    run_mda, run_pmtu, run_trace,
};
