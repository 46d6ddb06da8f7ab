"""One worker of ``selectors-lib serve``: proxy, admin, health and reloads on one event loop.

* the data-plane proxy (:func:`make_proxy`, the one place that names it) on
  serve's own HTTP/1.1 server (:mod:`._http1`), wrapped by the access log;
* the admin endpoints (:mod:`._admin`) on a port of their own;
* the health monitor and replica-lag probes of the ``health:`` section, as an
  asyncio task, replaced when a reload changes that section;
* reloads: the file is polled (:class:`~selectors_lib.FileReloader`) and
  re-read on ``SIGHUP``; a broken file is logged and the last good
  configuration keeps serving;
* graceful shutdown on ``SIGTERM``/``SIGINT``: readiness turns 503, after
  ``--drain-delay`` the listener closes, requests in flight get
  ``--drain-timeout`` seconds to finish, the rest are cancelled. A second
  signal stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import logging
import os
import signal
import socket
import sys
import time
from typing import Any

from selectors_lib._headers import HeaderMapping
from selectors_lib._pool import EndpointHealth
from selectors_lib._reloader import FileReloader, fingerprint
from selectors_lib._router import Router

from ._accesslog import AccessLog, ASGIApp, LineSink, RequestMetrics
from ._admin import AdminApp
from ._asgi_lifespan import Lifespan, LifespanError
from ._http1 import HttpServer
from ._options import WORKER_ENV, ServeOptions

__all__ = ["Worker", "make_proxy"]

_log = logging.getLogger("selectors_lib.serve")

#: Seconds access-log lines may wait in memory before they are written.
_FLUSH_EVERY = 0.2


def make_proxy(router: Router, mapping: HeaderMapping, timeout: float | None) -> ASGIApp:
    """The data-plane proxy for ``router``: the one place serve names it.

    ``selectors_lib.gateway.SelectorsProxy`` when the gateway package has it,
    else the older ``selectors_lib.asgi.SelectorsProxy``. Serve runs the
    health monitor itself (and replaces it when a reload changes the
    ``health:`` section), so a proxy that could start one with the lifespan is
    told not to (``health=False``): exactly one monitor runs.

    Args:
        router: The router to serve.
        mapping: How request headers become criteria.
        timeout: Seconds to wait for an upstream on each read and write
            (``None``: the proxy's default, or the configuration's).

    Returns:
        The ASGI app.
    """
    # Looked up by name, not imported: the same line serves before and after
    # the data plane moved into this package.
    proxy_class: Any = getattr(
        importlib.import_module("selectors_lib.gateway"), "SelectorsProxy", None
    )
    if proxy_class is None:
        proxy_class = importlib.import_module("selectors_lib.asgi").SelectorsProxy
    kwargs: dict[str, Any] = {"mapping": mapping}
    if timeout is not None:
        kwargs["timeout"] = timeout
    if "health" in inspect.signature(proxy_class).parameters:
        kwargs["health"] = False
    app: ASGIApp = proxy_class(router, **kwargs)
    return app


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class Worker:
    """One gateway worker: proxy, admin, health and reloads on one event loop.

    Args:
        options: The command line.
        router: The router, loaded from ``options.file``.
    """

    def __init__(self, options: ServeOptions, router: Router) -> None:
        from prometheus_client import CollectorRegistry

        from selectors_lib.prometheus import instrument

        self.options = options
        self.router = router
        self.registry = CollectorRegistry()
        self.observer = instrument(router, registry=self.registry)
        self.reloader = FileReloader(router, options.file)
        # The file served from: the configuration file, or the supervisor's
        # last good copy of it when a restarted worker found it broken.
        seen = fingerprint(router.config.source or options.file)
        self.digest: str | None = seen.digest if seen is not None else None
        self.serving = False
        self.draining = False
        self.started_at = time.time()
        self.monitor: Any = None
        self._monitor_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._monitor_lock = asyncio.Lock()
        self._servers: list[HttpServer] = []
        self._stop = asyncio.Event()
        self._forced = False
        self.access = LineSink(sys.stdout.fileno())
        self.request_metrics = RequestMetrics(self.registry)
        self.access_log: AccessLog | None = None

    # -- what the admin endpoints report -------------------------------------------

    @property
    def ready(self) -> bool:
        """True while the worker accepts and routes requests."""
        return self.serving and not self.draining

    def status(self) -> dict[str, Any]:
        """A JSON-ready description of the worker (the body of ``/readyz``)."""
        error = self.reloader.last_error
        monitor = self.monitor
        return {
            "ready": self.ready,
            "draining": self.draining,
            "pid": os.getpid(),
            "config": {
                "file": str(self.options.file),
                "sha256": self.digest,
                "generation": self.router.generation,
                "last_reload_error": str(error) if error is not None else None,
            },
            "health": {
                "monitor": "on" if monitor is not None else "off",
                "rounds": monitor.status.rounds if monitor is not None else 0,
                "down": sorted(eid for eid, h in self.router.health.items() if not h.healthy),
            },
        }

    # -- reloads and health --------------------------------------------------------

    async def reload(self, why: str) -> None:
        """Re-read the configuration file if it changed; keep the last good one if broken."""
        changed = await asyncio.to_thread(self.reloader.check)
        if not changed:
            if why == "SIGHUP":
                _log.info("SIGHUP: %s unchanged, nothing to reload", self.options.file)
            return
        if self.reloader.last_error is None:
            seen = fingerprint(self.options.file)
            self.digest = seen.digest if seen is not None else None
            _log.info("%s: now serving generation %d", why, self.router.generation)
            try:
                await self.sync_monitor()
            except Exception:
                _log.exception("the new health section could not start; no health monitor runs")

    async def sync_monitor(self) -> None:
        """Run exactly one monitor for the ``health:`` section now serving (none without one).

        Raises:
            ImportError: A probe needs an extra that is not installed.
        """
        # A SIGHUP and a poll may both have reloaded: one replacement at a time.
        async with self._monitor_lock:
            await self._sync_monitor()

    async def _sync_monitor(self) -> None:
        from selectors_lib.health import HealthMonitor, HealthSettings

        settings = self.router.config.health
        if not isinstance(settings, HealthSettings):
            settings = None
        old = self.monitor
        if old is not None and settings == old.settings:
            return
        if old is not None:
            task, self._monitor_task = self._monitor_task, None
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self.monitor = None
            # A new monitor would take the old one's ejections for an operator's
            # (pinned for ever): readmit them, to be probed afresh.
            now = time.time()
            readmit = {
                eid: EndpointHealth(True, None, "health settings changed; probing afresh", now)
                for eid, state in old.status.endpoints
                if state.ejected and not state.pinned
            }
            if readmit:
                self.router.set_health(readmit)
        if settings is not None:
            self.monitor = HealthMonitor(self.router, settings)
            self._monitor_task = asyncio.create_task(self.monitor.run(), name="serve-health")
            _log.info("health monitor on: %d probe(s)", len(self.monitor.probes))

    def flush(self) -> None:
        """Write the access-log lines and count the requests gathered so far."""
        if self.access_log is not None:
            self.access_log.flush()
        self.access.flush()
        self.request_metrics.flush()
        self.observer.fold()

    async def _flush_access_log(self) -> None:
        while True:
            await asyncio.sleep(_FLUSH_EVERY)
            self.flush()

    async def _poll(self) -> None:
        interval = self.options.reload_interval
        supervised = bool(os.environ.get(WORKER_ENV))
        parent = os.getppid()
        # A worker checks on its supervisor every second, whatever the interval.
        tick = min(interval, 1.0) if interval > 0 else 1.0
        loop = asyncio.get_running_loop()
        next_reload = loop.time() + interval
        while True:
            await asyncio.sleep(tick)
            if supervised and os.getppid() != parent:
                _log.warning("the supervisor is gone: shutting down")
                self.shutdown()
                return
            if interval > 0 and loop.time() >= next_reload:
                next_reload = loop.time() + interval
                await self.reload("file changed")

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- shutdown ------------------------------------------------------------------

    def shutdown(self) -> None:
        """Turn unready, then drain; called a second time, stop at once."""
        if self.draining:
            _log.warning("second stop signal: cancelling requests in flight")
            self._forced = True
            for server in self._servers:
                server.force()
            self._stop.set()
            return
        self.draining = True
        delay = self.options.drain_delay
        if delay > 0:
            # Load balancers polling /readyz stop sending before the listener closes.
            _log.info("not ready; still accepting for %gs, then draining", delay)
            asyncio.get_running_loop().call_later(delay, self._drain)
        else:
            self._drain()

    def _drain(self) -> None:
        _log.info("draining: up to %gs for requests in flight", self.options.drain_timeout)
        self._stop.set()

    # -- running -------------------------------------------------------------------

    def app(self) -> ASGIApp:
        """The data plane: the proxy for the router, wrapped by the access log."""
        mapping = HeaderMapping(trust_user_header=self.options.trust_user_header)
        proxy = make_proxy(self.router, mapping, self.options.upstream_timeout)
        self.access_log = AccessLog(
            proxy,
            self.access.write,
            fmt=self.options.access_log,
            metrics=self.request_metrics,
        )
        return self.access_log

    async def serve(self, listen: socket.socket, admin: socket.socket | None) -> int:
        """Serve until a stop signal; return the exit code."""
        loop = asyncio.get_running_loop()
        app = self.app()
        lifespan = Lifespan(app)
        try:
            await lifespan.startup()
        except LifespanError as exc:
            _log.error("%s", exc)
            return 1
        main = HttpServer(app, lifespan.state)
        self._servers.append(main)
        admin_server = HttpServer(AdminApp(self, self.registry)) if admin is not None else None
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.shutdown)
        loop.add_signal_handler(signal.SIGHUP, lambda: self._spawn(self.reload("SIGHUP")))
        poll = asyncio.create_task(self._poll())
        flusher = asyncio.create_task(self._flush_access_log())
        try:
            await self.sync_monitor()
            if admin_server is not None:
                await admin_server.start(admin)
            await main.start(listen)
            self.serving = True
            where = f" (admin {_url(admin)})" if admin is not None else ""
            _log.info(
                "selectors-lib serve: listening on %s%s, config %s generation %d",
                _url(listen),
                where,
                self.options.file,
                self.router.generation,
            )
            await self._stop.wait()
            main.close()
            _log.info("listener closed; %d connection(s) still open", len(main.connections))
            clean = await main.drain(0.0 if self._forced else self.options.drain_timeout)
            if not clean:
                _log.warning("requests still in flight at the drain deadline were cancelled")
        finally:
            self.serving = False
            for task in [poll, flusher, *self._tasks]:
                task.cancel()
            if self._monitor_task is not None:
                self._monitor_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._monitor_task
            await lifespan.shutdown()
            if admin_server is not None:
                admin_server.close()
                await admin_server.drain(1.0)
            self.flush()
        _log.info("stopped")
        return 0
