//! [`TimestampedSocket`]: a datagram socket on tokio with kernel timestamps, batching and the
//! error queue.
//!
//! It wraps any datagram-style inet socket (UDP, ICMP datagram, raw) in
//! [`tokio::io::unix::AsyncFd`], registered for readable, writable and error readiness:
//!
//! - receives wait for readable readiness;
//! - sends wait for writable readiness;
//! - the error queue (transmit timestamps, ICMP errors) signals `POLLERR`, which epoll always
//!   reports; [`TimestampedSocket::recv_error`] waits for [`Interest::ERROR`], reads until the
//!   queue is empty, and only then clears the readiness, so no entry is missed.
//!
//! All methods take `&self`, so one task can send while another receives and a third drains
//! the error queue (share the socket in an `Arc`). Sends take a short lock around the system
//! call so the [`TxId`] handed back always matches the kernel's counter, whatever the
//! interleaving.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::{Mutex, PoisonError};

use socket2::Socket;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::io::batch::{RecvBatch, SendBatch, SendReport};
use crate::io::cmsg::{self, RECV_CONTROL_LEN, SEND_CONTROL_LEN, SendOptions};
use crate::io::error::IoError;
use crate::io::errqueue::{ErrQueueMessage, recv_errqueue_fd};
use crate::io::meta::RecvMeta;
use crate::io::polled_socket::poll_fd;
use crate::io::sockaddr::{self, SOCKADDR_LEN};
use crate::io::socket::{SocketOptions, udp_socket};
use crate::io::sys::{InMsg, OutMsg, recv_msg, retry_async_errors, send_msg};
use crate::io::timestamp::{TimestampMode, TxId, enable_timestamps};
use crate::time::Nanos;

/// A datagram socket registered with tokio, with kernel timestamps turned on.
#[derive(Debug)]
pub struct TimestampedSocket {
    fd: AsyncFd<Socket>,
    v6: bool,
    local: Option<SocketAddr>,
    mode: TimestampMode,
    next_id: Mutex<TxId>,
}

impl TimestampedSocket {
    /// A UDP socket bound to `bind_to` with `opts`, kernel receive timestamps, and transmit
    /// timestamps if `tx_timestamps` (then drain [`TimestampedSocket::recv_error`]).
    /// Must be called within a tokio runtime.
    pub fn bind_udp(
        bind_to: SocketAddr,
        opts: &SocketOptions,
        tx_timestamps: bool,
    ) -> Result<Self, IoError> {
        Self::from_socket(udp_socket(bind_to, opts)?, tx_timestamps)
    }

    /// Wraps an inet datagram socket made elsewhere (e.g. by [`crate::io::icmp_socket`]):
    /// makes it non-blocking, turns on timestamps, registers it with the runtime.
    /// Call before the first send so the [`TxId`] mirror starts in step with the kernel.
    pub fn from_socket(socket: Socket, tx_timestamps: bool) -> Result<Self, IoError> {
        socket
            .set_nonblocking(true)
            .map_err(IoError::sockopt("O_NONBLOCK"))?;
        let local = canonical_local_addr(&socket);
        let v6 = socket.domain().map_err(IoError::sockopt("SO_DOMAIN"))? == socket2::Domain::IPV6;
        let mode = enable_timestamps(&socket, tx_timestamps);
        if let Err(e) = tokio::runtime::Handle::try_current() {
            return Err(IoError::Register {
                source: io::Error::other(e),
            });
        }
        let interest = Interest::READABLE | Interest::WRITABLE | Interest::ERROR;
        // SAFETY: the `Socket` owns its descriptor, keeps it open until it is dropped and
        // always returns the same one from `as_raw_fd`; the `AsyncFd` takes ownership of it
        // and this type never takes it back out.
        let fd = unsafe { AsyncFd::register_with_interest(socket, interest) }.map_err(|e| {
            IoError::Register {
                source: e.into_parts().1,
            }
        })?;
        Ok(TimestampedSocket {
            fd,
            v6,
            local,
            mode,
            next_id: Mutex::new(TxId(0)),
        })
    }

    /// The underlying socket, to read or set further options.
    pub fn socket(&self) -> &Socket {
        self.fd.get_ref()
    }

    /// The bound local address (after `bind`; port 0 resolved; IPv4-mapped shown as IPv4).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local
    }

    /// Whether this is an IPv6 socket (possibly dual-stack).
    pub fn is_v6(&self) -> bool {
        self.v6
    }

    /// The timestamping the socket got.
    pub fn timestamp_mode(&self) -> TimestampMode {
        self.mode
    }

    /// Receives one datagram into `buf`, waiting until one arrives.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<RecvMeta> {
        self.fd
            .async_io(Interest::READABLE, |s| recv_one(s, &mut *buf))
            .await
    }

    /// Receives one datagram if one is waiting; `WouldBlock` otherwise.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<RecvMeta> {
        self.fd
            .try_io(Interest::READABLE, |s| recv_one(s, &mut *buf))
    }

    /// Receives a batch with one `recvmmsg`, waiting until at least one datagram arrives;
    /// returns how many (see [`RecvBatch::iter`]).
    pub async fn recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        self.fd
            .async_io(Interest::READABLE, |s| batch.recv_from_fd(s.as_fd()))
            .await
    }

    /// Receives a batch with one non-blocking `recvmmsg` (`WouldBlock` when nothing is
    /// queued), for a thread that drives the socket itself (see
    /// [`TimestampedSocket::wait_readable_blocking`]) instead of awaiting readiness.
    pub fn try_recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        batch.recv_from_fd(self.fd.get_ref().as_fd())
    }

    /// Blocks the calling thread (not a runtime worker) until a datagram is queued or
    /// `timeout_ms` passed; returns whether one is queued.
    pub fn wait_readable_blocking(&self, timeout_ms: u16) -> bool {
        poll_fd(self.fd.get_ref().as_fd(), libc::POLLIN, timeout_ms)
    }

    /// Sends `buf` to `dst`; returns the datagram's [`TxId`] for matching its transmit
    /// timestamp.
    pub async fn send_to(&self, buf: &[u8], dst: SocketAddr) -> io::Result<TxId> {
        self.send_with(buf, dst, &SendOptions::default()).await
    }

    /// Sends `buf` to `dst` with per-datagram `opts` (source address, TTL, TOS); returns
    /// the datagram's [`TxId`].
    pub async fn send_with(
        &self,
        buf: &[u8],
        dst: SocketAddr,
        opts: &SendOptions,
    ) -> io::Result<TxId> {
        let mut name = [0u8; SOCKADDR_LEN];
        let name_len = sockaddr::encode(dst, self.v6, &mut name);
        let mut control = [0u8; SEND_CONTROL_LEN];
        let control_len = cmsg::encode_send_options(opts, dst.is_ipv4(), &mut control);
        let msg = OutMsg {
            data: buf,
            name: &name[..name_len],
            control: &control[..control_len],
        };
        self.fd
            .async_io(Interest::WRITABLE, |s| {
                let mut next = self.next_id.lock().unwrap_or_else(PoisonError::into_inner);
                match retry_async_errors(|| send_msg(s.as_fd(), &msg)) {
                    Ok(_) => {
                        let id = *next;
                        *next = id.next();
                        Ok(id)
                    }
                    Err(e) => {
                        if e.raw_os_error() == Some(libc::ENOBUFS) {
                            *next = next.next();
                        }
                        Err(e)
                    }
                }
            })
            .await
    }

    /// Sends every queued datagram of `batch` with `sendmmsg`, waiting for buffer space as
    /// needed. Datagrams the kernel refuses are skipped and counted in the report; the
    /// batch keeps each datagram's [`TxId`] ([`SendBatch::tx_id`]) until cleared.
    pub async fn send_batch(&self, batch: &mut SendBatch) -> io::Result<SendReport> {
        let mut report = SendReport::default();
        self.fd
            .async_io(Interest::WRITABLE, |s| {
                let mut next = self.next_id.lock().unwrap_or_else(PoisonError::into_inner);
                batch.send_on_fd(s.as_fd(), self.v6, &mut next, &mut report)
            })
            .await?;
        Ok(report)
    }

    /// Reads one error-queue message (transmit timestamp, ICMP error, local error), waiting
    /// until one is queued. An ICMP error's quoted payload lands in `buf`.
    pub async fn recv_error(&self, buf: &mut [u8]) -> io::Result<ErrQueueMessage> {
        self.fd
            .async_io(Interest::ERROR, |s| recv_errqueue_fd(s.as_fd(), &mut *buf))
            .await
    }

    /// Reads one error-queue message if one is queued; `WouldBlock` otherwise.
    pub fn try_recv_error(&self, buf: &mut [u8]) -> io::Result<ErrQueueMessage> {
        recv_errqueue_fd(self.fd.get_ref().as_fd(), buf)
    }
}

/// The bound address of `socket`; an IPv6 socket bound to an IPv4-mapped address serves
/// IPv4 and shows it as such.
pub(crate) fn canonical_local_addr(socket: &Socket) -> Option<SocketAddr> {
    socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map(|a| SocketAddr::new(a.ip().to_canonical(), a.port()))
}

/// One non-blocking `recvmsg` with metadata.
fn recv_one(socket: &Socket, buf: &mut [u8]) -> io::Result<RecvMeta> {
    let mut name = [0u8; SOCKADDR_LEN];
    let mut control = [0u8; RECV_CONTROL_LEN];
    let buf_len = buf.len();
    let r = retry_async_errors(|| {
        recv_msg(
            socket.as_fd(),
            InMsg {
                data: &mut *buf,
                name: &mut name,
                control: &mut control,
            },
            libc::MSG_DONTWAIT,
        )
    })?;
    Ok(RecvMeta::from_parts(
        r,
        buf_len,
        &name,
        &control,
        Nanos::now_realtime(),
    ))
}
