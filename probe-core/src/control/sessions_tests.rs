use super::*;
use crate::a2a::Direction;

fn req(kind: TestKind, interval_ms: Option<u64>, duration_s: u64) -> TestRequest {
    TestRequest {
        kind,
        direction: Direction::To,
        interval_ns: interval_ms.map(|ms| ms * 1_000_000),
        count: None,
        duration_ms: Some(duration_s * 1000),
        size: 100,
        dscp: None,
        ssid: 1,
        port: None,
        clock: None,
        auth: false,
    }
}

fn ip() -> IpAddr {
    "192.0.2.1".parse().expect("ip")
}

fn refused(t: &mut SessionTable, r: TestRequest, now: Instant) -> ErrorMessage {
    t.admit(99, 1, ip(), r, now).expect_err("refused").clone()
}

#[test]
fn each_limit_is_named_with_its_value() {
    let limits = Limits {
        max_rate_pps: Some(100.0),
        max_duration: Some(Duration::from_secs(10)),
        max_sessions: 1,
        max_bandwidth_bps: Some(40_000),
    };
    let mut t = SessionTable::new(limits);
    let now = Instant::now();
    let e = refused(&mut t, req(TestKind::Stamp, Some(10), 11), now);
    assert_eq!(e.code, ErrorCode::LimitExceeded);
    assert!(e.message.contains("--max-duration 10s"), "{}", e.message);
    let e = refused(&mut t, req(TestKind::Stamp, Some(5), 1), now);
    assert!(e.message.contains("--max-rate 100 pps"), "{}", e.message);
    assert!(e.message.contains("200.0 pps asked"), "{}", e.message);
    let e = refused(&mut t, req(TestKind::Stamp, None, 1), now);
    assert!(e.message.contains("--max-rate"), "{}", e.message);
    // 50 pps x 100 B x 8 = 40 kbit/s: at the limit is allowed, 100 pps is over.
    let ok = t.admit(1, 1, ip(), req(TestKind::Stamp, Some(20), 1), now);
    assert!(ok.is_ok());
    let mut t2 = SessionTable::new(Limits {
        max_rate_pps: None,
        ..limits
    });
    let e = refused(&mut t2, req(TestKind::Stamp, Some(10), 1), now);
    assert!(
        e.message.contains("--max-bandwidth 40000 bit/s"),
        "{}",
        e.message
    );
    // One session open: a second is over --max-sessions 1.
    let e = refused(&mut t, req(TestKind::Stamp, Some(20), 1), now);
    assert!(e.message.contains("--max-sessions 1"), "{}", e.message);
}

#[test]
fn throughput_is_exclusive_with_the_time_left() {
    let mut t = SessionTable::new(Limits::default());
    let now = Instant::now();
    t.admit(1, 1, ip(), req(TestKind::TcpThroughput, None, 10), now)
        .expect("first");
    // STAMP still runs beside it.
    t.admit(2, 2, ip(), req(TestKind::Stamp, Some(10), 10), now)
        .expect("stamp beside");
    let later = now + Duration::from_millis(3_500);
    let e = t
        .admit(3, 2, ip(), req(TestKind::UdpThroughput, None, 5), later)
        .expect_err("busy")
        .clone();
    assert_eq!(e.code, ErrorCode::Busy);
    assert!(e.message.contains("busy, retry after 7 s"), "{}", e.message);
    // Its owner vanishing frees it at once.
    assert_eq!(t.release_owner(1).len(), 1);
    t.admit(3, 2, ip(), req(TestKind::UdpThroughput, None, 5), later)
        .expect("free again");
}

#[test]
fn sessions_expire_and_belong_to_their_connection() {
    let mut t = SessionTable::new(Limits::default());
    let now = Instant::now();
    t.admit(5, 1, ip(), req(TestKind::Stamp, Some(10), 2), now)
        .expect("admit");
    assert!(t.get(5, 1, now).is_ok());
    assert_eq!(t.get(5, 2, now), Err(Lookup::Unknown));
    assert_eq!(t.get(6, 1, now), Err(Lookup::Unknown));
    let past = now + Duration::from_secs(2) + SESSION_GRACE;
    assert_eq!(t.get(5, 1, past), Err(Lookup::Expired));
    assert_eq!(t.expire(past).len(), 1);
    assert!(t.is_empty());
    assert_eq!(t.get(5, 1, past), Err(Lookup::Expired));
}

#[test]
fn unknown_kinds_are_unsupported() {
    let mut t = SessionTable::new(Limits::default());
    let e = refused(&mut t, req(TestKind::Unknown, Some(10), 1), Instant::now());
    assert_eq!(e.code, ErrorCode::Unsupported);
}
