//! The TCP test server on 49153/tcp: accepts, reads each connection's request, admits it
//! and serves it (connect probes closed quietly, sinks counted, sources fed, control
//! connections answered with the server's results).

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use super::stream::{BUF_LEN, read_tcp_info, receive, send_until};
use crate::io::{IoError, SocketOptions, tcp_listener};
use crate::tcp::request;
use crate::tcp::{
    Admission, ByteCounter, CodecError, GRACE, Mode, REQUEST_LEN, Refusal, Reply, Request,
    ServerResults, StreamEnd,
};

/// How long a new connection may take to send its request before it counts as a connect
/// probe that sent nothing.
pub const REQUEST_WAIT: Duration = Duration::from_secs(5);

/// Settings of [`TcpServer`].
pub struct TcpServerConfig {
    /// Addresses to listen on (`[::]` with `IPV6_V6ONLY` off is dual-stack).
    pub listen: Vec<SocketAddr>,
    /// Who may run what.
    pub admission: Arc<dyn Admission>,
}

/// What the server did, for `probe serve --json` (`tcp`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TcpServerCounters {
    /// Connections accepted.
    pub connections: u64,
    /// Connect probes (including those that sent nothing).
    pub connect_probes: u64,
    /// Throughput tests admitted.
    pub tests: u64,
    /// Data connections served.
    pub streams: u64,
    /// Requests refused (busy, limits, unknown test, cookie).
    pub refused: u64,
    /// Connections whose first bytes were not a request.
    pub malformed: u64,
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    connect_probes: AtomicU64,
    tests: AtomicU64,
    streams: AtomicU64,
    refused: AtomicU64,
    malformed: AtomicU64,
}

impl Counters {
    fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> TcpServerCounters {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TcpServerCounters {
            connections: g(&self.connections),
            connect_probes: g(&self.connect_probes),
            tests: g(&self.tests),
            streams: g(&self.streams),
            refused: g(&self.refused),
            malformed: g(&self.malformed),
        }
    }
}

/// Results of the tests in progress, by test id.
#[derive(Default)]
struct Tests {
    map: Mutex<HashMap<u64, ServerResults>>,
    changed: Notify,
}

impl Tests {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, ServerResults>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn record(&self, test_id: u64, mode: Mode, end: StreamEnd) {
        let mut m = self.lock();
        if let Some(r) = m.get_mut(&test_id) {
            match mode {
                Mode::Sink => r.sink.push(end),
                _ => r.source.push(end),
            }
        }
        drop(m);
        self.changed.notify_waiters();
    }

    fn done(&self, test_id: u64, streams: usize) -> bool {
        self.lock()
            .get(&test_id)
            .is_none_or(|r| r.sink.len() + r.source.len() >= streams)
    }
}

struct Shared {
    admission: Arc<dyn Admission>,
    counters: Counters,
    tests: Tests,
}

/// The TCP test server.
pub struct TcpServer {
    listeners: Vec<TcpListener>,
    shared: Arc<Shared>,
}

impl TcpServer {
    /// Binds every `listen` address (needs a tokio runtime).
    pub fn bind(config: TcpServerConfig) -> Result<TcpServer, IoError> {
        let mut listeners = Vec::new();
        for addr in &config.listen {
            let opts = SocketOptions {
                reuse_addr: true,
                v6_only: addr.is_ipv6().then_some(false),
                ..SocketOptions::default()
            };
            let l = tcp_listener(*addr, &opts, 1024)?;
            let l = TcpListener::from_std(l).map_err(|source| IoError::Socket {
                what: "tokio TCP listener",
                source,
            })?;
            listeners.push(l);
        }
        Ok(TcpServer {
            listeners,
            shared: Arc::new(Shared {
                admission: config.admission,
                counters: Counters::default(),
                tests: Tests::default(),
            }),
        })
    }

    /// The bound addresses.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Serves until `stop` completes; returns the counters.
    pub async fn run(self, stop: impl Future<Output = ()>) -> TcpServerCounters {
        let mut accepts = tokio::task::JoinSet::new();
        for l in self.listeners {
            let shared = self.shared.clone();
            accepts.spawn(accept_loop(l, shared));
        }
        stop.await;
        accepts.abort_all();
        self.shared.counters.snapshot()
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                Counters::bump(&shared.counters.connections);
                tokio::spawn(serve_connection(stream, peer, shared.clone()));
            }
            Err(e) => {
                // Out of descriptors or a connection reset before accept: wait, go on.
                tracing::debug!("tcp accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Reads the request: `None` when the peer sent nothing (a connect probe) or closed early.
async fn read_request(stream: &mut TcpStream) -> Option<Result<Request, CodecError>> {
    let mut buf = [0u8; REQUEST_LEN];
    let mut got = 0;
    let deadline = tokio::time::Instant::now() + REQUEST_WAIT;
    while got < REQUEST_LEN {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf[got..])).await {
            Ok(Ok(0)) | Err(_) if got == 0 => return None,
            Ok(Ok(n)) if n > 0 => got += n,
            _ => break,
        }
        if request::hopeless(&buf[..got]) {
            break;
        }
    }
    Some(Request::parse(&buf[..got]))
}

async fn serve_connection(mut stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let c = &shared.counters;
    let request = match read_request(&mut stream).await {
        None => {
            Counters::bump(&c.connect_probes);
            return;
        }
        Some(Err(e)) => {
            Counters::bump(&c.malformed);
            tracing::debug!("tcp {peer}: {e}");
            let refusal = match e {
                CodecError::Version { .. } => Refusal::Version {
                    server: crate::tcp::VERSION,
                },
                _ => Refusal::Malformed,
            };
            let _ = stream.write_all(&Reply(Err(refusal)).emit()).await;
            return;
        }
        Some(Ok(r)) => r,
    };
    if let Err(refusal) = shared.admission.admit(&request, peer) {
        Counters::bump(&c.refused);
        tracing::info!("tcp {peer}: {} refused: {refusal}", request.mode);
        let _ = stream.write_all(&Reply(Err(refusal)).emit()).await;
        return;
    }
    if request.mode == Mode::Control {
        // Registered before the reply, so no data stream of the test can end unrecorded.
        shared
            .tests
            .lock()
            .insert(request.test_id, ServerResults::default());
    }
    if stream.write_all(&Reply(Ok(())).emit()).await.is_err() {
        if request.mode == Mode::Control {
            shared.admission.finished(request.test_id);
            shared.tests.lock().remove(&request.test_id);
        }
        return;
    }
    match request.mode {
        Mode::Connect => {
            Counters::bump(&c.connect_probes);
            let mut sink = [0u8; 64];
            let _ = tokio::time::timeout(REQUEST_WAIT, stream.read(&mut sink)).await;
        }
        Mode::Control => {
            Counters::bump(&c.tests);
            control(stream, &request, &shared).await;
            shared.admission.finished(request.test_id);
            shared.tests.lock().remove(&request.test_id);
        }
        Mode::Sink => {
            Counters::bump(&c.streams);
            let limit = request.duration + GRACE;
            let mut buf = vec![0u8; BUF_LEN];
            let counter = receive(&mut stream, &mut buf, request.interval, limit).await;
            let end = StreamEnd::new(request.stream, &counter, None);
            shared.tests.record(request.test_id, Mode::Sink, end);
        }
        Mode::Source => {
            Counters::bump(&c.streams);
            let buf = vec![0u8; BUF_LEN];
            let mut counter = ByteCounter::new(request.interval);
            send_until(
                &mut stream,
                &buf,
                Instant::now(),
                request.duration,
                &mut counter,
            )
            .await;
            let info = read_tcp_info(&stream);
            shared.tests.record(
                request.test_id,
                Mode::Source,
                StreamEnd::new(request.stream, &counter, info),
            );
        }
    }
}

/// The control connection: waits until every data stream reported (or the test's time is
/// up, or the client went away), then sends the results.
async fn control(mut stream: TcpStream, request: &Request, shared: &Shared) {
    let deadline = tokio::time::Instant::now() + request.duration + GRACE * 2;
    let streams = usize::from(request.streams);
    let mut probe = [0u8; 16];
    loop {
        let changed = shared.tests.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if shared.tests.done(request.test_id, streams) {
            break;
        }
        tokio::select! {
            () = &mut changed => {}
            () = tokio::time::sleep_until(deadline) => break,
            r = stream.read(&mut probe) => {
                // The client closed or reset its control connection: the test is over.
                if matches!(r, Ok(0) | Err(_)) {
                    return;
                }
            }
        }
    }
    let results = shared
        .tests
        .lock()
        .get(&request.test_id)
        .cloned()
        .unwrap_or_default();
    let _ = stream.write_all(&results.encode()).await;
    let _ = stream.shutdown().await;
}
