//! Path tests: traceroute with Paris flow ids, MDA multipath discovery, PMTU.
//!
//! Everything here is sans-IO: state machines emit probes as bytes ([`prober::Transmit`]) and
//! ingest parsed answers ([`crate::wire::answer::Answer`]) with timestamps. The socket layer
//! drives any of them through [`ProbeMachine`].

pub mod engine;
pub mod flow;
pub mod hop;
pub mod mda;
pub mod mda_rule;
pub mod pmtu;
pub mod prober;
pub mod rtt;
pub mod runtime;

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
