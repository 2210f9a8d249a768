//! The key of authenticated STAMP (RFC 8762 section 4.4): HMAC-SHA-256 truncated to 16 octets,
//! checked in constant time.
//!
//! A [`StampKey`] is a value: cheap to clone (the prepared HMAC state is shared), comparable
//! (by a key id derived from the key, never the key itself) and never shown in `Debug`. Keys
//! come from a hex file (`--stamp-key-file`, [`StampKey::from_hex_file`]) or from bytes the
//! control session agreed on ([`StampKey::new`]).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ring::hmac;
use subtle::ConstantTimeEq;

/// Length of the HMAC field of authenticated STAMP packets (HMAC-SHA-256 truncated).
pub const HMAC_LEN: usize = 16;

/// Shortest key accepted, octets (128 bits).
pub const MIN_KEY_LEN: usize = 16;

/// Longest key accepted, octets.
pub const MAX_KEY_LEN: usize = 1024;

/// The command that makes a good key file, named in errors.
const MAKE_KEY: &str = "e.g. `openssl rand -hex 32 > FILE`";

/// HMAC-SHA-256 of `data` under `key`, truncated to [`HMAC_LEN`] octets.
fn truncated_tag(key: &hmac::Key, data: &[u8]) -> [u8; HMAC_LEN] {
    let tag = hmac::sign(key, data);
    let mut out = [0; HMAC_LEN];
    out.copy_from_slice(&tag.as_ref()[..HMAC_LEN]);
    out
}

/// A key that cannot be used, or a key file that cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StampKeyError {
    /// The key file cannot be read (missing, unreadable).
    #[error(
        "cannot read the STAMP key file {path}: {error}; create it with hex digits, {MAKE_KEY}"
    )]
    File {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// A character that is neither a hex digit nor white space.
    #[error(
        "the STAMP key from {source_name} is not hex: {found:?} at character {position}; \
         write the key as hex digits only, {MAKE_KEY}"
    )]
    NotHex {
        /// Where the key came from.
        source_name: String,
        /// The offending character.
        found: char,
        /// Its position (0-based, in characters).
        position: usize,
    },
    /// An odd number of hex digits (half an octet).
    #[error(
        "the STAMP key from {source_name} has an odd number of hex digits ({digits}); \
         each octet takes two digits"
    )]
    OddLength {
        /// Where the key came from.
        source_name: String,
        /// Hex digits found.
        digits: usize,
    },
    /// Fewer than [`MIN_KEY_LEN`] octets.
    #[error(
        "the STAMP key from {source_name} is too short: {len} octets, at least {MIN_KEY_LEN} \
         ({} hex digits) needed; {MAKE_KEY}", MIN_KEY_LEN * 2
    )]
    TooShort {
        /// Where the key came from.
        source_name: String,
        /// Its length in octets.
        len: usize,
    },
    /// More than [`MAX_KEY_LEN`] octets.
    #[error("the STAMP key from {source_name} is {len} octets long, at most {MAX_KEY_LEN}")]
    TooLong {
        /// Where the key came from.
        source_name: String,
        /// Its length in octets.
        len: usize,
    },
}

/// An authenticated-STAMP key (see the module documentation).
#[derive(Clone)]
pub struct StampKey {
    key: Arc<hmac::Key>,
    id: [u8; 8],
}

impl fmt::Debug for StampKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StampKey(id {})", self.id())
    }
}

impl PartialEq for StampKey {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for StampKey {}

fn check_len(bytes: &[u8], source_name: &str) -> Result<(), StampKeyError> {
    if bytes.len() < MIN_KEY_LEN {
        return Err(StampKeyError::TooShort {
            source_name: source_name.into(),
            len: bytes.len(),
        });
    }
    if bytes.len() > MAX_KEY_LEN {
        return Err(StampKeyError::TooLong {
            source_name: source_name.into(),
            len: bytes.len(),
        });
    }
    Ok(())
}

impl StampKey {
    /// A key from raw octets (at least [`MIN_KEY_LEN`], at most [`MAX_KEY_LEN`]).
    pub fn new(bytes: &[u8]) -> Result<Self, StampKeyError> {
        check_len(bytes, "the caller")?;
        Ok(Self::from_checked(bytes))
    }

    fn from_checked(bytes: &[u8]) -> Self {
        let key = hmac::Key::new(hmac::HMAC_SHA256, bytes);
        let mut id = [0; 8];
        id.copy_from_slice(&truncated_tag(&key, b"probe stamp key id")[..8]);
        StampKey {
            key: Arc::new(key),
            id,
        }
    }

    /// A key from hex text: two hex digits per octet, either case, white space (such as line
    /// breaks) anywhere ignored. `source_name` names where the text came from, for the error.
    pub fn from_hex(text: &str, source_name: &str) -> Result<Self, StampKeyError> {
        let mut bytes = Vec::with_capacity(text.len() / 2);
        let mut high: Option<u8> = None;
        let mut digits = 0;
        for (position, c) in text.chars().enumerate() {
            if c.is_whitespace() {
                continue;
            }
            let Some(v) = c.to_digit(16) else {
                return Err(StampKeyError::NotHex {
                    source_name: source_name.into(),
                    found: c,
                    position,
                });
            };
            // A hex digit is below 16: the cast cannot truncate.
            let v = v as u8;
            digits += 1;
            match high.take() {
                Some(h) => bytes.push(h << 4 | v),
                None => high = Some(v),
            }
        }
        if high.is_some() {
            return Err(StampKeyError::OddLength {
                source_name: source_name.into(),
                digits,
            });
        }
        check_len(&bytes, source_name)?;
        let key = Self::from_checked(&bytes);
        bytes.fill(0);
        Ok(key)
    }

    /// Reads a hex key file (see [`StampKey::from_hex`]).
    pub fn from_hex_file(path: &Path) -> Result<Self, StampKeyError> {
        let text = std::fs::read_to_string(path).map_err(|error| StampKeyError::File {
            path: path.to_path_buf(),
            error,
        })?;
        Self::from_hex(&text, &path.display().to_string())
    }

    /// A short public id of the key (16 hex digits, derived one-way from it), for logs and
    /// reports: two ends hold the same key exactly when their ids are equal.
    pub fn id(&self) -> String {
        use fmt::Write;
        self.id.iter().fold(String::with_capacity(16), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    /// The truncated HMAC of `data`.
    pub fn tag(&self, data: &[u8]) -> [u8; HMAC_LEN] {
        truncated_tag(&self.key, data)
    }

    /// Whether `tag` is the truncated HMAC of `data`; constant time in the tag's content.
    pub fn verify(&self, data: &[u8], tag: &[u8]) -> bool {
        tag.len() == HMAC_LEN && bool::from(self.tag(data).ct_eq(tag))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// RFC 4231 test case 2 (key "Jefe"), truncated to 128 bits as RFC 8762 section 4.4 asks:
    /// proves the primitive is HMAC-SHA-256 and the truncation keeps the leftmost octets.
    #[test]
    fn rfc4231_case_2_truncated() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"Jefe");
        let tag = truncated_tag(&key, b"what do ya want for nothing?");
        assert_eq!(tag.to_vec(), hex("5bdcc146bf60754e6a042426089575c7"));
    }

    /// RFC 4231 test case 1 through the public type (20-octet key 0x0b..).
    #[test]
    fn rfc4231_case_1_through_stamp_key() {
        let key = StampKey::from_hex(&"0b".repeat(20), "test").expect("20 octets");
        let data = b"Hi There";
        let want = hex("b0344c61d8db38535ca8afceaf0bf12b");
        assert_eq!(key.tag(data).to_vec(), want);
        assert!(key.verify(data, &want));
        let mut wrong = want.clone();
        wrong[15] ^= 1;
        assert!(!key.verify(data, &wrong));
        assert!(!key.verify(data, &want[..15]));
        assert!(!key.verify(b"Hi there", &want));
    }

    #[test]
    fn hex_text_with_white_space_and_either_case() {
        let a = StampKey::from_hex("00112233445566778899AABBCCDDEEFF\n", "a").expect("key");
        let b = StampKey::from_hex("0011 2233 4455 6677\n8899 aabb ccdd eeff", "b").expect("key");
        assert_eq!(a, b);
        assert_eq!(a.id().len(), 16);
        let c = StampKey::new(&[0x11; 16]).expect("key");
        assert_ne!(a, c);
        assert!(!format!("{a:?}").contains("0011"), "{a:?}");
    }

    #[test]
    fn bad_keys_are_named() {
        let e = StampKey::from_hex("00112233 445566zz", "k.hex").expect_err("not hex");
        assert!(matches!(
            e,
            StampKeyError::NotHex {
                found: 'z',
                position: 15,
                ..
            }
        ));
        assert!(e.to_string().contains("not hex"), "{e}");
        let e = StampKey::from_hex("abc", "k.hex").expect_err("odd");
        assert!(matches!(e, StampKeyError::OddLength { digits: 3, .. }));
        let e = StampKey::from_hex("00112233", "k.hex").expect_err("short");
        assert!(e.to_string().contains("too short: 4 octets"), "{e}");
        let e = StampKey::from_hex("\n", "k.hex").expect_err("empty");
        assert!(matches!(e, StampKeyError::TooShort { len: 0, .. }));
        let e = StampKey::new(&[0; MAX_KEY_LEN + 1]).expect_err("long");
        assert!(matches!(e, StampKeyError::TooLong { .. }));
        let e = StampKey::from_hex_file(Path::new("/nonexistent/stamp.key")).expect_err("file");
        assert!(
            e.to_string().contains("cannot read the STAMP key file"),
            "{e}"
        );
    }
}
