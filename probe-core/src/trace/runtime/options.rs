//! What a path test should do: target, probe shape, timing, sockets.

use std::net::IpAddr;
use std::time::Duration;

use crate::trace::flow::{FlowMode, Protocol};

/// Which sockets to send probes with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PrivilegeChoice {
    /// Raw sockets when `CAP_NET_RAW` is held (and they open), else the unprivileged means.
    #[default]
    Auto,
    /// Raw sockets or an error naming the missing capability.
    Raw,
    /// ICMP datagram ("ping") sockets and UDP sockets with `IP_RECVERR`, even with
    /// `CAP_NET_RAW`.
    Unprivileged,
}

/// How the probes were actually sent (the report's `privilege`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Privilege {
    /// Crafted packets on raw sockets: every protocol, full ICMP answers (quotes, MPLS).
    Raw,
    /// Ping sockets (ICMP) or UDP sockets reading ICMP errors from their error queue: no
    /// `CAP_NET_RAW` needed, but no TCP, no MPLS labels and no quoted-header details.
    Unprivileged,
}

impl Privilege {
    /// The name in reports: `raw` or `unprivileged`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Privilege::Raw => "raw",
            Privilege::Unprivileged => "unprivileged",
        }
    }
}

/// Settings of a path test. [`TraceOptions::new`] gives traceroute-like defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceOptions {
    /// The target address.
    pub target: IpAddr,
    /// The name the target was given as (for the report), if any.
    pub target_name: Option<String>,
    /// Probe protocol (default ICMP echo, as mtr).
    pub protocol: Protocol,
    /// Paris (default) or classic flow identity.
    pub mode: FlowMode,
    /// First TTL probed (default 1).
    pub first_ttl: u8,
    /// Highest TTL probed (default 30).
    pub max_ttl: u8,
    /// Probes per hop per round (default 3).
    pub queries: u8,
    /// Rounds (default 1); statistics accumulate like `mtr --report -c`.
    pub count: u32,
    /// Time between round starts (default 1 s).
    pub interval: Duration,
    /// How long to wait for an answer before a probe counts as lost (default 1 s).
    pub wait: Duration,
    /// Maximum probes per second, 0 for unpaced (default 0).
    pub rate_pps: u32,
    /// Destination port for UDP and TCP (default 33434 for UDP, 80 for TCP).
    pub port: Option<u16>,
    /// Base source port for UDP and TCP (default: random for raw sockets, kernel-chosen for
    /// unprivileged UDP).
    pub source_port: Option<u16>,
    /// Source address (default: the one routing picks towards the target).
    pub source: Option<IpAddr>,
    /// Interface to send through (`SO_BINDTODEVICE`).
    pub interface: Option<String>,
    /// Whole IP packet size of trace probes in bytes (default 60).
    pub size: u16,
    /// IPv4 TOS / IPv6 traffic class byte (default 0).
    pub tos: u8,
    /// Which sockets to use.
    pub privilege: PrivilegeChoice,
    /// Also measure the path MTU after the trace ([`crate::trace::runtime::run_trace`]).
    pub pmtu: bool,
}

impl TraceOptions {
    /// Defaults for a trace to `target`.
    pub fn new(target: IpAddr) -> Self {
        TraceOptions {
            target,
            target_name: None,
            protocol: Protocol::Icmp,
            mode: FlowMode::Paris,
            first_ttl: 1,
            max_ttl: 30,
            queries: 3,
            count: 1,
            interval: Duration::from_secs(1),
            wait: Duration::from_secs(1),
            rate_pps: 0,
            port: None,
            source_port: None,
            source: None,
            interface: None,
            size: 60,
            tos: 0,
            privilege: PrivilegeChoice::Auto,
            pmtu: false,
        }
    }
}

/// Settings specific to multipath discovery ([`crate::trace::runtime::run_mda`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MdaOptions {
    /// Confidence of the stopping rule, in (0, 1) (default 0.95).
    pub confidence: f64,
    /// Probe budget (default 3000).
    pub max_probes: u64,
    /// Attempts per (flow, TTL) before a star (default 2).
    pub retries: u8,
}

impl Default for MdaOptions {
    fn default() -> Self {
        MdaOptions {
            confidence: 0.95,
            max_probes: 3000,
            retries: 2,
        }
    }
}
