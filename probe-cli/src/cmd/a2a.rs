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
use probe_core::a2a::{
    Direction, Limit, MAX_SIZE, ReflectorConfig, ReflectorCounters, StampKey, StampKeyring,
    VoiceConfig, planned_duration,
};
use probe_core::control::FarEndResults;
use probe_core::io::PacerConfig;
use probe_core::report::IntervalReport;
use probe_core::stats::emodel::Codec;
use probe_core::wire::stamp::BASE_LEN;
use tokio::sync::{mpsc, oneshot};

use super::a2a_control::{self, Control};
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
    if args.proto == A2aProto::Quic {
        return super::a2a_quic::run(args).await;
    }
    if args.handshakes.is_some() {
        bail!("--handshakes counts QUIC handshakes: add --proto quic");
    }
    if args.throughput {
        return super::a2a_udp_throughput::run(args).await;
    }
    if args.streams != 1 || args.mss.is_some() {
        bail!("--streams and --mss are TCP test settings: add --proto tcp");
    }
    let (base, plan) = options_from(args)?;
    let key = args
        .stamp_key_file
        .as_deref()
        .map(StampKey::from_hex_file)
        .transpose()
        .context("--stamp-key-file")?;
    let base = base.stamp_key(key.clone());
    let family = match (args.family.ipv4, args.family.ipv6) {
        (true, _) => Family::V4,
        (_, true) => Family::V6,
        _ => Family::Any,
    };
    let (peer, label, host, embedded) = match &args.peer {
        Some(spec) => {
            let spec = PeerSpec::parse(spec, STAMP_PORT)?;
            let addr = spec.resolve(family).await?;
            (addr, spec.to_string(), spec.host.clone(), None)
        }
        None => {
            let (addr, stop, task) = start_embedded(family, key.clone())?;
            (addr, addr.to_string(), String::new(), Some((stop, task)))
        }
    };
    let control = if embedded.is_some() {
        Control::None("the embedded responder has no control plane".into())
    } else if args.no_control {
        Control::None("--no-control".into())
    } else {
        let probe_opts = base.clone().peer(peer).build()?;
        let asked = args.direction.unwrap_or(Direction::Both);
        a2a_control::open(args, &host, peer, &probe_opts, asked).await?
    };
    let direction = match &control {
        Control::None(note) => a2a_control::check_direction(args.direction, note)?,
        Control::Negotiated(n) => n.direction,
    };
    let (near, from_note) = match &control {
        Control::Negotiated(n) if direction.includes_from() => match n.start_from(peer).await {
            Ok(r) => (Some(r), None),
            // The default (both) runs what can run; an explicit `from` or `both` fails.
            Err(e) if args.direction.is_none() => (None, Some(format!("{e:#}"))),
            Err(e) => {
                let _ = n.finish(Some(Duration::ZERO)).await;
                return Err(e);
            }
        },
        _ => (None, None),
    };
    let direction = if from_note.is_some() {
        Direction::To
    } else {
        direction
    };
    let show = Show::choose(args, plan);
    let (reports_tx, reports_rx) = mpsc::channel(64);
    let mut opts = base
        .peer(peer)
        .peer_label(label.clone())
        // The test future runs on this thread (block_on) and nothing else does.
        .realtime(true);
    if let Control::Negotiated(n) = &control {
        // The clock came over control: no hello TLV exchange on the STAMP path.
        opts = opts.ssid(n.ssid).peer_clock(n.peer_clock);
        match n.session_key()? {
            // Authenticated mode with the session's own key (over the TLS control connection).
            Some(k) => opts = opts.stamp_key(k),
            None if args.stamp_auth => {
                bail!("--stamp-auth: the peer granted the test without a session key")
            }
            None => {}
        }
    } else if args.stamp_auth {
        bail!(
            "--stamp-auth needs the peer's control plane to hand out a session key; without it, \
             give both ends the same --stamp-key-file"
        );
    }
    // Without reports the sender is dropped here, so that the printer sees the channel close.
    match show.every(args) {
        Some(every) => opts = opts.interval_reports(every, reports_tx),
        None => drop(reports_tx),
    }
    let opts = opts.build()?;
    // The test and the interval printer run side by side in this one future; the channel
    // closes when the test's future ends.
    let to_test = async {
        if direction.includes_to() {
            Some(run_test(opts).await)
        } else {
            // Dropping the options closes the report channel.
            drop(opts);
            None
        }
    };
    let (outcome, intervals) = tokio::join!(to_test, show.consume(reports_rx));
    if let Some((stop, task)) = embedded {
        let _ = stop.send(());
        match task.await {
            Ok(Ok(c)) => tracing::info!("embedded responder: {c:?}"),
            Ok(Err(e)) => tracing::warn!("embedded responder: {e}"),
            Err(e) => tracing::warn!("embedded responder task: {e}"),
        }
    }
    let far = match &control {
        Control::Negotiated(n) => Some(n.finish(planned_duration(plan.0, plan.1)).await),
        Control::None(_) => None,
    };
    let (req, client) = (super::a2a_trace::icmp(), control.client());
    let paths = super::a2a_trace::trace_if_asked(args, req, peer.ip(), client).await;
    let near_counters = match near {
        Some(r) => Some(r.stop().await?),
        None => None,
    };
    let outcome = match outcome {
        Some(o) => {
            let mut o = o.with_context(|| format!("the A2A test against {label} failed"))?;
            if args.report_interval.is_some() {
                o.report.intervals = intervals;
            }
            Some(o)
        }
        None => None,
    };
    let (far, control_note) = match (control, far) {
        (Control::Negotiated(n), Some(r)) => {
            let far_end = r.as_ref().ok().map(|f| a2a_control::far_end_json(&n, f));
            n.close().await;
            (Some((far_end, r)), None)
        }
        (Control::None(note), _) => (None, args.peer.is_some().then_some(note)),
        (Control::Negotiated(n), None) => {
            n.close().await;
            (None, None)
        }
    };
    if let Some(note) = &control_note
        && !args.json
    {
        eprintln!("probe: {note}: plain STAMP (RFC 8762) toward the peer only");
    }
    let views = Views {
        direction,
        outcome: outcome.as_ref(),
        far: far
            .as_ref()
            .map(|(j, r)| (j.as_ref(), r.as_ref().map_err(ToString::to_string))),
        near: near_counters.as_ref(),
        label: &label,
        control_note: control_note.as_deref(),
        direction_note: from_note.as_deref(),
        paths: paths.as_ref(),
    };
    if let Some(note) = &from_note
        && !args.json
    {
        eprintln!("probe: direction both: `from` did not run: {note}");
    }
    print(args, &views, embedded_note(args))?;
    let mut code = ExitCode::SUCCESS;
    if paths.as_ref().is_some_and(|p| !p.complete()) {
        code = ExitCode::from(1);
    }
    if let Some(o) = &outcome
        && !o.answered
    {
        eprintln!("{}", no_answer_message(&label, peer, o, key.as_ref()));
        code = ExitCode::from(1);
    }
    if let Some((_, r)) = &far {
        match r {
            Err(e) => {
                eprintln!("probe: the far end's results from {label} are missing: {e}");
                code = ExitCode::from(1);
            }
            Ok(f) if direction.includes_from() => {
                if let Some(e) = &f.sender_error {
                    eprintln!("probe: the `from` direction failed at the far end: {e}");
                    code = ExitCode::from(1);
                } else if f.sender.as_ref().is_none_or(|r| r.received == 0) {
                    eprintln!(
                        "probe: nothing of the far end's test toward this end came back                          (direction from)"
                    );
                    code = ExitCode::from(1);
                }
            }
            Ok(_) => {}
        }
    }
    Ok(code)
}

/// Everything one run measured, for the table and the JSON.
struct Views<'a> {
    direction: Direction,
    /// The `to` direction (this end's Session-Sender).
    outcome: Option<&'a TestOutcome>,
    /// The far end's view (`far_end` JSON) or why it is missing.
    far: Option<(
        Option<&'a serde_json::Value>,
        Result<&'a FarEndResults, String>,
    )>,
    /// This end's reflector of the `from` direction.
    near: Option<&'a ReflectorCounters>,
    label: &'a str,
    /// Why the test ran without the control plane (against a peer).
    control_note: Option<&'a str>,
    /// Why `from` did not run although the default (both) asked for it.
    direction_note: Option<&'a str>,
    /// The paths both ways (`--trace`).
    paths: Option<&'a super::a2a_trace::Paths>,
}

impl Views<'_> {
    fn json(&self) -> anyhow::Result<serde_json::Value> {
        let mut v = match self.outcome {
            Some(o) => serde_json::to_value(&o.report)?,
            None => serde_json::json!({ "peer": self.label }),
        };
        let Some(obj) = v.as_object_mut() else {
            return Ok(v);
        };
        obj.insert("direction".into(), self.direction.as_str().into());
        let negotiated = self.far.is_some();
        obj.insert(
            "control".into(),
            if negotiated { "negotiated" } else { "none" }.into(),
        );
        if let Some(note) = self.direction_note {
            obj.insert("direction_note".into(), note.into());
        }
        if let Some(note) = self.control_note {
            obj.insert("control_note".into(), note.into());
        }
        if let Some((far_end, result)) = &self.far {
            match (far_end, result) {
                (Some(j), _) => {
                    obj.insert("far_end".into(), (*j).clone());
                }
                (None, Err(e)) => {
                    obj.insert("far_end_error".into(), e.clone().into());
                }
                (None, Ok(_)) => {}
            }
            if self.direction.includes_from() {
                obj.insert(
                    "from".into(),
                    a2a_control::from_json(result.as_ref().ok().copied(), self.near),
                );
            }
        }
        if let Some(p) = self.paths {
            obj.insert("path".into(), p.json());
        }
        Ok(v)
    }

    fn table(&self, note: &str) -> String {
        let mut out = String::new();
        if let Some(o) = self.outcome {
            out.push_str(&a2a_table::render(o, note));
        }
        if let Some((_, result)) = &self.far {
            match result {
                Ok(f) => {
                    if let Some(r) = &f.reflector {
                        let _ = writeln!(
                            out,
                            "\nfar end (its own view): received {}, reflected {}, rate-limited {}; clock {}{}",
                            r.received,
                            r.reflected,
                            r.rate_limited,
                            if f.clock.synced {
                                "synchronized"
                            } else {
                                "not synchronized"
                            },
                            f.clock.max_error_ns.map_or_else(String::new, |ns| format!(
                                ", max error {} us",
                                ns / 1000
                            ))
                        );
                    }
                    if let Some(r) = &f.sender {
                        let _ = writeln!(
                            out,
                            "\ndirection from: the far end sent toward this end (forward = toward this end)"
                        );
                        out.push_str(&a2a_table::render_report(r, None, ""));
                    }
                    if let Some(e) = &f.sender_error {
                        let _ = writeln!(out, "\ndirection from failed at the far end: {e}");
                    }
                }
                Err(e) => {
                    let _ = writeln!(out, "\nfar end's view missing: {e}");
                }
            }
        }
        if let Some(c) = self.near {
            let _ = writeln!(
                out,
                "this end's reflector: received {}, reflected {}",
                c.received, c.reflected
            );
        }
        if let Some(p) = self.paths {
            out.push_str(&p.table());
        }
        out
    }
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
    if let Some(margin) = args.spin {
        let pacer = PacerConfig::default();
        o = o.pacer(if margin.is_zero() {
            pacer.no_spin()
        } else {
            pacer.spin(margin).max_spin(margin.saturating_mul(2))
        });
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
fn start_embedded(family: Family, key: Option<StampKey>) -> anyhow::Result<Embedded> {
    let ip = match family {
        Family::V6 => IpAddr::V6(Ipv6Addr::LOCALHOST),
        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    let reflector = ReflectorConfig::builder()
        .clock(probe_core::a2a::runtime::local_clock_info())
        .rate_limit_pps(0)
        .build()?;
    let mut responder =
        Responder::bind(&ResponderConfig::new([SocketAddr::new(ip, 0)], reflector)?)
            .context("cannot start the embedded responder")?;
    if let Some(key) = key {
        responder.set_stamp_keys(StampKeyring::with_default(key));
    }
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

fn print(args: &A2aArgs, views: &Views<'_>, note: &str) -> anyhow::Result<()> {
    if let Some(path) = &args.html {
        if let Some(o) = views.outcome {
            super::report::write_html(path, &probe_core::report::html::a2a_page(&o.report)?)?;
        } else {
            eprintln!("probe: --html: no report of this end's test to draw (--direction from)");
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&views.json()?)?);
    } else {
        print!("{}", views.table(note));
    }
    Ok(())
}

fn no_answer_message(
    label: &str,
    addr: SocketAddr,
    outcome: &TestOutcome,
    key: Option<&StampKey>,
) -> String {
    if let Some(key) = key {
        let mut m = format!(
            "probe: nothing answered at {label} ({addr}/udp) in STAMP authenticated mode: {} packets sent, 100% lost.\nLikely cause: authentication. The peer does not hold this key (key id {}), or does not run authenticated mode: it drops packets with a wrong HMAC without a reply. Give `probe serve` there the same --stamp-key-file (it prints its key id at start).",
            outcome.report.sent,
            key.id()
        );
        if outcome.report.auth_failed > 0 {
            let _ = write!(
                m,
                "\n{} replies came back with a wrong HMAC: the peer answers with another key.",
                outcome.report.auth_failed
            );
        }
        let _ = write!(
            m,
            "\nOtherwise: no responder runs there, or a firewall drops UDP to port {}.",
            addr.port()
        );
        return m;
    }
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
