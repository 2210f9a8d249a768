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
    ErrQueueMessage, Pacer, PacerConfig, RecvBatch, SendBatch, SendOptions, SocketOptions,
    TimestampedSocket,
};
use crate::time::Nanos;

/// What a test's caller hears: the outcome (boxed: the channel holds a slot for it from the
/// start) and whether it was cut short.
type Done = Result<(Box<TestOutcome>, bool), A2aError>;

/// Room per datagram: a hello (base packet and clock TLV) or a test packet of the size the
/// shared socket serves.
const SLOT_LEN: usize = 2048;

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
    v4: Mutex<Option<mpsc::UnboundedSender<Request>>>,
    v6: Mutex<Option<mpsc::UnboundedSender<Request>>>,
    next_id: AtomicU64,
    slack: Duration,
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
            v4: Mutex::new(None),
            v6: Mutex::new(None),
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
    /// when [`SessionPool::can_share`] allows. A pooled test is handed to the pool's loop
    /// when this is called (the future only waits for it: a few words, as thousands are in
    /// flight); dropping the future stops the test at the loop's next turn.
    pub fn run_test_until<'a>(
        &'a self,
        opts: A2aOptions,
        stop: impl Future<Output = ()> + 'a,
    ) -> impl Future<Output = Result<(TestOutcome, bool), A2aError>> + 'a {
        let (own, pooled) = if Self::can_share(&opts) {
            (None, Some(self.start(opts)))
        } else {
            (Some(Box::new(opts)), None)
        };
        async move {
            if let Some(opts) = own {
                // On the heap: the own-socket loop's buffers would otherwise make every
                // pooled test's future as large.
                return Box::pin(super::run_test_until(*opts, stop)).await;
            }
            let Some(ticket) = pooled else {
                return Err(A2aError::PoolStopped);
            };
            let mut ticket = ticket?;
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

    /// Hands a test of `opts` to its family's loop.
    fn start(&self, opts: A2aOptions) -> Result<Ticket, A2aError> {
        let requests = self.requests_for(opts.peer.is_ipv6())?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (done_tx, done) = oneshot::channel();
        let start = Request::Start {
            id,
            opts: Box::new(opts),
            done: done_tx,
        };
        requests.send(start).map_err(|_| A2aError::PoolStopped)?;
        Ok(Ticket {
            requests,
            id,
            done,
            finished: false,
        })
    }

    /// The request channel of the family's loop, started (socket bound) when needed.
    fn requests_for(&self, v6: bool) -> Result<mpsc::UnboundedSender<Request>, A2aError> {
        let slot = if v6 { &self.v6 } else { &self.v4 };
        let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = slot.as_ref().filter(|tx| !tx.is_closed()) {
            return Ok(tx.clone());
        }
        let sock = bind_shared(v6)?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run_loop(sock, rx, self.slack));
        *slot = Some(tx.clone());
        Ok(tx)
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

fn bind_shared(v6: bool) -> Result<TimestampedSocket, A2aError> {
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
    Ok(TimestampedSocket::bind_udp(
        SocketAddr::new(ip, 0),
        &sopts,
        true,
    )?)
}

/// The loop's state besides the socket.
struct Pool {
    mux: SessionMux<(u64, oneshot::Sender<Done>)>,
    ids: HashMap<u64, SessionKey>,
    source: crate::report::TimestampSource,
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

    fn deliver(&mut self, rx: &RecvBatch, n: usize) {
        let user_rx = rx.received_at();
        for (bytes, meta) in rx.iter().take(n) {
            if let Some(from) = meta.source {
                self.mux.handle_datagram(from, bytes, meta.time, user_rx);
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
    sock: TimestampedSocket,
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
    let mut errbuf = [0u8; 2048];
    let mut scratch = vec![0u8; SLOT_LEN];
    let mut sent: [Option<(SessionKey, Transmit)>; BATCH] = [None; BATCH];
    let mut open = true;
    loop {
        while let Ok(msg) = sock.try_recv_error(&mut errbuf) {
            pool.on_error_message(msg);
        }
        while let Ok(n) = sock.try_recv_batch(&mut rx) {
            if n == 0 {
                break;
            }
            pool.deliver(&rx, n);
        }
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
            match sock.send_batch(&mut tx).await {
                Ok(report) => {
                    if let Some(e) = report.first_error {
                        tracing::debug!("{} packets not sent: {e}", report.failed);
                    }
                }
                Err(e) => tracing::debug!("send: {e}"),
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
        let wake = pool
            .mux
            .poll_timeout()
            .map(|at| at.saturating_add_ns(slack_ns));
        if wake.is_some_and(|at| at <= Nanos::now_realtime()) {
            continue;
        }
        tokio::select! {
            r = sock.recv_batch(&mut rx) => match r {
                Ok(n) => pool.deliver(&rx, n),
                Err(e) => tracing::debug!("receive: {e}"),
            },
            r = sock.recv_error(&mut errbuf) => match r {
                Ok(msg) => pool.on_error_message(msg),
                Err(e) => tracing::debug!("error queue: {e}"),
            },
            r = requests.recv(), if open => match r {
                Some(r) => pool.request(r),
                None => open = false,
            },
            () = sleep_until(&mut pacer, wake) => {}
        }
    }
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
