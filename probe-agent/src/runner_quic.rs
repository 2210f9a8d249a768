//! An a2a test with `proto = "quic"`: negotiated on the peer's control plane (49152/udp, the
//! agent's token, the peer pinned in the agent's known-peers file), then the QUIC test on the
//! same endpoint, as `probe a2a --proto quic` runs it. `class = "latency"`: one handshake
//! and `count` datagrams every `packet_interval`; `class = "throughput"`: one handshake and
//! stream throughput both ways at once for `count` × `packet_interval`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use probe_core::a2a::Direction;
use probe_core::control::handshake::HelloError;
use probe_core::control::pin::KNOWN_PEERS_FILE;
use probe_core::control::{ClientConfig, ControlError, ErrorCode, PinPolicy, Token, connect};
use probe_core::quic_test::{
    Negotiated, QuicA2aReport, QuicReport, QuicTestError, RttPlan, ThroughputPlan, run_negotiated,
};

use crate::config::{Class, TestConfig};
use crate::record::ErrorClass;
use crate::runner::{Failure, Outcome, failed};

/// Handshakes timed per run.
const HANDSHAKES: u32 = 1;
/// Datagram size, bytes (`probe a2a --proto quic`'s default).
const DATAGRAM_SIZE: usize = 44;
/// How long a run waits for late echoes after its last datagram.
const ECHO_WAIT: Duration = Duration::from_secs(1);
/// How long each QUIC handshake and answer may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// What a QUIC a2a test needs of the agent's configuration.
#[derive(Clone, Debug, Default)]
pub struct ControlContext {
    /// The agent's state directory (its known-peers file).
    pub state_dir: PathBuf,
    /// The shared control-plane token.
    pub token: Option<String>,
}

/// The agent's control connection settings toward `server`: the peer pinned in the
/// known-peers file of `state_dir` under its address, the agent's token.
pub(crate) fn control_config(
    server: SocketAddr,
    state_dir: &Path,
    token: Option<&str>,
) -> Result<ClientConfig, String> {
    let key = server.to_string();
    let pin = PinPolicy::KnownPeers {
        file: state_dir.join(KNOWN_PEERS_FILE),
        key: key.clone(),
    };
    let mut config = ClientConfig::new(server, key, pin);
    if let Some(t) = token {
        config.token = Some(Token::new(t, "PROBE_TOKEN").map_err(|e| e.to_string())?);
    }
    Ok(config)
}

/// Runs `test` toward the control endpoint `peer`.
pub(crate) async fn run_quic(test: &TestConfig, peer: SocketAddr, ctx: &ControlContext) -> Outcome {
    let config = match control_config(peer, &ctx.state_dir, ctx.token.as_deref()) {
        Ok(c) => c,
        Err(e) => return failed(Failure::new(ErrorClass::Other, e)),
    };
    let client = match connect(config).await {
        Ok(c) => c,
        Err(e) => return failed(classify_control(&e)),
    };
    let hello = match client.hello().await {
        Ok(h) => h,
        Err(e) => {
            client.close().await;
            return failed(classify_control(&e));
        }
    };
    let length = test.packet_interval.saturating_mul(test.count.max(1));
    let (rtt, throughput) = match test.class {
        Class::Latency => {
            let plan = RttPlan {
                count: u64::from(test.count.max(1)),
                interval: test.packet_interval,
                size: DATAGRAM_SIZE,
                wait: ECHO_WAIT,
            };
            (Some(plan), None)
        }
        Class::Throughput => {
            let plan = ThroughputPlan {
                direction: Direction::Both,
                duration: length,
                interval: Duration::from_secs(1),
            };
            (None, Some(plan))
        }
    };
    let negotiated = run_negotiated(&client, HANDSHAKES, rtt, throughput, TIMEOUT).await;
    client.close().await;
    let (session, quic) = match negotiated {
        Ok(Negotiated {
            session,
            result: Ok(q),
        }) => (session, q),
        Ok(Negotiated { result: Err(e), .. }) => return failed(classify_test(&e)),
        Err(e) => return failed(classify_control(&e)),
    };
    let failure = quic_failure(&quic, peer);
    let report = QuicA2aReport {
        peer: peer.to_string(),
        address: peer.to_string(),
        proto: "quic".into(),
        session: format!("{session:016x}"),
        fingerprint: hello.fingerprint,
        quic,
    };
    Outcome {
        report: quic_report(&report),
        failure,
    }
}

/// The report of `probe a2a --proto quic --json`, with the datagram test's `sent`,
/// `received`, `loss_pct` and `rtt_ms` also at the top, where a STAMP a2a report has them.
fn quic_report(r: &QuicA2aReport) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    if let (Some(d), Some(top)) = (&r.quic.datagrams, v.as_object_mut()) {
        top.insert("sent".into(), d.sent.into());
        top.insert("received".into(), d.received.into());
        top.insert("loss_pct".into(), d.loss_pct.into());
        let rtt = serde_json::to_value(r.quic.rtt_ms.flatten()).unwrap_or_default();
        top.insert("rtt_ms".into(), rtt);
    }
    v
}

/// Why a run that ran did not measure what it set out to, if it did not.
fn quic_failure(q: &QuicReport, peer: SocketAddr) -> Option<Failure> {
    if let Some(e) = &q.error {
        return Some(Failure::new(
            ErrorClass::Other,
            format!("the QUIC test with {peer} stopped early: {e}"),
        ));
    }
    if let Some(d) = q.datagrams.filter(|d| d.received == 0) {
        return Some(Failure::new(
            ErrorClass::Timeout,
            format!(
                "nothing echoed at {peer}/udp: {} QUIC datagrams sent, all lost",
                d.sent
            ),
        ));
    }
    if let Some(t) = q
        .throughput
        .as_ref()
        .filter(|t| t.to.is_none() || t.from.is_none())
    {
        let missing = if t.to.is_none() { "to" } else { "from" };
        return Some(Failure::new(
            ErrorClass::Other,
            format!("the QUIC throughput test with {peer} has no `{missing}` direction"),
        ));
    }
    None
}

/// The class of a control-plane failure (connect, hello, the session request).
fn classify_control(e: &ControlError) -> Failure {
    let class = match e {
        ControlError::Pin(_) | ControlError::Tls(_) => ErrorClass::Tls,
        ControlError::Hello(HelloError::Unauthorized { .. }) => ErrorClass::Unauthorized,
        ControlError::Hello(HelloError::Refused { .. }) | ControlError::Refused { .. } => {
            ErrorClass::Refused
        }
        ControlError::Timeout { .. } => ErrorClass::Timeout,
        ControlError::Connection { .. } => ErrorClass::Unreachable,
        ControlError::Rejected { code, .. } => match code {
            ErrorCode::LimitExceeded | ErrorCode::Busy => ErrorClass::Limit,
            ErrorCode::Unauthorized => ErrorClass::Unauthorized,
            _ => ErrorClass::Refused,
        },
        _ => ErrorClass::Other,
    };
    Failure::new(class, e.to_string())
}

/// The class of a QUIC test that could not run on its granted session.
fn classify_test(e: &QuicTestError) -> Failure {
    let class = match e {
        QuicTestError::Refused(_) | QuicTestError::NoDatagrams => ErrorClass::Refused,
        QuicTestError::Connection { reason, .. } if reason.contains("in time") => {
            ErrorClass::Timeout
        }
        QuicTestError::Connection { .. } => ErrorClass::Unreachable,
        _ => ErrorClass::Other,
    };
    Failure::new(class, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use probe_core::quic_test::DatagramCounts;

    #[test]
    fn failures_name_their_class() {
        let peer: SocketAddr = "192.0.2.1:49152".parse().expect("address");
        let busy = ControlError::Rejected {
            code: ErrorCode::Busy,
            message: "busy, retry after 3 s".into(),
        };
        assert_eq!(classify_control(&busy).class, ErrorClass::Limit);
        let late = QuicTestError::Connection {
            server: peer,
            what: "handshake",
            reason: "no answer in time".into(),
        };
        assert_eq!(classify_test(&late).class, ErrorClass::Timeout);
        let all_lost = QuicReport {
            datagrams: Some(DatagramCounts {
                sent: 5,
                lost: 5,
                ..DatagramCounts::default()
            }),
            ..QuicReport::default()
        };
        let f = quic_failure(&all_lost, peer).expect("a failure");
        assert_eq!(f.class, ErrorClass::Timeout);
        assert!(f.message.contains("5 QUIC datagrams sent"), "{}", f.message);
        assert!(quic_failure(&QuicReport::default(), peer).is_none());
    }
}
