"""``selectors-lib simulate``: synthetic keys through a pool, spread and movement.

Answers "what share does each replica get, and how many keys move when one is
added, removed or marked down", from the pool's own table, without a request.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, TextIO

import attrs

from ._cli_output import _safe, _Style, _table, _UsageError
from ._criteria import Criteria
from ._pool import Endpoint, EndpointHealth, Pool, PoolState
from ._router import RouterConfig, Rule

__all__ = ["_render_simulation", "simulate"]


@attrs.frozen
class _Scenario:
    """One change to a pool and how many keys it moves."""

    change: str
    endpoint: str | None
    moved: int
    ideal: int
    panic: bool = False


def _lookup(pool: Pool) -> Callable[[str], str]:
    if len(pool.endpoints) == 1:
        only = pool.endpoints[0].id
        return lambda key: only
    return pool.build_table().lookup


def _find_rule(config: RouterConfig, name: str | None) -> Rule:
    rules = (*config.rules, config.default)
    if name is None:
        return config.default
    for rule in rules:
        if rule.name == name:
            return rule
    known = ", ".join(_safe(r.name, 60) for r in rules)
    raise _UsageError(f"no rule named {name!r}; rules: {known}")


def _keyed(pool: Pool) -> tuple[Pool, Callable[[str], Criteria]]:
    """The pool, and a function putting a key where the pool's first ``hash_on`` reads it."""
    if not pool.hash_on:
        pool = attrs.evolve(pool, hash_on=("attributes.simulated-key",))
    source = pool.hash_on[0]
    if source.startswith("attributes."):
        name = source[len("attributes.") :]
        return pool, lambda key: Criteria(attributes={name: key})
    return pool, lambda key: Criteria(**{source: key})


def simulate(config: RouterConfig, rule_name: str | None, n_keys: int) -> dict[str, Any]:
    """Spread ``n_keys`` synthetic keys over a rule's pool and measure movement.

    Args:
        config: A validated configuration.
        rule_name: The rule whose pool to simulate (``None``: the default rule).
        n_keys: How many keys (``key-0`` ... ``key-<n-1>``).

    Returns:
        A JSON-ready report: per-replica counts and shares, and for adding one
        replica, removing each, and marking each down, how many keys move and
        how many would ideally (only those that must).

    Raises:
        _UsageError: No rule has that name.
    """
    rule = _find_rule(config, rule_name)
    pool = rule.target
    keys = [f"key-{i}" for i in range(n_keys)]
    before = [_lookup(pool)(k) for k in keys]
    counts = Counter(before)
    total_weight = sum(pool.weights)
    replicas = [
        {
            "id": e.id,
            "weight": w,
            "keys": counts.get(e.id, 0),
            "share": counts.get(e.id, 0) / n_keys,
            "expected": w / total_weight,
        }
        for e, w in zip(pool.endpoints, pool.weights, strict=True)
    ]

    scenarios: list[_Scenario] = []
    ids = set(pool.ids)
    new_id = next(f"new-{i}" for i in range(len(ids) + 1) if f"new-{i}" not in ids)
    grown = attrs.evolve(
        pool,
        endpoints=(*pool.endpoints, Endpoint(new_id, "http://simulated.invalid")),
        weights=(*pool.weights, 1),
    )
    after = [_lookup(grown)(k) for k in keys]
    moved = sum(a != b for a, b in zip(before, after, strict=True))
    scenarios.append(_Scenario("add", new_id, moved, round(n_keys / (total_weight + 1))))

    if len(pool.endpoints) > 1:
        for index, endpoint in enumerate(pool.endpoints):
            smaller = attrs.evolve(
                pool,
                endpoints=pool.endpoints[:index] + pool.endpoints[index + 1 :],
                weights=pool.weights[:index] + pool.weights[index + 1 :],
            )
            after = [_lookup(smaller)(k) for k in keys]
            moved = sum(a != b for a, b in zip(before, after, strict=True))
            scenarios.append(_Scenario("remove", endpoint.id, moved, counts.get(endpoint.id, 0)))

        keyed, criteria_of = _keyed(pool)
        table = keyed.build_table()
        for endpoint in pool.endpoints:
            state = PoolState(
                keyed, table, {endpoint.id: EndpointHealth(False, "manual", "simulated")}
            )
            after = [state.pick(criteria_of(k)).id for k in keys]
            moved = sum(a != b for a, b in zip(before, after, strict=True))
            ideal = 0 if state.panic else counts.get(endpoint.id, 0)
            scenarios.append(_Scenario("down", endpoint.id, moved, ideal, state.panic))

    return {
        "rule": rule.name,
        "algorithm": pool.algorithm,
        "keys": n_keys,
        "replicas": replicas,
        "movement": [
            {
                "change": s.change,
                "endpoint": s.endpoint,
                "moved": s.moved,
                "share": s.moved / n_keys,
                "ideal": s.ideal,
                "ideal_share": s.ideal / n_keys,
                "panic": s.panic,
            }
            for s in scenarios
        ],
    }


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _render_simulation(report: Mapping[str, Any], out: TextIO, style: _Style, width: int) -> None:
    out.write(
        style.bold(
            f"Rule {_safe(report['rule'])}: {report['keys']} keys over "
            f"{len(report['replicas'])} replica{'s' if len(report['replicas']) != 1 else ''} "
            f"({report['algorithm']})"
        )
        + "\n"
    )
    top = max(r["keys"] for r in report["replicas"]) or 1
    rows = [["REPLICA", "WEIGHT", "KEYS", "SHARE", "EXPECTED", ""]]
    for r in report["replicas"]:
        bar = "#" * round(width * r["keys"] / top)
        rows.append(
            [
                _safe(r["id"], 40),
                str(r["weight"]),
                str(r["keys"]),
                _pct(r["share"]),
                _pct(r["expected"]),
                style.good(bar),
            ]
        )
    out.write(_table(rows))
    out.write("\n" + style.bold("Keys that move") + "\n")
    rows = [["CHANGE", "MOVED", "IDEAL", ""]]
    for m in report["movement"]:
        what = {
            "add": f"add a replica ({_safe(m['endpoint'], 40)}, weight 1)",
            "remove": f"remove {_safe(m['endpoint'], 40)}",
            "down": f"mark {_safe(m['endpoint'], 40)} down",
        }[m["change"]]
        note = ""
        if m["panic"]:
            note = style.warn("panic: too few live replicas, health ignored")
        elif m["moved"] > m["ideal"]:
            extra = (m["moved"] - m["ideal"]) / report["keys"]
            note = style.warn(f"{_pct(extra)} more than needed")
        rows.append([what, _pct(m["share"]), _pct(m["ideal_share"]), note])
    out.write(_table(rows))
    out.write(
        style.dim("  ideal: only the keys that must move (the new replica's share, or the keys")
        + "\n"
        + style.dim("  of the replica removed or down)")
        + "\n"
    )
