//! Command-line definitions (clap).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use clap_complete::Shell;
use ipnet::IpNet;
use probe_core::a2a::Direction;

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
    Ping(PingArgs),
    /// DNS resolution test: latency per server, answers with TTLs, classified failures.
    Dns(DnsArgs),
    /// HTTP(S) test: each phase timed (resolve, connect, TLS, first byte, transfer), classified failures.
    Http(HttpArgs),
    /// Render a saved `--json` result of `probe a2a` or `probe trace` as a self-contained
    /// HTML report.
    Report(ReportArgs),
    /// Long-running agent that runs scheduled tests and answers peers.
    Agent(AgentArgs),
    /// Print the results an agent keeps in its spool.
    Results(ResultsArgs),
    /// Check a responder's control plane: identity, token, protocol version and clock.
    #[command(hide = true)]
    ControlPing(ControlPingArgs),
    /// Check an HTTP health endpoint (the container's HEALTHCHECK): exit 0 on a 2xx answer.
    Healthcheck(HealthcheckArgs),
    /// Print shell completions for bash, zsh, fish, elvish or powershell.
    Completions {
        /// The shell to generate completions for.
        shell: Shell,
    },
}

/// `probe healthcheck`.
#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// The endpoint, `http://HOST[:PORT]/PATH`.
    #[arg(value_name = "URL", default_value = "http://127.0.0.1:8000/healthz")]
    pub url: String,
    /// How long to wait for the connection and the status line.
    #[arg(long, default_value = "3s", value_parser = parse_wait)]
    pub timeout: Duration,
}

/// `probe report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The saved result (`probe a2a --json`, `probe trace --json`); `-` reads stdin.
    #[arg(value_name = "RESULT.json")]
    pub input: PathBuf,
    /// Where to write the HTML (default: stdout).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `probe trace --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TraceFormat {
    /// The mtr-like table.
    Table,
    /// JSON (as --json).
    Json,
    /// A Graphviz digraph of the path.
    Dot,
    /// One CSV row per hop responder.
    Csv,
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
    /// Let requests gather for up to this long before answering them, once requests are
    /// coming (0s to 10ms; `0s`, the default, answers each at once). At thousands of
    /// requests a second this is one wake-up and one send call per hold instead of per
    /// request; the hold is part of the reflector's turnaround (T3 - T2), which STAMP takes
    /// out of the round trip, so only a sender's user-space round trip grows by it. A flood
    /// is never held. `probe agent` holds 1ms (`responder.coalesce`).
    #[arg(long, default_value = "0s", value_name = "DURATION", value_parser = parse_up_to_10ms)]
    pub coalesce: Duration,
    /// Most concurrent sender sessions kept; the oldest is evicted beyond it.
    #[arg(long, default_value_t = 65_536)]
    pub max_sessions: usize,
    /// A session idle this long is forgotten.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Most packets per second answered per source (IPv4 address or IPv6 /64; 0 = unlimited).
    #[arg(long, default_value_t = 200_000)]
    pub rate_limit: u32,
    /// Burst allowance per source, packets (default: a tenth of --rate-limit, at least 100).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_burst: Option<u32>,
    /// Sources with a rate bucket of their own (default: --max-sessions); sources beyond share
    /// one bucket, so spraying addresses gets no fresh bursts.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub rate_limit_sources: Option<u64>,
    /// Answer only sources in this prefix, e.g. `192.0.2.0/24`, `2001:db8::/48` or one address
    /// (repeatable, up to 32 per family). Others are counted (`not_allowed`) and dropped.
    /// Default: answer every STAMP sender (RFC 8762 open mode).
    #[arg(long, value_name = "CIDR", value_parser = parse_prefix)]
    pub allow: Vec<IpNet>,
    /// Answer only STAMP senders in authenticated mode (RFC 8762, HMAC-SHA-256) holding the
    /// key in FILE: hex digits (at least 32, i.e. 16 bytes; white space ignored), e.g. made
    /// with `openssl rand -hex 32`. Packets with a wrong HMAC and unauthenticated packets get
    /// no reply and are counted (`auth_failed`, `unauthenticated`).
    #[arg(long, value_name = "FILE")]
    pub stamp_key_file: Option<PathBuf>,
    /// Print the reflector's counters as JSON on stdout when it stops (SIGINT/SIGTERM); the
    /// control plane's are under `control`.
    #[arg(long)]
    pub json: bool,
    /// UDP port of the control plane (QUIC, TLS 1.3), on the same addresses as STAMP.
    #[arg(long, default_value_t = probe_core::control::CONTROL_PORT)]
    pub control_port: u16,
    /// Do not start the control plane (answer STAMP only).
    #[arg(long)]
    pub no_control: bool,
    /// Most control connections open at once; more are refused.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub max_control_connections: u64,
    /// Answer on the STAMP port only sessions negotiated over the control plane; other
    /// senders are dropped and counted (`not_negotiated`). Default: plain STAMP senders are
    /// answered too (RFC 8762 open mode).
    #[arg(long, conflicts_with = "no_control")]
    pub require_auth: bool,
    /// Highest packet rate of one negotiated test, packets per second; a faster request (or
    /// a flood) is refused with an error naming this limit.
    #[arg(long, value_name = "PPS", value_parser = parse_positive_rate)]
    pub max_rate: Option<f64>,
    /// Longest negotiated test, e.g. `30s`; a longer request is refused naming this limit.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_duration: Option<Duration>,
    /// Highest bandwidth of one negotiated test, bit/s of payload (suffix k, M or G, e.g.
    /// `10M`); a request beyond it (or a flood) is refused naming this limit.
    #[arg(long, value_name = "BITS", value_parser = parse_bandwidth)]
    pub max_bandwidth: Option<u64>,
    /// State directory and token of the control plane.
    #[command(flatten)]
    pub control: ControlAccessArgs,
}

/// Where the control plane keeps its state, and the shared token (`probe serve` and the
/// control clients).
#[derive(Debug, Args)]
pub struct ControlAccessArgs {
    /// Directory of persistent state: the control identity (server) and the known-peers file
    /// (client). Default: `$PROBE_STATE_DIR`; as root `/var/lib/probe`; otherwise
    /// `$XDG_DATA_HOME/probe` or `~/.local/share/probe`.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Shared token of the control plane (also `PROBE_TOKEN`). Other local users can see a
    /// command line: prefer `--token-file` or the variable.
    #[arg(long, value_name = "SECRET", conflicts_with = "token_file")]
    pub token: Option<String>,
    /// File holding the shared token (surrounding white space ignored).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

/// `probe control-ping` (hidden): connects to a responder's control plane, checks its
/// identity and token, and prints its hello.
#[derive(Debug, Args)]
pub struct ControlPingArgs {
    /// The responder, `HOST[:PORT]` (control port 49152 by default).
    #[arg(value_name = "HOST[:PORT]")]
    pub peer: String,
    /// Trust the responder only with this identity fingerprint (`sha256:HEX`, as `probe
    /// serve` prints it). Default: trust on first use, kept in the known-peers file.
    #[arg(long, value_name = "FP")]
    pub peer_fingerprint: Option<String>,
    /// How long to wait for the connection and the answer.
    #[arg(long, default_value = "5s", value_parser = parse_wait)]
    pub timeout: Duration,
    /// Announce this protocol version instead of the current one (to test peers).
    #[arg(long, hide = true)]
    pub protocol_version: Option<u32>,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// State directory and token.
    #[command(flatten)]
    pub control: ControlAccessArgs,
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
    /// How long to send, e.g. `3s`, `500ms`, `1m` (up to 366 days).
    #[arg(long, short = 'd', value_parser = parse_test_duration)]
    pub duration: Option<Duration>,
    /// Interval between packets on an isochronous schedule, e.g. `10ms`, `1ms`, `200us`
    /// (10ns to 1h).
    #[arg(long, short = 'i', default_value = "10ms", value_parser = parse_interval)]
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
    #[arg(long, value_name = "to|from|both")]
    pub direction: Option<Direction>,
    /// Source address to send from (choose an uplink on a multi-homed host).
    #[arg(long, value_name = "ADDR")]
    pub source: Option<IpAddr>,
    /// Network interface to send through (`SO_BINDTODEVICE`).
    #[arg(long, value_name = "NAME")]
    pub interface: Option<String>,
    /// Send in STAMP authenticated mode (RFC 8762, HMAC-SHA-256) with the key in FILE (hex,
    /// as for `probe serve --stamp-key-file`); packets are then at least 112 bytes. Replies
    /// with a wrong HMAC are dropped and counted (`auth_failed`).
    #[arg(long, value_name = "FILE")]
    pub stamp_key_file: Option<PathBuf>,
    /// Send in STAMP authenticated mode (RFC 8762) with a fresh key of the session, handed
    /// out by the peer's control plane over its TLS connection (no key file needed); both
    /// directions are authenticated. A peer with `--require-auth` hands out a key unasked, and
    /// probe then sends authenticated anyway. Packets are then at least 112 bytes.
    #[arg(long, conflicts_with_all = ["no_control", "stamp_key_file"])]
    pub stamp_auth: bool,
    /// How long to wait for late replies after the last packet (up to 1h).
    #[arg(long, default_value = "1s", value_parser = parse_wait)]
    pub wait: Duration,
    /// Pacer spin before each send of the schedule: the timer sleep ends at least this long
    /// before the send time (longer while wake-ups come late) and the rest is spun, e.g.
    /// `150us` (the default), `0s` never spins. The spin is capped at twice this and at a
    /// fifth of the interval, so it takes at most 20% of a core.
    #[arg(long, value_name = "DURATION", value_parser = parse_up_to_10ms)]
    pub spin: Option<Duration>,
    /// Report every this long while the test runs (a line per interval, as iperf3 does;
    /// with --json, the `intervals` array), e.g. `1s` (100ms to 1h).
    #[arg(long, value_name = "DURATION", value_parser = parse_report_interval)]
    pub report_interval: Option<Duration>,
    /// Also write the result as a self-contained HTML report to FILE (delays and loss over
    /// time, distributions, the clock banner); opens offline in any browser.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Keep the test's time series (at most 1000 buckets of loss, round-trip and one-way
    /// delays) and put it in the JSON as `timeline` (implied by --html).
    #[arg(long)]
    pub timeline: bool,
    /// No progress on the terminal (by default a run longer than about 2 s shows a live
    /// progress line on stderr when stderr is a terminal).
    #[arg(long)]
    pub quiet: bool,
    /// Print the result as JSON (schema in the README).
    #[arg(long)]
    pub json: bool,
    /// Address family.
    #[command(flatten)]
    pub family: FamilyArgs,
    /// Test profile: `voice` sends an RTP-shaped stream (one packet of the codec's RTP size
    /// every 20 ms, DSCP 46 unless --dscp says otherwise, 5 to 30 s, 10 s by default) and
    /// rates each direction with the ITU-T G.107 E-model (MOS, R-factor).
    #[arg(long, value_enum, conflicts_with_all = ["interval", "rate", "size", "count"])]
    pub profile: Option<Profile>,
    /// Codec of the voice profile: `g711` (160-byte payload) or `g729` (20-byte payload).
    #[arg(long, value_enum, default_value = "g711", requires = "profile")]
    pub codec: CodecArg,
    /// Emulated jitter buffer of the voice profile: `fixed:MS` or `adaptive[:MIN-MAX]` (ms).
    #[arg(
        long,
        value_name = "fixed:MS|adaptive[:MIN-MAX]",
        default_value = "adaptive:20-200",
        requires = "profile"
    )]
    pub jitter_buffer: probe_core::stats::JitterBufferMode,
    /// UDP port of the peer's control plane (QUIC): the test is negotiated there when it
    /// answers, else plain STAMP runs toward the peer (`control: "none"` in the JSON).
    #[arg(long, default_value_t = probe_core::control::CONTROL_PORT)]
    pub control_port: u16,
    /// Do not use the peer's control plane: plain STAMP (RFC 8762) toward the peer.
    #[arg(long, conflicts_with = "peer_fingerprint")]
    pub no_control: bool,
    /// Trust the peer's control plane only with this identity fingerprint (`sha256:HEX`).
    /// Default: trust on first use, kept in the known-peers file of the state directory.
    #[arg(long, value_name = "FP")]
    pub peer_fingerprint: Option<String>,
    /// How long to wait for the peer's control plane before running plain STAMP instead.
    #[arg(long, default_value = "2s", value_parser = parse_wait)]
    pub control_timeout: Duration,
    /// State directory (known peers) and token of the peer's control plane.
    #[command(flatten)]
    pub control: ControlAccessArgs,
    /// Test protocol: `udp` (STAMP on 49153/udp), `tcp` (connect latency, or with
    /// --throughput bulk transfer, on 49153/tcp) or `quic` (handshakes and datagram round
    /// trips, or with --throughput stream transfer, on the control endpoint 49152/udp).
    #[arg(long, value_enum, default_value = "udp")]
    pub proto: A2aProto,
    /// Bulk-transfer throughput test (`--proto tcp` or `quic`) in the --direction(s), for --duration
    /// (default 10s).
    #[arg(long)]
    pub throughput: bool,
    /// Also show the path both ways, once the test is over: a trace from this end toward the
    /// peer, and one from the peer back toward this end's address as the peer sees it (a NAT
    /// in front of this end shows as its public address), asked for over the peer's control
    /// plane. Up to 30 hops, 3 probes per hop: TCP SYNs toward the test's port with --proto
    /// tcp, ICMP echo with the other tests; JSON `path.forward` and `path.reverse`.
    #[arg(long)]
    pub trace: bool,
    /// Parallel TCP connections per direction of a throughput test (1-128).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=128))]
    pub streams: u16,
    /// QUIC handshakes to time with `--proto quic` (0 to 100000; default 10).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub handshakes: Option<u32>,
    /// TCP maximum segment size to ask for (`TCP_MAXSEG`, 88-65535 bytes).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(88..=65_535))]
    pub mss: Option<u32>,
}

/// `probe a2a --proto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum A2aProto {
    /// STAMP test packets on 49153/udp.
    Udp,
    /// TCP connects or bulk transfer on 49153/tcp.
    Tcp,
    /// QUIC handshakes, datagram round trips (RFC 9221) or stream throughput, on the peer's
    /// control endpoint (49152/udp).
    Quic,
}

/// `probe a2a --profile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// An RTP-shaped voice stream rated with the G.107 E-model.
    Voice,
}

/// `probe a2a --codec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CodecArg {
    /// G.711, 20 ms, 160-byte payload (172-byte RTP packet).
    G711,
    /// G.729, 20 ms, 20-byte payload (32-byte RTP packet, sent as the 44-byte STAMP minimum).
    G729,
}

impl CodecArg {
    /// The codec the library knows.
    pub fn codec(self) -> probe_core::stats::emodel::Codec {
        match self {
            CodecArg::G711 => probe_core::stats::emodel::Codec::G711,
            CodecArg::G729 => probe_core::stats::emodel::Codec::G729,
        }
    }
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
    /// Probe protocol (default: icmp; udp with --mda, since per-flow load balancers hash UDP
    /// and TCP ports but send every ICMP echo one way).
    #[arg(long, short = 'P', value_enum)]
    pub proto: Option<TraceProto>,
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
    /// How long to wait for each answer before counting the probe as lost (`*`; up to 1h).
    #[arg(long, short = 'w', default_value = "1s", value_parser = parse_wait)]
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
    /// Output format: `table` (default), `json` (as --json), `dot` (Graphviz digraph of the
    /// path) or `csv` (one row per hop responder; columns in the README).
    #[arg(long, value_enum, conflicts_with = "json")]
    pub format: Option<TraceFormat>,
    /// Also write the result as a self-contained HTML report to FILE (the path graph and
    /// the RTT per hop); opens offline in any browser.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
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

/// `probe ping`.
#[derive(Debug, Args)]
pub struct PingArgs {
    /// Targets: host names or IPv4/IPv6 addresses.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Read targets from FILE (`-` for stdin): one per line, `#` starts a comment.
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: Option<std::path::PathBuf>,
    /// Probe protocol: ICMP echo, UDP (closed port, or a STAMP reflector with --port) or TCP SYN.
    #[arg(long, short = 'P', value_enum, default_value = "icmp")]
    pub proto: TraceProto,
    /// Destination port for UDP (default 33434, closed) and TCP (default 80).
    #[arg(long, short = 'p')]
    pub port: Option<u16>,
    /// Probes per target.
    #[arg(long, short = 'c', default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub count: u32,
    /// Time between two probes to the same target (0 to 1 h).
    #[arg(long, short = 'i', default_value = "1s", value_parser = parse_ping_interval)]
    pub interval: Duration,
    /// Most probes per second over all targets (never more).
    #[arg(long, value_name = "PPS", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate: u32,
    /// How long to wait for each answer before counting the probe as lost (1 ms to 1 h).
    #[arg(long, short = 't', default_value = "1s", value_parser = parse_ping_timeout)]
    pub timeout: Duration,
    /// Payload bytes after the ICMP or UDP header (as ping and fping; TCP SYNs carry none).
    #[arg(long, default_value_t = 56, value_parser = clap::value_parser!(u16).range(2..=65000))]
    pub size: u16,
    /// DSCP codepoint (0-63) of the probes.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=63))]
    pub dscp: u8,
    /// Also list every probe's round-trip time per target (`-` for lost), like `fping -C`.
    #[arg(long)]
    pub per_probe: bool,
    /// Use ping sockets and UDP sockets even with `CAP_NET_RAW` (no TCP).
    #[arg(long)]
    pub unprivileged: bool,
    /// Network interface to send through (`SO_BINDTODEVICE`).
    #[arg(long, short = 'I', value_name = "NAME")]
    pub interface: Option<String>,
    /// Print the result as JSON (schema in the README).
    #[arg(long)]
    pub json: bool,
    /// Address family.
    #[command(flatten)]
    pub family: FamilyArgs,
}

/// Parses `ping --interval`: 0 to 1 hour.
pub fn parse_ping_interval(s: &str) -> Result<Duration, String> {
    parse_duration_within(s, Duration::ZERO, Duration::from_secs(3_600))
}

/// Parses `ping --timeout`: 1 ms to 1 hour.
pub fn parse_ping_timeout(s: &str) -> Result<Duration, String> {
    parse_duration_within(s, Duration::from_millis(1), Duration::from_secs(3_600))
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

/// Parses `--allow`: a prefix in CIDR notation, or a single address (a /32 or /128).
pub fn parse_prefix(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            format!(
                "`{s}` is not an address prefix: write CIDR, e.g. 192.0.2.0/24 or 2001:db8::/48, \
                 or a single address"
            )
        })
}

/// Parses durations such as `3s`, `500ms`, `200us`, `1m30s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("{e}: write a duration with a unit, e.g. 3s, 500ms, 200us"))
}

/// Parses `--spin` and `serve --coalesce`: 0 to 10 ms.
fn parse_up_to_10ms(s: &str) -> Result<Duration, String> {
    parse_duration_within(s, Duration::ZERO, Duration::from_millis(10))
}

/// Parses a duration and checks it lies within `min..=max` (both named in the error).
fn parse_duration_within(s: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < min || d > max {
        return Err(format!(
            "{s} is outside {}..={}: give a duration in that range",
            humantime::format_duration(min),
            humantime::format_duration(max)
        ));
    }
    Ok(d)
}

/// Parses a wait for replies (`--wait`, `trace -w`): 0 to 1 hour.
pub fn parse_wait(s: &str) -> Result<Duration, String> {
    parse_duration_within(s, Duration::ZERO, Duration::from_secs(3_600))
}

/// Parses `serve --max-rate`: a positive packet rate.
pub fn parse_positive_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!(
            "`{s}` is not a positive packet rate: give packets per second, e.g. 1000"
        )),
    }
}

/// Parses `serve --max-bandwidth`: bits per second with an optional k, M or G suffix.
pub fn parse_bandwidth(s: &str) -> Result<u64, String> {
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 1e3),
        Some((i, 'm' | 'M')) => (&s[..i], 1e6),
        Some((i, 'g' | 'G')) => (&s[..i], 1e9),
        _ => (s, 1.0),
    };
    match num.parse::<f64>() {
        Ok(v) if v.is_finite() && v * mult >= 1.0 && v * mult < 1e15 => Ok((v * mult) as u64),
        _ => Err(format!(
            "`{s}` is not a bandwidth: give bits per second, e.g. 500000, 800k, 10M or 1G"
        )),
    }
}

/// Parses `a2a --interval`: 10 ns to 1 hour.
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    parse_duration_within(s, Duration::from_nanos(10), Duration::from_secs(3_600))
}

/// Parses `a2a --duration`: 1 ms to 366 days.
pub fn parse_test_duration(s: &str) -> Result<Duration, String> {
    parse_duration_within(
        s,
        Duration::from_millis(1),
        Duration::from_secs(366 * 86_400),
    )
}

/// Parses `a2a --report-interval`: 100 ms to 1 hour.
pub fn parse_report_interval(s: &str) -> Result<Duration, String> {
    parse_duration_within(s, Duration::from_millis(100), Duration::from_secs(3_600))
}

/// Slowest `--rate`: one packet per hour.
pub const MIN_RATE: f64 = 1.0 / 3_600.0;
/// Fastest paced `--rate` (10 ns apart); faster is `max`.
pub const MAX_RATE: f64 = 1e8;

/// Parses `--rate`: `max` or packets per second within `MIN_RATE..=MAX_RATE`.
pub fn parse_rate(s: &str) -> Result<Rate, String> {
    if s.eq_ignore_ascii_case("max") {
        return Ok(Rate::Max);
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (MIN_RATE..=MAX_RATE).contains(&v) => Ok(Rate::Pps(v)),
        Ok(v) if v.is_finite() && v > 0.0 => Err(format!(
            "{s} packets per second is outside {MIN_RATE:.6}..={MAX_RATE} (one per hour to 100 million per second): give a rate in that range, or `max` to flood"
        )),
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
        assert!(
            parse_rate("1e-30")
                .expect_err("too slow")
                .contains("outside")
        );
        assert!(parse_rate("1e12").is_err());
        assert!(
            parse_wait("530y")
                .expect_err("too long")
                .contains("outside")
        );
        assert_eq!(parse_wait("0s"), Ok(Duration::ZERO));
        assert!(parse_interval("1ns").is_err());
        assert!(parse_report_interval("10ms").is_err());
        assert!(parse_test_duration("367days").is_err());
    }

    #[test]
    fn prefixes() {
        let p = |s: &str| parse_prefix(s).map(|n| n.to_string());
        assert_eq!(p("192.0.2.0/24"), Ok("192.0.2.0/24".into()));
        assert_eq!(p("2001:db8::/48"), Ok("2001:db8::/48".into()));
        assert_eq!(p("192.0.2.7"), Ok("192.0.2.7/32".into()));
        assert_eq!(p("fd00::1"), Ok("fd00::1/128".into()));
        for bad in ["192.0.2.0/33", "example.com", "10.0.0.0/", ""] {
            let e = parse_prefix(bad).expect_err(bad);
            assert!(e.contains("not an address prefix"), "{e}");
        }
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}

/// `probe agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The TOML configuration file (else `PROBE_CONFIG`; environment variables override it).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Validate the configuration and print the effective one (secrets redacted); start nothing.
    #[arg(long)]
    pub check: bool,
}

/// `probe results`.
#[derive(Debug, Args)]
pub struct ResultsArgs {
    /// Only runs that started at or after this time: RFC 3339 (2026-12-01T10:00:00Z) or a
    /// duration back from now (10m, 2h).
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Only this test.
    #[arg(long, value_name = "NAME")]
    pub test: Option<String>,
    /// One JSON object per line, as spooled.
    #[arg(long)]
    pub json: bool,
    /// The agent's state directory (else `PROBE_STATE_DIR`, else the default).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}
