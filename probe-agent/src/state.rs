//! The agent's shared state: who it is, whether it is ready, and its recent results.
//!
//! The run loop writes it; the HTTP endpoints and exporters read it. [`AgentShared`] is cheap
//! to share (`Arc`) and never blocks a writer for long: the recent results are a bounded ring
//! behind a mutex held only to push or copy, and every new record is also broadcast so that
//! metrics follow without polling.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use probe_core::a2a::runtime::SessionPool;
use serde::Serialize;
use tokio::sync::{broadcast, watch};

use crate::record::ResultRecord;

/// How many recent results the ring keeps by default.
pub const DEFAULT_RECENT: usize = 4096;

/// How many records a slow broadcast subscriber may lag before it loses the oldest.
const BROADCAST_DEPTH: usize = 1024;

/// How late the a2a pool may serve a deadline so that the packets due within it leave in one
/// batch and one wake-up: thousands of peers at a packet a second each are due every few
/// hundred microseconds. The packets' send times are their (kernel) timestamps, so a later
/// send does not change the delays measured; the report's schedule error shows it.
pub const A2A_POOL_SLACK: std::time::Duration = std::time::Duration::from_millis(4);

/// Who the agent is, as `GET /` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AgentInfo {
    /// The control identity's fingerprint (hex SHA-256 of the public key).
    pub fingerprint: String,
    /// The agent id, derived from the fingerprint (stable across restarts).
    pub id: String,
    /// The agent's name (`name`, `PROBE_NAME`, else the host name).
    pub name: String,
    /// The agent's tags (`tags`, `PROBE_TAGS`).
    pub tags: Vec<String>,
    /// The probe version.
    pub version: String,
}

/// What `/readyz` checks, each flag set once by the run loop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Readiness {
    /// The STAMP responder and the control plane are bound.
    pub responder_bound: bool,
    /// A valid configuration is loaded.
    pub config_loaded: bool,
    /// Every configured test has had its first scheduled run (or there are none).
    pub first_schedule_run: bool,
}

impl Readiness {
    /// Whether every flag is set.
    pub fn ready(self) -> bool {
        self.responder_bound && self.config_loaded && self.first_schedule_run
    }
}

/// The state shared between the run loop (writer) and the endpoints and exporters (readers).
#[derive(Debug)]
pub struct AgentShared {
    info: watch::Sender<AgentInfo>,
    responder_bound: AtomicBool,
    config_loaded: AtomicBool,
    first_schedule_run: AtomicBool,
    /// The recent records as their JSON text compressed with Snappy (a parsed report weighs
    /// several times its text, the text about three times its compressed form, and a mesh
    /// agent keeps thousands), with their start times.
    recent: Mutex<VecDeque<(u64, Box<[u8]>)>>,
    recent_cap: usize,
    records: broadcast::Sender<ResultRecord>,
    peers: watch::Sender<Peers>,
    mesh_links: std::sync::OnceLock<Arc<probe_core::control::MeshLinks>>,
    /// The metrics every record updates as it is pushed (never behind the results).
    metrics: std::sync::OnceLock<Arc<crate::export::Metrics>>,
    /// The a2a runs toward the peers: one socket per family, one loop, one timer.
    a2a_pool: SessionPool,
}

/// The peers each test measures now, by test name (`ADDR:PORT` strings, as in
/// [`ResultRecord::peer`]). A peer that left the mesh, or a test removed by a reload, is no
/// longer here: exporters drop its series.
pub type Peers = BTreeMap<String, BTreeSet<String>>;

impl AgentShared {
    /// New shared state for `info`, keeping up to `recent` results in memory (at least one).
    pub fn new(info: AgentInfo, recent: usize) -> Arc<Self> {
        let (records, _) = broadcast::channel(BROADCAST_DEPTH);
        Arc::new(Self {
            info: watch::Sender::new(info),
            responder_bound: AtomicBool::new(false),
            config_loaded: AtomicBool::new(false),
            first_schedule_run: AtomicBool::new(false),
            recent: Mutex::new(VecDeque::new()),
            recent_cap: recent.max(1),
            records,
            peers: watch::Sender::new(Peers::new()),
            mesh_links: std::sync::OnceLock::new(),
            metrics: std::sync::OnceLock::new(),
            a2a_pool: SessionPool::new(A2A_POOL_SLACK),
        })
    }

    /// Sets the metrics that every pushed record updates (once).
    pub fn set_metrics(&self, metrics: Arc<crate::export::Metrics>) {
        let _ = self.metrics.set(metrics);
    }

    /// The pool the a2a runs toward the peers share.
    pub fn a2a_pool(&self) -> &SessionPool {
        &self.a2a_pool
    }

    /// Sets the registry of the members behind NAT joined over the control plane (once).
    pub fn set_mesh_links(&self, links: Arc<probe_core::control::MeshLinks>) {
        let _ = self.mesh_links.set(links);
    }

    /// The members behind NAT joined over the control plane, when it runs.
    pub fn mesh_links(&self) -> Option<Arc<probe_core::control::MeshLinks>> {
        self.mesh_links.get().cloned()
    }

    /// Sets the peers `test` measures now.
    pub fn set_peers(&self, test: &str, peers: BTreeSet<String>) {
        self.peers.send_if_modified(|all| {
            if all.get(test) == Some(&peers) {
                return false;
            }
            all.insert(test.to_owned(), peers);
            true
        });
    }

    /// Keeps only the tests named in `tests` (after a reload).
    pub fn retain_tests(&self, tests: &BTreeSet<String>) {
        self.peers.send_if_modified(|all| {
            let before = all.len();
            all.retain(|t, _| tests.contains(t));
            all.len() != before
        });
    }

    /// The peers of every test now.
    pub fn peers(&self) -> Peers {
        self.peers.borrow().clone()
    }

    /// Follows changes of the peers.
    pub fn watch_peers(&self) -> watch::Receiver<Peers> {
        self.peers.subscribe()
    }

    /// Who the agent is now.
    pub fn info(&self) -> AgentInfo {
        self.info.borrow().clone()
    }

    /// Follows changes of the agent's info (a reload may change its name or tags).
    pub fn watch_info(&self) -> watch::Receiver<AgentInfo> {
        self.info.subscribe()
    }

    /// Replaces the name and tags (after a configuration reload).
    pub fn set_name_and_tags(&self, name: String, tags: Vec<String>) {
        self.info.send_modify(|i| {
            i.name = name;
            i.tags = tags;
        });
    }

    /// The readiness flags now.
    pub fn readiness(&self) -> Readiness {
        Readiness {
            responder_bound: self.responder_bound.load(Ordering::Acquire),
            config_loaded: self.config_loaded.load(Ordering::Acquire),
            first_schedule_run: self.first_schedule_run.load(Ordering::Acquire),
        }
    }

    /// Marks the responder and control plane bound.
    pub fn set_responder_bound(&self) {
        self.responder_bound.store(true, Ordering::Release);
    }

    /// Marks a valid configuration loaded.
    pub fn set_config_loaded(&self) {
        self.config_loaded.store(true, Ordering::Release);
    }

    /// Marks the first scheduled run of every test done.
    pub fn set_first_schedule_run(&self) {
        self.first_schedule_run.store(true, Ordering::Release);
    }

    /// Records a finished run: into the metrics, into the ring (dropping the oldest beyond
    /// the bound) and to every subscriber.
    pub fn push(&self, record: ResultRecord) {
        if let Some(m) = self.metrics.get() {
            m.observe(&record);
        }
        // Encoded before the lock is taken: readers wait only for the push.
        let packed = serde_json::to_vec(&record)
            .map_err(|e| e.to_string())
            .and_then(|json| {
                snap::raw::Encoder::new()
                    .compress_vec(&json)
                    .map_err(|e| e.to_string())
            });
        match packed {
            Ok(packed) => {
                let mut ring = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
                if ring.len() == self.recent_cap {
                    ring.pop_front();
                }
                ring.push_back((record.start_unix_ns, packed.into_boxed_slice()));
            }
            Err(e) => tracing::warn!("a result cannot be kept for /results: {e}"),
        }
        // No subscriber is not an error: the ring still has it.
        let _ = self.records.send(record);
    }

    /// The recent results that started at or after `since_unix_ns`, oldest first.
    pub fn recent_since(&self, since_unix_ns: u64) -> Vec<ResultRecord> {
        // The matching entries are copied out under the lock and decoded after it.
        let packed: Vec<Box<[u8]>> = {
            let ring = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
            ring.iter()
                .filter(|(start, _)| *start >= since_unix_ns)
                .map(|(_, packed)| packed.clone())
                .collect()
        };
        let mut decoder = snap::raw::Decoder::new();
        packed
            .iter()
            .filter_map(|p| decoder.decompress_vec(p).ok())
            .filter_map(|json| serde_json::from_slice(&json).ok())
            .collect()
    }

    /// Every new record from now on (a subscriber lagging more than about a thousand records
    /// gets `RecvError::Lagged` and continues with newer ones).
    pub fn subscribe(&self) -> broadcast::Receiver<ResultRecord> {
        self.records.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> AgentInfo {
        AgentInfo {
            fingerprint: "ab".repeat(32),
            id: "abababab".into(),
            name: "edge-1".into(),
            tags: vec!["dc1".into()],
            version: "0.1.0".into(),
        }
    }

    fn record(seq: u64) -> ResultRecord {
        ResultRecord {
            seq,
            start_unix_ns: seq * 1000,
            duration_ns: 1,
            agent: "edge-1".into(),
            test: "t".into(),
            kind: "a2a".into(),
            target: "x".into(),
            peer: None,
            ok: true,
            error_class: None,
            error: None,
            report: serde_json::json!({"rtt_ms": {"p50": seq as f64 / 4.0}, "peer": "x".repeat(200)}),
        }
    }

    #[test]
    fn the_ring_keeps_the_newest_and_subscribers_see_every_push() {
        let s = AgentShared::new(info(), 3);
        let mut rx = s.subscribe();
        for i in 0..5 {
            s.push(record(i));
        }
        let seqs: Vec<u64> = s.recent_since(0).iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [2, 3, 4]);
        let seqs: Vec<u64> = s.recent_since(3000).iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [3, 4]);
        // What comes out of the compressed ring is what went in.
        assert_eq!(s.recent_since(4000), [record(4)]);
        for i in 0..5 {
            assert_eq!(rx.try_recv().expect("record").seq, i);
        }
    }

    #[test]
    fn readiness_needs_all_three_flags() {
        let s = AgentShared::new(info(), 1);
        assert!(!s.readiness().ready());
        s.set_responder_bound();
        s.set_config_loaded();
        assert!(!s.readiness().ready());
        s.set_first_schedule_run();
        assert!(s.readiness().ready());
        s.set_name_and_tags("edge-2".into(), vec![]);
        assert_eq!(s.info().name, "edge-2");
        assert_eq!(s.info().fingerprint, "ab".repeat(32));
    }

    #[test]
    fn peers_follow_the_mesh_and_reloads() {
        let s = AgentShared::new(info(), 1);
        let mut rx = s.watch_peers();
        let set = |v: &[&str]| v.iter().map(|p| (*p).to_owned()).collect::<BTreeSet<_>>();
        s.set_peers("mesh", set(&["10.0.0.1:49153", "10.0.0.2:49153"]));
        s.set_peers("other", set(&["10.0.0.3:49153"]));
        assert!(rx.has_changed().expect("open"));
        rx.mark_unchanged();
        s.set_peers("mesh", set(&["10.0.0.1:49153", "10.0.0.2:49153"]));
        assert!(!rx.has_changed().expect("open"), "no change, no wake-up");
        s.set_peers("mesh", set(&["10.0.0.2:49153"]));
        s.retain_tests(&set(&["mesh"]));
        assert_eq!(
            s.peers(),
            Peers::from([("mesh".into(), set(&["10.0.0.2:49153"]))])
        );
    }
}
