//! The datagram of a UDP throughput test: a fixed 32-octet header, then padding to the
//! negotiated size.
//!
//! ```text
//!  0               8               16              24              32
//! +---------------+---------------+---------------+---------------+-----------
//! | magic PRBTHRU1| session id    | sequence      | send time, ns | padding...
//! +---------------+---------------+---------------+---------------+-----------
//! ```
//!
//! All fields are big-endian. The send time (`CLOCK_REALTIME`, ns since the UNIX epoch) is
//! zero in every packet but the timestamped sample. The magic sits where a STAMP test packet
//! carries its sequence number and the seconds of its timestamp: a STAMP sender would need
//! sequence number 0x50524254 at a timestamp of the year 1938 to look like one.

/// The first eight octets of every throughput datagram.
pub const MAGIC: [u8; 8] = *b"PRBTHRU1";
/// Header length: the smallest throughput datagram.
pub const HEADER_LEN: usize = 32;

/// The header of one throughput datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The negotiated session the datagram belongs to.
    pub session: u64,
    /// Its number in the stream, from 0.
    pub seq: u64,
    /// The send time, ns since the UNIX epoch, when this datagram is a timestamped sample.
    pub sent_ns: Option<u64>,
}

/// Whether `bytes` starts like a throughput datagram (the magic, and a whole header).
pub fn is_throughput(bytes: &[u8]) -> bool {
    bytes.len() >= HEADER_LEN && bytes[..8] == MAGIC
}

fn be64(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_be_bytes(b)
}

/// The header of `bytes`; `None` when it is no throughput datagram.
pub fn parse(bytes: &[u8]) -> Option<Header> {
    if !is_throughput(bytes) {
        return None;
    }
    let sent = be64(bytes, 24);
    Some(Header {
        session: be64(bytes, 8),
        seq: be64(bytes, 16),
        sent_ns: (sent != 0).then_some(sent),
    })
}

/// Writes a datagram of `len` octets (at least [`HEADER_LEN`]) into `buf`: the header, then
/// zero padding. Returns the length written, `None` when `len` is below the header or
/// beyond `buf`.
pub fn write(buf: &mut [u8], len: usize, h: &Header) -> Option<usize> {
    if len < HEADER_LEN || len > buf.len() {
        return None;
    }
    buf[..8].copy_from_slice(&MAGIC);
    buf[8..16].copy_from_slice(&h.session.to_be_bytes());
    buf[16..24].copy_from_slice(&h.seq.to_be_bytes());
    buf[24..32].copy_from_slice(&h.sent_ns.unwrap_or(0).to_be_bytes());
    buf[HEADER_LEN..len].fill(0);
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_pads() {
        let mut buf = [0xff_u8; 80];
        let h = Header {
            session: 0x0102_0304_0506_0708,
            seq: 77,
            sent_ns: Some(1_700_000_000_000_000_000),
        };
        assert_eq!(write(&mut buf, 64, &h), Some(64));
        assert_eq!(&buf[..8], b"PRBTHRU1");
        assert!(buf[32..64].iter().all(|&b| b == 0) && buf[64] == 0xff);
        assert_eq!(parse(&buf[..64]), Some(h));
        let plain = Header { sent_ns: None, ..h };
        assert_eq!(write(&mut buf, 32, &plain), Some(32));
        assert_eq!(parse(&buf[..32]), Some(plain));
    }

    #[test]
    fn short_or_foreign_datagrams_are_not_throughput() {
        let mut buf = [0_u8; 64];
        assert_eq!(
            write(
                &mut buf,
                31,
                &Header {
                    session: 1,
                    seq: 0,
                    sent_ns: None
                }
            ),
            None
        );
        assert_eq!(
            write(
                &mut buf,
                65,
                &Header {
                    session: 1,
                    seq: 0,
                    sent_ns: None
                }
            ),
            None
        );
        write(
            &mut buf,
            64,
            &Header {
                session: 1,
                seq: 0,
                sent_ns: None,
            },
        )
        .expect("fits");
        assert!(parse(&buf[..31]).is_none());
        buf[0] = b'X';
        assert!(!is_throughput(&buf) && parse(&buf).is_none());
        // A STAMP test packet (sequence number, then a current NTP timestamp) is not one.
        let mut stamp = [0_u8; 44];
        stamp[4..8].copy_from_slice(&0xe9_00_00_00_u32.to_be_bytes());
        assert!(!is_throughput(&stamp));
    }
}
