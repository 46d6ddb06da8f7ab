"""Reading values the way Spring binds Spinnaker's YAML, with clear errors.

Spring hands Spinnaker lists that sit inside free-form maps as index-keyed maps
(``{0: a, 1: b}`` or ``{"0": a}``) whose values Spinnaker reads in map order,
converts ``"10"`` to an ``int`` property, binds ``base-url`` to ``baseUrl`` and
reads flat dotted keys (``dynamic-routing.enabled: true``) like nested ones.
These helpers do the same, and report what they cannot read into a shared issue
list instead of raising, so a loader reports every problem of a file at once.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from selectors_lib._errors import ConfigIssue
from selectors_lib._validate import INT32, key_text, oversized_key, show, url_problem
from selectors_lib._validate import kind as describe

__all__ = [
    "INT32",
    "Issues",
    "as_bool",
    "as_int",
    "as_list",
    "as_strings",
    "check_url",
    "describe",
    "lookup",
    "mapping_at",
]

_INDEX = re.compile(r"0|[1-9][0-9]{0,8}")
# Spring's StringToBooleanConverter spellings.
_TRUE = frozenset({"true", "on", "yes", "1"})
_FALSE = frozenset({"false", "off", "no", "0"})

Issues = list[ConfigIssue]


def _spring_key(key: object) -> str:
    # The property name Spring's YAML loader gives a map key: 0 and "0" are one key.
    if isinstance(key, bool):
        return "true" if key else "false"
    return key_text(key)  # bounded: as_list refuses oversized integer keys first


def nearest(key: object, known: Iterable[str]) -> str | None:
    """The known property name ``key`` most likely misspells, if one is close.

    Args:
        key: A mapping key from the document.
        known: The property names valid there.

    Returns:
        The closest name (case and ``-``/``_`` ignored, as Spring binds), or None.
    """
    if not isinstance(key, str) or len(key) > 100:
        return None
    by_normal = {_normal(name): name for name in known}
    close = difflib.get_close_matches(_normal(key), list(by_normal), n=1, cutoff=0.8)
    return by_normal[close[0]] if close else None


def key_issue(key: object, path: str, where: str, issues: Issues) -> bool:
    """Report ``key`` if it is an integer too large to be a property name.

    Returns:
        True when it was reported (the caller skips the key).
    """
    if not oversized_key(key):
        return False
    issues.append(ConfigIssue(path, f"{where}a key cannot be {show(key)}"))
    return True


def as_list(
    value: object, path: str, where: str, issues: Issues, *, free_form: bool = False
) -> list[Any] | None:
    """Read a list given as a real list or as an index-keyed map.

    Spring reads the two kinds of list differently, and so does this:

    - a typed ``List`` property (``baseUrls``, v2 ``parameters`` and
      ``values``) binds the elements ``[0]``, ``[1]``, ... by index, whatever the
      map's order, and fails at startup on a gap or a non-numeric key (elements
      "left unbound");
    - a list inside a selector's free-form ``config`` map is bound as a map and
      read with ``((Map) config.get(key)).values()``: every value, in the map's
      order, whatever the keys (``free_form=True``). Keys Spring sees as one
      (``0`` and ``"0"``) collapse into one entry, the later value in the
      earlier place, as a ``LinkedHashMap`` does.

    Args:
        value: A list/tuple, or a mapping.
        path: Where the value sits, for messages.
        where: Prefix naming the entry (``entry 2 (https://...): ``).
        issues: Problems are appended here.
        free_form: Read a mapping as a free-form ``config`` list (see above).

    Returns:
        The items, or ``None`` after recording an issue. An empty list is an
        issue: Spring binds ``[]`` to an empty string and Spinnaker then fails
        with a ClassCastException.
    """
    if isinstance(value, list | tuple):
        items = list(value)
    elif isinstance(value, Mapping) and free_form:
        by_key: dict[str, Any] = {}
        for key, item in value.items():
            if key_issue(key, path, where, issues):
                return None
            by_key[_spring_key(key)] = item
        items = list(by_key.values())
    elif isinstance(value, Mapping):
        indexed: dict[int, Any] = {}
        for key, item in value.items():
            index: int | None = None
            if isinstance(key, int) and not isinstance(key, bool) and 0 <= key < 10**9:
                # Bounded like the text form: an index beyond is a gap anyway, and
                # str() of a 4000-digit key (in the message below) would raise.
                index = key
            elif isinstance(key, str) and _INDEX.fullmatch(key):
                index = int(key)
            if index is None:
                issues.append(
                    ConfigIssue(
                        path,
                        f"{where}expected a list (or a map keyed 0, 1, ...), "
                        f"got a mapping with key {show(key)}",
                    )
                )
                return None
            if index in indexed:
                issues.append(ConfigIssue(path, f"{where}index {index} is given twice"))
                return None
            indexed[index] = item
        if sorted(indexed) != list(range(len(indexed))):
            # Spring binds [0], [1], ... up to the first gap and then fails:
            # "the elements [...] were left unbound".
            issues.append(
                ConfigIssue(
                    path,
                    f"{where}an index-keyed list must use the keys 0..{len(indexed) - 1}, "
                    f"got {sorted(indexed)[:10]} (Spring fails on the elements after a gap)",
                )
            )
            return None
        items = [indexed[i] for i in range(len(indexed))]
    else:
        issues.append(ConfigIssue(path, f"{where}expected a list, got {describe(value)}"))
        return None
    if not items:
        issues.append(ConfigIssue(path, f"{where}must not be an empty list"))
        return None
    return items


def as_strings(
    value: object, path: str, where: str, issues: Issues, *, free_form: bool = False
) -> tuple[str, ...] | None:
    """Read a non-empty list (or index-keyed map) of strings (``free_form``: as :func:`as_list`)."""
    items = as_list(value, path, where, issues, free_form=free_form)
    if items is None:
        return None
    good = True
    for i, item in enumerate(items):
        if not isinstance(item, str):
            issues.append(
                ConfigIssue(
                    f"{path}[{i}]",
                    f"{where}expected a string, got {describe(item)} {show(item)}"
                    + (" (quote it)" if isinstance(item, int | float | bool) else ""),
                )
            )
            good = False
    return tuple(items) if good else None


def as_values(
    value: object,
    path: str,
    where: str,
    issues: Issues,
    warnings: Issues,
    *,
    free_form: bool = False,
) -> tuple[str, ...] | None:
    """Read a list of values compared with strings: non-strings are kept out, with a warning.

    Java holds such a list as raw objects and compares them with ``equals``: a
    YAML ``true`` or ``8`` loads and never equals a request's string. The
    result may therefore be empty (the selector then never matches).
    """
    items = as_list(value, path, where, issues, free_form=free_form)
    if items is None:
        return None
    for i, item in enumerate(items):
        if not isinstance(item, str):
            warnings.append(
                ConfigIssue(
                    f"{path}[{i}]",
                    f"{where}{describe(item)} {show(item)} never equals a request's string "
                    "(Java compares it as is); quote it to match its text",
                )
            )
    return tuple(item for item in items if isinstance(item, str))


def as_int(value: object, path: str, where: str, issues: Issues) -> int | None:
    """Read an ``int`` property: an integer, or decimal text as Spring converts it."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?[0-9]{1,10}\s*", value):
        number = int(value)
    if number is None:
        issues.append(ConfigIssue(path, f"{where}expected an integer, got {describe(value)}"))
        return None
    if not INT32[0] <= number <= INT32[1]:
        issues.append(ConfigIssue(path, f"{where}must fit a Java int, got {show(number)}"))
        return None
    return number


def as_bool(value: object, path: str, issues: Issues) -> bool | None:
    """Read a boolean property: a YAML boolean or one of Spring's spellings."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    issues.append(ConfigIssue(path, f"expected true or false, got {describe(value)}"))
    return None


def check_url(value: object, path: str, where: str, issues: Issues) -> str | None:
    """Check a base URL as strictly as the native loader checks endpoint URLs.

    Spinnaker would accept anything here and fail on the first call; we reject
    at load what the native format would reject, so a converted configuration
    always loads.
    """
    if not isinstance(value, str):
        issues.append(ConfigIssue(path, f"{where}expected a URL string, got {describe(value)}"))
        return None
    problem = url_problem(value)
    if problem:
        issues.append(ConfigIssue(path, f"{where}invalid URL {value!r:.80}: {problem}"))
        return None
    return value


def _normal(name: str) -> str:
    # Spring's relaxed binding: baseUrl, base-url, base_url and BASEURL are one property.
    return name.replace("-", "").replace("_", "").lower()


def lookup(node: object, path: Sequence[str]) -> object:
    """Find a property by path in a parsed Spring YAML document.

    Keys match with Spring's relaxed binding (case, ``-`` and ``_`` ignored), and
    a flat dotted key (``services.clouddriver.baseUrl: ...``) counts as the
    nested path. The first non-null value in document order wins.

    Args:
        node: The document (or a part of it).
        path: Property names, e.g. ``("clouddriver", "readonly", "baseUrls")``.

    Returns:
        The value, or ``None`` when absent.
    """
    return _lookup(node, tuple(_normal(p) for p in path), {})


def _lookup(node: object, wanted: tuple[str, ...], done: dict[tuple[int, int], object]) -> object:
    # ``done``: the answer per (mapping, remaining depth). YAML aliases share one
    # mapping under many keys (Base-Url, base_url, ...); without it a small
    # document made the search visit keys**depth paths (minutes at 400 keys).
    if not wanted:
        return node
    if not isinstance(node, Mapping):
        return None
    memo = (id(node), len(wanted))
    if memo in done:
        return done[memo]
    found: object = None
    for key, value in node.items():
        if not isinstance(key, str):
            continue
        parts = tuple(_normal(p) for p in key.split("."))
        if len(parts) > len(wanted) or parts != wanted[: len(parts)]:
            continue
        found = _lookup(value, wanted[len(parts) :], done)
        if found is not None:
            break
    done[memo] = found
    return found


def mapping_at(root: Mapping[str, Any], path: Sequence[str]) -> Mapping[Any, Any] | None:
    """The mapping found at ``path`` (see :func:`lookup`), or ``None``."""
    found = lookup(root, path)
    return found if isinstance(found, Mapping) else None
