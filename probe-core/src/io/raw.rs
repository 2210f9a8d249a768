//! Raw and ICMP sockets.
//!
//! - [`icmp_socket`] opens an ICMP socket in the given [`PrivilegeMode`]:
//!   - `Raw`: `SOCK_RAW` + `IPPROTO_ICMP`/`IPPROTO_ICMPV6` (needs `CAP_NET_RAW`). IPv4 reads
//!     return the IP header followed by the ICMP message; IPv6 reads return the `ICMPv6`
//!     message only, and the kernel fills in the `ICMPv6` checksum on send. The socket sees
//!     every ICMP packet the host receives.
//!   - `Datagram`: `SOCK_DGRAM` + `IPPROTO_ICMP`/`IPPROTO_ICMPV6`, the unprivileged "ping"
//!     socket (allowed when `net.ipv4.ping_group_range` covers one of our groups). Only echo
//!     requests can be sent; the kernel sets the echo identifier to the socket's port and
//!     fills in the checksum, and the socket only sees replies to its own identifier (plus
//!     ICMP errors with `IP_RECVERR`).
//! - [`raw_ipv4_sender`] opens `SOCK_RAW` + `IPPROTO_RAW` for sending complete IPv4 packets
//!   the caller crafted (header included; the kernel fills in the header checksum, and the
//!   total length and id when zero).
//! - [`raw_ip_socket`] opens `SOCK_RAW` for one IP protocol (e.g. UDP or TCP for crafted
//!   transport headers), with `IP_HDRINCL` on request (IPv4) — IPv6 raw sockets always take
//!   the payload after the IPv6 header.

use std::net::SocketAddr;

use socket2::{Protocol, Socket, Type};

use crate::io::error::IoError;
use crate::io::privilege::{PrivilegeMode, Privileges};
use crate::io::socket::{SocketOptions, apply_options, bind, new_socket};

fn raw_what(v6: bool) -> &'static str {
    if v6 {
        "raw ICMPv6 socket"
    } else {
        "raw ICMP socket"
    }
}

/// Opens an ICMP socket (IPv6 if `v6`) in `mode` with `opts`, bound to `bind_to` if given
/// (for datagram sockets the bound port is the echo identifier; 0 lets the kernel pick).
pub fn icmp_socket(
    v6: bool,
    mode: PrivilegeMode,
    opts: &SocketOptions,
    bind_to: Option<SocketAddr>,
) -> Result<Socket, IoError> {
    let protocol = if v6 {
        Protocol::ICMPV6
    } else {
        Protocol::ICMPV4
    };
    let socket = match mode {
        PrivilegeMode::Raw => new_socket(v6, Type::RAW, protocol, raw_what(v6))
            .map_err(|e| e.into_raw_permission(raw_what(v6)))?,
        PrivilegeMode::Datagram => {
            let what = if v6 {
                "ICMPv6 datagram socket"
            } else {
                "ICMP datagram socket"
            };
            new_socket(v6, Type::DGRAM, protocol, what).map_err(ping_denied)?
        }
    };
    apply_options(&socket, v6, opts)?;
    if let Some(addr) = bind_to {
        bind(&socket, addr, "icmp")?;
    }
    Ok(socket)
}

/// Turns `EACCES` from opening a ping socket into the message naming the sysctl.
fn ping_denied(e: IoError) -> IoError {
    match e {
        IoError::Socket { source, .. } if source.raw_os_error() == Some(libc::EACCES) => {
            match Privileges::detect() {
                Ok(p) => p.ping_group_error(),
                Err(read_error) => read_error,
            }
        }
        other => other,
    }
}

/// Opens a raw IPv4 socket for sending complete IPv4 packets (`IPPROTO_RAW`, which implies
/// `IP_HDRINCL`). It receives nothing. Needs `CAP_NET_RAW`.
pub fn raw_ipv4_sender(opts: &SocketOptions) -> Result<Socket, IoError> {
    let what = "raw IPv4 socket (IPPROTO_RAW)";
    let socket = new_socket(false, Type::RAW, Protocol::from(libc::IPPROTO_RAW), what)
        .map_err(|e| e.into_raw_permission(what))?;
    apply_options(&socket, false, opts)?;
    Ok(socket)
}

/// Opens a raw socket for IP protocol `protocol` (IPv6 if `v6`). It receives every packet of
/// that protocol the host gets (IPv4: with the IP header). With `header_included` (IPv4
/// only) the caller supplies the IPv4 header on send (`IP_HDRINCL`). Needs `CAP_NET_RAW`.
pub fn raw_ip_socket(
    v6: bool,
    protocol: i32,
    header_included: bool,
    opts: &SocketOptions,
) -> Result<Socket, IoError> {
    let what = if v6 {
        "raw IPv6 socket"
    } else {
        "raw IPv4 socket"
    };
    let socket = new_socket(v6, Type::RAW, Protocol::from(protocol), what)
        .map_err(|e| e.into_raw_permission(what))?;
    if header_included && !v6 {
        socket
            .set_header_included_v4(true)
            .map_err(IoError::sockopt("IP_HDRINCL"))?;
    }
    apply_options(&socket, v6, opts)?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::test_skip::require;

    #[test]
    fn raw_sockets_open_as_root() {
        let privileges = Privileges::detect().expect("read /proc/self/status");
        if !require(
            privileges.cap_net_raw,
            "no CAP_NET_RAW in this test process",
        ) {
            return;
        }
        let s = icmp_socket(false, PrivilegeMode::Raw, &SocketOptions::default(), None)
            .expect("raw ICMP socket");
        assert_eq!(s.r#type().expect("type"), Type::RAW);
        let s = icmp_socket(true, PrivilegeMode::Raw, &SocketOptions::default(), None)
            .expect("raw ICMPv6 socket");
        assert_eq!(s.protocol().expect("protocol"), Some(Protocol::ICMPV6));
        let s = raw_ipv4_sender(&SocketOptions::default()).expect("IPPROTO_RAW socket");
        assert!(s.header_included_v4().expect("IP_HDRINCL"));
        let s = raw_ip_socket(false, libc::IPPROTO_UDP, true, &SocketOptions::default())
            .expect("raw UDP socket");
        assert!(s.header_included_v4().expect("IP_HDRINCL"));
        raw_ip_socket(true, libc::IPPROTO_UDP, false, &SocketOptions::default())
            .expect("raw UDP/IPv6 socket");
    }

    #[test]
    fn ping_socket_follows_the_sysctl() {
        let privileges = Privileges::detect().expect("read /proc/self/status");
        let result = icmp_socket(
            false,
            PrivilegeMode::Datagram,
            &SocketOptions::default(),
            None,
        );
        if privileges.ping_allowed() {
            assert!(
                result.is_ok(),
                "ping socket refused although the range allows it"
            );
        } else {
            let err = result.expect_err("ping socket must be refused outside the range");
            assert!(matches!(err, IoError::PingGroupRange { .. }), "{err}");
            assert!(err.to_string().contains("ping_group_range"), "{err}");
        }
    }
}
