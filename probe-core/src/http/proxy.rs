//! Which proxy a request goes through: `--proxy`, else `HTTP_PROXY` / `HTTPS_PROXY` with
//! `NO_PROXY` exceptions (the lowercase names too, lowercase first, as curl reads them); and the
//! CONNECT exchange that opens a tunnel, as bytes in and out (sans-IO).

use std::net::IpAddr;

use base64::Engine as _;

use super::HttpError;

/// An HTTP proxy: where it is and the credentials it gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proxy {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// TCP port (default 1080 when the URL has none, as curl).
    pub port: u16,
    /// `Basic` credentials from `user:password@` in the URL, already encoded.
    pub authorization: Option<String>,
}

impl Proxy {
    /// Parses a proxy URL: `http://[user:password@]host[:port]`; the scheme may be left out.
    pub fn parse(spec: &str) -> Result<Proxy, HttpError> {
        let bad = |why: &str| HttpError::BadProxy {
            spec: redact(spec),
            why: why.to_owned(),
        };
        let with_scheme = if spec.contains("://") {
            spec.to_owned()
        } else {
            format!("http://{spec}")
        };
        let url = url::Url::parse(&with_scheme).map_err(|e| bad(&e.to_string()))?;
        if url.scheme() != "http" {
            return Err(bad(
                "only http:// proxies are supported (the tunnel to https targets is CONNECT)",
            ));
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            None => return Err(bad("it names no host")),
        };
        let authorization = if url.username().is_empty() {
            None
        } else {
            let user = percent_decode(url.username());
            let pass = percent_decode(url.password().unwrap_or(""));
            Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
            ))
        };
        Ok(Proxy {
            host,
            port: url.port().unwrap_or(1080),
            authorization,
        })
    }

    /// `host:port` as people read it (brackets around IPv6), never the credentials.
    pub fn display(&self) -> String {
        authority(&self.host, self.port)
    }
}

/// `host:port`, with brackets around an IPv6 address.
pub(super) fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A proxy URL with any password replaced, for messages.
fn redact(spec: &str) -> String {
    match (spec.find("://"), spec.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &spec[..s + 3], &spec[at..]),
        (None, Some(at)) => format!("***{}", &spec[at..]),
        _ => spec.to_owned(),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where requests go: the proxies by target scheme and the `NO_PROXY` exceptions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyConfig {
    /// For `http://` targets.
    pub http: Option<Proxy>,
    /// For `https://` targets (through a CONNECT tunnel).
    pub https: Option<Proxy>,
    /// `NO_PROXY` entries: `*`, domain suffixes, addresses, CIDR blocks.
    pub no_proxy: Vec<String>,
}

impl ProxyConfig {
    /// No proxy at all.
    pub fn none() -> Self {
        ProxyConfig::default()
    }

    /// One proxy for every target, still subject to `no_proxy`.
    pub fn all(proxy: Proxy, no_proxy: Vec<String>) -> Self {
        ProxyConfig {
            http: Some(proxy.clone()),
            https: Some(proxy),
            no_proxy,
        }
    }

    /// From environment variables read through `get` (`std::env::var` in the CLI):
    /// `http_proxy`/`HTTP_PROXY`, `https_proxy`/`HTTPS_PROXY`, `no_proxy`/`NO_PROXY`. Empty
    /// values count as unset.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, HttpError> {
        let var = |lower: &str, upper: &str| {
            get(lower)
                .filter(|v| !v.trim().is_empty())
                .or_else(|| get(upper).filter(|v| !v.trim().is_empty()))
        };
        let parse = |v: Option<String>| v.map(|s| Proxy::parse(s.trim())).transpose();
        Ok(ProxyConfig {
            http: parse(var("http_proxy", "HTTP_PROXY"))?,
            https: parse(var("https_proxy", "HTTPS_PROXY"))?,
            no_proxy: var("no_proxy", "NO_PROXY")
                .map(|v| parse_no_proxy(&v))
                .unwrap_or_default(),
        })
    }

    /// The proxy for a request to `host` over `https` or plain http; `None` to go direct.
    pub fn for_target(&self, https: bool, host: &str) -> Option<&Proxy> {
        let proxy = if https { &self.https } else { &self.http };
        let proxy = proxy.as_ref()?;
        (!no_proxy_matches(&self.no_proxy, host)).then_some(proxy)
    }
}

/// Splits a `NO_PROXY` value into its entries.
pub fn parse_no_proxy(v: &str) -> Vec<String> {
    v.split(',')
        .map(|e| e.trim().to_ascii_lowercase())
        .filter(|e| !e.is_empty())
        .collect()
}

/// Whether `host` is exempt from the proxy: `*` exempts all; a domain (with or without a
/// leading dot) exempts itself and its subdomains; an address exempts itself; `ADDR/LEN` a block.
pub fn no_proxy_matches(entries: &[String], host: &str) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let ip = host.parse::<IpAddr>().ok();
    entries.iter().any(|e| {
        if e == "*" {
            return true;
        }
        let e = e.trim_start_matches('[').trim_end_matches(']');
        if let Some(ip) = ip {
            if let Some((net, len)) = e.split_once('/') {
                return match (net.parse::<IpAddr>(), len.parse::<u8>()) {
                    (Ok(net), Ok(len)) => in_block(ip, net, len),
                    _ => false,
                };
            }
            return e.parse::<IpAddr>().is_ok_and(|a| a == ip);
        }
        let domain = e.trim_start_matches("*.").trim_start_matches('.');
        host == domain
            || host
                .strip_suffix(domain)
                .is_some_and(|rest| rest.ends_with('.'))
    })
}

fn in_block(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if len <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if len <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The CONNECT request opening a tunnel to `target` (`host:port`).
pub(super) fn connect_request(target: &str, proxy: &Proxy) -> Vec<u8> {
    let mut req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(auth) = &proxy.authorization {
        req.push_str("Proxy-Authorization: ");
        req.push_str(auth);
        req.push_str("\r\n");
    }
    req.push_str("User-Agent: probe/");
    req.push_str(env!("CARGO_PKG_VERSION"));
    req.push_str("\r\n\r\n");
    req.into_bytes()
}

/// The proxy's answer to CONNECT, once its head is complete: the status code and how many
/// bytes the head took. `Ok(None)` while more bytes are needed.
pub(super) fn parse_connect_response(buf: &[u8]) -> Result<Option<(u16, usize)>, String> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > 16 * 1024 {
            Err("the proxy's answer to CONNECT has no end of header within 16 KiB".into())
        } else {
            Ok(None)
        };
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    let line = head.lines().next().unwrap_or_default();
    let mut parts = line.split_whitespace();
    let version = parts.next().unwrap_or_default();
    let status = parts.next().and_then(|s| s.parse::<u16>().ok());
    match status {
        Some(code) if version.starts_with("HTTP/1.") => Ok(Some((code, end + 4))),
        _ => Err(format!(
            "the proxy's answer to CONNECT is not HTTP: `{}`",
            line.chars().take(80).collect::<String>()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(v: &str) -> Vec<String> {
        parse_no_proxy(v)
    }

    #[test]
    fn proxy_urls() {
        let p = Proxy::parse("http://user:p%40ss@proxy.lab:3128").expect("proxy");
        assert_eq!((p.host.as_str(), p.port), ("proxy.lab", 3128));
        // base64("user:p@ss")
        assert_eq!(p.authorization.as_deref(), Some("Basic dXNlcjpwQHNz"));
        assert_eq!(p.display(), "proxy.lab:3128");
        let p = Proxy::parse("198.18.0.2:8888").expect("no scheme");
        assert_eq!(
            (p.host.as_str(), p.port, p.authorization),
            ("198.18.0.2", 8888, None)
        );
        let p = Proxy::parse("http://[fd00::2]").expect("v6");
        assert_eq!((p.display().as_str(), p.port), ("[fd00::2]:1080", 1080));
        let e = Proxy::parse("https://u:secret@proxy:443").expect_err("https proxy");
        let text = e.to_string();
        assert!(text.contains("only http:// proxies"), "{text}");
        assert!(!text.contains("secret"), "{text}");
    }

    #[test]
    fn env_lowercase_first_and_no_proxy() {
        let env = |k: &str| {
            Some(
                match k {
                    "http_proxy" => "",
                    "HTTP_PROXY" => "http://up:3128",
                    "https_proxy" => "http://low:3128",
                    "HTTPS_PROXY" => "http://ignored:3128",
                    "NO_PROXY" => "localhost, .internal.lab,10.0.0.0/8, 192.0.2.7,fd00::/16",
                    _ => return None,
                }
                .to_owned(),
            )
        };
        let c = ProxyConfig::from_env(env).expect("config");
        assert_eq!(
            c.for_target(false, "www.lab").map(|p| p.host.as_str()),
            Some("up")
        );
        assert_eq!(
            c.for_target(true, "www.lab").map(|p| p.host.as_str()),
            Some("low")
        );
        for direct in [
            "localhost",
            "internal.lab",
            "a.b.internal.lab",
            "10.1.2.3",
            "192.0.2.7",
            "[fd00::5]",
            "LOCALHOST.",
        ] {
            assert!(c.for_target(true, direct).is_none(), "{direct}");
        }
        for proxied in [
            "notinternal.lab",
            "192.0.2.8",
            "11.0.0.1",
            "fd01::1",
            "localhost.lab",
        ] {
            assert!(c.for_target(true, proxied).is_some(), "{proxied}");
        }
        assert!(no_proxy_matches(&entries("*"), "anything"));
        assert!(no_proxy_matches(&entries("*.lab"), "x.lab"));
        assert!(!no_proxy_matches(&entries(""), "x.lab"));
        assert!(ProxyConfig::from_env(|_| None).expect("empty") == ProxyConfig::none());
    }

    #[test]
    fn connect_exchange() {
        let p = Proxy::parse("http://a:b@proxy:3128").expect("proxy");
        let req = String::from_utf8(connect_request("www.lab:443", &p)).expect("utf8");
        assert!(req.starts_with("CONNECT www.lab:443 HTTP/1.1\r\nHost: www.lab:443\r\n"));
        assert!(req.contains("Proxy-Authorization: Basic YTpi\r\n"));
        assert!(req.ends_with("\r\n\r\n"));
        assert_eq!(parse_connect_response(b"HTTP/1.1 200 Conn"), Ok(None));
        assert_eq!(
            parse_connect_response(b"HTTP/1.0 200 Connection established\r\n\r\n"),
            Ok(Some((200, 39)))
        );
        assert_eq!(
            parse_connect_response(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\nbody"),
            Ok(Some((407, 73)))
        );
        assert!(parse_connect_response(b"SSH-2.0-x\r\n\r\n").is_err());
    }
}
