//! Errors of the path-test runtime, each naming the problem and, where there is one, the fix.

use std::io;
use std::net::IpAddr;

use crate::dns::{DnsError, Family};
use crate::io::IoError;
use crate::trace::prober::ConfigError;

/// Why a path test could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// Opening or configuring sockets failed (the message names the capability or sysctl).
    #[error(transparent)]
    Io(#[from] IoError),
    /// The settings are invalid.
    #[error("invalid trace settings: {0}")]
    Config(#[from] ConfigError),
    /// TCP probes need raw sockets.
    #[error(
        "TCP probes need CAP_NET_RAW (raw sockets): run as root, grant it with `setcap \
         cap_net_raw+ep $(command -v probe)`, in Docker use `--cap-add NET_RAW` — or trace \
         without privileges with --proto icmp or --proto udp"
    )]
    TcpNeedsRaw,
    /// No route or no usable source address towards the target.
    #[error("no route to {target}: {source} (check `ip route get {target}`)")]
    NoRoute {
        /// The target.
        target: IpAddr,
        /// The OS error.
        source: io::Error,
    },
    /// The local stack refused to send a probe.
    #[error("sending a probe to {target} failed: {source}")]
    Send {
        /// The target.
        target: IpAddr,
        /// The OS error.
        source: io::Error,
    },
    /// A probe is larger than the outgoing interface allows.
    #[error("a {size}-byte probe does not fit the outgoing interface MTU: use a smaller --size")]
    TooBig {
        /// Probe size in bytes.
        size: u16,
    },
    /// Reading answers failed.
    #[error("receiving answers failed: {0}")]
    Recv(io::Error),
    /// The name resolved to no address of the family asked for.
    #[error("`{name}` has no {} address", .family.describe())]
    NoAddress {
        /// The name.
        name: String,
        /// The family asked for.
        family: Family,
    },
    /// The target name did not resolve (or the resolver could not be set up).
    #[error(transparent)]
    Dns(#[from] DnsError),
}
