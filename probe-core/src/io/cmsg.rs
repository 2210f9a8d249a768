//! Control messages (ancillary data) read and written as bytes, in safe code.
//!
//! The kernel lays out a control buffer as a sequence of
//!
//! ```text
//! cmsghdr { cmsg_len: size_t, cmsg_level: int, cmsg_type: int } | data | padding
//! ```
//!
//! with every header and the following header aligned to `size_of::<usize>()` (`CMSG_ALIGN`).
//! [`parse`] walks such a buffer and collects what probe uses into [`Ancillary`];
//! [`encode_send_options`] writes the control messages probe sends (source address, TTL,
//! TOS of one datagram).

use std::net::IpAddr;

use crate::io::sockaddr;
use crate::time::Nanos;

/// Control buffer bytes reserved per received message: room for a timestamp (3 timespecs),
/// TTL, TOS, packet info and an extended error with its offender address, with slack.
pub(crate) const RECV_CONTROL_LEN: usize = 256;
/// Control buffer bytes reserved per sent message: one `IPV6_PKTINFO` (the larger pktinfo),
/// two `int` messages (TTL and TOS) and a `UDP_SEGMENT` size.
pub(crate) const SEND_CONTROL_LEN: usize = space(size_of::<libc::in6_pktinfo>())
    + 2 * space(size_of::<libc::c_int>())
    + SEGMENT_CONTROL_LEN;
/// Bytes of a `UDP_SEGMENT` control message (a `u16` segment size).
pub(crate) const SEGMENT_CONTROL_LEN: usize = space(size_of::<u16>());
/// `UDP_SEGMENT` from `linux/udp.h` (not in every libc binding): UDP segmentation offload.
const UDP_SEGMENT: i32 = 103;

const ALIGN: usize = size_of::<usize>();
const HDR_LEN: usize = align(size_of::<libc::cmsghdr>());
const EXT_ERR_LEN: usize = size_of::<libc::sock_extended_err>();

const fn align(len: usize) -> usize {
    (len + ALIGN - 1) & !(ALIGN - 1)
}

/// `CMSG_SPACE`: bytes one control message with `data_len` bytes of data takes.
pub(crate) const fn space(data_len: usize) -> usize {
    HDR_LEN + align(data_len)
}

/// An extended error (`struct sock_extended_err`) from the error queue, with its offender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ExtendedError {
    /// `ee_errno`.
    pub errno: u32,
    /// `ee_origin`: `SO_EE_ORIGIN_*`.
    pub origin: u8,
    /// `ee_type`: the ICMP type for ICMP origins.
    pub kind: u8,
    /// `ee_code`: the ICMP code for ICMP origins.
    pub code: u8,
    /// `ee_info`: e.g. the MTU for "fragmentation needed", the timestamp kind for
    /// timestamping origins.
    pub info: u32,
    /// `ee_data`: the `SOF_TIMESTAMPING_OPT_ID` key for timestamping origins.
    pub data: u32,
    /// `SO_EE_OFFENDER`: the address of the node that sent the ICMP error.
    pub offender: Option<IpAddr>,
}

/// What probe reads from the control messages of one received message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Ancillary {
    /// Software kernel timestamp (`SCM_TIMESTAMPING` entry 0 or `SCM_TIMESTAMPNS`).
    pub time: Option<Nanos>,
    /// `IP_TTL` / `IPV6_HOPLIMIT` of the received packet.
    pub ttl: Option<u8>,
    /// `IP_TOS` / `IPV6_TCLASS` of the received packet.
    pub tos: Option<u8>,
    /// Destination address of the received packet (`IP_PKTINFO` / `IPV6_PKTINFO`).
    pub local: Option<IpAddr>,
    /// Interface the packet arrived on.
    pub ifindex: Option<u32>,
    /// `IP_RECVERR` / `IPV6_RECVERR` entry of an error-queue message.
    pub ext_err: Option<ExtendedError>,
    /// `SO_RXQ_OVFL`: datagrams the socket dropped so far for want of buffer space.
    pub drops: Option<u32>,
}

fn ne_u32(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

fn ne_i32(data: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

/// Reads a `struct timespec`; a zero timespec means "not available" and gives `None`.
fn timespec(data: &[u8]) -> Option<Nanos> {
    const SECS: usize = size_of::<libc::time_t>();
    const NSECS: usize = size_of::<libc::c_long>();
    let secs = libc::time_t::from_ne_bytes(data.get(..SECS)?.try_into().ok()?);
    let nsecs = libc::c_long::from_ne_bytes(data.get(SECS..SECS + NSECS)?.try_into().ok()?);
    if secs <= 0 && nsecs == 0 {
        return None;
    }
    Some(Nanos::from_parts(
        u64::try_from(secs).ok()?,
        u32::try_from(nsecs).ok()?,
    ))
}

fn hop_count(value: Option<i32>) -> Option<u8> {
    value.and_then(|v| u8::try_from(v).ok())
}

fn extended_error(data: &[u8]) -> Option<ExtendedError> {
    if data.len() < EXT_ERR_LEN {
        return None;
    }
    Some(ExtendedError {
        errno: ne_u32(data, 0)?,
        origin: data[4],
        kind: data[5],
        code: data[6],
        info: ne_u32(data, 8)?,
        data: ne_u32(data, 12)?,
        // SO_EE_OFFENDER(ee) is the address right after the struct; for local errors the
        // kernel sets its family to AF_UNSPEC or leaves it out entirely.
        offender: sockaddr::decode_ip(&data[EXT_ERR_LEN..]),
    })
}

fn apply(level: i32, kind: i32, data: &[u8], out: &mut Ancillary) {
    match (level, kind) {
        (libc::SOL_SOCKET, libc::SCM_TIMESTAMPING) => {
            // Three timespecs: [0] software, [1] deprecated, [2] raw hardware. probe uses
            // software stamps only: they are on CLOCK_REALTIME like the rest of its clocks.
            if let Some(t) = timespec(data) {
                out.time = Some(t);
            }
        }
        (libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS) => {
            if let Some(t) = timespec(data) {
                out.time = Some(t);
            }
        }
        (libc::IPPROTO_IP, libc::IP_TTL) | (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT) => {
            out.ttl = hop_count(ne_i32(data, 0));
        }
        (libc::IPPROTO_IP, libc::IP_TOS) => out.tos = data.first().copied(),
        (libc::IPPROTO_IPV6, libc::IPV6_TCLASS) => out.tos = hop_count(ne_i32(data, 0)),
        (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
            // in_pktinfo { ipi_ifindex: int, ipi_spec_dst: in_addr, ipi_addr: in_addr }
            if let (Some(ifindex), Some(addr)) = (ne_u32(data, 0), data.get(8..12)) {
                let addr: [u8; 4] = [addr[0], addr[1], addr[2], addr[3]];
                out.local = Some(IpAddr::from(addr));
                out.ifindex = Some(ifindex);
            }
        }
        (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
            // in6_pktinfo { ipi6_addr: in6_addr, ipi6_ifindex: unsigned int }
            if let (Some(addr), Some(ifindex)) = (data.get(0..16), ne_u32(data, 16)) {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(addr);
                out.local = Some(IpAddr::from(octets).to_canonical());
                out.ifindex = Some(ifindex);
            }
        }
        (libc::SOL_SOCKET, libc::SO_RXQ_OVFL) => out.drops = ne_u32(data, 0),
        (libc::IPPROTO_IP, libc::IP_RECVERR) | (libc::IPPROTO_IPV6, libc::IPV6_RECVERR) => {
            out.ext_err = extended_error(data);
        }
        _ => {}
    }
}

/// Walks a control buffer as filled by `recvmsg` (`msg_controllen` bytes) and collects the
/// control messages probe understands. Malformed trailing bytes end the walk.
pub(crate) fn parse(control: &[u8]) -> Ancillary {
    let mut out = Ancillary::default();
    let mut offset = 0;
    while offset + HDR_LEN <= control.len() {
        let header = &control[offset..];
        let Ok(len_bytes) = header[..ALIGN].try_into() else {
            break;
        };
        let len = usize::from_ne_bytes(len_bytes);
        let (Some(level), Some(kind)) = (ne_i32(header, ALIGN), ne_i32(header, ALIGN + 4)) else {
            break;
        };
        if len < HDR_LEN || len > header.len() {
            break;
        }
        apply(level, kind, &header[HDR_LEN..len], &mut out);
        offset += align(len);
    }
    out
}

/// Writes one control message header and data at the start of `out`; returns the bytes used
/// (`CMSG_SPACE`). `out` must hold `space(data.len())` bytes.
pub(crate) fn write_cmsg(out: &mut [u8], level: i32, kind: i32, data: &[u8]) -> usize {
    let used = space(data.len());
    out[..used].fill(0);
    out[..ALIGN].copy_from_slice(&(HDR_LEN + data.len()).to_ne_bytes());
    out[ALIGN..ALIGN + 4].copy_from_slice(&level.to_ne_bytes());
    out[ALIGN + 4..ALIGN + 8].copy_from_slice(&kind.to_ne_bytes());
    out[HDR_LEN..HDR_LEN + data.len()].copy_from_slice(data);
    used
}

/// The source address (and optionally the interface) for one outgoing datagram, sent as
/// `IP_PKTINFO` / `IPV6_PKTINFO`.
///
/// A server bound to a wildcard address replies from the address a request reached it on by
/// passing the request's [`RecvMeta::reply_source`](crate::io::RecvMeta::reply_source) here.
/// Leave `ifindex` at 0 to let routing choose the interface; set it for IPv6 link-local
/// sources.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PacketSource {
    /// Source address to put in the IP header; must be local to this host.
    pub addr: IpAddr,
    /// Outgoing interface index, or 0 for "as routed".
    pub ifindex: u32,
}

impl PacketSource {
    /// A source address with routing choosing the interface.
    pub const fn addr(addr: IpAddr) -> Self {
        PacketSource { addr, ifindex: 0 }
    }
}

/// Options for one outgoing datagram, sent as control messages, overriding the socket's
/// settings for that datagram only. `Default` sends with the socket's settings.
///
/// Per-datagram TTL is what lets one socket send traceroute probes for many hops at once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SendOptions {
    /// Source address / interface (`IP_PKTINFO` / `IPV6_PKTINFO`).
    pub source: Option<PacketSource>,
    /// TTL / hop limit, 1..=255 (`IP_TTL` / `IPV6_HOPLIMIT`).
    pub ttl: Option<u8>,
    /// TOS / traffic class byte (`IP_TOS` / `IPV6_TCLASS`).
    pub tos: Option<u8>,
}

impl SendOptions {
    /// Options that only set the source.
    pub const fn from_source(source: Option<PacketSource>) -> Self {
        SendOptions {
            source,
            ttl: None,
            tos: None,
        }
    }

    /// Options that only set the TTL / hop limit.
    pub const fn with_ttl(ttl: u8) -> Self {
        SendOptions {
            source: None,
            ttl: Some(ttl),
            tos: None,
        }
    }
}

/// Writes the control messages for `opts` into `out`; returns the bytes used. The level
/// follows the destination's family (`v4_dst`): the kernel reads `SOL_IP` messages for
/// IPv4 destinations, also on IPv6 sockets sending to IPv4-mapped addresses.
pub(crate) fn encode_send_options(
    opts: &SendOptions,
    v4_dst: bool,
    out: &mut [u8; SEND_CONTROL_LEN],
) -> usize {
    let mut used = 0;
    if let Some(src) = opts.source {
        used += match src.addr.to_canonical() {
            IpAddr::V4(v4) => {
                let mut data = [0u8; 12];
                data[0..4].copy_from_slice(&src.ifindex.to_ne_bytes());
                data[4..8].copy_from_slice(&v4.octets()); // ipi_spec_dst: the source to use
                write_cmsg(&mut out[used..], libc::IPPROTO_IP, libc::IP_PKTINFO, &data)
            }
            IpAddr::V6(v6) => {
                let mut data = [0u8; 20];
                data[0..16].copy_from_slice(&v6.octets());
                data[16..20].copy_from_slice(&src.ifindex.to_ne_bytes());
                write_cmsg(
                    &mut out[used..],
                    libc::IPPROTO_IPV6,
                    libc::IPV6_PKTINFO,
                    &data,
                )
            }
        };
    }
    let (level, ttl_type, tos_type) = if v4_dst {
        (libc::IPPROTO_IP, libc::IP_TTL, libc::IP_TOS)
    } else {
        (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT, libc::IPV6_TCLASS)
    };
    for (kind, value) in [(ttl_type, opts.ttl), (tos_type, opts.tos)] {
        if let Some(v) = value {
            used += write_cmsg(&mut out[used..], level, kind, &i32::from(v).to_ne_bytes());
        }
    }
    used
}

/// Writes a `UDP_SEGMENT` control message at the start of `out`: the payload of the message
/// is cut into datagrams of `size` bytes (the last may be shorter). Returns the bytes used,
/// [`SEGMENT_CONTROL_LEN`].
pub(crate) fn write_segment_size(out: &mut [u8], size: u16) -> usize {
    write_cmsg(out, libc::SOL_UDP, UDP_SEGMENT, &size.to_ne_bytes())
}

/// Builders of control buffers for tests, following the kernel layouts.
#[cfg(test)]
pub(crate) mod test_support {
    use super::{space, write_cmsg};
    use crate::io::sockaddr;
    use std::net::{IpAddr, SocketAddr};

    /// One control message as (level, type, data).
    pub(crate) type Cmsg = (i32, i32, Vec<u8>);

    /// Concatenates control messages into one control buffer.
    pub(crate) fn control(msgs: &[Cmsg]) -> Vec<u8> {
        let mut buf = Vec::new();
        for (level, kind, data) in msgs {
            let start = buf.len();
            buf.resize(start + space(data.len()), 0);
            write_cmsg(&mut buf[start..], *level, *kind, data);
        }
        buf
    }

    /// A `struct timespec` as bytes.
    pub(crate) fn timespec_bytes(secs: i64, nsecs: i64) -> Vec<u8> {
        let mut v = (secs as libc::time_t).to_ne_bytes().to_vec();
        v.extend_from_slice(&(nsecs as libc::c_long).to_ne_bytes());
        v
    }

    /// `SCM_TIMESTAMPING` with a software time and zero hardware times.
    pub(crate) fn timestamping(secs: i64, nsecs: i64) -> Cmsg {
        let mut data = timespec_bytes(secs, nsecs);
        data.extend(timespec_bytes(0, 0));
        data.extend(timespec_bytes(0, 0));
        (libc::SOL_SOCKET, libc::SCM_TIMESTAMPING, data)
    }

    /// `IP_RECVERR` (level `IPPROTO_IP`) or `IPV6_RECVERR` (level `IPPROTO_IPV6`) with a
    /// `sock_extended_err` and an offender address (`AF_UNSPEC` when `None`).
    pub(crate) fn ext_err(
        level: i32,
        errno: u32,
        origin: u8,
        (icmp_type, icmp_code): (u8, u8),
        info: u32,
        data: u32,
        offender: Option<IpAddr>,
    ) -> Cmsg {
        let mut ee = errno.to_ne_bytes().to_vec();
        ee.extend_from_slice(&[origin, icmp_type, icmp_code, 0]);
        ee.extend_from_slice(&info.to_ne_bytes());
        ee.extend_from_slice(&data.to_ne_bytes());
        let mut addr = [0u8; sockaddr::SOCKADDR_LEN];
        let v6 = level == libc::IPPROTO_IPV6;
        let len = match offender {
            Some(ip) => sockaddr::encode(SocketAddr::new(ip, 0), v6, &mut addr),
            None => 16,
        };
        ee.extend_from_slice(&addr[..len]);
        let kind = if v6 {
            libc::IPV6_RECVERR
        } else {
            libc::IP_RECVERR
        };
        (level, kind, ee)
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{control, ext_err, timespec_bytes, timestamping};
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn layout_constants_match_libc() {
        // SAFETY: CMSG_SPACE and CMSG_LEN only do arithmetic on their argument.
        let (libc_space, libc_len) = unsafe { (libc::CMSG_SPACE(20), libc::CMSG_LEN(20)) };
        assert_eq!(space(20), libc_space as usize);
        assert_eq!(HDR_LEN + 20, libc_len as usize);
        assert_eq!(EXT_ERR_LEN, 16);
    }

    #[test]
    fn receive_metadata_v4() {
        let mut pktinfo = 3u32.to_ne_bytes().to_vec();
        pktinfo.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        let buf = control(&[
            timestamping(1_700_000_000, 123_456_789),
            (libc::IPPROTO_IP, libc::IP_TTL, 61i32.to_ne_bytes().to_vec()),
            (libc::IPPROTO_IP, libc::IP_TOS, vec![0xb8]),
            (libc::IPPROTO_IP, libc::IP_PKTINFO, pktinfo),
        ]);
        let a = parse(&buf);
        assert_eq!(a.time, Some(Nanos::from_parts(1_700_000_000, 123_456_789)));
        assert_eq!(a.ttl, Some(61));
        assert_eq!(a.tos, Some(0xb8));
        assert_eq!(a.local, Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))));
        assert_eq!(a.ifindex, Some(3));
        assert_eq!(a.ext_err, None);
    }

    #[test]
    fn receive_metadata_v6_with_mapped_pktinfo() {
        let mut pktinfo = Ipv4Addr::new(192, 0, 2, 1)
            .to_ipv6_mapped()
            .octets()
            .to_vec();
        pktinfo.extend_from_slice(&9u32.to_ne_bytes());
        let buf = control(&[
            (
                libc::SOL_SOCKET,
                libc::SCM_TIMESTAMPNS,
                timespec_bytes(5, 7),
            ),
            (
                libc::IPPROTO_IPV6,
                libc::IPV6_HOPLIMIT,
                255i32.to_ne_bytes().to_vec(),
            ),
            (
                libc::IPPROTO_IPV6,
                libc::IPV6_TCLASS,
                0x2ei32.to_ne_bytes().to_vec(),
            ),
            (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, pktinfo),
        ]);
        let a = parse(&buf);
        assert_eq!(a.time, Some(Nanos::from_parts(5, 7)));
        assert_eq!(a.ttl, Some(255));
        assert_eq!(a.tos, Some(0x2e));
        assert_eq!(a.local, Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))));
        assert_eq!(a.ifindex, Some(9));
    }

    #[test]
    fn extended_error_with_offender() {
        let router: Ipv6Addr = "2001:db8::fe".parse().expect("literal");
        let buf = control(&[ext_err(
            libc::IPPROTO_IPV6,
            libc::EHOSTUNREACH as u32,
            libc::SO_EE_ORIGIN_ICMP6,
            (3, 0),
            0,
            0,
            Some(router.into()),
        )]);
        let e = parse(&buf).ext_err.expect("extended error parsed");
        assert_eq!(e.errno, libc::EHOSTUNREACH as u32);
        assert_eq!(e.origin, libc::SO_EE_ORIGIN_ICMP6);
        assert_eq!((e.kind, e.code), (3, 0));
        assert_eq!(e.offender, Some(IpAddr::V6(router)));
    }

    #[test]
    fn local_error_has_no_offender() {
        let buf = control(&[ext_err(
            libc::IPPROTO_IP,
            libc::EMSGSIZE as u32,
            libc::SO_EE_ORIGIN_LOCAL,
            (0, 0),
            1400,
            0,
            None,
        )]);
        let e = parse(&buf).ext_err.expect("extended error parsed");
        assert_eq!(e.origin, libc::SO_EE_ORIGIN_LOCAL);
        assert_eq!(e.info, 1400);
        assert_eq!(e.offender, None);
    }

    #[test]
    fn truncated_and_zero_inputs_are_ignored() {
        assert_eq!(parse(&[]), Ancillary::default());
        let zero = control(&[(
            libc::SOL_SOCKET,
            libc::SCM_TIMESTAMPNS,
            timespec_bytes(0, 0),
        )]);
        assert_eq!(parse(&zero).time, None);
        // A header claiming more bytes than the buffer holds ends the walk.
        let mut bad = control(&[(libc::IPPROTO_IP, libc::IP_TTL, 64i32.to_ne_bytes().to_vec())]);
        bad[..ALIGN].copy_from_slice(&1000usize.to_ne_bytes());
        assert_eq!(parse(&bad).ttl, None);
        // Unknown control messages are skipped, later ones still read.
        let mixed = control(&[
            (libc::SOL_SOCKET, libc::SO_PEERCRED, vec![7; 12]),
            (libc::IPPROTO_IP, libc::IP_TTL, 64i32.to_ne_bytes().to_vec()),
            (
                libc::SOL_SOCKET,
                libc::SO_RXQ_OVFL,
                9u32.to_ne_bytes().to_vec(),
            ),
        ]);
        let a = parse(&mixed);
        assert_eq!((a.ttl, a.drops), (Some(64), Some(9)));
    }

    #[test]
    fn send_options_match_the_cmsg_layouts() {
        let mut out = [0u8; SEND_CONTROL_LEN];
        let src = PacketSource::addr(Ipv4Addr::new(127, 0, 0, 2).into());
        let n = encode_send_options(&SendOptions::from_source(Some(src)), true, &mut out);
        assert_eq!(n, space(12));
        assert_eq!(
            usize::from_ne_bytes(out[..ALIGN].try_into().expect("len")),
            HDR_LEN + 12
        );
        assert_eq!(ne_i32(&out, ALIGN), Some(libc::IPPROTO_IP));
        assert_eq!(ne_i32(&out, ALIGN + 4), Some(libc::IP_PKTINFO));
        assert_eq!(&out[HDR_LEN + 4..HDR_LEN + 8], &[127, 0, 0, 2]);

        // Everything at once for an IPv6 destination: reads back through the parser.
        let src = PacketSource {
            addr: Ipv6Addr::LOCALHOST.into(),
            ifindex: 1,
        };
        let opts = SendOptions {
            source: Some(src),
            ttl: Some(5),
            tos: Some(0xb8),
        };
        let n = encode_send_options(&opts, false, &mut out);
        assert_eq!(
            n,
            SEND_CONTROL_LEN - SEGMENT_CONTROL_LEN,
            "room left for UDP_SEGMENT"
        );
        let a = parse(&out[..n]);
        assert_eq!((a.local, a.ifindex), (Some(src.addr), Some(1)));
        assert_eq!((a.ttl, a.tos), (Some(5), Some(0xb8)));

        // TTL alone for an IPv4 destination is one IP_TTL int.
        let n = encode_send_options(&SendOptions::with_ttl(3), true, &mut out);
        assert_eq!(n, space(4));
        assert_eq!(ne_i32(&out, ALIGN + 4), Some(libc::IP_TTL));
        assert_eq!(ne_i32(&out, HDR_LEN), Some(3));
        assert_eq!(
            encode_send_options(&SendOptions::default(), true, &mut out),
            0
        );
    }
}
