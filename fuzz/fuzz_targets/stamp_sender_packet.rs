//! Session-Sender test packets (RFC 8762 section 4.2.1, RFC 8972 SSID): parse, emit, parse again.
//!
//! Emitting the parsed fields into a copy of the input must give the input back except the MBZ
//! octets (zeroed) and leave the TLV area untouched; parsing the copy gives the same fields.

#![no_main]

use libfuzzer_sys::fuzz_target;
use probe_core::wire::stamp::{BASE_LEN, SenderPacket, SenderRepr, Truncated};

fuzz_target!(|data: &[u8]| {
    let packet = match SenderPacket::new_checked(data) {
        Ok(p) => p,
        Err(Truncated { len }) => {
            assert!(len < BASE_LEN);
            assert_eq!(len, data.len());
            return;
        }
    };
    let repr = SenderRepr::parse(&packet);
    assert_eq!(packet.packet_len(), data.len());
    assert_eq!(packet.tlv_area(), &data[BASE_LEN..]);
    // The TLV iterator walks the area without panicking and yields in-bounds TLVs.
    let mut covered = 0;
    for item in packet.tlvs() {
        match item {
            Ok((offset, tlv)) => {
                assert_eq!(offset, covered);
                assert!(offset + tlv.total_len() <= packet.tlv_area().len());
                covered += tlv.total_len();
            }
            Err(e) => assert_eq!(e.offset, covered),
        }
    }

    let mut copy = data.to_vec();
    repr.emit(&mut SenderPacket::new_unchecked(&mut copy[..]));
    assert_eq!(copy[..16], data[..16], "base fields re-emitted as read");
    assert!(copy[16..BASE_LEN].iter().all(|&b| b == 0), "MBZ zeroed");
    assert_eq!(copy[BASE_LEN..], data[BASE_LEN..], "TLV area untouched");
    let again = SenderPacket::new_checked(&copy[..]).expect("same length");
    assert_eq!(SenderRepr::parse(&again), repr);
});
