//! [`Sender::finish`]: from the kept timestamps to the report.
//!
//! Orders used: forward jitter follows the reflector's arrival order (its sequence numbers),
//! reverse jitter the sender's arrival order; forward IPDV pairs consecutive sender numbers,
//! reverse IPDV consecutive reflector numbers (RFC 5481). Delay statistics use the first reply
//! to each test packet.

use std::time::Duration;

use super::sender::{Record, Sender};
use crate::report::{A2aReport, ClockReport, DirectionReport, ScheduleErrorReport};
use crate::stats::{Distribution, InterarrivalJitter, Ipdv, SeqTracker, loss_pct};
use crate::time::{ClockMode, Nanos, OffsetEstimate, OffsetEstimator, PeerClock, decide_mode};

const NS_PER_MS: f64 = 1e6;

fn ms(ns: f64) -> f64 {
    ns / NS_PER_MS
}

fn duration_ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Delay and variation accumulators of one direction.
#[derive(Default)]
struct DelayStats {
    delay: Distribution,
    jitter: InterarrivalJitter,
    ipdv: Ipdv,
}

impl DelayStats {
    fn fill(&self, report: &mut DirectionReport) {
        report.delay_ms = self.delay.summary_ms();
        report.jitter_ms = self.jitter.jitter_ns().map(ms);
        report.ipdv_ms = self.ipdv.mean_abs_ns().map(ms);
        report.ipdv_abs_ms = self.ipdv.abs_distribution().summary_ms();
    }
}

/// The clock part of the report.
fn clock_report(
    mode: ClockMode,
    basis: &str,
    synced_error: Option<Duration>,
    est: Option<&OffsetEstimate>,
) -> ClockReport {
    let (offset_ms, error_ms, drift_ppm, note) = match mode {
        ClockMode::Shared => (
            Some(0.0),
            Some(0.0),
            None,
            "both ends run on one kernel clock",
        ),
        ClockMode::Synced => (
            Some(0.0),
            synced_error.map(duration_ms),
            None,
            "timestamps taken as measured: both clocks are synchronized to UTC; the error is the sum of both maximum errors",
        ),
        ClockMode::Estimated => (
            est.map(|e| ms(e.offset_ns)),
            est.map(|e| ms(e.error_ns)),
            est.map(|e| e.drift_ppm),
            "offset estimated from the least-delayed exchanges, assuming the minimum delay is the same both ways; one-way delays may be off by up to error_ms",
        ),
    };
    ClockReport {
        mode,
        basis: basis.to_string(),
        offset_ms,
        error_ms,
        drift_ppm,
        note: Some(note.to_string()),
    }
}

impl Sender {
    /// The clock mode, what decided it, and the error bound a synced mode allows.
    fn clock_decision(&self) -> (ClockMode, &'static str, Option<Duration>) {
        let (peer, basis) = if let Some(info) = self.peer_clock {
            (PeerClock::Known(info), "tlv")
        } else if self.peer_estimates.seen {
            let pe = self.peer_estimates;
            let max_error = if pe.invalid {
                None
            } else {
                pe.max_error_ns.map(Duration::from_nanos)
            };
            let peer = PeerClock::ErrorEstimates {
                all_synchronized: pe.all_synchronized,
                max_error,
            };
            (peer, "error_estimate")
        } else {
            (PeerClock::Unknown, "none")
        };
        let (mode, error) = decide_mode(&self.config.clock, &peer);
        match self.config.clock_mode {
            Some(forced) if forced != mode => {
                // Forced against what the peer said: only the local facts are known.
                let error = match forced {
                    ClockMode::Shared => Some(Duration::ZERO),
                    ClockMode::Synced => self.config.clock.max_error,
                    ClockMode::Estimated => None,
                };
                (forced, "configured", error)
            }
            Some(forced) => (forced, "configured", error),
            None => (mode, basis, error),
        }
    }

    /// The first reply of each test packet, as (t1, record).
    fn first_replies(&self) -> impl Iterator<Item = (Nanos, &Record)> {
        self.slots
            .iter()
            .filter_map(|s| s.first_reply().map(|i| (s.t1, &self.records[i])))
    }

    fn offset_estimate(&self) -> Option<OffsetEstimate> {
        let window = u64::try_from(self.config.offset_window.as_nanos()).unwrap_or(u64::MAX);
        let mut est = OffsetEstimator::new(window);
        for (t1, r) in self.first_replies() {
            est.add(t1, r.t2, r.t3, r.t4);
        }
        est.estimate()
    }

    /// The report of the test so far (normally called once the schedule is complete and the
    /// timeout after the last packet has passed). Replies still missing count as lost.
    pub fn finish(&self) -> A2aReport {
        let sent = u64::from(self.schedule.sent());
        let (mode, basis, synced_error) = self.clock_decision();
        let est = self.offset_estimate();
        let offset = |t: Nanos| -> Option<i64> {
            match mode {
                ClockMode::Shared | ClockMode::Synced => Some(0),
                ClockMode::Estimated => est.as_ref().map(|e| e.offset_at(t)),
            }
        };

        // Round trip.
        let mut rtt = Distribution::new();
        for (t1, r) in self.first_replies() {
            rtt.record(r.t4.since(t1).saturating_sub(r.t3.since(r.t2)));
        }

        // Reflector arrival order = reflector numbers.
        let mut by_refl: Vec<usize> = (0..self.records.len()).collect();
        by_refl.sort_by_key(|&i| self.records[i].refl_seq);

        // Forward: packet order at the reflector; delays of first replies.
        let mut fwd_order = SeqTracker::new(0);
        let mut fwd = DelayStats::default();
        for &i in &by_refl {
            let r = &self.records[i];
            fwd_order.on_packet(r.seq);
            let slot = &self.slots[r.seq as usize];
            if slot.first_reply() == Some(i)
                && let Some(off) = offset(slot.t1)
            {
                let d = r.t2.since(slot.t1).saturating_sub(off);
                fwd.delay.record(d);
                fwd.jitter.on_transit(d);
            }
        }
        for (seq, slot) in self.slots.iter().enumerate() {
            if let (Some(i), Some(off)) = (slot.first_reply(), offset(slot.t1)) {
                let d = self.records[i].t2.since(slot.t1).saturating_sub(off);
                fwd.ipdv.on_delay(seq as u64, d);
            }
        }

        // Reverse: every distinct reflector packet, in local arrival order for jitter.
        let mut rev = DelayStats::default();
        let rev_delay = |r: &Record| offset(r.t4).map(|off| r.t4.since(r.t3).saturating_add(off));
        for r in &self.records {
            if let Some(d) = rev_delay(r) {
                rev.delay.record(d);
                rev.jitter.on_transit(d);
            }
        }
        for &i in &by_refl {
            let r = &self.records[i];
            if let Some(d) = rev_delay(r) {
                rev.ipdv.on_delay(u64::from(r.refl_seq), d);
            }
        }

        // Loss split from the reflector's numbers.
        let reflected = self.max_refl_seq.map_or(0, |m| u64::from(m) + 1);
        let reached = reflected.saturating_sub(fwd_order.duplicates());
        let split_known = self.reverse.stale() == 0 && reached <= sent;
        let mut forward = DirectionReport {
            sent,
            received: reached,
            duplicates: fwd_order.duplicates(),
            reordered: fwd_order.reordered(),
            ..DirectionReport::default()
        };
        let mut reverse = DirectionReport {
            sent: reflected,
            received: self.reverse.unique(),
            duplicates: self.reverse.duplicates(),
            reordered: self.reverse.reordered(),
            ..DirectionReport::default()
        };
        if split_known {
            let fwd_lost = sent - reached;
            let rev_lost = reflected.saturating_sub(self.reverse.unique());
            forward.lost = Some(fwd_lost);
            forward.loss_pct = loss_pct(fwd_lost, sent);
            reverse.lost = Some(rev_lost);
            reverse.loss_pct = loss_pct(rev_lost, reflected);
        }
        fwd.fill(&mut forward);
        rev.fill(&mut reverse);

        let lost = sent.saturating_sub(self.received);
        A2aReport {
            peer: self.config.peer.clone(),
            ssid: self.config.ssid,
            size: self.config.size,
            interval_ms: duration_ms(self.config.interval),
            duration_s: self.schedule.send_span_ns() as f64 / 1e9,
            sent,
            received: self.received,
            lost,
            loss_pct: loss_pct(lost, sent),
            late: self.late,
            ignored: self.ignored,
            pps: self.schedule.achieved_pps(),
            rtt_ms: rtt.summary_ms(),
            forward,
            reverse,
            clock: clock_report(mode, basis, synced_error, est.as_ref()),
            timestamps: self.config.timestamps,
            schedule_error_us: ScheduleErrorReport {
                mean: self.schedule.error_mean_us(),
                max: self.schedule.error_max_us(),
            },
        }
    }
}
