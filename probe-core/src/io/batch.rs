//! Batched receive and send (`recvmmsg` / `sendmmsg`) over preallocated buffers.
//!
//! A [`RecvBatch`] owns `capacity` payload slots, address and control buffers and a
//! [`RecvMeta`] per slot; a [`SendBatch`] owns payload slots with a destination, an optional
//! source address and, after sending, the [`TxId`] of each message. Nothing is allocated per
//! packet or per call once a batch exists.
//!
//! The `*_fd` methods do one non-blocking system call on a borrowed descriptor; the async
//! socket ([`TimestampedSocket`](crate::io::TimestampedSocket)) drives them from readiness.

use std::io;
use std::net::SocketAddr;
use std::os::fd::BorrowedFd;

use crate::io::cmsg::{self, RECV_CONTROL_LEN, SEND_CONTROL_LEN, SendOptions};
use crate::io::meta::RecvMeta;
use crate::io::sockaddr::{self, SOCKADDR_LEN, SockaddrBuf};
use crate::io::sys::{InMsg, MmsgHeaders, OutMsg, retry_async_errors};
use crate::io::timestamp::TxId;
use crate::time::Nanos;

/// Preallocated buffers for receiving up to `capacity` datagrams in one `recvmmsg`.
pub struct RecvBatch {
    slot_len: usize,
    data: Box<[u8]>,
    names: Box<[SockaddrBuf]>,
    control: Box<[u8]>,
    meta: Box<[RecvMeta]>,
    headers: MmsgHeaders,
    len: usize,
}

impl RecvBatch {
    /// Buffers for `capacity` datagrams of up to `slot_len` bytes each (both at least 1).
    pub fn new(capacity: usize, slot_len: usize) -> Self {
        let capacity = capacity.max(1);
        let slot_len = slot_len.max(1);
        RecvBatch {
            slot_len,
            data: vec![0; capacity * slot_len].into_boxed_slice(),
            names: vec![[0; SOCKADDR_LEN]; capacity].into_boxed_slice(),
            control: vec![0; capacity * RECV_CONTROL_LEN].into_boxed_slice(),
            meta: vec![RecvMeta::default(); capacity].into_boxed_slice(),
            headers: MmsgHeaders::new(capacity),
            len: 0,
        }
    }

    /// How many datagrams one call can receive.
    pub fn capacity(&self) -> usize {
        self.meta.len()
    }

    /// Bytes per datagram slot; longer datagrams are truncated.
    pub fn slot_len(&self) -> usize {
        self.slot_len
    }

    /// Datagrams received by the last call.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the last call received nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Datagram `i` of the last call: its bytes and metadata.
    pub fn get(&self, i: usize) -> Option<(&[u8], &RecvMeta)> {
        if i >= self.len {
            return None;
        }
        let meta = &self.meta[i];
        let start = i * self.slot_len;
        Some((&self.data[start..start + meta.len], meta))
    }

    /// The datagrams of the last call, in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &RecvMeta)> + '_ {
        (0..self.len).filter_map(|i| self.get(i))
    }

    /// One non-blocking `recvmmsg` on `fd`, replacing the previous contents; returns how
    /// many datagrams arrived. `WouldBlock` when none is waiting.
    ///
    /// Datagrams without a kernel timestamp get the `CLOCK_REALTIME` time read once right
    /// after the call.
    pub fn recv_from_fd(&mut self, fd: BorrowedFd<'_>) -> io::Result<usize> {
        self.len = 0;
        let slot_len = self.slot_len;
        let n = retry_async_errors(|| {
            let msgs = self
                .data
                .chunks_mut(slot_len)
                .zip(self.names.iter_mut())
                .zip(self.control.chunks_mut(RECV_CONTROL_LEN))
                .map(|((data, name), control)| InMsg {
                    data,
                    name,
                    control,
                });
            self.headers.recv(fd, msgs, libc::MSG_DONTWAIT)
        })?;
        let user_time = Nanos::now_realtime();
        for i in 0..n {
            let control = &self.control[i * RECV_CONTROL_LEN..(i + 1) * RECV_CONTROL_LEN];
            self.meta[i] = RecvMeta::from_parts(
                self.headers.received(i),
                slot_len,
                &self.names[i],
                control,
                user_time,
            );
        }
        self.len = n;
        Ok(n)
    }
}

/// Outcome of sending a [`SendBatch`].
#[derive(Debug, Default)]
pub struct SendReport {
    /// Messages the kernel accepted.
    pub sent: usize,
    /// Messages that failed and were skipped (their [`SendBatch::tx_id`] is `None`).
    pub failed: usize,
    /// The first error met, if any.
    pub first_error: Option<io::Error>,
}

/// Preallocated buffers for sending up to `capacity` datagrams in one `sendmmsg`, each with
/// its own destination and optional source address.
pub struct SendBatch {
    slot_len: usize,
    data: Box<[u8]>,
    lens: Box<[usize]>,
    dsts: Box<[SocketAddr]>,
    opts: Box<[SendOptions]>,
    names: Box<[SockaddrBuf]>,
    name_lens: Box<[usize]>,
    control: Box<[[u8; SEND_CONTROL_LEN]]>,
    control_lens: Box<[usize]>,
    tx_ids: Box<[Option<TxId>]>,
    headers: MmsgHeaders,
    len: usize,
    sent: usize,
}

impl SendBatch {
    /// Buffers for `capacity` datagrams of up to `slot_len` bytes each (both at least 1).
    pub fn new(capacity: usize, slot_len: usize) -> Self {
        let capacity = capacity.max(1);
        let slot_len = slot_len.max(1);
        let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
        SendBatch {
            slot_len,
            data: vec![0; capacity * slot_len].into_boxed_slice(),
            lens: vec![0; capacity].into_boxed_slice(),
            dsts: vec![unspecified; capacity].into_boxed_slice(),
            opts: vec![SendOptions::default(); capacity].into_boxed_slice(),
            names: vec![[0; SOCKADDR_LEN]; capacity].into_boxed_slice(),
            name_lens: vec![0; capacity].into_boxed_slice(),
            control: vec![[0; SEND_CONTROL_LEN]; capacity].into_boxed_slice(),
            control_lens: vec![0; capacity].into_boxed_slice(),
            tx_ids: vec![None; capacity].into_boxed_slice(),
            headers: MmsgHeaders::new(capacity),
            len: 0,
            sent: 0,
        }
    }

    /// How many datagrams the batch holds at most.
    pub fn capacity(&self) -> usize {
        self.lens.len()
    }

    /// Bytes per datagram slot.
    pub fn slot_len(&self) -> usize {
        self.slot_len
    }

    /// Datagrams queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether no more datagrams fit.
    pub fn is_full(&self) -> bool {
        self.len == self.capacity()
    }

    /// Whether every queued datagram has been sent or skipped.
    pub fn is_done(&self) -> bool {
        self.sent == self.len
    }

    /// Empties the batch for reuse.
    pub fn clear(&mut self) {
        self.len = 0;
        self.sent = 0;
    }

    /// Queues a copy of `payload` for `dst` with per-datagram `opts` (source address, TTL,
    /// TOS). Returns `false` (and queues nothing) when the batch is full or the payload is
    /// longer than a slot.
    pub fn push(&mut self, payload: &[u8], dst: SocketAddr, opts: SendOptions) -> bool {
        self.push_with(dst, opts, |slot| {
            if payload.len() > slot.len() {
                return None;
            }
            slot[..payload.len()].copy_from_slice(payload);
            Some(payload.len())
        })
    }

    /// Queues a datagram for `dst` whose bytes `fill` writes straight into the slot,
    /// returning the length written (`None` to cancel). Returns whether one was queued.
    pub fn push_with(
        &mut self,
        dst: SocketAddr,
        opts: SendOptions,
        fill: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) -> bool {
        if self.is_full() {
            return false;
        }
        let i = self.len;
        let slot = &mut self.data[i * self.slot_len..(i + 1) * self.slot_len];
        let Some(len) = fill(slot).filter(|&len| len <= self.slot_len) else {
            return false;
        };
        self.lens[i] = len;
        self.dsts[i] = dst;
        self.opts[i] = opts;
        self.tx_ids[i] = None;
        self.len += 1;
        true
    }

    /// Bytes of queued datagram `i`.
    pub fn payload(&self, i: usize) -> Option<&[u8]> {
        (i < self.len).then(|| &self.data[i * self.slot_len..i * self.slot_len + self.lens[i]])
    }

    /// Destination of queued datagram `i`.
    pub fn destination(&self, i: usize) -> Option<SocketAddr> {
        (i < self.len).then(|| self.dsts[i])
    }

    /// The transmit-timestamp id datagram `i` got when sent; `None` before sending or if its
    /// send failed. Meaningful only on sockets with transmit timestamps on.
    pub fn tx_id(&self, i: usize) -> Option<TxId> {
        self.tx_ids
            .get(i)
            .copied()
            .flatten()
            .filter(|_| i < self.len)
    }

    /// Sends the queued datagrams not sent yet on `fd` with non-blocking `sendmmsg` calls,
    /// until all are sent or the socket buffer is full (`WouldBlock`; call again when
    /// writable). A datagram the kernel refuses is skipped and counted in `report`.
    ///
    /// `v6_socket` tells how to encode destinations; `next_id` is the socket's transmit id
    /// counter mirror (see [`TxId`]), advanced by the datagrams sent.
    pub fn send_on_fd(
        &mut self,
        fd: BorrowedFd<'_>,
        v6_socket: bool,
        next_id: &mut TxId,
        report: &mut SendReport,
    ) -> io::Result<()> {
        for i in self.sent..self.len {
            self.name_lens[i] = sockaddr::encode(self.dsts[i], v6_socket, &mut self.names[i]);
            let v4_dst = self.dsts[i].is_ipv4();
            self.control_lens[i] =
                cmsg::encode_send_options(&self.opts[i], v4_dst, &mut self.control[i]);
        }
        while self.sent < self.len {
            let from = self.sent;
            let result = retry_async_errors(|| {
                let msgs = (from..self.len).map(|i| OutMsg {
                    data: &self.data[i * self.slot_len..i * self.slot_len + self.lens[i]],
                    name: &self.names[i][..self.name_lens[i]],
                    control: &self.control[i][..self.control_lens[i]],
                });
                self.headers.send(fd, msgs)
            });
            match result {
                Ok(n) => {
                    for id in &mut self.tx_ids[from..from + n] {
                        *id = Some(*next_id);
                        *next_id = next_id.next();
                    }
                    self.sent += n;
                    report.sent += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(e),
                Err(e) => {
                    if e.raw_os_error() == Some(libc::ENOBUFS) {
                        *next_id = next_id.next();
                    }
                    self.tx_ids[from] = None;
                    self.sent += 1;
                    report.failed += 1;
                    report.first_error.get_or_insert(e);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsFd;

    #[test]
    fn push_respects_capacity_and_slot_size() {
        let dst: SocketAddr = "127.0.0.1:9".parse().expect("literal");
        let mut b = SendBatch::new(2, 4);
        assert!(!b.push(&[1, 2, 3, 4, 5], dst, SendOptions::default()));
        assert!(b.push(&[1, 2, 3], dst, SendOptions::default()));
        assert!(b.push_with(dst, SendOptions::default(), |slot| {
            slot[..2].copy_from_slice(&[7, 8]);
            Some(2)
        }));
        assert!(b.is_full());
        assert!(!b.push(&[1], dst, SendOptions::default()));
        assert_eq!(b.payload(0), Some(&[1, 2, 3][..]));
        assert_eq!(b.payload(1), Some(&[7, 8][..]));
        assert_eq!(b.payload(2), None);
        assert_eq!(b.tx_id(0), None);
        b.clear();
        assert!(b.is_empty());
        assert_eq!(b.payload(0), None);
    }

    /// 64 datagrams of distinct sizes from two senders, out with one `sendmmsg` per sender
    /// and in with one `recvmmsg`.
    #[test]
    fn sendmmsg_then_recvmmsg_64_on_loopback() {
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind receiver");
        let dst = rx.local_addr().expect("receiver address");
        let tx_a = UdpSocket::bind("127.0.0.1:0").expect("bind sender a");
        let tx_b = UdpSocket::bind("127.0.0.1:0").expect("bind sender b");
        let mut out_a = SendBatch::new(32, 256);
        let mut out_b = SendBatch::new(32, 256);
        for i in 0..32u8 {
            assert!(out_a.push(&vec![i; 10 + usize::from(i)], dst, SendOptions::default()));
            assert!(out_b.push(
                &vec![100 + i; 100 + usize::from(i)],
                dst,
                SendOptions::default()
            ));
        }
        for (sock, batch) in [(&tx_a, &mut out_a), (&tx_b, &mut out_b)] {
            let mut report = SendReport::default();
            let mut next = TxId(0);
            batch
                .send_on_fd(sock.as_fd(), false, &mut next, &mut report)
                .expect("sendmmsg on loopback");
            assert_eq!((report.sent, report.failed), (32, 0));
            assert_eq!(next, TxId(32));
            assert_eq!(batch.tx_id(31), Some(TxId(31)));
            assert!(batch.is_done());
        }

        let mut batch = RecvBatch::new(64, 2048);
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while got.len() < 64 && std::time::Instant::now() < deadline {
            match batch.recv_from_fd(rx.as_fd()) {
                Ok(_) => got.extend(batch.iter().map(|(d, m)| (d.to_vec(), *m))),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("recvmmsg failed: {e}"),
            }
        }
        assert_eq!(got.len(), 64);
        let a = tx_a.local_addr().expect("a address");
        let b = tx_b.local_addr().expect("b address");
        let from_a: Vec<_> = got.iter().filter(|(_, m)| m.source == Some(a)).collect();
        let from_b: Vec<_> = got.iter().filter(|(_, m)| m.source == Some(b)).collect();
        assert_eq!((from_a.len(), from_b.len()), (32, 32));
        for (i, (data, meta)) in from_a.iter().enumerate() {
            assert_eq!(meta.len, 10 + i);
            assert_eq!(data, &vec![i as u8; 10 + i]);
            assert!(!meta.truncated);
        }
        for (i, (data, meta)) in from_b.iter().enumerate() {
            assert_eq!(meta.len, 100 + i);
            assert_eq!(data[0], 100 + i as u8);
        }
    }

    #[test]
    fn recv_batch_reports_truncation_and_would_block() {
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind receiver");
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind sender");
        let mut batch = RecvBatch::new(4, 8);
        let err = batch
            .recv_from_fd(rx.as_fd())
            .expect_err("nothing queued yet");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        tx.send_to(&[9u8; 20], rx.local_addr().expect("address"))
            .expect("send");
        rx.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .expect("timeout");
        let mut peek = [0u8; 1];
        rx.peek(&mut peek).expect("datagram arrives");
        assert_eq!(batch.recv_from_fd(rx.as_fd()).expect("recvmmsg"), 1);
        let (data, meta) = batch.get(0).expect("one datagram");
        assert_eq!(data, &[9u8; 8]);
        assert!(meta.truncated);
        assert_eq!(meta.len, 8);
    }

    /// A receiver with a tiny buffer drops most of a burst of 64; the drop counter on the
    /// next datagram accounts for every one that did not arrive.
    #[test]
    fn drop_counter_accounts_for_a_full_buffer() {
        let opts = crate::io::SocketOptions {
            recv_buffer: Some(4096),
            drop_counter: true,
            ..crate::io::SocketOptions::default()
        };
        let rx = crate::io::udp_socket("127.0.0.1:0".parse().expect("literal"), &opts)
            .expect("receiver");
        let dst = rx.local_addr().expect("address").as_socket().expect("inet");
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind sender");
        let mut burst = SendBatch::new(64, 1000);
        for _ in 0..64 {
            assert!(burst.push(&[3u8; 1000], dst, SendOptions::default()));
        }
        let mut report = SendReport::default();
        burst
            .send_on_fd(tx.as_fd(), false, &mut TxId(0), &mut report)
            .expect("sendmmsg");
        assert_eq!(report.sent, 64);
        // Loopback delivers within the send call; whatever fits is queued now.
        let mut batch = RecvBatch::new(64, 2048);
        let mut arrived = 0;
        while let Ok(n) = batch.recv_from_fd(rx.as_fd()) {
            arrived += n;
        }
        assert!(
            arrived > 0 && arrived < 64,
            "{arrived} of 64 fit a 4 KiB buffer"
        );
        tx.send_to(b"after", dst).expect("send");
        let rx = UdpSocket::from(rx);
        rx.set_nonblocking(false).expect("blocking");
        rx.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .expect("timeout");
        rx.peek(&mut [0u8; 1]).expect("datagram after the burst");
        assert_eq!(batch.recv_from_fd(rx.as_fd()).expect("recv"), 1);
        let (_, meta) = batch.get(0).expect("one datagram");
        assert_eq!(meta.drops, Some(64 - arrived as u32));
    }
}
