//! `probe a2a --trace` in the netns testbed: the path toward the peer traced from this end,
//! and the path back traced by the far end toward this end's address as the far end sees
//! it: through a chain of routers (the two directions show different router addresses), from
//! behind a masquerading NAT (the reverse trace ends at the NAT box's public address), and
//! refused by the operator's `--max-duration` with the limit named. The TCP tests trace with
//! TCP SYNs toward the test's port (counted where they arrive), the throughput and QUIC tests
//! with ICMP echo, each with the path in the same JSON `path`.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::{output, probe, serve, wait_tcp_listening, wait_udp_listening};
use probe_lab::Host;
use probe_lab::topology::{self, LinkNet};
use serde_json::Value;

const PORT: u16 = 49153;

/// `probe serve --json EXTRA` in `host`, its control plane listening.
fn serve_control(host: &Host, extra: &[&str]) -> common::Served {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let srv = serve(host, PORT, &args);
    wait_udp_listening(host, probe_core::control::CONTROL_PORT);
    srv
}

/// `probe a2a --peer PEER --trace --json` (a short STAMP test toward the peer) from `host`.
fn a2a_trace(host: &Host, peer: IpAddr) -> std::process::Output {
    a2a_trace_with(host, peer, &["--direction", "to", "-c", "20", "-i", "5ms"])
}

/// `probe a2a --peer PEER TEST --trace --json` from `host`.
fn a2a_trace_with(host: &Host, peer: IpAddr, test: &[&str]) -> std::process::Output {
    let peer = peer.to_string();
    let mut args = vec!["a2a", "--peer", &peer];
    args.extend_from_slice(test);
    args.extend(["--trace", "--json"]);
    output(probe(host, &args).env_remove("PROBE_TOKEN"))
}

fn json(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "probe a2a --trace failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// The one responder of each hop of a trace report, in TTL order.
fn hops(report: &Value) -> Vec<IpAddr> {
    report["hops"]
        .as_array()
        .expect("hops")
        .iter()
        .map(|h| {
            let r = h["responders"].as_array().expect("responders");
            assert_eq!(r.len(), 1, "one responder per hop: {h}");
            r[0]["addr"]
                .as_str()
                .expect("addr")
                .parse()
                .expect("an address")
        })
        .collect()
}

fn target(report: &Value) -> IpAddr {
    report["target"]
        .as_str()
        .expect("target")
        .parse()
        .expect("an address")
}

/// Checks both paths of `path` through the chain, traced with `protocol`.
fn assert_chain_paths(lab: &topology::Chain, path: &Value, protocol: &str) {
    let forward = &path["forward"];
    let reverse = &path["reverse"];
    assert_eq!(forward["reached"], true, "{forward}");
    assert_eq!(reverse["reached"], true, "{reverse}");
    assert_eq!(forward["protocol"], protocol, "{forward}");
    assert_eq!(reverse["protocol"], protocol, "{reverse}");
    // Forward: each router answers from its interface toward src (198.18.(i-1).2), then dst.
    let mut want: Vec<IpAddr> = lab.hops_v4().into_iter().map(IpAddr::from).collect();
    want.push(lab.dst.addr(false));
    assert_eq!(target(forward), lab.dst.addr(false));
    assert_eq!(hops(forward), want, "{forward}");
    // Reverse: traced by dst toward src; each router answers from its interface toward dst
    // (198.18.i.1), last router first, then src itself.
    let mut back: Vec<IpAddr> = (1..=3u8)
        .rev()
        .map(|i| IpAddr::from(LinkNet::new(i).left_v4()))
        .collect();
    back.push(lab.src.addr(false));
    assert_eq!(target(reverse), lab.src.addr(false));
    assert_eq!(hops(reverse), back, "{reverse}");
    assert_eq!(reverse["source"], lab.dst.addr(false).to_string());
    assert!(path.get("reverse_error").is_none(), "{path}");
    assert!(path.get("forward_error").is_none(), "{path}");
}

/// Counts, in `host`, the TCP SYNs from `src` to the test's port that arrive with a TTL below
/// 8 (trace probes; the test's own connects arrive with 60 or more); read with [`syns`].
fn count_trace_syns(host: &Host, src: IpAddr) {
    host.nft(&format!(
        "table inet t {{\n counter syn {{ }}\n chain c {{\n type filter hook input priority 0;\n \
         ip saddr {src} ip ttl < 8 tcp dport {PORT} tcp flags & (syn | ack) == syn counter name syn\n }}\n}}\n"
    ))
    .expect("nft");
}

fn syns(host: &Host) -> u64 {
    host.nft_counter("inet", "t", "syn")
        .expect("counter")
        .packets
}

/// Stops the responder and checks its counts of reverse traces run and refused.
fn assert_traces_counted(srv: common::Served, done: u64, refused: u64) {
    let out = srv.terminate(Duration::from_secs(5)).expect("stop serve");
    let c: Value = serde_json::from_slice(&out.stdout).expect("serve counters JSON");
    assert_eq!(c["control"]["reverse_traces"], done, "{c}");
    assert_eq!(c["control"]["reverse_traces_refused"], refused, "{c}");
}

#[test]
fn both_directions_of_a_router_chain() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::chain(3, &[]).expect("chain");
    let srv = serve_control(&lab.dst, &[]);
    let v = json(&a2a_trace(&lab.src, lab.dst.addr(false)));
    assert_eq!(v["control"], "negotiated", "{v}");
    assert_eq!(v["received"], 20, "the STAMP test ran too: {v}");
    assert_chain_paths(&lab, &v["path"], "icmp");
    assert_traces_counted(srv, 1, 0);
}

#[test]
fn behind_nat_the_reverse_trace_ends_at_the_public_address() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::nat().expect("nat topology");
    let srv = serve_control(&lab.peer, &[]);
    let v = json(&a2a_trace(&lab.agent, lab.peer.addr(false)));
    assert_eq!(v["control"], "negotiated", "{v}");
    let forward = &v["path"]["forward"];
    let reverse = &v["path"]["reverse"];
    // Forward: the bridge of the container host, then the peer.
    assert_eq!(
        hops(forward),
        [IpAddr::from(topology::BRIDGE_V4), lab.peer.addr(false)],
        "{forward}"
    );
    // Reverse: the far end saw the NAT's public address and traced toward it; the NAT box
    // answers for itself, one hop away, and the agent's private address appears nowhere.
    assert_eq!(target(reverse), lab.host.addr(false), "{reverse}");
    assert_eq!(reverse["reached"], true, "{reverse}");
    assert_eq!(hops(reverse), [lab.host.addr(false)], "{reverse}");
    assert!(
        !reverse
            .to_string()
            .contains(&topology::AGENT_V4.to_string()),
        "{reverse}"
    );
    assert_traces_counted(srv, 1, 0);
}

#[test]
fn the_operators_duration_limit_refuses_the_reverse_trace_by_name() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::direct().expect("direct topology");
    // 90 probes at 10 probes/s cannot fit in 2 s.
    let srv = serve_control(&lab.b, &["--max-rate", "10", "--max-duration", "2s"]);
    let peer = lab.b.addr(false).to_string();
    let out = output(
        probe(
            &lab.a,
            &[
                "a2a",
                "--peer",
                &peer,
                "--direction",
                "to",
                "-c",
                "5",
                "-i",
                "100ms",
                "--trace",
                "--json",
            ],
        )
        .env_remove("PROBE_TOKEN"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--max-duration 2s"), "{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    // The test and the forward path are kept; the reverse path names the limit.
    assert_eq!(v["received"], 5, "{v}");
    assert_eq!(v["path"]["forward"]["reached"], true, "{v}");
    assert!(v["path"]["reverse"].is_null(), "{v}");
    let why = v["path"]["reverse_error"].as_str().expect("reverse_error");
    assert!(
        why.contains("over the responder's limit --max-duration 2s"),
        "{why}"
    );
    assert_traces_counted(srv, 0, 1);
}

#[test]
fn a_tcp_test_traces_tcp_syns_to_its_port_both_ways() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::chain(3, &[]).expect("chain");
    let srv = serve_control(&lab.dst, &[]);
    wait_tcp_listening(&lab.dst, PORT);
    count_trace_syns(&lab.dst, lab.src.addr(false));
    count_trace_syns(&lab.src, lab.dst.addr(false));
    let out = a2a_trace_with(
        &lab.src,
        lab.dst.addr(false),
        &["--proto", "tcp", "-c", "5", "-i", "10ms"],
    );
    let v = json(&out);
    assert_eq!(v["connected"], 5, "the connect test ran too: {v}");
    assert_eq!(v["path"]["port"], PORT, "{v}");
    assert_chain_paths(&lab, &v["path"], "tcp");
    // The probes went to the test's port: this end's reached the peer's listener, the far
    // end's reached this end's closed port of the same number (answered by RST).
    assert!(
        syns(&lab.dst) >= 1,
        "no trace SYN reached {PORT}/tcp at the peer"
    );
    assert!(
        syns(&lab.src) >= 1,
        "no reverse trace SYN reached {PORT}/tcp here"
    );
    assert_traces_counted(srv, 1, 0);
}

#[test]
fn throughput_and_quic_tests_trace_after_their_test() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::direct().expect("direct topology");
    let srv = serve_control(&lab.b, &[]);
    wait_tcp_listening(&lab.b, PORT);
    let (a, b) = (lab.a.addr(false), lab.b.addr(false));
    // One hop: the peer itself, both ways, probed as the test's protocol says.
    let one_hop = |v: &Value, protocol: &str| {
        let path = &v["path"];
        for (report, to) in [(&path["forward"], b), (&path["reverse"], a)] {
            assert_eq!(report["protocol"], protocol, "{path}");
            assert_eq!(report["reached"], true, "{path}");
            assert_eq!(hops(report), [to], "{path}");
        }
    };
    let tcp = json(&a2a_trace_with(
        &lab.a,
        b,
        &[
            "--proto",
            "tcp",
            "--throughput",
            "-d",
            "1s",
            "--direction",
            "to",
        ],
    ));
    assert!(tcp["to"]["bytes"].as_u64().is_some_and(|n| n > 0), "{tcp}");
    assert_eq!(tcp["path"]["port"], PORT, "{tcp}");
    one_hop(&tcp, "tcp");
    let udp = json(&a2a_trace_with(
        &lab.a,
        b,
        &[
            "--throughput",
            "--rate",
            "1000",
            "-d",
            "1s",
            "--direction",
            "to",
        ],
    ));
    assert_eq!(udp["throughput"]["to"]["sent"], 1000, "{udp}");
    assert!(udp["path"].get("port").is_none(), "{udp}");
    one_hop(&udp, "icmp");
    let quic = json(&a2a_trace_with(
        &lab.a,
        b,
        &[
            "--proto",
            "quic",
            "--handshakes",
            "2",
            "-c",
            "20",
            "-i",
            "5ms",
        ],
    ));
    assert_eq!(quic["quic"]["datagrams"]["received"], 20, "{quic}");
    one_hop(&quic, "icmp");
    assert_traces_counted(srv, 3, 0);
}
