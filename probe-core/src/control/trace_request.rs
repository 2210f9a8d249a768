//! The reverse path: a client asks the far end to trace back toward the client's address
//! as the far end sees it (its NAT mapping, if any). The request names no target, so the far
//! end only ever traces toward the peer of the control connection; it is bounded by the
//! responder's own caps and by the operator's limits (`--max-rate`, `--max-duration`), and a
//! request beyond them is refused with an error naming the bound, never cut silently.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::messages::{ErrorCode, ErrorMessage, PROTOCOL_VERSION};
use super::sessions::Limits;
use crate::trace::Protocol;

/// Most hops a reverse trace may probe.
pub const MAX_HOPS: u8 = 32;
/// Most probes per hop of a reverse trace.
pub const MAX_QUERIES: u8 = 5;
/// Longest wait for one probe's answer.
pub const MAX_WAIT: Duration = Duration::from_secs(3);
/// Probes per second of a reverse trace (lowered to `--max-rate` when that is lower).
pub const TRACE_RATE_PPS: u32 = 100;
/// Reverse traces one responder runs at once; more are refused as busy.
pub const MAX_CONCURRENT_TRACES: usize = 4;

/// A client's request for a trace from the far end back toward the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceRequest {
    /// Probe protocol (ICMP echo passes NAT boxes, which answer it at their public address).
    pub protocol: Protocol,
    /// Highest TTL probed (1 to [`MAX_HOPS`]).
    pub max_hops: u8,
    /// Probes per hop (1 to [`MAX_QUERIES`]).
    pub queries: u8,
    /// How long a probe's answer is waited for, ms (1 to [`MAX_WAIT`]).
    pub wait_ms: u32,
    /// Destination port of UDP and TCP probes at this end (absent: the trace's default, 33434
    /// for UDP, 80 for TCP). A TCP test asks for its own port, so that the path back is
    /// probed as the test's packets are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

impl Default for TraceRequest {
    /// ICMP echo, 30 hops, 3 probes per hop, 1 s wait (the `probe trace` defaults).
    fn default() -> Self {
        TraceRequest {
            protocol: Protocol::Icmp,
            max_hops: 30,
            queries: 3,
            wait_ms: 1000,
            port: None,
        }
    }
}

/// The settings a granted [`TraceRequest`] runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TracePlan {
    /// Probe protocol.
    pub protocol: Protocol,
    /// Highest TTL probed.
    pub max_ttl: u8,
    /// Probes per hop.
    pub queries: u8,
    /// Wait for each answer.
    pub wait: Duration,
    /// Probes per second.
    pub rate_pps: u32,
    /// Destination port of UDP and TCP probes (absent: the trace's default).
    pub port: Option<u16>,
}

impl TracePlan {
    /// The longest the trace can take: every probe at the planned rate, then the last wait.
    pub fn worst_case(&self) -> Duration {
        let probes = u64::from(self.max_ttl) * u64::from(self.queries);
        Duration::from_millis(probes * 1000 / u64::from(self.rate_pps.max(1))) + self.wait
    }
}

impl TraceRequest {
    /// The plan of this request under the responder's caps and the operator's `limits`, or
    /// a refusal naming the bound exceeded.
    pub fn plan(&self, limits: &Limits) -> Result<TracePlan, ErrorMessage> {
        let beyond = |what: &str, max: &str| {
            refusal(format!(
                "reverse trace: {what} is beyond this responder's bound of {max}; ask for less"
            ))
        };
        if !(1..=MAX_HOPS).contains(&self.max_hops) {
            return Err(beyond(
                &format!("{} hops", self.max_hops),
                &format!("1 to {MAX_HOPS} hops"),
            ));
        }
        if !(1..=MAX_QUERIES).contains(&self.queries) {
            return Err(beyond(
                &format!("{} probes per hop", self.queries),
                &format!("1 to {MAX_QUERIES} probes per hop"),
            ));
        }
        let wait = Duration::from_millis(u64::from(self.wait_ms));
        if wait.is_zero() || wait > MAX_WAIT {
            return Err(beyond(
                &format!("a wait of {} ms", self.wait_ms),
                &format!("1 to {} ms", MAX_WAIT.as_millis()),
            ));
        }
        // `--max-rate` bounds every test's packet rate: the trace's probes too.
        let rate_pps = match limits.max_rate_pps {
            Some(max) if max < f64::from(TRACE_RATE_PPS) => max.floor().max(1.0) as u32,
            _ => TRACE_RATE_PPS,
        };
        let plan = TracePlan {
            protocol: self.protocol,
            max_ttl: self.max_hops,
            queries: self.queries,
            wait,
            rate_pps,
            port: self.port,
        };
        if let Some(max) = limits.max_duration
            && plan.worst_case() > max
        {
            return Err(ErrorMessage {
                code: ErrorCode::LimitExceeded,
                message: format!(
                    "over the responder's limit --max-duration {max:?}: the reverse trace could \
                     take {:?} ({} hops x {} probes at {rate_pps} probes/s); ask for fewer hops \
                     or probes",
                    plan.worst_case(),
                    self.max_hops,
                    self.queries
                ),
                version: Some(PROTOCOL_VERSION),
            });
        }
        Ok(plan)
    }
}

fn refusal(message: String) -> ErrorMessage {
    ErrorMessage {
        code: ErrorCode::LimitExceeded,
        message,
        version: Some(PROTOCOL_VERSION),
    }
}

/// The refusal of a trace while [`MAX_CONCURRENT_TRACES`] others run.
pub fn busy() -> ErrorMessage {
    ErrorMessage {
        code: ErrorCode::Busy,
        message: format!(
            "busy, retry after 5 s: {MAX_CONCURRENT_TRACES} reverse traces are running on this \
             responder"
        ),
        version: Some(PROTOCOL_VERSION),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_plan_at_the_responder_rate_and_round_trip() {
        let req = TraceRequest::default();
        let text = serde_json::to_string(&req).expect("json");
        assert_eq!(
            text,
            r#"{"protocol":"icmp","max_hops":30,"queries":3,"wait_ms":1000}"#
        );
        assert_eq!(
            serde_json::from_str::<TraceRequest>(&text).expect("parse"),
            req
        );
        let plan = req.plan(&Limits::default()).expect("granted");
        assert_eq!(plan.rate_pps, TRACE_RATE_PPS);
        assert_eq!(plan.port, None);
        // A TCP test's request names its port; the plan keeps it.
        let tcp = TraceRequest {
            protocol: Protocol::Tcp,
            port: Some(49153),
            ..TraceRequest::default()
        };
        let text = serde_json::to_string(&tcp).expect("json");
        assert!(text.ends_with(r#""wait_ms":1000,"port":49153}"#), "{text}");
        assert_eq!(
            serde_json::from_str::<TraceRequest>(&text).expect("parse"),
            tcp
        );
        assert_eq!(
            tcp.plan(&Limits::default()).expect("granted").port,
            Some(49153)
        );
        // 90 probes at 100/s, then the last 1 s wait.
        assert_eq!(plan.worst_case(), Duration::from_millis(1900));
    }

    #[test]
    fn bounds_and_operator_limits_are_named() {
        let limits = Limits::default();
        for (req, needle) in [
            (
                TraceRequest {
                    max_hops: 33,
                    ..TraceRequest::default()
                },
                "33 hops is beyond this responder's bound of 1 to 32 hops",
            ),
            (
                TraceRequest {
                    queries: 0,
                    ..TraceRequest::default()
                },
                "0 probes per hop",
            ),
            (
                TraceRequest {
                    wait_ms: 3001,
                    ..TraceRequest::default()
                },
                "a wait of 3001 ms is beyond this responder's bound of 1 to 3000 ms",
            ),
        ] {
            let e = req.plan(&limits).expect_err("refused");
            assert_eq!(e.code, ErrorCode::LimitExceeded);
            assert!(e.message.contains(needle), "{}", e.message);
        }
        let slow = Limits {
            max_rate_pps: Some(20.5),
            ..Limits::default()
        };
        let plan = TraceRequest::default().plan(&slow).expect("granted");
        assert_eq!(plan.rate_pps, 20);
        let short = Limits {
            max_rate_pps: Some(10.0),
            max_duration: Some(Duration::from_secs(5)),
            ..Limits::default()
        };
        // 90 probes at 10/s: 10 s.
        let e = TraceRequest::default().plan(&short).expect_err("too long");
        assert!(e.message.contains("--max-duration 5s"), "{}", e.message);
        let few = TraceRequest {
            max_hops: 4,
            queries: 1,
            ..TraceRequest::default()
        };
        assert!(few.plan(&short).is_ok());
        assert_eq!(busy().code, ErrorCode::Busy);
    }
}
