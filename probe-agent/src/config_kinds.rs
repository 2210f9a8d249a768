//! The test kinds, the keys only some of them take (the `targets` of ping and a2a, ping's
//! `protocol`, a2a's `proto`, dns's `record_type`, `servers` and `tcp`, the `timeout` of both) and the check
//! of a test's targets against its kind: an http test has a URL, a dns test a name to ask
//! for, the others addresses or names.

use std::time::Duration;

use probe_core::a2a::runtime::PeerSpec;
use serde::Serialize;

use crate::config::{Problems, Where};
use crate::config_toml::Table;

/// What a test measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Agent-to-agent STAMP toward the peer's responder.
    A2a,
    /// Path test (traceroute).
    Trace,
    /// HTTP(S) requests to a URL, each phase timed.
    Http,
    /// ICMP, UDP or TCP ping toward one or more targets.
    Ping,
    /// DNS queries for a name to one or more servers, each timed.
    Dns,
}

impl Kind {
    /// The kind's name in the file and in results.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::A2a => "a2a",
            Kind::Trace => "trace",
            Kind::Http => "http",
            Kind::Ping => "ping",
            Kind::Dns => "dns",
        }
    }

    /// Whether a run measures the peers its target resolves to (a2a, trace, ping); an http
    /// test goes to its URL and a dns test asks its servers about its name instead.
    pub fn has_peers(self) -> bool {
        !matches!(self, Kind::Http | Kind::Dns)
    }
}

/// The probes of a ping test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PingProtocol {
    /// ICMP echo.
    Icmp,
    /// UDP to a closed port (or a STAMP reflector).
    Udp,
    /// TCP SYN.
    Tcp,
}

/// The transport of an a2a test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum A2aProto {
    /// STAMP over UDP toward the peer's responder (49153/udp).
    Udp,
    /// The QUIC test on the peer's control endpoint (49152/udp), negotiated there: handshake
    /// time and datagram RTT, or with `class = "throughput"` stream throughput both ways.
    Quic,
}

/// Record types a dns test may ask for (those of `probe dns --type`).
pub(crate) const RECORD_TYPES: &[&str] =
    &["A", "AAAA", "MX", "TXT", "NS", "SOA", "PTR", "SRV", "CAA"];

/// What the kind-specific keys of one test say (defaults where absent).
pub(crate) struct KindKeys {
    pub(crate) protocol: PingProtocol,
    pub(crate) proto: A2aProto,
    pub(crate) timeout: Duration,
    pub(crate) record_type: String,
    pub(crate) servers: Vec<String>,
    pub(crate) tcp: bool,
    /// The port a target without one gets.
    pub(crate) default_port: u16,
}

/// The kinds that take each kind-specific key.
const ONLY: &[(&str, &[Kind], &str)] = &[
    ("targets", &[Kind::A2a, Kind::Ping], "a2a and ping"),
    ("protocol", &[Kind::Ping], "ping"),
    ("proto", &[Kind::A2a], "a2a"),
    ("timeout", &[Kind::Ping, Kind::Dns], "ping and dns"),
    ("record_type", &[Kind::Dns], "dns"),
    ("servers", &[Kind::Dns], "dns"),
    ("tcp", &[Kind::Dns], "dns"),
];

/// Reads the kind-specific keys; a key the kind does not take is a problem.
pub(crate) fn read_kind_keys(
    t: &Table<'_, '_>,
    kind: Option<Kind>,
    problems: &mut Problems,
) -> KindKeys {
    if let Some(kind) = kind {
        for (key, kinds, names) in ONLY {
            if let Some(at) = t.key_at(key).filter(|_| !kinds.contains(&kind)) {
                problems.push(
                    at,
                    format!("a {} test does not take `{key}`", kind.as_str()),
                    format!("`{key}` is for {names} tests; remove it here"),
                );
            }
        }
    }
    let protocol = match t.string("protocol", problems) {
        Some((p, at)) => match p.to_ascii_lowercase().as_str() {
            "icmp" => PingProtocol::Icmp,
            "udp" => PingProtocol::Udp,
            "tcp" => PingProtocol::Tcp,
            _ => {
                problems.push(
                    at,
                    format!("unknown protocol `{p}`"),
                    "use icmp, udp or tcp",
                );
                PingProtocol::Icmp
            }
        },
        None => PingProtocol::Icmp,
    };
    let proto = match t.string("proto", problems) {
        Some((p, at)) => match p.to_ascii_lowercase().as_str() {
            "udp" => A2aProto::Udp,
            "quic" => A2aProto::Quic,
            _ => {
                problems.push(
                    at,
                    format!("unknown a2a proto `{p}`"),
                    "use udp (STAMP) or quic",
                );
                A2aProto::Udp
            }
        },
        None => A2aProto::Udp,
    };
    let default_timeout = if kind == Some(Kind::Dns) { 2 } else { 1 };
    let timeout = t
        .duration("timeout", problems)
        .unwrap_or(Duration::from_secs(default_timeout));
    if let Some(at) = t.key_at("timeout").filter(|_| timeout.is_zero()) {
        problems.push(
            at,
            "the timeout must be above zero",
            r#"e.g. timeout = "1s""#,
        );
    }
    let record_type = match t.string("record_type", problems) {
        Some((r, at)) => {
            let up = r.to_ascii_uppercase();
            if !RECORD_TYPES.contains(&up.as_str()) {
                problems.push(
                    at,
                    format!("`{r}` is not a record type the agent asks for"),
                    format!("use one of {}", RECORD_TYPES.join(", ")),
                );
            }
            up
        }
        None => "A".to_owned(),
    };
    let servers = t.strings("servers", problems).unwrap_or_default();
    if let Some(at) = t.key_at("servers") {
        for s in &servers {
            if let Err(e) = probe_core::dns::parse_server(s) {
                problems.push(
                    at.clone(),
                    format!("`{s}`: {e}"),
                    r#"give servers as IP[:PORT], e.g. ["192.0.2.53", "[2001:db8::53]:5353"]"#,
                );
            }
        }
    }
    let tcp = t.boolean("tcp", problems).unwrap_or(false);
    let default_port = match (kind, protocol) {
        (Some(Kind::Ping), PingProtocol::Tcp) => 80,
        (Some(Kind::Ping), PingProtocol::Udp) => 33_434,
        (Some(Kind::Ping), PingProtocol::Icmp) => 0,
        _ if proto == A2aProto::Quic => probe_core::control::CONTROL_PORT,
        _ => probe_core::a2a::DEFAULT_PORT,
    };
    KindKeys {
        protocol,
        proto,
        timeout,
        record_type,
        servers,
        tcp,
        default_port,
    }
}

/// Checks `target` (and ping's `targets`) against the kind; returns the target as shown in
/// records and the list of a ping or a2a test's targets (empty with a single `target`).
pub(crate) fn check_targets(
    t: &Table<'_, '_>,
    kind: Option<Kind>,
    target: Option<(String, Where)>,
    port: u16,
    problems: &mut Problems,
) -> (Option<String>, Vec<String>) {
    let list = t.strings("targets", problems);
    if let (Some(_), Some(at)) = (&target, t.key_at("targets")) {
        problems.push(
            at,
            "both `target` and `targets` are given",
            "give one target, or all of them in `targets`",
        );
    }
    if let Some(list) = list {
        let at = t
            .key_at("targets")
            .unwrap_or_else(|| t.here(t.first_span()));
        if list.is_empty() {
            problems.push(
                at.clone(),
                "`targets` is empty",
                r#"e.g. targets = ["192.0.2.1", "host.example"]"#,
            );
        }
        for spec in &list {
            check_peer(spec, port, at.clone(), problems);
        }
        return (Some(list.join(",")), list);
    }
    let Some((spec, at)) = target else {
        return (None, Vec::new());
    };
    match kind {
        Some(Kind::Http) => {
            crate::config_values::check_url(&spec, at, problems);
        }
        Some(Kind::Dns) => {
            if !probe_core::ping::is_valid_target(&spec) {
                problems.push(
                    at,
                    format!("`{spec}` is not a name to look up"),
                    "give the DNS name to ask for, e.g. www.example.net (an address for PTR)",
                );
            }
        }
        _ => check_peer(&spec, port, at, problems),
    }
    (Some(spec), Vec::new())
}

fn check_peer(spec: &str, port: u16, at: Where, problems: &mut Problems) {
    if let Err(e) = PeerSpec::parse(spec, port) {
        problems.push(
            at,
            e.to_string(),
            "give an address, HOST:PORT or a DNS name",
        );
    }
}
