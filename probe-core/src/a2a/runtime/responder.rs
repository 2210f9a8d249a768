//! The STAMP responder: one thread per listening socket, each with its own sans-IO
//! [`Reflector`], batched receive and send, kernel receive timestamps.
//!
//! The sockets are [`PolledSocket`]s, outside the tokio runtime: registered with epoll,
//! every datagram queued and every reply freed would wake a runtime thread for readiness
//! nobody awaits (under a flood that was the largest cost in the profile, on both ends).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{A2aError, ConfigError};
use crate::a2a::throughput::{Counted, SinkCache, is_throughput};
use crate::a2a::{
    Admission, Datagram, Reflector, ReflectorConfig, ReflectorCounters, StampKey, StampKeyring,
};
use crate::io::{PolledSocket, RecvBatch, SendBatch, SocketOptions};
use crate::time::Nanos;

/// Datagrams taken per `recvmmsg` and sent per `sendmmsg`.
const BATCH: usize = 64;
/// Largest datagram the responder takes whole (a UDP payload over IPv6 jumbograms aside).
const SLOT: usize = 65_536;
/// How long the socket thread sleeps in `poll` before checking for shutdown.
const POLL_MS: u16 = 100;
/// How long one reply batch may wait for send-buffer space before its rest is dropped.
const SEND_PATIENCE: Duration = Duration::from_millis(100);
/// How often idle sessions are swept.
const SWEEP: Duration = Duration::from_secs(1);

/// Settings of a [`Responder`]: where it listens and how each socket's reflector answers,
/// made with the checking [`ResponderConfig::new`].
///
/// ```
/// use probe_core::a2a::ReflectorConfig;
/// use probe_core::a2a::runtime::{ConfigError, ResponderConfig};
///
/// let listen = "127.0.0.1:0".parse()?;
/// let cfg = ResponderConfig::new([listen], ReflectorConfig::default())?;
/// assert_eq!(cfg.listen(), &[listen]);
/// let none = ResponderConfig::new([], ReflectorConfig::default());
/// assert_eq!(none.unwrap_err(), ConfigError::NoListenAddress);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct ResponderConfig {
    listen: Vec<SocketAddr>,
    reflector: ReflectorConfig,
    coalesce: Duration,
}

impl ResponderConfig {
    /// Listens on every address of `listen` (at least one; an IPv6 wildcard `[::]:P` listens
    /// dual-stack), each socket with a reflector of `reflector`'s settings.
    pub fn new(
        listen: impl IntoIterator<Item = SocketAddr>,
        reflector: ReflectorConfig,
    ) -> Result<Self, ConfigError> {
        let listen: Vec<SocketAddr> = listen.into_iter().collect();
        if listen.is_empty() {
            return Err(ConfigError::NoListenAddress);
        }
        Ok(ResponderConfig {
            listen,
            reflector,
            coalesce: Duration::ZERO,
        })
    }

    /// Lets requests gather for up to `hold` before they are answered, once requests are
    /// coming (zero, the default, answers each at once). A socket thread that has answered
    /// a partial batch sleeps `hold` before it reads again, instead of waking for every
    /// request: at thousands of requests a second, one wake-up and one `sendmmsg` per
    /// `hold` rather than per request. A flood (full batches) is never held. The hold adds
    /// to the reflector's turnaround (T3 - T2), which STAMP takes out of the round trip and
    /// the one-way delays; only a user-space round trip measured by the sender grows by it.
    #[must_use]
    pub fn with_coalesce(mut self, hold: Duration) -> Self {
        self.coalesce = hold;
        self
    }

    /// The socket addresses to listen on.
    pub fn listen(&self) -> &[SocketAddr] {
        &self.listen
    }

    /// The settings of each socket's reflector.
    pub fn reflector(&self) -> &ReflectorConfig {
        &self.reflector
    }

    /// How long requests may gather before they are answered (see
    /// [`ResponderConfig::with_coalesce`]).
    pub fn coalesce(&self) -> Duration {
        self.coalesce
    }
}

/// A bound STAMP responder; [`Responder::run`] serves until shut down.
pub struct Responder {
    sockets: Vec<PolledSocket>,
    config: ReflectorConfig,
    coalesce: Duration,
    admission: Option<Arc<Admission>>,
    keys: StampKeyring,
}

impl Responder {
    /// Binds every listen address.
    pub fn bind(cfg: &ResponderConfig) -> Result<Self, A2aError> {
        let mut sockets = Vec::with_capacity(cfg.listen.len());
        for &addr in &cfg.listen {
            let mut opts = SocketOptions {
                reuse_addr: true,
                recv_ttl: true,
                pktinfo: true,
                recv_buffer: Some(8 << 20),
                send_buffer: Some(8 << 20),
                ..SocketOptions::default()
            };
            if addr.is_ipv6() && addr.ip().is_unspecified() {
                opts.v6_only = Some(false);
            }
            sockets.push(PolledSocket::bind_udp(addr, &opts)?);
        }
        Ok(Responder {
            sockets,
            config: cfg.reflector,
            coalesce: cfg.coalesce,
            admission: None,
            keys: StampKeyring::new(),
        })
    }

    /// Attaches the registry of sessions negotiated over the control plane to every socket's
    /// reflector (per-session counters; with a `required` registry, only those sessions are
    /// answered).
    #[must_use]
    pub fn with_admission(mut self, admission: Arc<Admission>) -> Self {
        self.admission = Some(admission);
        self
    }

    /// Sends `payload` to `dst` from the first socket: a near end behind NAT opens the
    /// mapping a far-end Session-Sender then sends through.
    pub fn punch(&self, dst: SocketAddr, payload: &[u8]) -> std::io::Result<usize> {
        let sock = self
            .sockets
            .first()
            .ok_or_else(|| std::io::Error::other("the responder has no socket"))?;
        let dst = match dst {
            SocketAddr::V4(v4) if sock.is_v6() => {
                SocketAddr::new(std::net::IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
            }
            other => other,
        };
        sock.socket().send_to(payload, &dst.into())
    }

    /// Authenticates STAMP senders with `keys` (authenticated mode of RFC 8762, see
    /// [`StampKeyring`]); keep a clone to register session keys while the responder runs.
    pub fn set_stamp_keys(&mut self, keys: StampKeyring) {
        self.keys = keys;
    }

    /// The keyring the responder authenticates with (shared: keys registered on it apply to
    /// every socket at once).
    pub fn stamp_keys(&self) -> StampKeyring {
        self.keys.clone()
    }

    /// The bound addresses (ports resolved).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.sockets
            .iter()
            .filter_map(PolledSocket::local_addr)
            .collect()
    }

    /// Whether receive timestamps come from the kernel on every socket.
    pub fn kernel_timestamps(&self) -> bool {
        self.sockets
            .iter()
            .all(|s| s.timestamp_mode().rx_source() == crate::report::TimestampSource::Kernel)
    }

    /// Serves until `shutdown` completes, then returns the summed counters.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()>,
    ) -> Result<ReflectorCounters, A2aError> {
        let stop = Arc::new(AtomicBool::new(false));
        // Dropping this future before `shutdown` completes (an aborted task, a runtime shutting
        // down) stops the socket threads too, instead of leaving them serving forever.
        let _stop_on_drop = StopOnDrop(Arc::clone(&stop));
        let mut tasks = Vec::with_capacity(self.sockets.len());
        for sock in self.sockets {
            let mut reflector = Reflector::new(self.config);
            if let Some(a) = &self.admission {
                reflector.set_admission(Arc::clone(a));
            }
            reflector.set_keyring(self.keys.clone());
            let stop = stop.clone();
            let admission = self.admission.clone();
            let coalesce = self.coalesce;
            tasks.push(tokio::task::spawn_blocking(move || {
                serve_socket(&sock, reflector, admission.as_deref(), &stop, coalesce)
            }));
        }
        shutdown.await;
        stop.store(true, Ordering::Relaxed);
        let mut total = ReflectorCounters::default();
        let mut first_err = None;
        for t in tasks {
            match t.await {
                Ok(c) => total.merge(&c),
                Err(e) => {
                    first_err.get_or_insert(A2aError::Task(e));
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(total),
        }
    }
}

/// Sets the flag the socket threads poll when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// One socket's loop on a thread of its own: non-blocking `recvmmsg` while datagrams are
/// queued, `poll` when none is (no runtime wake-up per batch), replies by `sendmmsg`; after
/// a partial batch, a sleep of `coalesce` (when not zero) lets the next requests gather.
/// Datagrams of UDP throughput tests are counted for their negotiated session in
/// `admission`, never reflected.
fn serve_socket(
    sock: &PolledSocket,
    mut reflector: Reflector,
    admission: Option<&Admission>,
    stop: &AtomicBool,
    coalesce: Duration,
) -> ReflectorCounters {
    let mut sinks = SinkCache::default();
    let (mut tp_counted, mut tp_dropped) = (0u64, 0u64);
    let local = sock
        .local_addr()
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let mut rx = RecvBatch::new(BATCH, SLOT);
    let mut tx = SendBatch::new(BATCH, SLOT);
    // Replies to one flood are runs of equal datagrams to one peer: one buffer each run
    // through the send path instead of one per reply.
    tx.set_segmentation(true);
    let mut last_sweep = Nanos::now_realtime();
    let mut truncated = 0u64;
    // The key each queued reply was sealed with, to seal it again after the restamp.
    let mut reply_keys: Vec<Option<StampKey>> = Vec::with_capacity(BATCH);
    while !stop.load(Ordering::Relaxed) {
        let n = match sock.try_recv_batch(&mut rx) {
            Ok(n) if n > 0 => n,
            Ok(_) => {
                sock.wait_readable(POLL_MS);
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                sock.wait_readable(POLL_MS);
                let now = Nanos::now_realtime();
                if now.since(last_sweep) > SWEEP.as_nanos() as i64 {
                    reflector.expire(now);
                    sinks.clear();
                    last_sweep = now;
                }
                continue;
            }
            Err(e) => {
                // A daemon never dies of one bad receive: log and go on.
                tracing::warn!("receive on {local} failed: {e}");
                sock.wait_readable(POLL_MS);
                continue;
            }
        };
        let now = Nanos::now_realtime();
        for (bytes, meta) in rx.iter().take(n) {
            let Some(src) = meta.source else { continue };
            if meta.truncated {
                truncated += 1;
                continue;
            }
            if is_throughput(bytes) {
                match sinks.count(admission, bytes, src.ip(), meta.time) {
                    Counted::Counted => tp_counted += 1,
                    Counted::Dropped => tp_dropped += 1,
                }
                continue;
            }
            let d = Datagram {
                bytes,
                src,
                rx: meta.time,
                ttl: meta.ttl,
            };
            if tx.push_with(src, meta.reply_options(), |out| {
                reflector.reflect(&d, now, out).ok()
            }) {
                reply_keys.push(reflector.reply_key().cloned());
            }
        }
        if !tx.is_empty() {
            // t3 as late as possible: building the batch is not reverse-path delay.
            let t3 = Nanos::now_realtime();
            for (i, key) in reply_keys.iter().enumerate().take(tx.len()) {
                if let Some(reply) = tx.payload_mut(i) {
                    Reflector::restamp_authenticated(reply, t3, key.as_ref());
                }
            }
            let report = sock.send_batch(&mut tx, SEND_PATIENCE);
            if let Some(e) = report.first_error {
                tracing::debug!("{} replies not sent from {local}: {e}", report.failed);
            }
            tx.clear();
            reply_keys.clear();
        }
        if now.since(last_sweep) > SWEEP.as_nanos() as i64 {
            reflector.expire(now);
            sinks.clear();
            last_sweep = now;
        }
        if n < BATCH && !coalesce.is_zero() {
            std::thread::sleep(coalesce);
        }
    }
    let mut c = reflector.counters();
    c.throughput_counted = tp_counted;
    c.throughput_dropped = tp_dropped;
    c.received += truncated;
    c.junk += truncated;
    c
}
