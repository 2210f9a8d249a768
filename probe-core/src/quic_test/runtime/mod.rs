//! The QUIC test on quinn: the responder's side of a test connection ([`serve_test_connection`],
//! run by the control listener for connections under the test ALPN) and the client
//! ([`run_quic_test`], or [`run_negotiated`] on a control connection).

mod client;
mod negotiated;
mod server;
mod transfer;

pub use client::{QuicTestError, QuicTestOptions, RttPlan, ThroughputPlan, run_quic_test};
pub use negotiated::{Negotiated, run_negotiated, test_request};
pub use server::{QuicGrant, QuicGrants, serve_test_connection};

use super::report::PathReport;

/// quinn's path statistics of `conn` now.
pub fn path_report(conn: &quinn::Connection) -> PathReport {
    let p = conn.stats().path;
    PathReport {
        rtt_ms: p.rtt.as_secs_f64() * 1e3,
        cwnd_bytes: p.cwnd,
        congestion_events: p.congestion_events,
        lost_packets: p.lost_packets,
        lost_bytes: p.lost_bytes,
        sent_packets: p.sent_packets,
        mtu: p.current_mtu,
    }
}
