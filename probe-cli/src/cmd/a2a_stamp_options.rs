//! The settings of `probe a2a`'s STAMP test from its flags: size, count or duration, pace,
//! pacer, and the `--profile voice` preset.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use probe_core::a2a::runtime::{A2aOptions, A2aOptionsBuilder, Pace};
use probe_core::a2a::{Limit, MAX_SIZE, VoiceConfig};
use probe_core::io::PacerConfig;
use probe_core::stats::emodel::Codec;
use probe_core::wire::stamp::BASE_LEN;

use crate::cli::{A2aArgs, Profile, Rate, STAMP_PORT};

/// Packets allowed unanswered in a `--rate max` flood.
const FLOOD_WINDOW: u32 = 256;
/// Packets sent when neither --count nor --duration is given.
const DEFAULT_COUNT: u32 = 100;

/// The test settings the flags describe (peer filled in later, settings checked then), and
/// the planned `(pace, limit)`.
pub(super) fn options_from(args: &A2aArgs) -> anyhow::Result<(A2aOptionsBuilder, (Pace, Limit))> {
    if !(BASE_LEN..=MAX_SIZE).contains(&args.size) {
        bail!(
            "--size {} is outside {BASE_LEN}..={MAX_SIZE}: a STAMP test packet needs at least {BASE_LEN} bytes of UDP payload",
            args.size
        );
    }
    let limit = match (args.count, args.duration) {
        (Some(0), _) => bail!("--count must be at least 1"),
        (Some(c), _) => Limit::Count(
            u32::try_from(c)
                .ok()
                .filter(|&c| c < u32::MAX)
                .with_context(|| format!("--count {c} is too large (at most {})", u32::MAX - 1))?,
        ),
        (None, Some(d)) if d.is_zero() => bail!("--duration must be positive"),
        (None, Some(d)) => Limit::Duration(d),
        (None, None) => Limit::Count(DEFAULT_COUNT),
    };
    let pace = match args.rate {
        Some(Rate::Max) => Pace::Max {
            window: FLOOD_WINDOW,
        },
        Some(Rate::Pps(pps)) => Pace::Interval(
            // The parser keeps pps within MIN_RATE..=MAX_RATE, so this cannot fail.
            Duration::try_from_secs_f64(1.0 / pps)
                .with_context(|| format!("--rate {pps} gives no valid interval"))?
                .max(Duration::from_nanos(1)),
        ),
        None if args.interval.is_zero() => bail!("--interval must be positive (or use --rate max)"),
        None => Pace::Interval(args.interval),
    };
    let mut o = A2aOptions::builder(SocketAddr::from(([127, 0, 0, 1], STAMP_PORT)))
        .size(args.size)
        .dscp(args.dscp)
        .source(args.source)
        .wait(args.wait);
    if let Some(dev) = &args.interface {
        o = o.interface(dev.clone());
    }
    if let Some(margin) = args.spin {
        let pacer = PacerConfig::default();
        o = o.pacer(if margin.is_zero() {
            pacer.no_spin()
        } else {
            pacer.spin(margin).max_spin(margin.saturating_mul(2))
        });
    }
    let (o, pace, limit) = if args.profile == Some(Profile::Voice) {
        voice_options(args, o)?
    } else {
        (o, pace, limit)
    };
    let o = o.timeline(args.timeline || args.html.is_some());
    Ok((o.pace(pace).limit(limit), (pace, limit)))
}

/// Voice profile bounds on --duration.
const VOICE_DURATION: (Duration, Duration) = (Duration::from_secs(5), Duration::from_secs(30));
/// Expedited Forwarding, the DSCP of voice.
const VOICE_DSCP: u8 = 46;

/// `--profile voice`: the codec's packet every 20 ms, DSCP 46, 5 to 30 s (10 s by default).
fn voice_options(
    args: &A2aArgs,
    o: A2aOptionsBuilder,
) -> anyhow::Result<(A2aOptionsBuilder, Pace, Limit)> {
    let d = args.duration.unwrap_or(Duration::from_secs(10));
    let (lo, hi) = VOICE_DURATION;
    if !(lo..=hi).contains(&d) {
        bail!(
            "--duration {} is outside 5s..=30s: a --profile voice test runs 5 to 30 seconds",
            humantime::format_duration(d)
        );
    }
    let voice = VoiceConfig {
        codec: args.codec.codec(),
        jitter_buffer: args.jitter_buffer,
    };
    let o = o
        .size(voice.packet_size())
        .dscp(args.dscp.unwrap_or(VOICE_DSCP))
        .voice(voice);
    let pace = Pace::Interval(Duration::from_millis(Codec::PACKET_MS));
    Ok((o, pace, Limit::Duration(d)))
}
