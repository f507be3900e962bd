"""A long-lived command's main task, run until SIGTERM or SIGINT with its probes served.

SIGTERM/SIGINT cancel the task, so its `finally` blocks run (the controller
drains its queue, the agent closes its sockets); the endpoints are stopped
whatever happened, and a task that fails raises after that.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Coroutine
from typing import Any, Final

from eni_controller.health import HealthServer

SIGNALS: Final = (signal.SIGTERM, signal.SIGINT)


async def serve_until_signalled(main: Coroutine[Any, Any, None], *, health: HealthServer) -> None:
    """Serve ``health``, run ``main`` until it ends or a signal cancels it."""
    health.start()
    task = asyncio.create_task(main)
    loop = asyncio.get_running_loop()
    for signum in SIGNALS:
        loop.add_signal_handler(signum, task.cancel)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        for signum in SIGNALS:
            loop.remove_signal_handler(signum)
        health.stop()
