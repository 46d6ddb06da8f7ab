"""The ``health:`` section of a configuration: validation and canonical form.

Validated like the rest of the file: unknown keys are errors, every problem is
reported at once with its path (``health.probes[1].max_lag_bytes``), and probe
targets must name endpoints the configuration declares. Nothing here imports
redis-py or an HTTP client: a configuration loads (and is checked) without
the extras; only building probes needs them.
"""

from __future__ import annotations

import json
import math
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

import attrs

from selectors_lib._errors import ConfigIssue
from selectors_lib._pool import Endpoint

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

_HEALTH_KEYS = ("interval", "timeout", "eject_after", "readmit_after", "probes")
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
    """

    interval: float = 1.0
    timeout: float = 0.5
    eject_after: int = 3
    readmit_after: int = 2
    probes: tuple[ProbeSettings, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Canonical form, every default spelled out (loadable again)."""
        return {
            "interval": self.interval,
            "timeout": self.timeout,
            "eject_after": self.eject_after,
            "readmit_after": self.readmit_after,
            "probes": [probe.to_dict() for probe in self.probes],
        }


# -- validation ---------------------------------------------------------------------


def _kind(value: object) -> str:
    if value is None:
        return "nothing (null)"
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    names.update({list: "a list", dict: "a mapping"})
    return names.get(type(value), type(value).__name__)


class _Check:
    """Collects issues; each helper returns None after reporting a problem."""

    def __init__(self) -> None:
        self.issues: list[ConfigIssue] = []

    def error(self, path: str, message: str) -> None:
        self.issues.append(ConfigIssue(path, message))

    def mapping(self, raw: object, path: str, allowed: tuple[str, ...]) -> Mapping[str, Any] | None:
        if not isinstance(raw, Mapping):
            self.error(path, f"expected a mapping, got {_kind(raw)}")
            return None
        out: dict[str, Any] = {}
        for key, value in raw.items():
            if not isinstance(key, str):
                self.error(path, f"keys must be strings, got {_kind(key)} {key!r:.40}")
            elif key not in allowed:
                self.error(
                    _join(path, key[:60]), f"unknown key; expected one of {', '.join(allowed)}"
                )
            else:
                out[key] = value
        return out

    def seconds(self, raw: object, path: str) -> float | None:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            self.error(path, f"expected a number of seconds, got {_kind(raw)}")
            return None
        if not math.isfinite(raw) or not 0 < raw <= _MAX_SECONDS:
            self.error(path, f"must be more than 0 and at most {_MAX_SECONDS:g}, got {raw!r}")
            return None
        return float(raw)

    def integer(self, raw: object, path: str, low: int, high: int) -> int | None:
        if isinstance(raw, bool) or not isinstance(raw, int):
            self.error(path, f"expected an integer, got {_kind(raw)}")
            return None
        if not low <= raw <= high:
            self.error(path, f"must be between {low} and {high}, got {raw}")
            return None
        return raw

    def url(self, raw: object, path: str, schemes: tuple[str, ...]) -> str | None:
        if not isinstance(raw, str) or not raw:
            self.error(path, f"expected a URL, got {_kind(raw)}")
            return None
        problem = _url_problem(raw, schemes)
        if problem:
            self.error(path, f"invalid URL {raw!r:.80}: {problem}")
            return None
        return raw


def _join(path: str, key: str) -> str:
    safe = key if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-]*", key) else json.dumps(key)
    return f"{path}.{safe}"


def _url_problem(url: str, schemes: tuple[str, ...]) -> str | None:
    if len(url) > 2048:
        return "longer than 2048 characters"
    if any(c.isspace() for c in url):
        return "contains white space"
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port  # raises on a bad port
    except ValueError as exc:
        return str(exc)
    if parts.scheme.lower() not in schemes:
        return f"expected a {' or '.join(s + '://' for s in schemes)} URL"
    if parts.scheme.lower() == "unix":
        return None if parts.path else "missing socket path"
    return None if parts.hostname else "missing host"


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
    check = _Check()
    settings = _parse(check, raw, path, endpoints)
    if check.issues:
        return None, check.issues
    return settings, []


def _parse(
    check: _Check, raw: object, path: str, endpoints: Mapping[str, Endpoint]
) -> HealthSettings | None:
    data = check.mapping(raw, path, _HEALTH_KEYS)
    if data is None:
        return None
    default = HealthSettings()
    interval, timeout = default.interval, default.timeout
    if "interval" in data:
        interval = check.seconds(data["interval"], f"{path}.interval") or interval
    if "timeout" in data:
        timeout = check.seconds(data["timeout"], f"{path}.timeout") or timeout
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
    raw_probes = data.get("probes")
    where = f"{path}.probes"
    if "probes" not in data:
        check.error(path, "missing key 'probes': list what to probe")
    elif not isinstance(raw_probes, list):
        check.error(where, f"expected a list, got {_kind(raw_probes)}")
    elif not raw_probes:
        check.error(where, "must not be empty")
    elif len(raw_probes) > _MAX_PROBES:
        check.error(where, f"at most {_MAX_PROBES} probes")
    else:
        names: dict[str, int] = {}
        for index, item in enumerate(raw_probes):
            probe = _probe(check, item, f"{where}[{index}]", index, endpoints)
            if probe is None:
                continue
            if probe.name in names:
                check.error(
                    f"{where}[{index}].name",
                    f"duplicate probe name {probe.name!r} (also probes[{names[probe.name]}])",
                )
            names.setdefault(probe.name, index)
            probes.append(probe)
    return HealthSettings(
        interval=interval,
        timeout=timeout,
        eject_after=eject_after,
        readmit_after=readmit_after,
        probes=tuple(probes),
    )


def _probe(
    check: _Check, raw: object, path: str, index: int, endpoints: Mapping[str, Endpoint]
) -> ProbeSettings | None:
    if not isinstance(raw, Mapping):
        check.error(path, f"expected a mapping, got {_kind(raw)}")
        return None
    kind = raw.get("type")
    if kind not in _PROBE_TYPES:
        message = "missing key 'type'" if "type" not in raw else f"unknown type {kind!r:.40}"
        check.error(
            path if "type" not in raw else f"{path}.type",
            f"{message}; expected one of {', '.join(_PROBE_TYPES)}",
        )
        return None
    before = len(check.issues)
    if kind == "redis_lag":
        probe: ProbeSettings | None = _redis(check, raw, path, index, endpoints)
    else:
        probe = _http(check, raw, path, index, endpoints)
    return probe if len(check.issues) == before else None


def _name(check: _Check, data: Mapping[str, Any], path: str, default: str) -> str:
    if "name" not in data:
        return default
    name = data["name"]
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        check.error(
            f"{path}.name",
            f"expected 1 to 100 letters, digits, '_', '.' or '-', got {name!r:.40}",
        )
        return default
    return name


def _redis(
    check: _Check, raw: Mapping[Any, Any], path: str, index: int, endpoints: Mapping[str, Endpoint]
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
            url = check.url(value, _join(where, key), _REDIS_SCHEMES)
            if url is not None:
                replicas.append((key, url))
    elif isinstance(raw_replicas, list):
        if not raw_replicas:
            check.error(where, "must not be empty")
        seen: dict[str, int] = {}
        for i, key in enumerate(raw_replicas):
            item = f"{where}[{i}]"
            if not _known(check, key, item, endpoints):
                continue
            if key in seen:
                check.error(item, f"endpoint {key!r} is already listed (replicas[{seen[key]}])")
                continue
            seen[key] = i
            url = endpoints[key].url
            problem = _url_problem(url, _REDIS_SCHEMES)
            if problem:
                check.error(
                    item,
                    f"endpoint {key!r} has URL {url!r:.80}, not a Redis URL; give replicas "
                    "as a mapping of endpoint id to its Redis URL",
                )
                continue
            replicas.append((key, url))
    else:
        check.error(
            where, f"expected a list of endpoint ids or a mapping, got {_kind(raw_replicas)}"
        )
    max_lag: int | None = DEFAULT_MAX_LAG_BYTES
    if "max_lag_bytes" in data:
        max_lag = check.integer(data["max_lag_bytes"], f"{path}.max_lag_bytes", 0, 1 << 50)
    if master is None or max_lag is None:
        return None
    return RedisLagProbeSettings(name, master, tuple(replicas), max_lag)


def _http(
    check: _Check, raw: Mapping[Any, Any], path: str, index: int, endpoints: Mapping[str, Endpoint]
) -> HttpProbeSettings | None:
    data = check.mapping(raw, path, _HTTP_KEYS)
    if data is None:
        return None
    name = _name(check, data, path, f"http-{index}")
    members: list[tuple[str, str]] = []
    where = f"{path}.endpoints"
    raw_members = data.get("endpoints")
    if "endpoints" not in data:
        check.error(path, "missing key 'endpoints' (a list of endpoint ids)")
    elif not isinstance(raw_members, list):
        check.error(where, f"expected a list of endpoint ids, got {_kind(raw_members)}")
    elif not raw_members:
        check.error(where, "must not be empty")
    else:
        seen: dict[str, int] = {}
        for i, key in enumerate(raw_members):
            item = f"{where}[{i}]"
            if not _known(check, key, item, endpoints):
                continue
            if key in seen:
                check.error(item, f"endpoint {key!r} is already listed (endpoints[{seen[key]}])")
                continue
            seen[key] = i
            url = endpoints[key].url
            problem = _url_problem(url, _HTTP_SCHEMES)
            if problem:
                check.error(item, f"endpoint {key!r} has URL {url!r:.80}: {problem}")
                continue
            members.append((key, url))
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
                f"{path}.path", f"expected a path starting with '/' (no spaces), got {value!r:.40}"
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
                f"expected a status code or a non-empty list of them, got {_kind(value)}",
            )
        else:
            codes = [
                check.integer(code, f"{path}.expect_status[{i}]", 100, 599)
                for i, code in enumerate(items)
            ]
            expect = tuple(sorted({code for code in codes if code is not None}))
    return HttpProbeSettings(name, tuple(members), probe_path, expect)


def _known(check: _Check, key: object, path: str, endpoints: Mapping[str, Endpoint]) -> bool:
    if not isinstance(key, str) or not key:
        check.error(path, f"expected an endpoint id, got {_kind(key)}")
        return False
    if key not in endpoints:
        known = ", ".join(sorted(endpoints)[:20])
        check.error(path, f"unknown endpoint {key!r:.80}; known: {known}")
        return False
    return True
