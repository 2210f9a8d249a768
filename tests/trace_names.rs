//! `probe trace` with names: the target given as a name and the hops' reverse DNS names, from a
//! DNS server the test runs on the source's own loopback (inside its namespace).

mod common;

use std::net::{IpAddr, SocketAddr};

use common::{dns_name as name, dns_zone as zone, json_ok, probe};
use hickory_server::Server;
use hickory_server::proto::rr::RData;
use hickory_server::proto::rr::rdata::{A, PTR};
use hickory_server::zone_handler::Catalog;
use probe_lab::topology;

/// `lab.test` with `dst.lab.test`, and PTR names `hopN.lab.test` for the IPv4 hops.
fn catalog(hops: &[IpAddr], dst: IpAddr) -> Catalog {
    let IpAddr::V4(dst4) = dst else {
        panic!("IPv4 target")
    };
    let forward = zone(
        "lab.test.",
        vec![("dst.lab.test.".into(), RData::A(A(dst4)))],
    );
    let ptrs = hops
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let IpAddr::V4(v4) = a else {
                panic!("IPv4 hop")
            };
            let o = v4.octets();
            (
                format!("{}.{}.{}.{}.in-addr.arpa.", o[3], o[2], o[1], o[0]),
                RData::PTR(PTR(name(&format!("hop{}.lab.test.", i + 1)))),
            )
        })
        .collect();
    let reverse = zone("18.198.in-addr.arpa.", ptrs);
    let mut catalog = Catalog::new();
    for z in [forward, reverse] {
        catalog.upsert(z.origin().clone(), vec![z]);
    }
    catalog
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_name_and_hop_names_from_dns() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::chain(2, &[]).expect("chain");
    let mut hops: Vec<IpAddr> = lab.hops_v4().into_iter().map(IpAddr::from).collect();
    hops.push(lab.dst.ipv4().into());
    // The server's socket lives in the source's namespace: probe asks 127.0.0.1 there.
    let udp = lab.src.run_in(|| {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind in namespace");
        s.set_nonblocking(true).expect("nonblocking");
        s
    });
    let addr: SocketAddr = udp.local_addr().expect("addr");
    let mut server = Server::new(catalog(&hops, lab.dst.ipv4().into()));
    server.register_socket(tokio::net::UdpSocket::from_std(udp).expect("tokio socket"));

    let dns = addr.to_string();
    let mut cmd = probe(
        &lab.src,
        &[
            "trace",
            "--json",
            "-P",
            "udp",
            "--dns",
            &dns,
            "dst.lab.test",
        ],
    );
    let v = tokio::task::spawn_blocking(move || json_ok(&mut cmd))
        .await
        .expect("join");
    assert_eq!(v["target"], lab.dst.ipv4().to_string(), "{v}");
    assert_eq!(v["target_name"], "dst.lab.test");
    let names: Vec<&str> = v["hops"]
        .as_array()
        .expect("hops")
        .iter()
        .map(|h| h["responders"][0]["hostname"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(
        names,
        ["hop1.lab.test", "hop2.lab.test", "hop3.lab.test"],
        "{v}"
    );

    // -n: no names.
    let mut cmd = probe(
        &lab.src,
        &["trace", "--json", "-n", "--dns", &dns, "dst.lab.test"],
    );
    let v = tokio::task::spawn_blocking(move || json_ok(&mut cmd))
        .await
        .expect("join");
    assert!(
        v["hops"]
            .as_array()
            .expect("hops")
            .iter()
            .all(|h| h["responders"][0]["hostname"].is_null()),
        "{v}"
    );
    server.shutdown_gracefully().await.expect("server shutdown");
}
