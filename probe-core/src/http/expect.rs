//! What a successful response looks like: `--expect` values, each a status (`200`, `2xx`,
//! `200-299`, `301,302`) or a regular expression the body must match.

use regex::Regex;

use super::HttpError;

/// A set of accepted status codes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusSet(Vec<(u16, u16)>);

impl StatusSet {
    /// Whether `status` is in the set.
    pub fn contains(&self, status: u16) -> bool {
        self.0.iter().any(|&(lo, hi)| (lo..=hi).contains(&status))
    }

    /// Parses `200`, `2xx`, `200-299`, or a comma list of them; `None` when `spec` is not
    /// written like a status at all (then it is a regular expression).
    fn parse(spec: &str) -> Option<Result<StatusSet, String>> {
        let looks = !spec.is_empty()
            && spec
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, 'x' | 'X' | ',' | '-' | ' '));
        if !looks || !spec.chars().next().is_some_and(|c| c.is_ascii_digit()) {
            return None;
        }
        let mut ranges = Vec::new();
        for part in spec.split(',').map(str::trim) {
            let range = if let Some(d) = part.strip_suffix("xx").or_else(|| part.strip_suffix("XX"))
            {
                d.parse::<u16>()
                    .ok()
                    .filter(|d| (1..=5).contains(d))
                    .map(|d| (d * 100, d * 100 + 99))
            } else if let Some((lo, hi)) = part.split_once('-') {
                lo.trim().parse().ok().zip(hi.trim().parse().ok())
            } else {
                part.parse().ok().map(|s| (s, s))
            };
            match range {
                Some((lo, hi)) if (100..=599).contains(&lo) && (lo..=599).contains(&hi) => {
                    ranges.push((lo, hi));
                }
                _ => {
                    return Some(Err(format!(
                        "`{part}` is not a status (100-599), Nxx or a range"
                    )));
                }
            }
        }
        Some(Ok(StatusSet(ranges)))
    }

    /// The set as written: `200-299`, `301`.
    pub fn describe(&self) -> String {
        self.0
            .iter()
            .map(|&(lo, hi)| {
                if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo}-{hi}")
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The expectations of a test.
#[derive(Clone, Debug)]
pub struct Expect {
    /// Accepted statuses; default 200-399 (redirects are not followed, so they count as up).
    pub status: StatusSet,
    /// Regular expressions the body must match (all of them).
    pub body: Vec<Regex>,
}

impl Default for Expect {
    fn default() -> Self {
        Expect {
            status: StatusSet(vec![(200, 399)]),
            body: Vec::new(),
        }
    }
}

impl Expect {
    /// From `--expect` values: statuses replace the default set; anything else is a body regex
    /// (`re:` forces a regex that looks like a status).
    pub fn parse(specs: &[String]) -> Result<Expect, HttpError> {
        let mut status = Vec::new();
        let mut body = Vec::new();
        for spec in specs {
            let bad = |why: String| HttpError::BadExpect {
                spec: spec.clone(),
                why,
            };
            if let Some(re) = spec.strip_prefix("re:") {
                body.push(Regex::new(re).map_err(|e| bad(e.to_string()))?);
                continue;
            }
            match StatusSet::parse(spec.trim()) {
                Some(Ok(set)) => status.extend(set.0),
                Some(Err(why)) => return Err(bad(why)),
                None => body.push(Regex::new(spec).map_err(|e| bad(e.to_string()))?),
            }
        }
        Ok(Expect {
            status: if status.is_empty() {
                Expect::default().status
            } else {
                StatusSet(status)
            },
            body,
        })
    }

    /// The first body expression the body does not match.
    pub fn body_mismatch(&self, body: &[u8]) -> Option<&Regex> {
        if self.body.is_empty() {
            return None;
        }
        let text = String::from_utf8_lossy(body);
        self.body.iter().find(|re| !re.is_match(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(specs: &[&str]) -> Result<Expect, HttpError> {
        Expect::parse(&specs.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn statuses_and_regexes() {
        let d = parse(&[]).expect("default");
        assert!(d.status.contains(200) && d.status.contains(301) && !d.status.contains(404));
        let e = parse(&["2xx", "404", "500-502", "ready|ok"]).expect("mixed");
        for s in [200, 299, 404, 500, 502] {
            assert!(e.status.contains(s), "{s}");
        }
        assert!(!e.status.contains(301) && !e.status.contains(503));
        assert_eq!(e.status.describe(), "200-299,404,500-502");
        assert_eq!(e.body.len(), 1);
        assert!(e.body_mismatch(b"all ok").is_none());
        assert!(e.body_mismatch(b"down").is_some());
        assert_eq!(parse(&["re:200"]).expect("forced").body.len(), 1);
        assert!(parse(&["700"]).is_err());
        assert!(parse(&["299-200"]).is_err());
        let e = parse(&["(unclosed"]).expect_err("bad regex");
        assert!(
            e.to_string()
                .starts_with("`(unclosed` is not an expectation: "),
            "{e}"
        );
    }
}
