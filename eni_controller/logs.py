"""Logging set-up: every line on stderr in one format, ours and the libraries' alike.

Our lines go through structlog, the libraries' through ``logging``; both end in
the same renderer (structlog's ``ProcessorFormatter``), so a log pipeline parses
one format and a library's line names its ``logger``. The format is the
``--log-format`` flag, else ``LOG_FORMAT``, else JSON: never guessed from
whether stderr is a terminal.

Library loggers never log below INFO, even at ``LOG_LEVEL=debug``: botocore's
and aiohttp's debug output holds request headers and bodies (signatures, tokens).
"""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

import structlog

LIBRARY_FLOOR = logging.INFO
_HANDLER_NAME = "eni-controller"


def choose_format(*, flag: str | None, setting: Literal["json", "console"]) -> bool:
    """True for the console renderer: the flag if given, else the setting."""
    return (flag or setting) == "console"


def configure(*, level: str, console: bool, stream: TextIO | None = None) -> None:
    """Log at `level` to `stream` (stderr), rendered for a console or as JSON lines."""
    stream = sys.stderr if stream is None else stream
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer() if console else structlog.processors.JSONRenderer()
    )
    numeric_level = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)  # configured again (tests): one handler, the latest
    root.addHandler(handler)
    root.setLevel(max(numeric_level, LIBRARY_FLOOR))
    logging.captureWarnings(True)  # warnings.warn from a library: a log line too
