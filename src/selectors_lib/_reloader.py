"""Watching a configuration file and reloading the router when it changes.

Polling, not inotify: it works the same on every platform, inside containers
and on network file systems, and a config file is small enough to read every
second. A change is a new *fingerprint* (modification time in nanoseconds, size
and SHA-256 of the content), so an edit that keeps the size and lands within
the file system's timestamp granularity is still seen.

A change is applied only once the file has **settled**: unchanged, and not
modified, for ``settle`` seconds. A writer that truncates the file, writes half,
pauses, then writes the rest would otherwise have its half-written state
applied (a rule missing for as long as the pause). The safe way to replace a
configuration is still an atomic rename (write ``routes.yaml.tmp``, then
``mv`` it over ``routes.yaml``): a reader then only ever sees a whole file.

Every distinct state of the file gets exactly one reload attempt: a broken file
is reported once (log + failed :class:`~selectors_lib.ReloadEvent`), not every
poll, and the next edit is tried again. The router's own
:meth:`~selectors_lib.Router.reload` guarantees the old configuration keeps
serving when the new one fails.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import attrs

from ._errors import ConfigError
from ._router import Router
from ._source import MAX_SOURCE_BYTES, read_limited

if TYPE_CHECKING:
    import asyncio

__all__ = ["FileReloader", "Fingerprint"]

_log = logging.getLogger("selectors_lib.reload")


@attrs.frozen
class Fingerprint:
    """What identifies one state of a file.

    Args:
        mtime_ns: Modification time in nanoseconds.
        size: Size in bytes.
        digest: SHA-256 of the content, hex.
    """

    mtime_ns: int
    size: int
    digest: str


def fingerprint(path: str | os.PathLike[str]) -> Fingerprint | None:
    """Fingerprint the file at ``path``; None when it cannot be read.

    Only a regular file of at most ``MAX_SOURCE_BYTES`` is read (never a FIFO,
    which would block, nor ``/dev/zero``, which never ends); loading such a
    path fails with a clear error anyway.

    Args:
        path: The file.

    Returns:
        Its fingerprint, or None if it is missing, unreadable, not a regular
        file or too large.
    """
    try:
        stat = os.stat(path)
        content = read_limited(os.fspath(path), MAX_SOURCE_BYTES)
    except (OSError, ValueError):
        return None
    return Fingerprint(stat.st_mtime_ns, len(content), hashlib.sha256(content).hexdigest())


class _Unsettled:
    """The file is still changing."""


_UNSETTLED = _Unsettled()


class FileReloader:
    """Poll a configuration file and reload ``router`` whenever it changes.

    Use it as a thread (:meth:`start`/:meth:`stop` or ``with``), as an asyncio
    task (``async with`` or ``await reloader.run()``), or call :meth:`check`
    yourself (from a SIGHUP handler, say). The file as it is at construction is
    taken to be what the router already serves.

    Args:
        router: The router to reload.
        path: The configuration file (any format :func:`~selectors_lib.load_config` reads).
        interval: Seconds between polls.
        settle: Seconds a changed file must stay unchanged (and unmodified)
            before it is applied; 0 applies every change at once.
        logger: Where reload results are logged (``selectors_lib.reload`` by default).

    Raises:
        ValueError: ``interval`` is not positive, or ``settle`` is negative.
    """

    def __init__(
        self,
        router: Router,
        path: str | os.PathLike[str],
        *,
        interval: float = 1.0,
        settle: float = 0.5,
        logger: logging.Logger | None = None,
    ) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be positive, got {interval!r}")
        if not (settle >= 0 and math.isfinite(settle)):
            raise ValueError(f"settle must be 0 or more seconds, got {settle!r}")
        self.router = router
        self.path = Path(path)
        self.interval = interval
        self.settle = settle
        self.log = logger or _log
        #: The error of the last failed reload, None after a successful one.
        self.last_error: Exception | None = None
        #: Reload attempts made, and how many succeeded.
        self.attempts = 0
        self.successes = 0
        self._seen = fingerprint(self.path)
        # Serialises check(): a manual check and the polling thread must not
        # reload the same state twice or interleave their bookkeeping.
        self._lock = threading.Lock()
        self._stop = threading.Event()
        # Whether the current run of changes was reported as not settling (once).
        self._unsettled_warned = False
        # True while polling as a thread or a task: their stop ends a settle wait.
        self._watching = False
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None

    # -- one poll ----------------------------------------------------------------

    def check(self) -> bool:
        """Reload if the file changed since the last check, once it has settled.

        A file modified less than ``settle`` seconds ago is watched until it has
        stayed the same for ``settle`` seconds (this call waits that long, at
        most a few ``settle`` periods while a writer keeps writing; then it
        returns False and the next check tries again). A file that never stays
        unchanged that long is never applied; that is logged once, as a warning.

        Never raises for a bad file: the error is logged, kept in
        :attr:`last_error` and emitted by the router as a failed reload event.

        Returns:
            True when the file had changed and a reload was attempted.
        """
        with self._lock:
            current = self._settled()
            if isinstance(current, _Unsettled):
                if not self._unsettled_warned and not self._stop.is_set():
                    # Otherwise a file rewritten more often than `settle` is
                    # silently never applied.
                    self._unsettled_warned = True
                    self.log.warning(
                        "%s keeps changing: not applied until it stays unchanged for %gs "
                        "(replace configuration files by atomic rename)",
                        self.path,
                        self.settle,
                    )
                return False
            self._unsettled_warned = False  # settled: a later storm is reported again
            if current == self._seen:
                return False
            # Remember it before reloading: a broken state is tried once only.
            self._seen = current
            self.attempts += 1
            try:
                config = self.router.reload(self.path)
            except ConfigError as exc:
                self.last_error = exc
                self.log.error(
                    "reloading %s failed; the previous configuration keeps serving: %s",
                    self.path,
                    exc,
                )
                return True
            except Exception as exc:  # an ImportError, a bug: never kill the watcher
                self.last_error = exc
                self.log.exception(
                    "reloading %s failed; the previous configuration keeps serving", self.path
                )
                return True
            self.last_error = None
            self.successes += 1
            self.log.info(
                "reloaded %s (generation %d, %d rules)",
                self.path,
                self.router.generation,
                len(config.rules) + 1,
            )
            for warning in config.warnings:
                self.log.warning("%s: %s", self.path, warning)
            return True

    def _settled(self) -> Fingerprint | _Unsettled | None:
        """The file's fingerprint once it has not changed for ``settle`` seconds."""
        current = fingerprint(self.path)
        if self.settle == 0:
            return current
        deadline = time.monotonic() + 5 * self.settle
        while current != self._seen:
            if current is None:
                wait = self.settle  # gone or unreadable: maybe mid-replacement
            else:
                # A file last modified long enough ago has settled already.
                age = time.time() - current.mtime_ns / 1e9
                wait = min(self.settle, self.settle - age)
                if wait <= 0:
                    return current
            if time.monotonic() + wait > deadline or self._pause(wait):
                return _UNSETTLED
            again = fingerprint(self.path)
            if again == current:
                return current
            current = again
        return current

    def _pause(self, seconds: float) -> bool:
        """Sleep; True when the polling thread or task is being stopped meanwhile."""
        if self._watching:
            return self._stop.wait(seconds)
        time.sleep(seconds)
        return False

    # -- as a thread -------------------------------------------------------------

    def start(self) -> None:
        """Start polling in a daemon thread.

        Raises:
            RuntimeError: Already running.
        """
        if self._thread is not None or self._task is not None:
            raise RuntimeError("this FileReloader is already running")
        self._stop.clear()
        self._watching = True
        self._thread = threading.Thread(
            target=self._loop, name=f"selectors-reload:{self.path.name}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the polling thread and wait for it (a reload in progress finishes).

        Args:
            timeout: Seconds to wait at most (None: until it ends).
        """
        thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None:
            thread.join(timeout)
        if thread is None or not thread.is_alive():
            self._watching = False  # a manual check() may wait for a file to settle again

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.check()

    def __enter__(self) -> FileReloader:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- as an asyncio task ------------------------------------------------------

    async def run(self) -> None:
        """Poll until cancelled, without blocking the event loop.

        Each check (file read, parse, table build) runs in a worker thread, so
        requests on the loop keep being served during a reload. Cancelling the
        task ends a wait for the file to settle at once (nothing is applied
        afterwards); a reload already under way finishes first.
        """
        import asyncio  # here, not at import: threads-only users never load it

        self._stop.clear()
        self._watching = True
        try:
            while True:
                await asyncio.sleep(self.interval)
                pending = asyncio.ensure_future(asyncio.to_thread(self.check))
                try:
                    await asyncio.shield(pending)
                except asyncio.CancelledError:
                    # Stop a settle wait now (nothing is applied after the task
                    # ends); a reload already under way finishes first.
                    self._stop.set()
                    await asyncio.wait([pending])
                    raise
        finally:
            self._watching = False

    async def __aenter__(self) -> FileReloader:
        if self._thread is not None or self._task is not None:
            raise RuntimeError("this FileReloader is already running")
        import asyncio

        self._task = asyncio.create_task(self.run(), name=f"selectors-reload:{self.path.name}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        from ._background import cancel_task

        task, self._task = self._task, None
        await cancel_task(task)
