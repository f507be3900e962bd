"""The SR-IOV device plugin's config (eni_controller/agent/deviceplugin.py): others'
entries byte for byte across add, remove and re-add; no write when nothing
changed; a failed or killed rename leaves the old file; bad files and bad
input are one clear error and lose nothing."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from eni_controller.agent import deviceplugin
from eni_controller.agent.deviceplugin import (
    ConfigIOError,
    DevicePluginConfig,
    InvalidResource,
    MalformedConfig,
    ResourceConflict,
    updated_config,
)

REPO = Path(__file__).resolve().parents[2]
A = "0000:00:06.0"
B = "0000:00:07.0"
DPDK = "intel.com/sriov_dpdk"

# Someone else's entries, in a layout json.dumps would never produce (key order,
# spacing, an exponent, escapes, non-ASCII): re-serialising any of it shows.
OTHERS = """{
    "resourceList": [{
            "resourceName": "intel_sriov_netdevice",
            "selectors": {
                "vendors": ["8086"],  "devices": ["154c", "10ed"],
                "drivers": ["i40evf", "ixgbevf"]
            }
        },
        {
            "isRdma": true, "resourcePrefix": "mellanox.com",
            "resourceName": "mlnx_rdma", "note": "caf\\u00e9 ünï", "weight": 1.0e3,
            "selectors": {"vendors": ["15b3"], "devices": ["1018"]}
        }
    ]
}
"""
FIRST_END = OTHERS.index("}\n        },") + len("}\n        }")
LAST_END = OTHERS.index("}\n        }\n    ]") + len("}\n        }")


def ours(name: str, prefix: str | None, *addresses: str) -> str:
    """Our entry as the agent writes it: one line."""
    entry: dict[str, Any] = {"resourceName": name}
    if prefix:
        entry["resourcePrefix"] = prefix
    entry["selectors"] = {"pciAddresses": sorted(addresses)}
    entry["x-managed-by"] = "aws-multi-eni-controller"
    return json.dumps(entry)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "pcidp" / "config.json"
    path.parent.mkdir()
    path.write_bytes(OTHERS.encode())
    return path


def temps(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p != path)


def identity(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_ino, info.st_mtime_ns


def test_our_entry_is_spliced_in_and_others_stay_byte_for_byte(config_file: Path) -> None:
    config = DevicePluginConfig(path=config_file)

    assert config.sync({DPDK: frozenset({A})}) is True

    expected = (
        OTHERS[:LAST_END] + ",\n        " + ours("sriov_dpdk", "intel.com", A) + OTHERS[LAST_END:]
    )
    assert config_file.read_bytes() == expected.encode()
    entries = json.loads(config_file.read_bytes())["resourceList"]
    assert entries[2] == {
        "resourceName": "sriov_dpdk",
        "resourcePrefix": "intel.com",
        "selectors": {"pciAddresses": [A]},
        "x-managed-by": "aws-multi-eni-controller",
    }
    assert temps(config_file) == []


def test_add_remove_readd_round_trips_to_the_same_bytes(config_file: Path) -> None:
    config = DevicePluginConfig(path=config_file)
    assert config.sync({DPDK: frozenset({A}), "plain_dpdk": frozenset({B})}) is True
    added = config_file.read_bytes()
    assert ours("plain_dpdk", None, B) in added.decode()  # no prefix: the plugin's default

    assert config.sync({}) is True
    assert config_file.read_bytes() == OTHERS.encode()

    assert config.sync({DPDK: frozenset({A}), "plain_dpdk": frozenset({B})}) is True
    assert config_file.read_bytes() == added


def test_changing_our_addresses_rewrites_only_our_entry(config_file: Path) -> None:
    config = DevicePluginConfig(path=config_file)
    config.sync({DPDK: frozenset({A})})

    assert config.sync({DPDK: frozenset({A, B})}) is True

    text = config_file.read_text()
    assert text.startswith(OTHERS[:LAST_END])
    assert ours("sriov_dpdk", "intel.com", A, B) in text
    assert ours("sriov_dpdk", "intel.com", A) not in text
    assert len(json.loads(text)["resourceList"]) == 3


def test_no_write_when_nothing_changed_even_after_a_restart(config_file: Path) -> None:
    config = DevicePluginConfig(path=config_file)
    assert config.sync({DPDK: frozenset({A})}) is True
    before = identity(config_file)

    assert config.sync({DPDK: frozenset({A})}) is False
    restarted = DevicePluginConfig(path=config_file)
    assert restarted.sync({DPDK: frozenset({A})}) is False

    assert identity(config_file) == before


def test_our_entry_reformatted_by_someone_is_not_rewritten(config_file: Path) -> None:
    config = DevicePluginConfig(path=config_file)
    config.sync({DPDK: frozenset({A})})
    # An admin pretty-prints the whole file: same content, other bytes.
    pretty = json.dumps(json.loads(config_file.read_text()), indent=4) + "\n"
    config_file.write_text(pretty)
    before = identity(config_file)

    assert config.sync({DPDK: frozenset({A})}) is False
    assert identity(config_file) == before


def test_nothing_wanted_and_nothing_of_ours_writes_nothing(
    config_file: Path, tmp_path: Path
) -> None:
    before = identity(config_file)
    assert DevicePluginConfig(path=config_file).sync({}) is False
    assert identity(config_file) == before

    missing = tmp_path / "pcidp" / "absent.json"
    assert DevicePluginConfig(path=missing).sync({DPDK: frozenset()}) is False
    assert not missing.exists()


def test_a_resource_without_addresses_has_no_entry(config_file: Path) -> None:
    # An empty pciAddresses selector would select every device on the node.
    config = DevicePluginConfig(path=config_file)
    config.sync({DPDK: frozenset({A})})

    assert config.sync({DPDK: frozenset()}) is True
    assert config_file.read_bytes() == OTHERS.encode()


def test_a_missing_file_is_created(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    config = DevicePluginConfig(path=path)

    assert config.sync({DPDK: frozenset({A}), "plain_dpdk": frozenset({B})}) is True

    assert path.read_text() == (
        '{\n  "resourceList": [\n    '
        + ours("sriov_dpdk", "intel.com", A)
        + ",\n    "
        + ours("plain_dpdk", None, B)
        + "\n  ]\n}\n"
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert config.sync({}) is True
    assert json.loads(path.read_text()) == {"resourceList": []}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param(b"", "not JSON: line 1 column 1", id="empty"),
        pytest.param(b'{"resourceList": [', "not JSON: line 1 column 19", id="truncated"),
        pytest.param(b'{"resourceList": []} x', "not JSON", id="trailing-garbage"),
        pytest.param(b"[]", "not a JSON object", id="array"),
        pytest.param(b'{"resourceList": {}}', "resourceList is not a list", id="list-object"),
        pytest.param(b'{"resourceList": [1]}', "resourceList[0] is not an object", id="item"),
        pytest.param(
            b'{"resourceList": [], "resourceList": []}', "resourceList appears twice", id="dup"
        ),
        pytest.param(b'{"resourceList": [{"w": NaN}]}', "not JSON: NaN is not JSON", id="nan"),
        pytest.param(b'{"resourceList": ["\xff"]}', "not UTF-8 at byte 19", id="bytes"),
    ],
)
def test_a_malformed_file_is_an_error_and_left_untouched(
    config_file: Path, content: bytes, reason: str
) -> None:
    config_file.write_bytes(content)
    before = identity(config_file)

    with pytest.raises(MalformedConfig) as caught:
        DevicePluginConfig(path=config_file).sync({DPDK: frozenset({A})})

    assert caught.value.reason.startswith(reason)
    assert str(config_file) in str(caught.value)
    assert config_file.read_bytes() == content
    assert identity(config_file) == before
    assert temps(config_file) == []


@pytest.mark.parametrize(
    "wanted",
    [
        pytest.param("mellanox.com/mlnx_rdma", id="same-prefix"),
        pytest.param("mlnx_rdma", id="ours-without-prefix"),
        pytest.param("intel_sriov_netdevice", id="theirs-without-prefix"),
        pytest.param("acme.com/intel_sriov_netdevice", id="theirs-default-prefix"),
    ],
)
def test_someone_elses_entry_under_our_name_is_a_conflict(config_file: Path, wanted: str) -> None:
    with pytest.raises(ResourceConflict) as caught:
        DevicePluginConfig(path=config_file).sync({wanted: frozenset({A})})
    assert caught.value.resource == wanted
    assert config_file.read_bytes() == OTHERS.encode()


def test_same_name_under_another_explicit_prefix_is_no_conflict(config_file: Path) -> None:
    assert DevicePluginConfig(path=config_file).sync({"acme.com/mlnx_rdma": frozenset({A})})


@pytest.mark.parametrize(
    ("wanted", "message"),
    [
        pytest.param({"intel.com/sriov-dpdk": {A}}, "not a device plugin resource", id="dash"),
        pytest.param({"a/b/c": {A}}, "not a device plugin resource", id="two-slashes"),
        pytest.param({"/sriov": {A}}, "not a device plugin resource", id="empty-prefix"),
        pytest.param({"": {A}}, "not a device plugin resource", id="empty"),
        pytest.param({DPDK: {"00:06.0"}}, "not a PCI address", id="short-address"),
        pytest.param({DPDK: {A}, "other": {A}}, "is in both", id="address-twice"),
    ],
)
def test_bad_input_is_one_clear_error_and_loses_nothing(
    config_file: Path, wanted: dict[str, set[str]], message: str
) -> None:
    config = DevicePluginConfig(path=config_file)
    config.sync({"kept": frozenset({B})})
    before = config_file.read_bytes()

    with pytest.raises(InvalidResource, match=message):
        config.sync({name: frozenset(addresses) for name, addresses in wanted.items()})

    assert config_file.read_bytes() == before


def test_a_failed_rename_leaves_the_old_file_and_no_temp_file(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_replace(src: str, dst: str) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "replace", failing_replace)
    config = DevicePluginConfig(path=config_file)

    with pytest.raises(ConfigIOError) as caught:
        config.sync({DPDK: frozenset({A})})

    assert caught.value.errno == 5
    assert config_file.read_bytes() == OTHERS.encode()
    assert temps(config_file) == []
    monkeypatch.undo()
    assert config.sync({DPDK: frozenset({A})}) is True


KILLED_AT_RENAME = """
import os, signal, sys
from pathlib import Path
from eni_controller.agent.deviceplugin import DevicePluginConfig

def killed(src, dst):
    os.kill(os.getpid(), signal.SIGKILL)

os.replace = killed
DevicePluginConfig(path=Path(sys.argv[1])).sync({sys.argv[2]: frozenset({sys.argv[3]})})
"""


def test_an_agent_killed_between_write_and_rename(config_file: Path) -> None:
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AT_RENAME, str(config_file), DPDK, A],
        cwd=REPO,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    assert config_file.read_bytes() == OTHERS.encode()  # the old file, whole
    left = temps(config_file)
    assert len(left) == 1  # the new text, never renamed
    assert ours("sriov_dpdk", "intel.com", A) in (config_file.parent / left[0]).read_text()

    # The restarted agent removes it and writes.
    assert DevicePluginConfig(path=config_file).sync({DPDK: frozenset({A})}) is True
    assert temps(config_file) == []
    assert json.loads(config_file.read_text())["resourceList"][2]["resourceName"] == "sriov_dpdk"


def test_a_change_made_between_read_and_rename_is_not_lost(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_mkstemp = tempfile.mkstemp
    edited = False

    def someone_edits_first(**kwargs: Any) -> tuple[int, str]:
        nonlocal edited
        if not edited:
            edited = True
            text = OTHERS.replace('"mlnx_rdma"', '"mlnx_rdma_2"')
            config_file.write_text(text)
        return real_mkstemp(**kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", someone_edits_first)

    assert DevicePluginConfig(path=config_file).sync({DPDK: frozenset({A})}) is True

    names = [e["resourceName"] for e in json.loads(config_file.read_text())["resourceList"]]
    assert names == ["intel_sriov_netdevice", "mlnx_rdma_2", "sriov_dpdk"]
    assert temps(config_file) == []


def test_the_file_mode_is_kept(config_file: Path) -> None:
    config_file.chmod(0o640)
    DevicePluginConfig(path=config_file).sync({DPDK: frozenset({A})})
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o640


def test_a_missing_directory_is_an_io_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigIOError) as caught:
        DevicePluginConfig(path=tmp_path / "absent" / "config.json").sync({DPDK: frozenset({A})})
    assert caught.value.errno == 2
    assert not (tmp_path / "absent").exists()


ENTRY = ours("x", None, A)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(
            '{"resourceList":[{"resourceName":"a"}]}',
            '{"resourceList":[{"resourceName":"a"}, ' + ENTRY + "]}",
            id="one-line",
        ),
        pytest.param(
            '{\n  "resourceList": []\n}\n',
            '{\n  "resourceList": [\n    ' + ENTRY + "\n  ]\n}\n",
            id="empty-list",
        ),
        pytest.param("{}", '{"resourceList": [' + ENTRY + "]}", id="empty-object"),
        pytest.param(
            '{"other": 1}\n', '{"other": 1, "resourceList": [' + ENTRY + "]}\n", id="no-member"
        ),
        pytest.param(
            '{"resourceList": [\n  {"resourceName": "a"},\n  '
            + ENTRY
            + ',\n  {"resourceName":"b"}\n]}',
            '{"resourceList": [\n  {"resourceName": "a"},\n  {"resourceName":"b"}\n]}',
            id="removed-from-the-middle",
        ),
    ],
)
def test_layouts(before: str, after: str) -> None:
    wanted = {"x": frozenset({A})} if ENTRY not in before else {}
    entries = deviceplugin.desired_entries(wanted)
    assert updated_config(before, entries, path=Path("config.json")) == after
    assert updated_config(after, entries, path=Path("config.json")) == after
