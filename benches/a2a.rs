//! Benchmarks of the agent-to-agent (STAMP) sans-IO core: packet codec, the reflector's
//! per-packet cost and the sender's per-reply cost. No sockets, no traffic.

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use probe_core::a2a::{
    AllowList, Datagram, Limit, Reflector, ReflectorConfig, Sender, SenderConfig,
};
use probe_core::time::{ErrorEstimate, Nanos, NtpTimestamp};
use probe_core::wire::stamp::{BASE_LEN, ReflectorPacket, ReflectorRepr, SenderPacket, SenderRepr};
use probe_core::wire::stamp_tlv::emit_padding;

const T0: u64 = 1_700_000_000_000_000_000;

fn sender_repr(seq: u32) -> SenderRepr {
    SenderRepr {
        seq,
        timestamp: NtpTimestamp::from_nanos(Nanos(T0 + u64::from(seq))),
        error_estimate: ErrorEstimate::new(true, false, 10, 100),
        ssid: 7,
    }
}

fn codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("stamp_codec");
    g.throughput(Throughput::Elements(1));
    let mut sender = [0u8; BASE_LEN];
    sender_repr(1).emit(&mut SenderPacket::new_unchecked(&mut sender[..]));
    let reflector_repr = ReflectorRepr {
        seq: 3,
        timestamp: NtpTimestamp::from_nanos(Nanos(T0 + 2)),
        receive_timestamp: NtpTimestamp::from_nanos(Nanos(T0 + 1)),
        sender_seq: 1,
        sender_timestamp: sender_repr(1).timestamp,
        ssid: 7,
        sender_ttl: 64,
        ..ReflectorRepr::default()
    };
    let mut reflector = [0u8; BASE_LEN];
    reflector_repr.emit(&mut ReflectorPacket::new_unchecked(&mut reflector[..]));

    g.bench_function("sender_parse", |b| {
        b.iter(|| {
            let p =
                SenderPacket::new_checked(black_box(&sender[..])).map(|p| SenderRepr::parse(&p));
            black_box(p)
        });
    });
    g.bench_function("sender_emit", |b| {
        let mut buf = [0u8; BASE_LEN];
        let mut seq = 0u32;
        b.iter(|| {
            seq = seq.wrapping_add(1);
            sender_repr(seq).emit(&mut SenderPacket::new_unchecked(&mut buf[..]));
            black_box(&buf);
        });
    });
    g.bench_function("reflector_parse", |b| {
        b.iter(|| {
            let p = ReflectorPacket::new_checked(black_box(&reflector[..]))
                .map(|p| ReflectorRepr::parse(&p));
            black_box(p)
        });
    });
    g.bench_function("reflector_emit", |b| {
        let mut buf = [0u8; BASE_LEN];
        b.iter(|| {
            black_box(reflector_repr).emit(&mut ReflectorPacket::new_unchecked(&mut buf[..]));
            black_box(&buf);
        });
    });
    g.finish();
}

fn reflect(c: &mut Criterion) {
    let mut g = c.benchmark_group("reflector");
    g.throughput(Throughput::Elements(1));
    // 64 senders on loopback ports, one session each; no rate limit in the way.
    let open = open_reflector();
    // The policy paths: the per-source rate limit on (above the offered rate, so every datagram
    // is answered), and an allow list of 8 prefixes whose last one holds the sender.
    let rate_limited = ReflectorConfig::builder()
        .rate_limit_pps(10_000_000)
        .build()
        .expect("valid");
    let prefixes: Vec<ipnet::IpNet> = ["10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16", "10.4.0.0/16"]
        .into_iter()
        .chain([
            "192.0.2.0/24",
            "198.51.100.0/24",
            "203.0.113.0/24",
            "127.0.0.0/8",
        ])
        .map(|p| p.parse().expect("prefix"))
        .collect();
    let allow = open
        .to_builder()
        .allow(AllowList::new(&prefixes).expect("allow list"))
        .build()
        .expect("valid");
    for (name, size, config) in [
        ("reflect_44B", BASE_LEN, open),
        ("reflect_1400B", 1_400, open),
        ("reflect_44B_rate_limited", BASE_LEN, rate_limited),
        ("reflect_44B_allow_8", BASE_LEN, allow),
    ] {
        let mut reflector = Reflector::new(config);
        // Shaped as probe senders shape it: base packet, then an Extra Padding TLV.
        let mut pkt = vec![0u8; size];
        sender_repr(0).emit(&mut SenderPacket::new_unchecked(&mut pkt[..]));
        emit_padding(&mut pkt[BASE_LEN..]);
        let mut out = vec![0u8; size];
        let mut n = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                n += 1;
                let d = Datagram {
                    bytes: &pkt,
                    src: SocketAddr::from((Ipv4Addr::LOCALHOST, 40_000 + (n % 64) as u16)),
                    rx: Nanos(T0 + n * 1_000),
                    ttl: Some(64),
                };
                black_box(reflector.reflect(&d, Nanos(T0 + n * 1_000 + 500), &mut out))
            });
        });
    }
    g.finish();
}

/// A sender with `n` packets sent and their replies from a reflector, ready to ingest.
fn sender_with_replies(n: u32) -> (Sender, Vec<(Vec<u8>, Nanos)>) {
    let config = SenderConfig {
        limit: Limit::Count(n),
        interval: Duration::from_millis(1),
        timeout: Duration::from_hours(1),
        ..SenderConfig::new("bench", 7)
    };
    let mut s = Sender::new(config, Nanos(T0)).expect("valid config");
    let mut r = Reflector::new(open_reflector());
    let src = SocketAddr::from((Ipv4Addr::LOCALHOST, 40_000));
    let mut replies = Vec::with_capacity(n as usize);
    let mut buf = [0u8; BASE_LEN];
    while let Some(at) = s.next_send_at() {
        let sent = s.emit_next(at, &mut buf).expect("emit");
        let mut out = vec![0u8; BASE_LEN];
        let rx = Nanos(at.0 + 1_000_000);
        let d = Datagram {
            bytes: &buf[..sent.len],
            src,
            rx,
            ttl: None,
        };
        r.reflect(&d, Nanos(rx.0 + 10_000), &mut out)
            .expect("reflected");
        replies.push((out, Nanos(rx.0 + 1_010_000)));
    }
    (s, replies)
}

fn sender(c: &mut Criterion) {
    let mut g = c.benchmark_group("sender");
    g.throughput(Throughput::Elements(1));
    g.bench_function("on_reply", |b| {
        b.iter_custom(|iters| {
            // The sender keeps the last MAX_RING packets: more would answer as late.
            let ring = u32::try_from(probe_core::a2a::MAX_RING).unwrap_or(u32::MAX);
            let n = u32::try_from(iters).unwrap_or(u32::MAX - 1).clamp(1, ring);
            let (mut s, replies) = sender_with_replies(n);
            let start = Instant::now();
            for (bytes, rx) in &replies {
                black_box(s.on_reply(bytes, *rx));
            }
            // Scale to the requested iterations when capped.
            start.elapsed().mul_f64(iters as f64 / f64::from(n))
        });
    });
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("finish_10k", |b| {
        let (mut s, replies) = sender_with_replies(10_000);
        for (bytes, rx) in &replies {
            s.on_reply(bytes, *rx);
        }
        b.iter(|| black_box(s.finish()));
    });
    g.finish();
}

criterion_group!(benches, codec, reflect, sender);
criterion_main!(benches);

/// A reflector without rate limit.
fn open_reflector() -> ReflectorConfig {
    ReflectorConfig::builder()
        .rate_limit_pps(0)
        .build()
        .expect("valid")
}
