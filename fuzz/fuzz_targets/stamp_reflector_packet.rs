//! Session-Reflector test packets (RFC 8762 section 4.3.1): parse, emit, parse again, then hand
//! the bytes to a STAMP sender as a reply (one sender for the whole run, so replies add up).
//!
//! The first input octet steers the sender part: bit 0 patches the reply's Session-Sender fields
//! to match one of the sender's packets (so that replies reach the RTT and duplicate paths),
//! bits 1..3 pick which packet, bit 4 flips the SSID to the hello SSID, bit 5 feeds the reply
//! twice; the second and third octets give the receive delay in milliseconds.

#![no_main]

use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use probe_core::a2a::{Limit, ReplyOutcome, Sender, SenderConfig};
use probe_core::time::{Nanos, NtpTimestamp};
use probe_core::wire::stamp::{BASE_LEN, ReflectorPacket, ReflectorRepr};

const T0: u64 = 1_700_000_000_000_000_000;
const SSID: u16 = 0xBEEF;
const PACKETS: u32 = 6;

fn check_symmetric(bytes: &[u8]) {
    let Ok(packet) = ReflectorPacket::new_checked(bytes) else {
        assert!(bytes.len() < BASE_LEN);
        return;
    };
    let repr = ReflectorRepr::parse(&packet);
    let mut copy = bytes.to_vec();
    repr.emit(&mut ReflectorPacket::new_unchecked(&mut copy[..]));
    // Everything but the MBZ octets 38..40 and 41..44 is re-emitted as read.
    assert_eq!(copy[..38], bytes[..38]);
    assert_eq!(copy[40], bytes[40]);
    assert_eq!(copy[38..40], [0, 0]);
    assert_eq!(copy[41..BASE_LEN], [0, 0, 0]);
    assert_eq!(copy[BASE_LEN..], bytes[BASE_LEN..], "TLV area untouched");
    let again = ReflectorPacket::new_checked(&copy[..]).expect("same length");
    assert_eq!(ReflectorRepr::parse(&again), repr);
}

/// One sender for the whole run (its loss tracker is costly to build), with the timestamps of
/// the packets it sent.
static SENDER: LazyLock<Mutex<(Sender, Vec<NtpTimestamp>)>> = LazyLock::new(|| {
    let mut config = SenderConfig::new("fuzz", SSID);
    config.limit = Limit::Count(PACKETS);
    config.interval = Duration::from_millis(1);
    config.size = BASE_LEN + 28;
    let mut sender = Sender::new(config, Nanos(T0)).expect("valid config");
    let mut buf = [0u8; 128];
    sender
        .emit_hello(Nanos(T0 - 1_000_000), &mut buf)
        .expect("hello");
    let mut stamps = Vec::new();
    for i in 0..PACKETS {
        let tx = Nanos(T0 + u64::from(i) * 1_000_000);
        let sent = sender.emit_next(tx, &mut buf).expect("planned packet");
        assert_eq!(sent.seq, i);
        stamps.push(NtpTimestamp::from_nanos(tx));
    }
    Mutex::new((sender, stamps))
});

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let Some((delay, reply)) = rest.split_at_checked(2) else {
        return;
    };
    check_symmetric(reply);

    let mut state = SENDER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (sender, stamps) = &mut *state;
    let mut reply = reply.to_vec();
    if reply.len() >= BASE_LEN {
        let mut p = ReflectorPacket::new_unchecked(&mut reply[..]);
        if control & 1 != 0 {
            let seq = u32::from((control >> 1) & 7) % PACKETS;
            p.set_sender_sequence_number(seq);
            p.set_sender_timestamp(stamps[seq as usize]);
        }
        if control & 0x10 != 0 {
            p.set_ssid(sender.hello_ssid());
        }
    }
    let rx = Nanos(T0 + u64::from(u16::from_be_bytes([delay[0], delay[1]])) * 1_000_000);
    let times = if control & 0x20 != 0 { 2 } else { 1 };
    for _ in 0..times {
        match sender.on_reply(&reply, rx) {
            ReplyOutcome::Test { seq, .. }
            | ReplyOutcome::ReverseDuplicate { seq }
            | ReplyOutcome::Late { seq } => assert!(seq < PACKETS),
            ReplyOutcome::Hello { understood } => {
                assert!(!understood || sender.peer_clock().is_some());
            }
            ReplyOutcome::Ignored(_) => {}
        }
    }
});
