//! What an A2A test should do: peer, length, pacing, packet shape, sockets, reports. Built
//! with [`A2aOptions::builder`], which checks the settings.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::a2a::session_config::session_setters;
use crate::a2a::{
    Limit, Pace, SenderConfig, SenderError, SenderSession, SessionConfig, VoiceConfig,
};
use crate::io::PacerConfig;
use crate::report::IntervalReport;

/// Highest DSCP codepoint (six bits).
const MAX_DSCP: u8 = 63;

/// Settings that cannot work, each naming the setting and what it accepts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Size, interval, flood window or packet count out of range (see [`SenderError`]).
    #[error(transparent)]
    Test(#[from] SenderError),
    /// A DSCP codepoint over 63.
    #[error("DSCP {0} is outside 0..={MAX_DSCP}")]
    Dscp(u8),
    /// The source address and the peer are of different address families.
    #[error(
        "the source {source_ip} and the peer {peer} are of different address families: give a source of the peer's family"
    )]
    FamilyMismatch {
        /// The source address asked for.
        source_ip: IpAddr,
        /// The peer.
        peer: SocketAddr,
    },
    /// A responder with nothing to listen on.
    #[error("no listen address: a responder needs at least one")]
    NoListenAddress,
    /// A reflector that may keep no session.
    #[error("the reflector must keep at least 1 session")]
    ZeroSessions,
    /// A rate limiter with no source bucket.
    #[error("the rate limiter needs at least 1 source bucket")]
    ZeroSources,
    /// Sessions forgotten as soon as they start.
    #[error("the session idle timeout must be positive")]
    ZeroIdleTimeout,
    /// A rate limit whose bucket holds nothing, so that nothing is ever answered.
    #[error("a rate limit needs a burst of at least 1 packet (or turn the limit off with 0)")]
    ZeroBurst,
}

/// Settings of one A2A test: build them with [`A2aOptions::builder`] (or take the defaults
/// with [`A2aOptions::new`]).
///
/// ```
/// use std::time::Duration;
/// use probe_core::a2a::{Limit, Pace};
/// use probe_core::a2a::runtime::{A2aOptions, ConfigError};
///
/// let peer = "192.0.2.7:49153".parse()?;
/// let opts = A2aOptions::builder(peer)
///     .limit(Limit::Duration(Duration::from_secs(5)))
///     .pace(Pace::Interval(Duration::from_millis(20)))
///     .size(172)
///     .dscp(46)
///     .build()?;
/// assert_eq!(opts.size(), 172);
///
/// // Settings that cannot work are refused with a typed error.
/// let err = A2aOptions::builder(peer).dscp(64).build();
/// assert_eq!(err.unwrap_err(), ConfigError::Dscp(64));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct A2aOptions {
    pub(super) peer: SocketAddr,
    pub(super) peer_label: String,
    pub(super) limit: Limit,
    pub(super) pace: Pace,
    pub(super) size: usize,
    pub(super) dscp: Option<u8>,
    pub(super) source: Option<IpAddr>,
    pub(super) interface: Option<String>,
    pub(super) wait: Duration,
    pub(super) no_answer_timeout: Duration,
    pub(super) hellos: u32,
    pub(super) ssid: Option<u16>,
    pub(super) report_interval: Option<Duration>,
    pub(super) interval_reports: Option<mpsc::Sender<IntervalReport>>,
    pub(super) realtime: bool,
    pub(super) pacer: PacerConfig,
    pub(super) voice: Option<VoiceConfig>,
    pub(super) local_port: u16,
    pub(super) peer_clock: Option<crate::time::ClockInfo>,
    pub(super) stamp_key: Option<crate::a2a::StampKey>,
    pub(super) timeline: bool,
}

impl A2aOptions {
    /// 100 packets every 10 ms of 44 octets to `peer`, 1 s final wait, 2 s no-answer
    /// timeout, 3 hellos, no interval reports.
    pub fn new(peer: SocketAddr) -> Self {
        let session = SessionConfig::default();
        A2aOptions {
            peer,
            peer_label: peer.to_string(),
            limit: session.limit,
            pace: session.pace,
            size: crate::wire::stamp::BASE_LEN,
            dscp: None,
            source: None,
            interface: None,
            wait: session.wait,
            no_answer_timeout: session.no_answer_timeout,
            hellos: session.hellos,
            ssid: None,
            report_interval: None,
            interval_reports: None,
            realtime: false,
            pacer: PacerConfig::default(),
            voice: None,
            local_port: 0,
            peer_clock: None,
            stamp_key: None,
            timeline: false,
        }
    }

    /// A builder starting from the defaults of [`A2aOptions::new`].
    pub fn builder(peer: SocketAddr) -> A2aOptionsBuilder {
        A2aOptionsBuilder(A2aOptions::new(peer))
    }

    /// The peer's STAMP responder.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The peer as the user named it (goes to the report).
    pub fn peer_label(&self) -> &str {
        &self.peer_label
    }

    /// Test length.
    pub fn limit(&self) -> Limit {
        self.limit
    }

    /// Pacing.
    pub fn pace(&self) -> Pace {
        self.pace
    }

    /// UDP payload size of test packets.
    pub fn size(&self) -> usize {
        self.size
    }

    /// DSCP codepoint of test packets.
    pub fn dscp(&self) -> Option<u8> {
        self.dscp
    }

    /// How long the test waits for replies after the last packet.
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// The pacer settings (before the cap of [`PacerConfig::capped_for`] the interval).
    pub fn pacer(&self) -> PacerConfig {
        self.pacer
    }

    /// The voice rating, if asked for.
    pub fn voice(&self) -> Option<VoiceConfig> {
        self.voice
    }

    /// The sans-IO session settings: `(sender, session)`.
    pub(super) fn session_configs(&self, ssid: u16) -> (SenderConfig, SessionConfig) {
        let mut cfg = SenderConfig::new(self.peer_label.clone(), ssid);
        cfg.size = self.size;
        cfg.key.clone_from(&self.stamp_key);
        let session = SessionConfig {
            pace: self.pace,
            limit: self.limit,
            hellos: self.hellos,
            wait: self.wait,
            no_answer_timeout: self.no_answer_timeout,
            report_interval: self.report_interval,
            ..SessionConfig::default()
        };
        (cfg, session)
    }

    /// Checks what the session and the socket would refuse later.
    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(d) = self.dscp.filter(|&d| d > MAX_DSCP) {
            return Err(ConfigError::Dscp(d));
        }
        if let Some(src) = self.source.filter(|s| s.is_ipv4() != self.peer.is_ipv4()) {
            return Err(ConfigError::FamilyMismatch {
                source_ip: src,
                peer: self.peer,
            });
        }
        let (sender, session) = self.session_configs(0);
        SenderSession::new(sender, session)?;
        Ok(())
    }
}

/// Builds [`A2aOptions`]; [`A2aOptionsBuilder::build`] checks the settings.
#[derive(Clone, Debug)]
#[must_use]
pub struct A2aOptionsBuilder(A2aOptions);

impl A2aOptionsBuilder {
    session_setters!();

    /// The peer's STAMP responder (replaces the one given to [`A2aOptions::builder`]; the
    /// label follows unless [`peer_label`](Self::peer_label) is called after).
    pub fn peer(mut self, peer: SocketAddr) -> Self {
        self.0.peer = peer;
        self.0.peer_label = peer.to_string();
        self
    }

    /// The peer as the user named it, for the report (default: the address).
    pub fn peer_label(mut self, label: impl Into<String>) -> Self {
        self.0.peer_label = label.into();
        self
    }

    /// UDP payload size of test packets, 44 ..= 65507 (default 44).
    pub fn size(mut self, size: usize) -> Self {
        self.0.size = size;
        self
    }

    /// DSCP codepoint of test packets, 0 ..= 63 (default: none set).
    pub fn dscp(mut self, dscp: impl Into<Option<u8>>) -> Self {
        self.0.dscp = dscp.into();
        self
    }

    /// Source address to bind (of the peer's family; default: the wildcard).
    pub fn source(mut self, source: impl Into<Option<IpAddr>>) -> Self {
        self.0.source = source.into();
        self
    }

    /// Interface to bind to (`SO_BINDTODEVICE`).
    pub fn interface(mut self, name: impl Into<String>) -> Self {
        self.0.interface = Some(name.into());
        self
    }

    /// STAMP session id (default: random).
    pub fn ssid(mut self, ssid: impl Into<Option<u16>>) -> Self {
        self.0.ssid = ssid.into();
        self
    }

    /// Hands out an [`IntervalReport`] every `every` on `reports` while the test runs. The
    /// test never waits for the receiver: a report that finds the channel full is dropped
    /// (and logged).
    pub fn interval_reports(
        mut self,
        every: Duration,
        reports: mpsc::Sender<IntervalReport>,
    ) -> Self {
        self.0.report_interval = Some(every);
        self.0.interval_reports = Some(reports);
        self
    }

    /// Asks for `SCHED_FIFO` priority for the thread that polls the test (root or
    /// `CAP_SYS_NICE`), so that other work on a busy host does not delay the sends. Only
    /// when that thread runs nothing else (e.g. `Runtime::block_on` on the main thread); it
    /// applies to isochronous schedules of at least 100 µs, which sleep most of the time,
    /// never to a flood. The priority stays with the thread after the test.
    pub fn realtime(mut self, realtime: bool) -> Self {
        self.0.realtime = realtime;
        self
    }

    /// How the isochronous schedule waits for each send: a timerfd sleep to `spin_margin`
    /// before the deadline, then a spin (default [`PacerConfig::default`]). The spin is
    /// capped at a fifth of the interval ([`PacerConfig::capped_for`]);
    /// [`PacerConfig::no_spin`] never spins.
    pub fn pacer(mut self, pacer: PacerConfig) -> Self {
        self.0.pacer = pacer;
        self
    }

    /// Rates the stream as voice (`--profile voice`; set the matching interval, size and
    /// DSCP too, see [`VoiceConfig::packet_size`]).
    pub fn voice(mut self, voice: VoiceConfig) -> Self {
        self.0.voice = Some(voice);
        self
    }

    /// Local UDP port to send from (default 0: any). A far end sending toward a near end
    /// behind NAT sends from the port the near end opened the mapping to.
    pub fn local_port(mut self, port: u16) -> Self {
        self.0.local_port = port;
        self
    }

    /// The reflector's clock facts, learnt over the control plane: no hellos are sent and
    /// the report's clock basis is `control`.
    pub fn peer_clock(mut self, clock: crate::time::ClockInfo) -> Self {
        self.0.peer_clock = Some(clock);
        self.0.hellos = 0;
        self
    }

    /// Sends in STAMP authenticated mode (RFC 8762) with `key`: packets of at least 112
    /// octets sealed with HMAC-SHA-256, replies with a wrong HMAC dropped and counted
    /// (`auth_failed` in the report). The peer must hold the same key.
    pub fn stamp_key(mut self, key: impl Into<Option<crate::a2a::StampKey>>) -> Self {
        self.0.stamp_key = key.into();
        self
    }

    /// Adds the test's time series to the report (`timeline`, at most 1000 buckets).
    pub fn timeline(mut self, timeline: bool) -> Self {
        self.0.timeline = timeline;
        self
    }

    /// The options, or the first setting that cannot work.
    pub fn build(self) -> Result<A2aOptions, ConfigError> {
        self.0.validate()?;
        Ok(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder() -> A2aOptionsBuilder {
        A2aOptions::builder(SocketAddr::from(([192, 0, 2, 7], 49_153)))
    }

    #[test]
    fn defaults_build_and_bad_settings_are_named() {
        let o = builder().build().expect("defaults are valid");
        assert_eq!(
            (o.size(), o.limit(), o.dscp()),
            (44, Limit::Count(100), None)
        );
        assert_eq!(o.peer_label(), "192.0.2.7:49153");
        let err = |b: A2aOptionsBuilder| b.build().err();
        assert_eq!(err(builder().size(43)), Some(SenderError::Size(43).into()));
        assert_eq!(
            err(builder().size(65_508)),
            Some(SenderError::Size(65_508).into())
        );
        assert_eq!(
            err(builder().pace(Pace::Interval(Duration::ZERO))),
            Some(SenderError::ZeroInterval.into())
        );
        assert_eq!(
            err(builder().pace(Pace::Max { window: 0 })),
            Some(SenderError::ZeroWindow.into())
        );
        assert_eq!(
            err(builder().limit(Limit::Count(0))),
            Some(SenderError::Count(0).into())
        );
        assert_eq!(err(builder().dscp(64)), Some(ConfigError::Dscp(64)));
        let v6: IpAddr = "2001:db8::1".parse().expect("v6");
        assert_eq!(
            err(builder().source(v6)),
            Some(ConfigError::FamilyMismatch {
                source_ip: v6,
                peer: SocketAddr::from(([192, 0, 2, 7], 49_153)),
            })
        );
        let msg = ConfigError::from(SenderError::Size(43)).to_string();
        assert!(msg.contains("44..=65507"), "{msg}");
    }

    #[test]
    fn peer_replaces_the_label_unless_one_is_given_after() {
        let other = SocketAddr::from(([192, 0, 2, 8], 7));
        let o = builder()
            .peer_label("x")
            .peer(other)
            .build()
            .expect("valid");
        assert_eq!((o.peer(), o.peer_label()), (other, "192.0.2.8:7"));
        let o = builder()
            .peer(other)
            .peer_label("agent-b")
            .build()
            .expect("valid");
        assert_eq!(o.peer_label(), "agent-b");
    }
}
