//! Batched receive and send (`recvmmsg` / `sendmmsg`) over preallocated buffers.
//!
//! A [`RecvBatch`] owns `capacity` payload slots, address and control buffers and a
//! [`RecvMeta`] per slot; a [`SendBatch`] owns payloads packed one after the other, each with
//! a destination, an optional source address and, after sending, the [`TxId`] of its message.
//! Nothing is allocated per packet or per call once a batch exists.
//!
//! With [segmentation](SendBatch::set_segmentation) on, a run of datagrams to one destination
//! with the same options and size leaves as one message with `UDP_SEGMENT` (UDP GSO): the
//! kernel builds, routes, filters and forwards one buffer and cuts it into datagrams at the
//! end (the receiving socket, or the device). A reflector's replies to a flood are such runs.
//!
//! The `*_fd` methods do one non-blocking system call on a borrowed descriptor; the async
//! socket ([`TimestampedSocket`](crate::io::TimestampedSocket)) drives them from readiness.

use std::io;
use std::net::SocketAddr;
use std::os::fd::BorrowedFd;

use crate::io::cmsg::{self, RECV_CONTROL_LEN, SEND_CONTROL_LEN, SendOptions};
use crate::io::meta::RecvMeta;
use crate::io::sockaddr::{self, SOCKADDR_LEN, SockaddrBuf};
use crate::io::sys::{InMsg, MmsgHeaders, OutMsg, Received, retry_async_errors};
use crate::io::timestamp::TxId;
use crate::time::Nanos;

/// The buffers of one `recvmmsg` of up to `capacity` messages: payload slots, addresses and
/// control bytes (shared by [`RecvBatch`] and the error queue's batch).
pub(crate) struct RecvSlots {
    slot_len: usize,
    data: Box<[u8]>,
    names: Box<[SockaddrBuf]>,
    control: Box<[u8]>,
    headers: MmsgHeaders,
}

impl RecvSlots {
    /// Slots for `capacity` messages of up to `slot_len` bytes (both at least 1).
    pub(crate) fn new(capacity: usize, slot_len: usize) -> Self {
        let capacity = capacity.max(1);
        let slot_len = slot_len.max(1);
        RecvSlots {
            slot_len,
            data: vec![0; capacity * slot_len].into_boxed_slice(),
            names: vec![[0; SOCKADDR_LEN]; capacity].into_boxed_slice(),
            control: vec![0; capacity * RECV_CONTROL_LEN].into_boxed_slice(),
            headers: MmsgHeaders::new(capacity),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.names.len()
    }

    pub(crate) fn slot_len(&self) -> usize {
        self.slot_len
    }

    /// One `recvmmsg` on `fd` with `flags` into every slot (retried on `EINTR` and on a
    /// pending asynchronous ICMP error); returns how many messages came.
    pub(crate) fn recv(&mut self, fd: BorrowedFd<'_>, flags: i32) -> io::Result<usize> {
        let slot_len = self.slot_len;
        retry_async_errors(|| {
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
            self.headers.recv(fd, msgs, flags)
        })
    }

    /// Message `i` of the last [`RecvSlots::recv`]: its result fields, and its address and
    /// control bytes as the kernel filled them in.
    pub(crate) fn message(&self, i: usize) -> (Received, &SockaddrBuf, &[u8]) {
        let r = self.headers.received(i);
        let control = &self.control[i * RECV_CONTROL_LEN..(i + 1) * RECV_CONTROL_LEN];
        (r, &self.names[i], control)
    }

    /// The first `len` bytes of slot `i` (at most the slot's length).
    pub(crate) fn payload(&self, i: usize, len: usize) -> &[u8] {
        let start = i * self.slot_len;
        &self.data[start..start + len.min(self.slot_len)]
    }
}

/// Preallocated buffers for receiving up to `capacity` datagrams in one `recvmmsg`.
pub struct RecvBatch {
    slots: RecvSlots,
    meta: Box<[RecvMeta]>,
    len: usize,
    user_time: Nanos,
}

impl RecvBatch {
    /// Buffers for `capacity` datagrams of up to `slot_len` bytes each (both at least 1).
    pub fn new(capacity: usize, slot_len: usize) -> Self {
        let slots = RecvSlots::new(capacity, slot_len);
        RecvBatch {
            meta: vec![RecvMeta::default(); slots.capacity()].into_boxed_slice(),
            slots,
            len: 0,
            user_time: Nanos(0),
        }
    }

    /// How many datagrams one call can receive.
    pub fn capacity(&self) -> usize {
        self.meta.len()
    }

    /// Bytes per datagram slot; longer datagrams are truncated.
    pub fn slot_len(&self) -> usize {
        self.slots.slot_len()
    }

    /// Datagrams received by the last call.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the last call received nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `CLOCK_REALTIME` read right after the last call returned: when user space got its
    /// datagrams (for round trips measured user space to user space; each datagram's
    /// [`RecvMeta::time`] is the kernel's receive time when there is one).
    pub fn received_at(&self) -> Nanos {
        self.user_time
    }

    /// Datagram `i` of the last call: its bytes and metadata.
    pub fn get(&self, i: usize) -> Option<(&[u8], &RecvMeta)> {
        if i >= self.len {
            return None;
        }
        let meta = &self.meta[i];
        Some((self.slots.payload(i, meta.len), meta))
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
        let n = self.slots.recv(fd, libc::MSG_DONTWAIT)?;
        let user_time = Nanos::now_realtime();
        self.user_time = user_time;
        let slot_len = self.slots.slot_len();
        for i in 0..n {
            let (received, name, control) = self.slots.message(i);
            self.meta[i] = RecvMeta::from_parts(received, slot_len, name, control, user_time);
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

/// Datagrams one segmented message carries at most (the kernel's `UDP_MAX_SEGMENTS` has been
/// 64 or more since segmentation exists).
const MAX_SEGMENTS: usize = 64;
/// Largest datagram sent segmented: below the payload a 1280-byte IPv6 minimum MTU leaves,
/// so a segment never needs fragmentation (which the kernel refuses for segmented sends).
const MAX_SEGMENT_LEN: usize = 1200;
/// Largest payload of one segmented message (a UDP length field holds 65 535).
const MAX_SEGMENTED_BYTES: usize = 60_000;

/// Preallocated buffers for sending up to `capacity` datagrams in one `sendmmsg`, each with
/// its own destination and optional source address.
pub struct SendBatch {
    slot_len: usize,
    /// Payloads packed back to back (`capacity * slot_len` bytes, enough for any mix).
    data: Box<[u8]>,
    /// Bytes of `data` in use.
    end: usize,
    offsets: Box<[usize]>,
    lens: Box<[usize]>,
    dsts: Box<[SocketAddr]>,
    opts: Box<[SendOptions]>,
    names: Box<[SockaddrBuf]>,
    name_lens: Box<[usize]>,
    control: Box<[[u8; SEND_CONTROL_LEN]]>,
    control_lens: Box<[usize]>,
    tx_ids: Box<[Option<TxId>]>,
    /// Per message of the send in progress: its datagrams and control bytes.
    msg_count: Box<[usize]>,
    msg_control_len: Box<[usize]>,
    segmentation: bool,
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
            end: 0,
            offsets: vec![0; capacity].into_boxed_slice(),
            lens: vec![0; capacity].into_boxed_slice(),
            dsts: vec![unspecified; capacity].into_boxed_slice(),
            opts: vec![SendOptions::default(); capacity].into_boxed_slice(),
            names: vec![[0; SOCKADDR_LEN]; capacity].into_boxed_slice(),
            name_lens: vec![0; capacity].into_boxed_slice(),
            control: vec![[0; SEND_CONTROL_LEN]; capacity].into_boxed_slice(),
            control_lens: vec![0; capacity].into_boxed_slice(),
            tx_ids: vec![None; capacity].into_boxed_slice(),
            msg_count: vec![0; capacity].into_boxed_slice(),
            msg_control_len: vec![0; capacity].into_boxed_slice(),
            segmentation: false,
            headers: MmsgHeaders::new(capacity),
            len: 0,
            sent: 0,
        }
    }

    /// Turns UDP segmentation offload (`UDP_SEGMENT`) on or off for later sends. When on,
    /// consecutive datagrams to the same destination with the same options, the same length
    /// (the last of a run may be shorter) and at most 1200 bytes leave as one message of up
    /// to 64 datagrams. If the kernel refuses a segmented message (no UDP GSO, no checksum
    /// offload on the route), the batch turns segmentation off and sends one by one.
    ///
    /// Not for sockets with transmit timestamps: a segmented message gets one [`TxId`], which
    /// goes to its first datagram.
    pub fn set_segmentation(&mut self, on: bool) {
        self.segmentation = on;
    }

    /// Whether segmentation is on (see [`SendBatch::set_segmentation`]).
    pub fn segmentation(&self) -> bool {
        self.segmentation
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

    /// Gives up on the datagrams not sent yet: they count as done, and as failed in
    /// `report` with `why` (unless an earlier error is there).
    pub(crate) fn give_up(&mut self, report: &mut SendReport, why: io::Error) {
        report.failed += self.len - self.sent;
        report.first_error.get_or_insert(why);
        self.sent = self.len;
    }

    /// Empties the batch for reuse.
    pub fn clear(&mut self) {
        self.len = 0;
        self.sent = 0;
        self.end = 0;
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
        // Every datagram before takes at most a slot, so a whole slot is free from `end`.
        let slot = &mut self.data[self.end..self.end + self.slot_len];
        let Some(len) = fill(slot).filter(|&len| len <= self.slot_len) else {
            return false;
        };
        self.offsets[i] = self.end;
        self.end += len;
        self.lens[i] = len;
        self.dsts[i] = dst;
        self.opts[i] = opts;
        self.tx_ids[i] = None;
        self.len += 1;
        true
    }

    /// Bytes of queued datagram `i`.
    pub fn payload(&self, i: usize) -> Option<&[u8]> {
        (i < self.len).then(|| &self.data[self.offsets[i]..self.offsets[i] + self.lens[i]])
    }

    /// Bytes of queued datagram `i`, to change before the send (e.g. a last timestamp).
    pub fn payload_mut(&mut self, i: usize) -> Option<&mut [u8]> {
        (i < self.len).then(|| &mut self.data[self.offsets[i]..self.offsets[i] + self.lens[i]])
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
    /// counter mirror (see [`TxId`]), advanced by the messages sent.
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
            let messages = self.plan_messages(from);
            let result = retry_async_errors(|| {
                let mut first = from;
                let msgs = self.msg_count[..messages]
                    .iter()
                    .zip(&self.msg_control_len[..messages])
                    .map(|(&count, &control_len)| {
                        let (i, last) = (first, first + count - 1);
                        first += count;
                        OutMsg {
                            data: &self.data[self.offsets[i]..self.offsets[last] + self.lens[last]],
                            name: &self.names[i][..self.name_lens[i]],
                            control: &self.control[i][..control_len],
                        }
                    });
                self.headers.send(fd, msgs)
            });
            match result {
                Ok(n) => {
                    for &count in &self.msg_count[..n] {
                        let i = self.sent;
                        self.tx_ids[i] = Some(*next_id);
                        *next_id = next_id.next();
                        self.sent += count;
                        report.sent += count;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(e),
                Err(e) if self.msg_count[0] > 1 && segmentation_refused(&e) => {
                    // No segmentation on this kernel or route: one by one from now on.
                    tracing::debug!("segmented send refused ({e}); sending datagrams singly");
                    self.segmentation = false;
                }
                Err(e) => {
                    if e.raw_os_error() == Some(libc::ENOBUFS) {
                        *next_id = next_id.next();
                    }
                    let count = self.msg_count[0];
                    self.tx_ids[from] = None;
                    self.sent += count;
                    report.failed += count;
                    report.first_error.get_or_insert(e);
                }
            }
        }
        Ok(())
    }

    /// Splits the datagrams from `from` on into messages (runs that may leave segmented,
    /// else one datagram each) and writes their `UDP_SEGMENT` sizes; returns the count.
    fn plan_messages(&mut self, from: usize) -> usize {
        let mut messages = 0;
        let mut i = from;
        while i < self.len {
            let count = if self.segmentation {
                self.run_len(i)
            } else {
                1
            };
            let mut control_len = self.control_lens[i];
            if count > 1 {
                control_len += cmsg::write_segment_size(
                    &mut self.control[i][control_len..],
                    self.lens[i] as u16,
                );
            }
            self.msg_count[messages] = count;
            self.msg_control_len[messages] = control_len;
            messages += 1;
            i += count;
        }
        messages
    }

    /// How many datagrams from `first` on can leave as one segmented message: same
    /// destination and options, all as long as the first but the last (no longer).
    fn run_len(&self, first: usize) -> usize {
        let size = self.lens[first];
        if size == 0 || size > MAX_SEGMENT_LEN {
            return 1;
        }
        let mut count = 1;
        let mut bytes = size;
        while first + count < self.len && count < MAX_SEGMENTS {
            let j = first + count;
            let fits = self.dsts[j] == self.dsts[first]
                && self.opts[j] == self.opts[first]
                && self.lens[j - 1] == size
                && self.lens[j] <= size
                && bytes + self.lens[j] <= MAX_SEGMENTED_BYTES;
            if !fits {
                break;
            }
            bytes += self.lens[j];
            count += 1;
        }
        count
    }
}

/// Whether a segmented send failed for want of segmentation support (old kernel, no
/// checksum offload or `IPsec` on the route, a segment over the MTU), not for the datagrams.
fn segmentation_refused(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL | libc::EIO | libc::ENOPROTOOPT | libc::EOPNOTSUPP | libc::EMSGSIZE)
    )
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
