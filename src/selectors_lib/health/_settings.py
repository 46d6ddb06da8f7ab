"""The ``health:`` section of a configuration: validation and canonical form.

Validated like the rest of the file: unknown keys are errors, every problem is
reported at once with its path (``health.probes[1].max_lag_bytes``), and probe
targets must name endpoints the configuration declares. Nothing here imports
redis-py or an HTTP client: a configuration loads (and is checked) without
the extras; only building probes needs them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs

from selectors_lib._errors import ConfigIssue
from selectors_lib._pool import Endpoint
from selectors_lib._validate import Checker, join, kind, show, url_problem

from ._shared_settings import SharedSettings, parse_shared_settings

__all__ = [
    "DEFAULT_MAX_LAG_BYTES",
    "HealthSettings",
    "HttpProbeSettings",
    "ProbeSettings",
    "RedisLagProbeSettings",
    "parse_health_settings",
]

#: Default lag threshold: a healthy replica is normally a few hundred KB behind at
#: most; 4 MiB behind means it is not keeping up.
DEFAULT_MAX_LAG_BYTES = 4 * 1024 * 1024

_HEALTH_KEYS = ("interval", "timeout", "eject_after", "readmit_after", "probes", "shared")
_REDIS_KEYS = ("type", "name", "master", "replicas", "max_lag_bytes")
_HTTP_KEYS = ("type", "name", "endpoints", "path", "expect_status")
_PROBE_TYPES = ("redis_lag", "http")
_REDIS_SCHEMES = ("redis", "rediss", "unix")
_HTTP_SCHEMES = ("http", "https")
_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,100}")
# Generous but finite bounds: a typo like ``interval: 1000000`` is caught at load.
_MAX_SECONDS = 3600.0
_MAX_COUNT = 1000
_MAX_PROBES = 1000


@attrs.frozen
class RedisLagProbeSettings:
    """A Redis replication-lag probe over one master and its replicas.

    Args:
        name: Unique probe name (shown in status and logs).
        master: Redis URL of the master.
        replicas: ``(endpoint id, redis URL)`` per replica, in config order.
        max_lag_bytes: A replica further behind than this is a bad observation.
    """

    name: str
    master: str
    replicas: tuple[tuple[str, str], ...]
    max_lag_bytes: int = DEFAULT_MAX_LAG_BYTES

    @property
    def endpoint_ids(self) -> tuple[str, ...]:
        """The endpoints this probe observes."""
        return tuple(endpoint_id for endpoint_id, _ in self.replicas)

    def to_dict(self) -> dict[str, Any]:
        """Canonical form (loadable again)."""
        return {
            "type": "redis_lag",
            "name": self.name,
            "master": self.master,
            "replicas": dict(self.replicas),
            "max_lag_bytes": self.max_lag_bytes,
        }


@attrs.frozen
class HttpProbeSettings:
    """An HTTP health probe: GET ``<endpoint url><path>``, expect a status code.

    Args:
        name: Unique probe name.
        endpoints: ``(endpoint id, base URL)`` per endpoint, in config order.
        path: Path appended to each base URL.
        expect_status: Status codes that count as healthy.
    """

    name: str
    endpoints: tuple[tuple[str, str], ...]
    path: str = "/health"
    expect_status: tuple[int, ...] = (200,)

    @property
    def endpoint_ids(self) -> tuple[str, ...]:
        """The endpoints this probe observes."""
        return tuple(endpoint_id for endpoint_id, _ in self.endpoints)

    def url(self, base: str) -> str:
        """The health URL of an endpoint with base URL ``base``."""
        return base.rstrip("/") + self.path

    def to_dict(self) -> dict[str, Any]:
        """Canonical form (loadable again)."""
        return {
            "type": "http",
            "name": self.name,
            "endpoints": [endpoint_id for endpoint_id, _ in self.endpoints],
            "path": self.path,
            "expect_status": list(self.expect_status),
        }


ProbeSettings = RedisLagProbeSettings | HttpProbeSettings


@attrs.frozen
class HealthSettings:
    """The validated ``health:`` section.

    Args:
        interval: Seconds between the starts of two probe rounds.
        timeout: Seconds a single probe request may take before it counts as failed.
        eject_after: Consecutive bad observations that eject an endpoint.
        readmit_after: Consecutive good observations that readmit it.
        probes: The probes, in config order.
        shared: The fleet's shared health plane (see docs/fleet.md), if any.
    """

    interval: float = 1.0
    timeout: float = 0.5
    eject_after: int = 3
    readmit_after: int = 2
    probes: tuple[ProbeSettings, ...] = ()
    shared: SharedSettings | None = None

    def to_dict(self) -> dict[str, Any]:
        """Canonical form, every default spelled out (loadable again)."""
        out: dict[str, Any] = {
            "interval": self.interval,
            "timeout": self.timeout,
            "eject_after": self.eject_after,
            "readmit_after": self.readmit_after,
            "probes": [probe.to_dict() for probe in self.probes],
        }
        if self.shared is not None:
            out["shared"] = self.shared.to_dict()
        return out


# -- validation ---------------------------------------------------------------------


def parse_health_settings(
    raw: object, path: str, endpoints: Mapping[str, Endpoint]
) -> tuple[HealthSettings | None, list[ConfigIssue]]:
    """Validate the ``health`` section against the configuration's endpoints.

    Args:
        raw: The parsed section.
        path: Its path in the document (``health``), the prefix of every issue.
        endpoints: Every endpoint the configuration declares, by id.

    Returns:
        ``(settings, issues)``: the settings when ``issues`` is empty, else None
        and every problem found.
    """
    check = Checker()
    settings = _parse(check, raw, path, endpoints)
    if check.issues:
        return None, check.issues
    return settings, []


def _parse(
    check: Checker, raw: object, path: str, endpoints: Mapping[str, Endpoint]
) -> HealthSettings | None:
    data = check.mapping(raw, path, _HEALTH_KEYS)
    if data is None:
        return None
    default = HealthSettings()
    interval, timeout = default.interval, default.timeout
    if "interval" in data:
        interval = _seconds(check, data["interval"], f"{path}.interval") or interval
    if "timeout" in data:
        timeout = _seconds(check, data["timeout"], f"{path}.timeout") or timeout
    eject_after, readmit_after = default.eject_after, default.readmit_after
    if "eject_after" in data:
        eject_after = (
            check.integer(data["eject_after"], f"{path}.eject_after", 1, _MAX_COUNT) or eject_after
        )
    if "readmit_after" in data:
        readmit_after = (
            check.integer(data["readmit_after"], f"{path}.readmit_after", 1, _MAX_COUNT)
            or readmit_after
        )
    probes: list[ProbeSettings] = []
    raw_probes = None
    where = f"{path}.probes"
    if "probes" not in data:
        check.error(path, "missing key 'probes': list what to probe")
    else:
        raw_probes = check.nonempty_list(data["probes"], where)
    if raw_probes is not None and len(raw_probes) > _MAX_PROBES:
        check.error(where, f"at most {_MAX_PROBES} probes")
    elif raw_probes is not None:
        names: dict[str, int] = {}
        for index, item in enumerate(raw_probes):
            probe = _probe(check, item, f"{where}[{index}]", index, endpoints)
            if probe is None:
                continue
            check.unique_name(names, probe.name, where, index, "probe")
            probes.append(probe)
    shared = None
    if "shared" in data:
        shared = parse_shared_settings(check, data["shared"], f"{path}.shared", interval)
    return HealthSettings(
        interval=interval,
        timeout=timeout,
        eject_after=eject_after,
        readmit_after=readmit_after,
        probes=tuple(probes),
        shared=shared,
    )


def _probe(
    check: Checker, raw: object, path: str, index: int, endpoints: Mapping[str, Endpoint]
) -> ProbeSettings | None:
    if not isinstance(raw, Mapping):
        check.error(path, f"expected a mapping, got {kind(raw)}")
        return None
    probe_type = raw.get("type")
    if not isinstance(probe_type, str) or probe_type not in _PROBE_TYPES:
        message = "missing key 'type'" if "type" not in raw else f"unknown type {show(probe_type)}"
        check.error(
            path if "type" not in raw else f"{path}.type",
            f"{message}; expected one of {', '.join(_PROBE_TYPES)}",
        )
        return None
    before = len(check.issues)
    if probe_type == "redis_lag":
        probe: ProbeSettings | None = _redis(check, raw, path, index, endpoints)
    else:
        probe = _http(check, raw, path, index, endpoints)
    return probe if len(check.issues) == before else None


def _name(check: Checker, data: Mapping[str, Any], path: str, default: str) -> str:
    if "name" not in data:
        return default
    name = data["name"]
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        check.error(
            f"{path}.name",
            f"expected 1 to 100 letters, digits, '_', '.' or '-', got {show(name)}",
        )
        return default
    return name


def _redis(
    check: Checker, raw: Mapping[Any, Any], path: str, index: int, endpoints: Mapping[str, Endpoint]
) -> RedisLagProbeSettings | None:
    data = check.mapping(raw, path, _REDIS_KEYS)
    if data is None:
        return None
    name = _name(check, data, path, f"redis_lag-{index}")
    master = None
    if "master" not in data:
        check.error(path, "missing key 'master' (the master's redis:// URL)")
    else:
        master = check.url(data["master"], f"{path}.master", _REDIS_SCHEMES)
    replicas: list[tuple[str, str]] = []
    where = f"{path}.replicas"
    raw_replicas = data.get("replicas")
    if "replicas" not in data:
        check.error(path, "missing key 'replicas' (endpoint ids, or a mapping id -> redis URL)")
    elif isinstance(raw_replicas, Mapping):
        if not raw_replicas:
            check.error(where, "must not be empty")
        for key, value in raw_replicas.items():
            if not _known(check, key, where, endpoints):
                continue
            url = check.url(value, join(where, key), _REDIS_SCHEMES)
            if url is not None:
                replicas.append((key, url))
    elif isinstance(raw_replicas, list):
        if not raw_replicas:
            check.error(where, "must not be empty")
        replicas = _listed(
            check,
            raw_replicas,
            where,
            endpoints,
            _REDIS_SCHEMES,
            ", not a Redis URL; give replicas as a mapping of endpoint id to its Redis URL",
        )
    else:
        check.error(
            where, f"expected a list of endpoint ids or a mapping, got {kind(raw_replicas)}"
        )
    max_lag: int | None = DEFAULT_MAX_LAG_BYTES
    if "max_lag_bytes" in data:
        max_lag = check.integer(data["max_lag_bytes"], f"{path}.max_lag_bytes", 0, 1 << 50)
    if master is None or max_lag is None:
        return None
    return RedisLagProbeSettings(name, master, tuple(replicas), max_lag)


def _http(
    check: Checker, raw: Mapping[Any, Any], path: str, index: int, endpoints: Mapping[str, Endpoint]
) -> HttpProbeSettings | None:
    data = check.mapping(raw, path, _HTTP_KEYS)
    if data is None:
        return None
    name = _name(check, data, path, f"http-{index}")
    members: list[tuple[str, str]] = []
    where = f"{path}.endpoints"
    if "endpoints" not in data:
        check.error(path, "missing key 'endpoints' (a list of endpoint ids)")
    else:
        raw_members = check.nonempty_list(data["endpoints"], where, "a list of endpoint ids")
        if raw_members is not None:
            members = _listed(check, raw_members, where, endpoints, _HTTP_SCHEMES)
    probe_path = "/health"
    if "path" in data:
        value = data["path"]
        if (
            not isinstance(value, str)
            or not value.startswith("/")
            or len(value) > 1024
            or any(c.isspace() for c in value)
        ):
            check.error(
                f"{path}.path", f"expected a path starting with '/' (no spaces), got {show(value)}"
            )
        else:
            probe_path = value
    expect: tuple[int, ...] = (200,)
    if "expect_status" in data:
        value = data["expect_status"]
        items = [value] if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(items, list) or not items:
            check.error(
                f"{path}.expect_status",
                f"expected a status code or a non-empty list of them, got {kind(value)}",
            )
        else:
            codes = [
                check.integer(code, f"{path}.expect_status[{i}]", 100, 599)
                for i, code in enumerate(items)
            ]
            expect = tuple(sorted({code for code in codes if code is not None}))
    return HttpProbeSettings(name, tuple(members), probe_path, expect)


def _seconds(check: Checker, raw: object, path: str) -> float | None:
    return check.number(raw, path, 0, _MAX_SECONDS, exclusive_low=True, what="a number of seconds")


def _listed(
    check: Checker,
    keys: list[Any],
    where: str,
    endpoints: Mapping[str, Endpoint],
    schemes: tuple[str, ...],
    bad_url: str | None = None,
) -> list[tuple[str, str]]:
    """``(id, url)`` of each endpoint id listed at ``where``, each problem reported.

    Args:
        check: Collects the issues.
        keys: The list as given.
        where: Its path; the list's own key names it in duplicate messages.
        endpoints: The configuration's endpoints, by id.
        schemes: The URL schemes the probe can use.
        bad_url: Said of an endpoint whose URL has another scheme; by default
            what is wrong with the URL.
    """
    label = where.rpartition(".")[2]
    seen: dict[str, int] = {}
    out: list[tuple[str, str]] = []
    for i, key in enumerate(keys):
        item = f"{where}[{i}]"
        if not _known(check, key, item, endpoints):
            continue
        if key in seen:
            check.error(item, f"endpoint {key!r} is already listed ({label}[{seen[key]}])")
            continue
        seen[key] = i
        url = endpoints[key].url
        problem = url_problem(url, schemes)
        if problem:
            check.error(item, f"endpoint {key!r} has URL {url!r:.80}{bad_url or ': ' + problem}")
            continue
        out.append((key, url))
    return out


def _known(check: Checker, key: object, path: str, endpoints: Mapping[str, Endpoint]) -> bool:
    if not isinstance(key, str) or not key:
        check.error(path, f"expected an endpoint id, got {kind(key)}")
        return False
    if key not in endpoints:
        known = ", ".join(sorted(endpoints)[:20])
        check.error(path, f"unknown endpoint {key!r:.80}; known: {known}")
        return False
    return True
