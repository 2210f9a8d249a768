//! The voice profile of an A2A test: each reply feeds an emulated jitter buffer per direction
//! (forward: `t1` to `t2`, reverse: `t3` to `t4`, on the clock offset the sender estimated
//! when the reply came), and the report gets a G.107 E-model rating per direction.

use crate::report::{A2aReport, DirectionReport, VoiceDirection, VoiceReport};
use crate::stats::emodel::{Codec, mos_from_r, r_factor};
use crate::stats::{JitterBuffer, JitterBufferMode};
use crate::time::Nanos;

/// The settings of the voice profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VoiceConfig {
    /// The codec whose packets the stream imitates and whose constants the E-model takes.
    pub codec: Codec,
    /// The emulated playout buffer.
    pub jitter_buffer: JitterBufferMode,
}

impl VoiceConfig {
    /// UDP payload size of the test packets: the codec's RTP packet (12-octet header plus
    /// payload), at least the STAMP minimum (G.711: 172, G.729: 44 for 32).
    pub fn packet_size(&self) -> usize {
        self.codec
            .rtp_packet_bytes()
            .max(crate::wire::stamp::BASE_LEN)
    }
}

/// One jitter buffer per direction, fed as replies arrive (constant memory).
#[derive(Clone, Debug)]
pub struct VoiceMonitor {
    cfg: VoiceConfig,
    forward: JitterBuffer,
    reverse: JitterBuffer,
    /// Whether the reflector numbers this session's packets itself (a stateful reflector:
    /// its number never exceeds ours), decided at the first reply. Otherwise the reverse
    /// stream goes by our numbers.
    reflector_numbering: Option<bool>,
}

fn ns(t: Nanos) -> i64 {
    i64::try_from(t.0).unwrap_or(i64::MAX)
}

impl VoiceMonitor {
    /// Empty buffers.
    pub fn new(cfg: VoiceConfig) -> Self {
        VoiceMonitor {
            cfg,
            forward: JitterBuffer::new(cfg.jitter_buffer),
            reverse: JitterBuffer::new(cfg.jitter_buffer),
            reflector_numbering: None,
        }
    }

    /// A reply to test packet `seq` sent at `t1`, reflected as `reflector_seq`, received at
    /// `rx`, with one-way delays `fwd_ns` and `rev_ns` on the sender's clock offset. A
    /// packet the network duplicated forward feeds only the reverse stream.
    pub fn on_reply(
        &mut self,
        seq: u32,
        reflector_seq: u32,
        forward_duplicate: bool,
        t1: Nanos,
        (fwd_ns, rev_ns): (i64, i64),
        rx: Nanos,
    ) {
        if !forward_duplicate {
            let sent = ns(t1);
            self.forward
                .on_packet(u64::from(seq), sent, sent.saturating_add(fwd_ns));
        }
        let arrived = ns(rx);
        let own = *self.reflector_numbering.get_or_insert(reflector_seq <= seq);
        self.reverse.on_packet(
            u64::from(if own { reflector_seq } else { seq }),
            arrived.saturating_sub(rev_ns),
            arrived,
        );
    }

    /// The voice section of `report` (the A2A report of the same test).
    pub fn report(&self, report: &A2aReport) -> VoiceReport {
        let rtt_half = report.rtt_ms.map(|s| s.mean / 2.0);
        VoiceReport {
            codec: self.cfg.codec,
            jitter_buffer: self.cfg.jitter_buffer.to_string(),
            forward: self.direction(&self.forward, &report.forward, rtt_half),
            reverse: self.direction(&self.reverse, &report.reverse, rtt_half),
        }
    }

    fn direction(
        &self,
        jb: &JitterBuffer,
        dir: &DirectionReport,
        rtt_half: Option<f64>,
    ) -> VoiceDirection {
        let st = jb.stats(dir.sent);
        // The A2A report's split of the loss when it has one; otherwise what did not
        // come back at all.
        let loss_pct = dir
            .loss_pct
            .or_else(|| (st.expected > 0).then(|| 100.0 * st.lost as f64 / st.expected as f64));
        let discard_pct = st.discard_pct();
        let delay_ms = dir.delay_ms.map(|s| s.mean).or(rtt_half);
        let mouth_to_ear_ms = delay_ms
            .zip(st.mean_wait_ms)
            .map(|(d, w)| d + w + self.cfg.codec.codec_delay_ms());
        let ppl_pct = loss_pct.map(|l| (l + discard_pct).min(100.0));
        let burst_r = st.burst_r();
        let r = mouth_to_ear_ms
            .zip(ppl_pct)
            .map(|(m, p)| r_factor(self.cfg.codec, m, p, burst_r));
        VoiceDirection {
            loss_pct,
            discards: st.discarded,
            discard_pct,
            delay_ms,
            pdv_ms: dir.delay_ms.map(|s| s.p99 - s.min),
            jitter_buffer_ms: st.mean_wait_ms,
            mouth_to_ear_ms,
            ppl_pct,
            burst_r,
            r_factor: r,
            mos: r.map(mos_from_r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Distribution, emodel};

    const MS: i64 = 1_000_000;

    #[test]
    fn replies_rate_each_direction() {
        let cfg = VoiceConfig {
            codec: Codec::G711,
            jitter_buffer: JitterBufferMode::Fixed { ms: 20 },
        };
        assert_eq!(cfg.packet_size(), 172);
        let g729 = VoiceConfig {
            codec: Codec::G729,
            ..cfg
        };
        assert_eq!(g729.packet_size(), 44);
        let mut m = VoiceMonitor::new(cfg);
        let mut fwd = Distribution::default();
        let mut rev = Distribution::default();
        // 100 packets every 20 ms; forward packets 10, 20, ... 90 lost; forward transit
        // 10 ms, every fourth 40 ms (late for a 20 ms buffer); reverse 10 ms flat.
        let mut refl = 0;
        for seq in 0..100_u32 {
            if seq % 10 == 0 && seq > 0 {
                continue;
            }
            let t1 = Nanos(1_000_000_000 + u64::from(seq) * 20_000_000);
            let f = if seq % 4 == 3 { 40 * MS } else { 10 * MS };
            let rx = t1.saturating_add_ns(f + 10 * MS);
            m.on_reply(seq, refl, false, t1, (f, 10 * MS), rx);
            fwd.record(f);
            rev.record(10 * MS);
            refl += 1;
        }
        let fwd_dir = DirectionReport {
            sent: 100,
            loss_pct: Some(9.0),
            delay_ms: fwd.summary_ms(),
            ..DirectionReport::default()
        };
        let rev_dir = DirectionReport {
            sent: 91,
            loss_pct: Some(0.0),
            delay_ms: rev.summary_ms(),
            ..DirectionReport::default()
        };
        let v = VoiceReport {
            codec: cfg.codec,
            jitter_buffer: cfg.jitter_buffer.to_string(),
            forward: m.direction(&m.forward, &fwd_dir, None),
            reverse: m.direction(&m.reverse, &rev_dir, None),
        };
        assert_eq!(
            (v.codec.name(), v.jitter_buffer.as_str()),
            ("g711", "fixed:20")
        );
        // Late forward packets: seq % 4 == 3 (40 ms > 10 ms + 20 ms), all 25 of them arrived
        // (none is a multiple of 10).
        assert_eq!(v.forward.discards, 25);
        let ppl = 9.0 + 25.0;
        assert_eq!(v.forward.ppl_pct, Some(ppl));
        assert_eq!(v.reverse.discards, 0);
        assert_eq!(v.reverse.ppl_pct, Some(0.0));
        let r = v.reverse.r_factor.unwrap_or(f64::NAN);
        // Reverse: 10 ms + 20 ms buffer + 20 ms codec = 50 ms, no loss: R = 91.76.
        assert!((r - 91.76).abs() < 0.01, "{r}");
        let fwd_r = v.forward.r_factor.unwrap_or(f64::NAN);
        let want = emodel::r_factor(
            Codec::G711,
            v.forward.mouth_to_ear_ms.unwrap_or(f64::NAN),
            ppl,
            v.forward.burst_r,
        );
        assert!((fwd_r - want).abs() < 1e-9 && fwd_r < r - 20.0, "{fwd_r}");
    }

    #[test]
    fn a_reflector_without_session_numbers_is_followed_by_ours() {
        let mut m = VoiceMonitor::new(VoiceConfig {
            codec: Codec::G711,
            jitter_buffer: JitterBufferMode::default(),
        });
        for seq in 0..50_u32 {
            let t1 = Nanos(1_000_000_000 + u64::from(seq) * 20_000_000);
            let rx = t1.saturating_add_ns(2 * MS);
            // A stateless reflector's counter, shared with other senders.
            m.on_reply(seq, 70_000 + seq, false, t1, (MS, MS), rx);
        }
        let st = m.reverse.stats(50);
        assert_eq!((st.expected, st.played, st.loss_runs), (50, 50, 0));
    }
}
