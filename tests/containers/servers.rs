//! Servers the tests run on the peer for the container to use: a DNS server (for `--dns`
//! and the agent's dns tests) and a small HTTP server (for the healthcheck command and the
//! agent's http tests).

/// The test's DNS server on the peer: `reflector.lab.test` is the peer.
pub mod dns {
    use std::time::Duration;

    use hickory_server::Server;
    use hickory_server::proto::rr::RData;
    use hickory_server::proto::rr::rdata::A;
    use hickory_server::zone_handler::Catalog;
    use probe_lab::Host;

    use crate::common::dns_zone;

    /// The DNS server and the runtime it runs on (the server goes first on drop).
    pub struct Dns {
        _server: Server<Catalog>,
        _runtime: tokio::runtime::Runtime,
    }

    /// Starts [`serve_on`] `host` on a runtime of its own.
    pub fn start(host: &Host) -> Dns {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let server = runtime.block_on(async { serve_on(host) });
        Dns {
            _server: server,
            _runtime: runtime,
        }
    }

    /// hickory's authoritative server for `lab.test` on `host`'s address, port 53 (UDP and
    /// TCP; resolv.conf has no port). Must be called inside a tokio runtime.
    fn serve_on(host: &Host) -> Server<Catalog> {
        let zone = dns_zone(
            "lab.test.",
            vec![("reflector.lab.test.".into(), RData::A(A(host.ipv4())))],
        );
        let mut catalog = Catalog::new();
        catalog.upsert(zone.origin().clone(), vec![zone]);
        let ip = host.ipv4();
        let (udp, tcp) = host.run_in(move || {
            let u = std::net::UdpSocket::bind((ip, 53)).expect("bind 53/udp");
            u.set_nonblocking(true).expect("nonblocking");
            let t = std::net::TcpListener::bind((ip, 53)).expect("bind 53/tcp");
            t.set_nonblocking(true).expect("nonblocking");
            (u, t)
        });
        let mut server = Server::new(catalog);
        server.register_socket(tokio::net::UdpSocket::from_std(udp).expect("udp"));
        server.register_listener(
            tokio::net::TcpListener::from_std(tcp).expect("tcp"),
            Duration::from_secs(5),
            16,
        );
        server
    }
}

/// A tiny HTTP server on the peer for the healthcheck command: `/healthz` 200, else 503.
pub mod health {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::thread::JoinHandle;
    use std::time::Duration;

    use probe_lab::Host;

    /// Stops and joins the server thread on drop.
    pub struct Http {
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    }

    impl Drop for Http {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    /// Listens on `host`'s address, port 8000.
    pub fn serve_on(host: &Host) -> Http {
        let ip = host.ipv4();
        let listener = host.run_in(move || TcpListener::bind((ip, 8000)).expect("bind 8000/tcp"));
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            // Bounded: at most 2 minutes, whatever happens.
            for _ in 0..12_000 {
                if flag.load(Ordering::Relaxed) {
                    return;
                }
                let Ok((mut conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let _ = conn.set_nonblocking(false);
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 1024];
                let n = conn.read(&mut buf).unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]);
                let answer = if request.starts_with("GET /healthz ") {
                    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"
                } else {
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                };
                let _ = conn.write_all(answer.as_bytes());
            }
        });
        Http {
            stop,
            thread: Some(thread),
        }
    }
}
