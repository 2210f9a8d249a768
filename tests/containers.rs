//! The probe image in a real container runtime (podman with runc, netavark networking), run
//! inside testbed namespaces: a `direct` topology whose host `a` is the container host (podman
//! runs in its namespace, so the bridge, masquerade and published ports are there) and whose
//! host `b` is the peer on the far end of the host's uplink (198.18.0.1 <-> 198.18.0.2).
//!
//! Every container runs with the README's run line ([`run_line`]): non-root, read-only root,
//! `--cap-drop ALL --cap-add NET_RAW`, `deploy/seccomp.json`, state and log volumes, published
//! ports. Until `probe agent` lands, the containers run `serve` in place of the image's `agent`.
//! Containers, networks and volumes are removed by guards, then the namespaces by the topology.
#![allow(clippy::float_cmp)] // Counts and zero losses are compared exactly on purpose.

mod common;
mod containers {
    pub mod podman;
}

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::{json_ok, num, probe, serve};
use containers::podman::{Podman, Volume, ensure_image, seccomp_profile, unique};
use probe_lab::topology::{self, Direct};

/// The command the containers run (the image's default is `agent`).
const SERVE: &[&str] = &["serve"];

/// Host `a`'s uplink address: what the peer sees as the source of the container's traffic.
const HOST_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// The peer `b`.
const PEER_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

/// The README's run line (podman for docker), without `--detach --name` and the image: the
/// options of a container named `name` with its state and log volumes, `--dns` server and
/// network (`None`: podman's default bridge with the published ports).
fn run_line(
    name: &str,
    state: &Volume,
    logs: &Volume,
    dns: Ipv4Addr,
    network: Option<&str>,
) -> Vec<String> {
    let mut line: Vec<String> = vec![
        format!("--hostname={name}"),
        "--restart=unless-stopped".into(),
        "--read-only".into(),
        "--cap-drop=ALL".into(),
        "--cap-add=NET_RAW".into(),
        format!("--security-opt=seccomp={}", seccomp_profile().display()),
        "--security-opt=no-new-privileges".into(),
        format!("--volume={}:/var/lib/probe", state.name),
        format!("--volume={}:/var/log/probe", logs.name),
        format!("--dns={dns}"),
        "--env=PROBE_LOG=info".into(),
        "--log-opt=max-size=10mb".into(),
    ];
    match network {
        None => line.extend(
            [
                "49152:49152/udp",
                "49153:49153/udp",
                "49153:49153/tcp",
                "8000:8000/tcp",
            ]
            .map(|p| format!("--publish={p}")),
        ),
        Some(net) => line.push(format!("--network={net}")),
    }
    line
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The testbed, podman in its host namespace and the image.
fn setup() -> Option<(Direct, Podman)> {
    if !probe_lab::require_root() {
        return None;
    }
    let lab = topology::direct().expect("testbed");
    // The container host routes between its bridge and the uplink.
    lab.a
        .sysctl("net.ipv4.ip_forward", "1")
        .expect("ip_forward");
    ensure_image();
    let podman = Podman::in_host(&lab.a);
    Some((lab, podman))
}

/// Counts in `host` the UDP datagrams to `port` from `src`, and from anyone else.
fn count_sources(host: &probe_lab::Host, port: u16, src: Ipv4Addr) {
    host.nft(&format!(
        "table inet src {{\n counter from_src {{ }}\n counter from_other {{ }}\n chain c {{\n type filter hook input priority 0;\n udp dport {port} ip saddr {src} counter name from_src\n udp dport {port} ip saddr != {src} counter name from_other\n }}\n}}\n"
    ))
    .expect("nft");
}

fn counted(host: &probe_lab::Host, name: &str) -> u64 {
    host.nft_counter("inet", "src", name)
        .expect("counter")
        .packets
}

/// `probe a2a --json` from a container (`podman exec`): its JSON report.
fn exec_json(c: &containers::podman::Container, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["/probe"];
    all.extend_from_slice(args);
    let out = c.exec(&all, Duration::from_mins(1));
    assert!(
        out.status.success(),
        "podman exec {all:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bad JSON from {all:?} ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn assert_clean_run(v: &serde_json::Value, count: f64, what: &str) {
    assert_eq!(num(v, "sent"), count, "{what}: {v}");
    assert_eq!(num(v, "received"), count, "{what}: {v}");
    assert_eq!(num(v, "forward.loss_pct"), 0.0, "{what}: {v}");
    assert_eq!(num(v, "reverse.loss_pct"), 0.0, "{what}: {v}");
}

/// The identity fingerprint the container's `serve` logged at start.
fn logged_fingerprint(logs: &str) -> String {
    let at = logs
        .find("identity sha256:")
        .unwrap_or_else(|| panic!("no identity line in the log:\n{logs}"));
    logs[at + "identity ".len()..]
        .split_whitespace()
        .next()
        .expect("fingerprint")
        .to_owned()
}

/// NAT: on podman's bridge behind masquerade, the peer measures the container inward through
/// the published 49153/udp (STAMP) and 49152/udp (control plane), and the container measures
/// the peer outward, seen there as the host's uplink address.
#[test]
fn nat_published_ports_both_ways() {
    let Some((lab, podman)) = setup() else { return };
    let (state, logs) = (podman.volume(), podman.volume());
    let name = unique("nat");
    let c = podman.run(
        &name,
        &strs(&run_line(&name, &state, &logs, PEER_V4, None)),
        SERVE,
    );
    let log = c.wait_log("STAMP reflector on", Duration::from_secs(20));
    let fingerprint = logged_fingerprint(&log);

    // Inward, through the published ports of the host's uplink address.
    let v = json_ok(&mut probe(
        &lab.b,
        &[
            "a2a",
            "--peer",
            "198.18.0.1",
            "-c",
            "100",
            "-i",
            "5ms",
            "--json",
        ],
    ));
    assert_clean_run(&v, 100.0, "peer -> container (published 49153/udp)");
    let client_state = tempdir();
    let hello = json_ok(&mut probe(
        &lab.b,
        &[
            "control-ping",
            "198.18.0.1",
            "--json",
            "--state-dir",
            client_state.path_str(),
        ],
    ));
    assert_eq!(
        hello["fingerprint"].as_str(),
        Some(fingerprint.as_str()),
        "the control plane behind published 49152/udp is the container's: {hello}"
    );

    // Outward, masqueraded: the peer sees only the host's address.
    count_sources(&lab.b, 49153, HOST_V4);
    let _peer = serve(&lab.b, 49153, &["--no-control"]);
    let v = exec_json(
        &c,
        &[
            "a2a",
            "--peer",
            "198.18.0.2",
            "-c",
            "100",
            "-i",
            "5ms",
            "--json",
        ],
    );
    assert_clean_run(&v, 100.0, "container -> peer (masquerade)");
    assert!(
        counted(&lab.b, "from_src") >= 100,
        "from the host's address"
    );
    assert_eq!(counted(&lab.b, "from_other"), 0, "no other source seen");
}

/// macvlan: the container on a macvlan network over the host's uplink has its own address on
/// the peer's segment, and each reaches the other directly.
#[test]
fn macvlan_container_is_reached_at_its_own_address() {
    let Some((lab, podman)) = setup() else { return };
    let net = podman.network(&[
        "--driver=macvlan",
        "--subnet=198.18.0.0/24",
        "--gateway=198.18.0.1",
        "--opt=parent=eth0",
    ]);
    let (state, logs) = (podman.volume(), podman.volume());
    let name = unique("macvlan");
    let mut options = run_line(&name, &state, &logs, PEER_V4, Some(&net.name));
    options.push("--ip=198.18.0.3".into());
    let c = podman.run(&name, &strs(&options), SERVE);
    c.wait_log("STAMP reflector on", Duration::from_secs(20));

    let v = json_ok(&mut probe(
        &lab.b,
        &[
            "a2a",
            "--peer",
            "198.18.0.3",
            "-c",
            "100",
            "-i",
            "5ms",
            "--json",
        ],
    ));
    assert_clean_run(&v, 100.0, "peer -> container at its macvlan address");

    count_sources(&lab.b, 49153, Ipv4Addr::new(198, 18, 0, 3));
    let _peer = serve(&lab.b, 49153, &["--no-control"]);
    let v = exec_json(
        &c,
        &[
            "a2a",
            "--peer",
            "198.18.0.2",
            "-c",
            "50",
            "-i",
            "5ms",
            "--json",
        ],
    );
    assert_clean_run(&v, 50.0, "container -> peer over macvlan");
    assert!(
        counted(&lab.b, "from_src") >= 50,
        "from the container's own address"
    );
    assert_eq!(counted(&lab.b, "from_other"), 0);
}

/// The identity lives in the state volume: a new container on the same volume has the same
/// fingerprint, one on a fresh volume a new one.
#[test]
fn identity_lives_in_the_state_volume() {
    let Some((_lab, podman)) = setup() else {
        return;
    };
    let (state, logs) = (podman.volume(), podman.volume());
    let fingerprint = |state: &Volume| {
        let name = unique("identity");
        let mut options = run_line(&name, state, &logs, PEER_V4, None);
        options.retain(|o| !o.starts_with("--publish") && !o.starts_with("--dns"));
        options.push("--network=none".into());
        let c = podman.run(&name, &strs(&options), SERVE);
        logged_fingerprint(&c.wait_log("identity sha256:", Duration::from_secs(20)))
    };
    let first = fingerprint(&state);
    let again = fingerprint(&state);
    assert_eq!(first, again, "same volume, same identity");
    let fresh = podman.volume();
    let other = fingerprint(&fresh);
    assert_ne!(first, other, "a fresh volume makes a new identity");
}

/// Under the seccomp profile with every capability but `NET_RAW` dropped, the container's
/// traceroute works; without `NET_RAW`, a TCP trace (raw sockets) fails with the clear error
/// and exit status 2, not a crash. The profile and the capability sets are the kernel's view
/// of the container process.
#[test]
fn seccomp_and_capabilities() {
    let Some((_lab, podman)) = setup() else {
        return;
    };
    let (state, logs) = (podman.volume(), podman.volume());
    let name = unique("seccomp");
    let c = podman.run(
        &name,
        &strs(&run_line(&name, &state, &logs, PEER_V4, None)),
        SERVE,
    );
    c.wait_log("STAMP reflector on", Duration::from_secs(20));
    let pid = c.inspect("{{.State.Pid}}");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map_or_else(|| panic!("{key} missing in /proc/{pid}/status"), str::trim)
            .to_owned()
    };
    assert_eq!(field("Seccomp:"), "2", "seccomp filter mode");
    assert_eq!(field("NoNewPrivs:"), "1");
    let cap_net_raw = 1u64 << 13;
    let bounding = u64::from_str_radix(&field("CapBnd:"), 16).expect("hex");
    assert_eq!(bounding, cap_net_raw, "only NET_RAW in the bounding set");
    assert_eq!(field("Uid:").split_whitespace().next(), Some("10001"));

    let trace = exec_json(&c, &["trace", "198.18.0.2", "-w", "500ms", "--json"]);
    assert_eq!(
        trace["reached"], true,
        "the trace reached the peer: {trace}"
    );
    assert_eq!(trace["privilege"], "raw", "NET_RAW is effective: {trace}");

    // No NET_RAW at all: the clear error.
    let bare = unique("nocap");
    let mut options = run_line(&bare, &state, &logs, PEER_V4, None);
    options.retain(|o| !o.starts_with("--publish") && o != "--cap-add=NET_RAW");
    let c2 = podman.run(&bare, &strs(&options), &["serve", "--no-control"]);
    c2.wait_log("STAMP reflector on", Duration::from_secs(20));
    let out = c2.exec(
        &["/probe", "trace", "--proto", "tcp", "198.18.0.2"],
        Duration::from_secs(30),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "exit status 2: {stderr}");
    assert!(
        stderr.contains("CAP_NET_RAW"),
        "names the capability: {stderr}"
    );
}

/// `--dns`: the container resolves the peer's name through the DNS server given with `--dns`
/// (hickory, run by this test on the peer), and measures it by name.
#[test]
fn dns_option_names_the_resolver() {
    let Some((lab, podman)) = setup() else { return };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let _dns = rt.block_on(async { dns::serve_on(&lab.b) });
    let _peer = serve(&lab.b, 49153, &["--no-control"]);
    let (state, logs) = (podman.volume(), podman.volume());
    let name = unique("dns");
    let c = podman.run(
        &name,
        &strs(&run_line(&name, &state, &logs, PEER_V4, None)),
        SERVE,
    );
    c.wait_log("STAMP reflector on", Duration::from_secs(20));
    let v = exec_json(
        &c,
        &[
            "a2a",
            "--peer",
            "reflector.lab.test",
            "-c",
            "20",
            "-i",
            "5ms",
            "--json",
        ],
    );
    assert_clean_run(&v, 20.0, "container -> peer by name");
    drop(rt);
}

/// `podman logs` shows the log; `podman stop` ends the container (SIGTERM) within the stop
/// timeout, exit status 0, after it logged its final counters.
#[test]
fn logs_and_stop() {
    let Some((lab, podman)) = setup() else { return };
    let (state, logs) = (podman.volume(), podman.volume());
    let name = unique("stop");
    let c = podman.run(
        &name,
        &strs(&run_line(&name, &state, &logs, PEER_V4, None)),
        SERVE,
    );
    c.wait_log("STAMP reflector on", Duration::from_secs(20));
    let v = json_ok(&mut probe(
        &lab.b,
        &[
            "a2a",
            "--peer",
            "198.18.0.1",
            "-c",
            "10",
            "-i",
            "5ms",
            "--json",
        ],
    ));
    assert_clean_run(&v, 10.0, "peer -> container");
    let start = Instant::now();
    let out = podman.output(&["stop", "--time", "10", &name], Duration::from_secs(30));
    let took = start.elapsed();
    assert!(out.status.success(), "podman stop: {out:?}");
    assert!(took < Duration::from_secs(10), "stopped in {took:?}");
    assert_eq!(c.inspect("{{.State.ExitCode}}"), "0");
    let log = c.logs();
    let counters = log
        .lines()
        .find_map(|l| l.strip_prefix("probe serve: received "))
        .unwrap_or_else(|| panic!("no final counters in the log:\n{log}"));
    let mut words = counters.split([' ', ',']).filter(|w| !w.is_empty());
    let received: u64 = words.next().and_then(|w| w.parse().ok()).expect("received");
    assert_eq!(words.next(), Some("reflected"), "{counters}");
    let reflected: u64 = words
        .next()
        .and_then(|w| w.parse().ok())
        .expect("reflected");
    assert!(
        received >= 10 && reflected == received,
        "every test packet reflected, counted at stop: {counters}"
    );
}

/// `probe healthcheck` (the image's HEALTHCHECK command) from inside the container: 0 on a
/// 2xx answer, 1 on a 503 and on a closed port.
#[test]
fn healthcheck_command_in_the_container() {
    let Some((lab, podman)) = setup() else { return };
    let _http = health::serve_on(&lab.b);
    let (state, logs) = (podman.volume(), podman.volume());
    let name = unique("health");
    let c = podman.run(
        &name,
        &strs(&run_line(&name, &state, &logs, PEER_V4, None)),
        SERVE,
    );
    c.wait_log("STAMP reflector on", Duration::from_secs(20));
    let check = |path: &str| {
        c.exec(
            &[
                "/probe",
                "healthcheck",
                &format!("http://198.18.0.2:8000{path}"),
            ],
            Duration::from_secs(20),
        )
        .status
        .code()
    };
    assert_eq!(check("/healthz"), Some(0));
    assert_eq!(check("/readyz"), Some(1), "503 is unhealthy");
    let closed = c.exec(
        &["/probe", "healthcheck", "http://198.18.0.2:8001/healthz"],
        Duration::from_secs(20),
    );
    assert_eq!(closed.status.code(), Some(1), "a closed port is unhealthy");
}

/// A temporary directory removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn path_str(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir() -> TempDir {
    let dir = std::env::temp_dir().join(unique("state"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    TempDir(dir)
}

/// The test's DNS server on the peer: `reflector.lab.test` is the peer.
mod dns {
    use std::time::Duration;

    use hickory_server::Server;
    use hickory_server::proto::rr::RData;
    use hickory_server::proto::rr::rdata::A;
    use hickory_server::zone_handler::Catalog;
    use probe_lab::Host;

    use super::common::dns_zone;

    /// hickory's authoritative server for `lab.test` on `host`'s address, port 53 (UDP and
    /// TCP; resolv.conf has no port). Must be called inside a tokio runtime.
    pub fn serve_on(host: &Host) -> Server<Catalog> {
        let zone = dns_zone(
            "lab.test.",
            vec![("reflector.lab.test.".into(), RData::A(A(host.ipv4())))],
        );
        let mut catalog = Catalog::new();
        catalog.upsert(zone.origin().clone(), vec![zone]);
        let ip = host.ipv4();
        let (udp, tcp) = host.run_in(move || {
            let u = std::net::UdpSocket::bind((ip, 53)).expect("bind 53/udp");
            u.set_nonblocking(true).expect("nonblocking");
            let t = std::net::TcpListener::bind((ip, 53)).expect("bind 53/tcp");
            t.set_nonblocking(true).expect("nonblocking");
            (u, t)
        });
        let mut server = Server::new(catalog);
        server.register_socket(tokio::net::UdpSocket::from_std(udp).expect("udp"));
        server.register_listener(
            tokio::net::TcpListener::from_std(tcp).expect("tcp"),
            Duration::from_secs(5),
            16,
        );
        server
    }
}

/// A tiny HTTP server on the peer for the healthcheck command: `/healthz` 200, else 503.
mod health {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::thread::JoinHandle;
    use std::time::Duration;

    use probe_lab::Host;

    /// Stops and joins the server thread on drop.
    pub struct Http {
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    }

    impl Drop for Http {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    /// Listens on `host`'s address, port 8000.
    pub fn serve_on(host: &Host) -> Http {
        let ip = host.ipv4();
        let listener = host.run_in(move || TcpListener::bind((ip, 8000)).expect("bind 8000/tcp"));
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            // Bounded: at most 2 minutes, whatever happens.
            for _ in 0..12_000 {
                if flag.load(Ordering::Relaxed) {
                    return;
                }
                let Ok((mut conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let _ = conn.set_nonblocking(false);
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 1024];
                let n = conn.read(&mut buf).unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]);
                let answer = if request.starts_with("GET /healthz ") {
                    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"
                } else {
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                };
                let _ = conn.write_all(answer.as_bytes());
            }
        });
        Http {
            stop,
            thread: Some(thread),
        }
    }
}
