//! `probe a2a --proto tcp`: connect latency, or with `--throughput` bulk transfer, against
//! a peer's 49153/tcp (or an embedded server on loopback).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use probe_core::a2a::Direction;
use probe_core::a2a::runtime::{Family, PeerSpec};
use probe_core::control::{TestKind, TestRequest};
use probe_core::report::tcp::{
    TcpConnectReport, TcpDirectionReport, TcpThroughputReport, ThroughputInterval,
};
use probe_core::stats::Summary;
use probe_core::tcp::runtime::{
    BUF_LEN, ConnectTest, TcpClientOptions, TcpServer, TcpServerConfig, TcpServerCounters,
    TcpTestError, ThroughputTest, run_connect, run_throughput,
};
use probe_core::tcp::{Gate, LocalAdmission, Refusal};

use super::a2a::{Embedded, loopback};
use super::a2a_control::{self, Control};
use super::a2a_trace::{self, trace_if_asked};

use crate::cli::{A2aArgs, STAMP_PORT};

/// Connects made when --count is not given.
const DEFAULT_CONNECTS: u32 = 100;
/// Throughput test length when --duration is not given.
const DEFAULT_DURATION: Duration = Duration::from_secs(10);

pub async fn run(args: &A2aArgs) -> anyhow::Result<ExitCode> {
    if args.profile.is_some() {
        bail!("--profile voice is a UDP test: drop --proto tcp");
    }
    if args.handshakes.is_some() {
        bail!(
            "--handshakes counts QUIC handshakes: use --proto quic (--count counts TCP connects)"
        );
    }
    if !args.throughput && (args.streams != 1 || args.direction.is_some()) {
        bail!(
            "--streams and --direction need --throughput with --proto tcp (a connect test has neither)"
        );
    }
    if args.throughput && args.count.is_some() {
        bail!("--count counts connects; a --throughput test runs for --duration");
    }
    let family = match (args.family.ipv4, args.family.ipv6) {
        (true, _) => Family::V4,
        (_, true) => Family::V6,
        _ => Family::Any,
    };
    let (peer, label, host, embedded) = match &args.peer {
        Some(spec) => {
            let spec = PeerSpec::parse(spec, STAMP_PORT)?;
            let host = spec.host.clone();
            (spec.resolve(family).await?, spec.to_string(), host, None)
        }
        None => {
            let e = start_embedded(family)?;
            (e.addr, e.addr.to_string(), String::new(), Some(e))
        }
    };
    let opts = TcpClientOptions {
        peer,
        peer_label: label.clone(),
        source: args.source,
        interface: args.interface.clone(),
        dscp: args.dscp,
        mss: args.mss,
        connect_timeout: args.wait,
    };
    let code = if args.throughput {
        let duration = args.duration.unwrap_or(DEFAULT_DURATION);
        let mut test = ThroughputTest {
            direction: args.direction.unwrap_or(Direction::Both),
            duration,
            streams: args.streams,
            interval: args.report_interval.unwrap_or(Duration::from_secs(1)),
            cookie: [0; 16],
        };
        // Negotiated over the peer's control plane when it answers: the grant's cookie
        // admits the test's connections, and the far end's limits and exclusivity apply.
        let control = if embedded.is_some() {
            Control::None("the embedded server has no control plane".into())
        } else if args.no_control {
            Control::None("--no-control".into())
        } else {
            a2a_control::open_request(args, &host, peer, tcp_request(&test, args.dscp)).await?
        };
        match &control {
            Control::Negotiated(n) => {
                test.cookie = n
                    .accepted
                    .tcp_cookie()
                    .context("the peer granted the TCP test without a cookie")?;
            }
            Control::None(note) => tracing::info!("TCP throughput without control: {note}"),
        }
        let result = run_throughput(&opts, test).await;
        if let Control::Negotiated(n) = &control
            && let Err(e) = n.finish(Some(Duration::ZERO)).await
        {
            tracing::warn!("ending the session at {label}: {e}");
        }
        // Traced once the session is over, over its control connection.
        let paths = match &result {
            Ok(_) => trace_if_asked(args, a2a_trace::tcp(peer), peer.ip(), control.client()).await,
            Err(_) => None,
        };
        if let Control::Negotiated(n) = control {
            n.close().await;
        }
        let report = result
            .map_err(|e| explain_refusal(e, args))
            .with_context(|| format!("the TCP throughput test against {label} failed"))?;
        a2a_trace::print_report(args.json, &report, render_throughput, true, paths.as_ref())?
    } else {
        let count = match args.count {
            Some(0) => bail!("--count must be at least 1"),
            Some(c) => u32::try_from(c).context("--count is at most 4294967295")?,
            None => DEFAULT_CONNECTS,
        };
        if args.interval.is_zero() {
            bail!("--interval must be positive");
        }
        let report = run_connect(
            &opts,
            ConnectTest {
                count,
                interval: args.interval,
            },
        )
        .await
        .with_context(|| format!("the TCP connect test against {label} failed"))?;
        let ok = report.connected > 0;
        let host = embedded.is_none().then_some(host.as_str());
        let paths =
            a2a_trace::trace_if_asked_connecting(args, a2a_trace::tcp(peer), peer, host).await;
        let code = a2a_trace::print_report(args.json, &report, render_connect, ok, paths.as_ref())?;
        if !ok {
            eprintln!(
                "probe: no connect to {label} ({peer}/tcp) succeeded: {}",
                report.first_error.as_deref().unwrap_or("no attempt made")
            );
        }
        code
    };
    if let Some(e) = embedded {
        let _ = e.stop().await;
    }
    Ok(code)
}

/// The control-plane request of a TCP throughput test.
fn tcp_request(test: &ThroughputTest, dscp: Option<u8>) -> TestRequest {
    TestRequest {
        kind: TestKind::TcpThroughput,
        direction: test.direction,
        interval_ns: None,
        count: None,
        duration_ms: Some(u64::try_from(test.duration.as_millis()).unwrap_or(u64::MAX)),
        size: u32::try_from(BUF_LEN).unwrap_or(u32::MAX),
        dscp,
        ssid: 0,
        port: None,
        clock: None,
        auth: false,
    }
}

/// A refusal for want of a cookie names the fix.
fn explain_refusal(e: TcpTestError, args: &A2aArgs) -> anyhow::Error {
    match e {
        TcpTestError::Refused {
            refusal: Refusal::Unauthorized,
            ..
        } => anyhow::anyhow!(
            "{e}: the server (probe serve --require-auth) runs only TCP tests negotiated over its \
             control plane; let probe a2a reach it at {}/udp (drop --no-control, check \
             --control-port and --token)",
            args.control_port
        ),
        e => e.into(),
    }
}

/// Starts a TCP test server on loopback (ephemeral port) for a self-contained run.
fn start_embedded(family: Family) -> anyhow::Result<Embedded<TcpServerCounters>> {
    let server = TcpServer::bind(TcpServerConfig {
        listen: vec![SocketAddr::new(loopback(family), 0)],
        admission: Arc::new(LocalAdmission::new(Gate::new(Duration::from_secs(
            366 * 86_400,
        )))),
    })
    .context("cannot start the embedded TCP server")?;
    let addr = *server
        .local_addrs()
        .first()
        .context("the embedded TCP server has no address")?;
    Ok(Embedded::spawn(addr, |stopped| server.run(stopped)))
}

pub(super) fn summary_line(out: &mut String, name: &str, s: Option<&Summary>) {
    match s {
        Some(s) => {
            let _ = writeln!(
                out,
                "  {name:<14} min {:.3}  mean {:.3}  p50 {:.3}  p99 {:.3}  max {:.3}  stddev {:.3} ms",
                s.min, s.mean, s.p50, s.p99, s.max, s.stddev
            );
        }
        None => {
            let _ = writeln!(out, "  {name:<14} -");
        }
    }
}

fn render_connect(r: &TcpConnectReport) -> String {
    let mut out = String::new();
    let f = &r.failures;
    let _ = writeln!(
        out,
        "TCP connect to {} ({}): {} of {} connected; failed: {} refused, {} timeout, {} unreachable, {} other",
        r.peer, r.address, r.connected, r.attempts, f.refused, f.timeout, f.unreachable, f.other
    );
    summary_line(&mut out, "handshake", r.handshake_ms.as_ref());
    summary_line(&mut out, "TCP_INFO rtt", r.tcp_info_rtt_ms.as_ref());
    if let Some(e) = &r.first_error {
        let _ = writeln!(out, "  first error: {e}");
    }
    out
}

/// `1.23 Gbit/s` style rate.
pub(super) fn rate(bps: f64) -> String {
    let (v, unit) = if bps >= 1e9 {
        (bps / 1e9, "Gbit/s")
    } else if bps >= 1e6 {
        (bps / 1e6, "Mbit/s")
    } else if bps >= 1e3 {
        (bps / 1e3, "kbit/s")
    } else {
        (bps, "bit/s")
    };
    format!("{v:.2} {unit}")
}

/// A direction's first line (`  to   12.00 Mbit/s  N bytes in S s` and `more`, which starts
/// with its own separator) as TCP and QUIC show it.
pub(super) fn direction_line(
    out: &mut String,
    name: &str,
    bits_per_second: f64,
    bytes: u64,
    seconds: f64,
    more: &str,
) {
    let _ = writeln!(
        out,
        "  {name:<4} {}  {bytes} bytes in {seconds:.2} s{more}",
        rate(bits_per_second)
    );
}

/// The receiver's interval lines of a direction.
pub(super) fn interval_lines(out: &mut String, intervals: &[ThroughputInterval]) {
    for i in intervals {
        let _ = writeln!(
            out,
            "    {:>7.2}-{:<7.2} s  {}",
            i.start_s,
            i.end_s,
            rate(i.bits_per_second)
        );
    }
}

fn render_direction(out: &mut String, name: &str, d: &TcpDirectionReport) {
    let rtt = d
        .rtt_ms
        .map_or_else(|| "-".to_owned(), |ms| format!("{ms:.3} ms"));
    let more = format!(
        ", {} retransmits, rtt {rtt}, cwnd {} bytes",
        d.retransmits, d.cwnd_bytes
    );
    direction_line(out, name, d.bits_per_second, d.bytes, d.seconds, &more);
    if d.streams.len() > 1 {
        for s in &d.streams {
            let _ = writeln!(
                out,
                "    stream {:<3} {}  {} retransmits",
                s.stream,
                rate(s.bits_per_second),
                s.retransmits
            );
        }
    }
    interval_lines(out, &d.intervals);
}

fn render_throughput(r: &TcpThroughputReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "TCP throughput with {} ({}), {} s, {} stream(s) per direction:",
        r.peer, r.address, r.duration_s, r.streams
    );
    if let Some(d) = &r.to {
        render_direction(&mut out, "to", d);
    }
    if let Some(d) = &r.from {
        render_direction(&mut out, "from", d);
    }
    out
}
