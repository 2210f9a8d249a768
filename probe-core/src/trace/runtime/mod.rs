//! The path-test runtime: sockets and tokio around the sans-IO [`Trace`](super::Trace),
//! [`Mda`](super::Mda) and [`Pmtu`](super::Pmtu) state machines.
//!
//! - [`run_trace`]: traceroute, all TTLs in parallel, Paris or classic, rounds with per-hop
//!   statistics, optional path MTU.
//! - [`run_mda`]: multipath discovery (every responder per hop, links between hops).
//! - [`run_pmtu`]: path MTU discovery alone.
//! - [`resolve_target`]: a name or address to the target address; [`name_hops`]: reverse
//!   DNS names of the responders (batched, under one deadline).
//!
//! With `CAP_NET_RAW` probes are crafted on raw sockets (ICMP, UDP, TCP; full ICMP answers with
//! quotes and MPLS labels). Without it ICMP goes through ping sockets and UDP through UDP
//! sockets that read ICMP errors from their error queue; the report says which
//! (`privilege`). Answers carry kernel receive timestamps and probes kernel transmit
//! timestamps where the kernel provides them.
//!
//! ```no_run
//! # async fn demo() -> Result<(), probe_core::trace::runtime::TraceError> {
//! use probe_core::dns::{DnsConfig, Family};
//! use probe_core::trace::runtime::{TraceOptions, resolve_target, run_trace};
//! let target = resolve_target("192.0.2.1", Family::Any, &DnsConfig::default()).await?;
//! let report = run_trace(&TraceOptions::new(target)).await?;
//! print!("{}", probe_core::report::trace::render_table(&report));
//! # Ok(()) }
//! ```

pub(crate) mod driver;
mod error;
mod options;
mod run;
mod sockets;
pub(crate) mod transport;

pub use error::TraceError;
pub use options::{MdaOptions, Privilege, PrivilegeChoice, TraceOptions};
pub use run::{name_hops, resolve_target, run_mda, run_pmtu, run_trace};
