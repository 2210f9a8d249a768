//! `HOST[:PORT]` parsing and resolution.

use std::net::{IpAddr, SocketAddr};

use super::A2aError;

pub use crate::dns::Family;

/// A peer as the user named it: host (name or address) and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerSpec {
    /// Host name or address literal (without brackets).
    pub host: String,
    /// UDP port.
    pub port: u16,
}

impl PeerSpec {
    /// Parses `HOST`, `HOST:PORT`, `IPV6`, or `[IPV6]:PORT`; `default_port` when none is given.
    pub fn parse(spec: &str, default_port: u16) -> Result<Self, A2aError> {
        let bad = |why: &str| A2aError::BadPeer {
            spec: spec.to_owned(),
            why: why.to_owned(),
        };
        let s = spec.trim();
        if s.is_empty() {
            return Err(bad("it is empty"));
        }
        let port_of = |p: &str| {
            p.parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| bad(&format!("`{p}` is not a port number (1-65535)")))
        };
        if let Some(rest) = s.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| bad("`[` without a closing `]`"))?;
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad("brackets hold an IPv6 address only"));
            }
            let port = match after {
                "" => default_port,
                p => port_of(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("expected `:PORT` after `]`"))?,
                )?,
            };
            return Ok(PeerSpec {
                host: host.to_owned(),
                port,
            });
        }
        if s.parse::<std::net::Ipv6Addr>().is_ok() {
            return Ok(PeerSpec {
                host: s.to_owned(),
                port: default_port,
            });
        }
        let (host, port) = match s.rsplit_once(':') {
            Some((h, p)) => (h, port_of(p)?),
            None => (s, default_port),
        };
        if host.is_empty() || host.contains(':') {
            return Err(bad("write IPv6 addresses with a port as [ADDR]:PORT"));
        }
        Ok(PeerSpec {
            host: host.to_owned(),
            port,
        })
    }

    /// Resolves to one socket address of `family` (literals need no resolver).
    pub async fn resolve(&self, family: Family) -> Result<SocketAddr, A2aError> {
        if let Ok(ip) = self.host.parse::<IpAddr>() {
            if !family.admits(ip) {
                return Err(A2aError::Resolve {
                    host: self.host.clone(),
                    why: format!("{ip} is not an address of the requested family ({family:?})"),
                });
            }
            return Ok(SocketAddr::new(ip, self.port));
        }
        let err = |why: String| A2aError::Resolve {
            host: self.host.clone(),
            why,
        };
        let addrs = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|e| err(e.to_string()))?;
        let mut any = false;
        for a in addrs {
            any = true;
            if family.admits(a.ip()) {
                return Ok(a);
            }
        }
        Err(err(if any {
            format!("it has no address of the requested family ({family:?})")
        } else {
            "no addresses".to_owned()
        }))
    }
}

impl std::fmt::Display for PeerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<PeerSpec, A2aError> {
        PeerSpec::parse(s, 49153)
    }

    #[test]
    fn forms() {
        let ok = |s: &str, host: &str, port: u16| {
            let got = p(s).expect(s);
            assert_eq!((got.host.as_str(), got.port), (host, port), "{s}");
        };
        ok("192.0.2.7", "192.0.2.7", 49153);
        ok("192.0.2.7:7000", "192.0.2.7", 7000);
        ok("peer.example", "peer.example", 49153);
        ok("peer.example:1", "peer.example", 1);
        ok("2001:db8::7", "2001:db8::7", 49153);
        ok("[2001:db8::7]", "2001:db8::7", 49153);
        ok("[2001:db8::7]:9", "2001:db8::7", 9);
        assert_eq!(
            p("[2001:db8::7]:9").expect("v6").to_string(),
            "[2001:db8::7]:9"
        );
    }

    #[test]
    fn rejects() {
        for s in [
            "",
            "host:0",
            "host:70000",
            "host:x",
            "[::1",
            "[::1]x",
            "[name]:1",
            "a:b:c:",
        ] {
            let e = p(s).expect_err(s).to_string();
            assert!(e.contains("HOST[:PORT]"), "{s}: {e}");
        }
    }

    #[tokio::test]
    async fn literals_and_family() {
        let spec = p("127.0.0.1:5").expect("literal");
        assert_eq!(
            spec.resolve(Family::Any).await.expect("v4"),
            "127.0.0.1:5".parse().expect("addr")
        );
        assert!(spec.resolve(Family::V6).await.is_err());
    }
}
