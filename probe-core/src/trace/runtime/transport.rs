//! Sockets for probes, by privilege: which to open, how probes leave, how answers come back.
//!
//! | privilege    | family | sends with                               | answers from                       |
//! |--------------|--------|------------------------------------------|------------------------------------|
//! | raw          | IPv4   | `IPPROTO_RAW`, whole IP packets          | raw ICMP (+ raw TCP) sockets       |
//! | raw          | IPv6   | raw socket of the probe protocol, L4 + hop-limit control message | raw `ICMPv6` (+ the raw TCP sender) |
//! | unprivileged | both   | ICMP: ping socket; UDP: a UDP socket per source port, TTL per datagram | their receive and error queues (`IP_RECVERR`) |
//!
//! Unprivileged TCP is not offered: the kernel picks the sequence number of a `connect`, and one
//! flow cannot have two connection attempts in flight, so a parallel Paris TCP trace needs raw
//! sockets.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::error::TraceError;
use super::options::{Privilege, PrivilegeChoice, TraceOptions};
use super::sockets::{Endpoint, Errors, Event, Parse, SocketSet};
use crate::io::{
    IoError, PacketSource, PmtuMode, PrivilegeMode, Privileges, SendOptions, SocketOptions,
    icmp_socket, raw_ip_socket, raw_ipv4_sender, route_mtu, udp_socket,
};
use crate::trace::flow::Protocol;
use crate::trace::prober::{EmitLayer, Transmit};
use crate::wire::probe::ProbeL4;

/// Receive buffer asked for answer sockets.
const RECV_BUFFER: usize = 1 << 20;

/// What routing says about the target before any probe goes out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Route {
    /// The source address probes carry (it enters their checksums).
    pub src: IpAddr,
    /// The route's MTU (outgoing interface, or a path MTU the kernel learned).
    pub mtu: u32,
}

/// Finds the source address and route MTU towards the target with a connected UDP socket
/// (connecting sends nothing).
pub(super) fn route(opts: &TraceOptions) -> Result<Route, TraceError> {
    let target = opts.target;
    let v6 = target.is_ipv6();
    let any = if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    };
    let sock_opts = SocketOptions {
        device: opts.interface.clone(),
        ..SocketOptions::default()
    };
    let s = udp_socket(SocketAddr::new(opts.source.unwrap_or(any), 0), &sock_opts)?;
    let src = source_towards(&s, target, opts.port.unwrap_or(33434))?;
    let mtu = route_mtu(&s, v6).unwrap_or(1500);
    Ok(Route { src, mtu })
}

/// The source address routing picks from socket `s` towards `target` (connecting a UDP socket
/// sends nothing; `s` may be connected again for the next target).
pub(crate) fn source_towards(
    s: &socket2::Socket,
    target: IpAddr,
    port: u16,
) -> Result<IpAddr, TraceError> {
    s.connect(&SocketAddr::new(target, port).into())
        .map_err(|source| TraceError::NoRoute { target, source })?;
    s.local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map(|a| a.ip().to_canonical())
        .ok_or_else(|| TraceError::NoRoute {
            target,
            source: io::Error::other("no source address"),
        })
}

/// How probes must be shaped for the sockets that send them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shape {
    /// Whole IP packets or L4 only.
    pub emit: EmitLayer,
    /// The ICMP echo identifier on the wire (a ping socket imposes its own).
    pub icmp_ident: Option<u16>,
    /// The base source port on the wire (an unprivileged UDP socket's bound port).
    pub src_port: Option<u16>,
}

/// Why a probe did not leave.
#[derive(Debug)]
pub(crate) enum SendError {
    /// Larger than the outgoing interface allows (`EMSGSIZE`).
    TooBig,
    /// Refused this time (no buffer space, a transient route error); it counts as lost.
    Dropped(io::Error),
    /// Nothing more can be sent.
    Fatal(TraceError),
}

#[derive(Debug)]
enum Sender {
    /// Whole IPv4 packets on an `IPPROTO_RAW` socket.
    RawV4(usize),
    /// L4 segments on a raw IPv6 socket, hop limit per datagram.
    RawV6(usize),
    /// ICMP echo requests on a ping socket.
    Ping(usize),
    /// UDP payloads, one socket per source port (opened as flows appear).
    Udp(HashMap<u16, usize>),
}

/// The sockets of one path test.
#[derive(Debug)]
pub(crate) struct Transport {
    set: SocketSet,
    sender: Sender,
    privilege: Privilege,
    src: IpAddr,
    tos: u8,
    /// Options for unprivileged UDP sockets opened later.
    udp_opts: SocketOptions,
}

fn base_options(opts: &TraceOptions) -> SocketOptions {
    SocketOptions {
        device: opts.interface.clone(),
        recv_ttl: true,
        recv_buffer: Some(RECV_BUFFER),
        ..SocketOptions::default()
    }
}

impl Transport {
    /// Opens the sockets `opts.privilege` calls for; returns them and the probe shape.
    pub(crate) fn open(opts: &TraceOptions, route: Route) -> Result<(Self, Shape), TraceError> {
        match opts.privilege {
            PrivilegeChoice::Raw => Self::open_raw(opts, route),
            PrivilegeChoice::Unprivileged => Self::open_unprivileged(opts, route),
            PrivilegeChoice::Auto => {
                let cap = Privileges::detect().is_ok_and(|p| p.cap_net_raw);
                if cap {
                    match Self::open_raw(opts, route) {
                        Err(TraceError::Io(IoError::RawPermission { what })) => {
                            tracing::debug!("{what} refused despite CAP_NET_RAW; unprivileged");
                        }
                        other => return other,
                    }
                }
                Self::open_unprivileged(opts, route)
            }
        }
    }

    fn new(opts: &TraceOptions, route: Route, privilege: Privilege) -> Self {
        Transport {
            set: SocketSet::new(route.src),
            sender: Sender::Udp(HashMap::new()),
            privilege,
            src: route.src,
            tos: opts.tos,
            udp_opts: base_options(opts),
        }
    }

    fn open_raw(opts: &TraceOptions, route: Route) -> Result<(Self, Shape), TraceError> {
        let mut t = Self::new(opts, route, Privilege::Raw);
        let base = base_options(opts);
        let v6 = opts.target.is_ipv6();
        let probe_opts = SocketOptions {
            pmtu: Some(PmtuMode::Probe),
            recv_err: true,
            ..base.clone()
        };
        let icmp = icmp_socket(v6, PrivilegeMode::Raw, &probe_opts, None)?;
        let icmp_parse = if v6 { Parse::Icmpv6 } else { Parse::Ipv4Packet };
        if v6 {
            let proto_sender = opts.protocol != Protocol::Icmp;
            let icmp_ep = t.set.push(Endpoint::new(
                icmp,
                icmp_parse,
                Errors::TxOnly,
                !proto_sender,
            )?);
            let sender = if proto_sender {
                let (proto, parse) = match opts.protocol {
                    Protocol::Tcp => (libc::IPPROTO_TCP, Parse::Tcp),
                    _ => (libc::IPPROTO_UDP, Parse::Ignore),
                };
                // A raw UDP socket also receives every UDP datagram of the host: they are
                // read and dropped. Its buffer stays large for the transmit timestamps.
                let s = raw_ip_socket(true, proto, false, &probe_opts)?;
                t.set.push(Endpoint::new(s, parse, Errors::TxOnly, true)?)
            } else {
                icmp_ep
            };
            t.sender = Sender::RawV6(sender);
            let shape = Shape {
                emit: EmitLayer::L4,
                icmp_ident: None,
                src_port: None,
            };
            return Ok((t, shape));
        }
        t.set
            .push(Endpoint::new(icmp, icmp_parse, Errors::TxOnly, false)?);
        if opts.protocol == Protocol::Tcp {
            let tcp = raw_ip_socket(false, libc::IPPROTO_TCP, false, &base)?;
            t.set.push(Endpoint::new(
                tcp,
                Parse::Ipv4Packet,
                Errors::TxOnly,
                false,
            )?);
        }
        let sender = raw_ipv4_sender(&SocketOptions {
            recv_err: true,
            ..base
        })?;
        let i = t
            .set
            .push(Endpoint::new(sender, Parse::Ignore, Errors::TxOnly, true)?);
        t.sender = Sender::RawV4(i);
        let shape = Shape {
            emit: EmitLayer::Ip,
            icmp_ident: None,
            src_port: None,
        };
        Ok((t, shape))
    }

    fn open_unprivileged(opts: &TraceOptions, route: Route) -> Result<(Self, Shape), TraceError> {
        let mut t = Self::new(opts, route, Privilege::Unprivileged);
        t.udp_opts = SocketOptions {
            recv_err: true,
            pmtu: Some(PmtuMode::Probe),
            ..base_options(opts)
        };
        let v6 = opts.target.is_ipv6();
        match opts.protocol {
            Protocol::Tcp => Err(TraceError::TcpNeedsRaw),
            Protocol::Icmp => {
                let bind = SocketAddr::new(route.src, 0);
                let s = icmp_socket(v6, PrivilegeMode::Datagram, &t.udp_opts, Some(bind))?;
                let parse = if v6 { Parse::Icmpv6 } else { Parse::Icmpv4 };
                let i = t.set.push(Endpoint::new(s, parse, Errors::Ping, true)?);
                let ident = t
                    .set
                    .get(i)
                    .and_then(Endpoint::local_addr)
                    .map(|a| a.port());
                t.sender = Sender::Ping(i);
                let shape = Shape {
                    emit: EmitLayer::L4,
                    icmp_ident: ident,
                    src_port: None,
                };
                Ok((t, shape))
            }
            Protocol::Udp => {
                let i = t.open_udp(opts.source_port.unwrap_or(0))?;
                let port = t
                    .set
                    .get(i)
                    .and_then(Endpoint::local_addr)
                    .map(|a| a.port());
                let shape = Shape {
                    emit: EmitLayer::L4,
                    icmp_ident: None,
                    src_port: port,
                };
                Ok((t, shape))
            }
        }
    }

    /// Opens the unprivileged UDP socket for source port `port` (0: any free port).
    fn open_udp(&mut self, port: u16) -> Result<usize, TraceError> {
        let s = udp_socket(SocketAddr::new(self.src, port), &self.udp_opts)?;
        let bound = s
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .map_or(port, |a| a.port());
        let parse = Parse::Udp { port: bound };
        let ep = Endpoint::new(s, parse, Errors::Udp { port: bound }, true)?;
        let i = self.set.push(ep);
        if let Sender::Udp(ports) = &mut self.sender {
            ports.insert(bound, i);
        }
        Ok(i)
    }

    /// Binds a UDP socket on a free port to receive replies (STAMP reflectors) to UDP probes
    /// that raw sockets send from that port; returns the port.
    pub(crate) fn listen_udp(&mut self) -> Result<u16, TraceError> {
        let any = SocketAddr::new(self.src, 0);
        let s = udp_socket(any, &self.udp_opts)?;
        let port = s
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .map_or(0, |a| a.port());
        let ep = Endpoint::new(s, Parse::Udp { port }, Errors::TxOnly, false)?;
        self.set.push(ep);
        Ok(port)
    }

    /// How the probes were sent.
    pub(crate) fn privilege(&self) -> Privilege {
        self.privilege
    }

    /// Sends one probe (`buf` is what the state machine wrote).
    pub(super) async fn send(&mut self, tx: &Transmit, buf: &[u8]) -> Result<(), SendError> {
        let ttl_opts = SendOptions {
            source: None,
            ttl: Some(tx.ttl),
            tos: (self.tos != 0).then_some(self.tos),
        };
        let target = tx.probe.dst;
        let to = |port: u16| SocketAddr::new(target, port);
        let (i, data, dst, send_opts) = match &self.sender {
            Sender::RawV4(i) => (*i, buf, to(0), SendOptions::default()),
            Sender::RawV6(i) => {
                let src = tx.probe.src;
                let source = (!src.is_unspecified()).then(|| PacketSource::addr(src));
                (*i, buf, to(0), SendOptions { source, ..ttl_opts })
            }
            Sender::Ping(i) => (*i, buf, to(0), ttl_opts),
            Sender::Udp(ports) => {
                let ProbeL4::Udp { src_port, dst_port } = tx.probe.l4 else {
                    return Err(SendError::Fatal(TraceError::TcpNeedsRaw));
                };
                let i = match ports.get(&src_port) {
                    Some(&i) => i,
                    None => self.open_udp(src_port).map_err(SendError::Fatal)?,
                };
                self.set.udp.record(src_port, to(dst_port), buf);
                let payload = buf.get(8..).unwrap_or_default();
                (i, payload, to(dst_port), ttl_opts)
            }
        };
        match self.set.send(i, data, dst, &send_opts, tx.id).await {
            Ok(()) => Ok(()),
            Err(e) => Err(classify_send_error(e, target)),
        }
    }

    /// Waits for something that may be an answer (see [`SocketSet::wait`]).
    pub(super) async fn wait(&mut self, events: &mut Vec<Event>) -> io::Result<()> {
        self.set.wait(events).await
    }

    /// Reads everything queued (see [`SocketSet::drain`]).
    pub(super) fn drain(&mut self, events: &mut Vec<Event>) -> io::Result<()> {
        self.set.drain(events)
    }
}

fn classify_send_error(e: io::Error, target: IpAddr) -> SendError {
    match e.raw_os_error() {
        Some(libc::EMSGSIZE) => SendError::TooBig,
        // A local firewall (nftables/iptables output chain) refuses the probes.
        Some(libc::EPERM) => SendError::Fatal(TraceError::Send { target, source: e }),
        _ => SendError::Dropped(e),
    }
}
