//! [`PingOptions`]: the targets and sockets of a ping run around its [`PingConfig`], built
//! with [`PingOptions::builder`].

use super::config::{PingConfig, PingConfigError};
use crate::dns::{DnsConfig, Family};
use crate::trace::{PrivilegeChoice, Protocol};

/// Settings of a ping run: the defaults ([`PingOptions::new`]) or built with
/// [`PingOptions::builder`].
///
/// ```
/// use std::time::Duration;
/// use probe_core::ping::PingConfig;
/// use probe_core::ping::runtime::PingOptions;
/// use probe_core::trace::Protocol;
///
/// let config = PingConfig::builder(Protocol::Icmp)
///     .count(3)
///     .interval(Duration::from_millis(10))
///     .build()?;
/// let opts = PingOptions::builder(vec!["192.0.2.1".into()], config)
///     .interface("eth0")
///     .build()?;
/// assert_eq!(opts.config().count(), 3);
/// # Ok::<(), probe_core::ping::PingConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct PingOptions {
    pub(super) targets: Vec<String>,
    pub(super) family: Family,
    pub(super) config: PingConfig,
    pub(super) privilege: PrivilegeChoice,
    pub(super) interface: Option<String>,
    pub(super) dns: DnsConfig,
}

impl PingOptions {
    /// Defaults ([`PingConfig::new`]) for `targets` with `protocol`.
    pub fn new(targets: Vec<String>, protocol: Protocol) -> Self {
        PingOptions {
            targets,
            family: Family::Any,
            config: PingConfig::new(protocol),
            privilege: PrivilegeChoice::Auto,
            interface: None,
            dns: DnsConfig::default(),
        }
    }

    /// A builder for `targets` probed as `config` says (any family, sockets chosen by
    /// privilege, the system resolver).
    pub fn builder(targets: Vec<String>, config: PingConfig) -> PingOptionsBuilder {
        PingOptionsBuilder(PingOptions {
            config,
            ..PingOptions::new(targets, config.protocol())
        })
    }

    /// Targets: host names or addresses, in report order.
    pub fn targets(&self) -> &[String] {
        &self.targets
    }

    /// Address family of names.
    pub fn family(&self) -> Family {
        self.family
    }

    /// Probe shape and timing.
    pub fn config(&self) -> &PingConfig {
        &self.config
    }

    /// Which sockets to use.
    pub fn privilege(&self) -> PrivilegeChoice {
        self.privilege
    }

    /// Interface to send through (`SO_BINDTODEVICE`).
    pub fn interface(&self) -> Option<&str> {
        self.interface.as_deref()
    }

    /// Resolver settings for names.
    pub fn dns(&self) -> &DnsConfig {
        &self.dns
    }
}

/// Builds [`PingOptions`]; [`PingOptionsBuilder::build`] checks the settings.
#[derive(Clone, Debug)]
#[must_use]
pub struct PingOptionsBuilder(PingOptions);

impl PingOptionsBuilder {
    /// Address family of names (`-4`, `-6`; default any); literals of the other family are
    /// refused per target.
    pub fn family(mut self, family: Family) -> Self {
        self.0.family = family;
        self
    }

    /// Which sockets to use (default: raw when privileged, else ICMP datagram and UDP).
    pub fn privilege(mut self, privilege: PrivilegeChoice) -> Self {
        self.0.privilege = privilege;
        self
    }

    /// Interface to send through (`SO_BINDTODEVICE`).
    pub fn interface(mut self, name: impl Into<String>) -> Self {
        self.0.interface = Some(name.into());
        self
    }

    /// Resolver settings for names (default: the system's).
    pub fn dns(mut self, dns: DnsConfig) -> Self {
        self.0.dns = dns;
        self
    }

    /// The options, or the first setting that cannot work (the probe settings are checked
    /// again, and a run needs at least one target).
    pub fn build(self) -> Result<PingOptions, PingConfigError> {
        if self.0.targets.is_empty() {
            return Err(PingConfigError::NoTargets);
        }
        self.0.config.validate()?;
        Ok(self.0)
    }
}
