//! The probe image in a real container runtime (podman with runc, netavark networking), run
//! inside testbed namespaces (see `containers/agent.rs` for the topology).
//!
//! Every container runs the image's own entry point, `probe agent`, with the README's run line
//! ([`run_line`]): non-root, read-only root, `--cap-drop ALL --cap-add NET_RAW`,
//! `deploy/seccomp.json`, state and log volumes, published ports, `PROBE_*` variables; it is
//! ready when the image's `HEALTHCHECK` passes. Containers, networks and volumes are removed
//! by guards, then the namespaces by the topology. The lifecycle (logs, stop) and compose
//! tests are in `containers/lifecycle.rs` and `containers/compose.rs`.
#![allow(clippy::float_cmp)] // Counts and zero losses are compared exactly on purpose.

mod common;
mod containers {
    pub mod agent;
    pub mod podman;
    pub mod servers;

    mod compose;
    mod lifecycle;
}

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::{TempDir, a2a_json, json_ok, num, probe, serve};
use containers::agent::{
    self, HOST_V4, Net, PEER_V4, TAG, Volumes, assert_clean_run, count_sources, counted, exec_json,
    fingerprint, http_get, run_line, setup, with_config,
};
use containers::podman::unique;
use containers::servers::{dns, health};

/// NAT, UDP: on podman's bridge behind masquerade, the peer negotiates a test with the agent
/// over the published 49152/udp (control plane, QUIC) and measures it through the published
/// 49153/udp (STAMP), the agent's view of it coming back; the agent's control identity is the
/// one `GET /` on the published 8000/tcp shows. Outward, the container measures the peer, which sees only the
/// host's uplink address.
#[test]
fn nat_stamp_and_control_through_published_udp_ports() {
    let Some(lab) = setup() else { return };
    let volumes = Volumes::new(&lab.podman);
    let name = unique("nat");
    let c = agent::start(
        &lab.podman,
        &name,
        &run_line(&name, &volumes, PEER_V4, Net::Published),
    );
    let fp = fingerprint(&lab.net.b, HOST_V4, TAG);

    // Inward: negotiated over 49152/udp. The agent's own sending (`from`) cannot reach the
    // peer's unpublished port through the masquerade: the default runs `to`, saying why.
    let v = a2a_json(&lab.net.b, "198.18.0.1", &["-c", "100", "-i", "5ms"]);
    assert_clean_run(&v, 100.0, "peer -> agent (published 49152/udp, 49153/udp)");
    assert_eq!(v["control"], "negotiated", "{v}");
    assert_eq!(v["direction"], "to", "{v}");
    assert!(v["far_end"].is_object(), "the agent's view came back: {v}");
    let client_state = TempDir::new("nat-client");
    let hello = json_ok(&mut probe(
        &lab.net.b,
        &[
            "control-ping",
            "198.18.0.1",
            "--json",
            "--state-dir",
            &client_state.s("state"),
        ],
    ));
    assert_eq!(
        hello["fingerprint"].as_str(),
        Some(fp.as_str()),
        "the control plane behind published 49152/udp is the agent's: {hello}"
    );

    // Outward, masqueraded: the peer sees only the host's address.
    count_sources(&lab.net.b, "udp", 49153, HOST_V4);
    let _peer = serve(&lab.net.b, 49153, &["--no-control"]);
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
        counted(&lab.net.b, "from_src") >= 100,
        "from the host's address"
    );
    assert_eq!(counted(&lab.net.b, "from_other"), 0, "no other source seen");
}

/// NAT, TCP: the peer runs connect and throughput tests against the agent through the
/// published 49153/tcp, and the container runs a connect test out to the peer, which sees the
/// host's address only.
#[test]
fn nat_tcp_through_published_port_both_ways() {
    let Some(lab) = setup() else { return };
    let volumes = Volumes::new(&lab.podman);
    let name = unique("nattcp");
    let c = agent::start(
        &lab.podman,
        &name,
        &run_line(&name, &volumes, PEER_V4, Net::Published),
    );
    let connect = ["--proto", "tcp", "-c", "20", "-i", "5ms"];
    let v = a2a_json(&lab.net.b, "198.18.0.1", &connect);
    assert_eq!(
        (num(&v, "attempts"), num(&v, "connected")),
        (20.0, 20.0),
        "{v}"
    );
    let v = a2a_json(
        &lab.net.b,
        "198.18.0.1",
        &["--proto", "tcp", "--throughput", "--duration", "1s"],
    );
    for dir in ["to", "from"] {
        assert!(
            num(&v, &format!("{dir}.bytes")) > 0.0,
            "{dir}: bytes through the published port: {v}"
        );
    }

    count_sources(&lab.net.b, "tcp", 49153, HOST_V4);
    let _peer = serve(&lab.net.b, 49153, &["--no-control"]);
    let mut args = vec!["a2a", "--peer", "198.18.0.2", "--json"];
    args.extend_from_slice(&connect);
    let v = exec_json(&c, &args);
    assert_eq!(
        num(&v, "connected"),
        20.0,
        "container -> peer over TCP: {v}"
    );
    // Each connect is a SYN and an ACK at least.
    assert!(
        counted(&lab.net.b, "from_src") >= 40,
        "from the host's address"
    );
    assert_eq!(counted(&lab.net.b, "from_other"), 0, "no other source seen");
}

/// macvlan: the container on a macvlan network over the host's uplink has its own address on
/// the peer's segment, and each reaches the other directly.
#[test]
fn macvlan_container_is_reached_at_its_own_address() {
    let Some(lab) = setup() else { return };
    let net = lab.podman.network(&[
        "--driver=macvlan",
        "--subnet=198.18.0.0/24",
        "--gateway=198.18.0.1",
        "--opt=parent=eth0",
    ]);
    let volumes = Volumes::new(&lab.podman);
    let name = unique("macvlan");
    let mut options = run_line(&name, &volumes, PEER_V4, Net::Named(&net.name));
    options.push("--ip=198.18.0.3".into());
    let c = agent::start(&lab.podman, &name, &options);
    fingerprint(&lab.net.b, Ipv4Addr::new(198, 18, 0, 3), TAG);

    let v = a2a_json(&lab.net.b, "198.18.0.3", &["-c", "100", "-i", "5ms"]);
    assert_clean_run(&v, 100.0, "peer -> container at its macvlan address");

    count_sources(&lab.net.b, "udp", 49153, Ipv4Addr::new(198, 18, 0, 3));
    let _peer = serve(&lab.net.b, 49153, &["--no-control"]);
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
        counted(&lab.net.b, "from_src") >= 50,
        "from the container's own address"
    );
    assert_eq!(counted(&lab.net.b, "from_other"), 0);
}

/// The identity lives in the state volume: the container removed and run again (same name,
/// same volumes) shows the same fingerprint at `curl http://HOST:8000/`; one on a fresh state
/// volume a new one.
#[test]
fn identity_lives_in_the_state_volume() {
    let Some(lab) = setup() else { return };
    let volumes = Volumes::new(&lab.podman);
    let name = unique("identity");
    let fingerprint_of = |volumes: &Volumes| {
        let _c = agent::start(
            &lab.podman,
            &name,
            &run_line(&name, volumes, PEER_V4, Net::Published),
        );
        fingerprint(&lab.net.b, HOST_V4, TAG)
        // The guard removes the container here.
    };
    let first = fingerprint_of(&volumes);
    let again = fingerprint_of(&volumes);
    assert_eq!(first, again, "same volume, same identity");
    let other = fingerprint_of(&Volumes::new(&lab.podman));
    assert_ne!(first, other, "a fresh volume makes a new identity");
}

/// The tests of every kind the agent runs, toward the peer: a2a and dns by name through the
/// resolver given with `--dns`, trace, ping (ICMP) and http.
const EVERY_KIND: &str = r#"
[[tests]]
name = "a2a"
kind = "a2a"
target = "reflector.lab.test"
interval = "2s"
count = 10
packet_interval = "5ms"
[[tests]]
name = "trace"
kind = "trace"
target = "198.18.0.2"
interval = "2s"
count = 1
max_ttl = 4
[[tests]]
name = "ping"
kind = "ping"
target = "198.18.0.2"
protocol = "icmp"
interval = "2s"
count = 3
packet_interval = "10ms"
[[tests]]
name = "dns"
kind = "dns"
target = "reflector.lab.test"
record_type = "A"
interval = "2s"
[[tests]]
name = "http"
kind = "http"
target = "http://198.18.0.2:8000/healthz"
interval = "2s"
count = 1
"#;

/// Under the seccomp profile with every capability but `NET_RAW` dropped (the kernel's view
/// of the agent process), the agent's tests of every kind succeed, resolving names through the
/// `--dns` server; the healthcheck command tells a 503 and a closed port from a 200; without
/// `NET_RAW`, a TCP trace (raw sockets) fails with the clear error and exit status 2.
#[test]
fn seccomp_capabilities_dns_and_every_test_kind() {
    let Some(lab) = setup() else { return };
    let _dns = dns::start(&lab.net.b);
    let _http = health::serve_on(&lab.net.b);
    let _peer = serve(&lab.net.b, 49153, &["--no-control"]);
    let volumes = Volumes::new(&lab.podman);
    let name = unique("seccomp");
    let config = TempDir::new("container-config");
    let mut options = run_line(&name, &volumes, PEER_V4, Net::Published);
    with_config(&mut options, &config, EVERY_KIND);
    let c = agent::start(&lab.podman, &name, &options);

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

    // Every kind's first run (each falls within its 2 s interval) has succeeded.
    let kinds = ["a2a", "trace", "ping", "dns", "http"];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let results: serde_json::Value = serde_json::from_str(&http_get(
            &lab.net.b,
            "http://198.18.0.1:8000/results",
            "application/json",
        ))
        .expect("GET /results");
        let records = results.as_array().cloned().unwrap_or_default();
        let failed: Vec<_> = records.iter().filter(|r| r["ok"] != true).collect();
        assert!(
            failed.is_empty(),
            "failed runs in the container: {failed:?}"
        );
        let ok = |kind: &str| records.iter().any(|r| r["test"] == kind);
        if kinds.iter().all(|k| ok(k)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every kind ran within 30 s: {records:?}\n{}",
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    let trace = exec_json(&c, &["trace", "198.18.0.2", "-w", "500ms", "--json"]);
    assert_eq!(
        trace["reached"], true,
        "the trace reached the peer: {trace}"
    );
    assert_eq!(trace["privilege"], "raw", "NET_RAW is effective: {trace}");

    // `probe healthcheck` (the image's HEALTHCHECK command): 0 on a 2xx, 1 on a 503 and on a
    // closed port.
    let check = |url: &str| {
        c.exec(&["/probe", "healthcheck", url], Duration::from_secs(20))
            .status
            .code()
    };
    assert_eq!(check("http://198.18.0.2:8000/healthz"), Some(0));
    assert_eq!(check("http://198.18.0.2:8000/readyz"), Some(1), "503");
    assert_eq!(check("http://198.18.0.2:8001/healthz"), Some(1), "closed");

    // No NET_RAW at all: the clear error.
    let bare = unique("nocap");
    let bare_volumes = Volumes::new(&lab.podman);
    let mut options = run_line(&bare, &bare_volumes, PEER_V4, Net::Published);
    options.retain(|o| !o.starts_with("--publish") && o != "--cap-add=NET_RAW");
    let c2 = agent::start(&lab.podman, &bare, &options);
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
