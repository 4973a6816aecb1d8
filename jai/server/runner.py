"""Run the app under uvicorn with a shutdown deadline.

The first SIGTERM or Ctrl-C stops accepting connections, marks the server draining (/health says so,
a request on a kept-alive connection gets 503) and lets in-flight requests finish, for at most
`shutdown_timeout` seconds; then uvicorn cancels what is left (each cancelled request cancels its
generation) and the engine is closed. A second signal exits at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from types import FrameType
from typing import Any

import uvicorn

log = logging.getLogger("uvicorn.error")
DRAIN_MARGIN = 0.5  # seconds before uvicorn's deadline at which unfinished generations are ended


class Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app_state: Any) -> None:
        super().__init__(config)
        self.serving = app_state.serving  # {"draining": bool}
        self.drain = getattr(app_state, "drain", None)
        self.loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: Any = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit:
            log.warning("second signal (%s): exiting now", signal.Signals(sig).name)
            os._exit(128 + sig)  # the worker thread may be mid-step; nothing is left worth waiting for
        self.serving["draining"] = True
        if self.drain is not None and self.loop is not None:
            # Our own deadline ends streams cleanly a moment before uvicorn's cancels their tasks.
            timeout = max(0.0, (self.config.timeout_graceful_shutdown or 0) - DRAIN_MARGIN)
            self.loop.call_soon_threadsafe(lambda: self.loop.create_task(self.drain(timeout)))
        log.info(
            "shutting down: in-flight requests have %s s to finish (a second signal exits at once)",
            self.config.timeout_graceful_shutdown,
        )
        super().handle_exit(sig, frame)


def serve(app: Any, host: str, port: int, shutdown_timeout: float, log_level: str = "info") -> None:
    config = uvicorn.Config(
        app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=shutdown_timeout
    )
    Server(config, app.state).run()
