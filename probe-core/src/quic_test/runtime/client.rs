//! The client of the QUIC test: N handshakes, the datagram echo test, stream throughput each
//! way, each on a connection of its own under the test ALPN, for a session the control plane
//! granted.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::path_report;
use super::transfer::{count_until, send_until};
use crate::a2a::Direction;
use crate::control::Fingerprint;
use crate::control::runtime::tls::quic_test_client_config;
use crate::quic_test::datagram::{MAX_COUNT, MIN_SIZE, RttAccounting};
use crate::quic_test::open::{FarEndView, Mode, OpenAnswer, OpenRequest};
use crate::quic_test::report::{QuicDirectionReport, QuicReport, QuicThroughputReport, regroup};
use crate::stats::Distribution;

/// The TLS server name sent (identities are pinned by key, not by name).
const SERVER_NAME: &str = "probe";
/// How long, beyond the transfer, the client waits for the far end's view.
const VIEW_PATIENCE: Duration = Duration::from_secs(10);

/// The datagram echo test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RttPlan {
    /// Datagrams to send (1 to 10 000 000).
    pub count: u64,
    /// Time between datagrams.
    pub interval: Duration,
    /// Datagram payload size, bytes (at least 20, at most what the path carries).
    pub size: usize,
    /// How long to wait for late echoes after the last datagram.
    pub wait: Duration,
}

/// The stream throughput test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThroughputPlan {
    /// `to` (upload), `from` (download: the far end sends), or both at once (two streams on
    /// one connection, each counted on its own).
    pub direction: Direction,
    /// How long each direction sends.
    pub duration: Duration,
    /// Width of the reported intervals.
    pub interval: Duration,
}

/// A QUIC test toward a responder whose control plane granted `session`.
#[derive(Clone, Debug)]
pub struct QuicTestOptions {
    /// The responder's control address (its quinn endpoint, 49152/udp).
    pub server: SocketAddr,
    /// The responder's identity, as the control connection verified it.
    pub fingerprint: Fingerprint,
    /// The session granted on the control connection (kind `quic_rtt` or `quic_throughput`).
    pub session: u64,
    /// Handshakes to time (sequential).
    pub handshakes: u32,
    /// The datagram echo test, if any.
    pub rtt: Option<RttPlan>,
    /// The throughput test, if any.
    pub throughput: Option<ThroughputPlan>,
    /// How long to wait for each handshake and answer.
    pub timeout: Duration,
}

/// Why a QUIC test could not run.
#[derive(Debug, thiserror::Error)]
pub enum QuicTestError {
    /// The local endpoint or TLS configuration cannot be set up.
    #[error("cannot set up the QUIC test: {0}")]
    Setup(String),
    /// The responder refused the test connection.
    #[error("the responder refused the QUIC test: {0}")]
    Refused(String),
    /// A connection failed.
    #[error("QUIC test connection to {server} failed ({what}): {reason}")]
    Connection {
        /// The responder.
        server: SocketAddr,
        /// What was under way.
        what: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// The datagram size cannot be carried.
    #[error(
        "--size {size} does not fit a QUIC datagram on this path: use {MIN_SIZE} to {max} bytes"
    )]
    DatagramSize {
        /// The size asked.
        size: usize,
        /// The largest datagram the connection carries now.
        max: usize,
    },
    /// The responder does not take datagrams.
    #[error("the responder does not accept QUIC datagrams (RFC 9221)")]
    NoDatagrams,
}

/// Runs the handshakes, then the datagram test, then the throughput test, as `opts` asks.
/// A refusal of the session fails the whole test; a connection lost midway keeps what was
/// measured, with the cause in [`QuicReport::error`].
pub async fn run_quic_test(opts: &QuicTestOptions) -> Result<QuicReport, QuicTestError> {
    if let Some(p) = &opts.rtt
        && (p.size < MIN_SIZE || !(1..=MAX_COUNT).contains(&p.count))
    {
        return Err(QuicTestError::Setup(format!(
            "a datagram test needs a size of at least {MIN_SIZE} bytes and 1 to {MAX_COUNT} \
             datagrams"
        )));
    }
    let client = Client::new(opts)?;
    let mut report = QuicReport::default();
    let mut handshakes = Distribution::new();
    for _ in 0..opts.handshakes {
        report.handshakes += 1;
        match client.handshake().await {
            Ok(ns) => {
                handshakes.record(i64::try_from(ns).unwrap_or(i64::MAX));
                report.handshakes_ok += 1;
            }
            Err(e @ QuicTestError::Refused(_)) => return Err(e),
            Err(e) => {
                report.handshake_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    report.handshake_ms = handshakes.summary_ms();
    if let Some(plan) = &opts.rtt {
        client.echo_test(plan, &mut report).await?;
    }
    if let Some(plan) = &opts.throughput {
        client.throughput(plan, &mut report).await?;
    }
    client.endpoint.close(0_u32.into(), b"done");
    let _ = tokio::time::timeout(Duration::from_secs(1), client.endpoint.wait_idle()).await;
    Ok(report)
}

struct Client<'a> {
    opts: &'a QuicTestOptions,
    endpoint: quinn::Endpoint,
    config: quinn::ClientConfig,
}

impl<'a> Client<'a> {
    fn new(opts: &'a QuicTestOptions) -> Result<Self, QuicTestError> {
        let config = quic_test_client_config(opts.fingerprint)
            .map_err(|e| QuicTestError::Setup(e.to_string()))?;
        let local = match opts.server.ip() {
            IpAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            IpAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
        };
        let endpoint = quinn::Endpoint::client(local)
            .map_err(|e| QuicTestError::Setup(format!("cannot bind {local}/udp: {e}")))?;
        Ok(Client {
            opts,
            endpoint,
            config,
        })
    }

    fn failed(&self, what: &'static str, reason: impl std::fmt::Display) -> QuicTestError {
        QuicTestError::Connection {
            server: self.opts.server,
            what,
            reason: reason.to_string(),
        }
    }

    /// A new connection; the time its handshake took, ns.
    async fn connect(&self) -> Result<(quinn::Connection, u64), QuicTestError> {
        let t0 = Instant::now();
        let connecting = self
            .endpoint
            .connect_with(self.config.clone(), self.opts.server, SERVER_NAME)
            .map_err(|e| self.failed("connect", e))?;
        let conn = tokio::time::timeout(self.opts.timeout, connecting)
            .await
            .map_err(|_| self.failed("handshake", "no answer in time"))?
            .map_err(|e| self.failed("handshake", e))?;
        let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
        Ok((conn, ns))
    }

    /// Opens the connection's first stream with the open request; the stream once accepted.
    async fn open(
        &self,
        conn: &quinn::Connection,
        mode: Mode,
        duration: Duration,
    ) -> Result<(quinn::SendStream, quinn::RecvStream), QuicTestError> {
        let work = async {
            let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
            let req = OpenRequest {
                session: self.opts.session,
                mode,
                duration_ms: u32::try_from(duration.as_millis()).unwrap_or(u32::MAX),
            };
            send.write_all(&req.encode())
                .await
                .map_err(|e| e.to_string())?;
            let mut h = [0; 3];
            recv.read_exact(&mut h).await.map_err(|e| e.to_string())?;
            let (accepted, len) =
                OpenAnswer::header(h).ok_or("the responder's answer is malformed")?;
            let mut reason = vec![0; len];
            recv.read_exact(&mut reason)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((send, recv, OpenAnswer::from_parts(accepted, &reason)))
        };
        match tokio::time::timeout(self.opts.timeout, work).await {
            Ok(Ok((send, recv, OpenAnswer::Accepted))) => Ok((send, recv)),
            Ok(Ok((_, _, OpenAnswer::Refused(why)))) => Err(QuicTestError::Refused(why)),
            Ok(Err(e)) => Err(self.failed("open", e)),
            Err(_) => Err(self.failed("open", "no answer in time")),
        }
    }

    /// One handshake, accepted by the responder; its time, ns.
    async fn handshake(&self) -> Result<u64, QuicTestError> {
        let (conn, ns) = self.connect().await?;
        let opened = self.open(&conn, Mode::Handshake, Duration::ZERO).await;
        conn.close(0_u32.into(), b"done");
        opened.map(|_| ns)
    }

    async fn echo_test(
        &self,
        plan: &RttPlan,
        report: &mut QuicReport,
    ) -> Result<(), QuicTestError> {
        let (conn, _) = self.connect().await?;
        let (_send, _recv) = self.open(&conn, Mode::Echo, Duration::ZERO).await?;
        let max = conn.max_datagram_size().ok_or(QuicTestError::NoDatagrams)?;
        if plan.size > max {
            conn.close(0_u32.into(), b"done");
            return Err(QuicTestError::DatagramSize {
                size: plan.size,
                max,
            });
        }
        let mut acc = RttAccounting::new(plan.size);
        let mut buf = vec![0; plan.size];
        let start = Instant::now();
        let ns = |t: Instant| u64::try_from((t - start).as_nanos()).unwrap_or(u64::MAX);
        let mut tick = tokio::time::interval(plan.interval.max(Duration::from_nanos(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut deadline: Option<Instant> = None;
        loop {
            let done_waiting = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                due = tick.tick(), if acc.sent() < plan.count => {
                    // The send time is taken now, just before the datagram is handed to
                    // quinn: the tick's own instant is when it was due, and tokio's timer
                    // wakes up to a millisecond after that.
                    let now = Instant::now();
                    tracing::trace!(
                        seq = acc.sent(),
                        late_us = (now - due).as_micros(),
                        "QUIC echo datagram sent"
                    );
                    if acc.next(ns(now), &mut buf).is_some()
                        && let Err(e) = conn.send_datagram(Bytes::copy_from_slice(&buf))
                    {
                        report.error = Some(format!("datagram test: {e}"));
                        break;
                    }
                    if acc.sent() == plan.count {
                        deadline = Some(Instant::now() + plan.wait);
                    }
                }
                d = conn.read_datagram() => match d {
                    Ok(bytes) => {
                        let outcome = acc.on_echo(&bytes, ns(Instant::now()));
                        tracing::trace!(?outcome, "QUIC echo datagram back");
                        if acc.received() == plan.count {
                            break;
                        }
                    }
                    Err(e) => {
                        report.error = Some(format!("datagram test: the connection ended: {e}"));
                        break;
                    }
                },
                () = done_waiting => break,
            }
        }
        report.datagrams = Some(acc.counts());
        report.rtt_ms = Some(acc.rtt().summary_ms());
        report.path = Some(path_report(&conn));
        conn.close(0_u32.into(), b"done");
        Ok(())
    }

    async fn throughput(
        &self,
        plan: &ThroughputPlan,
        report: &mut QuicReport,
    ) -> Result<(), QuicTestError> {
        let mut out = QuicThroughputReport {
            direction: Some(plan.direction),
            duration_s: plan.duration.as_secs_f64(),
            interval_s: plan.interval.as_secs_f64(),
            to: None,
            from: None,
        };
        let mode = match plan.direction {
            Direction::To => Mode::Upload,
            Direction::From => Mode::Download,
            Direction::Both => Mode::Both,
        };
        match self.transfer(plan, mode).await {
            Ok((to, from)) => (out.to, out.from) = (to, from),
            Err(e @ QuicTestError::Refused(_)) => return Err(e),
            Err(e) => report.error = Some(e.to_string()),
        }
        report.throughput = Some(out);
        Ok(())
    }

    /// The direction(s) of `mode` on a connection of their own, each on a data stream of its
    /// own, at once: the `to` and `from` reports.
    async fn transfer(
        &self,
        plan: &ThroughputPlan,
        mode: Mode,
    ) -> Result<(Option<QuicDirectionReport>, Option<QuicDirectionReport>), QuicTestError> {
        let (conn, _) = self.connect().await?;
        let (_send, mut results) = self.open(&conn, mode, plan.duration).await?;
        let data_stream = async || {
            conn.open_bi()
                .await
                .map_err(|e| self.failed("data stream", e))
        };
        // The upload's stream is opened first: the responder tells them apart by their order.
        let mut upload = None;
        if mode.uploads() {
            upload = Some(data_stream().await?);
        }
        let mut download = None;
        if mode.downloads() {
            let (mut tx, rx) = data_stream().await?;
            tx.write_all(&[1])
                .await
                .map_err(|e| self.failed("data stream", e))?;
            download = Some((tx, rx));
        }
        let patience = plan.duration + VIEW_PATIENCE;
        let sending = async {
            match &mut upload {
                Some((tx, _)) => send_until(tx, Instant::now() + plan.duration)
                    .await
                    .map(Some)
                    .map_err(|e| self.failed("upload", e)),
                None => Ok(None),
            }
        };
        let counting = async {
            match &mut download {
                Some((_, rx)) => count_until(rx, Instant::now() + patience, plan.interval)
                    .await
                    .map(Some)
                    .map_err(|e| self.failed("download", e)),
                None => Ok(None),
            }
        };
        let (sent, counted) = tokio::join!(sending, counting);
        let (sent, counted) = (sent?, counted?);
        let mut to = None;
        if sent.is_some() {
            let view = read_view(&mut results, patience)
                .await
                .map_err(|e| self.failed("the far end's view", e))?;
            let (slices, slice_ns) = regroup(&view.slices, view.slice_ns, plan.interval);
            to = Some(QuicDirectionReport::new(
                view.bytes,
                view.elapsed_ns,
                slice_ns,
                &slices,
                path_report(&conn),
            ));
        }
        let mut from = None;
        if let Some(counter) = counted {
            let view = read_view(&mut results, patience)
                .await
                .map_err(|e| self.failed("the far end's view", e))?;
            from = Some(QuicDirectionReport::new(
                counter.total(),
                u64::try_from(counter.elapsed().as_nanos()).unwrap_or(u64::MAX),
                u64::try_from(counter.every().as_nanos()).unwrap_or(u64::MAX),
                counter.slices(),
                view.path,
            ));
        }
        conn.close(0_u32.into(), b"done");
        Ok((to, from))
    }
}

/// Reads the far end's view frame from the open stream.
async fn read_view(recv: &mut quinn::RecvStream, within: Duration) -> Result<FarEndView, String> {
    let work = async {
        let mut h = [0; 4];
        recv.read_exact(&mut h).await.map_err(|e| e.to_string())?;
        let len = FarEndView::body_len(h).map_err(|e| e.to_string())?;
        let mut body = vec![0; len];
        recv.read_exact(&mut body)
            .await
            .map_err(|e| e.to_string())?;
        FarEndView::decode(&body).map_err(|e| e.to_string())
    };
    tokio::time::timeout(within, work)
        .await
        .map_err(|_| "no view in time".to_string())?
}
