//! [`SessionConfig`]: what a [`SenderSession`](super::SenderSession) adds to the
//! [`SenderConfig`](super::SenderConfig) (pacing, length, hellos, waits, interval reports),
//! built with [`SessionConfig::builder`].

use std::time::Duration;

use super::{Limit, Pace, SenderError};

/// Settings of a [`SenderSession`](super::SenderSession) beyond the
/// [`SenderConfig`](super::SenderConfig): the defaults ([`SessionConfig::default`]) or built
/// with [`SessionConfig::builder`], which checks them.
///
/// ```
/// use std::time::Duration;
/// use probe_core::a2a::{Limit, Pace, SenderError, SessionConfig};
///
/// let cfg = SessionConfig::builder()
///     .pace(Pace::Interval(Duration::from_millis(20)))
///     .limit(Limit::Count(500))
///     .wait(Duration::from_millis(500))
///     .build()?;
/// assert_eq!(cfg.limit(), Limit::Count(500));
///
/// let err = SessionConfig::builder().pace(Pace::Max { window: 0 }).build();
/// assert_eq!(err.unwrap_err(), SenderError::ZeroWindow);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct SessionConfig {
    pub(super) pace: Pace,
    pub(super) limit: Limit,
    pub(super) hellos: u32,
    pub(super) hello_interval: Duration,
    pub(super) wait: Duration,
    pub(super) no_answer_timeout: Duration,
    pub(super) report_interval: Option<Duration>,
}

impl Default for SessionConfig {
    /// 100 packets every 10 ms, 3 hellos 200 ms apart, 1 s final wait, 2 s no-answer
    /// timeout, no interval reports.
    fn default() -> Self {
        SessionConfig {
            pace: Pace::Interval(Duration::from_millis(10)),
            limit: Limit::Count(100),
            hellos: 3,
            hello_interval: Duration::from_millis(200),
            wait: Duration::from_secs(1),
            no_answer_timeout: Duration::from_secs(2),
            report_interval: None,
        }
    }
}

impl SessionConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> SessionConfigBuilder {
        SessionConfigBuilder(SessionConfig::default())
    }

    /// Pacing.
    pub fn pace(&self) -> Pace {
        self.pace
    }

    /// Test length.
    pub fn limit(&self) -> Limit {
        self.limit
    }

    /// Hellos sent before the test, one per [`hello_interval`](Self::hello_interval) until
    /// one is answered.
    pub fn hellos(&self) -> u32 {
        self.hellos
    }

    /// Time between hellos.
    pub fn hello_interval(&self) -> Duration {
        self.hello_interval
    }

    /// Final wait for replies after the last packet (also the late-reply timeout, at least
    /// 100 ms).
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// The test stops when nothing at all answered this long after it started.
    pub fn no_answer_timeout(&self) -> Duration {
        self.no_answer_timeout
    }

    /// Interval reports every this long (`None`: none).
    pub fn report_interval(&self) -> Option<Duration> {
        self.report_interval
    }

    /// Checks what the session would refuse: a zero interval or flood window, a count of 0,
    /// a zero report interval.
    pub(super) fn validate(&self) -> Result<(), SenderError> {
        match self.pace {
            Pace::Interval(i) if i.is_zero() => return Err(SenderError::ZeroInterval),
            Pace::Max { window: 0 } => return Err(SenderError::ZeroWindow),
            _ => {}
        }
        if self.limit == Limit::Count(0) {
            return Err(SenderError::Count(0));
        }
        if self.report_interval.is_some_and(|r| r.is_zero()) {
            return Err(SenderError::ZeroInterval);
        }
        Ok(())
    }
}

/// Builds a [`SessionConfig`]; [`SessionConfigBuilder::build`] checks the settings.
#[derive(Clone, Debug)]
#[must_use]
pub struct SessionConfigBuilder(SessionConfig);

/// The setters of the settings a [`SessionConfigBuilder`] and an
/// [`A2aOptionsBuilder`](super::runtime::A2aOptionsBuilder) share, written once: both are a
/// newtype over a struct with the fields `pace`, `limit`, `hellos`, `wait` and
/// `no_answer_timeout`, with the same defaults.
macro_rules! session_setters {
    () => {
        /// Pacing: an interval or a flood (default every 10 ms).
        pub fn pace(mut self, pace: $crate::a2a::Pace) -> Self {
            self.0.pace = pace;
            self
        }

        /// Test length: a packet count or a duration (default 100 packets).
        pub fn limit(mut self, limit: $crate::a2a::Limit) -> Self {
            self.0.limit = limit;
            self
        }

        /// Hello packets (clock exchange) sent before the test, one per hello interval
        /// (200 ms) until one is answered (default 3).
        pub fn hellos(mut self, hellos: u32) -> Self {
            self.0.hellos = hellos;
            self
        }

        /// Final wait for replies after the last packet; also the late-reply timeout, at
        /// least 100 ms (default 1 s).
        pub fn wait(mut self, wait: std::time::Duration) -> Self {
            self.0.wait = wait;
            self
        }

        /// The test stops early when nothing at all answered this long after it started
        /// (default 2 s).
        pub fn no_answer_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.0.no_answer_timeout = timeout;
            self
        }
    };
}
pub(crate) use session_setters;

impl SessionConfigBuilder {
    session_setters!();

    /// Time between hellos (default 200 ms).
    pub fn hello_interval(mut self, interval: Duration) -> Self {
        self.0.hello_interval = interval;
        self
    }

    /// Interval reports every `every` (`None`, the default: none).
    pub fn report_interval(mut self, every: impl Into<Option<Duration>>) -> Self {
        self.0.report_interval = every.into();
        self
    }

    /// The settings, or the first one that cannot work.
    pub fn build(self) -> Result<SessionConfig, SenderError> {
        self.0.validate()?;
        Ok(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_build_and_bad_settings_are_named() {
        let c = SessionConfig::builder()
            .build()
            .expect("defaults are valid");
        assert_eq!(c, SessionConfig::default());
        let err = |b: SessionConfigBuilder| b.build().err();
        let b = SessionConfig::builder;
        assert_eq!(
            err(b().pace(Pace::Interval(Duration::ZERO))),
            Some(SenderError::ZeroInterval)
        );
        assert_eq!(
            err(b().pace(Pace::Max { window: 0 })),
            Some(SenderError::ZeroWindow)
        );
        assert_eq!(err(b().limit(Limit::Count(0))), Some(SenderError::Count(0)));
        assert_eq!(
            err(b().report_interval(Duration::ZERO)),
            Some(SenderError::ZeroInterval)
        );
        let c = b()
            .pace(Pace::Max { window: 8 })
            .limit(Limit::Duration(Duration::from_secs(3)))
            .hellos(0)
            .report_interval(Duration::from_secs(1))
            .build()
            .expect("valid");
        assert_eq!(
            (c.pace(), c.hellos(), c.report_interval()),
            (Pace::Max { window: 8 }, 0, Some(Duration::from_secs(1)))
        );
    }
}
