//! The socket error queue (`MSG_ERRQUEUE`): transmit timestamps and ICMP errors.
//!
//! Two kinds of messages matter to probe:
//!
//! - `SO_EE_ORIGIN_TIMESTAMPING`: a transmit timestamp. `ee_data` is the
//!   [`TxId`] of the datagram, `ee_info` the point in the stack where the time was taken
//!   (`SCM_TSTAMP_SND` for software transmit timestamps), the time itself comes in an
//!   `SCM_TIMESTAMPING` control message.
//! - `SO_EE_ORIGIN_ICMP` / `SO_EE_ORIGIN_ICMP6`: an ICMP error about a datagram this socket
//!   sent (needs `IP_RECVERR` / `IPV6_RECVERR`). This is how unprivileged UDP traceroute
//!   works: `ee_type`/`ee_code` are the ICMP type and code, `SO_EE_OFFENDER` the router that
//!   sent it, `ee_info` the next-hop MTU for "fragmentation needed" / "packet too big",
//!   `msg_name` the original destination, and the payload returned is the part of the
//!   original datagram's payload the router quoted.
//!
//! Local errors (`SO_EE_ORIGIN_LOCAL`, e.g. `EMSGSIZE` with the path MTU in `ee_info` when a
//! datagram with DF set is too big) are reported as [`LocalError`].

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::BorrowedFd;

use crate::io::cmsg::{self, RECV_CONTROL_LEN};
use crate::io::sockaddr::{self, SOCKADDR_LEN};
use crate::io::sys::{InMsg, recv_msg};
use crate::io::timestamp::{TimestampSource, TxId, resolve};
use crate::time::Nanos;

// `ee_info` of timestamping messages: the uapi enum { SCM_TSTAMP_SND, SCM_TSTAMP_SCHED,
// SCM_TSTAMP_ACK } of <linux/errqueue.h> (libc does not export it).
const SCM_TSTAMP_SND: u32 = 0;
const SCM_TSTAMP_SCHED: u32 = 1;
const SCM_TSTAMP_ACK: u32 = 2;

/// Where in the transmit path a transmit timestamp was taken (`ee_info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TxStampKind {
    /// `SCM_TSTAMP_SND`: handed to the device driver (what `TX_SOFTWARE` gives).
    Send,
    /// `SCM_TSTAMP_SCHED`: entered the packet scheduler.
    Sched,
    /// `SCM_TSTAMP_ACK`: acknowledged (TCP only).
    Ack,
    /// A value newer kernels may add.
    Other(u32),
}

/// A transmit timestamp from the error queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TxTimestamp {
    /// The id the datagram got when sent (see [`TxId`]).
    pub id: TxId,
    /// When it left (UNIX epoch, `CLOCK_REALTIME`).
    pub time: Nanos,
    /// Where the time was taken.
    pub kind: TxStampKind,
}

/// An ICMP error about a datagram this socket sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpError {
    /// Whether this is `ICMPv6` (`SO_EE_ORIGIN_ICMP6`) rather than ICMP.
    pub icmpv6: bool,
    /// The node that sent the ICMP error.
    pub offender: Option<IpAddr>,
    /// ICMP type (e.g. 11 time exceeded, 3 unreachable; `ICMPv6`: 3 time exceeded, 1
    /// unreachable, 2 packet too big).
    pub icmp_type: u8,
    /// ICMP code.
    pub icmp_code: u8,
    /// `ee_info`: the next-hop MTU for "fragmentation needed" / "packet too big", else 0.
    pub info: u32,
    /// The errno the kernel derived (`EHOSTUNREACH`, `ECONNREFUSED`, `EMSGSIZE`, ...).
    pub errno: i32,
    /// Destination of the original datagram (its address and port).
    pub original_dst: Option<SocketAddr>,
    /// Bytes of the original datagram's payload the ICMP error quoted, now at the start of
    /// the caller's buffer (often 0: many routers quote only 8 bytes past the IP header).
    pub payload_len: usize,
    /// When the ICMP error arrived.
    pub time: Nanos,
    /// Whether [`IcmpError::time`] is a kernel timestamp.
    pub time_source: TimestampSource,
    /// TTL / hop limit of the ICMP error packet as it arrived (needs `recv_ttl`).
    pub ttl: Option<u8>,
}

/// An error the local stack reported about a datagram (`SO_EE_ORIGIN_LOCAL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalError {
    /// The errno, e.g. `EMSGSIZE`.
    pub errno: i32,
    /// `ee_info`: for `EMSGSIZE`, the path MTU.
    pub info: u32,
    /// Destination of the datagram.
    pub original_dst: Option<SocketAddr>,
}

/// One message read from the error queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrQueueMessage {
    /// A transmit timestamp.
    TxTimestamp(TxTimestamp),
    /// An ICMP error.
    Icmp(IcmpError),
    /// A local error.
    Local(LocalError),
    /// Any other origin (e.g. zero-copy completions), with its `ee_origin` and errno; origin
    /// 0 means the message carried no extended error at all.
    Other {
        /// `ee_origin`.
        origin: u8,
        /// `ee_errno`.
        errno: i32,
    },
}

/// Turns one error-queue message (its control bytes, address and payload length) into an
/// [`ErrQueueMessage`]. `user_time` stands in for a missing kernel receive timestamp.
pub(crate) fn classify(
    control: &[u8],
    name: &[u8],
    payload_len: usize,
    user_time: Nanos,
) -> ErrQueueMessage {
    let anc = cmsg::parse(control);
    let Some(ee) = anc.ext_err else {
        return ErrQueueMessage::Other {
            origin: 0,
            errno: 0,
        };
    };
    let errno = ee.errno as i32;
    let original_dst = sockaddr::decode(name);
    match ee.origin {
        libc::SO_EE_ORIGIN_TIMESTAMPING => match anc.time {
            Some(time) => ErrQueueMessage::TxTimestamp(TxTimestamp {
                id: TxId(ee.data),
                time,
                kind: match ee.info {
                    SCM_TSTAMP_SND => TxStampKind::Send,
                    SCM_TSTAMP_SCHED => TxStampKind::Sched,
                    SCM_TSTAMP_ACK => TxStampKind::Ack,
                    other => TxStampKind::Other(other),
                },
            }),
            None => ErrQueueMessage::Other {
                origin: ee.origin,
                errno,
            },
        },
        libc::SO_EE_ORIGIN_ICMP | libc::SO_EE_ORIGIN_ICMP6 => {
            let (time, time_source) = resolve(anc.time, user_time);
            ErrQueueMessage::Icmp(IcmpError {
                icmpv6: ee.origin == libc::SO_EE_ORIGIN_ICMP6,
                offender: ee.offender,
                icmp_type: ee.kind,
                icmp_code: ee.code,
                info: ee.info,
                errno,
                original_dst,
                payload_len,
                time,
                time_source,
                ttl: anc.ttl,
            })
        }
        libc::SO_EE_ORIGIN_LOCAL => ErrQueueMessage::Local(LocalError {
            errno,
            info: ee.info,
            original_dst,
        }),
        origin => ErrQueueMessage::Other { origin, errno },
    }
}

/// Reads one message from the error queue of `fd` without blocking; an ICMP error's quoted
/// payload lands in `buf`. `WouldBlock` when the queue is empty.
pub fn recv_errqueue_fd(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<ErrQueueMessage> {
    let mut name = [0u8; SOCKADDR_LEN];
    let mut control = [0u8; RECV_CONTROL_LEN];
    let buf_len = buf.len();
    let r = recv_msg(
        fd,
        InMsg {
            data: buf,
            name: &mut name,
            control: &mut control,
        },
        libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT,
    )?;
    let user_time = Nanos::now_realtime();
    Ok(classify(
        &control[..r.control_len.min(RECV_CONTROL_LEN)],
        &name[..r.name_len.min(SOCKADDR_LEN)],
        r.len.min(buf_len),
        user_time,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::cmsg::test_support::{control, ext_err, timestamping};

    #[test]
    fn tx_timestamp_carries_id_and_time() {
        let ctl = control(&[
            timestamping(1_700_000_000, 5),
            ext_err(
                libc::IPPROTO_IP,
                0,
                libc::SO_EE_ORIGIN_TIMESTAMPING,
                (0, 0),
                SCM_TSTAMP_SND,
                42,
                None,
            ),
        ]);
        assert_eq!(
            classify(&ctl, &[], 0, Nanos(1)),
            ErrQueueMessage::TxTimestamp(TxTimestamp {
                id: TxId(42),
                time: Nanos::from_parts(1_700_000_000, 5),
                kind: TxStampKind::Send,
            })
        );
        let sched = control(&[
            timestamping(9, 9),
            ext_err(
                libc::IPPROTO_IPV6,
                0,
                libc::SO_EE_ORIGIN_TIMESTAMPING,
                (0, 0),
                SCM_TSTAMP_SCHED,
                0,
                None,
            ),
        ]);
        assert!(matches!(
            classify(&sched, &[], 0, Nanos(1)),
            ErrQueueMessage::TxTimestamp(TxTimestamp {
                kind: TxStampKind::Sched,
                ..
            })
        ));
    }

    #[test]
    fn icmp_error_with_offender_destination_and_user_time() {
        let router: IpAddr = "192.0.2.254".parse().expect("literal");
        let ctl = control(&[ext_err(
            libc::IPPROTO_IP,
            libc::EHOSTUNREACH as u32,
            libc::SO_EE_ORIGIN_ICMP,
            (11, 0),
            0,
            0,
            Some(router),
        )]);
        let dst: SocketAddr = "198.51.100.1:33434".parse().expect("literal");
        let mut name = [0u8; SOCKADDR_LEN];
        let name_len = sockaddr::encode(dst, false, &mut name);
        let ErrQueueMessage::Icmp(e) = classify(&ctl, &name[..name_len], 12, Nanos(77)) else {
            panic!("not classified as ICMP");
        };
        assert!(!e.icmpv6);
        assert_eq!(e.offender, Some(router));
        assert_eq!(
            (e.icmp_type, e.icmp_code, e.errno),
            (11, 0, libc::EHOSTUNREACH)
        );
        assert_eq!(e.original_dst, Some(dst));
        assert_eq!(e.payload_len, 12);
        assert_eq!((e.time, e.time_source), (Nanos(77), TimestampSource::User));
    }

    #[test]
    fn local_and_unknown_origins() {
        let ctl = control(&[ext_err(
            libc::IPPROTO_IP,
            libc::EMSGSIZE as u32,
            libc::SO_EE_ORIGIN_LOCAL,
            (0, 0),
            1280,
            0,
            None,
        )]);
        assert_eq!(
            classify(&ctl, &[], 0, Nanos(1)),
            ErrQueueMessage::Local(LocalError {
                errno: libc::EMSGSIZE,
                info: 1280,
                original_dst: None,
            })
        );
        let zerocopy = control(&[ext_err(libc::IPPROTO_IP, 0, 5, (0, 0), 0, 0, None)]);
        assert_eq!(
            classify(&zerocopy, &[], 0, Nanos(1)),
            ErrQueueMessage::Other {
                origin: 5,
                errno: 0
            }
        );
        assert_eq!(
            classify(&[], &[], 0, Nanos(1)),
            ErrQueueMessage::Other {
                origin: 0,
                errno: 0
            }
        );
    }
}
