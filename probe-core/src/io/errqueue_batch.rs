//! [`ErrQueueBatch`]: the error queue read many messages per system call.
//!
//! A socket with transmit timestamps queues one error-queue message per datagram sent. Read
//! with one `recvmsg` each, a sender of thousands of datagrams a second makes as many calls
//! again as it sends; `recvmmsg` with `MSG_ERRQUEUE` takes them in batches (each message is
//! still dequeued by the kernel's error-queue path, `ip_recv_error`/`ipv6_recv_error`).

use std::io;
use std::os::fd::BorrowedFd;

use crate::io::batch::RecvSlots;
use crate::io::cmsg::RECV_CONTROL_LEN;
use crate::io::errqueue::{ErrQueueMessage, classify};
use crate::io::sockaddr::SOCKADDR_LEN;
use crate::time::Nanos;

/// Preallocated buffers for reading up to `capacity` error-queue messages in one call.
pub struct ErrQueueBatch {
    slots: RecvSlots,
    len: usize,
    user_time: Nanos,
}

impl std::fmt::Debug for ErrQueueBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErrQueueBatch")
            .field("capacity", &self.slots.capacity())
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl ErrQueueBatch {
    /// Buffers for `capacity` messages (at least 1), each with room for `slot_len` bytes of
    /// the payload an ICMP error quotes (transmit timestamps carry none).
    pub fn new(capacity: usize, slot_len: usize) -> Self {
        ErrQueueBatch {
            slots: RecvSlots::new(capacity, slot_len),
            len: 0,
            user_time: Nanos(0),
        }
    }

    /// How many messages the last read returned.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the last read returned nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the last read filled every slot (more may be queued).
    pub fn is_full(&self) -> bool {
        self.len == self.slots.capacity()
    }

    /// One non-blocking `recvmmsg(MSG_ERRQUEUE)` on `fd`, replacing the previous contents;
    /// returns how many messages were read. `WouldBlock` when the queue is empty.
    pub fn recv_from_fd(&mut self, fd: BorrowedFd<'_>) -> io::Result<usize> {
        self.len = 0;
        let n = self
            .slots
            .recv(fd, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT)?;
        self.user_time = Nanos::now_realtime();
        self.len = n;
        Ok(n)
    }

    /// Message `i` of the last read, with the bytes of its quoted payload (see
    /// [`IcmpError::payload_len`](crate::io::IcmpError::payload_len)).
    pub fn get(&self, i: usize) -> Option<(ErrQueueMessage, &[u8])> {
        if i >= self.len {
            return None;
        }
        let (r, name, control) = self.slots.message(i);
        let payload = self.slots.payload(i, r.len);
        let msg = classify(
            &control[..r.control_len.min(RECV_CONTROL_LEN)],
            &name[..r.name_len.min(SOCKADDR_LEN)],
            payload.len(),
            self.user_time,
        );
        Some((msg, payload))
    }

    /// The messages of the last read, in queue order.
    pub fn iter(&self) -> impl Iterator<Item = (ErrQueueMessage, &[u8])> + '_ {
        (0..self.len).filter_map(|i| self.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{ErrQueueMessage, PolledSocket, SendBatch, SendOptions, SocketOptions};
    use std::os::fd::AsFd;

    /// Transmit timestamps of 40 datagrams come back in order, in one or a few reads.
    #[test]
    fn reads_transmit_timestamps_in_batches() {
        crate::io::tests_udp::kernel_rx_timestamps_on();
        let opts = SocketOptions {
            recv_err: true,
            ..SocketOptions::default()
        };
        let any = "127.0.0.1:0".parse().expect("literal");
        let a = PolledSocket::bind_udp_tx(any, &opts).expect("bind a");
        let b = PolledSocket::bind_udp(any, &SocketOptions::default()).expect("bind b");
        let dst = b.local_addr().expect("b address");
        let mut out = SendBatch::new(40, 64);
        for i in 0..40u8 {
            assert!(out.push(&[i; 44], dst, SendOptions::default()));
        }
        let report = a.send_batch(&mut out, std::time::Duration::from_secs(1));
        assert_eq!(report.sent, 40, "{:?}", report.first_error);
        let ids: Vec<u32> = (0..40).filter_map(|i| out.tx_id(i)).map(|t| t.0).collect();
        assert_eq!(
            ids,
            (0..40).collect::<Vec<u32>>(),
            "ids mirror the kernel's"
        );
        let mut errs = ErrQueueBatch::new(16, 64);
        let mut got = Vec::new();
        let mut reads = 0;
        while got.len() < 40 && reads < 100 {
            reads += 1;
            match errs.recv_from_fd(a.socket().as_fd()) {
                Ok(n) => {
                    assert!(n <= 16);
                    for (msg, payload) in errs.iter() {
                        let ErrQueueMessage::TxTimestamp(t) = msg else {
                            panic!("not a transmit timestamp: {msg:?}");
                        };
                        assert!(payload.is_empty(), "OPT_TSONLY: no payload");
                        got.push(t.id.0);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(e) => panic!("recvmmsg(MSG_ERRQUEUE): {e}"),
            }
        }
        assert_eq!(got, ids);
        assert!(reads < 40, "{reads} reads for 40 messages: not batched");
        let empty = errs.recv_from_fd(a.socket().as_fd());
        assert_eq!(empty.map_err(|e| e.kind()), Err(io::ErrorKind::WouldBlock));
        assert!(errs.is_empty() && errs.get(0).is_none());
    }
}
