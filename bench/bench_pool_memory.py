"""Benchmark: what a pool costs in memory, and cold against warm lookups, vs uhashring and hashring.

Three tables, each side by side with its peers in one run:

1. **Pool memory.** RSS growth of a fresh subprocess that builds N pools of 3
   replicas with the default algorithm (``slots``) and then looks up 2,000
   distinct keys in each (traffic may fill lazily built caches), for
   N = 1, 10, 100, 500, 1,000 -- and 100,000 for ``slots`` alone in a full run (the
   peers would need gigabytes). Reported as KiB per pool and MiB in all.
2. **Cold and warm lookups.** A freshly built table answers a pass of distinct keys
   (cold: every key is its table's first lookup of that slot) and then the same
   pass again (warm), at 10, 100 and 1,000 hosts; lookups per second and the ratio
   to uhashring in the same column.
3. **Router, first selects against steady state.** A Router whose default rule
   hashes ``authenticated_user`` over 100 replicas (decision cache off): the first
   pass of distinct users, then the same users again.

Absolute numbers drift on shared machines; compare the ratios.

Usage: python bench/bench_pool_memory.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable

PEERS = ("uhashring", "hashring")
REPLICAS = 3
KEYS_PER_POOL = 2_000

# Runs in a fresh interpreter: imports, inputs, baseline RSS, N pools, RSS again.
_CHILD = r"""
import gc, json, sys

def rss_kib():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource  # peak, not current: an upper bound where /proc is missing
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

lib, pools, replicas, nkeys = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
if lib == "slots":
    from selectors_lib import hashing
    make = lambda hosts: hashing.build("slots", hosts).lookup
elif lib == "uhashring":
    import uhashring
    make = lambda hosts: uhashring.HashRing(nodes=hosts).get_node
else:
    import hashring
    make = lambda hosts: hashring.HashRing(hosts).get_node
host_lists = [[f"pool{p}-replica{r}.example.net:7002" for r in range(replicas)] for p in range(pools)]
keys = [f"user-{i}@example.com" for i in range(nkeys)]
gc.collect()
before = rss_kib()
tables = [make(hosts) for hosts in host_lists]
built = rss_kib()
for lookup in tables:
    for key in keys:
        lookup(key)
gc.collect()
after = rss_kib()
print(json.dumps({"built": built - before, "used": after - before}))
"""


def pool_rss(lib: str, pools: int, keys: int = KEYS_PER_POOL) -> dict[str, int] | str:
    """RSS growth (KiB) of ``pools`` 3-replica pools built and used in a fresh process."""
    try:
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, lib, str(pools), str(REPLICAS), str(keys)],
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
    except subprocess.CalledProcessError as exc:
        last = (exc.stderr.strip().splitlines() or ["failed"])[-1]
        return "skipped: " + last[:60]
    result: dict[str, int] = json.loads(out.stdout)
    return result


def bench_memory(quick: bool) -> None:
    sizes = [1, 10, 100, 500, 1000]
    print(f"\n## Pool memory: RSS growth of N pools of {REPLICAS} replicas in a fresh process")
    print(f"(after build, then after {KEYS_PER_POOL:,} distinct lookups per pool)")
    print(
        f"{'pools':>7}{'library':>12}{'built MiB':>11}{'used MiB':>10}"
        f"{'KiB/pool':>10}{'vs uhashring':>14}{'vs hashring':>13}"
    )
    for n in sizes:
        rows = {lib: pool_rss(lib, n) for lib in ("slots", *PEERS)}
        for lib, r in rows.items():
            if isinstance(r, str):
                print(f"{n:>7}{lib:>12}  {r}")
                continue
            ratios = ""
            for peer in PEERS:
                p = rows[peer]
                ok = lib != peer and not isinstance(p, str) and p["used"] > 0
                ratio = f"{max(r['used'], 0) / p['used']:.3f}x" if ok else "-"  # type: ignore[index]
                ratios += f"{ratio:>{14 if peer == 'uhashring' else 13}}"
            print(
                f"{n:>7}{lib:>12}{r['built'] / 1024:>11.2f}{r['used'] / 1024:>10.2f}"
                f"{r['used'] / n:>10.1f}{ratios}"
            )
    if not quick:
        big = 100_000
        r = pool_rss("slots", big, keys=100)
        if isinstance(r, dict):
            print(
                f"{big:>7}{'slots':>12}{r['built'] / 1024:>11.2f}{r['used'] / 1024:>10.2f}"
                f"{r['used'] / big:>10.1f}   (100 lookups per pool; peers not run: gigabytes)"
            )
    print("Targets: <= 64 KiB per 3-replica pool; 1,000 pools <= 64 MiB; 100k pools in 2 GiB.")


def hosts_for(n: int) -> list[str]:
    return [f"10.{i // 65536}.{i // 256 % 256}.{i % 256}:8080" for i in range(n)]


def make_lookup(lib: str, hosts: list[str]) -> Callable[[str], str]:
    """A ``key -> host`` function; a missing peer raises ImportError."""
    if lib == "slots":
        from selectors_lib import hashing

        return hashing.build("slots", hosts).lookup
    if lib == "uhashring":
        import uhashring

        return uhashring.HashRing(nodes=hosts).get_node  # type: ignore[no-any-return]
    import hashring

    return hashring.HashRing(hosts).get_node  # type: ignore[no-any-return]


def cold_warm(lib: str, hosts: int, keys: list[str]) -> tuple[float, float]:
    """Lookups per second: first pass on a fresh table (cold), then the same keys (warm)."""
    lookup = make_lookup(lib, hosts_for(hosts))
    t0 = time.perf_counter()
    for key in keys:
        lookup(key)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    for key in keys:
        lookup(key)
    warm = time.perf_counter() - t0
    return len(keys) / cold, len(keys) / warm


def bench_cold_warm(quick: bool) -> None:
    sizes = (
        {10: 20_000, 100: 20_000, 1000: 2_000}
        if quick
        else {10: 100_000, 100: 100_000, 1000: 10_000}
    )
    print(
        "\n## Cold vs warm lookups per second (fresh table; ratio vs uhashring in the same column)"
    )
    print(
        f"{'library':<12}"
        + "".join(f"{f'{n} hosts cold':>24}{f'{n} hosts warm':>24}" for n in sizes)
    )
    results: dict[str, dict[int, tuple[float, float]] | str] = {}
    for lib in ("slots", *PEERS):
        try:
            results[lib] = {
                n: cold_warm(lib, n, [f"user-{i}@example.com" for i in range(k)])
                for n, k in sizes.items()
            }
        except ImportError as exc:
            results[lib] = f"skipped ({exc.name} is not installed)"
    base = results.get("uhashring")
    for lib, r in results.items():
        if isinstance(r, str):
            print(f"{lib:<12}{r}")
            continue
        line = f"{lib:<12}"
        for n in sizes:
            for i in (0, 1):
                rate = r[n][i]
                ratio = f" ({rate / base[n][i]:.2f}x)" if isinstance(base, dict) else ""
                line += f"{f'{rate:,.0f}{ratio}':>24}"
        print(line)
    slots = results["slots"]
    if isinstance(slots, dict):
        print(
            "slots warm/cold: "
            + ", ".join(f"{n} hosts {slots[n][1] / slots[n][0]:.1f}x" for n in sizes)
        )
    print("Targets: cold at 1,000 hosts >= 1x uhashring; warm at 10 and 100 hosts >= 5x.")


def bench_router_first_selects(quick: bool) -> None:
    from selectors_lib import Criteria, Router, load_config

    users = 20_000 if quick else 100_000
    replicas = 100
    config = load_config(
        {
            "settings": {"cache_size": 0},
            "endpoints": {
                f"r{i}": f"http://10.0.{i // 256}.{i % 256}:7002" for i in range(replicas)
            },
            "routes": [
                {
                    "name": "default",
                    "default": True,
                    "target": {
                        "endpoints": [f"r{i}" for i in range(replicas)],
                        "hash_on": ["authenticated_user"],
                    },
                }
            ],
        }
    )
    router = Router(config)
    criteria = [Criteria(authenticated_user=f"user-{i}@example.com") for i in range(users)]
    select = router.select
    t0 = time.perf_counter()
    for c in criteria:
        select(c)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for c in criteria:
        select(c)
    steady = time.perf_counter() - t0
    print(
        f"\n## Router at {replicas} replicas: the first {users:,} selects (distinct users) vs again"
    )
    print(f"first pass {first:.3f} s   steady {steady:.3f} s   first/steady {first / steady:.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sweeps (< 60 s)")
    args = parser.parse_args(argv)
    print(f"# pool memory and cold lookups (python {sys.version.split()[0]})")
    bench_memory(args.quick)
    bench_cold_warm(args.quick)
    bench_router_first_selects(args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
