//! Mesh members behind NAT over quinn (see [`crate::control::mesh`]).
//!
//! The peer's side is [`MeshLinks`]: the members joined over their control connections, and
//! [`MeshLinks::run_stamp`], a STAMP test toward a member through its connection (the member
//! punches our sender port from its reflector; we send to where the punch came from). The
//! member's side is [`serve_member`]: join, answer invites, join again before the
//! membership expires, until the connection ends.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::client::ControlClient;
use super::error::ControlError;
use super::frame_io::{read_frame, write_message};
use super::test_service::wait_punch;
use crate::a2a::runtime::{
    A2aError, A2aOptionsBuilder, ConfigError, Responder, ResponderConfig, local_clock_info,
    run_test,
};
use crate::a2a::{Limit, Pace, ReflectorConfig, TestOutcome};
use crate::control::handshake::{error_message, kind};
use crate::control::mesh::{
    MAX_KEEP, Member, MemberTable, MeshInvite, MeshJoin, MeshJoined, MeshReady,
};
use crate::control::messages::{ErrorCode, Message, decode_body};
use crate::control::negotiation::punch;

/// How long a member has to answer an invite, and we to see its punch.
const INVITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Punches a member sends per invite (a lost one would cost the test).
const PUNCHES: u32 = 3;
/// Time between punches.
const PUNCH_GAP: Duration = Duration::from_millis(50);
/// How long a member keeps its reflector beyond the planned test and its final wait.
const KEEP_SLACK: Duration = Duration::from_secs(10);
/// The shortest time between joins, whatever the peer's membership lifetime.
const MIN_REFRESH: Duration = Duration::from_secs(1);
/// The planned length of a test whose length is not known (a counted flood).
const UNKNOWN_PLAN: Duration = Duration::from_secs(60);

/// Why a test toward a member did not run.
#[derive(Debug, thiserror::Error)]
pub enum MeshTestError {
    /// No member of that id is joined now.
    #[error("the mesh member {id} is not connected (it left, or its connection dropped)")]
    NotMember {
        /// The member's agent id.
        id: String,
    },
    /// The member's connection failed while inviting it.
    #[error("the connection of mesh member {name} failed: {reason}")]
    Connection {
        /// The member's name.
        name: String,
        /// What failed.
        reason: String,
    },
    /// The member refused the invite or answered something else.
    #[error("mesh member {name} refused the test: {reason}")]
    Refused {
        /// The member's name.
        name: String,
        /// Its answer.
        reason: String,
    },
    /// The member's punch did not arrive.
    #[error(
        "no punch from mesh member {name} ({from}) reached our sender port {port}/udp within \
         {secs} s: its NAT did not forward it, or a firewall here drops it"
    )]
    NoPunch {
        /// The member's name.
        name: String,
        /// Where its connection comes from.
        from: IpAddr,
        /// Our sender port.
        port: u16,
        /// How long we waited.
        secs: u64,
    },
    /// The sender socket could not be bound.
    #[error("cannot open the sender socket toward mesh member {name}: {source}")]
    Socket {
        /// The member's name.
        name: String,
        /// The system error.
        source: std::io::Error,
    },
    /// The test options are invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The test itself failed.
    #[error(transparent)]
    Test(#[from] A2aError),
}

/// The members joined over this responder's control connections.
pub struct MeshLinks {
    table: Mutex<MemberTable<quinn::Connection>>,
}

impl std::fmt::Debug for MeshLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshLinks")
            .field("members", &self.table().len())
            .finish()
    }
}

impl MeshLinks {
    /// An empty registry whose memberships last `ttl` after each join (a member joins again
    /// at a third of it).
    pub fn new(ttl: Duration) -> Arc<Self> {
        Arc::new(MeshLinks {
            table: Mutex::new(MemberTable::new(ttl)),
        })
    }

    fn table(&self) -> MutexGuard<'_, MemberTable<quinn::Connection>> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds or refreshes the member that joined over connection `owner`; the answer.
    pub(super) fn join(
        &self,
        owner: u64,
        join: MeshJoin,
        conn: &quinn::Connection,
        remote: SocketAddr,
    ) -> Message {
        if join.id.is_empty() || join.name.is_empty() {
            return error_message(
                ErrorCode::BadMessage,
                "a mesh join needs the member's id and name".into(),
            );
        }
        let mut table = self.table();
        let (id, name) = (join.id.clone(), join.name.clone());
        let member = Member {
            join,
            remote: SocketAddr::new(remote.ip().to_canonical(), remote.port()),
        };
        if table.join(owner, member, conn.clone(), Instant::now()) {
            tracing::info!("mesh: member {name} ({id}) joined from {remote}");
        }
        Message::MeshJoined(MeshJoined {
            expires_in_ms: u64::try_from(table.ttl().as_millis()).unwrap_or(u64::MAX),
        })
    }

    /// Forgets the members of a connection that closed.
    pub(super) fn release_owner(&self, owner: u64) {
        for name in self.table().release_owner(owner) {
            tracing::info!("mesh: member {name} left (its connection closed)");
        }
    }

    /// The members now (expired memberships and closed connections are dropped first).
    pub fn members(&self) -> Vec<Member> {
        let mut table = self.table();
        for name in table.expire(Instant::now()) {
            tracing::info!("mesh: member {name} left (it did not join again in time)");
        }
        table.members().cloned().collect()
    }

    /// Runs the STAMP test `options` describes toward member `id` through its connection:
    /// the member reflects, we send (the peer address of `options` is replaced by the
    /// member's NAT mapping). Forward is toward the member.
    pub async fn run_stamp(
        &self,
        id: &str,
        options: A2aOptionsBuilder,
    ) -> Result<TestOutcome, MeshTestError> {
        let (member, conn) = self
            .table()
            .get(id)
            .map(|(m, c)| (m.clone(), c))
            .ok_or_else(|| MeshTestError::NotMember { id: id.to_owned() })?;
        let name = member.join.name.clone();
        let from = member.remote.ip();
        let keep = planned(&options.clone().peer(member.remote).build()?) + KEEP_SLACK;
        let any = if from.is_ipv4() {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        };
        let socket_err = |source| MeshTestError::Socket {
            name: name.clone(),
            source,
        };
        let sock = tokio::net::UdpSocket::bind(SocketAddr::new(any, 0))
            .await
            .map_err(socket_err)?;
        let port = sock.local_addr().map_err(socket_err)?.port();
        let session = loop {
            let s: u64 = rand::random();
            if s != 0 {
                break s;
            }
        };
        let invite = Message::MeshInvite(MeshInvite {
            session,
            sender_port: port,
            keep_ms: u64::try_from(keep.as_millis()).unwrap_or(u64::MAX),
        });
        match tokio::time::timeout(INVITE_TIMEOUT, exchange(&conn, &invite)).await {
            Ok(Ok(Message::MeshReady(r))) if r.session == session => {}
            Ok(Ok(Message::Error(e))) => {
                return Err(MeshTestError::Refused {
                    name,
                    reason: e.message,
                });
            }
            Ok(Ok(other)) => {
                return Err(MeshTestError::Refused {
                    name,
                    reason: format!("answered {} to the invite", kind(&other)),
                });
            }
            Ok(Err(reason)) => return Err(MeshTestError::Connection { name, reason }),
            Err(_) => {
                return Err(MeshTestError::Connection {
                    name,
                    reason: format!("no answer to the invite within {INVITE_TIMEOUT:?}"),
                });
            }
        }
        let target = wait_punch(&sock, from, session, INVITE_TIMEOUT)
            .await
            .ok_or_else(|| MeshTestError::NoPunch {
                name: name.clone(),
                from,
                port,
                secs: INVITE_TIMEOUT.as_secs(),
            })?;
        drop(sock);
        let opts = options
            .peer(target)
            .peer_label(name)
            .local_port(port)
            .build()?;
        Ok(run_test(opts).await?)
    }
}

/// How long a test of `opts` sends and waits for late replies.
fn planned(opts: &crate::a2a::runtime::A2aOptions) -> Duration {
    let sending = match (opts.limit(), opts.pace()) {
        (Limit::Duration(d), _) => d,
        (Limit::Count(c), Pace::Interval(i)) => i.saturating_mul(c),
        _ => UNKNOWN_PLAN,
    };
    sending + opts.wait()
}

/// Sends `msg` on a new stream of `conn` and reads the one answer.
async fn exchange(conn: &quinn::Connection, msg: &Message) -> Result<Message, String> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    write_message(&mut send, msg)
        .await
        .map_err(|e| e.to_string())?;
    let _ = send.finish();
    let body = read_frame(&mut recv)
        .await
        .map_err(|_| "the stream ended without an answer".to_owned())?;
    decode_body(&body).map_err(|e| e.to_string())
}

/// The member's side of one connection: joins with `join`, calls `joined` once the peer
/// took it, answers the peer's invites, and joins again at a third of the membership's
/// lifetime, until the connection fails (the error says how). The caller reconnects.
pub async fn serve_member(
    client: &ControlClient,
    join: &MeshJoin,
    joined: impl FnOnce(),
) -> Result<(), ControlError> {
    let conn = client.connection().clone();
    let server = client.server();
    let refresh = |j: MeshJoined| (Duration::from_millis(j.expires_in_ms) / 3).max(MIN_REFRESH);
    let mut every = refresh(client.join_mesh(join).await?);
    joined();
    let mut next = tokio::time::Instant::now() + every;
    loop {
        tokio::select! {
            stream = conn.accept_bi() => {
                let (send, recv) = stream.map_err(|e| ControlError::Connection {
                    server,
                    reason: e.to_string(),
                })?;
                // Detached on purpose: the reflector ends on its own after at most MAX_KEEP.
                tokio::spawn(answer_invite(send, recv, server.ip()));
            }
            () = tokio::time::sleep_until(next) => {
                every = refresh(client.join_mesh(join).await?);
                next = tokio::time::Instant::now() + every;
            }
        }
    }
}

/// Reads an invite, starts the reflector, punches the peer's sender port, says so, and keeps
/// the reflector for the time asked (at most [`MAX_KEEP`]).
async fn answer_invite(mut send: quinn::SendStream, mut recv: quinn::RecvStream, peer: IpAddr) {
    let invite = match tokio::time::timeout(INVITE_TIMEOUT, read_frame(&mut recv)).await {
        Ok(Ok(body)) => decode_body(&body),
        _ => return,
    };
    let invite = match invite {
        Ok(Message::MeshInvite(i)) => i,
        Ok(other) => {
            let answer = error_message(
                ErrorCode::BadMessage,
                format!("expected a mesh_invite, got {}", kind(&other)),
            );
            let _ = write_message(&mut send, &answer).await;
            let _ = send.finish();
            return;
        }
        Err(e) => {
            let answer = error_message(ErrorCode::BadMessage, e.to_string());
            let _ = write_message(&mut send, &answer).await;
            let _ = send.finish();
            return;
        }
    };
    let responder = match punched_reflector(peer, &invite).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("mesh: cannot reflect the test of {peer}: {e}");
            let answer = error_message(
                ErrorCode::Internal,
                format!("the member cannot reflect: {e}"),
            );
            let _ = write_message(&mut send, &answer).await;
            let _ = send.finish();
            return;
        }
    };
    let ready = Message::MeshReady(MeshReady {
        session: invite.session,
    });
    if write_message(&mut send, &ready).await.is_err() {
        return;
    }
    let _ = send.finish();
    let keep = Duration::from_millis(invite.keep_ms).min(MAX_KEEP);
    tracing::debug!(
        "mesh: reflecting the test of {peer} (session {:016x}) for {keep:?}",
        invite.session
    );
    if let Err(e) = responder.run(tokio::time::sleep(keep)).await {
        tracing::warn!("mesh: the reflector of {peer}'s test failed: {e}");
    }
}

/// A reflector on an ephemeral port that has punched `invite`'s sender port at `peer`.
async fn punched_reflector(peer: IpAddr, invite: &MeshInvite) -> Result<Responder, String> {
    let any = if peer.is_ipv4() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    };
    let reflector = ReflectorConfig::builder()
        .clock(local_clock_info())
        .rate_limit_pps(0)
        .loop_guard_port(None)
        .build()
        .map_err(|e| e.to_string())?;
    let config =
        ResponderConfig::new([SocketAddr::new(any, 0)], reflector).map_err(|e| e.to_string())?;
    let responder = Responder::bind(&config).map_err(|e| e.to_string())?;
    let far = SocketAddr::new(peer, invite.sender_port);
    let p = punch(invite.session);
    for i in 0..PUNCHES {
        if i > 0 {
            tokio::time::sleep(PUNCH_GAP).await;
        }
        responder
            .punch(far, &p)
            .map_err(|e| format!("cannot send the punch to {far}/udp: {e}"))?;
    }
    Ok(responder)
}
