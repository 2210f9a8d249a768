//! Reading the agent's TOML file with the position of every key, so that each problem names
//! its line; unknown keys are problems too, with the nearest known key as a hint.

use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::config::{Problems, Where};

/// A table of the file with the keys it is allowed to have.
pub(crate) struct Table<'a, 'i> {
    src: &'a str,
    file: &'a str,
    path: String,
    keys: &'a DeTable<'i>,
}

impl<'a, 'i> Table<'a, 'i> {
    /// The top-level table of `src`, read from `file`.
    pub(crate) fn root(src: &'a str, file: &'a str, table: &'a DeTable<'i>) -> Self {
        Self {
            src,
            file,
            path: String::new(),
            keys: table,
        }
    }

    /// Where the key `key` of this table is (its line), or the table itself.
    pub(crate) fn at(&self, key: &str, span: std::ops::Range<usize>) -> Where {
        Where::File {
            file: self.file.to_owned(),
            line: line_of(self.src, span.start),
            key: self.key_path(key),
        }
    }

    fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Reports every key not in `known`, with the nearest known one as a hint.
    pub(crate) fn check_keys(&self, known: &[&str], problems: &mut Problems) {
        for (k, _) in self.keys {
            let name = k.get_ref().as_ref();
            if known.contains(&name) {
                continue;
            }
            let hint = match did_you_mean(name, known) {
                Some(n) => format!("did you mean `{n}`?"),
                None => format!("known keys here: {}", known.join(", ")),
            };
            problems.push(self.at(name, k.span()), "unknown key", hint);
        }
    }

    fn get(&self, key: &str) -> Option<(&'a Spanned<DeValue<'i>>, Where)> {
        self.keys
            .get_key_value(key)
            .map(|(k, v)| (v, self.at(key, k.span())))
    }

    /// A string value.
    pub(crate) fn string(&self, key: &str, problems: &mut Problems) -> Option<(String, Where)> {
        let (v, at) = self.get(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some((s.to_string(), at)),
            other => {
                problems.push(
                    at,
                    format!("expected a string, found {}", other.type_str()),
                    "quote the value",
                );
                None
            }
        }
    }

    /// An array of strings.
    pub(crate) fn strings(&self, key: &str, problems: &mut Problems) -> Option<Vec<String>> {
        let (v, at) = self.get(key)?;
        let hint = r#"write an array of strings, e.g. ["a", "b"]"#;
        let Some(arr) = v.get_ref().as_array() else {
            problems.push(
                at,
                format!("expected an array, found {}", v.get_ref().type_str()),
                hint,
            );
            return None;
        };
        let mut out = Vec::new();
        for item in arr {
            match item.get_ref().as_str() {
                Some(s) => out.push(s.to_owned()),
                None => {
                    problems.push(at.clone(), "expected only strings", hint);
                    return None;
                }
            }
        }
        Some(out)
    }

    /// A non-negative integer no larger than `max`.
    pub(crate) fn uint(&self, key: &str, max: u64, problems: &mut Problems) -> Option<u64> {
        let (v, at) = self.get(key)?;
        let n = v
            .get_ref()
            .as_integer()
            .and_then(|i| i64::from_str_radix(i.as_str(), i.radix()).ok());
        match n.and_then(|n| u64::try_from(n).ok()) {
            Some(n) if n <= max => Some(n),
            _ => {
                problems.push(
                    at,
                    "expected a whole number",
                    format!("give a number from 0 to {max}, without quotes"),
                );
                None
            }
        }
    }

    /// A boolean.
    pub(crate) fn boolean(&self, key: &str, problems: &mut Problems) -> Option<bool> {
        let (v, at) = self.get(key)?;
        let b = v.get_ref().as_bool();
        if b.is_none() {
            problems.push(
                at,
                "expected true or false",
                "write true or false, unquoted",
            );
        }
        b
    }

    /// A duration written as a string (`"10s"`, `"1m 30s"`, `"250ms"`).
    pub(crate) fn duration(&self, key: &str, problems: &mut Problems) -> Option<Duration> {
        let (s, at) = self.string(key, problems)?;
        match humantime::parse_duration(&s) {
            Ok(d) => Some(d),
            Err(e) => {
                problems.push(
                    at,
                    format!("`{s}` is not a duration: {e}"),
                    r#"write e.g. "10s", "250ms" or "1m 30s""#,
                );
                None
            }
        }
    }

    /// The sub-table `key`, when present.
    pub(crate) fn table(&self, key: &str, problems: &mut Problems) -> Option<Table<'a, 'i>> {
        let (v, at) = self.get(key)?;
        if let Some(table) = v.get_ref().as_table() {
            return Some(Table {
                src: self.src,
                file: self.file,
                path: self.key_path(key),
                keys: table,
            });
        }
        problems.push(
            at,
            format!("expected a table, found {}", v.get_ref().type_str()),
            format!("write it as a [{}] section", self.key_path(key)),
        );
        None
    }

    /// The tables of the array of tables `key` (`[[tests]]`).
    pub(crate) fn tables(&self, key: &str, problems: &mut Problems) -> Vec<Table<'a, 'i>> {
        let Some((v, at)) = self.get(key) else {
            return Vec::new();
        };
        let Some(arr) = v.get_ref().as_array() else {
            problems.push(
                at,
                "expected an array of tables",
                format!("write each entry as a [[{key}]] section"),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in arr.iter().enumerate() {
            match item.get_ref().as_table() {
                Some(table) => out.push(Table {
                    src: self.src,
                    file: self.file,
                    path: format!("{}[{i}]", self.key_path(key)),
                    keys: table,
                }),
                None => problems.push(
                    at.clone(),
                    "expected a table",
                    format!("write each entry as a [[{key}]] section"),
                ),
            }
        }
        out
    }

    /// Where this table starts (for problems about the table as a whole).
    pub(crate) fn here(&self, span_of_first: Option<std::ops::Range<usize>>) -> Where {
        Where::File {
            file: self.file.to_owned(),
            line: span_of_first.map_or(1, |s| line_of(self.src, s.start)),
            key: self.path.clone(),
        }
    }

    /// The span of this table's first key.
    pub(crate) fn first_span(&self) -> Option<std::ops::Range<usize>> {
        self.keys
            .iter()
            .map(|(k, _)| k.span())
            .min_by_key(|s| s.start)
    }

    /// Whether the table has `key` (valid or not).
    pub(crate) fn has(&self, key: &str) -> bool {
        self.keys.contains_key(key)
    }
}

/// The 1-based line of byte `offset` in `src`.
pub(crate) fn line_of(src: &str, offset: usize) -> usize {
    src[..offset.min(src.len())].matches('\n').count() + 1
}

/// The known name closest to `name`, when it is close enough to be a typo.
pub(crate) fn did_you_mean<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance between two short strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_get_the_nearest_key_and_strangers_none() {
        let known = ["interval", "count", "target", "name", "kind"];
        assert_eq!(did_you_mean("intervall", &known), Some("interval"));
        assert_eq!(did_you_mean("cuont", &known), Some("count"));
        assert_eq!(did_you_mean("colour", &known), None);
        assert_eq!(line_of("a\nb\nc", 4), 3);
    }
}
