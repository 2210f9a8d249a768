//! The path MTU the kernel knows for a connected socket's route (`IP_MTU` / `IPV6_MTU`).

use std::io;
use std::os::fd::AsFd;

use socket2::Socket;

use crate::io::sys::getsockopt_int;

/// The MTU of the route of a connected socket (IPv6 if `v6`): the outgoing interface MTU, or
/// less once the kernel has learned a smaller path MTU from ICMP. Fails with `ENOTCONN` on an
/// unconnected socket.
pub fn route_mtu(socket: &Socket, v6: bool) -> io::Result<u32> {
    let (level, name) = if v6 {
        (libc::IPPROTO_IPV6, libc::IPV6_MTU)
    } else {
        (libc::IPPROTO_IP, libc::IP_MTU)
    };
    let mtu = getsockopt_int(socket.as_fd(), level, name)?;
    u32::try_from(mtu).map_err(|_| io::Error::other(format!("negative MTU {mtu}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{SocketOptions, udp_socket};

    #[test]
    fn loopback_route_mtu() {
        for (bind, peer, v6) in [
            ("127.0.0.1:0", "127.0.0.1:9", false),
            ("[::1]:0", "[::1]:9", true),
        ] {
            let s = udp_socket(bind.parse().expect("literal"), &SocketOptions::default())
                .expect("udp socket");
            assert_eq!(
                route_mtu(&s, v6).map_err(|e| e.raw_os_error()),
                Err(Some(libc::ENOTCONN))
            );
            let peer: std::net::SocketAddr = peer.parse().expect("literal");
            s.connect(&peer.into()).expect("connect on loopback");
            let lo: u32 = std::fs::read_to_string("/sys/class/net/lo/mtu")
                .expect("loopback mtu")
                .trim()
                .parse()
                .expect("number");
            // IPv4 routes report at most 65535, the largest IPv4 packet; IPv6 reports the
            // interface MTU.
            let want = if v6 { lo } else { lo.min(65535) };
            assert_eq!(route_mtu(&s, v6).expect("mtu"), want, "v6 {v6}");
        }
    }
}
