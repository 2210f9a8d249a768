//! Independent measurement probes: paced UDP bursts against an echo server (RTT, loss),
//! one-way delay with kernel receive timestamps, and TTL-limited UDP probes answered by ICMP.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::socket::{
    self, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockProtocol, SockType,
    SockaddrStorage, sockopt,
};
use nix::sys::time::TimeVal;
use nix::time::{ClockId, ClockNanosleepFlags, clock_gettime, clock_nanosleep};
use pnet_packet::Packet;
use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::udp::UdpPacket;

use crate::error::{Error, Result};
use crate::host::Host;
use crate::impair::monotonic_ns;

/// Payload header of burst probes: sequence number and send time (ns), big-endian.
const HEADER: usize = 16;

/// Outcome of [`udp_burst`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Burst {
    /// Round-trip time of each probe by sequence number; `None` if no reply came.
    pub rtts: Vec<Option<Duration>>,
    /// Replies received for a probe already answered.
    pub duplicates: usize,
}

impl Burst {
    /// Probes answered.
    pub fn received(&self) -> usize {
        self.rtts.iter().flatten().count()
    }

    /// Probes not answered.
    pub fn lost(&self) -> usize {
        self.rtts.len() - self.received()
    }

    /// Median RTT of the answered probes.
    pub fn median(&self) -> Option<Duration> {
        let mut rtts: Vec<Duration> = self.rtts.iter().flatten().copied().collect();
        rtts.sort_unstable();
        rtts.get(rtts.len() / 2).copied()
    }
}

fn sys(context: &str) -> impl FnOnce(nix::Error) -> Error + '_ {
    move |e| Error::sys(context, e)
}

fn io(context: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::io(context, e)
}

/// The unspecified address of `dst`'s family, port 0.
fn any_addr(dst: SocketAddr) -> SocketAddr {
    match dst {
        SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
    }
}

/// Sleeps until the `CLOCK_MONOTONIC` time `deadline_ns`.
fn sleep_until(deadline_ns: u64) {
    let ts = nix::sys::time::TimeSpec::from_duration(Duration::from_nanos(deadline_ns));
    let _ = clock_nanosleep(
        ClockId::CLOCK_MONOTONIC,
        ClockNanosleepFlags::TIMER_ABSTIME,
        &ts,
    );
}

/// Sends `count` UDP probes from `host` to the echo server at `dst`, one every `interval`
/// (absolute schedule), collecting replies until `linger` after the last send. Bounded in
/// count and time by its arguments.
pub fn udp_burst(
    host: &Host,
    dst: SocketAddr,
    count: usize,
    interval: Duration,
    linger: Duration,
) -> Result<Burst> {
    let socket = host
        .try_run_in(|| super::bind_udp(any_addr(dst)))?
        .map_err(io("binding burst socket"))?;
    socket
        .set_read_timeout(Some(Duration::from_millis(5)))
        .map_err(io("setting burst timeout"))?;
    let receiver = socket.try_clone().map_err(io("cloning burst socket"))?;
    let done = Arc::new(AtomicBool::new(false));
    let reader_done = Arc::clone(&done);
    let reader = std::thread::spawn(move || {
        let mut rtts = vec![None; count];
        let mut duplicates = 0;
        let mut buf = [0u8; 2048];
        while !reader_done.load(Ordering::Relaxed) {
            let Ok(n) = receiver.recv(&mut buf) else {
                continue;
            };
            let now = monotonic_ns();
            if n < HEADER {
                continue;
            }
            let seq = u64::from_be_bytes(buf[..8].try_into().unwrap_or_default()) as usize;
            let sent = u64::from_be_bytes(buf[8..16].try_into().unwrap_or_default());
            match rtts.get_mut(seq) {
                Some(slot @ None) => *slot = Some(Duration::from_nanos(now.saturating_sub(sent))),
                Some(Some(_)) => duplicates += 1,
                None => {}
            }
        }
        Burst { rtts, duplicates }
    });
    let start = monotonic_ns();
    let interval_ns = interval.as_nanos() as u64;
    let mut payload = [0u8; 64];
    let mut send_result = Ok(());
    for seq in 0..count {
        sleep_until(start + seq as u64 * interval_ns);
        payload[..8].copy_from_slice(&(seq as u64).to_be_bytes());
        payload[8..16].copy_from_slice(&monotonic_ns().to_be_bytes());
        if let Err(e) = socket.send_to(&payload, dst) {
            send_result = Err(Error::io(format!("sending probe to {dst}"), e));
            break;
        }
    }
    std::thread::sleep(linger);
    done.store(true, Ordering::Relaxed);
    let burst = reader
        .join()
        .map_err(|_| Error::Invalid("burst reader panicked".into()))?;
    send_result.map(|()| burst)
}

fn realtime_ns() -> u64 {
    clock_gettime(ClockId::CLOCK_REALTIME).map_or(0, |t| {
        t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
    })
}

/// Measures one-way delays from `tx` to `rx`: `count` UDP datagrams, one every `interval`,
/// each stamped with `CLOCK_REALTIME` just before sending, received on `dst` (an address of
/// `rx`) with kernel receive timestamps (`SO_TIMESTAMPNS`) so the receiver's scheduling does
/// not count. Both ends are in this process, so they share one clock. Returns the delay of
/// each datagram in ns (`None`: not received within `linger` after the last send).
pub fn one_way_delays(
    tx: &Host,
    rx: &Host,
    dst: SocketAddr,
    count: usize,
    interval: Duration,
    linger: Duration,
) -> Result<Vec<Option<i64>>> {
    let receiver = rx
        .try_run_in(|| super::bind_udp(dst))?
        .map_err(io("binding one-way receiver"))?;
    socket::setsockopt(&receiver, sockopt::ReceiveTimestampns, &true)
        .map_err(sys("enabling SO_TIMESTAMPNS"))?;
    socket::setsockopt(&receiver, sockopt::ReceiveTimeout, &TimeVal::new(0, 5_000))
        .map_err(sys("setting receive timeout"))?;
    let sender = tx
        .try_run_in(|| super::bind_udp(any_addr(dst)))?
        .map_err(io("binding one-way sender"))?;
    let done = Arc::new(AtomicBool::new(false));
    let reader_done = Arc::clone(&done);
    let reader = std::thread::spawn(move || {
        let mut delays = vec![None; count];
        let mut buf = [0u8; 2048];
        let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
        while !reader_done.load(Ordering::Relaxed) {
            let mut iov = [std::io::IoSliceMut::new(&mut buf)];
            let Ok(msg) = socket::recvmsg::<SockaddrStorage>(
                receiver.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::empty(),
            ) else {
                continue;
            };
            let rx_ns = msg.cmsgs().ok().and_then(|mut c| {
                c.find_map(|m| match m {
                    ControlMessageOwned::ScmTimestampns(ts) => {
                        Some(ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64)
                    }
                    _ => None,
                })
            });
            let n = msg.bytes;
            if let (Some(rx_ns), true) = (rx_ns, n >= HEADER) {
                let seq = u64::from_be_bytes(buf[..8].try_into().unwrap_or_default()) as usize;
                let sent = u64::from_be_bytes(buf[8..16].try_into().unwrap_or_default());
                if let Some(slot) = delays.get_mut(seq) {
                    *slot = Some(rx_ns as i64 - sent as i64);
                }
            }
        }
        delays
    });
    let interval_ns = interval.as_nanos() as u64;
    // Pace from a thread with 1 ns timer slack so the schedule is kept at high rates.
    let sent = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let _ = nix::sys::prctl::set_timerslack(1);
                let start = monotonic_ns();
                let mut payload = [0u8; 64];
                for seq in 0..count {
                    sleep_until(start + seq as u64 * interval_ns);
                    payload[..8].copy_from_slice(&(seq as u64).to_be_bytes());
                    payload[8..16].copy_from_slice(&realtime_ns().to_be_bytes());
                    sender.send_to(&payload, dst)?;
                }
                Ok::<(), std::io::Error>(())
            })
            .join()
    });
    std::thread::sleep(linger);
    done.store(true, Ordering::Relaxed);
    let delays = reader
        .join()
        .map_err(|_| Error::Invalid("one-way reader panicked".into()))?;
    match sent {
        Ok(Ok(())) => Ok(delays),
        Ok(Err(e)) => Err(Error::io(format!("sending to {dst}"), e)),
        Err(_) => Err(Error::Invalid("one-way sender panicked".into())),
    }
}

/// An ICMP answer to a TTL-limited probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HopReply {
    /// Who answered.
    pub from: IpAddr,
    /// `true` for destination unreachable (the probe reached its target), `false` for time
    /// exceeded (a router on the way).
    pub reached: bool,
}

/// Sends one UDP probe from `host` (source port `src_port`) to `dst` with TTL / hop limit
/// `ttl` and waits up to `timeout` for the ICMP time-exceeded or port-unreachable answer
/// quoting it (read on a raw ICMP socket inside `host`). `dst` should be a port nobody
/// listens on (e.g. 33434).
pub fn ttl_probe(
    host: &Host,
    dst: SocketAddr,
    ttl: u8,
    src_port: u16,
    timeout: Duration,
) -> Result<Option<HopReply>> {
    let v6 = dst.is_ipv6();
    let (family, protocol) = if v6 {
        (AddressFamily::Inet6, SockProtocol::IcmpV6)
    } else {
        (AddressFamily::Inet, SockProtocol::Icmp)
    };
    let (icmp, udp): (OwnedFd, UdpSocket) = host.try_run_in(|| -> Result<_> {
        let icmp = socket::socket(family, SockType::Raw, SockFlag::SOCK_CLOEXEC, protocol)
            .map_err(sys("opening raw ICMP socket"))?;
        let mut bind = any_addr(dst);
        bind.set_port(src_port);
        let udp = super::bind_udp(bind).map_err(io("binding probe socket"))?;
        Ok((icmp, udp))
    })??;
    if v6 {
        socket::setsockopt(&udp, sockopt::Ipv6Ttl, &i32::from(ttl))
    } else {
        socket::setsockopt(&udp, sockopt::Ipv4Ttl, &i32::from(ttl))
    }
    .map_err(sys("setting probe TTL"))?;
    udp.send_to(b"probe-lab ttl probe", dst)
        .map_err(io("sending TTL probe"))?;
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 2048];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        let left = TimeVal::new(left.as_secs() as i64, left.subsec_micros().max(1) as i64);
        socket::setsockopt(&icmp, sockopt::ReceiveTimeout, &left)
            .map_err(sys("setting ICMP timeout"))?;
        let (n, from) = match socket::recvfrom::<SockaddrStorage>(icmp.as_raw_fd(), &mut buf) {
            Ok(got) => got,
            Err(nix::Error::EAGAIN | nix::Error::EINTR) => continue,
            Err(e) => return Err(Error::sys("receiving ICMP", e)),
        };
        let answer = if v6 {
            let from = from.and_then(|a| a.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip())));
            from.and_then(|from| parse_icmpv6(&buf[..n], src_port, from))
        } else {
            parse_icmpv4(&buf[..n], src_port)
        };
        if answer.is_some() {
            return Ok(answer);
        }
    }
}

/// Parses an IPv4 packet (as read from a raw ICMP socket) carrying an ICMP time exceeded
/// (11) or destination unreachable (3) that quotes a UDP packet from `src_port`.
fn parse_icmpv4(packet: &[u8], src_port: u16) -> Option<HopReply> {
    let ip = Ipv4Packet::new(packet)?;
    let icmp = ip.payload();
    let reached = match icmp.first()? {
        11 => false,
        3 => true,
        _ => return None,
    };
    let quoted = Ipv4Packet::new(icmp.get(8..)?)?;
    let udp = UdpPacket::new(quoted.payload())?;
    (udp.get_source() == src_port).then_some(HopReply {
        from: IpAddr::V4(ip.get_source()),
        reached,
    })
}

/// Parses an `ICMPv6` message (as read from a raw `ICMPv6` socket, without IPv6 header): time
/// exceeded (3) or destination unreachable (1) quoting a UDP packet from `src_port`.
fn parse_icmpv6(message: &[u8], src_port: u16, from: IpAddr) -> Option<HopReply> {
    let reached = match message.first()? {
        3 => false,
        1 => true,
        _ => return None,
    };
    // 8 bytes of ICMPv6 header, 40 of quoted IPv6 header, then the UDP header.
    let quoted_next_header = *message.get(8 + 6)?;
    let udp = UdpPacket::new(message.get(48..)?)?;
    (quoted_next_header == 17 && udp.get_source() == src_port).then_some(HopReply { from, reached })
}

/// Runs TTL-limited probes from `host` towards `dst` (fixed ports, so one flow) for TTL 1, 2,
/// … until the destination answers or `max_ttl`. Returns who answered at each TTL (`None`
/// for no answer within `timeout`).
pub fn traceroute(
    host: &Host,
    dst: SocketAddr,
    max_ttl: u8,
    src_port: u16,
    timeout: Duration,
) -> Result<Vec<Option<IpAddr>>> {
    let mut hops = Vec::new();
    for ttl in 1..=max_ttl {
        let reply = ttl_probe(host, dst, ttl, src_port, timeout)?;
        hops.push(reply.map(|r| r.from));
        if reply.is_some_and(|r| r.reached) {
            break;
        }
    }
    Ok(hops)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 time-exceeded from 198.18.0.2 quoting a UDP packet 198.18.0.1:40000 -> :33434.
    fn time_exceeded_v4() -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 56, 0, 0, 0, 0, 64, 1, 0, 0, 198, 18, 0, 2, 198, 18, 0,
            1, // outer IPv4
            11, 0, 0, 0, 0, 0, 0, 0, // ICMP time exceeded
            0x45, 0, 0, 28, 0, 0, 0, 0, 1, 17, 0, 0, 198, 18, 0, 1, 198, 18, 1,
            2, // quoted IPv4
        ];
        p.extend_from_slice(&[0x9c, 0x40, 0x82, 0x9a, 0, 8, 0, 0]); // quoted UDP 40000 -> 33434
        p
    }

    #[test]
    fn icmpv4_time_exceeded_is_matched_by_source_port() {
        let packet = time_exceeded_v4();
        assert_eq!(
            parse_icmpv4(&packet, 40000),
            Some(HopReply {
                from: IpAddr::from([198, 18, 0, 2]),
                reached: false
            })
        );
        assert_eq!(parse_icmpv4(&packet, 40001), None);
        let mut unreachable = packet.clone();
        unreachable[20] = 3;
        assert!(parse_icmpv4(&unreachable, 40000).is_some_and(|r| r.reached));
        let mut echo_reply = packet;
        echo_reply[20] = 0;
        assert_eq!(parse_icmpv4(&echo_reply, 40000), None);
    }

    #[test]
    fn icmpv6_answers_are_matched_by_source_port() {
        let mut msg = vec![1, 4, 0, 0, 0, 0, 0, 0]; // destination unreachable, port
        let mut quoted_ip = vec![0x60, 0, 0, 0, 0, 8, 17, 1];
        quoted_ip.extend_from_slice(&[0; 32]);
        msg.extend_from_slice(&quoted_ip);
        msg.extend_from_slice(&[0x9c, 0x40, 0x82, 0x9a, 0, 8, 0, 0]);
        let from: IpAddr = "fd00:2::2".parse().expect("literal");
        assert_eq!(
            parse_icmpv6(&msg, 40000, from),
            Some(HopReply {
                from,
                reached: true
            })
        );
        assert_eq!(parse_icmpv6(&msg, 1, from), None);
        msg[0] = 3;
        assert!(parse_icmpv6(&msg, 40000, from).is_some_and(|r| !r.reached));
    }
}
