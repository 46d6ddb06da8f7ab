"""The configuration's health monitor, started and stopped with the ASGI lifespan.

Shared by :class:`~selectors_lib.gateway.SelectorsProxy` and
:class:`~selectors_lib.asgi.SelectorsMiddleware`: when the router's
configuration has a ``health:`` section, its monitor runs as a task on the
serving event loop from ``lifespan.startup`` to ``lifespan.shutdown``.
"""

from __future__ import annotations

import asyncio
import logging

from selectors_lib._background import cancel_task
from selectors_lib._router import Router

__all__ = ["HealthLifespan"]

_log = logging.getLogger("selectors_lib")


class HealthLifespan:
    """Runs the router's configured health monitor between startup and shutdown.

    Args:
        router: The router whose ``config.health`` is monitored.
        enabled: False never starts a monitor (you run your own).
    """

    def __init__(self, router: Router, *, enabled: bool = True) -> None:
        self.router = router
        self.enabled = enabled
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether a monitor task is running."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the monitor on the running loop, if the configuration has one.

        Raises:
            ImportError: A probe needs an extra that is not installed.
        """
        # Imported here: the health package is only needed when it is used.
        from selectors_lib.health import HealthMonitor, HealthSettings

        if not self.enabled or self.running:
            return
        if not isinstance(self.router.config.health, HealthSettings):
            return
        monitor = HealthMonitor.from_router(self.router)
        self._task = asyncio.get_running_loop().create_task(
            monitor.run(), name="selectors-lib-health"
        )
        _log.info("health monitor started (%d probes)", len(monitor.probes))

    async def stop(self) -> None:
        """Stop the monitor and wait for it to release its probes."""
        task, self._task = self._task, None
        await cancel_task(task)
