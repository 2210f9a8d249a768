//! Prometheus remote write: the series `/metrics` shows, pushed every few seconds as a
//! snappy-compressed protobuf `WriteRequest` (remote-write protocol 1.0), for agents nothing
//! can scrape.
//!
//! Each snapshot is first written to a small on-disk queue in the state directory
//! (`remote-write/`, one file per snapshot, written then renamed), then the queue is sent
//! oldest first. A failed send leaves the file and is retried with a backoff from one second
//! to a minute, also after a restart; the queue keeps the newest [`MAX_QUEUED`] snapshots.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use url::Url;

use super::Metrics;
use super::post::{Client, backoff, post};
use crate::state::AgentShared;

/// How often a snapshot of the series is taken and pushed.
pub const PUSH_EVERY: Duration = Duration::from_secs(5);

/// Snapshots kept on disk while the receiver is unreachable (at 5 s: about 3 hours).
pub const MAX_QUEUED: usize = 2000;

/// The remote-write protocol's `Label`.
#[derive(Clone, PartialEq, Message)]
pub struct Label {
    /// The label's name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The label's value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// The remote-write protocol's `Sample`.
#[derive(Clone, PartialEq, Message)]
pub struct Sample {
    /// The value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Unix time, milliseconds.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// The remote-write protocol's `TimeSeries`.
#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    /// Labels, `__name__` first, sorted by name.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Samples, oldest first.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// The remote-write protocol's `WriteRequest`.
#[derive(Clone, PartialEq, Message)]
pub struct WriteRequest {
    /// The series.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// Parses one label set `k="v",...` (the text format's escapes `\\`, `\"`, `\n`).
fn parse_labels(mut s: &str, out: &mut Vec<Label>) -> Option<()> {
    while !s.is_empty() {
        let (name, rest) = s.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break i,
                c => value.push(c),
            }
        };
        out.push(Label {
            name: name.trim_start_matches(',').to_owned(),
            value,
        });
        s = rest[end + 1..].trim_start_matches(',');
    }
    Some(())
}

/// The series of a text exposition `text` as remote-write series at `ts_ms`, with `extra`
/// labels added to each.
pub fn series_from_text(text: &str, extra: &[(&str, &str)], ts_ms: i64) -> Vec<TimeSeries> {
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => match v.parse() {
                Ok(v) => v,
                Err(_) => continue,
            },
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.strip_suffix('}').unwrap_or(l)),
            None => (series, ""),
        };
        let mut ls = vec![Label {
            name: "__name__".into(),
            value: name.into(),
        }];
        if parse_labels(labels, &mut ls).is_none() {
            continue;
        }
        ls.extend(extra.iter().map(|(k, v)| Label {
            name: (*k).into(),
            value: (*v).into(),
        }));
        ls.sort_by(|a, b| a.name.cmp(&b.name));
        out.push(TimeSeries {
            labels: ls,
            samples: vec![Sample {
                value,
                timestamp: ts_ms,
            }],
        });
    }
    out
}

/// The on-disk queue of encoded snapshots.
#[derive(Debug)]
pub struct Queue {
    dir: PathBuf,
}

impl Queue {
    /// Opens (creating) the queue in `dir`.
    ///
    /// # Errors
    /// The directory cannot be created.
    pub fn open(dir: &Path) -> std::io::Result<Queue> {
        std::fs::create_dir_all(dir)?;
        Ok(Queue {
            dir: dir.to_owned(),
        })
    }

    /// The queued files, oldest first.
    fn files(&self) -> Vec<(u64, PathBuf)> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut v: Vec<(u64, PathBuf)> = rd
            .filter_map(Result::ok)
            .filter_map(|e| {
                let n = e
                    .file_name()
                    .to_str()?
                    .strip_suffix(".snappy")?
                    .parse()
                    .ok()?;
                Some((n, e.path()))
            })
            .collect();
        v.sort();
        v
    }

    /// Appends `body`, dropping the oldest beyond [`MAX_QUEUED`].
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn push(&self, body: &[u8]) -> std::io::Result<()> {
        let files = self.files();
        let next = files.last().map_or(0, |(n, _)| n + 1);
        let tmp = self.dir.join(format!("{next:020}.tmp"));
        std::fs::write(&tmp, body)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, self.dir.join(format!("{next:020}.snappy")))?;
        if files.len() + 1 > MAX_QUEUED {
            for (_, p) in &files[..files.len() + 1 - MAX_QUEUED] {
                tracing::warn!("remote write: queue full, dropping {}", p.display());
                let _ = std::fs::remove_file(p);
            }
        }
        Ok(())
    }

    /// How many snapshots wait.
    pub fn len(&self) -> usize {
        self.files().len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Encodes a `WriteRequest` of `series` as the protocol wants it (protobuf, snappy block).
///
/// # Errors
/// Snappy failed (the input is too large).
pub fn encode(series: Vec<TimeSeries>) -> Result<Vec<u8>, snap::Error> {
    let raw = WriteRequest { timeseries: series }.encode_to_vec();
    snap::raw::Encoder::new().compress_vec(&raw)
}

/// Sends the queue oldest first until it is empty or a send fails.
async fn drain(queue: &Queue, url: &Url, client: &Client) -> Result<(), String> {
    for (_, path) in queue.files() {
        let body = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let (status, answer) = post(
            url,
            client,
            &[
                ("content-type", "application/x-protobuf"),
                ("content-encoding", "snappy"),
                ("x-prometheus-remote-write-version", "0.1.0"),
                (
                    "user-agent",
                    concat!("probe-agent/", env!("CARGO_PKG_VERSION")),
                ),
            ],
            Bytes::from(body),
            Duration::from_secs(10),
        )
        .await?;
        match status {
            200..=299 => {}
            // The receiver refuses this batch for good (bad data): retrying cannot help.
            400..=499 if status != 429 => tracing::warn!(
                "remote write: {url} refused a snapshot ({status}): {}; dropped",
                String::from_utf8_lossy(&answer).trim()
            ),
            _ => {
                return Err(format!(
                    "{url} answered {status}: {}",
                    String::from_utf8_lossy(&answer).trim()
                ));
            }
        }
        let _ = std::fs::remove_file(&path);
    }
    Ok(())
}

/// Pushes snapshots of `metrics` to `url` every [`PUSH_EVERY`], through `queue`, until `stop`.
pub async fn run(
    url: Url,
    client: Client,
    queue: Queue,
    shared: Arc<AgentShared>,
    metrics: Arc<Metrics>,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut next_snapshot = tokio::time::Instant::now() + PUSH_EVERY;
    let mut failing: Option<Duration> = None;
    let mut wake = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep_until(wake) => {}
        }
        let now = tokio::time::Instant::now();
        if now >= next_snapshot {
            next_snapshot = now + PUSH_EVERY;
            let info = shared.info();
            let ts_ms = i64::try_from(crate::run_loop::unix_ns() / 1_000_000).unwrap_or(i64::MAX);
            let series = series_from_text(
                &metrics.encode(),
                &[("job", "probe-agent"), ("instance", &info.name)],
                ts_ms,
            );
            match encode(series) {
                Ok(body) => {
                    if let Err(e) = queue.push(&body) {
                        tracing::error!("remote write: cannot queue a snapshot: {e}");
                    }
                }
                Err(e) => tracing::error!("remote write: cannot compress a snapshot: {e}"),
            }
        }
        match drain(&queue, &url, &client).await {
            Ok(()) => {
                failing = None;
                wake = next_snapshot;
            }
            Err(e) => {
                let wait = backoff(failing);
                tracing::warn!(
                    queued = queue.len(),
                    "remote write failed: {e}; retrying in {wait:?}"
                );
                failing = Some(wait);
                wake = tokio::time::Instant::now() + wait;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_format_becomes_sorted_labelled_series_that_decode_back() {
        let text = "# HELP x y\nprobe_loss_ratio{test=\"a \\\"b\\\"\",peer=\"10.0.0.2:49153\",direction=\"forward\"} 0.2\nprobe_rtt_seconds_bucket{le=\"+Inf\",test=\"t\",peer=\"p\"} 40\n# EOF\n";
        let series = series_from_text(text, &[("job", "probe-agent")], 1234);
        assert_eq!(series.len(), 2);
        let names: Vec<(&str, &str)> = series[0]
            .labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("__name__", "probe_loss_ratio"),
                ("direction", "forward"),
                ("job", "probe-agent"),
                ("peer", "10.0.0.2:49153"),
                ("test", "a \"b\""),
            ]
        );
        assert_eq!(
            series[0].samples,
            [Sample {
                value: 0.2,
                timestamp: 1234
            }]
        );
        assert_eq!(
            series[1].samples,
            [Sample {
                value: 40.0,
                timestamp: 1234
            }]
        );
        let body = encode(series.clone()).expect("snappy");
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&body)
            .expect("unsnappy");
        let back = WriteRequest::decode(raw.as_slice()).expect("protobuf");
        assert_eq!(back.timeseries, series);
    }

    #[test]
    fn the_queue_keeps_the_newest_snapshots_in_order() {
        let dir = std::env::temp_dir().join(format!("probe-rw-queue-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let q = Queue::open(&dir).expect("queue");
        for i in 0..3u8 {
            q.push(&[i]).expect("push");
        }
        let files: Vec<Vec<u8>> = q
            .files()
            .iter()
            .map(|(_, p)| std::fs::read(p).expect("read"))
            .collect();
        assert_eq!(files, [vec![0], vec![1], vec![2]]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
