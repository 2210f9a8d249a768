//! Measures the schedule error of the async pacer on a current-thread tokio runtime.
//!
//! Waits for `COUNT` deadlines `INTERVAL_US` apart and prints the lateness at wake-up
//! (mean, p50, p99, max, in µs) and the CPU the waiting thread used. Run it in release mode:
//!
//! ```text
//! cargo run --release -p probe-core --example pacer_error -- [COUNT] [INTERVAL_US] [MARGIN_US] [MAX_SPIN_US] [rt] [blocking]
//! ```
//!
//! Defaults: 3000 deadlines 1000 µs apart with the pacer's default margin and spin budget;
//! `MAX_SPIN_US` 0 means no spin at all; `rt` asks for `SCHED_FIFO` ([`Pacer::realtime`], root);
//! `blocking` waits with [`Pacer::sleep_until_blocking`] instead, for comparison.

use std::error::Error;
use std::time::Duration;

use probe_core::io::{Pacer, PacerConfig};
use probe_core::time::Nanos;

/// The settings read from the command line.
struct Args {
    count: u64,
    interval_ns: u64,
    cfg: PacerConfig,
    realtime: bool,
    blocking: bool,
}

fn parse_args() -> Result<Args, Box<dyn Error>> {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, name: &str| -> Result<Option<u64>, Box<dyn Error>> {
        raw.get(i)
            .map(|s| {
                s.parse::<u64>()
                    .map_err(|e| format!("{name} `{s}` is not a whole number ({e})").into())
            })
            .transpose()
    };
    let mut cfg = PacerConfig::default();
    if let Some(m) = num(2, "MARGIN_US")? {
        cfg = cfg.spin(Duration::from_micros(m));
    }
    if let Some(s) = num(3, "MAX_SPIN_US")? {
        cfg = if s == 0 {
            cfg.no_spin()
        } else {
            cfg.max_spin(Duration::from_micros(s))
        };
    }
    let count = num(0, "COUNT")?.unwrap_or(3000).clamp(1, 1_000_000);
    let interval_ns = num(1, "INTERVAL_US")?.unwrap_or(1000).clamp(10, 1_000_000) * 1000;
    let (mut realtime, mut blocking) = (false, false);
    for word in raw.iter().skip(4) {
        match word.as_str() {
            "rt" => realtime = true,
            "blocking" => blocking = true,
            other => {
                return Err(
                    format!("unknown argument `{other}`: expected `rt` or `blocking`").into(),
                );
            }
        }
    }
    Ok(Args {
        count,
        interval_ns,
        cfg,
        realtime,
        blocking,
    })
}

/// CPU time the calling thread has used, from `/proc/thread-self/schedstat` (nanoseconds).
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// The value at quantile `q` of sorted values.
fn quantile(sorted: &[i64], q: f64) -> i64 {
    let idx = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = parse_args()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (late, cpu_ns, wall_ns) = rt.block_on(async {
        let mut pacer = if args.realtime {
            let (pacer, granted) = Pacer::realtime(args.cfg)?;
            println!("SCHED_FIFO granted: {granted}");
            pacer
        } else {
            Pacer::new(args.cfg)?
        };
        // Start on a fresh interval boundary, 10 ms ahead.
        let start = Nanos(Nanos::now_realtime().0 + 10_000_000);
        let cpu0 = thread_cpu_ns();
        let mut late = Vec::with_capacity(usize::try_from(args.count)?);
        for i in 1..=args.count {
            let deadline = Nanos(start.0 + i * args.interval_ns);
            let woke = if args.blocking {
                pacer.sleep_until_blocking(deadline)
            } else {
                pacer.sleep_until(deadline).await
            };
            late.push(woke.since(deadline));
        }
        let wall = Nanos::now_realtime().since(start);
        let cpu = cpu0.zip(thread_cpu_ns()).map(|(a, b)| b.saturating_sub(a));
        Ok::<_, Box<dyn Error>>((late, cpu, wall))
    })?;
    let mut sorted = late.clone();
    sorted.sort_unstable();
    let us = |ns: i64| ns as f64 / 1000.0;
    let mean = late.iter().sum::<i64>() as f64 / late.len() as f64 / 1000.0;
    println!(
        "pacer {:?}: {} deadlines every {} µs",
        args.cfg,
        args.count,
        args.interval_ns / 1000
    );
    println!(
        "lateness µs: mean {mean:.1}  p50 {:.1}  p99 {:.1}  max {:.1}  min {:.1}  early {}",
        us(quantile(&sorted, 0.5)),
        us(quantile(&sorted, 0.99)),
        us(sorted[sorted.len() - 1]),
        us(sorted[0]),
        late.iter().filter(|&&l| l < 0).count()
    );
    match cpu_ns {
        Some(cpu) => println!(
            "thread CPU: {:.1} ms over {:.1} ms wall ({:.1} %)",
            cpu as f64 / 1e6,
            wall_ns as f64 / 1e6,
            cpu as f64 * 100.0 / wall_ns as f64
        ),
        None => println!("thread CPU: unknown (no /proc/thread-self/schedstat)"),
    }
    Ok(())
}
