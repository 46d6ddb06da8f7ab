"""v1 selection: priority, ties, the first-entry fallback, and load errors."""

from __future__ import annotations

import pytest
import yaml

from selectors_lib import ConfigError, Criteria, Endpoint
from selectors_lib.spinnaker import SelectableService, selectable_service

A = "https://a.example.com"
B = "https://b.example.com"
C = "https://c.example.com"
DECK = Criteria(application="deck")


def by_app(url: str, priority: int | None, pattern: str = "deck") -> dict[str, object]:
    entry: dict[str, object] = {
        "baseUrl": url,
        "config": {"selectorClass": "ByApplicationServiceSelector", "applicationPattern": pattern},
    }
    if priority is not None:
        entry["priority"] = priority
    return entry


def test_criteria_are_required() -> None:
    svc = selectable_service([{"baseUrl": A}])
    with pytest.raises(ValueError, match="Criteria is required to select a service"):
        svc.select(None)
    with pytest.raises(ValueError, match="Criteria is required to select a service"):
        svc.explain(None)


def test_endpoint_url_and_id_are_the_base_url() -> None:
    assert selectable_service([{"baseUrl": A}]).select(Criteria()) == Endpoint(A, A)


def test_highest_priority_wins() -> None:
    svc = selectable_service([by_app(A, 5), by_app(B, 7), by_app(C, 6)])
    assert svc.select(DECK).url == B


def test_negative_priorities_are_allowed() -> None:
    svc = selectable_service([by_app(A, -5), by_app(B, -2), {"baseUrl": C, "priority": -3}])
    assert svc.select(DECK).url == B
    assert svc.select(Criteria(application="orca")).url == C


def test_ties_go_to_the_earlier_entry() -> None:
    svc = selectable_service([{"baseUrl": A, "priority": 0}, by_app(B, 3), by_app(C, 3)])
    assert svc.select(DECK).url == B
    svc = selectable_service([{"baseUrl": A, "priority": 0}, by_app(C, 3), by_app(B, 3)])
    assert svc.select(DECK).url == C


def test_no_match_falls_back_to_the_first_entry_whatever_its_priority() -> None:
    svc = selectable_service([by_app(A, -100, "orca"), by_app(B, 50, "echo")])
    assert svc.select(DECK).url == A
    assert svc.select(Criteria()).url == A


def test_default_is_not_special_it_matches_at_its_priority() -> None:
    # A default selector at priority 1 beats nothing with priority 2 ...
    svc = selectable_service([by_app(A, 2), {"baseUrl": B}])
    assert svc.select(DECK).url == A
    assert svc.select(Criteria(application="orca")).url == B
    # ... and outranks a matching selector of lower priority.
    svc = selectable_service([by_app(A, 0), {"baseUrl": B, "priority": 1}])
    assert svc.select(DECK).url == B


def test_priority_defaults_to_one() -> None:
    svc = selectable_service([{"baseUrl": A, "priority": 1}, by_app(B, None)])
    # Tie at 1: the earlier default wins even though B matches.
    assert svc.select(DECK).url == A
    svc = selectable_service([{"baseUrl": A, "priority": 0}, by_app(B, None)])
    assert svc.select(DECK).url == B


def test_priority_as_text_binds_like_spring() -> None:
    svc = selectable_service([{"baseUrl": A}, by_app(B, "10")])  # type: ignore[arg-type]
    assert svc.select(DECK).url == B


def test_urls_in_config_order_with_repeats() -> None:
    svc = selectable_service([by_app(B, 3), {"baseUrl": A}, by_app(B, 1, "orca")])
    assert svc.urls == [B, A, B]


def test_empty_list_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="must not be an empty list"):
        selectable_service([])
    with pytest.raises(ConfigError, match="must not be an empty list"):
        SelectableService(())


def test_base_urls_as_index_map() -> None:
    svc = selectable_service({1: by_app(B, 1), 0: {"baseUrl": A, "priority": 0}})
    assert svc.urls == [A, B]
    assert svc.select(DECK).url == B


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        selectable_service(
            [
                {"priority": 3},
                {"baseUrl": "not a url"},
                {"baseUrl": B, "priority": 1.5},
                {"baseUrl": C, "priority": 2**31},
                by_app(A, 1, "("),
                "https://d.example.com",
            ]
        )
    paths = [issue.path for issue in info.value.issues]
    assert paths == [
        "baseUrls[0].baseUrl",
        "baseUrls[1].baseUrl",
        "baseUrls[2].priority",
        "baseUrls[3].priority",
        "baseUrls[4].config.applicationPattern",
        "baseUrls[5]",
    ]
    text = str(info.value)
    assert "entry 2 (https://b.example.com)" in text
    assert "entry 4 (https://a.example.com)" in text


def test_explain_says_why() -> None:
    svc = selectable_service([by_app(A, 5, "orca"), {"baseUrl": B}])
    decision = svc.explain(DECK)
    assert decision.endpoint.url == B
    assert decision.index == 1
    assert not decision.fallback
    assert [t.matched for t in decision.considered] == [False, True]
    assert "fully matched by 'orca'" in str(decision)
    fallback = selectable_service([by_app(A, 5, "orca"), by_app(B, 6, "echo")]).explain(DECK)
    assert fallback.fallback
    assert fallback.endpoint.url == A
    assert "first entry" in str(fallback)


ORCA_STYLE = """
- baseUrl: https://a.example.com
  priority: -1
  config:
    selectorClass: com.netflix.spinnaker.orca.clouddriver.config.ByApplicationServiceSelector
    applicationPattern: spin.*
- baseUrl: https://b.example.com
  priority: 5
  config:
    selectorClass: com.netflix.spinnaker.kork.web.selector.ByAuthenticatedUserServiceSelector
    users:
      0: ci-.*
      1: 'admin@example\\.com'
- baseUrl: https://c.example.com
  priority: 5
  config:
    selectorClass: ByOriginServiceSelector
    origin: Deck
"""


def test_yaml_text_routes_like_spinnaker() -> None:
    svc = selectable_service(yaml.safe_load(ORCA_STYLE))
    assert svc.select(Criteria(application="Spinnaker")).url == A
    assert svc.select(Criteria(application="gate")).url == A  # first-entry fallback
    assert svc.select(Criteria(authenticated_user="ci-bot", application="spin")).url == B
    assert svc.select(Criteria(authenticated_user="admin@example.com")).url == B
    assert svc.select(Criteria(origin="DECK", execution_type="pipeline")).url == C
    # B and C both match at 5: B is listed first.
    both = Criteria(origin="deck", execution_type="orchestration", authenticated_user="ci-x")
    assert svc.select(both).url == B


INT_MAX = 2**31 - 1
INT_MIN = -(2**31)


@pytest.mark.parametrize(
    ("priorities", "winner"),
    [
        # kork: min((a, b) -> b.getPriority() - a.getPriority()); 2147483647 - (-2)
        # overflows to a negative int, so the earlier -2 is "higher".
        ([-2, INT_MAX], 0),
        ([INT_MAX, -2], 1),
        ([INT_MIN, 1], 0),
        ([1, INT_MIN], 1),
        ([INT_MIN, INT_MAX], 0),
        ([INT_MAX, INT_MIN], 1),
        # Not even transitive: -2 "beats" INT_MAX, 0 beats -2, INT_MAX beats 0;
        # the stream keeps -2 against INT_MAX, then replaces it by 0.
        ([-2, INT_MAX, 0], 2),
        ([0, INT_MAX, INT_MAX - 1], 1),
        ([-1, INT_MAX - 1], 1),
        ([-2, INT_MAX - 1], 0),
        # 0 - INT_MIN is 2**31, which wraps to INT_MIN: not positive.
        ([INT_MIN, 0], 0),
        ([5, 7, 6], 1),
        ([3, 3], 0),
    ],
)
def test_priorities_compare_by_wrapped_int_subtraction_like_kork(
    priorities: list[int], winner: int
) -> None:
    urls = [f"https://s{i}.example.com" for i in range(len(priorities))]
    svc = selectable_service(
        [{"baseUrl": u, "priority": p} for u, p in zip(urls, priorities, strict=True)]
    )
    assert svc.select(Criteria()).url == urls[winner]
    decision = svc.explain(Criteria())
    assert decision.index == winner
    assert [t.won for t in decision.considered] == [i == winner for i in range(len(urls))]


def test_reviewer_repro_lowest_priority_wins_through_overflow() -> None:
    svc = selectable_service(
        [
            {"baseUrl": "http://low.x", "priority": -2},
            {"baseUrl": "http://max.x", "priority": INT_MAX},
        ]
    )
    assert svc.select(Criteria()).url == "http://low.x"


def test_only_matching_selectors_take_part_in_the_comparison() -> None:
    # B never matches, so its wrapped comparison with A never happens.
    svc = selectable_service([by_app(A, -2), by_app(B, INT_MAX, "orca"), by_app(C, 5)])
    assert svc.select(DECK).url == C


@pytest.mark.parametrize(
    "base_urls",
    [
        {0: {"baseUrl": A}, 2: {"baseUrl": B}},
        {"first": {"baseUrl": A}},
        {0: {"baseUrl": A}, "0": {"baseUrl": B}},
    ],
)
def test_base_urls_is_a_typed_list_gaps_and_names_fail_as_in_spring(base_urls: object) -> None:
    # baseUrls binds to List<BaseUrl>: Spring binds [0], [1], ... and fails on
    # elements left unbound, unlike the free-form lists inside a selector config.
    with pytest.raises(ConfigError) as info:
        selectable_service(base_urls)
    assert info.value.issues[0].path == "baseUrls"
