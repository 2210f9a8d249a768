//! The results spool: JSON lines in `STATE_DIR/results/`, one complete [`ResultRecord`] per
//! line.
//!
//! A `kill -9` at any moment loses no completed result and leaves no unreadable line: each
//! record is written as one whole line with a single `write` on an `O_APPEND` file and
//! `fdatasync`ed before [`Spool::append`] (or [`Spool::append_all`], for a run's records) returns; on open, a torn or unreadable last line
//! (a crash during the write, or a power loss) is cut off. The current file is `current.jsonl`;
//! past the size limit it is renamed `results-<last seq>.jsonl` (zero-padded, so names sort by
//! age) and the oldest rotated files beyond the retention count are deleted.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::record::ResultRecord;

const CURRENT: &str = "current.jsonl";

/// A spool failure (the directory or a file could not be used).
#[derive(Debug, thiserror::Error)]
#[error("results spool {path}: {what}: {source}")]
pub struct SpoolError {
    /// The file or directory concerned.
    pub path: PathBuf,
    /// What was being done.
    pub what: &'static str,
    /// The system error.
    pub source: io::Error,
}

fn err(path: &Path, what: &'static str) -> impl FnOnce(io::Error) -> SpoolError + use<> {
    let path = path.to_path_buf();
    move |source| SpoolError { path, what, source }
}

/// The spool directory inside a state directory.
pub fn spool_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("results")
}

/// The writer: appends records, rotates and prunes.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    file: File,
    size: u64,
    next_seq: u64,
    max_file_bytes: u64,
    keep_files: usize,
}

impl Spool {
    /// Opens (creating) the spool in `dir`, repairing a torn last line.
    pub fn open(dir: &Path, max_file_bytes: u64, keep_files: usize) -> Result<Spool, SpoolError> {
        fs::create_dir_all(dir).map_err(err(dir, "create the directory"))?;
        let path = dir.join(CURRENT);
        let repaired = repair(&path)?;
        if repaired > 0 {
            tracing::warn!(
                "results spool: cut {repaired} bytes of an incomplete last line from {}",
                path.display()
            );
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(err(&path, "open"))?;
        let size = file.metadata().map_err(err(&path, "stat"))?.len();
        let last = files(dir)?
            .iter()
            .rev()
            .find_map(|f| last_record(f).ok().flatten());
        Ok(Spool {
            dir: dir.to_path_buf(),
            file,
            size,
            next_seq: last.map_or(0, |r| r.seq + 1),
            max_file_bytes: max_file_bytes.max(1),
            keep_files,
        })
    }

    /// The sequence number the next record gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Writes `record` durably (numbering it) and returns it as written.
    pub fn append(&mut self, record: ResultRecord) -> Result<ResultRecord, SpoolError> {
        let record = self.write_line(record)?;
        let path = self.dir.join(CURRENT);
        self.file.sync_data().map_err(err(&path, "fdatasync"))?;
        Ok(record)
    }

    /// Writes `records` (numbering them) with one `fdatasync` for all of them, the records of
    /// one run toward many peers; each is still one whole line of its own. Returns every
    /// record, numbered if it was written, and the first failure if there was one (the
    /// records after it are not written).
    pub fn append_all(
        &mut self,
        records: Vec<ResultRecord>,
    ) -> (Vec<ResultRecord>, Option<SpoolError>) {
        if records.is_empty() {
            return (records, None);
        }
        let mut out = Vec::with_capacity(records.len());
        let mut failure = None;
        for record in records {
            if failure.is_some() {
                out.push(record);
                continue;
            }
            match self.write_line(record.clone()) {
                Ok(written) => out.push(written),
                Err(e) => {
                    failure = Some(e);
                    out.push(record);
                }
            }
        }
        let path = self.dir.join(CURRENT);
        if let Err(e) = self.file.sync_data().map_err(err(&path, "fdatasync")) {
            failure.get_or_insert(e);
        }
        (out, failure)
    }

    /// Numbers `record` and writes it as one line (not yet synced), rotating past the size
    /// limit.
    fn write_line(&mut self, mut record: ResultRecord) -> Result<ResultRecord, SpoolError> {
        record.seq = self.next_seq;
        let path = self.dir.join(CURRENT);
        let mut line =
            serde_json::to_vec(&record).map_err(|e| err(&path, "encode")(io::Error::other(e)))?;
        line.push(b'\n');
        // One write of the whole line: with O_APPEND the kernel places it at the end at once.
        self.file.write_all(&line).map_err(err(&path, "write"))?;
        self.size += line.len() as u64;
        self.next_seq += 1;
        if self.size >= self.max_file_bytes {
            // The file's lines are durable before it takes its final name.
            self.file.sync_data().map_err(err(&path, "fdatasync"))?;
            self.rotate(record.seq)?;
        }
        Ok(record)
    }

    fn rotate(&mut self, last_seq: u64) -> Result<(), SpoolError> {
        let cur = self.dir.join(CURRENT);
        let old = self.dir.join(format!("results-{last_seq:020}.jsonl"));
        fs::rename(&cur, &old).map_err(err(&cur, "rotate"))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&cur)
            .map_err(err(&cur, "open"))?;
        self.size = 0;
        // The rename is durable once the directory is.
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(err(&self.dir, "sync the directory"))?;
        let rotated: Vec<PathBuf> = files(&self.dir)?
            .into_iter()
            .filter(|p| !p.ends_with(CURRENT))
            .collect();
        let excess = rotated.len().saturating_sub(self.keep_files);
        for p in &rotated[..excess] {
            fs::remove_file(p).map_err(err(p, "remove an old file"))?;
        }
        Ok(())
    }
}

/// The spool's files, oldest first (rotated ones by name, then the current one).
fn files(dir: &Path) -> Result<Vec<PathBuf>, SpoolError> {
    let mut rotated = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(err(dir, "list")(e)),
    };
    for e in entries {
        let p = e.map_err(err(dir, "list"))?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.starts_with("results-")
            && Path::new(name)
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("jsonl"))
        {
            rotated.push(p);
        }
    }
    rotated.sort();
    let cur = dir.join(CURRENT);
    if cur.exists() {
        rotated.push(cur);
    }
    Ok(rotated)
}

/// Cuts an incomplete or unreadable last line; returns how many bytes were cut.
fn repair(path: &Path) -> Result<u64, SpoolError> {
    let mut f = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(err(path, "open")(e)),
    };
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).map_err(err(path, "read"))?;
    let mut keep = bytes.len();
    loop {
        let body = &bytes[..keep];
        if body.is_empty() {
            break;
        }
        // The last complete line must end in a newline and parse.
        let start = body[..body.len() - 1]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let line = &body[start..];
        if line.ends_with(b"\n") && serde_json::from_slice::<ResultRecord>(line).is_ok() {
            break;
        }
        keep = start;
    }
    let cut = (bytes.len() - keep) as u64;
    if cut > 0 {
        f.set_len(keep as u64).map_err(err(path, "truncate"))?;
        f.seek(SeekFrom::End(0)).map_err(err(path, "seek"))?;
        f.sync_all().map_err(err(path, "fsync"))?;
    }
    Ok(cut)
}

fn last_record(path: &Path) -> Result<Option<ResultRecord>, SpoolError> {
    let mut last = None;
    for_each_line(path, &mut |r| last = Some(r))?;
    Ok(last)
}

fn for_each_line(path: &Path, f: &mut dyn FnMut(ResultRecord)) -> Result<(), SpoolError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(err(path, "open")(e)),
    };
    for line in BufReader::new(file).lines() {
        let line = line.map_err(err(path, "read"))?;
        // A line being written right now by the agent may be torn: skip it.
        if let Ok(r) = serde_json::from_str(&line) {
            f(r);
        }
    }
    Ok(())
}

/// Which records [`read`] returns.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only runs that started at or after this Unix time (ns).
    pub since_unix_ns: Option<u64>,
    /// Only this test.
    pub test: Option<String>,
}

/// Every spooled record of `dir` that passes `filter`, oldest first.
pub fn read(dir: &Path, filter: &Filter) -> Result<Vec<ResultRecord>, SpoolError> {
    let mut out = Vec::new();
    for f in files(dir)? {
        for_each_line(&f, &mut |r| {
            if filter.since_unix_ns.is_none_or(|s| r.start_unix_ns >= s)
                && filter.test.as_ref().is_none_or(|t| *t == r.test)
            {
                out.push(r);
            }
        })?;
    }
    Ok(out)
}

/// Parses `--since`: an RFC 3339 time (`2026-12-01T10:00:00Z`), or a duration back from
/// `now_unix_ns` (`10m`, `1h`). Returns Unix nanoseconds.
pub fn parse_since(text: &str, now_unix_ns: u64) -> Result<u64, String> {
    if let Ok(d) = humantime::parse_duration(text) {
        return Ok(now_unix_ns.saturating_sub(d.as_nanos() as u64));
    }
    let t = humantime::parse_rfc3339_weak(text).map_err(|e| {
        format!("`{text}` is neither a time (2026-12-01T10:00:00Z) nor a duration (10m): {e}")
    })?;
    let d = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| format!("`{text}` is before 1970"))?;
    Ok(d.as_nanos() as u64)
}

#[cfg(test)]
#[path = "spool_tests.rs"]
mod tests;
