//! Small, independent probes for tests and measurements: in-process echo servers and
//! clients, paced UDP bursts, one-way delays with kernel timestamps, and TTL-limited probes.
//! They use plain sockets opened inside a [`crate::Host`]'s namespace and share no code with
//! the impairment hop they are used to check.

pub mod accuracy;
mod echo;
mod probe;

pub use echo::{Echo, tcp_echo, tcp_exchange, udp_echo, udp_exchange};
pub use probe::{Burst, HopReply, one_way_delays, traceroute, ttl_probe, udp_burst};

use std::net::{SocketAddr, TcpListener, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

/// A socket of `kind` for `addr`'s family with `SO_REUSEADDR`, bound to `addr`.
///
/// `SO_REUSEADDR` matters in tests: a process spawning commands on another thread briefly
/// shares its descriptors with the child (between fork and exec), so a socket that was just
/// closed may still hold its port for a moment.
fn bound(addr: SocketAddr, kind: Type, protocol: Protocol) -> std::io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), kind, Some(protocol))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// A UDP socket bound to `addr` (see [`bound`]).
fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    bound(addr, Type::DGRAM, Protocol::UDP).map(UdpSocket::from)
}

/// A TCP listener on `addr` (see [`bound`]).
fn listen_tcp(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = bound(addr, Type::STREAM, Protocol::TCP)?;
    socket.listen(128)?;
    Ok(socket.into())
}
