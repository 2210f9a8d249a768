//! Target lists: `probe ping -f FILE` reads one target per line; `#` starts a comment.

use std::net::IpAddr;

use thiserror::Error;

/// A target list or a target name that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TargetError {
    /// The list names no target.
    #[error(
        "{source_name} names no target: put one address or host name per line (# starts a comment)"
    )]
    Empty {
        /// The file (or "the command line").
        source_name: String,
    },
    /// A line that is not one address or host name.
    #[error(
        "{source_name} line {line}: `{text}` is not an address or host name (one target per line, # starts a comment)"
    )]
    Malformed {
        /// The file.
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// The offending text.
        text: String,
    },
}

/// Whether `s` is an IP address or a syntactically valid host name (RFC 1123 labels, `_`
/// allowed as in service names).
pub fn is_valid_target(s: &str) -> bool {
    if s.parse::<IpAddr>().is_ok() {
        return true;
    }
    let name = s.strip_suffix('.').unwrap_or(s);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Parses a target list: one target per line, blank lines and `#` comments (whole-line or
/// trailing) ignored. `source_name` names the list in errors.
pub fn parse_target_list(text: &str, source_name: &str) -> Result<Vec<String>, TargetError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        if !is_valid_target(line) {
            return Err(TargetError::Malformed {
                source_name: source_name.to_string(),
                line: i + 1,
                text: line.to_string(),
            });
        }
        out.push(line.to_string());
    }
    if out.is_empty() {
        return Err(TargetError::Empty {
            source_name: source_name.to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_blank_lines_and_names() {
        let text = "# lab targets\n10.0.0.1\n\n  host-a.example  # trailing\n2001:db8::1\n";
        let got = parse_target_list(text, "t.txt").ok();
        assert_eq!(
            got,
            Some(vec![
                "10.0.0.1".to_string(),
                "host-a.example".to_string(),
                "2001:db8::1".to_string()
            ])
        );
    }

    #[test]
    fn malformed_line_is_named_with_its_number() {
        let e = parse_target_list("10.0.0.1\n# c\n10.0.0.2 10.0.0.3\n", "t.txt");
        assert_eq!(
            e,
            Err(TargetError::Malformed {
                source_name: "t.txt".into(),
                line: 3,
                text: "10.0.0.2 10.0.0.3".into()
            })
        );
        let msg = e.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("line 3"), "{msg}");
        assert!(parse_target_list("a..b\n", "t").is_err());
        assert!(parse_target_list("-a.b\n", "t").is_err());
    }

    #[test]
    fn empty_list_is_refused() {
        assert_eq!(
            parse_target_list("# nothing\n\n", "t.txt"),
            Err(TargetError::Empty {
                source_name: "t.txt".into()
            })
        );
    }
}
