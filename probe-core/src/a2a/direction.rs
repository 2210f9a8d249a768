//! Which way a test's traffic flows between the near end (the one that asked for the test)
//! and the far end (its peer).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Which way a test's traffic flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The near end sends toward the far end.
    To,
    /// The far end sends toward the near end, which measures; works for a near end behind NAT
    /// because the far end answers through the mapping the near end opened.
    From,
    /// Both, each reported on its own.
    Both,
}

impl Direction {
    /// The direction's name as the CLI and the JSON spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::To => "to",
            Direction::From => "from",
            Direction::Both => "both",
        }
    }

    /// Whether traffic flows from the near end to the far end.
    pub fn includes_to(self) -> bool {
        matches!(self, Direction::To | Direction::Both)
    }

    /// Whether traffic flows from the far end to the near end.
    pub fn includes_from(self) -> bool {
        matches!(self, Direction::From | Direction::Both)
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A direction that is none of `to`, `from` or `both`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown direction {0:?}: use to, from or both")]
pub struct ParseDirectionError(String);

impl FromStr for Direction {
    type Err = ParseDirectionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "to" => Ok(Direction::To),
            "from" => Ok(Direction::From),
            "both" => Ok(Direction::Both),
            _ => Err(ParseDirectionError(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_display_and_serialize_alike() {
        for d in [Direction::To, Direction::From, Direction::Both] {
            assert_eq!(d.as_str().parse::<Direction>(), Ok(d));
            assert_eq!(d.to_string(), d.as_str());
            assert_eq!(
                serde_json::to_string(&d).ok(),
                Some(format!("\"{}\"", d.as_str()))
            );
        }
        assert_eq!("FROM".parse::<Direction>(), Ok(Direction::From));
        let e = "up"
            .parse::<Direction>()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("\"up\"") && e.contains("to, from or both"),
            "{e}"
        );
        assert!(Direction::Both.includes_to() && Direction::Both.includes_from());
        assert!(!Direction::To.includes_from() && !Direction::From.includes_to());
    }
}
