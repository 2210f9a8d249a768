//! Socket builders: UDP and TCP sockets with the options probe needs, set through socket2 and,
//! for the options socket2 does not wrap (`SO_RCVBUFFORCE`, `SO_RXQ_OVFL`, `IP_RECVTTL`,
//! `IP_PKTINFO`, `IP_RECVERR`, `IPV6_DONTFRAG`, the path-MTU mode, ...), an integer
//! `setsockopt` over libc (`sys::setsockopt_int`).
//!
//! [`SocketOptions`] describes what to set; [`apply_options`] sets it on any inet socket
//! (UDP, TCP, raw, ICMP), and [`udp_socket`] / [`tcp_socket`] / [`tcp_listener`] create,
//! configure and bind in one go. Every socket comes out non-blocking and close-on-exec.
//!
//! On a dual-stack IPv6 socket the IPv4 variants of the options (`IP_TOS`, `IP_TTL`,
//! `IP_RECVTTL`, `IP_RECVERR`, ...) are set as well, since the kernel applies those to the
//! IPv4 traffic such a socket carries.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::io::error::IoError;
use crate::io::sys::setsockopt_int;

/// Don't-fragment and path-MTU discovery behaviour (`IP_MTU_DISCOVER` /
/// `IPV6_MTU_DISCOVER`, plus `IPV6_DONTFRAG` on IPv6 sockets so that a datagram over the MTU
/// fails its send with `EMSGSIZE` instead of being fragmented or silently dropped).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PmtuMode {
    /// DF clear: the kernel fragments datagrams larger than the path MTU
    /// (`IP_PMTUDISC_DONT`).
    Dont,
    /// DF set, and the kernel learns the path MTU from ICMP "fragmentation needed" /
    /// "packet too big" and refuses larger sends with `EMSGSIZE` (`IP_PMTUDISC_DO`).
    Do,
    /// DF set, but the learned path MTU is ignored: datagrams up to the interface MTU go out
    /// as they are. This is what PMTU probing needs (`IP_PMTUDISC_PROBE`).
    Probe,
}

impl PmtuMode {
    fn value(self) -> i32 {
        match self {
            PmtuMode::Dont => libc::IP_PMTUDISC_DONT,
            PmtuMode::Do => libc::IP_PMTUDISC_DO,
            PmtuMode::Probe => libc::IP_PMTUDISC_PROBE,
        }
    }
}

/// Options for a socket. `Default` is a plain socket with the kernel's defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SocketOptions {
    /// `SO_REUSEADDR`.
    pub reuse_addr: bool,
    /// `SO_REUSEPORT` (several sockets share one port; the kernel spreads flows).
    pub reuse_port: bool,
    /// `IPV6_V6ONLY` for IPv6 sockets: `Some(false)` accepts IPv4 too (dual-stack),
    /// `None` keeps the system default (`net.ipv6.bindv6only`).
    pub v6_only: Option<bool>,
    /// TOS / traffic class byte for sent packets (`IP_TOS` / `IPV6_TCLASS`): DSCP in the
    /// upper six bits, ECN in the lower two. See [`SocketOptions::with_dscp`].
    pub tos: Option<u8>,
    /// TTL / hop limit for sent unicast packets (`IP_TTL` / `IPV6_UNICAST_HOPS`).
    pub ttl: Option<u8>,
    /// Interface to bind to (`SO_BINDTODEVICE`), e.g. `"eth0"`.
    pub device: Option<String>,
    /// Receive buffer size in bytes (`SO_RCVBUFFORCE` when allowed, else `SO_RCVBUF`, which
    /// is capped by `net.core.rmem_max`). The kernel doubles the value for bookkeeping.
    pub recv_buffer: Option<usize>,
    /// Send buffer size in bytes (`SO_SNDBUFFORCE` when allowed, else `SO_SNDBUF`).
    pub send_buffer: Option<usize>,
    /// Report the TTL / hop limit of received packets (`IP_RECVTTL` /
    /// `IPV6_RECVHOPLIMIT`).
    pub recv_ttl: bool,
    /// Report the TOS / traffic class of received packets (`IP_RECVTOS` /
    /// `IPV6_RECVTCLASS`).
    pub recv_tos: bool,
    /// Report the destination address and interface of received packets (`IP_PKTINFO` /
    /// `IPV6_RECVPKTINFO`), so a wildcard-bound server can reply from the right address.
    pub pktinfo: bool,
    /// Queue ICMP errors about sent datagrams on the error queue (`IP_RECVERR` /
    /// `IPV6_RECVERR`): unprivileged traceroute and PMTU discovery. The error queue
    /// counts against the receive buffer, so its owner must drain it
    /// ([`TimestampedSocket::recv_error`](crate::io::TimestampedSocket::recv_error)).
    pub recv_err: bool,
    /// Don't-fragment / path-MTU discovery mode.
    pub pmtu: Option<PmtuMode>,
    /// Report the socket's running count of datagrams dropped for want of receive buffer
    /// space with each datagram (`SO_RXQ_OVFL`), see
    /// [`RecvMeta::drops`](crate::io::RecvMeta::drops).
    pub drop_counter: bool,
}

impl SocketOptions {
    /// Sets the DSCP (0..=63) with ECN bits zero, i.e. `tos = dscp << 2`.
    #[must_use]
    pub fn with_dscp(mut self, dscp: u8) -> Self {
        self.tos = Some((dscp & 0x3f) << 2);
        self
    }

    /// Turns on everything a measurement endpoint reads from received packets: TTL, TOS,
    /// packet info, drop counter.
    #[must_use]
    pub fn with_receive_metadata(mut self) -> Self {
        self.recv_ttl = true;
        self.recv_tos = true;
        self.pktinfo = true;
        self.drop_counter = true;
        self
    }
}

/// Which per-family variants of an option to set.
struct Families {
    v6: bool,
    /// An IPv6 socket that also carries IPv4 traffic.
    dual: bool,
}

impl Families {
    /// Sets the IPv6 variant on IPv6 sockets and the IPv4 variant on IPv4 sockets. On a
    /// dual-stack socket the IPv4 variant is set too, best effort: failing only loses the
    /// option for IPv4 peers, so it is logged.
    fn set(
        &self,
        (v6_name, v6_set): (&'static str, impl FnOnce() -> io::Result<()>),
        (v4_name, v4_set): (&'static str, impl FnOnce() -> io::Result<()>),
    ) -> Result<(), IoError> {
        if self.v6 {
            v6_set().map_err(IoError::sockopt(v6_name))?;
            if self.dual
                && let Err(e) = v4_set()
            {
                tracing::debug!("{v4_name} for IPv4 traffic on an IPv6 socket not set: {e}");
            }
            Ok(())
        } else {
            v4_set().map_err(IoError::sockopt(v4_name))
        }
    }
}

/// Sets a buffer size with the `*FORCE` variant (allowed with `CAP_NET_ADMIN`, passes the
/// sysctl cap), falling back to the plain one.
fn set_buffer(
    option: &'static str,
    force: impl FnOnce() -> io::Result<()>,
    plain: impl FnOnce() -> io::Result<()>,
) -> Result<(), IoError> {
    if let Err(e) = force() {
        tracing::debug!("{option}FORCE refused ({e}); using {option}, capped by sysctl");
        plain().map_err(IoError::sockopt(option))?;
    }
    Ok(())
}

/// A buffer size as the `int` the `*FORCE` options take (sizes past `i32::MAX` saturate).
fn buffer_int(size: usize) -> i32 {
    i32::try_from(size).unwrap_or(i32::MAX)
}

/// Sets `opts` on `socket`, an inet socket of the family given by `v6`.
pub fn apply_options(socket: &Socket, v6: bool, opts: &SocketOptions) -> Result<(), IoError> {
    let fd = socket.as_fd();
    let on = |level, name| setsockopt_int(fd, level, name, 1);
    let fam = Families {
        v6,
        dual: v6 && opts.v6_only != Some(true),
    };
    if opts.reuse_addr {
        socket
            .set_reuse_address(true)
            .map_err(IoError::sockopt("SO_REUSEADDR"))?;
    }
    if opts.reuse_port {
        socket
            .set_reuse_port(true)
            .map_err(IoError::sockopt("SO_REUSEPORT"))?;
    }
    if let (true, Some(only)) = (v6, opts.v6_only) {
        socket
            .set_only_v6(only)
            .map_err(IoError::sockopt("IPV6_V6ONLY"))?;
    }
    if let Some(device) = &opts.device {
        socket
            .bind_device(Some(device.as_bytes()))
            .map_err(|source| IoError::BindDevice {
                device: device.clone(),
                source,
            })?;
    }
    if let Some(size) = opts.recv_buffer {
        set_buffer(
            "SO_RCVBUF",
            || setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, buffer_int(size)),
            || socket.set_recv_buffer_size(size),
        )?;
    }
    if let Some(size) = opts.send_buffer {
        set_buffer(
            "SO_SNDBUF",
            || setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, buffer_int(size)),
            || socket.set_send_buffer_size(size),
        )?;
    }
    if opts.drop_counter {
        on(libc::SOL_SOCKET, libc::SO_RXQ_OVFL).map_err(IoError::sockopt("SO_RXQ_OVFL"))?;
    }
    if let Some(tos) = opts.tos {
        let tos = u32::from(tos);
        fam.set(
            ("IPV6_TCLASS", || socket.set_tclass_v6(tos)),
            ("IP_TOS", || socket.set_tos_v4(tos)),
        )?;
    }
    if let Some(ttl) = opts.ttl {
        let ttl = u32::from(ttl);
        fam.set(
            ("IPV6_UNICAST_HOPS", || socket.set_unicast_hops_v6(ttl)),
            ("IP_TTL", || socket.set_ttl_v4(ttl)),
        )?;
    }
    if opts.recv_ttl {
        fam.set(
            ("IPV6_RECVHOPLIMIT", || socket.set_recv_hoplimit_v6(true)),
            ("IP_RECVTTL", || on(libc::IPPROTO_IP, libc::IP_RECVTTL)),
        )?;
    }
    if opts.recv_tos {
        fam.set(
            ("IPV6_RECVTCLASS", || socket.set_recv_tclass_v6(true)),
            ("IP_RECVTOS", || socket.set_recv_tos_v4(true)),
        )?;
    }
    if opts.pktinfo {
        // IPV6_PKTINFO also covers IPv4 packets on a dual-stack socket (as mapped
        // addresses); IP_PKTINFO there adds the same information a second time.
        let v6_only = Families { v6, dual: false };
        v6_only.set(
            ("IPV6_RECVPKTINFO", || {
                on(libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO)
            }),
            ("IP_PKTINFO", || on(libc::IPPROTO_IP, libc::IP_PKTINFO)),
        )?;
    }
    if opts.recv_err {
        fam.set(
            ("IPV6_RECVERR", || {
                on(libc::IPPROTO_IPV6, libc::IPV6_RECVERR)
            }),
            ("IP_RECVERR", || on(libc::IPPROTO_IP, libc::IP_RECVERR)),
        )?;
    }
    if let Some(mode) = opts.pmtu {
        if v6 {
            // Without IPV6_DONTFRAG an oversized datagram is fragmented at the source (DONT)
            // or dropped after the send call succeeded (DO/PROBE); with it the send fails
            // with EMSGSIZE right away.
            let dont_frag = i32::from(mode != PmtuMode::Dont);
            setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_DONTFRAG, dont_frag)
                .map_err(IoError::sockopt("IPV6_DONTFRAG"))?;
        }
        let value = mode.value();
        fam.set(
            ("IPV6_MTU_DISCOVER", || {
                setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER, value)
            }),
            ("IP_MTU_DISCOVER", || {
                setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, value)
            }),
        )?;
    }
    Ok(())
}

/// Creates a non-blocking, close-on-exec socket of `ty`/`protocol` (IPv6 if `v6`).
pub(crate) fn new_socket(
    v6: bool,
    ty: Type,
    protocol: Protocol,
    what: &'static str,
) -> Result<Socket, IoError> {
    let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
    let socket = Socket::new(domain, ty.nonblocking(), Some(protocol))
        .map_err(|source| IoError::Socket { what, source })?;
    Ok(socket)
}

/// Binds `socket` to `addr`, naming the fix on failure (`proto` for the message).
pub fn bind(socket: &Socket, addr: SocketAddr, proto: &'static str) -> Result<(), IoError> {
    socket
        .bind(&SockAddr::from(addr))
        .map_err(|e| IoError::from_bind(addr, proto, e))
}

/// A non-blocking UDP socket with `opts`, bound to `bind` (port 0 picks a free port).
pub fn udp_socket(bind_to: SocketAddr, opts: &SocketOptions) -> Result<Socket, IoError> {
    let v6 = bind_to.is_ipv6();
    let what = if v6 {
        "UDP/IPv6 socket"
    } else {
        "UDP/IPv4 socket"
    };
    let socket = new_socket(v6, Type::DGRAM, Protocol::UDP, what)?;
    apply_options(&socket, v6, opts)?;
    bind(&socket, bind_to, "udp")?;
    Ok(socket)
}

/// A non-blocking, unconnected TCP socket with `opts` (IPv6 if `v6`);
/// connect it with `tokio::net::TcpSocket::from_std_stream(socket.into())` and
/// `connect`, under a `tokio::time::timeout`.
pub fn tcp_socket(v6: bool, opts: &SocketOptions) -> Result<Socket, IoError> {
    let what = if v6 {
        "TCP/IPv6 socket"
    } else {
        "TCP/IPv4 socket"
    };
    let socket = new_socket(v6, Type::STREAM, Protocol::TCP, what)?;
    apply_options(&socket, v6, opts)?;
    Ok(socket)
}

/// A non-blocking TCP listener with `opts` bound to `bind_to`, listening with `backlog`.
pub fn tcp_listener(
    bind_to: SocketAddr,
    opts: &SocketOptions,
    backlog: i32,
) -> Result<std::net::TcpListener, IoError> {
    let socket = tcp_socket(bind_to.is_ipv6(), opts)?;
    bind(&socket, bind_to, "tcp")?;
    socket.listen(backlog).map_err(|source| IoError::Bind {
        addr: bind_to,
        proto: "tcp",
        source,
    })?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::sys::getsockopt_int;

    fn int_opt(s: &Socket, level: i32, name: i32) -> i32 {
        getsockopt_int(s.as_fd(), level, name).expect("getsockopt")
    }

    #[test]
    fn v4_options_are_set() {
        let opts = SocketOptions {
            reuse_addr: true,
            ttl: Some(17),
            recv_buffer: Some(1 << 20),
            recv_err: true,
            pmtu: Some(PmtuMode::Probe),
            ..SocketOptions::default()
                .with_dscp(46)
                .with_receive_metadata()
        };
        let s = udp_socket("127.0.0.1:0".parse().expect("literal"), &opts).expect("udp socket");
        assert!(
            s.local_addr()
                .expect("local")
                .as_socket()
                .expect("inet")
                .port()
                != 0
        );
        assert_eq!(int_opt(&s, libc::IPPROTO_IP, libc::IP_TOS), 0xb8);
        assert_eq!(int_opt(&s, libc::IPPROTO_IP, libc::IP_TTL), 17);
        assert_eq!(int_opt(&s, libc::IPPROTO_IP, libc::IP_RECVTTL), 1);
        assert_eq!(int_opt(&s, libc::IPPROTO_IP, libc::IP_RECVTOS), 1);
        assert_eq!(int_opt(&s, libc::IPPROTO_IP, libc::IP_PKTINFO), 1);
        assert_eq!(int_opt(&s, libc::IPPROTO_IP, libc::IP_RECVERR), 1);
        assert_eq!(
            int_opt(&s, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER),
            libc::IP_PMTUDISC_PROBE
        );
        assert_eq!(int_opt(&s, libc::SOL_SOCKET, libc::SO_REUSEADDR), 1);
        assert_eq!(int_opt(&s, libc::SOL_SOCKET, libc::SO_RXQ_OVFL), 1);
        // The kernel doubles the requested size; as root SO_RCVBUFFORCE passes rmem_max.
        assert!(s.recv_buffer_size().expect("rcvbuf") >= 1 << 20);
        assert!(s.nonblocking().expect("flags"));
    }

    #[test]
    fn dual_stack_v6_sets_both_families() {
        let opts = SocketOptions {
            v6_only: Some(false),
            ttl: Some(9),
            recv_err: true,
            pmtu: Some(PmtuMode::Do),
            ..SocketOptions::default()
                .with_dscp(10)
                .with_receive_metadata()
        };
        // Unbound: binding a specific IPv6 address makes the kernel force IPV6_V6ONLY on.
        let s = new_socket(true, Type::DGRAM, Protocol::UDP, "UDP/IPv6 socket").expect("socket");
        apply_options(&s, true, &opts).expect("options");
        assert_eq!(int_opt(&s, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY), 0);
        assert_eq!(int_opt(&s, libc::IPPROTO_IPV6, libc::IPV6_TCLASS), 40);
        assert_eq!(int_opt(&s, libc::IPPROTO_IP, libc::IP_TOS), 40);
        assert_eq!(int_opt(&s, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS), 9);
        assert_eq!(int_opt(&s, libc::IPPROTO_IP, libc::IP_TTL), 9);
        assert_eq!(int_opt(&s, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT), 1);
        assert_eq!(int_opt(&s, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO), 1);
        assert_eq!(int_opt(&s, libc::IPPROTO_IPV6, libc::IPV6_RECVERR), 1);
        assert_eq!(int_opt(&s, libc::IPPROTO_IP, libc::IP_RECVERR), 1);
        assert_eq!(
            int_opt(&s, libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER),
            libc::IP_PMTUDISC_DO
        );
        assert_eq!(int_opt(&s, libc::IPPROTO_IPV6, libc::IPV6_DONTFRAG), 1);
    }

    #[test]
    fn busy_port_names_the_fix() {
        let first = udp_socket(
            "127.0.0.1:0".parse().expect("literal"),
            &SocketOptions::default(),
        )
        .expect("first bind");
        let addr = first
            .local_addr()
            .expect("local")
            .as_socket()
            .expect("inet");
        let err = udp_socket(addr, &SocketOptions::default()).expect_err("port is taken");
        assert!(matches!(err, IoError::AddrInUse { .. }), "{err}");
        assert!(err.to_string().contains("--port"), "{err}");
    }

    #[test]
    fn unknown_device_is_reported() {
        let opts = SocketOptions {
            device: Some("nosuchdev0".into()),
            ..SocketOptions::default()
        };
        let err =
            udp_socket("127.0.0.1:0".parse().expect("literal"), &opts).expect_err("no device");
        assert!(matches!(err, IoError::BindDevice { .. }), "{err}");
    }

    #[test]
    fn tcp_listener_accepts_on_loopback() {
        let l = tcp_listener(
            "127.0.0.1:0".parse().expect("literal"),
            &SocketOptions::default(),
            8,
        )
        .expect("listener");
        let addr = l.local_addr().expect("local");
        let _client = std::net::TcpStream::connect(addr).expect("connect on loopback");
        l.set_nonblocking(false).expect("blocking accept");
        let (_, peer) = l.accept().expect("accept");
        assert!(peer.ip().is_loopback());
    }
}
