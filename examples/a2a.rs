//! Embedding probe-core: one agent-to-agent STAMP test from a program.
//!
//! `cargo run --example a2a -- [HOST[:PORT]]` tests against a peer's `probe serve`, or, with no
//! argument, against a responder this program starts on loopback. The test is one future: it
//! runs on a current-thread runtime, hands out interval reports on a channel while it runs,
//! and would stop at once if dropped (e.g. under `tokio::time::timeout`).

use std::net::SocketAddr;
use std::time::Duration;

use probe_core::a2a::runtime::{
    A2aOptions, Family, Pace, PeerSpec, Responder, ResponderConfig, local_clock_info, run_test,
};
use probe_core::a2a::{DEFAULT_PORT, Limit, ReflectorConfig, VoiceConfig};
use probe_core::stats::JitterBufferMode;
use probe_core::stats::emodel::Codec;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let (peer, responder) = match std::env::args().nth(1) {
        Some(spec) => {
            let spec = PeerSpec::parse(&spec, DEFAULT_PORT)?;
            (spec.resolve(Family::Any).await?, None)
        }
        None => {
            let reflector = ReflectorConfig::builder()
                .clock(local_clock_info())
                .build()?;
            let listen = SocketAddr::from(([127, 0, 0, 1], 0));
            let responder = Responder::bind(&ResponderConfig::new([listen], reflector)?)?;
            let addr = responder.local_addrs()[0];
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(responder.run(async move {
                let _ = stopped.await;
            }));
            (addr, Some((stop, task)))
        }
    };

    let (reports, mut incoming) = tokio::sync::mpsc::channel(16);
    let opts = A2aOptions::builder(peer)
        .limit(Limit::Count(200))
        .pace(Pace::Interval(Duration::from_millis(5)))
        .interval_reports(Duration::from_millis(250), reports)
        // Rate the stream as G.711 voice too (what `probe a2a --profile voice` adds to the
        // report; the CLI profile also sends the codec's packet size every 20 ms).
        .voice(VoiceConfig {
            codec: Codec::G711,
            jitter_buffer: JitterBufferMode::Fixed { ms: 20 },
        })
        .build()?;
    let show = async {
        while let Some(i) = incoming.recv().await {
            eprintln!(
                "{:.2}-{:.2} s: sent {}, received {}, rtt p50 {:?} ms",
                i.start_s, i.end_s, i.sent, i.received, i.rtt_p50_ms
            );
        }
    };
    let (outcome, ()) = tokio::join!(run_test(opts), show);
    let outcome = outcome?;

    if let Some((stop, task)) = responder {
        let _ = stop.send(());
        let counters = task.await??;
        eprintln!("responder reflected {} packets", counters.reflected);
    }
    let r = &outcome.report;
    println!(
        "{}: sent {}, received {}, clock {}, rtt p50 {:?} ms, forward loss {:?}%, reverse loss {:?}%",
        r.peer,
        r.sent,
        r.received,
        r.clock.mode,
        r.rtt_ms.map(|s| s.p50),
        r.forward.loss_pct,
        r.reverse.loss_pct
    );
    if let Some(v) = &r.voice {
        println!(
            "voice {}: MOS forward {:?}, reverse {:?}",
            v.codec, v.forward.mos, v.reverse.mos
        );
    }
    println!("{}", serde_json::to_string(r)?);
    Ok(())
}
