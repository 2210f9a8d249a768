//! The resolver: forward lookups by family, reverse (PTR) lookups one at a time or in a bounded,
//! deadline-limited batch, with a PTR cache shared by clones.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::lookup::Lookup;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use lru::LruCache;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::debug;

use super::config::Prepared;
use super::error::LookupContext;
use super::{DnsConfig, DnsError, Family, ServerList};

/// How many reverse answers the cache keeps.
const PTR_CACHE_SIZE: NonZeroUsize = NonZeroUsize::MIN.saturating_add(4095);

/// Extra time past the lookup budget before our own guard gives up on hickory.
const GUARD_SLACK: Duration = Duration::from_millis(250);

/// A DNS resolver with probe's settings. Cheap to clone; clones share the PTR cache.
#[derive(Clone)]
pub struct Resolver {
    inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub hickory: TokioResolver,
    pub prepared: Prepared,
    pub servers: ServerList,
    pub config: DnsConfig,
    ptr_cache: Mutex<LruCache<IpAddr, Option<String>>>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("servers", &self.inner.servers.0)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Resolver {
    /// Builds a resolver; reads the resolv.conf file when `config.servers` says so. Sends
    /// nothing until asked.
    pub fn new(config: &DnsConfig) -> Result<Self, DnsError> {
        let prepared = Prepared::new(config)?;
        let servers = ServerList(prepared.servers.clone());
        let hickory = build_hickory(&prepared, &servers)?;
        Ok(Resolver {
            inner: Arc::new(Inner {
                hickory,
                prepared,
                servers,
                config: config.clone(),
                ptr_cache: Mutex::new(LruCache::new(PTR_CACHE_SIZE)),
            }),
        })
    }

    /// The servers this resolver asks, in order.
    pub fn servers(&self) -> &[SocketAddr] {
        &self.inner.servers.0
    }

    /// The settings it was built with.
    pub fn config(&self) -> &DnsConfig {
        &self.inner.config
    }

    /// Empties hickory's answer cache (the PTR cache of [`Resolver::reverse`] stays), so that
    /// the next lookup asks a server: for tests that time lookups one after another.
    pub fn clear_cache(&self) {
        self.inner.hickory.clear_cache();
    }

    pub(super) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// How long our own guard lets one hickory lookup run.
    pub(super) fn guard(&self) -> Duration {
        self.inner.config.lookup_budget() + GUARD_SLACK
    }

    pub(super) fn context<'a>(
        &'a self,
        name: &'a str,
        wanted: &'a str,
        servers: &'a ServerList,
    ) -> LookupContext<'a> {
        LookupContext {
            name,
            wanted,
            servers,
            timeout: self.inner.config.timeout,
            attempts: self.inner.config.attempts.max(1),
        }
    }

    /// The addresses of `host` in `family`: IPv4 before IPv6 for [`Family::Any`], each in the
    /// server's order. An address literal is returned as it is, without a query.
    ///
    /// With [`Family::Any`] one family failing is not an error when the other has addresses.
    pub async fn lookup_host(&self, host: &str, family: Family) -> Result<Vec<IpAddr>, DnsError> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return if family.admits(ip) {
                Ok(vec![ip])
            } else {
                Err(DnsError::WrongFamily {
                    addr: ip,
                    wanted: family.describe(),
                })
            };
        }
        let name = parse_name(host)?;
        match family {
            Family::V4 | Family::V6 => self.addresses(&name, host, family).await,
            Family::Any => {
                let (v4, v6) = tokio::join!(
                    self.addresses(&name, host, Family::V4),
                    self.addresses(&name, host, Family::V6)
                );
                match (v4, v6) {
                    (Ok(mut a), Ok(b)) => {
                        a.extend(b);
                        Ok(a)
                    }
                    (Ok(a), Err(e)) | (Err(e), Ok(a)) => {
                        debug!(host, error = %e, "one address family did not resolve");
                        Ok(a)
                    }
                    (Err(DnsError::NoData { .. }), Err(DnsError::NoData { .. })) => Err(self
                        .context(host, Family::Any.describe(), &self.inner.servers)
                        .negative(super::Rcode::NOERROR)),
                    (Err(DnsError::NoData { .. }), Err(e)) | (Err(e), Err(_)) => Err(e),
                }
            }
        }
    }

    /// The A or AAAA addresses of `name`.
    async fn addresses(
        &self,
        name: &Name,
        host: &str,
        family: Family,
    ) -> Result<Vec<IpAddr>, DnsError> {
        let rtype = if family == Family::V6 {
            RecordType::AAAA
        } else {
            RecordType::A
        };
        let lookup = self
            .lookup_records(name, host, rtype, family.describe())
            .await?;
        let addrs: Vec<IpAddr> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            })
            .filter(|ip| family.admits(*ip))
            .collect();
        if addrs.is_empty() {
            return Err(self
                .context(host, family.describe(), &self.inner.servers)
                .negative(super::Rcode::NOERROR));
        }
        Ok(addrs)
    }

    /// One lookup through the shared hickory resolver, bounded by our guard.
    async fn lookup_records(
        &self,
        name: &Name,
        shown: &str,
        rtype: RecordType,
        wanted: &str,
    ) -> Result<Lookup, DnsError> {
        let cx = self.context(shown, wanted, &self.inner.servers);
        let query = self.inner.hickory.lookup(name.clone(), rtype);
        match tokio::time::timeout(self.guard(), query).await {
            Ok(Ok(lookup)) => Ok(lookup),
            Ok(Err(e)) => Err(cx.classify(e)),
            Err(_) => Err(cx.timeout()),
        }
    }

    /// The PTR name of `ip` (without the trailing dot), `None` when the server says there is
    /// none (NXDOMAIN or an empty answer). Answers, negative ones included, are cached; failures
    /// to get an answer are not.
    pub async fn reverse(&self, ip: IpAddr) -> Result<Option<String>, DnsError> {
        if let Some(hit) = self.cache().get(&ip).cloned() {
            return Ok(hit);
        }
        let shown = ip.to_string();
        let found = match self
            .lookup_records(&Name::from(ip), &shown, RecordType::PTR, "PTR")
            .await
        {
            Ok(lookup) => lookup.answers().iter().find_map(|r| match &r.data {
                RData::PTR(ptr) => Some(presentation(&ptr.0)),
                _ => None,
            }),
            Err(DnsError::NxDomain { .. } | DnsError::NoData { .. }) => None,
            Err(e) => return Err(e),
        };
        self.cache().put(ip, found.clone());
        Ok(found)
    }

    /// PTR names of many addresses at once, for the hops of a path: at most
    /// [`DnsConfig::reverse_concurrency`] lookups run at a time and the whole batch ends by
    /// [`DnsConfig::reverse_deadline`]. Every distinct address is in the map; those without a
    /// name, whose lookup failed, or still running at the deadline map to `None`.
    pub async fn reverse_many(&self, addrs: &[IpAddr]) -> HashMap<IpAddr, Option<String>> {
        let deadline = tokio::time::Instant::now() + self.inner.config.reverse_deadline;
        let mut out = HashMap::with_capacity(addrs.len());
        let permits = Arc::new(Semaphore::new(self.inner.config.reverse_concurrency.max(1)));
        let mut tasks = JoinSet::new();
        for &ip in addrs {
            if out.contains_key(&ip) {
                continue;
            }
            if let Some(hit) = self.cache().get(&ip).cloned() {
                out.insert(ip, hit);
                continue;
            }
            out.insert(ip, None);
            let (me, permits) = (self.clone(), permits.clone());
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await.ok();
                (ip, me.reverse(ip).await)
            });
        }
        loop {
            match tokio::time::timeout_at(deadline, tasks.join_next()).await {
                Ok(Some(Ok((ip, Ok(name))))) => {
                    out.insert(ip, name);
                }
                Ok(Some(Ok((ip, Err(e))))) => debug!(%ip, error = %e, "reverse lookup failed"),
                Ok(Some(Err(e))) => debug!(error = %e, "reverse lookup task ended abnormally"),
                Ok(None) => break,
                Err(_) => {
                    debug!(
                        unfinished = tasks.len(),
                        "reverse lookups cut at the batch deadline"
                    );
                    break;
                }
            }
        }
        // Dropping the set aborts what is still running.
        out
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, LruCache<IpAddr, Option<String>>> {
        self.inner
            .ptr_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Builds a hickory resolver from prepared settings.
pub(super) fn build_hickory(
    prepared: &Prepared,
    servers: &ServerList,
) -> Result<TokioResolver, DnsError> {
    hickory_resolver::Resolver::builder_with_config(
        prepared.config.clone(),
        TokioRuntimeProvider::default(),
    )
    .with_options(prepared.opts.clone())
    .build()
    .map_err(|e| DnsError::Transport {
        servers: servers.clone(),
        why: format!("cannot set up the resolver: {e}"),
    })
}

/// Parses a host name as a DNS name.
pub(super) fn parse_name(host: &str) -> Result<Name, DnsError> {
    let bad = |why: String| DnsError::BadName {
        name: host.to_owned(),
        why,
    };
    if host.trim().is_empty() {
        return Err(bad("it is empty".into()));
    }
    Name::from_utf8(host).map_err(|e| bad(e.to_string()))
}

/// A name as people read it: Unicode labels, no trailing dot.
pub(super) fn presentation(name: &Name) -> String {
    let mut s = name.to_utf8();
    if s.len() > 1 && s.ends_with('.') {
        s.pop();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_present() {
        assert!(matches!(parse_name(" "), Err(DnsError::BadName { .. })));
        let long = "a".repeat(64);
        let e = parse_name(&format!("{long}.example")).expect_err("label too long");
        assert!(
            e.to_string()
                .starts_with(&format!("`{long}.example` is not a valid DNS name: ")),
            "{e}"
        );
        let n = parse_name("host.probe.test.").expect("name");
        assert_eq!(presentation(&n), "host.probe.test");
        assert_eq!(presentation(&Name::root()), ".");
        let arpa = Name::from("192.0.2.10".parse::<IpAddr>().expect("ip"));
        assert_eq!(arpa.to_ascii(), "10.2.0.192.in-addr.arpa.");
    }

    #[test]
    fn builds_outside_a_runtime() {
        // The CLI may build its resolver before entering tokio.
        let cfg = DnsConfig::custom(vec!["127.0.0.1:9".parse().expect("addr")]);
        let r = Resolver::new(&cfg).expect("resolver");
        assert_eq!(
            r.servers(),
            &["127.0.0.1:9".parse::<SocketAddr>().expect("addr")]
        );
        assert_eq!(r.config(), &cfg);
    }

    #[tokio::test]
    async fn literals_need_no_server() {
        // A server nobody listens on: literals must not cause a query.
        let r = Resolver::new(&DnsConfig::custom(vec![
            "127.0.0.1:9".parse().expect("addr"),
        ]))
        .expect("resolver");
        assert_eq!(
            r.lookup_host("192.0.2.7", Family::Any).await.expect("v4"),
            vec!["192.0.2.7".parse::<IpAddr>().expect("ip")]
        );
        assert_eq!(
            r.lookup_host("2001:db8::7", Family::V6).await.expect("v6"),
            vec!["2001:db8::7".parse::<IpAddr>().expect("ip")]
        );
        let e = r
            .lookup_host("192.0.2.7", Family::V6)
            .await
            .expect_err("family");
        assert_eq!(
            e.to_string(),
            "`192.0.2.7` is not an IPv6 (AAAA) address: drop -4/-6 or give an address of that family"
        );
    }
}
