//! The ITU-T G.107 E-model: a transmission rating `R` and a MOS estimate for a voice call,
//! from the one-way mouth-to-ear delay, the packet loss and the codec.
//!
//! Clause numbers are those of ITU-T G.107 (03/2005):
//!
//! - **R** (clause 3.1): `R = Ro - Is - Id - Ie,eff + A`.
//! - **Ro, Is** (clauses 3.2, 3.3) with every parameter at its default (clause 3.7, table 3:
//!   SLR 8, RLR 2, STMR 15, LSTR 18, Ds = Dr = 3, TELR 65, WEPL 110, Nc -70, Nfor -64,
//!   Ps = Pr = 35, qdu 1) evaluate to `No = -61.18` dB, `Ro = 94.77` and
//!   `Is = Iolr + Ist + Iq = 0.44 + 0.00 + 0.97 = 1.41`; they do not depend on delay or loss,
//!   so they are the constants [`RO`] and [`IS`] here. With no delay the model then gives
//!   the familiar `R = 93.2`.
//! - **Id** (clause 3.4): `Id = Idte + Idle + Idd`, with the absolute delay `Ta` equal to the
//!   mouth-to-ear delay, the talker echo path `T = Ta` and the listener echo round trip
//!   `Tr = 2 Ta` (a packet path with echo control of TELR 65 dB at each end):
//!   - `Idte = ((Roe - Re)/2 + sqrt((Roe - Re)^2/4 + 100) - 1)(1 - e^-T)`,
//!     `Roe = -1.5(No - RLR)`, `Re = 80 + 2.5(TERV - 14)`,
//!     `TERV = TELR - 40 lg((1 + T/10)/(1 + T/150)) + 6 e^(-0.3 T^2)`;
//!   - `Idle = (Ro - Rle)/2 + sqrt((Ro - Rle)^2/4 + 169)`, `Rle = 10.5(WEPL + 7)(Tr + 1)^-0.25`;
//!   - `Idd = 0` for `Ta <= 100` ms, else
//!     `25((1 + X^6)^(1/6) - 3(1 + (X/3)^6)^(1/6) + 2)` with `X = lg(Ta/100)/lg 2`.
//! - **Ie,eff** (clause 3.5): `Ie,eff = Ie + (95 - Ie) Ppl / (Ppl/BurstR + Bpl)`, `Ppl` the
//!   packet loss in percent (network loss plus jitter-buffer discards: a late packet is as
//!   lost to the listener as a dropped one). `Ie` and `Bpl` per codec from ITU-T G.113
//!   Appendix I: G.711 with packet loss concealment `Ie = 0, Bpl = 25.1`; G.729A (with VAD)
//!   `Ie = 11, Bpl = 19.0`.
//! - **`BurstR`** (clause 3.5): `1/(p + q)` for a two-state (Gilbert) loss model, `p` the
//!   probability that a packet is lost after a received one, `q` that one is received after a
//!   lost one. probe estimates `p` and `q` from the run counts of the loss pattern
//!   ([`burst_ratio`]); random loss gives `BurstR = 1`, and sampling noise below 1 is taken
//!   as random loss.
//! - **A** (clause 3.6): 0 (conventional wirebound and `VoIP`; no advantage of access).
//! - **MOS** (Annex B, B.1): `1` for `R < 0`, `4.5` for `R > 100`, else
//!   `1 + 0.035 R + R (R - 60)(100 - R) 7e-6`.

/// Basic signal-to-noise ratio `Ro` with the default parameters (G.107 clause 3.2).
pub const RO: f64 = 94.77;
/// Simultaneous impairment factor `Is` with the default parameters (G.107 clause 3.3).
pub const IS: f64 = 1.41;
/// Noise floor `No` in dBm0p with the default parameters (G.107 clause 3.2).
const NO: f64 = -61.18;
/// Receive loudness rating (default, G.107 table 3).
const RLR: f64 = 2.0;
/// Talker echo loudness rating (default, G.107 table 3).
const TELR: f64 = 65.0;
/// Weighted echo path loss (default, G.107 table 3).
const WEPL: f64 = 110.0;

/// A voice codec as the E-model and the RTP stream shape see it (in reports: `g711`,
/// `g729`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// G.711 (64 kbit/s PCM) with packet loss concealment, 20 ms per packet.
    G711,
    /// G.729A (8 kbit/s CS-ACELP), two 10 ms frames per packet.
    G729,
}

impl std::fmt::Display for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Codec {
    /// Time of speech per RTP packet (both codecs: 20 ms).
    pub const PACKET_MS: u64 = 20;

    /// The name used on the command line and in reports (`g711`, `g729`).
    pub fn name(self) -> &'static str {
        match self {
            Codec::G711 => "g711",
            Codec::G729 => "g729",
        }
    }

    /// Parses `g711` or `g729`.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "g711" => Some(Codec::G711),
            "g729" => Some(Codec::G729),
            _ => None,
        }
    }

    /// RTP payload octets per 20 ms packet (G.711: 160, G.729: 20).
    pub fn payload_bytes(self) -> usize {
        match self {
            Codec::G711 => 160,
            Codec::G729 => 20,
        }
    }

    /// RTP packet octets: the 12-octet RTP header plus the payload (G.711: 172, G.729: 32).
    pub fn rtp_packet_bytes(self) -> usize {
        12 + self.payload_bytes()
    }

    /// Equipment impairment `Ie` (G.113 Appendix I).
    pub fn ie(self) -> f64 {
        match self {
            Codec::G711 => 0.0,
            Codec::G729 => 11.0,
        }
    }

    /// Packet-loss robustness `Bpl` (G.113 Appendix I).
    pub fn bpl(self) -> f64 {
        match self {
            Codec::G711 => 25.1,
            Codec::G729 => 19.0,
        }
    }

    /// Delay the codec adds to the mouth-to-ear delay, ms: the packet's speech must be
    /// collected before it is sent (20 ms), plus G.729's 5 ms look-ahead.
    pub fn codec_delay_ms(self) -> f64 {
        match self {
            Codec::G711 => 20.0,
            Codec::G729 => 25.0,
        }
    }
}

/// Delay impairment `Id = Idte + Idle + Idd` for a mouth-to-ear delay of `ta_ms`
/// (G.107 clause 3.4; see the module documentation for the echo paths assumed).
pub fn delay_impairment(ta_ms: f64) -> f64 {
    let ta = ta_ms.max(0.0);
    let t = ta;
    let tr = 2.0 * ta;
    let terv =
        TELR - 40.0 * ((1.0 + t / 10.0) / (1.0 + t / 150.0)).log10() + 6.0 * (-0.3 * t * t).exp();
    let roe = -1.5 * (NO - RLR);
    let re = 80.0 + 2.5 * (terv - 14.0);
    let idte =
        ((roe - re) / 2.0 + ((roe - re).powi(2) / 4.0 + 100.0).sqrt() - 1.0) * (1.0 - (-t).exp());
    let rle = 10.5 * (WEPL + 7.0) * (tr + 1.0).powf(-0.25);
    let idle = (RO - rle) / 2.0 + ((RO - rle).powi(2) / 4.0 + 169.0).sqrt();
    let idd = if ta <= 100.0 {
        0.0
    } else {
        let x = (ta / 100.0).log10() / 2f64.log10();
        25.0 * ((1.0 + x.powi(6)).powf(1.0 / 6.0) - 3.0 * (1.0 + (x / 3.0).powi(6)).powf(1.0 / 6.0)
            + 2.0)
    };
    idte + idle + idd
}

/// Effective equipment impairment `Ie,eff` (G.107 clause 3.5) for `codec` at `ppl_pct`
/// percent packet loss with burst ratio `burst_r` (1 for random loss).
pub fn effective_equipment_impairment(codec: Codec, ppl_pct: f64, burst_r: f64) -> f64 {
    let ppl = ppl_pct.clamp(0.0, 100.0);
    let burst_r = burst_r.max(1.0);
    let ie = codec.ie();
    ie + (95.0 - ie) * ppl / (ppl / burst_r + codec.bpl())
}

/// The transmission rating `R = Ro - Is - Id - Ie,eff + A` (G.107 clause 3.1, `A = 0`).
pub fn r_factor(codec: Codec, mouth_to_ear_ms: f64, ppl_pct: f64, burst_r: f64) -> f64 {
    RO - IS
        - delay_impairment(mouth_to_ear_ms)
        - effective_equipment_impairment(codec, ppl_pct, burst_r)
}

/// The MOS (conversational quality, estimated) for a rating `r` (G.107 Annex B).
pub fn mos_from_r(r: f64) -> f64 {
    if r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6
    }
}

/// The burst ratio `BurstR = 1/(p + q)` of a loss pattern with `received` and `lost`
/// packets in `loss_runs` runs of consecutive losses (G.107 clause 3.5): `p = runs/received`
/// (a loss begins after a received packet), `q = runs/lost` (each run ends once). No loss,
/// nothing received, or an estimate below 1 (random loss seen through sampling noise) give 1.
pub fn burst_ratio(received: u64, lost: u64, loss_runs: u64) -> f64 {
    if lost == 0 || received == 0 || loss_runs == 0 {
        return 1.0;
    }
    let runs = loss_runs as f64;
    let p = runs / received as f64;
    let q = runs / lost as f64;
    (1.0 / (p + q)).max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn no_impairment_gives_93_2() {
        // Ta = 0: Idte = 0 (factor 1 - e^0), Rle = 10.5 * 117 = 1228.5,
        // Idle = (94.77 - 1228.5)/2 + sqrt(1133.73^2/4 + 169) = -566.865 + 567.014 = 0.149,
        // R = 94.77 - 1.41 - 0.149 = 93.21, MOS = 1 + 3.262 + 93.21*33.21*6.79*7e-6 = 4.409.
        let r = r_factor(Codec::G711, 0.0, 0.0, 1.0);
        assert!(close(r, 93.21, 0.01), "{r}");
        assert!(close(mos_from_r(r), 4.409, 0.002));
    }

    #[test]
    fn delay_cases_match_hand_computation() {
        // Ta = 50 ms: TERV = 65 - 40 lg(6/1.3333) = 65 - 26.13 = 38.87, Re = 142.17,
        // Roe = -1.5(-61.18 - 2) = 94.77, Roe - Re = -47.40,
        // Idte = -23.70 + sqrt(561.7 + 100) - 1 = -23.70 + 25.72 - 1 = 1.02;
        // Rle = 1228.5 * 101^-0.25 = 388.29, Ro - Rle = -293.52,
        // Idle = -146.76 + sqrt(21538.6 + 169) = -146.76 + 147.34 = 0.576; Idd = 0.
        // R = 93.36 - 1.023 - 0.576 = 91.76.
        assert!(close(r_factor(Codec::G711, 50.0, 0.0, 1.0), 91.76, 0.01));
        // Ta = 200 ms: TERV = 65 - 40 lg(21/2.3333) = 65 - 38.17 = 26.83, Re = 112.07,
        // Roe - Re = -17.30, Idte = -8.65 + sqrt(74.8 + 100) - 1 = -8.65 + 13.22 - 1 = 3.57;
        // Rle = 1228.5 * 401^-0.25 = 274.30, Ro - Rle = -179.53,
        // Idle = -89.77 + sqrt(8057.8 + 169) = -89.77 + 90.70 = 0.937;
        // X = 1, Idd = 25((2)^(1/6) - 3(1 + 1/729)^(1/6) + 2) = 25(1.12246 - 3.00069 + 2) = 3.044.
        // R = 93.36 - 3.57 - 0.94 - 3.04 = 85.81.
        assert!(close(r_factor(Codec::G711, 200.0, 0.0, 1.0), 85.81, 0.03));
    }

    #[test]
    fn loss_cases_match_hand_computation() {
        // G.711, 5 % random loss: Ie,eff = 0 + 95 * 5/(5 + 25.1) = 15.78.
        assert!(close(
            effective_equipment_impairment(Codec::G711, 5.0, 1.0),
            15.78,
            0.01
        ));
        // G.729, 2 % loss, BurstR 2: Ie,eff = 11 + 84 * 2/(1 + 19) = 19.4.
        assert!(close(
            effective_equipment_impairment(Codec::G729, 2.0, 2.0),
            19.4,
            1e-9
        ));
        // G.729, 50 ms, 1 % random: R = 91.76 - (11 + 84 * 1/20) = 91.76 - 15.2 = 76.56,
        // MOS = 1 + 2.680 + 76.56*16.56*23.44*7e-6 = 3.888.
        let r = r_factor(Codec::G729, 50.0, 1.0, 1.0);
        assert!(close(r, 76.56, 0.01), "{r}");
        assert!(close(mos_from_r(r), 3.888, 0.005));
        // G.711, 50 ms, 5 % random: R = 91.76 - 15.78 = 75.98, MOS = 3.863.
        let r = r_factor(Codec::G711, 50.0, 5.0, 1.0);
        assert!(close(r, 75.98, 0.01), "{r}");
        assert!(close(mos_from_r(r), 3.863, 0.005));
    }

    #[test]
    fn mos_falls_as_loss_and_delay_rise() {
        for codec in [Codec::G711, Codec::G729] {
            let mut last = f64::INFINITY;
            for loss in 0..=40 {
                let mos = mos_from_r(r_factor(codec, 40.0, f64::from(loss), 1.0));
                assert!(mos < last, "{codec:?} loss {loss}");
                last = mos;
            }
            let mut last = f64::INFINITY;
            for delay in (0..=600).step_by(10) {
                let mos = mos_from_r(r_factor(codec, f64::from(delay), 1.0, 1.0));
                assert!(mos < last, "{codec:?} delay {delay}");
                last = mos;
            }
        }
    }

    #[test]
    fn mos_bounds_and_burst_ratio() {
        assert!(close(mos_from_r(-5.0), 1.0, 1e-12));
        assert!(close(mos_from_r(120.0), 4.5, 1e-12));
        // 1000 packets, 50 lost in 10 runs of 5: p = 10/950, q = 10/50, BurstR = 4.75.
        assert!(close(burst_ratio(950, 50, 10), 4.75, 1e-9));
        // Isolated losses: one run per loss, p = 50/950, q = 1: 0.95, read as random (1).
        assert!(close(burst_ratio(950, 50, 50), 1.0, 1e-12));
        assert!(close(burst_ratio(1000, 0, 0), 1.0, 1e-12));
        // Burstier loss hurts more at the same rate.
        assert!(r_factor(Codec::G711, 40.0, 5.0, 3.0) < r_factor(Codec::G711, 40.0, 5.0, 1.0));
    }
}
