"""The compiled rule index: which rule wins, in time independent of the rule count.

A linear scan tries every rule from the highest rank down (priority, then
declaration order). The index gives the same answer without trying them all:

- Each rule with an ``equals`` or ``present`` field is filed under *one* such
  field (its *key field*): ``equals`` values go into a hash table per
  ``(source, case mode)`` keyed by :func:`~selectors_lib._match.equals_key`, the
  same normalisation the matcher compares with; ``present`` rules go into a
  per-source list for present values and one for absent values. The rule's
  other fields are checked only when a request reaches it.
- Rules with no such field (regex only, or an empty match) stay in a residual
  list in rank order; a one-pattern rule there checks the pattern's literal
  prefix with ``str.startswith`` before running it.

A request looks its values up in each table, takes the best-ranked candidate
whose remaining fields match, then scans the residual list only down to that
rank. Every rule the request could match is a candidate (its key field must
match, so the request finds it under that key), and candidates are taken in
rank order, so the winner is the linear scan's winner; ``tests/core`` proves it
against the scan with Hypothesis.

The key field is the one whose busiest key holds the fewest rules, so a bucket
rarely holds more than a few rules: ``application: a`` + ``authenticated_user: u``
rules for one application and many users go under the user.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ._criteria import Criteria
from ._match import FieldMatch, Match, equals_key, getter

if TYPE_CHECKING:
    from ._router import Rule

__all__ = ["RuleIndex"]

#: ``(rank, test of the fields other than the key field, or None)``.
_Entry = tuple[int, Callable[[Criteria], bool] | None]
_Getter = Callable[[Criteria], str | None]
#: (read the value, its request key (None: the value itself), rules by key).
_EqualsGroup = tuple[_Getter, Callable[[str], str] | None, dict[str, tuple[_Entry, ...]]]
#: (read the value, rules for a present value, rules for an absent one).
_PresenceGroup = tuple[_Getter, tuple[_Entry, ...], tuple[_Entry, ...]]

# A key field candidate: (group, keys). A group is ("equals", source, case) or
# ("presence", source); its keys are normalised values, or "present"/"absent".
_Group = tuple[str, ...]


def _candidates(match: Match) -> list[tuple[int, _Group, tuple[str, ...]]]:
    """Each indexable field of ``match``: (position, group, keys)."""
    out: list[tuple[int, _Group, tuple[str, ...]]] = []
    for pos, (source, matcher) in enumerate(match.fields):
        group_keys = _group_keys(source, matcher)
        if group_keys is not None:
            out.append((pos, *group_keys))
    return out


def _group_keys(source: str, m: FieldMatch) -> tuple[_Group, tuple[str, ...]] | None:
    # Mirrors FieldMatch._specialise: ``present`` decides first, then compiled
    # patterns, then equals (any case mode but lower/ignore is sensitive).
    if m.present is not None:
        return ("presence", source), ("present" if m.present else "absent",)
    if m.compiled:
        return None
    case = m.case if m.case in ("lower", "ignore") else "sensitive"
    config_key = equals_key(case)[1]
    # dict.fromkeys: distinct keys in order (two values may fold to one key).
    return ("equals", source, case), tuple(dict.fromkeys(config_key(v) for v in m.equals))


def _request_key(case: str) -> Callable[[str], str] | None:
    # None for the identity, so the common sensitive case makes no call.
    return None if case == "sensitive" else equals_key(case)[0]


def _prefiltered(match: Match) -> Callable[[Criteria], bool]:
    # A one-pattern rule is checked with str.startswith on the pattern's
    # literal prefix first: a value without it cannot match, and most
    # requests a residual pattern sees are ones it rejects.
    if len(match.fields) == 1:
        source, m = match.fields[0]
        if m.present is None and len(m.compiled) == 1 and m.case == "sensitive":
            from ._regex import literal_prefix  # only configurations with patterns

            prefix = literal_prefix(m.compiled[0])
            if prefix:
                get, test = getter(source), match.test
                return lambda c: (v := get(c)) is not None and v.startswith(prefix) and test(c)
    return match.test


def _rest(match: Match, skip: int) -> Callable[[Criteria], bool] | None:
    fields = tuple(f for i, f in enumerate(match.fields) if i != skip)
    return Match(fields).test if fields else None


class RuleIndex:
    """Finds the winning rule's rank among ``rules`` (in the order they are tried).

    Built once per configuration (in time linear in the total size of the
    matches) and shared by every snapshot of it: it holds ranks, not pools, so
    health changes do not rebuild it.

    Args:
        rules: The non-default rules in the order a linear scan tries them.
    """

    __slots__ = ("_equals", "_presence", "_residual", "size")

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.size = len(rules)
        candidates = [_candidates(rule.match) for rule in rules]
        # How many rules would sit under each key if filed under every field.
        load: dict[tuple[_Group, str], int] = {}
        group_size: dict[_Group, int] = {}
        for cands in candidates:
            for _, group, keys in cands:
                group_size[group] = group_size.get(group, 0) + 1
                for key in keys:
                    load[group, key] = load.get((group, key), 0) + 1
        buckets: dict[_Group, dict[str, list[_Entry]]] = {}
        residual: list[_Entry] = []
        for rank, (rule, cands) in enumerate(zip(rules, candidates, strict=True)):
            if not cands:
                residual.append((rank, _prefiltered(rule.match)))
                continue
            # The field whose busiest key holds the fewest rules; then the
            # busiest group (fewer groups to look up); then the first field.
            pos, group, keys = (
                cands[0]
                if len(cands) == 1
                else min(
                    cands,
                    key=lambda c: (
                        max((load[c[1], k] for k in c[2]), default=0),
                        -group_size[c[1]],
                        c[0],
                    ),
                )
            )
            entry = (rank, _rest(rule.match, pos))
            table = buckets.setdefault(group, {})
            for key in keys:
                table.setdefault(key, []).append(entry)
        self._equals: tuple[_EqualsGroup, ...] = tuple(
            (getter(group[1]), _request_key(group[2]), {k: tuple(v) for k, v in table.items()})
            for group, table in buckets.items()
            if group[0] == "equals"
        )
        self._presence: tuple[_PresenceGroup, ...] = tuple(
            (getter(group[1]), tuple(table.get("present", ())), tuple(table.get("absent", ())))
            for group, table in buckets.items()
            if group[0] == "presence"
        )
        self._residual = tuple(residual)

    def winner(self, criteria: Criteria) -> int:
        """The rank of the first rule (in scan order) matching ``criteria``; ``size`` if none."""
        best = self.size
        for get, request_key, table in self._equals:
            value = get(criteria)
            if value is None:
                continue
            bucket = table.get(value if request_key is None else request_key(value))
            if bucket is None:
                continue
            for rank, rest in bucket:
                if rank >= best:
                    break
                if rest is None or rest(criteria):
                    best = rank
                    break
        for get, present, absent in self._presence:
            for rank, rest in present if get(criteria) is not None else absent:
                if rank >= best:
                    break
                if rest is None or rest(criteria):
                    best = rank
                    break
        for rank, test in self._residual:
            if rank >= best:
                break
            if test is not None and test(criteria):
                best = rank
                break
        return best
