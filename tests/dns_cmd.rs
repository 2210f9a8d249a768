//! `probe dns` in the testbed: a `direct` topology, `probe` running in host `a`, the DNS
//! servers on host `b`'s testbed address (sockets opened inside `b`'s namespace, served by this
//! test process): hickory's authoritative server for `lab.test`, a scripted server that answers
//! every query with one response code after a set delay, and a silent one.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use common::{dns_zone as zone, json_ok, num, output, probe, text};
use hickory_server::Server;
use hickory_server::proto::rr::RData;
use hickory_server::proto::rr::rdata::{A, AAAA, MX, PTR};
use hickory_server::zone_handler::Catalog;
use probe_lab::Host;
use probe_lab::topology::{self, Direct};
use serde_json::Value;
use tokio::task::JoinHandle;

/// `lab.test` (two A records and an AAAA for `host`, an A for `v4only`, an MX) and the reverse
/// zone of `192.0.2.0/24`.
fn catalog() -> Catalog {
    let a = |s: &str| RData::A(A(s.parse().expect("v4")));
    let forward = zone(
        "lab.test.",
        vec![
            ("host.lab.test.".into(), a("192.0.2.10")),
            ("host.lab.test.".into(), a("192.0.2.11")),
            (
                "host.lab.test.".into(),
                RData::AAAA(AAAA("2001:db8::10".parse().expect("v6"))),
            ),
            ("v4only.lab.test.".into(), a("192.0.2.20")),
            (
                "lab.test.".into(),
                RData::MX(MX::new(10, common::dns_name("mail.lab.test."))),
            ),
        ],
    );
    let reverse = zone(
        "2.0.192.in-addr.arpa.",
        vec![(
            "10.2.0.192.in-addr.arpa.".into(),
            RData::PTR(PTR(common::dns_name("host.lab.test."))),
        )],
    );
    let mut catalog = Catalog::new();
    for z in [forward, reverse] {
        catalog.upsert(z.origin().clone(), vec![z]);
    }
    catalog
}

/// A UDP socket bound inside `host` on its testbed address, ephemeral port.
fn udp_in(host: &Host, port: u16) -> tokio::net::UdpSocket {
    let ip = host.ipv4();
    let s = host.run_in(move || {
        let s = std::net::UdpSocket::bind((ip, port)).expect("bind udp in namespace");
        s.set_nonblocking(true).expect("nonblocking");
        s
    });
    tokio::net::UdpSocket::from_std(s).expect("tokio udp")
}

/// A TCP listener bound inside `host` on its testbed address.
fn tcp_in(host: &Host, port: u16) -> tokio::net::TcpListener {
    let ip = host.ipv4();
    let l = host.run_in(move || {
        let l = std::net::TcpListener::bind((ip, port)).expect("bind tcp in namespace");
        l.set_nonblocking(true).expect("nonblocking");
        l
    });
    tokio::net::TcpListener::from_std(l).expect("tokio tcp")
}

/// hickory's authoritative server for the test zones on `b`: UDP and TCP on one port.
fn authoritative(lab: &Direct) -> (SocketAddr, Server<Catalog>) {
    let udp = udp_in(&lab.b, 0);
    let addr = udp.local_addr().expect("addr");
    let mut server = Server::new(catalog());
    server.register_socket(udp);
    server.register_listener(tcp_in(&lab.b, addr.port()), Duration::from_secs(5), 16);
    (addr, server)
}

/// A UDP server on `b` that answers every query with `rcode` and no records after `delay`
/// (`None`: reads queries and never answers).
fn scripted(lab: &Direct, reply: Option<(u8, Duration)>) -> (SocketAddr, JoinHandle<()>) {
    let sock = udp_in(&lab.b, 0);
    let addr = sock.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let sock = std::sync::Arc::new(sock);
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            let Some((rcode, delay)) = reply else {
                continue;
            };
            if n < 12 {
                continue;
            }
            let mut resp = buf[..n].to_vec();
            resp[2] |= 0x80; // QR: a response, same id, opcode and question
            resp[3] = (resp[3] & 0xf0) | rcode;
            let sock = sock.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = sock.send_to(&resp, from).await;
            });
        }
    });
    (addr, task)
}

async fn run(cmd: Command) -> std::process::Output {
    let mut cmd = cmd;
    tokio::task::spawn_blocking(move || output(&mut cmd))
        .await
        .expect("join")
}

fn parse(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bad JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn answers(server: &Value) -> Vec<(String, u64, String, String)> {
    let mut v: Vec<_> = server["answers"]
        .as_array()
        .expect("answers")
        .iter()
        .map(|a| {
            (
                text(a, "name").to_owned(),
                a["ttl"].as_u64().expect("ttl"),
                text(a, "type").to_owned(),
                text(a, "data").to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_ttls_and_latency_distribution() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::direct().expect("direct");
    let (auth, _server) = authoritative(&lab);
    let s = auth.to_string();
    let out = run(probe(
        &lab.a,
        &[
            "dns",
            "--json",
            "--server",
            &s,
            "-c",
            "5",
            "-i",
            "20ms",
            "host.lab.test",
        ],
    ))
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = parse(&out);
    assert_eq!(v["name"], "host.lab.test.");
    assert_eq!(v["record_type"], "A");
    assert_eq!(v["transport"], "udp");
    let srv = &v["servers"][0];
    assert_eq!(srv["server"], s);
    assert_eq!(srv["status"], "ok");
    assert_eq!(srv["rcode"], "NOERROR");
    assert_eq!(
        (srv["queries"].as_u64(), srv["responses"].as_u64()),
        (Some(5), Some(5))
    );
    assert_eq!(srv["outcomes"]["ok"], 5);
    assert_eq!(
        answers(srv),
        vec![
            (
                "host.lab.test.".into(),
                300,
                "A".into(),
                "192.0.2.10".into()
            ),
            (
                "host.lab.test.".into(),
                300,
                "A".into(),
                "192.0.2.11".into()
            ),
        ]
    );
    let (min, p50, max) = (
        num(srv, "latency_ms.min"),
        num(srv, "latency_ms.p50"),
        num(srv, "latency_ms.max"),
    );
    assert!(0.0 < min && min <= p50 && p50 <= max && max < 50.0, "{srv}");

    // Other types, and PTR of an address.
    let out = run(probe(
        &lab.a,
        &["dns", "--json", "-s", &s, "-t", "mx", "lab.test"],
    ))
    .await;
    let v = parse(&out);
    assert_eq!(
        answers(&v["servers"][0]),
        vec![(
            "lab.test.".into(),
            300,
            "MX".into(),
            "10 mail.lab.test.".into()
        )]
    );
    let out = run(probe(
        &lab.a,
        &["dns", "--json", "-s", &s, "-t", "PTR", "192.0.2.10"],
    ))
    .await;
    let v = parse(&out);
    assert_eq!(v["name"], "10.2.0.192.in-addr.arpa.");
    assert_eq!(
        answers(&v["servers"][0]),
        vec![(
            "10.2.0.192.in-addr.arpa.".into(),
            300,
            "PTR".into(),
            "host.lab.test.".into()
        )]
    );

    // The text form shows the answers with their TTLs.
    let out = run(probe(
        &lab.a,
        &["dns", "-s", &s, "-t", "AAAA", "host.lab.test"],
    ))
    .await;
    let t = String::from_utf8_lossy(&out.stdout);
    assert!(t.contains(&format!("{s}  ok [NOERROR]")), "{t}");
    assert!(t.contains("host.lab.test.\t300\tAAAA\t2001:db8::10"), "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_matches_a_server_that_answers_after_30ms() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::direct().expect("direct");
    let (slow, _task) = scripted(&lab, Some((0, Duration::from_millis(30))));
    let s = slow.to_string();
    let out = run(probe(
        &lab.a,
        &[
            "dns",
            "--json",
            "-s",
            &s,
            "-c",
            "4",
            "-i",
            "50ms",
            "slow.lab.test",
        ],
    ))
    .await;
    assert_eq!(out.status.code(), Some(1), "NODATA is a failure");
    let v = parse(&out);
    let srv = &v["servers"][0];
    // NOERROR without records: NODATA, still a timed response.
    assert_eq!(srv["status"], "nodata");
    assert_eq!(srv["responses"], 4);
    let (min, p50) = (num(srv, "latency_ms.min"), num(srv, "latency_ms.p50"));
    assert!(
        (30.0..40.0).contains(&min) && (30.0..40.0).contains(&p50),
        "{srv}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_classified_per_server() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::direct().expect("direct");
    let (auth, _server) = authoritative(&lab);
    let (servfail, _t1) = scripted(&lab, Some((2, Duration::ZERO)));
    let (silent, _t2) = scripted(&lab, None);
    let (ok_s, fail_s, dead_s) = (auth.to_string(), servfail.to_string(), silent.to_string());

    // Three servers in one run: each with its own class and message; exit status 1.
    let started = std::time::Instant::now();
    let out = run(probe(
        &lab.a,
        &[
            "dns",
            "--json",
            "-s",
            &ok_s,
            "-s",
            &fail_s,
            "-s",
            &dead_s,
            "-w",
            "300ms",
            "host.lab.test",
        ],
    ))
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(started.elapsed() < Duration::from_secs(3));
    let v = parse(&out);
    let list = &v["servers"];
    assert_eq!(list[0]["status"], "ok");
    assert!(list[0]["message"].is_null());
    assert_eq!(list[1]["status"], "servfail");
    assert_eq!(list[1]["rcode"], "SERVFAIL");
    assert_eq!(
        text(&list[1], "message"),
        format!(
            "cannot resolve `host.lab.test`: DNS server {fail_s} answered SERVFAIL (the server could not resolve it; its upstream may be unreachable)"
        )
    );
    assert_eq!(list[2]["status"], "timeout");
    assert!(list[2]["rcode"].is_null() && list[2]["latency_ms"].is_null());
    assert!(
        text(&list[2], "message")
            .starts_with(&format!("no answer from DNS server {dead_s} within 300ms")),
        "{}",
        list[2]
    );

    // NXDOMAIN, NODATA and REFUSED (a zone the server does not serve).
    for (name, rtype, status, rcode, words) in [
        (
            "nope.lab.test",
            "A",
            "nxdomain",
            "NXDOMAIN",
            "no such name (NXDOMAIN)",
        ),
        (
            "v4only.lab.test",
            "AAAA",
            "nodata",
            "NOERROR",
            "has no AAAA record",
        ),
        ("www.example", "A", "refused", "REFUSED", "answered REFUSED"),
    ] {
        let out = run(probe(
            &lab.a,
            &["dns", "--json", "-s", &ok_s, "-t", rtype, name],
        ))
        .await;
        assert_eq!(out.status.code(), Some(1), "{name}");
        let v = parse(&out);
        let srv = &v["servers"][0];
        assert_eq!(
            (srv["status"].as_str(), srv["rcode"].as_str()),
            (Some(status), Some(rcode))
        );
        assert!(text(srv, "message").contains(words), "{srv}");
        assert_eq!(srv["responses"], 1);
    }

    // Bad input: a server that is not an address.
    let out = run(probe(
        &lab.a,
        &["dns", "-s", "dns.lab.test", "host.lab.test"],
    ))
    .await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("must be an IP address"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_and_the_global_dns_option() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::direct().expect("direct");
    // A server on TCP only: --tcp gets answers, UDP gets nothing.
    let listener = tcp_in(&lab.b, 0);
    let addr: SocketAddr = listener.local_addr().expect("addr");
    let mut server = Server::new(catalog());
    server.register_listener(listener, Duration::from_secs(5), 16);
    let s = addr.to_string();
    let v = json_ok(&mut probe(
        &lab.a,
        &[
            "dns",
            "--json",
            "--tcp",
            "-s",
            &s,
            "-c",
            "3",
            "-i",
            "10ms",
            "host.lab.test",
        ],
    ));
    assert_eq!(v["transport"], "tcp");
    assert_eq!(v["servers"][0]["status"], "ok");
    assert_eq!(v["servers"][0]["responses"], 3);
    assert_eq!(answers(&v["servers"][0]).len(), 2);
    let out = run(probe(
        &lab.a,
        &["dns", "--json", "-s", &s, "-w", "200ms", "host.lab.test"],
    ))
    .await;
    assert_eq!(parse(&out)["servers"][0]["status"], "timeout");

    // The global --dns picks the servers when --server is not given, before or after the
    // subcommand.
    let (auth, _server) = authoritative(&lab);
    let a = auth.to_string();
    for args in [
        vec!["--dns", &a, "dns", "--json", "v4only.lab.test"],
        vec!["dns", "--json", "v4only.lab.test", "--dns", &a],
    ] {
        let v = json_ok(&mut probe(&lab.a, &args));
        assert_eq!(v["servers"][0]["server"], a);
        let ip: IpAddr = text(&v["servers"][0]["answers"][0], "data")
            .parse()
            .expect("ip");
        assert_eq!(ip, "192.0.2.20".parse::<IpAddr>().expect("ip"));
    }
}
