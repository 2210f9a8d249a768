//! The responder's side of a QUIC test connection: reads the open request, checks the
//! session with the control plane's grants, then answers handshakes, echoes datagrams, or
//! counts and sends stream data within what was granted.

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::path_report;
use super::transfer::{count_until, send_until};
use crate::a2a::Direction;
use crate::quic_test::open::{FarEndView, Mode, OPEN_LEN, OpenAnswer, OpenRequest};

/// How long a client has to open its first stream and send the open request.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the responder keeps a finished connection for the client to close it.
const LINGER: Duration = Duration::from_secs(5);
/// Slice width of the responder's byte counts.
const SLICE: Duration = Duration::from_millis(100);

/// What the control plane granted a session, as the QUIC test needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuicGrant {
    /// A throughput session (else handshakes and datagram echoes).
    pub throughput: bool,
    /// The direction(s) granted.
    pub direction: Direction,
    /// Datagrams granted (echoes beyond are not sent), when limited by count.
    pub count: Option<u64>,
    /// Longest transfer, when limited.
    pub duration: Option<Duration>,
    /// When the session is forgotten: nothing is sent after it.
    pub expires: std::time::Instant,
}

/// The control plane's sessions, as the QUIC test asks them.
pub trait QuicGrants: Send + Sync {
    /// The grant of `session` for a test connection from `client`, or why there is none.
    fn quic_grant(&self, session: u64, client: IpAddr) -> Result<QuicGrant, String>;
}

/// Serves one test connection (already established under the test ALPN) until the client
/// closes it or the grant runs out. `Ok` when the session was accepted, `Err` with the
/// reason when refused.
pub async fn serve_test_connection(
    conn: quinn::Connection,
    grants: &dyn QuicGrants,
) -> Result<(), String> {
    let client = conn.remote_address().ip().to_canonical();
    let opened = tokio::time::timeout(OPEN_TIMEOUT, async {
        let (send, mut recv) = conn.accept_bi().await.map_err(|e| e.to_string())?;
        let mut b = [0; OPEN_LEN];
        recv.read_exact(&mut b).await.map_err(|e| e.to_string())?;
        Ok::<_, String>((send, OpenRequest::decode(&b).map_err(|e| e.to_string())?))
    })
    .await
    .unwrap_or_else(|_| Err("no open request in time".into()));
    let (mut send, open) = match opened {
        Ok(o) => o,
        Err(e) => {
            conn.close(1_u32.into(), b"bad open");
            return Err(e);
        }
    };
    let grant = grants
        .quic_grant(open.session, client)
        .and_then(|g| check_mode(&g, open.mode).map(|()| g));
    let grant = match grant {
        Ok(g) => g,
        Err(why) => {
            let _ = send
                .write_all(&OpenAnswer::Refused(why.clone()).encode())
                .await;
            let _ = send.finish();
            let _ = tokio::time::timeout(LINGER, conn.closed()).await;
            return Err(why);
        }
    };
    send.write_all(&OpenAnswer::Accepted.encode())
        .await
        .map_err(|e| e.to_string())?;
    let expires = Instant::from_std(grant.expires);
    match open.mode {
        Mode::Handshake => {
            let _ = send.finish();
        }
        Mode::Echo => echo(&conn, grant.count, expires).await,
        Mode::Upload | Mode::Download | Mode::Both => {
            let asked = Duration::from_millis(u64::from(open.duration_ms));
            let length = grant.duration.map_or(asked, |g| g.min(asked));
            for view in transfer(&conn, open.mode, length, expires).await? {
                send.write_all(&view.encode())
                    .await
                    .map_err(|e| e.to_string())?;
            }
            let _ = send.finish();
        }
    }
    let _ = tokio::time::timeout(LINGER, conn.closed()).await;
    Ok(())
}

/// Whether the grant covers a connection of `mode`.
fn check_mode(g: &QuicGrant, mode: Mode) -> Result<(), String> {
    let ok = match mode {
        Mode::Handshake => true,
        Mode::Echo => !g.throughput,
        Mode::Upload => g.throughput && g.direction.includes_to(),
        Mode::Download => g.throughput && g.direction.includes_from(),
        Mode::Both => g.throughput && g.direction == Direction::Both,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the session was granted for {} ({}), not for this connection ({mode:?})",
            if g.throughput {
                "quic_throughput"
            } else {
                "quic_rtt"
            },
            g.direction
        ))
    }
}

/// Echoes datagrams (at most `count`) until the connection ends or the session expires.
async fn echo(conn: &quinn::Connection, count: Option<u64>, expires: Instant) {
    let mut echoed = 0_u64;
    loop {
        let d: Bytes = match tokio::time::timeout_at(expires, conn.read_datagram()).await {
            Ok(Ok(d)) => d,
            _ => break,
        };
        if count.is_some_and(|c| echoed >= c) {
            continue;
        }
        if conn.send_datagram(d).is_ok() {
            echoed += 1;
        }
    }
}

/// Counts (`Upload`) or sends (`Download`) one data stream the client opens, or both at
/// once (`Both`: the client's first data stream is counted, its second is sent on), for at
/// most `length` and never past `expires`. The views: the upload's, then the download's.
async fn transfer(
    conn: &quinn::Connection,
    mode: Mode,
    length: Duration,
    expires: Instant,
) -> Result<Vec<FarEndView>, String> {
    let mut upload = None;
    if mode.uploads() {
        upload = Some(accept_data(conn).await?);
    }
    let mut download = None;
    if mode.downloads() {
        download = Some(accept_data(conn).await?);
    }
    let counting = async {
        match &mut upload {
            Some((_, recv)) => count(conn, recv, length, expires).await.map(Some),
            None => Ok(None),
        }
    };
    let sending = async {
        match &mut download {
            Some((send, recv)) => write(conn, send, recv, length, expires).await.map(Some),
            None => Ok(None),
        }
    };
    let (counted, written) = tokio::join!(counting, sending);
    Ok([counted?, written?].into_iter().flatten().collect())
}

/// The next data stream the client opens.
async fn accept_data(
    conn: &quinn::Connection,
) -> Result<(quinn::SendStream, quinn::RecvStream), String> {
    tokio::time::timeout(OPEN_TIMEOUT, conn.accept_bi())
        .await
        .map_err(|_| "no data stream in time".to_string())?
        .map_err(|e| e.to_string())
}

/// Counts the client's stream: it sends for `length`; one more second is allowed for the last
/// bytes in flight.
async fn count(
    conn: &quinn::Connection,
    recv: &mut quinn::RecvStream,
    length: Duration,
    expires: Instant,
) -> Result<FarEndView, String> {
    let until = (Instant::now() + length + Duration::from_secs(1)).min(expires);
    let counter = count_until(recv, until, SLICE)
        .await
        .map_err(|e| e.to_string())?;
    Ok(FarEndView {
        bytes: counter.total(),
        elapsed_ns: u64::try_from(counter.elapsed().as_nanos()).unwrap_or(u64::MAX),
        slice_ns: u64::try_from(SLICE.as_nanos()).unwrap_or(u64::MAX),
        slices: counter.slices().to_vec(),
        path: path_report(conn),
    })
}

/// Sends on the stream the client opened with one octet, for `length`.
async fn write(
    conn: &quinn::Connection,
    send: &mut quinn::SendStream,
    recv: &mut quinn::RecvStream,
    length: Duration,
    expires: Instant,
) -> Result<FarEndView, String> {
    let mut start = [0; 1];
    recv.read_exact(&mut start)
        .await
        .map_err(|e| e.to_string())?;
    let until = (Instant::now() + length).min(expires);
    let written = send_until(send, until).await.map_err(|e| e.to_string())?;
    Ok(FarEndView {
        bytes: written,
        path: path_report(conn),
        ..FarEndView::default()
    })
}
