//! `probe-agent.log` in `PROBE_LOG_DIR`, rotated by size: past the limit the file becomes
//! `probe-agent.log.1` (the older ones shift up to the retention count) and a new one starts.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The log file's name.
pub const LOG_FILE: &str = "probe-agent.log";

/// A size-rotated log file (a [`Write`] for the tracing subscriber).
#[derive(Debug)]
pub struct RotatingLog {
    dir: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
    keep: usize,
}

impl RotatingLog {
    /// Opens (appending to) `dir/probe-agent.log`, creating `dir`.
    pub fn open(dir: &Path, max_bytes: u64, keep: usize) -> io::Result<RotatingLog> {
        fs::create_dir_all(dir)?;
        let path = dir.join(LOG_FILE);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        Ok(RotatingLog {
            dir: dir.to_path_buf(),
            file,
            size,
            max_bytes: max_bytes.max(1),
            keep: keep.max(1),
        })
    }

    fn numbered(&self, n: usize) -> PathBuf {
        self.dir.join(format!("{LOG_FILE}.{n}"))
    }

    fn rotate(&mut self) -> io::Result<()> {
        let _ = fs::remove_file(self.numbered(self.keep));
        for n in (1..self.keep).rev() {
            let from = self.numbered(n);
            if from.exists() {
                fs::rename(&from, self.numbered(n + 1))?;
            }
        }
        fs::rename(self.dir.join(LOG_FILE), self.numbered(1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(LOG_FILE))?;
        self.size = 0;
        Ok(())
    }
}

impl Write for RotatingLog {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.size > 0 && self.size + buf.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(buf)?;
        self.size += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_and_keeps_the_newest() {
        let dir = std::env::temp_dir().join(format!("probe-agent-log-{}", std::process::id()));
        let mut log = RotatingLog::open(&dir, 100, 2).expect("open");
        for i in 0..10 {
            writeln!(log, "{i:049}").expect("write");
        }
        let read = |p: PathBuf| fs::read_to_string(p).expect("read");
        assert_eq!(read(dir.join(LOG_FILE)).lines().count(), 2);
        assert!(read(dir.join(format!("{LOG_FILE}.1"))).starts_with(&format!("{:049}", 6)));
        assert!(read(dir.join(format!("{LOG_FILE}.2"))).starts_with(&format!("{:049}", 4)));
        assert!(!dir.join(format!("{LOG_FILE}.3")).exists());
        let _ = fs::remove_dir_all(&dir);
    }
}
