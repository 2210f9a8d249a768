//! Tests of the async pacer: order, never early, cancel-safety, runtimes, and the spin bound.
//! Precision bounds here are loose on purpose (the machine is shared with builds); the
//! precision target is measured by `probe-core/examples/pacer_error.rs`.

use std::time::Duration;

use super::*;

const MS: u64 = 1_000_000;
/// Lateness no healthy wait reaches, even on a loaded machine.
const LOOSE: i64 = 200_000_000;

/// CPU time consumed by the calling thread so far.
fn thread_cpu() -> Nanos {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec that outlives the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut ts) };
    assert_eq!(rc, 0, "{}", io::Error::last_os_error());
    Nanos::from_parts(
        u64::try_from(ts.tv_sec).expect("seconds"),
        u32::try_from(ts.tv_nsec).expect("nanoseconds"),
    )
}

/// Runs the calling thread at `SCHED_FIFO` while alive (when granted, as for root), so that
/// its CPU time is the time it is runnable even on a loaded machine: a spin then costs its
/// full length in CPU. Restores `SCHED_OTHER` on drop.
struct FifoThread;

impl FifoThread {
    /// A pacer with `cfg` on a `SCHED_FIFO` thread (best effort), and the guard.
    fn pacer(cfg: PacerConfig) -> (Pacer, FifoThread) {
        let (pacer, granted) = Pacer::realtime(cfg).expect("pacer");
        if !granted {
            eprintln!("SCHED_FIFO not granted: CPU bounds are weaker on a loaded machine");
        }
        (pacer, FifoThread)
    }
}

impl Drop for FifoThread {
    fn drop(&mut self) {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `sched_setscheduler` reads the `sched_param` we pass by reference, which
        // lives across the call; pid 0 means the calling thread.
        unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &raw const param) };
    }
}

/// Waits for 20 deadlines 1 ms apart; checks each is in order and never early, returns the
/// worst lateness.
async fn run_schedule(pacer: &mut Pacer) -> i64 {
    let start = Nanos::now_realtime();
    let mut last = start;
    let mut worst = 0;
    for i in 1..=20 {
        let deadline = Nanos(start.0 + i * MS);
        let woke = pacer.sleep_until(deadline).await;
        let late = woke.since(deadline);
        assert!(late >= 0, "deadline {i}: woke {} ns early", -late);
        assert!(
            woke >= last,
            "deadline {i}: woke before the previous wake-up"
        );
        last = woke;
        worst = worst.max(late);
    }
    worst
}

#[tokio::test(flavor = "current_thread")]
async fn current_thread_runtime_wakes_in_order_never_early() {
    let mut p = Pacer::new(PacerConfig::default()).expect("pacer");
    let worst = run_schedule(&mut p).await;
    assert!(worst < LOOSE, "worst lateness {worst} ns");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_thread_runtime_wakes_in_order_never_early() {
    let mut p = Pacer::new(PacerConfig::default()).expect("pacer");
    // On a worker task too, where the future may move between threads.
    let worst = tokio::spawn(async move { run_schedule(&mut p).await })
        .await
        .expect("task");
    assert!(worst < LOOSE, "worst lateness {worst} ns");
}

#[tokio::test(flavor = "current_thread")]
async fn without_spin_wakes_in_order_never_early() {
    let mut p = Pacer::new(PacerConfig::default().no_spin()).expect("pacer");
    let worst = run_schedule(&mut p).await;
    assert!(worst < LOOSE, "worst lateness {worst} ns");
}

#[tokio::test(flavor = "current_thread")]
async fn dropped_wait_leaves_the_next_one_on_time() {
    let mut p = Pacer::new(PacerConfig::default()).expect("pacer");
    // A wait for 2 s from now, abandoned after 5 ms.
    let far = Nanos(Nanos::now_realtime().0 + 2_000 * MS);
    let dropped = tokio::time::timeout(Duration::from_millis(5), p.sleep_until(far)).await;
    assert!(dropped.is_err(), "a 2 s wait finished within 5 ms");
    // The next wait must not inherit the abandoned deadline.
    let deadline = Nanos(Nanos::now_realtime().0 + 5 * MS);
    let woke = p.sleep_until(deadline).await;
    assert!(woke >= deadline, "woke {} ns early", deadline.since(woke));
    assert!(
        woke.since(deadline) < LOOSE,
        "woke {} ns late: the abandoned 2 s timer still held",
        woke.since(deadline)
    );
}

#[tokio::test(flavor = "current_thread")]
async fn stale_expiry_of_a_dropped_wait_does_not_wake_early() {
    let mut p = Pacer::new(PacerConfig::default()).expect("pacer");
    // Abandon a wait whose timer then fires with nobody waiting (20 ms ahead, so that even a
    // stalled test thread polls it before it is due).
    let soon = Nanos(Nanos::now_realtime().0 + 20 * MS);
    // A zero timeout polls the wait once (it arms the timer), then drops it.
    let dropped = tokio::time::timeout(Duration::ZERO, p.sleep_until(soon)).await;
    assert!(dropped.is_err(), "a 20 ms wait finished at once");
    tokio::time::sleep(Duration::from_millis(40)).await;
    // The stale readiness must not end the next wait early.
    let deadline = Nanos(Nanos::now_realtime().0 + 20 * MS);
    let woke = p.sleep_until(deadline).await;
    assert!(woke >= deadline, "woke {} ns early", deadline.since(woke));
}

#[tokio::test(flavor = "current_thread")]
async fn without_spin_burns_no_cpu_waiting() {
    let (mut p, _fifo) = FifoThread::pacer(PacerConfig::default().no_spin());
    let cpu = thread_cpu();
    run_schedule(&mut p).await;
    let used = thread_cpu().since(cpu);
    // 20 ms of waiting: a few syscalls per wait, nowhere near a spinning core.
    assert!(
        used < 4_000_000,
        "{used} ns of CPU for 20 waits without spin"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn spin_stays_within_its_budget() {
    // The margin asks for 900 µs of spin per wait; the budget allows 100 µs.
    let cfg = PacerConfig::default()
        .spin(Duration::from_micros(900))
        .max_spin(Duration::from_micros(100));
    let (mut p, _fifo) = FifoThread::pacer(cfg);
    let cpu = thread_cpu();
    run_schedule(&mut p).await;
    let used = thread_cpu().since(cpu);
    // 20 × 100 µs of spin plus the syscalls, far below 20 × 900 µs.
    assert!(used < 6_000_000, "{used} ns of CPU for 20 waits");
}

#[test]
fn spin_gives_up_when_the_budget_runs_out() {
    let deadline = Nanos(Nanos::now_realtime().0 + 1_000 * MS);
    let mut budget = 200_000;
    let start = Nanos::now_realtime();
    assert_eq!(spin(deadline, &mut budget), None);
    assert_eq!(budget, 0);
    assert!(Nanos::now_realtime().since(start) >= 200_000);
    // A spin to a near deadline returns the time and charges the budget.
    let mut budget = 1_000 * MS;
    let deadline = Nanos(Nanos::now_realtime().0 + 50_000);
    let woke = spin(deadline, &mut budget).expect("within budget");
    assert!(woke >= deadline);
    assert!(budget < 1_000 * MS);
}

#[tokio::test(flavor = "current_thread")]
async fn steps_sleep_then_spin_within_the_budget() {
    let cfg = PacerConfig::default()
        .spin(Duration::from_micros(50))
        .max_spin(Duration::from_micros(30));
    let p = Pacer::new(cfg).expect("pacer");
    let d = Nanos(10 * MS);
    // Far from the deadline: sleep until the budget (smaller than the margin) can cover it.
    assert_eq!(
        p.step(Nanos(d.0 - MS), d, 30_000),
        Step::Sleep(Nanos(d.0 - 30_000))
    );
    assert_eq!(p.step(Nanos(d.0 - 30_000), d, 30_000), Step::Spin);
    // Budget spent: sleep right to the deadline.
    assert_eq!(p.step(Nanos(d.0 - 10_000), d, 0), Step::Sleep(d));
    assert_eq!(p.step(d, d, 0), Step::Done(d));
    assert_eq!(
        p.step(Nanos(d.0 + 1), d, 30_000),
        Step::Done(Nanos(d.0 + 1))
    );
}

#[tokio::test(flavor = "current_thread")]
async fn late_wake_ups_lengthen_the_lead_within_the_budget() {
    let us = 1_000;
    let cfg = PacerConfig::default()
        .spin(Duration::from_micros(20))
        .max_spin(Duration::from_micros(200));
    let mut p = Pacer::new(cfg).expect("pacer");
    let d = Nanos(10 * MS);
    assert_eq!(
        p.step(Nanos(0), d, 200 * us),
        Step::Sleep(Nanos(d.0 - 20 * us))
    );
    // A wake-up 80 µs late: the next sleep ends 120 µs (its peak and half again) early.
    p.note_wake(Nanos(5 * MS), Nanos(5 * MS + 80 * us));
    assert_eq!(
        p.step(Nanos(0), d, 200 * us),
        Step::Sleep(Nanos(d.0 - 120 * us))
    );
    // Never more than the spin budget, however late the wake-ups.
    p.note_wake(Nanos(5 * MS), Nanos(6 * MS));
    assert_eq!(
        p.step(Nanos(0), d, 200 * us),
        Step::Sleep(Nanos(d.0 - 200 * us))
    );
    // Punctual wake-ups let the peak decay back to the margin.
    for _ in 0..2_000 {
        p.note_wake(Nanos(5 * MS), Nanos(5 * MS));
    }
    assert_eq!(
        p.step(Nanos(0), d, 200 * us),
        Step::Sleep(Nanos(d.0 - 20 * us))
    );
}

#[test]
fn needs_a_runtime() {
    assert!(Pacer::new(PacerConfig::default()).is_err());
}

#[test]
fn config_builders_set_margin_and_budget() {
    let c = PacerConfig::default();
    assert_eq!(c.spin_margin(), DEFAULT_MARGIN);
    assert_eq!(c.spin_budget(), DEFAULT_MAX_SPIN);
    let c = c
        .spin(Duration::from_micros(7))
        .max_spin(Duration::from_micros(9));
    assert_eq!(
        (c.spin_margin(), c.spin_budget()),
        (Duration::from_micros(7), Duration::from_micros(9))
    );
    let c = c.no_spin();
    assert_eq!(
        (c.spin_margin(), c.spin_budget()),
        (Duration::ZERO, Duration::ZERO)
    );
}

#[test]
fn spin_is_capped_at_a_fifth_of_the_interval() {
    let us = Duration::from_micros;
    let c = PacerConfig::default();
    // 1 ms: the default margin (150 µs) fits under the cap (200 µs), the budget is cut.
    let one_ms = c.capped_for(Duration::from_millis(1));
    assert_eq!(
        (one_ms.spin_margin(), one_ms.spin_budget()),
        (us(150), us(200))
    );
    // 100 µs: both at 20 µs, so at most a fifth of each interval is spun.
    let fast = c.capped_for(us(100));
    assert_eq!((fast.spin_margin(), fast.spin_budget()), (us(20), us(20)));
    // Long intervals keep the settings.
    assert_eq!(c.capped_for(Duration::from_secs(1)), c);
    assert_eq!(c.no_spin().capped_for(us(100)), c.no_spin());
}

#[test]
fn blocking_wait_in_order_never_early() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("runtime");
    let _enter = rt.enter();
    let mut p = Pacer::new(PacerConfig::default()).expect("pacer");
    let start = Nanos::now_realtime();
    for i in 1..=20 {
        let deadline = Nanos(start.0 + i * MS);
        let late = p.sleep_until_blocking(deadline).since(deadline);
        assert!(
            (0..LOOSE).contains(&late),
            "deadline {i}: lateness {late} ns"
        );
    }
    // A deadline already past returns at once.
    let now = Nanos::now_realtime();
    let woke = p.sleep_until_blocking(Nanos(now.0 - MS));
    assert!(woke.since(now) < LOOSE);
}
