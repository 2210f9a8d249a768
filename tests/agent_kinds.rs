//! `probe agent` running ping and dns tests in the testbed: an ICMP ping test toward both
//! addresses of a namespace (no loss), TCP and UDP pings to closed ports (answered, `closed`),
//! and one toward an address without a route (all lost, class `unreachable`); dns tests against hickory's authoritative server started by the test
//! (the answers equal the zone; a missing name is `name_not_found`).

mod common;

use std::collections::BTreeSet;

use common::agent::{Agent, Scratch, ran, wait_for, write};
use common::dns_zone;
use hickory_server::Server;
use hickory_server::proto::rr::RData;
use hickory_server::proto::rr::rdata::A;
use hickory_server::zone_handler::Catalog;
use serde_json::Value;

#[test]
fn ping_tests_measure_each_address_and_classify_the_unreachable() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = probe_lab::topology::direct().expect("direct topology");
    common::wait_path(&lab.a, lab.b.addr(true));
    let (b4, b6) = (lab.b.ipv4().to_string(), lab.b.ipv6().to_string());
    let s = Scratch::new("kinds-ping");
    let config = s.0.join("agent.toml");
    write(
        &config,
        &format!(
            r#"[[tests]]
name = "both"
kind = "ping"
targets = ["{b4}", "{b6}"]
interval = "1s"
count = 5
packet_interval = "20ms"
timeout = "500ms"
[[tests]]
name = "tcp-closed"
kind = "ping"
target = "{b4}"
protocol = "tcp"
port = 9
interval = "1s"
count = 4
packet_interval = "20ms"
[[tests]]
name = "udp"
kind = "ping"
target = "{b4}"
protocol = "udp"
interval = "1s"
count = 4
packet_interval = "20ms"
[[tests]]
name = "nowhere"
kind = "ping"
target = "10.99.0.1"
interval = "1s"
count = 3
packet_interval = "20ms"
timeout = "300ms"
"#
        ),
    );
    let mut agent = Agent::start(&lab.a, &s.0, "a", &config, "127.0.0.1");
    // ICMP has no port: its peers are `ADDR:0`.
    let want: BTreeSet<String> = [format!("{b4}:0"), format!("[{b6}]:0")].into();
    let records = wait_for(&agent, 15, "both addresses and the unreachable one", |r| {
        let peers: BTreeSet<String> = ran(r, "both")
            .iter()
            .filter_map(|x| x["peer"].as_str().map(str::to_owned))
            .collect();
        peers == want
            && ["tcp-closed", "udp", "nowhere"]
                .iter()
                .all(|t| !ran(r, t).is_empty())
    });
    for rec in ran(&records, "both") {
        assert_eq!(
            (&rec["ok"], &rec["kind"]),
            (&Value::Bool(true), &"ping".into()),
            "{rec}"
        );
        let t = &rec["report"]["targets"][0];
        assert_eq!(rec["report"]["protocol"], "icmp", "{rec}");
        let peer: std::net::SocketAddr = rec["peer"].as_str().expect("peer").parse().expect("addr");
        assert_eq!(
            t["addr"].as_str(),
            Some(peer.ip().to_string().as_str()),
            "{rec}"
        );
        assert_eq!(
            (t["sent"].as_u64(), t["received"].as_u64()),
            (Some(5), Some(5)),
            "{rec}"
        );
        assert_eq!(t["loss_pct"].as_f64(), Some(0.0), "{rec}");
        // The one target's numbers are at the top too, where metrics read them.
        let top = &rec["report"];
        assert_eq!(
            (top["sent"].as_u64(), top["received"].as_u64()),
            (Some(5), Some(5)),
            "{rec}"
        );
        assert_eq!(top["loss_pct"].as_f64(), Some(0.0), "{rec}");
        let rtt = t["rtt_ms"]["max"].as_f64().expect("rtt");
        assert!(rtt > 0.0 && rtt < 500.0, "{rec}");
        // With p90 and p99 from the five probes, between the target's min and max.
        let q = |k: &str| top["rtt_ms"][k].as_f64().expect(k);
        assert_eq!(
            (q("min"), q("max")),
            (common::num(t, "rtt_ms.min"), rtt),
            "{rec}"
        );
        assert!(
            q("min") <= q("p90") && q("p90") <= q("p99") && q("p99") <= q("max"),
            "{rec}"
        );
        assert!(t.get("per_probe_ms").is_none(), "{rec}");
    }
    // A closed port answers (RST, port unreachable): reachable, and the port says closed.
    for (test, proto, peer) in [
        ("tcp-closed", "tcp", format!("{b4}:9")),
        ("udp", "udp", format!("{b4}:33434")),
    ] {
        for rec in ran(&records, test) {
            assert_eq!(
                (&rec["ok"], &rec["peer"]),
                (&Value::Bool(true), &peer.as_str().into()),
                "{rec}"
            );
            assert_eq!(rec["report"]["protocol"], proto, "{rec}");
            let t = &rec["report"]["targets"][0];
            assert_eq!(
                (t["sent"].as_u64(), t["received"].as_u64()),
                (Some(4), Some(4)),
                "{rec}"
            );
            assert_eq!(t["port"], "closed", "{rec}");
        }
    }
    for rec in ran(&records, "nowhere") {
        assert_eq!(rec["ok"], false, "{rec}");
        assert_eq!(rec["error_class"], "unreachable", "{rec}");
        assert_eq!(rec["peer"], "10.99.0.1:0", "{rec}");
        assert!(
            rec["error"]
                .as_str()
                .is_some_and(|e| e.contains("10.99.0.1")),
            "{rec}"
        );
        let t = &rec["report"]["targets"][0];
        assert_eq!(
            (t["received"].as_u64(), t["loss_pct"].as_f64()),
            (Some(0), Some(100.0)),
            "{rec}"
        );
    }
    assert_eq!(agent.stop(), Some(0), "{}", agent.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_tests_get_the_zone_and_classify_a_missing_name() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = probe_lab::topology::direct().expect("direct topology");
    let a = |ip: &str| RData::A(A(ip.parse().expect("v4")));
    let zone = dns_zone(
        "lab.test.",
        vec![
            ("www.lab.test.".into(), a("192.0.2.10")),
            ("www.lab.test.".into(), a("192.0.2.11")),
        ],
    );
    let mut catalog = Catalog::new();
    catalog.upsert(zone.origin().clone(), vec![zone]);
    let b_ip = lab.b.ipv4();
    let udp = lab.b.run_in(move || {
        let s = std::net::UdpSocket::bind((b_ip, 0)).expect("bind dns");
        s.set_nonblocking(true).expect("nonblocking");
        s
    });
    let udp = tokio::net::UdpSocket::from_std(udp).expect("tokio udp");
    let server_addr = udp.local_addr().expect("addr").to_string();
    let mut server = Server::new(catalog);
    server.register_socket(udp);

    let s = Scratch::new("kinds-dns");
    let config = s.0.join("agent.toml");
    // `www` names its server; `gone` asks the agent's own (PROBE_DNS).
    write(
        &config,
        &format!(
            r#"[[tests]]
name = "www"
kind = "dns"
target = "www.lab.test"
servers = ["{server_addr}"]
interval = "1s"
count = 3
packet_interval = "10ms"
[[tests]]
name = "gone"
kind = "dns"
target = "gone.lab.test"
interval = "1s"
"#
        ),
    );
    let mut agent = Agent::start(&lab.a, &s.0, "a", &config, &server_addr);
    let records = tokio::task::block_in_place(|| {
        wait_for(&agent, 15, "both dns tests", |r| {
            !ran(r, "www").is_empty() && !ran(r, "gone").is_empty()
        })
    });
    for rec in ran(&records, "www") {
        assert_eq!(
            (&rec["ok"], &rec["kind"]),
            (&Value::Bool(true), &"dns".into()),
            "{rec}"
        );
        let srv = &rec["report"]["servers"][0];
        assert_eq!(srv["server"], server_addr.as_str(), "{rec}");
        assert_eq!(srv["status"], "ok", "{rec}");
        assert_eq!(
            (srv["queries"].as_u64(), srv["responses"].as_u64()),
            (Some(3), Some(3)),
            "{rec}"
        );
        let answers: BTreeSet<&str> = srv["answers"]
            .as_array()
            .expect("answers")
            .iter()
            .filter_map(|x| x["data"].as_str())
            .collect();
        assert_eq!(
            answers,
            BTreeSet::from(["192.0.2.10", "192.0.2.11"]),
            "{rec}"
        );
        assert!(rec.get("peer").is_none(), "{rec}");
    }
    for rec in ran(&records, "gone") {
        assert_eq!(rec["ok"], false, "{rec}");
        assert_eq!(rec["error_class"], "name_not_found", "{rec}");
        assert_eq!(rec["report"]["servers"][0]["status"], "nxdomain", "{rec}");
        assert!(
            rec["error"]
                .as_str()
                .is_some_and(|e| e.contains("nxdomain")),
            "{rec}"
        );
    }
    tokio::task::block_in_place(|| assert_eq!(agent.stop(), Some(0), "{}", agent.log()));
    drop(server);
}
