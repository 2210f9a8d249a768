//! Deterministic unit tests of the impairment state machine.

use super::*;

const MS: u64 = 1_000_000;

fn data(imp: &mut Impairer<u64>, now: u64, id: u64) -> Verdict {
    imp.push(now, id, 100, PacketClass::Data)
}

/// Pops everything due at `now`, returning (id, release time) pairs.
fn drain(imp: &mut Impairer<u64>, now: u64) -> Vec<(u64, u64)> {
    std::iter::from_fn(|| imp.pop_due(now).map(|r| (r.packet, r.release_at))).collect()
}

fn seeded(config: ImpairConfig) -> Impairer<u64> {
    Impairer::new(ImpairConfig {
        seed: Some(7),
        ..config
    })
}

#[test]
fn fixed_delay_holds_each_packet_exactly() {
    let mut imp = seeded(ImpairConfig::delay(Duration::from_millis(10)));
    for i in 0..5 {
        assert_eq!(
            data(&mut imp, i * MS, i),
            Verdict::Queued {
                release_at: i * MS + 10 * MS,
                duplicated: false
            }
        );
    }
    assert_eq!(imp.next_release(), Some(10 * MS));
    assert!(imp.pop_due(10 * MS - 1).is_none());
    assert_eq!(
        drain(&mut imp, 12 * MS),
        vec![(0, 10 * MS), (1, 11 * MS), (2, 12 * MS)]
    );
    assert_eq!(drain(&mut imp, 100 * MS), vec![(3, 13 * MS), (4, 14 * MS)]);
    assert_eq!(imp.stats().released, 5);
    assert_eq!(imp.held(), 0);
}

#[test]
fn jitter_stays_in_bounds_and_never_reorders() {
    let delay = 10 * MS;
    let jitter = 3 * MS;
    let mut imp = seeded(ImpairConfig {
        delay: Duration::from_nanos(delay),
        jitter: Duration::from_nanos(jitter),
        ..ImpairConfig::default()
    });
    let mut releases = Vec::new();
    let mut spread = (u64::MAX, 0);
    for i in 0..2000u64 {
        let now = i * 100_000; // 10k pps: jitter is far larger than the gap
        let Verdict::Queued { release_at, .. } = data(&mut imp, now, i) else {
            panic!("nothing may be dropped");
        };
        assert!(
            release_at >= now + delay - jitter,
            "release {release_at} too early"
        );
        let hold = release_at - now;
        spread = (spread.0.min(hold), spread.1.max(hold));
        releases.push(release_at);
    }
    assert!(releases.windows(2).all(|w| w[0] <= w[1]));
    // The jitter really varies the hold time (bumps only lengthen it).
    assert!(
        spread.0 < delay - jitter / 2 && spread.1 > delay + jitter / 2,
        "{spread:?}"
    );
    let order: Vec<u64> = drain(&mut imp, u64::MAX)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(order, (0..2000).collect::<Vec<_>>());
}

#[test]
fn jitter_larger_than_delay_never_releases_before_arrival() {
    let mut imp = seeded(ImpairConfig {
        delay: Duration::from_millis(1),
        jitter: Duration::from_millis(5),
        ..ImpairConfig::default()
    });
    for i in 0..500 {
        let now = 1_000 * MS + i * MS;
        let Verdict::Queued { release_at, .. } = data(&mut imp, now, i) else {
            panic!("no loss configured");
        };
        assert!(release_at >= now);
    }
}

#[test]
fn every_nth_drops_exactly_the_multiples_and_ignores_other_packets() {
    let mut imp = seeded(ImpairConfig {
        every_nth: 10,
        ..ImpairConfig::default()
    });
    let mut dropped = Vec::new();
    for i in 1..=200u64 {
        // Non-data packets in between are neither counted nor dropped.
        assert!(matches!(
            imp.push(i, 0, 60, PacketClass::Other),
            Verdict::Queued { .. }
        ));
        if data(&mut imp, i, i) == Verdict::Dropped(DropReason::EveryNth) {
            dropped.push(i);
        }
    }
    assert_eq!(dropped, (1..=20).map(|k| k * 10).collect::<Vec<_>>());
    let stats = imp.stats();
    assert_eq!(
        (stats.received, stats.data, stats.dropped_nth),
        (400, 200, 20)
    );
}

#[test]
fn random_loss_is_seeded_and_within_binomial_bounds() {
    let config = ImpairConfig {
        loss: 0.2,
        ..ImpairConfig::default()
    };
    let pattern = |imp: &mut Impairer<u64>| -> Vec<bool> {
        (0..10_000)
            .map(|i| matches!(data(imp, i, i), Verdict::Dropped(_)))
            .collect()
    };
    let first = pattern(&mut seeded(config));
    assert_eq!(first, pattern(&mut seeded(config)));
    // n = 10000, p = 0.2: mean 2000, sd 40; allow 5 sd.
    let lost = first.iter().filter(|&&d| d).count();
    assert!((1800..=2200).contains(&lost), "{lost} lost");
}

#[test]
fn duplicates_follow_the_original_at_the_same_time() {
    let mut imp = seeded(ImpairConfig {
        delay: Duration::from_millis(1),
        duplicate: 1.0,
        ..ImpairConfig::default()
    });
    assert_eq!(
        data(&mut imp, 0, 1),
        Verdict::Queued {
            release_at: MS,
            duplicated: true
        }
    );
    data(&mut imp, 10, 2);
    assert_eq!(
        drain(&mut imp, 2 * MS),
        vec![(1, MS), (1, MS), (2, MS + 10), (2, MS + 10)]
    );
    assert_eq!(imp.stats().duplicated, 2);
    // Non-data packets are never duplicated.
    imp.push(0, 3, 60, PacketClass::Other);
    assert_eq!(drain(&mut imp, 10 * MS).len(), 1);
}

#[test]
fn reordered_packets_overtake_the_delay_line() {
    let mut imp = seeded(ImpairConfig {
        delay: Duration::from_millis(10),
        reorder: 0.3,
        ..ImpairConfig::default()
    });
    for i in 0..100 {
        data(&mut imp, i * MS, i);
    }
    let released = drain(&mut imp, u64::MAX);
    let early: Vec<u64> = released
        .iter()
        .filter(|&&(id, at)| at == id * MS)
        .map(|&(id, _)| id)
        .collect();
    assert_eq!(early.len() as u64, imp.stats().reordered);
    assert!(
        (15..=45).contains(&early.len()),
        "{} reordered",
        early.len()
    );
    let order: Vec<u64> = released.iter().map(|&(id, _)| id).collect();
    assert_ne!(order, (0..100).collect::<Vec<_>>());
    // Packets that were not reordered keep their order and exact delay.
    let delayed: Vec<(u64, u64)> = released
        .into_iter()
        .filter(|(id, _)| !early.contains(id))
        .collect();
    assert!(delayed.iter().all(|&(id, at)| at == id * MS + 10 * MS));
    assert!(delayed.windows(2).all(|w| w[0].0 < w[1].0));
}

#[test]
fn rate_limit_serializes_and_tail_drops() {
    // 1 Mbit/s: a 1250-byte packet takes 10 ms.
    let mut imp = seeded(ImpairConfig {
        rate_bps: 1_000_000,
        queue_limit: 2,
        ..ImpairConfig::default()
    });
    let push = |imp: &mut Impairer<u64>, now, id| imp.push(now, id, 1250, PacketClass::Data);
    let queued = |release_at| Verdict::Queued {
        release_at,
        duplicated: false,
    };
    assert_eq!(push(&mut imp, 0, 1), queued(10 * MS));
    assert_eq!(push(&mut imp, 0, 2), queued(20 * MS));
    assert_eq!(
        push(&mut imp, 0, 3),
        Verdict::Dropped(DropReason::QueueFull)
    );
    // Once the first has left the link there is room again; it queues behind the second.
    assert_eq!(push(&mut imp, 10 * MS, 4), queued(30 * MS));
    // An idle link sends at once.
    assert_eq!(push(&mut imp, 100 * MS, 5), queued(110 * MS));
    assert_eq!(imp.stats().dropped_queue, 1);
}

#[test]
fn new_configuration_restarts_the_count() {
    let every_3rd = ImpairConfig {
        every_nth: 3,
        ..ImpairConfig::default()
    };
    let mut imp = seeded(every_3rd);
    data(&mut imp, 0, 1);
    data(&mut imp, 0, 2);
    imp.set_config(every_3rd);
    assert!(matches!(data(&mut imp, 0, 3), Verdict::Queued { .. }));
    assert!(matches!(data(&mut imp, 0, 4), Verdict::Queued { .. }));
    assert_eq!(data(&mut imp, 0, 5), Verdict::Dropped(DropReason::EveryNth));
}

#[test]
fn validation_rejects_impossible_settings() {
    assert!(ImpairConfig::default().validate().is_ok());
    let bad_loss = ImpairConfig {
        loss: 1.5,
        ..ImpairConfig::default()
    };
    assert!(bad_loss.validate().is_err());
    let no_queue = ImpairConfig {
        queue_limit: 0,
        ..ImpairConfig::default()
    };
    assert!(no_queue.validate().is_err());
}

fn ipv4(protocol: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![
        0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, protocol, 0, 0, 198, 18, 0, 1, 198, 18, 1, 2,
    ];
    p.extend_from_slice(payload);
    let len = p.len() as u16;
    p[2..4].copy_from_slice(&len.to_be_bytes());
    p
}

fn ipv6(next_header: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.extend_from_slice(&[next_header, 64]);
    p.extend_from_slice(&[0xfd, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    p.extend_from_slice(&[0xfd, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    p.extend_from_slice(payload);
    p
}

#[test]
fn classification_counts_only_transport_data_and_echo() {
    let udp = [0x9c, 0x40, 0x82, 0x9a, 0, 8, 0, 0];
    let tcp = [0u8; 20];
    let echo_request = [8, 0, 0, 0, 0, 1, 0, 1];
    let time_exceeded = [11, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(classify(&ipv4(17, &udp)), PacketClass::Data);
    assert_eq!(classify(&ipv4(6, &tcp)), PacketClass::Data);
    assert_eq!(classify(&ipv4(1, &echo_request)), PacketClass::Data);
    assert_eq!(classify(&ipv4(1, &time_exceeded)), PacketClass::Other);
    assert_eq!(classify(&ipv4(2, &[0x11, 0, 0, 0])), PacketClass::Other); // IGMP

    let echo6 = [128, 0, 0, 0, 0, 1, 0, 1];
    let neighbor_solicitation = [135, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(classify(&ipv6(17, &udp)), PacketClass::Data);
    assert_eq!(classify(&ipv6(58, &echo6)), PacketClass::Data);
    assert_eq!(
        classify(&ipv6(58, &neighbor_solicitation)),
        PacketClass::Other
    );

    assert_eq!(classify(&[]), PacketClass::Other);
    assert_eq!(classify(&[0x45, 0, 0]), PacketClass::Other);
    assert_eq!(classify(&[0x10; 40]), PacketClass::Other);
}
