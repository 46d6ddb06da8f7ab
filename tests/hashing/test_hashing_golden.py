"""Golden values from Guava's HashingTest and Envoy's ring_hash / maglev test suites.

Envoy's hash key is the host's address string: ``makeTestHost(info, "tcp://127.0.0.1:90")``
has address ``"127.0.0.1:90"``, and with ``use_hostname_for_hashing`` the key is the
hostname (``"90"``). Our host key plays that part.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from selectors_lib.hashing import build, jump_hash, key_hash
from selectors_lib.hashing._ring import RingTable

U64_MAX = (1 << 64) - 1
PORTS_90 = tuple(f"127.0.0.1:{p}" for p in range(90, 96))
NAMES_90 = tuple(str(p) for p in range(90, 96))


# --- Guava Hashing.consistentHash ------------------------------------------------


@pytest.mark.parametrize(("key", "expected"), [(1, 55), (2, 62), (3, 8), (4, 45), (5, 59)])
def test_hashing_jump_matches_guava_lcg_compatibility(key: int, expected: int) -> None:
    # HashingTest.testConsistentHash_linearCongruentialGeneratorCompatibility
    assert jump_hash(key, 100) == expected


@pytest.mark.parametrize("key", [-1, 0, 1, 2, (1 << 63) - 1, -(1 << 63)])
def test_hashing_jump_correctness_like_guava(key: int) -> None:
    # HashingTest.checkConsistentHashCorrectness: a key only ever moves to the new bucket.
    last = 0
    for shards in range(1, 3000):
        b = jump_hash(key, shards)
        if b != last:
            assert b == shards - 1
            last = b


def test_hashing_jump_negative_key_is_reduced_mod_2_64() -> None:
    assert jump_hash(-1, 5555) == jump_hash(U64_MAX, 5555)
    assert jump_hash(1 << 64, 77) == jump_hash(0, 77)


@pytest.mark.parametrize("buckets", [0, -1, 1 << 31])
def test_hashing_jump_rejects_bad_buckets(buckets: int) -> None:
    with pytest.raises(ValueError, match="buckets"):
        jump_hash(5, buckets)


def test_hashing_jump_agrees_with_jump_consistent_hash_package() -> None:
    jump = pytest.importorskip("jump")
    for key in range(0, 2_000_000, 997):
        k = key * 0x9E3779B97F4A7C15 & U64_MAX
        assert jump_hash(k, 1000) == jump.hash(k, 1000)


# --- key_hash ---------------------------------------------------------------------


def test_hashing_key_hash_is_xxh64_seed0() -> None:
    assert key_hash("") == 0xEF46DB3751D8E999  # the reference XXH64("", 0)
    assert key_hash("\udc80") == key_hash("\udc80")  # lone surrogate does not raise


# --- Envoy ring_hash_lb_test.cc -----------------------------------------------------


def test_hashing_envoy_ring_basic() -> None:
    ring = build("ring", PORTS_90, min_ring_size=12)
    assert isinstance(ring, RingTable)
    assert ring.ring_size == 12
    expected_ring = [
        (833437586790550860, 94),
        (928266305478181108, 92),
        (1033482794131418490, 90),
        (3551244743356806947, 95),
        (3851675632748031481, 93),
        (5583722120771150861, 91),
        (6311230543546372928, 91),
        (7700377290971790572, 93),
        (13144177310400110813, 95),
        (13444792449719432967, 92),
        (15516499411664133160, 94),
        (16117243373044804889, 90),
    ]
    assert ring.points() == tuple((h, f"127.0.0.1:{p}") for h, p in expected_ring)
    cases = {
        0: 4,
        U64_MAX: 4,
        3551244743356806947: 5,
        3551244743356806948: 3,
        16117243373044804880: 0,
    }
    for h, idx in cases.items():
        assert ring.lookup_hash(h) == PORTS_90[idx]


def test_hashing_envoy_ring_retry_order_is_ring_walk() -> None:
    # BasicWithRetryHostPredicate: from hash 0 the ring walk visits :94, :92, :90.
    ring = build("ring", PORTS_90, min_ring_size=12)
    assert isinstance(ring, RingTable)
    start = [h for h, _ in ring.points()]
    assert start[0] >= 0
    order = [host for _, host in ring.points()[:3]]
    assert order == ["127.0.0.1:94", "127.0.0.1:92", "127.0.0.1:90"]


def test_hashing_envoy_ring_hostname_keys() -> None:
    # BasicWithHostname / BasicWithMetadataHashKey: keys "90".."95".
    ring = build("ring", NAMES_90, min_ring_size=12)
    assert isinstance(ring, RingTable)
    assert [h for h, _ in ring.points()] == [
        1975508444536362413,
        2376063919839173711,
        2386806903309390596,
        6749904478991551885,
        6803900775736438537,
        7225015537174310577,
        8787465352164086522,
        11282020843382717940,
        13723418369486627818,
        13776502110861797421,
        14338313586354474791,
        15364271037087512980,
    ]
    for h, idx in {0: 5, U64_MAX: 5, 7225015537174310577: 2, 6803900775736438537: 3}.items():
        assert ring.lookup_hash(h) == NAMES_90[idx]


def test_hashing_envoy_ring_uneven_hosts() -> None:
    # UnevenHosts: 2 hosts, min ring 3 -> 4 points.
    hosts = ("127.0.0.1:80", "127.0.0.1:81")
    ring = build("ring", hosts, min_ring_size=3)
    assert isinstance(ring, RingTable)
    assert ring.ring_size == 4
    assert [h for h, _ in ring.points()] == [
        5454692015285649509,
        7859399908942313493,
        13838424394637650569,
        16064866803292627174,
    ]
    assert ring.lookup_hash(0) == hosts[0]
    hosts2 = ("127.0.0.1:81", "127.0.0.1:82")
    ring2 = build("ring", hosts2, min_ring_size=3)
    assert isinstance(ring2, RingTable)
    assert [h for h, _ in ring2.points()] == [
        7859399908942313493,
        8241336090459785962,
        12882406409176325258,
        16064866803292627174,
    ]
    assert ring2.lookup_hash(0) == hosts2[0]


def test_hashing_envoy_ring_host_weighted_tiny_ring() -> None:
    hosts = ("127.0.0.1:90", "127.0.0.1:91", "127.0.0.1:92")
    weights = dict(zip(hosts, (1, 2, 3), strict=True))
    ring = build("ring", hosts, weights=weights, min_ring_size=6, max_ring_size=6)
    assert isinstance(ring, RingTable)
    assert ring.ring_size == 6
    expected = {
        928266305478181108: 2,
        4443673547860492590: 2,
        5583722120771150861: 1,
        6311230543546372928: 1,
        13444792449719432967: 2,
        16117243373044804889: 0,
    }
    for h, idx in expected.items():
        assert ring.lookup_hash(h) == hosts[idx]


def _histogram(table: object, hosts: tuple[str, ...], samples: int) -> list[int]:
    counts = [0] * len(hosts)
    step = U64_MAX // samples
    for i in range(samples):
        counts[hosts.index(table.lookup_hash(i * step))] += 1  # type: ignore[attr-defined]
    return counts


def test_hashing_envoy_ring_host_weighted_large_ring() -> None:
    hosts = ("127.0.0.1:90", "127.0.0.1:91", "127.0.0.1:92")
    weights = dict(zip(hosts, (1, 2, 3), strict=True))
    ring = build("ring", hosts, weights=weights, min_ring_size=6144)
    assert isinstance(ring, RingTable)
    assert ring.ring_size == 6144
    assert _histogram(ring, hosts, 6000) == [987, 1932, 3081]


def test_hashing_envoy_ring_large_fractional_scale() -> None:
    hosts = ("127.0.0.1:90", "127.0.0.1:91")
    ring = build("ring", hosts, min_ring_size=1023, max_ring_size=1023)
    assert isinstance(ring, RingTable)
    assert ring.ring_size == 1023
    counts = [0, 0]
    for _, host in ring.points():
        counts[hosts.index(host)] += 1
    assert sorted(counts) == [511, 512]
    assert _histogram(ring, hosts, 1023) == [526, 497]


def test_hashing_envoy_ring_small_fractional_scale() -> None:
    hosts = tuple(f"127.0.0.1:{p}" for p in range(90, 94))
    ring = build("ring", hosts, min_ring_size=2, max_ring_size=2)
    counts = _histogram(ring, hosts, 1024)
    assert counts.count(0) == 2
    assert sum(counts) == 1024
    # Failover still reaches every host, ring-less ones last.
    assert sorted(ring.preference("k", 4)) == sorted(hosts)


def test_hashing_envoy_ring_bad_bounds_message() -> None:
    with pytest.raises(ValueError, match=r"minimum_ring_size \(20\) > maximum_ring_size \(10\)"):
        build("ring", PORTS_90, min_ring_size=20, max_ring_size=10)


def _ketama_choose(points: list[int], h: int) -> int:
    """A literal transcription of the search in Envoy's Ring::chooseHost."""
    lowp, highp = 0, len(points)
    while True:
        midp = (lowp + highp) // 2
        if midp == len(points):
            return 0
        midval = points[midp]
        midval1 = 0 if midp == 0 else points[midp - 1]
        if midval1 < h <= midval:
            return midp
        if midval < h:
            lowp = midp + 1
        else:
            highp = midp - 1
        if lowp > highp:
            return 0


@given(
    st.lists(st.integers(0, U64_MAX), min_size=1, max_size=40),
    st.integers(0, U64_MAX),
    st.booleans(),
)
def test_hashing_ring_bisect_equals_envoy_ketama_search(
    points: list[int], h: int, pick_point: bool
) -> None:
    from bisect import bisect_left

    points.sort()
    if pick_point:
        h = points[h % len(points)]
    i = bisect_left(points, h)
    assert (0 if i == len(points) else i) == _ketama_choose(points, h)


# --- Envoy maglev_lb_test.cc ------------------------------------------------------


def test_hashing_envoy_maglev_basic() -> None:
    table = build("maglev", PORTS_90, table_size=7)
    expected = [2, 4, 0, 1, 5, 0, 3]
    for i in range(3 * len(expected)):
        assert table.lookup_hash(i) == PORTS_90[expected[i % 7]]
    # Shuffling the host order (BasicStability) changes nothing.
    shuffled = build("maglev", PORTS_90[::-1], table_size=7)
    assert [shuffled.lookup_hash(i) for i in range(7)] == [table.lookup_hash(i) for i in range(7)]


def test_hashing_envoy_maglev_retry_order() -> None:
    # BasicWithRetryHostPredicate: hash 10 -> :91, second attempt -> :90, third -> :95.
    table = build("maglev", PORTS_90, table_size=7)
    assert table.lookup_hash(10) == PORTS_90[1]
    assert table.lookup_hash(10 ^ (U64_MAX - 1 + 1)) == PORTS_90[0]
    assert table.lookup_hash(10 ^ (U64_MAX - 2 + 1)) == PORTS_90[5]


def test_hashing_envoy_maglev_hostname_keys() -> None:
    table = build("maglev", NAMES_90, table_size=7)
    expected = [2, 5, 0, 3, 4, 1, 0]
    assert [table.lookup_hash(i) for i in range(7)] == [NAMES_90[e] for e in expected]


def test_hashing_envoy_maglev_weighted() -> None:
    hosts = ("127.0.0.1:90", "127.0.0.1:91")
    table = build("maglev", hosts, weights={hosts[1]: 2}, table_size=17)
    expected = [1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1, 0, 1]
    assert [table.lookup_hash(i) for i in range(17)] == [hosts[e] for e in expected]
    assert sorted(table.entries_per_host().values()) == [6, 11]  # type: ignore[attr-defined]


def test_hashing_envoy_maglev_single_host() -> None:
    table = build("maglev", ["127.0.0.1:90"], weights={"127.0.0.1:90": 7}, table_size=17)
    assert {table.lookup_hash(i) for i in range(17)} == {"127.0.0.1:90"}


def test_hashing_envoy_maglev_rejects_non_prime() -> None:
    with pytest.raises(ValueError, match="prime"):
        build("maglev", PORTS_90, table_size=8)
