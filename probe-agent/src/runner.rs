//! Running one test toward one peer through probe-core's library entry points, and turning
//! every way it can fail into an [`ErrorClass`] with a message for people.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use probe_core::a2a::Limit;
use probe_core::a2a::TestOutcome;
use probe_core::a2a::runtime::{A2aOptionsBuilder, Pace, SessionPool};
use probe_core::dns::{DnsError, DnsTest, RecordType, Resolver};
use probe_core::ping::runtime::{PingError, PingOptions};
use probe_core::report::dns::{DnsServerReport, DnsStatus};
use probe_core::{A2aError, A2aOptions, TraceError, TraceOptions};

use crate::config::{A2aProto, Kind, PingProtocol, TestConfig};
use crate::record::ErrorClass;

/// A run that did not produce a good measurement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The machine-readable class.
    pub class: ErrorClass,
    /// What happened, for people.
    pub message: String,
}

impl Failure {
    /// A failure of `class` saying `message`.
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        Failure {
            class,
            message: message.into(),
        }
    }
}

/// What a run produced: the kind's JSON report (also for some failures, e.g. all lost), and
/// the failure if it failed.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// The report (`Null` when the test could not run at all).
    pub report: serde_json::Value,
    /// The failure, if any.
    pub failure: Option<Failure>,
}

/// Runs `test` against `peer` (the port is the responder's for a2a, the probed port for a
/// UDP or TCP ping); http and dns tests go to their URL or servers and ignore `peer`.
///
/// When `stop` completes first (with the reason) the run is cut short: the outcome fails with
/// [`ErrorClass::CutShort`] and the reason, and an a2a run keeps the report of what it
/// measured up to then (the other kinds have no partial report).
pub async fn run(
    test: &TestConfig,
    peer: SocketAddr,
    (ctx, pool): (&HttpContext, &SessionPool),
    stop: impl Future<Output = String>,
) -> Outcome {
    // Each kind's future on the heap at its own size: a mesh keeps thousands of a2a runs in
    // flight, and the largest kind (http) would make each of them as big.
    match test.kind {
        Kind::A2a if test.proto == A2aProto::Quic => {
            let work = crate::runner_quic::run_quic(test, peer, &ctx.control);
            Box::pin(unless_stopped(work, stop)).await
        }
        Kind::A2a => Box::pin(run_a2a(test, peer, pool, stop)).await,

        Kind::Trace => Box::pin(unless_stopped(run_trace(test, peer.ip()), stop)).await,
        Kind::Http => Box::pin(unless_stopped(run_http(test, ctx), stop)).await,
        Kind::Ping => Box::pin(unless_stopped(run_ping(test, peer), stop)).await,
        Kind::Dns => Box::pin(unless_stopped(run_dns(test, ctx), stop)).await,
    }
}

/// `work`'s outcome, or a cut-short failure with the reason `stop` gives if it completes first.
async fn unless_stopped(
    work: impl Future<Output = Outcome>,
    stop: impl Future<Output = String>,
) -> Outcome {
    tokio::select! {
        o = work => o,
        why = stop => failed(Failure::new(ErrorClass::CutShort, why)),
    }
}

async fn run_ping(test: &TestConfig, peer: SocketAddr) -> Outcome {
    let protocol = match test.protocol {
        PingProtocol::Icmp => probe_core::trace::Protocol::Icmp,
        PingProtocol::Udp => probe_core::trace::Protocol::Udp,
        PingProtocol::Tcp => probe_core::trace::Protocol::Tcp,
    };
    let built = probe_core::ping::PingConfig::builder(protocol)
        .count(test.count)
        .interval(test.packet_interval)
        .timeout(test.timeout)
        .dst_port(peer.port())
        .per_probe(true)
        .build()
        .and_then(|config| PingOptions::builder(vec![peer.ip().to_string()], config).build());
    let opts = match built {
        Ok(o) => o,
        Err(e) => {
            return Outcome {
                report: serde_json::Value::Null,
                failure: Some(Failure::new(
                    ErrorClass::Other,
                    format!("ping settings: {e}"),
                )),
            };
        }
    };
    match probe_core::ping::runtime::run_ping(&opts).await {
        Ok(r) => {
            let failure = r
                .targets
                .iter()
                .find(|t| t.received == 0)
                .map(|t| ping_failure(t, peer));
            Outcome {
                report: ping_report(&r),
                failure,
            }
        }
        Err(PingError::Sockets(e)) => failed(classify_trace(&e)),
        Err(e) => failed(Failure::new(ErrorClass::Other, e.to_string())),
    }
}

/// The report of `probe ping --json`, with its one target's `sent`, `received`, `loss_pct`
/// and `rtt_ms` (with `p90` and `p99` from the probes' round trips) also at the top, where an
/// a2a report has them. The per-probe list the quantiles come from is left out.
fn ping_report(r: &probe_core::report::ping::PingReport) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    if let Some(ts) = v
        .get_mut("targets")
        .and_then(serde_json::Value::as_array_mut)
    {
        for t in ts.iter_mut().filter_map(serde_json::Value::as_object_mut) {
            t.remove("per_probe_ms");
        }
    }
    if let (Some(obj), [t]) = (v.as_object_mut(), &r.targets[..]) {
        obj.insert("sent".into(), t.sent.into());
        obj.insert("received".into(), t.received.into());
        obj.insert("loss_pct".into(), t.loss_pct.into());
        let mut rtt = serde_json::to_value(t.rtt_ms).unwrap_or_default();
        let mut rtts = probe_core::stats::Distribution::new();
        for ms in t.per_probe_ms.iter().flatten().flatten() {
            #[allow(clippy::cast_possible_truncation)]
            rtts.record((ms * 1e6).round() as i64);
        }
        if let Some(o) = rtt.as_object_mut() {
            for (key, q) in [("p90", 0.90), ("p99", 0.99)] {
                if let Some(ns) = rtts.quantile(q) {
                    #[allow(clippy::cast_precision_loss)]
                    o.insert(key.into(), (ns as f64 / 1e6).into());
                }
            }
        }
        obj.insert("rtt_ms".into(), rtt);
    }
    v
}

/// The failure of a ping target nothing answered: the ICMP error it got, else a timeout.
fn ping_failure(t: &probe_core::report::ping::PingTargetReport, peer: SocketAddr) -> Failure {
    let class = t
        .error
        .as_deref()
        .map_or(ErrorClass::Timeout, classify_icmp);
    let class = if class == ErrorClass::Other && t.sent == 0 {
        ErrorClass::Unreachable
    } else {
        class
    };
    let why = t.error.as_deref().unwrap_or("no answer in time");
    Failure::new(
        class,
        format!(
            "{} did not answer ({why}): {} probes sent, all lost",
            peer.ip(),
            t.sent
        ),
    )
}

async fn run_dns(test: &TestConfig, ctx: &HttpContext) -> Outcome {
    let mut config = if test.servers.is_empty() {
        ctx.dns.clone()
    } else {
        let servers = test
            .servers
            .iter()
            .map(|s| probe_core::dns::parse_server(s));
        match servers.collect::<Result<Vec<_>, _>>() {
            Ok(s) => probe_core::DnsConfig::custom(s),
            Err(e) => return failed(Failure::new(ErrorClass::Other, e.to_string())),
        }
    };
    config.timeout = test.timeout;
    config.attempts = 1;
    config.tcp = test.tcp;
    let record_type = match test.record_type.parse::<RecordType>() {
        Ok(t) => t,
        Err(e) => return failed(Failure::new(ErrorClass::Other, e.to_string())),
    };
    let resolver = match Resolver::new(&config) {
        Ok(r) => r,
        Err(e) => return failed(Failure::new(classify_dns(&e), e.to_string())),
    };
    let query = DnsTest {
        count: test.count,
        interval: test.packet_interval,
        ..DnsTest::new(test.target.clone(), record_type)
    };
    match resolver.run_test(&query).await {
        Ok(r) => {
            let failure = r
                .servers
                .iter()
                .find(|s| s.status != DnsStatus::Ok)
                .map(|s| dns_failure(s, &r.name, &r.record_type));
            Outcome {
                report: serde_json::to_value(&r).unwrap_or_default(),
                failure,
            }
        }
        Err(e) => failed(Failure::new(classify_dns(&e), e.to_string())),
    }
}

/// The failure of the first server that did not answer with records.
fn dns_failure(s: &DnsServerReport, name: &str, rtype: &str) -> Failure {
    let class = match s.status {
        DnsStatus::Nxdomain | DnsStatus::Nodata => ErrorClass::NameNotFound,
        DnsStatus::Refused => ErrorClass::Refused,
        DnsStatus::Timeout => ErrorClass::Timeout,
        DnsStatus::Error => s
            .message
            .as_deref()
            .map_or(ErrorClass::Other, classify_icmp),
        DnsStatus::Ok | DnsStatus::Servfail | DnsStatus::Rcode => ErrorClass::Other,
    };
    let detail = s.message.as_deref().or(s.rcode.as_deref()).unwrap_or("");
    Failure::new(
        class,
        format!(
            "{} answered {} for {name} {rtype}{}{detail}",
            s.server,
            s.status.as_str(),
            if detail.is_empty() { "" } else { ": " }
        ),
    )
}

/// What http, dns and QUIC a2a tests take from the agent's configuration.
#[derive(Clone, Debug, Default)]
pub struct HttpContext {
    /// The resolver (`PROBE_DNS`).
    pub dns: probe_core::DnsConfig,
    /// The family names resolve to (`PROBE_INET`).
    pub family: probe_core::dns::Family,
    /// `HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY`.
    pub proxy: probe_core::http::ProxyConfig,
    /// What an a2a test with `proto = "quic"` needs to reach a peer's control plane.
    pub control: crate::runner_quic::ControlContext,
}

async fn run_http(test: &TestConfig, ctx: &HttpContext) -> Outcome {
    let opts = probe_core::http::HttpOptions::builder(test.target.clone())
        .count(test.count)
        .interval(test.packet_interval)
        .timeout(test.deadline)
        .dns(ctx.dns.clone())
        .family(ctx.family)
        .proxy(ctx.proxy.clone())
        .build();
    let report = match opts {
        Ok(opts) => probe_core::http::run_http(&opts).await,
        Err(e) => Err(e),
    };
    match report {
        Ok(r) => {
            let failure = r.requests.iter().find_map(|q| q.error.as_ref()).map(|f| {
                Failure::new(
                    classify_http(f.class),
                    format!(
                        "{} of {} requests failed; first: {}",
                        r.count - r.succeeded,
                        r.count,
                        f.message
                    ),
                )
            });
            Outcome {
                report: serde_json::to_value(&r).unwrap_or_default(),
                failure,
            }
        }
        Err(e) => failed(Failure::new(ErrorClass::Other, e.to_string())),
    }
}

/// The agent's class of an HTTP request failure.
pub fn classify_http(c: probe_core::http::FailureClass) -> ErrorClass {
    use probe_core::http::FailureClass as F;
    match c {
        F::Refused => ErrorClass::Refused,
        F::Timeout => ErrorClass::Timeout,
        F::NameNotFound => ErrorClass::NameNotFound,
        F::Tls => ErrorClass::Tls,
        F::Proxy => ErrorClass::Proxy,
        F::HttpStatus | F::HttpBody => ErrorClass::HttpStatus,
        F::Network => ErrorClass::Unreachable,
        F::Protocol => ErrorClass::Other,
    }
}

/// An a2a run on the agent's pool. The options are built and the test handed to the pool
/// before the returned future is polled: the future keeps only what waiting needs (a mesh
/// keeps thousands in flight).
fn run_a2a<'a>(
    test: &'a TestConfig,
    peer: SocketAddr,
    pool: &'a SessionPool,
    stop: impl Future<Output = String> + 'a,
) -> impl Future<Output = Outcome> + 'a {
    let why = Arc::new(OnceLock::new());
    let cut = {
        let why = Arc::clone(&why);
        async move {
            let _ = why.set(stop.await);
        }
    };
    let run = a2a_options(test, peer)
        .build()
        .map(|opts| pool.run_test_until(opts, cut));
    async move {
        let result = match run {
            Ok(run) => run.await,
            Err(e) => return failed(Failure::new(ErrorClass::Other, e.to_string())),
        };
        match result {
            Ok((outcome, cut)) => {
                if cut {
                    let why = why.get().cloned().unwrap_or_default();
                    return Outcome {
                        report: serde_json::to_value(&outcome.report).unwrap_or_default(),
                        failure: Some(Failure::new(
                            ErrorClass::CutShort,
                            format!(
                                "{why}; the report covers the {} packets sent until then",
                                outcome.report.sent
                            ),
                        )),
                    };
                }
                a2a_outcome(&outcome, &format!("{peer}/udp"))
            }
            Err(e) => failed(classify_a2a(&e)),
        }
    }
}

/// The STAMP settings of an a2a `test` toward `peer`.
pub(crate) fn a2a_options(test: &TestConfig, peer: SocketAddr) -> A2aOptionsBuilder {
    // Thousands of these run side by side in a mesh, on the agent's shared pool; a run that
    // has its own socket sleeps on a timer per packet, no spin (the spin buys microseconds of
    // schedule precision a packet a second does not need).
    A2aOptions::builder(peer)
        .limit(Limit::Count(test.count))
        .pace(Pace::Interval(test.packet_interval))
        .pacer(probe_core::io::PacerConfig::default().no_spin())
}

/// The outcome of an a2a run that ran (toward `peer`, as messages name it): a failure when
/// nothing answered.
pub(crate) fn a2a_outcome(outcome: &TestOutcome, peer: &str) -> Outcome {
    let report = serde_json::to_value(&outcome.report).unwrap_or_default();
    let failure = (!outcome.answered).then(|| {
        let class = outcome
            .icmp_error
            .as_deref()
            .map_or(ErrorClass::Timeout, classify_icmp);
        let why = outcome
            .icmp_error
            .as_deref()
            .map_or_else(|| "no answer".to_owned(), str::to_owned);
        Failure::new(
            class,
            format!(
                "nothing answered at {peer} ({why}): {} packets sent, all lost",
                outcome.report.sent
            ),
        )
    });
    Outcome { report, failure }
}

async fn run_trace(test: &TestConfig, ip: IpAddr) -> Outcome {
    let opts = TraceOptions::builder(ip)
        .max_ttl(test.max_ttl)
        .count(test.count)
        .build();
    let opts = match opts {
        Ok(o) => o,
        Err(e) => return failed(Failure::new(ErrorClass::Other, e.to_string())),
    };
    match probe_core::run_trace(&opts).await {
        Ok(r) => {
            let failure = (!r.reached).then(|| {
                Failure::new(
                    ErrorClass::Timeout,
                    format!(
                        "the path to {ip} did not reach it within {} hops",
                        test.max_ttl
                    ),
                )
            });
            Outcome {
                report: serde_json::to_value(&r).unwrap_or_default(),
                failure,
            }
        }
        Err(e) => failed(classify_trace(&e)),
    }
}

pub(crate) fn failed(f: Failure) -> Outcome {
    Outcome {
        report: serde_json::Value::Null,
        failure: Some(f),
    }
}

/// The class of an ICMP error as probe-core describes it ("ICMP port unreachable from …").
pub fn classify_icmp(text: &str) -> ErrorClass {
    let t = text.to_ascii_lowercase();
    if t.contains("port unreachable") || t.contains("refused") {
        ErrorClass::Refused
    } else if t.contains("prohibited") || t.contains("unreachable") || t.contains("no route") {
        ErrorClass::Unreachable
    } else {
        ErrorClass::Other
    }
}

/// The class of a system error.
pub fn classify_io(e: &io::Error) -> ErrorClass {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => ErrorClass::Refused,
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => ErrorClass::Timeout,
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
            ErrorClass::Unreachable
        }
        io::ErrorKind::PermissionDenied => ErrorClass::Unauthorized,
        _ => ErrorClass::Other,
    }
}

/// The class of a name-resolution failure.
pub fn classify_dns(e: &DnsError) -> ErrorClass {
    match e {
        DnsError::NxDomain { .. } | DnsError::BadName { .. } | DnsError::WrongFamily { .. } => {
            ErrorClass::NameNotFound
        }
        other => {
            let t = other.to_string().to_ascii_lowercase();
            if t.contains("timed out") || t.contains("timeout") {
                ErrorClass::Timeout
            } else {
                ErrorClass::NameNotFound
            }
        }
    }
}

pub(crate) fn classify_a2a(e: &A2aError) -> Failure {
    let class = match e {
        A2aError::Resolve { .. } => ErrorClass::NameNotFound,
        A2aError::Socket { source, .. } => classify_io(source),
        _ => ErrorClass::Other,
    };
    Failure::new(class, e.to_string())
}

fn classify_trace(e: &TraceError) -> Failure {
    let class = match e {
        TraceError::NoRoute { .. } => ErrorClass::Unreachable,
        TraceError::NoAddress { .. } => ErrorClass::NameNotFound,
        TraceError::Dns(d) => classify_dns(d),
        TraceError::Send { source, .. } | TraceError::Recv(source) => classify_io(source),
        _ => ErrorClass::Other,
    };
    Failure::new(class, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icmp_and_system_errors_get_their_class() {
        assert_eq!(
            classify_icmp("ICMP port unreachable from 192.0.2.7"),
            ErrorClass::Refused
        );
        assert_eq!(
            classify_icmp("ICMP host unreachable from 192.0.2.1"),
            ErrorClass::Unreachable
        );
        let e = io::Error::from(io::ErrorKind::NetworkUnreachable);
        assert_eq!(classify_io(&e), ErrorClass::Unreachable);
        let e = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(classify_io(&e), ErrorClass::Refused);
    }

    fn server(status: DnsStatus, message: Option<&str>) -> DnsServerReport {
        DnsServerReport {
            server: "192.0.2.53:53".into(),
            status,
            rcode: None,
            message: message.map(str::to_owned),
            queries: 1,
            responses: 0,
            outcomes: std::collections::BTreeMap::new(),
            latency_ms: None,
            answers: Vec::new(),
        }
    }

    #[test]
    fn dns_statuses_get_their_class_and_name_the_server() {
        for (status, class) in [
            (DnsStatus::Nxdomain, ErrorClass::NameNotFound),
            (DnsStatus::Nodata, ErrorClass::NameNotFound),
            (DnsStatus::Refused, ErrorClass::Refused),
            (DnsStatus::Timeout, ErrorClass::Timeout),
            (DnsStatus::Servfail, ErrorClass::Other),
        ] {
            let f = dns_failure(&server(status, Some("why")), "www.example.net", "A");
            assert_eq!(f.class, class, "{status:?}");
            assert_eq!(
                f.message,
                format!(
                    "192.0.2.53:53 answered {} for www.example.net A: why",
                    status.as_str()
                )
            );
        }
        let f = dns_failure(
            &server(DnsStatus::Error, Some("connection refused")),
            "x.example",
            "MX",
        );
        assert_eq!(f.class, ErrorClass::Refused);
    }

    #[test]
    fn a_silent_ping_target_is_a_timeout_and_an_icmp_error_keeps_its_class() {
        use probe_core::report::ping::PingTargetReport;
        let peer: SocketAddr = "192.0.2.7:0".parse().expect("addr");
        let ip = peer.ip();
        let silent = PingTargetReport {
            sent: 3,
            error: None,
            ..PingTargetReport::failed("192.0.2.7", Some(ip), String::new())
        };
        let f = ping_failure(&silent, peer);
        assert_eq!(f.class, ErrorClass::Timeout);
        assert_eq!(
            f.message,
            "192.0.2.7 did not answer (no answer in time): 3 probes sent, all lost"
        );
        let unreachable = PingTargetReport {
            sent: 3,
            ..PingTargetReport::failed(
                "192.0.2.7",
                Some(ip),
                "host unreachable from 192.0.2.1".into(),
            )
        };
        assert_eq!(
            ping_failure(&unreachable, peer).class,
            ErrorClass::Unreachable
        );
        let no_send = PingTargetReport::failed("192.0.2.7", Some(ip), "bad source".into());
        assert_eq!(ping_failure(&no_send, peer).class, ErrorClass::Unreachable);
    }
}
