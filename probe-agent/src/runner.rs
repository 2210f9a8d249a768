//! Running one test toward one peer through probe-core's library entry points, and turning
//! every way it can fail into an [`ErrorClass`] with a message for people.

use std::io;
use std::net::{IpAddr, SocketAddr};

use probe_core::a2a::Limit;
use probe_core::a2a::runtime::Pace;
use probe_core::dns::DnsError;
use probe_core::{A2aError, A2aOptions, TraceError, TraceOptions};

use crate::config::{Kind, TestConfig};
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

/// Runs `test` against `peer` (the port is the responder's, for a2a); an http test goes to
/// its URL and ignores `peer`.
pub async fn run(test: &TestConfig, peer: SocketAddr, ctx: &HttpContext) -> Outcome {
    match test.kind {
        Kind::A2a => run_a2a(test, peer).await,
        Kind::Trace => run_trace(test, peer.ip()).await,
        Kind::Http => run_http(test, ctx).await,
    }
}

/// What an http test takes from the agent's configuration.
#[derive(Clone, Debug, Default)]
pub struct HttpContext {
    /// The resolver (`PROBE_DNS`).
    pub dns: probe_core::DnsConfig,
    /// The family names resolve to (`PROBE_INET`).
    pub family: probe_core::dns::Family,
    /// `HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY`.
    pub proxy: probe_core::http::ProxyConfig,
}

async fn run_http(test: &TestConfig, ctx: &HttpContext) -> Outcome {
    let mut opts = probe_core::http::HttpOptions::new(test.target.clone());
    opts.count = test.count;
    opts.interval = test.packet_interval;
    opts.timeout = test.deadline;
    opts.dns = ctx.dns.clone();
    opts.family = ctx.family;
    opts.proxy = ctx.proxy.clone();
    match probe_core::http::run_http(&opts).await {
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

async fn run_a2a(test: &TestConfig, peer: SocketAddr) -> Outcome {
    let opts = A2aOptions::builder(peer)
        .limit(Limit::Count(test.count))
        .pace(Pace::Interval(test.packet_interval))
        .build();
    let opts = match opts {
        Ok(o) => o,
        Err(e) => return failed(Failure::new(ErrorClass::Other, e.to_string())),
    };
    match probe_core::run_test(opts).await {
        Ok(outcome) => {
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
                        "nothing answered at {peer}/udp ({why}): {} packets sent, all lost",
                        outcome.report.sent
                    ),
                )
            });
            Outcome { report, failure }
        }
        Err(e) => failed(classify_a2a(&e)),
    }
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

fn failed(f: Failure) -> Outcome {
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

fn classify_a2a(e: &A2aError) -> Failure {
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
}
