"""Benchmark selectors_lib.hashing against uhashring, hashring, jump-consistent-hash and hrw.

Run: ``python bench/bench_hashing.py [--quick]``. Absolute numbers drift on shared
machines; the ratios against uhashring in the same run are what to compare.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from typing import Any

from selectors_lib import hashing
from selectors_lib.hashing import key_hash

OURS = ("slots", "ring", "maglev", "rendezvous", "jump")


def hosts_for(n: int) -> list[str]:
    return [f"10.{i // 65536}.{i // 256 % 256}.{i % 256}:8080" for i in range(n)]


def median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def make_peer(name: str, hosts: list[str]) -> Callable[[str], str]:
    """Return a ``key -> host`` function for a peer library (imported here only)."""
    if name == "uhashring":
        import uhashring

        ring = uhashring.HashRing(nodes=hosts)
        return ring.get_node  # type: ignore[no-any-return]
    if name == "hashring":
        import hashring

        ring2 = hashring.HashRing(hosts)
        return ring2.get_node  # type: ignore[no-any-return]
    if name == "jump-consistent-hash":
        import jump

        n = len(hosts)
        return lambda k: hosts[jump.hash(key_hash(k), n)]
    if name == "hrw":
        import hrw

        return _hrw_lookup(hrw, hosts)
    raise ValueError(name)


def _hrw_lookup(hrw: Any, hosts: list[str]) -> Callable[[str], str]:
    # hrw.choose(content_id: bytes, replica_ids: list[bytes], k=...) -> (chosen, rest),
    # sha256-based; k=1 gives the single top replica.
    raw = [h.encode() for h in hosts]

    def lookup(key: str) -> str:
        chosen, _ = hrw.choose(key.encode(), raw, k=1)
        return chosen[0].decode()  # type: ignore[no-any-return]

    return lookup


PEERS = ("uhashring", "hashring", "jump-consistent-hash", "hrw")


def build_peer_or_ours(name: str, hosts: list[str]) -> Callable[[str], str]:
    if name in OURS:
        return hashing.build(name, hosts).lookup
    return make_peer(name, hosts)


def bench_lookups(names: list[str], sizes: list[int], nkeys: int, repeat: int) -> None:
    print(f"\n## Lookups per second ({nkeys} distinct keys, warm, median of {repeat})")
    keys = [f"user-{i}" for i in range(nkeys)]
    header = f"{'algorithm':<22}" + "".join(f"{f'{n} hosts':>22}" for n in sizes)
    print(header)
    base: dict[int, float] = {}
    rows = []
    for name in names:
        cells = []
        for n in sizes:
            try:
                fn = build_peer_or_ours(name, hosts_for(n))
            except Exception as exc:  # a peer library may be missing or differ
                cells.append(f"n/a ({type(exc).__name__})")
                continue
            if name == "rendezvous" or (name == "hrw" and n >= 1000):
                ks = keys[: max(1000, nkeys // 20)]
            else:
                ks = keys
            for k in ks:  # warm (fills lazily filled tables)
                fn(k)
            t = median_time(lambda ks=ks, fn=fn: [fn(k) for k in ks], repeat)
            rate = len(ks) / t
            if name == "uhashring":
                base[n] = rate
            cells.append(rate)
        rows.append((name, cells))
    for name, cells in rows:
        out = f"{name:<22}"
        for n, c in zip(sizes, cells, strict=True):
            if isinstance(c, float):
                ratio = f" ({c / base[n]:.1f}x)" if n in base else ""
                out += f"{f'{c:,.0f}{ratio}':>22}"
            else:
                out += f"{c:>22}"
        print(out)


def bench_build(names: list[str], sizes: list[int], repeat: int) -> None:
    print(f"\n## Build time (ms, median of {repeat})")
    print(f"{'algorithm':<22}" + "".join(f"{f'{n} hosts':>16}" for n in sizes))
    for name in names:
        out = f"{name:<22}"
        for n in sizes:
            hosts = hosts_for(n)
            try:
                r = 1 if name == "maglev" else repeat
                t = median_time(lambda h=hosts, a=name: build_peer_or_ours(a, h), r)
                out += f"{t * 1000:>16.2f}"
            except Exception as exc:
                out += f"{'n/a ' + type(exc).__name__:>16}"
        print(out)


def bench_quality(names: list[str], n: int, nkeys: int) -> None:
    print(f"\n## Balance and churn at {n} hosts over {nkeys:,} keys")
    print(
        f"{'algorithm':<22}{'max/mean':>10}{'add moved/ideal':>17}{'to new':>9}"
        f"{'remove moved/ideal':>20}{'only victim':>13}{'memory KiB':>12}"
    )
    keys = [f"user-{i}" for i in range(nkeys)]
    hosts = hosts_for(n)
    new_host = "192.168.0.1:8080"
    victim = hosts[n // 2]
    for name in names:
        # O(hosts) per lookup: sample 200k keys.
        slow = name in ("rendezvous", "hrw") and nkeys > 200_000
        ks = keys[:200_000] if slow else keys
        try:
            fn = build_peer_or_ours(name, hosts)
            if name == "jump-consistent-hash" or name == "jump":
                # jump can only pop the last bucket: measure removing the last host.
                removed_hosts = hosts[:-1]
                gone = hosts[-1]
            else:
                removed_hosts = [h for h in hosts if h != victim]
                gone = victim
            before = [fn(k) for k in ks]
            counts = Counter(before)
            balance = max(counts.values()) / (len(ks) / n)
            add_fn = build_peer_or_ours(name, [*hosts, new_host])
            after = [add_fn(k) for k in ks]
            moved = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
            ideal = len(ks) / (n + 1)
            to_new = sum(after[i] == new_host for i in moved) / max(1, len(moved))
            rm_fn = build_peer_or_ours(name, removed_hosts)
            rm_after = [rm_fn(k) for k in ks]
            rm_moved = [i for i, (a, b) in enumerate(zip(before, rm_after, strict=True)) if a != b]
            only = sum(before[i] == gone for i in rm_moved) / max(1, len(rm_moved))
            rm_ideal = counts[gone] or 1
            tracemalloc.start()
            keep = build_peer_or_ours(name, hosts)
            if name == "slots":
                for k in ks:
                    keep(k)
            mem = tracemalloc.get_traced_memory()[0] / 1024
            tracemalloc.stop()
            del keep
            print(
                f"{name:<22}{balance:>10.3f}{len(moved) / ideal:>17.3f}{to_new:>9.1%}"
                f"{len(rm_moved) / rm_ideal:>20.3f}{only:>13.1%}{mem:>12,.0f}"
            )
        except Exception as exc:
            print(f"{name:<22} n/a ({type(exc).__name__}: {exc})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer keys and repeats (< 60 s)")
    args = parser.parse_args(argv)
    quick = args.quick
    names = [*OURS, *PEERS]
    print(f"# selectors_lib.hashing benchmark (python {sys.version.split()[0]})")
    bench_lookups(names, [3, 10, 100, 1000], 20_000 if quick else 100_000, 3 if quick else 5)
    bench_build(names, [100, 1000], 3 if quick else 7)
    bench_quality(names, 100, 100_000 if quick else 1_000_000)
    print(
        "\nmax/mean: most loaded host over mean. add moved/ideal: keys moved when a 101st"
        "\nhost joins, over the ideal 1/101. remove moved/ideal: keys moved when one host"
        "\nleaves (jump: the last one), over that host's own keys. memory: tracemalloc of"
        "\nthe built table (slots: after the balance keys filled its cells)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
