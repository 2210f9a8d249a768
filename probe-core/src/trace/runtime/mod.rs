//! The path-test runtime: sockets and tokio around the sans-IO [`Trace`](super::Trace),
//! [`Mda`](super::Mda) and [`Pmtu`](super::Pmtu) state machines. Its public items are
//! re-exported from [`crate::trace`], which documents them.

pub(crate) mod driver;
mod error;
mod options;
mod run;
mod sockets;
pub(crate) mod transport;

pub use error::TraceError;
pub use options::{
    MdaOptions, MdaOptionsBuilder, Privilege, PrivilegeChoice, TraceOptions, TraceOptionsBuilder,
};
pub use run::{name_hops, resolve_target, run_mda, run_pmtu, run_trace};
