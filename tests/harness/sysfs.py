"""A sysfs tree of the test's own, with a small emulator of the kernel's PCI core.

The node's /sys/bus/pci is the machine's own and is never touched: tests build
a tree under a temporary directory, laid out as the kernel lays out sysfs, and
point the agent's sysfs root at it. Plain files do not react to writes, so the
kernel's reaction is applied by `FakeSysfs.write`, which is a
`eni_controller.agent.pci.SysfsWriter`: the code under test does its writes
through it (``PCIDevices(root=tree.root, writer=tree)``) and, like the kernel,
it has acted before the write returns. No threads, no polling: the outcome of a
sequence of writes is deterministic.

Layout (relative symlinks, as in sysfs)::

    devices/pci0000:00/<addr>/{vendor,device,class,driver_override}
    devices/pci0000:00/<addr>/driver -> ../../../bus/pci/drivers/<drv>   (when bound)
    devices/pci0000:00/<addr>/net/<ifname>/device -> ../../../<addr>     (when a net
                                                                          driver has it)
    devices/virtual/net/<ifname>/                                        (no device link)
    bus/pci/devices/<addr> -> ../../../devices/pci0000:00/<addr>
    bus/pci/drivers/<drv>/{bind,unbind}, bus/pci/drivers/<drv>/<addr> -> the device
    bus/pci/drivers_probe, bus/pci/drivers_autoprobe
    class/net/<ifname> -> ../../devices/.../net/<ifname>

Kernel semantics emulated (drivers/base/bus.c, drivers/pci/pci-driver.c):

* "Module loaded" = ``bus/pci/drivers/<name>`` exists (`load_driver`,
  `unload_driver`; unloading unbinds the driver's devices first).
* ``driver_override`` <- name: only that driver may take the device from then
  on; ``"\\n"`` (or empty) clears it; reading gives ``(null)`` when unset. It
  does not move a bound device.
* ``drivers/<drv>/unbind`` <- addr: releases the device if ``drv`` has it,
  else ENODEV; the device's network interface disappears with a net driver.
* ``drivers/<drv>/bind`` <- addr: ENODEV if the device is bound or ``drv``
  does not match it.
* ``drivers_probe`` <- addr: nothing if the device is bound; else the first
  matching loaded driver takes it. Matching: with an override, only the
  override's driver (by name, no ID needed); without, a driver whose ID table
  has the device's vendor:device (``ena``'s has the ENA IDs; vfio-pci,
  uio_pci_generic and igb_uio have none, as in the kernel). A probe that fails
  (`fail_probe`, e.g. vfio-pci without an IOMMU) leaves the device unbound and
  the write still succeeds, as the kernel's does. ENODEV for an unknown device.
* A missing attribute is ENOENT, an existing one without a store (vendor, ...)
  EACCES, every write EROFS when `read_only` (a /sys mounted read-only).

Every write is journalled (path, data, errno) and so is every bind and unbind
the emulator performs, in a file beside the tree: a second `FakeSysfs` over the
same directory (an agent restarted, another process) sees the same tree, the
same drivers and the same counts, so "bound once, nothing bound twice" can be
asserted across restarts. Setting the tree up (`add_device`, ...) is not
journalled.

Fidelity limits (what this is not):

* No IOMMU groups, no /dev/vfio, no new_id/remove_id (absent: ENOENT): a
  vfio-pci bind that would fail for want of an IOMMU only fails when the test
  says so with `fail_probe`.
* Drivers are tried in name order, not registration order, and probing is
  synchronous (the kernel's PCI probe is too, unless async probing is on).
* No uevents and no udev: a net driver's interface comes back under the name
  the test gave it (predictable naming would give the same name). The netlink
  side is not emulated here; the one seam for it is ``netdevs``, a
  `NetdevListener` told (synchronously, after the tree changed and before the
  write returns) when a device's interface appears or goes, so that a test can
  make the link the agent sees through netlink follow the driver
  (tests/harness/sysfs_links.py: a veth in a node's namespace). It is an
  in-memory hook of this one `FakeSysfs` object, not state on disk: a second
  object over the same tree has none unless given one. Without it the netlink
  side is the test's job.
* ``driver_autoprobe`` is always on; no hot-plug or remove/rescan; a driver
  "module" loaded while a device is unbound does not probe it on its own.
* Reads are plain file reads; only writes are emulated.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

__all__ = [
    "ENA_DEVICE",
    "ENA_VENDOR",
    "ENA_VF_IDS",
    "FakeSysfs",
    "NetdevListener",
    "Write",
]

ENA_VENDOR: Final = "0x1d0f"
ENA_DEVICE: Final = "0xec20"  # the ENA VF an instance sees
# The kernel ena driver's ID table (drivers/net/ethernet/amazon/ena).
ENA_VF_IDS: Final = frozenset(
    {(ENA_VENDOR, "0x0ec2"), (ENA_VENDOR, "0x1ec2"), (ENA_VENDOR, "0xec20"), (ENA_VENDOR, "0xec21")}
)
_PCI_ROOT: Final = "devices/pci0000:00"
_ETHERNET_CLASS: Final = "0x020000"
_MAX_OVERRIDE: Final = 4095  # PAGE_SIZE - 1 on x86-64


@dataclass(frozen=True)
class Write:
    """One write the code under test made: path relative to the root (symlinks
    resolved, as the kernel sees it), the data, and the errno it got (None: ok)."""

    path: str
    data: str
    errno: int | None


class NetdevListener(Protocol):
    """Told when a PCI device's network interface appears (a net driver took the
    device, at `add_device` too) or goes (the driver let go of it, `unload_driver`
    too). Called in the thread that made the write, before the write returns."""

    def netdev_added(self, address: str, name: str) -> None: ...

    def netdev_removed(self, address: str, name: str) -> None: ...


class FakeSysfs:
    """A test sysfs tree under `base` (the root is ``base/"sys"``) and the kernel
    behind its writes. Everything is on disk; the object keeps only paths, and
    `netdevs`, the listener this object tells of interfaces coming and going."""

    def __init__(self, base: Path, *, netdevs: NetdevListener | None = None) -> None:
        self._netdevs = netdevs
        base.mkdir(parents=True, exist_ok=True)
        self.root = base / "sys"
        self._state_path = base / "kernel-state.json"
        self._journal_path = base / "kernel-journal.jsonl"
        for folder in (_PCI_ROOT, "devices/virtual/net", "bus/pci/devices", "bus/pci/drivers"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        (self.root / "class" / "net").mkdir(parents=True, exist_ok=True)
        for attr, content in (("drivers_probe", ""), ("drivers_autoprobe", "1\n")):
            if not (self.root / "bus" / "pci" / attr).exists():
                (self.root / "bus" / "pci" / attr).write_text(content)
        if not self._state_path.exists():
            self._save({"drivers": {}, "devices": {}, "read_only": False})
        self._journal_path.touch()

    # --- setting the scene (not journalled) ---------------------------------------

    def load_driver(
        self,
        name: str,
        *,
        ids: frozenset[tuple[str, str]] = frozenset(),
        net: bool = False,
    ) -> None:
        """modprobe: register a PCI driver. `ids`: (vendor, device) pairs it
        claims without an override; `net`: it creates a network interface."""
        state = self._load()
        state["drivers"][name] = {"ids": sorted(map(list, ids)), "net": net, "fail_probe": None}
        self._save(state)
        folder = self._driver_dir(name)
        folder.mkdir(parents=True, exist_ok=True)
        for attr in ("bind", "unbind"):
            (folder / attr).touch()

    def load_ena(self) -> None:
        self.load_driver("ena", ids=ENA_VF_IDS, net=True)

    def unload_driver(self, name: str) -> None:
        """rmmod: the driver's devices are unbound first (journalled), then it goes."""
        for address in self._addresses():
            if self.driver_of(address) == name:
                self._unbind(address, name)
        state = self._load()
        state["drivers"].pop(name, None)
        self._save(state)
        shutil.rmtree(self._driver_dir(name), ignore_errors=True)

    def fail_probe(self, driver: str, *, error: int | None = errno.EINVAL) -> None:
        """Make `driver`'s probe fail (None: succeed again): the device stays unbound."""
        state = self._load()
        state["drivers"][driver]["fail_probe"] = error
        self._save(state)

    def add_device(
        self,
        address: str,
        *,
        netdev: str | None,
        driver: str | None = "ena",
        vendor: str = ENA_VENDOR,
        device: str = ENA_DEVICE,
    ) -> None:
        """A PCI function, bound to `driver` (must be loaded) at boot; `netdev` is
        the name its network interface gets while a net driver has it."""
        folder = self.root / _PCI_ROOT / address
        folder.mkdir(parents=True)
        (folder / "vendor").write_text(f"{vendor}\n")
        (folder / "device").write_text(f"{device}\n")
        (folder / "class").write_text(f"{_ETHERNET_CLASS}\n")
        (folder / "driver_override").write_text("(null)\n")
        os.symlink(f"../../../{_PCI_ROOT}/{address}", self.root / "bus/pci/devices" / address)
        state = self._load()
        state["devices"][address] = {"netdev": netdev, "vendor": vendor, "device": device}
        self._save(state)
        if driver is not None:
            if not self._driver_dir(driver).is_dir():
                raise ValueError(f"driver {driver} is not loaded")
            self._attach(address, driver, journal=False)

    def add_virtual_netdev(self, name: str) -> None:
        """A link with no PCI device behind it (veth, bridge, lo)."""
        (self.root / "devices/virtual/net" / name).mkdir(parents=True)
        os.symlink(f"../../devices/virtual/net/{name}", self.root / "class/net" / name)

    @property
    def read_only(self) -> bool:
        return bool(self._load()["read_only"])

    @read_only.setter
    def read_only(self, value: bool) -> None:
        state = self._load()
        state["read_only"] = value
        self._save(state)

    # --- observing ----------------------------------------------------------------

    def driver_of(self, address: str) -> str | None:
        link = self.root / _PCI_ROOT / address / "driver"
        return os.path.basename(os.readlink(link)) if link.is_symlink() else None

    def override_of(self, address: str) -> str | None:
        text = (self.root / _PCI_ROOT / address / "driver_override").read_text().strip()
        return None if text == "(null)" else text

    def netdev_present(self, name: str) -> bool:
        return (self.root / "class/net" / name).is_symlink()

    def writes(self) -> list[Write]:
        return [
            Write(path=entry["path"], data=entry["data"], errno=entry["errno"])
            for entry in self._journal()
            if entry["kind"] == "write"
        ]

    def binds(self, address: str) -> list[str]:
        """The drivers that took this device, in order, since the tree was made."""
        return self._events("bind", address)

    def unbinds(self, address: str) -> list[str]:
        """The drivers that let go of this device, in order."""
        return self._events("unbind", address)

    # --- the kernel: SysfsWriter ------------------------------------------------

    def write(self, path: Path, data: str) -> None:
        """One write(2) to a sysfs attribute: the kernel's reaction happens before
        it returns; failures raise OSError with the kernel's errno."""
        relative = self._relative(path)
        try:
            self._store(relative, data)
        except OSError as err:
            self._log({"kind": "write", "path": relative, "data": data, "errno": err.errno})
            raise
        self._log({"kind": "write", "path": relative, "data": data, "errno": None})

    def _store(self, relative: str, data: str) -> None:
        if not (self.root / relative).exists():
            raise _oserror(errno.ENOENT, relative)
        if self.read_only:
            raise _oserror(errno.EROFS, relative)
        parts = relative.split("/")
        if len(parts) == 4 and parts[:2] == _PCI_ROOT.split("/") and parts[3] == "driver_override":
            self._store_override(parts[2], data, relative)
        elif parts == ["bus", "pci", "drivers_probe"]:
            self._probe(_address_of(data), relative)
        elif len(parts) == 5 and parts[:3] == ["bus", "pci", "drivers"] and parts[4] == "unbind":
            address = _address_of(data)
            if address not in self._addresses() or self.driver_of(address) != parts[3]:
                raise _oserror(errno.ENODEV, relative)
            self._unbind(address, parts[3])
        elif len(parts) == 5 and parts[:3] == ["bus", "pci", "drivers"] and parts[4] == "bind":
            address = _address_of(data)
            if address not in self._addresses() or self.driver_of(address) is not None:
                raise _oserror(errno.ENODEV, relative)
            if not self._matches(address, parts[3]):
                raise _oserror(errno.ENODEV, relative)
            self._try_attach(address, parts[3], relative, report=True)
        else:
            raise _oserror(errno.EACCES, relative)  # an attribute without a store

    def _store_override(self, address: str, data: str, relative: str) -> None:
        value = data[:-1] if data.endswith("\n") else data
        if len(value) >= _MAX_OVERRIDE:
            raise _oserror(errno.EINVAL, relative)
        (self.root / relative).write_text(f"{value}\n" if value else "(null)\n")

    def _probe(self, address: str, relative: str) -> None:
        if address not in self._addresses():
            raise _oserror(errno.ENODEV, relative)
        if self.driver_of(address) is not None:
            return
        for name in sorted(self._load()["drivers"]):
            if self._driver_dir(name).is_dir() and self._matches(address, name):
                self._try_attach(address, name, relative, report=False)
                return

    def _matches(self, address: str, driver: str) -> bool:
        override = self.override_of(address)
        if override is not None:
            return override == driver
        info = self._load()
        device = info["devices"][address]
        ids = {tuple(pair) for pair in info["drivers"][driver]["ids"]}
        return (device["vendor"], device["device"]) in ids

    def _try_attach(self, address: str, driver: str, relative: str, *, report: bool) -> None:
        failure = self._load()["drivers"][driver]["fail_probe"]
        if failure is None:
            self._attach(address, driver, journal=True)
        elif report:  # bind reports the probe's error; drivers_probe swallows it
            raise _oserror(failure, relative)

    # --- tree surgery ---------------------------------------------------------------

    def _attach(self, address: str, driver: str, *, journal: bool) -> None:
        device = self.root / _PCI_ROOT / address
        os.symlink(f"../../../bus/pci/drivers/{driver}", device / "driver")
        os.symlink(f"../../../../{_PCI_ROOT}/{address}", self._driver_dir(driver) / address)
        state = self._load()
        netdev = state["devices"][address]["netdev"]
        if state["drivers"][driver]["net"] and netdev is not None:
            (device / "net" / netdev).mkdir(parents=True)
            os.symlink(f"../../../{address}", device / "net" / netdev / "device")
            os.symlink(
                f"../../{_PCI_ROOT}/{address}/net/{netdev}", self.root / "class/net" / netdev
            )
        if journal:
            self._log({"kind": "bind", "address": address, "driver": driver})
        if state["drivers"][driver]["net"] and netdev is not None and self._netdevs is not None:
            self._netdevs.netdev_added(address, netdev)

    def _unbind(self, address: str, driver: str) -> None:
        device = self.root / _PCI_ROOT / address
        (device / "driver").unlink()
        (self._driver_dir(driver) / address).unlink()
        netdev = self._load()["devices"][address]["netdev"]
        removed = netdev is not None and (self.root / "class/net" / netdev).is_symlink()
        if removed:
            (self.root / "class/net" / netdev).unlink()
            shutil.rmtree(device / "net" / netdev)
        self._log({"kind": "unbind", "address": address, "driver": driver})
        if removed and self._netdevs is not None:
            self._netdevs.netdev_removed(address, netdev)

    # --- plumbing -----------------------------------------------------------------------

    def _driver_dir(self, name: str) -> Path:
        return self.root / "bus/pci/drivers" / name

    def _addresses(self) -> list[str]:
        return sorted(self._load()["devices"])

    def _relative(self, path: Path) -> str:
        # Resolve the directories (bus/pci/devices/<addr>, .../driver), as the
        # kernel's path walk does; the attribute itself is the last component.
        parent = Path(os.path.realpath(path.parent))
        root = Path(os.path.realpath(self.root))
        try:
            return (parent / path.name).relative_to(root).as_posix()
        except ValueError:
            raise ValueError(f"{path} is outside the test sysfs tree {self.root}") from None

    def _load(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads(self._state_path.read_text())
        return state

    def _save(self, state: dict[str, Any]) -> None:
        self._state_path.write_text(json.dumps(state, indent=1, sort_keys=True))

    def _log(self, entry: dict[str, Any]) -> None:
        with self._journal_path.open("a") as journal:
            journal.write(json.dumps(entry) + "\n")

    def _journal(self) -> Iterator[dict[str, Any]]:
        for line in self._journal_path.read_text().splitlines():
            yield json.loads(line)

    def _events(self, kind: str, address: str) -> list[str]:
        return [
            entry["driver"]
            for entry in self._journal()
            if entry["kind"] == kind and entry["address"] == address
        ]


def _address_of(data: str) -> str:
    return data.strip()


def _oserror(code: int, relative: str) -> OSError:
    return OSError(code, os.strerror(code), relative)
