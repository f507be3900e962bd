"""PCI driver binding (eni_controller/agent/pci.py) against the kernel emulator of
tests/harness/sysfs.py: bound once and reported, no write when already bound,
a missing module, release and rebind, and agent restarts (a second PCIDevices
over the same tree, after a complete or an interrupted sequence)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from eni_controller.agent.pci import (
    DeviceMissing,
    DriverMissing,
    FileWriter,
    NotWritable,
    PCIDevices,
    ProbeFailed,
)
from tests.harness.sysfs import FakeSysfs, Write

ADDR = "0000:00:06.0"
OTHER = "0000:00:07.0"
VFIO = "vfio-pci"


@pytest.fixture
def tree(tmp_path: Path) -> FakeSysfs:
    """A node with two ENA devices on ena (ens6, ens7) and vfio-pci loaded."""
    fake = FakeSysfs(tmp_path / "node")
    fake.load_ena()
    fake.load_driver(VFIO)
    fake.add_device(ADDR, netdev="ens6")
    fake.add_device(OTHER, netdev="ens7")
    return fake


def devices(tree: FakeSysfs) -> PCIDevices:
    return PCIDevices(root=tree.root, writer=tree)


def override_write(value: str) -> Write:
    return Write(path=f"devices/pci0000:00/{ADDR}/driver_override", data=value, errno=None)


UNBIND_ENA = Write(path="bus/pci/drivers/ena/unbind", data=ADDR, errno=None)
UNBIND_VFIO = Write(path=f"bus/pci/drivers/{VFIO}/unbind", data=ADDR, errno=None)
PROBE = Write(path="bus/pci/drivers_probe", data=ADDR, errno=None)


def test_bind_moves_the_device_in_kernel_order_and_reports_it(tree: FakeSysfs) -> None:
    pci = devices(tree)
    assert pci.address_of("ens6") == ADDR
    assert pci.driver_of(ADDR) == "ena"

    assert pci.bind(ADDR, driver=VFIO) is True

    assert pci.driver_of(ADDR) == VFIO
    assert tree.writes() == [override_write(VFIO), UNBIND_ENA, PROBE]
    assert tree.binds(ADDR) == [VFIO]
    # The kernel takes the interface away with ena: only the PCI address is left.
    assert pci.address_of("ens6") is None
    assert not tree.netdev_present("ens6")
    # The other device is untouched.
    assert tree.driver_of(OTHER) == "ena"
    assert tree.binds(OTHER) == []


def test_bind_when_already_bound_writes_nothing(tree: FakeSysfs) -> None:
    pci = devices(tree)
    pci.bind(ADDR, driver=VFIO)
    before = tree.writes()

    assert pci.bind(ADDR, driver=VFIO) is False
    assert pci.bind(ADDR, driver=VFIO) is False

    assert tree.writes() == before
    assert tree.binds(ADDR) == [VFIO]


def test_bind_to_a_driver_that_is_not_loaded_is_driver_missing(tmp_path: Path) -> None:
    fake = FakeSysfs(tmp_path / "node")
    fake.load_ena()
    fake.add_device(ADDR, netdev="ens6")
    pci = devices(fake)

    with pytest.raises(DriverMissing) as caught:
        pci.bind(ADDR, driver=VFIO)
    assert (caught.value.driver, caught.value.address) == (VFIO, ADDR)
    assert str(caught.value) == "driver vfio-pci not loaded"
    assert fake.writes() == []
    assert fake.driver_of(ADDR) == "ena"

    fake.load_driver(VFIO)  # modprobe vfio-pci: the next attempt binds
    assert pci.bind(ADDR, driver=VFIO) is True
    assert fake.binds(ADDR) == [VFIO]


def test_release_gives_the_device_back_to_the_kernel_driver_and_rebind_works(
    tree: FakeSysfs,
) -> None:
    pci = devices(tree)
    pci.bind(ADDR, driver=VFIO)
    bound = len(tree.writes())

    assert pci.release(ADDR) is True

    assert pci.driver_of(ADDR) == "ena"
    assert tree.override_of(ADDR) is None
    assert tree.writes()[bound:] == [UNBIND_VFIO, override_write("\n"), PROBE]
    assert pci.address_of("ens6") == ADDR  # the interface is back
    released = len(tree.writes())
    assert pci.release(ADDR) is False  # nothing of ours left to undo
    assert len(tree.writes()) == released

    assert pci.bind(ADDR, driver=VFIO) is True  # redo
    assert tree.binds(ADDR) == [VFIO, "ena", VFIO]
    assert tree.unbinds(ADDR) == ["ena", VFIO, "ena"]


def test_an_agent_restart_binds_nothing_twice(tree: FakeSysfs) -> None:
    assert devices(tree).bind(ADDR, driver=VFIO) is True
    before = tree.writes()

    # A new process: a new emulator over the same directory, a new PCIDevices.
    restarted_tree = FakeSysfs(tree.root.parent)
    restarted = PCIDevices(root=restarted_tree.root, writer=restarted_tree)
    assert restarted.driver_of(ADDR) == VFIO
    assert restarted.bind(ADDR, driver=VFIO) is False

    assert restarted_tree.writes() == before
    assert restarted_tree.binds(ADDR) == [VFIO]


@pytest.mark.parametrize(
    ("done", "rest"),
    [
        pytest.param([override_write(VFIO)], [UNBIND_ENA, PROBE], id="after-override"),
        pytest.param([override_write(VFIO), UNBIND_ENA], [PROBE], id="after-unbind"),
    ],
)
def test_a_bind_interrupted_by_a_crash_is_finished_not_repeated(
    tree: FakeSysfs, done: list[Write], rest: list[Write]
) -> None:
    for write in done:  # what the agent wrote before it was killed
        tree.write(tree.root / write.path, write.data)

    assert devices(tree).bind(ADDR, driver=VFIO) is True

    assert tree.writes() == done + rest
    assert tree.binds(ADDR) == [VFIO]
    assert tree.driver_of(ADDR) == VFIO


@pytest.mark.parametrize(
    ("done", "rest"),
    [
        pytest.param([UNBIND_VFIO], [override_write("\n"), PROBE], id="after-unbind"),
        pytest.param([UNBIND_VFIO, override_write("\n")], [PROBE], id="after-clear"),
    ],
)
def test_a_release_interrupted_by_a_crash_is_finished(
    tree: FakeSysfs, done: list[Write], rest: list[Write]
) -> None:
    devices(tree).bind(ADDR, driver=VFIO)
    bound = len(tree.writes())
    for write in done:
        tree.write(tree.root / write.path, write.data)

    assert devices(tree).release(ADDR) is True

    assert tree.writes()[bound:] == done + rest
    assert tree.driver_of(ADDR) == "ena"
    assert tree.binds(ADDR) == [VFIO, "ena"]


def test_release_leaves_a_binding_that_is_not_ours_alone(tree: FakeSysfs) -> None:
    # Bound to vfio-pci by someone else who cleared the override afterwards, as
    # dpdk-devbind does.
    tree.write(tree.root / "bus/pci/drivers/ena/unbind", ADDR)
    tree.write(tree.root / f"devices/pci0000:00/{ADDR}/driver_override", VFIO)
    tree.write(tree.root / "bus/pci/drivers_probe", ADDR)
    tree.write(tree.root / f"devices/pci0000:00/{ADDR}/driver_override", "\n")
    before = tree.writes()

    assert devices(tree).release(ADDR) is False

    assert tree.writes() == before
    assert tree.driver_of(ADDR) == VFIO


def test_a_probe_the_driver_refuses_is_probe_failed_and_release_recovers(
    tree: FakeSysfs,
) -> None:
    tree.fail_probe(VFIO)  # e.g. vfio-pci on an instance without an IOMMU
    pci = devices(tree)

    with pytest.raises(ProbeFailed) as caught:
        pci.bind(ADDR, driver=VFIO)
    assert (caught.value.wanted, caught.value.actual) == (VFIO, None)
    assert tree.driver_of(ADDR) is None
    assert tree.override_of(ADDR) == VFIO

    assert pci.release(ADDR) is True
    assert tree.driver_of(ADDR) == "ena"
    assert pci.address_of("ens6") == ADDR


def test_release_without_the_kernel_driver_is_probe_failed(tree: FakeSysfs) -> None:
    pci = devices(tree)
    pci.bind(ADDR, driver=VFIO)
    tree.unload_driver("ena")

    with pytest.raises(ProbeFailed) as caught:
        pci.release(ADDR)
    assert (caught.value.wanted, caught.value.actual) == (None, None)
    assert tree.override_of(ADDR) is None


def test_a_device_unbound_by_someone_else_meanwhile_is_still_bound(tree: FakeSysfs) -> None:
    class RacingWriter:
        """Someone unbinds the device just before our unbind lands: ours gets ENODEV."""

        def write(self, path: Path, data: str) -> None:
            if path.name == "unbind":
                tree.write(path, data)
            tree.write(path, data)

    pci = PCIDevices(root=tree.root, writer=RacingWriter())
    assert pci.bind(ADDR, driver=VFIO) is True
    assert tree.driver_of(ADDR) == VFIO
    assert [w.errno for w in tree.writes() if w.path.endswith("unbind")] == [None, errno.ENODEV]


def test_a_read_only_sysfs_is_not_writable(tree: FakeSysfs) -> None:
    tree.read_only = True
    with pytest.raises(NotWritable) as caught:
        devices(tree).bind(ADDR, driver=VFIO)
    assert caught.value.errno == errno.EROFS
    assert caught.value.path == tree.root / f"bus/pci/devices/{ADDR}/driver_override"
    assert tree.driver_of(ADDR) == "ena"


def test_unknown_and_malformed_addresses(tree: FakeSysfs) -> None:
    pci = devices(tree)
    with pytest.raises(DeviceMissing):
        pci.driver_of("0000:00:1f.0")
    with pytest.raises(DeviceMissing):
        pci.bind("0000:00:1f.0", driver=VFIO)
    with pytest.raises(DeviceMissing):
        pci.release("0000:00:1f.0")
    for bad in ("../../../etc", "0000:00:06.0/..", "0000:00:06.8", "0000:00:6.0", ""):
        with pytest.raises(ValueError, match="not a PCI address"):
            pci.driver_of(bad)
    for bad_driver in ("", "../ena", " vfio-pci"):
        with pytest.raises(ValueError, match="not a driver name"):
            pci.bind(ADDR, driver=bad_driver)
    assert tree.writes() == []


def test_address_of_only_names_pci_devices(tree: FakeSysfs) -> None:
    tree.add_virtual_netdev("veth0")
    pci = devices(tree)
    assert pci.address_of("ens6") == ADDR
    assert pci.address_of("ens7") == OTHER
    assert pci.address_of("veth0") is None  # no device link
    assert pci.address_of("ens9") is None  # no such interface
    with pytest.raises(ValueError, match="not an interface name"):
        pci.address_of("../../bus")


@pytest.mark.parametrize(
    ("steps", "driver"),
    [
        pytest.param(["probe", "override"], "ena", id="probe-before-override"),
        pytest.param(["override", "probe"], "ena", id="no-unbind"),
        pytest.param(["unbind", "probe"], "ena", id="no-override"),
        pytest.param(["unbind", "override", "probe"], VFIO, id="unbind-first-also-works"),
        pytest.param(["override", "unbind"], None, id="no-probe"),
        pytest.param(["override", "unbind", "probe"], VFIO, id="kernel-order"),
    ],
)
def test_the_emulator_punishes_a_wrong_order(
    tree: FakeSysfs, steps: list[str], driver: str | None
) -> None:
    writes = {
        "override": (f"devices/pci0000:00/{ADDR}/driver_override", VFIO),
        "unbind": ("bus/pci/drivers/ena/unbind", ADDR),
        "probe": ("bus/pci/drivers_probe", ADDR),
    }
    for step in steps:
        path, data = writes[step]
        tree.write(tree.root / path, data)
    assert tree.driver_of(ADDR) == driver


def test_the_emulator_answers_with_the_kernels_errnos(tree: FakeSysfs) -> None:
    def errno_of(path: str, data: str) -> int | None:
        try:
            tree.write(tree.root / path, data)
        except OSError as err:
            return err.errno
        return None

    assert errno_of(f"bus/pci/drivers/{VFIO}/unbind", ADDR) == errno.ENODEV  # not its device
    assert errno_of("bus/pci/drivers_probe", "0000:00:1f.0") == errno.ENODEV
    assert errno_of(f"bus/pci/drivers/{VFIO}/bind", ADDR) == errno.ENODEV  # bound already
    assert errno_of("bus/pci/drivers/igb_uio/unbind", ADDR) == errno.ENOENT  # not loaded
    assert errno_of(f"devices/pci0000:00/{ADDR}/vendor", "0x1") == errno.EACCES
    assert errno_of(f"devices/pci0000:00/{ADDR}/driver_override", "x" * 5000) == errno.EINVAL
    # bind through the driver's own file, honouring the override
    assert errno_of("bus/pci/drivers/ena/unbind", ADDR) is None
    assert errno_of(f"bus/pci/drivers/{VFIO}/bind", ADDR) == errno.ENODEV  # no ID, no override
    assert errno_of("bus/pci/drivers/ena/bind", ADDR) is None
    assert tree.driver_of(ADDR) == "ena"


class Netdevs:
    """A NetdevListener that records what it is told, and what sysfs showed then."""

    def __init__(self) -> None:
        self.tree: FakeSysfs | None = None
        self.told: list[tuple[str, str, str, bool]] = []

    def netdev_added(self, address: str, name: str) -> None:
        assert self.tree is not None
        self.told.append(("added", address, name, self.tree.netdev_present(name)))

    def netdev_removed(self, address: str, name: str) -> None:
        assert self.tree is not None
        self.told.append(("removed", address, name, self.tree.netdev_present(name)))


def test_the_emulator_tells_its_listener_of_interfaces_coming_and_going(tmp_path: Path) -> None:
    listener = Netdevs()
    tree = listener.tree = FakeSysfs(tmp_path / "node", netdevs=listener)
    tree.load_ena()
    tree.load_driver(VFIO)
    tree.add_device(ADDR, netdev="ens6")
    tree.add_device(OTHER, netdev=None)  # a PCI function without a network interface
    assert listener.told == [("added", ADDR, "ens6", True)]  # after the tree changed

    pci = devices(tree)
    for _ in range(2):  # do, undo, redo: told once per change, nothing for no-ops
        pci.bind(ADDR, driver=VFIO)
        pci.bind(ADDR, driver=VFIO)
        pci.release(ADDR)
        pci.release(ADDR)
    assert (
        listener.told[1:]
        == [
            ("removed", ADDR, "ens6", False),
            ("added", ADDR, "ens6", True),
        ]
        * 2
    )

    # rmmod ena takes the interface away too; a second view of the tree without a
    # listener tells no one (the listener is this object's, not state on disk)
    del listener.told[:]
    FakeSysfs(tmp_path / "node").unload_driver(VFIO)
    assert listener.told == []
    tree.unload_driver("ena")
    assert listener.told == [("removed", ADDR, "ens6", False)]


def test_bind_replaces_someone_elses_override_on_an_unbound_device(tree: FakeSysfs) -> None:
    tree.write(tree.root / "bus/pci/drivers/ena/unbind", ADDR)
    tree.write(tree.root / f"devices/pci0000:00/{ADDR}/driver_override", "igb_uio")
    before = tree.writes()

    assert devices(tree).bind(ADDR, driver=VFIO) is True

    assert tree.writes() == [*before, override_write(VFIO), PROBE]
    assert tree.driver_of(ADDR) == VFIO


def test_bind_to_the_driver_a_device_is_on_writes_nothing_even_without_override(
    tree: FakeSysfs,
) -> None:
    # on vfio-pci through someone else (dpdk-devbind clears the override after)
    tree.write(tree.root / "bus/pci/drivers/ena/unbind", ADDR)
    tree.write(tree.root / f"devices/pci0000:00/{ADDR}/driver_override", VFIO)
    tree.write(tree.root / "bus/pci/drivers_probe", ADDR)
    tree.write(tree.root / f"devices/pci0000:00/{ADDR}/driver_override", "\n")
    before = tree.writes()

    assert devices(tree).bind(ADDR, driver=VFIO) is False

    assert tree.writes() == before


def test_the_real_writer_writes_once_and_never_creates(tmp_path: Path) -> None:
    attribute = tmp_path / "driver_override"
    attribute.write_text("(null)\n")
    FileWriter().write(attribute, VFIO)
    assert attribute.read_text() == VFIO  # 8 bytes over the 7 that were there
    with pytest.raises(FileNotFoundError):
        FileWriter().write(tmp_path / "missing", VFIO)
    assert not (tmp_path / "missing").exists()
