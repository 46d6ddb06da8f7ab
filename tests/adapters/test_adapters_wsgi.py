"""SelectorsWSGIMiddleware under a real WSGI server (wsgiref), calling real backends."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx
import pytest
from adapters_support import routing_config, serve_wsgi
from hypothesis import given, settings
from hypothesis import strategies as st

from selectors_lib import Decision, Endpoint, HeaderMapping, load_router
from selectors_lib.wsgi import (
    CRITERIA_KEY,
    DECISION_KEY,
    ENDPOINT_KEY,
    SelectorsWSGIMiddleware,
    environ_headers,
)

Start = Callable[..., Any]


def forwarding_app(environ: dict[str, Any], start_response: Start) -> Iterable[bytes]:
    """Calls the chosen backend (a real server) and reports what happened."""
    endpoint: Endpoint = environ[ENDPOINT_KEY]
    decision: Decision | None = environ[DECISION_KEY]
    with httpx.Client(timeout=10) as client:
        upstream = client.get(endpoint.url + environ["PATH_INFO"]).json()
    body = json.dumps(
        {
            "endpoint": endpoint.id,
            "rule": None if decision is None else decision.rule,
            "user": environ[CRITERIA_KEY].authenticated_user,
            "application": environ[CRITERIA_KEY].application,
            "backend": upstream["backend"],
            "backend_path": upstream["path"],
        }
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def token_auth(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """Stands in for server authentication: ``X-Auth-Token: <name>`` sets ``REMOTE_USER``."""

    def wrapped(environ: dict[str, Any], start_response: Start) -> Iterable[bytes]:
        token = environ.get("HTTP_X_AUTH_TOKEN")
        if token:
            environ["REMOTE_USER"] = token
        return app(environ, start_response)

    return wrapped


@pytest.fixture(scope="module")
def served(backends: dict[str, str]) -> Iterator[dict[str, str]]:
    router = load_router(routing_config(backends))
    plain = token_auth(SelectorsWSGIMiddleware(forwarding_app, router))
    debug = token_auth(
        SelectorsWSGIMiddleware(forwarding_app, router, debug_header="X-Selectors-Route")
    )
    trusted = SelectorsWSGIMiddleware(
        forwarding_app, router, explain=True, mapping=HeaderMapping(trust_user_header=True)
    )
    with serve_wsgi(plain) as a, serve_wsgi(debug) as b, serve_wsgi(trusted) as c:
        yield {"plain": a, "debug": b, "trusted": c}


def get(base: str, path: str = "/", **headers: str) -> httpx.Response:
    with httpx.Client(base_url=base, timeout=10) as client:
        return client.get(path, headers=headers)


def test_routes_by_header_to_the_right_backend(served: dict[str, str]) -> None:
    keel = get(served["plain"], "/applications", **{"X-Spinnaker-Application": "keel"}).json()
    assert (keel["endpoint"], keel["backend"], keel["backend_path"]) == (
        "ro-1",
        "ro-1",
        "/base/applications",
    )
    assert keel["rule"] is None  # select mode: no decision computed
    deck = get(served["plain"], **{"X-Spinnaker-User-Origin": "deck"}).json()
    assert (deck["endpoint"], deck["backend"]) == ("ro-2", "ro-2")


def test_debug_header_names_rule_and_endpoint(served: dict[str, str]) -> None:
    response = get(served["debug"], **{"X-Spinnaker-Application": "keel"})
    assert response.headers["x-selectors-route"] == "rule=keel; endpoint=ro-1"
    assert response.json()["rule"] == "keel"


def test_user_comes_from_remote_user(served: dict[str, str]) -> None:
    body = get(served["plain"], **{"X-Auth-Token": "alice", "X-Spinnaker-User": "mallory"}).json()
    assert body["user"] == "alice"


def test_spoofed_user_header_is_ignored_unless_trusted(served: dict[str, str]) -> None:
    for spelling in ("X-Spinnaker-User", "X_Spinnaker_User"):
        spoofed = get(served["debug"], **{spelling: "mallory"})
        assert spoofed.headers["x-selectors-route"] == "rule=main; endpoint=ro-1"
        assert spoofed.json()["user"] is None
    trusted = get(served["trusted"], **{"X-Spinnaker-User": "mallory"}).json()
    assert (trusted["user"], trusted["rule"]) == ("mallory", "by-user")


def test_rejecting_pool_answers_503(served: dict[str, str]) -> None:
    response = get(served["plain"], **{"X-Spinnaker-Application": "strict"})
    assert response.status_code == 503
    assert "lacks the routing key" in response.text


def test_huge_and_odd_headers_are_capped_not_fatal(served: dict[str, str]) -> None:
    odd = ("\u00e9\u00ff" * 5000).encode("latin-1")
    with httpx.Client(base_url=served["plain"], timeout=10) as client:
        response = client.get(
            "/",
            headers=[(b"X-Spinnaker-Application", odd)]
            + [(f"X-Junk-{i}".encode(), b"\x80\x81") for i in range(60)],
        )
    assert response.status_code == 200
    body = response.json()
    # Cut, but one character past the cap: still over-long for the router.
    assert len(body["application"]) == HeaderMapping().max_value_length + 1
    assert body["endpoint"] == "ro-1"


def test_environ_headers_maps_cgi_names() -> None:
    environ = {
        "HTTP_X_SPINNAKER_APPLICATION": "keel",
        "CONTENT_TYPE": "text/plain",
        "REMOTE_USER": "alice",
        "wsgi.input": object(),
        "HTTP_X_BYTES": b"not a str",
    }
    assert dict(environ_headers(environ)) == {
        "x-spinnaker-application": "keel",
        "content-type": "text/plain",
    }


@settings(max_examples=60)
@given(
    environ=st.dictionaries(
        st.one_of(st.sampled_from(["HTTP_X_SPINNAKER_USER", "REMOTE_USER"]), st.text(max_size=30)),
        st.one_of(st.text(max_size=200), st.binary(max_size=20), st.none(), st.integers()),
        max_size=15,
    )
)
def test_any_environ_routes_somewhere(environ: dict[str, Any]) -> None:
    config = routing_config({"ro-1": "http://a", "ro-2": "http://b", "dead": "http://c"})
    router = load_router(config)
    got: list[Endpoint] = []

    def inner(env: dict[str, Any], start_response: Start) -> Iterable[bytes]:
        got.append(env[ENDPOINT_KEY])
        start_response("204 No Content", [])
        return []

    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        statuses.append(status)
        for _, value in headers:
            assert value.isascii()
            assert "\r" not in value
            assert "\n" not in value
        return lambda data: None

    app = SelectorsWSGIMiddleware(inner, router, debug_header="x-route")
    list(app(dict(environ), start_response))
    assert statuses[0].startswith(("204", "503"))
    if statuses[0].startswith("204"):
        assert got[0] in router.endpoints
