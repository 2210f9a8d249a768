//! Per-hop and per-responder statistics across rounds (mtr report semantics).

use std::net::IpAddr;

use super::rtt::RttSamples;
use crate::report::trace::{HopReport, MplsLabel, ResponderReport};
use crate::wire::answer::Answer;
use crate::wire::mpls::MplsEntry;

/// What one address answering at a hop has told us.
#[derive(Clone, Debug)]
pub(crate) struct ResponderStats {
    /// The address.
    pub addr: IpAddr,
    /// Answers received.
    pub received: u64,
    /// RTT samples (ns).
    pub rtt: RttSamples,
    /// Latest RTT (ns).
    pub last_rtt_ns: Option<i64>,
    /// Sum of `|rtt_n - rtt_(n-1)|` over consecutive answers (ns).
    jitter_sum_ns: f64,
    /// Number of differences summed.
    jitter_count: u64,
    /// Largest difference (ns).
    jitter_max_ns: i64,
    /// Distinct label stacks seen.
    pub mpls: Vec<Vec<MplsEntry>>,
    /// The latest answer (kind, ICMP type/code, TTLs).
    pub last_answer: Answer,
    /// A quote showed our source rewritten.
    pub nat: bool,
}

impl ResponderStats {
    /// A responder first heard from with `first` (not yet recorded).
    fn new(first: &Answer) -> Self {
        ResponderStats {
            addr: first.from,
            received: 0,
            rtt: RttSamples::new(),
            last_rtt_ns: None,
            jitter_sum_ns: 0.0,
            jitter_count: 0,
            jitter_max_ns: 0,
            mpls: Vec::new(),
            last_answer: first.clone(),
            nat: false,
        }
    }

    fn record(&mut self, a: &Answer, rtt_ns: i64, nat: bool) {
        self.received += 1;
        self.rtt.record(rtt_ns);
        if let Some(prev) = self.last_rtt_ns {
            let d = (rtt_ns - prev).abs();
            self.jitter_sum_ns += d as f64;
            self.jitter_count += 1;
            self.jitter_max_ns = self.jitter_max_ns.max(d);
        }
        self.last_rtt_ns = Some(rtt_ns);
        if !a.mpls.is_empty() && !self.mpls.contains(&a.mpls) {
            self.mpls.push(a.mpls.clone());
        }
        self.nat |= nat;
        self.last_answer.clone_from(a);
    }

    /// Mean absolute difference of consecutive RTTs in ns (mtr Javg), if two answers came.
    pub(crate) fn jitter_ns(&self) -> Option<f64> {
        (self.jitter_count > 0).then(|| self.jitter_sum_ns / self.jitter_count as f64)
    }

    /// The report entry; `sent` and `loss_pct` are the hop's.
    pub(crate) fn to_report(&self, sent: u64, loss_pct: f64) -> ResponderReport {
        let ms = |ns: i64| ns as f64 / 1e6;
        let a = &self.last_answer;
        ResponderReport {
            addr: self.addr,
            hostname: None,
            sent,
            received: self.received,
            loss_pct,
            rtt_ms: self.rtt.summary_ms(),
            last_ms: self.last_rtt_ns.map(ms),
            jitter_ms: self.jitter_ns().map(|j| j / 1e6),
            jitter_max_ms: (self.jitter_count > 0).then(|| ms(self.jitter_max_ns)),
            mpls: self
                .mpls
                .iter()
                .map(|s| {
                    s.iter()
                        .map(|e| MplsLabel {
                            label: e.label,
                            tc: e.tc,
                            s: e.bottom,
                            ttl: e.ttl,
                        })
                        .collect()
                })
                .collect(),
            kind: a.kind.into(),
            icmp_type: a.icmp_type_code.map(|t| t.0),
            icmp_code: a.icmp_type_code.map(|t| t.1),
            nat: self.nat,
            quoted_ttl: a.quote.map(|q| q.ttl),
            reply_ttl: a.reply_ttl,
        }
    }
}

/// Everything known about one TTL.
#[derive(Clone, Debug)]
pub(crate) struct HopStats {
    /// The TTL.
    pub ttl: u8,
    /// Probes sent with this TTL.
    pub sent: u64,
    /// Probes that timed out.
    pub lost: u64,
    /// Responders in order of first answer.
    pub responders: Vec<ResponderStats>,
}

impl HopStats {
    /// An empty hop.
    pub(crate) fn new(ttl: u8) -> Self {
        HopStats {
            ttl,
            sent: 0,
            lost: 0,
            responders: Vec::new(),
        }
    }

    /// Counts a probe sent.
    pub(crate) fn record_sent(&mut self) {
        self.sent += 1;
    }

    /// Counts a probe that will never be answered (timed out).
    pub(crate) fn record_lost(&mut self) {
        self.lost += 1;
    }

    /// Forgets a probe that was sent but is no longer wanted (beyond the target).
    pub(crate) fn unrecord_sent(&mut self) {
        self.sent = self.sent.saturating_sub(1);
    }

    /// Records an answer with its RTT; `nat` when its quote showed our source rewritten.
    pub(crate) fn record_answer(&mut self, a: &Answer, rtt_ns: i64, nat: bool) {
        let i = if let Some(i) = self.responders.iter().position(|r| r.addr == a.from) {
            i
        } else {
            self.responders.push(ResponderStats::new(a));
            self.responders.len() - 1
        };
        self.responders[i].record(a, rtt_ns, nat);
    }

    /// Answers received from all responders.
    pub(crate) fn received(&self) -> u64 {
        self.responders.iter().map(|r| r.received).sum()
    }

    /// Loss in percent over probes whose fate is known (answered or timed out).
    pub(crate) fn loss_pct(&self) -> f64 {
        let done = self.received() + self.lost;
        if done == 0 {
            0.0
        } else {
            100.0 * self.lost as f64 / done as f64
        }
    }

    /// The report entry.
    pub(crate) fn to_report(&self) -> HopReport {
        let loss = self.loss_pct();
        HopReport {
            ttl: self.ttl,
            sent: self.sent,
            received: self.received(),
            loss_pct: loss,
            responders: self
                .responders
                .iter()
                .map(|r| r.to_report(self.sent, loss))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::answer::AnswerKind;
    use crate::wire::icmp::IcmpKind;

    fn answer(from: &str, mpls: Vec<MplsEntry>) -> Answer {
        Answer {
            from: from.parse().expect("addr"),
            reply_ttl: Some(254),
            kind: AnswerKind::Icmp(IcmpKind::TimeExceeded { code: 0 }),
            icmp_type_code: Some((11, 0)),
            quote: None,
            mpls,
        }
    }

    #[test]
    fn stats_jitter_loss_and_responders() {
        let mut h = HopStats::new(3);
        let stack = vec![MplsEntry {
            label: 16,
            tc: 0,
            bottom: true,
            ttl: 1,
        }];
        for _ in 0..5 {
            h.record_sent();
        }
        // RTTs 1, 3, 2 ms from A (diffs 2 and 1 ms), 7 ms from B, one probe lost.
        h.record_answer(&answer("10.0.0.1", stack.clone()), 1_000_000, false);
        h.record_answer(&answer("10.0.0.1", stack.clone()), 3_000_000, false);
        h.record_answer(&answer("10.0.0.2", Vec::new()), 7_000_000, true);
        h.record_answer(&answer("10.0.0.1", stack.clone()), 2_000_000, false);
        h.record_lost();
        let r = h.to_report();
        assert_eq!((r.sent, r.received), (5, 4));
        assert!((r.loss_pct - 20.0).abs() < 1e-9);
        assert_eq!(r.responders.len(), 2);
        let a = &r.responders[0];
        assert_eq!(a.received, 3);
        assert_eq!(a.sent, 5);
        let rtt = a.rtt_ms.expect("rtt");
        assert!((rtt.min - 1.0).abs() < 1e-9 && (rtt.max - 3.0).abs() < 1e-9);
        assert!((rtt.mean - 2.0).abs() < 1e-9);
        assert_eq!(a.last_ms, Some(2.0));
        assert_eq!(a.jitter_ms, Some(1.5));
        assert_eq!(a.jitter_max_ms, Some(2.0));
        assert_eq!(a.mpls.len(), 1, "the same stack is listed once");
        assert_eq!(a.kind, crate::wire::reply_kind::ReplyKind::TimeExceeded);
        assert_eq!((a.icmp_type, a.icmp_code), (Some(11), Some(0)));
        assert!(!a.nat);
        let b = &r.responders[1];
        assert!(b.nat);
        assert_eq!(b.jitter_ms, None);
        assert_eq!(b.reply_ttl, Some(254));
    }
}
