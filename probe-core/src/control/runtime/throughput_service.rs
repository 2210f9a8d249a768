//! The far end of a negotiated UDP throughput test: the counting receiver of `to` (a
//! [`ThroughputSink`] the STAMP responder feeds) and the sender of `from`, which waits for
//! the client's punch and floods toward the address it came from (the client's NAT mapping).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use crate::a2a::throughput::{BlastPlan, SAMPLE_EVERY, ThroughputSink, blast, wait_punch};
use crate::control::negotiation::TestRequest;
use crate::io::{PolledSocket, SocketOptions};
use crate::report::udp_throughput::SenderCounts;

/// How long the far end waits for the client's punch.
const PUNCH_WAIT: Duration = Duration::from_secs(10);
/// Interval rows the far end's receiver keeps at most (they travel in one control frame).
const MAX_FAR_ROWS: u32 = 400;
/// Narrowest interval row of the far end's receiver (the client merges rows to its own
/// report interval).
const MIN_ROW: Duration = Duration::from_millis(100);
/// Sending time of a throughput test that names none.
pub(super) const DEFAULT_DURATION: Duration = Duration::from_secs(10);

/// The far end's sender of a `from` test.
#[derive(Clone, Debug)]
pub(super) enum BlastState {
    /// Waiting for the client's punch.
    WaitingPunch,
    /// Sending.
    Running,
    /// Finished.
    Done(SenderCounts),
    /// Failed.
    Failed(String),
}

/// A running far-end sender: its state and its stop flag.
pub(super) struct FarBlast {
    pub(super) state: watch::Receiver<BlastState>,
    stop: Arc<AtomicBool>,
}

impl FarBlast {
    /// Stops the sender at its next batch.
    pub(super) fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// How long a throughput request sends.
pub(super) fn sending_time(req: &TestRequest) -> Duration {
    req.planned().unwrap_or(DEFAULT_DURATION)
}

/// The counting receiver of a `to` test from `client`: rows of at least 100 ms, at most
/// 400 of them over the planned time.
pub(super) fn sink(client: IpAddr, req: &TestRequest) -> Arc<ThroughputSink> {
    let row = (sending_time(req) / MAX_FAR_ROWS).max(MIN_ROW);
    Arc::new(ThroughputSink::new(client, Some(row)))
}

/// Binds the far end's sender socket (an ephemeral port, returned) and starts the thread
/// that waits for the punch of `session` and sends the test toward its source.
pub(super) fn start_blast(
    session: u64,
    client: IpAddr,
    req: &TestRequest,
) -> std::io::Result<(u16, FarBlast)> {
    let any = if client.is_ipv4() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    };
    let mut opts = SocketOptions {
        send_buffer: Some(4 << 20),
        ..SocketOptions::default()
    };
    if let Some(d) = req.dscp {
        opts = opts.with_dscp(d);
    }
    let sock = PolledSocket::bind_udp(SocketAddr::new(any, 0), &opts)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let port = sock
        .local_addr()
        .map(|a| a.port())
        .ok_or_else(|| std::io::Error::other("the sender socket has no local address"))?;
    let (tx, rx) = watch::channel(BlastState::WaitingPunch);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let (duration, count, rate_pps) = (sending_time(req), req.count, req.rate_pps());
    let size = req.size as usize;
    std::thread::Builder::new()
        .name("probe-tput-send".into())
        .spawn(move || {
            let Some(dst) = wait_punch(&sock, session, client, PUNCH_WAIT, &flag) else {
                let _ = tx.send(BlastState::Failed(format!(
                    "no punch from {client} within {} s: the client could not reach the far \
                     end's sender port {port}/udp",
                    PUNCH_WAIT.as_secs()
                )));
                return;
            };
            let _ = tx.send(BlastState::Running);
            let plan = BlastPlan {
                dst,
                session,
                size,
                rate_pps,
                duration,
                count,
                sample_every: SAMPLE_EVERY,
            };
            let counts = blast(&sock, &plan, &flag);
            tracing::info!(
                "control: session {session:016x}: sent {} throughput datagrams to {dst}",
                counts.sent
            );
            let _ = tx.send(BlastState::Done(counts));
        })?;
    Ok((port, FarBlast { state: rx, stop }))
}
