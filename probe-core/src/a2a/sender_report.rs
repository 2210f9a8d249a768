//! [`Sender::finish`]: from the streaming statistics to the report.
//!
//! Orders used: forward jitter follows the reflector's arrival order (its sequence numbers),
//! reverse jitter the sender's arrival order; forward IPDV pairs consecutive sender numbers,
//! reverse IPDV consecutive reflector numbers (RFC 5481). Forward delay statistics use the
//! first reply to each test packet, reverse ones every distinct reflector packet. One-way
//! delays are shifted here from the provisional to the final clock offset (see the
//! [`sender`](super::sender) module documentation).

use std::time::Duration;

use super::sender::Sender;
use super::sender_state::DelayStats;
use crate::report::{A2aReport, ClockBasis, ClockReport, DirectionReport, ScheduleErrorReport};
use crate::stats::{InterarrivalJitter, loss_pct};
use crate::time::{ClockMode, OffsetEstimate, PeerClock, decide_mode};

const NS_PER_MS: f64 = 1e6;

fn ms(ns: f64) -> f64 {
    ns / NS_PER_MS
}

fn duration_ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Fills `report` from `stats`, shifting the delays by `shift_ns`; the jitter is the given one
/// (forward jitter runs in the reflector's order, outside `stats`).
fn fill(
    report: &mut DirectionReport,
    stats: &DelayStats,
    jitter: &InterarrivalJitter,
    shift_ns: f64,
) {
    report.delay_ms = stats.delay.summary_ms().map(|s| s.shifted(ms(shift_ns)));
    report.jitter_ms = jitter.jitter_ns().map(ms);
    report.ipdv_ms = stats.ipdv.mean_abs_ns().map(ms);
    report.ipdv_abs_ms = stats.ipdv.abs_distribution().summary_ms();
}

/// The clock part of the report.
fn clock_report(
    mode: ClockMode,
    basis: ClockBasis,
    synced_error: Option<Duration>,
    est: Option<&OffsetEstimate>,
    drift_residual_ns: f64,
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
            est.map(|e| ms(e.error_ns + drift_residual_ns)),
            est.map(|e| e.drift_ppm),
            "offset estimated from the least-delayed exchanges, assuming the minimum delay is the same both ways; one-way delays may be off by up to error_ms",
        ),
    };
    ClockReport {
        mode,
        basis,
        offset_ms,
        error_ms,
        drift_ppm,
        note: Some(note.to_string()),
    }
}

impl Sender {
    /// The clock mode, what decided it, and the error bound a synced mode allows.
    fn clock_decision(&self) -> (ClockMode, ClockBasis, Option<Duration>) {
        let (peer, basis) = if let Some(info) = self.peer_clock {
            let basis = if self.peer_clock_control {
                ClockBasis::Control
            } else {
                ClockBasis::Tlv
            };
            (PeerClock::Known(info), basis)
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
            (peer, ClockBasis::ErrorEstimate)
        } else {
            (PeerClock::Unknown, ClockBasis::None)
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
                (forced, ClockBasis::Configured, error)
            }
            Some(forced) => (forced, ClockBasis::Configured, error),
            None => (mode, basis, error),
        }
    }

    /// The report of the test so far (normally called once the schedule is complete and the
    /// timeout after the last packet has passed). Replies still missing count as lost.
    pub fn finish(&self) -> A2aReport {
        let sent = u64::from(self.schedule.sent());
        let (mode, basis, synced_error) = self.clock_decision();
        let est = self.offset.estimate();
        // The final offset (peer minus local) and how far the recorded delays are from it.
        let final_offset = match mode {
            ClockMode::Shared | ClockMode::Synced => Some(0.0),
            ClockMode::Estimated => est.as_ref().map(|e| e.offset_ns),
        };
        let prov = self.provisional.unwrap_or(0) as f64;
        // Drift is not removed per packet: its largest effect over the test joins the bound.
        let drift_residual_ns = match (&est, self.answered_span) {
            (Some(e), Some((first, last))) if mode == ClockMode::Estimated => {
                let far = first
                    .since(e.reference)
                    .abs()
                    .max(last.since(e.reference).abs());
                e.drift_ppm.abs() * 1e-6 * far as f64
            }
            _ => 0.0,
        };

        let mut order = self.refl_order.clone();
        order.flush();

        // Loss split from the reflector's numbers.
        let reflected = self.max_refl_seq.map_or(0, |m| u64::from(m) + 1);
        let reached = reflected.saturating_sub(order.fwd_order.duplicates());
        let split_known = self.reverse.stale() == 0 && reached <= sent;
        let mut forward = DirectionReport {
            sent,
            received: reached,
            duplicates: order.fwd_order.duplicates(),
            reordered: order.fwd_order.reordered(),
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
        if let Some(off) = final_offset {
            fill(&mut forward, &self.fwd, &order.fwd_jitter, prov - off);
            let mut rev = self.rev.clone();
            rev.ipdv = order.rev_ipdv.clone();
            fill(&mut reverse, &rev, &self.rev.jitter, off - prov);
        }

        let lost = sent.saturating_sub(self.received);
        let sched = &self.schedule;
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
            rtt_ms: self.rtt.summary_ms(),
            rtt_user_ms: self.rtt_user.summary_ms(),
            forward,
            reverse,
            clock: clock_report(mode, basis, synced_error, est.as_ref(), drift_residual_ns),
            timestamps: self.config.timestamps,
            schedule_error_us: ScheduleErrorReport {
                mean: sched.error_mean_us(),
                p50: sched.error_quantile_us(0.5),
                p99: sched.error_quantile_us(0.99),
                max: sched.error_max_us(),
            },
            intervals: Vec::new(),
            voice: None,
            authenticated: self.config.key.is_some(),
            auth_failed: self.auth_failed,
            timeline: None,
        }
    }
}
