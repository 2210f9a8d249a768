//! `probe a2a`: one agent-to-agent STAMP test, against a peer or an embedded responder.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use probe_core::a2a::runtime::{
    A2aOptions, A2aOptionsBuilder, Family, Pace, PeerSpec, Responder, ResponderConfig, TestOutcome,
    run_test,
};
use probe_core::a2a::{Limit, MAX_SIZE, ReflectorConfig, VoiceConfig, planned_duration};
use probe_core::report::IntervalReport;
use probe_core::stats::emodel::Codec;
use probe_core::wire::stamp::BASE_LEN;
use tokio::sync::{mpsc, oneshot};

use super::a2a_table;
use crate::cli::{A2aArgs, A2aProto, Profile, Rate, STAMP_PORT};

/// Packets allowed unanswered in a `--rate max` flood.
const FLOOD_WINDOW: u32 = 256;
/// Packets sent when neither --count nor --duration is given.
const DEFAULT_COUNT: u32 = 100;

pub async fn run(args: &A2aArgs) -> anyhow::Result<ExitCode> {
    if args.proto == A2aProto::Tcp {
        return super::a2a_tcp::run(args).await;
    }
    if args.throughput || args.streams != 1 || args.mss.is_some() {
        bail!(
            "--throughput, --streams and --mss are TCP test settings: add --proto tcp (UDP throughput is not available yet)"
        );
    }
    let (base, plan) = options_from(args)?;
    let family = match (args.family.ipv4, args.family.ipv6) {
        (true, _) => Family::V4,
        (_, true) => Family::V6,
        _ => Family::Any,
    };
    let (peer, label, embedded) = match &args.peer {
        Some(spec) => {
            let spec = PeerSpec::parse(spec, STAMP_PORT)?;
            let addr = spec.resolve(family).await?;
            (addr, spec.to_string(), None)
        }
        None => {
            let (addr, stop, task) = start_embedded(family)?;
            (addr, addr.to_string(), Some((stop, task)))
        }
    };
    let show = Show::choose(args, plan);
    let (reports_tx, reports_rx) = mpsc::channel(64);
    let mut opts = base
        .peer(peer)
        .peer_label(label.clone())
        // The test future runs on this thread (block_on) and nothing else does.
        .realtime(true);
    // Without reports the sender is dropped here, so that the printer sees the channel close.
    match show.every(args) {
        Some(every) => opts = opts.interval_reports(every, reports_tx),
        None => drop(reports_tx),
    }
    let opts = opts.build()?;
    // The test and the interval printer run side by side in this one future; the channel
    // closes when the test's future ends.
    let (outcome, intervals) = tokio::join!(run_test(opts), show.consume(reports_rx));
    if let Some((stop, task)) = embedded {
        let _ = stop.send(());
        match task.await {
            Ok(Ok(c)) => tracing::info!("embedded responder: {c:?}"),
            Ok(Err(e)) => tracing::warn!("embedded responder: {e}"),
            Err(e) => tracing::warn!("embedded responder task: {e}"),
        }
    }
    let mut outcome = outcome.with_context(|| format!("the A2A test against {label} failed"))?;
    if args.report_interval.is_some() {
        outcome.report.intervals = intervals;
    }
    print(args, &outcome, embedded_note(args))?;
    if !outcome.answered {
        eprintln!("{}", no_answer_message(&label, peer, &outcome));
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// The test settings the flags describe (peer filled in later, settings checked then), and
/// the planned `(pace, limit)`.
fn options_from(args: &A2aArgs) -> anyhow::Result<(A2aOptionsBuilder, (Pace, Limit))> {
    if !(BASE_LEN..=MAX_SIZE).contains(&args.size) {
        bail!(
            "--size {} is outside {BASE_LEN}..={MAX_SIZE}: a STAMP test packet needs at least {BASE_LEN} bytes of UDP payload",
            args.size
        );
    }
    let limit = match (args.count, args.duration) {
        (Some(0), _) => bail!("--count must be at least 1"),
        (Some(c), _) => Limit::Count(
            u32::try_from(c)
                .ok()
                .filter(|&c| c < u32::MAX)
                .with_context(|| format!("--count {c} is too large (at most {})", u32::MAX - 1))?,
        ),
        (None, Some(d)) if d.is_zero() => bail!("--duration must be positive"),
        (None, Some(d)) => Limit::Duration(d),
        (None, None) => Limit::Count(DEFAULT_COUNT),
    };
    let pace = match args.rate {
        Some(Rate::Max) => Pace::Max {
            window: FLOOD_WINDOW,
        },
        Some(Rate::Pps(pps)) => Pace::Interval(
            // The parser keeps pps within MIN_RATE..=MAX_RATE, so this cannot fail.
            Duration::try_from_secs_f64(1.0 / pps)
                .with_context(|| format!("--rate {pps} gives no valid interval"))?
                .max(Duration::from_nanos(1)),
        ),
        None if args.interval.is_zero() => bail!("--interval must be positive (or use --rate max)"),
        None => Pace::Interval(args.interval),
    };
    let mut o = A2aOptions::builder(SocketAddr::from(([127, 0, 0, 1], STAMP_PORT)))
        .size(args.size)
        .dscp(args.dscp)
        .source(args.source)
        .wait(args.wait);
    if let Some(dev) = &args.interface {
        o = o.interface(dev.clone());
    }
    let (o, pace, limit) = if args.profile == Some(Profile::Voice) {
        voice_options(args, o)?
    } else {
        (o, pace, limit)
    };
    let o = o.timeline(args.timeline || args.html.is_some());
    Ok((o.pace(pace).limit(limit), (pace, limit)))
}

/// Voice profile bounds on --duration.
const VOICE_DURATION: (Duration, Duration) = (Duration::from_secs(5), Duration::from_secs(30));
/// Expedited Forwarding, the DSCP of voice.
const VOICE_DSCP: u8 = 46;

/// `--profile voice`: the codec's packet every 20 ms, DSCP 46, 5 to 30 s (10 s by default).
fn voice_options(
    args: &A2aArgs,
    o: A2aOptionsBuilder,
) -> anyhow::Result<(A2aOptionsBuilder, Pace, Limit)> {
    let d = args.duration.unwrap_or(Duration::from_secs(10));
    let (lo, hi) = VOICE_DURATION;
    if !(lo..=hi).contains(&d) {
        bail!(
            "--duration {} is outside 5s..=30s: a --profile voice test runs 5 to 30 seconds",
            humantime::format_duration(d)
        );
    }
    let voice = VoiceConfig {
        codec: args.codec.codec(),
        jitter_buffer: args.jitter_buffer,
    };
    let o = o
        .size(voice.packet_size())
        .dscp(args.dscp.unwrap_or(VOICE_DSCP))
        .voice(voice);
    let pace = Pace::Interval(Duration::from_millis(Codec::PACKET_MS));
    Ok((o, pace, Limit::Duration(d)))
}

/// How interval reports show while the test runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Show {
    /// Nowhere (collected for the JSON, if asked for).
    Nothing,
    /// A line per interval on stdout (`--report-interval` without `--json`).
    Lines,
    /// One live progress line on stderr, rewritten each second (a terminal, a long run).
    Progress,
}

impl Show {
    fn choose(args: &A2aArgs, (pace, limit): (Pace, Limit)) -> Show {
        if args.report_interval.is_some() && !args.json {
            return Show::Lines;
        }
        let long = planned_duration(pace, limit).is_none_or(|d| d > Duration::from_secs(2));
        if !args.quiet && long && std::io::stderr().is_terminal() {
            Show::Progress
        } else {
            Show::Nothing
        }
    }

    /// The interval the engine reports at.
    fn every(self, args: &A2aArgs) -> Option<Duration> {
        match (self, args.report_interval) {
            (_, Some(every)) => Some(every),
            (Show::Progress, None) => Some(Duration::from_secs(1)),
            _ => None,
        }
    }

    /// Shows each report as it comes; returns them all once the channel closes.
    async fn consume(self, mut rx: mpsc::Receiver<IntervalReport>) -> Vec<IntervalReport> {
        let mut all = Vec::new();
        let mut stderr = std::io::stderr();
        if self == Show::Lines {
            println!("{}", a2a_table::interval_header());
        }
        while let Some(r) = rx.recv().await {
            match self {
                Show::Lines => println!("{}", a2a_table::interval_line(&r)),
                Show::Progress => {
                    let _ = write!(stderr, "\r\x1b[2K{}", a2a_table::progress_line(&r));
                    let _ = stderr.flush();
                }
                Show::Nothing => {}
            }
            all.push(r);
        }
        if self == Show::Progress && !all.is_empty() {
            let _ = write!(stderr, "\r\x1b[2K");
            let _ = stderr.flush();
        }
        all
    }
}

type Embedded = (
    SocketAddr,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<
        Result<probe_core::a2a::ReflectorCounters, probe_core::a2a::runtime::A2aError>,
    >,
);

/// Starts a responder on loopback (ephemeral port) for a self-contained run.
fn start_embedded(family: Family) -> anyhow::Result<Embedded> {
    let ip = match family {
        Family::V6 => IpAddr::V6(Ipv6Addr::LOCALHOST),
        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    let responder = Responder::bind(&ResponderConfig {
        listen: vec![SocketAddr::new(ip, 0)],
        reflector: ReflectorConfig {
            clock: probe_core::a2a::runtime::local_clock_info(),
            rate_limit_pps: 0,
            ..ReflectorConfig::default()
        },
    })
    .context("cannot start the embedded responder")?;
    let addr = *responder
        .local_addrs()
        .first()
        .context("the embedded responder has no address")?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(responder.run(async move {
        let _ = stopped.await;
    }));
    Ok((addr, stop, task))
}

fn embedded_note(args: &A2aArgs) -> &'static str {
    if args.peer.is_none() {
        " (embedded responder)"
    } else {
        ""
    }
}

fn print(args: &A2aArgs, outcome: &TestOutcome, note: &str) -> anyhow::Result<()> {
    if let Some(path) = &args.html {
        super::report::write_html(path, &probe_core::report::html::a2a_page(&outcome.report)?)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome.report)?);
    } else {
        print!("{}", a2a_table::render(outcome, note));
    }
    Ok(())
}

fn no_answer_message(label: &str, addr: SocketAddr, outcome: &TestOutcome) -> String {
    let mut m = format!(
        "probe: nothing answered at {label} ({addr}/udp): {} packets sent, 100% lost.\nLikely causes:\n  - no `probe serve` (or other STAMP responder) runs there, or it listens on another port;\n  - a firewall drops UDP to port {port};\n  - the peer is behind NAT without a published port (docker run --publish {port}:{port}/udp).",
        outcome.report.sent,
        port = addr.port()
    );
    if let Some(icmp) = &outcome.icmp_error {
        let _ = write!(m, "\nThe network said: {icmp}.");
    }
    m
}
