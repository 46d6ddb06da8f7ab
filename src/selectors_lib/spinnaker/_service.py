"""Spinnaker's v1 ``SelectableService``: pick one base URL among selectors.

The rules (``SelectableService.getService`` in kork):

1. no criteria is an error;
2. among the selectors that support the criteria, the highest priority wins;
3. ties go to the selector listed earlier;
4. if none supports the criteria, the *first* selector's service is returned,
   whether or not it matches and whatever its priority.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from selectors_lib._criteria import Criteria
from selectors_lib._errors import ConfigError, ConfigIssue
from selectors_lib._pool import Endpoint
from selectors_lib._validate import key_text

from ._selectors import Selector, parse_selector
from ._spring import Issues, as_int, as_list, check_url, describe, key_issue, nearest

__all__ = [
    "CRITERIA_REQUIRED",
    "SelectableService",
    "SelectorTrace",
    "SpinnakerDecision",
    "parse_entries",
    "selectable_service",
    "wrapped_int32",
]

CRITERIA_REQUIRED = "Criteria is required to select a service"
_ENTRY_KEYS = frozenset({"baseUrl", "priority", "config"})


def wrapped_int32(value: int) -> int:
    """``value`` wrapped to a Java ``int`` (32-bit two's complement), as Java arithmetic does."""
    return (value + 2**31) % 2**32 - 2**31


@attrs.frozen
class SelectorTrace:
    """How one selector fared for one request.

    Args:
        index: The entry's position.
        base_url: Its ``baseUrl``.
        priority: Its priority.
        selector_class: Its simple class name.
        matched: Whether it supports the criteria.
        won: Whether it was chosen.
        reason: What it tests, in words.
    """

    index: int
    base_url: str
    priority: int
    selector_class: str
    matched: bool
    won: bool
    reason: str


@attrs.frozen
class SpinnakerDecision:
    """Where a request goes and why: what :meth:`SelectableService.explain` returns.

    Args:
        endpoint: The chosen base URL as an :class:`~selectors_lib.Endpoint`.
        index: Position of the winning entry.
        priority: Its priority.
        fallback: True when no selector matched and the first entry took the request.
        considered: Every selector, in config order.
    """

    endpoint: Endpoint
    index: int
    priority: int
    fallback: bool
    considered: tuple[SelectorTrace, ...]

    def __str__(self) -> str:
        how = "no selector matched: first entry" if self.fallback else f"entry {self.index}"
        lines = [f"-> {self.endpoint.url} ({how}, priority {self.priority})"]
        for t in self.considered:
            mark = "*" if t.won else ("+" if t.matched else "-")
            lines.append(f"   {mark} [{t.index}] priority {t.priority} {t.base_url}: {t.reason}")
        return "\n".join(lines)


@attrs.frozen
class SelectableService:
    """A list of v1 selectors that picks one base URL per request.

    Build one with :func:`selectable_service` (or :func:`from_orca_config` /
    :func:`from_gate_config`); immutable and safe to share between threads.

    Args:
        selectors: The selectors, in config order (at least one).
        warnings: Problems that did not stop loading (ignored keys, selectors
            that can never match, risky patterns).
    """

    selectors: tuple[Selector, ...]
    warnings: tuple[ConfigIssue, ...] = ()
    _endpoints: tuple[Endpoint, ...] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if not self.selectors:
            raise ConfigError.single("baseUrls", "must not be an empty list")
        # Spinnaker identifies a service by its URL: one Endpoint per entry, id = URL.
        endpoints = tuple(Endpoint(s.base_url, s.base_url) for s in self.selectors)
        object.__setattr__(self, "_endpoints", endpoints)

    @property
    def urls(self) -> list[str]:
        """The base URLs, in config order (repeats kept)."""
        return [s.base_url for s in self.selectors]

    def _winner(self, criteria: Criteria | None) -> int:
        if criteria is None:
            raise ValueError(CRITERIA_REQUIRED)
        # kork: selectors.stream().filter(supports).min((a, b) -> b.getPriority()
        # - a.getPriority()). Stream.min keeps the current best while
        # compare(best, s) <= 0, and the int subtraction wraps at 32 bits, so
        # the best is replaced only when the wrapped difference is positive:
        # for priorities more than 2**31 - 1 apart that is not "higher wins".
        best = -1
        best_priority = 0
        for i, selector in enumerate(self.selectors):
            if (
                best < 0 or wrapped_int32(selector.priority - best_priority) > 0
            ) and selector.supports(criteria):
                best, best_priority = i, selector.priority
        # Nothing matched: Spinnaker returns the first selector's service.
        return max(best, 0)

    def select(self, criteria: Criteria | None) -> Endpoint:
        """Return the endpoint (``id`` and ``url`` = the entry's ``baseUrl``) for ``criteria``.

        Args:
            criteria: The request's criteria.

        Returns:
            The chosen endpoint.

        Raises:
            ValueError: ``criteria`` is ``None`` (``Criteria is required to select a service``).
        """
        return self._endpoints[self._winner(criteria)]

    def explain(self, criteria: Criteria | None) -> SpinnakerDecision:
        """Route ``criteria`` and say why, selector by selector.

        Raises:
            ValueError: ``criteria`` is ``None``.
        """
        if criteria is None:
            raise ValueError(CRITERIA_REQUIRED)
        winner = self._winner(criteria)
        traces = []
        fallback = True
        for i, s in enumerate(self.selectors):
            matched = s.supports(criteria)
            fallback = fallback and not matched
            traces.append(
                SelectorTrace(
                    i, s.base_url, s.priority, s.selector_class, matched, i == winner, s.describe()
                )
            )
        chosen = self.selectors[winner]
        return SpinnakerDecision(
            self._endpoints[winner], winner, chosen.priority, fallback, tuple(traces)
        )


def parse_entries(
    raw: object, path: str, issues: Issues, warnings: Issues
) -> tuple[Selector, ...] | None:
    """Build selectors from a ``baseUrls`` list (a real list or an index-keyed map).

    Args:
        raw: The list of entries ``{baseUrl, priority, config}``.
        path: Where the list sits, e.g. ``clouddriver.readonly.baseUrls``.
        issues: Errors are appended here (every problem, not just the first).
        warnings: Non-fatal problems are appended here.

    Returns:
        The selectors in config order, or ``None`` when anything was wrong.
    """
    entries = as_list(raw, path, "", issues)
    if entries is None:
        return None
    selectors: list[Selector] = []
    good = True
    for index, entry in enumerate(entries):
        selector = _entry(index, entry, f"{path}[{index}]", issues, warnings)
        if selector is None:
            good = False
        else:
            selectors.append(selector)
    return tuple(selectors) if good else None


def _entry(
    index: int, entry: object, path: str, issues: Issues, warnings: Issues
) -> Selector | None:
    if not isinstance(entry, Mapping):
        issues.append(
            ConfigIssue(
                path, f"entry {index}: expected a mapping with baseUrl, got {describe(entry)}"
            )
        )
        return None
    raw_url = entry.get("baseUrl")
    shown = raw_url if isinstance(raw_url, str) else "no baseUrl"
    where = f"entry {index} ({shown}): "
    before = len(issues)
    url: str | None = None
    if raw_url is None:
        issues.append(
            ConfigIssue(f"{path}.baseUrl", f"entry {index}: missing required key 'baseUrl'")
        )
    else:
        url = check_url(raw_url, f"{path}.baseUrl", where, issues)
    priority: int | None = 1
    if entry.get("priority") is not None:
        priority = as_int(entry["priority"], f"{path}.priority", where, issues)
    for key in entry:
        if key not in _ENTRY_KEYS and not key_issue(key, path, where, issues):
            hint = nearest(key, _ENTRY_KEYS)
            warnings.append(
                ConfigIssue(
                    f"{path}.{key_text(key)}",
                    f"{where}unknown key ignored" + (f"; did you mean {hint!r}?" if hint else ""),
                )
            )
    if url is None or priority is None:
        # Still check the selector config, so every problem is reported at once.
        parse_selector(
            index, shown, 1, entry.get("config"), path=f"{path}.config", issues=issues, warnings=[]
        )
        return None
    selector = parse_selector(
        index,
        url,
        priority,
        entry.get("config"),
        path=f"{path}.config",
        issues=issues,
        warnings=warnings,
    )
    if len(issues) != before or selector is None:
        return None
    return attrs.evolve(selector, where=path)


def selectable_service(base_urls: Sequence[Any] | Any) -> SelectableService:
    """Build a v1 selectable service from Orca/Gate ``baseUrls`` entries.

    Args:
        base_urls: A list (or index-keyed map) of entries
            ``{"baseUrl": url, "priority": 1, "config": {"selectorClass": ..., ...}}``;
            ``priority`` defaults to 1 and an entry without ``selectorClass`` is a
            default selector (matches every request).

    Returns:
        The service: ``select(criteria)`` returns an
        :class:`~selectors_lib.Endpoint` whose ``url`` (and ``id``) is the chosen ``baseUrl``.

    Raises:
        ConfigError: Every problem found, each naming the entry (index and URL)
            and the key: a missing required key, an invalid regex, an unknown
            selector class, a value of the wrong type, an empty list.
    """
    return build_service(base_urls, "baseUrls")


def build_service(raw: object, path: str) -> SelectableService:
    """Build a service from the ``baseUrls`` list found at ``path`` (for messages)."""
    issues: Issues = []
    warnings: Issues = []
    selectors = parse_entries(raw, path, issues, warnings)
    if issues or not selectors:
        raise ConfigError(issues)
    return SelectableService(selectors, tuple(warnings))
