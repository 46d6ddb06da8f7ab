"""httpx transports: client-side routing to real backends on loopback."""

from __future__ import annotations

import asyncio
import urllib.parse
from typing import Any

import httpx
import pytest
from adapters_support import routing_config
from hypothesis import given, settings
from hypothesis import strategies as st

from selectors_lib import Criteria, Decision, Endpoint, NoEndpointError, load_router
from selectors_lib._proxy_common import has_dot_segment
from selectors_lib.httpx import (
    CRITERIA_KEY,
    DECISION_KEY,
    ENDPOINT_KEY,
    AsyncSelectorsTransport,
    SelectorsTransport,
    UnsafePathError,
    current_criteria,
    routing_context,
)


def echo_headers(body: dict[str, Any]) -> dict[str, str]:
    return dict(body["headers"])


def test_logical_base_url_goes_to_the_selected_backend(backends: dict[str, str]) -> None:
    router = load_router(routing_config(backends))
    with httpx.Client(transport=SelectorsTransport(router, "http://clouddriver")) as client:
        response = client.get(
            "http://clouddriver/applications/keel/serverGroups?expand=true",
            headers={"X-Spinnaker-Application": "keel"},
        )
        body = response.json()
        assert body["backend"] == "ro-1"
        assert (body["path"], body["query"]) == (
            "/base/applications/keel/serverGroups",
            "expand=true",
        )
        assert echo_headers(body)["host"] == httpx.URL(backends["ro-1"]).netloc.decode()
        decision = response.request.extensions[DECISION_KEY]
        assert isinstance(decision, Decision)
        assert (decision.rule, decision.endpoint.id) == ("keel", "ro-1")
        assert response.request.extensions[ENDPOINT_KEY].id == "ro-1"
        assert response.url.host == "127.0.0.1"

        deck = client.get("http://clouddriver/", headers={"X-Spinnaker-User-Origin": "deck"})
        assert (deck.json()["backend"], deck.json()["path"]) == ("ro-2", "/")


def test_criteria_sources_in_order(backends: dict[str, str]) -> None:
    router = load_router(routing_config(backends))
    keel, deck = Criteria(application="keel"), Criteria(origin="deck")
    with httpx.Client(transport=SelectorsTransport(router, "http://clouddriver/")) as client:
        # An explicit extension beats the context, which beats the headers.
        with routing_context(deck):
            assert current_criteria() == deck
            explicit = client.get(
                "http://clouddriver/x",
                extensions={CRITERIA_KEY: keel},
                headers={"X-Spinnaker-User-Origin": "deck"},
            )
            from_context = client.get(
                "http://clouddriver/x", headers={"X-Spinnaker-Application": "keel"}
            )
        assert current_criteria() is None
        from_headers = client.get(
            "http://clouddriver/x", headers={"X-Spinnaker-Application": "keel"}
        )
    assert explicit.json()["backend"] == "ro-1"
    assert from_context.json()["backend"] == "ro-2"
    assert from_headers.json()["backend"] == "ro-1"


def test_user_header_is_trusted_on_the_client_side(backends: dict[str, str]) -> None:
    router = load_router(routing_config(backends))
    with httpx.Client(transport=SelectorsTransport(router, "http://clouddriver")) as client:
        response = client.get("http://clouddriver/", headers={"X-Spinnaker-User": "alice"})
    assert response.request.extensions[DECISION_KEY].rule == "by-user"
    assert response.request.extensions[CRITERIA_KEY].authenticated_user == "alice"


def test_other_urls_pass_through_untouched(backends: dict[str, str]) -> None:
    router = load_router(routing_config(backends))
    direct = backends["ro-2"] + "/direct"
    with httpx.Client(transport=SelectorsTransport(router, "http://clouddriver/api")) as client:
        body = client.get(direct, headers={"X-Spinnaker-Application": "keel"}).json()
        assert (body["backend"], body["path"]) == ("ro-2", "/direct")
        for url in (
            "http://clouddriver/apix",
            "http://clouddriver:8080/api",
            "https://clouddriver/api",
        ):
            request = client.build_request("GET", url)
            with pytest.raises(httpx.ConnectError):
                client.send(request)
            assert DECISION_KEY not in request.extensions


def test_base_path_is_replaced_by_the_endpoints(backends: dict[str, str]) -> None:
    router = load_router(routing_config(backends))
    with httpx.Client(transport=SelectorsTransport(router, "http://clouddriver/api/v1")) as client:
        body = client.get(
            "http://clouddriver/api/v1/a%2Fb", headers={"X-Spinnaker-Application": "keel"}
        ).json()
    assert body["raw_path"] == "/base/a%2Fb"


def test_explain_false_attaches_only_the_endpoint(backends: dict[str, str]) -> None:
    router = load_router(routing_config(backends))
    transport = SelectorsTransport(router, "http://clouddriver", explain=False)
    with httpx.Client(transport=transport) as client:
        response = client.get("http://clouddriver/", headers={"X-Spinnaker-Application": "keel"})
    assert response.request.extensions[DECISION_KEY] is None
    assert response.request.extensions[ENDPOINT_KEY].id == "ro-1"


def test_async_transport_and_context_across_tasks(backends: dict[str, str]) -> None:
    router = load_router(routing_config(backends))

    async def main() -> list[str]:
        transport = AsyncSelectorsTransport(router, "http://clouddriver")
        async with httpx.AsyncClient(transport=transport) as client:

            async def fetch(criteria: Criteria) -> str:
                with routing_context(criteria):
                    response = await client.get("http://clouddriver/tasks")
                body: dict[str, Any] = response.json()
                return str(body["backend"])

            return list(
                await asyncio.gather(
                    fetch(Criteria(application="keel")),
                    fetch(Criteria(origin="deck")),
                    fetch(Criteria(application="keel")),
                )
            )

    assert asyncio.run(main()) == ["ro-1", "ro-2", "ro-1"]


def test_rejecting_pool_raises(backends: dict[str, str]) -> None:
    router = load_router(routing_config(backends))
    transport = SelectorsTransport(router, "http://clouddriver")
    with httpx.Client(transport=transport) as client, pytest.raises(NoEndpointError):
        client.get("http://clouddriver/", headers={"X-Spinnaker-Application": "strict"})


def test_base_url_must_name_a_host() -> None:
    router = load_router(
        routing_config({"ro-1": "http://a", "ro-2": "http://b", "dead": "http://c"})
    )
    with pytest.raises(ValueError, match="scheme and a host"):
        SelectorsTransport(router, "/relative")


class Recorder(httpx.BaseTransport):
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(204)


@settings(max_examples=80)
@given(
    path=st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
    | st.lists(st.sampled_from(["a", ".", "..", "%2e", "%2E%2e", "..;x", "b.c"]), max_size=5).map(
        "/".join
    ),
    header=st.text(max_size=300),
)
def test_any_path_and_header_keeps_the_endpoint_origin(path: str, header: str) -> None:
    router = load_router(
        {
            "endpoints": {"a": "http://10.0.0.1:7002/cd", "b": "http://10.0.0.2:7002"},
            "routes": [
                {
                    "name": "apps",
                    "match": {"application": {"present": True}},
                    "target": {"endpoints": ["a", "b"], "hash_on": ["application"]},
                },
                {"name": "main", "default": True, "target": "a"},
            ],
        }
    )
    inner = Recorder()
    transport = SelectorsTransport(router, "http://clouddriver", transport=inner)
    raw = "/" + urllib.parse.quote(path, safe="/;:@&=+$,%!~*'()")
    url = httpx.URL("http://clouddriver/").copy_with(raw_path=raw.encode("ascii"))
    request = httpx.Request("GET", url, headers={"X-Spinnaker-Application": header.encode("utf-8")})
    if has_dot_segment(request.url.raw_path.partition(b"?")[0]):
        # %2e%2e and the like: refused, never sent anywhere.
        with pytest.raises(UnsafePathError):
            transport.handle_request(request)
        assert inner.requests == []
        return
    transport.handle_request(request)
    sent = inner.requests[0]
    endpoint: Endpoint = sent.extensions[ENDPOINT_KEY]
    target = httpx.URL(endpoint.url)
    assert (sent.url.scheme, sent.url.host, sent.url.port) == (
        target.scheme,
        target.host,
        target.port,
    )
    assert sent.url.path.startswith(target.path.rstrip("/") + "/")
    assert sent.headers["host"] == target.netloc.decode()
