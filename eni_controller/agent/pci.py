"""Which kernel driver an ENI's PCI device is bound to, and moving it to another.

DPDK needs the device on a userspace driver (vfio-pci, ...) instead of ``ena``,
and sysfs is the kernel's interface for that. Order matters:

* bind: set ``driver_override``, unbind from the current driver, then
  ``drivers_probe``: the override driver takes it.
* release: unbind, clear the override (``"\\n"``), probe: the kernel driver
  takes it back. Unbinding before clearing keeps an interrupted release
  recognisable (the override is still set).

Invariants:

* Every decision starts from what sysfs says now (``driver``, ``driver_override``):
  a restarted agent finishes a sequence instead of repeating it, and a device
  already on the wanted driver gets no write.
* The override marks our binding: ``release`` undoes only that (or a device
  left without a driver).
* A driver not loaded is ``DriverMissing`` before any write; other failures are
  typed ``PCIError``s classified by errno, never by message text.
* Every write goes through a ``SysfsWriter`` (tests/harness/sysfs.py emulates it).
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path
from typing import Final, Protocol

import structlog

log = structlog.get_logger(__name__)

# domain:bus:slot.function, as sysfs spells it (lower-case hex).
_PCI_ADDRESS: Final = re.compile(r"\A[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]\Z")
# What the kernel prints in driver_override when none is set.
_NO_OVERRIDE: Final = "(null)"
_DENIED: Final = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
# An unbind that finds the device no longer on that driver (or the driver gone).
_ALREADY_UNBOUND: Final = frozenset({errno.ENODEV, errno.ENOENT})


def is_pci_address(text: str) -> bool:
    """True for a PCI address as sysfs names devices, e.g. ``0000:00:06.0``."""
    return _PCI_ADDRESS.match(text) is not None


class PCIError(Exception):
    """A PCI device could not be read or moved; ``address`` names the device."""

    def __init__(self, message: str, *, address: str) -> None:
        super().__init__(message)
        self.address = address


class DriverMissing(PCIError):
    """The wanted driver is not registered with the PCI bus (module not loaded)."""

    def __init__(self, *, address: str, driver: str) -> None:
        super().__init__(f"driver {driver} not loaded", address=address)
        self.driver = driver


class DeviceMissing(PCIError):
    """No PCI device with this address (wrong address, or it was unplugged)."""

    def __init__(self, *, address: str) -> None:
        super().__init__(f"no PCI device {address}", address=address)


class ProbeFailed(PCIError):
    """After a probe the device is not on ``wanted`` (None: any kernel driver);
    ``actual`` is the driver it is on now, if any."""

    def __init__(self, *, address: str, wanted: str | None, actual: str | None) -> None:
        want = wanted or "its kernel driver"
        now = f"on {actual}" if actual else "without a driver"
        super().__init__(f"{want} did not take {address}: it is {now}", address=address)
        self.wanted = wanted
        self.actual = actual


class SysfsError(PCIError):
    """A sysfs read or write failed; ``errno`` says why."""

    def __init__(self, *, address: str, path: Path, error: OSError) -> None:
        reason = os.strerror(error.errno) if error.errno is not None else str(error)
        super().__init__(f"{path}: {reason}", address=address)
        self.path = path
        self.errno = error.errno


class NotWritable(SysfsError):
    """sysfs refused the write (EACCES, EPERM, EROFS): not privileged, or /sys read-only."""


class SysfsWriter(Protocol):
    """Writes one value to one sysfs attribute, as a single write(2)."""

    def write(self, path: Path, data: str) -> None: ...


class FileWriter:
    """The real writer: open the attribute write-only (never create) and write once."""

    def write(self, path: Path, data: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, data.encode())
        finally:
            os.close(fd)


class PCIDevices:
    """The PCI devices under a sysfs root (``/sys`` on a node, a test tree in tests)."""

    def __init__(self, *, root: Path, writer: SysfsWriter | None = None) -> None:
        self._root = root
        self._bus = root / "bus" / "pci"
        self._writer: SysfsWriter = writer or FileWriter()

    def address_of(self, ifname: str) -> str | None:
        """The PCI address of a network interface; None when it has no PCI device
        (virtual links, non-PCI buses) or no such interface exists."""
        if not ifname or "/" in ifname or ifname in (".", ".."):
            raise ValueError(f"not an interface name: {ifname!r}")
        try:
            target = os.readlink(self._root / "class" / "net" / ifname / "device")
        except FileNotFoundError:
            return None
        except OSError as err:
            if err.errno == errno.EINVAL:  # `device` is not a symlink: not sysfs's layout
                return None
            raise
        address = os.path.basename(target.rstrip("/"))
        return address if is_pci_address(address) else None

    def driver_of(self, address: str) -> str | None:
        """The driver the device is on now (None: unbound); DeviceMissing if no device."""
        device = self._device_dir(address)
        try:
            return os.path.basename(os.readlink(device / "driver"))
        except FileNotFoundError:
            if not device.exists():
                raise DeviceMissing(address=address) from None
            return None

    def bind(self, address: str, *, driver: str) -> bool:
        """Put the device on `driver`; False when it already was (nothing written).
        ProbeFailed when the kernel did not give it the device (e.g. vfio-pci without
        an IOMMU): the override stays set, and `release` undoes it."""
        _check_driver_name(driver)
        was, override = self.driver_of(address), self._override(address)
        if was == driver:
            return False
        if not (self._bus / "drivers" / driver).is_dir():
            raise DriverMissing(address=address, driver=driver)
        if override != driver:  # else set already, by a bind interrupted after it
            self._write(address, self._device_dir(address) / "driver_override", driver)
        self._unbind(address, was)
        self._write(address, self._bus / "drivers_probe", address)
        actual = self.driver_of(address)
        if actual != driver:
            raise ProbeFailed(address=address, wanted=driver, actual=actual)
        log.info("pci device bound", address=address, driver=driver, was=was)
        return True

    def release(self, address: str) -> bool:
        """Give a device we bound (an override is set) back to the kernel's driver;
        False: nothing of ours to undo. No override and no driver is an interrupted
        release: probed. ProbeFailed when no other driver took the device back."""
        was, override = self.driver_of(address), self._override(address)
        if override is None and was is not None:
            return False
        if override is not None:  # unbound first: an interrupted release keeps the mark
            self._unbind(address, was)
            self._write(address, self._device_dir(address) / "driver_override", "\n")
        self._write(address, self._bus / "drivers_probe", address)
        actual = self.driver_of(address)
        if actual is None or actual == override:
            raise ProbeFailed(address=address, wanted=None, actual=actual)
        log.info("pci device released", address=address, driver=actual, was=was)
        return True

    def _device_dir(self, address: str) -> Path:
        if not is_pci_address(address):
            raise ValueError(f"not a PCI address: {address!r}")
        return self._bus / "devices" / address

    def _override(self, address: str) -> str | None:
        path = self._device_dir(address) / "driver_override"
        try:
            text = path.read_text().strip()
        except OSError as err:
            raise _classified(address, path, err) from err
        return None if text in ("", _NO_OVERRIDE) else text

    def _unbind(self, address: str, driver: str | None) -> None:
        if driver is not None:
            unbind = self._bus / "drivers" / driver / "unbind"
            self._write(address, unbind, address, tolerate=_ALREADY_UNBOUND)

    def _write(
        self, address: str, path: Path, data: str, *, tolerate: frozenset[int] = frozenset()
    ) -> None:
        try:
            self._writer.write(path, data)
        except OSError as err:
            if err.errno in tolerate:
                return
            if not (self._bus / "devices" / address).exists():
                raise DeviceMissing(address=address) from err
            raise _classified(address, path, err) from err


def _classified(address: str, path: Path, err: OSError) -> SysfsError:
    if err.errno in _DENIED:
        return NotWritable(address=address, path=path, error=err)
    return SysfsError(address=address, path=path, error=err)


def _check_driver_name(driver: str) -> None:
    if not driver or "/" in driver or driver in (".", "..") or driver != driver.strip():
        raise ValueError(f"not a driver name: {driver!r}")
