//! [`PingConfig`]: how a ping run looks (protocol, count, timing, rate, probe shape), built
//! with [`PingConfig::builder`], which checks it.

use std::net::IpAddr;
use std::time::Duration;

use super::rate::TokenBucket;
use crate::trace::{EmitLayer, Protocol};

/// A ping configuration the machine refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PingConfigError {
    /// `count` is 0.
    #[error("the probe count per target must be at least 1")]
    ZeroCount,
    /// A run without a target.
    #[error("no target: give at least one host name or address")]
    NoTargets,
    /// The payload size is out of range.
    #[error("a payload of {size} bytes is out of range: give 2 to 65000 bytes (--size)")]
    Size {
        /// The size asked for.
        size: u16,
    },
    /// A target and our source address are of different address families.
    #[error("source {src} and target {dst} are of different address families")]
    MixedFamilies {
        /// Source.
        src: IpAddr,
        /// Target.
        dst: IpAddr,
    },
}

/// Largest payload: the IPv6 header and the L4 header still fit a 16-bit packet size.
pub(super) const MAX_PAYLOAD: u16 = 65_000;

/// How a ping run looks: fping-like defaults ([`PingConfig::new`]) or built with
/// [`PingConfig::builder`], which checks the settings.
///
/// ```
/// use std::time::Duration;
/// use probe_core::ping::{PingConfig, PingConfigError};
/// use probe_core::trace::Protocol;
///
/// let c = PingConfig::builder(Protocol::Udp)
///     .count(5)
///     .interval(Duration::from_millis(200))
///     .dst_port(49153)
///     .build()?;
/// assert_eq!((c.count(), c.dst_port()), (5, 49153));
/// let err = PingConfig::builder(Protocol::Icmp).size(1).build();
/// assert_eq!(err.unwrap_err(), PingConfigError::Size { size: 1 });
/// # Ok::<(), PingConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PingConfig {
    pub(super) protocol: Protocol,
    pub(super) count: u32,
    pub(super) interval: Duration,
    pub(super) timeout: Duration,
    pub(super) rate_pps: u32,
    pub(super) burst: u32,
    pub(super) size: u16,
    pub(super) tos: u8,
    pub(super) dst_port: u16,
    pub(super) src_port: u16,
    pub(super) icmp_ident: u16,
    pub(super) tcp_nonce: u16,
    pub(super) emit: EmitLayer,
    pub(super) per_probe: bool,
}

impl PingConfig {
    /// Defaults for `protocol`: 1 probe per target, 1 s apart, 1 s timeout, 1000 probes/s
    /// over all targets, 56-byte payload, port 33434 (UDP) or 80 (TCP).
    pub fn new(protocol: Protocol) -> Self {
        PingConfig {
            protocol,
            count: 1,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            rate_pps: 1000,
            burst: TokenBucket::default_burst(1000),
            size: 56,
            tos: 0,
            dst_port: if protocol == Protocol::Tcp { 80 } else { 33434 },
            src_port: 40000,
            icmp_ident: 0x7072,
            tcp_nonce: 0x7072,
            emit: EmitLayer::L4,
            per_probe: false,
        }
    }

    /// A builder starting from the defaults of [`PingConfig::new`].
    pub fn builder(protocol: Protocol) -> PingConfigBuilder {
        PingConfigBuilder(PingConfig::new(protocol))
    }

    /// Checks what the machine cannot run: a count of 0, a payload out of range.
    pub(super) fn validate(&self) -> Result<(), PingConfigError> {
        if self.count == 0 {
            return Err(PingConfigError::ZeroCount);
        }
        if (self.size < 2 && self.protocol != Protocol::Tcp) || self.size > MAX_PAYLOAD {
            return Err(PingConfigError::Size { size: self.size });
        }
        Ok(())
    }

    /// Probe protocol: ICMP echo, UDP (closed port or STAMP reflector) or TCP SYN.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Probes per target.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Time between two probes to the same target.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// How long to wait for an answer before a probe counts as lost.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Probes per second over all targets, 0 for unpaced.
    pub fn rate_pps(&self) -> u32 {
        self.rate_pps
    }

    /// Token bucket depth of the global rate.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// Payload bytes after the ICMP or UDP header.
    pub fn size(&self) -> u16 {
        self.size
    }

    /// IPv4 TOS / IPv6 traffic class byte (DSCP << 2).
    pub fn tos(&self) -> u8 {
        self.tos
    }

    /// Destination port of UDP and TCP probes.
    pub fn dst_port(&self) -> u16 {
        self.dst_port
    }

    /// Source port of UDP and TCP probes.
    pub fn src_port(&self) -> u16 {
        self.src_port
    }

    /// ICMP echo identifier.
    pub fn icmp_ident(&self) -> u16 {
        self.icmp_ident
    }

    /// High 16 bits of TCP sequence numbers.
    pub fn tcp_nonce(&self) -> u16 {
        self.tcp_nonce
    }

    /// Whole IP packets (raw IPv4 sockets) or L4 segments.
    pub fn emit(&self) -> EmitLayer {
        self.emit
    }

    /// Whether every probe's round-trip time is kept (fping `-C`).
    pub fn per_probe(&self) -> bool {
        self.per_probe
    }
}

/// Builds a [`PingConfig`]; [`PingConfigBuilder::build`] checks the settings.
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct PingConfigBuilder(PingConfig);

impl PingConfigBuilder {
    /// Probes per target, at least 1 (default 1).
    pub fn count(mut self, count: u32) -> Self {
        self.0.count = count;
        self
    }

    /// Time between two probes to the same target (default 1 s).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.0.interval = interval;
        self
    }

    /// How long to wait for an answer before a probe counts as lost (default 1 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.0.timeout = timeout;
        self
    }

    /// Probes per second over all targets, 0 for unpaced (default 1000); the bucket depth
    /// follows ([`TokenBucket::default_burst`]) unless [`burst`](Self::burst) is set after.
    pub fn rate_pps(mut self, pps: u32) -> Self {
        self.0.rate_pps = pps;
        self.0.burst = TokenBucket::default_burst(pps);
        self
    }

    /// Token bucket depth of the global rate.
    pub fn burst(mut self, burst: u32) -> Self {
        self.0.burst = burst;
        self
    }

    /// Payload bytes after the ICMP or UDP header, 2 to 65000 (default 56, as ping and
    /// fping; the first two carry the probe id into the checksum). TCP SYNs carry none.
    pub fn size(mut self, size: u16) -> Self {
        self.0.size = size;
        self
    }

    /// IPv4 TOS / IPv6 traffic class byte (DSCP << 2; default 0).
    pub fn tos(mut self, tos: u8) -> Self {
        self.0.tos = tos;
        self
    }

    /// Destination port of UDP (default 33434, closed) and TCP (default 80) probes.
    pub fn dst_port(mut self, port: u16) -> Self {
        self.0.dst_port = port;
        self
    }

    /// Source port of UDP and TCP probes (the runtime chooses its own).
    pub fn src_port(mut self, port: u16) -> Self {
        self.0.src_port = port;
        self
    }

    /// ICMP echo identifier (a ping socket imposes its own; the runtime passes it here).
    pub fn icmp_ident(mut self, ident: u16) -> Self {
        self.0.icmp_ident = ident;
        self
    }

    /// High 16 bits of TCP sequence numbers.
    pub fn tcp_nonce(mut self, nonce: u16) -> Self {
        self.0.tcp_nonce = nonce;
        self
    }

    /// Whole IP packets (raw IPv4 sockets) or L4 segments (default).
    pub fn emit(mut self, emit: EmitLayer) -> Self {
        self.0.emit = emit;
        self
    }

    /// Keep every probe's round-trip time (fping `-C`; default off).
    pub fn per_probe(mut self, per_probe: bool) -> Self {
        self.0.per_probe = per_probe;
        self
    }

    /// The settings, or the first one that cannot work.
    pub fn build(self) -> Result<PingConfig, PingConfigError> {
        self.0.validate()?;
        Ok(self.0)
    }
}
