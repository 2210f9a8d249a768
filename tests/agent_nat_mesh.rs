//! A mesh member behind NAT without published ports: three agents, `edge-nat` behind a
//! masquerading host (nothing published) and `peer` and `peer2` beyond it, all named by one
//! DNS name served by hickory inside `peer`'s namespace. `edge-nat` (`mesh.behind_nat`)
//! keeps a control connection to both others and joins their mesh; they measure it over that
//! connection (the name lists its private address, which they never test directly), and it
//! measures them. A peer that restarts gets the member back (reconnection with backoff). The
//! member's series carry its name as the peer label and go when it stops.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::agent::{Agent, Scratch, ok_peers, serve_mesh_name, wait_for, write};
use probe_lab::Host;

const MESH: &str = r#"
[[tests]]
name = "mesh"
kind = "a2a"
target = "mesh.lab.test"
interval = "1s"
jitter = "100ms"
count = 10
packet_interval = "10ms"
[mesh]
resolve_interval = "1s"
"#;

/// The agent's `/metrics` in `host`, fetched with a plain HTTP/1.0 request.
fn metrics(host: &Host, ip: Ipv4Addr) -> String {
    host.run_in(move || {
        let addr = SocketAddr::new(IpAddr::V4(ip), 8000);
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: agent\r\n\r\n")
            .expect("request");
        let mut text = String::new();
        s.read_to_string(&mut text).expect("response");
        text
    })
}

/// Waits up to `secs` for `cond` on the agent's `/metrics`.
fn wait_metrics(host: &Host, ip: Ipv4Addr, secs: u64, what: &str, cond: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let text = metrics(host, ip);
        if cond(&text) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {secs} s:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_behind_nat_without_published_ports_is_a_full_mesh_member() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = probe_lab::topology::nat_mesh().expect("nat_mesh topology");
    let (nated, peer, peer2) = (&lab.nat.agent, &lab.nat.peer, &lab.peer2);
    // mesh.lab.test lists all three, the member by its private address.
    let (server, dns) = serve_mesh_name(
        peer,
        "mesh.lab.test.",
        &[nated.ipv4(), peer.ipv4(), peer2.ipv4()],
    );

    let s = Scratch::new("nat-mesh");
    let public = s.0.join("public.toml");
    write(&public, MESH);
    let behind = s.0.join("behind-nat.toml");
    write(&behind, &format!("{MESH}behind_nat = true\n"));
    let mut member = Agent::start(nated, &s.0, "edge-nat", &behind, &dns);
    let mut agents = [
        Agent::start(peer, &s.0, "peer", &public, &dns),
        Agent::start(peer2, &s.0, "peer2", &public, &dns),
    ];
    let stamp = |ip: Ipv4Addr| format!("{ip}:49153");

    // The member measures both others (outbound STAMP through its NAT), never itself.
    let want: BTreeSet<String> = [stamp(peer.ipv4()), stamp(peer2.ipv4())].into();
    tokio::task::block_in_place(|| {
        wait_for(&member, 20, "edge-nat measures both others", |r| {
            ok_peers(r, "mesh") == want
        })
    });

    // Each public agent measures the other by address and the member by its name, over the
    // member's connection: every packet of ten there and back, through the NAT mapping.
    let hosts = [peer, peer2];
    for (i, agent) in agents.iter().enumerate() {
        let other = stamp(hosts[1 - i].ipv4());
        let want: BTreeSet<String> = [other, "edge-nat".to_owned()].into();
        let r = tokio::task::block_in_place(|| {
            wait_for(
                agent,
                30,
                "a public agent measures the other and the member",
                |r| ok_peers(r, "mesh") == want,
            )
        });
        let to_member: Vec<_> = r
            .iter()
            .filter(|x| x["peer"] == "edge-nat" && x["ok"] == true)
            .collect();
        for rec in &to_member {
            assert_eq!(rec["report"]["sent"], 10, "{rec}");
            assert_eq!(rec["report"]["lost"], 0, "{rec}");
        }
        // Per-direction loss and delay toward the member, under its name; its private
        // address, listed by the name, is not a peer once it joined.
        let ip = hosts[i].ipv4();
        let host = hosts[i];
        tokio::task::block_in_place(|| {
            wait_metrics(
                host,
                ip,
                15,
                "the member's series without its private address",
                |t| {
                    let private = format!("peer=\"{}", nated.ipv4());
                    ["forward", "reverse"].iter().all(|d| {
                    t.contains(&format!(
                        "probe_loss_ratio{{test=\"mesh\",peer=\"edge-nat\",direction=\"{d}\"}} 0"
                    )) && t.contains(&format!(
                        "probe_one_way_delay_seconds_count{{test=\"mesh\",peer=\"edge-nat\",direction=\"{d}\"}}"
                    ))
                }) && !t.contains(&private)
                },
            );
        });
    }

    // peer2 restarts (same state, same identity): the member's connection to it dropped, is
    // opened again with backoff, and peer2 measures the member again.
    assert_eq!(agents[1].stop(), Some(0), "{}", agents[1].log());
    let before = agents[1].records(None).len();
    agents[1] = Agent::start(peer2, &s.0, "peer2", &public, &dns);
    tokio::task::block_in_place(|| {
        wait_for(&agents[1], 45, "peer2 measures the member again", |r| {
            ok_peers(&r[before.min(r.len())..], "mesh").contains("edge-nat")
        })
    });
    let log = member.log();
    assert!(
        log.contains(&format!(
            "the member connection to {}:49152 ended",
            peer2.ipv4()
        )),
        "{log}"
    );

    // The member stops: its connections close, both peers forget it and its series.
    assert_eq!(member.stop(), Some(0), "{}", member.log());
    for (i, host) in hosts.iter().enumerate() {
        let ip = host.ipv4();
        tokio::task::block_in_place(|| {
            wait_metrics(host, ip, 30, "the member's series are gone", |t| {
                !t.contains("peer=\"edge-nat\"")
            });
        });
        let log = agents[i].log();
        assert!(log.contains("mesh: member edge-nat"), "{log}");
    }
    for a in &mut agents {
        assert_eq!(a.stop(), Some(0), "{}", a.log());
    }
    drop(server);
}
