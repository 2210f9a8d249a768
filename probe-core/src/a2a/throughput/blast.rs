//! The IO of a UDP throughput test on a [`PolledSocket`], for a thread of its own: the
//! sender (batches of numbered datagrams by `sendmmsg`, UDP segmentation when the route
//! allows it, paced to a rate or as fast as the kernel takes them), the counting receive
//! loop of the near end, and the far end's wait for the near end's punch.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::counter::ThroughputCounter;
use super::packet::{self, HEADER_LEN, Header};
use crate::control::negotiation::is_punch;
use crate::io::{PolledSocket, RecvBatch, SendBatch, SendOptions};
use crate::report::udp_throughput::{ReceiverCounts, SenderCounts};
use crate::time::Nanos;

/// Datagrams per `sendmmsg` / `recvmmsg`.
const BATCH: usize = 64;
/// How long one batch may wait for send-buffer space before its rest counts as refused.
const SEND_PATIENCE: Duration = Duration::from_millis(200);
/// Longest sleep of a paced sender or an idle receiver between checks of its stop flag.
const POLL_MS: u16 = 20;
/// Below this, a paced sender yields instead of sleeping (timer wake-ups are coarser).
const SPIN_BELOW: Duration = Duration::from_micros(60);
/// How long past its planned time a paced sender may take to send the datagrams due by then
/// (a late wake-up at the end must not cut the last ones off).
const PACED_GRACE: Duration = Duration::from_secs(1);

/// What a sender sends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlastPlan {
    /// Where to.
    pub dst: SocketAddr,
    /// The negotiated session id carried by every datagram.
    pub session: u64,
    /// UDP payload size, octets (at least [`HEADER_LEN`]).
    pub size: usize,
    /// Datagrams per second; `None` for as fast as the kernel takes them.
    pub rate_pps: Option<f64>,
    /// How long to send. A paced plan sends the datagrams due by then (`rate × duration`,
    /// or `count` if fewer), taking up to a second longer when wake-ups come late.
    pub duration: Duration,
    /// Most datagrams to send, if limited by count too.
    pub count: Option<u64>,
    /// Every how many datagrams one carries its send time (at least 1).
    pub sample_every: u64,
}

/// Datagrams due by `elapsed` at `rate` per second (the first is due at once).
pub fn due(rate_pps: f64, elapsed: Duration) -> u64 {
    (elapsed.as_secs_f64() * rate_pps).floor() as u64 + 1
}

/// When datagram `n` (from 0) is due at `rate` per second, after the start.
fn due_at(rate_pps: f64, n: u64) -> Duration {
    Duration::from_secs_f64(n as f64 / rate_pps)
}

/// Sends `plan` on `sock` until its duration or count is reached or `stop` is set.
pub fn blast(sock: &PolledSocket, plan: &BlastPlan, stop: &AtomicBool) -> SenderCounts {
    let size = plan.size.max(HEADER_LEN);
    let mut batch = SendBatch::new(BATCH, size);
    // One segmented message per batch: in the testbed the far end received clearly more
    // than with a message per datagram (the sender leaves the shared cores to the receiver).
    batch.set_segmentation(true);
    let every = plan.sample_every.max(1);
    let rate = plan.rate_pps.filter(|r| *r > 0.0 && r.is_finite());
    let (mut limit, mut cutoff) = (plan.count.unwrap_or(u64::MAX), plan.duration);
    if let Some(r) = rate {
        limit = limit.min((plan.duration.as_secs_f64() * r).ceil() as u64);
        cutoff += PACED_GRACE;
    }
    let mut out = SenderCounts::default();
    let mut seq = 0_u64;
    let start = Instant::now();
    let mut last_send = start;
    while seq < limit && !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let elapsed = now - start;
        if elapsed >= cutoff {
            break;
        }
        let mut want = BATCH as u64;
        if let Some(r) = rate {
            let due = due(r, elapsed).min(limit);
            if due <= seq {
                let wait = due_at(r, seq).saturating_sub(elapsed);
                if wait > SPIN_BELOW {
                    std::thread::sleep(wait.min(Duration::from_millis(u64::from(POLL_MS))));
                } else {
                    std::thread::yield_now();
                }
                continue;
            }
            want = want.min(due - seq);
        }
        want = want.min(limit - seq);
        let stamp = Nanos::now_realtime().0;
        for _ in 0..want {
            let h = Header {
                session: plan.session,
                seq,
                sent_ns: seq.is_multiple_of(every).then_some(stamp),
            };
            batch.push_with(plan.dst, SendOptions::default(), |buf| {
                packet::write(buf, size, &h)
            });
            seq += 1;
        }
        let report = sock.send_batch(&mut batch, SEND_PATIENCE);
        batch.clear();
        last_send = Instant::now();
        out.sent += report.sent as u64;
        out.send_failed += report.failed as u64;
        if let Some(e) = report.first_error
            && out.first_error.is_none()
        {
            out.first_error = Some(e.to_string());
        }
    }
    out.bytes = out.sent * size as u64;
    out.elapsed_ns = u64::try_from((last_send - start).as_nanos()).unwrap_or(u64::MAX);
    out
}

/// Counts the datagrams of `session` from `peer` arriving on `sock` until `stop` is set or
/// `deadline` passes; interval rows `interval` wide.
pub fn receive(
    sock: &PolledSocket,
    session: u64,
    peer: IpAddr,
    interval: Option<Duration>,
    stop: &AtomicBool,
    deadline: Instant,
) -> ReceiverCounts {
    let mut counter = ThroughputCounter::new(interval);
    let mut rx = RecvBatch::new(BATCH, 2048);
    let peer = peer.to_canonical();
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let n = match sock.try_recv_batch(&mut rx) {
            Ok(n) if n > 0 => n,
            Ok(_) => {
                sock.wait_readable(POLL_MS);
                continue;
            }
            Err(e) => {
                if e.kind() != std::io::ErrorKind::WouldBlock {
                    tracing::debug!("throughput receive: {e}");
                }
                sock.wait_readable(POLL_MS);
                continue;
            }
        };
        for (bytes, meta) in rx.iter().take(n) {
            let from_peer = meta.source.is_some_and(|s| s.ip().to_canonical() == peer);
            if let Some(h) = packet::parse(bytes).filter(|h| h.session == session && from_peer) {
                counter.on_datagram(&h, meta.len, meta.time);
            }
        }
    }
    counter.snapshot()
}

/// Waits on `sock` up to `wait` for the punch of `session` from `client`; the address it
/// came from (the client's NAT mapping), or `None` (no punch, or `stop` set).
pub fn wait_punch(
    sock: &PolledSocket,
    session: u64,
    client: IpAddr,
    wait: Duration,
    stop: &AtomicBool,
) -> Option<SocketAddr> {
    let give_up = Instant::now() + wait;
    let mut rx = RecvBatch::new(8, 64);
    let client = client.to_canonical();
    while Instant::now() < give_up && !stop.load(Ordering::Relaxed) {
        match sock.try_recv_batch(&mut rx) {
            Ok(n) if n > 0 => {
                for (bytes, meta) in rx.iter().take(n) {
                    if let Some(src) = meta.source
                        && src.ip().to_canonical() == client
                        && is_punch(bytes, session)
                    {
                        return Some(SocketAddr::new(src.ip().to_canonical(), src.port()));
                    }
                }
            }
            _ => {
                sock.wait_readable(POLL_MS);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::negotiation::punch;
    use crate::io::SocketOptions;

    #[test]
    fn due_counts_from_one_at_the_start() {
        assert_eq!(due(1000.0, Duration::ZERO), 1);
        assert_eq!(due(1000.0, Duration::from_micros(999)), 1);
        assert_eq!(due(1000.0, Duration::from_millis(1)), 2);
        assert_eq!(due(1e6, Duration::from_millis(10)), 10_001);
        assert_eq!(due_at(1000.0, 3), Duration::from_millis(3));
    }

    fn bind() -> PolledSocket {
        let opts = SocketOptions {
            recv_buffer: Some(4 << 20),
            ..SocketOptions::default()
        };
        PolledSocket::bind_udp("127.0.0.1:0".parse().expect("literal"), &opts).expect("bind")
    }

    #[test]
    fn a_paced_blast_on_loopback_is_counted_whole() {
        let (tx, rx) = (bind(), bind());
        let dst = rx.local_addr().expect("address");
        let plan = BlastPlan {
            dst,
            session: 42,
            size: 100,
            rate_pps: Some(20_000.0),
            duration: Duration::from_secs(5),
            count: Some(2_000),
            sample_every: 50,
        };
        let stop = AtomicBool::new(false);
        let counts = std::thread::scope(|s| {
            let r = s.spawn(|| {
                receive(
                    &rx,
                    42,
                    "127.0.0.1".parse().expect("ip"),
                    Some(Duration::from_millis(20)),
                    &stop,
                    Instant::now() + Duration::from_secs(10),
                )
            });
            let sent = blast(&tx, &plan, &AtomicBool::new(false));
            std::thread::sleep(Duration::from_millis(100));
            stop.store(true, Ordering::Relaxed);
            (sent, r.join().expect("receiver"))
        });
        let (sent, got) = counts;
        assert_eq!(sent.sent + sent.send_failed, 2_000, "{sent:?}");
        assert_eq!(sent.bytes, sent.sent * 100);
        // 2000 at 20 000/s: about 0.1 s.
        let secs = sent.elapsed_ns as f64 / 1e9;
        assert!((0.08..0.5).contains(&secs), "{secs} s");
        assert_eq!(got.unique, sent.sent, "loopback loses nothing: {got:?}");
        assert_eq!(got.bytes, got.received * 100);
        assert_eq!(got.owd_samples, 2_000 / 50);
        assert!(got.owd_raw_ms.expect("samples").min >= 0.0);
        assert!(got.intervals.len() >= 4, "{:?}", got.intervals);
    }

    #[test]
    fn the_punch_of_the_session_is_found_and_others_ignored() {
        let (far, near) = (bind(), bind());
        let to = far.local_addr().expect("address");
        let near_addr = near.local_addr().expect("address");
        near.socket()
            .send_to(&punch(8), &to.into())
            .expect("send a wrong punch");
        near.socket()
            .send_to(&punch(7), &to.into())
            .expect("send the punch");
        let stop = AtomicBool::new(false);
        let got = wait_punch(
            &far,
            7,
            "127.0.0.1".parse().expect("ip"),
            Duration::from_secs(2),
            &stop,
        );
        assert_eq!(got, Some(near_addr));
        let none = wait_punch(
            &far,
            7,
            "127.0.0.1".parse().expect("ip"),
            Duration::from_millis(50),
            &stop,
        );
        assert_eq!(none, None);
    }
}
