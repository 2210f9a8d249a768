//! The sockets of one path test and what comes out of them: answers (parsed into [`Answer`])
//! and kernel transmit timestamps, as [`Event`]s in the order the state machines need them.
//!
//! Every socket is read in two ways: its receive queue (answers on raw and ping sockets) and its
//! error queue (transmit timestamps; on unprivileged sockets also the ICMP errors about our
//! probes, `IP_RECVERR`). [`SocketSet::wait`] sleeps until any queue that can hold an answer has
//! something; [`SocketSet::drain`] then reads every queue without blocking, error queues first,
//! so the transmit timestamp of a probe is always known before its answer is handled.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::Poll;

use crate::io::{ErrQueueMessage, IcmpError, RecvMeta, SendOptions, TimestampedSocket, TxId};
use crate::time::Nanos;
use crate::trace::flow::ProbeId;
use crate::wire::answer::{Answer, AnswerKind};
use crate::wire::icmp::IcmpKind;
use crate::wire::probe::{PROTO_ICMP, PROTO_ICMPV6, PROTO_UDP};
use crate::wire::quote::{Quote, QuotedL4};

/// Receive buffer size per socket read.
const BUF_LEN: usize = 4096;
/// Reads per queue per drain, so a flood of foreign traffic cannot starve the timers.
const DRAIN_LIMIT: usize = 512;
/// Sends remembered while their transmit timestamps are outstanding.
const SENT_MEMORY: usize = 4096;
/// A transmit timestamp this far from the user-space send time is not believed (ns).
const TX_SANITY_NS: i64 = 100_000_000;

/// What the receive queue of a socket holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Parse {
    /// Whole IPv4 packets (raw IPv4 ICMP and TCP sockets).
    Ipv4Packet,
    /// `ICMPv4` messages without IP header (IPv4 ping sockets).
    Icmpv4,
    /// `ICMPv6` messages without IP header (raw `ICMPv6` and IPv6 ping sockets).
    Icmpv6,
    /// TCP segments without IP header (raw IPv6 TCP sockets).
    Tcp,
    /// UDP payloads (UDP sockets bound to our probes' source port): STAMP replies.
    Udp {
        /// The socket's local port.
        port: u16,
    },
    /// Nothing we use (send-only sockets); read and dropped.
    Ignore,
}

/// What the error queue of a socket holds besides transmit timestamps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Errors {
    /// Nothing else we use.
    TxOnly,
    /// ICMP errors quoting our echo requests (ping sockets): the payload starts at the quoted
    /// ICMP header.
    Ping,
    /// ICMP errors about datagrams of the UDP socket bound to this port: the payload starts
    /// after the quoted UDP header.
    Udp {
        /// The socket's local port.
        port: u16,
    },
}

/// Something the state machines must hear about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Event {
    /// The kernel transmit timestamp of a probe.
    Sent {
        /// The probe.
        id: ProbeId,
        /// When it left.
        at: Nanos,
    },
    /// An answer and when it arrived.
    Answer {
        /// The answer.
        answer: Answer,
        /// Arrival time (kernel timestamp when available).
        rx: Nanos,
    },
}

/// One socket and its bookkeeping.
#[derive(Debug)]
pub(super) struct Endpoint {
    sock: TimestampedSocket,
    parse: Parse,
    errors: Errors,
    rbuf: Vec<u8>,
    ebuf: Vec<u8>,
    /// Sends awaiting their transmit timestamp: kernel id, probe, user-space send time.
    sent: VecDeque<(TxId, ProbeId, Nanos)>,
}

impl Endpoint {
    /// Wraps an opened socket; `tx_timestamps` asks the kernel for transmit timestamps.
    pub(super) fn new(
        socket: socket2::Socket,
        parse: Parse,
        errors: Errors,
        tx_timestamps: bool,
    ) -> Result<Self, crate::io::IoError> {
        Ok(Endpoint {
            sock: TimestampedSocket::from_socket(socket, tx_timestamps)?,
            parse,
            errors,
            rbuf: vec![0; BUF_LEN],
            ebuf: vec![0; BUF_LEN],
            sent: VecDeque::new(),
        })
    }

    /// The bound local address.
    pub(super) fn local_addr(&self) -> Option<SocketAddr> {
        self.sock.local_addr()
    }

    fn waits_for_data(&self) -> bool {
        self.parse != Parse::Ignore
    }

    fn waits_for_errors(&self) -> bool {
        self.errors != Errors::TxOnly
    }
}

/// The UDP checksums of our recent unprivileged UDP probes, keyed by what an ICMP error about
/// them shows: local port, destination (address and port) and the first payload word (the word
/// that steers the checksum to the probe id). The kernel's error queue returns the quoted
/// payload but not the quoted UDP header, so this is how an error is traced back to its probe.
/// Two generations of [`UDP_MEMORY`] probes are kept: a long run to many targets stays bounded.
#[derive(Debug, Default)]
pub(super) struct UdpChecksums {
    by_payload: HashMap<(u16, SocketAddr, u16), u16>,
    older: HashMap<(u16, SocketAddr, u16), u16>,
    /// Checksum per (local port, destination) and how many probes used that pair: when a
    /// router quotes no payload, a pair used once (classic mode) still identifies the probe.
    by_ports: HashMap<(u16, SocketAddr), (u16, u32)>,
}

/// Probes per generation of [`UdpChecksums`]: more than the 16-bit probe ids in flight.
const UDP_MEMORY: usize = 1 << 16;

impl UdpChecksums {
    /// Remembers a probe sent from `port` to `dst`; `segment` is its UDP header and payload.
    pub(super) fn record(&mut self, port: u16, dst: SocketAddr, segment: &[u8]) {
        if segment.len() < 8 {
            return;
        }
        if self.by_payload.len() >= UDP_MEMORY {
            self.older = std::mem::take(&mut self.by_payload);
            self.by_ports.clear();
        }
        let checksum = u16::from_be_bytes([segment[6], segment[7]]);
        if let Some(word) = segment.get(8..10) {
            let word = u16::from_be_bytes([word[0], word[1]]);
            self.by_payload.insert((port, dst, word), checksum);
        }
        let e = self.by_ports.entry((port, dst)).or_insert((checksum, 0));
        *e = (checksum, e.1 + 1);
    }

    /// The checksum of the probe to `dst` an error quoting `payload` is about.
    fn lookup(&self, port: u16, dst: SocketAddr, payload: &[u8]) -> Option<u16> {
        let dst = SocketAddr::new(dst.ip().to_canonical(), dst.port());
        if let Some(w) = payload.get(0..2) {
            let key = (port, dst, u16::from_be_bytes([w[0], w[1]]));
            return self
                .by_payload
                .get(&key)
                .or_else(|| self.older.get(&key))
                .copied();
        }
        match self.by_ports.get(&(port, dst)) {
            Some(&(checksum, 1)) => Some(checksum),
            _ => None,
        }
    }
}

/// The answer an ICMP error from a socket's error queue stands for. The kernel hands over the
/// router (`offender`), type, code, MTU and the original destination, plus the quoted bytes
/// after the header it matched the socket with; the quote is rebuilt from those, with our
/// source address (a NAT on the path cannot be seen this way) and no quoted TTL.
fn error_answer(
    e: &IcmpError,
    payload: &[u8],
    errors: Errors,
    src: IpAddr,
    udp: &UdpChecksums,
) -> Option<Answer> {
    let from = e.offender?;
    let dst = e.original_dst?;
    let (protocol, l4) = match errors {
        Errors::Ping => {
            let h = payload.get(..8)?;
            let be = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
            let proto = if e.icmpv6 { PROTO_ICMPV6 } else { PROTO_ICMP };
            (
                proto,
                QuotedL4::IcmpEcho {
                    checksum: be(2),
                    ident: be(4),
                    seq: be(6),
                },
            )
        }
        Errors::Udp { port } => {
            let checksum = udp.lookup(port, dst, payload)?;
            (
                PROTO_UDP,
                QuotedL4::Udp {
                    src_port: port,
                    dst_port: dst.port(),
                    length: 0,
                    checksum,
                },
            )
        }
        Errors::TxOnly => return None,
    };
    Some(Answer {
        from: from.to_canonical(),
        reply_ttl: e.ttl,
        kind: AnswerKind::Icmp(IcmpKind::classify(
            e.icmpv6,
            e.icmp_type,
            e.icmp_code,
            e.info,
        )),
        icmp_type_code: Some((e.icmp_type, e.icmp_code)),
        quote: Some(Quote {
            src,
            dst: dst.ip().to_canonical(),
            protocol,
            ttl: 0,
            ip_id: 0,
            flow_label: 0,
            total_len: 0,
            l4,
        }),
        mpls: Vec::new(),
    })
}

/// Parses a datagram from a receive queue.
fn parse_datagram(parse: Parse, buf: &[u8], meta: &RecvMeta) -> Option<Answer> {
    let from = meta.source.map(|s| s.ip().to_canonical());
    let r = match (parse, from) {
        (Parse::Ipv4Packet, _) => Answer::parse_ipv4(buf),
        (Parse::Icmpv4, Some(IpAddr::V4(a))) => Answer::parse_icmpv4(buf, a, meta.ttl),
        (Parse::Icmpv6, Some(IpAddr::V6(a))) => Answer::parse_icmpv6(buf, a, meta.ttl),
        (Parse::Tcp, Some(a)) => Answer::parse_tcp(buf, a, meta.ttl),
        (Parse::Udp { port }, Some(_)) => match meta.source {
            Some(s) => Answer::parse_stamp_reply(buf, s, port, meta.ttl),
            None => return None,
        },
        _ => return None,
    };
    r.map_err(|e| tracing::trace!("ignored a datagram: {e}"))
        .ok()
}

/// What one queue read returned.
enum Got {
    Data(io::Result<RecvMeta>),
    Error(io::Result<ErrQueueMessage>),
}

impl Got {
    fn would_block(&self) -> bool {
        let kind = match self {
            Got::Data(Err(e)) | Got::Error(Err(e)) => e.kind(),
            _ => return false,
        };
        kind == io::ErrorKind::WouldBlock
    }
}

/// The sockets of a path test.
#[derive(Debug)]
pub(super) struct SocketSet {
    eps: Vec<Endpoint>,
    /// Checksums of unprivileged UDP probes.
    pub(super) udp: UdpChecksums,
    /// Our source address (for rebuilt quotes).
    src: IpAddr,
}

impl SocketSet {
    /// An empty set for probes from `src`.
    pub(super) fn new(src: IpAddr) -> Self {
        SocketSet {
            eps: Vec::new(),
            udp: UdpChecksums::default(),
            src,
        }
    }

    /// Adds a socket; returns its index.
    pub(super) fn push(&mut self, ep: Endpoint) -> usize {
        self.eps.push(ep);
        self.eps.len() - 1
    }

    /// The socket at `i`.
    pub(super) fn get(&self, i: usize) -> Option<&Endpoint> {
        self.eps.get(i)
    }

    /// Sends `buf` to `dst` on socket `i` for probe `id`, remembering it for its transmit
    /// timestamp.
    pub(super) async fn send(
        &mut self,
        i: usize,
        buf: &[u8],
        dst: SocketAddr,
        opts: &SendOptions,
        id: ProbeId,
    ) -> io::Result<()> {
        let ep = self
            .eps
            .get_mut(i)
            .ok_or_else(|| io::Error::other("no such socket"))?;
        let at = Nanos::now_realtime();
        let tx = ep.sock.send_with(buf, dst, opts).await?;
        if ep.sock.timestamp_mode().tx_enabled() {
            if ep.sent.len() >= SENT_MEMORY {
                ep.sent.pop_front();
            }
            ep.sent.push_back((tx, id, at));
        }
        Ok(())
    }

    /// Waits until a queue that can hold an answer has something, and reads that one thing
    /// into `events`. Cancel-safe: nothing is read unless the call completes.
    pub(super) async fn wait(&mut self, events: &mut Vec<Event>) -> io::Result<()> {
        let mut done: Vec<(usize, Got)> = Vec::new();
        {
            type Read<'a> = Pin<Box<dyn Future<Output = (usize, Got)> + Send + 'a>>;
            let mut reads: Vec<Read<'_>> = Vec::new();
            for (i, ep) in self.eps.iter_mut().enumerate() {
                let (data, errors) = (ep.waits_for_data(), ep.waits_for_errors());
                let Endpoint {
                    sock, rbuf, ebuf, ..
                } = ep;
                let sock: &TimestampedSocket = sock;
                if data {
                    reads.push(Box::pin(
                        async move { (i, Got::Data(sock.recv(rbuf).await)) },
                    ));
                }
                if errors {
                    reads.push(Box::pin(async move {
                        (i, Got::Error(sock.recv_error(ebuf).await))
                    }));
                }
            }
            if reads.is_empty() {
                return std::future::pending().await;
            }
            std::future::poll_fn(|cx| {
                for r in &mut reads {
                    if let Poll::Ready(x) = r.as_mut().poll(cx) {
                        done.push(x);
                    }
                }
                if done.is_empty() {
                    Poll::Pending
                } else {
                    Poll::Ready(())
                }
            })
            .await;
        }
        for (i, got) in done {
            self.on_got(i, got, events)?;
        }
        Ok(())
    }

    /// Reads everything queued on every socket without blocking: all error queues first, then
    /// the receive queues.
    pub(super) fn drain(&mut self, events: &mut Vec<Event>) -> io::Result<()> {
        for errors in [true, false] {
            for i in 0..self.eps.len() {
                for _ in 0..DRAIN_LIMIT {
                    let ep = &mut self.eps[i];
                    let got = if errors {
                        Got::Error(ep.sock.try_recv_error(&mut ep.ebuf))
                    } else {
                        Got::Data(ep.sock.try_recv(&mut ep.rbuf))
                    };
                    if got.would_block() {
                        break;
                    }
                    self.on_got(i, got, events)?;
                }
            }
        }
        Ok(())
    }

    fn on_got(&mut self, i: usize, got: Got, events: &mut Vec<Event>) -> io::Result<()> {
        match got {
            Got::Data(r) => self.on_data(i, r, events),
            Got::Error(r) => self.on_error(i, r, events),
        }
    }

    fn on_data(
        &mut self,
        i: usize,
        r: io::Result<RecvMeta>,
        events: &mut Vec<Event>,
    ) -> io::Result<()> {
        let meta = match r {
            Ok(m) => m,
            // An ICMP error the kernel also reports on the next read (unprivileged sockets).
            Err(e) if crate::io::is_async_icmp_error(&e) => return Ok(()),
            Err(e) => return Err(e),
        };
        let ep = &self.eps[i];
        if let Some(answer) = parse_datagram(ep.parse, &ep.rbuf[..meta.len], &meta) {
            events.push(Event::Answer {
                answer,
                rx: meta.time,
            });
        }
        Ok(())
    }

    fn on_error(
        &mut self,
        i: usize,
        r: io::Result<ErrQueueMessage>,
        events: &mut Vec<Event>,
    ) -> io::Result<()> {
        let msg = match r {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        };
        let ep = &mut self.eps[i];
        match msg {
            ErrQueueMessage::TxTimestamp(t) => {
                while let Some(&(id, probe, at)) = ep.sent.front() {
                    if id > t.id {
                        break;
                    }
                    ep.sent.pop_front();
                    if id == t.id && (t.time - at).abs() < TX_SANITY_NS {
                        events.push(Event::Sent {
                            id: probe,
                            at: t.time,
                        });
                    }
                }
            }
            ErrQueueMessage::Icmp(e) => {
                let payload = &ep.ebuf[..e.payload_len.min(ep.ebuf.len())];
                if let Some(answer) = error_answer(&e, payload, ep.errors, self.src, &self.udp) {
                    events.push(Event::Answer { answer, rx: e.time });
                }
            }
            other => tracing::trace!("error queue: {other:?}"),
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "sockets_tests.rs"]
mod tests;
