"""Benchmark: Router.select() on the bundled example vs a Spinnaker-style linear scan.

A Zipf-distributed stream of criteria (10k users, 500 applications) is routed
three ways in one run:

- ``cached``: a Router with its decision cache (the default);
- ``uncached``: the same Router with ``cache_size: 0``;
- ``baseline``: what Spinnaker does on every call: evaluate every selector with
  ``re.fullmatch`` (the ``re`` module's pattern cache only), keep the highest
  priority, ties to the earlier one.

Per-call times are medians over batches (a batch amortises the timer's own
cost); absolute numbers drift on shared machines, ratios are the point.

Usage: python bench/bench_select.py [--quick]
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import random
import re
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from selectors_lib import Criteria, Router, load_config
from selectors_lib._config import parse_config
from selectors_lib._demo import example_config_text


def zipf_sampler(rng: random.Random, n: int, s: float = 1.1) -> Callable[[], int]:
    cumulative = list(itertools.accumulate(1.0 / (k**s) for k in range(1, n + 1)))
    total = cumulative[-1]
    return lambda: bisect.bisect_left(cumulative, rng.random() * total)


def make_population(size: int, rng: random.Random) -> list[Criteria]:
    """Distinct request shapes: who calls, for which application, from where."""
    users = [f"user{i}@example.com" for i in range(10_000)]
    users[3] = "deploy-bot+ci@example.com"
    apps = [f"app{i}" for i in range(500)]
    apps[:6] = ["playback", "api-gateway", "edge", "titus-control", "infra-dns", "spinnaker"]
    pick_user, pick_app = zipf_sampler(rng, len(users), 1.0), zipf_sampler(rng, len(apps), 1.0)
    population: dict[Criteria, None] = {}
    while len(population) < size:
        roll = rng.random()
        orchestration = roll > 0.85
        criteria = Criteria(
            application=apps[pick_app()],
            authenticated_user=users[pick_user()],
            origin="deck" if roll < 0.4 else "api",
            execution_type="orchestration"
            if orchestration
            else ("pipeline" if roll > 0.6 else None),
            execution_id=f"exec-{rng.randrange(5000)}" if orchestration else None,
        )
        population[criteria] = None
    return list(population)


def make_stream(count: int, seed: int = 7) -> list[Criteria]:
    """A Zipf-distributed stream over 20k distinct criteria (10k users, 500 apps).

    Real read traffic repeats itself: the UI and Orca poll the same
    (user, application, execution) over and over, the most active far more often.
    """
    rng = random.Random(seed)
    population = make_population(20_000, rng)
    pick = zipf_sampler(rng, len(population), 1.0)
    return [population[pick()] for _ in range(count)]


def spinnaker_baseline(config: dict[str, Any]) -> Callable[[Criteria], str]:
    """A straight port of Spinnaker's SelectableService: scan all, re.fullmatch each call."""
    selectors: list[tuple[int, Callable[[Criteria], bool], str]] = []
    for route in config["routes"]:
        target = route["target"]
        service = target if isinstance(target, str) else target["endpoints"][0]
        if route.get("default"):
            selectors.append((-(2**31), lambda c: True, service))
            continue
        tests: list[Callable[[Criteria], bool]] = []
        for field, raw_spec in route.get("match", {}).items():
            spec = {"equals": raw_spec} if isinstance(raw_spec, str) else raw_spec
            case = spec.get("case", "sensitive")
            if "regex" in spec:
                pattern = spec["regex"]

                def test(
                    c: Criteria, f: str = field, p: str = pattern, lower: bool = case == "lower"
                ) -> bool:
                    value = getattr(c, f)
                    return (
                        value is not None
                        and re.fullmatch(p, value.lower() if lower else value) is not None
                    )

            else:
                wanted = spec["equals"]

                def test(
                    c: Criteria, f: str = field, w: str = wanted, ignore: bool = case == "ignore"
                ) -> bool:
                    value = getattr(c, f)
                    return value is not None and (
                        value.lower() == w.lower() if ignore else value == w
                    )

            tests.append(test)
        selectors.append(
            (route.get("priority", 0), lambda c, t=tuple(tests): all(x(c) for x in t), service)
        )

    def select(criteria: Criteria) -> str:
        best: tuple[int, str] | None = None
        for priority, supports, service in selectors:
            if supports(criteria) and (best is None or priority > best[0]):
                best = (priority, service)
        return best[1] if best else selectors[0][2]

    return select


def measure(
    fn: Callable[[Criteria], object], stream: Sequence[Criteria], batch: int = 200
) -> tuple[float, float]:
    """Return (median ns per call over batches, calls per second overall)."""
    for c in stream[:2000]:
        fn(c)  # warm up (and fill caches, as in steady state)
    per_call: list[float] = []
    perf = time.perf_counter_ns
    start = perf()
    for i in range(0, len(stream) - batch + 1, batch):
        chunk = stream[i : i + batch]
        t0 = perf()
        for c in chunk:
            fn(c)
        per_call.append((perf() - t0) / batch)
    elapsed = (perf() - start) / 1e9
    return statistics.median(per_call), len(per_call) * batch / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a shorter stream")
    args = parser.parse_args()
    import yaml

    raw = yaml.safe_load(example_config_text())
    stream = make_stream(50_000 if args.quick else 300_000)
    cached = Router(load_config(raw))
    uncached = Router(
        parse_config({**raw, "settings": {**raw.get("settings", {}), "cache_size": 0}})
    )
    baseline = spinnaker_baseline(raw)

    # The three must agree on the rule's first endpoint where the rule is a single endpoint.
    rows = []
    for name, fn in (
        ("selectors_lib cached", cached.select),
        ("selectors_lib uncached", uncached.select),
        ("spinnaker-style scan", baseline),
    ):
        p50, rate = measure(fn, stream)
        rows.append((name, p50, rate))
    base_p50 = rows[-1][1]
    print(f"select() over {len(stream):,} Zipf criteria (10k users, 500 apps), example config")
    print(f"{'implementation':<26}{'p50 ns/call':>14}{'calls/s':>14}{'speed-up vs scan':>18}")
    for name, p50, rate in rows:
        print(f"{name:<26}{p50:>14.0f}{rate:>14,.0f}{base_p50 / p50:>17.2f}x")
    distinct = len(set(stream))
    print(
        f"distinct criteria in the stream: {distinct:,} ({distinct / len(stream):.1%}); "
        f"cache size {cached.config.settings.cache_size:,}"
    )
    warm = list(dict.fromkeys(stream))[: cached.config.settings.cache_size // 2] * 4
    hit_p50, hit_rate = measure(cached.select, warm)
    miss_p50, _ = measure(uncached.select, warm)
    print(
        f"cache hits only: p50 {hit_p50:.0f} ns/call, {hit_rate:,.0f} calls/s ({miss_p50 / hit_p50:.1f}x uncached)"
    )


if __name__ == "__main__":
    main()
