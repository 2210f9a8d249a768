//! `probe a2a` over the peer's control plane: connect to PEER's control port, negotiate the
//! test, run the far end's direction (`from`: a reflector here, the far end sends toward it
//! through the mapping our punch opened), and fetch the far end's view.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, bail};
use probe_core::a2a::runtime::{A2aOptions, Responder, ResponderConfig, local_clock_info};
use probe_core::a2a::{
    Direction, Limit, Pace, ReflectorConfig, ReflectorCounters, StampKey, StampKeyring,
};
use probe_core::control::messages::ClockFacts;
use probe_core::control::negotiation::{punch, random_ssid};
use probe_core::control::{
    ControlClient, ControlError, FarEndResults, PeerHello, TestAccepted, TestKind, TestRequest,
    connect,
};
use probe_core::time::ClockInfo;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::control::client_config;
use crate::cli::A2aArgs;

/// Punches sent (a lost one would cost the whole `from` direction).
const PUNCHES: u32 = 3;
/// Time between punches.
const PUNCH_GAP: Duration = Duration::from_millis(50);
/// How long the far end may take to see our punch (else its sender port is unreachable).
const PUNCH_CONFIRM: Duration = Duration::from_millis(1500);
/// Time between checks of the far end's sender state.
const PUNCH_POLL: Duration = Duration::from_millis(100);
/// Extra time the final results request may take beyond the planned test.
const RESULTS_PATIENCE: Duration = Duration::from_secs(15);

/// How the test reached the peer.
pub enum Control {
    /// Plain STAMP only: the note says why.
    None(String),
    /// Negotiated over the control plane.
    Negotiated(Box<Negotiated>),
}

impl Control {
    /// The control connection, or the note saying why the test has none.
    pub fn client(&self) -> Result<&ControlClient, &str> {
        match self {
            Control::Negotiated(n) => Ok(&n.client),
            Control::None(note) => Err(note),
        }
    }
}

/// A test granted by the peer's control plane.
pub struct Negotiated {
    client: ControlClient,
    /// The grant.
    pub accepted: TestAccepted,
    /// The peer's clock facts (from the welcome).
    pub peer_clock: ClockInfo,
    /// The SSID of both directions.
    pub ssid: u16,
    /// The peer's identity.
    pub fingerprint: String,
    /// The direction granted.
    pub direction: Direction,
}

/// The near end's reflector of a `from` test.
pub struct NearReflector {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<ReflectorCounters, probe_core::a2a::runtime::A2aError>>,
}

/// Connects to the peer's control plane and asks for the test; `Control::None` when nothing
/// answers there in time (plain STAMP then). Every other failure (identity, token, version,
/// a limit) is an error naming the cause.
pub async fn open(
    args: &A2aArgs,
    host: &str,
    peer: SocketAddr,
    opts: &A2aOptions,
    direction: Direction,
) -> anyhow::Result<Control> {
    let mut req = request(opts, direction, random_ssid());
    req.auth = args.stamp_auth;
    open_request(args, host, peer, req).await
}

/// [`open`] asking for `req` (any kind of test; its direction and SSID are the test's).
pub async fn open_request(
    args: &A2aArgs,
    host: &str,
    peer: SocketAddr,
    req: TestRequest,
) -> anyhow::Result<Control> {
    let (ssid, direction) = (req.ssid, req.direction);
    let (client, hello, key) = match connect_peer(args, host, peer).await? {
        Ok(c) => c,
        Err(note) => return Ok(Control::None(note)),
    };
    let accepted = match client.request_test(&req).await {
        Ok(a) => a,
        Err(e) => {
            client.close().await;
            return Err(e).with_context(|| format!("{key} refused the test"));
        }
    };
    Ok(Control::Negotiated(Box::new(Negotiated {
        client,
        accepted,
        peer_clock: hello.clock,
        ssid,
        fingerprint: hello.fingerprint,
        direction,
    })))
}

/// A welcomed control connection to the peer (pinned, token sent), its hello and the
/// peer's `HOST:PORT` key; `Err(note)` when nothing answers there in time. Every other
/// failure (identity, token, version) is an error naming the cause.
pub async fn connect_peer(
    args: &A2aArgs,
    host: &str,
    peer: SocketAddr,
) -> anyhow::Result<Result<(ControlClient, PeerHello, String), String>> {
    let server = SocketAddr::new(peer.ip(), args.control_port);
    let key = if host.contains(':') {
        format!("[{host}]:{}", args.control_port)
    } else {
        format!("{host}:{}", args.control_port)
    };
    let mut config = client_config(
        &args.control,
        args.peer_fingerprint.as_deref(),
        server,
        &key,
    )?;
    config.timeout = args.control_timeout;
    let client = match connect(config).await {
        Ok(c) => c,
        Err(ControlError::Timeout { secs, .. }) => {
            return Ok(Err(format!(
                "no control plane answered at {key}/udp within {secs} s"
            )));
        }
        Err(e @ ControlError::Refused { .. }) => return Ok(Err(e.to_string())),
        Err(e) => return Err(e).with_context(|| format!("the control plane of {key}")),
    };
    match client.hello().await {
        Ok(h) => Ok(Ok((client, h, key))),
        Err(e) => {
            client.close().await;
            Err(e).with_context(|| format!("the control plane of {key}"))
        }
    }
}

/// The request for the test the options describe.
fn request(opts: &A2aOptions, direction: Direction, ssid: u16) -> TestRequest {
    let interval_ns = match opts.pace() {
        Pace::Interval(i) => Some(u64::try_from(i.as_nanos()).unwrap_or(u64::MAX)),
        _ => None,
    };
    let (count, duration_ms) = match opts.limit() {
        Limit::Count(c) => (
            Some(u64::from(c)),
            interval_ns.map(|ns| u64::from(c).saturating_mul(ns) / 1_000_000),
        ),
        Limit::Duration(d) => (None, Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))),
        _ => (None, None),
    };
    TestRequest {
        kind: TestKind::Stamp,
        direction,
        interval_ns,
        count,
        duration_ms,
        size: u32::try_from(opts.size()).unwrap_or(u32::MAX),
        dscp: opts.dscp(),
        ssid,
        port: None,
        clock: Some(ClockFacts::from_info(&local_clock_info())),
        auth: false,
    }
}

impl Negotiated {
    /// Starts the near end's reflector and opens the NAT mapping toward the far end's
    /// sender port.
    pub async fn start_from(&self, peer: SocketAddr) -> anyhow::Result<NearReflector> {
        let sender_port = self
            .accepted
            .sender_port
            .context("the peer granted `from` without a sender port")?;
        let any = if peer.is_ipv4() {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        };
        let reflector = ReflectorConfig::builder()
            .clock(local_clock_info())
            .rate_limit_pps(0)
            .loop_guard_port(None)
            .build()
            .context("the reflector of the `from` direction")?;
        let config = ResponderConfig::new(vec![SocketAddr::new(any, 0)], reflector)
            .context("the reflector of the `from` direction")?;
        let mut responder = Responder::bind(&config)
            .context("cannot start the reflector of the `from` direction")?;
        if let Some(key) = self.session_key()? {
            // The far end's sender authenticates with the session's key too.
            let keys = StampKeyring::new();
            keys.register(peer.ip(), self.ssid, key);
            responder.set_stamp_keys(keys);
        }
        let far = SocketAddr::new(peer.ip(), sender_port);
        let p = punch(self.accepted.session);
        for _ in 0..PUNCHES {
            responder
                .punch(far, &p)
                .with_context(|| format!("cannot send the punch to {far}/udp"))?;
            tokio::time::sleep(PUNCH_GAP).await;
            // No more once the far end saw one: a later punch would reach its test socket as
            // a stray datagram (with a session key, a reply failing its HMAC).
            if self.punch_seen().await {
                break;
            }
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(responder.run(async move {
            let _ = stopped.await;
        }));
        let near = NearReflector { stop, task };
        // The far end says when the punch arrived; none within PUNCH_CONFIRM means its
        // sender port cannot be reached from here.
        let give_up = tokio::time::Instant::now() + PUNCH_CONFIRM;
        loop {
            let r = self
                .client
                .results(self.accepted.session, false, PUNCH_CONFIRM)
                .await;
            match r {
                Ok(f) if f.sender_state.as_deref() != Some("waiting_punch") => return Ok(near),
                Ok(_) if tokio::time::Instant::now() < give_up => {
                    tokio::time::sleep(PUNCH_POLL).await;
                }
                Ok(_) => {
                    let _ = near.stop().await;
                    bail!(
                        "the far end never saw our punch to {far}/udp: its sender port is not \
                         reachable from here (the far end may be behind NAT without that port \
                         published); use --direction to"
                    );
                }
                Err(e) => {
                    let _ = near.stop().await;
                    return Err(e).context("the far end's state of the `from` direction");
                }
            }
        }
    }

    /// The far end's view so far (the session goes on).
    pub async fn peek(&self, patience: Duration) -> Result<FarEndResults, ControlError> {
        self.client
            .results(self.accepted.session, false, patience)
            .await
    }

    /// Whether the far end's sender has seen our punch (an error counts as not yet).
    async fn punch_seen(&self) -> bool {
        self.peek(PUNCH_CONFIRM)
            .await
            .is_ok_and(|f| f.sender_state.as_deref() != Some("waiting_punch"))
    }

    /// The far end's view; ends the session (waiting for the far end's sender).
    pub async fn finish(&self, planned: Option<Duration>) -> Result<FarEndResults, ControlError> {
        let patience = planned.unwrap_or(Duration::from_secs(60)) + RESULTS_PATIENCE;
        self.client
            .results(self.accepted.session, true, patience)
            .await
    }

    /// The session's STAMP key (authenticated mode), when the grant carried one.
    pub fn session_key(&self) -> anyhow::Result<Option<StampKey>> {
        self.accepted
            .session_key()
            .context("the peer's grant carries a session key that is not hex")
    }

    /// The control connection (for further requests, such as the reverse trace).
    pub fn client(&self) -> &ControlClient {
        &self.client
    }

    /// Closes the control connection.
    pub async fn close(self) {
        self.client.close().await;
    }
}

impl NearReflector {
    /// Stops the reflector; its counters.
    pub async fn stop(self) -> anyhow::Result<ReflectorCounters> {
        let _ = self.stop.send(());
        Ok(self.task.await.context("near-end reflector task")??)
    }
}

/// The `far_end` object of the JSON: the far end's reflector view of `to`, its clock, its
/// identity.
pub fn far_end_json(n: &Negotiated, far: &FarEndResults) -> Value {
    json!({
        "session": format!("{:016x}", n.accepted.session),
        "fingerprint": n.fingerprint,
        "reflector": far.reflector,
        "clock": far.clock,
        "require_auth": n.accepted.require_auth,
    })
}

/// The `from` object of the JSON: the far end's Session-Sender report (`forward` is toward
/// this end) and this end's reflector counters.
pub fn from_json(far: Option<&FarEndResults>, near: Option<&ReflectorCounters>) -> Value {
    json!({
        "report": far.and_then(|f| f.sender.as_deref()),
        "error": far.and_then(|f| f.sender_error.as_deref()),
        "near_reflector": near.map(|c| json!({"received": c.received, "reflected": c.reflected})),
    })
}

/// Refuses `--direction from|both` where it cannot run.
pub fn check_direction(asked: Option<Direction>, why: &str) -> anyhow::Result<Direction> {
    match asked {
        Some(d) if d.includes_from() => {
            bail!(
                "--direction {d} needs the peer's control plane ({why}); --direction to runs \
                 plain STAMP toward the peer"
            )
        }
        _ => Ok(Direction::To),
    }
}
