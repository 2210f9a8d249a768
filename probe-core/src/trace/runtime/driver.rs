//! The loop that moves bytes and time between a [`ProbeMachine`] and its sockets.
//!
//! Each turn: read everything queued (transmit timestamps before answers), let time pass
//! (expired probes become `*`), send every probe due, then sleep until the machine's next
//! deadline or until something arrives. The machine's clock is `CLOCK_REALTIME`, the clock of
//! the kernel's packet timestamps, so round-trip times are kernel receive time minus kernel
//! transmit time where the kernel provides both.

use std::time::Duration;

use super::error::TraceError;
use super::sockets::Event;
use super::transport::{SendError, Transport};
use crate::time::Nanos;
use crate::trace::flow::ProbeId;
use crate::trace::{Mda, Pmtu, ProbeMachine, Trace};

/// A state machine the driver can run, with its answer to a probe the local interface
/// refused as too big.
pub(crate) trait Machine: ProbeMachine {
    /// Probe `id` of `size` bytes did not fit the outgoing interface.
    fn too_big(&mut self, id: ProbeId, size: u16) -> Result<(), TraceError> {
        let _ = id;
        Err(TraceError::TooBig { size })
    }

    /// Probe `id` could not be sent this time (`error`); it stays in flight and times out.
    fn send_failed(&mut self, id: ProbeId, error: &std::io::Error) {
        let _ = (id, error);
    }
}

impl Machine for Trace {}

impl Machine for Mda {}

impl Machine for Pmtu {
    fn too_big(&mut self, id: ProbeId, _size: u16) -> Result<(), TraceError> {
        self.handle_local_mtu(id, None);
        Ok(())
    }
}

/// What the driver saw, for the debug log.
#[derive(Debug, Default)]
struct Counts {
    tx_stamps: u64,
    matched: u64,
    unmatched: u64,
}

/// Feeds `events` to the machine: transmit timestamps first, then answers in arrival order.
fn apply(m: &mut impl ProbeMachine, events: &mut Vec<Event>, counts: &mut Counts) {
    for e in events.iter() {
        if let Event::Sent { id, at } = e {
            m.set_sent_time(*id, *at);
            counts.tx_stamps += 1;
        }
    }
    for e in events.drain(..) {
        if let Event::Answer { answer, rx } = e {
            if m.handle_answer(&answer, rx) {
                counts.matched += 1;
            } else {
                counts.unmatched += 1;
                tracing::trace!("unmatched answer from {}", answer.from);
            }
        }
    }
}

/// Runs `m` to completion on `t`.
pub(crate) async fn drive(m: &mut impl Machine, t: &mut Transport) -> Result<(), TraceError> {
    let mut buf = Vec::with_capacity(2048);
    let mut events = Vec::new();
    let mut counts = Counts::default();
    loop {
        t.drain(&mut events).map_err(TraceError::Recv)?;
        apply(m, &mut events, &mut counts);
        m.handle_timeout(Nanos::now_realtime());
        while let Some(tx) = m.poll_transmit(Nanos::now_realtime(), &mut buf) {
            match t.send(&tx, &buf[..tx.len]).await {
                Ok(()) => {}
                Err(SendError::TooBig) => m.too_big(tx.id, tx.probe.size)?,
                Err(SendError::Dropped(e)) => {
                    m.send_failed(tx.id, &e);
                    tracing::debug!("probe {:?} (ttl {}) not sent: {e}", tx.id, tx.ttl);
                }
                Err(SendError::Fatal(e)) => return Err(e),
            }
        }
        if m.is_done() {
            tracing::debug!("path test done: {counts:?}");
            return Ok(());
        }
        let Some(deadline) = m.poll_timeout() else {
            tracing::warn!("path test stalled: nothing to send or wait for");
            return Ok(());
        };
        let wait = deadline - Nanos::now_realtime();
        if wait <= 0 {
            continue;
        }
        tokio::select! {
            r = t.wait(&mut events) => r.map_err(TraceError::Recv)?,
            () = tokio::time::sleep(Duration::from_nanos(wait as u64)) => {}
        }
    }
}
