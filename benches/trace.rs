//! Per-probe cost of the path-test state machine (emit a probe, match its answer) and the cost
//! of parsing an ICMP time exceeded carrying an RFC 4884 / RFC 4950 MPLS extension.
//!
//! Everything runs in memory: no packet leaves the process.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use probe_core::time::Nanos;
use probe_core::trace::{EmitLayer, ProbeConfig, Protocol, Trace, TraceConfig};
use probe_core::wire::answer::{Answer, AnswerKind, emit_ipv4};
use probe_core::wire::icmp::{IcmpKind, emit_error};
use probe_core::wire::icmp_ext::emit_mpls;
use probe_core::wire::mpls::MplsEntry;
use probe_core::wire::probe::{PROTO_ICMP, ProbeL4, ProbePacket};
use probe_core::wire::quote::Quote;

const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 9, 9);
const ROUTER: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 1);

/// A trace that never ends: every probe is answered by a router (time exceeded), rounds follow
/// each other without pause.
fn endless_trace() -> Trace {
    let mut probe = ProbeConfig::new(Protocol::Udp, IpAddr::V4(SRC), IpAddr::V4(DST));
    probe.emit = EmitLayer::Ip;
    let mut cfg = TraceConfig::new(probe);
    cfg.count = u32::MAX;
    cfg.interval = Duration::ZERO;
    cfg.max_ttl = 30;
    match Trace::new(cfg, Nanos(1)) {
        Ok(t) => t,
        Err(e) => panic!("bench config: {e}"),
    }
}

fn probe_roundtrip(c: &mut Criterion) {
    let mut trace = endless_trace();
    let mut buf = Vec::with_capacity(128);
    let mut now = Nanos(1_000);
    c.bench_function("trace/emit_probe_and_match_answer", |b| {
        b.iter(|| {
            now = Nanos(now.0 + 1_000);
            let Some(tx) = trace.poll_transmit(now, &mut buf) else {
                panic!("the endless trace always has a probe due");
            };
            let answer = Answer {
                from: IpAddr::V4(ROUTER),
                reply_ttl: Some(64),
                kind: AnswerKind::Icmp(IcmpKind::TimeExceeded { code: 0 }),
                icmp_type_code: Some((11, 0)),
                quote: Quote::parse(&buf[..28]).ok(),
                mpls: Vec::new(),
            };
            let matched = trace.handle_answer(&answer, Nanos(now.0 + 500));
            black_box((tx.id, matched))
        });
    });
}

/// An IPv4 packet: ICMP time exceeded quoting a UDP probe, with a two-label MPLS extension.
fn time_exceeded_with_mpls() -> Vec<u8> {
    let mut probe = ProbePacket::new(
        IpAddr::V4(SRC),
        IpAddr::V4(DST),
        ProbeL4::Udp {
            src_port: 40000,
            dst_port: 33434,
        },
        60,
    );
    probe.ttl = 1;
    probe.l4_checksum = Some(0x1234);
    let mut sent = Vec::new();
    if let Err(e) = probe.emit_ip(&mut sent) {
        panic!("bench probe: {e}");
    }
    let stack = [
        MplsEntry {
            label: 300_112,
            tc: 0,
            bottom: false,
            ttl: 1,
        },
        MplsEntry {
            label: 24001,
            tc: 0,
            bottom: true,
            ttl: 1,
        },
    ];
    let mut ext = Vec::new();
    emit_mpls(&stack, &mut ext);
    let mut icmp = Vec::new();
    emit_error(false, 11, 0, 0, &sent, Some(&ext), &mut icmp);
    let mut pkt = Vec::new();
    emit_ipv4(ROUTER, SRC, 250, PROTO_ICMP, &icmp, &mut pkt);
    pkt
}

fn parse_time_exceeded(c: &mut Criterion) {
    let pkt = time_exceeded_with_mpls();
    match Answer::parse_ipv4(&pkt) {
        Ok(a) if a.mpls.len() == 2 => {}
        other => panic!("bench packet does not parse as expected: {other:?}"),
    }
    c.bench_function("wire/parse_time_exceeded_mpls", |b| {
        b.iter(|| black_box(Answer::parse_ipv4(black_box(&pkt))));
    });
}

criterion_group!(benches, probe_roundtrip, parse_time_exceeded);
criterion_main!(benches);
