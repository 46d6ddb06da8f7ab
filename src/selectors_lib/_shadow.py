"""Finding rules that can never win, in time linear in the number of rules.

A rule is *shadowed* when a rule tried before it matches every request it
matches. Comparing every pair costs O(rules²) (85 s at 10k rules), so each
rule is filed under one *anchor* field as it is seen, and a later rule looks up
only the earlier rules whose anchor could cover one of its own fields: a hash
lookup for ``equals`` anchors (every value of every ``equals`` field, keyed as
the index keys requests) and for identical pattern lists; lists for
``present`` and pattern anchors. At most :data:`MAX_CANDIDATES` (the earliest)
are checked per key.
The analysis is conservative: it may miss a shadowed rule past that bound,
never report one that can win.

Running an operator's pattern over another rule's ``equals`` values is how
one proves a pattern covers them; with ``regex_engine: re`` a pattern such as
``(a+)+$`` would backtrack for minutes on ``aaaa…a!``. Such a pattern runs only
when :func:`~selectors_lib._regex.cheap_to_run` holds and the value is at most
:data:`MAX_CHECKED_LENGTH` characters; with ``re2`` (linear time) it always
runs, within the request length cap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ._match import FieldMatch, equals_key
from ._regex import cheap_to_run

if TYPE_CHECKING:
    from ._router import Rule
    from ._validate import Checker

__all__ = ["MAX_CANDIDATES", "MAX_CHECKED_LENGTH", "report_shadowed"]

#: Earlier rules checked per field of a rule from one ``present`` or pattern list.
MAX_CANDIDATES = 64
#: ``equals`` values longer than this are never run through a ``re`` pattern at load.
MAX_CHECKED_LENGTH = 256

_Key = tuple[object, ...]


class _Covers:
    """Whether one matcher accepts every value another accepts (conservatively)."""

    def __init__(self, engine: str) -> None:
        self._linear = engine == "re2"
        self._cheap: dict[str, bool] = {}

    def _may_run(self, wide: FieldMatch, values: Sequence[str]) -> bool:
        if not wide.compiled:
            return True  # equals: a set lookup or a char-by-char comparison
        if any(len(v) > wide.max_length for v in values):
            return True  # too long to reach a pattern: test() returns False unrun
        if wide.syntax == "java":
            # Java patterns compile to Python re under either engine, and their
            # translation is too rich for cheap_to_run: never run at load.
            return False
        if self._linear:
            return True
        if any(len(v) > MAX_CHECKED_LENGTH for v in values):
            return False
        for pattern in wide.regex:
            cheap = self._cheap.get(pattern)
            if cheap is None:
                cheap = self._cheap[pattern] = cheap_to_run(pattern)
            if not cheap:
                return False
        return True

    def __call__(self, wide: FieldMatch, narrow: FieldMatch) -> bool:
        if wide.present is not None:
            return (narrow.present is None and wide.present) or narrow.present == wide.present
        if narrow.present is not None or wide.case != narrow.case:
            return False
        if narrow.regex:
            return wide.regex == narrow.regex and wide.syntax == narrow.syntax
        # Unknown (too risky to run) counts as not covered: no false warning.
        return self._may_run(wide, narrow.equals) and all(wide.test(v) for v in narrow.equals)


def _anchor(fields: Mapping[str, FieldMatch]) -> list[_Key]:
    """The keys an earlier rule is filed under: every ``equals`` value, else a field."""
    keys: list[_Key] = []
    for source, m in fields.items():
        if m.present is None and not m.regex and m.equals:
            config_key = equals_key(m.case)[1]
            keys.extend(("equals", source, m.case, config_key(v)) for v in dict.fromkeys(m.equals))
    if keys:
        return keys
    for source, m in fields.items():
        if m.present is None and m.regex:
            return [("regex", source, m.case, m.regex), ("regex-list", source, m.case)]
    source, m = next(iter(fields.items()))
    if m.present is None:  # an empty equals: matches nothing, covers nothing
        return []
    return [("present" if m.present else "absent", source)]


def _lookups(fields: Mapping[str, FieldMatch]) -> list[_Key]:
    """The keys under which earlier rules that could cover these fields are filed."""
    keys: list[_Key] = []
    for source, m in fields.items():
        if m.present is False:
            keys.append(("absent", source))
            continue
        keys.append(("present", source))
        if m.present is not None:
            continue
        if m.regex:
            keys.append(("regex", source, m.case, m.regex))
        elif m.equals:
            request_key = equals_key(m.case)[0]
            keys.append(("equals", source, m.case, request_key(m.equals[0])))
            keys.append(("regex-list", source, m.case))
    return keys


def report_shadowed(check: Checker, rules: Sequence[tuple[int, Rule]], engine: str) -> None:
    """Warn about each rule that can never win, naming the first rule that shadows it.

    Args:
        check: Collects the warnings (at ``routes[i]``).
        rules: ``(index in the file, rule)`` of the non-default rules.
        engine: The configuration's regex engine.
    """
    covers = _Covers(engine)
    order = sorted(rules, key=lambda p: (-(p[1].priority or 0), p[0]))
    filed: dict[_Key, list[int]] = {}
    fields_of: list[Mapping[str, FieldMatch]] = []
    catch_all: int | None = None
    for pos, (index, rule) in enumerate(order):
        narrow = rule.match.as_mapping()
        fields_of.append(narrow)
        candidates: set[int] = set() if catch_all is None else {catch_all}
        for key in _lookups(narrow):
            candidates.update(filed.get(key, ())[:MAX_CANDIDATES])
        # The first rule in scan order that covers it, as a pairwise scan finds.
        for earlier in sorted(candidates):
            wide = fields_of[earlier]
            if all(src in narrow and covers(m, narrow[src]) for src, m in wide.items()):
                earlier_index, earlier_rule = order[earlier]
                check.warn(
                    f"routes[{index}]",
                    f"rule {rule.name!r} can never win: rule {earlier_rule.name!r} "
                    f"(routes[{earlier_index}]) "
                    "matches every request it matches and is tried first",
                )
                break
        if not narrow:
            if catch_all is None:
                catch_all = pos
            continue
        for key in dict.fromkeys(_anchor(narrow)):
            filed.setdefault(key, []).append(pos)
