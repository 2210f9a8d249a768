//! Kernel packet timestamps: turning them on and telling where a timestamp came from.
//!
//! probe asks for, in order of preference:
//!
//! 1. `SO_TIMESTAMPING` with `SOF_TIMESTAMPING_{RX_SOFTWARE, SOFTWARE}` for receive
//!    timestamps and, when transmit timestamps are wanted, `TX_SOFTWARE | OPT_ID | OPT_TSONLY`:
//!    the kernel then queues, for each datagram sent, an error-queue message carrying the time
//!    the packet left the stack (taken in the driver's transmit path) and a per-socket counter
//!    (see [`TxId`]);
//!    (`OPT_CMSG` is not asked for: it would only add the egress `IP_PKTINFO` to IPv4
//!    transmit timestamps, which probe does not use);
//! 2. `SO_TIMESTAMPNS` (receive timestamps only);
//! 3. nothing from the kernel: receive times are then read from `CLOCK_REALTIME` right after
//!    the receive call returns.
//!
//! All timestamps are [`Nanos`] since the UNIX epoch on `CLOCK_REALTIME`.
//!
//! A packet can still arrive without a kernel timestamp: the kernel turns its global
//! receive-timestamp switch on from a work queue when the first socket in the system asks
//! for timestamps, so the first packets after start-up may miss it. Each received packet
//! therefore reports its own [`TimestampSource`].

use std::os::fd::AsFd;

use crate::io::sys::setsockopt_int;
use crate::time::Nanos;

pub use crate::time::TimestampSource;

/// Which timestamping a socket got when it was set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimestampMode {
    /// `SO_TIMESTAMPING`: kernel receive timestamps, and transmit timestamps on the error
    /// queue when `tx` is true.
    Timestamping {
        /// Whether transmit timestamps (with `OPT_ID`) are on.
        tx: bool,
    },
    /// `SO_TIMESTAMPNS`: kernel receive timestamps only.
    TimestampNs,
    /// No kernel timestamps; user-space clock after each receive.
    User,
}

impl TimestampMode {
    /// The source receive timestamps will normally have.
    pub fn rx_source(self) -> TimestampSource {
        match self {
            TimestampMode::Timestamping { .. } | TimestampMode::TimestampNs => {
                TimestampSource::Kernel
            }
            TimestampMode::User => TimestampSource::User,
        }
    }

    /// Whether the kernel queues transmit timestamps on the error queue.
    pub fn tx_enabled(self) -> bool {
        matches!(self, TimestampMode::Timestamping { tx: true })
    }
}

/// The identifier the kernel gives a sent datagram for transmit timestamps
/// (`SOF_TIMESTAMPING_OPT_ID`).
///
/// The kernel keeps one counter per socket. It starts at 0 when timestamping is enabled and
/// grows by one for every datagram sent (for UDP, raw and ping sockets it counts datagrams,
/// not bytes); the transmit timestamp of a datagram carries the value the counter had when it
/// was sent, in `ee_data`. The IO layer mirrors the counter in user space and hands out the
/// value of each send, so a caller can match a later [`TxTimestamp`](crate::io::TxTimestamp)
/// to its packet. The counter wraps at `u32::MAX`.
///
/// The mirror stays exact as long as every send on the socket goes through the IO layer.
/// One kernel corner remains: a datagram that fails after it was queued (`ENOBUFS` from a
/// full qdisc with `IP_RECVERR` on) has used up an id; the IO layer then advances its
/// mirror too, on the assumption that the queueing was what failed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TxId(pub u32);

impl TxId {
    /// The id after this one (wrapping).
    #[must_use]
    pub const fn next(self) -> TxId {
        TxId(self.0.wrapping_add(1))
    }
}

/// Turns on the best timestamping the kernel offers for this socket; `tx` also asks for
/// transmit timestamps. Never fails: the worst case is [`TimestampMode::User`].
///
/// With transmit timestamps on, every datagram sent queues an error-queue message; the
/// owner must drain the error queue (it counts against the receive buffer, and a full
/// receive buffer drops incoming packets).
pub fn enable_timestamps(socket: &impl AsFd, tx: bool) -> TimestampMode {
    let fd = socket.as_fd();
    let mut flags = libc::SOF_TIMESTAMPING_SOFTWARE | libc::SOF_TIMESTAMPING_RX_SOFTWARE;
    if tx {
        flags |= libc::SOF_TIMESTAMPING_TX_SOFTWARE
            | libc::SOF_TIMESTAMPING_OPT_ID
            | libc::SOF_TIMESTAMPING_OPT_TSONLY;
    }
    // The flags are an `int` bit set; every bit used is below 2^31.
    let flags = flags as i32;
    match setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPING, flags) {
        Ok(()) => return TimestampMode::Timestamping { tx },
        Err(e) => tracing::debug!("SO_TIMESTAMPING unavailable ({e}), trying SO_TIMESTAMPNS"),
    }
    match setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1) {
        Ok(()) => TimestampMode::TimestampNs,
        Err(e) => {
            tracing::debug!("SO_TIMESTAMPNS unavailable ({e}), using user-space receive times");
            TimestampMode::User
        }
    }
}

/// Picks the kernel timestamp when there is one, else the user-space time.
pub(crate) fn resolve(kernel: Option<Nanos>, user: Nanos) -> (Nanos, TimestampSource) {
    match kernel {
        Some(t) => (t, TimestampSource::Kernel),
        None => (user, TimestampSource::User),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tx_id_wraps() {
        assert_eq!(TxId(u32::MAX).next(), TxId(0));
        assert_eq!(TxId(41).next(), TxId(42));
    }

    #[test]
    fn modes_report_their_sources() {
        assert_eq!(
            TimestampMode::Timestamping { tx: false }.rx_source(),
            TimestampSource::Kernel
        );
        assert!(TimestampMode::Timestamping { tx: true }.tx_enabled());
        assert!(!TimestampMode::TimestampNs.tx_enabled());
        assert_eq!(TimestampMode::User.rx_source(), TimestampSource::User);
        let user = Nanos(5);
        assert_eq!(resolve(None, user), (user, TimestampSource::User));
        assert_eq!(
            resolve(Some(Nanos(3)), user),
            (Nanos(3), TimestampSource::Kernel)
        );
    }

    #[test]
    fn loopback_udp_gets_full_timestamping() {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind loopback");
        assert_eq!(
            enable_timestamps(&s, true),
            TimestampMode::Timestamping { tx: true }
        );
        let flags =
            crate::io::sys::getsockopt_int(s.as_fd(), libc::SOL_SOCKET, libc::SO_TIMESTAMPING)
                .expect("read back SO_TIMESTAMPING");
        let want = libc::SOF_TIMESTAMPING_SOFTWARE
            | libc::SOF_TIMESTAMPING_RX_SOFTWARE
            | libc::SOF_TIMESTAMPING_TX_SOFTWARE
            | libc::SOF_TIMESTAMPING_OPT_ID
            | libc::SOF_TIMESTAMPING_OPT_TSONLY;
        assert_eq!(flags as u32, want);
    }
}
