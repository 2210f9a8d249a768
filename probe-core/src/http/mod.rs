//! HTTP(S) tests: one request at a time, each phase timed — resolve, TCP connect, CONNECT
//! through a proxy, TLS handshake, time to first byte, transfer — with the status, the HTTP
//! and TLS versions, the certificate expiry and the size, or a classified failure.
//!
//! Names are resolved by [`crate::dns::Resolver`] (so `--dns` applies); the connection is
//! probe's own (tokio TCP, rustls), and hyper's connection API speaks HTTP/1.1 or HTTP/2 (by
//! ALPN) over it. Proxies: [`ProxyConfig`] from `--proxy` or `HTTP_PROXY` / `HTTPS_PROXY` /
//! `NO_PROXY`; plain http goes to the proxy in absolute form, https through a CONNECT tunnel.
//!
//! The sans-IO parts — the timeline and its phases, proxy selection and the CONNECT exchange,
//! expectations, the certificate's validity — are separate from the IO in `client`.

mod cert;
mod client;
mod connect;
mod error;
mod expect;
mod options;
mod phases;
mod proxy;
mod tls;

pub use connect::{ClientStream, ClientTls, Connection, connect};
pub use error::{Failure, FailureClass, HttpError};
pub use expect::{Expect, StatusSet};
pub use options::{HttpOptions, HttpOptionsBuilder};
pub use phases::Timeline;
pub use proxy::{Proxy, ProxyConfig, no_proxy_matches, parse_no_proxy};
pub use tls::TlsOptions;

use crate::dns::{DnsError, Resolver};
use crate::report::http::{HttpPhaseSummary, HttpReport, HttpRequestReport};
use crate::stats::Distribution;
use options::Prepared;

/// The parts of the URL a request needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    /// The URL, normalised.
    pub url: String,
    /// Whether it is https.
    pub https: bool,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port (explicit or the scheme's).
    pub port: u16,
    /// `host:port` for CONNECT.
    pub authority: String,
    /// The `Host` header: the port only when not the scheme's default.
    pub authority_header: String,
    /// Path and query.
    pub path_and_query: String,
}

impl Target {
    fn parse(spec: &str) -> Result<Target, HttpError> {
        let bad = |why: String| HttpError::BadUrl {
            url: spec.to_owned(),
            why,
        };
        let url = url::Url::parse(spec.trim()).map_err(|e| bad(e.to_string()))?;
        let https = match url.scheme() {
            "http" => false,
            "https" => true,
            other => return Err(bad(format!("the scheme `{other}` is not http or https"))),
        };
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            None => return Err(bad("it names no host".into())),
        };
        let port = url
            .port_or_known_default()
            .ok_or_else(|| bad("no port".into()))?;
        let authority = proxy::authority(&host, port);
        let authority_header = match url.port() {
            Some(p) => proxy::authority(&host, p),
            None => proxy::authority(&host, 0).trim_end_matches(":0").to_owned(),
        };
        let mut path_and_query = url.path().to_owned();
        if let Some(q) = url.query() {
            path_and_query.push('?');
            path_and_query.push_str(q);
        }
        Ok(Target {
            url: url.to_string(),
            https,
            host,
            port,
            authority,
            authority_header,
            path_and_query,
        })
    }
}

/// Runs the test: `count` requests, one every `interval`, each on a new connection.
///
/// Fails as a whole only on bad input (URL, proxy, header, method, expectation, CA file, DNS
/// configuration); each request's failure is in its entry of the report.
pub async fn run_http(opts: &HttpOptions) -> Result<HttpReport, HttpError> {
    let p = &opts.prepared;
    let count = opts.count();
    let start = tokio::time::Instant::now();
    let mut requests: Vec<HttpRequestReport> = Vec::with_capacity(count as usize);
    // One resolver for the run, built before any clock starts: the resolve phase times the
    // lookup, not reading the configuration or setting up hickory. Its cache is emptied before
    // each request, so every request asks the server again.
    let resolver = Resolver::new(opts.dns())?;
    for i in 0..count {
        tokio::time::sleep_until(start + opts.interval() * i).await;
        resolver.clear_cache();
        let r = client::one_request(p, &resolver).await;
        tracing::debug!(ok = r.ok, total_ms = r.phases.total_ms, "http request");
        requests.push(r);
    }
    let proxy = p
        .proxy
        .for_target(p.target.https, &p.target.host)
        .map(Proxy::display);
    Ok(HttpReport {
        url: p.target.url.clone(),
        method: p.method.to_string(),
        proxy,
        expect_status: p.expect.status.describe(),
        count,
        succeeded: requests.iter().filter(|r| r.ok).count() as u32,
        summary: summarize(&requests),
        requests,
    })
}

/// Phase distributions over the successful requests.
fn summarize(requests: &[HttpRequestReport]) -> HttpPhaseSummary {
    let ok: Vec<_> = requests.iter().filter(|r| r.ok).map(|r| r.phases).collect();
    let dist = |get: &dyn Fn(&crate::report::http::HttpPhases) -> Option<f64>| {
        let mut d = Distribution::new();
        for p in &ok {
            if let Some(v) = get(p) {
                d.record((v * 1e6).round() as i64);
            }
        }
        d.summary_ms()
    };
    HttpPhaseSummary {
        resolve_ms: dist(&|p| p.resolve_ms),
        connect_ms: dist(&|p| p.connect_ms),
        proxy_connect_ms: dist(&|p| p.proxy_connect_ms),
        tls_ms: dist(&|p| p.tls_ms),
        ttfb_ms: dist(&|p| p.ttfb_ms),
        transfer_ms: dist(&|p| p.transfer_ms),
        total_ms: dist(&|p| Some(p.total_ms)),
    }
}

impl From<DnsError> for HttpError {
    fn from(e: DnsError) -> Self {
        HttpError::Dns(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Target::parse("https://www.lab.test/a/b?x=1#frag").expect("url");
        assert!(t.https);
        assert_eq!((t.host.as_str(), t.port), ("www.lab.test", 443));
        assert_eq!(t.authority, "www.lab.test:443");
        assert_eq!(t.authority_header, "www.lab.test");
        assert_eq!(t.path_and_query, "/a/b?x=1");
        let t = Target::parse("http://[fd00:1::2]:8080").expect("v6");
        assert_eq!((t.host.as_str(), t.port), ("fd00:1::2", 8080));
        assert_eq!(t.authority_header, "[fd00:1::2]:8080");
        assert_eq!(t.path_and_query, "/");
        for (bad, why) in [
            ("www.lab.test/x", "relative URL without a base"),
            ("ftp://lab.test/", "the scheme `ftp` is not http or https"),
            ("http://", "empty host"),
            ("http://a b/", "invalid"),
        ] {
            let e = Target::parse(bad).expect_err(bad).to_string();
            assert!(
                e.starts_with(&format!("`{bad}` is not an http:// or https:// URL: ")),
                "{e}"
            );
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
