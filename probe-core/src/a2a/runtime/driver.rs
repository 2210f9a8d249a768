//! The loop that moves bytes and time between a [`SenderSession`] and its socket, in the
//! manner of the path tests' driver: each turn reads what is queued (transmit timestamps and
//! ICMP errors before replies), lets time pass, sends what is due in one `sendmmsg` batch,
//! then waits until the machine's next deadline or until something arrives.
//!
//! Everything lives inside the one future: no thread, no spawned task. Dropping the future
//! stops at its next await point: no further packet is sent, and the socket (owned by the
//! caller's future) closes. It runs on a current-thread runtime as well as a multi-threaded
//! one. The flood (`--rate max`) is the same loop: batches of up to [`BATCH`] packets as
//! the window allows, non-blocking `recvmmsg` of replies, readiness awaited through the
//! socket's `AsyncFd` when the window is full.

use std::net::SocketAddr;

use tokio::sync::mpsc;

use super::A2aError;
use crate::a2a::{SenderSession, Transmit};
use crate::io::{
    ErrQueueMessage, Pacer, RecvBatch, SendBatch, SendOptions, TimestampedSocket,
    is_async_icmp_error,
};
use crate::report::IntervalReport;
use crate::time::Nanos;

/// Datagrams per `sendmmsg` / `recvmmsg` of a flood or a fast schedule.
pub(super) const BATCH: usize = 32;

/// Datagrams per system call of a schedule of a packet per millisecond or slower: one is
/// due at a time (a late turn sends the rest on the next ones).
pub(super) const SLOW_BATCH: usize = 1;

/// The socket side of a session.
pub(super) struct Io<'a> {
    pub(super) sock: &'a TimestampedSocket,
    pub(super) peer: SocketAddr,
    /// Whether the socket asked for TX timestamps (then the error queue is read every turn).
    pub(super) tx_timestamps: bool,
    /// Where interval reports go (dropped, with a log line, when the receiver lags).
    pub(super) reports: Option<mpsc::Sender<IntervalReport>>,
}

/// Reads the error queue until it is empty: TX timestamps and ICMP errors.
fn drain_errors(io: &Io<'_>, m: &mut SenderSession, buf: &mut [u8]) {
    while let Ok(msg) = io.sock.try_recv_error(buf) {
        on_error_message(m, msg);
    }
}

fn on_error_message(m: &mut SenderSession, msg: ErrQueueMessage) {
    match msg {
        ErrQueueMessage::TxTimestamp(t) => m.handle_tx_timestamp(t.id.0, t.time),
        ErrQueueMessage::Icmp(e) => m.handle_icmp_error(&e),
        ErrQueueMessage::Local(_) | ErrQueueMessage::Other { .. } => {}
    }
}

/// Hands the `n` datagrams of `batch` to the machine, with the kernel's receive time and the
/// time user space got them.
fn deliver(m: &mut SenderSession, batch: &RecvBatch, n: usize) {
    let user_rx = batch.received_at();
    for (bytes, meta) in batch.iter().take(n) {
        if let Some(d) = meta.drops {
            m.handle_local_drops(d);
        }
        m.handle_datagram_at(bytes, meta.time, Some(user_rx));
    }
}

/// Receives every datagram already queued, without waiting; whether an ICMP error showed.
fn drain_replies(io: &Io<'_>, m: &mut SenderSession, rx: &mut RecvBatch) -> bool {
    loop {
        match io.sock.try_recv_batch(rx) {
            Ok(0) => return false,
            Ok(n) => deliver(m, rx, n),
            Err(e) if is_async_icmp_error(&e) => return true,
            Err(e) => {
                if e.kind() != std::io::ErrorKind::WouldBlock {
                    tracing::debug!("receive: {e}");
                }
                return false;
            }
        }
    }
}

/// Runs `m` on `io` until it is done, `batch` datagrams per system call at most; `pacer` waits for the deadlines (a timerfd sleep, then
/// a bounded spin: microsecond precision for the isochronous schedule).
pub(super) async fn drive(
    m: &mut SenderSession,
    io: &Io<'_>,
    pacer: &mut Pacer,
    slot_len: usize,
    batch: usize,
) -> Result<(), A2aError> {
    let batch = batch.clamp(1, BATCH);
    let mut tx = SendBatch::new(batch, slot_len);
    // A flood (no per-packet TX timestamps) sends each batch of equal test packets as one
    // segmented buffer (UDP GSO): one trip through the send path instead of one per packet.
    tx.set_segmentation(!io.tx_timestamps);
    let mut rx = RecvBatch::new(batch, slot_len.max(2048));
    let mut errbuf = [0u8; 2048];
    let mut sent: [Option<Transmit>; BATCH] = [None; BATCH];
    let mut icmp_hint = false;
    // Woken by the deadline: send first (the schedule error is the time to the send), read
    // what is queued on the next turn.
    let mut send_first = false;
    loop {
        if !send_first {
            if io.tx_timestamps || icmp_hint {
                drain_errors(io, m, &mut errbuf);
            }
            icmp_hint = drain_replies(io, m, &mut rx);
        }
        send_first = false;
        let now = Nanos::now_realtime();
        m.handle_timeout(now);
        while let Some(r) = m.poll_report() {
            forward_report(io, r);
        }
        if m.is_done() {
            return Ok(());
        }

        // Everything due, in one batch.
        let now = Nanos::now_realtime();
        while !tx.is_full() {
            let i = tx.len();
            let queued = tx.push_with(io.peer, SendOptions::default(), |slot| {
                let t = m.poll_transmit(now, slot)?;
                sent[i] = Some(t);
                Some(t.len)
            });
            if !queued {
                break;
            }
        }
        if !tx.is_empty() {
            match io.sock.send_batch(&mut tx).await {
                Ok(report) => {
                    if let Some(e) = report.first_error {
                        icmp_hint |= is_async_icmp_error(&e);
                        tracing::debug!("{} packets not sent: {e}", report.failed);
                    }
                }
                Err(e) if is_async_icmp_error(&e) => icmp_hint = true,
                Err(source) => {
                    return Err(A2aError::Socket {
                        what: "send",
                        addr: io.peer,
                        source,
                    });
                }
            }
            if io.tx_timestamps {
                for (i, t) in sent.iter().take(tx.len()).enumerate() {
                    if let (Some(t), Some(id)) = (t, tx.tx_id(i)) {
                        m.note_tx_id(t, id.0);
                    }
                }
            }
            tx.clear();
            // Sending may have made more due (a flood with room in its window).
            continue;
        }

        // Nothing due: wait for a datagram, an error-queue entry, or the next deadline.
        let Some(deadline) = m.poll_timeout() else {
            return Ok(());
        };
        if deadline <= Nanos::now_realtime() {
            continue;
        }
        tokio::select! {
            r = io.sock.recv_batch(&mut rx) => match r {
                Ok(n) => deliver(m, &rx, n),
                Err(e) if is_async_icmp_error(&e) => icmp_hint = true,
                Err(e) => tracing::debug!("receive: {e}"),
            },
            r = io.sock.recv_error(&mut errbuf) => match r {
                Ok(msg) => on_error_message(m, msg),
                Err(e) => tracing::debug!("error queue: {e}"),
            },
            _ = pacer.sleep_until(deadline) => send_first = true,
        }
    }
}

fn forward_report(io: &Io<'_>, r: IntervalReport) {
    if let Some(ch) = &io.reports
        && let Err(e) = ch.try_send(r)
    {
        tracing::debug!("interval report not delivered: {e}");
    }
}
