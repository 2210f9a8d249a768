//! Flow identity: which header fields stay constant within a flow, and where the probe id hides.
//!
//! Per-flow load balancers hash the addresses, the protocol and the first four L4 bytes (ports;
//! for ICMP echo the type, code and checksum). Paris traceroute keeps all of these constant for
//! one flow and carries the probe id in fields no balancer hashes:
//!
//! | protocol | flow (hashed, constant)                       | probe id (not hashed)           |
//! |----------|-----------------------------------------------|---------------------------------|
//! | UDP      | source port = `src_port + flow`, dst port      | UDP checksum, steered by 2 payload bytes |
//! | ICMP     | identifier, checksum = f(flow) (payload word keeps it constant) | sequence number |
//! | TCP      | source port = `src_port + flow`, dst port      | sequence number (low 16 bits; high 16 bits a per-trace nonce) |
//!
//! Classic mode behaves like the traditional traceroute: every probe is a new flow (UDP
//! destination port `dst_port + id - 1`, TCP source port `src_port + id`, ICMP checksum left
//! to vary with the sequence number), so per-flow balancers scatter consecutive probes. Probe ids
//! are still carried as above, so matching is the same in both modes. For IPv6 the flow label is
//! set to the flow id as well (Linux hashes it under the L3 multipath policy).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::wire::answer::{Answer, AnswerKind};
use crate::wire::checksum::ones_add;
use crate::wire::icmp::IcmpKind;
use crate::wire::probe::{ProbeL4, ProbePacket};
use crate::wire::quote::{Quote, QuotedL4};

/// The probe protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Protocol {
    /// ICMP / `ICMPv6` echo request.
    Icmp,
    /// UDP datagram (to a closed port by default: the target answers port unreachable).
    Udp,
    /// TCP SYN (the target answers SYN-ACK or RST).
    Tcp,
}

impl Protocol {
    /// Lowercase name, as in reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            Protocol::Icmp => "icmp",
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
        }
    }
}

/// Whether a trace keeps one flow (Paris) or changes flow with every probe (classic).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum FlowMode {
    /// Constant flow identifier: one path through per-flow load balancers.
    #[default]
    Paris,
    /// Traditional traceroute: every probe a different flow.
    Classic,
}

/// Selects one flow: what MDA varies to explore load-balanced paths.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowId(pub u16);

/// Identifies one probe within a trace. Never 0 or 0xFFFF (checksum values with special
/// meaning), see [`ProbeId::next`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProbeId(pub u16);

impl ProbeId {
    /// The first id of a trace.
    pub const FIRST: ProbeId = ProbeId(1);

    /// The id after this one, wrapping from 0xFFFE back to 1.
    #[must_use]
    pub const fn next(self) -> ProbeId {
        if self.0 >= 0xFFFE {
            ProbeId(1)
        } else {
            ProbeId(self.0 + 1)
        }
    }

    const fn is_valid(v: u16) -> bool {
        v != 0 && v != 0xFFFF
    }
}

/// The fixed part of every probe of a trace: addresses, protocol, ports, mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FlowSpec {
    /// Protocol.
    pub protocol: Protocol,
    /// Paris or classic.
    pub mode: FlowMode,
    /// Our source address. Must be the address the kernel will use: it enters the pseudo-header
    /// checksum the probe id is steered through.
    pub src: IpAddr,
    /// The target.
    pub dst: IpAddr,
    /// Base source port (UDP, TCP); flow `f` uses `src_port + f`.
    pub src_port: u16,
    /// Destination port (UDP base port in classic mode; TCP port probed).
    pub dst_port: u16,
    /// ICMP echo identifier (ping sockets impose theirs: pass it here).
    pub icmp_ident: u16,
    /// High 16 bits of TCP sequence numbers, to tell our answers from stale ones.
    pub tcp_nonce: u16,
    /// Whether the IPv4 identification carries the probe id too (when we write the IP header):
    /// a fallback for matching when a NAT rewrote the quoted UDP checksum.
    pub ip_id_is_probe_id: bool,
}

/// A quote or answer recognised as belonging to this trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Recognised {
    /// The probe id read from the primary carrier.
    pub id: ProbeId,
    /// A second candidate (IPv4 identification) for when the primary was rewritten on the path.
    pub alt: Option<ProbeId>,
    /// Source address and port (or ICMP identifier) the quote shows, to detect NAT.
    pub seen_src: Option<(IpAddr, Option<u16>)>,
}

impl FlowSpec {
    /// Source port (or ICMP identifier) a probe of `flow` with id `id` carries: what a NAT would
    /// rewrite and what [`Recognised::seen_src`] is compared with.
    pub(crate) fn nat_port(&self, flow: FlowId, id: ProbeId) -> u16 {
        match self.probe(flow, id, 64, 0).l4 {
            ProbeL4::IcmpEcho { ident, .. } => ident,
            ProbeL4::Udp { src_port, .. } | ProbeL4::TcpSyn { src_port, .. } => src_port,
        }
    }

    /// The probe for `flow` with id `id` at `ttl`, `size` bytes long (whole IP packet).
    pub(crate) fn probe(&self, flow: FlowId, id: ProbeId, ttl: u8, size: u16) -> ProbePacket {
        let classic = self.mode == FlowMode::Classic;
        let (l4, checksum) = match self.protocol {
            Protocol::Udp => {
                let dst_port = if classic {
                    self.dst_port.wrapping_add(id.0 - 1)
                } else {
                    self.dst_port
                };
                let l4 = ProbeL4::Udp {
                    src_port: self.src_port.wrapping_add(flow.0),
                    dst_port,
                };
                (l4, Some(id.0))
            }
            Protocol::Icmp => {
                let l4 = ProbeL4::IcmpEcho {
                    ident: self.icmp_ident,
                    seq: id.0,
                };
                (l4, (!classic).then(|| icmp_flow_checksum(flow)))
            }
            Protocol::Tcp => {
                let port_step = if classic { id.0 } else { flow.0 };
                let l4 = ProbeL4::TcpSyn {
                    src_port: self.src_port.wrapping_add(port_step),
                    dst_port: self.dst_port,
                    seq: (u32::from(self.tcp_nonce) << 16) | u32::from(id.0),
                };
                (l4, None)
            }
        };
        let mut p = ProbePacket::new(self.src, self.dst, l4, size);
        p.ttl = ttl;
        p.l4_checksum = checksum;
        p.ip_id = if self.ip_id_is_probe_id { id.0 } else { 0 };
        p.flow_label = if classic {
            u32::from(id.0)
        } else {
            u32::from(flow.0)
        };
        p
    }

    /// Recognises the quote of one of our probes in an ICMP error.
    pub(crate) fn recognise_quote(&self, q: &Quote) -> Option<Recognised> {
        if q.dst != self.dst {
            return None;
        }
        let alt =
            (self.ip_id_is_probe_id && ProbeId::is_valid(q.ip_id)).then_some(ProbeId(q.ip_id));
        let (id, port) = match (self.protocol, q.l4) {
            (
                Protocol::Udp,
                QuotedL4::Udp {
                    src_port,
                    dst_port,
                    checksum,
                    ..
                },
            ) => {
                let ok_port = match self.mode {
                    FlowMode::Paris => dst_port == self.dst_port,
                    FlowMode::Classic => dst_port.wrapping_sub(self.dst_port) < 0xFFFE,
                };
                if !ok_port {
                    return None;
                }
                (checksum, src_port)
            }
            (Protocol::Icmp, QuotedL4::IcmpEcho { ident, seq, .. }) => {
                if ident != self.icmp_ident {
                    return None;
                }
                (seq, ident)
            }
            (
                Protocol::Tcp,
                QuotedL4::Tcp {
                    src_port,
                    dst_port,
                    seq,
                },
            ) => {
                if dst_port != self.dst_port || (seq >> 16) as u16 != self.tcp_nonce {
                    return None;
                }
                (seq as u16, src_port)
            }
            _ => return None,
        };
        if !ProbeId::is_valid(id) && alt.is_none() {
            return None;
        }
        let id = if ProbeId::is_valid(id) {
            ProbeId(id)
        } else {
            alt?
        };
        Some(Recognised {
            id,
            alt,
            seen_src: Some((q.src, Some(port))),
        })
    }

    /// Recognises an answer (ICMP error quoting our probe, echo reply, TCP reply) as ours.
    pub(crate) fn recognise(&self, a: &Answer) -> Option<Recognised> {
        if let Some(q) = &a.quote {
            return self.recognise_quote(q);
        }
        if a.from != self.dst {
            return None;
        }
        let id = match (self.protocol, a.kind) {
            (Protocol::Icmp, AnswerKind::Icmp(IcmpKind::EchoReply { ident, seq })) => {
                if ident != self.icmp_ident {
                    return None;
                }
                seq
            }
            (Protocol::Tcp, AnswerKind::Tcp(t)) => {
                let seq = t.ack.wrapping_sub(1);
                if t.src_port != self.dst_port || (seq >> 16) as u16 != self.tcp_nonce {
                    return None;
                }
                seq as u16
            }
            _ => return None,
        };
        ProbeId::is_valid(id).then_some(Recognised {
            id: ProbeId(id),
            alt: None,
            seen_src: None,
        })
    }
}

impl FlowSpec {
    /// The probe id a UDP quote carried before a NAT on the path rewrote our source address and
    /// port, assuming the probe belonged to `flow`.
    ///
    /// A NAT keeps the UDP checksum valid by adjusting it: with `C = !S`, replacing the words
    /// `ours` by `seen` in the sum gives `C' = C + ours - seen`, so `C = C' + seen - ours` (one's
    /// complement arithmetic). The original checksum is our probe id.
    pub(crate) fn unnat_udp_id(&self, rec: &Recognised, flow: FlowId) -> Option<ProbeId> {
        let (seen_addr, Some(seen_port)) = rec.seen_src? else {
            return None;
        };
        if self.protocol != Protocol::Udp || seen_addr.is_ipv6() != self.src.is_ipv6() {
            return None;
        }
        let ours_port = self.src_port.wrapping_add(flow.0);
        let seen = ones_add(addr_sum(seen_addr), seen_port);
        let ours = ones_add(addr_sum(self.src), ours_port);
        // The checksum C' seen in the quote is in `rec.id` (or 0xFFFF/0 if invalid).
        let id = ones_add(ones_add(rec.id.0, seen), !ours);
        ProbeId::is_valid(id).then_some(ProbeId(id))
    }
}

/// One's-complement sum of an address's 16-bit words.
fn addr_sum(a: IpAddr) -> u16 {
    match a {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            ones_add(
                u16::from_be_bytes([o[0], o[1]]),
                u16::from_be_bytes([o[2], o[3]]),
            )
        }
        IpAddr::V6(v6) => v6.segments().into_iter().fold(0, ones_add),
    }
}

/// The ICMP checksum that identifies `flow` in Paris mode (never 0 or 0xFFFF).
pub(super) const fn icmp_flow_checksum(flow: FlowId) -> u16 {
    (flow.0 % 0xFFFE) + 1
}

#[cfg(test)]
#[path = "flow_tests.rs"]
mod tests;
