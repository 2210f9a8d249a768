//! `sockaddr_in` / `sockaddr_in6` as bytes, converted to and from [`SocketAddr`] in safe code.
//!
//! The kernel copies socket addresses into and out of plain byte buffers (`msg_name`, the
//! offender address after `sock_extended_err`), so the IO layer keeps them as bytes and
//! decodes the documented layouts field by field:
//!
//! ```text
//! sockaddr_in:  family u16 (host order) | port u16 (network) | addr [4]  | zero [8]
//! sockaddr_in6: family u16 (host order) | port u16 (network) | flowinfo u32
//!               | addr [16] | scope_id u32 (host order)
//! ```
//!
//! `flowinfo` is copied as is, like the standard library and socket2 do: the `u32` of
//! [`SocketAddrV6::flowinfo`] holds the raw field.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, what a dual-stack socket reports for IPv4
//! peers) decode to plain IPv4, and IPv4 destinations encode as mapped addresses on IPv6
//! sockets, so callers only ever see the address family of the packet.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Bytes needed for the largest inet socket address (`sockaddr_in6`).
pub(crate) const SOCKADDR_LEN: usize = size_of::<libc::sockaddr_in6>();
/// Bytes of a `sockaddr_in`.
const SOCKADDR_IN_LEN: usize = size_of::<libc::sockaddr_in>();

/// Storage for one inet socket address as the kernel reads or writes it.
pub(crate) type SockaddrBuf = [u8; SOCKADDR_LEN];

/// Decodes a `sockaddr_in`/`sockaddr_in6`; `None` for other families or short input.
pub(crate) fn decode(bytes: &[u8]) -> Option<SocketAddr> {
    let family = i32::from(u16::from_ne_bytes(bytes.get(0..2)?.try_into().ok()?));
    let port = u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?);
    match family {
        libc::AF_INET => {
            let ip: [u8; 4] = bytes.get(4..8)?.try_into().ok()?;
            Some(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port)))
        }
        libc::AF_INET6 => {
            let flowinfo = u32::from_ne_bytes(bytes.get(4..8)?.try_into().ok()?);
            let ip: [u8; 16] = bytes.get(8..24)?.try_into().ok()?;
            let scope_id = u32::from_ne_bytes(bytes.get(24..28)?.try_into().ok()?);
            let ip = Ipv6Addr::from(ip);
            Some(match ip.to_ipv4_mapped() {
                Some(v4) => SocketAddr::V4(SocketAddrV4::new(v4, port)),
                None => SocketAddr::V6(SocketAddrV6::new(ip, port, flowinfo, scope_id)),
            })
        }
        _ => None,
    }
}

/// Decodes only the IP address of a `sockaddr_in`/`sockaddr_in6`.
pub(crate) fn decode_ip(bytes: &[u8]) -> Option<IpAddr> {
    decode(bytes).map(|a| a.ip())
}

/// Encodes `addr` for a socket of the given family (`v6_socket`: `AF_INET6`), returning the
/// length to pass as `msg_namelen`. IPv4 addresses become IPv4-mapped on IPv6 sockets.
pub(crate) fn encode(addr: SocketAddr, v6_socket: bool, out: &mut SockaddrBuf) -> usize {
    out.fill(0);
    match addr {
        SocketAddr::V4(a) if !v6_socket => {
            out[0..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
            out[2..4].copy_from_slice(&a.port().to_be_bytes());
            out[4..8].copy_from_slice(&a.ip().octets());
            SOCKADDR_IN_LEN
        }
        SocketAddr::V4(a) => encode_v6(a.ip().to_ipv6_mapped(), a.port(), 0, 0, out),
        SocketAddr::V6(a) => encode_v6(*a.ip(), a.port(), a.flowinfo(), a.scope_id(), out),
    }
}

fn encode_v6(
    ip: Ipv6Addr,
    port: u16,
    flowinfo: u32,
    scope_id: u32,
    out: &mut SockaddrBuf,
) -> usize {
    out[0..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
    out[2..4].copy_from_slice(&port.to_be_bytes());
    out[4..8].copy_from_slice(&flowinfo.to_ne_bytes());
    out[8..24].copy_from_slice(&ip.octets());
    out[24..28].copy_from_slice(&scope_id.to_ne_bytes());
    SOCKADDR_LEN
}

#[cfg(test)]
mod tests {
    use super::*;

    fn socket2_bytes(addr: SocketAddr) -> Vec<u8> {
        let sa = socket2::SockAddr::from(addr);
        let len = sa.len() as usize;
        // SAFETY: `as_ptr` points at the `sockaddr_storage` inside `sa`, which holds at least
        // `len` initialised bytes and lives until the end of this function.
        let bytes = unsafe { std::slice::from_raw_parts(sa.as_ptr().cast::<u8>(), len) };
        bytes.to_vec()
    }

    #[test]
    fn v4_matches_the_kernel_layout() {
        let addr: SocketAddr = "192.0.2.7:862".parse().expect("literal");
        let mut buf = [0u8; SOCKADDR_LEN];
        let len = encode(addr, false, &mut buf);
        assert_eq!(len, 16);
        assert_eq!(&buf[2..8], &[0x03, 0x5e, 192, 0, 2, 7]);
        assert_eq!(buf[..len].to_vec(), socket2_bytes(addr));
        assert_eq!(decode(&buf[..len]), Some(addr));
    }

    #[test]
    fn v6_matches_the_kernel_layout() {
        let addr = SocketAddr::V6(SocketAddrV6::new(
            "2001:db8::1".parse().expect("literal"),
            4000,
            0x0001_2345,
            7,
        ));
        let mut buf = [0u8; SOCKADDR_LEN];
        let len = encode(addr, true, &mut buf);
        assert_eq!(len, 28);
        assert_eq!(&buf[2..4], &[0x0f, 0xa0]);
        assert_eq!(&buf[4..8], &0x0001_2345u32.to_ne_bytes());
        assert_eq!(buf[8..10], [0x20, 0x01]);
        assert_eq!(buf[..len].to_vec(), socket2_bytes(addr));
        assert_eq!(decode(&buf[..len]), Some(addr));
    }

    #[test]
    fn v4_on_a_v6_socket_is_mapped_and_decodes_back_to_v4() {
        let addr: SocketAddr = "127.0.0.1:9".parse().expect("literal");
        let mut buf = [0u8; SOCKADDR_LEN];
        let len = encode(addr, true, &mut buf);
        assert_eq!(len, 28);
        assert_eq!(
            &buf[8..24],
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1]
        );
        assert_eq!(decode(&buf[..len]), Some(addr));
        assert_eq!(decode_ip(&buf[..len]), Some(addr.ip()));
    }

    #[test]
    fn short_or_foreign_input_is_rejected() {
        assert_eq!(decode(&[]), None);
        assert_eq!(decode(&(libc::AF_INET6 as u16).to_ne_bytes()), None);
        let mut unix = [0u8; 16];
        unix[0..2].copy_from_slice(&(libc::AF_UNIX as u16).to_ne_bytes());
        assert_eq!(decode(&unix), None);
        let mut short_v6 = [0u8; 20];
        short_v6[0..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
        assert_eq!(decode(&short_v6), None);
    }
}
