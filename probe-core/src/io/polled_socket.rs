//! [`PolledSocket`]: a UDP socket with kernel receive timestamps that one thread drives by
//! itself, with non-blocking batch calls and `poll(2)` to wait.
//!
//! Unlike [`TimestampedSocket`](crate::io::TimestampedSocket) it is not registered with any
//! runtime. A socket in an epoll set wakes the epoll waiter on every readiness change: each
//! datagram queued and each sent datagram freed (write space). A reflector under a flood
//! paid for one runtime thread wake-up per batch that way, on both cores of a small host,
//! for readiness nobody awaited. Here the wait queue is empty except while the owner thread
//! sleeps in `poll`, so the kernel's wake-up path finds nobody to wake.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use socket2::Socket;

use crate::io::batch::{RecvBatch, SendBatch, SendReport};
use crate::io::error::IoError;
use crate::io::errqueue_batch::ErrQueueBatch;
use crate::io::socket::{SocketOptions, udp_socket};
use crate::io::timestamp::{TimestampMode, TxId, enable_timestamps};

/// Waits up to `timeout_ms` for `events` (`libc::POLLIN`, `libc::POLLOUT`) on `fd`; returns
/// whether one is signalled (an error or hang-up counts, so the next call reports it).
pub(crate) fn poll_fd(fd: BorrowedFd<'_>, events: libc::c_short, timeout_ms: u16) -> bool {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    };
    // SAFETY: `pfd` is a live local and the count passed is 1; the descriptor is borrowed, so
    // it stays open for the call.
    let n = unsafe { libc::poll(&raw mut pfd, 1, i32::from(timeout_ms)) };
    n > 0
}

/// A non-blocking UDP socket with kernel receive timestamps, for one thread that receives
/// and sends on it and sleeps in [`PolledSocket::wait_readable`] when idle (or, with
/// kernel timestamps dating every datagram, only reads at its own pace).
#[derive(Debug)]
pub struct PolledSocket {
    socket: Socket,
    v6: bool,
    local: Option<SocketAddr>,
    mode: TimestampMode,
    /// The mirror of the kernel's transmit id counter (see [`TxId`]).
    next_id: AtomicU32,
}

impl PolledSocket {
    /// A UDP socket bound to `bind_to` with `opts` and kernel receive timestamps.
    pub fn bind_udp(bind_to: SocketAddr, opts: &SocketOptions) -> Result<Self, IoError> {
        Self::bind(bind_to, opts, false)
    }

    /// [`PolledSocket::bind_udp`] with transmit timestamps too: each datagram sent queues
    /// one on the error queue, read with [`PolledSocket::try_recv_errors`] and matched by
    /// the [`SendBatch::tx_id`] of its send.
    pub fn bind_udp_tx(bind_to: SocketAddr, opts: &SocketOptions) -> Result<Self, IoError> {
        Self::bind(bind_to, opts, true)
    }

    fn bind(bind_to: SocketAddr, opts: &SocketOptions, tx: bool) -> Result<Self, IoError> {
        let socket = udp_socket(bind_to, opts)?;
        socket
            .set_nonblocking(true)
            .map_err(IoError::sockopt("O_NONBLOCK"))?;
        let v6 = socket.domain().map_err(IoError::sockopt("SO_DOMAIN"))? == socket2::Domain::IPV6;
        let local = crate::io::async_socket::canonical_local_addr(&socket);
        let mode = enable_timestamps(&socket, tx);
        Ok(PolledSocket {
            socket,
            v6,
            local,
            mode,
            next_id: AtomicU32::new(0),
        })
    }

    /// The underlying socket, to read or set further options.
    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    /// The bound local address (port 0 resolved; IPv4-mapped shown as IPv4).
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

    /// One non-blocking `recvmmsg` (`WouldBlock` when nothing is queued).
    pub fn try_recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        batch.recv_from_fd(self.socket.as_fd())
    }

    /// One non-blocking `recvmmsg(MSG_ERRQUEUE)`: transmit timestamps, ICMP and local
    /// errors (`WouldBlock` when none is queued).
    pub fn try_recv_errors(&self, batch: &mut ErrQueueBatch) -> io::Result<usize> {
        batch.recv_from_fd(self.socket.as_fd())
    }

    /// Sends what is left of `batch` with non-blocking `sendmmsg` calls until all is sent or
    /// the send buffer is full (`WouldBlock`: call again later with the same batch).
    pub fn try_send_batch(&self, batch: &mut SendBatch, report: &mut SendReport) -> io::Result<()> {
        let mut ids = TxId(self.next_id.load(Ordering::Relaxed));
        let r = batch.send_on_fd(self.socket.as_fd(), self.v6, &mut ids, report);
        self.next_id.store(ids.0, Ordering::Relaxed);
        r
    }

    /// Sleeps until a datagram is queued or `timeout_ms` passed; returns whether one is.
    pub fn wait_readable(&self, timeout_ms: u16) -> bool {
        poll_fd(self.socket.as_fd(), libc::POLLIN, timeout_ms)
    }

    /// Sends the queued datagrams of `batch` with `sendmmsg`, sleeping in `poll` while the
    /// send buffer is full, for at most `patience` in all; datagrams still unsent then are
    /// counted as failed with a `WouldBlock` error (a reflector never stalls on one peer).
    pub fn send_batch(&self, batch: &mut SendBatch, patience: Duration) -> SendReport {
        let mut report = SendReport::default();
        let give_up = Instant::now() + patience;
        loop {
            match self.try_send_batch(batch, &mut report) {
                Ok(()) => return report,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let left = give_up.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        batch.give_up(&mut report, e);
                        return report;
                    }
                    let ms = left.as_millis().clamp(1, u128::from(u16::MAX)) as u16;
                    poll_fd(self.socket.as_fd(), libc::POLLOUT, ms);
                }
                Err(e) => {
                    report.first_error.get_or_insert(e);
                    return report;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::SendOptions;

    #[test]
    fn batches_go_out_and_come_back_with_kernel_times() {
        crate::io::tests_udp::kernel_rx_timestamps_on();
        let opts = SocketOptions::default();
        let a =
            PolledSocket::bind_udp("127.0.0.1:0".parse().expect("literal"), &opts).expect("bind a");
        let b =
            PolledSocket::bind_udp("127.0.0.1:0".parse().expect("literal"), &opts).expect("bind b");
        let dst = b.local_addr().expect("b address");
        let mut out = SendBatch::new(8, 128);
        for i in 0..8u8 {
            assert!(out.push(&[i; 50], dst, SendOptions::default()));
        }
        let report = a.send_batch(&mut out, Duration::from_secs(1));
        assert_eq!(
            (report.sent, report.failed),
            (8, 0),
            "{:?}",
            report.first_error
        );
        let mut rx = RecvBatch::new(8, 128);
        let mut got = 0;
        while got < 8 && b.wait_readable(1000) {
            got += b.try_recv_batch(&mut rx).expect("recvmmsg");
            for (data, meta) in rx.iter() {
                assert_eq!(data.len(), 50);
                assert_eq!(meta.time_source, crate::io::TimestampSource::Kernel);
                assert!(
                    meta.time <= rx.received_at(),
                    "kernel time before user time"
                );
                assert_eq!(meta.source, a.local_addr());
            }
        }
        assert_eq!(got, 8);
        assert!(!b.wait_readable(0), "nothing more queued");
    }
}
