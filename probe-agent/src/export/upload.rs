//! The optional results upload (`export.upload.url`): the spooled records, oldest first, as
//! NDJSON `POST`s (one record per line, up to [`BATCH`] per request), each retried with a
//! backoff from one second to a minute until the collector answers 2xx.
//!
//! After each acknowledged batch the next sequence number to send is written to
//! `upload-next` in the state directory (written then renamed), so a restart resumes right
//! after the last acknowledged record: nothing is lost and, as long as the agent stops
//! normally (a `POST` in flight is finished before it exits), nothing is sent twice. After a
//! `kill -9` during a `POST` the batch may be sent again; each record carries its `seq` so a
//! collector can drop such repeats.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::broadcast::error::RecvError;
use url::Url;

use super::post::{Client, backoff, post};
use crate::record::ResultRecord;
use crate::spool::{self, Filter};
use crate::state::AgentShared;

/// Records per request at most.
pub const BATCH: usize = 500;

/// The file holding the next sequence number to send.
pub fn cursor_path(state_dir: &Path) -> PathBuf {
    state_dir.join("upload-next")
}

/// The next sequence number to send (0 when nothing was acknowledged yet).
///
/// # Errors
/// The file exists but cannot be read or does not hold a number.
pub fn load_cursor(state_dir: &Path) -> Result<u64, String> {
    let p = cursor_path(state_dir);
    match std::fs::read_to_string(&p) {
        Ok(t) => t.trim().parse().map_err(|e| {
            format!(
                "{}: `{}` is not a sequence number: {e}",
                p.display(),
                t.trim()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(format!("{}: {e}", p.display())),
    }
}

fn store_cursor(state_dir: &Path, next: u64) -> std::io::Result<()> {
    let p = cursor_path(state_dir);
    let tmp = p.with_extension("tmp");
    std::fs::write(&tmp, format!("{next}\n"))?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, &p)
}

/// The records from `next` on, oldest first, at most [`BATCH`]: from the recent ring when it
/// reaches back far enough, else from the spool.
fn pending(shared: &AgentShared, state_dir: &Path, next: u64) -> Vec<ResultRecord> {
    let recent = shared.recent_since(0);
    let covered =
        recent.iter().any(|r| r.seq <= next) || recent.first().is_some_and(|r| r.seq == next);
    let mut records: Vec<ResultRecord> = if covered {
        recent.into_iter().filter(|r| r.seq >= next).collect()
    } else {
        match spool::read(&spool::spool_dir(state_dir), &Filter::default()) {
            Ok(all) => all.into_iter().filter(|r| r.seq >= next).collect(),
            Err(e) => {
                tracing::error!("upload: cannot read the spool: {e}");
                Vec::new()
            }
        }
    };
    records.sort_by_key(|r| r.seq);
    records.dedup_by_key(|r| r.seq);
    records.truncate(BATCH);
    records
}

/// Uploads every spooled record to `url` from the stored cursor on, then each new one, until
/// `stop`. A `POST` in flight when `stop` completes is finished first.
pub async fn run(
    url: Url,
    client: Client,
    state_dir: PathBuf,
    shared: Arc<AgentShared>,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut next = match load_cursor(&state_dir) {
        Ok(n) => n,
        Err(e) => {
            tracing::error!("upload: {e}; starting from the first record");
            0
        }
    };
    let mut news = shared.subscribe();
    let mut failing: Option<Duration> = None;
    let mut wait = Duration::ZERO;
    loop {
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(wait) => {}
            r = news.recv(), if failing.is_none() => {
                if matches!(r, Err(RecvError::Closed)) {
                    return;
                }
            }
        }
        loop {
            let batch = pending(&shared, &state_dir, next);
            let Some(last) = batch.last().map(|r| r.seq) else {
                failing = None;
                wait = Duration::from_secs(3600);
                break;
            };
            let mut body = String::new();
            for r in &batch {
                if let Ok(line) = serde_json::to_string(r) {
                    body.push_str(&line);
                    body.push('\n');
                }
            }
            let sent = post(
                &url,
                &client,
                &[
                    ("content-type", "application/x-ndjson"),
                    (
                        "user-agent",
                        concat!("probe-agent/", env!("CARGO_PKG_VERSION")),
                    ),
                ],
                Bytes::from(body),
                Duration::from_secs(30),
            )
            .await;
            match sent {
                Ok((200..=299, _)) => {
                    next = last + 1;
                    if let Err(e) = store_cursor(&state_dir, next) {
                        tracing::error!("upload: cannot store the cursor: {e}");
                    }
                    tracing::debug!(records = batch.len(), next, "upload: acknowledged");
                }
                Ok((status, answer)) => {
                    let d = backoff(failing);
                    tracing::warn!(
                        "upload: {url} answered {status} ({}); retrying in {d:?}",
                        String::from_utf8_lossy(&answer).trim()
                    );
                    failing = Some(d);
                    wait = d;
                    break;
                }
                Err(e) => {
                    let d = backoff(failing);
                    tracing::warn!("upload failed: {e}; retrying in {d:?}");
                    failing = Some(d);
                    wait = d;
                    break;
                }
            }
        }
    }
}
