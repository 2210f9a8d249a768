//! STAMP TLVs (RFC 8972 section 4) and probe's clock TLV: parse, emit, parse again, and the
//! reflector's answer to a TLV area.
//!
//! Every TLV the iterator yields is re-emitted with `emit_tlv` and must come out byte for byte;
//! a well-formed clock Value written back from its parsed facts parses to the same facts; the
//! reflector's answer to a sender packet carrying the input as TLV area keeps the area's length
//! and TLV framing (offsets, types, lengths), and only the flags and clock Values change.

#![no_main]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use probe_core::a2a::{Datagram, Reflector, ReflectorConfig};
use probe_core::time::{BootId, ClockInfo, Nanos};
use probe_core::wire::stamp::{BASE_LEN, ReflectorPacket};
use probe_core::wire::stamp_clock_tlv::{CLOCK_VALUE_LEN, ClockValue};
use probe_core::wire::stamp_tlv::{TLV_HEADER_LEN, TlvFlags, TlvIter, emit_padding, emit_tlv};

/// (offset, type, length) of each well-formed TLV, and the offset of a malformed one.
fn framing(area: &[u8]) -> (Vec<(usize, u8, usize)>, Option<usize>) {
    let mut tlvs = Vec::new();
    for item in TlvIter::new(area) {
        match item {
            Ok((offset, tlv)) => tlvs.push((offset, tlv.tlv_type(), tlv.length())),
            Err(e) => return (tlvs, Some(e.offset)),
        }
    }
    (tlvs, None)
}

fuzz_target!(|data: &[u8]| {
    let mut end = 0;
    for item in TlvIter::new(data) {
        let Ok((offset, tlv)) = item else { break };
        assert_eq!(offset, end);
        end = offset + tlv.total_len();
        let mut out = vec![0u8; tlv.total_len()];
        let mut copy = emit_tlv(&mut out, tlv.flags(), tlv.tlv_type(), tlv.length())
            .expect("room for the same TLV");
        copy.value_mut().copy_from_slice(tlv.value());
        assert_eq!(out[..], data[offset..end], "TLV re-emitted as read");

        if let Some(value) = ClockValue::new_checked(tlv.value()) {
            let info = value.to_info();
            let mut again = [0u8; CLOCK_VALUE_LEN];
            ClockValue::new_unchecked(&mut again[..]).write_info(&info);
            let back = ClockValue::new_checked(&again[..]).expect("written value is valid");
            assert_eq!(back.to_info(), info);
            assert_eq!(
                again[4..],
                tlv.value()[4..],
                "error and boot id re-emitted as read"
            );
        }
    }

    // Sender padding of any length is a well-formed area (or plain zeros below a header).
    let mut pad = vec![0xA5u8; data.len()];
    emit_padding(&mut pad);
    let (tlvs, bad) = framing(&pad);
    if pad.len() >= TLV_HEADER_LEN && pad.len() <= TLV_HEADER_LEN + usize::from(u16::MAX) {
        assert_eq!(tlvs.len(), 1);
        assert!(bad.is_none());
    }

    // The reflector's answer keeps the framing.
    let mut request = vec![0u8; BASE_LEN + data.len()];
    request[BASE_LEN..].copy_from_slice(data);
    let mut reflector = Reflector::new(
        ReflectorConfig::builder()
            .clock(ClockInfo {
                boot_id: BootId([0x5A; 16]),
                synchronized: true,
                max_error: Some(Duration::from_micros(20)),
            })
            // Small tables and no rate limit: a fresh reflector per input stays cheap.
            .max_sessions(1)
            .max_sources(1)
            .rate_limit_pps(0)
            .build()
            .expect("valid reflector settings"),
    );
    let mut out = vec![0u8; request.len()];
    let dgram = Datagram {
        bytes: &request,
        src: SocketAddr::from((Ipv4Addr::LOCALHOST, 40_000)),
        rx: Nanos(1_700_000_000_000_000_000),
        ttl: Some(64),
    };
    let n = reflector
        .reflect(&dgram, Nanos(1_700_000_000_000_100_000), &mut out)
        .expect("a lone packet is answered");
    assert_eq!(n, request.len());
    let reply = ReflectorPacket::new_checked(&out[..n]).expect("reply");
    assert_eq!(framing(reply.tlv_area()), framing(data));
    for item in TlvIter::new(reply.tlv_area()) {
        let Ok((offset, tlv)) = item else { break };
        assert!(!tlv.flags().integrity_failed());
        let request_flags = TlvFlags(data[offset]);
        if tlv.flags().unrecognized() {
            assert_eq!(
                tlv.value(),
                &data[offset + TLV_HEADER_LEN..offset + tlv.total_len()]
            );
        }
        assert_eq!(
            tlv.flags().0 & 0x1F,
            request_flags.0 & 0x1F,
            "reserved bits kept"
        );
    }
});
