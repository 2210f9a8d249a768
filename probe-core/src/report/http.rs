//! The result of `probe http`: per request, the phase times, the status, the HTTP and TLS
//! versions, the certificate expiry and the size, or the failure class; and per phase a
//! distribution over the successful requests.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

pub use crate::http::{Failure, FailureClass};
use crate::stats::Summary;

/// How long each phase of one request took, in milliseconds. A phase that did not happen (no
/// TLS, no tunnel) or was not reached is null.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpPhases {
    /// Name resolution (0 for an address); of the proxy's name when going through one.
    pub resolve_ms: Option<f64>,
    /// The TCP handshake (with the proxy when going through one).
    pub connect_ms: Option<f64>,
    /// The CONNECT exchange with the proxy (https through a proxy).
    pub proxy_connect_ms: Option<f64>,
    /// The TLS handshake.
    pub tls_ms: Option<f64>,
    /// From the connection being ready to the first byte of the response: writing the request
    /// and the server's time to answer.
    pub ttfb_ms: Option<f64>,
    /// From the first to the last byte of the response.
    pub transfer_ms: Option<f64>,
    /// The whole request, from the start of resolution to the last byte (or the failure).
    pub total_ms: f64,
}

/// The server's TLS facts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsReport {
    /// `TLSv1.2` or `TLSv1.3`.
    pub version: String,
    /// The cipher suite.
    pub cipher: String,
    /// ALPN protocol agreed, if any (`h2`, `http/1.1`).
    pub alpn: Option<String>,
    /// The server certificate's `notAfter`, RFC 3339 UTC.
    pub cert_not_after: Option<String>,
    /// Whole days from now until `cert_not_after` (negative once expired).
    pub cert_expires_in_days: Option<i64>,
}

/// One request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HttpRequestReport {
    /// Whether the request succeeded and met the expectations.
    pub ok: bool,
    /// The address connected to (`ADDR:PORT`; the proxy's when going through one).
    pub address: Option<String>,
    /// The phase times.
    pub phases: HttpPhases,
    /// The response status.
    pub status: Option<u16>,
    /// `HTTP/1.1` or `HTTP/2`.
    pub http_version: Option<String>,
    /// TLS facts (https only).
    pub tls: Option<TlsReport>,
    /// Bytes of the response body as received.
    pub size_bytes: Option<u64>,
    /// Why the request failed (`class`, `message`, `proxy_status`).
    pub error: Option<Failure>,
}

/// Distributions of the phases over the successful requests.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpPhaseSummary {
    /// Name resolution.
    pub resolve_ms: Option<Summary>,
    /// TCP handshake.
    pub connect_ms: Option<Summary>,
    /// CONNECT to the proxy.
    pub proxy_connect_ms: Option<Summary>,
    /// TLS handshake.
    pub tls_ms: Option<Summary>,
    /// Time to first byte.
    pub ttfb_ms: Option<Summary>,
    /// Body transfer.
    pub transfer_ms: Option<Summary>,
    /// Whole request.
    pub total_ms: Option<Summary>,
}

/// The result of an HTTP test.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HttpReport {
    /// The URL as requested.
    pub url: String,
    /// The method.
    pub method: String,
    /// The proxy used (`host:port`, no credentials), null when direct.
    pub proxy: Option<String>,
    /// The statuses accepted (`200-399`).
    pub expect_status: String,
    /// Requests made.
    pub count: u32,
    /// Requests that succeeded and met the expectations.
    pub succeeded: u32,
    /// Each request, in order.
    pub requests: Vec<HttpRequestReport>,
    /// Phase distributions over the successful requests.
    pub summary: HttpPhaseSummary,
}

impl HttpReport {
    /// Whether every request succeeded.
    pub fn all_ok(&self) -> bool {
        self.succeeded == self.count
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"))
}

/// The report as text: a line per request with its phases, then the failures and the summary.
pub fn render_text(r: &HttpReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {}{}",
        r.method,
        r.url,
        r.proxy
            .as_deref()
            .map(|p| format!(" via proxy {p}"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "{:>3}  {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}  result",
        "#", "resolve", "connect", "proxy", "tls", "ttfb", "transfer", "total"
    );
    for (i, q) in r.requests.iter().enumerate() {
        let p = &q.phases;
        let result = match (&q.error, q.status) {
            (Some(e), _) => format!("{}: {}", e.class.as_str(), e.message),
            (None, Some(s)) => format!(
                "{s} {} {} bytes{}",
                q.http_version.as_deref().unwrap_or("?"),
                q.size_bytes.unwrap_or(0),
                q.tls
                    .as_ref()
                    .map(|t| format!(
                        ", {}{}",
                        t.version,
                        t.cert_expires_in_days
                            .map(|d| format!(", certificate expires in {d} days"))
                            .unwrap_or_default()
                    ))
                    .unwrap_or_default()
            ),
            (None, None) => String::new(),
        };
        let _ = writeln!(
            out,
            "{:>3}  {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8.3}  {result}",
            i + 1,
            opt(p.resolve_ms),
            opt(p.connect_ms),
            opt(p.proxy_connect_ms),
            opt(p.tls_ms),
            opt(p.ttfb_ms),
            opt(p.transfer_ms),
            p.total_ms,
        );
    }
    if r.count > 1 {
        let _ = writeln!(
            out,
            "{}/{} succeeded; total ms min {} / p50 {} / max {}",
            r.succeeded,
            r.count,
            opt(r.summary.total_ms.map(|s| s.min)),
            opt(r.summary.total_ms.map(|s| s.p50)),
            opt(r.summary.total_ms.map(|s| s.max)),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_names_and_text() {
        let r = HttpReport {
            url: "https://www.lab.test/".into(),
            method: "GET".into(),
            proxy: None,
            expect_status: "200-399".into(),
            count: 1,
            succeeded: 0,
            requests: vec![HttpRequestReport {
                ok: false,
                address: Some("198.18.0.2:443".into()),
                phases: HttpPhases {
                    resolve_ms: Some(0.5),
                    connect_ms: Some(0.1),
                    total_ms: 3.0,
                    ..HttpPhases::default()
                },
                status: Some(503),
                http_version: Some("HTTP/1.1".into()),
                tls: None,
                size_bytes: Some(10),
                error: Some(Failure::new(FailureClass::HttpStatus, "503 is not 200-399")),
            }],
            summary: HttpPhaseSummary::default(),
        };
        let v = serde_json::to_value(&r).expect("json");
        assert_eq!(v["requests"][0]["error"]["class"], "http_status");
        assert_eq!(v["requests"][0]["phases"]["connect_ms"], 0.1);
        assert!(v["requests"][0]["phases"]["tls_ms"].is_null());
        assert!(!r.all_ok());
        let t = render_text(&r);
        assert!(t.contains("http_status: 503 is not 200-399"), "{t}");
        let back: HttpReport = serde_json::from_value(v).expect("round trip");
        assert_eq!(back, r);
    }
}
