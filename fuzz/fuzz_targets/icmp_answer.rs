//! Answers to path-test probes: whole IPv4/IPv6 packets, bare ICMP/`ICMPv6` messages (ping and
//! raw sockets), TCP segments, and error-queue reports (type, code and info as the kernel gives
//! them, with the quoted datagram). Covers the quote parser, RFC 4884 extensions and RFC 4950
//! label stacks. Checksums are not verified in fuzzing builds (`cfg(fuzzing)`).
//!
//! The first input octet picks the entry point; the rest is the packet. Each parsed ICMP
//! message is emitted again with `emit_error` and must parse to the same meaning, original
//! datagram and extensions; extension structures and label stacks are emitted again from their
//! parsed objects and must parse the same; TCP answers are emitted again and parse the same.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use probe_core::wire::answer::{Answer, AnswerKind};
use probe_core::wire::icmp::{IcmpKind, IcmpMessage, emit_error};
use probe_core::wire::icmp_ext::{self, ExtensionObject, Extensions};
use probe_core::wire::mpls;
use probe_core::wire::quote::Quote;

const V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

/// Extensions emitted from their parsed objects parse to the same objects and label stack.
fn check_extensions(ext: &Extensions<'_>) {
    let objects: Vec<ExtensionObject<'_>> = ext.objects().collect();
    let mut out = Vec::new();
    icmp_ext::emit(&objects, &mut out);
    let again = Extensions::parse(&out).expect("emitted extensions parse");
    assert!(again.objects().eq(objects.iter().copied()));
    assert_eq!(again.mpls_stack(), ext.mpls_stack());
    for o in &objects {
        if let Ok(stack) = mpls::parse_stack(o.payload) {
            let mut bytes = Vec::new();
            mpls::emit_stack(&stack, &mut bytes);
            assert_eq!(bytes, o.payload, "label stack re-emitted as read");
        }
    }
}

/// Emits a parsed message again and checks that it parses to the same thing.
fn check_message(ipv6: bool, buf: &[u8]) {
    let parse = if ipv6 {
        IcmpMessage::parse_v6
    } else {
        IcmpMessage::parse_v4
    };
    let Ok(msg) = parse(buf) else { return };
    assert!(msg.checksum_ok, "checksums are not verified when fuzzing");
    assert!(msg.original.len() <= buf.len() - 8);
    if let Some(ext) = &msg.extensions {
        check_extensions(ext);
    }
    let word = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let mut out = Vec::new();
    emit_error(
        ipv6,
        msg.icmp_type,
        msg.code,
        word,
        msg.original,
        msg.extensions.map(|e| e.as_bytes()),
        &mut out,
    );
    let again = parse(&out).expect("emitted message parses");
    assert_eq!(again.kind, msg.kind);
    assert_eq!((again.icmp_type, again.code), (msg.icmp_type, msg.code));
    assert_eq!(again.extensions, msg.extensions);
    if msg.extensions.is_none() || msg.original.len() >= icmp_ext::MIN_ORIGINAL_LEN {
        // Without padding to add, the original datagram comes back as it was.
        assert_eq!(again.original, msg.original);
        assert_eq!(
            Quote::parse(again.original).ok(),
            Quote::parse(msg.original).ok()
        );
    }
}

/// An answer's parts agree with each other; TCP answers survive emit and parse.
fn check_answer(answer: &Answer) {
    match answer.kind {
        AnswerKind::Icmp(kind) => {
            assert!(answer.icmp_type_code.is_some());
            assert_eq!(answer.quote.is_some(), kind.is_error());
        }
        AnswerKind::Tcp(reply) => {
            assert!(answer.quote.is_none() && answer.mpls.is_empty());
            let dst = match answer.from {
                IpAddr::V4(_) => IpAddr::V4(V4),
                IpAddr::V6(_) => IpAddr::V6(V6),
            };
            let mut seg = Vec::new();
            reply.emit(answer.from, dst, &mut seg);
            let again = Answer::parse_tcp(&seg, answer.from, answer.reply_ttl).expect("tcp");
            assert_eq!(again.kind, answer.kind);
        }
        // STAMP replies to UDP pings come from `Answer::parse_stamp_reply`, which no entry
        // point here reaches.
        AnswerKind::Udp(_) => {
            assert!(answer.quote.is_none() && answer.mpls.is_empty());
        }
    }
    assert!(!answer.kind.description().is_empty());
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 6 {
        0 => {
            if let Ok(a) = Answer::parse_ipv4(rest) {
                check_answer(&a);
            }
            if rest.len() >= 20 {
                let hl = usize::from(rest[0] & 0x0F) * 4;
                if let Some(body) = rest.get(hl.max(20)..) {
                    check_message(false, body);
                }
            }
        }
        1 => {
            if let Ok(a) = Answer::parse_ipv6(rest) {
                check_answer(&a);
            }
            if let Some(body) = rest.get(40..) {
                check_message(true, body);
            }
        }
        2 => {
            if let Ok(a) = Answer::parse_icmpv4(rest, V4, Some(64)) {
                check_answer(&a);
            }
            check_message(false, rest);
        }
        3 => {
            if let Ok(a) = Answer::parse_icmpv6(rest, V6, None) {
                check_answer(&a);
            }
            check_message(true, rest);
        }
        4 => {
            let from = if rest.first().is_some_and(|b| b & 1 == 1) {
                IpAddr::V6(V6)
            } else {
                IpAddr::V4(V4)
            };
            if let Ok(a) = Answer::parse_tcp(rest, from, Some(1)) {
                check_answer(&a);
            }
        }
        _ => {
            // Error-queue report: ee_origin (v4 or v6), ee_type, ee_code, ee_info, then the
            // quoted datagram.
            let Some((head, quote)) = rest.split_at_checked(7) else {
                return;
            };
            let info = u32::from_be_bytes([head[3], head[4], head[5], head[6]]);
            let kind = IcmpKind::classify(head[0] & 1 == 1, head[1], head[2], info);
            assert!(!kind.description().is_empty());
            if let Ok(q) = Quote::parse(quote) {
                assert_eq!(q.src.is_ipv4(), quote[0] >> 4 == 4);
                let _ = q.nat_port();
            }
            if let Ok(ext) = Extensions::parse(quote) {
                check_extensions(&ext);
            }
        }
    }
});
