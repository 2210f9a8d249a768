//! Where the resolver's servers come from, `--dns ADDR[:PORT]` parsing, and the translation into
//! hickory's configuration.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
    ServerOrderingStrategy,
};
use hickory_resolver::system_conf::parse_resolv_conf;

use super::DnsError;

/// The DNS port used when a server is given without one.
pub const DEFAULT_PORT: u16 = 53;

/// The system resolver configuration file.
const SYSTEM_RESOLV_CONF: &str = "/etc/resolv.conf";

/// Which servers to ask.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Servers {
    /// The name servers, search list and `ndots` of `/etc/resolv.conf`; `/etc/hosts` is
    /// consulted before DNS.
    #[default]
    System,
    /// The name servers, search list and `ndots` of a file in resolv.conf format; no hosts file.
    ResolvConf(PathBuf),
    /// Exactly these servers (UDP, TCP when an answer is truncated), in this order; no search
    /// list, no hosts file.
    Custom(Vec<SocketAddr>),
}

/// How the resolver asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsConfig {
    /// Which servers to ask.
    pub servers: Servers,
    /// How long one attempt waits for an answer. The files' own `options timeout:` is not used.
    pub timeout: Duration,
    /// How many attempts a lookup makes in all (at least one). The files' own
    /// `options attempts:` is not used.
    pub attempts: usize,
    /// How many reverse lookups [`super::Resolver::reverse_many`] runs at once.
    pub reverse_concurrency: usize,
    /// How long [`super::Resolver::reverse_many`] waits for the whole batch; addresses still
    /// unresolved then get no name.
    pub reverse_deadline: Duration,
    /// Ask over TCP only (one connection per query) instead of UDP with TCP after a truncated
    /// answer. Applies to [`Servers::Custom`] and to the per-server queries.
    pub tcp: bool,
}

impl Default for DnsConfig {
    /// The system servers, 2 s per attempt, 2 attempts, 16 concurrent reverse lookups under a
    /// 4 s batch deadline.
    fn default() -> Self {
        DnsConfig {
            servers: Servers::System,
            timeout: Duration::from_secs(2),
            attempts: 2,
            reverse_concurrency: 16,
            reverse_deadline: Duration::from_secs(4),
            tcp: false,
        }
    }
}

impl DnsConfig {
    /// Default settings asking exactly `servers`.
    pub fn custom(servers: Vec<SocketAddr>) -> Self {
        DnsConfig {
            servers: Servers::Custom(servers),
            ..DnsConfig::default()
        }
    }

    /// The most a single lookup can take: every attempt timing out.
    pub fn lookup_budget(&self) -> Duration {
        self.timeout
            .saturating_mul(u32::try_from(self.attempts.max(1)).unwrap_or(u32::MAX))
    }
}

/// Parses a DNS server given as `ADDR`, `ADDR:PORT`, `IPV6`, `[IPV6]` or `[IPV6]:PORT`; the port
/// defaults to 53. Names are refused: finding a DNS server by name would need DNS.
pub fn parse_server(spec: &str) -> Result<SocketAddr, DnsError> {
    let bad = |why: String| DnsError::BadServer {
        spec: spec.to_owned(),
        why,
    };
    let s = spec.trim();
    if s.is_empty() {
        return Err(bad("it is empty".into()));
    }
    if let Ok(addr) = s.parse::<SocketAddr>() {
        if addr.port() == 0 {
            return Err(bad("port 0 is not a port to send to (1-65535)".into()));
        }
        return Ok(addr);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, DEFAULT_PORT));
    }
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']'))
        && let Ok(ip) = inner.parse::<Ipv6Addr>()
    {
        return Ok(SocketAddr::new(IpAddr::V6(ip), DEFAULT_PORT));
    }
    Err(bad(diagnose(s)))
}

/// Says what is wrong with a server spec that did not parse.
fn diagnose(s: &str) -> String {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return "`[` without a closing `]`".into();
        };
        if host.parse::<Ipv6Addr>().is_err() {
            return format!("`{host}` is not an IPv6 address (brackets hold IPv6 only)");
        }
        match after {
            "" => (host, None),
            a => match a.strip_prefix(':') {
                Some(p) => (host, Some(p)),
                None => return "expected `:PORT` after `]`".into(),
            },
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) if !p.contains(':') => (h, Some(p)),
            _ => (s, None),
        }
    };
    if let Some(p) = port
        && host.parse::<IpAddr>().is_ok()
    {
        return format!("`{p}` is not a port number (1-65535)");
    }
    if host.contains(':') {
        return format!("`{host}` is not an IPv6 address");
    }
    if host.chars().any(|c| c.is_ascii_alphabetic()) {
        return "a DNS server must be an IP address (finding it by name would need DNS)".into();
    }
    "expected an IPv4 or IPv6 address, optionally with :PORT".into()
}

/// hickory's configuration for one server at `addr`: UDP first, TCP for truncated answers; or
/// TCP alone when `tcp_only`.
pub(super) fn name_server(addr: SocketAddr, tcp_only: bool) -> NameServerConfig {
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = addr.port();
    if tcp_only {
        return NameServerConfig::new(addr.ip(), true, vec![tcp]);
    }
    let mut udp = ConnectionConfig::udp();
    udp.port = addr.port();
    NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
}

/// Everything needed to build hickory resolvers for a [`DnsConfig`].
#[derive(Clone, Debug)]
pub(super) struct Prepared {
    /// Servers, search list and domain.
    pub config: ResolverConfig,
    /// Timeouts, attempts, hosts-file use, ndots.
    pub opts: ResolverOpts,
    /// The servers, for messages and per-server queries.
    pub servers: Vec<SocketAddr>,
}

impl Prepared {
    /// Reads the servers' source and applies the settings of `cfg`.
    pub(super) fn new(cfg: &DnsConfig) -> Result<Self, DnsError> {
        let (config, mut opts, hosts) = match &cfg.servers {
            Servers::System => {
                let (c, o) = read_resolv_conf(Path::new(SYSTEM_RESOLV_CONF))?;
                (c, o, true)
            }
            Servers::ResolvConf(path) => {
                let (c, o) = read_resolv_conf(path)?;
                (c, o, false)
            }
            Servers::Custom(list) => {
                if list.is_empty() {
                    return Err(DnsError::NoServers);
                }
                let servers = list.iter().map(|&a| name_server(a, cfg.tcp)).collect();
                (
                    ResolverConfig::from_name_servers(servers),
                    ResolverOpts::default(),
                    false,
                )
            }
        };
        opts.timeout = cfg.timeout;
        // hickory counts retries after the first try.
        opts.attempts = cfg.attempts.max(1) - 1;
        opts.use_hosts_file = if hosts {
            ResolveHosts::Always
        } else {
            ResolveHosts::Never
        };
        opts.server_ordering_strategy = ServerOrderingStrategy::UserProvidedOrder;
        let servers = config
            .name_servers()
            .iter()
            .map(|ns| {
                let port = ns.connections.first().map_or(DEFAULT_PORT, |c| c.port);
                SocketAddr::new(ns.ip, port)
            })
            .collect();
        Ok(Prepared {
            config,
            opts,
            servers,
        })
    }
}

fn read_resolv_conf(path: &Path) -> Result<(ResolverConfig, ResolverOpts), DnsError> {
    let err = |why: String| DnsError::Config {
        path: path.display().to_string(),
        why,
    };
    let text = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    parse_resolv_conf(text).map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(spec: &str) -> String {
        parse_server(spec).expect(spec).to_string()
    }

    fn why(spec: &str) -> String {
        match parse_server(spec) {
            Err(DnsError::BadServer { why, .. }) => why,
            other => panic!("{spec}: {other:?}"),
        }
    }

    #[test]
    fn server_forms() {
        assert_eq!(ok("1.2.3.4"), "1.2.3.4:53");
        assert_eq!(ok("1.2.3.4:5353"), "1.2.3.4:5353");
        assert_eq!(ok("[::1]:53"), "[::1]:53");
        assert_eq!(ok("[2001:db8::53]:5300"), "[2001:db8::53]:5300");
        assert_eq!(ok("::1"), "[::1]:53");
        assert_eq!(ok("[::1]"), "[::1]:53");
        assert_eq!(ok(" 127.0.0.1 "), "127.0.0.1:53");
    }

    #[test]
    fn server_rejects_with_reason() {
        assert_eq!(why(""), "it is empty");
        assert_eq!(
            why("1.2.3.4:0"),
            "port 0 is not a port to send to (1-65535)"
        );
        assert_eq!(why("1.2.3.4:x"), "`x` is not a port number (1-65535)");
        assert_eq!(
            why("1.2.3.4:70000"),
            "`70000` is not a port number (1-65535)"
        );
        assert_eq!(why("[::1]:99999"), "`99999` is not a port number (1-65535)");
        assert!(why("dns.example").contains("must be an IP address"));
        assert!(why("dns.example:53").contains("must be an IP address"));
        assert!(why("1.2.3").starts_with("expected an IPv4 or IPv6 address"));
        assert_eq!(why("2001:db8::zz"), "`2001:db8::zz` is not an IPv6 address");
        assert_eq!(
            why("[1.2.3.4]:53"),
            "`1.2.3.4` is not an IPv6 address (brackets hold IPv6 only)"
        );
        assert_eq!(why("[::1"), "`[` without a closing `]`");
        assert_eq!(why("[::1]x"), "expected `:PORT` after `]`");
        let text = parse_server("dns.example").expect_err("name").to_string();
        assert!(
            text.starts_with("`dns.example` is not a DNS server ADDR[:PORT]: "),
            "{text}"
        );
        assert!(text.contains("[2001:db8::53]:53"), "{text}");
    }

    #[test]
    fn custom_servers_keep_ports_and_settings() {
        let cfg = DnsConfig {
            timeout: Duration::from_millis(700),
            attempts: 3,
            ..DnsConfig::custom(vec![
                "127.0.0.1:5353".parse().expect("a"),
                "[::1]:53".parse().expect("b"),
            ])
        };
        let p = Prepared::new(&cfg).expect("prepared");
        assert_eq!(
            p.servers,
            vec![
                "127.0.0.1:5353".parse::<SocketAddr>().expect("a"),
                "[::1]:53".parse().expect("b")
            ]
        );
        assert_eq!(p.opts.timeout, Duration::from_millis(700));
        assert_eq!(p.opts.attempts, 2, "hickory counts retries");
        assert_eq!(p.opts.use_hosts_file, ResolveHosts::Never);
        assert!(p.config.search().is_empty());
        assert_eq!(cfg.lookup_budget(), Duration::from_millis(2100));
        assert_eq!(
            Prepared::new(&DnsConfig::custom(vec![])).expect_err("empty"),
            DnsError::NoServers
        );
    }

    #[test]
    fn resolv_conf_file_gives_servers_and_search() {
        let dir = std::env::temp_dir().join(format!("probe-dns-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("resolv.conf");
        std::fs::write(
            &path,
            "# test\nnameserver 192.0.2.53\nnameserver 2001:db8::53\nsearch lab.example\noptions ndots:2 timeout:9 attempts:5\n",
        )
        .expect("write");
        let cfg = DnsConfig {
            servers: Servers::ResolvConf(path.clone()),
            ..DnsConfig::default()
        };
        let p = Prepared::new(&cfg).expect("prepared");
        assert_eq!(
            p.servers,
            vec![
                "192.0.2.53:53".parse::<SocketAddr>().expect("a"),
                "[2001:db8::53]:53".parse().expect("b")
            ]
        );
        assert_eq!(p.opts.ndots, 2);
        assert_eq!(
            p.opts.timeout,
            Duration::from_secs(2),
            "our timeout, not the file's"
        );
        assert_eq!(p.opts.attempts, 1);
        assert_eq!(p.opts.use_hosts_file, ResolveHosts::Never);
        assert_eq!(p.config.search().len(), 1);

        std::fs::write(&path, "search only.example\n").expect("write");
        let e = Prepared::new(&cfg).expect_err("no servers");
        assert!(
            matches!(&e, DnsError::Config { path: p, .. } if p.ends_with("resolv.conf")),
            "{e}"
        );
        assert!(
            e.to_string().ends_with("name a server with --dns ADDR"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");

        let missing = DnsConfig {
            servers: Servers::ResolvConf(dir.join("absent")),
            ..DnsConfig::default()
        };
        assert!(matches!(
            Prepared::new(&missing),
            Err(DnsError::Config { .. })
        ));
    }
}
