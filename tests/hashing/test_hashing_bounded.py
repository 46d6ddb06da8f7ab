"""BoundedLoad: the in-flight cap and the walk along the preference order."""

from __future__ import annotations

import math
import threading

import pytest

from selectors_lib.hashing import BoundedLoad, build


def test_hashing_bounded_first_choice_when_under_cap() -> None:
    table = build("slots", [f"h{i}" for i in range(5)], slots=1024)
    bl = BoundedLoad(table, 1.25)
    assert bl.acquire("k") == table.lookup("k")
    bl.release(table.lookup("k"))
    assert bl.in_flight() == dict.fromkeys(table.hosts, 0)


def test_hashing_bounded_hot_key_spills_along_preference() -> None:
    hosts = [f"h{i}" for i in range(4)]
    table = build("rendezvous", hosts)
    bl = BoundedLoad(table, 1.25)
    picks = [bl.acquire("hot") for _ in range(40)]
    loads = bl.in_flight()
    assert max(loads.values()) <= math.ceil(1.25 * 40 / 4)
    # Spill goes in preference order: the first choice is the most loaded.
    order = table.preference("hot", 4)
    assert loads[order[0]] == max(loads.values())
    for p in picks:
        bl.release(p)
    assert bl.acquire("hot") == order[0]


def test_hashing_bounded_threads_keep_counts_consistent() -> None:
    table = build("slots", [f"h{i}" for i in range(8)], slots=1024)
    bl = BoundedLoad(table, 1.1)

    def work(n: int) -> None:
        for i in range(500):
            with bl.lease(f"k{n}-{i % 7}"):
                pass

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(bl.in_flight().values()) == 0


def test_hashing_bounded_validation() -> None:
    table = build("slots", ["a"], slots=16)
    with pytest.raises(ValueError, match="capacity_factor"):
        BoundedLoad(table, 1.0)
    with pytest.raises(ValueError, match="without a matching acquire"):
        BoundedLoad(table).release("a")
