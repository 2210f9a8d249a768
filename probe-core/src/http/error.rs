//! Why an HTTP test could not start (bad input) and how a request failed (a class people and
//! alerting rules can match on, with a message naming the problem).

use std::io;

use serde::{Deserialize, Serialize};

/// Bad input: the test cannot start.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The URL does not parse or is not http(s).
    #[error(
        "`{url}` is not an http:// or https:// URL: {why} (example: https://www.example.com/path)"
    )]
    BadUrl {
        /// What the user wrote.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// A proxy URL (from `--proxy` or the environment) does not parse.
    #[error(
        "`{spec}` is not a proxy URL: {why} (example: http://user:password@proxy.example:3128)"
    )]
    BadProxy {
        /// The URL, password hidden.
        spec: String,
        /// What is wrong with it.
        why: String,
    },
    /// A header is not `Name: value`.
    #[error("`{header}` is not a header: write it as `Name: value`")]
    BadHeader {
        /// What the user wrote.
        header: String,
    },
    /// The method is not an HTTP method token.
    #[error("`{method}` is not an HTTP method (GET, HEAD, POST, PUT, DELETE, ...)")]
    BadMethod {
        /// What the user wrote.
        method: String,
    },
    /// An `--expect` value is neither a status nor a regular expression.
    #[error("`{spec}` is not an expectation: {why} (examples: 200, 2xx, 200-299, 'ok|ready')")]
    BadExpect {
        /// What the user wrote.
        spec: String,
        /// What is wrong with it.
        why: String,
    },
    /// The CA file cannot be read or holds no certificate.
    #[error("cannot use the CA certificates in {path}: {why}")]
    BadCaFile {
        /// The file.
        path: String,
        /// What is wrong with it.
        why: String,
    },
    /// The resolver configuration is unusable.
    #[error(transparent)]
    Dns(crate::dns::DnsError),
    /// A setting is out of its range.
    #[error("bad setting `{setting}`: {why}")]
    BadSetting {
        /// The setting (the builder method's name).
        setting: &'static str,
        /// What is wrong and what to write instead.
        why: String,
    },
    /// The TLS setup failed.
    #[error("cannot set up TLS: {why}")]
    TlsSetup {
        /// What failed.
        why: String,
    },
}

/// The class of a failed request, as in the JSON `error.class`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// The server (or nothing) refused the TCP connection (ECONNREFUSED).
    Refused,
    /// A phase did not finish within the timeout (or the kernel gave up: ETIMEDOUT).
    Timeout,
    /// The host name does not resolve (NXDOMAIN, no address, the server refused or failed).
    NameNotFound,
    /// The TLS handshake failed (certificate not trusted or expired, no common protocol, ...).
    Tls,
    /// The proxy failed: it refused the connection, asked for credentials (407) or could not
    /// reach the target (502, 503).
    Proxy,
    /// The server's status did not match the expected ones.
    HttpStatus,
    /// The body did not match the expected regular expression.
    HttpBody,
    /// Another network failure: unreachable, reset, closed early.
    Network,
    /// The server's answer is not valid HTTP.
    Protocol,
}

impl FailureClass {
    /// The name used in JSON and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Refused => "refused",
            FailureClass::Timeout => "timeout",
            FailureClass::NameNotFound => "name_not_found",
            FailureClass::Tls => "tls",
            FailureClass::Proxy => "proxy",
            FailureClass::HttpStatus => "http_status",
            FailureClass::HttpBody => "http_body",
            FailureClass::Network => "network",
            FailureClass::Protocol => "protocol",
        }
    }
}

/// How one request failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The class.
    pub class: FailureClass,
    /// What happened, worded for people.
    pub message: String,
    /// The proxy's status code when the proxy answered with an error.
    pub proxy_status: Option<u16>,
}

impl Failure {
    /// A failure of `class` with `message`.
    pub fn new(class: FailureClass, message: impl Into<String>) -> Self {
        Failure {
            class,
            message: message.into(),
            proxy_status: None,
        }
    }

    /// The failure of a socket operation on the way to `what` (`198.18.0.2:80`, `the proxy
    /// 198.18.0.2:8888`).
    pub fn io(err: &io::Error, what: &str, through_proxy: bool) -> Self {
        let class = match err.kind() {
            _ if through_proxy => FailureClass::Proxy,
            io::ErrorKind::ConnectionRefused => FailureClass::Refused,
            io::ErrorKind::TimedOut => FailureClass::Timeout,
            _ => FailureClass::Network,
        };
        let hint = match err.kind() {
            io::ErrorKind::ConnectionRefused => " (nothing listens there, or a firewall rejects)",
            io::ErrorKind::TimedOut => " (no answer: a firewall may drop the packets)",
            _ => "",
        };
        Failure::new(class, format!("cannot connect to {what}: {err}{hint}"))
    }

    /// The proxy answered with an error `status` (to CONNECT, or to a forwarded request).
    pub fn proxy_status(proxy: &str, status: u16) -> Self {
        let why = match status {
            407 => {
                "asks for credentials: put them in the proxy URL, http://user:password@host:port"
            }
            502 | 504 => "could not reach the target",
            503 => "could not reach the target or is overloaded",
            403 => "does not allow this target",
            _ => "refused the request",
        };
        Failure {
            class: FailureClass::Proxy,
            message: format!("the proxy {proxy} answered {status}: it {why}"),
            proxy_status: Some(status),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_classes_and_words() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        let f = Failure::io(&refused, "198.18.0.2:81", false);
        assert_eq!(f.class, FailureClass::Refused);
        assert!(
            f.message.starts_with("cannot connect to 198.18.0.2:81: "),
            "{}",
            f.message
        );
        assert_eq!(
            Failure::io(&refused, "the proxy 198.18.0.2:8888", true).class,
            FailureClass::Proxy
        );
        let t = io::Error::from(io::ErrorKind::TimedOut);
        assert_eq!(Failure::io(&t, "x", false).class, FailureClass::Timeout);
        let p = Failure::proxy_status("198.18.0.2:8888", 407);
        assert_eq!((p.class, p.proxy_status), (FailureClass::Proxy, Some(407)));
        assert!(p.message.contains("asks for credentials"));
        assert_eq!(
            serde_json::to_value(FailureClass::NameNotFound).expect("json"),
            "name_not_found"
        );
    }
}
