//! One A2A test on a socket: [`run_test`] binds the socket, builds the sans-IO
//! [`SenderSession`] and drives it to the report (see [`super::driver`]).
//!
//! The returned future owns everything: the socket, the machine, the pacing. Dropping it
//! mid-test stops sending at once and leaves nothing behind (no thread, task or socket). It
//! runs on a current-thread or a multi-threaded tokio runtime.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::A2aError;
use super::driver::{BATCH, Io, SLOW_BATCH, drive};
use super::local_clock_info;
use super::options::{A2aOptions, ConfigError};
use crate::a2a::{Pace, SenderSession, TestOutcome};
use crate::io::{Pacer, SocketOptions, TimestampedSocket};

/// Runs one test against the options' peer (see the module documentation).
///
/// ```no_run
/// use std::time::Duration;
/// use probe_core::a2a::Limit;
/// use probe_core::{A2aOptions, run_test};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let opts = A2aOptions::builder("192.0.2.7:49153".parse()?)
///     .limit(Limit::Count(50))
///     .wait(Duration::from_millis(500))
///     .build()?;
/// let outcome = run_test(opts).await?;
/// println!("{} of {} answered", outcome.report.received, outcome.report.sent);
/// # Ok(()) }
/// ```
pub async fn run_test(opts: A2aOptions) -> Result<TestOutcome, A2aError> {
    let (outcome, _) = run_test_until(opts, std::future::pending()).await?;
    Ok(outcome)
}

/// Like [`run_test`], but when `stop` completes first the test ends there and then: nothing
/// more is sent and the outcome reports what was measured so far (packets still awaiting a
/// reply count as lost). The flag says whether `stop` cut the test short.
pub async fn run_test_until(
    opts: A2aOptions,
    stop: impl Future<Output = ()>,
) -> Result<(TestOutcome, bool), A2aError> {
    let mut session = session_for(&opts, opts.ssid.unwrap_or_else(rand::random))?;
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
    // Room for a hello: the base packet (112 octets authenticated) and the clock TLV.
    let slot_len = opts.size.max(256);
    let cut = tokio::select! {
        r = drive(&mut session, &io, &mut pacer, slot_len, batch_for(opts.pace)) => {
            r?;
            false
        }
        () = stop => true,
    };
    if cut {
        session.stop();
    }
    Ok((session.finish(), cut))
}

/// Datagrams per system call: a flood or a fast schedule moves many per turn; a schedule of
/// a packet per millisecond or slower never has more than a few due at once, and small
/// batches keep thousands of such tests side by side (an agent's mesh) small in memory.
fn batch_for(pace: Pace) -> usize {
    match pace {
        Pace::Interval(i) if i >= Duration::from_millis(1) => SLOW_BATCH,
        _ => BATCH,
    }
}

/// The pacer: the options' settings with the spin capped for the interval; `SCHED_FIFO`
/// only when asked for and the schedule sleeps between packets.
fn pacer_for(opts: &A2aOptions) -> std::io::Result<Pacer> {
    let cfg = match opts.pace {
        Pace::Interval(i) => opts.pacer.capped_for(i),
        // A flood waits for replies; its only deadlines are stall and end timers, which need
        // no spin (a spin there only takes the CPU from the peer on a small host).
        _ => opts.pacer.no_spin(),
    };
    let sleeps = matches!(opts.pace, Pace::Interval(i) if i >= Duration::from_micros(100));
    if opts.realtime && sleeps {
        Ok(Pacer::realtime(cfg)?.0)
    } else {
        Pacer::new(cfg)
    }
}

/// The sans-IO session the options describe, with SSID `ssid`.
pub(super) fn session_for(opts: &A2aOptions, ssid: u16) -> Result<SenderSession, A2aError> {
    let (mut cfg, session) = opts.session_configs(ssid);
    cfg.clock = local_clock_info();
    let mut s = SenderSession::new(cfg, session)?;
    if let Some(v) = opts.voice {
        s.enable_voice(v);
    }
    if let Some(c) = opts.peer_clock {
        s.set_peer_clock(c);
    }
    if opts.timeline {
        s.enable_timeline();
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
        return Err(ConfigError::FamilyMismatch {
            source_ip: bind_ip,
            peer: opts.peer,
        }
        .into());
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
        SocketAddr::new(bind_ip, opts.local_port),
        &sopts,
        tx_timestamps,
    )?)
}
