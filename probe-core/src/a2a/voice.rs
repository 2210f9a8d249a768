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
        self.reverse.on_packet(
            u64::from(reflector_seq),
            arrived.saturating_sub(rev_ns),
            arrived,
        );
    }

    /// The voice section of `report` (the A2A report of the same test).
    pub fn report(&self, report: &A2aReport) -> VoiceReport {
        let rtt_half = report.rtt_ms.map(|s| s.mean / 2.0);
        VoiceReport {
            codec: self.cfg.codec.name().to_owned(),
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
