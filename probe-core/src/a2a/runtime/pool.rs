//! [`SessionPool`]: many A2A tests side by side on one UDP socket per address family, one
//! task and one timer (the [`SessionMux`] on tokio).
//!
//! [`run_test_until`](super::run_test_until) gives each test its own socket, timer and loop:
//! the right shape for one test at microsecond precision. A mesh agent runs thousands of slow
//! tests at once (a packet a second toward each of thousands of peers); the pool runs them all
//! in one loop that, each turn, reads the error queue (TX timestamps, ICMP errors) and the
//! replies in `recvmmsg` batches, lets time pass, sends everything due in `sendmmsg` batches,
//! and hands the finished tests' outcomes back. It then sleeps until the earliest deadline of
//! all its sessions plus the pool's timer slack, so that packets due within the slack of each
//! other leave in one batch and one wake-up.
//!
//! The loop wakes for its timer and for new tests only, never for a datagram: the socket is
//! a [`PolledSocket`], in no epoll set, so neither a reply nor a transmit timestamp wakes a
//! thread (at a mesh's thousands of replies a second, those wake-ups were most of the
//! agent's CPU time). Replies and timestamps wait in the socket's queues until the next
//! turn, dated by the kernel as they came; only the user-space round trip, which would say
//! when the turn came, is not taken (`rtt_user_ms` is absent). While tests are in flight
//! the loop sleeps at most 10 ms, so a test learns within that that its replies are all in.
//! A host whose sockets lack
//! kernel receive timestamps has no pool: each test gets its own socket.
//!
//! A family's socket and task start with its first test and live as long as the pool. Tests
//! the shared socket cannot serve (a source address, interface, DSCP, local port, a flood,
//! interval reports, real-time scheduling) run on their own socket as before.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::A2aError;
use super::driver::BATCH;
use super::options::A2aOptions;
use super::session::session_for;
use crate::a2a::mux::{SessionKey, SessionMux};
use crate::a2a::{Pace, TestOutcome, Transmit};
use crate::io::{
    ErrQueueBatch, ErrQueueMessage, Pacer, PacerConfig, PolledSocket, RecvBatch, SendBatch,
    SendOptions, SendReport, SocketOptions,
};
use crate::report::TimestampSource;
use crate::time::Nanos;

/// What a test's caller hears: the outcome (boxed: the channel holds a slot for it from the
/// start) and whether it was cut short.
type Done = Result<(Box<TestOutcome>, bool), A2aError>;

/// Room per datagram: a hello (base packet and clock TLV) or a test packet of the size the
/// shared socket serves.
const SLOT_LEN: usize = 2048;
/// Room for the part of a datagram an ICMP error quotes back.
const QUOTE_LEN: usize = 256;
/// How often a full send buffer is waited for before the rest of a batch is dropped.
const SEND_TRIES: u32 = 50;
/// The wait between those tries (10 ms in all: a buffer of megabytes drains far sooner).
const SEND_RETRY: Duration = Duration::from_micros(200);
/// The longest the loop sleeps while tests are in flight: no reply wakes it, so a test whose
/// replies have all come (a hello answered, a run's last reply in) learns it within this,
/// not at its next deadline (which may be the end of its final wait). A mesh's thousands
/// of tests have deadlines closer than this anyway.
const MAX_NAP: i64 = 10_000_000;

enum Request {
    Start {
        id: u64,
        opts: Box<A2aOptions>,
        done: oneshot::Sender<Done>,
    },
    Stop {
        id: u64,
    },
}

/// Runs many A2A tests on one socket per family (see the module documentation). Cheap to
/// share behind an `Arc`; each test is a call to [`SessionPool::run_test_until`].
#[derive(Debug)]
pub struct SessionPool {
    v4: Mutex<Family>,
    v6: Mutex<Family>,
    next_id: AtomicU64,
    slack: Duration,
}

/// A family's part of the pool.
#[derive(Debug)]
enum Family {
    /// No test of the family yet.
    Unbound,
    /// The loop's request channel.
    Running(mpsc::UnboundedSender<Request>),
    /// The socket got no kernel receive timestamps: every test runs on its own socket.
    Unshared,
}

/// Where a test runs.
enum Start {
    Pooled(Ticket),
    Own(Box<A2aOptions>),
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Start { id, .. } => write!(f, "Start({id})"),
            Request::Stop { id } => write!(f, "Stop({id})"),
        }
    }
}

impl SessionPool {
    /// A pool whose loop wakes at most `slack` after a deadline: packets due within `slack`
    /// of each other leave together (a late packet's send time is what its timestamps say, so
    /// the slack delays packets without making their delays wrong; the report's schedule
    /// error shows it). Zero wakes for every deadline.
    pub fn new(slack: Duration) -> Self {
        SessionPool {
            v4: Mutex::new(Family::Unbound),
            v6: Mutex::new(Family::Unbound),
            next_id: AtomicU64::new(0),
            slack,
        }
    }

    /// Whether the shared socket can run a test of `opts` (else it gets its own socket).
    pub fn can_share(opts: &A2aOptions) -> bool {
        matches!(opts.pace, Pace::Interval(_))
            && opts.source.is_none()
            && opts.interface.is_none()
            && opts.dscp.is_none()
            && opts.local_port == 0
            && opts.interval_reports.is_none()
            && !opts.realtime
            && opts.size <= SLOT_LEN
    }

    /// Runs one test like [`run_test_until`](super::run_test_until), on the pool's socket
    /// when [`SessionPool::can_share`] allows (and the host gives the socket kernel receive
    /// timestamps). A pooled test is handed to the pool's loop when this is called (the
    /// future only waits for it: a few words, as thousands are in flight); dropping the
    /// future stops the test at the loop's next turn.
    pub fn run_test_until<'a>(
        &'a self,
        opts: A2aOptions,
        stop: impl Future<Output = ()> + 'a,
    ) -> impl Future<Output = Result<(TestOutcome, bool), A2aError>> + 'a {
        let start = if Self::can_share(&opts) {
            self.start(opts)
        } else {
            Ok(Start::Own(Box::new(opts)))
        };
        async move {
            let mut ticket = match start? {
                Start::Pooled(ticket) => ticket,
                // On the heap: the own-socket loop's buffers would otherwise make every
                // pooled test's future as large.
                Start::Own(opts) => return Box::pin(super::run_test_until(*opts, stop)).await,
            };
            let done = tokio::select! {
                r = &mut ticket.done => r,
                () = stop => {
                    let _ = ticket.requests.send(Request::Stop { id: ticket.id });
                    (&mut ticket.done).await
                }
            };
            ticket.finished = true;
            let (outcome, cut) = done.map_err(|_| A2aError::PoolStopped)??;
            Ok((*outcome, cut))
        }
    }

    /// Hands a test of `opts` to its family's loop (or back, when the family has none).
    fn start(&self, opts: A2aOptions) -> Result<Start, A2aError> {
        let Some(requests) = self.requests_for(opts.peer.is_ipv6())? else {
            return Ok(Start::Own(Box::new(opts)));
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (done_tx, done) = oneshot::channel();
        let start = Request::Start {
            id,
            opts: Box::new(opts),
            done: done_tx,
        };
        requests.send(start).map_err(|_| A2aError::PoolStopped)?;
        Ok(Start::Pooled(Ticket {
            requests,
            id,
            done,
            finished: false,
        }))
    }

    /// The request channel of the family's loop, started (socket bound) when needed; `None`
    /// when the family's tests run on their own sockets.
    fn requests_for(&self, v6: bool) -> Result<Option<mpsc::UnboundedSender<Request>>, A2aError> {
        let slot = if v6 { &self.v6 } else { &self.v4 };
        let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
        match &*slot {
            Family::Running(tx) if !tx.is_closed() => return Ok(Some(tx.clone())),
            Family::Unshared => return Ok(None),
            Family::Running(_) | Family::Unbound => {}
        }
        let sock = bind_shared(v6)?;
        if sock.timestamp_mode().rx_source() != TimestampSource::Kernel {
            tracing::info!(
                "no kernel receive timestamps: each A2A test runs on its own socket instead \
                 of the shared one"
            );
            *slot = Family::Unshared;
            return Ok(None);
        }
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run_loop(sock, rx, self.slack));
        *slot = Family::Running(tx.clone());
        Ok(Some(tx))
    }
}

/// A test handed to the pool's loop: where its outcome comes from. Dropped before the
/// outcome came (its caller went away), it tells the loop to stop the test.
struct Ticket {
    requests: mpsc::UnboundedSender<Request>,
    id: u64,
    done: oneshot::Receiver<Done>,
    finished: bool,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.requests.send(Request::Stop { id: self.id });
        }
    }
}

fn bind_shared(v6: bool) -> Result<PolledSocket, A2aError> {
    let ip = if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    };
    let sopts = SocketOptions {
        recv_buffer: Some(4 << 20),
        send_buffer: Some(4 << 20),
        recv_err: true,
        ..SocketOptions::default()
    };
    Ok(PolledSocket::bind_udp_tx(SocketAddr::new(ip, 0), &sopts)?)
}

/// The loop's state besides the socket.
struct Pool {
    mux: SessionMux<(u64, oneshot::Sender<Done>)>,
    ids: HashMap<u64, SessionKey>,
    source: TimestampSource,
}

impl Pool {
    fn request(&mut self, r: Request) {
        match r {
            Request::Start { id, opts, done } => {
                // An SSID no other session toward the peer uses (its replies are told apart
                // by it).
                let mut ssid = opts.ssid.unwrap_or_else(rand::random);
                while opts.ssid.is_none() && self.mux.ssid_in_use(opts.peer, ssid) {
                    ssid = rand::random();
                }
                match session_for(&opts, ssid) {
                    Ok(mut s) => {
                        s.set_timestamps(self.source);
                        let key = self.mux.insert(opts.peer, s, (id, done));
                        self.ids.insert(id, key);
                    }
                    Err(e) => {
                        let _ = done.send(Err(e));
                    }
                }
            }
            Request::Stop { id } => {
                if let Some((mut s, (_, done))) =
                    self.ids.remove(&id).and_then(|k| self.mux.remove(k))
                {
                    s.stop();
                    let _ = done.send(Ok((Box::new(s.finish()), true)));
                }
            }
        }
    }

    fn on_error_message(&mut self, msg: ErrQueueMessage) {
        match msg {
            ErrQueueMessage::TxTimestamp(t) => self.mux.handle_tx_timestamp(t.id.0, t.time),
            ErrQueueMessage::Icmp(e) => self.mux.handle_icmp_error(&e),
            ErrQueueMessage::Local(_) | ErrQueueMessage::Other { .. } => {}
        }
    }

    /// Replies read at the loop's pace: their kernel times say when they came, the time of
    /// the read would not (so no user-space round trip).
    fn deliver(&mut self, rx: &RecvBatch, n: usize) {
        for (bytes, meta) in rx.iter().take(n) {
            if let Some(from) = meta.source {
                self.mux.handle_datagram(from, bytes, meta.time, None);
            }
        }
    }

    /// Everything queued on the socket: the error queue first (a reply's transmit timestamp
    /// comes before the reply), then the replies.
    fn read_queued(&mut self, sock: &PolledSocket, errs: &mut ErrQueueBatch, rx: &mut RecvBatch) {
        while sock.try_recv_errors(errs).is_ok() {
            for (msg, _) in errs.iter() {
                self.on_error_message(msg);
            }
            if !errs.is_full() {
                break;
            }
        }
        while let Ok(n) = sock.try_recv_batch(rx) {
            self.deliver(rx, n);
            if n < rx.capacity() {
                break;
            }
        }
    }

    fn finish_done(&mut self) {
        while let Some((_, s, (id, done))) = self.mux.poll_done() {
            self.ids.remove(&id);
            let _ = done.send(Ok((Box::new(s.finish()), false)));
        }
    }
}

/// The loop of one family's socket: until the pool is dropped and its last test ended.
async fn run_loop(
    sock: PolledSocket,
    mut requests: mpsc::UnboundedReceiver<Request>,
    slack: Duration,
) {
    let mut pool = Pool {
        mux: SessionMux::new(),
        ids: HashMap::new(),
        source: sock.timestamp_mode().rx_source(),
    };
    let mut pacer = match Pacer::new(PacerConfig::default().no_spin()) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("the A2A session pool has no timer: {e}");
            return;
        }
    };
    let slack_ns = i64::try_from(slack.as_nanos()).unwrap_or(i64::MAX);
    let mut tx = SendBatch::new(BATCH, SLOT_LEN);
    let mut rx = RecvBatch::new(BATCH, SLOT_LEN);
    let mut errs = ErrQueueBatch::new(BATCH, QUOTE_LEN);
    let mut scratch = vec![0u8; SLOT_LEN];
    let mut sent: [Option<(SessionKey, Transmit)>; BATCH] = [None; BATCH];
    let mut open = true;
    loop {
        pool.read_queued(&sock, &mut errs, &mut rx);
        while let Ok(r) = requests.try_recv() {
            pool.request(r);
        }
        let now = Nanos::now_realtime();
        pool.mux.handle_timeout(now);
        loop {
            while !tx.is_full() {
                let Some((key, peer, t)) = pool.mux.poll_transmit(now, &mut scratch) else {
                    break;
                };
                sent[tx.len()] = Some((key, t));
                tx.push(&scratch[..t.len], peer, SendOptions::default());
            }
            if tx.is_empty() {
                break;
            }
            let report = send_all(&sock, &mut tx).await;
            if let Some(e) = report.first_error {
                tracing::debug!("{} packets not sent: {e}", report.failed);
            }
            for (i, s) in sent.iter().take(tx.len()).enumerate() {
                if let (Some((key, t)), Some(id)) = (s, tx.tx_id(i)) {
                    pool.mux.note_tx_id(*key, t, id.0);
                }
            }
            let full = tx.is_full();
            tx.clear();
            if !full {
                break;
            }
        }
        pool.finish_done();
        if !open && pool.mux.is_empty() {
            return;
        }
        let now = Nanos::now_realtime();
        let wake = pool.mux.poll_timeout().map(|at| {
            at.saturating_add_ns(slack_ns)
                .min(now.saturating_add_ns(MAX_NAP))
        });
        if wake.is_some_and(|at| at <= now) {
            continue;
        }
        tokio::select! {
            r = requests.recv(), if open => match r {
                Some(r) => pool.request(r),
                None => open = false,
            },
            () = sleep_until(&mut pacer, wake) => {}
        }
    }
}

/// Sends `tx` whole, waiting a little while the send buffer is full; what is still unsent
/// after [`SEND_TRIES`] waits is dropped and counted as failed.
async fn send_all(sock: &PolledSocket, tx: &mut SendBatch) -> SendReport {
    let mut report = SendReport::default();
    for _ in 0..SEND_TRIES {
        match sock.try_send_batch(tx, &mut report) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                tokio::time::sleep(SEND_RETRY).await;
            }
            Ok(()) | Err(_) => return report,
        }
    }
    tx.give_up(&mut report, std::io::ErrorKind::WouldBlock.into());
    report
}

/// Sleeps until `at`, forever without one.
async fn sleep_until(pacer: &mut Pacer, at: Option<Nanos>) {
    match at {
        Some(at) => {
            pacer.sleep_until(at).await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
#[path = "runtime_tests.rs"]
mod tests;
