"""Our entries in the SR-IOV network device plugin's config, and its reload.

The device plugin (k8snetworkplumbingwg/sriov-network-device-plugin) reads one
JSON file at start, ``{"resourceList": [{"resourceName": ..., "resourcePrefix":
..., "selectors": {...}}, ...]}``, and advertises one Kubernetes extended
resource per entry. The agent adds an entry per DPDK resource name of the node's
ENIs, selecting their PCI addresses, in a file other people (an operator, an
admin, the SR-IOV operator) also keep entries in.

Invariants:

* Only our entries change. Ours carry a marker member (``MARKER``; the plugin
  decodes with Go's encoding/json, which ignores unknown members), so an entry
  no longer wanted is recognised after an agent restart, from the file alone.
  Everyone else's entries are spliced through as the exact text they had: they
  are never re-serialised, so they stay byte for byte what they were, and so
  does the whitespace between them.
* A resource name given as ``prefix/name`` (``intel.com/sriov_dpdk``) becomes
  ``"resourcePrefix": "intel.com", "resourceName": "sriov_dpdk"``: the plugin
  wants a bare name (``[A-Za-z0-9_]+``) and the prefix apart. A name without a
  prefix gets the plugin's own default prefix. A resource with no addresses has
  no entry: an empty ``pciAddresses`` selector would select every device.
* The file is written only when its text changes, atomically: a temp file in
  the same directory, fsync, rename over the old one, fsync of the directory.
  A crash at any point leaves the old file or the new one, never a mix; a temp
  file left by a killed agent is removed by the next sync. Our writers take an
  flock on the directory, so two agents (a rolling update) do not lose each
  other's update.
* A missing file is created (when there is something to add). A file that is
  not valid JSON of the plugin's shape, or that has someone else's entry under
  one of our names, is an error and is left exactly as it is.
* ``restart_device_plugin`` deletes the device plugin's pod(s) on this node so
  its DaemonSet starts one that reads the new file; the caller calls it once
  per write that changed the file. A pod already terminating is not deleted
  again: its replacement will read the new file anyway.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any, Final

import structlog
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from eni_controller.agent.pci import is_pci_address

__all__ = [
    "MARKER",
    "ConfigChangedMeanwhile",
    "ConfigIOError",
    "DevicePluginConfig",
    "DevicePluginConfigError",
    "InvalidResource",
    "MalformedConfig",
    "ResourceConflict",
    "desired_entries",
    "restart_device_plugin",
    "updated_config",
]

log = structlog.get_logger(__name__)

MARKER: Final = ("x-managed-by", "aws-multi-eni-controller")
_NAME: Final = re.compile(r"\A[A-Za-z0-9_]+\Z")
_PREFIX: Final = re.compile(r"\A[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?\Z")
_WHITESPACE: Final = " \t\n\r"
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
        self.path = path
        self.reason = reason


class ResourceConflict(DevicePluginConfigError):
    """Someone else's entry has one of our resource names (the plugin would
    refuse both); the file is left untouched."""

    def __init__(self, path: Path, resource: str) -> None:
        super().__init__(f"{path}: resource {resource} already has an entry not managed by us")
        self.path = path
        self.resource = resource


class ConfigIOError(DevicePluginConfigError):
    """Reading or writing the file failed; ``errno`` says why."""

    def __init__(self, path: Path, error: OSError) -> None:
        reason = os.strerror(error.errno) if error.errno is not None else str(error)
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.errno = error.errno


class ConfigChangedMeanwhile(DevicePluginConfigError):
    """Someone else kept rewriting the file between our read and our rename."""


# --- the functional core --------------------------------------------------------------


def desired_entries(wanted: Mapping[str, frozenset[str]]) -> dict[str, dict[str, Any]]:
    """Our entries, by full resource name, for `wanted` (resource name -> PCI addresses).

    Raises InvalidResource for a name or address the plugin would refuse, or an
    address under two names (two pools would hand out one device).
    """
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
    """The file's new text: `text` (None: no file) with exactly `entries` as ours.

    Returns `text` itself (or "" for no file and nothing to add) when nothing
    changes. Raises MalformedConfig or ResourceConflict.
    """
    if text is None:
        return _new_file(entries) if entries else ""
    document = _parse(text, path=path)
    for value in (span.value for span in document.elements):
        if not _is_ours(value):
            _check_conflicts(value, entries, path=path)
    if document.list_open is None:
        if not entries:
            return text
        new = _with_list_member(document, entries)
        _parse(new, path=path)  # never write what we could not read back
        return new
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
        items.append((index, text[span.start : span.end]) if same else (None, _dumps(want)))
    items += [(None, _dumps(entry)) for _, entry in sorted(remaining.items())]
    if [index for index, _ in items] == list(range(len(document.elements))):
        return text
    new = _with_items(document, items)
    _parse(new, path=path)  # never write what we could not read back
    return new


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    value: Any


@dataclass(frozen=True, kw_only=True)
class _Document:
    text: str
    object_open: int
    last_member_end: int | None  # None: the top-level object is empty
    list_open: int | None  # None: no resourceList member
    list_close: int
    elements: tuple[_Span, ...]


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


def _check_conflicts(value: Mapping[str, Any], entries: Mapping[str, Any], *, path: Path) -> None:
    name = value.get("resourceName")
    prefix = value.get("resourcePrefix") or None
    for resource, entry in entries.items():
        ours = entry.get("resourcePrefix")
        # An entry without a prefix gets the plugin's default, which we do not know.
        if name == entry["resourceName"] and (prefix is None or ours is None or prefix == ours):
            raise ResourceConflict(path, resource)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _parse(text: str, *, path: Path) -> _Document:
    """Where the top-level object, the resourceList array and each of its elements are."""
    try:
        top = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as err:
        where = f"line {err.lineno} column {err.colno}"
        raise MalformedConfig(path, f"not JSON: {where}: {err.msg}") from None
    except ValueError as err:
        raise MalformedConfig(path, f"not JSON: {err}") from None
    if not isinstance(top, dict):
        raise MalformedConfig(path, "not a JSON object")
    # Valid JSON from here on: walk the top-level object to find the spans.
    decoder = json.JSONDecoder()
    at = _skip(text, 0)
    object_open = at
    at = _skip(text, at + 1)
    last_member_end: int | None = None
    list_open: int | None = None
    list_close = -1
    elements: tuple[_Span, ...] = ()
    while text[at] != "}":
        key, at = decoder.raw_decode(text, at)
        at = _skip(text, _skip(text, at) + 1)  # past the colon
        if key == "resourceList":
            if list_open is not None:
                raise MalformedConfig(path, "resourceList appears twice")
            if text[at] != "[":
                raise MalformedConfig(path, "resourceList is not a list")
            list_open = at
            list_close, elements = _elements(text, at, decoder)
            at = list_close + 1
        else:
            _, at = decoder.raw_decode(text, at)
        last_member_end = at
        at = _skip(text, at)
        if text[at] == ",":
            at = _skip(text, at + 1)
    for index, span in enumerate(elements):
        if not isinstance(span.value, dict):
            raise MalformedConfig(path, f"resourceList[{index}] is not an object")
    return _Document(
        text=text,
        object_open=object_open,
        last_member_end=last_member_end,
        list_open=list_open,
        list_close=list_close,
        elements=elements,
    )


def _elements(text: str, open_at: int, decoder: json.JSONDecoder) -> tuple[int, tuple[_Span, ...]]:
    spans: list[_Span] = []
    at = _skip(text, open_at + 1)
    while text[at] != "]":
        value, end = decoder.raw_decode(text, at)
        spans.append(_Span(at, end, value))
        at = _skip(text, end)
        if text[at] == ",":
            at = _skip(text, at + 1)
    return at, tuple(spans)


def _skip(text: str, at: int) -> int:
    while at < len(text) and text[at] in _WHITESPACE:
        at += 1
    return at


def _dumps(entry: Mapping[str, Any]) -> str:
    return json.dumps(entry)  # one line: fits any indentation around it


def _indent_of_line(text: str, at: int) -> str:
    start = text.rfind("\n", 0, at) + 1
    end = start
    while end < at and text[end] in " \t":
        end += 1
    return text[start:end]


def _new_file(entries: Mapping[str, dict[str, Any]]) -> str:
    lines = ",\n    ".join(_dumps(entry) for _, entry in sorted(entries.items()))
    return '{\n  "resourceList": [\n    ' + lines + "\n  ]\n}\n"


def _with_list_member(document: _Document, entries: Mapping[str, dict[str, Any]]) -> str:
    text = document.text
    member = '"resourceList": [' + ", ".join(_dumps(e) for _, e in sorted(entries.items())) + "]"
    if document.last_member_end is None:
        at = document.object_open + 1
        return text[:at] + member + text[at:]
    at = document.last_member_end
    return text[:at] + ", " + member + text[at:]


def _with_items(document: _Document, items: list[tuple[int | None, str]]) -> str:
    """The text with the resourceList's elements replaced by `items`, keeping the
    old whitespace: before the first, after the last, and between neighbours
    that were neighbours before."""
    text, spans = document.text, document.elements
    assert document.list_open is not None
    head, tail = text[: document.list_open + 1], text[document.list_close :]
    if not items:
        return head + tail
    if spans:
        lead = text[document.list_open + 1 : spans[0].start]
        trail = text[spans[-1].end : document.list_close]
        separators = [text[a.end : b.start] for a, b in itertools.pairwise(spans)]
        default = separators[0] if separators else ("," + lead if "\n" in lead else ", ")
    else:
        indent = _indent_of_line(text, document.list_open)
        lead, trail = "\n" + indent + "  ", "\n" + indent
        separators, default = [], ",\n" + indent + "  "
    body = items[0][1]
    for (before, _), (index, item) in itertools.pairwise(items):
        if before is not None and index == before + 1:
            body += separators[before] + item
        else:
            body += default + item
    return head + lead + body + trail + tail


# --- the I/O shell -------------------------------------------------------------------------


class DevicePluginConfig:
    """The device plugin's config file at `path` (``/etc/pcidp/config.json``)."""

    def __init__(self, *, path: Path) -> None:
        self.path = path
        self.writes = 0  # files written; read by tests and metrics

    def sync(self, wanted: Mapping[str, frozenset[str]]) -> bool:
        """Make our entries exactly `wanted` (resource name -> PCI addresses of ours).

        Returns True when the file was written (the plugin must be restarted),
        False when it already said that. Raises DevicePluginConfigError.
        """
        entries = desired_entries(wanted)
        with self._locked_dir() as dir_fd:
            self._remove_stale_temps()
            for _ in range(_ATTEMPTS):
                old, seen = self._read()
                new = updated_config(old, entries, path=self.path)
                if new == (old if old is not None else ""):
                    return False
                if self._replace(new, dir_fd=dir_fd, expect=seen):
                    self.writes += 1
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

    def _temps(self) -> list[Path]:
        return list(self.path.parent.glob(f".{self.path.name}.*{_TEMP_SUFFIX}"))

    def _remove_stale_temps(self) -> None:
        # Under the lock no writer of ours is between mkstemp and rename: any
        # temp file is what a killed agent left.
        for stale in self._temps():
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
    if seen is None:
        return None
    return (seen.st_dev, seen.st_ino, seen.st_size, seen.st_mtime_ns)


def _identity(path: Path) -> tuple[int, int, int, int] | None:
    try:
        return _identity_of(path.stat())
    except FileNotFoundError:
        return None


async def restart_device_plugin(
    core_api: client.CoreV1Api, *, namespace: str, selector: str, node: str
) -> int:
    """Delete the device plugin's pod(s) on `node` so its DaemonSet starts one
    that reads the new config. Returns how many were deleted.

    Pods already terminating are left alone; a pod gone meanwhile (404) or
    replaced under the same name (409 on the uid precondition) is not counted.
    """
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
