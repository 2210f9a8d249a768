//! Command-line definitions (clap).

use std::net::IpAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use clap_complete::Shell;

/// Default STAMP port (RFC 8762 test traffic, A2A UDP tests).
pub const STAMP_PORT: u16 = 49153;

/// Network measurement probe: agent-to-agent, path and network tests.
#[derive(Debug, Parser)]
#[command(name = "probe", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace). `PROBE_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// DNS server for every name probe resolves, `ADDR[:PORT]` (repeatable, like
    /// `docker run --dns`); overrides the system resolver configuration.
    #[arg(long = "dns", global = true, value_name = "ADDR[:PORT]")]
    pub dns: Vec<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the responder: STAMP reflector on 49153/udp (RFC 8762), IPv4 and IPv6.
    Serve(ServeArgs),
    /// Agent-to-agent UDP test (STAMP) against a peer's responder; embedded responder when no --peer.
    A2a(A2aArgs),
    /// Path test: traceroute with Paris flow ids, MDA, MPLS and PMTU.
    Trace(TraceArgs),
    /// Many-target ping over ICMP, UDP or TCP.
    Ping(PendingArgs),
    /// DNS resolution test: latency per server, answers with TTLs, classified failures.
    Dns(DnsArgs),
    /// HTTP(S) test: each phase timed (resolve, connect, TLS, first byte, transfer), classified failures.
    Http(HttpArgs),
    /// Long-running agent that runs scheduled tests and answers peers.
    Agent(PendingArgs),
    /// Print shell completions for bash, zsh, fish, elvish or powershell.
    Completions {
        /// The shell to generate completions for.
        shell: Shell,
    },
}

/// Arguments of a subcommand that has not landed yet (accepted, then refused with a message).
#[derive(Debug, Args)]
pub struct PendingArgs {
    /// Anything; the subcommand is not available yet.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub rest: Vec<String>,
}

/// Address family restriction shared by the test commands.
#[derive(Debug, Clone, Copy, Args)]
pub struct FamilyArgs {
    /// Use IPv4 only.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Use IPv6 only.
    #[arg(short = '6')]
    pub ipv6: bool,
}

/// `probe serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (repeatable). Default: `::` dual-stack, or 0.0.0.0 where IPv6 is off.
    #[arg(long, value_name = "ADDR")]
    pub listen: Vec<IpAddr>,
    /// UDP port of the STAMP reflector.
    #[arg(long, default_value_t = STAMP_PORT)]
    pub port: u16,
    /// Most concurrent sender sessions kept; the oldest is evicted beyond it.
    #[arg(long, default_value_t = 65_536)]
    pub max_sessions: usize,
    /// A session idle this long is forgotten.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Most packets per second answered per source address (0 = unlimited).
    #[arg(long, default_value_t = 200_000)]
    pub rate_limit: u32,
    /// Print the reflector's counters as JSON on stdout when it stops (SIGINT/SIGTERM).
    #[arg(long)]
    pub json: bool,
}

/// Send rate for `probe a2a --rate`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// As fast as the path and the peer allow.
    Max,
    /// This many packets per second.
    Pps(f64),
}

/// `probe a2a`.
#[derive(Debug, Args)]
pub struct A2aArgs {
    /// The peer's responder, `HOST[:PORT]` (port 49153 by default; `[v6addr]:port` for IPv6).
    /// Without it, probe starts an embedded responder on loopback and tests against that.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub peer: Option<String>,
    /// Number of test packets to send.
    #[arg(long, short = 'c', conflicts_with = "duration")]
    pub count: Option<u64>,
    /// How long to send, e.g. `3s`, `500ms`, `1m`.
    #[arg(long, short = 'd', value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Interval between packets on an isochronous schedule, e.g. `10ms`, `1ms`, `200us`.
    #[arg(long, short = 'i', default_value = "10ms", value_parser = parse_duration)]
    pub interval: Duration,
    /// Send rate instead of --interval: packets per second, or `max` to flood.
    #[arg(long, value_parser = parse_rate, conflicts_with = "interval")]
    pub rate: Option<Rate>,
    /// UDP payload size in bytes (STAMP minimum 44).
    #[arg(long, short = 's', default_value_t = 44)]
    pub size: usize,
    /// DSCP codepoint (0-63) for the test packets.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=63))]
    pub dscp: Option<u8>,
    /// Source address to send from (choose an uplink on a multi-homed host).
    #[arg(long, value_name = "ADDR")]
    pub source: Option<IpAddr>,
    /// Network interface to send through (`SO_BINDTODEVICE`).
    #[arg(long, value_name = "NAME")]
    pub interface: Option<String>,
    /// How long to wait for late replies after the last packet.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub wait: Duration,
    /// Print the result as JSON (schema in the README).
    #[arg(long)]
    pub json: bool,
    /// Address family.
    #[command(flatten)]
    pub family: FamilyArgs,
}

/// Probe protocol of `probe trace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TraceProto {
    /// ICMP echo requests (ping sockets when unprivileged).
    Icmp,
    /// UDP datagrams to a closed port (UDP sockets with `IP_RECVERR` when unprivileged).
    Udp,
    /// TCP SYN (raw sockets only).
    Tcp,
}

/// `probe trace`.
#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools)]
pub struct TraceArgs {
    /// The target: a host name or an IPv4/IPv6 address.
    pub target: String,
    /// Probe protocol.
    #[arg(long, short = 'P', value_enum, default_value = "icmp")]
    pub proto: TraceProto,
    /// Classic traceroute flows: every probe a new flow (ports vary), so load balancers scatter it.
    #[arg(long, conflicts_with_all = ["paris", "mda"])]
    pub classic: bool,
    /// Paris traceroute (the default): one flow identity for every probe, one path through load balancers.
    #[arg(long)]
    pub paris: bool,
    /// Multipath discovery (MDA): every responder per hop behind per-flow load balancers, and the links.
    #[arg(long)]
    pub mda: bool,
    /// MDA confidence in percent that no responder was missed at a hop.
    #[arg(long, default_value_t = 95.0, requires = "mda", value_parser = parse_confidence)]
    pub confidence: f64,
    /// MDA probe budget.
    #[arg(long, default_value_t = 3000, requires = "mda")]
    pub max_probes: u64,
    /// Rounds of probes; per-hop statistics accumulate like `mtr --report -c N`.
    #[arg(long, short = 'c', default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub count: u32,
    /// Time between the starts of rounds.
    #[arg(long, short = 'i', default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Probes per hop per round.
    #[arg(long, short = 'q', default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..))]
    pub queries: u8,
    /// First TTL probed.
    #[arg(long, short = 'f', default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..))]
    pub first_ttl: u8,
    /// Highest TTL probed.
    #[arg(long, short = 'm', default_value_t = 30, value_parser = clap::value_parser!(u8).range(1..))]
    pub max_ttl: u8,
    /// How long to wait for each answer before counting the probe as lost (`*`).
    #[arg(long, short = 'w', default_value = "1s", value_parser = parse_duration)]
    pub wait: Duration,
    /// Most probes per second (default: unpaced, all TTLs at once).
    #[arg(long, value_name = "PPS", value_parser = clap::value_parser!(u32).range(1..))]
    pub rate: Option<u32>,
    /// Destination port for UDP (default 33434) and TCP (default 80).
    #[arg(long, short = 'p')]
    pub port: Option<u16>,
    /// Base source port for UDP and TCP probes.
    #[arg(long)]
    pub source_port: Option<u16>,
    /// Source address to send from.
    #[arg(long, short = 's', value_name = "ADDR")]
    pub source: Option<IpAddr>,
    /// Network interface to send through (`SO_BINDTODEVICE`).
    #[arg(long, short = 'I', value_name = "NAME")]
    pub interface: Option<String>,
    /// Whole IP packet size of the probes in bytes.
    #[arg(long, default_value_t = 60)]
    pub size: u16,
    /// DSCP codepoint (0-63) of the probes.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=63))]
    pub dscp: Option<u8>,
    /// Also discover the path MTU (DF probes from the interface MTU down) once the target answered.
    #[arg(long)]
    pub pmtu: bool,
    /// Use ping sockets and UDP sockets even with `CAP_NET_RAW` (no TCP, no MPLS labels).
    #[arg(long)]
    pub unprivileged: bool,
    /// Do not look up host names of the hops.
    #[arg(short = 'n', long = "numeric")]
    pub numeric: bool,
    /// Print the result as JSON (schema in the README).
    #[arg(long)]
    pub json: bool,
    /// Address family.
    #[command(flatten)]
    pub family: FamilyArgs,
}

/// Record types `probe dns --type` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "UPPER")]
pub enum DnsType {
    /// IPv4 address.
    A,
    /// IPv6 address.
    Aaaa,
    /// Mail exchanger.
    Mx,
    /// Text.
    Txt,
    /// Name server.
    Ns,
    /// Start of authority.
    Soa,
    /// Pointer (reverse name); an address is turned into its `.arpa` name.
    Ptr,
    /// Service location.
    Srv,
    /// Certification authority authorization.
    Caa,
}

/// `probe dns`.
#[derive(Debug, Args)]
pub struct DnsArgs {
    /// The name to resolve (for `--type PTR` an address works too).
    pub name: String,
    /// DNS server to measure, `ADDR[:PORT]` (repeatable); default: the global `--dns` servers,
    /// else those of /etc/resolv.conf.
    #[arg(long, short = 's', value_name = "ADDR[:PORT]")]
    pub server: Vec<String>,
    /// Record type.
    #[arg(
        long = "type",
        short = 't',
        value_enum,
        default_value = "A",
        ignore_case = true
    )]
    pub record_type: DnsType,
    /// Query over TCP (one connection per query) instead of UDP.
    #[arg(long)]
    pub tcp: bool,
    /// Queries per server, for a latency distribution.
    #[arg(long, short = 'c', default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub count: u32,
    /// Time between the starts of rounds (each round asks every server once).
    #[arg(long, short = 'i', default_value = "100ms", value_parser = parse_duration)]
    pub interval: Duration,
    /// How long each query waits for its response (no retries: a lost query is a timeout).
    #[arg(long, short = 'w', default_value = "2s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Print the result as JSON (schema in the README).
    #[arg(long)]
    pub json: bool,
}

/// `probe http`.
#[derive(Debug, Args)]
pub struct HttpArgs {
    /// The URL, `http://` or `https://`.
    pub url: String,
    /// Request method.
    #[arg(long, short = 'X', default_value = "GET")]
    pub method: String,
    /// Extra request header `Name: value` (repeatable).
    #[arg(long, short = 'H', value_name = "NAME: VALUE")]
    pub header: Vec<String>,
    /// Request body; `@FILE` reads it from a file.
    #[arg(long, short = 'd', value_name = "DATA")]
    pub data: Option<String>,
    /// What success looks like (repeatable): a status (`200`, `2xx`, `200-299`, `301,302`;
    /// default 200-399) or a regular expression the body must match (`re:` forces a regex).
    #[arg(long, value_name = "STATUS|REGEX")]
    pub expect: Vec<String>,
    /// Accept any server certificate (expired, self-signed, other name).
    #[arg(long, short = 'k')]
    pub insecure: bool,
    /// Trust the CA certificates in this PEM file besides the system's.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<std::path::PathBuf>,
    /// HTTP proxy `http://[user:password@]host[:port]` for every request (default: the
    /// `HTTP_PROXY` / `HTTPS_PROXY` environment variables).
    #[arg(long, short = 'x', value_name = "URL")]
    pub proxy: Option<String>,
    /// Hosts that bypass the proxy, comma-separated (domains, addresses, CIDR blocks, `*`);
    /// replaces `NO_PROXY`.
    #[arg(long, value_name = "LIST")]
    pub noproxy: Option<String>,
    /// Requests to make, each on a new connection.
    #[arg(long, short = 'c', default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub count: u32,
    /// Time between the starts of requests.
    #[arg(long, short = 'i', default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,
    /// How long one request may take in all.
    #[arg(long, short = 'w', default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Print the result as JSON (schema in the README).
    #[arg(long)]
    pub json: bool,
    /// Address family.
    #[command(flatten)]
    pub family: FamilyArgs,
}

/// Parses `--confidence`: a percentage strictly between 0 and 100.
pub fn parse_confidence(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v < 100.0 => Ok(v),
        _ => Err(format!(
            "`{s}` is not a confidence: give a percentage between 0 and 100, e.g. 95 or 99"
        )),
    }
}

/// Parses durations such as `3s`, `500ms`, `200us`, `1m30s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("{e}: write a duration with a unit, e.g. 3s, 500ms, 200us"))
}

/// Parses `--rate`: `max` or a positive number of packets per second.
pub fn parse_rate(s: &str) -> Result<Rate, String> {
    if s.eq_ignore_ascii_case("max") {
        return Ok(Rate::Max);
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(Rate::Pps(v)),
        _ => Err(format!(
            "`{s}` is not a rate: give packets per second (e.g. 1000) or `max`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_rates() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("3").is_err());
        assert_eq!(parse_rate("max"), Ok(Rate::Max));
        assert_eq!(parse_rate("2500"), Ok(Rate::Pps(2500.0)));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("fast").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
