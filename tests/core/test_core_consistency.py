"""Consistency tokens in the core: parsing, the ``consistency:`` section, token-aware picks.

Positions are set directly (as the health monitor sets them); the real-Redis
proof is tests/health/test_health_consistency.py.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from selectors_lib import (
    ConfigError,
    Criteria,
    HeaderMapping,
    Router,
    SelectEvent,
    config_to_dict,
    load_router,
)
from selectors_lib import consistency as ct
from selectors_lib._headers import cookie_value

REPLID = "a" * 40
OTHER = "b" * 40
USERS = [f"user-{i}" for i in range(300)]


def config(**policy: Any) -> dict[str, Any]:
    return {
        "endpoints": {
            "primary": "http://primary.test",
            "r1": "http://r1.test",
            "r2": "http://r2.test",
            "r3": "http://r3.test",
        },
        "routes": [
            {
                "name": "reads",
                "priority": 1,
                "match": {"application": "orca"},
                "target": {
                    "endpoints": ["r1", "r2", "r3"],
                    "hash_on": ["authenticated_user"],
                    "consistency": {"fallback": "primary", **policy},
                },
            },
            {
                "name": "default",
                "default": True,
                "target": {"endpoints": ["r1", "r2", "r3"], "hash_on": ["authenticated_user"]},
            },
        ],
    }


def at(offset: int, replid: str = REPLID, age: float = 0.0) -> ct.Position:
    return ct.Position(replid, offset, time.monotonic() - age)


def request(user: str, token: ct.Token | str | None, app: str = "orca") -> Criteria:
    attributes = {} if token is None else {ct.TOKEN_ATTRIBUTE: str(token)}
    return Criteria(application=app, authenticated_user=user, attributes=attributes)


class TestToken:
    def test_round_trip(self) -> None:
        token = ct.Token(REPLID, 12345)
        assert str(token) == f"1.{REPLID}.12345"
        assert ct.Token.parse(str(token)) == token

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "1." + "a" * 40,
            "1." + "A" * 40 + ".5",  # Redis writes lowercase hex
            "2." + "a" * 40 + ".5",
            "1." + "a" * 40 + ".-5",
            "1." + "a" * 40 + ".٣",  # a digit to str.isdigit, not to a token
            "1." + "a" * 40 + "." + "9" * 20,  # past 2**64
            "1." + "a" * 40 + "." + "9" * 5000,
            "x" * 1_000_000,
        ],
    )
    def test_malformed_is_none(self, text: str) -> None:
        assert ct.Token.parse(text) is None

    @given(st.text(max_size=200))
    def test_parsing_never_raises(self, text: str) -> None:
        token = ct.Token.parse(text)
        assert token is None or str(token) == text

    def test_not_a_string(self) -> None:
        assert ct.Token.parse(b"1.aaaa.5") is None
        assert ct.Token.parse(None) is None

    def test_from_info(self) -> None:
        info = {"role": "master", "master_replid": REPLID, "master_repl_offset": 77}
        assert ct.token_from_info(info) == ct.Token(REPLID, 77)
        assert ct.token_from_info({**info, "master_repl_offset": "78"}).offset == 78
        with pytest.raises(ct.TokenError, match="not a primary"):
            ct.token_from_info({**info, "role": "slave"})
        with pytest.raises(ct.TokenError, match="master_repl_offset"):
            ct.token_from_info({**info, "master_repl_offset": "1e9"})
        with pytest.raises(ct.TokenError, match="master_replid"):
            ct.token_from_info({**info, "master_replid": "short"})


class TestConfig:
    def test_defaults_and_round_trip(self) -> None:
        router = load_router(config())
        policy = router.config.rules[0].target.consistency
        assert policy is not None
        assert policy.fallback.id == "primary"
        assert (policy.max_age, policy.on_stale) == (2.0, "fallback")
        again = load_router(json.loads(json.dumps(config_to_dict(router.config))))
        assert again.config.rules[0].target.consistency == policy

    def test_every_problem_with_its_path(self) -> None:
        bad = config(max_age=0, on_stale="hope", wait="soon", extra=1)
        del bad["routes"][0]["target"]["consistency"]["fallback"]
        with pytest.raises(ConfigError) as info:
            load_router(bad)
        where = "routes[0].target.consistency"
        text = str(info.value)
        for fragment in (
            f"{where}: missing key 'fallback'",
            f"{where}.max_age",
            f"{where}.on_stale",
            f"{where}.wait",
            "extra",
        ):
            assert fragment in text

    def test_wait_only_with_on_stale_wait(self) -> None:
        with pytest.raises(ConfigError, match=r"consistency\.wait: only used with on_stale: wait"):
            load_router(config(wait=0.5))
        load_router(config(on_stale="wait", wait=0.5))

    def test_unknown_fallback(self) -> None:
        bad = config()
        bad["routes"][0]["target"]["consistency"]["fallback"] = "nowhere"
        with pytest.raises(ConfigError, match=r"consistency\.fallback"):
            load_router(bad)

    def test_inline_fallback(self) -> None:
        router = load_router(
            config(fallback={"id": "writer", "url": "http://writer.test"}, max_age=0.5)
        )
        policy = router.config.rules[0].target.consistency
        assert policy is not None
        assert policy.fallback.url == "http://writer.test"


class TestSelection:
    def test_without_token_routes_as_without_policy(self) -> None:
        plain = config()
        del plain["routes"][0]["target"]["consistency"]
        with_policy, without = load_router(config()), load_router(plain)
        with_policy.set_positions({"r1": at(0), "r2": at(0), "r3": at(0)})
        for user in USERS:
            assert with_policy.select(request(user, None)) == without.select(request(user, None))

    def test_qualifying_key_replica_keeps_stickiness(self) -> None:
        router = load_router(config())
        router.set_positions({"r1": at(100), "r2": at(100), "r3": at(100)})
        for user in USERS:
            home = router.select(request(user, None))
            assert router.select(request(user, ct.Token(REPLID, 100))) == home

    def test_walks_the_keys_own_preference_order(self) -> None:
        router = load_router(config())
        state = router.route(request("u", None))[1]
        order = [e.id for e in state.failover_order("u")]
        router.set_positions({order[0]: at(50), order[1]: at(99), order[2]: at(100)})
        decision = router.explain(request("u", ct.Token(REPLID, 100)))
        assert decision.endpoint.id == order[2]
        assert decision.consistency == "replica"
        assert [(s.endpoint, s.behind) for s in decision.stale] == [
            (order[0], 50),
            (order[1], 1),
        ]
        router.set_positions({order[1]: at(100)})
        assert router.select(request("u", ct.Token(REPLID, 100))).id == order[1]

    def test_none_qualifies_goes_to_fallback_with_reasons(self) -> None:
        router = load_router(config(max_age=1.0))
        router.set_positions({"r1": at(5), "r2": at(500, age=10), "r3": at(500, replid=OTHER)})
        decision = router.explain(request("u", ct.Token(REPLID, 100)))
        assert decision.endpoint.id == "primary"
        assert decision.consistency == "fallback"
        reasons = {s.endpoint: s.reason for s in decision.stale}
        assert reasons["r1"] == "95 bytes behind the token"
        assert reasons["r2"].startswith("position 10")
        assert "max_age 1s" in reasons["r2"]
        assert reasons["r3"] == "follows another replication history"
        assert decision.to_dict()["consistency"] == "fallback"
        assert "too stale r1: 95 bytes behind the token" in str(decision)
        assert router.select(request("u", ct.Token(REPLID, 100))).id == "primary"

    def test_replid_change_never_qualifies(self) -> None:
        router = load_router(config())
        router.set_positions(
            {"r1": at(10**9, OTHER), "r2": at(10**9, OTHER), "r3": at(10**9, OTHER)}
        )
        for user in USERS[:50]:
            assert router.select(request(user, ct.Token(REPLID, 1))).id == "primary"

    def test_down_replicas_are_skipped(self) -> None:
        router = load_router(config())
        router.set_positions({"r1": at(100), "r2": at(100), "r3": at(100)})
        home = router.select(request("u", None))
        router.mark_down(home)
        chosen = router.select(request("u", ct.Token(REPLID, 100)))
        assert chosen != home
        assert chosen.id != "primary"
        # Down replicas come last in the walk: named when it reaches them.
        router.set_positions({e: at(0) for e in ("r1", "r2", "r3") if e != home.id})
        stale = router.explain(request("u", ct.Token(REPLID, 100))).stale
        assert [(s.endpoint, s.reason) for s in stale][-1] == (home.id, "down")
        assert router.select(request("u", ct.Token(REPLID, 100))).id == "primary"

    def test_malformed_token_goes_to_fallback(self) -> None:
        router = load_router(config())
        router.set_positions({"r1": at(100), "r2": at(100), "r3": at(100)})
        assert router.select(request("u", "garbage" * 1000)).id == "primary"
        assert router.explain(request("u", "garbage")).consistency == "invalid-token"
        assert router.token_route(request("u", "garbage")) is None

    def test_rules_without_policy_ignore_tokens(self) -> None:
        router = load_router(config())
        router.set_positions({"r1": at(0, OTHER), "r2": at(0, OTHER), "r3": at(0, OTHER)})
        for user in USERS[:50]:
            token = ct.Token(REPLID, 10**6)
            chosen = router.select(request(user, token, app="other"))
            assert chosen == router.select(request(user, None, app="other"))
            assert router.explain(request(user, token, app="other")).consistency is None

    def test_cache_never_serves_a_token_request_a_stale_answer(self) -> None:
        router = load_router(config())
        token_request = request("u", ct.Token(REPLID, 100))
        router.set_positions({"r1": at(0), "r2": at(0), "r3": at(0)})
        for _ in range(20):  # would be cached after a miss or a few, if it were cacheable
            assert router.select(token_request).id == "primary"
        router.set_positions({"r1": at(100), "r2": at(100), "r3": at(100)})
        assert router.select(token_request) == router.select(request("u", None))
        assert router.generation == 0  # positions never rebuild the snapshot

    def test_a_cached_answer_is_never_served_to_a_token_request(self) -> None:
        # No rule reads attributes, but the token travels in one: the cache key
        # must still tell the token request from the plain one cached before.
        router = load_router(config())
        router.set_positions({"r1": at(0), "r2": at(0), "r3": at(0)})
        plain = router.select(request("u", None))
        for _ in range(3):
            assert router.select(request("u", None)) == plain  # cached
        assert router.select(request("u", ct.Token(REPLID, 100))).id == "primary"

    def test_uncached_and_observed_paths_agree(self) -> None:
        uncached = config()
        uncached["settings"] = {"cache_size": 0}
        routers = [load_router(config()), load_router(uncached), load_router(config())]
        events: list[object] = []
        routers[2].events.subscribe(events.append)
        positions = {"r1": at(100), "r2": at(40), "r3": at(100, OTHER)}
        for router in routers:
            router.set_positions(positions)
        for user in USERS:
            criteria = request(user, ct.Token(REPLID, 100))
            picks = {r.select(criteria) for r in routers}
            assert len(picks) == 1
            assert picks == {routers[0].explain(criteria).endpoint}
        assert any(isinstance(e, SelectEvent) and e.failover for e in events)

    def test_with_token_keeps_the_criteria(self) -> None:
        base = Criteria(application="orca", authenticated_user="u", attributes={"x-a": "1"})
        tokened = ct.with_token(base, ct.Token(REPLID, 3))
        assert tokened.attributes["x-a"] == "1"
        assert tokened.attributes[ct.TOKEN_ATTRIBUTE] == f"1.{REPLID}.3"
        assert tokened.authenticated_user == "u"


def test_select_without_wait_policy_needs_no_io() -> None:
    router: Router = load_router(config())
    router.set_positions({"r1": at(100), "r2": at(100), "r3": at(100)})
    criteria = request("u", ct.Token(REPLID, 100))
    assert ct.select(router, criteria) == router.select(criteria)
    assert ct.select(router, request("u", None)) == router.select(request("u", None))


class TestHeaders:
    def test_token_header_and_cookie(self) -> None:
        token = f"1.{REPLID}.9"
        mapping = HeaderMapping()
        assert mapping.criteria({"X-Consistency-Token": token}).attributes == {
            ct.TOKEN_ATTRIBUTE: token
        }
        assert (
            ct.TOKEN_ATTRIBUTE
            not in mapping.criteria({"cookie": f"selectors_ct={token}"}).attributes
        )
        cookies = HeaderMapping(token_cookie=ct.TOKEN_COOKIE)
        got = cookies.criteria([(b"cookie", f"a=1; selectors_ct={token}; b=2".encode())])
        assert got.attributes[ct.TOKEN_ATTRIBUTE] == token
        # The header wins over the cookie; no header reading when turned off.
        both = {"x-consistency-token": "h", "cookie": f"selectors_ct={token}"}
        assert cookies.criteria(both).attributes[ct.TOKEN_ATTRIBUTE] == "h"
        off = HeaderMapping(token_header=None)
        assert ct.TOKEN_ATTRIBUTE not in off.criteria({"x-consistency-token": token}).attributes

    def test_hostile_cookie_is_bounded_and_never_raises(self) -> None:
        cookies = HeaderMapping(token_cookie=ct.TOKEN_COOKIE, max_value_length=4096)
        huge = "; ".join(f"c{i}=v" for i in range(200_000)) + "; selectors_ct=x"
        got = cookies.criteria({"cookie": huge})  # cut to the cap first: the token is past it
        assert ct.TOKEN_ATTRIBUTE not in got.attributes
        assert cookie_value("=;;==; selectors_ct", "selectors_ct") is None
        assert cookie_value('selectors_ct="q"', "selectors_ct") == "q"

    def test_routed_by_header(self) -> None:
        router = load_router(config())
        router.set_positions({"r1": at(0), "r2": at(0), "r3": at(0)})
        criteria = HeaderMapping(attributes=()).criteria(
            {"x-spinnaker-application": "orca", "x-consistency-token": f"1.{REPLID}.5"}
        )
        assert router.select(criteria).id == "primary"


class TestReplicaPosition:
    def test_from_info(self) -> None:
        from selectors_lib.health._redis import replica_position

        replica = {"role": "slave", "master_replid": REPLID, "slave_repl_offset": "42"}
        assert replica_position(replica, 5.0) == ct.Position(REPLID, 42, 5.0)
        promoted = {"role": "master", "master_replid": OTHER, "master_repl_offset": "7"}
        assert replica_position(promoted, 1.0) == ct.Position(OTHER, 7, 1.0)

    @pytest.mark.parametrize(
        "info",
        [
            {"role": "slave", "master_replid": REPLID, "slave_repl_offset": "9" * 5000},
            {"role": "slave", "master_replid": REPLID, "slave_repl_offset": "²"},
            {"role": "slave", "master_replid": "short", "slave_repl_offset": "1"},
            {"role": "slave", "master_replid": REPLID},
            {"role": "sentinel", "master_replid": REPLID, "slave_repl_offset": "1"},
            {},
        ],
    )
    def test_unusable_info_gives_none(self, info: dict[str, str]) -> None:
        from selectors_lib.health._redis import replica_position

        assert replica_position(info, 0.0) is None

    def test_positions_are_read_only(self) -> None:
        router = load_router(config())
        router.set_positions({"r1": at(1)})
        with pytest.raises(TypeError):
            router.positions["r2"] = at(2)  # type: ignore[index]
        router.set_positions({"r1": None})
        assert "r1" not in router.positions
