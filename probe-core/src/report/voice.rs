//! The `voice` section of an A2A report (`probe a2a --profile voice`): per direction, what an
//! emulated jitter buffer made of the stream and the ITU-T G.107 E-model rating of it (see
//! [`crate::stats::emodel`] and [`crate::stats::JitterBuffer`] for the method).

use serde::{Deserialize, Serialize};

use crate::stats::emodel::Codec;

/// The voice quality of both directions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VoiceReport {
    /// `g711` or `g729`.
    pub codec: Codec,
    /// The jitter buffer setting, `fixed:MS` or `adaptive:MIN-MAX`.
    pub jitter_buffer: String,
    /// Toward the peer.
    pub forward: VoiceDirection,
    /// Back from the peer.
    pub reverse: VoiceDirection,
}

/// The voice quality of one direction.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VoiceDirection {
    /// Network loss in percent of the packets sent this way (`null`: unknown).
    pub loss_pct: Option<f64>,
    /// Packets that arrived after their playout point.
    pub discards: u64,
    /// Discards in percent of the packets sent this way.
    pub discard_pct: f64,
    /// Mean one-way network delay, ms (`null` without a clock offset or samples).
    pub delay_ms: Option<f64>,
    /// Packet delay variation (RFC 5481): 99th percentile minus minimum of the one-way
    /// delay, ms.
    pub pdv_ms: Option<f64>,
    /// Mean time played packets waited in the jitter buffer, ms.
    pub jitter_buffer_ms: Option<f64>,
    /// Mouth-to-ear delay the E-model rates: network delay + jitter buffer + codec, ms.
    pub mouth_to_ear_ms: Option<f64>,
    /// Packet loss the E-model rates (`Ppl`): loss plus discards, percent.
    pub ppl_pct: Option<f64>,
    /// Burst ratio of the missing packets (1: random loss).
    pub burst_r: f64,
    /// G.107 transmission rating R.
    pub r_factor: Option<f64>,
    /// MOS from R (G.107 Annex B).
    pub mos: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_field_names_are_pinned() {
        let v = serde_json::to_value(VoiceReport {
            codec: Codec::G711,
            jitter_buffer: "fixed:60".into(),
            forward: VoiceDirection::default(),
            reverse: VoiceDirection::default(),
        })
        .expect("json");
        assert_eq!(v["codec"], "g711");
        for (codec, text) in [(Codec::G711, "g711"), (Codec::G729, "g729")] {
            assert_eq!(serde_json::to_value(codec).expect("json"), text);
            assert_eq!(codec.to_string(), text);
            let back: Codec = serde_json::from_value(text.into()).expect("parse");
            assert_eq!(back, codec);
        }
        let mut top: Vec<&str> = v
            .as_object()
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        top.sort_unstable();
        assert_eq!(top, ["codec", "forward", "jitter_buffer", "reverse"]);
        for dir in ["forward", "reverse"] {
            let mut keys: Vec<&str> = v[dir]
                .as_object()
                .map(|m| m.keys().map(String::as_str).collect())
                .unwrap_or_default();
            keys.sort_unstable();
            assert_eq!(
                keys,
                [
                    "burst_r",
                    "delay_ms",
                    "discard_pct",
                    "discards",
                    "jitter_buffer_ms",
                    "loss_pct",
                    "mos",
                    "mouth_to_ear_ms",
                    "pdv_ms",
                    "ppl_pct",
                    "r_factor"
                ]
            );
        }
    }
}
