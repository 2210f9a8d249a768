//! Text forms of impairment settings, shared by the `probe-lab` command line and anyone who
//! wants to write a configuration as a string: `delay=10ms,jitter=1ms,loss=5%,every-nth=10,
//! duplicate=1%,reorder=2%,rate=10mbit,queue=100,seed=7`.

use std::str::FromStr;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::impair::ImpairConfig;

/// Parses a duration such as `10ms`, `250us`, `1s` or `1ms 500us`.
pub fn parse_duration(text: &str) -> Result<Duration> {
    humantime::parse_duration(text.trim())
        .map_err(|e| Error::Invalid(format!("duration {text:?}: {e}")))
}

/// Parses a probability written as a percentage (`5%`, `0.5%`) or a fraction (`0.05`).
pub fn parse_probability(text: &str) -> Result<f64> {
    let text = text.trim();
    let bad = || Error::Invalid(format!("probability {text:?}: use 5% or 0.05"));
    let value = match text.strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().map_err(|_| bad())? / 100.0,
        None => text.parse::<f64>().map_err(|_| bad())?,
    };
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(bad())
    }
}

/// Parses a rate in bits per second: a number with an optional `kbit`, `mbit` or `gbit`
/// suffix (decimal multiples, as `tc` uses them), e.g. `10mbit`, `1.5gbit`, `64000`.
pub fn parse_rate(text: &str) -> Result<u64> {
    let lower = text.trim().to_ascii_lowercase();
    let (number, scale) = [("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1.0)]
        .iter()
        .find_map(|(suffix, scale)| lower.strip_suffix(suffix).map(|n| (n, *scale)))
        .unwrap_or((lower.as_str(), 1.0));
    let value = number
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0)
        .ok_or_else(|| Error::Invalid(format!("rate {text:?}: use e.g. 10mbit")))?;
    Ok((value * scale).round() as u64)
}

fn parse_number<T: FromStr>(key: &str, value: &str) -> Result<T> {
    value
        .trim()
        .parse()
        .map_err(|_| Error::Invalid(format!("{key}={value:?}: not a number")))
}

impl FromStr for ImpairConfig {
    type Err = Error;

    /// Parses `key=value` pairs separated by commas; keys: `delay`, `jitter`, `loss`,
    /// `every-nth`, `duplicate`, `reorder`, `rate`, `queue`, `seed`. An empty string is the
    /// default (no impairment).
    fn from_str(text: &str) -> Result<Self> {
        let mut config = Self::default();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| Error::Invalid(format!("{pair:?}: expected key=value")))?;
            match key.trim() {
                "delay" => config.delay = parse_duration(value)?,
                "jitter" => config.jitter = parse_duration(value)?,
                "loss" => config.loss = parse_probability(value)?,
                "every-nth" => config.every_nth = parse_number(key, value)?,
                "duplicate" => config.duplicate = parse_probability(value)?,
                "reorder" => config.reorder = parse_probability(value)?,
                "rate" => config.rate_bps = parse_rate(value)?,
                "queue" => config.queue_limit = parse_number(key, value)?,
                "seed" => config.seed = Some(parse_number(key, value)?),
                other => return Err(Error::Invalid(format!("unknown impairment {other:?}"))),
            }
        }
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_probabilities_and_rates_parse() {
        assert_eq!(parse_duration("10ms").ok(), Some(Duration::from_millis(10)));
        assert_eq!(
            parse_duration("250us").ok(),
            Some(Duration::from_micros(250))
        );
        assert!(parse_duration("fast").is_err());
        assert_eq!(parse_probability("5%").ok(), Some(0.05));
        assert_eq!(parse_probability("0.25").ok(), Some(0.25));
        assert!(parse_probability("150%").is_err());
        assert!(parse_probability("-0.1").is_err());
        assert_eq!(parse_rate("10mbit").ok(), Some(10_000_000));
        assert_eq!(parse_rate("1.5Gbit").ok(), Some(1_500_000_000));
        assert_eq!(parse_rate("64000").ok(), Some(64_000));
        assert!(parse_rate("0mbit").is_err());
        assert!(parse_rate("lots").is_err());
    }

    #[test]
    fn config_strings_parse_every_key() {
        let config: ImpairConfig =
            "delay=10ms, jitter=1ms,loss=5%,every-nth=10,duplicate=1%,reorder=0.02,rate=10mbit,queue=50,seed=7"
                .parse()
                .expect("valid");
        assert_eq!(
            config,
            ImpairConfig {
                delay: Duration::from_millis(10),
                jitter: Duration::from_millis(1),
                loss: 0.05,
                every_nth: 10,
                duplicate: 0.01,
                reorder: 0.02,
                rate_bps: 10_000_000,
                queue_limit: 50,
                seed: Some(7),
            }
        );
        assert_eq!(
            "".parse::<ImpairConfig>().ok(),
            Some(ImpairConfig::default())
        );
        assert!("delay".parse::<ImpairConfig>().is_err());
        assert!("speed=1".parse::<ImpairConfig>().is_err());
        assert!("queue=0".parse::<ImpairConfig>().is_err());
    }
}
