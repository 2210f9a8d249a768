//! `probe serve` policy in the testbed: the per-source rate limit under 10 000 sprayed source
//! addresses (beyond the bucket table), IPv6 sources keyed per /64, and `--allow`.
//!
//! The sender host `a` owns whole prefixes through local routes on its loopback (Linux
//! "AnyIP": `ip route add local PREFIX dev lo`), and sends from any address in them with
//! `IP_PKTINFO`/`IPV6_PKTINFO` on one socket; `b` routes the prefixes back to `a`. Each test
//! datagram's STAMP sequence number names its source, so the replies are counted per source
//! from what the reflector echoes.
#![allow(clippy::float_cmp)] // Counts (JSON numbers) are compared exactly on purpose.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use common::{num, serve};
use probe_core::io::{
    PacketSource, RecvBatch, SendBatch, SendOptions, SendReport, SocketOptions, TxId, udp_socket,
};
use probe_core::wire::stamp::{BASE_LEN, ReflectorPacket, SenderPacket};
use probe_lab::topology::{self, Direct};
use serde_json::Value;

const PORT: u16 = 49153;
/// IPv4 source prefix owned by `a` (16 384 addresses; only ever inside the testbed).
const SPRAY_V4: &str = "198.19.0.0/18";
/// IPv6 source prefix owned by `a` (65 536 /64s).
const SPRAY_V6: &str = "fd00:99::/48";
/// Datagrams per `sendmmsg`.
const BATCH: usize = 64;

/// `direct` with `a` owning [`SPRAY_V4`] and [`SPRAY_V6`] and `b` routing them to `a`.
fn spray_lab() -> Direct {
    let lab = topology::direct().expect("direct topology");
    lab.a
        .ip_batch(&[
            format!("route add local {SPRAY_V4} dev lo"),
            format!("-6 route add local {SPRAY_V6} dev lo"),
        ])
        .expect("local routes");
    // IPV6_PKTINFO only takes a source the host owns unless non-local binds are allowed
    // (the IPv4 check accepts local routes).
    lab.a
        .sysctl("net.ipv6.ip_nonlocal_bind", "1")
        .expect("sysctl");
    lab.b
        .ip_batch(&[
            format!("route add {SPRAY_V4} via {}", lab.a.ipv4()),
            format!("-6 route add {SPRAY_V6} via {}", lab.a.ipv6()),
        ])
        .expect("routes back");
    lab
}

fn v4_source(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 19, 0, 1)) + i))
}

/// Address `host` of the /64 number `net` of [`SPRAY_V6`].
fn v6_source(net: u16, host: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0x99, 0, net, 0, 0, 0, host))
}

/// What came back to the sources of one spray.
struct Spray {
    /// Replies per source, in the order of `sources`.
    replies: Vec<u64>,
    /// Datagrams sent.
    sent: u64,
}

/// Sends `per_source` STAMP datagrams from each of `sources` (one family) to `target` in
/// rounds (one datagram from every source per round, so that no source pauses for long),
/// paced at one batch of 64 per 0.5 ms, then collects replies for 300 ms.
fn spray(sources: &[IpAddr], per_source: u32, target: SocketAddr) -> Spray {
    let v6 = target.is_ipv6();
    let any = if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    };
    let opts = SocketOptions {
        recv_buffer: Some(8 << 20),
        send_buffer: Some(8 << 20),
        v6_only: v6.then_some(true),
        ..SocketOptions::default()
    };
    let sock = udp_socket(SocketAddr::new(any, 0), &opts).expect("sender socket");
    let mut tx = SendBatch::new(BATCH, BASE_LEN);
    let mut rx = RecvBatch::new(BATCH, 2048);
    let mut next_id = TxId(0);
    let mut replies = vec![0u64; sources.len()];
    let collect = |rx: &mut RecvBatch, replies: &mut Vec<u64>| {
        while let Ok(n) = rx.recv_from_fd(sock.as_fd()) {
            if n == 0 {
                break;
            }
            for (bytes, _) in rx.iter().take(n) {
                let p = ReflectorPacket::new_checked(bytes).expect("a STAMP reply");
                let i = p.sender_sequence_number() as usize % replies.len();
                replies[i] += 1;
            }
        }
    };
    let total = sources.len() as u64 * u64::from(per_source);
    let mut sent = 0u64;
    let deadline = Instant::now() + Duration::from_secs(10);
    for seq in 0..u32::try_from(total).expect("few datagrams") {
        let mut pkt = [0u8; BASE_LEN];
        SenderPacket::new_unchecked(&mut pkt[..]).set_sequence_number(seq);
        let src = sources[seq as usize % sources.len()];
        let opts = SendOptions::from_source(Some(PacketSource::addr(src)));
        assert!(tx.push(&pkt, target, opts), "batch has room");
        if tx.is_full() || u64::from(seq) + 1 == total {
            while !tx.is_done() {
                let mut report = SendReport::default();
                match tx.send_on_fd(sock.as_fd(), v6, &mut next_id, &mut report) {
                    Ok(()) => {
                        assert_eq!(report.failed, 0, "send: {:?}", report.first_error);
                        sent += report.sent as u64;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    Err(e) => panic!("send: {e}"),
                }
                assert!(Instant::now() < deadline, "sending took over 10 s");
            }
            tx.clear();
            collect(&mut rx, &mut replies);
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    let end = Instant::now() + Duration::from_millis(300);
    while Instant::now() < end {
        collect(&mut rx, &mut replies);
        std::thread::sleep(Duration::from_millis(10));
    }
    Spray { replies, sent }
}

/// Stops `probe serve --json` and returns its counters.
fn counters(srv: common::Served) -> Value {
    let out = srv.terminate(Duration::from_secs(3)).expect("stop serve");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {} / {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Sources sprayed in the rate-limit test.
const SOURCES: u32 = 10_000;
/// `--rate-limit-sources` there.
const TABLE: u64 = 1_000;
/// `--rate-limit-burst` of the rate-limit tests.
const BURST: f64 = 2.0;
/// `--rate-limit` of the rate-limit tests (packets/s).
const RATE: f64 = 1.0;
/// Datagrams per source in the rate-limit test.
const PER_SOURCE: u32 = 4;

/// 10 000 IPv4 sources against a bucket table of 1 000: the first 1 000 get their burst, the
/// 9 000 beyond share one bucket, so the total stays within (1 000 + 1) × (burst + rate × T)
/// (about 5 000) where a fresh bucket per newcomer would have answered all 40 000 datagrams. Every source sends
/// again within about a second, well before its bucket could refill (2 s at 1 packet/s), so
/// no bucket is idle enough to be recycled.
#[test]
fn rate_limit_holds_for_10k_sprayed_sources() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = spray_lab();
    let started = Instant::now();
    let srv = serve(
        &lab.b,
        PORT,
        &[
            "--rate-limit",
            "1",
            "--rate-limit-burst",
            "2",
            "--rate-limit-sources",
            "1000",
            "--json",
        ],
    );
    let sources: Vec<IpAddr> = (0..SOURCES).map(v4_source).collect();
    let target = SocketAddr::new(lab.b.ipv4().into(), PORT);
    let spray = lab.a.run_in(|| spray(&sources, PER_SOURCE, target));
    let c = counters(srv);
    // The reflector ran no longer than this: every bucket earned at most RATE × T on top of
    // its burst.
    let t = started.elapsed().as_secs_f64();
    let per_bucket = BURST + RATE * t;
    eprintln!("10k sources, {t:.2} s: {c}");

    let offered = f64::from(SOURCES * PER_SOURCE);
    assert_eq!(spray.sent as f64, offered);
    assert_eq!(
        num(&c, "received"),
        offered,
        "the reflector saw every datagram: {c}"
    );
    let reflected = num(&c, "reflected");
    let answered: u64 = spray.replies.iter().sum();
    assert_eq!(answered as f64, reflected, "every reply came back: {c}");
    assert_eq!(num(&c, "rate_limited"), offered - reflected, "{c}");
    let bound = (TABLE + 1) as f64 * per_bucket;
    assert!(
        reflected <= bound,
        "{reflected} answered, bound (1000 + 1) × ({BURST} + {RATE} × {t:.2} s) = {bound:.0}: {c}"
    );
    let (tracked, beyond) = spray.replies.split_at(TABLE as usize);
    // Sources with a bucket got their burst and no more than a bucket holds.
    assert!(
        tracked
            .iter()
            .all(|&n| n as f64 >= BURST && n as f64 <= per_bucket),
        "tracked sources: {:?}",
        &tracked[..20]
    );
    // The 9 000 sources beyond the table together got one bucket's worth (more only if a
    // full bucket was recycled to one of them).
    let recycled = num(&c, "rate_limit_recycled");
    let beyond_sum: u64 = beyond.iter().sum();
    assert!(
        beyond_sum as f64 <= (1.0 + recycled) * per_bucket,
        "{beyond_sum} replies to the {} sources beyond the table: {c}",
        beyond.len()
    );
    if recycled == 0.0 {
        // Every datagram of the 9 000 drew on the shared bucket.
        assert_eq!(
            num(&c, "rate_limit_shared"),
            (f64::from(SOURCES) - TABLE as f64) * f64::from(PER_SOURCE),
            "{c}"
        );
    }
}

/// 10 000 addresses of one IPv6 /64 are one source; 100 addresses in 100 /64s are 100.
#[test]
fn ipv6_sources_are_rate_limited_per_64() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = spray_lab();
    common::wait_path(&lab.a, lab.b.ipv6().into());
    let started = Instant::now();
    let srv = serve(
        &lab.b,
        PORT,
        &["--rate-limit", "1", "--rate-limit-burst", "2", "--json"],
    );
    let mut sources: Vec<IpAddr> = (1..=10_000).map(|h| v6_source(0, h)).collect();
    sources.extend((1..=100).map(|net| v6_source(net, 1)));
    let target = SocketAddr::new(lab.b.ipv6().into(), PORT);
    let spray = lab.a.run_in(|| spray(&sources, 2, target));
    let c = counters(srv);
    let per_bucket = BURST + started.elapsed().as_secs_f64();
    eprintln!("IPv6 /64 keying: {c}");

    assert_eq!(num(&c, "received"), spray.sent as f64, "{c}");
    let (one_64, own_64s) = spray.replies.split_at(10_000);
    let shared: u64 = one_64.iter().sum();
    assert!(
        shared as f64 >= BURST && shared as f64 <= per_bucket,
        "{shared} replies to 10 000 addresses of one /64: {c}"
    );
    assert!(
        own_64s.iter().all(|&n| n == 2),
        "each /64 of its own gets its burst of 2: {own_64s:?}"
    );
    assert_eq!(num(&c, "rate_limit_shared"), 0.0, "{c}");
}

/// `--allow` answers only the listed prefixes, IPv4 and IPv6; the rest is counted and dropped.
#[test]
fn allow_list_answers_only_listed_prefixes() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = spray_lab();
    common::wait_path(&lab.a, lab.b.ipv6().into());
    let srv = serve(
        &lab.b,
        PORT,
        &[
            "--allow",
            "198.19.1.0/24",
            "--allow",
            "198.19.3.77",
            "--allow",
            "fd00:99:0:5::/64",
            "--json",
        ],
    );
    // 198.19.0.1 ..= 198.19.4.0: 1 024 IPv4 sources, 256 + 1 of them allowed.
    let v4: Vec<IpAddr> = (0..1_024).map(v4_source).collect();
    let v4_allowed = |a: &IpAddr| match a {
        IpAddr::V4(a) => (a.octets()[2] == 1) || *a == Ipv4Addr::new(198, 19, 3, 77),
        IpAddr::V6(_) => false,
    };
    // 50 sources in each of the /64s 4, 5 and 6: those of 5 allowed.
    let v6: Vec<IpAddr> = (4..=6)
        .flat_map(|net| (1..=50).map(move |h| v6_source(net, h)))
        .collect();
    let v4_target = SocketAddr::new(lab.b.ipv4().into(), PORT);
    let v6_target = SocketAddr::new(lab.b.ipv6().into(), PORT);
    let (s4, s6) = lab
        .a
        .run_in(|| (spray(&v4, 1, v4_target), spray(&v6, 1, v6_target)));
    let c = counters(srv);

    for (a, &n) in v4.iter().zip(&s4.replies) {
        assert_eq!(n, u64::from(v4_allowed(a)), "{a}");
    }
    for (a, &n) in v6.iter().zip(&s6.replies) {
        let allowed = matches!(a, IpAddr::V6(x) if x.segments()[3] == 5);
        assert_eq!(n, u64::from(allowed), "{a}");
    }
    let sent = (s4.sent + s6.sent) as f64;
    assert_eq!(sent, 1_024.0 + 150.0);
    assert_eq!(num(&c, "received"), sent, "{c}");
    assert_eq!(num(&c, "reflected"), 257.0 + 50.0, "{c}");
    assert_eq!(num(&c, "not_allowed"), sent - 307.0, "{c}");
}
