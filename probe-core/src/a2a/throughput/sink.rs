//! The far end's counting receiver of a negotiated `to` test: registered with the
//! [`Admission`](crate::a2a::Admission) registry under its session id, fed by the STAMP
//! responder's socket threads, which count throughput datagrams and never reflect them.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::counter::ThroughputCounter;
use super::packet;
use crate::a2a::Admission;
use crate::report::udp_throughput::ReceiverCounts;
use crate::time::Nanos;

/// One negotiated session's counting receiver.
#[derive(Debug)]
pub struct ThroughputSink {
    client: IpAddr,
    counter: Mutex<ThroughputCounter>,
}

impl ThroughputSink {
    /// A receiver for the datagrams of `client` (its address as the control plane saw it),
    /// with interval rows `interval` wide.
    pub fn new(client: IpAddr, interval: Option<Duration>) -> Self {
        ThroughputSink {
            client: client.to_canonical(),
            counter: Mutex::new(ThroughputCounter::new(interval)),
        }
    }

    fn counter(&self) -> std::sync::MutexGuard<'_, ThroughputCounter> {
        self.counter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The counts so far.
    pub fn snapshot(&self) -> ReceiverCounts {
        self.counter().snapshot()
    }
}

/// What a socket thread did with a throughput datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counted {
    /// Counted for its session.
    Counted,
    /// No such session here, or it came from another address than the client's: dropped.
    Dropped,
}

/// A socket thread's handle on the registry: remembers the last session it counted for, so
/// a flood takes the registry's lock only when its session changes.
#[derive(Debug, Default)]
pub struct SinkCache {
    last: Option<(u64, Arc<ThroughputSink>)>,
}

impl SinkCache {
    /// Counts `bytes` (a throughput datagram, see [`packet::is_throughput`]) from `src`
    /// received at `rx` for its session in `admission`.
    pub fn count(
        &mut self,
        admission: Option<&Admission>,
        bytes: &[u8],
        src: IpAddr,
        rx: Nanos,
    ) -> Counted {
        let Some(h) = packet::parse(bytes) else {
            return Counted::Dropped;
        };
        let cached = matches!(&self.last, Some((id, _)) if *id == h.session);
        if !cached {
            self.last = admission
                .and_then(|a| a.lookup_throughput(h.session))
                .map(|s| (h.session, s));
        }
        match &self.last {
            Some((_, sink)) if sink.client == src.to_canonical() => {
                sink.counter().on_datagram(&h, bytes.len(), rx);
                Counted::Counted
            }
            _ => Counted::Dropped,
        }
    }

    /// Forgets the cached session (it may have ended).
    pub fn clear(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::a2a::throughput::packet::{Header, write};

    #[test]
    fn only_the_registered_client_is_counted() {
        let admission = Admission::new(false);
        let client: IpAddr = "192.0.2.5".parse().expect("ip");
        let sink = Arc::new(ThroughputSink::new(client, None));
        admission.register_throughput(7, Arc::clone(&sink));
        let mut buf = [0_u8; 64];
        let mut cache = SinkCache::default();
        let mut send = |session, seq, src: &str| {
            let h = Header {
                session,
                seq,
                sent_ns: None,
            };
            let n = write(&mut buf, 64, &h).expect("fits");
            cache.count(
                Some(&admission),
                &buf[..n],
                src.parse().expect("ip"),
                Nanos(1),
            )
        };
        assert_eq!(send(7, 0, "192.0.2.5"), Counted::Counted);
        assert_eq!(send(7, 1, "::ffff:192.0.2.5"), Counted::Counted);
        assert_eq!(send(7, 2, "192.0.2.6"), Counted::Dropped);
        assert_eq!(send(8, 3, "192.0.2.5"), Counted::Dropped);
        assert_eq!(sink.snapshot().received, 2);
        admission.unregister_throughput(7);
        let mut fresh = SinkCache::default();
        let n = write(
            &mut buf,
            64,
            &Header {
                session: 7,
                seq: 4,
                sent_ns: None,
            },
        )
        .expect("fits");
        let ip = "192.0.2.5".parse().expect("ip");
        assert_eq!(
            fresh.count(Some(&admission), &buf[..n], ip, Nanos(2)),
            Counted::Dropped
        );
        assert_eq!(fresh.count(None, &buf[..n], ip, Nanos(2)), Counted::Dropped);
    }
}
