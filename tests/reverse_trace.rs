//! `probe a2a --trace` in the netns testbed: the path toward the peer traced from this end,
//! and the path back traced by the far end toward this end's address as the far end sees
//! it: through a chain of routers (the two directions show different router addresses), from
//! behind a masquerading NAT (the reverse trace ends at the NAT box's public address), and
//! refused by the operator's `--max-duration` with the limit named.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::{output, probe, serve, wait_udp_listening};
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
    let peer = peer.to_string();
    output(
        probe(
            host,
            &[
                "a2a",
                "--peer",
                &peer,
                "--direction",
                "to",
                "-c",
                "20",
                "-i",
                "5ms",
                "--trace",
                "--json",
            ],
        )
        .env_remove("PROBE_TOKEN"),
    )
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

fn stopped(srv: common::Served) -> Value {
    let out = srv.terminate(Duration::from_secs(5)).expect("stop serve");
    serde_json::from_slice(&out.stdout).expect("serve counters JSON")
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
    let forward = &v["path"]["forward"];
    let reverse = &v["path"]["reverse"];
    assert_eq!(forward["reached"], true, "{forward}");
    assert_eq!(reverse["reached"], true, "{reverse}");
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
    assert!(v["path"].get("reverse_error").is_none(), "{v}");
    let c = stopped(srv);
    assert_eq!(c["control"]["reverse_traces"], 1, "{c}");
    assert_eq!(c["control"]["reverse_traces_refused"], 0, "{c}");
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
    let c = stopped(srv);
    assert_eq!(c["control"]["reverse_traces"], 1, "{c}");
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
    let c = stopped(srv);
    assert_eq!(c["control"]["reverse_traces"], 0, "{c}");
    assert_eq!(c["control"]["reverse_traces_refused"], 1, "{c}");
}
