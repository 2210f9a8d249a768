//! The agent's run loop: the scheduler's actions become test runs (tokio tasks) and skipped
//! records; every record goes to the spool, then to the shared state. A reload swaps the
//! configuration between runs; a stop lets in-flight runs finish within a grace period and
//! records the rest as cut short.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::config::{Config, TestConfig};
use crate::record::{ErrorClass, ResultRecord};
use crate::runner::{self, Failure, Outcome};
use crate::schedule::{Action, Scheduler, Spec};
use crate::spool::Spool;
use crate::state::AgentShared;
use crate::targets::Targets;

/// What the process tells the run loop.
#[derive(Debug)]
pub enum Command {
    /// Use this (validated) configuration from now on.
    Reload(Box<Config>),
    /// Stop: let in-flight runs finish within the grace period, then return.
    Stop,
}

/// Unix time now, in nanoseconds.
pub fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn specs(cfg: &Config) -> Vec<Spec> {
    cfg.tests
        .iter()
        .map(|t| Spec {
            interval: t.interval,
            jitter: t.jitter,
            deadline: t.deadline,
            class: t.class,
        })
        .collect()
}

/// A record of `test` toward `peer` (found through `target`) that started at
/// `start_unix_ns` and took `took`.
fn record(
    agent: &str,
    test: &TestConfig,
    (target, peer): (&str, Option<String>),
    start_unix_ns: u64,
    took: Duration,
    outcome: Outcome,
) -> ResultRecord {
    let (class, error) = match outcome.failure {
        Some(Failure { class, message }) => (Some(class), Some(message)),
        None => (None, None),
    };
    ResultRecord {
        seq: 0,
        start_unix_ns,
        duration_ns: took.as_nanos() as u64,
        agent: agent.to_owned(),
        test: test.name.clone(),
        kind: test.kind.as_str().to_owned(),
        target: target.to_owned(),
        peer,
        ok: class.is_none(),
        error_class: class,
        error,
        report: outcome.report,
    }
}

/// Completes when the stop signal has been given and its grace period is over.
async fn grace_over(mut stop: watch::Receiver<Option<tokio::time::Instant>>) {
    let Ok(at) = stop.wait_for(Option::is_some).await.map(|v| *v) else {
        // The loop is gone: nothing will stop us.
        return std::future::pending().await;
    };
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}

/// Completes with the reason when a run must end: its deadline passed or the agent stopped
/// and the grace period is over.
async fn cut_reason(
    deadline: tokio::time::Instant,
    allowed: Duration,
    stop: watch::Receiver<Option<tokio::time::Instant>>,
) -> String {
    tokio::select! {
        () = tokio::time::sleep_until(deadline) => format!(
            "the run passed its deadline of {}",
            humantime::format_duration(allowed)
        ),
        () = grace_over(stop) => "the agent stopped before the run finished".into(),
    }
}

/// One run of `test`: every peer of its target, side by side, each cut short at `deadline`
/// or when the agent stops. The peers' starts are spread over one packet interval (at most
/// a second), so a mesh of thousands does not send its packets in one burst. Each peer's
/// record goes to `sink` as soon as it is done (a run toward thousands of peers never holds
/// all their reports at once); the run returns when every peer is done.
async fn one_run(
    agent: String,
    test: TestConfig,
    targets: Arc<Targets>,
    deadline: tokio::time::Instant,
    stop: watch::Receiver<Option<tokio::time::Instant>>,
    sink: mpsc::UnboundedSender<ResultRecord>,
) {
    let start = unix_ns();
    let t0 = Instant::now();
    let test = Arc::new(test);
    if !test.kind.has_peers() {
        let ctx = targets.http_context().clone();
        let outcome = runner::run(
            &test,
            std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
            (&ctx, targets.shared().a2a_pool()),
            cut_reason(deadline, test.deadline, stop),
        )
        .await;
        let target = (test.target.as_str(), None);
        let _ = sink.send(record(&agent, &test, target, start, t0.elapsed(), outcome));
        return;
    }
    let peers = match targets.peers(&test).await {
        Ok(p) => p,
        Err(f) => {
            let outcome = Outcome {
                report: serde_json::Value::Null,
                failure: Some(f),
            };
            let target = (test.target.as_str(), None);
            let _ = sink.send(record(&agent, &test, target, start, t0.elapsed(), outcome));
            return;
        }
    };
    if peers.is_empty() {
        tracing::debug!(test = %test.name, "no peer to measure (the name resolves to us only)");
    }
    let spread = test.packet_interval.min(Duration::from_secs(1));
    let n = peers.len() as u32;
    let mut set = JoinSet::new();
    for (i, (peer, target)) in peers.into_iter().enumerate() {
        let (agent, target, stop) = (agent.clone(), target.to_owned(), stop.clone());
        let (test, sink, targets) = (Arc::clone(&test), sink.clone(), Arc::clone(&targets));
        let delay = spread * i as u32 / n.max(1);
        set.spawn(async move {
            tokio::time::sleep(delay).await;
            let start = unix_ns();
            let t0 = Instant::now();
            // On the heap once: each layer of the run then keeps a pointer, not a copy of
            // the timers inside (thousands of runs are in flight).
            let stop = Box::pin(cut_reason(deadline, test.deadline, stop));
            let io = (targets.http_context(), targets.shared().a2a_pool());
            let outcome = runner::run(&test, peer, io, stop).await;
            let at = (target.as_str(), Some(peer.to_string()));
            let _ = sink.send(record(&agent, &test, at, start, t0.elapsed(), outcome));
        });
    }
    // Members behind NAT, measured over the control connection they keep to us.
    if let Some(links) = targets.shared().mesh_links() {
        for member in crate::mesh_nat::members_of(targets.shared(), &test) {
            let (agent, stop, sink) = (agent.clone(), stop.clone(), sink.clone());
            let (test, links) = (Arc::clone(&test), links.clone());
            set.spawn(async move {
                let start = unix_ns();
                let t0 = Instant::now();
                let outcome = tokio::select! {
                    o = crate::mesh_nat::run_member(&test, &links, &member) => o,
                    why = cut_reason(deadline, test.deadline, stop) => Outcome {
                        report: serde_json::Value::Null,
                        failure: Some(Failure::new(ErrorClass::CutShort, why)),
                    },
                };
                let at = (test.target.as_str(), Some(member.join.name.clone()));
                let _ = sink.send(record(&agent, &test, at, start, t0.elapsed(), outcome));
            });
        }
    }
    while let Some(r) = set.join_next().await {
        if let Err(e) = r {
            tracing::error!(test = %test.name, "a test task failed: {e}");
        }
    }
}

/// Runs the schedule of `cfg` until [`Command::Stop`] (or the sender is dropped); in-flight
/// runs then get `grace` to finish.
pub async fn run(
    mut cfg: Config,
    shared: Arc<AgentShared>,
    mut spool: Spool,
    mut commands: mpsc::Receiver<Command>,
    grace: Duration,
) {
    let origin = tokio::time::Instant::now();
    let now_ns = || origin.elapsed().as_nanos() as u64;
    let mut generation = 0u64;
    let mut sched = Scheduler::new(&specs(&cfg), now_ns(), rand::random());
    let mut targets = Arc::new(Targets::new(&cfg, Arc::clone(&shared)));
    let mut first_done = vec![false; cfg.tests.len()];
    let (stop_tx, stop_rx) = watch::channel(None);
    let mut runs: JoinSet<(u64, usize)> = JoinSet::new();
    // The records of the runs, as each peer finishes; written in batches (one fdatasync each).
    let (sink, mut records) = mpsc::unbounded_channel();
    let mut batch = Vec::new();
    shared.set_config_loaded();
    if cfg.tests.is_empty() {
        shared.set_first_schedule_run();
    }
    let store = |spool: &mut Spool, records: Vec<ResultRecord>| {
        let (written, failure) = spool.append_all(records);
        if let Some(e) = failure {
            tracing::error!("{e}; results not spooled stay in memory only");
        }
        for r in written {
            tracing::debug!(
                seq = r.seq,
                test = %r.test,
                peer = r.peer.as_deref().unwrap_or("-"),
                ok = r.ok,
                "result spooled"
            );
            shared.push(r);
        }
    };
    loop {
        let wake = sched
            .next_wake_ns()
            .map_or(origin + Duration::from_secs(3600), |ns| {
                origin + Duration::from_nanos(ns)
            });
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {
                let name = shared.info().name;
                for action in sched.poll(now_ns()) {
                    match action {
                        Action::Start { test, deadline_ns, .. } => {
                            let t = cfg.tests[test].clone();
                            let deadline = origin + Duration::from_nanos(deadline_ns);
                            let (name, targets, stop) =
                                (name.clone(), targets.clone(), stop_rx.clone());
                            let sink = sink.clone();
                            runs.spawn(async move {
                                one_run(name, t, targets, deadline, stop, sink).await;
                                (generation, test)
                            });
                        }
                        Action::Skip { test, reason, .. } => {
                            let t = &cfg.tests[test];
                            tracing::info!(test = %t.name, "skipped: {reason}");
                            let outcome = Outcome {
                                report: serde_json::Value::Null,
                                failure: Some(Failure::new(ErrorClass::Skipped, reason)),
                            };
                            let at = (t.target.as_str(), None);
                            store(&mut spool, vec![record(&name, t, at, unix_ns(), Duration::ZERO, outcome)]);
                            first_done[test] = true;
                        }
                    }
                }
            }
            n = records.recv_many(&mut batch, 4096) => {
                if n > 0 {
                    store(&mut spool, std::mem::take(&mut batch));
                }
            }
            Some(done) = runs.join_next() => {
                // Its records were sent before it ended: store them first.
                while let Ok(r) = records.try_recv() {
                    batch.push(r);
                }
                store(&mut spool, std::mem::take(&mut batch));
                match done {
                    Ok((g, test)) => {
                        if g == generation {
                            sched.finished(test);
                            first_done[test] = true;
                        }
                    }
                    Err(e) => tracing::error!("a test run task failed: {e}"),
                }
            }
            cmd = commands.recv() => match cmd {
                Some(Command::Reload(new)) => {
                    tracing::info!(tests = new.tests.len(), "configuration reloaded");
                    cfg = *new;
                    generation += 1;
                    sched = Scheduler::new(&specs(&cfg), now_ns(), rand::random());
                    targets = Arc::new(Targets::new(&cfg, Arc::clone(&shared)));
                    shared.retain_tests(&cfg.tests.iter().map(|t| t.name.clone()).collect());
                    first_done = vec![false; cfg.tests.len()];
                    shared.set_name_and_tags(cfg.name.clone(), cfg.tags.clone());
                }
                Some(Command::Stop) | None => break,
            },
        }
        if first_done.iter().all(|d| *d) {
            shared.set_first_schedule_run();
        }
    }
    let _ = stop_tx.send(Some(tokio::time::Instant::now() + grace));
    while let Some(done) = runs.join_next().await {
        if let Err(e) = done {
            tracing::error!("a test run task failed: {e}");
        }
    }
    while let Ok(r) = records.try_recv() {
        batch.push(r);
    }
    store(&mut spool, batch);
    tracing::info!(
        next_seq = spool.next_seq(),
        "the run loop stopped; the spool is flushed"
    );
}
