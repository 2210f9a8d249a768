//! The probe machinery shared by the trace, MDA and PMTU state machines: probe ids, emission
//! into the caller's buffer, pacing, in-flight table with deadlines, and answer matching
//! (including NAT detection).

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use thiserror::Error;

use super::flow::{FlowId, FlowMode, FlowSpec, ProbeId, Protocol};
use crate::time::Nanos;
use crate::wire::answer::{Answer, AnswerKind, TcpReply};
use crate::wire::packet_error::PacketError;
use crate::wire::probe::{ProbeL4, ProbePacket};

/// Which bytes a [`Transmit`] holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum EmitLayer {
    /// The whole IP packet (raw sockets with `IP_HDRINCL`, IPv6 raw sockets taking the header).
    Ip,
    /// The L4 segment only (the kernel adds the IP header; for UDP datagram sockets send the
    /// bytes after the 8-byte UDP header, for ICMP ping sockets the whole segment).
    #[default]
    L4,
}

/// How probes look and how fast they go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProbeConfig {
    /// Probe protocol.
    pub protocol: Protocol,
    /// Our source address (must be the one the kernel uses: it enters checksums).
    pub src: IpAddr,
    /// The target.
    pub dst: IpAddr,
    /// Paris (constant flow) or classic (every probe a new flow).
    pub mode: FlowMode,
    /// Base source port (UDP, TCP). Default 40000.
    pub src_port: u16,
    /// Destination port: 33434 for UDP, 80 for TCP by default.
    pub dst_port: u16,
    /// ICMP echo identifier. Linux ping sockets (`SOCK_DGRAM`, `IPPROTO_ICMP`) overwrite it
    /// with the socket's id (the port `getsockname` reports): pass that value here so the
    /// steered checksum and the matching agree with what goes on the wire.
    pub icmp_ident: u16,
    /// High half of TCP sequence numbers.
    pub tcp_nonce: u16,
    /// Whole IP packet size in bytes.
    pub size: u16,
    /// IP header (raw) or L4 only.
    pub emit: EmitLayer,
    /// IPv4 TOS / IPv6 traffic class.
    pub tos: u8,
    /// Set DF on IPv4 probes.
    pub dont_fragment: bool,
    /// How long to wait for an answer before a probe counts as lost.
    pub wait: Duration,
    /// Maximum probes per second; 0 means unpaced.
    pub rate_pps: u32,
}

impl ProbeConfig {
    /// Defaults for `protocol` from `src` to `dst`: Paris, 60-byte probes, 1 s wait, unpaced.
    pub fn new(protocol: Protocol, src: IpAddr, dst: IpAddr) -> Self {
        ProbeConfig {
            protocol,
            src,
            dst,
            mode: FlowMode::Paris,
            src_port: 40000,
            dst_port: if protocol == Protocol::Tcp { 80 } else { 33434 },
            icmp_ident: 0x7072,
            tcp_nonce: 0x7072,
            size: 60,
            emit: EmitLayer::L4,
            tos: 0,
            dont_fragment: true,
            wait: Duration::from_secs(1),
            rate_pps: 0,
        }
    }

    /// Checks that `size` holds the headers of the protocol over the target's family.
    pub fn check_size(&self) -> Result<(), ConfigError> {
        let min = self
            .flow_spec()
            .probe(FlowId(0), ProbeId::FIRST, 1, self.size)
            .min_size();
        if usize::from(self.size) < min {
            return Err(ConfigError::SizeTooSmall {
                protocol: self.protocol.as_str(),
                family: if self.dst.is_ipv6() { "IPv6" } else { "IPv4" },
                size: self.size,
                min: u16::try_from(min).unwrap_or(u16::MAX),
            });
        }
        Ok(())
    }

    /// The flow description derived from this configuration.
    pub(crate) fn flow_spec(&self) -> FlowSpec {
        FlowSpec {
            protocol: self.protocol,
            mode: self.mode,
            src: self.src,
            dst: self.dst,
            src_port: self.src_port,
            dst_port: self.dst_port,
            icmp_ident: self.icmp_ident,
            tcp_nonce: self.tcp_nonce,
            ip_id_is_probe_id: self.emit == EmitLayer::Ip && !self.dst.is_ipv6(),
        }
    }
}

/// A configuration the options builders and the state machines refuse. Each variant names
/// the setting and the values that clash.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Source and target are of different address families.
    #[error("source {src} and target {dst} are of different address families")]
    MixedFamilies {
        /// Source.
        src: IpAddr,
        /// Target.
        dst: IpAddr,
    },
    /// The first TTL is 0 or above the highest TTL.
    #[error("the first TTL {first_ttl} must be between 1 and the highest TTL {max_ttl}")]
    TtlRange {
        /// First TTL probed.
        first_ttl: u8,
        /// Highest TTL probed.
        max_ttl: u8,
    },
    /// A setting that counts something is 0.
    #[error("{0} must be at least 1")]
    Zero(Setting),
    /// The MDA confidence is not strictly between 0 and 1.
    #[error("the MDA confidence {0} must be strictly between 0 and 1 (0.95 is 95 %)")]
    Confidence(f64),
    /// The probe size cannot hold the headers of the protocol.
    #[error(
        "a {size}-byte {protocol} probe is too small: {protocol} over {family} needs at least \
         {min} bytes"
    )]
    SizeTooSmall {
        /// The protocol.
        protocol: &'static str,
        /// `IPv4` or `IPv6`.
        family: &'static str,
        /// The size asked for (whole IP packet).
        size: u16,
        /// The smallest size that holds the headers.
        min: u16,
    },
    /// The PMTU search range is empty.
    #[error("the PMTU search range {min}..={max} bytes is empty")]
    PmtuRange {
        /// Smallest size probed.
        min: u16,
        /// Largest size probed.
        max: u16,
    },
}

/// A setting that must be at least 1 ([`ConfigError::Zero`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
#[non_exhaustive]
pub enum Setting {
    /// Probes per hop per round.
    #[error("the number of queries per hop")]
    Queries,
    /// Rounds.
    #[error("the number of rounds (count)")]
    Count,
    /// TTLs released ahead of the answers (sans-IO trace).
    #[error("the TTL window")]
    Window,
    /// Attempts per probe (MDA, PMTU).
    #[error("the number of retries")]
    Retries,
    /// MDA probe budget.
    #[error("the MDA probe budget (max probes)")]
    MaxProbes,
    /// TTL of PMTU probes.
    #[error("the PMTU probe TTL")]
    Ttl,
}

/// A probe to send now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Probe id (also needed by glue that matches answers per socket).
    pub id: ProbeId,
    /// Flow of the probe.
    pub flow: FlowId,
    /// TTL / hop limit to send with.
    pub ttl: u8,
    /// The typed probe: addresses, ports, TOS, DF, flow label for socket options.
    pub probe: ProbePacket,
    /// What the buffer holds.
    pub layer: EmitLayer,
    /// Bytes written to the buffer passed to `poll_transmit`.
    pub len: usize,
    /// When the state machine released it (the `now` of the call).
    pub at: Nanos,
}

/// A probe waiting for its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct InFlight {
    /// Probe id.
    pub id: ProbeId,
    /// Flow.
    pub flow: FlowId,
    /// TTL sent with.
    pub ttl: u8,
    /// Packet size.
    pub size: u16,
    /// Send time (replaced by the kernel timestamp if the glue reports one).
    pub sent_at: Nanos,
    /// When it counts as lost.
    pub deadline: Nanos,
    /// Owner-defined tag (round number, attempt, ...).
    pub tag: u32,
}

/// An answer matched to its probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Matched {
    /// The probe.
    pub probe: InFlight,
    /// Round-trip time in nanoseconds.
    pub rtt_ns: i64,
    /// The quote shows our source address or port rewritten: a NAT on the path.
    pub nat: bool,
}

/// Probe ids, pacing, in-flight table and matching.
#[derive(Debug, Clone)]
pub(super) struct Prober {
    cfg: ProbeConfig,
    spec: FlowSpec,
    next_id: ProbeId,
    in_flight: HashMap<ProbeId, InFlight>,
    deadlines: BTreeSet<(Nanos, ProbeId)>,
    interval_ns: u64,
    next_send: Nanos,
    sent_total: u64,
}

/// Checks a TTL range: `1 <= first_ttl <= max_ttl`.
pub(crate) fn check_ttls(first_ttl: u8, max_ttl: u8) -> Result<(), ConfigError> {
    if first_ttl == 0 || max_ttl < first_ttl {
        return Err(ConfigError::TtlRange { first_ttl, max_ttl });
    }
    Ok(())
}

/// Checks an MDA confidence: strictly between 0 and 1.
pub(crate) fn check_confidence(confidence: f64) -> Result<(), ConfigError> {
    if confidence > 0.0 && confidence < 1.0 {
        Ok(())
    } else {
        Err(ConfigError::Confidence(confidence))
    }
}

impl Prober {
    /// Validates `cfg` (families, probe size) and builds the prober.
    pub(super) fn new(cfg: ProbeConfig) -> Result<Self, ConfigError> {
        if cfg.src.is_ipv6() != cfg.dst.is_ipv6() {
            return Err(ConfigError::MixedFamilies {
                src: cfg.src,
                dst: cfg.dst,
            });
        }
        cfg.check_size()?;
        let spec = cfg.flow_spec();
        Ok(Prober {
            cfg,
            spec,
            next_id: ProbeId::FIRST,
            in_flight: HashMap::new(),
            deadlines: BTreeSet::new(),
            interval_ns: if cfg.rate_pps == 0 {
                0
            } else {
                1_000_000_000 / u64::from(cfg.rate_pps)
            },
            next_send: Nanos::ZERO,
            sent_total: 0,
        })
    }

    /// Earliest time pacing allows the next probe.
    pub(super) fn next_send_at(&self) -> Nanos {
        self.next_send
    }

    /// Whether pacing allows a probe at `now`.
    pub(super) fn may_send(&self, now: Nanos) -> bool {
        now >= self.next_send && self.in_flight.len() < 0xFFF0
    }

    /// Emits a probe into `buf` and records it in flight.
    pub(super) fn send(
        &mut self,
        now: Nanos,
        flow: FlowId,
        ttl: u8,
        size: u16,
        tag: u32,
        buf: &mut Vec<u8>,
    ) -> Result<Transmit, PacketError> {
        let mut id = self.next_id;
        while self.in_flight.contains_key(&id) {
            id = id.next();
        }
        let mut probe = self.spec.probe(flow, id, ttl, size);
        probe.tos = self.cfg.tos;
        probe.dont_fragment = self.cfg.dont_fragment;
        match self.cfg.emit {
            EmitLayer::Ip => probe.emit_ip(buf)?,
            EmitLayer::L4 => probe.emit_l4(buf)?,
        }
        self.next_id = id.next();
        let deadline = now + self.cfg.wait;
        self.in_flight.insert(
            id,
            InFlight {
                id,
                flow,
                ttl,
                size,
                sent_at: now,
                deadline,
                tag,
            },
        );
        self.deadlines.insert((deadline, id));
        self.sent_total += 1;
        if self.interval_ns > 0 {
            // A poll late by less than one interval keeps the schedule (the rate holds despite
            // timer slack); after a longer pause the schedule restarts from now.
            let base = if now.0.saturating_sub(self.next_send.0) < self.interval_ns {
                self.next_send
            } else {
                now
            };
            self.next_send = Nanos(base.0 + self.interval_ns);
        }
        Ok(Transmit {
            id,
            flow,
            ttl,
            probe,
            layer: self.cfg.emit,
            len: buf.len(),
            at: now,
        })
    }

    /// Replaces the send time of a probe in flight (kernel transmit timestamp).
    pub(super) fn set_sent_time(&mut self, id: ProbeId, tx: Nanos) {
        if let Some(p) = self.in_flight.get_mut(&id) {
            p.sent_at = tx;
        }
    }

    /// Matches an answer to its probe and removes the probe from the table.
    ///
    /// `flow_hint` is the flow the caller expects (Paris traces have one): it lets a UDP quote
    /// whose checksum a NAT rewrote be traced back to the probe id.
    pub(super) fn match_answer(
        &mut self,
        a: &Answer,
        rx: Nanos,
        flow_hint: Option<FlowId>,
    ) -> Option<Matched> {
        if let (AnswerKind::Tcp(t), None) = (a.kind, &a.quote) {
            return self.match_tcp_reply(a, t, rx);
        }
        let rec = self.spec.recognise(a)?;
        let spec = self.spec;
        let clean = |p: &InFlight| {
            rec.seen_src.is_none_or(|(addr, port)| {
                addr == spec.src && port.is_none_or(|pt| pt == spec.nat_port(p.flow, p.id))
            })
        };
        let direct = self
            .in_flight
            .get(&rec.id)
            .filter(|p| clean(p))
            .map(|p| p.id);
        let (id, nat) = if let Some(id) = direct {
            (id, false)
        } else {
            let unnat = flow_hint.and_then(|f| spec.unnat_udp_id(&rec, f));
            let id = [unnat, rec.alt, Some(rec.id)]
                .into_iter()
                .flatten()
                .find(|id| self.in_flight.contains_key(id))?;
            (id, true)
        };
        let probe = self.take(id)?;
        Some(Matched {
            probe,
            rtt_ns: rx - probe.sent_at,
            nat,
        })
    }

    /// Matches a SYN-ACK or reset from the target. A SYN-ACK acknowledges `seq + 1`; a reset
    /// also acknowledges the bytes the SYN carried (RFC 9293 reset generation), so the probe id
    /// cannot be read off the acknowledgment number alone: the probe in flight whose ports and
    /// acknowledgment agree is the one.
    fn match_tcp_reply(&mut self, a: &Answer, t: TcpReply, rx: Nanos) -> Option<Matched> {
        let spec = self.spec;
        let found = (a.from == spec.dst && t.src_port == spec.dst_port)
            .then(|| {
                self.in_flight.values().find_map(|p| {
                    let probe = spec.probe(p.flow, p.id, p.ttl, p.size);
                    let ProbeL4::TcpSyn { src_port, seq, .. } = probe.l4 else {
                        return None;
                    };
                    let data = if t.rst {
                        probe.l4_len().saturating_sub(probe.l4.header_len()) as u32
                    } else {
                        0
                    };
                    let acked = seq.wrapping_add(1).wrapping_add(data);
                    (src_port == t.dst_port && t.ack == acked).then_some(p.id)
                })
            })
            .flatten();
        let probe = found.and_then(|id| self.take(id))?;
        Some(Matched {
            probe,
            rtt_ns: rx - probe.sent_at,
            nat: false,
        })
    }

    /// Removes a probe from the table (for glue that matched an answer by socket).
    pub(super) fn take(&mut self, id: ProbeId) -> Option<InFlight> {
        let p = self.in_flight.remove(&id)?;
        self.deadlines.remove(&(p.deadline, id));
        Some(p)
    }

    /// Removes and returns every probe whose deadline is at or before `now`, oldest first.
    pub(super) fn expire(&mut self, now: Nanos) -> Vec<InFlight> {
        let mut out = Vec::new();
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(p) = self.in_flight.remove(&id) {
                out.push(p);
            }
        }
        out
    }

    /// Drops the probes `pred` selects (no longer wanted); returns how many.
    pub(super) fn cancel_where(&mut self, pred: impl Fn(&InFlight) -> bool) -> usize {
        let ids: Vec<ProbeId> = self
            .in_flight
            .values()
            .filter(|p| pred(p))
            .map(|p| p.id)
            .collect();
        for id in &ids {
            self.take(*id);
        }
        ids.len()
    }

    /// The earliest deadline of a probe in flight.
    pub(super) fn next_deadline(&self) -> Option<Nanos> {
        self.deadlines.first().map(|d| d.0)
    }

    /// Probes in flight.
    pub(super) fn in_flight(&self) -> impl Iterator<Item = &InFlight> {
        self.in_flight.values()
    }

    /// Number of probes in flight.
    pub(super) fn in_flight_count(&self) -> usize {
        self.in_flight.len()
    }

    /// Probes sent so far.
    pub(super) fn sent_total(&self) -> u64 {
        self.sent_total
    }
}

#[cfg(test)]
#[path = "prober_tests.rs"]
mod tests;
