//! The thin IO layer: socket builders, kernel timestamps, batching and privileges.
//!
//! System calls that socket2 and tokio do not wrap go straight to `libc`. This is the only
//! module of probe-core allowed to use `unsafe`; each use carries a `// SAFETY:` comment and
//! is one of these calls:
//!
//! - `sys`: `recvmsg`, `sendmsg`, `recvmmsg`, `sendmmsg` and integer `setsockopt` /
//!   `getsockopt`, over buffers the callers own;
//! - `sysclock`: `adjtimex` (clock synchronization state);
//! - `pacer`: the pacing thread's settings (`prctl` timer slack, `sched_setscheduler`) and its
//!   blocking `clock_nanosleep`;
//! - `timerfd`: `timerfd_create`, `timerfd_settime` and the expiry `read`, and handing the
//!   timer to tokio's reactor;
//! - `async_socket`: handing the socket to tokio's reactor (`AsyncFd::register_with_interest`);
//! - `polled_socket`: the `poll` that both the responder's [`PolledSocket`] and
//!   [`TimestampedSocket::wait_readable_blocking`] wait in;
//! - `tcp_info`: `getsockopt(TCP_INFO)` into a caller's buffer;
//! - in tests only: `sockaddr` and `cmsg` compare their layouts with socket2 and libc,
//!   `tests_icmp` moves a thread into a private network namespace (`unshare`), and
//!   `tests_pacer` reads the thread's CPU clock and resets its scheduling class.
//!
//! Control messages and socket addresses are decoded from bytes in safe code (`cmsg`,
//! `sockaddr`).
//!
//! - [`udp_socket`], [`icmp_socket`], [`raw_ipv4_sender`], [`raw_ip_socket`],
//!   [`tcp_socket`], [`tcp_listener`] build sockets from [`SocketOptions`].
//! - [`TimestampedSocket`] runs a datagram socket on tokio with kernel receive and transmit
//!   timestamps, batches ([`RecvBatch`], [`SendBatch`]) and the error queue
//!   ([`ErrQueueMessage`]).
//! - [`PolledSocket`] is a UDP socket with kernel receive timestamps that one thread drives
//!   with batches and `poll`, outside any runtime (the STAMP responder's).
//! - [`Privileges`] / [`detect_icmp_mode`] tell whether raw or ICMP datagram sockets work.
//! - [`Pacer`] waits for absolute deadlines in async code with microsecond precision (a
//!   `CLOCK_REALTIME` timerfd, then a bounded spin; see [`PacerConfig`]).
//! - [`boot_id`] and [`clock_sync`] describe the system clock.
//!
//! Linux only: the crate targets Linux hosts and containers.
#![allow(unsafe_code)]

mod async_socket;
mod batch;
mod cmsg;
mod error;
mod errqueue;
mod errqueue_batch;
mod meta;
mod pacer;
mod polled_socket;
mod privilege;
mod raw;
mod route_mtu;
mod sockaddr;
mod socket;
mod sys;
mod sysclock;
mod tcp_info;
mod timerfd;
mod timestamp;

pub use async_socket::TimestampedSocket;
pub use batch::{RecvBatch, SendBatch, SendReport};
pub use cmsg::{PacketSource, SendOptions};
pub use error::{IoError, is_async_icmp_error};
pub use errqueue::{
    ErrQueueMessage, IcmpError, LocalError, TxStampKind, TxTimestamp, recv_errqueue_fd,
};
pub use errqueue_batch::ErrQueueBatch;
pub use meta::RecvMeta;
pub use pacer::{Pacer, PacerConfig};
pub use polled_socket::PolledSocket;
pub use privilege::{PrivilegeMode, Privileges, detect_icmp_mode};
pub use raw::{icmp_socket, raw_ip_socket, raw_ipv4_sender};
pub use route_mtu::route_mtu;
pub use socket::{
    PmtuMode, SocketOptions, apply_options, bind, tcp_listener, tcp_socket, udp_socket,
};
pub use sysclock::{ClockSync, boot_id, clock_sync};
pub use tcp_info::tcp_info_bytes;
pub use timestamp::{TimestampMode, TimestampSource, TxId, enable_timestamps};

#[cfg(test)]
mod test_skip;
#[cfg(test)]
mod tests_icmp;
#[cfg(test)]
mod tests_pmtu;
#[cfg(test)]
mod tests_udp;
