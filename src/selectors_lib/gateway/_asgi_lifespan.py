"""The ASGI lifespan protocol, run around :class:`~._http1.HttpServer` by serve.

Startup before the listener opens (a failure stops the worker before it
takes a request), shutdown after the last request: the proxy closes its
upstream connections then. An app that returns from the lifespan scope
without answering does not use the protocol (uvicorn's ``auto``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import MutableMapping
from typing import Any

from selectors_lib._errors import SelectorsError

from ._http1 import ASGIApp

__all__ = ["Lifespan", "LifespanError"]

Message = MutableMapping[str, Any]

_log = logging.getLogger("selectors_lib.serve")


class LifespanError(SelectorsError, RuntimeError):
    """The app reported (or raised) a failure of its lifespan startup."""


class Lifespan:
    """Run ``app``'s lifespan: :meth:`startup` before serving, :meth:`shutdown` after.

    Args:
        app: The ASGI app.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        #: The lifespan state, copied into each request's ``scope["state"]``.
        self.state: dict[str, Any] = {}
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._started: asyncio.Future[bool] | None = None
        self._stopped: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._running = False

    async def startup(self) -> None:
        """Send ``lifespan.startup`` and wait for the answer.

        Raises:
            LifespanError: The app answered ``lifespan.startup.failed`` or raised.
        """
        loop = asyncio.get_running_loop()
        self._started = loop.create_future()
        self._stopped = loop.create_future()
        self._task = loop.create_task(self._main())
        await self._inbox.put({"type": "lifespan.startup"})
        self._running = await self._started

    async def shutdown(self, timeout: float = 10.0) -> None:
        """Send ``lifespan.shutdown`` and wait (at most ``timeout`` seconds) for the app.

        Once only, and only after a started lifespan. A failure is logged, not
        raised: the caller still has listeners to close and logs to flush.
        """
        task, stopped = self._task, self._stopped
        if not self._running or task is None or stopped is None:
            return
        self._running = False
        if not task.done():
            await self._inbox.put({"type": "lifespan.shutdown"})
        # Done already: an app that failed while serving is reported here.
        try:
            await asyncio.wait_for(asyncio.shield(stopped), timeout)
        except TimeoutError:
            _log.error("lifespan shutdown did not finish within %gs: cancelled", timeout)
            task.cancel()
        except LifespanError as exc:
            _log.error("%s", exc)

    async def _main(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
        scope["state"] = self.state
        try:
            await self.app(scope, self._inbox.get, self._send)
        except Exception as exc:
            self._fail(LifespanError(f"lifespan failed: {exc!r}"))
        finally:
            # Returned without answering: the app has no lifespan to run.
            if self._started is not None and not self._started.done():
                self._started.set_result(False)
            if self._stopped is not None and not self._stopped.done():
                self._stopped.set_result(None)

    def _fail(self, exc: LifespanError) -> None:
        started, stopped = self._started, self._stopped
        future = started if started is not None and not started.done() else stopped
        if future is not None and not future.done():
            future.set_exception(exc)

    async def _send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "lifespan.startup.complete" and self._started is not None:
            self._started.set_result(True)
        elif kind == "lifespan.startup.failed":
            self._fail(LifespanError(f"lifespan startup failed: {message.get('message', '')}"))
        elif (
            kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed")
            and self._stopped is not None
            and not self._stopped.done()
        ):
            self._stopped.set_result(None)
