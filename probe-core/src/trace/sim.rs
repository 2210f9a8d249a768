//! A simulated network for deterministic tests of the path-test state machines.
//!
//! Routers form a graph from the source; each router picks its successor by hashing the fields a
//! per-flow load balancer hashes (addresses, protocol, first four L4 bytes, flow label), salted
//! per router. Answers are real bytes: ICMP errors quoting the probe as it arrived (TTL 1), with
//! RFC 4884 + RFC 4950 extensions for MPLS routers, echo replies, TCP SYN-ACK/RST, port
//! unreachable, administratively prohibited rejects, fragmentation needed / packet too big.
//! They are parsed back with the same [`Answer`] entry points the socket glue uses.

use std::net::{IpAddr, Ipv4Addr};

use super::ProbeMachine;
use super::prober::{EmitLayer, Transmit};
use crate::time::Nanos;
use crate::wire::answer::{Answer, TcpReply, emit_ipv4};
use crate::wire::checksum::pseudo_header_checksum;
use crate::wire::icmp::{emit_echo_reply, emit_error, fill_icmpv6_checksum};
use crate::wire::icmp_ext::emit_mpls;
use crate::wire::mpls::MplsEntry;
use crate::wire::probe::{PROTO_ICMP, PROTO_TCP, ProbeL4, ProbePacket};

/// One simulated node.
#[derive(Clone, Debug)]
pub(crate) struct SimNode {
    pub addr: IpAddr,
    /// Indices of possible next nodes (chosen by flow hash); empty for the target.
    pub next: Vec<usize>,
    /// Never answers.
    pub silent: bool,
    /// Label stack reported in time exceeded messages.
    pub mpls: Vec<MplsEntry>,
    /// MTU of the outgoing link; larger DF packets are refused with frag needed / too big.
    pub link_mtu: u16,
    /// Report the MTU in frag-needed messages (false: report 0, like pre-RFC 1191 routers).
    pub report_mtu: bool,
    /// Reject everything passing through with admin prohibited.
    pub reject: bool,
    /// Rewrite the source address and port of passing probes (a NAT that leaves quotes alone).
    pub nat: Option<(IpAddr, u16)>,
}

impl SimNode {
    pub(super) fn router(addr: &str) -> Self {
        SimNode {
            addr: addr.parse().expect("sim address"),
            next: Vec::new(),
            silent: false,
            mpls: Vec::new(),
            link_mtu: 9000,
            report_mtu: true,
            reject: false,
            nat: None,
        }
    }
}

/// The network: node 0 is the source's first hop; `target` is the destination node.
#[derive(Clone, Debug)]
pub(crate) struct SimNet {
    pub src: IpAddr,
    pub nodes: Vec<SimNode>,
    pub target: usize,
    /// The target answers probes (false: a firewall drops them silently).
    pub target_answers: bool,
    /// For TCP: the probed port is open (SYN-ACK) rather than closed (RST).
    pub tcp_open: bool,
    /// One-way delay per hop.
    pub hop_delay_ns: u64,
    /// Probes the network saw.
    pub probes_seen: u64,
}

impl SimNet {
    /// A chain of routers `addrs` followed by the target (last address).
    pub(super) fn chain(src: &str, addrs: &[&str]) -> SimNet {
        let mut nodes: Vec<SimNode> = addrs.iter().map(|a| SimNode::router(a)).collect();
        let n = nodes.len();
        for (i, node) in nodes.iter_mut().enumerate().take(n - 1) {
            node.next = vec![i + 1];
        }
        SimNet {
            src: src.parse().expect("sim address"),
            nodes,
            target: n - 1,
            target_answers: true,
            tcp_open: false,
            hop_delay_ns: 100_000,
            probes_seen: 0,
        }
    }

    /// Address of node `i`.
    pub(super) fn addr(&self, i: usize) -> IpAddr {
        self.nodes[i].addr
    }

    /// The node sequence a probe with these hashed fields follows (hop 1 first).
    pub(super) fn path_of(&self, key: &[u8]) -> Vec<usize> {
        let mut path = vec![0];
        let mut cur = 0;
        while !self.nodes[cur].next.is_empty() && path.len() < 64 {
            let next = &self.nodes[cur].next;
            cur = next[(fnv(key, cur as u64) % next.len() as u64) as usize];
            path.push(cur);
        }
        path
    }

    /// Feeds a transmitted probe to the network; returns the answer (as the glue would parse
    /// it) and its arrival time.
    pub(super) fn respond(&mut self, tx: &Transmit, bytes: &[u8]) -> Option<(Answer, Nanos)> {
        self.probes_seen += 1;
        let mut ip = Self::as_ip_packet(tx, bytes)?;
        let v6 = tx.probe.is_ipv6();
        let hl = if v6 { 40 } else { 20 };
        let path = self.path_of(&flow_key(&ip, hl));
        let size = ip.len();
        for (hop, &n) in path.iter().enumerate() {
            let node = self.nodes[n].clone();
            let ttl = usize::from(tx.ttl);
            let rx =
                tx.at + std::time::Duration::from_nanos(2 * (hop as u64 + 1) * self.hop_delay_ns);
            let reply = |msg: Vec<u8>| self.deliver(node.addr, msg, v6, rx);
            if n == self.target {
                if !self.target_answers {
                    return None;
                }
                return self.target_reply(&ip, hl, tx, rx);
            }
            if hop + 1 == ttl {
                if node.silent {
                    return None;
                }
                let mut ext = Vec::new();
                if !node.mpls.is_empty() {
                    emit_mpls(&node.mpls, &mut ext);
                }
                let mut msg = Vec::new();
                let quote = &ip[..ip.len().min(hl + 8)];
                let t = if v6 { 3 } else { 11 };
                emit_error(
                    v6,
                    t,
                    0,
                    0,
                    quote,
                    (!ext.is_empty()).then_some(&ext[..]),
                    &mut msg,
                );
                return reply(msg);
            }
            if node.reject {
                let (t, code) = if v6 { (1, 1) } else { (3, 13) };
                let mut msg = Vec::new();
                emit_error(v6, t, code, 0, &ip[..hl + 8], None, &mut msg);
                return reply(msg);
            }
            if size > usize::from(node.link_mtu) && (v6 || tx.probe.dont_fragment) {
                if node.silent {
                    return None; // a PMTU black hole
                }
                let mtu = if node.report_mtu { node.link_mtu } else { 0 };
                let mut msg = Vec::new();
                let (t, code, word) = if v6 {
                    (2, 0, u32::from(mtu))
                } else {
                    (3, 4, u32::from(mtu))
                };
                emit_error(v6, t, code, word, &ip[..hl + 8], None, &mut msg);
                return reply(msg);
            }
            if let Some((public, port)) = node.nat {
                nat_rewrite(&mut ip, hl, tx, public, port);
            }
            // The probe is forwarded with TTL decremented.
            if v6 {
                ip[7] = ip[7].saturating_sub(1);
            } else {
                ip[8] = ip[8].saturating_sub(1);
            }
        }
        None
    }

    fn as_ip_packet(tx: &Transmit, bytes: &[u8]) -> Option<Vec<u8>> {
        match tx.layer {
            EmitLayer::Ip => Some(bytes.to_vec()),
            EmitLayer::L4 => {
                let p = tx.probe;
                let proto = p.l4.protocol(p.is_ipv6());
                let mut parsed = ProbePacket::parse_l4(bytes, p.src, p.dst, proto).ok()?;
                parsed.ttl = tx.ttl;
                parsed.tos = p.tos;
                parsed.dont_fragment = p.dont_fragment;
                parsed.flow_label = p.flow_label;
                parsed.l4_checksum = None;
                let mut ip = Vec::new();
                parsed.emit_ip(&mut ip).ok()?;
                ip.truncate(p.ip_header_len());
                ip.extend_from_slice(bytes);
                Some(ip)
            }
        }
    }

    fn target_reply(
        &self,
        ip: &[u8],
        hl: usize,
        tx: &Transmit,
        rx: Nanos,
    ) -> Option<(Answer, Nanos)> {
        let v6 = tx.probe.is_ipv6();
        let from = tx.probe.dst;
        let mut msg = Vec::new();
        match tx.probe.l4 {
            ProbeL4::IcmpEcho { ident, seq } => {
                emit_echo_reply(v6, ident, seq, &ip[hl + 8..], &mut msg);
            }
            ProbeL4::Udp { .. } => {
                let (t, code) = if v6 { (1, 4) } else { (3, 3) };
                emit_error(v6, t, code, 0, &ip[..ip.len().min(hl + 8)], None, &mut msg);
            }
            ProbeL4::TcpSyn {
                src_port,
                dst_port,
                seq,
            } => {
                // A SYN-ACK acknowledges the SYN; a reset also the data the SYN carried (as
                // Linux's tcp_v4_send_reset does).
                let data = if self.tcp_open {
                    0
                } else {
                    (ip.len() - hl - 20) as u32
                };
                let r = TcpReply {
                    src_port: dst_port,
                    dst_port: src_port,
                    seq: 0x1000,
                    ack: seq.wrapping_add(1 + data),
                    syn: self.tcp_open,
                    rst: !self.tcp_open,
                };
                r.emit(from, self.src, &mut msg);
                let a = if let IpAddr::V4(f) = from {
                    let mut pkt = Vec::new();
                    emit_ipv4(f, v4(self.src), 64, PROTO_TCP, &msg, &mut pkt);
                    Answer::parse_ipv4(&pkt)
                } else {
                    Answer::parse_tcp(&msg, from, Some(64))
                };
                return a.ok().map(|a| (a, rx));
            }
        }
        self.deliver(from, msg, v6, rx)
    }

    fn deliver(
        &self,
        from: IpAddr,
        mut msg: Vec<u8>,
        v6: bool,
        rx: Nanos,
    ) -> Option<(Answer, Nanos)> {
        let answer = match (from, self.src) {
            (IpAddr::V6(f), IpAddr::V6(s)) if v6 => {
                fill_icmpv6_checksum(&mut msg, f, s);
                Answer::parse_icmpv6(&msg, f, Some(60))
            }
            (IpAddr::V4(f), IpAddr::V4(s)) => {
                let mut pkt = Vec::new();
                emit_ipv4(f, s, 60, PROTO_ICMP, &msg, &mut pkt);
                Answer::parse_ipv4(&pkt)
            }
            _ => return None,
        };
        answer.ok().map(|a| (a, rx))
    }
}

/// The fields per-flow load balancers hash.
fn flow_key(ip: &[u8], hl: usize) -> Vec<u8> {
    let mut key = Vec::with_capacity(48);
    if hl == 40 {
        key.extend_from_slice(&ip[8..40]); // addresses
        key.push(ip[6]);
        key.extend_from_slice(&[ip[1] & 0x0F, ip[2], ip[3]]); // flow label
    } else {
        key.extend_from_slice(&ip[12..20]);
        key.push(ip[9]);
    }
    key.extend_from_slice(&ip[hl..hl + 4]);
    key
}

/// FNV-1a over `key`, salted, then the splitmix64 finalizer (FNV alone leaves the low bits a
/// plain XOR of the input bytes' low bits, a poor balancer when two hashed fields move together).
fn fnv(key: &[u8], salt: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for b in key {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Rewrites source address and port like a NAT, keeping the UDP/TCP checksum valid.
fn nat_rewrite(ip: &mut [u8], hl: usize, tx: &Transmit, public: IpAddr, port: u16) {
    let IpAddr::V4(p4) = public else { return };
    ip[12..16].copy_from_slice(&p4.octets());
    let proto = tx.probe.l4.protocol(false);
    let word = match tx.probe.l4 {
        ProbeL4::Udp { .. } => 3,
        ProbeL4::TcpSyn { .. } => 8,
        ProbeL4::IcmpEcho { .. } => return,
    };
    ip[hl..hl + 2].copy_from_slice(&port.to_be_bytes());
    if let Some(sum) = pseudo_header_checksum(&ip[hl..], word, public, tx.probe.dst, proto) {
        ip[hl + word * 2..hl + word * 2 + 2].copy_from_slice(&sum.to_be_bytes());
    }
}

fn v4(a: IpAddr) -> Ipv4Addr {
    match a {
        IpAddr::V4(v) => v,
        IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
    }
}

/// Runs `m` against `net` from `start` until it is done; returns the time it finished.
/// Answers are delivered at their simulated arrival times, timers fire when due.
pub(crate) fn drive(m: &mut impl ProbeMachine, net: &mut SimNet, start: Nanos) -> Nanos {
    let mut now = start;
    let mut buf = Vec::new();
    let mut pending: Vec<(Nanos, Answer)> = Vec::new();
    for _ in 0..1_000_000 {
        while let Some(tx) = m.poll_transmit(now, &mut buf) {
            assert_eq!(tx.len, buf.len());
            if let Some((a, rx)) = net.respond(&tx, &buf) {
                pending.push((rx, a));
            }
        }
        if m.is_done() {
            return now;
        }
        let next = [m.poll_timeout(), pending.iter().map(|p| p.0).min()]
            .into_iter()
            .flatten()
            .min()
            .expect("machine is stalled: nothing to wait for");
        now = now.max(next);
        pending.sort_by_key(|p| p.0);
        while pending.first().is_some_and(|p| p.0 <= now) {
            let (rx, a) = pending.remove(0);
            m.handle_answer(&a, rx);
        }
        m.handle_timeout(now);
    }
    panic!("machine did not finish");
}
