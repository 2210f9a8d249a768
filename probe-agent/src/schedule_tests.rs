use super::*;

const S: u64 = 1_000_000_000;

fn spec(interval_s: u64, jitter_ms: u64, class: Class) -> Spec {
    Spec {
        interval: Duration::from_secs(interval_s),
        jitter: Duration::from_millis(jitter_ms),
        deadline: Duration::from_secs(interval_s),
        class,
    }
}

/// Runs the scheduler in 10 ms steps until `end`, finishing each run `run_ns` after it
/// started; returns (time, action) pairs.
fn drive(s: &mut Scheduler, end: u64, run_ns: &[u64]) -> Vec<(u64, Action)> {
    let mut out = Vec::new();
    let mut ends: Vec<(u64, usize)> = Vec::new();
    let mut now = 0;
    while now <= end {
        ends.retain(|&(t, i)| {
            if t <= now {
                s.finished(i);
                false
            } else {
                true
            }
        });
        for a in s.poll(now) {
            if let Action::Start { test, .. } = a {
                ends.push((now + run_ns[test], test));
            }
            out.push((now, a));
        }
        now += S / 100;
    }
    out
}

fn starts(log: &[(u64, Action)], test: usize) -> Vec<u64> {
    log.iter()
        .filter_map(|(t, a)| matches!(a, Action::Start { test: x, .. } if *x == test).then_some(*t))
        .collect()
}

#[test]
fn runs_keep_their_interval_within_jitter_and_offsets_differ_by_seed() {
    let specs = [spec(10, 500, Class::Latency)];
    let mut s = Scheduler::new(&specs, 0, 1);
    let log = drive(&mut s, 100 * S, &[S]);
    let t = starts(&log, 0);
    assert!(t.len() >= 9 && t.len() <= 11, "{t:?}");
    for w in t.windows(2) {
        let gap = w[1] - w[0];
        assert!((9 * S..=11 * S).contains(&gap), "gap {gap}");
    }
    assert!(t[0] < 10 * S + S / 2);
    let firsts: std::collections::BTreeSet<u64> = (0..8)
        .map(|seed| {
            let mut s = Scheduler::new(&specs, 0, seed);
            starts(&drive(&mut s, 11 * S, &[S]), 0)[0]
        })
        .collect();
    assert!(firsts.len() >= 6, "{firsts:?}");
}

#[test]
fn a_run_over_its_interval_makes_the_next_slot_a_skip() {
    let mut s = Scheduler::new(&[spec(1, 0, Class::Latency)], 0, 3);
    // Each run takes 1.5 intervals.
    let log = drive(&mut s, 10 * S, &[3 * S / 2]);
    let skips: Vec<&String> = log
        .iter()
        .filter_map(|(_, a)| match a {
            Action::Skip { reason, .. } => Some(reason),
            Action::Start { .. } => None,
        })
        .collect();
    assert!(skips.len() >= 4, "{log:?}");
    assert!(skips.iter().all(|r| r.contains("still going")));
    assert!(starts(&log, 0).len() >= 4);
}

#[test]
fn throughput_runs_alone_and_latency_slots_meanwhile_are_skipped() {
    let specs = [spec(1, 0, Class::Latency), spec(5, 0, Class::Throughput)];
    let mut s = Scheduler::new(&specs, 0, 9);
    let log = drive(&mut s, 30 * S, &[S / 5, 2 * S]);
    let tp = starts(&log, 1);
    assert!(tp.len() >= 5, "{log:?}");
    // No latency run starts while a throughput run (2 s) is going.
    for &t0 in &tp {
        for &l in &starts(&log, 0) {
            assert!(!(t0..t0 + 2 * S).contains(&l), "latency at {l} during {t0}");
        }
    }
    let held = log
        .iter()
        .filter(|(_, a)| matches!(a, Action::Skip { test: 0, reason, .. } if reason.contains("holds the line") || reason.contains("waiting")))
        .count();
    assert!(held >= 5, "{held}");
    assert!(s.every_test_ran());
}

#[test]
fn a_stall_is_recorded_as_missed_slots() {
    let mut s = Scheduler::new(&[spec(1, 0, Class::Latency)], 0, 5);
    let first = s.next_wake_ns().expect("a slot");
    assert!(first < S);
    let a = s.poll(first);
    assert!(matches!(a[..], [Action::Start { .. }]));
    s.finished(0);
    // The agent sleeps through more than three slots.
    let a = s.poll(first + 4 * S + S / 2);
    assert!(
        matches!(a.last(), Some(Action::Start { slot_ns, .. }) if *slot_ns == first + 4 * S),
        "{a:?}"
    );
    let missed = a
        .iter()
        .filter(|x| matches!(x, Action::Skip { reason, .. } if reason.starts_with("missed")))
        .count();
    assert_eq!(missed, 3, "{a:?}");
}
