"""Settings read from environment variables: the value parsers and the table.

Both programs, the controller (config.py) and the node agent
(agent/settings.py), are configured the same way, so a variable reads the same
in either: Go syntax for durations (``30s``, ``5m``, ``1h30m``) and Go's
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
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")
LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["json", "console"]

MAX_COUNT = 1000
"""Upper bound for every integer setting: anything larger is a typo, not a tuning choice."""

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
_LOG_LEVELS: dict[str, LogLevel] = {
    "debug": "debug",
    "info": "info",
    "warning": "warning",
    "error": "error",
}


def parse_duration(text: str) -> float:
    """Parse a Go ``time.ParseDuration`` string such as ``"1h30m"`` into seconds.

    Accepts exactly Go's grammar: an optional sign, then one or more
    ``<number><unit>`` parts (the number may have a fraction; units are ns, us,
    µs, μs, ms, s, m, h), or a bare ``"0"``. Like Go, fractions below a
    nanosecond are truncated and values beyond int64 nanoseconds are rejected.
    Raises ValueError for anything else.
    """
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
    level = _LOG_LEVELS.get(text.lower())
    if level is None:
        raise ValueError(f"not a log level (use one of {', '.join(_LOG_LEVELS)})")
    return level


def log_format_of(text: str) -> LogFormat:
    if text == "json":
        return "json"
    if text == "console":
        return "console"
    raise ValueError("not a log format (use json or console)")


class ConfigError(ValueError):
    """One or more environment variables are invalid; ``problems`` has one line per variable."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in self.problems))

    def one_line(self) -> str:
        """The problems on one line, for a start-up error on stderr."""
        return "invalid configuration: " + "; ".join(self.problems)


class _EnvReader:
    """Reads variables one at a time, recording every bad value instead of stopping."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self.problems: list[str] = []

    def optional(self, name: str, parse: Callable[[str], T]) -> T | None:
        """Parse ``name`` if set; surrounding whitespace is ignored and empty means unset."""
        raw = self._env.get(name, "").strip()
        if not raw:
            return None
        try:
            return parse(raw)
        except ValueError as exc:
            # json.dumps quotes like Go's %q, escaping newlines and quotes in the value.
            self.problems.append(f"{name}={json.dumps(raw, ensure_ascii=False)}: {exc}")
            return None

    def get(self, name: str, parse: Callable[[str], T], default: T) -> T:
        value = self.optional(name, parse)
        return default if value is None else value


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


@dataclass(frozen=True, kw_only=True, slots=True)
class Setting:
    """One environment variable: where its value goes, how it is read, what it means.

    The default is never written here: it is the settings class's field default
    (``path`` names the field, dotted for a nested dataclass), so the value the
    code uses and the value ``--help`` shows cannot differ. ``default_text``
    describes a default that is not a value (a fallback chain, "required").
    """

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
    return Setting(env=env, path=path, parse=positive_duration, help=help, show=_show_duration)


def _replace_path(obj: Any, path: str, value: object) -> Any:
    head, _, rest = path.partition(".")
    if rest:
        value = _replace_path(getattr(obj, head), rest, value)
    return dataclasses.replace(obj, **{head: value})


S = TypeVar("S")


def read_settings(
    table: Sequence[Setting], defaults: S, env: Mapping[str, str]
) -> tuple[S, list[str]]:
    """``defaults`` with every variable of ``table`` set in ``env`` applied, and
    the problems found (one per bad variable; all of them, not just the first)."""
    r = _EnvReader(env)
    result = defaults
    for setting in table:
        value = r.optional(setting.env, setting.parse)
        if value is not None:
            result = _replace_path(result, setting.path, value)
    return result, r.problems


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
    Setting(
        env="LOG_LEVEL", path="log_level", parse=log_level_of, help="debug, info, warning, error"
    ),
    Setting(
        env="LOG_FORMAT",
        path="log_format",
        parse=log_format_of,
        help="json or console; --log-format overrides it",
    ),
)
