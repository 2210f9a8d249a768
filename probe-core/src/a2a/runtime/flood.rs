//! The flood (`--rate max`): one thread sends and receives, paced only by the window of
//! unanswered packets.

use std::sync::atomic::Ordering;

use super::A2aError;
use super::test::{A2aOptions, FLOOD_BATCH, Shared, deliver, give_up};
use crate::a2a::Limit;
use crate::io::{RecvBatch, SendBatch, SendOptions, TimestampedSocket};
use crate::time::Nanos;

/// The flood: one thread sends as many packets as the window allows in `sendmmsg` batches
/// and receives the replies itself (non-blocking `recvmmsg`, `poll` when the window is full),
/// then waits for the last replies. Packets unanswered for 10 ms are presumed lost and free
/// their place in the window.
pub(super) fn pace_flood(
    rt: &tokio::runtime::Handle,
    sock: &TimestampedSocket,
    shared: &Shared,
    opts: &A2aOptions,
    start: Nanos,
    window: u32,
) -> Result<Nanos, A2aError> {
    let window = u64::from(window);
    let mut tx = SendBatch::new(FLOOD_BATCH, opts.size);
    let mut rx = RecvBatch::new(64, 65_536);
    let end = match opts.limit {
        Limit::Duration(d) => Some(start + d),
        Limit::Count(_) => None,
    };
    let no_answer_after = start + opts.no_answer_timeout;
    let mut last = start;
    let mut presumed_lost = 0u64;
    loop {
        drain(sock, shared, &mut rx);
        let now = Nanos::now_realtime();
        if end.is_some_and(|end| now >= end) || give_up(shared, now, no_answer_after) {
            break;
        }
        let (sent, complete) = {
            let st = shared.lock();
            (
                u64::from(st.sender.sent()),
                st.sender.next_send_at().is_none(),
            )
        };
        if complete {
            break;
        }
        let replies = shared.test_replies.load(Ordering::Relaxed);
        let in_flight = sent.saturating_sub(replies + presumed_lost);
        if in_flight >= window {
            if !sock.wait_readable_blocking(10) {
                presumed_lost += in_flight;
            }
            continue;
        }
        {
            let mut st = shared.lock();
            let now = Nanos::now_realtime();
            for _ in 0..((window - in_flight) as usize).min(FLOOD_BATCH) {
                let queued = st.sender.next_send_at().is_some()
                    && tx.push_with(opts.peer, SendOptions::default(), |slot| {
                        st.sender.emit_next(now, slot).ok().map(|s| s.len)
                    });
                if !queued {
                    break;
                }
            }
        }
        match rt.block_on(sock.send_batch(&mut tx)) {
            Ok(report) => {
                if let Some(e) = report.first_error {
                    tracing::debug!("{} flood packets not sent: {e}", report.failed);
                }
            }
            Err(e) if crate::io::is_async_icmp_error(&e) => {}
            Err(source) => {
                return Err(A2aError::Socket {
                    what: "send",
                    addr: opts.peer,
                    source,
                });
            }
        }
        tx.clear();
        last = Nanos::now_realtime();
    }
    // The last replies.
    let deadline = Nanos(last.0 + opts.wait.as_nanos() as u64);
    loop {
        drain(sock, shared, &mut rx);
        let sent = u64::from(shared.lock().sender.sent());
        let now = Nanos::now_realtime();
        if shared.test_replies.load(Ordering::Relaxed) >= sent
            || now >= deadline
            || shared.stop_sending.load(Ordering::Relaxed)
        {
            break;
        }
        sock.wait_readable_blocking(10);
    }
    Ok(last)
}

/// Receives every datagram already queued, without waiting.
fn drain(sock: &TimestampedSocket, shared: &Shared, rx: &mut RecvBatch) {
    loop {
        match sock.try_recv_batch(rx) {
            Ok(0) => return,
            Ok(n) => deliver(shared, rx, n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            Err(e) if crate::io::is_async_icmp_error(&e) => {}
            Err(e) => {
                tracing::debug!("flood receive: {e}");
                return;
            }
        }
    }
}
