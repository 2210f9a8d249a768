//! Facts about the system clock: the kernel boot id and the NTP synchronisation state.
//!
//! The boot id changes at every boot, so a peer can tell that timestamps from before and
//! after a reboot are not comparable. The synchronisation state (`adjtimex` with no
//! changes requested) tells whether `CLOCK_REALTIME` is disciplined by NTP/PTP and how
//! large the kernel believes its error is — what one-way delay figures can be trusted to.

use std::io;
use std::sync::OnceLock;

use crate::io::error::IoError;

const BOOT_ID_PATH: &str = "/proc/sys/kernel/random/boot_id";

/// The kernel boot id (a random UUID made at boot) as 16 bytes. Read once per process:
/// it cannot change while the process lives, and every A2A session states it (an agent
/// starts thousands of sessions a minute). A failed read is tried again next time.
pub fn boot_id() -> Result<[u8; 16], IoError> {
    static BOOT_ID: OnceLock<[u8; 16]> = OnceLock::new();
    if let Some(id) = BOOT_ID.get() {
        return Ok(*id);
    }
    let id = read_boot_id()?;
    Ok(*BOOT_ID.get_or_init(|| id))
}

fn read_boot_id() -> Result<[u8; 16], IoError> {
    let text = std::fs::read_to_string(BOOT_ID_PATH).map_err(|source| IoError::ReadSystemFile {
        path: BOOT_ID_PATH,
        source,
    })?;
    parse_uuid(&text).ok_or_else(|| IoError::ParseSystemFile {
        path: BOOT_ID_PATH,
        content: text.chars().take(64).collect(),
    })
}

/// Parses a textual UUID (`8-4-4-4-12` hex digits) into its 16 bytes.
fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let text = text.trim();
    let groups: Vec<usize> = text.split('-').map(str::len).collect();
    if groups != [8, 4, 4, 4, 12] {
        return None;
    }
    let mut out = [0u8; 16];
    let mut digits = text.chars().filter(|c| *c != '-');
    for byte in &mut out {
        let hi = digits.next()?.to_digit(16)?;
        let lo = digits.next()?.to_digit(16)?;
        *byte = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// The kernel's view of clock synchronisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockSync {
    /// `STA_UNSYNC` is clear and the clock state is not `TIME_ERROR`: an NTP/PTP daemon
    /// disciplines the clock.
    pub synchronized: bool,
    /// Maximum error the kernel assumes, in nanoseconds (grows while unsynchronised).
    pub max_error_ns: u64,
    /// Estimated error, in nanoseconds.
    pub est_error_ns: u64,
    /// Current offset the kernel is slewing away, in nanoseconds.
    pub offset_ns: i64,
    /// The `adjtimex` return value (`TIME_OK` = 0 ... `TIME_ERROR` = 5).
    pub state: i32,
    /// The `status` bits (`STA_*`).
    pub status: i32,
}

impl ClockSync {
    /// Derives the facts from an `adjtimex` result.
    fn from_timex(state: i32, tx: &libc::timex) -> Self {
        let micros = |v: libc::c_long| u64::try_from(v).unwrap_or(0).saturating_mul(1000);
        // `c_long` is 32 bits on 32-bit targets.
        #[allow(clippy::useless_conversion)]
        let offset = i64::from(tx.offset);
        ClockSync {
            synchronized: state != libc::TIME_ERROR && tx.status & libc::STA_UNSYNC == 0,
            max_error_ns: micros(tx.maxerror),
            est_error_ns: micros(tx.esterror),
            offset_ns: if tx.status & libc::STA_NANO != 0 {
                offset
            } else {
                offset.saturating_mul(1000)
            },
            state,
            status: tx.status,
        }
    }
}

fn zeroed_timex() -> libc::timex {
    // SAFETY: timex is a plain C struct of integers (and padding) for which all-zero bytes
    // is valid; modes = 0 makes adjtimex read only.
    unsafe { std::mem::zeroed() }
}

/// Reads the clock synchronisation state with `adjtimex` (read only, no privilege needed).
pub fn clock_sync() -> Result<ClockSync, IoError> {
    let mut tx = zeroed_timex();
    // SAFETY: `tx` is a valid, exclusively borrowed timex; with `modes == 0` the kernel only
    // writes the current values into it.
    let state = unsafe { libc::adjtimex(&raw mut tx) };
    if state < 0 {
        return Err(IoError::Clock {
            call: "adjtimex",
            source: io::Error::last_os_error(),
        });
    }
    Ok(ClockSync::from_timex(state, &tx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_text_to_bytes() {
        let id = parse_uuid("a218ba85-7ae7-47f1-86f4-3a66249d1d6b\n").expect("valid uuid");
        assert_eq!(
            id,
            [
                0xa2, 0x18, 0xba, 0x85, 0x7a, 0xe7, 0x47, 0xf1, 0x86, 0xf4, 0x3a, 0x66, 0x24, 0x9d,
                0x1d, 0x6b
            ]
        );
        assert_eq!(parse_uuid("a218ba85-7ae7-47f1-86f4-3a66249d1d6"), None);
        assert_eq!(parse_uuid("g218ba85-7ae7-47f1-86f4-3a66249d1d6b"), None);
        assert_eq!(parse_uuid("a218ba857ae747f186f43a66249d1d6b"), None);
    }

    #[test]
    fn boot_id_is_stable_and_not_zero() {
        let a = boot_id().expect("boot id readable");
        let b = boot_id().expect("boot id readable");
        assert_eq!(a, b);
        // The kept id is the file's.
        assert_eq!(a, read_boot_id().expect("boot id readable"));
        assert_ne!(a, [0; 16]);
        // Random (version 4) UUID: version nibble 4, variant bits 10.
        assert_eq!(a[6] >> 4, 4);
        assert_eq!(a[8] >> 6, 0b10);
    }

    #[test]
    fn sync_state_from_timex_fields() {
        let mut tx = zeroed_timex();
        tx.maxerror = 16_000;
        tx.esterror = 250;
        tx.offset = -1_500;
        tx.status = libc::STA_PLL;
        let s = ClockSync::from_timex(libc::TIME_OK, &tx);
        assert!(s.synchronized);
        assert_eq!(
            (s.max_error_ns, s.est_error_ns, s.offset_ns),
            (16_000_000, 250_000, -1_500_000)
        );
        tx.status = libc::STA_PLL | libc::STA_NANO;
        assert_eq!(ClockSync::from_timex(libc::TIME_OK, &tx).offset_ns, -1_500);
        tx.status = libc::STA_UNSYNC;
        assert!(!ClockSync::from_timex(libc::TIME_OK, &tx).synchronized);
        tx.status = 0;
        assert!(!ClockSync::from_timex(libc::TIME_ERROR, &tx).synchronized);
    }

    #[test]
    fn adjtimex_reads_this_clock() {
        let s = clock_sync().expect("adjtimex read-only call");
        assert!((0..=5).contains(&s.state), "state {}", s.state);
        // The kernel caps maxerror at NTP_PHASE_LIMIT (16 s).
        assert!(
            s.max_error_ns <= 16_000_000_000,
            "maxerror {} ns",
            s.max_error_ns
        );
        assert!(
            s.est_error_ns <= 16_000_000_000,
            "esterror {} ns",
            s.est_error_ns
        );
    }
}
