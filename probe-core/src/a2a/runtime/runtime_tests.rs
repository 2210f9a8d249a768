//! The shared socket and the responder's hold, end to end on loopback.

use std::net::SocketAddr;
use std::time::Duration;

use super::*;
use crate::a2a::runtime::{Responder, ResponderConfig, run_test};
use crate::a2a::{Limit, ReflectorConfig};

/// A responder serving on an ephemeral loopback port and holding requests `hold`: its
/// address, what stops it, and its task.
fn serve(
    hold: Duration,
) -> (
    SocketAddr,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<crate::a2a::ReflectorCounters, A2aError>>,
) {
    let listen: SocketAddr = "127.0.0.1:0".parse().expect("literal");
    let cfg = ResponderConfig::new([listen], ReflectorConfig::default())
        .expect("config")
        .with_coalesce(hold);
    let refl = Responder::bind(&cfg).expect("bind responder");
    let addr = refl.local_addrs()[0];
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let served = tokio::spawn(refl.run(async {
        let _ = stop_rx.await;
    }));
    (addr, stop_tx, served)
}

fn opts(peer: SocketAddr, count: u32, every: Duration) -> A2aOptions {
    A2aOptions::builder(peer)
        .limit(Limit::Count(count))
        .pace(Pace::Interval(every))
        .wait(Duration::from_millis(300))
        .build()
        .expect("options")
}

/// Three tests at once on the pool's socket: every packet answered and timed by the
/// kernel, no user-space round trip (replies are read at the loop's pace), and each test's
/// replies kept apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_tests_share_one_socket_and_lose_nothing() {
    let (addr, stop_tx, served) = serve(Duration::ZERO);
    let pool = SessionPool::new(Duration::from_millis(4));
    let each = opts(addr, 40, Duration::from_millis(5));
    assert!(SessionPool::can_share(&each));
    let never = std::future::pending::<()>;
    let (one, two, three) = tokio::join!(
        pool.run_test_until(each.clone(), never()),
        pool.run_test_until(each.clone(), never()),
        pool.run_test_until(each, never()),
    );
    let _ = stop_tx.send(());
    let counters = served.await.expect("join").expect("responder");
    let mut ssids = Vec::new();
    for (outcome, cut) in [one, two, three].map(|r| r.expect("pooled test")) {
        let rep = &outcome.report;
        assert!(!cut);
        assert_eq!((rep.sent, rep.received, rep.lost), (40, 40, 0), "{rep:?}");
        assert_eq!(rep.timestamps, crate::report::TimestampSource::Kernel);
        let rtt = rep.rtt_ms.expect("round trips");
        assert!(rtt.p50 < 5.0, "loopback round trip {rtt:?}");
        assert_eq!(
            rep.rtt_user_ms, None,
            "no user-space round trip when pooled"
        );
        ssids.push(rep.ssid);
    }
    ssids.sort_unstable();
    ssids.dedup();
    assert_eq!(ssids.len(), 3, "one SSID each");
    assert!(
        counters.reflected >= 120,
        "every test packet reflected: {counters:?}"
    );
}

/// A pooled run whose replies have all come ends then, not at the end of its final wait
/// (no reply wakes the loop; its nap is bounded instead).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_run_ends_when_its_last_reply_is_in() {
    let (addr, stop_tx, served) = serve(Duration::ZERO);
    let pool = SessionPool::new(Duration::from_millis(4));
    let quick = A2aOptions::builder(addr)
        .limit(Limit::Count(5))
        .pace(Pace::Interval(Duration::from_millis(10)))
        .wait(Duration::from_secs(3))
        .build()
        .expect("options");
    let started = std::time::Instant::now();
    let (outcome, cut) = pool
        .run_test_until(quick, std::future::pending())
        .await
        .expect("pooled test");
    let took = started.elapsed();
    let _ = stop_tx.send(());
    served.await.expect("join").expect("responder");
    assert!(!cut);
    assert_eq!(outcome.report.received, 5, "{:?}", outcome.report);
    assert!(
        took < Duration::from_secs(1),
        "took {took:?}: the 3 s final wait was sat out"
    );
}

/// A responder holding requests 3 ms: the user-space round trip grows by the hold, the
/// STAMP round trip (which takes the turnaround out) does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_responders_hold_is_turnaround_not_round_trip() {
    let hold = Duration::from_millis(3);
    let (addr, stop_tx, served) = serve(hold);
    // One packet a millisecond: most arrive while the responder sleeps after a reply.
    let out = run_test(opts(addr, 300, Duration::from_millis(1)))
        .await
        .expect("test");
    let _ = stop_tx.send(());
    served.await.expect("join").expect("responder");
    let rep = &out.report;
    assert_eq!((rep.sent, rep.received), (300, 300), "{rep:?}");
    let (rtt, user) = (
        rep.rtt_ms.expect("round trips"),
        rep.rtt_user_ms.expect("user-space round trips"),
    );
    assert!(rtt.p50 < 1.0, "STAMP round trip holds no hold: {rtt:?}");
    assert!(
        user.mean > rtt.mean + 0.5,
        "the user-space round trip shows the hold: {user:?} against {rtt:?}"
    );
    assert!(user.max < 40.0, "bounded by the hold: {user:?}");
}
