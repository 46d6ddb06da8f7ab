"""Code point sets and case mappings exactly as the JDK has them.

A :class:`CharSet` is a sorted tuple of inclusive ``(low, high)`` ranges over
all code points (surrogates included, as Java reads a lone surrogate as a code
point). The Unicode data comes from the JDK (``_tables``), never from Python's
``unicodedata``: the two disagree wherever their Unicode versions do.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from . import _tables

__all__ = [
    "ALL",
    "EMPTY",
    "CharSet",
    "java_lower",
    "java_upper",
    "named_set",
    "table_set",
]

MAX_CODE_POINT = 0x10FFFF
Ranges = tuple[tuple[int, int], ...]


class CharSet:
    """An immutable set of code points, stored as merged ranges."""

    __slots__ = ("ranges",)

    def __init__(self, ranges: Iterable[tuple[int, int]] = ()) -> None:
        merged: list[tuple[int, int]] = []
        for low, high in sorted(ranges):
            if merged and low <= merged[-1][1] + 1:
                if high > merged[-1][1]:
                    merged[-1] = (merged[-1][0], high)
            else:
                merged.append((low, high))
        self.ranges: Ranges = tuple(merged)

    @classmethod
    def of(cls, *points: int) -> CharSet:
        """The set of the given code points."""
        return cls((p, p) for p in points)

    def __contains__(self, point: int) -> bool:
        lo, hi = 0, len(self.ranges)
        while lo < hi:
            mid = (lo + hi) // 2
            low, high = self.ranges[mid]
            if point < low:
                hi = mid
            elif point > high:
                lo = mid + 1
            else:
                return True
        return False

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CharSet) and self.ranges == other.ranges

    def __hash__(self) -> int:
        return hash(self.ranges)

    def __or__(self, other: CharSet) -> CharSet:
        return CharSet(self.ranges + other.ranges)

    def negate(self) -> CharSet:
        """Every code point not in this set."""
        out: list[tuple[int, int]] = []
        start = 0
        for low, high in self.ranges:
            if low > start:
                out.append((start, low - 1))
            start = high + 1
        if start <= MAX_CODE_POINT:
            out.append((start, MAX_CODE_POINT))
        return CharSet(out)

    def __and__(self, other: CharSet) -> CharSet:
        out: list[tuple[int, int]] = []
        a, b = self.ranges, other.ranges
        i = j = 0
        while i < len(a) and j < len(b):
            low = max(a[i][0], b[j][0])
            high = min(a[i][1], b[j][1])
            if low <= high:
                out.append((low, high))
            if a[i][1] < b[j][1]:
                i += 1
            else:
                j += 1
        return CharSet(out)

    def single(self) -> int | None:
        """The one code point of a one-element set, else None."""
        if len(self.ranges) == 1 and self.ranges[0][0] == self.ranges[0][1]:
            return self.ranges[0][0]
        return None


EMPTY = CharSet()
ALL = CharSet([(0, MAX_CODE_POINT)])


def _decode_set(packed: str) -> CharSet:
    ranges: list[tuple[int, int]] = []
    last = 0
    for item in packed.split():
        gap, length = item.split(".")
        low = last + int(gap, 36)
        last = low + int(length, 36)
        ranges.append((low, last))
    return CharSet(ranges)


def _decode_map(packed: str) -> dict[int, int]:
    out: dict[int, int] = {}
    last = 0
    for item in packed.split():
        sign = "+" if "+" in item else "-"
        gap, delta = item.split(sign)
        last += int(gap, 36)
        out[last] = last + int(delta, 36) * (1 if sign == "+" else -1)
    return out


_UPPER = _decode_map(_tables.UPPER)
_LOWER = _decode_map(_tables.LOWER)


def java_upper(c: int) -> int:
    """``Character.toUpperCase(int)``."""
    return _UPPER.get(c, c)


def java_lower(c: int) -> int:
    """``Character.toLowerCase(int)``."""
    return _LOWER.get(c, c)


@functools.cache
def table_set(index: int) -> CharSet:
    """The packed set number ``index`` of the JDK tables."""
    return _decode_set(_tables.SETS[index])


def named_set(kind: str, name: str, case_insensitive: bool) -> CharSet | None:
    """Look a property up as ``CharPredicates`` does.

    Args:
        kind: ``prop`` (``forProperty``), ``uprop`` (``forUnicodeProperty``),
            ``posix`` (``forPOSIXName``), ``script`` or ``block``.
        name: The name as written (the lookups that ignore case upper-case it).
        case_insensitive: Whether ``CASE_INSENSITIVE`` is on (it widens the
            case properties: ``\\p{Lu}`` then also matches lower case).

    Returns:
        The set, or None when Java knows no such name.
    """
    if kind in ("prop", "uprop", "posix"):
        table = {"prop": _tables.PROP, "uprop": _tables.UPROP, "posix": _tables.POSIX}[kind]
        key = name if kind == "prop" else name.upper()
        entry = table.get(key)
        if entry is None:
            return None
        return table_set(entry[1] if case_insensitive else entry[0])
    if kind == "script":
        upper = name.upper()
        script = _tables.SCRIPTALIAS.get(upper, upper)
        index = _tables.SCRIPT.get(script)
        return None if index is None else table_set(index)
    block = _tables.BLOCKALIAS.get(name.upper())
    return None if block is None else table_set(_tables.BLOCK[block])


# Case closures used by case-insensitive classes (Pattern.single / CIRangeU).
_FOLDERS: dict[int, list[int]] = {}
for _c in set(_UPPER) | set(_LOWER) | set(_UPPER.values()) | set(_LOWER.values()):
    _k = java_lower(java_upper(_c))
    if _k != _c:
        _FOLDERS.setdefault(_k, []).append(_c)
_UPPER_SOURCES: dict[int, list[int]] = {}
for _c, _u in _UPPER.items():
    _UPPER_SOURCES.setdefault(_u, []).append(_c)


def fold_key(c: int) -> int:
    """``Character.toLowerCase(Character.toUpperCase(c))``."""
    return java_lower(java_upper(c))


def unicode_single(c: int) -> CharSet:
    """What ``c`` matches under ``(?iu)``: ``SingleU`` / ``SliceU``."""
    key = fold_key(c)
    return CharSet.of(key, *_FOLDERS.get(key, ()))


def ascii_single(c: int) -> CharSet:
    """What ``c`` matches under ``(?i)`` without ``u``: ASCII letters pair up."""
    if 0x41 <= c <= 0x5A or 0x61 <= c <= 0x7A:
        return CharSet.of(c | 0x20, c & ~0x20)
    return CharSet.of(c)


def unicode_range(low: int, high: int) -> CharSet:
    """``CIRangeU``: c, its upper case, or the lower case of that is in range."""
    extra: list[int] = []
    for c, up in _UPPER.items():
        if low <= up <= high:
            extra.append(c)
    for key, sources in _FOLDERS.items():
        if low <= key <= high:
            extra.extend(sources)
    return CharSet([(low, high)]) | CharSet.of(*extra)


def ascii_range(low: int, high: int) -> CharSet:
    """``CIRange``: c, or its ASCII upper/lower case, is in range."""
    extra = [
        c
        for c in range(0x41, 0x7B)
        if (0x41 <= c <= 0x5A or c >= 0x61)
        and (low <= (c | 0x20) <= high or low <= (c & ~0x20) <= high)
    ]
    return CharSet([(low, high)]) | CharSet.of(*extra)
