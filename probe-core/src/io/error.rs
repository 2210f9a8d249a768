//! Errors of the IO layer, each naming the problem and the fix.
//!
//! Setup operations (opening, binding, configuring sockets, reading system facts) return
//! [`IoError`]. Per-packet operations on an open socket return [`std::io::Error`] so that the
//! runtimes can match on [`std::io::ErrorKind`] without unwrapping another layer.

use std::io;
use std::net::SocketAddr;

/// What went wrong while setting up sockets or reading system facts.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// `bind` failed with `EADDRINUSE`.
    #[error(
        "binding {addr}/{proto} failed: address in use — another `probe serve` running? use --port \
         to pick another port"
    )]
    AddrInUse {
        /// The address we tried to bind.
        addr: SocketAddr,
        /// `"udp"`, `"tcp"` or `"icmp"`.
        proto: &'static str,
    },
    /// `bind` failed with `EADDRNOTAVAIL`.
    #[error(
        "binding {addr}/{proto} failed: address not available — it is not configured on any \
         interface of this host (check `ip addr`)"
    )]
    AddrNotAvailable {
        /// The address we tried to bind.
        addr: SocketAddr,
        /// `"udp"`, `"tcp"` or `"icmp"`.
        proto: &'static str,
    },
    /// `bind` failed with `EACCES`.
    #[error(
        "binding {addr}/{proto} failed: permission denied — ports below 1024 need \
         CAP_NET_BIND_SERVICE (`setcap cap_net_bind_service+ep`) or a port of 1024 or above"
    )]
    BindPermission {
        /// The address we tried to bind.
        addr: SocketAddr,
        /// `"udp"`, `"tcp"` or `"icmp"`.
        proto: &'static str,
    },
    /// `bind` failed for another reason.
    #[error("binding {addr}/{proto} failed: {source}")]
    Bind {
        /// The address we tried to bind.
        addr: SocketAddr,
        /// `"udp"`, `"tcp"` or `"icmp"`.
        proto: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// Opening a raw socket failed with `EPERM`/`EACCES`.
    #[error(
        "permission denied opening {what}: needs CAP_NET_RAW — run as root, grant it with \
         `setcap cap_net_raw+ep $(command -v probe)`, or in Docker use `--cap-add NET_RAW`"
    )]
    RawPermission {
        /// Which socket, e.g. `"raw ICMP socket"`.
        what: &'static str,
    },
    /// Opening an ICMP datagram ("ping") socket failed with `EACCES`.
    #[error(
        "ICMP datagram sockets are not allowed for this process (groups {groups}): \
         net.ipv4.ping_group_range is \"{range}\" — allow them with \
         `sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"` (Docker: \
         `--sysctl net.ipv4.ping_group_range=\"0 2147483647\"`) or grant CAP_NET_RAW \
         (`setcap cap_net_raw+ep`, Docker `--cap-add NET_RAW`)"
    )]
    PingGroupRange {
        /// The process's effective and supplementary group ids, for the message.
        groups: String,
        /// The current content of `/proc/sys/net/ipv4/ping_group_range`.
        range: String,
    },
    /// Neither raw ICMP nor ICMP datagram sockets can be opened.
    #[error(
        "cannot send ICMP: no CAP_NET_RAW and net.ipv4.ping_group_range \"{range}\" does not \
         cover our groups ({groups}) — fix one of: `setcap cap_net_raw+ep $(command -v probe)`, \
         Docker `--cap-add NET_RAW`, or `sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"`"
    )]
    NoIcmpPrivilege {
        /// The process's effective and supplementary group ids.
        groups: String,
        /// The current content of `/proc/sys/net/ipv4/ping_group_range`.
        range: String,
    },
    /// `SO_BINDTODEVICE` failed.
    #[error(
        "binding the socket to interface {device:?} failed: {source} — does the interface exist \
         (`ip link`)? kernels before 5.7 also need CAP_NET_RAW for this"
    )]
    BindDevice {
        /// The interface name.
        device: String,
        /// The OS error.
        source: io::Error,
    },
    /// Creating a socket failed for another reason.
    #[error("creating {what} failed: {source}")]
    Socket {
        /// Which socket, e.g. `"UDP/IPv6 socket"`.
        what: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// A socket option could not be set.
    #[error("setting socket option {option} failed: {source}")]
    SockOpt {
        /// The option name as in the man pages, e.g. `"IP_RECVTTL"`.
        option: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// Registering the socket with the tokio reactor failed.
    #[error(
        "registering the socket with the async runtime failed: {source} — is a tokio runtime running?"
    )]
    Register {
        /// The OS error.
        source: io::Error,
    },
    /// A system file (under `/proc`) could not be read.
    #[error("reading {path} failed: {source}")]
    ReadSystemFile {
        /// The path.
        path: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// A system file had unexpected content.
    #[error("unexpected content in {path}: {content:?}")]
    ParseSystemFile {
        /// The path.
        path: &'static str,
        /// What we found.
        content: String,
    },
    /// A clock system call failed.
    #[error("{call} failed: {source}")]
    Clock {
        /// The call, e.g. `"adjtimex"`.
        call: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

impl IoError {
    /// Maps a failed `bind(2)` to the variant that names the fix.
    pub(crate) fn from_bind(addr: SocketAddr, proto: &'static str, source: io::Error) -> Self {
        match source.raw_os_error() {
            Some(libc::EADDRINUSE) => IoError::AddrInUse { addr, proto },
            Some(libc::EADDRNOTAVAIL) => IoError::AddrNotAvailable { addr, proto },
            Some(libc::EACCES) => IoError::BindPermission { addr, proto },
            _ => IoError::Bind {
                addr,
                proto,
                source,
            },
        }
    }

    /// Turns a failed `socket(2)` for a raw socket with `EPERM`/`EACCES` into the
    /// capability hint; other errors stay as they are.
    pub(crate) fn into_raw_permission(self, what: &'static str) -> Self {
        match self {
            IoError::Socket { source, .. }
                if matches!(source.raw_os_error(), Some(libc::EPERM | libc::EACCES)) =>
            {
                IoError::RawPermission { what }
            }
            other => other,
        }
    }

    /// Wraps a failed `setsockopt(2)`.
    pub(crate) fn sockopt(option: &'static str) -> impl FnOnce(io::Error) -> IoError {
        move |source| IoError::SockOpt { option, source }
    }
}

/// Whether an error returned by `recv`/`send` on a datagram socket is an asynchronous ICMP
/// error the kernel stored in `sk_err` (with `IP_RECVERR`, or on a connected socket) rather
/// than a failure of this call.
///
/// The kernel reports such an error once, on the next socket call, and clears it; the
/// details are in the error queue. The IO layer retries the call when it sees one.
pub fn is_async_icmp_error(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(
            libc::ECONNREFUSED
                | libc::EHOSTUNREACH
                | libc::ENETUNREACH
                | libc::EHOSTDOWN
                | libc::ENETDOWN
                | libc::ENOPROTOOPT
                | libc::EPROTO
                | libc::EACCES
                | libc::ENONET
                | libc::EOPNOTSUPP
                | libc::EMSGSIZE
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_errors_name_the_fix() {
        let addr: SocketAddr = "0.0.0.0:49153".parse().expect("literal");
        let e = IoError::from_bind(addr, "udp", io::Error::from_raw_os_error(libc::EADDRINUSE));
        assert_eq!(
            e.to_string(),
            "binding 0.0.0.0:49153/udp failed: address in use — another `probe serve` running? \
             use --port to pick another port"
        );
        let e = IoError::from_bind(addr, "udp", io::Error::from_raw_os_error(libc::EACCES));
        assert!(matches!(e, IoError::BindPermission { .. }));
        let e = IoError::from_bind(addr, "udp", io::Error::from_raw_os_error(libc::EINVAL));
        assert!(matches!(e, IoError::Bind { .. }));
    }

    #[test]
    fn raw_permission_names_capability() {
        let e = IoError::Socket {
            what: "raw ICMP socket",
            source: io::Error::from_raw_os_error(libc::EPERM),
        }
        .into_raw_permission("raw ICMP socket");
        let text = e.to_string();
        assert!(text.contains("CAP_NET_RAW"), "{text}");
        assert!(text.contains("setcap cap_net_raw+ep"), "{text}");
        assert!(text.contains("--cap-add NET_RAW"), "{text}");
        let other = IoError::Socket {
            what: "raw ICMP socket",
            source: io::Error::from_raw_os_error(libc::EMFILE),
        }
        .into_raw_permission("raw ICMP socket");
        assert!(matches!(other, IoError::Socket { .. }));
    }

    #[test]
    fn async_icmp_errors_are_recognised() {
        assert!(is_async_icmp_error(&io::Error::from_raw_os_error(
            libc::ECONNREFUSED
        )));
        assert!(!is_async_icmp_error(&io::Error::from_raw_os_error(
            libc::EAGAIN
        )));
        assert!(is_async_icmp_error(&io::Error::from_raw_os_error(
            libc::EMSGSIZE
        )));
        assert!(!is_async_icmp_error(&io::Error::from_raw_os_error(
            libc::EBADF
        )));
    }
}
