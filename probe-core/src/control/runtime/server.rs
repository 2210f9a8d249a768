//! The responder's control listener: accepts QUIC connections, applies the allow list and a
//! connection limit, and answers each connection's hello. A bad frame or a failed handshake
//! ends that connection only, and is counted.

use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::task::JoinSet;

use super::error::ControlError;
use super::frame_io::{ReadFrameError, read_frame, write_message};
use super::mesh_links::MeshLinks;
use super::tcp_gate::ControlTcpAdmission;
use super::test_service::{Tests, TestsConfig};
use super::tls;
use crate::a2a::AllowList;
use crate::control::auth::Token;
use crate::control::handshake::{HelloOutcome, ServerFacts, answer_hello, answer_request};
use crate::control::identity::{Fingerprint, Identity};
use crate::control::messages::{ErrorCode, ErrorMessage, Message, PROTOCOL_VERSION, decode_body};
use crate::tcp::Gate;
use crate::time::ClockInfo;

/// How long a client has for the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client has, once connected, to send its hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a refused client has to read the error before the connection is closed.
const LINGER: Duration = Duration::from_secs(2);
/// Application close code: normal end.
const CLOSE_DONE: u32 = 0;
/// Application close code: refused (an error message was sent).
const CLOSE_REFUSED: u32 = 1;

/// What the control listener is configured with.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Addresses to listen on (`[::]:49152` is dual-stack).
    pub listen: Vec<SocketAddr>,
    /// The responder's identity.
    pub identity: Identity,
    /// The token clients must present; `None` admits every client that passes `allow`.
    pub token: Option<Token>,
    /// Source prefixes allowed to connect (open when empty).
    pub allow: AllowList,
    /// The responder's clock facts, sent in every welcome.
    pub clock: ClockInfo,
    /// Most connections open at once; more are refused.
    pub max_connections: usize,
    /// The software name sent in welcomes.
    pub software: String,
}

/// The control listener's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ControlCounters {
    /// Connection attempts seen (before any check).
    pub connections: u64,
    /// Hellos accepted.
    pub welcomed: u64,
    /// Hellos refused for a missing or wrong token.
    pub unauthorized: u64,
    /// Hellos of another protocol version.
    pub version_mismatch: u64,
    /// First frames that were not a readable hello (junk, oversized, wrong message).
    pub malformed: u64,
    /// Connections refused because the source is not in the allow list.
    pub not_allowed: u64,
    /// Connections refused at the connection limit.
    pub busy: u64,
    /// Connections that failed before a hello was read (TLS handshake, timeout, reset).
    pub failed: u64,
    /// Tests granted.
    pub tests_accepted: u64,
    /// Test requests refused (a limit, busy, unsupported).
    pub tests_refused: u64,
    /// Requests naming an unknown or expired session.
    pub bad_session: u64,
    /// QUIC test connections (`probe a2a --proto quic`) accepted for a granted session.
    pub quic_tests: u64,
    /// QUIC test connections refused (no such session, another client, another kind).
    pub quic_refused: u64,
    /// Reverse traces run toward clients.
    pub reverse_traces: u64,
    /// Reverse trace requests refused (a bound, busy) or failed.
    pub reverse_traces_refused: u64,
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    welcomed: AtomicU64,
    unauthorized: AtomicU64,
    version_mismatch: AtomicU64,
    malformed: AtomicU64,
    not_allowed: AtomicU64,
    busy: AtomicU64,
    failed: AtomicU64,
    quic_tests: AtomicU64,
    quic_refused: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> ControlCounters {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ControlCounters {
            connections: g(&self.connections),
            welcomed: g(&self.welcomed),
            unauthorized: g(&self.unauthorized),
            version_mismatch: g(&self.version_mismatch),
            malformed: g(&self.malformed),
            not_allowed: g(&self.not_allowed),
            busy: g(&self.busy),
            failed: g(&self.failed),
            quic_tests: g(&self.quic_tests),
            quic_refused: g(&self.quic_refused),
            ..ControlCounters::default()
        }
    }

    fn count(&self, outcome: HelloOutcome) {
        let c = match outcome {
            HelloOutcome::Welcomed => &self.welcomed,
            HelloOutcome::Unauthorized => &self.unauthorized,
            HelloOutcome::VersionMismatch => &self.version_mismatch,
            HelloOutcome::Malformed => &self.malformed,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

impl Shared {
    fn snapshot(&self) -> ControlCounters {
        let mut c = self.counters.snapshot();
        if let Some(t) = &self.tests {
            let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
            c.tests_accepted = g(&t.counters.accepted);
            c.tests_refused = g(&t.counters.refused);
            c.bad_session = g(&t.counters.bad_session);
            c.reverse_traces = g(&t.traces.done);
            c.reverse_traces_refused = g(&t.traces.refused);
        }
        c
    }
}

struct Shared {
    facts: ServerFacts,
    allow: AllowList,
    max_connections: usize,
    open: AtomicUsize,
    counters: Counters,
    tests: Option<Arc<Tests>>,
    mesh: Option<Arc<MeshLinks>>,
    next_owner: AtomicU64,
}

/// A bound control listener.
pub struct ControlServer {
    endpoints: Vec<quinn::Endpoint>,
    shared: Arc<Shared>,
}

impl ControlServer {
    /// Binds one QUIC endpoint per listen address (`[::]` accepts IPv4 too). Needs a tokio
    /// runtime.
    pub fn bind(config: ServerConfig) -> Result<Self, ControlError> {
        let server_config = tls::server_config(&config.identity)?;
        let runtime = quinn::default_runtime().ok_or_else(|| ControlError::Connection {
            server: config
                .listen
                .first()
                .copied()
                .unwrap_or(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)),
            reason: "no async runtime".into(),
        })?;
        let mut endpoints = Vec::with_capacity(config.listen.len());
        for &addr in &config.listen {
            let socket = udp_socket(addr).map_err(|source| ControlError::Bind { addr, source })?;
            let endpoint = quinn::Endpoint::new(
                quinn::EndpointConfig::default(),
                Some(server_config.clone()),
                socket,
                runtime.clone(),
            )
            .map_err(|source| ControlError::Bind { addr, source })?;
            endpoints.push(endpoint);
        }
        Ok(ControlServer {
            endpoints,
            shared: Arc::new(Shared {
                facts: ServerFacts {
                    fingerprint: config.identity.fingerprint(),
                    clock: config.clock,
                    token: config.token,
                    software: config.software,
                },
                allow: config.allow,
                max_connections: config.max_connections.max(1),
                open: AtomicUsize::new(0),
                counters: Counters::default(),
                tests: None,
                mesh: None,
                next_owner: AtomicU64::new(1),
            }),
        })
    }

    /// Grants test requests (negotiation) with these limits and this STAMP responder's
    /// registry; without it, test requests are refused as unsupported.
    #[must_use]
    pub fn serve_tests(mut self, config: TestsConfig) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.tests = Some(Arc::new(Tests::new(config)));
        }
        self
    }

    /// Lets agents behind NAT join this responder's mesh over their control connections
    /// (`mesh_join`), kept in `links`; without it, joins are refused as unsupported.
    #[must_use]
    pub fn serve_mesh(mut self, links: Arc<MeshLinks>) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.mesh = Some(links);
        }
        self
    }

    /// Negotiated sessions held now.
    pub fn sessions(&self) -> usize {
        self.shared.tests.as_ref().map_or(0, |t| t.sessions())
    }

    /// The TCP test server's admission through this control plane's sessions (see
    /// [`ControlTcpAdmission`]): negotiated TCP throughput tests are admitted by their cookie,
    /// other tests by `gate` (refused with `--require-auth`), and throughput tests of either
    /// kind run one at a time. `None` unless [`ControlServer::serve_tests`] was called first.
    pub fn tcp_admission(&self, gate: Gate) -> Option<Arc<dyn crate::tcp::Admission>> {
        let tests = self.shared.tests.as_ref()?;
        *tests.gate_lock() = Some(gate);
        Some(Arc::new(ControlTcpAdmission {
            tests: Arc::clone(tests),
        }))
    }

    /// The bound addresses.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.endpoints
            .iter()
            .filter_map(|e| e.local_addr().ok())
            .collect()
    }

    /// The identity's fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        self.shared.facts.fingerprint
    }

    /// The counters so far.
    pub fn counters(&self) -> ControlCounters {
        self.shared.snapshot()
    }

    /// Serves until `shutdown` completes; returns the counters.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> ControlCounters {
        let mut loops = JoinSet::new();
        for endpoint in &self.endpoints {
            loops.spawn(accept_loop(endpoint.clone(), Arc::clone(&self.shared)));
        }
        if self.shared.tests.is_some() {
            let shared = Arc::clone(&self.shared);
            loops.spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                loop {
                    tick.tick().await;
                    if let Some(t) = &shared.tests {
                        t.sweep();
                    }
                }
            });
        }
        shutdown.await;
        for endpoint in &self.endpoints {
            endpoint.close(CLOSE_DONE.into(), b"server stopping");
        }
        loops.abort_all();
        while loops.join_next().await.is_some() {}
        self.shared.snapshot()
    }
}

/// A UDP socket for `addr`; an unspecified IPv6 address is made dual-stack.
fn udp_socket(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if let SocketAddr::V6(v6) = addr
        && v6.ip().is_unspecified()
    {
        socket.set_only_v6(false)?;
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

async fn accept_loop(endpoint: quinn::Endpoint, shared: Arc<Shared>) {
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                admit(incoming, &shared, &mut tasks);
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    tasks.abort_all();
}

/// Applies the allow list and the connection limit, then serves the connection in a task.
fn admit(incoming: quinn::Incoming, shared: &Arc<Shared>, tasks: &mut JoinSet<()>) {
    let c = &shared.counters;
    c.connections.fetch_add(1, Ordering::Relaxed);
    let source = incoming.remote_address();
    if !shared.allow.allows(source.ip()) {
        c.not_allowed.fetch_add(1, Ordering::Relaxed);
        tracing::debug!("control: {source} is not in the allow list");
        incoming.refuse();
        return;
    }
    if shared.open.fetch_add(1, Ordering::AcqRel) >= shared.max_connections {
        shared.open.fetch_sub(1, Ordering::AcqRel);
        c.busy.fetch_add(1, Ordering::Relaxed);
        incoming.refuse();
        return;
    }
    let shared = Arc::clone(shared);
    tasks.spawn(async move {
        serve_connection(incoming, &shared).await;
        shared.open.fetch_sub(1, Ordering::AcqRel);
    });
}

async fn serve_connection(incoming: quinn::Incoming, shared: &Shared) {
    let source = incoming.remote_address();
    let failed = || shared.counters.failed.fetch_add(1, Ordering::Relaxed);
    let conn =
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, async { incoming.accept()?.await }).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => {
                tracing::debug!("control: handshake with {source} failed: {e}");
                failed();
                return;
            }
            Err(_) => {
                tracing::debug!("control: handshake with {source} timed out");
                failed();
                return;
            }
        };
    if is_quic_test(&conn) {
        serve_quic_test(conn, shared).await;
        return;
    }
    let Ok(Ok((mut send, mut recv))) = tokio::time::timeout(HELLO_TIMEOUT, conn.accept_bi()).await
    else {
        failed();
        conn.close(CLOSE_REFUSED.into(), b"no hello");
        return;
    };
    let (answer, outcome) = match tokio::time::timeout(HELLO_TIMEOUT, read_frame(&mut recv)).await {
        Ok(Ok(body)) => answer_hello(&body, &shared.facts),
        Ok(Err(ReadFrameError::Frame(e))) => (
            Message::Error(ErrorMessage {
                code: ErrorCode::BadMessage,
                message: e.to_string(),
                version: Some(PROTOCOL_VERSION),
            }),
            HelloOutcome::Malformed,
        ),
        Ok(Err(ReadFrameError::Stream(e))) => {
            tracing::debug!("control: {source} sent no whole hello: {e}");
            shared.counters.malformed.fetch_add(1, Ordering::Relaxed);
            conn.close(CLOSE_REFUSED.into(), b"incomplete hello");
            return;
        }
        Err(_) => {
            failed();
            conn.close(CLOSE_REFUSED.into(), b"no hello");
            return;
        }
    };
    shared.counters.count(outcome);
    tracing::debug!("control: hello from {source}: {outcome:?}");
    if let Err(e) = write_message(&mut send, &answer).await {
        tracing::debug!("control: cannot answer {source}: {e}");
        return;
    }
    let _ = send.finish();
    if outcome == HelloOutcome::Welcomed {
        // The session stays up until the client closes it or it idles out; each further
        // stream carries one request.
        let owner = shared.next_owner.fetch_add(1, Ordering::Relaxed);
        while let Ok((mut send, mut recv)) = conn.accept_bi().await {
            let answer = match read_frame(&mut recv).await {
                Ok(body) => match (&shared.tests, decode_body(&body)) {
                    (Some(tests), Ok(msg)) if Tests::serves(&msg) => {
                        let answer = tests.answer(msg, owner, source.ip()).await;
                        if write_message(&mut send, &answer).await.is_ok() {
                            let _ = send.finish();
                        }
                        continue;
                    }
                    (_, Ok(Message::MeshJoin(join))) => match &shared.mesh {
                        Some(mesh) => mesh.join(owner, join, &conn, source),
                        None => Message::Error(ErrorMessage {
                            code: ErrorCode::Unsupported,
                            message: "this responder takes no mesh members".into(),
                            version: Some(PROTOCOL_VERSION),
                        }),
                    },
                    _ => answer_request(&body),
                },
                Err(ReadFrameError::Frame(e)) => Message::Error(ErrorMessage {
                    code: ErrorCode::BadMessage,
                    message: e.to_string(),
                    version: Some(PROTOCOL_VERSION),
                }),
                Err(ReadFrameError::Stream(_)) => continue,
            };
            if let Message::Error(_) = answer {
                shared.counters.malformed.fetch_add(1, Ordering::Relaxed);
            }
            if write_message(&mut send, &answer).await.is_ok() {
                let _ = send.finish();
            }
        }
        if let Some(tests) = &shared.tests {
            tests.release_owner(owner);
        }
        if let Some(mesh) = &shared.mesh {
            mesh.release_owner(owner);
        }
    } else {
        // Give the client time to read the error, then close.
        let _ = tokio::time::timeout(LINGER, conn.closed()).await;
        conn.close(CLOSE_REFUSED.into(), b"refused");
    }
}

/// Whether the client negotiated the QUIC test's ALPN (not the control protocol's).
fn is_quic_test(conn: &quinn::Connection) -> bool {
    conn.handshake_data()
        .and_then(|h| h.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|h| h.protocol)
        .is_some_and(|p| p == crate::quic_test::ALPN)
}

/// A QUIC test connection: served for a session the control plane granted, else refused
/// and counted.
async fn serve_quic_test(conn: quinn::Connection, shared: &Shared) {
    let source = conn.remote_address();
    let outcome = match &shared.tests {
        Some(tests) => crate::quic_test::runtime::serve_test_connection(conn, tests.as_ref()).await,
        None => {
            conn.close(CLOSE_REFUSED.into(), b"this responder grants no tests");
            Err("this responder grants no tests".into())
        }
    };
    let c = &shared.counters;
    match outcome {
        Ok(()) => c.quic_tests.fetch_add(1, Ordering::Relaxed),
        Err(why) => {
            tracing::info!("control: QUIC test connection from {source} refused: {why}");
            c.quic_refused.fetch_add(1, Ordering::Relaxed)
        }
    };
}
