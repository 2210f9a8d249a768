//! `probe a2a --profile voice` through the impairment hop: the MOS and R-factor against
//! hand-computed ITU-T G.107 E-model values for the configured impairments.
#![allow(clippy::float_cmp)] // Counts and zero losses are compared exactly on purpose.

mod common;

use std::time::Duration;

use common::{a2a_json, direct_reflector_counting_ef, ef_packets, num, output, serve, text};
use probe_lab::impair::ImpairConfig;
use probe_lab::topology;
use serde_json::Value;

const PORT: u16 = 49153;

/// One 5 s G.711 voice test from a to b over a path with these impairments.
fn voice_run(fwd: ImpairConfig, rev: ImpairConfig, jitter_buffer: &str) -> Value {
    let lab = topology::impaired(fwd, rev).expect("impaired topology");
    let _srv = serve(&lab.b, PORT, &[]);
    let peer = lab.b.ipv4().to_string();
    let v = a2a_json(
        &lab.a,
        &peer,
        &[
            "--profile",
            "voice",
            "--duration",
            "5s",
            "--jitter-buffer",
            jitter_buffer,
        ],
    );
    // The stream's shape: a 172-byte G.711 RTP packet every 20 ms for 5 s.
    assert_eq!(num(&v, "size"), 172.0);
    assert_eq!(num(&v, "interval_ms"), 20.0);
    assert!((num(&v, "sent") - 250.0).abs() <= 1.0, "{}", v["sent"]);
    assert_eq!(text(&v, "voice.codec"), "g711");
    assert_eq!(text(&v, "voice.jitter_buffer"), jitter_buffer);
    eprintln!("voice: {}", v["voice"]);
    v
}

/// The G.107 delay impairment `Id = Idte + Idle + Idd` for a mouth-to-ear delay below 100 ms
/// (so `Idd = 0`) written out from the recommendation's clause 3.4 with default parameters
/// (`Roe = Ro = 94.77`, TELR 65, WEPL 110, `T = Ta`, `Tr = 2 Ta`).
fn id_below_100ms(ta: f64) -> f64 {
    let terv = 65.0 - 40.0 * ((1.0 + ta / 10.0) / (1.0 + ta / 150.0)).log10();
    let d = 94.77 - (80.0 + 2.5 * (terv - 14.0));
    let idte = d / 2.0 + (d * d / 4.0 + 100.0).sqrt() - 1.0;
    let e = 94.77 - 10.5 * 117.0 * (2.0 * ta + 1.0).powf(-0.25);
    let idle = e / 2.0 + (e * e / 4.0 + 169.0).sqrt();
    idte + idle
}

/// G.107 Annex B.
fn mos(r: f64) -> f64 {
    1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6
}

/// Checks `dir`'s R and MOS against the hand computation for G.711 from its measured delay,
/// loss and burst ratio: `R = 93.36 - Id - 95 Ppl/(Ppl/BurstR + 25.1)`.
fn assert_rating(v: &Value, dir: &str) -> f64 {
    let d = &v["voice"][dir];
    let m2e = num(v, &format!("voice.{dir}.mouth_to_ear_ms"));
    let ppl = num(v, &format!("voice.{dir}.ppl_pct"));
    let burst = num(v, &format!("voice.{dir}.burst_r"));
    let want_r = 93.36 - id_below_100ms(m2e) - 95.0 * ppl / (ppl / burst + 25.1);
    let r = num(v, &format!("voice.{dir}.r_factor"));
    let got_mos = num(v, &format!("voice.{dir}.mos"));
    assert!(
        (r - want_r).abs() < 0.05,
        "{dir}: R {r}, hand {want_r}: {d}"
    );
    assert!(
        (got_mos - mos(want_r)).abs() < 0.005,
        "{dir}: MOS {got_mos}, hand {}: {d}",
        mos(want_r)
    );
    got_mos
}

#[test]
fn clean_path_rates_toll_quality() {
    if !probe_lab::require_root() {
        return;
    }
    let fwd = ImpairConfig::delay(Duration::from_millis(10));
    let rev = ImpairConfig::delay(Duration::from_millis(10));
    let v = voice_run(fwd, rev, "fixed:20");
    for dir in ["forward", "reverse"] {
        assert_eq!(num(&v, &format!("voice.{dir}.loss_pct")), 0.0, "{v}");
        assert_eq!(num(&v, &format!("voice.{dir}.discards")), 0.0, "{v}");
        // 10 ms network + 20 ms buffer + 20 ms packetization = 50 ms mouth to ear, where the
        // hand computation (stats::emodel tests) gives R = 91.76, MOS = 4.380.
        let m2e = num(&v, &format!("voice.{dir}.mouth_to_ear_ms"));
        assert!((m2e - 50.0).abs() < 1.5, "{dir} mouth to ear {m2e}");
        let mos = assert_rating(&v, dir);
        assert!((mos - 4.380).abs() < 0.005, "{dir} MOS {mos}");
    }
}

#[test]
fn random_forward_loss_lowers_forward_mos_only() {
    if !probe_lab::require_root() {
        return;
    }
    let fwd = ImpairConfig {
        delay: Duration::from_millis(10),
        loss: 0.05,
        seed: Some(11),
        ..ImpairConfig::default()
    };
    let rev = ImpairConfig::delay(Duration::from_millis(10));
    let v = voice_run(fwd, rev, "fixed:20");
    let loss = num(&v, "voice.forward.loss_pct");
    assert!((2.0..=9.0).contains(&loss), "forward loss {loss}: {v}");
    assert_eq!(num(&v, "voice.reverse.loss_pct"), 0.0);
    let fwd_mos = assert_rating(&v, "forward");
    let rev_mos = assert_rating(&v, "reverse");
    // At exactly 5 % random loss and 50 ms: Ie,eff = 95 * 5/30.1 = 15.78, R = 75.98,
    // MOS = 3.863; the measured loss moves it within this band.
    assert!((3.6..4.1).contains(&fwd_mos), "forward MOS {fwd_mos}");
    // The reverse path loses nothing, so its MOS is the clean path's. A scheduling stall of
    // the 2-core host longer than the 20 ms buffer makes a reply late, and the buffer then
    // rightly discards it: the rating above already checked that such a discard is priced by
    // G.107, so one discard (0.4 %) only moves the bound by its hand-computed cost.
    let rev_discards = num(&v, "voice.reverse.discards");
    assert!(rev_discards <= 1.0, "reverse discards {rev_discards}: {v}");
    // One discard in 250 costs Ie,eff = 95 * 0.4/(0.4 + 25.1) = 1.5, about 0.04 of MOS.
    let floor = if rev_discards == 0.0 { 4.375 } else { 4.330 };
    assert!((floor..4.385).contains(&rev_mos), "reverse MOS {rev_mos}");
    assert!(
        rev_mos - fwd_mos > 0.3,
        "reverse {rev_mos} vs forward {fwd_mos}"
    );
}

#[test]
fn jitter_beyond_a_fixed_buffer_causes_discards() {
    if !probe_lab::require_root() {
        return;
    }
    let jittery = || ImpairConfig {
        delay: Duration::from_millis(40),
        jitter: Duration::from_millis(30),
        seed: Some(7),
        ..ImpairConfig::default()
    };
    let rev = || ImpairConfig::delay(Duration::from_millis(10));
    // ±30 ms around 40 ms through a 20 ms buffer: packets more than 20 ms slower than the
    // fastest are late.
    let v = voice_run(jittery(), rev(), "fixed:20");
    let discards = num(&v, "voice.forward.discards");
    let fixed_wait = num(&v, "voice.forward.jitter_buffer_ms");
    assert!(discards > 10.0, "forward discards {discards}: {v}");
    assert!(num(&v, "voice.forward.pdv_ms") > 20.0, "{v}");
    assert_eq!(num(&v, "voice.reverse.discards"), 0.0, "{v}");
    let fixed_mos = assert_rating(&v, "forward");
    assert!(
        fixed_mos < 4.2,
        "forward MOS {fixed_mos} with {discards} discards"
    );
    assert!((assert_rating(&v, "reverse") - 4.380).abs() < 0.005);
    // An adaptive buffer grows to the jitter: fewer discards than the 20 ms one.
    let v = voice_run(jittery(), rev(), "adaptive:20-200");
    let adaptive = num(&v, "voice.forward.discards");
    assert!(
        adaptive < discards / 2.0,
        "adaptive {adaptive} vs fixed {discards}"
    );
    // It holds packets longer than the fixed buffer did. (Its mean wait is not bounded below
    // by its 20 ms floor: a late packet waits less than the depth, so a CI run had 18.3 ms
    // against the fixed buffer's 9.2 ms.)
    let adaptive_wait = num(&v, "voice.forward.jitter_buffer_ms");
    assert!(
        adaptive_wait > 1.5 * fixed_wait,
        "adaptive wait {adaptive_wait} ms vs fixed {fixed_wait} ms: {v}"
    );
}

#[test]
fn voice_duration_outside_5_to_30_s_is_refused() {
    let mut cmd = std::process::Command::new(probe_suite::probe_bin());
    let out = output(cmd.args(["a2a", "--profile", "voice", "--duration", "31s"]));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("outside 5s..=30s"), "{err}");
    let mut cmd = std::process::Command::new(probe_suite::probe_bin());
    let out = output(cmd.args(["a2a", "--profile", "voice", "--jitter-buffer", "fixed:0"]));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fixed:MS"), "{err}");
}

#[test]
fn g729_profile_marks_ef_and_rates_the_codec() {
    if !probe_lab::require_root() {
        return;
    }
    let (lab, _srv) = direct_reflector_counting_ef();
    let v = a2a_json(
        &lab.a,
        &lab.b.ipv4().to_string(),
        &["--profile", "voice", "--codec", "g729", "--duration", "5s"],
    );
    // 32-byte RTP packets go out as the 44-byte STAMP minimum, marked EF by default.
    assert_eq!(num(&v, "size"), 44.0);
    assert_eq!(text(&v, "voice.codec"), "g729");
    assert_eq!(text(&v, "voice.jitter_buffer"), "adaptive:20-200");
    let seen = ef_packets(&lab.b);
    assert!(
        seen as f64 >= num(&v, "sent"),
        "only {seen} EF-marked packets"
    );
    // A clean link: the adaptive buffer stays at 20 ms, 20 + 5 ms of codec delay: 45 ms
    // mouth to ear. G.107: R = 93.36 - Id(45 ms) - Ie = 93.36 - 1.48 - 11 = 80.88, MOS 4.057.
    for dir in ["forward", "reverse"] {
        let m2e = num(&v, &format!("voice.{dir}.mouth_to_ear_ms"));
        assert!((m2e - 45.0).abs() < 1.0, "{dir} mouth to ear {m2e}");
        let r = num(&v, &format!("voice.{dir}.r_factor"));
        assert!((r - 80.88).abs() < 0.05, "{dir} R {r}");
        let mos = num(&v, &format!("voice.{dir}.mos"));
        assert!((mos - 4.057).abs() < 0.003, "{dir} MOS {mos}");
    }
}
