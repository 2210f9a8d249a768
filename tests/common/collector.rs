//! A small collector for the agent's exports, over plain TCP or TLS: it answers 503 to its
//! first `refuse` requests, then 200, and keeps every record of the accepted NDJSON uploads;
//! other bodies (remote write) are only counted.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use probe_lab::Host;
use serde_json::Value;

/// The collector's address and what it received.
pub struct Collector {
    /// Where it listens (in the host it was started in).
    pub addr: SocketAddr,
    /// Every record of the accepted requests, in arrival order.
    pub records: Arc<Mutex<Vec<Value>>>,
    /// Requests answered (refused ones included).
    pub requests: Arc<AtomicUsize>,
    /// Accepted requests whose body was not NDJSON.
    pub others: Arc<AtomicUsize>,
    /// The address each connection came from.
    pub sources: Arc<Mutex<Vec<std::net::IpAddr>>>,
}

impl Collector {
    /// The records received so far.
    pub fn received(&self) -> usize {
        self.records.lock().expect("records").len()
    }

    /// Requests answered so far.
    pub fn answered(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Starts a collector on an ephemeral port of `host`'s address, speaking TLS with `tls`.
pub fn start(host: &Host, refuse: usize, tls: Option<Arc<rustls::ServerConfig>>) -> Collector {
    let ip = host.ipv4();
    let listener = host.run_in(move || TcpListener::bind((ip, 0)).expect("collector"));
    let addr = listener.local_addr().expect("addr");
    let records = Arc::new(Mutex::new(Vec::new()));
    let requests = Arc::new(AtomicUsize::new(0));
    let others = Arc::new(AtomicUsize::new(0));
    let sources = Arc::new(Mutex::new(Vec::new()));
    let counts = Counts {
        records: records.clone(),
        requests: requests.clone(),
        others: others.clone(),
    };
    let src = sources.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(tcp) = conn else { return };
            if let Ok(peer) = tcp.peer_addr() {
                src.lock().expect("sources").push(peer.ip());
            }
            match &tls {
                Some(cfg) => {
                    let Ok(session) = rustls::ServerConnection::new(cfg.clone()) else {
                        continue;
                    };
                    serve(rustls::StreamOwned::new(session, tcp), refuse, &counts);
                }
                None => serve(tcp, refuse, &counts),
            }
        }
    });
    Collector {
        addr,
        records,
        requests,
        others,
        sources,
    }
}

/// What the serving thread updates.
struct Counts {
    records: Arc<Mutex<Vec<Value>>>,
    requests: Arc<AtomicUsize>,
    others: Arc<AtomicUsize>,
}

/// Answers the one request of a connection.
fn serve(mut conn: impl Read + Write, refuse: usize, counts: &Counts) {
    let mut reader = BufReader::new(&mut conn);
    let mut len = 0usize;
    let mut ndjson = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().unwrap_or(0);
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-type")
        {
            ndjson = v.trim() == "application/x-ndjson";
        }
    }
    let mut body = vec![0u8; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    drop(reader);
    let n = counts.requests.fetch_add(1, Ordering::SeqCst);
    let status = if n < refuse {
        "503 Service Unavailable"
    } else if !ndjson {
        counts.others.fetch_add(1, Ordering::SeqCst);
        "200 OK"
    } else {
        let mut all = counts.records.lock().expect("records");
        for l in String::from_utf8_lossy(&body).lines() {
            all.push(serde_json::from_str::<Value>(l).expect("one JSON record per line"));
        }
        "200 OK"
    };
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    let _ = conn.flush();
}
