//! Per-packet cost of the impairment hop's decision logic (the sans-IO state machine:
//! classification, loss, rate limiter, jitter/delay line, reordering and the release queue),
//! without sockets or TUN devices.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use probe_lab::impair::{ImpairConfig, Impairer, PacketClass, classify};

/// Packets pushed per iteration (10 ms of traffic at 100k pps).
const BATCH: u64 = 1000;
/// Inter-arrival time: 10 µs (100k pps).
const GAP_NS: u64 = 10_000;

/// A 64-byte IPv4/UDP packet, as read from the TUN device.
fn udp_packet() -> Vec<u8> {
    let mut p = vec![
        0x45, 0, 0, 64, 0, 0, 0x40, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 1, 2, 0x9c, 0x40,
        0xc0, 0x00, 0, 44, 0, 0,
    ];
    p.resize(64, 0);
    p
}

/// Pushes `BATCH` packets 10 µs apart and releases everything due, continuing the clock
/// across iterations so the delay line stays full as in steady state.
fn run(impairer: &mut Impairer<Vec<u8>>, clock: &mut u64, packet: &[u8]) -> usize {
    let mut released = 0;
    for _ in 0..BATCH {
        *clock += GAP_NS;
        let class = classify(packet);
        impairer.push(*clock, packet.to_vec(), packet.len(), class);
        while let Some(r) = impairer.pop_due(*clock) {
            released += black_box(r.packet).len();
        }
    }
    released
}

fn bench_impairer(c: &mut Criterion) {
    let packet = udp_packet();
    let mut group = c.benchmark_group("impairer");
    group.throughput(Throughput::Elements(BATCH));
    let configs = [
        ("delay_10ms", ImpairConfig::delay(Duration::from_millis(10))),
        (
            "jitter_loss_dup_reorder",
            ImpairConfig {
                delay: Duration::from_millis(10),
                jitter: Duration::from_millis(2),
                loss: 0.01,
                duplicate: 0.01,
                reorder: 0.01,
                seed: Some(1),
                ..ImpairConfig::default()
            },
        ),
        (
            "rate_limited",
            ImpairConfig {
                delay: Duration::from_millis(10),
                rate_bps: 40_000_000,
                queue_limit: 100,
                seed: Some(1),
                ..ImpairConfig::default()
            },
        ),
    ];
    for (name, config) in configs {
        let mut impairer = Impairer::new(config);
        let mut clock = 0;
        group.bench_function(name, |b| b.iter(|| run(&mut impairer, &mut clock, &packet)));
    }
    group.finish();
    c.bench_function("classify_udp", |b| {
        b.iter(|| classify(black_box(&packet)) == PacketClass::Data);
    });
}

criterion_group!(benches, bench_impairer);
criterion_main!(benches);
