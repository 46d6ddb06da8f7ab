"""Converting Spinnaker selector configs to the native configuration.

The result routes identically to the Spinnaker service it came from (proved by a
property test over generated configs and criteria):

- each selector becomes a route at the entry's priority (native: highest wins,
  ties to the route declared first, exactly as v1);
- Spinnaker's "nothing matched: the first entry" becomes the native
  ``default`` route, targeting the first entry's URL;
- a ``DefaultServiceSelector`` matches everything, so the first one tried
  becomes the default route instead, and every selector tried after it (lower
  priority, or equal and later) is dropped: it can never win;
- selectors that can never match (an origin selector without ``origin``; for
  Gate, fields Gate never fills, or everything when dynamic routing is off) are
  dropped too. Every drop is reported in ``notes`` and in the default route's
  description.

One thing cannot be converted: priorities more than ``2**31 - 1`` apart, where
kork's overflowing comparison orders selectors in a way plain integer
priorities cannot express; the converter raises ``ConfigError`` for those.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from selectors_lib._errors import ConfigError

from ._selectors import DEFAULT_SELECTOR, MAX_VALUE_LENGTH, Selector
from ._service import SelectableService, selectable_service
from ._shapes import GATE_CRITERIA_FIELDS, from_gate_config, from_orca_config
from ._spring import INT32

__all__ = ["convert_base_urls", "convert_gate", "convert_orca", "convert_service"]

_SLUG = re.compile(r"[^a-z0-9]+")


def _field_spec(selector: Selector) -> dict[str, Any]:
    """The native ``match`` of one selector."""
    name = selector.selector_class
    if name == "ByApplicationServiceSelector":
        return {"application": {"regex": selector.patterns[0], "case": "lower", "syntax": "java"}}
    if name == "ByAccountServiceSelector":
        return {"account": {"regex": selector.patterns[0], "case": "lower", "syntax": "java"}}
    if name == "ByExecutionTypeServiceSelector":
        return {"execution_type": {"equals": list(selector.values)}}
    if name == "ByOriginServiceSelector":
        return {
            "origin": {"equals": selector.origin, "case": "ignore"},
            "execution_type": {"equals": list(selector.values)},
        }
    if name == "ByAuthenticatedUserServiceSelector":
        return {"authenticated_user": {"regex": list(selector.patterns), "syntax": "java"}}
    if name == "ByLocationServiceSelector":
        return {"location": {"equals": list(selector.values)}}
    if name == "ByCloudProviderServiceSelector":
        return {"cloud_provider": {"equals": list(selector.values)}}
    if name == "ByUserOriginSelector":
        return {"origin": {"equals": selector.origin}}
    return {}


def _endpoint_ids(urls: Sequence[str]) -> dict[str, str]:
    """Readable, unique endpoint ids: the host's first label, else the host, else the URL."""
    distinct = list(dict.fromkeys(urls))

    def label(url: str) -> str:
        host = urllib.parse.urlsplit(url).hostname or ""
        return host.split(".")[0]

    def netloc(url: str) -> str:
        return urllib.parse.urlsplit(url).netloc

    ids: dict[str, str] = {}
    for namer in (label, netloc):
        names = [namer(u) for u in distinct]
        for url, name in zip(distinct, names, strict=True):
            if url not in ids and name and names.count(name) == 1 and name not in ids.values():
                ids[url] = name
    for url in distinct:
        # The URL itself is unique among URLs; it only collides with a chosen
        # short name in odd cases, where an index suffix settles it.
        candidate = url
        n = 2
        while url not in ids and candidate in ids.values():
            candidate = f"{url}#{n}"
            n += 1
        ids.setdefault(url, candidate)
    return ids


def _route_name(selector: Selector) -> str:
    short = selector.selector_class.removesuffix("ServiceSelector").removesuffix("Selector")
    slug = _SLUG.sub("-", re.sub(r"(?<!^)([A-Z])", r"-\1", short).lower()).strip("-")
    return f"entry-{selector.index}-{slug}"


def _check_priority_spread(
    service: SelectableService, *, fields: Sequence[str] | None, routed: bool
) -> None:
    """Refuse selectors whose priorities Spinnaker compares with a wrapped subtraction.

    kork compares two priorities as ``b - a`` in 32-bit ``int`` arithmetic, which
    agrees with "higher wins" only while every two priorities are at most
    ``2**31 - 1`` apart; beyond that its order is not even transitive and no
    list of native routes (plain integer priorities) reproduces it. Only
    selectors that can match some request count.

    Raises:
        ConfigError: Two such selectors are more than ``2**31 - 1`` apart.
    """
    live = [
        s
        for s in service.selectors
        if s.can_match
        and (routed or s.selector_class == DEFAULT_SELECTOR)
        and (fields is None or s.field is None or s.field in fields)
    ]
    if len(live) < 2:
        return
    low = min(live, key=lambda s: (s.priority, s.index))
    high = max(live, key=lambda s: (s.priority, -s.index))
    if high.priority - low.priority <= INT32[1]:
        return
    raise ConfigError.single(
        f"{high.location}.priority",
        f"cannot convert: entry {high.index} ({high.base_url}, priority {high.priority}) and "
        f"entry {low.index} ({low.base_url}, priority {low.priority}) are more than "
        f"{INT32[1]} apart; Spinnaker compares priorities by a 32-bit subtraction that "
        "overflows there (a priority order no native configuration can express). Bring the "
        "priorities closer together, e.g. within -1000000..1000000",
    )


def convert_service(
    service: SelectableService,
    *,
    fields: Sequence[str] | None = None,
    routed: bool = True,
    notes: list[str] | None = None,
) -> dict[str, Any]:
    """Convert a built v1 service to a native configuration mapping.

    Args:
        service: The service.
        fields: The criteria fields the caller ever fills (Gate fills only some);
            selectors reading other fields can never match and are dropped.
            ``None``: all fields.
        routed: False when every request is selected with empty criteria
            (Gate's clouddriver without dynamic routing).
        notes: If given, a line is appended for every selector dropped.

    Returns:
        A native configuration mapping (``version``, ``endpoints``, ``routes``),
        loadable by :func:`selectors_lib.load_config`.

    Raises:
        ConfigError: Two selectors that can match have priorities more than
            ``2**31 - 1`` apart (see the module docs).
    """
    selectors = service.selectors
    _check_priority_spread(service, fields=fields, routed=routed)
    dropped: list[str] = []
    kept: list[Selector] = []
    default: Selector | None = None

    def drop(selector: Selector, why: str) -> None:
        dropped.append(f"{selector.location} ({selector.base_url}): {why}")

    def outranks(a: Selector, b: Selector) -> bool:
        # v1 order: higher priority first, then config order.
        return (a.priority, -a.index) > (b.priority, -b.index)

    for s in selectors:
        if s.selector_class == DEFAULT_SELECTOR and (default is None or outranks(s, default)):
            default = s
    for s in selectors:
        if s is default:
            continue
        if not routed:
            drop(s, "dynamic routing is off: every request is selected with empty criteria")
        elif default is not None and outranks(default, s):
            drop(s, f"can never win: the default selector {default.location} is tried first")
        elif not s.can_match:
            reason = (
                "without 'origin'"
                if s.origin is None and s.field == "origin"
                else "without a string value"
            )
            drop(s, f"{s.selector_class} {reason} never matches")
        elif fields is not None and s.field is not None and s.field not in fields:
            drop(s, f"{s.selector_class} reads {s.field}, which is never set here")
        else:
            kept.append(s)
    # Without routing, empty criteria match default selectors only, which is
    # exactly what the fallback below captures.
    fallback = default if default is not None else selectors[0]
    ids = _endpoint_ids([s.base_url for s in (*kept, fallback)])
    routes: list[dict[str, Any]] = []
    for s in kept:
        routes.append(
            {
                "name": _route_name(s),
                "description": f"{s.location}: {s.selector_class}",
                "priority": s.priority,
                "match": _field_spec(s),
                "target": ids[s.base_url],
            }
        )
    if fallback.selector_class == DEFAULT_SELECTOR:
        why = f"{fallback.location}: DefaultServiceSelector, matches every request"
    else:
        why = f"nothing matched: Spinnaker falls back to the first entry, {fallback.location}"
    if dropped:
        why += "; dropped: " + "; ".join(dropped)
    routes.append(
        {"name": "fallback", "description": why, "default": True, "target": ids[fallback.base_url]}
    )
    if notes is not None:
        notes.extend(f"dropped {line}" for line in dropped)
    endpoints = {ids[url]: url for url in dict.fromkeys(s.base_url for s in (*kept, fallback))}
    return {
        "version": 1,
        # Spelled out: the Spinnaker side guards patterns with the same cap.
        "settings": {"max_value_length": MAX_VALUE_LENGTH},
        "endpoints": endpoints,
        "routes": routes,
    }


def convert_base_urls(
    base_urls: Sequence[Any] | Any, *, notes: list[str] | None = None
) -> dict[str, Any]:
    """Convert v1 ``baseUrls`` entries to a native configuration routing identically.

    Args:
        base_urls: As for :func:`selectable_service`.
        notes: If given, a line is appended for every selector dropped (never
            able to win or to match).

    Returns:
        A native configuration mapping.

    Raises:
        ConfigError: The entries are invalid (as :func:`selectable_service`), or
            their priorities cannot be converted (as :func:`convert_service`).
    """
    return convert_service(selectable_service(base_urls), notes=notes)


def convert_orca(
    mapping: Mapping[str, Any], role: str = "readonly", *, notes: list[str] | None = None
) -> dict[str, Any]:
    """Convert an ``orca.yml``'s clouddriver ``role`` selection to native configuration.

    Raises:
        ConfigError: As :func:`from_orca_config` and :func:`convert_service`.
        ValueError: ``role`` is not ``readonly`` or ``writeonly``.
    """
    service = from_orca_config(mapping, role)
    return convert_service(service, notes=notes)


def convert_gate(
    mapping: Mapping[str, Any], service: str = "clouddriver", *, notes: list[str] | None = None
) -> dict[str, Any]:
    """Convert a ``gate.yml``'s selection for ``service`` to native configuration.

    Feed the native router criteria built with
    :func:`selectors_lib.spinnaker.gate_header_mapping` to route requests as
    Gate does.

    Raises:
        ConfigError: As :func:`from_gate_config` and :func:`convert_service`.
    """
    gate = from_gate_config(mapping, service)
    return convert_service(
        gate.service,
        fields=GATE_CRITERIA_FIELDS,
        routed=gate.routed,
        notes=notes,
    )
