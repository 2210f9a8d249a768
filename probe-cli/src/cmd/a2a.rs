//! `probe a2a`: one agent-to-agent STAMP test, against a peer or an embedded responder.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use probe_core::a2a::runtime::{A2aError, Family, PeerSpec, Responder, ResponderConfig, run_test};
use probe_core::a2a::{
    Direction, ReflectorConfig, ReflectorCounters, StampKey, StampKeyring, planned_duration,
};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinError, JoinHandle};

use super::a2a_control::{self, Control};
use super::a2a_intervals::Show;
use super::a2a_stamp_options::options_from;
use super::a2a_views::Views;
use crate::cli::{A2aArgs, A2aProto, STAMP_PORT};

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
            let e = start_embedded(family, key.clone())?;
            (e.addr, e.addr.to_string(), String::new(), Some(e))
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
    if let Some(e) = embedded {
        match e.stop().await {
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
    views.print(args)?;
    Ok(views.exit_code(peer, key.as_ref()))
}

/// A server of a self-contained run, on loopback: its address and the task serving until
/// it is stopped.
pub(super) struct Embedded<T> {
    /// Where it listens.
    pub(super) addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<T>,
}

/// What a server's run waits on: it completes when the server is told to stop.
pub(super) type Stopped = Pin<Box<dyn Future<Output = ()> + Send>>;

impl<T: Send + 'static> Embedded<T> {
    /// Spawns `serve(stopped)` for a server listening at `addr`.
    pub(super) fn spawn<F>(addr: SocketAddr, serve: impl FnOnce(Stopped) -> F) -> Self
    where
        F: Future<Output = T> + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(Box::pin(async move {
            let _ = stopped.await;
        })));
        Embedded { addr, stop, task }
    }

    /// Stops the server; what its run returned, or why its task failed.
    pub(super) async fn stop(self) -> Result<T, JoinError> {
        let _ = self.stop.send(());
        self.task.await
    }
}

/// The loopback address of `family` (IPv4 unless IPv6 is asked for).
pub(super) fn loopback(family: Family) -> IpAddr {
    match family {
        Family::V6 => IpAddr::V6(Ipv6Addr::LOCALHOST),
        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
    }
}

/// Starts a responder on loopback (ephemeral port) for a self-contained run.
fn start_embedded(
    family: Family,
    key: Option<StampKey>,
) -> anyhow::Result<Embedded<Result<ReflectorCounters, A2aError>>> {
    let reflector = ReflectorConfig::builder()
        .clock(probe_core::a2a::runtime::local_clock_info())
        .rate_limit_pps(0)
        .build()?;
    let listen = [SocketAddr::new(loopback(family), 0)];
    let mut responder = Responder::bind(&ResponderConfig::new(listen, reflector)?)
        .context("cannot start the embedded responder")?;
    if let Some(key) = key {
        responder.set_stamp_keys(StampKeyring::with_default(key));
    }
    let addr = *responder
        .local_addrs()
        .first()
        .context("the embedded responder has no address")?;
    Ok(Embedded::spawn(addr, |stopped| responder.run(stopped)))
}
