//! A QUIC test negotiated on a control connection: the request for a session of the test's
//! plans, the test on it, and the session's end.

use std::time::Duration;

use super::client::{QuicTestError, QuicTestOptions, RttPlan, ThroughputPlan, run_quic_test};
use crate::a2a::Direction;
use crate::a2a::runtime::local_clock_info;
use crate::control::messages::ClockFacts;
use crate::control::negotiation::random_ssid;
use crate::control::{ControlClient, ControlError, TestKind, TestRequest};
use crate::quic_test::report::QuicReport;

/// The control-plane request for a QUIC test of these plans: a `quic_throughput` session as
/// long as the transfer (both directions run at once), else a `quic_rtt` session for the
/// datagrams (none: handshakes only).
pub fn test_request(rtt: Option<&RttPlan>, throughput: Option<&ThroughputPlan>) -> TestRequest {
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let (kind, direction, interval_ns, count, duration_ms, size) = match (rtt, throughput) {
        (_, Some(t)) => (
            TestKind::QuicThroughput,
            t.direction,
            None,
            None,
            Some(ms(t.duration)),
            0,
        ),
        (Some(r), None) => (
            TestKind::QuicRtt,
            Direction::Both,
            Some(u64::try_from(r.interval.as_nanos()).unwrap_or(u64::MAX)),
            Some(r.count),
            Some(ms(r
                .interval
                .saturating_mul(u32::try_from(r.count).unwrap_or(u32::MAX)))),
            u32::try_from(r.size).unwrap_or(u32::MAX),
        ),
        (None, None) => (TestKind::QuicRtt, Direction::Both, None, Some(0), None, 0),
    };
    TestRequest {
        kind,
        direction,
        interval_ns,
        count,
        duration_ms,
        size,
        dscp: None,
        ssid: random_ssid(),
        port: None,
        clock: Some(ClockFacts::from_info(&local_clock_info())),
        auth: false,
    }
}

/// What a negotiated QUIC test gives: the session granted and the test's result.
#[derive(Debug)]
pub struct Negotiated {
    /// The session the responder granted.
    pub session: u64,
    /// The test on it.
    pub result: Result<QuicReport, QuicTestError>,
}

/// Asks `client`'s responder (hello already exchanged) for a session for `handshakes`, `rtt`
/// and `throughput`, runs the test on it, then ends the session at once (a throughput session
/// holds the responder's exclusive slot). `Err` when the responder refused the session.
pub async fn run_negotiated(
    client: &ControlClient,
    handshakes: u32,
    rtt: Option<RttPlan>,
    throughput: Option<ThroughputPlan>,
    timeout: Duration,
) -> Result<Negotiated, ControlError> {
    let accepted = client
        .request_test(&test_request(rtt.as_ref(), throughput.as_ref()))
        .await?;
    let opts = QuicTestOptions {
        server: client.server(),
        fingerprint: client.fingerprint(),
        session: accepted.session,
        handshakes,
        rtt,
        throughput,
        timeout,
    };
    let result = run_quic_test(&opts).await;
    let _ = client
        .results(accepted.session, true, Duration::from_secs(2))
        .await;
    Ok(Negotiated {
        session: accepted.session,
        result,
    })
}
