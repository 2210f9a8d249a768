//! Packet captures with tcpdump inside testbed hosts, read back from their pcap files.
//!
//! tcpdump runs in the host's namespace with nanosecond timestamps taken by the kernel (the
//! clock every namespace shares), so captures on different hosts compare directly.
//!
//! tcpdump runs without `--immediate-mode`: the kernel then hands it packets in blocks and
//! wakes it once per block, not once per packet. A per-packet wake-up would run inside the
//! packet's own transmit path (the capture tap comes before the driver), between tcpdump's
//! timestamp and the socket's `SO_TIMESTAMPING` transmit timestamp, and move the latter by
//! microseconds.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use pcap_file::DataLink;
use pcap_file::TsResolution;
use pcap_file::pcap::PcapReader;
use probe_lab::{Background, Host};

/// How long tcpdump may take to open its interface.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long tcpdump gets to flush and close its file after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// How long the kernel may hold captured packets in a block before handing it to tcpdump
/// (tcpdump's packet buffer timeout, 1 s, plus a margin). Packets in a block that was not yet
/// handed over when tcpdump stops are lost, so [`Capture::stop`] waits this long first.
const BLOCK_TIMEOUT: Duration = Duration::from_millis(1200);

/// Bytes [`Capture::start_headers`] keeps of a frame: Ethernet (14), IPv4 with options (60)
/// and TCP with options (60).
pub const HEADERS_SNAPLEN: u32 = 134;

/// One captured frame.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Capture time since the UNIX epoch (the kernel's `CLOCK_REALTIME` stamp).
    pub time: Duration,
    /// The frame from its link-layer header on.
    pub data: Vec<u8>,
}

impl Frame {
    /// The IPv4 packet of this Ethernet frame when it carries `protocol`.
    pub fn ipv4(
        &self,
        protocol: pnet_packet::ip::IpNextHeaderProtocol,
    ) -> Option<pnet_packet::ipv4::Ipv4Packet<'_>> {
        use pnet_packet::ethernet::{EtherTypes, EthernetPacket};
        let eth = EthernetPacket::new(&self.data)?;
        if eth.get_ethertype() != EtherTypes::Ipv4 {
            return None;
        }
        let ip = pnet_packet::ipv4::Ipv4Packet::new(
            self.data.get(EthernetPacket::minimum_packet_size()..)?,
        )?;
        (ip.get_next_level_protocol() == protocol).then_some(ip)
    }
}

/// What a stopped [`Capture`] saw.
#[derive(Debug)]
pub struct Captured {
    /// Where it captured (`host/interface`).
    pub label: String,
    /// Link type of the frames.
    pub link: DataLink,
    /// The frames in capture order.
    pub frames: Vec<Frame>,
    /// tcpdump's "packets dropped by kernel" count (`None` if it did not print one).
    pub dropped_by_kernel: Option<u64>,
}

/// A running `tcpdump -w` on one interface of a testbed host. Dropping the guard kills
/// tcpdump and deletes its file, also when the test fails before [`Capture::stop`].
pub struct Capture {
    tcpdump: Option<Background>,
    stderr: Option<JoinHandle<String>>,
    path: PathBuf,
    label: String,
}

impl Capture {
    /// Starts capturing `filter` (tcpdump filter syntax) on `ifname` in `host` and returns
    /// once tcpdump is listening.
    pub fn start(host: &Host, ifname: &str, filter: &str) -> Capture {
        Self::start_snapped(host, ifname, filter, None)
    }

    /// [`Capture::start`] keeping only the first [`HEADERS_SNAPLEN`] bytes of each frame (the
    /// Ethernet, IP and TCP headers with options): for bulk transfers whose timing is wanted,
    /// not their payload, so that tcpdump keeps up (the headers' length fields stay whole).
    pub fn start_headers(host: &Host, ifname: &str, filter: &str) -> Capture {
        Self::start_snapped(host, ifname, filter, Some(HEADERS_SNAPLEN))
    }

    fn start_snapped(host: &Host, ifname: &str, filter: &str, snaplen: Option<u32>) -> Capture {
        let label = format!("{}/{ifname}", host.name());
        let path = std::env::temp_dir().join(format!(
            "probe-capture-{}-{}-{ifname}.pcap",
            std::process::id(),
            host.name()
        ));
        let mut cmd = host.command("tcpdump");
        cmd.args(["-i", ifname, "-nn", "-Z", "root", "-U"])
            .args(["--time-stamp-precision=nano"])
            .args(snaplen.map(|n| format!("--snapshot-length={n}")))
            .arg("-w")
            .arg(&path)
            .arg(filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut tcpdump = host
            .spawn(&mut cmd)
            .unwrap_or_else(|e| panic!("start tcpdump on {label} (is tcpdump installed?): {e}"));
        let stderr = tcpdump
            .child_mut()
            .stderr
            .take()
            .expect("tcpdump stderr is piped");
        // A thread keeps reading stderr: it reports readiness, then collects the statistics
        // tcpdump prints when it stops.
        let (ready_tx, ready_rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("listening on") {
                    let _ = ready_tx.send(());
                }
                text.push_str(&line);
                text.push('\n');
            }
            text
        });
        let mut capture = Capture {
            tcpdump: Some(tcpdump),
            stderr: Some(reader),
            path,
            label,
        };
        if ready_rx.recv_timeout(READY_TIMEOUT).is_err() {
            let said = capture.finish();
            panic!(
                "tcpdump on {} not listening after {READY_TIMEOUT:?}: {said}",
                capture.label
            );
        }
        capture
    }

    /// Waits until every packet so far has reached tcpdump ([`BLOCK_TIMEOUT`]), stops it
    /// (SIGTERM, so it flushes its file) and reads the capture back.
    pub fn stop(self) -> Captured {
        let [captured] = Self::stop_all([self]);
        captured
    }

    /// [`Capture::stop`] for several captures, waiting [`BLOCK_TIMEOUT`] once for all.
    pub fn stop_all<const N: usize>(captures: [Capture; N]) -> [Captured; N] {
        std::thread::sleep(BLOCK_TIMEOUT);
        captures.map(Capture::read_back)
    }

    fn read_back(mut self) -> Captured {
        let said = self.finish();
        let file = std::fs::File::open(&self.path)
            .unwrap_or_else(|e| panic!("open {} ({}): {e}", self.path.display(), self.label));
        let mut reader = PcapReader::new(file)
            .unwrap_or_else(|e| panic!("read pcap of {}: {e}; tcpdump said: {said}", self.label));
        let header = reader.header();
        assert_eq!(
            header.ts_resolution,
            TsResolution::NanoSecond,
            "capture on {} is not in nanoseconds",
            self.label
        );
        let mut frames = Vec::new();
        // Raw records: pcap-file rejects a frame longer on the wire than the snapshot length,
        // which is what a snapshot length is for.
        while let Some(packet) = reader.next_raw_packet() {
            let packet = packet.unwrap_or_else(|e| panic!("bad pcap record ({}): {e}", self.label));
            assert!(
                packet.ts_frac < 1_000_000_000,
                "bad pcap timestamp ({}): {packet:?}",
                self.label
            );
            frames.push(Frame {
                time: Duration::new(u64::from(packet.ts_sec), packet.ts_frac),
                data: packet.data.into_owned(),
            });
        }
        Captured {
            label: self.label.clone(),
            link: header.datalink,
            frames,
            dropped_by_kernel: dropped_by_kernel(&said),
        }
    }

    /// Stops tcpdump if it runs and returns what it wrote on stderr.
    fn finish(&mut self) -> String {
        if let Some(tcpdump) = self.tcpdump.take() {
            let _ = tcpdump.terminate(STOP_GRACE);
        }
        self.stderr
            .take()
            .and_then(|reader| reader.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        // Dropping the Background kills tcpdump; then the reader sees end of file.
        drop(self.tcpdump.take());
        if let Some(reader) = self.stderr.take() {
            let _ = reader.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The number in tcpdump's closing "N packets dropped by kernel" line.
fn dropped_by_kernel(stderr: &str) -> Option<u64> {
    stderr.lines().find_map(|line| {
        line.strip_suffix(" packets dropped by kernel")
            .or_else(|| line.strip_suffix(" packet dropped by kernel"))
            .and_then(|n| n.trim().parse().ok())
    })
}
