//! Mesh members behind NAT without published ports (`mesh.behind_nat`, `PROBE_BEHIND_NAT`).
//!
//! An agent behind NAT cannot be reached, so its peers cannot run their tests toward it.
//! Instead it keeps an outbound control connection (QUIC, the peer's control port) to every
//! peer its a2a tests resolve, and joins the peer's mesh over it with its id, name, tags and
//! the targets that named the peer. The peer's a2a tests of those targets then measure the
//! member too: over that connection the peer invites the member to reflect one test, the
//! member punches the peer's sender port from its reflector (opening the NAT mapping) and the
//! peer sends its STAMP test through it. The peer's records and series carry the member's
//! name as the peer label, and end with the membership (connection closed, or no join
//! again in time). The member measures its peers as every agent does (outbound STAMP
//! passes the NAT).
//!
//! A connection that fails is opened again with an exponential backoff; peers that leave the
//! resolution lose their connection. The NAT is declared, not detected: from inside, an agent
//! cannot tell whether its peers can reach it.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use probe_core::control::mesh::{Member, MeshJoin};
use probe_core::control::{MeshLinks, MeshTestError, connect, serve_member};
use tokio::sync::watch;

use crate::config::{Config, Kind, TestConfig};
use crate::record::ErrorClass;
use crate::runner::{self, Failure, Outcome};
use crate::state::AgentShared;
use crate::targets::Targets;

/// How long a member's membership lasts at its peers after each join (it joins again at a
/// third of it).
pub const MEMBERSHIP_TTL: Duration = Duration::from_secs(30);
/// First wait before a failed connection is opened again.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// Longest wait between attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Exponential backoff between connection attempts: doubling from one second to thirty,
/// back to one second after a connection that worked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: BACKOFF_FIRST,
        }
    }
}

impl Backoff {
    /// The wait before the next attempt; the one after is twice as long (up to the maximum).
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        wait
    }

    /// A connection worked: the next failure waits the first wait again.
    pub fn reset(&mut self) {
        self.next = BACKOFF_FIRST;
    }
}

/// The control connections a member wants: each peer's control address (the resolved
/// address with `control_port`), with the targets that named it. `resolved` is each a2a
/// target with its peers.
pub fn wanted_links(
    resolved: &[(String, Vec<SocketAddr>)],
    control_port: u16,
) -> BTreeMap<SocketAddr, Vec<String>> {
    let mut out: BTreeMap<SocketAddr, Vec<String>> = BTreeMap::new();
    for (target, peers) in resolved {
        for p in peers {
            let targets = out
                .entry(SocketAddr::new(p.ip(), control_port))
                .or_default();
            if !targets.contains(target) {
                targets.push(target.clone());
            }
        }
    }
    out
}

/// The members behind NAT that `test` measures: those joined here that share one of its
/// targets (a2a tests only: the other kinds cannot reach them).
pub fn members_of(shared: &AgentShared, test: &TestConfig) -> Vec<Member> {
    // A QUIC test opens connections of its own toward the peer, which a member behind NAT
    // cannot take.
    if test.kind != Kind::A2a || test.proto == crate::config::A2aProto::Quic {
        return Vec::new();
    }
    let Some(links) = shared.mesh_links() else {
        return Vec::new();
    };
    links
        .members()
        .into_iter()
        .filter(|m| m.shares_target(test.all_targets().into_iter()))
        .collect()
}

/// `peers` without the addresses the members of `test` claim as their own (a mesh name may
/// list a member's address behind its NAT: the member is measured over its connection).
/// `addr` gives a peer entry's address.
pub fn without_members<T>(peers: &mut Vec<T>, members: &[Member], addr: impl Fn(&T) -> SocketAddr) {
    peers.retain(|p| {
        !members
            .iter()
            .any(|m| m.join.addresses.contains(&addr(p).ip().to_canonical()))
    });
}

/// One a2a run of `test` toward `member` through its connection.
pub async fn run_member(test: &TestConfig, links: &MeshLinks, member: &Member) -> Outcome {
    let options = runner::a2a_options(test, member.remote);
    match links.run_stamp(&member.join.id, options).await {
        Ok(outcome) => runner::a2a_outcome(
            &outcome,
            &format!("mesh member {} ({})", member.join.name, member.remote),
        ),
        Err(e) => runner::failed(match e {
            MeshTestError::Test(e) => runner::classify_a2a(&e),
            MeshTestError::Refused { .. } => Failure::new(ErrorClass::Refused, e.to_string()),
            MeshTestError::Socket { ref source, .. } => {
                Failure::new(runner::classify_io(source), e.to_string())
            }
            MeshTestError::Config(_) => Failure::new(ErrorClass::Other, e.to_string()),
            _ => Failure::new(ErrorClass::Unreachable, e.to_string()),
        }),
    }
}

struct Link {
    targets: Vec<String>,
    task: tokio::task::JoinHandle<()>,
}

/// Keeps the member's control connections while the configuration says `mesh.behind_nat`:
/// resolves the a2a targets every `mesh.resolve_interval`, opens a connection to each peer
/// found, closes those of peers gone. Ends when `stop` completes.
pub async fn run(
    mut config: watch::Receiver<Config>,
    shared: Arc<AgentShared>,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut links: HashMap<SocketAddr, Link> = HashMap::new();
    tokio::pin!(stop);
    loop {
        let cfg = config.borrow_and_update().clone();
        let wanted = if cfg.mesh.behind_nat {
            resolve(&cfg, &shared).await
        } else {
            BTreeMap::new()
        };
        links.retain(|addr, link| {
            let keep = wanted.get(addr) == Some(&link.targets) && !link.task.is_finished();
            if !keep {
                tracing::info!("mesh: closing the member connection to {addr}");
                link.task.abort();
            }
            keep
        });
        for (addr, targets) in wanted {
            links.entry(addr).or_insert_with(|| {
                tracing::info!(targets = ?targets, "mesh: joining {addr} as a member behind NAT");
                let task = tokio::spawn(keep_link(
                    addr,
                    targets.clone(),
                    cfg.clone(),
                    Arc::clone(&shared),
                ));
                Link { targets, task }
            });
        }
        let every = cfg.mesh.resolve_interval.max(Duration::from_secs(1));
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            r = config.changed() => if r.is_err() { break },
            () = &mut stop => break,
        }
    }
    for link in links.values() {
        link.task.abort();
    }
}

/// Every a2a target's peers now, as control addresses with the targets naming them.
async fn resolve(cfg: &Config, shared: &Arc<AgentShared>) -> BTreeMap<SocketAddr, Vec<String>> {
    let targets = Targets::new(cfg, Arc::clone(shared));
    let mut resolved = Vec::new();
    for test in cfg.tests.iter().filter(|t| t.kind == Kind::A2a) {
        for target in test.all_targets() {
            match targets.peers_of(test, target).await {
                Ok(peers) => resolved.push((target.to_owned(), peers)),
                Err(f) => tracing::warn!(test = %test.name, "mesh: {}", f.message),
            }
        }
    }
    wanted_links(&resolved, cfg.control_port)
}

/// One peer's connection, opened again with backoff whenever it fails.
async fn keep_link(
    server: SocketAddr,
    targets: Vec<String>,
    cfg: Config,
    shared: Arc<AgentShared>,
) {
    let mut backoff = Backoff::default();
    loop {
        let mut joined = false;
        let why = session(server, &targets, &cfg, &shared, || joined = true).await;
        if joined {
            backoff.reset();
        }
        let wait = backoff.next_wait();
        tracing::warn!("mesh: the member connection to {server} ended ({why}); again in {wait:?}");
        tokio::time::sleep(wait).await;
    }
}

/// Connects, says hello, joins and serves invites until the connection fails; why it ended.
async fn session(
    server: SocketAddr,
    targets: &[String],
    cfg: &Config,
    shared: &AgentShared,
    joined: impl FnOnce(),
) -> String {
    let config =
        match crate::runner_quic::control_config(server, &cfg.state_dir, cfg.token.as_deref()) {
            Ok(c) => c,
            Err(e) => return e,
        };
    let client = match connect(config).await {
        Ok(c) => c,
        Err(e) => return e.to_string(),
    };
    if let Err(e) = client.hello().await {
        client.close().await;
        return e.to_string();
    }
    let info = shared.info();
    let join = MeshJoin {
        id: info.id,
        name: info.name,
        tags: info.tags,
        targets: targets.to_vec(),
        addresses: crate::targets::own_addresses()
            .into_iter()
            .filter(|a| !a.is_loopback() && !a.is_unspecified())
            .collect(),
    };
    let why = match serve_member(&client, &join, joined).await {
        Ok(()) => "closed".to_owned(),
        Err(e) => e.to_string(),
    };
    client.close().await;
    why
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_maximum_and_resets_after_a_connection() {
        let mut b = Backoff::default();
        let waits: Vec<u64> = (0..7).map(|_| b.next_wait().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
        b.reset();
        assert_eq!(b.next_wait(), Duration::from_secs(1));
    }

    #[test]
    fn addresses_members_claim_are_not_measured_as_plain_peers() {
        let member = Member {
            join: MeshJoin {
                id: "a".into(),
                name: "edge".into(),
                tags: Vec::new(),
                targets: vec!["mesh".into()],
                addresses: vec!["172.17.0.2".parse().expect("ip")],
            },
            remote: "198.18.0.1:40000".parse().expect("addr"),
        };
        let mut peers: Vec<SocketAddr> = ["172.17.0.2:49153", "198.18.1.2:49153"]
            .iter()
            .map(|a| a.parse().expect("addr"))
            .collect();
        without_members(&mut peers, &[member], |p| *p);
        assert_eq!(peers, ["198.18.1.2:49153".parse().expect("addr")]);
    }

    #[test]
    fn one_link_per_peer_with_every_target_naming_it() {
        let a: SocketAddr = "10.0.0.1:49153".parse().expect("addr");
        let b: SocketAddr = "10.0.0.2:49153".parse().expect("addr");
        let resolved = vec![
            ("mesh.example".to_owned(), vec![a, b]),
            ("core.example".to_owned(), vec![b]),
            ("mesh.example".to_owned(), vec![a]),
        ];
        let wanted = wanted_links(&resolved, 49152);
        let ca: SocketAddr = "10.0.0.1:49152".parse().expect("addr");
        let cb: SocketAddr = "10.0.0.2:49152".parse().expect("addr");
        assert_eq!(
            wanted,
            BTreeMap::from([
                (ca, vec!["mesh.example".to_owned()]),
                (
                    cb,
                    vec!["mesh.example".to_owned(), "core.example".to_owned()]
                ),
            ])
        );
        assert!(wanted_links(&[], 49152).is_empty());
    }
}
