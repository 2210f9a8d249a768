//! One A2A test on a socket: [`run_test`] binds the socket, builds the sans-IO
//! [`SenderSession`] and drives it to the report (see [`super::driver`]).
//!
//! The returned future owns everything: the socket, the machine, the pacing. Dropping it
//! mid-test stops sending at once and leaves nothing behind (no thread, task or socket). It
//! runs on a current-thread or a multi-threaded tokio runtime.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::sync::mpsc;

use super::A2aError;
use super::driver::{Io, drive};
use super::local_clock_info;
use crate::a2a::{
    Limit, Pace, SenderConfig, SenderSession, SessionConfig, TestOutcome, VoiceConfig,
};
use crate::io::{Pacer, PacerConfig, SocketOptions, TimestampedSocket};
use crate::report::IntervalReport;

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
    /// How long to wait for replies after the last packet (also the late-reply timeout, at
    /// least 100 ms).
    pub wait: Duration,
    /// The test stops early when nothing at all has answered this long after it started.
    pub no_answer_timeout: Duration,
    /// Hello packets (clock exchange) sent before the test, one per 200 ms until answered.
    pub hellos: u32,
    /// STAMP session id; random when `None`.
    pub ssid: Option<u16>,
    /// Hand out an [`IntervalReport`] this often while the test runs (on `interval_reports`).
    pub report_interval: Option<Duration>,
    /// Where interval reports go. The test never waits for the receiver: a report that
    /// finds the channel full is dropped (and logged).
    pub interval_reports: Option<mpsc::Sender<IntervalReport>>,
    /// Ask for `SCHED_FIFO` priority for the thread that polls the test (root or
    /// `CAP_SYS_NICE`), so that other work on a busy host does not delay the sends. Only
    /// when that thread runs nothing else (e.g. `Runtime::block_on` on the main thread); it
    /// applies to isochronous schedules of at least 100 µs, which sleep most of the time,
    /// never to a flood. The priority stays with the thread after the test.
    pub realtime: bool,
    /// Rate the stream as voice (`--profile voice`; the caller sets the matching interval,
    /// size and DSCP, see [`VoiceConfig::packet_size`]).
    pub voice: Option<VoiceConfig>,
}

impl A2aOptions {
    /// 100 packets every 10 ms of 44 octets to `peer`, 1 s final wait, 3 hellos, no interval
    /// reports.
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
            report_interval: None,
            interval_reports: None,
            realtime: false,
            voice: None,
        }
    }
}

/// Runs one test against `opts.peer` (see the module documentation).
pub async fn run_test(opts: A2aOptions) -> Result<TestOutcome, A2aError> {
    let mut session = session_for(&opts)?;
    let flood = matches!(opts.pace, Pace::Max { .. });
    let sock = bind_socket(&opts, !flood)?;
    session.set_timestamps(sock.timestamp_mode().rx_source());
    let io = Io {
        sock: &sock,
        peer: opts.peer,
        // A flood takes user-space send times: one error-queue read per packet would halve
        // its rate.
        tx_timestamps: !flood,
        reports: opts.interval_reports.clone(),
    };
    let mut pacer = pacer_for(&opts).map_err(A2aError::Pacer)?;
    drive(&mut session, &io, &mut pacer, opts.size.max(128)).await?;
    Ok(session.finish())
}

/// The pacer: `SCHED_FIFO` only when asked for and the schedule sleeps between packets.
fn pacer_for(opts: &A2aOptions) -> std::io::Result<Pacer> {
    let sleeps = matches!(opts.pace, Pace::Interval(i) if i >= Duration::from_micros(100));
    if opts.realtime && sleeps {
        Ok(Pacer::realtime(PacerConfig::default())?.0)
    } else {
        Pacer::new(PacerConfig::default())
    }
}

/// The sans-IO session the options describe.
fn session_for(opts: &A2aOptions) -> Result<SenderSession, A2aError> {
    let mut cfg = SenderConfig::new(
        opts.peer_label.clone(),
        opts.ssid.unwrap_or_else(rand::random),
    );
    cfg.size = opts.size;
    cfg.clock = local_clock_info();
    let session = SessionConfig {
        pace: opts.pace,
        limit: opts.limit,
        hellos: opts.hellos,
        hello_interval: Duration::from_millis(200),
        wait: opts.wait,
        no_answer_timeout: opts.no_answer_timeout,
        report_interval: opts.report_interval,
    };
    let mut s = SenderSession::new(cfg, session)?;
    if let Some(v) = opts.voice {
        s.enable_voice(v);
    }
    Ok(s)
}

fn bind_socket(opts: &A2aOptions, tx_timestamps: bool) -> Result<TimestampedSocket, A2aError> {
    let bind_ip = opts.source.unwrap_or(if opts.peer.is_ipv4() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    });
    if bind_ip.is_ipv4() != opts.peer.is_ipv4() {
        return Err(A2aError::FamilyMismatch {
            source_ip: bind_ip,
            peer: opts.peer,
        });
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
    Ok(TimestampedSocket::bind_udp(
        SocketAddr::new(bind_ip, 0),
        &sopts,
        tx_timestamps,
    )?)
}
