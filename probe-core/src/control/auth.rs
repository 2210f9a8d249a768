//! The shared token of the control plane, compared in constant time.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// Longest token accepted, bytes.
pub const MAX_TOKEN_LEN: usize = 1024;

/// A shared secret. Its `Debug` form never shows the secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// A token that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Empty (or only white space).
    #[error("the token from {source_name} is empty; give a non-empty secret")]
    Empty {
        /// Where it came from (flag, variable or file).
        source_name: String,
    },
    /// Longer than [`MAX_TOKEN_LEN`].
    #[error("the token from {source_name} is {len} bytes long, at most {MAX_TOKEN_LEN}")]
    TooLong {
        /// Where it came from.
        source_name: String,
        /// Its length.
        len: usize,
    },
    /// The token file cannot be read.
    #[error("cannot read the token file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

impl Token {
    /// A token from text (surrounding white space, such as a file's final newline, is
    /// removed). `source_name` names where it came from, for the error.
    pub fn new(text: &str, source_name: &str) -> Result<Self, TokenError> {
        let t = text.trim();
        if t.is_empty() {
            return Err(TokenError::Empty {
                source_name: source_name.into(),
            });
        }
        if t.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLong {
                source_name: source_name.into(),
                len: t.len(),
            });
        }
        Ok(Token(t.to_string()))
    }

    /// Reads a token from a file.
    pub fn from_file(path: &Path) -> Result<Self, TokenError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenError::File {
            path: path.to_path_buf(),
            source,
        })?;
        Self::new(&text, &path.display().to_string())
    }

    /// The token from, in order: `flag` (`--token`), `file` (`--token-file`) or the
    /// `PROBE_TOKEN` value given; `None` when none is set.
    pub fn resolve(
        flag: Option<&str>,
        file: Option<&Path>,
        env: Option<&str>,
    ) -> Result<Option<Self>, TokenError> {
        if let Some(t) = flag {
            return Self::new(t, "--token").map(Some);
        }
        if let Some(path) = file {
            return Self::from_file(path).map(Some);
        }
        env.map(|t| Self::new(t, "PROBE_TOKEN")).transpose()
    }

    /// Whether `presented` equals this token. The time taken depends on neither the
    /// content nor the length of either: both are hashed (SHA-256) and the digests compared
    /// in constant time.
    pub fn matches(&self, presented: Option<&Token>) -> bool {
        let Some(p) = presented else { return false };
        let a = ring::digest::digest(&ring::digest::SHA256, self.0.as_bytes());
        let b = ring::digest::digest(&ring::digest::SHA256, p.0.as_bytes());
        a.as_ref().ct_eq(b.as_ref()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(s: &str) -> Token {
        Token::new(s, "test").expect("token")
    }

    #[test]
    fn matches_only_the_same_secret() {
        let t = tok("s3cret");
        assert!(t.matches(Some(&tok("s3cret"))));
        assert!(t.matches(Some(&tok(" s3cret\n"))));
        assert!(!t.matches(Some(&tok("s3cre"))));
        assert!(!t.matches(Some(&tok("s3cret2"))));
        assert!(!t.matches(None));
        assert_eq!(format!("{t:?}"), "Token(<redacted>)");
    }

    #[test]
    fn resolution_order_and_bad_tokens() {
        let r = Token::resolve(Some("a"), None, Some("b")).expect("ok");
        assert_eq!(r, Some(tok("a")));
        assert_eq!(
            Token::resolve(None, None, Some("b")).expect("ok"),
            Some(tok("b"))
        );
        assert_eq!(Token::resolve(None, None, None).expect("ok"), None);
        let e = Token::resolve(Some("  "), None, None).expect_err("empty");
        assert!(e.to_string().contains("--token is empty"), "{e}");
        let e = Token::new(&"x".repeat(MAX_TOKEN_LEN + 1), "PROBE_TOKEN").expect_err("long");
        assert!(e.to_string().contains("at most 1024"), "{e}");
        let e = Token::resolve(None, Some(Path::new("/nonexistent/probe-token")), Some("b"))
            .expect_err("file");
        assert!(e.to_string().contains("/nonexistent/probe-token"), "{e}");
    }
}
