//! What a path test should do: target, probe shape, timing, sockets. Built with
//! [`TraceOptions::builder`] and [`MdaOptions::builder`], which check the settings.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::trace::flow::{FlowMode, Protocol};
use crate::trace::prober::{ConfigError, ProbeConfig, Setting, check_confidence, check_ttls};

/// Which sockets to send probes with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
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

/// How the probes were actually sent (the report's `privilege`: `raw` or `unprivileged`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
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

/// Settings of a path test: build them with [`TraceOptions::builder`] (or take the defaults
/// with [`TraceOptions::new`]).
///
/// ```
/// use std::time::Duration;
/// use probe_core::trace::{FlowMode, Protocol, TraceOptions};
///
/// let opts = TraceOptions::builder("192.0.2.1".parse()?)
///     .protocol(Protocol::Udp)
///     .mode(FlowMode::Classic)
///     .max_ttl(16)
///     .queries(1)
///     .wait(Duration::from_millis(500))
///     .build()?;
/// assert_eq!(opts.protocol(), Protocol::Udp);
///
/// // Settings that cannot work are refused with a typed error.
/// let err = TraceOptions::builder("192.0.2.1".parse()?).first_ttl(9).max_ttl(4).build();
/// assert!(matches!(err, Err(probe_core::trace::ConfigError::TtlRange { first_ttl: 9, max_ttl: 4 })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct TraceOptions {
    pub(crate) target: IpAddr,
    pub(crate) target_name: Option<String>,
    pub(crate) protocol: Protocol,
    pub(crate) mode: FlowMode,
    pub(crate) first_ttl: u8,
    pub(crate) max_ttl: u8,
    pub(crate) queries: u8,
    pub(crate) count: u32,
    pub(crate) interval: Duration,
    pub(crate) wait: Duration,
    pub(crate) rate_pps: u32,
    pub(crate) port: Option<u16>,
    pub(crate) source_port: Option<u16>,
    pub(crate) source: Option<IpAddr>,
    pub(crate) interface: Option<String>,
    pub(crate) size: u16,
    pub(crate) tos: u8,
    pub(crate) privilege: PrivilegeChoice,
    pub(crate) pmtu: bool,
}

impl TraceOptions {
    /// The defaults for a trace to `target`: ICMP echo (as mtr), Paris, TTLs 1 to 30, 3
    /// queries per hop, 1 round, 1 s wait, 60-byte probes, unpaced, sockets chosen by
    /// privilege, no path MTU.
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

    /// A builder starting from the defaults of [`TraceOptions::new`].
    pub fn builder(target: IpAddr) -> TraceOptionsBuilder {
        TraceOptionsBuilder(TraceOptions::new(target))
    }

    /// The target address.
    pub fn target(&self) -> IpAddr {
        self.target
    }

    /// The name the target was given as, if any.
    pub fn target_name(&self) -> Option<&str> {
        self.target_name.as_deref()
    }

    /// The probe protocol.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Paris or classic flow identity.
    pub fn mode(&self) -> FlowMode {
        self.mode
    }

    /// Whether the path MTU is measured after the trace.
    pub fn pmtu(&self) -> bool {
        self.pmtu
    }

    /// Checks what the state machines and sockets would refuse later: the TTL range, zero
    /// counts, a source of the other address family, a size too small for the headers.
    fn validate(&self) -> Result<(), ConfigError> {
        check_ttls(self.first_ttl, self.max_ttl)?;
        if self.queries == 0 {
            return Err(ConfigError::Zero(Setting::Queries));
        }
        if self.count == 0 {
            return Err(ConfigError::Zero(Setting::Count));
        }
        let src = match self.source {
            Some(src) if src.is_ipv6() != self.target.is_ipv6() => {
                return Err(ConfigError::MixedFamilies {
                    src,
                    dst: self.target,
                });
            }
            Some(src) => src,
            None if self.target.is_ipv6() => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        };
        let mut probe = ProbeConfig::new(self.protocol, src, self.target);
        probe.mode = self.mode;
        probe.size = self.size;
        probe.check_size()
    }
}

/// Builds [`TraceOptions`]; [`TraceOptionsBuilder::build`] checks the settings.
#[derive(Clone, Debug)]
#[must_use]
pub struct TraceOptionsBuilder(TraceOptions);

impl TraceOptionsBuilder {
    /// The name the target was given as, for the report.
    pub fn target_name(mut self, name: impl Into<String>) -> Self {
        self.0.target_name = Some(name.into());
        self
    }

    /// Probe protocol (default ICMP echo).
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.0.protocol = protocol;
        self
    }

    /// Paris (default) or classic flow identity.
    pub fn mode(mut self, mode: FlowMode) -> Self {
        self.0.mode = mode;
        self
    }

    /// First TTL probed (default 1).
    pub fn first_ttl(mut self, ttl: u8) -> Self {
        self.0.first_ttl = ttl;
        self
    }

    /// Highest TTL probed (default 30).
    pub fn max_ttl(mut self, ttl: u8) -> Self {
        self.0.max_ttl = ttl;
        self
    }

    /// Probes per hop per round (default 3).
    pub fn queries(mut self, queries: u8) -> Self {
        self.0.queries = queries;
        self
    }

    /// Rounds (default 1); statistics accumulate like `mtr --report -c`.
    pub fn count(mut self, rounds: u32) -> Self {
        self.0.count = rounds;
        self
    }

    /// Time between round starts (default 1 s).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.0.interval = interval;
        self
    }

    /// How long to wait for an answer before a probe counts as lost (default 1 s).
    pub fn wait(mut self, wait: Duration) -> Self {
        self.0.wait = wait;
        self
    }

    /// Maximum probes per second, 0 for unpaced (the default).
    pub fn rate_pps(mut self, pps: u32) -> Self {
        self.0.rate_pps = pps;
        self
    }

    /// Destination port for UDP and TCP (default 33434 for UDP, 80 for TCP).
    pub fn port(mut self, port: impl Into<Option<u16>>) -> Self {
        self.0.port = port.into();
        self
    }

    /// Base source port for UDP and TCP (default: random for raw sockets, kernel-chosen for
    /// unprivileged UDP).
    pub fn source_port(mut self, port: impl Into<Option<u16>>) -> Self {
        self.0.source_port = port.into();
        self
    }

    /// Source address (default: the one routing picks towards the target).
    pub fn source(mut self, source: impl Into<Option<IpAddr>>) -> Self {
        self.0.source = source.into();
        self
    }

    /// Interface to send through (`SO_BINDTODEVICE`).
    pub fn interface(mut self, name: impl Into<String>) -> Self {
        self.0.interface = Some(name.into());
        self
    }

    /// Whole IP packet size of trace probes in bytes (default 60).
    pub fn size(mut self, bytes: u16) -> Self {
        self.0.size = bytes;
        self
    }

    /// IPv4 TOS / IPv6 traffic class byte (default 0).
    pub fn tos(mut self, tos: u8) -> Self {
        self.0.tos = tos;
        self
    }

    /// Which sockets to use (default [`PrivilegeChoice::Auto`]).
    pub fn privilege(mut self, choice: PrivilegeChoice) -> Self {
        self.0.privilege = choice;
        self
    }

    /// Also measure the path MTU after the trace (default no).
    pub fn pmtu(mut self, on: bool) -> Self {
        self.0.pmtu = on;
        self
    }

    /// Checks the settings: the TTL range, zero queries or rounds, a source of the other
    /// address family, a size too small for the protocol's headers.
    pub fn build(self) -> Result<TraceOptions, ConfigError> {
        self.0.validate()?;
        Ok(self.0)
    }
}

/// Settings specific to multipath discovery ([`crate::trace::run_mda`]): build them
/// with [`MdaOptions::builder`], or take [`MdaOptions::default`].
///
/// ```
/// use probe_core::trace::MdaOptions;
///
/// let mda = MdaOptions::builder().confidence(0.99).max_probes(10_000).build()?;
/// assert_eq!(mda.confidence(), 0.99);
/// assert!(MdaOptions::builder().confidence(95.0).build().is_err());
/// # Ok::<(), probe_core::trace::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MdaOptions {
    pub(crate) confidence: f64,
    pub(crate) max_probes: u64,
    pub(crate) retries: u8,
}

impl Default for MdaOptions {
    /// 95 % confidence, a budget of 3000 probes, 2 attempts per (flow, TTL).
    fn default() -> Self {
        MdaOptions {
            confidence: 0.95,
            max_probes: 3000,
            retries: 2,
        }
    }
}

impl MdaOptions {
    /// A builder starting from the defaults.
    pub fn builder() -> MdaOptionsBuilder {
        MdaOptionsBuilder(MdaOptions::default())
    }

    /// Confidence of the stopping rule, in (0, 1).
    pub fn confidence(&self) -> f64 {
        self.confidence
    }

    /// Probe budget.
    pub fn max_probes(&self) -> u64 {
        self.max_probes
    }

    /// Attempts per (flow, TTL) before a star.
    pub fn retries(&self) -> u8 {
        self.retries
    }
}

/// Builds [`MdaOptions`]; [`MdaOptionsBuilder::build`] checks the settings.
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct MdaOptionsBuilder(MdaOptions);

impl MdaOptionsBuilder {
    /// Confidence of the stopping rule, strictly between 0 and 1 (default 0.95).
    pub fn confidence(mut self, confidence: f64) -> Self {
        self.0.confidence = confidence;
        self
    }

    /// Probe budget (default 3000).
    pub fn max_probes(mut self, probes: u64) -> Self {
        self.0.max_probes = probes;
        self
    }

    /// Attempts per (flow, TTL) before a star (default 2).
    pub fn retries(mut self, attempts: u8) -> Self {
        self.0.retries = attempts;
        self
    }

    /// Checks the settings: confidence in (0, 1), a budget and retries of at least 1.
    pub fn build(self) -> Result<MdaOptions, ConfigError> {
        check_confidence(self.0.confidence)?;
        if self.0.max_probes == 0 {
            return Err(ConfigError::Zero(Setting::MaxProbes));
        }
        if self.0.retries == 0 {
            return Err(ConfigError::Zero(Setting::Retries));
        }
        Ok(self.0)
    }
}

#[cfg(test)]
#[path = "options_tests.rs"]
mod tests;
