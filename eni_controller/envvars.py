"""Settings read from environment variables: the value parsers and the table.

The controller (config.py) and the node agent (agent/settings.py) read a
variable alike: Go syntax for durations (``30s``, ``5m``, ``1h30m``) and Go's
``strconv.ParseBool`` spellings for booleans, as the Go controller's manifests
use them.

Invariants: a bad value is never replaced by a default; every bad variable is
reported at once (ConfigError lists them all). A setting's default is the
settings dataclass's field default, never written in the table, so the value
the code uses and the value ``--help`` shows cannot differ.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from operator import attrgetter
from typing import Any, Literal, TypeVar, cast, get_args
from urllib.parse import urlsplit

S = TypeVar("S")
LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["json", "console"]

MAX_COUNT = 1000  # for every integer setting: anything larger is a typo, not a tuning choice

_NANOSECONDS_PER_UNIT = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 micro sign
    "μs": 1_000,  # U+03BC greek small letter mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}
# "ms" must come before "m" and "s" so that "5ms" is not read as 5 minutes.
_DURATION_PART = r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)"
_DURATION_RE = re.compile(rf"[-+]?(?:{_DURATION_PART})+")
_DURATION_PART_RE = re.compile(_DURATION_PART)

_INT_RE = re.compile(r"[-+]?[0-9]+")
_BOOLS = {
    **dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
    **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False),
}
_LOG_LEVELS: tuple[str, ...] = get_args(LogLevel)


def parse_duration(text: str) -> float:
    """Seconds of a Go ``time.ParseDuration`` string such as ``"1h30m"``: exactly Go's
    grammar, sub-nanosecond fractions truncated, beyond int64 nanoseconds refused."""
    if text in ("0", "+0", "-0"):
        return 0.0
    if not _DURATION_RE.fullmatch(text):
        raise ValueError(f"invalid duration {text!r}")
    negative = text.startswith("-")
    nanoseconds = sum(
        int(Fraction(number) * _NANOSECONDS_PER_UNIT[unit])
        for number, unit in _DURATION_PART_RE.findall(text)
    )
    if nanoseconds > 2**63 - (0 if negative else 1):
        raise ValueError(f"duration {text!r} out of range")
    return (-nanoseconds if negative else nanoseconds) / 1_000_000_000


def positive_duration(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError:
        raise ValueError("not a duration (use Go syntax such as 30s, 5m, 1h30m)") from None
    if seconds <= 0:
        raise ValueError("must be a duration greater than zero")
    return seconds


def count(text: str, *, maximum: int = MAX_COUNT) -> int:
    expected = f"a whole number from 1 to {maximum}"
    if not _INT_RE.fullmatch(text):
        raise ValueError(f"not an integer (expected {expected})")
    if not 1 <= int(text) <= maximum:
        raise ValueError(f"out of range (expected {expected})")
    return int(text)


def positive_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("not a number (expected requests per second, such as 5 or 2.5)") from None
    if not 0 < value <= MAX_COUNT:
        raise ValueError(f"out of range (expected more than 0 and at most {MAX_COUNT})")
    return value


def bind_address(text: str) -> str:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise ValueError("not an IP address (such as 0.0.0.0 or 127.0.0.1)") from None
    return text


def port(text: str) -> int:
    if not _INT_RE.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise ValueError("not a TCP port (expected a whole number from 1 to 65535)")
    return int(text)


def boolean(text: str) -> bool:
    if text not in _BOOLS:
        raise ValueError("not a boolean (use true or false)")
    return _BOOLS[text]


def pattern(regex: re.Pattern[str], expected: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if not regex.fullmatch(text):
            raise ValueError(expected)
        return text

    return parse


namespace = pattern(
    re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"), "not a Kubernetes namespace name"
)


def endpoint_url(text: str) -> str:
    expected = "not an http(s) URL with a host (such as http://127.0.0.1:5000)"
    try:
        parts = urlsplit(text)
        _ = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError:
        raise ValueError(expected) from None
    if parts.scheme not in ("http", "https") or not parts.hostname or re.search(r"\s", text):
        raise ValueError(expected)
    return text


def log_level_of(text: str) -> LogLevel:
    if text.lower() not in _LOG_LEVELS:
        raise ValueError(f"not a log level (use one of {', '.join(_LOG_LEVELS)})")
    return cast(LogLevel, text.lower())


def log_format_of(text: str) -> LogFormat:
    if text not in get_args(LogFormat):
        raise ValueError("not a log format (use json or console)")
    return cast(LogFormat, text)


class ConfigError(ValueError):
    """One or more environment variables are invalid; ``problems`` has one line per variable."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in self.problems))

    def one_line(self) -> str:
        """The problems on one line, for a start-up error on stderr."""
        return "invalid configuration: " + "; ".join(self.problems)


def format_duration(seconds: float) -> str:
    """``seconds`` in the Go syntax parse_duration reads (``300.0`` -> ``"5m"``)."""
    whole_hours, rest = divmod(seconds, 3600)
    whole_minutes, rest = divmod(rest, 60)
    parts = [
        f"{int(whole_hours)}h" if whole_hours else "",
        f"{int(whole_minutes)}m" if whole_minutes else "",
    ]
    if rest or not any(parts):
        parts.append(f"{rest:g}s" if rest >= 1 or not rest else f"{rest * 1000:g}ms")
    return "".join(parts)


def _show(value: object) -> str:
    """A default as it would be written in the environment."""
    if value is None or value == ():
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple) and all(isinstance(v, tuple) for v in value):
        return ",".join(f"{k}={v}" for k, v in value)
    if isinstance(value, tuple):
        return "=".join(str(v) for v in value)
    return str(value)


def _show_duration(value: object) -> str:
    return format_duration(value) if isinstance(value, float) else _show(value)


@dataclass(frozen=True, slots=True)
class Setting:
    """One environment variable: the field it sets (``path``, dotted for a nested
    dataclass), how it is read, what it means. ``default_text`` describes a
    default that is not a value (a fallback chain, "required")."""

    env: str
    path: str
    parse: Callable[[str], object]
    help: str
    show: Callable[[object], str] = _show
    default_text: str | None = None

    def default(self, defaults: object) -> str:
        if self.default_text is not None:
            return self.default_text
        return self.show(attrgetter(self.path)(defaults))


def duration(env: str, path: str, help: str) -> Setting:
    return Setting(env, path, positive_duration, help, show=_show_duration)


def _replace_path(obj: Any, path: str, value: object) -> Any:
    head, _, rest = path.partition(".")
    if rest:
        value = _replace_path(getattr(obj, head), rest, value)
    return dataclasses.replace(obj, **{head: value})


def read_settings(
    table: Sequence[Setting], defaults: S, env: Mapping[str, str]
) -> tuple[S, list[str]]:
    """``defaults`` with every variable of ``table`` set in ``env`` applied, and
    the problems found (one per bad variable; all of them, not just the first)."""
    result, problems = defaults, []
    for setting in table:
        raw = env.get(setting.env, "").strip()  # empty means unset
        if not raw:
            continue
        try:
            value = setting.parse(raw)
        except ValueError as exc:
            # json.dumps quotes like Go's %q, escaping newlines and quotes in the value.
            problems.append(f"{setting.env}={json.dumps(raw, ensure_ascii=False)}: {exc}")
        else:
            result = _replace_path(result, setting.path, value)
    return result, problems


def render_settings(table: Sequence[Setting], defaults: object) -> str:
    """The table as ``--help`` prints it: name, default, one line of description."""
    rows = [(s.env, s.default(defaults), s.help) for s in table]
    name_width = max(len(name) for name, _, _ in rows)
    default_width = min(max(len(default) for _, default, _ in rows), 24)
    return "\n".join(
        f"  {name:<{name_width}}  {default:<{default_width}}  {help}"
        for name, default, help in rows
    )


# shared with the agent's table (agent/settings.py): same variable, same field
KUBE_REQUEST_TIMEOUT = duration(
    "KUBE_REQUEST_TIMEOUT",
    "kube_request_timeout_seconds",
    "limit of every Kubernetes request but watches",
)
LOG_SETTINGS = (
    Setting("LOG_LEVEL", "log_level", log_level_of, "debug, info, warning, error"),
    Setting(
        "LOG_FORMAT", "log_format", log_format_of, "json or console; --log-format overrides it"
    ),
)
