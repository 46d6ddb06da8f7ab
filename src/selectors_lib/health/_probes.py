"""The probe interface, and the HTTP health probe.

A probe observes a *group* of endpoints (a Redis master's replicas, a set of
HTTP backends) and answers one :class:`ProbeResult` per round, with an
:class:`~selectors_lib.health.Observation` per endpoint. Each probe has a
blocking ``check(timeout)`` for the threaded monitor and an ``acheck(timeout)``
coroutine for the asyncio one. ``timeout`` bounds each endpoint's check; a probe
must not let an exception escape for a failure of what it probes (it reports a
bad observation instead), and blocking work belongs on the probe's own bounded
threads, never on the event loop's default executor (which the application
shares: DNS lookups of every asyncio client go through it).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import http.client
import io
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

import attrs

from ._settings import HttpProbeSettings
from ._state import Observation

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["HttpProbe", "Probe", "ProbeResult"]


@attrs.frozen
class ProbeResult:
    """One round of one probe.

    Args:
        observations: ``(endpoint id, observation)`` per endpoint of the group.
        master_ok: For probes with a master: whether it could be read (None otherwise).
        detail: Free text about the round as a whole (the master's error...).
    """

    observations: tuple[tuple[str, Observation], ...]
    master_ok: bool | None = None
    detail: str = ""


@runtime_checkable
class Probe(Protocol):
    """What the monitor needs of a probe."""

    @property
    def name(self) -> str:
        """Unique name of the probe (its group)."""
        ...

    @property
    def endpoint_ids(self) -> tuple[str, ...]:
        """The endpoints it observes."""
        ...

    @property
    def measures_lag(self) -> bool:
        """Whether its observations carry replication lag (the monitor emits LagEvents)."""
        ...

    def check(self, timeout: float) -> ProbeResult:
        """Observe every endpoint once, blocking; each endpoint within about ``timeout``."""
        ...

    async def acheck(self, timeout: float) -> ProbeResult:
        """Observe every endpoint once without blocking the event loop."""
        ...

    def close(self) -> None:
        """Release connections and threads."""
        ...

    async def aclose(self) -> None:
        """Release asyncio connections."""
        ...


def failed(probe: Probe, detail: str) -> ProbeResult:
    """A result in which every endpoint of ``probe`` is a bad ``probe`` observation."""
    obs = Observation(False, "probe", detail)
    return ProbeResult(tuple((endpoint_id, obs) for endpoint_id in probe.endpoint_ids))


def describe(exc: BaseException) -> str:
    """A short, single-line description of an error for operators."""
    text = str(exc).replace("\n", " ").strip()
    name = type(exc).__name__
    return f"{name}: {text[:200]}" if text else name


#: How long a check waits for the endpoints, in timeouts. Each request enforces
#: its own deadline of one ``timeout``; the extra is slack for thread start-up
#: and for what no socket timeout bounds (the system's name resolution).
WAIT_FACTOR = 2


class HttpProbe:
    """GET ``<endpoint url><path>`` on each endpoint; good when the status is expected.

    Uses the standard library (no extra needed). Redirects are not followed: a
    redirect is a status like any other, healthy only if listed. No proxy from
    the environment is used: a health check must reach the endpoint itself.

    Each request has a total deadline of ``timeout`` (connect, send, status
    line, headers, first bytes of the body), not a per-read timeout, so a
    backend that drips its answer a byte at a time fails like one that does
    not answer. Requests run on the probe's own threads, one per endpoint at
    most: an endpoint whose previous request is still running (stuck in name
    resolution, which no socket timeout bounds) is reported bad without a new
    request, and its peers are judged on their own answers.

    Args:
        settings: The probe's validated settings.
    """

    measures_lag = False

    def __init__(self, settings: HttpProbeSettings) -> None:
        self.settings = settings
        self._urls = tuple(
            (endpoint_id, settings.url(base)) for endpoint_id, base in settings.endpoints
        )
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        # The latest request per endpoint: never a second one while it runs.
        self._running: dict[str, Future[Observation]] = {}

    @property
    def name(self) -> str:
        """The probe's name."""
        return self.settings.name

    @property
    def endpoint_ids(self) -> tuple[str, ...]:
        """The endpoints it observes."""
        return self.settings.endpoint_ids

    def check(self, timeout: float) -> ProbeResult:
        """Probe every endpoint concurrently, blocking ``WAIT_FACTOR * timeout`` at most.

        Args:
            timeout: Total time each request may take.

        Returns:
            One observation per endpoint; an endpoint that has not answered in
            time is bad, the others are judged on their answers.
        """
        submitted = self._submit(timeout)
        pending = [future for _, future in submitted if future is not None]
        if pending:
            concurrent.futures.wait(pending, timeout=timeout * WAIT_FACTOR)
        return self._result(submitted, timeout)

    async def acheck(self, timeout: float) -> ProbeResult:
        """Like :meth:`check`, awaiting the probe's own threads (never the loop's executor).

        Args:
            timeout: Total time each request may take.

        Returns:
            One observation per endpoint.
        """
        submitted = self._submit(timeout)
        pending = [future for _, future in submitted if future is not None]
        await _wait_threads(pending, timeout * WAIT_FACTOR)
        return self._result(submitted, timeout)

    def close(self) -> None:
        """Stop the worker threads (requests in flight end at their deadline)."""
        with self._lock:
            executor, self._executor = self._executor, None
            self._running.clear()
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    async def aclose(self) -> None:
        """Stop the worker threads: asyncio checks use the same ones."""
        self.close()

    def _submit(self, timeout: float) -> list[tuple[str, Future[Observation] | None]]:
        """Start a request per endpoint, except where the previous one still runs."""
        submitted: list[tuple[str, Future[Observation] | None]] = []
        with self._lock:
            if self._executor is None:
                # One thread per endpoint at most, and at most one request per endpoint
                # in flight: requests never queue behind each other.
                self._executor = ThreadPoolExecutor(
                    max_workers=max(1, len(self._urls)), thread_name_prefix=f"probe-{self.name}"
                )
            for endpoint_id, url in self._urls:
                running = self._running.get(endpoint_id)
                if running is not None and not running.done():
                    submitted.append((endpoint_id, None))
                    continue
                future = self._executor.submit(self._get, url, timeout)
                self._running[endpoint_id] = future
                submitted.append((endpoint_id, future))
        return submitted

    def _result(
        self, submitted: list[tuple[str, Future[Observation] | None]], timeout: float
    ) -> ProbeResult:
        observations: list[tuple[str, Observation]] = []
        for endpoint_id, future in submitted:
            if future is None:
                obs = Observation(False, "probe", "previous check still running")
            elif not future.done():
                obs = Observation(False, "probe", f"no answer within {timeout:g}s")
            elif future.cancelled():
                obs = Observation(False, "probe", "check cancelled (probe closed)")
            elif (exc := future.exception()) is not None:
                obs = Observation(False, "probe", f"probe error: {describe(exc)}")
            else:
                obs = future.result()
            observations.append((endpoint_id, obs))
        return ProbeResult(tuple(observations))

    def _get(self, url: str, timeout: float) -> Observation:
        deadline = time.monotonic() + timeout
        try:
            status = _fetch_status(url, deadline, timeout)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            # Timeouts, refused connections, TLS and DNS failures are OSErrors.
            return Observation(False, "probe", describe(exc))
        if status in self.settings.expect_status:
            return Observation(True, detail=f"HTTP {status}")
        return Observation(False, "probe", f"HTTP {status} from {url}")


def _fetch_status(url: str, deadline: float, timeout: float) -> int:
    """GET ``url`` and answer its status, all of it before ``deadline``.

    Raises:
        TimeoutError: The deadline passed.
        OSError: The connection failed.
        http.client.HTTPException: The answer is not HTTP.
        ValueError: The URL is not a valid http(s) URL.
    """
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError(f"not an http(s) URL: {url!r}")
    port = parts.port  # ValueError for a port out of range
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = _HTTPSConnection(host, port, deadline=deadline, timeout=timeout)
    else:
        connection = _HTTPConnection(host, port, deadline=deadline, timeout=timeout)
    response: http.client.HTTPResponse | None = None
    try:
        connection.request("GET", target, headers={"User-Agent": "selectors-lib"})
        response = connection.getresponse()
        # Read a little so the server sees a complete exchange; never the whole body.
        response.read(1024)
        return int(response.status)
    finally:
        if response is not None:
            response.close()
        connection.close()


def _expired(timeout: float) -> TimeoutError:
    # "timed out" like a socket timeout, so operators see one wording.
    return TimeoutError(f"timed out: no complete answer within {timeout:g}s")


def _remaining(deadline: float, timeout: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise _expired(timeout)
    return left


class _DeadlineSocket:
    """The parts of a socket http.client uses, every call bounded by one deadline.

    A socket timeout bounds each read; a backend that sends one byte just
    before each read times out would hold the request forever. Before each
    send and read this sets the socket's timeout to the time left.
    """

    def __init__(self, sock: socket.socket, deadline: float, timeout: float) -> None:
        self._sock = sock
        self._deadline = deadline
        self._timeout = timeout
        # Like a socket, stay open while a reader made by makefile() is: http.client
        # closes the connection right after the headers of a "Connection: close"
        # answer and reads the body from the response's reader afterwards.
        self._readers = 0
        self._closed = False

    def _arm(self) -> None:
        self._sock.settimeout(_remaining(self._deadline, self._timeout))

    def sendall(self, data: bytes) -> None:
        self._arm()
        try:
            self._sock.sendall(data)
        except TimeoutError as exc:
            # The socket's timeout was the time left: the deadline passed.
            raise _expired(self._timeout) from exc

    def recv_into(self, buffer: WriteableBuffer) -> int:
        self._arm()
        try:
            return self._sock.recv_into(buffer)
        except TimeoutError as exc:
            raise _expired(self._timeout) from exc

    def makefile(self, mode: str = "rb") -> io.BufferedReader:
        if mode != "rb":
            raise ValueError(f"unsupported mode {mode!r}")
        self._readers += 1
        return io.BufferedReader(_DeadlineReader(self))

    def release(self) -> None:
        """A reader made by :meth:`makefile` is closed."""
        self._readers -= 1
        if self._closed and self._readers <= 0:
            self._sock.close()

    def close(self) -> None:
        self._closed = True
        if self._readers <= 0:
            self._sock.close()


class _DeadlineReader(io.RawIOBase):
    """A raw reader over a :class:`_DeadlineSocket` (what ``socket.makefile`` would be)."""

    def __init__(self, sock: _DeadlineSocket) -> None:
        super().__init__()
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        return self._sock.recv_into(buffer)

    def close(self) -> None:
        if not self.closed:
            self._sock.release()
        super().close()


class _HTTPConnection(http.client.HTTPConnection):
    """An HTTP connection whose whole exchange must finish before a deadline."""

    def __init__(
        self, host: str, port: int | None, *, deadline: float, timeout: float, **kwargs: Any
    ) -> None:
        super().__init__(host, port, timeout=timeout, **kwargs)
        self._deadline = deadline
        self._total = timeout

    def connect(self) -> None:
        # Connect (and, for HTTPS, the TLS handshake: super() is HTTPSConnection
        # there) within what is left, then bound every read.
        self.timeout = _remaining(self._deadline, self._total)
        try:
            super().connect()
        except TimeoutError as exc:
            raise _expired(self._total) from exc
        # http.client only calls sendall/makefile/close on its socket.
        self.sock = cast(socket.socket, _DeadlineSocket(self.sock, self._deadline, self._total))


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the CA store takes milliseconds: once per process, not per request.
    return ssl.create_default_context()


class _HTTPSConnection(_HTTPConnection, http.client.HTTPSConnection):
    """An HTTPS connection whose whole exchange must finish before a deadline."""

    def __init__(self, host: str, port: int | None, *, deadline: float, timeout: float) -> None:
        super().__init__(host, port, deadline=deadline, timeout=timeout, context=_tls_context())


async def _wait_threads(futures: Sequence[Future[Observation]], timeout: float) -> None:
    """Wait up to ``timeout`` for all of ``futures`` without blocking the event loop.

    Unlike ``asyncio.wrap_future``, nothing is left to run on the loop when it
    is already closed by the time a worker thread finishes.
    """
    if not futures:
        return
    loop = asyncio.get_running_loop()
    all_done = asyncio.Event()
    lock = threading.Lock()
    left = [len(futures)]

    def one_done(_: Future[Observation]) -> None:
        with lock:
            left[0] -= 1
            last = left[0] == 0
        if last:
            # RuntimeError: the loop is closed, so nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(all_done.set)

    for future in futures:
        future.add_done_callback(one_done)
    # On timeout the caller reports what has not answered.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_done.wait(), timeout)
