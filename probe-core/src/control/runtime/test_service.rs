//! The responder's side of test negotiation: grants requests against the [`SessionTable`],
//! registers granted STAMP sessions with the reflector's [`Admission`] registry, runs the far
//! end's Session-Sender of `from` tests toward the address the client's punch came from, and
//! answers results requests with the far end's view.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::throughput_service::{self, BlastState, FarBlast};
use super::trace_service::ReverseTraces;
use crate::a2a::runtime::{A2aOptions, run_test};
use crate::a2a::throughput::ThroughputSink;
use crate::a2a::throughput::packet::HEADER_LEN;
use crate::a2a::{Admission, Limit, Pace, SessionStats, StampKey, StampKeyring};
use crate::control::handshake::error_message;
use crate::control::messages::{ClockFacts, ErrorCode, Message};
use crate::control::negotiation::{
    COOKIE_LEN, FarEndResults, FarEndThroughput, ResultsRequest, SESSION_KEY_LEN, TestAccepted,
    TestKind, TestRequest, is_punch, to_hex,
};
use crate::control::sessions::{Limits, Lookup, Session, SessionTable};
use crate::quic_test::runtime::{QuicGrant, QuicGrants};
use crate::report::A2aReport;
use crate::tcp::Gate;
use crate::time::ClockInfo;
use crate::wire::stamp_auth::AUTH_BASE_LEN;

/// How long the far end waits for the client's punch before giving up on a `from` test.
const PUNCH_WAIT: Duration = Duration::from_secs(10);
/// Flood window of a far-end Session-Sender asked for `--rate max`.
const FLOOD_WINDOW: u32 = 256;
/// Late replies waited for by the far-end Session-Sender.
const SENDER_WAIT: Duration = Duration::from_secs(1);
/// Extra time a final results request waits for the far-end Session-Sender.
const RESULTS_SLACK: Duration = Duration::from_secs(5);

/// What the control plane needs to grant tests.
#[derive(Clone, Debug)]
pub struct TestsConfig {
    /// The operator's limits.
    pub limits: Limits,
    /// The reflector's registry of negotiated sessions (shared with the STAMP responder).
    pub admission: Arc<Admission>,
    /// The STAMP port clients send to.
    pub stamp_port: u16,
    /// The responder's clock facts.
    pub clock: ClockInfo,
    /// The STAMP responder's keyring (shared with it): a negotiated STAMP session that asks
    /// for authenticated mode, or any when the responder requires auth, gets a fresh key
    /// registered here for its client and SSID. `None`: no session keys are handed out.
    pub stamp_keys: Option<StampKeyring>,
}

/// The far end's Session-Sender of a `from` test.
#[derive(Clone, Debug)]
enum SenderState {
    /// Waiting for the client's punch.
    WaitingPunch,
    /// Sending.
    Running,
    /// Finished with a report.
    Done(Box<A2aReport>),
    /// Failed.
    Failed(String),
}

pub(super) struct Extras {
    stats: Option<Arc<SessionStats>>,
    sender: Option<watch::Receiver<SenderState>>,
    task: Option<tokio::task::AbortHandle>,
    /// The counting receiver of a UDP throughput `to` test.
    sink: Option<Arc<ThroughputSink>>,
    /// The sender of a UDP throughput `from` test.
    blast: Option<FarBlast>,
    /// Whether a session key is registered in the keyring.
    keyed: bool,
    /// The TCP cookie of a negotiated TCP throughput test.
    pub(super) cookie: Option<[u8; COOKIE_LEN]>,
    /// The TCP test id that took the session (its control connection's request).
    pub(super) tcp_test: Option<u64>,
}

/// Negotiation counters.
#[derive(Debug, Default)]
pub(super) struct TestCounters {
    pub(super) accepted: AtomicU64,
    pub(super) refused: AtomicU64,
    pub(super) bad_session: AtomicU64,
}

/// The negotiation state shared by the control connections.
pub(super) struct Tests {
    pub(super) config: TestsConfig,
    table: Mutex<SessionTable>,
    extras: Mutex<HashMap<u64, Extras>>,
    /// The TCP test server's own rules for tests not negotiated here, once the server is
    /// attached ([`super::ControlServer::tcp_admission`]).
    pub(super) gate: Mutex<Option<Gate>>,
    pub(super) counters: TestCounters,
    pub(super) traces: ReverseTraces,
}

impl Tests {
    pub(super) fn new(config: TestsConfig) -> Self {
        Tests {
            table: Mutex::new(SessionTable::new(config.limits)),
            config,
            extras: Mutex::new(HashMap::new()),
            counters: TestCounters::default(),
            traces: ReverseTraces::new(),
            gate: Mutex::new(None),
        }
    }

    /// Whether this message is one the service answers.
    pub(super) fn serves(msg: &Message) -> bool {
        matches!(
            msg,
            Message::TestRequest(_) | Message::Results(_) | Message::TraceRequest(_)
        )
    }

    /// Answers a request of connection `owner`, whose peer is `client`.
    pub(super) async fn answer(&self, msg: Message, owner: u64, client: IpAddr) -> Message {
        self.sweep();
        match msg {
            Message::TestRequest(req) => self.grant(&req, owner, client.to_canonical()),
            Message::Results(req) => self.results(req, owner).await,
            Message::TraceRequest(req) => {
                self.traces.answer(&req, client, &self.config.limits).await
            }
            other => error_message(
                ErrorCode::BadMessage,
                format!(
                    "{} is not a request",
                    crate::control::handshake::kind(&other)
                ),
            ),
        }
    }

    pub(super) fn table(&self) -> std::sync::MutexGuard<'_, SessionTable> {
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn extras(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Extras>> {
        self.extras
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn grant(&self, req: &TestRequest, owner: u64, client: IpAddr) -> Message {
        let id = loop {
            let id: u64 = rand::random();
            if id != 0 {
                break id;
            }
        };
        let stamp = req.kind == TestKind::Stamp;
        let keyed = stamp && (req.auth || self.config.admission.required());
        if keyed && self.config.stamp_keys.is_none() {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            return error_message(
                ErrorCode::Unsupported,
                "authenticated STAMP: this responder hands out no session keys (it runs without \
                 a STAMP keyring); drop --stamp-auth"
                    .into(),
            );
        }
        let key = keyed.then(|| {
            let bytes: [u8; SESSION_KEY_LEN] = rand::random();
            bytes
        });
        let mut req = req.clone();
        if key.is_some() {
            // Authenticated packets are at least this long: the limits apply to what is sent.
            req.size = req.size.max(AUTH_BASE_LEN as u32);
        }
        if req.kind.exclusive()
            && let Some(left) = self.tcp_gate_busy()
        {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            return Message::Error(crate::control::sessions::busy(
                left,
                "tcp_throughput (not negotiated)",
            ));
        }
        let req = &req;
        let key = key.map(|b| (to_hex(&b), StampKey::new(&b)));
        let key = match key {
            Some((hex, Ok(k))) => Some((hex, k)),
            Some((_, Err(e))) => {
                return error_message(ErrorCode::Internal, format!("session key: {e}"));
            }
            None => None,
        };
        let admitted = self
            .table()
            .admit(id, owner, client, req.clone(), Instant::now())
            .map(|s| s.expires.saturating_duration_since(Instant::now()));
        let expires_in = match admitted {
            Ok(left) => left,
            Err(e) => {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                tracing::info!("control: refused a test for {client}: {}", e.message);
                return Message::Error(e);
            }
        };
        let stamp = req.kind == TestKind::Stamp;
        let stats = (stamp && req.direction.includes_to())
            .then(|| self.config.admission.register(client, req.ssid));
        let cookie = (req.kind == TestKind::TcpThroughput).then(rand::random::<[u8; COOKIE_LEN]>);
        let mut extras = Extras {
            stats,
            sender: None,
            task: None,
            sink: None,
            blast: None,
            keyed: false,
            cookie,
            tcp_test: None,
        };
        if let (Some((_, k)), Some(ring)) = (&key, &self.config.stamp_keys)
            && req.direction.includes_to()
        {
            ring.register(client, req.ssid, k.clone());
            extras.keyed = true;
        }
        let mut sender_port = None;
        if req.kind == TestKind::UdpThroughput {
            if (req.size as usize) < HEADER_LEN {
                self.end(id);
                return error_message(
                    ErrorCode::BadMessage,
                    format!(
                        "a UDP throughput datagram is at least {HEADER_LEN} bytes, {} asked:                          use --size {HEADER_LEN} or more",
                        req.size
                    ),
                );
            }
            if req.direction.includes_to() {
                let sink = throughput_service::sink(client, req);
                self.config
                    .admission
                    .register_throughput(id, Arc::clone(&sink));
                extras.sink = Some(sink);
            }
            if req.direction.includes_from() {
                match throughput_service::start_blast(id, client, req) {
                    Ok((port, blast)) => {
                        sender_port = Some(port);
                        extras.blast = Some(blast);
                    }
                    Err(e) => {
                        self.end(id);
                        return error_message(
                            ErrorCode::Internal,
                            format!("the far end cannot open its sender socket: {e}"),
                        );
                    }
                }
            }
        }
        if stamp && req.direction.includes_from() {
            match start_sender(id, client, req, key.as_ref().map(|(_, k)| k.clone())) {
                Ok((port, rx, task)) => {
                    sender_port = Some(port);
                    extras.sender = Some(rx);
                    extras.task = Some(task);
                }
                Err(e) => {
                    self.extras().insert(id, extras);
                    self.end(id);
                    return error_message(
                        ErrorCode::Internal,
                        format!("the far end cannot open its sender socket: {e}"),
                    );
                }
            }
        }
        self.extras().insert(id, extras);
        self.counters.accepted.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            "control: session {id:016x}: {} {} for {client}, ssid {}",
            req.kind.as_str(),
            req.direction,
            req.ssid
        );
        Message::TestAccepted(TestAccepted {
            session: id,
            expires_in_ms: u64::try_from(expires_in.as_millis()).unwrap_or(u64::MAX),
            stamp_port: self.config.stamp_port,
            sender_port,
            clock: ClockFacts::from_info(&self.config.clock),
            require_auth: self.config.admission.required(),
            stamp_key: key.map(|(hex, _)| hex),
            cookie: cookie.map(|c| to_hex(&c)),
        })
    }

    async fn results(&self, req: ResultsRequest, owner: u64) -> Message {
        let now = Instant::now();
        let ends = match self.table().get(req.session, owner, now) {
            Ok(s) => s.ends,
            Err(lookup) => {
                self.counters.bad_session.fetch_add(1, Ordering::Relaxed);
                let (code, why) = match lookup {
                    Lookup::Unknown => (
                        ErrorCode::UnknownSession,
                        "unknown session: this connection negotiated no such session (sessions \
                         belong to the control connection that asked for them)",
                    ),
                    Lookup::Expired => (
                        ErrorCode::ExpiredSession,
                        "the session expired: ask for a new test",
                    ),
                };
                return error_message(code, format!("session {:016x}: {why}", req.session));
            }
        };
        let (stats, sender, sink, blast) = {
            let extras = self.extras();
            let e = extras.get(&req.session);
            (
                e.and_then(|e| e.stats.clone()),
                e.and_then(|e| e.sender.clone()),
                e.and_then(|e| e.sink.clone()),
                e.and_then(|e| e.blast.as_ref().map(|b| b.state.clone())),
            )
        };
        if sink.is_some() || blast.is_some() {
            let out = self.throughput_results(req, ends, sink, blast).await;
            if req.end {
                self.end(req.session);
            }
            return out;
        }
        let mut state = sender.as_ref().map(|rx| rx.borrow().clone());
        if req.end
            && let Some(mut rx) = sender
            && matches!(state, Some(SenderState::Running))
        {
            let patience = ends.saturating_duration_since(now) + SENDER_WAIT + RESULTS_SLACK;
            let _ = tokio::time::timeout(
                patience,
                rx.wait_for(|s| !matches!(s, SenderState::Running)),
            )
            .await;
            state = Some(rx.borrow().clone());
        }
        let (report, error, sender_state) = match state {
            Some(SenderState::Done(r)) => (Some(r), None, Some("done")),
            Some(SenderState::Failed(e)) => (None, Some(e), Some("failed")),
            Some(SenderState::Running) => (None, None, Some("running")),
            Some(SenderState::WaitingPunch) if req.end => (
                None,
                Some(
                    "the client's punch never arrived: the far end's sender port is not                      reachable from the client (is the far end behind NAT?)"
                        .to_string(),
                ),
                Some("failed"),
            ),
            Some(SenderState::WaitingPunch) => (None, None, Some("waiting_punch")),
            None => (None, None, None),
        };
        let out = FarEndResults {
            session: req.session,
            reflector: stats.map(|s| s.snapshot()),
            reflector_totals: None,
            sender: report,
            sender_error: error,
            sender_state: sender_state.map(Into::into),
            throughput: None,
            clock: ClockFacts::from_info(&crate::a2a::runtime::local_clock_info()),
        };
        if req.end {
            self.end(req.session);
        }
        Message::FarEnd(Box::new(out))
    }

    /// The far end's view of a UDP throughput session; a final request waits for the far
    /// end's sender to finish.
    async fn throughput_results(
        &self,
        req: ResultsRequest,
        ends: Instant,
        sink: Option<Arc<ThroughputSink>>,
        blast: Option<watch::Receiver<BlastState>>,
    ) -> Message {
        let mut state = blast.as_ref().map(|rx| rx.borrow().clone());
        if req.end
            && let Some(mut rx) = blast
            && matches!(state, Some(BlastState::Running))
        {
            let patience = ends.saturating_duration_since(Instant::now()) + RESULTS_SLACK;
            let _ =
                tokio::time::timeout(patience, rx.wait_for(|s| !matches!(s, BlastState::Running)))
                    .await;
            state = Some(rx.borrow().clone());
        }
        let (sent, error, sender_state) = match state {
            Some(BlastState::Done(c)) => (Some(c), None, Some("done")),
            Some(BlastState::Failed(e)) => (None, Some(e), Some("failed")),
            Some(BlastState::Running) => (None, None, Some("running")),
            Some(BlastState::WaitingPunch) => (None, None, Some("waiting_punch")),
            None => (None, None, None),
        };
        Message::FarEnd(Box::new(FarEndResults {
            session: req.session,
            reflector: None,
            reflector_totals: None,
            sender: None,
            sender_error: error,
            sender_state: sender_state.map(Into::into),
            throughput: Some(FarEndThroughput {
                received: sink.map(|s| s.snapshot()),
                sent,
            }),
            clock: ClockFacts::from_info(&crate::a2a::runtime::local_clock_info()),
        }))
    }

    /// Ends one session: unregisters it from the reflector, stops its sender.
    fn end(&self, id: u64) {
        let session = self.table().release(id);
        self.cleanup(id, session.as_ref());
    }

    fn cleanup(&self, id: u64, session: Option<&Session>) {
        if let Some(s) = session
            && s.request.kind == TestKind::Stamp
            && s.request.direction.includes_to()
        {
            self.config.admission.unregister(s.client, s.request.ssid);
        }
        if session.is_some_and(|s| s.request.kind == TestKind::UdpThroughput) {
            self.config.admission.unregister_throughput(id);
        }
        let Some(e) = self.extras().remove(&id) else {
            return;
        };
        if let Some(blast) = e.blast {
            blast.stop();
        }
        if let Some(task) = e.task {
            task.abort();
        }
        if e.keyed
            && let (Some(s), Some(ring)) = (session, &self.config.stamp_keys)
        {
            ring.unregister(s.client, s.request.ssid);
        }
    }

    /// Ends every session of a connection that closed or vanished.
    pub(super) fn release_owner(&self, owner: u64) {
        let gone = self.table().release_owner(owner);
        for s in &gone {
            tracing::info!(
                "control: session {:016x} of {} ended with its connection",
                s.id,
                s.client
            );
            self.cleanup(s.id, Some(s));
        }
    }

    /// Drops expired sessions.
    pub(super) fn sweep(&self) {
        let gone = self.table().expire(Instant::now());
        for s in &gone {
            self.cleanup(s.id, Some(s));
        }
    }

    /// Sessions held now.
    pub(super) fn sessions(&self) -> usize {
        self.table().len()
    }
}

impl QuicGrants for Tests {
    fn quic_grant(&self, session: u64, client: IpAddr) -> Result<QuicGrant, String> {
        let table = self.table();
        let s = match table.find(session, Instant::now()) {
            Ok(s) if s.client == client.to_canonical() => s,
            Ok(_) | Err(Lookup::Unknown) => {
                self.counters.bad_session.fetch_add(1, Ordering::Relaxed);
                return Err(format!(
                    "unknown session {session:016x}: negotiate the test on the control plane \
                     first, from this address"
                ));
            }
            Err(Lookup::Expired) => {
                self.counters.bad_session.fetch_add(1, Ordering::Relaxed);
                return Err(format!(
                    "session {session:016x} expired: ask for a new test"
                ));
            }
        };
        let throughput = match s.request.kind {
            TestKind::QuicRtt => false,
            TestKind::QuicThroughput => true,
            other => {
                return Err(format!(
                    "session {session:016x} is a {} test, not a QUIC test",
                    other.as_str()
                ));
            }
        };
        Ok(QuicGrant {
            throughput,
            direction: s.request.direction,
            count: s.request.count,
            duration: s.request.duration_ms.map(Duration::from_millis),
            expires: s.expires,
        })
    }
}

type Started = (u16, watch::Receiver<SenderState>, tokio::task::AbortHandle);

/// Binds the far end's sender socket and starts the task that waits for the punch and runs
/// the test toward the address it came from.
fn start_sender(
    id: u64,
    client: IpAddr,
    req: &TestRequest,
    key: Option<StampKey>,
) -> std::io::Result<Started> {
    let any = if client.is_ipv4() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    };
    let std_sock = std::net::UdpSocket::bind(SocketAddr::new(any, 0))?;
    std_sock.set_nonblocking(true)?;
    let port = std_sock.local_addr()?.port();
    let sock = tokio::net::UdpSocket::from_std(std_sock)?;
    let (tx, rx) = watch::channel(SenderState::WaitingPunch);
    let req = req.clone();
    let task = tokio::spawn(async move {
        let state = match far_end_sender(id, client, port, sock, &req, key, &tx).await {
            Ok(report) => SenderState::Done(Box::new(report)),
            Err(e) => {
                tracing::info!("control: session {id:016x}: far-end sender: {e}");
                SenderState::Failed(e)
            }
        };
        let _ = tx.send(state);
    });
    Ok((port, rx, task.abort_handle()))
}

/// The source of the first punch of `session` from `client` that reaches `sock` within
/// `within` (the client's NAT mapping); `None` when none does.
pub(super) async fn wait_punch(
    sock: &tokio::net::UdpSocket,
    client: IpAddr,
    session: u64,
    within: Duration,
) -> Option<SocketAddr> {
    let mut buf = [0_u8; 64];
    let client = client.to_canonical();
    tokio::time::timeout(within, async {
        loop {
            if let Ok((n, src)) = sock.recv_from(&mut buf).await
                && src.ip().to_canonical() == client
                && is_punch(&buf[..n], session)
            {
                return SocketAddr::new(src.ip().to_canonical(), src.port());
            }
        }
    })
    .await
    .ok()
}

async fn far_end_sender(
    id: u64,
    client: IpAddr,
    port: u16,
    sock: tokio::net::UdpSocket,
    req: &TestRequest,
    key: Option<StampKey>,
    state: &watch::Sender<SenderState>,
) -> Result<A2aReport, String> {
    let target = wait_punch(&sock, client, id, PUNCH_WAIT)
        .await
        .ok_or_else(|| {
            format!(
                "no punch from {client} within {} s: the client's reflector socket could not reach \
             the far end's sender port {port}/udp",
                PUNCH_WAIT.as_secs()
            )
        })?;
    drop(sock);
    let _ = state.send(SenderState::Running);
    let pace = match req.interval_ns {
        Some(ns) if ns > 0 => Pace::Interval(Duration::from_nanos(ns)),
        _ => Pace::Max {
            window: FLOOD_WINDOW,
        },
    };
    let limit = match (req.count, req.duration_ms) {
        (Some(c), _) => Limit::Count(u32::try_from(c).unwrap_or(u32::MAX - 1)),
        (None, Some(ms)) => Limit::Duration(Duration::from_millis(ms)),
        (None, None) => Limit::Count(100),
    };
    let mut opts = A2aOptions::builder(target)
        .local_port(port)
        .pace(pace)
        .limit(limit)
        .size(req.size as usize)
        .dscp(req.dscp)
        .ssid(req.ssid)
        .stamp_key(key)
        .wait(SENDER_WAIT);
    if let Some(clock) = req.clock.as_ref().and_then(|c| c.to_info().ok()) {
        opts = opts.peer_clock(clock);
    }
    let opts = opts.build().map_err(|e| e.to_string())?;
    run_test(opts)
        .await
        .map(|o| o.report)
        .map_err(|e| e.to_string())
}
