//! Path tests: traceroute with Paris flow ids, MDA multipath discovery, PMTU.
//!
//! # Running a path test
//!
//! - [`run_trace`]: traceroute, all TTLs in parallel, Paris or classic, rounds with per-hop
//!   statistics, optional path MTU.
//! - [`run_mda`]: multipath discovery (every responder per hop, links between hops).
//! - [`run_pmtu`]: path MTU discovery alone.
//! - [`resolve_target`]: a name or address to the target address; [`name_hops`]: reverse
//!   DNS names of the responders (batched, under one deadline).
//!
//! Settings come from [`TraceOptions::builder`] and [`MdaOptions::builder`], which refuse
//! settings that cannot work with a [`ConfigError`]; results are
//! [`TraceReport`](crate::report::trace::TraceReport)s; failures are [`TraceError`]s.
//!
//! With `CAP_NET_RAW` probes are crafted on raw sockets (ICMP, UDP, TCP; full ICMP answers with
//! quotes and MPLS labels). Without it ICMP goes through ping sockets and UDP through UDP
//! sockets that read ICMP errors from their error queue; the report says which
//! ([`Privilege`]). Answers carry kernel receive timestamps and probes kernel transmit
//! timestamps where the kernel provides them.
//!
//! ```no_run
//! use probe_core::dns::{DnsConfig, Family};
//! use probe_core::trace::{Protocol, TraceOptions, resolve_target, run_trace};
//!
//! # async fn demo() -> Result<(), probe_core::trace::TraceError> {
//! let target = resolve_target("192.0.2.1", Family::Any, &DnsConfig::default()).await?;
//! let opts = TraceOptions::builder(target).protocol(Protocol::Udp).build()?;
//! let report = run_trace(&opts).await?;
//! print!("{}", probe_core::report::trace::render_table(&report));
//! # Ok(()) }
//! ```
//!
//! # Sans-IO state machines
//!
//! Underneath, [`Trace`], [`Mda`] and [`Pmtu`] are sans-IO: they emit probes as bytes
//! ([`Transmit`]) and ingest parsed answers ([`crate::wire::answer::Answer`]) with timestamps,
//! all through [`ProbeMachine`], so they can be driven by other socket layers or by a
//! simulator.

mod engine;
pub(crate) mod flow;
mod hop;
mod mda;
mod mda_rule;
mod pmtu;
mod prober;
mod rtt;
pub(crate) mod runtime;

#[cfg(test)]
mod sim;

use crate::time::Nanos;
use crate::wire::answer::Answer;

pub use engine::{Trace, TraceConfig};
pub use flow::{FlowId, FlowMode, ProbeId, Protocol};
pub use mda::{Mda, MdaConfig};
pub use pmtu::{Pmtu, PmtuConfig, PmtuOutcome};
pub use prober::{ConfigError, EmitLayer, ProbeConfig, Setting, Transmit};
pub use runtime::{
    MdaOptions, MdaOptionsBuilder, Privilege, PrivilegeChoice, TraceError, TraceOptions,
    TraceOptionsBuilder, name_hops, resolve_target, run_mda, run_pmtu, run_trace,
};

/// The driving interface shared by the path-test state machines (trace, MDA, PMTU).
pub trait ProbeMachine {
    /// The next probe due at `now`, written into `buf` (replacing its contents).
    fn poll_transmit(&mut self, now: Nanos, buf: &mut Vec<u8>) -> Option<Transmit>;
    /// When to call [`ProbeMachine::handle_timeout`] / [`ProbeMachine::poll_transmit`] next.
    fn poll_timeout(&self) -> Option<Nanos>;
    /// Lets time pass: expired probes count as lost.
    fn handle_timeout(&mut self, now: Nanos);
    /// Ingests an answer received at `rx`; whether it matched one of our probes.
    fn handle_answer(&mut self, answer: &Answer, rx: Nanos) -> bool;
    /// Whether the test is over.
    fn is_done(&self) -> bool;
    /// Replaces a probe's send time with the kernel transmit timestamp.
    fn set_sent_time(&mut self, id: ProbeId, tx: Nanos);
}

impl ProbeMachine for Trace {
    fn poll_transmit(&mut self, now: Nanos, buf: &mut Vec<u8>) -> Option<Transmit> {
        Trace::poll_transmit(self, now, buf)
    }
    fn poll_timeout(&self) -> Option<Nanos> {
        Trace::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: Nanos) {
        Trace::handle_timeout(self, now);
    }
    fn handle_answer(&mut self, answer: &Answer, rx: Nanos) -> bool {
        Trace::handle_answer(self, answer, rx)
    }
    fn is_done(&self) -> bool {
        Trace::is_done(self)
    }
    fn set_sent_time(&mut self, id: ProbeId, tx: Nanos) {
        Trace::set_sent_time(self, id, tx);
    }
}
