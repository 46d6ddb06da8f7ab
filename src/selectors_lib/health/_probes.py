"""The probe interface, and the HTTP health probe.

A probe observes a *group* of endpoints (a Redis master's replicas, a set of
HTTP backends) and answers one :class:`ProbeResult` per round, with an
:class:`~selectors_lib.health.Observation` per endpoint. Each probe has a
blocking ``check(timeout)`` for the threaded monitor and an ``acheck(timeout)``
coroutine for the asyncio one. ``timeout`` bounds every network operation; a
probe must not let an exception escape for a failure of what it probes (it
reports a bad observation instead).
"""

from __future__ import annotations

import asyncio
import http.client
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, runtime_checkable

import attrs

from ._settings import HttpProbeSettings
from ._state import Observation

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
        """Observe every endpoint once, blocking; each network operation within ``timeout``."""
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


class HttpProbe:
    """GET ``<endpoint url><path>`` on each endpoint; good when the status is expected.

    Uses the standard library (no extra needed). Redirects are not followed: a
    redirect is a status like any other, healthy only if listed.

    Args:
        settings: The probe's validated settings.
    """

    measures_lag = False

    def __init__(self, settings: HttpProbeSettings) -> None:
        self.settings = settings
        self._urls = tuple(
            (endpoint_id, settings.url(base)) for endpoint_id, base in settings.endpoints
        )
        # No proxy from the environment: a health check must reach the endpoint itself.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
        self._executor: ThreadPoolExecutor | None = None

    @property
    def name(self) -> str:
        """The probe's name."""
        return self.settings.name

    @property
    def endpoint_ids(self) -> tuple[str, ...]:
        """The endpoints it observes."""
        return self.settings.endpoint_ids

    def check(self, timeout: float) -> ProbeResult:
        """Probe every endpoint concurrently, blocking until all answered or timed out."""
        if len(self._urls) == 1:
            endpoint_id, url = self._urls[0]
            return ProbeResult(((endpoint_id, self._get(url, timeout)),))
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=min(len(self._urls), 16), thread_name_prefix=f"probe-{self.name}"
            )
        futures = [(eid, self._executor.submit(self._get, url, timeout)) for eid, url in self._urls]
        return ProbeResult(tuple((eid, future.result()) for eid, future in futures))

    async def acheck(self, timeout: float) -> ProbeResult:
        """Probe every endpoint concurrently from worker threads (urllib blocks)."""
        results = await asyncio.gather(
            *(asyncio.to_thread(self._get, url, timeout) for _, url in self._urls)
        )
        return ProbeResult(tuple(zip(self.endpoint_ids, results, strict=True)))

    def close(self) -> None:
        """Stop the worker threads."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def aclose(self) -> None:
        """Nothing to release: asyncio checks use the loop's default executor."""

    def _get(self, url: str, timeout: float) -> Observation:
        request = urllib.request.Request(url, method="GET", headers={"User-Agent": "selectors-lib"})
        try:
            with self._opener.open(request, timeout=timeout) as response:
                status = int(response.status)
                # Read a little so keep-alive servers see a complete exchange; never the whole body.
                response.read(1024)
        except urllib.error.HTTPError as exc:
            status = exc.code
            exc.close()
        except (OSError, http.client.HTTPException, ValueError) as exc:
            # URLError, timeouts and refused connections are OSErrors.
            return Observation(False, "probe", describe(exc))
        if status in self.settings.expect_status:
            return Observation(True, detail=f"HTTP {status}")
        return Observation(False, "probe", f"HTTP {status} from {url}")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Report redirects as their status instead of following them."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None
