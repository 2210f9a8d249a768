//! Embedding probe-core: a DNS test from a program, the library side of `probe dns`.
//!
//! `cargo run --example dns -- NAME SERVER[:PORT]...` measures real servers; with no argument it
//! starts an authoritative server for `example.test` on loopback and measures that.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_server::Server;
use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::proto::rr::rdata::{A, SOA};
use hickory_server::proto::rr::{Name, RData, Record};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use probe_core::dns::{DnsConfig, DnsTest, RecordType, Resolver, parse_server};
use probe_core::report::dns::render_text;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (name, servers, _local) = if let [name, servers @ ..] = args.as_slice()
        && !servers.is_empty()
    {
        let servers = servers
            .iter()
            .map(|s| parse_server(s))
            .collect::<Result<Vec<_>, _>>()?;
        (name.clone(), servers, None)
    } else {
        let (addr, server) = local_server().await?;
        ("www.example.test".to_owned(), vec![addr], Some(server))
    };

    // One UDP query per round, 5 rounds 20 ms apart, 1 s timeout per query.
    let config = DnsConfig {
        timeout: Duration::from_secs(1),
        attempts: 1,
        ..DnsConfig::custom(servers)
    };
    let resolver = Resolver::new(&config)?;
    let test = DnsTest {
        count: 5,
        interval: Duration::from_millis(20),
        ..DnsTest::new(name, RecordType::A)
    };
    let report = resolver.run_test(&test).await?;
    print!("{}", render_text(&report));
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// An authoritative server for `example.test` (`www` = 192.0.2.80, TTL 120) on 127.0.0.1.
async fn local_server() -> anyhow::Result<(SocketAddr, Server<Catalog>)> {
    let origin: Name = "example.test.".parse()?;
    let mut zone = InMemoryZoneHandler::<TokioRuntimeProvider>::empty(
        origin.clone(),
        ZoneType::Primary,
        AxfrPolicy::Deny,
    );
    let soa = SOA::new(
        "ns.example.test.".parse()?,
        "hostmaster.example.test.".parse()?,
        1,
        3600,
        600,
        86_400,
        60,
    );
    zone.upsert_mut(Record::from_rdata(origin.clone(), 3600, RData::SOA(soa)), 1);
    zone.upsert_mut(
        Record::from_rdata(
            "www.example.test.".parse()?,
            120,
            RData::A(A(Ipv4Addr::new(192, 0, 2, 80))),
        ),
        1,
    );
    let mut catalog = Catalog::new();
    catalog.upsert(origin.into(), vec![Arc::new(zone)]);
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    let addr = udp.local_addr()?;
    let mut server = Server::new(catalog);
    server.register_socket(udp);
    Ok((addr, server))
}
