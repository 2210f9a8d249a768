//! `probe a2a --throughput` (UDP): negotiated over the peer's control plane, each direction
//! floods numbered datagrams at `--rate` (default `max`) and the receiving end counts them:
//! `to` is counted by the far end's STAMP port (counted, never reflected), `from` is sent by
//! the far end through the mapping our punch opened and counted here.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use probe_core::a2a::Direction;
use probe_core::a2a::runtime::{Family, PeerSpec, local_clock_info};
use probe_core::a2a::throughput::packet::HEADER_LEN;
use probe_core::a2a::throughput::{BlastPlan, SAMPLE_EVERY, blast, receive};
use probe_core::control::messages::ClockFacts;
use probe_core::control::negotiation::{punch, random_ssid};
use probe_core::control::{TestKind, TestRequest};
use probe_core::io::{PolledSocket, SocketOptions};
use probe_core::report::udp_throughput::{
    ReceiveInterval, ReceiverCounts, SenderCounts, ThroughputClock, ThroughputSection,
    UdpDirectionReport, UdpThroughputReport,
};
use probe_core::time::{ClockMode, PeerClock, decide_mode};

use super::a2a_control::{self, Control, Negotiated};
use super::a2a_tcp::rate as bit_rate;
use super::a2a_trace;
use crate::cli::{A2aArgs, Rate, STAMP_PORT};

/// Sending time when neither --duration nor --count is given.
const DEFAULT_DURATION: Duration = Duration::from_secs(10);
/// Punches sent toward the far end's sender port.
const PUNCHES: u32 = 3;
/// Time between punches.
const PUNCH_GAP: Duration = Duration::from_millis(50);
/// How long the far end may take to see our punch.
const PUNCH_CONFIRM: Duration = Duration::from_millis(1500);
/// Time between checks of the far end's sender.
const POLL: Duration = Duration::from_millis(200);
/// How long past the planned time the far end's sender may take before we stop counting.
const FROM_SLACK: Duration = Duration::from_secs(15);

/// The settings of one test, checked.
struct Plan {
    direction: Direction,
    rate_pps: Option<f64>,
    duration: Duration,
    count: Option<u64>,
    size: usize,
    interval: Duration,
}

fn plan(args: &A2aArgs) -> anyhow::Result<Plan> {
    if args.profile.is_some() {
        bail!("--profile voice is a STAMP test: drop --throughput");
    }
    if args.streams != 1 || args.mss.is_some() {
        bail!("--streams and --mss are TCP settings: add --proto tcp, or drop them");
    }
    if args.stamp_key_file.is_some() {
        bail!("--stamp-key-file authenticates STAMP; a UDP throughput test sends no STAMP");
    }
    if args.interval != Duration::from_millis(10) {
        bail!("--interval paces STAMP; give a UDP throughput test --rate PPS or --rate max");
    }
    if args.size < HEADER_LEN || args.size > 65_507 {
        bail!(
            "--size {} is outside {HEADER_LEN}..=65507: a UDP throughput datagram carries a \
             {HEADER_LEN}-byte header",
            args.size
        );
    }
    let rate_pps = match args.rate {
        Some(Rate::Pps(p)) => Some(p),
        Some(Rate::Max) | None => None,
    };
    let duration = match (args.duration, args.count, rate_pps) {
        (Some(d), _, _) => d,
        (None, Some(c), Some(r)) => Duration::from_secs_f64(c as f64 / r),
        (None, Some(_), None) => {
            bail!("--count with --rate max has no planned length: give --duration, or a --rate")
        }
        (None, None, _) => DEFAULT_DURATION,
    };
    if args.count == Some(0) {
        bail!("--count must be at least 1");
    }
    Ok(Plan {
        direction: args.direction.unwrap_or(Direction::Both),
        rate_pps,
        duration,
        count: args.count,
        size: args.size,
        interval: args.report_interval.unwrap_or(Duration::from_secs(1)),
    })
}

pub async fn run(args: &A2aArgs) -> anyhow::Result<ExitCode> {
    let plan = plan(args)?;
    let Some(spec) = &args.peer else {
        bail!(
            "a UDP throughput test needs --peer (a `probe serve` with its control plane); the \
             embedded responder has none"
        );
    };
    if args.no_control {
        bail!(
            "a UDP throughput test is negotiated over the peer's control plane: drop --no-control"
        );
    }
    let family = match (args.family.ipv4, args.family.ipv6) {
        (true, _) => Family::V4,
        (_, true) => Family::V6,
        _ => Family::Any,
    };
    let spec = PeerSpec::parse(spec, STAMP_PORT)?;
    let peer = spec.resolve(family).await?;
    let label = spec.to_string();
    let req = TestRequest {
        kind: TestKind::UdpThroughput,
        direction: plan.direction,
        interval_ns: plan.rate_pps.map(|r| (1e9 / r).round().max(1.0) as u64),
        count: plan.count,
        duration_ms: Some(
            u64::try_from(plan.duration.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
        ),
        size: u32::try_from(plan.size).unwrap_or(u32::MAX),
        dscp: args.dscp,
        ssid: random_ssid(),
        port: None,
        clock: Some(ClockFacts::from_info(&local_clock_info())),
        auth: false,
    };
    let n = match a2a_control::open_request(args, &spec.host, peer, req).await? {
        Control::Negotiated(n) => n,
        Control::None(why) => {
            bail!("a UDP throughput test needs the peer's control plane, and {why}")
        }
    };
    let result = measure(args, &plan, &n, peer).await;
    let (section, errors) = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = n.finish(Some(Duration::ZERO)).await;
            n.close().await;
            return Err(e);
        }
    };
    let clock = clock(&n);
    let owd = clock.mode != ClockMode::Estimated;
    let section = ThroughputSection {
        to: section.to.map(|(s, r)| {
            UdpDirectionReport::from_counts(&s, &rebin(r, plan.interval), plan.size, owd)
        }),
        from: section
            .from
            .map(|(s, r)| UdpDirectionReport::from_counts(&s, &r, plan.size, owd)),
    };
    // Traced once the session is over, over its control connection.
    let paths = a2a_trace::trace_if_asked(args, a2a_trace::icmp(), peer.ip(), Ok(n.client())).await;
    n.close().await;
    let ok = errors.is_empty();
    let report = UdpThroughputReport {
        peer: label,
        address: peer.to_string(),
        direction: plan.direction,
        rate_pps: plan.rate_pps,
        size: plan.size,
        duration_s: plan.duration.as_secs_f64(),
        sample_every: SAMPLE_EVERY,
        clock,
        throughput: section,
        errors,
    };
    a2a_trace::print_report(args.json, &report, render, ok, paths.as_ref())
}

/// Each direction's (sender, receiver) counts.
#[derive(Default)]
struct Counts {
    to: Option<(SenderCounts, ReceiverCounts)>,
    from: Option<(SenderCounts, ReceiverCounts)>,
}

fn bind(args: &A2aArgs, peer: SocketAddr) -> anyhow::Result<PolledSocket> {
    let ip = match (args.source, peer) {
        (Some(ip), _) => ip,
        (None, SocketAddr::V4(_)) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        (None, SocketAddr::V6(_)) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let mut opts = SocketOptions {
        device: args.interface.clone(),
        recv_buffer: Some(8 << 20),
        send_buffer: Some(4 << 20),
        ..SocketOptions::default()
    };
    if let Some(d) = args.dscp {
        opts = opts.with_dscp(d);
    }
    PolledSocket::bind_udp(SocketAddr::new(ip, 0), &opts)
        .with_context(|| format!("cannot open a UDP socket on {ip}"))
}

async fn measure(
    args: &A2aArgs,
    plan: &Plan,
    n: &Negotiated,
    peer: SocketAddr,
) -> anyhow::Result<(Counts, Vec<String>)> {
    let session = n.accepted.session;
    let mut errors = Vec::new();
    // `from` first: the far end starts sending once our punch arrives.
    let receiver = if plan.direction.includes_from() {
        let sock = Arc::new(bind(args, peer)?);
        let port = n
            .accepted
            .sender_port
            .context("the peer granted `from` without a sender port")?;
        let far = SocketAddr::new(peer.ip(), port);
        for i in 0..PUNCHES {
            if i > 0 {
                tokio::time::sleep(PUNCH_GAP).await;
            }
            sock.socket()
                .send_to(&punch(session), &far.into())
                .with_context(|| format!("cannot send the punch to {far}/udp"))?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (s, flag, interval) = (Arc::clone(&sock), Arc::clone(&stop), plan.interval);
        let deadline = Instant::now() + plan.duration + FROM_SLACK + PUNCH_CONFIRM;
        let task = tokio::task::spawn_blocking(move || {
            receive(&s, session, peer.ip(), Some(interval), &flag, deadline)
        });
        confirm_punch(n, far).await?;
        Some((stop, task))
    } else {
        None
    };
    let sender = if plan.direction.includes_to() {
        let sock = bind(args, peer)?;
        let blast_plan = BlastPlan {
            dst: SocketAddr::new(peer.ip(), n.accepted.stamp_port),
            session,
            size: plan.size,
            rate_pps: plan.rate_pps,
            duration: plan.duration,
            count: plan.count,
            sample_every: SAMPLE_EVERY,
        };
        Some(tokio::task::spawn_blocking(move || {
            blast(&sock, &blast_plan, &AtomicBool::new(false))
        }))
    } else {
        None
    };
    let sent_to = match sender {
        Some(t) => Some(t.await.context("the sender thread")?),
        None => None,
    };
    let (mut far_sent, mut from) = (None, None);
    if let Some((stop, task)) = receiver {
        let give_up = Instant::now() + plan.duration + FROM_SLACK;
        loop {
            match n.peek(POLL * 5).await {
                Ok(f) if matches!(f.sender_state.as_deref(), Some("done" | "failed")) => {
                    far_sent = f.throughput.and_then(|t| t.sent);
                    if let Some(e) = f.sender_error {
                        errors.push(format!("from: the far end's sender failed: {e}"));
                    }
                    break;
                }
                Ok(_) if Instant::now() < give_up => tokio::time::sleep(POLL).await,
                Ok(_) => {
                    errors.push("from: the far end's sender did not finish in time".into());
                    break;
                }
                Err(e) => {
                    errors.push(format!("from: the far end's state: {e}"));
                    break;
                }
            }
        }
        // Datagrams still on the way.
        tokio::time::sleep(args.wait).await;
        stop.store(true, Ordering::Relaxed);
        let got = task.await.context("the receiver thread")?;
        from = far_sent.map(|sent| (sent, got));
    } else if sent_to.is_some() {
        tokio::time::sleep(args.wait).await;
    }
    let far = n
        .finish(Some(Duration::ZERO))
        .await
        .context("the far end's results")?;
    let mut counts = Counts {
        from,
        ..Counts::default()
    };
    if let Some(sent) = sent_to {
        match far.throughput.and_then(|t| t.received) {
            Some(r) => counts.to = Some((sent, r)),
            None => errors.push("to: the far end returned no receiver counts".into()),
        }
    }
    Ok((counts, errors))
}

/// Waits until the far end saw our punch; an error naming the unreachable port otherwise.
async fn confirm_punch(n: &Negotiated, far: SocketAddr) -> anyhow::Result<()> {
    let give_up = Instant::now() + PUNCH_CONFIRM;
    loop {
        let f = n
            .peek(PUNCH_CONFIRM)
            .await
            .context("the far end's state of the `from` direction")?;
        if f.sender_state.as_deref() != Some("waiting_punch") {
            return Ok(());
        }
        if Instant::now() >= give_up {
            bail!(
                "the far end never saw our punch to {far}/udp: its sender port is not reachable \
                 from here (the far end may be behind NAT without that port published); use \
                 --direction to"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The clock facts behind one-way delays: ours and the peer's from the control plane.
fn clock(n: &Negotiated) -> ThroughputClock {
    let (mode, error) = decide_mode(&local_clock_info(), &PeerClock::Known(n.peer_clock));
    let note = match mode {
        ClockMode::Shared => "both ends run on one kernel: one-way delays are exact",
        ClockMode::Synced => {
            "both clocks are synchronized: one-way delays are within error_ms of the truth"
        }
        ClockMode::Estimated => {
            "the clocks are neither shared nor synchronized and a one-way flood cannot \
             estimate their offset: no one-way delay is reported"
        }
    };
    ThroughputClock {
        mode,
        error_ms: error.map(|d| d.as_secs_f64() * 1e3),
        note: note.into(),
    }
}

/// The far end's rows merged to `width` (the far end's rows are at least 100 ms wide).
fn rebin(mut r: ReceiverCounts, width: Duration) -> ReceiverCounts {
    if r.interval_s <= 0.0 || r.intervals.is_empty() {
        return r;
    }
    let k = ((width.as_secs_f64() / r.interval_s).round() as usize).max(1);
    let w = r.interval_s * k as f64;
    r.intervals = r
        .intervals
        .chunks(k)
        .enumerate()
        .map(|(i, rows)| ReceiveInterval {
            start_s: i as f64 * w,
            end_s: (i + 1) as f64 * w,
            received: rows.iter().map(|x| x.received).sum(),
            bytes: rows.iter().map(|x| x.bytes).sum(),
        })
        .collect();
    r.interval_s = w;
    r
}

fn render_direction(out: &mut String, name: &str, d: &UdpDirectionReport) {
    let loss = d
        .loss_pct
        .map_or_else(|| "-".into(), |p| format!("{p:.3}%"));
    let _ = writeln!(
        out,
        "  {name:<4} offered {:.0} pkt/s ({}), received {:.0} pkt/s ({}); sent {}, lost {} \
         ({loss}), {} duplicates, {} reordered, {} not sent (kernel refused)",
        d.offered_pps,
        bit_rate(d.offered_bps),
        d.received_pps,
        bit_rate(d.received_bps),
        d.sent,
        d.lost,
        d.duplicates,
        d.reordered,
        d.send_failed
    );
    match &d.owd_ms {
        Some(s) => {
            let _ = writeln!(
                out,
                "       one-way delay ({} samples) min {:.3}  p50 {:.3}  p99 {:.3}  max {:.3} ms",
                d.owd_samples, s.min, s.p50, s.p99, s.max
            );
        }
        None => {
            let _ = writeln!(out, "       one-way delay -");
        }
    }
    for i in &d.intervals {
        let _ = writeln!(
            out,
            "    {:>7.2}-{:<7.2} s  {:.0} pkt/s  {}",
            i.start_s,
            i.end_s,
            i.received_pps,
            bit_rate(i.received_bps)
        );
    }
}

fn render(r: &UdpThroughputReport) -> String {
    let mut out = String::new();
    let rate = r
        .rate_pps
        .map_or_else(|| "max".into(), |p| format!("{p:.0} pkt/s"));
    let _ = writeln!(
        out,
        "UDP throughput with {} ({}), {} bytes at {rate}, {:.1} s; clock {}",
        r.peer, r.address, r.size, r.duration_s, r.clock.mode
    );
    if let Some(d) = &r.throughput.to {
        render_direction(&mut out, "to", d);
    }
    if let Some(d) = &r.throughput.from {
        render_direction(&mut out, "from", d);
    }
    for e in &r.errors {
        let _ = writeln!(out, "  error: {e}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn far_rows_merge_to_the_report_interval() {
        let rows = (0..25)
            .map(|i| ReceiveInterval {
                start_s: f64::from(i) * 0.1,
                end_s: f64::from(i + 1) * 0.1,
                received: 10,
                bytes: 640,
            })
            .collect();
        let r = ReceiverCounts {
            interval_s: 0.1,
            intervals: rows,
            ..ReceiverCounts::default()
        };
        let m = rebin(r, Duration::from_secs(1));
        assert_eq!(m.intervals.len(), 3);
        assert_eq!(m.intervals[0].received, 100);
        assert_eq!(m.intervals[2].received, 50);
        assert!((m.intervals[1].end_s - 2.0).abs() < 1e-9 && (m.interval_s - 1.0).abs() < 1e-9);
    }
}
