//! Helpers shared by the integration tests: running `probe` inside testbed hosts.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use probe_lab::{Background, Host};
use serde_json::Value;

/// `probe ARGS` inside `host`'s namespace. A `probe a2a` that names no client state of its
/// own (`--state-dir`, `--peer-fingerprint`, `--no-control`) gets a fresh state directory, so
/// that the identity it trusts on first use is never one a previous test's responder had at
/// the same address (each `serve` has a fresh identity).
pub fn probe(host: &Host, args: &[&str]) -> Command {
    let mut cmd = host.command(probe_suite::probe_bin());
    cmd.args(args);
    let own_state = ["--state-dir", "--peer-fingerprint", "--no-control"];
    if args.first() == Some(&"a2a") && !args.iter().any(|a| own_state.contains(a)) {
        static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir()
            .join(format!("probe-test-clients-{}", std::process::id()))
            .join(n.to_string());
        cmd.arg("--state-dir").arg(dir);
    }
    cmd
}

/// A directory under the system's temporary directory, removed (with its contents) on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `probe-TAG-PID-N` afresh (N counts the directories of this process).
    pub fn new(tag: &str) -> TempDir {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("probe-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temporary directory");
        TempDir(p)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `name` inside it.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// `name` inside it, as a string for command lines.
    pub fn s(&self, name: &str) -> String {
        self.join(name).display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `probe serve` and its state directory, which lives as long as the process.
pub struct Served {
    bg: Background,
    _state: Option<TempDir>,
}

impl Served {
    /// Stops it (SIGTERM, then SIGKILL after `grace`); its exit status and piped output.
    pub fn terminate(self, grace: Duration) -> probe_lab::Result<Output> {
        self.bg.terminate(grace)
    }
}

impl std::ops::Deref for Served {
    type Target = Background;
    fn deref(&self) -> &Background {
        &self.bg
    }
}

impl std::ops::DerefMut for Served {
    fn deref_mut(&mut self) -> &mut Background {
        &mut self.bg
    }
}

/// Starts `probe serve ARGS` in `host` and waits until its UDP port listens. Unless `extra`
/// names one, the control identity goes to a temporary `--state-dir` (not `/var/lib/probe`).
pub fn serve(host: &Host, port: u16, extra: &[&str]) -> Served {
    let port_s = port.to_string();
    let mut args = vec!["serve", "--port", &port_s];
    args.extend_from_slice(extra);
    let state = (!extra.contains(&"--state-dir"))
        .then(|| TempDir::new(&format!("serve-state-{}", host.name())));
    let state_s = state.as_ref().map(|d| d.path().display().to_string());
    if let Some(dir) = &state_s {
        args.extend(["--state-dir", dir]);
    }
    let mut cmd = probe(host, &args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let bg = host.spawn(&mut cmd).expect("start probe serve");
    wait_udp_listening(host, port);
    Served { bg, _state: state }
}

/// `probe a2a --peer PEER ARGS --json` in `from`, which must succeed; the parsed report.
pub fn a2a_json(from: &Host, peer: &str, args: &[&str]) -> Value {
    let mut all = vec!["a2a", "--peer", peer];
    all.extend_from_slice(args);
    all.push("--json");
    json_ok(&mut probe(from, &all))
}

/// Counts, in `host`, the STAMP datagrams (UDP to 49153) from `src` marked DSCP EF; read
/// the count with [`ef_packets`].
pub fn count_ef_from(host: &Host, src: &str) {
    host.nft(&format!(
        "table inet t {{\n counter ef {{ }}\n chain c {{\n type filter hook input priority 0;\n ip saddr {src} udp dport 49153 ip dscp ef counter name ef\n }}\n}}\n"
    ))
    .expect("nft");
}

/// A direct topology whose host b runs `probe serve` on 49153 and counts the STAMP packets
/// from a marked EF (read the count with [`ef_packets`]).
pub fn direct_reflector_counting_ef() -> (probe_lab::topology::Direct, Served) {
    let lab = probe_lab::topology::direct().expect("direct topology");
    count_ef_from(&lab.b, &lab.a.ipv4().to_string());
    let srv = serve(&lab.b, 49153, &[]);
    (lab, srv)
}

/// The packets [`count_ef_from`] counted so far.
pub fn ef_packets(host: &Host) -> u64 {
    host.nft_counter("inet", "t", "ef")
        .expect("counter")
        .packets
}

/// Waits (at most 5 s) until something listens on UDP `port` in `host`.
pub fn wait_udp_listening(host: &Host, port: u16) {
    wait_listening(host, port, "udp");
}

/// Waits (at most 5 s) until something listens on TCP `port` in `host`.
pub fn wait_tcp_listening(host: &Host, port: u16) {
    wait_listening(host, port, "tcp");
}

fn wait_listening(host: &Host, port: u16, proto: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let flags = if proto == "tcp" { "-Hltn" } else { "-Hlun" };
    loop {
        let out = host
            .command("ss")
            .args([flags, &format!("sport = :{port}")])
            .output()
            .expect("run ss");
        if !String::from_utf8_lossy(&out.stdout).trim().is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "nothing listens on {port}/{proto} in {}",
            host.name()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs the command; returns its output, failing the test if it cannot start.
pub fn output(cmd: &mut Command) -> Output {
    cmd.output().expect("run probe")
}

/// Runs a `--json` command that must succeed and returns the parsed JSON.
pub fn json_ok(cmd: &mut Command) -> Value {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "probe failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// A number at a JSON path like `forward.delay_ms.p50`.
pub fn num(v: &Value, path: &str) -> f64 {
    let mut cur = v;
    for key in path.split('.') {
        cur = &cur[key];
    }
    cur.as_f64()
        .unwrap_or_else(|| panic!("{path} is not a number in {v}"))
}

/// A string at a JSON path.
pub fn text<'a>(v: &'a Value, path: &str) -> &'a str {
    let mut cur = v;
    for key in path.split('.') {
        cur = &cur[key];
    }
    cur.as_str()
        .unwrap_or_else(|| panic!("{path} is not a string in {v}"))
}

/// Waits (at most 5 s) until a UDP probe from `host` reaches `dst` and comes back as port
/// unreachable, checked with the testbed's own TTL-limited probe. Right after a topology is
/// built IPv6 needs about a second (the kernel's link watch) before it forwards.
pub fn wait_path(host: &Host, dst: std::net::IpAddr) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let to = std::net::SocketAddr::new(dst, 33434);
    loop {
        let reply = probe_lab::check::ttl_probe(host, to, 64, 33999, Duration::from_millis(100))
            .expect("ttl probe");
        if reply.is_some_and(|r| r.reached) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{dst} unreachable from {} after 5 s",
            host.name()
        );
    }
}

/// A DNS name for test zones.
pub fn dns_name(s: &str) -> hickory_server::proto::rr::Name {
    s.parse().expect("test name")
}

/// An in-memory primary zone for a test DNS server: its SOA and `records` (owner, data).
pub fn dns_zone(
    origin: &str,
    records: Vec<(String, hickory_server::proto::rr::RData)>,
) -> std::sync::Arc<dyn hickory_server::zone_handler::ZoneHandler> {
    use hickory_server::net::runtime::TokioRuntimeProvider;
    use hickory_server::proto::rr::rdata::SOA;
    use hickory_server::proto::rr::{RData, Record};
    use hickory_server::store::in_memory::InMemoryZoneHandler;
    use hickory_server::zone_handler::{AxfrPolicy, ZoneType};
    let origin = dns_name(origin);
    let mut z = InMemoryZoneHandler::<TokioRuntimeProvider>::empty(
        origin.clone(),
        ZoneType::Primary,
        AxfrPolicy::Deny,
    );
    let soa = SOA::new(
        dns_name("ns.probe.test."),
        dns_name("hostmaster.probe.test."),
        1,
        3600,
        600,
        86_400,
        60,
    );
    assert!(z.upsert_mut(Record::from_rdata(origin, 3600, RData::SOA(soa)), 1));
    for (owner, data) in records {
        assert!(z.upsert_mut(Record::from_rdata(dns_name(&owner), 300, data), 1));
    }
    std::sync::Arc::new(z)
}

/// The impaired topology with a fixed delay each way (`forward_ms` a->b, `reverse_ms` b->a).
pub fn delayed(forward_ms: u64, reverse_ms: u64) -> probe_lab::topology::Impaired {
    let delay = |ms| probe_lab::impair::ImpairConfig::delay(Duration::from_millis(ms));
    probe_lab::topology::impaired(delay(forward_ms), delay(reverse_ms)).expect("impaired")
}

/// The impaired topology with a rate limit each way (`forward_bps` a->b, `reverse_bps` b->a)
/// and a 100-packet queue, for the throughput tests.
pub fn rate_limited(forward_bps: u64, reverse_bps: u64) -> probe_lab::topology::Impaired {
    let limit = |bps| probe_lab::impair::ImpairConfig {
        rate_bps: bps,
        queue_limit: 100,
        ..probe_lab::impair::ImpairConfig::default()
    };
    probe_lab::topology::impaired(limit(forward_bps), limit(reverse_bps)).expect("impaired")
}

/// Asserts goodput `got` through a link of `bps` is above `low` of it (what the protocol's
/// headers, acknowledgements and slow start leave) and below the link.
pub fn assert_near_rate(what: &str, got: f64, bps: f64, low: f64) {
    assert!(
        got > low * bps && got < bps,
        "{what}: {got} bit/s through a {bps} bit/s link (want above {low} of it)"
    );
}

/// `probe agent` inside testbed hosts.
pub mod agent;

/// Headless Chromium for the page tests.
pub mod browser;

/// tcpdump captures inside testbed hosts.
pub mod capture;
/// The NDJSON collector the upload tests post to.
pub mod collector;
