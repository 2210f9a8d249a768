//! The timeline of one request and the phase durations derived from it (sans-IO: the client
//! records instants as offsets from the start, this turns them into phases).

use std::time::Duration;

use crate::report::http::HttpPhases;

/// When each step of a request finished, as offsets from its start. A step that did not
/// happen (no TLS, no proxy tunnel, failed earlier) stays `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timeline {
    /// The name resolved (zero for an address literal).
    pub resolved: Option<Duration>,
    /// The TCP handshake completed (with the server, or with the proxy).
    pub connected: Option<Duration>,
    /// The proxy answered 200 to CONNECT.
    pub tunneled: Option<Duration>,
    /// The TLS handshake completed.
    pub tls_done: Option<Duration>,
    /// The first byte of the response arrived.
    pub first_byte: Option<Duration>,
    /// The last byte of the body arrived.
    pub done: Option<Duration>,
    /// When the request ended, successfully or not.
    pub end: Duration,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn between(from: Option<Duration>, to: Option<Duration>) -> Option<f64> {
    Some(ms(to?.saturating_sub(from?)))
}

impl Timeline {
    /// When the connection was ready for the request: after TLS, the tunnel or TCP.
    fn ready(&self) -> Option<Duration> {
        self.tls_done.or(self.tunneled).or(self.connected)
    }

    /// The phase durations: each from the end of the previous step to the end of its own.
    pub fn phases(&self) -> HttpPhases {
        HttpPhases {
            resolve_ms: self.resolved.map(ms),
            connect_ms: between(self.resolved, self.connected),
            proxy_connect_ms: between(self.connected, self.tunneled),
            tls_ms: between(self.tunneled.or(self.connected), self.tls_done),
            ttfb_ms: between(self.ready(), self.first_byte),
            transfer_ms: between(self.first_byte, self.done),
            total_ms: ms(self.end),
        }
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;

    #[allow(clippy::unnecessary_wraps)]
    fn at(ms: u64) -> Option<Duration> {
        Some(Duration::from_millis(ms))
    }

    #[test]
    fn https_through_a_tunnel() {
        let t = Timeline {
            resolved: at(2),
            connected: at(5),
            tunneled: at(9),
            tls_done: at(20),
            first_byte: at(31),
            done: at(40),
            end: Duration::from_millis(40),
        };
        let p = t.phases();
        assert_eq!(p.resolve_ms, Some(2.0));
        assert_eq!(p.connect_ms, Some(3.0));
        assert_eq!(p.proxy_connect_ms, Some(4.0));
        assert_eq!(p.tls_ms, Some(11.0));
        assert_eq!(p.ttfb_ms, Some(11.0));
        assert_eq!(p.transfer_ms, Some(9.0));
        assert_eq!(p.total_ms, 40.0);
    }

    #[test]
    fn plain_http_and_a_failure_midway() {
        let t = Timeline {
            resolved: at(0),
            connected: at(1),
            first_byte: at(4),
            done: at(6),
            end: Duration::from_millis(6),
            ..Timeline::default()
        };
        let p = t.phases();
        assert_eq!((p.tls_ms, p.proxy_connect_ms), (None, None));
        assert_eq!(p.ttfb_ms, Some(3.0));
        let failed = Timeline {
            resolved: at(1),
            end: Duration::from_secs(1),
            ..Timeline::default()
        };
        let p = failed.phases();
        assert_eq!((p.connect_ms, p.ttfb_ms, p.total_ms), (None, None, 1000.0));
    }
}
