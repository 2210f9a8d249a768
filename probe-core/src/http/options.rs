//! What an HTTP test requests and how: [`HttpOptions`], made by [`HttpOptionsBuilder`], whose
//! `build()` checks every setting (URL, method, headers, expectations, CA file, resolver) so a
//! bad one is named before anything is sent.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::Method;
use hyper::header::{HeaderName, HeaderValue};

use super::{Expect, HttpError, ProxyConfig, Target, TlsOptions, tls};
use crate::dns::{DnsConfig, Family, Resolver};

/// A checked HTTP test: what to request, how often, through what. Made by
/// [`HttpOptions::builder`].
#[derive(Clone, Debug)]
pub struct HttpOptions {
    pub(super) prepared: Arc<Prepared>,
    count: u32,
    interval: Duration,
    dns: DnsConfig,
}

/// The settings of one request, parsed and ready to send.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub target: Target,
    pub method: Method,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
    pub expect: Expect,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub proxy: ProxyConfig,
    pub timeout: Duration,
    pub family: Family,
}

impl HttpOptions {
    /// A builder for a test of `url`: one GET, direct, 10 s timeout, requests 1 s apart, the
    /// system resolver and trust store, either address family.
    pub fn builder(url: impl Into<String>) -> HttpOptionsBuilder {
        HttpOptionsBuilder {
            url: url.into(),
            method: "GET".into(),
            headers: Vec::new(),
            body: Vec::new(),
            expect: Vec::new(),
            tls: TlsOptions::default(),
            proxy: ProxyConfig::none(),
            timeout: Duration::from_secs(10),
            count: 1,
            interval: Duration::from_secs(1),
            dns: DnsConfig::default(),
            family: Family::Any,
        }
    }

    /// The URL, normalised.
    pub fn url(&self) -> &str {
        &self.prepared.target.url
    }

    /// The request method.
    pub fn method(&self) -> &str {
        self.prepared.method.as_str()
    }

    /// Requests to make, each on a new connection.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Time between the starts of requests.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// How long one request may take in all.
    pub fn timeout(&self) -> Duration {
        self.prepared.timeout
    }

    /// Name resolution.
    pub fn dns(&self) -> &DnsConfig {
        &self.dns
    }

    /// Address family of the connection.
    pub fn family(&self) -> Family {
        self.prepared.family
    }

    /// The proxies.
    pub fn proxy(&self) -> &ProxyConfig {
        &self.prepared.proxy
    }
}

/// Builds [`HttpOptions`]; `build()` checks the settings.
#[derive(Clone, Debug)]
#[must_use]
pub struct HttpOptionsBuilder {
    url: String,
    method: String,
    headers: Vec<String>,
    body: Vec<u8>,
    expect: Vec<String>,
    tls: TlsOptions,
    proxy: ProxyConfig,
    timeout: Duration,
    count: u32,
    interval: Duration,
    dns: DnsConfig,
    family: Family,
}

impl HttpOptionsBuilder {
    /// The method (`GET` by default; any case).
    pub fn method(mut self, method: impl Into<String>) -> Self {
        self.method = method.into();
        self
    }

    /// Adds a header `Name: value`; it replaces probe's own of the same name.
    pub fn header(mut self, header: impl Into<String>) -> Self {
        self.headers.push(header.into());
        self
    }

    /// Adds headers `Name: value`.
    pub fn headers<I: IntoIterator<Item = S>, S: Into<String>>(mut self, headers: I) -> Self {
        self.headers.extend(headers.into_iter().map(Into::into));
        self
    }

    /// The request body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Adds an expectation: a status (`200`, `2xx`, `200-299`, `301,302`) or a regular
    /// expression the body must match (`re:` forces a regex). Default: status 200-399.
    pub fn expect(mut self, spec: impl Into<String>) -> Self {
        self.expect.push(spec.into());
        self
    }

    /// Adds expectations, as [`expect`](Self::expect).
    pub fn expects<I: IntoIterator<Item = S>, S: Into<String>>(mut self, specs: I) -> Self {
        self.expect.extend(specs.into_iter().map(Into::into));
        self
    }

    /// What the TLS client trusts.
    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.tls = tls;
        self
    }

    /// The proxies (default: none; [`ProxyConfig::from_env`] reads the usual variables).
    pub fn proxy(mut self, proxy: ProxyConfig) -> Self {
        self.proxy = proxy;
        self
    }

    /// How long one request may take in all (more than zero).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Requests to make, each on a new connection (at least one).
    pub fn count(mut self, count: u32) -> Self {
        self.count = count;
        self
    }

    /// Time between the starts of requests.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Name resolution (default: the system's configuration).
    pub fn dns(mut self, dns: DnsConfig) -> Self {
        self.dns = dns;
        self
    }

    /// Address family of the connection.
    pub fn family(mut self, family: Family) -> Self {
        self.family = family;
        self
    }

    /// Checks every setting; the error names the first bad one and how to write it.
    pub fn build(self) -> Result<HttpOptions, HttpError> {
        if self.count == 0 {
            return Err(HttpError::BadSetting {
                setting: "count",
                why: "it is 0; make at least one request".into(),
            });
        }
        if self.timeout.is_zero() {
            return Err(HttpError::BadSetting {
                setting: "timeout",
                why: "it is 0; give a request time to finish (for example 10s)".into(),
            });
        }
        let target = Target::parse(&self.url)?;
        let method =
            Method::from_bytes(self.method.to_ascii_uppercase().as_bytes()).map_err(|_| {
                HttpError::BadMethod {
                    method: self.method.clone(),
                }
            })?;
        let headers = self
            .headers
            .iter()
            .map(|h| parse_header(h))
            .collect::<Result<Vec<_>, HttpError>>()?;
        let expect = Expect::parse(&self.expect)?;
        let tls = if target.https {
            Some(tls::client_config(&self.tls)?)
        } else {
            None
        };
        // The resolver configuration is checked once, up front.
        Resolver::new(&self.dns).map_err(HttpError::Dns)?;
        Ok(HttpOptions {
            prepared: Arc::new(Prepared {
                target,
                method,
                headers,
                body: Bytes::from(self.body),
                expect,
                tls,
                proxy: self.proxy,
                timeout: self.timeout,
                family: self.family,
            }),
            count: self.count,
            interval: self.interval,
            dns: self.dns,
        })
    }
}

fn parse_header(h: &str) -> Result<(HeaderName, HeaderValue), HttpError> {
    let bad = || HttpError::BadHeader {
        header: h.to_owned(),
    };
    let (n, v) = h.split_once(':').ok_or_else(bad)?;
    Ok((
        HeaderName::from_bytes(n.trim().as_bytes()).map_err(|_| bad())?,
        HeaderValue::from_str(v.trim()).map_err(|_| bad())?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> HttpOptionsBuilder {
        HttpOptions::builder("http://198.18.0.2/").dns(DnsConfig::custom(vec![
            "127.0.0.1:53".parse().expect("addr"),
        ]))
    }

    #[test]
    fn bad_input_is_named() {
        let e = local().header("NoColon").build().expect_err("header");
        assert!(matches!(e, HttpError::BadHeader { .. }), "{e}");
        let e = local().method("GE T").build().expect_err("method");
        assert!(matches!(e, HttpError::BadMethod { .. }), "{e}");
        let e = local().count(0).build().expect_err("count");
        assert_eq!(
            e.to_string(),
            "bad setting `count`: it is 0; make at least one request"
        );
        let e = local()
            .timeout(Duration::ZERO)
            .build()
            .expect_err("timeout");
        assert!(e.to_string().contains("`timeout`"), "{e}");
        let e = local().expect("re:(").build().expect_err("expect");
        assert!(matches!(e, HttpError::BadExpect { .. }), "{e}");
        let e = HttpOptions::builder("ftp://x/").build().expect_err("url");
        assert!(matches!(e, HttpError::BadUrl { .. }), "{e}");
    }

    #[test]
    fn valid_settings_are_kept() {
        let o = local()
            .header("X-Test: 1")
            .method("post")
            .count(3)
            .interval(Duration::from_millis(50))
            .timeout(Duration::from_secs(2))
            .family(Family::V4)
            .build()
            .expect("valid");
        assert_eq!(o.method(), "POST");
        assert_eq!(o.url(), "http://198.18.0.2/");
        assert_eq!((o.count(), o.interval()), (3, Duration::from_millis(50)));
        assert_eq!(
            (o.timeout(), o.family()),
            (Duration::from_secs(2), Family::V4)
        );
        assert!(o.prepared.tls.is_none());
        assert_eq!(o.prepared.headers.len(), 1);
    }
}
