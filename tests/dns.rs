//! probe-core's DNS module against real DNS servers on loopback.
//!
//! Each test starts an authoritative hickory-server on 127.0.0.1 (or `::1`) at an ephemeral port,
//! serving an in-memory zone, and where a test needs a server that never answers, a UDP socket
//! on 127.0.0.1 that reads queries and drops them. Nothing leaves loopback and the machine's own
//! resolver configuration is never used. The addresses in the zones (`192.0.2.0/24`,
//! `2001:db8::/32`) are record data only: no packet is sent to them.

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hickory_server::Server;
use hickory_server::proto::rr::rdata::{A, AAAA, CNAME, PTR};
use hickory_server::proto::rr::{Name, RData};
use hickory_server::zone_handler::{Catalog, ZoneHandler};
use probe_core::dns::{DnsConfig, DnsError, Family, Rcode, RecordType, Resolver};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

fn name(s: &str) -> Name {
    common::dns_name(s)
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

/// A zone with its SOA and the given records.
fn zone(origin: &str, records: Vec<(&str, RData)>) -> Arc<dyn ZoneHandler> {
    common::dns_zone(
        origin,
        records
            .into_iter()
            .map(|(o, d)| (o.to_owned(), d))
            .collect(),
    )
}

/// The test zones: forward names and the reverse zones for `192.0.2.0/24` and `2001:db8::/32`.
fn catalog() -> Catalog {
    let a = |s: &str| RData::A(A(s.parse().expect("v4")));
    let ptr = |s: &str| RData::PTR(PTR(name(s)));
    let zones = [
        zone(
            "probe.test.",
            vec![
                ("host.probe.test.", a("192.0.2.10")),
                ("host.probe.test.", a("192.0.2.11")),
                (
                    "host.probe.test.",
                    RData::AAAA(AAAA("2001:db8::10".parse().expect("v6"))),
                ),
                ("v4only.probe.test.", a("192.0.2.20")),
                (
                    "alias.probe.test.",
                    RData::CNAME(CNAME(name("host.probe.test."))),
                ),
            ],
        ),
        zone(
            "2.0.192.in-addr.arpa.",
            vec![("10.2.0.192.in-addr.arpa.", ptr("host.probe.test."))],
        ),
        zone(
            "8.b.d.0.1.0.0.2.ip6.arpa.",
            vec![(
                "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.",
                ptr("host6.probe.test."),
            )],
        ),
    ];
    let mut catalog = Catalog::new();
    for z in zones {
        catalog.upsert(z.origin().clone(), vec![z]);
    }
    catalog
}

/// A DNS server for the test zones on `bind` (UDP and TCP on one ephemeral port).
struct TestServer {
    addr: SocketAddr,
    server: Server<Catalog>,
}

impl TestServer {
    async fn start(bind: &str) -> TestServer {
        let udp = UdpSocket::bind(bind).await.expect("bind udp");
        let addr = udp.local_addr().expect("udp addr");
        let tcp = TcpListener::bind(addr)
            .await
            .expect("bind tcp on the same port");
        let mut server = Server::new(catalog());
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 16);
        TestServer { addr, server }
    }

    async fn stop(mut self) {
        self.server
            .shutdown_gracefully()
            .await
            .expect("server shutdown");
    }
}

/// A UDP socket on 127.0.0.1 that reads queries and never answers.
struct DeadServer {
    addr: SocketAddr,
    received: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl DeadServer {
    async fn start() -> DeadServer {
        let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let addr = sock.local_addr().expect("addr");
        let received = Arc::new(AtomicUsize::new(0));
        let count = received.clone();
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while sock.recv_from(&mut buf).await.is_ok() {
                count.fetch_add(1, Ordering::Relaxed);
            }
        });
        DeadServer {
            addr,
            received,
            task,
        }
    }
}

impl Drop for DeadServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn resolver(servers: Vec<SocketAddr>, timeout_ms: u64, attempts: usize) -> Resolver {
    Resolver::new(&DnsConfig {
        timeout: Duration::from_millis(timeout_ms),
        attempts,
        ..DnsConfig::custom(servers)
    })
    .expect("resolver")
}

fn sorted(mut v: Vec<IpAddr>) -> Vec<IpAddr> {
    v.sort();
    v
}

#[tokio::test]
async fn forward_lookups_by_family() {
    let srv = TestServer::start("127.0.0.1:0").await;
    let r = resolver(vec![srv.addr], 1000, 2);

    let v4 = r
        .lookup_host("host.probe.test", Family::V4)
        .await
        .expect("A");
    assert_eq!(sorted(v4), vec![ip("192.0.2.10"), ip("192.0.2.11")]);
    let v6 = r
        .lookup_host("host.probe.test.", Family::V6)
        .await
        .expect("AAAA");
    assert_eq!(v6, vec![ip("2001:db8::10")]);
    let any = r
        .lookup_host("host.probe.test", Family::Any)
        .await
        .expect("both");
    assert_eq!(any.len(), 3);
    assert!(any[..2].iter().all(IpAddr::is_ipv4), "IPv4 first: {any:?}");
    assert_eq!(any[2], ip("2001:db8::10"));

    // A CNAME is followed to its addresses.
    let via_alias = r
        .lookup_host("alias.probe.test", Family::V4)
        .await
        .expect("cname");
    assert_eq!(sorted(via_alias), vec![ip("192.0.2.10"), ip("192.0.2.11")]);

    // A name with only an A record: Any still succeeds, V6 says what is missing.
    assert_eq!(
        r.lookup_host("v4only.probe.test", Family::Any)
            .await
            .expect("any"),
        vec![ip("192.0.2.20")]
    );
    let e = r
        .lookup_host("v4only.probe.test", Family::V6)
        .await
        .expect_err("no AAAA");
    assert_eq!(
        e.to_string(),
        format!(
            "cannot resolve `v4only.probe.test`: it has no IPv6 (AAAA) record (NOERROR, empty answer) from DNS server {}",
            srv.addr
        )
    );
    srv.stop().await;
}

#[tokio::test]
async fn nxdomain_and_refused_name_the_server() {
    let srv = TestServer::start("127.0.0.1:0").await;
    let r = resolver(vec![srv.addr], 1000, 2);

    let e = r
        .lookup_host("nope.probe.test", Family::Any)
        .await
        .expect_err("nxdomain");
    assert_eq!(
        e.to_string(),
        format!(
            "cannot resolve `nope.probe.test`: no such name (NXDOMAIN) from DNS server {}",
            srv.addr
        )
    );
    assert!(matches!(e, DnsError::NxDomain { .. }));

    // The test server serves only its own zones and refuses the rest.
    let e = r
        .lookup_host("www.example", Family::V4)
        .await
        .expect_err("refused");
    assert!(
        matches!(&e, DnsError::Rcode { rcode, .. } if *rcode == Rcode::REFUSED),
        "{e}"
    );
    assert!(e.to_string().contains("answered REFUSED"), "{e}");
    srv.stop().await;
}

#[tokio::test]
async fn reverse_v4_v6_missing_and_cached() {
    let srv = TestServer::start("127.0.0.1:0").await;
    let r = resolver(vec![srv.addr], 1000, 2);

    assert_eq!(
        r.reverse(ip("192.0.2.10"))
            .await
            .expect("ptr v4")
            .as_deref(),
        Some("host.probe.test")
    );
    assert_eq!(
        r.reverse(ip("2001:db8::10"))
            .await
            .expect("ptr v6")
            .as_deref(),
        Some("host6.probe.test")
    );
    // In a served reverse zone but without a PTR: NXDOMAIN, which is "no name", not an error.
    assert_eq!(r.reverse(ip("192.0.2.99")).await.expect("no ptr"), None);

    // With the server gone, clones still answer from the shared cache, negative answers too.
    srv.stop().await;
    let clone = r.clone();
    let started = Instant::now();
    assert_eq!(
        clone
            .reverse(ip("192.0.2.10"))
            .await
            .expect("cached")
            .as_deref(),
        Some("host.probe.test")
    );
    assert_eq!(clone.reverse(ip("192.0.2.99")).await.expect("cached"), None);
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn reverse_many_resolves_a_batch_once_per_address() {
    let srv = TestServer::start("127.0.0.1:0").await;
    let r = resolver(vec![srv.addr], 1000, 2);
    let hops = [
        ip("192.0.2.10"),
        ip("192.0.2.99"),
        ip("2001:db8::10"),
        ip("192.0.2.10"),
    ];
    let names = r.reverse_many(&hops).await;
    let want: HashMap<IpAddr, Option<String>> = [
        (ip("192.0.2.10"), Some("host.probe.test".to_owned())),
        (ip("192.0.2.99"), None),
        (ip("2001:db8::10"), Some("host6.probe.test".to_owned())),
    ]
    .into_iter()
    .collect();
    assert_eq!(names, want);
    srv.stop().await;
}

#[tokio::test]
async fn reverse_many_with_a_silent_server_ends_at_the_deadline() {
    let dead = DeadServer::start().await;
    let deadline = Duration::from_millis(800);
    let r = Resolver::new(&DnsConfig {
        timeout: Duration::from_millis(300),
        attempts: 2,
        reverse_concurrency: 4,
        reverse_deadline: deadline,
        ..DnsConfig::custom(vec![dead.addr])
    })
    .expect("resolver");
    // 30 hops: one after the other this would be 30 × 2 × 300 ms = 18 s; 4 at a time, 4.8 s.
    let hops: Vec<IpAddr> = (1..=30u8).map(|i| IpAddr::from([192, 0, 2, i])).collect();
    let started = Instant::now();
    let names = r.reverse_many(&hops).await;
    let took = started.elapsed();
    eprintln!(
        "30 hops against a silent server: {took:?}, {} queries seen",
        dead.received.load(Ordering::Relaxed)
    );
    assert!(
        took >= deadline && took < deadline + Duration::from_millis(400),
        "took {took:?}"
    );
    assert_eq!(names.len(), 30);
    assert!(names.values().all(Option::is_none));
    assert!(
        dead.received.load(Ordering::Relaxed) >= 4,
        "the silent server saw {} queries",
        dead.received.load(Ordering::Relaxed)
    );

    // Nothing answered, so nothing was cached: a single lookup asks again and times out.
    let started = Instant::now();
    let e = r.reverse(ip("192.0.2.1")).await.expect_err("timeout");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(550) && took < Duration::from_millis(1200),
        "took {took:?}"
    );
    assert_eq!(
        e.to_string(),
        format!(
            "no answer from DNS server {} within 300ms (2 attempts): is a resolver reachable? set --dns ADDR",
            dead.addr
        )
    );
}

#[tokio::test]
async fn query_each_times_every_server_separately() {
    let v4 = TestServer::start("127.0.0.1:0").await;
    let v6 = TestServer::start("[::1]:0").await;
    let dead = DeadServer::start().await;
    let r = resolver(vec![v4.addr, v6.addr, dead.addr], 400, 1);

    let started = Instant::now();
    let results = r
        .query_each("alias.probe.test", RecordType::A)
        .await
        .expect("query");
    let wall = started.elapsed();
    for s in &results {
        eprintln!("{}: {:?}", s.server, s.elapsed);
    }
    assert_eq!(
        results.iter().map(|s| s.server).collect::<Vec<_>>(),
        vec![v4.addr, v6.addr, dead.addr]
    );
    for live in &results[..2] {
        let resp = live.outcome.as_ref().expect("answer");
        assert_eq!(resp.rcode, Rcode::NOERROR);
        let mut data: Vec<_> = resp
            .answers
            .iter()
            .map(|a| (a.record_type, a.data.as_str()))
            .collect();
        data.sort_by_key(|&(t, d)| (u16::from(t), d.to_owned()));
        assert_eq!(
            data,
            vec![
                (RecordType::A, "192.0.2.10"),
                (RecordType::A, "192.0.2.11"),
                (RecordType::CNAME, "host.probe.test."),
            ]
        );
        assert!(resp.answers.iter().all(|a| a.ttl == 300));
        assert!(
            live.elapsed > Duration::ZERO && live.elapsed < Duration::from_millis(300),
            "{:?}",
            live.elapsed
        );
    }
    let silent = &results[2];
    assert!(
        matches!(&silent.outcome, Err(DnsError::Timeout { servers, .. }) if servers.0 == vec![dead.addr]),
        "{:?}",
        silent.outcome
    );
    assert!(
        silent.elapsed >= Duration::from_millis(390) && silent.elapsed < Duration::from_millis(900),
        "{:?}",
        silent.elapsed
    );
    // The servers were asked at the same time, not one after the other.
    assert!(wall < Duration::from_millis(900), "{wall:?}");

    // Negative answers are responses with their code, not errors.
    let results = r
        .query_each("nope.probe.test", RecordType::AAAA)
        .await
        .expect("query");
    let nx = results[0].outcome.as_ref().expect("nxdomain is an answer");
    assert_eq!((nx.rcode, nx.answers.len()), (Rcode::NXDOMAIN, 0));
    let refused = r
        .query_each("www.example", RecordType::A)
        .await
        .expect("query");
    assert_eq!(
        refused[1].outcome.as_ref().expect("refused").rcode,
        Rcode::REFUSED
    );

    // PTR by name, as a DNS test would ask it.
    let ptr = r
        .query_each("10.2.0.192.in-addr.arpa", RecordType::PTR)
        .await
        .expect("query");
    let answer = &ptr[0].outcome.as_ref().expect("ptr").answers;
    assert_eq!(answer.len(), 1);
    assert_eq!(answer[0].data, "host.probe.test.");
    assert_eq!(answer[0].name, "10.2.0.192.in-addr.arpa.");

    v4.stop().await;
    v6.stop().await;
}

#[tokio::test]
async fn queries_are_not_served_from_a_cache() {
    let srv = TestServer::start("127.0.0.1:0").await;
    let r = resolver(vec![srv.addr], 300, 1);
    let first = r
        .query_each("host.probe.test", RecordType::AAAA)
        .await
        .expect("query");
    assert_eq!(first[0].outcome.as_ref().expect("answer").answers.len(), 1);
    srv.stop().await;
    let again = r
        .query_each("host.probe.test", RecordType::AAAA)
        .await
        .expect("query");
    // hickory's UDP sockets are unconnected, so the closed port shows as silence.
    assert!(
        matches!(again[0].outcome, Err(DnsError::Timeout { .. })),
        "a stopped server must not appear to answer: {:?}",
        again[0].outcome
    );
    assert!(
        again[0].elapsed >= Duration::from_millis(290),
        "{:?}",
        again[0].elapsed
    );
}
