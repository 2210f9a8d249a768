//! One A2A test session on sockets: hellos, the paced schedule, replies with kernel RX
//! timestamps, TX timestamps from the error queue, and the report.
//!
//! Threads and tasks:
//! - the **pacer** runs on a blocking thread (precise absolute-deadline sleeps, see
//!   [`Pacer`]) and sends each packet the moment it is due;
//! - a **receiver** task feeds replies to the sans-IO [`Sender`] under a short lock;
//! - an **error-queue** task maps kernel TX timestamps back to packets and notes ICMP errors.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::{A2aError, local_clock_info};
use crate::a2a::{Limit, ReplyOutcome, Sender, SenderConfig};
use crate::io::{
    ErrQueueMessage, Pacer, PacerConfig, RecvBatch, SocketOptions, TimestampedSocket, TxId,
};
use crate::report::A2aReport;
use crate::time::Nanos;

/// How the sender paces its packets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pace {
    /// An isochronous schedule: packet `n` at `start + n * interval`.
    Interval(Duration),
    /// As fast as replies come back, with at most `window` packets unanswered.
    Max {
        /// Unanswered packets allowed in flight.
        window: u32,
    },
}

/// Settings of one A2A test.
#[derive(Clone, Debug)]
pub struct A2aOptions {
    /// The peer's STAMP responder.
    pub peer: SocketAddr,
    /// The peer as the user named it (goes to the report).
    pub peer_label: String,
    /// Test length: a packet count or a duration.
    pub limit: Limit,
    /// Pacing.
    pub pace: Pace,
    /// UDP payload size (44 ..= 65507).
    pub size: usize,
    /// DSCP codepoint (0-63).
    pub dscp: Option<u8>,
    /// Source address to bind.
    pub source: Option<IpAddr>,
    /// Interface to bind to (`SO_BINDTODEVICE`).
    pub interface: Option<String>,
    /// How long to wait for replies after the last packet.
    pub wait: Duration,
    /// The test stops early when nothing at all has answered this long after it started.
    pub no_answer_timeout: Duration,
    /// Hello packets (clock exchange) sent before the test, one per 200 ms until answered.
    pub hellos: u32,
    /// STAMP session id; random when `None`.
    pub ssid: Option<u16>,
}

impl A2aOptions {
    /// 100 packets every 10 ms of 44 octets to `peer`, 1 s final wait, 3 hellos.
    pub fn new(peer: SocketAddr) -> Self {
        A2aOptions {
            peer,
            peer_label: peer.to_string(),
            limit: Limit::Count(100),
            pace: Pace::Interval(Duration::from_millis(10)),
            size: crate::wire::stamp::BASE_LEN,
            dscp: None,
            source: None,
            interface: None,
            wait: Duration::from_secs(1),
            no_answer_timeout: Duration::from_secs(2),
            hellos: 3,
            ssid: None,
        }
    }
}

/// The result of [`run_test`]: the report and what the runtime saw around it.
#[derive(Clone, Debug)]
pub struct TestOutcome {
    /// The measurement.
    pub report: A2aReport,
    /// Whether anything at all answered (a hello or a test packet).
    pub answered: bool,
    /// Whether the test was cut short because nothing answered.
    pub aborted_no_answer: bool,
    /// The first ICMP error the kernel reported for our packets, described
    /// (e.g. "port unreachable from 192.0.2.7").
    pub icmp_error: Option<String>,
    /// Datagrams dropped at our receive buffer (`SO_RXQ_OVFL`), if the kernel reported it.
    pub local_drops: Option<u32>,
}

/// Packets per `sendmmsg` in a flood.
pub(super) const FLOOD_BATCH: usize = 32;

/// Shared between the pacer, the receiver and the error-queue task.
pub(super) struct Shared {
    sender: Mutex<State>,
    answered: AtomicU64,
    pub(super) test_replies: AtomicU64,
    hello_answered: Notify,
    pub(super) stop_sending: AtomicBool,
    /// The network refused our packets (ICMP unreachable / prohibited).
    refused: AtomicBool,
}

pub(super) struct State {
    pub(super) sender: Sender,
    /// Test sequence number of each transmit id (`u32::MAX` for hellos).
    tx_seq: Vec<u32>,
    icmp_error: Option<String>,
    local_drops: Option<u32>,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.sender.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Runs one test against `opts.peer`. Must be called within a multi-threaded tokio runtime
/// (the pacer blocks a thread of its own).
pub async fn run_test(opts: A2aOptions) -> Result<TestOutcome, A2aError> {
    let (limit, interval) = schedule_of(&opts)?;
    let sock = Arc::new(bind_socket(&opts)?);
    let ts = sock.timestamp_mode();
    let mut cfg = SenderConfig::new(
        opts.peer_label.clone(),
        opts.ssid.unwrap_or_else(rand::random),
    );
    cfg.limit = limit;
    cfg.interval = interval;
    cfg.size = opts.size;
    cfg.timeout = opts.wait.max(Duration::from_millis(100));
    cfg.clock = local_clock_info();
    cfg.timestamps = ts.rx_source();
    let far = Nanos::now_realtime() + Duration::from_secs(3600);
    let sender = Sender::new(cfg, far).map_err(|e| A2aError::Config(e.to_string()))?;
    let shared = Arc::new(Shared {
        sender: Mutex::new(State {
            sender,
            tx_seq: Vec::new(),
            icmp_error: None,
            local_drops: None,
        }),
        answered: AtomicU64::new(0),
        test_replies: AtomicU64::new(0),
        hello_answered: Notify::new(),
        stop_sending: AtomicBool::new(false),
        refused: AtomicBool::new(false),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let (rx_stop, rx_stop_rx) = watch::channel(false);
    let mut receiver = Some(tokio::spawn(receive(
        sock.clone(),
        shared.clone(),
        rx_stop_rx,
    )));
    let errq = tokio::spawn(error_queue(sock.clone(), shared.clone(), stop_rx));

    hellos(&sock, &shared, &opts).await?;
    let start = Nanos::now_realtime() + Duration::from_millis(1);
    shared
        .lock()
        .sender
        .reschedule(start)
        .map_err(|e| A2aError::Config(e.to_string()))?;

    if matches!(opts.pace, Pace::Max { .. }) {
        // The flood thread receives on its own (no cross-thread wake-up per reply batch).
        stop_receiver(&rx_stop, &mut receiver).await?;
    }
    let pacer = {
        let (sock, shared, opts) = (sock.clone(), shared.clone(), opts.clone());
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || pace(&handle, &sock, &shared, &opts, start))
    };
    let last_send = pacer.await.map_err(|e| A2aError::Task(e.to_string()))??;

    // Wait for the last replies: all in, or the final wait over.
    let sent = u64::from(shared.lock().sender.sent());
    let deadline = tokio::time::Instant::now()
        + opts.wait.saturating_sub(Duration::from_nanos(
            Nanos::now_realtime().since(last_send).max(0) as u64,
        ));
    let aborted = shared.stop_sending.load(Ordering::Relaxed);
    while !aborted
        && shared.test_replies.load(Ordering::Relaxed) < sent
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // Let TX timestamps of the last packets arrive before the report.
    tokio::time::sleep(Duration::from_millis(2)).await;
    let _ = stop_tx.send(true);
    stop_receiver(&rx_stop, &mut receiver).await?;
    errq.await.map_err(|e| A2aError::Task(e.to_string()))?;
    let st = shared.lock();
    let mut report = st.sender.finish();
    if matches!(opts.pace, Pace::Max { .. }) {
        // A flood has no schedule to miss.
        report.schedule_error_us = crate::report::ScheduleErrorReport::default();
    }
    Ok(TestOutcome {
        report,
        answered: shared.answered.load(Ordering::Relaxed) > 0,
        aborted_no_answer: aborted,
        icmp_error: st.icmp_error.clone(),
        local_drops: st.local_drops,
    })
}

async fn stop_receiver(
    stop: &watch::Sender<bool>,
    task: &mut Option<tokio::task::JoinHandle<()>>,
) -> Result<(), A2aError> {
    let _ = stop.send(true);
    match task.take() {
        Some(t) => t.await.map_err(|e| A2aError::Task(e.to_string())),
        None => Ok(()),
    }
}

/// The sans-IO limit and interval for the options.
fn schedule_of(opts: &A2aOptions) -> Result<(Limit, Duration), A2aError> {
    match opts.pace {
        Pace::Interval(i) if i.is_zero() => {
            Err(A2aError::Config("the interval must be positive".into()))
        }
        Pace::Interval(i) => Ok((opts.limit, i)),
        Pace::Max { window: 0 } => {
            Err(A2aError::Config("the flood window must be positive".into()))
        }
        // A flood is paced by replies; a duration limit is enforced by the pacer.
        Pace::Max { .. } => match opts.limit {
            Limit::Count(n) => Ok((Limit::Count(n), Duration::from_nanos(1))),
            Limit::Duration(_) => Ok((Limit::Count(u32::MAX - 1), Duration::from_nanos(1))),
        },
    }
}

fn bind_socket(opts: &A2aOptions) -> Result<TimestampedSocket, A2aError> {
    let bind_ip = opts.source.unwrap_or(if opts.peer.is_ipv4() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    });
    if bind_ip.is_ipv4() != opts.peer.is_ipv4() {
        return Err(A2aError::Config(format!(
            "--source {bind_ip} and the peer {} are of different address families",
            opts.peer
        )));
    }
    let mut sopts = SocketOptions {
        device: opts.interface.clone(),
        recv_buffer: Some(4 << 20),
        send_buffer: Some(4 << 20),
        recv_err: true,
        drop_counter: true,
        ..SocketOptions::default()
    };
    if let Some(d) = opts.dscp {
        sopts = sopts.with_dscp(d);
    }
    // A flood takes user-space send times: one error-queue read per packet would halve its rate.
    let tx_timestamps = matches!(opts.pace, Pace::Interval(_));
    Ok(TimestampedSocket::bind_udp(
        SocketAddr::new(bind_ip, 0),
        &sopts,
        tx_timestamps,
    )?)
}

/// Sends up to `opts.hellos` hellos, one per 200 ms, until one is answered.
async fn hellos(
    sock: &TimestampedSocket,
    shared: &Shared,
    opts: &A2aOptions,
) -> Result<(), A2aError> {
    let mut buf = vec![0u8; opts.size.max(128)];
    for _ in 0..opts.hellos {
        if shared.refused.load(Ordering::Relaxed) {
            return Ok(());
        }
        let len = {
            shared
                .lock()
                .sender
                .emit_hello(Nanos::now_realtime(), &mut buf)
                .map_err(|e| A2aError::Config(e.to_string()))?
        };
        let id = send_one(sock, &buf[..len], opts.peer).await?;
        note_tx(shared, id, u32::MAX);
        let answered = shared.hello_answered.notified();
        if shared.lock().sender.hellos().1 > 0 {
            return Ok(());
        }
        if tokio::time::timeout(Duration::from_millis(200), answered)
            .await
            .is_ok()
        {
            return Ok(());
        }
    }
    Ok(())
}

async fn send_one(
    sock: &TimestampedSocket,
    buf: &[u8],
    peer: SocketAddr,
) -> Result<Option<TxId>, A2aError> {
    match sock.send_to(buf, peer).await {
        Ok(id) => Ok(Some(id)),
        // ICMP errors from earlier packets surface here; they are read from the error queue.
        Err(e) if crate::io::is_async_icmp_error(&e) => Ok(None),
        Err(source) => Err(A2aError::Socket {
            what: "send",
            addr: peer,
            source,
        }),
    }
}

fn note_tx(shared: &Shared, id: Option<TxId>, seq: u32) {
    if let Some(TxId(id)) = id {
        let mut st = shared.lock();
        let i = id as usize;
        if st.tx_seq.len() <= i {
            st.tx_seq.resize(i + 1, u32::MAX);
        }
        st.tx_seq[i] = seq;
    }
}

/// The pacer thread: sends every test packet when due; returns the last send time.
fn pace(
    rt: &tokio::runtime::Handle,
    sock: &TimestampedSocket,
    shared: &Shared,
    opts: &A2aOptions,
    start: Nanos,
) -> Result<Nanos, A2aError> {
    match opts.pace {
        Pace::Interval(_) => pace_schedule(rt, sock, shared, opts, start),
        Pace::Max { window } => super::flood::pace_flood(rt, sock, shared, opts, start, window),
    }
}

/// Whether to give up: nothing answered within the timeout, or the network refused.
pub(super) fn give_up(shared: &Shared, now: Nanos, no_answer_after: Nanos) -> bool {
    let silent = shared.answered.load(Ordering::Relaxed) == 0;
    let stop = silent && (now >= no_answer_after || shared.refused.load(Ordering::Relaxed));
    if stop {
        shared.stop_sending.store(true, Ordering::Relaxed);
    }
    stop
}

/// The isochronous schedule: one packet per deadline, with its kernel TX timestamp.
fn pace_schedule(
    rt: &tokio::runtime::Handle,
    sock: &TimestampedSocket,
    shared: &Shared,
    opts: &A2aOptions,
    start: Nanos,
) -> Result<Nanos, A2aError> {
    // Sleeping between packets, the paced thread may take real-time priority.
    let (mut pacer, _) = Pacer::realtime(PacerConfig::default())
        .map_err(|e| A2aError::Task(format!("cannot create the pacer timer: {e}")))?;
    let mut buf = vec![0u8; opts.size];
    let no_answer_after = start + opts.no_answer_timeout;
    let mut last = start;
    loop {
        let Some(due) = shared.lock().sender.next_send_at() else {
            break;
        };
        let now = pacer.sleep_until_blocking(due);
        if give_up(shared, now, no_answer_after) {
            break;
        }
        let (seq, len) = {
            let mut st = shared.lock();
            let now = Nanos::now_realtime();
            match st.sender.emit_next(now, &mut buf) {
                Ok(s) => (s.seq, s.len),
                Err(e) => return Err(A2aError::Config(e.to_string())),
            }
        };
        let id = rt.block_on(send_one(sock, &buf[..len], opts.peer))?;
        note_tx(shared, id, seq);
        last = Nanos::now_realtime();
    }
    Ok(last)
}

async fn receive(
    sock: Arc<TimestampedSocket>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut batch = RecvBatch::new(64, 65_536);
    loop {
        let n = tokio::select! {
            biased;
            _ = stop.changed() => return,
            r = sock.recv_batch(&mut batch) => r,
        };
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                tracing::debug!("receive: {e}");
                // ICMP errors are also queued on the error queue; avoid a hot loop.
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
        };
        deliver(&shared, &batch, n);
    }
}

/// Hands `n` received datagrams of `batch` to the sender and counts what they were.
pub(super) fn deliver(shared: &Shared, batch: &RecvBatch, n: usize) {
    let mut st = shared.lock();
    for (bytes, meta) in batch.iter().take(n) {
        if let Some(d) = meta.drops {
            st.local_drops = Some(d);
        }
        match st.sender.on_reply(bytes, meta.time) {
            ReplyOutcome::Test {
                forward_duplicate, ..
            } => {
                shared.answered.fetch_add(1, Ordering::Relaxed);
                if !forward_duplicate {
                    shared.test_replies.fetch_add(1, Ordering::Relaxed);
                }
            }
            ReplyOutcome::Hello { .. } => {
                shared.answered.fetch_add(1, Ordering::Relaxed);
                shared.hello_answered.notify_waiters();
            }
            ReplyOutcome::ReverseDuplicate { .. } | ReplyOutcome::Late { .. } => {
                shared.answered.fetch_add(1, Ordering::Relaxed);
            }
            ReplyOutcome::Ignored(_) => {}
        }
    }
}

async fn error_queue(
    sock: Arc<TimestampedSocket>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut buf = [0u8; 2048];
    loop {
        let msg = tokio::select! {
            biased;
            _ = stop.changed() => {
                // Drain what is already queued (late TX timestamps) without waiting.
                while let Ok(m) = sock.try_recv_error(&mut buf) {
                    on_err_msg(&shared, m);
                }
                return;
            }
            m = sock.recv_error(&mut buf) => m,
        };
        match msg {
            Ok(m) => on_err_msg(&shared, m),
            Err(e) => {
                tracing::debug!("error queue: {e}");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
}

fn on_err_msg(shared: &Shared, m: ErrQueueMessage) {
    let mut st = shared.lock();
    match m {
        ErrQueueMessage::TxTimestamp(t) => {
            if let Some(&seq) = st.tx_seq.get(t.id.0 as usize)
                && seq != u32::MAX
            {
                st.sender.on_tx_timestamp(seq, t.time);
            }
        }
        ErrQueueMessage::Icmp(e) if st.icmp_error.is_none() => {
            if !matches!((e.icmpv6, e.icmp_type), (false, 11) | (true, 3)) {
                shared.refused.store(true, Ordering::Relaxed);
            }
            let from = e.offender.map_or_else(|| "?".to_owned(), |a| a.to_string());
            st.icmp_error = Some(format!(
                "{} from {from}",
                describe_icmp(e.icmpv6, e.icmp_type, e.icmp_code)
            ));
        }
        _ => {}
    }
}

fn describe_icmp(v6: bool, t: u8, c: u8) -> String {
    match (v6, t, c) {
        (false, 3, 3) | (true, 1, 4) => "ICMP port unreachable".into(),
        (false, 3, 0) | (true, 1, 0) => "ICMP network unreachable".into(),
        (false, 3, 1) | (true, 1, 3) => "ICMP host unreachable".into(),
        (false, 3, 9 | 10 | 13) | (true, 1, 1) => "ICMP administratively prohibited".into(),
        (false, 11, _) | (true, 3, _) => "ICMP time exceeded".into(),
        _ => format!("ICMP type {t} code {c}"),
    }
}
