"""Benchmark: an adversarial value against ``(a+)+$`` under each regex policy.

The pattern comes from the operator, the value from a client. The value is
``"a" * n + "!"``: Python's backtracking ``re`` tries every way of splitting the
a's between the two ``+`` before failing, so its time doubles with each extra
character. Three policies, all through the router's real matcher
(:class:`selectors_lib.FieldMatch` built by :func:`selectors_lib.load_config`):

- ``re, no cap``: ``re`` with ``max_value_length`` at its maximum (1 MiB):
  exponential, so it is stopped once one call passes ``--budget`` seconds;
- ``re, cap``: ``re`` with the default ``max_value_length: 4096``: a longer
  value never reaches the pattern (rejected in constant time), but a shorter
  one is just as exponential as without the cap;
- ``re2``: ``regex_engine: re2`` (linear time by construction) with the 1 MiB cap.

What it shows: the cap bounds *how much* input a pattern sees, not how long a
backtracking pattern takes on it; only RE2 (plus the cap, which bounds RE2's
linear time) is bounded for every value. Hence the policy: keep the cap, heed
the ``nested_quantifier`` warning, and choose ``re2`` when patterns meet
untrusted values. Absolute times drift on shared machines; the ratios and the
growth per row are the point.

Usage: python bench/bench_regex.py [--budget SECONDS] [--quick]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from selectors_lib import FieldMatch, load_config

PATTERN = r"(a+)+$"
SIZES = (10, 14, 16, 18, 20, 21, 22, 23, 24, 26, 1_000, 4_096, 4_097, 100_000, 1_000_000)


def matcher(engine: str, max_value_length: int) -> FieldMatch:
    """The router's own matcher for ``PATTERN``, as a config would build it."""
    config = load_config(
        {
            "version": 1,
            "settings": {"regex_engine": engine, "max_value_length": max_value_length},
            "endpoints": {"a": "http://a", "b": "http://b"},
            "routes": [
                {"name": "r", "match": {"application": {"regex": PATTERN}}, "target": "a"},
                {"name": "d", "default": True, "target": "b"},
            ],
        }
    )
    ((_, field),) = config.rules[0].match.fields
    return field


def best_of(fn: Callable[[], object], budget: float) -> float:
    """Best time of a few calls (one call only when a call is slow)."""
    times: list[float] = []
    total = 0.0
    while len(times) < 5 and (total < budget or not times):
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        times.append(elapsed)
        total += elapsed
        if elapsed > budget / 10:
            break
    return min(times)


def fmt(seconds: float | None, note: str = "") -> str:
    if seconds is None:
        return note
    if seconds < 1e-3:
        return f"{seconds * 1e6:8.1f} us"
    return f"{seconds * 1e3:8.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--budget", type=float, default=0.5, help="stop re once a call takes longer (seconds)"
    )
    parser.add_argument("--quick", action="store_true", help="a 0.05 s budget (CI smoke run)")
    args = parser.parse_args()
    if args.quick:
        args.budget = min(args.budget, 0.05)

    uncapped = matcher("re", 1 << 20)
    capped = matcher("re", 4096)
    linear = matcher("re2", 1 << 20)
    config = load_config(
        {
            "version": 1,
            "endpoints": {"a": "http://a", "b": "http://b"},
            "routes": [
                {"name": "r", "match": {"application": {"regex": PATTERN}}, "target": "a"},
                {"name": "d", "default": True, "target": "b"},
            ],
        }
    )
    print(f"pattern {PATTERN!r}, value 'a' * n + '!'; load warning:")
    for warning in config.warnings:
        print(f"  {warning}")
    print()
    header = f"{'n':>9} | {'re, no cap':>12} | {'re, cap 4096':>14} | {'re2':>11} | re / re2"
    print(header)
    print("-" * len(header))

    stopped_at: int | None = None
    for n in SIZES:
        value = "a" * n + "!"
        assert not linear.test(value)
        t_re2 = best_of(lambda v=value: linear.test(v), args.budget)

        t_re: float | None = None
        if stopped_at is None:
            t_re = best_of(lambda v=value: uncapped.test(v), args.budget)
            if t_re > args.budget:
                stopped_at = n
        re_cell = fmt(t_re, "stopped")

        t_cap: float | None
        if n > capped.max_length:
            t_cap = best_of(lambda v=value: capped.test(v), args.budget)
            cap_cell = fmt(t_cap) + " *"
        elif t_re is not None:
            t_cap = t_re  # under the cap the same pattern runs on the same value
            cap_cell = fmt(t_cap)
        else:
            t_cap = None
            cap_cell = "= no cap"

        ratio = f"{t_re / t_re2:10.0f}x" if t_re is not None else ""
        print(f"{n:>9} | {re_cell:>12} | {cap_cell:>14} | {fmt(t_re2):>11} | {ratio}")

    print()
    print("* rejected by the cap without running the pattern (constant time).")
    if stopped_at is not None:
        print(f"re without a cap was stopped after n={stopped_at} (one call over {args.budget} s).")
    print(
        "re doubles per character: under the cap it is exponential, cap or not. "
        "re2 grows linearly and stays bounded by the cap."
    )


if __name__ == "__main__":
    main()
