//! The agent's run loop: the scheduler's actions become test runs (tokio tasks) and skipped
//! records; every record goes to the spool, then to the shared state. A reload swaps the
//! configuration between runs; a stop lets in-flight runs finish within a grace period and
//! records the rest as cut short.

use std::future::Future;
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

/// A record of `test` toward `peer` that started at `start_unix_ns` and took `took`.
fn record(
    agent: &str,
    test: &TestConfig,
    peer: Option<String>,
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
        target: test.target.clone(),
        peer,
        ok: class.is_none(),
        error_class: class,
        error,
        report: outcome.report,
    }
}

fn cut_short(why: String) -> Outcome {
    Outcome {
        report: serde_json::Value::Null,
        failure: Some(Failure::new(ErrorClass::CutShort, why)),
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

/// One run of `test`: every peer of its target, side by side, each cut short at `deadline`
/// or when the agent stops.
async fn one_run(
    agent: String,
    test: TestConfig,
    targets: Arc<Targets>,
    deadline: tokio::time::Instant,
    stop: watch::Receiver<Option<tokio::time::Instant>>,
) -> Vec<ResultRecord> {
    let start = unix_ns();
    let t0 = Instant::now();
    if !test.kind.has_peers() {
        let ctx = targets.http_context().clone();
        let outcome = tokio::select! {
            o = runner::run(&test, std::net::SocketAddr::from(([0, 0, 0, 0], 0)), &ctx) => o,
            () = tokio::time::sleep_until(deadline) => cut_short(format!(
                "the run passed its deadline of {}",
                humantime::format_duration(test.deadline)
            )),
            () = grace_over(stop) => cut_short("the agent stopped before the run finished".into()),
        };
        return vec![record(&agent, &test, None, start, t0.elapsed(), outcome)];
    }
    let peers = match targets.peers(&test).await {
        Ok(p) => p,
        Err(f) => {
            return vec![record(
                &agent,
                &test,
                None,
                start,
                t0.elapsed(),
                Outcome {
                    report: serde_json::Value::Null,
                    failure: Some(f),
                },
            )];
        }
    };
    if peers.is_empty() {
        tracing::debug!(test = %test.name, "no peer to measure (the name resolves to us only)");
    }
    let mut set = JoinSet::new();
    let bounded = |peer: String, run: std::pin::Pin<Box<dyn Future<Output = Outcome> + Send>>| {
        let (agent, test, stop) = (agent.clone(), test.clone(), stop.clone());
        async move {
            let start = unix_ns();
            let t0 = Instant::now();
            let outcome = tokio::select! {
                o = run => o,
                () = tokio::time::sleep_until(deadline) => cut_short(format!(
                    "the run passed its deadline of {}",
                    humantime::format_duration(test.deadline)
                )),
                () = grace_over(stop) => cut_short("the agent stopped before the run finished".into()),
            };
            record(&agent, &test, Some(peer), start, t0.elapsed(), outcome)
        }
    };
    for peer in peers {
        let (test, ctx) = (test.clone(), targets.http_context().clone());
        let run = async move { runner::run(&test, peer, &ctx).await };
        set.spawn(bounded(peer.to_string(), Box::pin(run)));
    }
    // Members behind NAT, measured over the control connection they keep to us.
    if let Some(links) = targets.shared().mesh_links() {
        for member in crate::mesh_nat::members_of(targets.shared(), &test) {
            let (test, links, name) = (test.clone(), links.clone(), member.join.name.clone());
            let run = async move { crate::mesh_nat::run_member(&test, &links, &member).await };
            set.spawn(bounded(name, Box::pin(run)));
        }
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(rec) => out.push(rec),
            Err(e) => tracing::error!(test = %test.name, "a test task failed: {e}"),
        }
    }
    out.sort_by(|a, b| a.peer.cmp(&b.peer));
    out
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
    let mut runs: JoinSet<(u64, usize, Vec<ResultRecord>)> = JoinSet::new();
    shared.set_config_loaded();
    if cfg.tests.is_empty() {
        shared.set_first_schedule_run();
    }
    let store = |spool: &mut Spool, rec: ResultRecord| match spool.append(rec.clone()) {
        Ok(written) => {
            tracing::debug!(
                seq = written.seq,
                test = %written.test,
                peer = written.peer.as_deref().unwrap_or("-"),
                ok = written.ok,
                "result spooled"
            );
            shared.push(written);
        }
        Err(e) => {
            tracing::error!("{e}; the result stays in memory only");
            shared.push(rec);
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
                            runs.spawn(async move {
                                (generation, test, one_run(name, t, targets, deadline, stop).await)
                            });
                        }
                        Action::Skip { test, reason, .. } => {
                            let t = &cfg.tests[test];
                            tracing::info!(test = %t.name, "skipped: {reason}");
                            store(&mut spool, record(&name, t, None, unix_ns(), Duration::ZERO, Outcome {
                                report: serde_json::Value::Null,
                                failure: Some(Failure::new(ErrorClass::Skipped, reason)),
                            }));
                            first_done[test] = true;
                        }
                    }
                }
            }
            Some(done) = runs.join_next() => {
                match done {
                    Ok((g, test, records)) => {
                        for r in records {
                            store(&mut spool, r);
                        }
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
        match done {
            Ok((_, _, records)) => {
                for r in records {
                    store(&mut spool, r);
                }
            }
            Err(e) => tracing::error!("a test run task failed: {e}"),
        }
    }
    tracing::info!(
        next_seq = spool.next_seq(),
        "the run loop stopped; the spool is flushed"
    );
}
