//! Exports of the agent's results: the Prometheus metrics `/metrics` serves, and the pushes
//! for agents nothing can scrape.

pub mod metrics;
pub mod post;
pub mod remote_write;
pub mod upload;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::state::AgentShared;
pub use metrics::Metrics;

/// How often series without recent results are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Feeds `metrics` from the records of `shared` (each record updates them as it is pushed, so
/// they never fall behind a burst of results) and drops the series of peers that left or have
/// no recent result, until `stop` completes.
pub async fn follow_metrics(
    shared: Arc<AgentShared>,
    metrics: Arc<Metrics>,
    stop: impl std::future::Future<Output = ()>,
) {
    shared.set_metrics(Arc::clone(&metrics));
    let mut peers = shared.watch_peers();
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            changed = peers.changed() => {
                if changed.is_err() {
                    return;
                }
                let now = peers.borrow_and_update().clone();
                metrics.forget_peers_not_in(&now);
            }
            _ = sweep.tick() => {
                for gone in metrics.sweep(Instant::now()) {
                    tracing::debug!(test = %gone.test, peer = %gone.peer, "series removed: no recent result");
                }
            }
        }
    }
}
