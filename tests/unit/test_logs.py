"""Library log lines (botocore, asyncio, any stdlib logger) come out in our format."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from eni_controller import logs


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Each test configures logging into its own stream; undo it afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def _lines(stream: io.StringIO) -> list[str]:
    return [line for line in stream.getvalue().splitlines() if line.strip()]


def test_stdlib_and_structlog_lines_are_both_json() -> None:
    stream = io.StringIO()
    logs.configure(level="info", console=False, stream=stream)
    structlog.get_logger("eni_controller").info("ours", eni_id="eni-1")
    logging.getLogger("botocore.credentials").info("Found credentials in %s", "environment")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("asyncio").exception("Task exception was never retrieved")
    ours, botocore, asyncio_line = (json.loads(line) for line in _lines(stream))
    assert ours["event"] == "ours"
    assert ours["eni_id"] == "eni-1"
    assert ours["level"] == "info"
    assert botocore["event"] == "Found credentials in environment"
    assert botocore["logger"] == "botocore.credentials"
    assert botocore["level"] == "info"
    assert set(ours) - {"eni_id"} <= set(botocore)  # same fields: level, timestamp, event
    assert asyncio_line["level"] == "error"
    assert "ValueError: boom" in asyncio_line["exception"]


def test_library_debug_lines_stay_out_even_at_debug() -> None:
    stream = io.StringIO()
    logs.configure(level="debug", console=False, stream=stream)
    logging.getLogger("botocore.endpoint").debug("Sending http request: headers=...")
    structlog.get_logger("eni_controller").debug("ours at debug")
    (line,) = _lines(stream)
    assert json.loads(line)["event"] == "ours at debug"


def test_configured_twice_logs_once_in_the_new_format() -> None:
    first, second = io.StringIO(), io.StringIO()
    logs.configure(level="info", console=False, stream=first)
    logs.configure(level="info", console=True, stream=second)
    logging.getLogger("aiohttp.access").warning("slow")
    assert first.getvalue() == ""
    (line,) = _lines(second)
    assert "slow" in line
    assert not line.startswith("{")


def test_one_rule_for_the_format() -> None:
    assert logs.choose_format(flag=None, setting="json") is False
    assert logs.choose_format(flag=None, setting="console") is True
    assert logs.choose_format(flag="json", setting="console") is False
    assert logs.choose_format(flag="console", setting="json") is True
