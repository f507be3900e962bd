"""Our entries in the SR-IOV network device plugin's config, and its reload.

The device plugin (k8snetworkplumbingwg/sriov-network-device-plugin) reads one
JSON file at start, ``{"resourceList": [{"resourceName", "resourcePrefix",
"selectors"}, ...]}``, and advertises a resource per entry. We keep one entry
per DPDK resource name of the node's ENIs, in a file others also keep entries in.

Invariants:

* Only our entries change; ours carry ``MARKER`` (Go's encoding/json ignores
  unknown members). Everyone else's entries, and the whitespace between them,
  keep their exact text. A resource with no addresses has no entry (an empty
  selector would select every device).
* The file is written only when its text changes, atomically (temp file,
  fsync, rename, fsync of the directory) under an flock on the directory, so
  two agents (a rolling update) lose no update. A file not of the plugin's
  shape, or with someone else's entry under one of our names, is left as it is.
* ``restart_device_plugin`` deletes the plugin's pod(s) on this node, once per
  write, so its DaemonSet starts one that reads the new file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from http import HTTPStatus
from pathlib import Path
from typing import Any, Final

import structlog
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from eni_controller.agent import config_text
from eni_controller.agent.pci import is_pci_address

log = structlog.get_logger(__name__)

MARKER: Final = ("x-managed-by", "aws-multi-eni-controller")
_NAME: Final = re.compile(r"\A[A-Za-z0-9_]+\Z")
_PREFIX: Final = re.compile(r"\A[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?\Z")
_TEMP_SUFFIX: Final = ".eni-agent-tmp"
_NEW_FILE_MODE: Final = 0o644
_ATTEMPTS: Final = 3


class DevicePluginConfigError(Exception):
    """The device plugin's config could not be brought to what is wanted."""


class InvalidResource(DevicePluginConfigError, ValueError):
    """A wanted resource name or PCI address the device plugin would not accept."""


class MalformedConfig(DevicePluginConfigError):
    """The file is not JSON of the plugin's shape; it is left untouched."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.reason = reason


class ResourceConflict(DevicePluginConfigError):
    """Someone else's entry has one of our resource names (the plugin would
    refuse both); the file is left untouched."""

    def __init__(self, path: Path, resource: str) -> None:
        super().__init__(f"{path}: resource {resource} already has an entry not managed by us")
        self.resource = resource


class ConfigIOError(DevicePluginConfigError):
    """Reading or writing the file failed; ``errno`` says why."""

    def __init__(self, path: Path, error: OSError) -> None:
        reason = os.strerror(error.errno) if error.errno is not None else str(error)
        super().__init__(f"{path}: {reason}")
        self.errno = error.errno


class ConfigChangedMeanwhile(DevicePluginConfigError):
    """Someone else kept rewriting the file between our read and our rename."""


def desired_entries(wanted: Mapping[str, frozenset[str]]) -> dict[str, dict[str, Any]]:
    """Our entries, by full resource name, for `wanted` (resource name -> PCI addresses).
    InvalidResource for what the plugin would refuse, or an address under two names."""
    entries: dict[str, dict[str, Any]] = {}
    owner: dict[str, str] = {}
    for resource, addresses in sorted(wanted.items()):
        prefix, name = _split(resource)
        for address in addresses:
            if not is_pci_address(address):
                raise InvalidResource(f"{resource}: not a PCI address: {address!r}")
            if owner.setdefault(address, resource) != resource:
                raise InvalidResource(f"{address} is in both {owner[address]} and {resource}")
        if not addresses:
            continue
        entry: dict[str, Any] = {"resourceName": name}
        if prefix is not None:
            entry["resourcePrefix"] = prefix
        entry["selectors"] = {"pciAddresses": sorted(addresses)}
        entry[MARKER[0]] = MARKER[1]
        entries[resource] = entry
    return entries


def updated_config(text: str | None, entries: Mapping[str, dict[str, Any]], *, path: Path) -> str:
    """The file's new text: `text` (None: no file) with exactly `entries` as ours;
    `text` itself (or "" for no file and nothing to add) when nothing changes."""
    if text is None:
        return config_text.new_file(_dumps_all(entries)) if entries else ""
    document = _parse(text, path=path)
    for value in (span.value for span in document.elements):
        if not _is_ours(value):
            _check_conflicts(value, entries, path=path)
    if document.list_open is None:
        if not entries:
            return text
        new = config_text.with_list_member(document, _dumps_all(entries))
    else:
        items: list[tuple[int | None, str]] = []  # (index in the old list or None, text)
        remaining = dict(entries)
        for index, span in enumerate(document.elements):
            if not _is_ours(span.value):
                items.append((index, text[span.start : span.end]))
                continue
            want = remaining.pop(_full_name(span.value), None)
            if want is None:  # no longer wanted, or a second copy: dropped
                continue
            same = span.value == want
            items.append((index, text[span.start : span.end]) if same else (None, json.dumps(want)))
        items += [(None, line) for line in _dumps_all(remaining)]
        if [index for index, _ in items] == list(range(len(document.elements))):
            return text
        new = config_text.with_items(document, items)
    _parse(new, path=path)  # never write what we could not read back
    return new


def _split(resource: str) -> tuple[str | None, str]:
    prefix, slash, name = resource.rpartition("/")
    if not _NAME.match(name) or (slash and not _PREFIX.match(prefix)):
        raise InvalidResource(
            f"not a device plugin resource name: {resource!r} (want [prefix/]name, "
            "name of letters, digits and _)"
        )
    return (prefix if slash else None), name


def _full_name(entry: Mapping[str, Any]) -> str:
    prefix = entry.get("resourcePrefix")
    name = str(entry.get("resourceName"))
    return f"{prefix}/{name}" if prefix else name


def _is_ours(value: Any) -> bool:
    return isinstance(value, dict) and value.get(MARKER[0]) == MARKER[1]


def _parse(text: str, *, path: Path) -> config_text.Document:
    try:
        return config_text.parse(text)
    except config_text.NotTheShape as err:
        raise MalformedConfig(path, str(err)) from None


def _check_conflicts(value: Mapping[str, Any], entries: Mapping[str, Any], *, path: Path) -> None:
    name = value.get("resourceName")
    prefix = value.get("resourcePrefix") or None
    for resource, entry in entries.items():
        ours = entry.get("resourcePrefix")
        # An entry without a prefix gets the plugin's default, which we do not know.
        if name == entry["resourceName"] and (prefix is None or ours is None or prefix == ours):
            raise ResourceConflict(path, resource)


def _dumps_all(entries: Mapping[str, Mapping[str, Any]]) -> list[str]:
    # one line each: fits any indentation around it
    return [json.dumps(entry) for _, entry in sorted(entries.items())]


class DevicePluginConfig:
    """The device plugin's config file at `path` (``/etc/pcidp/config.json``)."""

    def __init__(self, *, path: Path) -> None:
        self.path = path

    def sync(self, wanted: Mapping[str, frozenset[str]]) -> bool:
        """Make our entries exactly `wanted` (resource name -> PCI addresses); True when
        the file was written (the plugin must be restarted)."""
        entries = desired_entries(wanted)
        with self._locked_dir() as dir_fd:
            self._remove_stale_temps()
            for _ in range(_ATTEMPTS):
                old, seen = self._read()
                new = updated_config(old, entries, path=self.path)
                if new == (old if old is not None else ""):
                    return False
                if self._replace(new, dir_fd=dir_fd, expect=seen):
                    log.info("device plugin config written", path=str(self.path))
                    return True
        raise ConfigChangedMeanwhile(f"{self.path} changed under every one of {_ATTEMPTS} writes")

    @contextlib.contextmanager
    def _locked_dir(self) -> Iterator[int]:
        try:
            fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as err:
            raise ConfigIOError(self.path.parent, err) from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)  # releases the lock

    def _remove_stale_temps(self) -> None:
        # Under the lock no writer of ours is between mkstemp and rename: any
        # temp file is what a killed agent left.
        for stale in self.path.parent.glob(f".{self.path.name}.*{_TEMP_SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()

    def _read(self) -> tuple[str | None, os.stat_result | None]:
        try:
            with self.path.open("rb") as file:
                seen = os.fstat(file.fileno())
                raw = file.read()
        except FileNotFoundError:
            return None, None
        except OSError as err:
            raise ConfigIOError(self.path, err) from err
        try:
            return raw.decode("utf-8"), seen
        except UnicodeDecodeError as err:
            raise MalformedConfig(self.path, f"not UTF-8 at byte {err.start}") from None

    def _replace(self, text: str, *, dir_fd: int, expect: os.stat_result | None) -> bool:
        """Write `text` to a temp file and rename it over the file, unless the file
        changed since it was read (then False, nothing written)."""
        try:
            fd, temp = tempfile.mkstemp(
                dir=self.path.parent, prefix=f".{self.path.name}.", suffix=_TEMP_SUFFIX
            )
        except OSError as err:
            raise ConfigIOError(self.path, err) from err
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(text.encode("utf-8"))
                file.flush()
                if expect is not None:
                    os.fchmod(file.fileno(), expect.st_mode & 0o7777)
                    with contextlib.suppress(PermissionError):
                        os.fchown(file.fileno(), expect.st_uid, expect.st_gid)
                else:
                    os.fchmod(file.fileno(), _NEW_FILE_MODE)
                os.fsync(file.fileno())
            if _identity(self.path) != _identity_of(expect):
                os.unlink(temp)
                return False
            os.replace(temp, self.path)
        except BaseException as err:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            if isinstance(err, OSError):
                raise ConfigIOError(self.path, err) from err
            raise
        try:
            os.fsync(dir_fd)
        except OSError as err:  # renamed, not yet durable: the next sync finds it done
            raise ConfigIOError(self.path.parent, err) from err
        return True


def _identity_of(seen: os.stat_result | None) -> tuple[int, int, int, int] | None:
    return None if seen is None else (seen.st_dev, seen.st_ino, seen.st_size, seen.st_mtime_ns)


def _identity(path: Path) -> tuple[int, int, int, int] | None:
    try:
        return _identity_of(path.stat())
    except FileNotFoundError:
        return None


async def restart_device_plugin(
    core_api: client.CoreV1Api, *, namespace: str, selector: str, node: str
) -> int:
    """Delete the device plugin's pod(s) on `node` so that it reloads; how many were.
    Terminating pods are left alone; one gone (404) or replaced (409) is not counted."""
    if not node or any(c in node for c in ",=!"):
        raise ValueError(f"not a node name: {node!r}")
    pods = await core_api.list_namespaced_pod(
        namespace, label_selector=selector, field_selector=f"spec.nodeName={node}"
    )
    deleted = 0
    for pod in pods.items:
        if pod.metadata.deletion_timestamp is not None:
            continue
        options = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=pod.metadata.uid))
        try:
            await core_api.delete_namespaced_pod(pod.metadata.name, namespace, body=options)
        except ApiException as err:
            if err.status in (HTTPStatus.NOT_FOUND, HTTPStatus.CONFLICT):
                continue
            raise
        deleted += 1
        log.info("device plugin pod deleted", pod=pod.metadata.name, namespace=namespace, node=node)
    return deleted
