//! From a test's target to the peers a run measures: an address or `HOST:PORT` is one peer; a
//! name is resolved (again every `mesh.resolve_interval`) and every address but the agent's
//! own is a peer, or a stable subset of them with `mesh.max_peers` (see [`crate::mesh`]).

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use probe_core::a2a::runtime::PeerSpec;
use probe_core::dns::Family;
use probe_core::{DnsConfig, Resolver};

use crate::config::{Config, Inet, TestConfig};
use crate::mesh::PeerSet;
use crate::record::ErrorClass;
use crate::runner::{Failure, HttpContext, classify_dns};
use crate::state::AgentShared;

struct Cached {
    peers: PeerSet,
    resolved_at: Instant,
}

/// The peers of every test, with the resolution cache.
pub struct Targets {
    shared: std::sync::Arc<AgentShared>,
    http: HttpContext,
    resolver: Option<Resolver>,
    family: Family,
    agent_id: String,
    max_peers: Option<usize>,
    resolve_interval: Duration,
    cache: Mutex<HashMap<String, Cached>>,
}

impl std::fmt::Debug for Targets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Targets")
            .field("agent_id", &self.agent_id)
            .field("max_peers", &self.max_peers)
            .finish_non_exhaustive()
    }
}

/// The resolver settings of a configuration.
pub fn dns_config(cfg: &Config) -> Result<DnsConfig, probe_core::DnsError> {
    if cfg.dns.is_empty() {
        return Ok(DnsConfig::default());
    }
    let servers = cfg
        .dns
        .iter()
        .map(|s| probe_core::dns::parse_server(s))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DnsConfig::custom(servers))
}

impl Targets {
    /// Targets resolved as `cfg` says, for the agent `agent_id`. A resolver that cannot be
    /// made (no system configuration) only fails the tests that need names.
    /// The peers measured are published to `shared`.
    pub fn new(cfg: &Config, shared: std::sync::Arc<AgentShared>) -> Targets {
        let agent_id = shared.info().id;
        let dns = dns_config(cfg).unwrap_or_default();
        let resolver = match Resolver::new(&dns) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!("no DNS resolver ({e}); tests toward names will fail");
                None
            }
        };
        let family = match cfg.inet {
            Inet::V4 => Family::V4,
            Inet::V6 => Family::V6,
            Inet::Any => Family::Any,
        };
        Targets {
            shared,
            http: HttpContext {
                dns,
                family,
                proxy: cfg.proxy.clone(),
                control: crate::runner_quic::ControlContext {
                    state_dir: cfg.state_dir.clone(),
                    token: cfg.token.clone(),
                },
            },
            resolver,
            family,
            agent_id,
            max_peers: cfg.mesh.max_peers,
            resolve_interval: cfg.mesh.resolve_interval,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The state the peers are published to.
    pub fn shared(&self) -> &AgentShared {
        &self.shared
    }

    /// What http tests need of the configuration.
    pub fn http_context(&self) -> &HttpContext {
        &self.http
    }

    /// The peers `test` measures now, over all its targets, each with the target it came
    /// from (not for http and dns: the URL names its server, a dns test asks its servers).
    pub async fn peers<'t>(
        &self,
        test: &'t TestConfig,
    ) -> Result<Vec<(SocketAddr, &'t str)>, Failure> {
        let mut peers = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for target in test.all_targets() {
            for peer in self.peers_of(test, target).await? {
                if seen.insert(peer) {
                    peers.push((peer, target));
                }
            }
        }
        let members = crate::mesh_nat::members_of(&self.shared, test);
        crate::mesh_nat::without_members(&mut peers, &members, |(p, _)| *p);
        let labels = peers.iter().map(|(p, _)| p.to_string());
        let names = members.iter().map(|m| m.join.name.clone());
        self.shared
            .set_peers(&test.name, labels.chain(names).collect());
        Ok(peers)
    }

    /// The peers of one target of `test` (not published).
    pub(crate) async fn peers_of(
        &self,
        test: &TestConfig,
        target: &str,
    ) -> Result<Vec<SocketAddr>, Failure> {
        let spec = PeerSpec::parse(target, test.port)
            .map_err(|e| Failure::new(ErrorClass::Other, e.to_string()))?;
        if let Ok(ip) = spec.host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, spec.port)]);
        }
        // One cache entry per test and name (a ping test may list several names).
        let key = format!("{}\n{}", test.name, spec.host);
        let fresh = {
            let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            cache
                .get(&key)
                .filter(|c| c.resolved_at.elapsed() < self.resolve_interval)
                .map(|c| c.peers.peers().collect::<Vec<_>>())
        };
        let ips = match fresh {
            Some(ips) => ips,
            None => self.resolve(key, test, &spec.host).await?,
        };
        Ok(ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, spec.port))
            .collect())
    }

    async fn resolve(
        &self,
        key: String,
        test: &TestConfig,
        host: &str,
    ) -> Result<Vec<IpAddr>, Failure> {
        let Some(resolver) = &self.resolver else {
            return Err(Failure::new(
                ErrorClass::NameNotFound,
                format!("cannot resolve `{host}`: no DNS resolver (set PROBE_DNS)"),
            ));
        };
        let resolved = resolver
            .lookup_host(host, self.family)
            .await
            .map_err(|e| Failure::new(classify_dns(&e), e.to_string()))?;
        let own = own_addresses();
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = cache.entry(key).or_insert_with(|| Cached {
            peers: PeerSet::default(),
            resolved_at: Instant::now(),
        });
        let change = entry
            .peers
            .update(&resolved, &own, self.max_peers, &self.agent_id);
        entry.resolved_at = Instant::now();
        if !change.joined.is_empty() || !change.left.is_empty() {
            tracing::info!(
                test = %test.name,
                joined = ?change.joined,
                left = ?change.left,
                "mesh peers of `{host}` changed"
            );
        }
        Ok(entry.peers.peers().collect())
    }
}

/// The addresses of this host's interfaces (a mesh name resolving to one of them is us).
pub fn own_addresses() -> BTreeSet<IpAddr> {
    let mut out = BTreeSet::new();
    match nix::ifaddrs::getifaddrs() {
        Ok(addrs) => {
            for a in addrs {
                let Some(sa) = a.address else { continue };
                if let Some(v4) = sa.as_sockaddr_in() {
                    out.insert(IpAddr::V4(v4.ip()));
                } else if let Some(v6) = sa.as_sockaddr_in6() {
                    out.insert(IpAddr::V6(v6.ip()));
                }
            }
        }
        Err(e) => tracing::warn!("cannot list this host's addresses: {e}"),
    }
    out
}
