//! `probe a2a --proto quic`: QUIC handshake time and datagram round trips, or with
//! `--throughput` stream transfer, negotiated on the peer's control plane and run on its
//! control endpoint (49152/udp) under the QUIC test's own ALPN.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use probe_core::a2a::runtime::{Family, PeerSpec, local_clock_info};
use probe_core::a2a::{Admission, Direction};
use probe_core::control::{
    ClientConfig, ControlClient, ControlServer, Identity, Limits, PeerHello, PinPolicy,
    ServerConfig, TestsConfig, connect,
};
use probe_core::quic_test::datagram::{MAX_COUNT, MIN_SIZE};
use probe_core::quic_test::report::{PathReport, QuicDirectionReport};
use probe_core::quic_test::{Negotiated, QuicA2aReport, RttPlan, ThroughputPlan, run_negotiated};
use tokio::sync::oneshot;

use super::a2a_control::connect_peer;
use super::a2a_tcp::{direction_line, interval_lines, summary_line};
use super::a2a_trace::{self, trace_if_asked};
use crate::cli::{A2aArgs, Rate, STAMP_PORT};

/// Handshakes timed when --handshakes is not given.
const DEFAULT_HANDSHAKES: u32 = 10;
/// Datagrams sent when neither --count nor --duration is given.
const DEFAULT_COUNT: u64 = 100;
/// Throughput test length per direction when --duration is not given.
const DEFAULT_DURATION: Duration = Duration::from_secs(10);
/// Shortest wait for each QUIC handshake and answer.
const MIN_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn run(args: &A2aArgs) -> anyhow::Result<ExitCode> {
    let (rtt, throughput) = plans(args)?;
    let family = match (args.family.ipv4, args.family.ipv6) {
        (true, _) => Family::V4,
        (_, true) => Family::V6,
        _ => Family::Any,
    };
    let (client, hello, label, embedded) = match &args.peer {
        Some(spec) => {
            let spec = PeerSpec::parse(spec, STAMP_PORT)?;
            let peer = spec.resolve(family).await?;
            match connect_peer(args, &spec.host, peer).await? {
                Ok((client, hello, key)) => (client, hello, key, None),
                Err(note) => bail!(
                    "the QUIC test runs on the peer's control endpoint and {note}: run `probe \
                     serve` there with its control plane, or name its port with --control-port"
                ),
            }
        }
        None => {
            let (client, hello, stop, task) = start_embedded(family).await?;
            let label = client.server().to_string();
            (client, hello, label, Some((stop, task)))
        }
    };
    let handshakes = args.handshakes.unwrap_or(DEFAULT_HANDSHAKES);
    let timeout = args.control_timeout.max(MIN_TIMEOUT);
    let negotiated = run_negotiated(&client, handshakes, rtt, throughput, timeout).await;
    let server = client.server();
    let paths = match &negotiated {
        Ok(_) => trace_if_asked(args, a2a_trace::icmp(), server.ip(), Ok(&client)).await,
        Err(_) => None,
    };
    client.close().await;
    if let Some((stop, task)) = embedded {
        let _ = stop.send(());
        let _ = task.await;
    }
    let Negotiated { session, result } =
        negotiated.with_context(|| format!("{label} refused the QUIC test"))?;
    let quic = result.with_context(|| format!("the QUIC test with {label} failed"))?;
    let report = QuicA2aReport {
        peer: args.peer.clone().unwrap_or_else(|| label.clone()),
        address: server.to_string(),
        proto: "quic".into(),
        session: format!("{session:016x}"),
        fingerprint: hello.fingerprint,
        quic,
    };
    let ok = succeeded(&report);
    let code = a2a_trace::print_report(args.json, &report, render, ok, paths.as_ref())?;
    if let Some(e) = &report.quic.error {
        eprintln!("probe: the QUIC test with {label} stopped early: {e}");
    }
    Ok(code)
}

/// The datagram plan (without --throughput) or the throughput plan, from the flags; bad
/// combinations are refused naming the flag.
fn plans(args: &A2aArgs) -> anyhow::Result<(Option<RttPlan>, Option<ThroughputPlan>)> {
    if args.profile.is_some() {
        bail!("--profile voice is a UDP test: drop --proto quic");
    }
    if args.streams != 1 || args.mss.is_some() {
        bail!("--streams and --mss are TCP settings: drop them with --proto quic");
    }
    if args.stamp_key_file.is_some() {
        bail!("--stamp-key-file is for STAMP: QUIC tests are authorised by the control plane");
    }
    if args.no_control {
        bail!("--proto quic runs on the peer's control endpoint: drop --no-control");
    }
    if args.throughput {
        if args.count.is_some() {
            bail!("--count counts datagrams; a --proto quic --throughput test runs for --duration");
        }
        let plan = ThroughputPlan {
            direction: args.direction.unwrap_or(Direction::Both),
            duration: args.duration.unwrap_or(DEFAULT_DURATION),
            interval: args.report_interval.unwrap_or(Duration::from_secs(1)),
        };
        return Ok((None, Some(plan)));
    }
    if args.direction.is_some() {
        bail!(
            "--direction needs --throughput with --proto quic (a datagram round trip goes both \
             ways)"
        );
    }
    let interval = match args.rate {
        Some(Rate::Max) => {
            bail!("--rate max floods; QUIC datagrams are paced: give --interval or --rate PPS")
        }
        Some(Rate::Pps(pps)) => Duration::from_secs_f64(1.0 / pps),
        None => args.interval,
    };
    if interval.is_zero() {
        bail!("--interval must be positive");
    }
    let count = match (args.count, args.duration) {
        (Some(0), _) => bail!("--count must be at least 1"),
        (Some(c), _) => c,
        (None, Some(d)) => u64::try_from(d.as_nanos() / interval.as_nanos())
            .unwrap_or(u64::MAX)
            .max(1),
        (None, None) => DEFAULT_COUNT,
    };
    if count > MAX_COUNT {
        bail!("--proto quic sends at most {MAX_COUNT} datagrams: lower --count or --duration");
    }
    if args.size < MIN_SIZE {
        bail!(
            "--size {} is below the {MIN_SIZE}-byte QUIC echo datagram: use {MIN_SIZE} or more",
            args.size
        );
    }
    let plan = RttPlan {
        count,
        interval,
        size: args.size,
        wait: args.wait,
    };
    Ok((Some(plan), None))
}

/// Whether the test measured what it set out to.
fn succeeded(r: &QuicA2aReport) -> bool {
    let q = &r.quic;
    let handshakes = q.handshakes == q.handshakes_ok;
    let datagrams = q.datagrams.is_none_or(|d| d.received > 0);
    let throughput = q.throughput.as_ref().is_none_or(|t| {
        let want = t.direction.unwrap_or(Direction::Both);
        (!want.includes_to() || t.to.is_some()) && (!want.includes_from() || t.from.is_some())
    });
    handshakes && datagrams && throughput && q.error.is_none()
}

/// Starts a control endpoint on loopback (ephemeral port, fresh identity) and connects to
/// it, for a self-contained run.
async fn start_embedded(
    family: Family,
) -> anyhow::Result<(ControlClient, PeerHello, oneshot::Sender<()>, EmbeddedTask)> {
    let ip = match family {
        Family::V6 => IpAddr::V6(Ipv6Addr::LOCALHOST),
        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    let identity = Identity::generate().context("cannot create the embedded identity")?;
    let fingerprint = identity.fingerprint();
    let clock = local_clock_info();
    let server = ControlServer::bind(ServerConfig {
        listen: vec![SocketAddr::new(ip, 0)],
        identity,
        token: None,
        allow: probe_core::a2a::AllowList::default(),
        clock,
        max_connections: 64,
        software: concat!("probe ", env!("CARGO_PKG_VERSION")).into(),
    })
    .context("cannot start the embedded QUIC endpoint")?
    .serve_tests(TestsConfig {
        limits: Limits::default(),
        admission: Arc::new(Admission::new(false)),
        stamp_port: 0,
        clock,
        stamp_keys: None,
    });
    let addr = *server
        .local_addrs()
        .first()
        .context("the embedded QUIC endpoint has no address")?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    let client = connect(ClientConfig::new(
        addr,
        addr.to_string(),
        PinPolicy::Fingerprint(fingerprint),
    ))
    .await
    .context("cannot reach the embedded QUIC endpoint")?;
    let hello = client
        .hello()
        .await
        .context("the embedded QUIC endpoint's hello")?;
    Ok((client, hello, stop, task))
}

/// The embedded endpoint's task.
type EmbeddedTask = tokio::task::JoinHandle<probe_core::control::ControlCounters>;

fn path_line(out: &mut String, name: &str, p: &PathReport) {
    let _ = writeln!(
        out,
        "  {name:<14} rtt {:.3} ms, cwnd {} bytes, {} of {} packets lost, {} congestion events, mtu {}",
        p.rtt_ms, p.cwnd_bytes, p.lost_packets, p.sent_packets, p.congestion_events, p.mtu
    );
}

fn render_direction(out: &mut String, name: &str, d: &QuicDirectionReport) {
    direction_line(out, name, d.bits_per_second, d.bytes, d.seconds, "");
    path_line(out, "  sender path", &d.sender_path);
    interval_lines(out, &d.intervals);
}

fn render(r: &QuicA2aReport) -> String {
    let mut out = String::new();
    let q = &r.quic;
    let _ = writeln!(
        out,
        "QUIC test with {} ({}), session {}: {} of {} handshakes completed",
        r.peer, r.address, r.session, q.handshakes_ok, q.handshakes
    );
    summary_line(&mut out, "handshake", q.handshake_ms.as_ref());
    if let Some(e) = &q.handshake_error {
        let _ = writeln!(out, "  first handshake failure: {e}");
    }
    if let Some(d) = &q.datagrams {
        let _ = writeln!(
            out,
            "  datagrams      {} sent, {} echoed, {} lost ({:.2}%), {} duplicates, {} bytes each",
            d.sent, d.received, d.lost, d.loss_pct, d.duplicates, d.size
        );
        summary_line(&mut out, "datagram rtt", q.rtt_ms.flatten().as_ref());
    }
    if let Some(p) = &q.path {
        path_line(&mut out, "path", p);
    }
    if let Some(t) = &q.throughput {
        let _ = writeln!(
            out,
            "  stream throughput, {} s per direction:",
            t.duration_s
        );
        if let Some(d) = &t.to {
            render_direction(&mut out, "to", d);
        }
        if let Some(d) = &t.from {
            render_direction(&mut out, "from", d);
        }
    }
    out
}
