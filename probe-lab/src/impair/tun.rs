//! TUN device access for the impairment hop (through `tun-rs`, so this crate needs no
//! `ioctl` of its own).

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use tun_rs::{DeviceBuilder, SyncDevice};

use crate::error::{Error, Result};

/// Largest packet read from the TUN device.
pub(crate) const MAX_PACKET: usize = 65_536;

/// A TUN device opened in non-blocking mode, without packet-information headers: each read
/// returns one IP packet, each write injects one as if received on the device.
pub(crate) struct Tun {
    device: SyncDevice,
}

impl Tun {
    /// Attaches to the TUN device `name` in the calling thread's network namespace: the
    /// persistent one created by `ip tuntap add dev NAME mode tun` if it exists (it must
    /// not have `pi` or `vnet_hdr` set), otherwise a new transient one. The device is set up.
    pub(crate) fn attach(name: &str) -> Result<Self> {
        let context = || format!("attaching TUN device {name}");
        let device = DeviceBuilder::new()
            .name(name)
            .build_sync()
            .map_err(|e| Error::io(context(), e))?;
        device
            .set_nonblocking(true)
            .map_err(|e| Error::io(context(), e))?;
        Ok(Self { device })
    }

    /// Reads one packet; `WouldBlock` when none is waiting.
    pub(crate) fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.device.recv(buf)
    }

    /// Writes one packet back into the kernel.
    pub(crate) fn send(&self, packet: &[u8]) -> io::Result<usize> {
        self.device.send(packet)
    }
}

impl AsFd for Tun {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.device.as_fd()
    }
}
