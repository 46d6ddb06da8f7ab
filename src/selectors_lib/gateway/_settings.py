"""The ``gateway:`` section of a configuration: timeouts, retries, outlier detection.

Validated like the rest of the file (every problem at once, each with its path,
``gateway.routes.orca.retries.tries``). Top-level values are the defaults;
``routes:`` overrides timeouts, retries and ``rewrite_location`` for a rule,
by rule name. Connection limits and outlier detection belong to endpoints,
which several rules share, so they are top-level only. Imports no HTTP code:
a configuration loads without the gateway's extra.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import attrs

from selectors_lib._errors import ConfigIssue
from selectors_lib._validate import Checker, join

__all__ = [
    "GatewaySettings",
    "OutlierSettings",
    "RetrySettings",
    "RouteSettings",
    "parse_gateway_settings",
]

_ROUTE_KEYS = (
    "connect_timeout",
    "first_byte_timeout",
    "idle_timeout",
    "retries",
    "rewrite_location",
    "write_token",
)
_TOP_KEYS = (
    *_ROUTE_KEYS,
    "max_connections",
    "keepalive_timeout",
    "outlier",
    "routes",
    "token_cookie",
)
_RETRY_KEYS = ("tries", "budget", "min_retries_per_second")
_OUTLIER_KEYS = (
    "enabled",
    "consecutive_failures",
    "count_5xx",
    "ejection_time",
    "max_ejection_time",
)
_MAX_SECONDS = 3600.0


@attrs.frozen
class RetrySettings:
    """When a failed attempt is tried again on the key's next replica.

    Args:
        tries: Attempts per request, the first included (1 disables retries).
        budget: Retries allowed as a share of requests (0.2: one retry per five
            requests), so a failing fleet is not hit with a multiple of its load.
        min_retries_per_second: Retries always allowed, whatever the budget
            (a quiet gateway can still fail over).
    """

    tries: int = 3
    budget: float = 0.2
    min_retries_per_second: float = 10.0


@attrs.frozen
class OutlierSettings:
    """Passive outlier detection: eject replicas that fail real requests.

    Args:
        enabled: Whether failures of proxied requests eject replicas.
        consecutive_failures: Failures in a row that eject a replica.
        count_5xx: Whether a ``5xx`` answer counts as a failure (connect
            failures, resets and timeouts always do).
        ejection_time: Seconds the first ejection lasts; each consecutive
            ejection of the same replica doubles it.
        max_ejection_time: The longest an ejection lasts.
    """

    enabled: bool = True
    consecutive_failures: int = 5
    count_5xx: bool = True
    ejection_time: float = 10.0
    max_ejection_time: float = 300.0


@attrs.frozen
class RouteSettings:
    """What one rule's requests get from the gateway.

    Args:
        connect_timeout: Seconds to open a connection (or wait for a pooled one).
        first_byte_timeout: Seconds from the request sent to the response's
            first byte.
        idle_timeout: Seconds the response body may stall between two reads.
        retries: The retry policy.
        rewrite_location: Rewrite ``Location`` headers that point at the
            upstream to the address the client used.
        write_token: A write route: the Redis URL of the primary whose
            replication offset the proxy reads after each response and returns
            as a consistency token (see docs/consistency.md); None: no token.
    """

    connect_timeout: float = 2.0
    first_byte_timeout: float = 30.0
    idle_timeout: float = 60.0
    retries: RetrySettings = RetrySettings()
    rewrite_location: bool = False
    write_token: str | None = None


@attrs.frozen
class GatewaySettings:
    """The whole ``gateway`` section.

    Args:
        defaults: Settings of every rule not in ``routes``.
        routes: ``(rule name, settings)`` overrides, sorted by name.
        max_connections: Connections per endpoint, busy and idle together.
        keepalive_timeout: Seconds an idle pooled connection is kept.
        outlier: Passive outlier detection.
        token_cookie: Also set consistency tokens in a cookie on write routes,
            and read them from it on token-aware routes.
    """

    defaults: RouteSettings = RouteSettings()
    routes: tuple[tuple[str, RouteSettings], ...] = ()
    max_connections: int = 256
    keepalive_timeout: float = 30.0
    outlier: OutlierSettings = OutlierSettings()
    token_cookie: bool = False

    def route(self, rule: str) -> RouteSettings:
        """The settings of rule ``rule`` (its override, else the defaults)."""
        for name, settings in self.routes:
            if name == rule:
                return settings
        return self.defaults

    def to_dict(self) -> dict[str, Any]:
        """The canonical form, as it would be written in a file."""
        out = _route_dict(self.defaults)
        out.update(
            max_connections=self.max_connections,
            keepalive_timeout=self.keepalive_timeout,
            outlier=attrs.asdict(self.outlier),
        )
        if self.token_cookie:
            out["token_cookie"] = True
        if self.routes:
            out["routes"] = {name: _route_dict(s) for name, s in self.routes}
        return out


def _route_dict(settings: RouteSettings) -> dict[str, Any]:
    return {
        "connect_timeout": settings.connect_timeout,
        "first_byte_timeout": settings.first_byte_timeout,
        "idle_timeout": settings.idle_timeout,
        "retries": attrs.asdict(settings.retries),
        "rewrite_location": settings.rewrite_location,
        **({"write_token": settings.write_token} if settings.write_token else {}),
    }


def parse_gateway_settings(
    raw: object, path: str, rule_names: Collection[str]
) -> tuple[GatewaySettings | None, list[ConfigIssue]]:
    """Validate the ``gateway`` section.

    Args:
        raw: The parsed section.
        path: Its path in the document (``gateway``).
        rule_names: The names of the configuration's rules (``routes:`` keys
            must be among them).

    Returns:
        ``(settings, issues)``: the settings when ``issues`` is empty, else
        None and every problem found.
    """
    check = Checker()
    data = check.mapping(raw, path, _TOP_KEYS)
    if data is None:
        return None, check.issues
    defaults = _route(check, data, path, RouteSettings())
    max_connections = GatewaySettings().max_connections
    if "max_connections" in data:
        max_connections = (
            check.integer(data["max_connections"], f"{path}.max_connections", 1, 100_000)
            or max_connections
        )
    keepalive = _seconds(
        check, data, "keepalive_timeout", path, GatewaySettings().keepalive_timeout
    )
    outlier = _outlier(check, data.get("outlier"), f"{path}.outlier")
    routes: list[tuple[str, RouteSettings]] = []
    if "routes" in data:
        where = f"{path}.routes"
        overrides = data["routes"]
        if not isinstance(overrides, Mapping):
            check.error(where, "expected a mapping of rule name to settings")
        else:
            for name in sorted(overrides, key=str):
                item = join(where, str(name))
                if name not in rule_names:
                    check.error(item, f"no rule is named {name!r}")
                    continue
                section = check.mapping(overrides[name], item, _ROUTE_KEYS)
                if section is not None:
                    routes.append((name, _route(check, section, item, defaults)))
    token_cookie = _flag(check, data, "token_cookie", path, False)
    if check.issues:
        return None, check.issues
    settings = GatewaySettings(
        defaults=defaults,
        routes=tuple(routes),
        max_connections=max_connections,
        keepalive_timeout=keepalive,
        outlier=outlier,
        token_cookie=token_cookie,
    )
    return settings, []


def _seconds(check: Checker, data: Mapping[str, Any], key: str, path: str, default: float) -> float:
    if key not in data:
        return default
    value = check.number(
        data[key], f"{path}.{key}", 0, _MAX_SECONDS, exclusive_low=True, what="a number of seconds"
    )
    return default if value is None else value


def _flag(check: Checker, data: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
    if key not in data:
        return default
    value = check.boolean(data[key], f"{path}.{key}")
    return default if value is None else value


def _route(
    check: Checker, data: Mapping[str, Any], path: str, base: RouteSettings
) -> RouteSettings:
    retries = base.retries
    if "retries" in data:
        retries = _retries(check, data["retries"], f"{path}.retries", base.retries)
    return RouteSettings(
        connect_timeout=_seconds(check, data, "connect_timeout", path, base.connect_timeout),
        first_byte_timeout=_seconds(
            check, data, "first_byte_timeout", path, base.first_byte_timeout
        ),
        idle_timeout=_seconds(check, data, "idle_timeout", path, base.idle_timeout),
        retries=retries,
        rewrite_location=_flag(check, data, "rewrite_location", path, base.rewrite_location),
        write_token=(
            check.url(data["write_token"], f"{path}.write_token", ("redis", "rediss"))
            if "write_token" in data
            else base.write_token
        ),
    )


def _retries(check: Checker, raw: object, path: str, base: RetrySettings) -> RetrySettings:
    data = check.mapping(raw, path, _RETRY_KEYS)
    if data is None:
        return base
    tries = base.tries
    if "tries" in data:
        tries = check.integer(data["tries"], f"{path}.tries", 1, 10) or tries
    budget = base.budget
    if "budget" in data:
        value = check.number(data["budget"], f"{path}.budget", 0, 1, what="a share from 0 to 1")
        budget = budget if value is None else value
    floor = base.min_retries_per_second
    if "min_retries_per_second" in data:
        value = check.number(
            data["min_retries_per_second"], f"{path}.min_retries_per_second", 0, 100_000
        )
        floor = floor if value is None else value
    return RetrySettings(tries=tries, budget=budget, min_retries_per_second=floor)


def _outlier(check: Checker, raw: object, path: str) -> OutlierSettings:
    base = OutlierSettings()
    if raw is None:
        return base
    data = check.mapping(raw, path, _OUTLIER_KEYS)
    if data is None:
        return base
    failures = base.consecutive_failures
    if "consecutive_failures" in data:
        failures = (
            check.integer(data["consecutive_failures"], f"{path}.consecutive_failures", 1, 1000)
            or failures
        )
    ejection = _seconds(check, data, "ejection_time", path, base.ejection_time)
    longest = _seconds(check, data, "max_ejection_time", path, base.max_ejection_time)
    if longest < ejection:
        check.error(f"{path}.max_ejection_time", "must be at least ejection_time")
    return OutlierSettings(
        enabled=_flag(check, data, "enabled", path, base.enabled),
        consecutive_failures=failures,
        count_5xx=_flag(check, data, "count_5xx", path, base.count_5xx),
        ejection_time=ejection,
        max_ejection_time=longest,
    )
