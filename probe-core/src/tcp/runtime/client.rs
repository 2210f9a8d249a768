//! The client side of the TCP tests: connect latency, and throughput over a control
//! connection plus data connections, every one opened by the client.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::stream::{BUF_LEN, read_tcp_info, receive, send_until};
use crate::a2a::Direction;
use crate::io::{IoError, SocketOptions, tcp_socket};
use crate::report::tcp::{ConnectFailures, TcpConnectReport, TcpThroughputReport};
use crate::stats::Distribution;
use crate::tcp::{
    ByteCounter, CodecError, GRACE, Mode, REPLY_LEN, Refusal, Reply, Request, ResultsError,
    ServerResults, StreamEnd, direction_report,
};

/// Where and how the client connects (shared by both tests).
#[derive(Clone, Debug)]
pub struct TcpClientOptions {
    /// The server.
    pub peer: SocketAddr,
    /// The peer as the user gave it (for reports).
    pub peer_label: String,
    /// Source address to connect from.
    pub source: Option<IpAddr>,
    /// Interface to connect through (`SO_BINDTODEVICE`).
    pub interface: Option<String>,
    /// DSCP of every segment.
    pub dscp: Option<u8>,
    /// `TCP_MAXSEG` before connecting (caps the MSS both ends use).
    pub mss: Option<u32>,
    /// How long a handshake may take.
    pub connect_timeout: Duration,
}

/// The TCP tests' errors.
#[derive(Debug, thiserror::Error)]
pub enum TcpTestError {
    /// The socket could not be made.
    #[error(transparent)]
    Socket(#[from] IoError),
    /// `--mss` was refused by the kernel.
    #[error("cannot set the MSS to {mss} bytes (TCP_MAXSEG): {source}; use 88 to 65535")]
    Mss {
        /// The MSS asked for.
        mss: u32,
        /// The kernel's error.
        source: std::io::Error,
    },
    /// The handshake failed.
    #[error("cannot connect to {addr}/tcp: {source}")]
    Connect {
        /// The server.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// No handshake within the timeout.
    #[error(
        "connecting to {addr}/tcp timed out after {wait:?} (a firewall dropping SYNs, or no route)"
    )]
    ConnectTimeout {
        /// The server.
        addr: SocketAddr,
        /// The timeout.
        wait: Duration,
    },
    /// The server refused the request.
    #[error("{addr}/tcp refused the test: {refusal}")]
    Refused {
        /// The server.
        addr: SocketAddr,
        /// Why.
        refusal: Refusal,
    },
    /// The server's answer is not a probe reply.
    #[error(
        "{addr}/tcp did not answer like a probe server ({source}); is `probe serve` running there?"
    )]
    BadReply {
        /// The server.
        addr: SocketAddr,
        /// What was wrong.
        source: CodecError,
    },
    /// Reading or writing failed.
    #[error("{addr}/tcp: {doing} failed: {source}")]
    Io {
        /// The server.
        addr: SocketAddr,
        /// What was being done.
        doing: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// The server's results did not arrive in time.
    #[error("{addr}/tcp sent no results within {wait:?} after the test")]
    ResultsTimeout {
        /// The server.
        addr: SocketAddr,
        /// How long it was given.
        wait: Duration,
    },
    /// The server's results do not decode.
    #[error("{addr}/tcp sent unusable results: {source}")]
    Results {
        /// The server.
        addr: SocketAddr,
        /// What was wrong.
        source: ResultsError,
    },
}

impl TcpClientOptions {
    /// Connects (`Err` keeps the kernel's error for classification); returns the stream and
    /// the handshake time.
    async fn connect(&self) -> Result<(TcpStream, Duration), TcpTestError> {
        let addr = self.peer;
        let mut opts = SocketOptions {
            device: self.interface.clone(),
            ..SocketOptions::default()
        };
        if let Some(d) = self.dscp {
            opts = opts.with_dscp(d);
        }
        let socket = tcp_socket(addr.is_ipv6(), &opts)?;
        if let Some(mss) = self.mss {
            socket
                .set_tcp_mss(mss)
                .map_err(|source| TcpTestError::Mss { mss, source })?;
        }
        if let Some(src) = self.source {
            crate::io::bind(&socket, SocketAddr::new(src, 0), "tcp")?;
        }
        let socket = TcpSocket::from_std_stream(socket.into());
        let t0 = Instant::now();
        match tokio::time::timeout(self.connect_timeout, socket.connect(addr)).await {
            Ok(Ok(s)) => Ok((s, t0.elapsed())),
            Ok(Err(source)) => Err(TcpTestError::Connect { addr, source }),
            Err(_) => Err(TcpTestError::ConnectTimeout {
                addr,
                wait: self.connect_timeout,
            }),
        }
    }

    /// Connects and has `request` admitted.
    async fn open(&self, request: &Request) -> Result<TcpStream, TcpTestError> {
        let addr = self.peer;
        let (mut s, _) = self.connect().await?;
        let io = |doing| {
            move |source| TcpTestError::Io {
                addr,
                doing,
                source,
            }
        };
        s.write_all(&request.emit())
            .await
            .map_err(io("sending the request"))?;
        let mut reply = [0u8; REPLY_LEN];
        tokio::time::timeout(
            self.connect_timeout + Duration::from_secs(2),
            s.read_exact(&mut reply),
        )
        .await
        .map_err(|_| TcpTestError::Io {
            addr,
            doing: "waiting for the reply",
            source: std::io::ErrorKind::TimedOut.into(),
        })?
        .map_err(io("reading the reply"))?;
        match Reply::parse(&reply) {
            Ok(Reply(Ok(()))) => Ok(s),
            Ok(Reply(Err(refusal))) => Err(TcpTestError::Refused { addr, refusal }),
            Err(source) => Err(TcpTestError::BadReply { addr, source }),
        }
    }
}

/// Connect-latency settings.
#[derive(Clone, Copy, Debug)]
pub struct ConnectTest {
    /// Connects to make.
    pub count: u32,
    /// Time between the starts of connects.
    pub interval: Duration,
}

/// Classifies a failed connect.
fn classify(e: &TcpTestError, f: &mut ConnectFailures) {
    match e {
        TcpTestError::ConnectTimeout { .. } => f.timeout += 1,
        TcpTestError::Connect { source, .. }
            if source.kind() == std::io::ErrorKind::ConnectionRefused =>
        {
            f.refused += 1;
        }
        TcpTestError::Connect { source, .. }
            if matches!(
                source.raw_os_error(),
                Some(libc::EHOSTUNREACH | libc::ENETUNREACH)
            ) =>
        {
            f.unreachable += 1;
        }
        _ => f.other += 1,
    }
}

/// Makes `test.count` connects on a fixed schedule and reports the handshake times; each
/// connection is closed at once without sending anything. Socket setup errors (a bad
/// `--source` or `--mss`) end the test with an error; connect failures are counted.
pub async fn run_connect(
    opts: &TcpClientOptions,
    test: ConnectTest,
) -> Result<TcpConnectReport, TcpTestError> {
    let mut handshake = Distribution::new();
    let mut kernel_rtt = Distribution::new();
    let mut report = TcpConnectReport {
        peer: opts.peer_label.clone(),
        address: opts.peer.to_string(),
        ..TcpConnectReport::default()
    };
    let start = tokio::time::Instant::now();
    for i in 0..test.count {
        tokio::time::sleep_until(start + test.interval * i).await;
        report.attempts += 1;
        match opts.connect().await {
            Ok((s, took)) => {
                report.connected += 1;
                handshake.record(i64::try_from(took.as_nanos()).unwrap_or(i64::MAX));
                if let Some(info) = read_tcp_info(&s) {
                    kernel_rtt.record(i64::from(info.rtt_us) * 1_000);
                }
            }
            Err(e @ (TcpTestError::Socket(_) | TcpTestError::Mss { .. })) => return Err(e),
            Err(e) => {
                classify(&e, &mut report.failures);
                if report.first_error.is_none() {
                    report.first_error = Some(e.to_string());
                }
            }
        }
    }
    report.handshake_ms = handshake.summary_ms();
    report.tcp_info_rtt_ms = kernel_rtt.summary_ms();
    Ok(report)
}

/// Throughput settings.
#[derive(Clone, Copy, Debug)]
pub struct ThroughputTest {
    /// Which way(s) data flows.
    pub direction: Direction,
    /// How long data flows.
    pub duration: Duration,
    /// Connections per direction.
    pub streams: u16,
    /// Width of the interval slices.
    pub interval: Duration,
    /// Session cookie from the control plane (zero when none).
    pub cookie: [u8; 16],
}

/// Runs a throughput test: the control connection is admitted first (a busy server refuses
/// here), then every data connection runs, then the server's view arrives on the control
/// connection and both views merge into the report.
pub async fn run_throughput(
    opts: &TcpClientOptions,
    test: ThroughputTest,
) -> Result<TcpThroughputReport, TcpTestError> {
    let addr = opts.peer;
    let dirs = u16::from(test.direction.includes_to()) + u16::from(test.direction.includes_from());
    let base = Request {
        mode: Mode::Control,
        stream: 0,
        duration: test.duration,
        interval: test.interval,
        test_id: rand::random(),
        cookie: test.cookie,
        streams: test.streams.saturating_mul(dirs),
    };
    let mut control = opts.open(&base).await?;
    let shared = Arc::new(opts.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for (mode, on) in [
        (Mode::Sink, test.direction.includes_to()),
        (Mode::Source, test.direction.includes_from()),
    ] {
        for stream in 0..test.streams {
            if !on {
                break;
            }
            let req = Request {
                mode,
                stream,
                ..base
            };
            let o = shared.clone();
            tasks.spawn(async move { (mode, data_stream(&o, &req).await) });
        }
    }
    let (mut sent, mut received) = (Vec::new(), Vec::new());
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((Mode::Sink, Ok(end))) => sent.push(end),
            Ok((_, Ok(end))) => received.push(end),
            Ok((_, Err(e))) => {
                first_error.get_or_insert(e);
            }
            Err(e) => tracing::warn!("tcp stream task: {e}"),
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let wait = GRACE * 3;
    let results = tokio::time::timeout(wait, read_results(&mut control))
        .await
        .map_err(|_| TcpTestError::ResultsTimeout { addr, wait })?
        .map_err(|e| match e {
            ReadResults::Io(source) => TcpTestError::Io {
                addr,
                doing: "reading the results",
                source,
            },
            ReadResults::Frame(source) => TcpTestError::Results { addr, source },
        })?;
    Ok(TcpThroughputReport {
        peer: opts.peer_label.clone(),
        address: addr.to_string(),
        direction: test.direction,
        duration_s: test.duration.as_secs_f64(),
        streams: test.streams,
        mss: opts.mss,
        interval_s: test.interval.as_secs_f64(),
        to: test
            .direction
            .includes_to()
            .then(|| direction_report(&results.sink, &sent)),
        from: test
            .direction
            .includes_from()
            .then(|| direction_report(&received, &results.source)),
    })
}

/// One data connection: sends for the duration (sink) or reads to the end (source).
async fn data_stream(opts: &TcpClientOptions, req: &Request) -> Result<StreamEnd, TcpTestError> {
    let mut s = opts.open(req).await?;
    let mut buf = vec![0u8; BUF_LEN];
    if req.mode == Mode::Sink {
        let mut counter = ByteCounter::new(req.interval);
        send_until(&mut s, &buf, Instant::now(), req.duration, &mut counter).await;
        Ok(StreamEnd::new(req.stream, &counter, read_tcp_info(&s)))
    } else {
        let counter = receive(&mut s, &mut buf, req.interval, req.duration + GRACE * 2).await;
        Ok(StreamEnd::new(req.stream, &counter, None))
    }
}

enum ReadResults {
    Io(std::io::Error),
    Frame(ResultsError),
}

async fn read_results(control: &mut TcpStream) -> Result<ServerResults, ReadResults> {
    let mut header = [0u8; 4];
    control
        .read_exact(&mut header)
        .await
        .map_err(ReadResults::Io)?;
    let n = ServerResults::body_len(header).map_err(ReadResults::Frame)?;
    let mut body = vec![0u8; n];
    control
        .read_exact(&mut body)
        .await
        .map_err(ReadResults::Io)?;
    ServerResults::decode(&body).map_err(ReadResults::Frame)
}
