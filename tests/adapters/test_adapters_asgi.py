"""SelectorsMiddleware: under uvicorn with Starlette, and in-process for odd input."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from adapters_support import routing_config, serve_asgi
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    BaseUser,
    SimpleUser,
)
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from selectors_lib import Criteria, Decision, Endpoint, HeaderMapping, Router, load_router
from selectors_lib.asgi import (
    CRITERIA_KEY,
    DECISION_KEY,
    ENDPOINT_KEY,
    SelectorsMiddleware,
    scope_user,
)


class TokenAuth(AuthenticationBackend):
    """Authenticates ``X-Auth-Token: <name>`` as user ``<name>`` (stands in for real auth)."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        token = conn.headers.get("x-auth-token")
        if not token:
            return None
        return AuthCredentials(["authenticated"]), SimpleUser(token)


async def whoami(request: Request) -> JSONResponse:
    state = request.scope["state"]
    endpoint: Endpoint = state[ENDPOINT_KEY]
    decision: Decision | None = state[DECISION_KEY]
    criteria: Criteria = state[CRITERIA_KEY]
    return JSONResponse(
        {
            "endpoint": endpoint.id,
            "rule": None if decision is None else decision.rule,
            "user": criteria.authenticated_user,
            "application": criteria.application,
            "started": getattr(request.app.state, "started", False),
        }
    )


def starlette_app(router: Router, **options: Any) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.started = True
        yield

    return Starlette(
        routes=[Route("/{path:path}", whoami, methods=["GET", "POST"])],
        middleware=[
            Middleware(AuthenticationMiddleware, backend=TokenAuth()),
            Middleware(SelectorsMiddleware, router=router, **options),
        ],
        lifespan=lifespan,
    )


@pytest.fixture(scope="module")
def served(backends: dict[str, str]) -> Iterator[dict[str, str]]:
    router = load_router(routing_config(backends))
    trusting = HeaderMapping(trust_user_header=True)
    with (
        serve_asgi(starlette_app(router), lifespan="on") as plain,
        serve_asgi(starlette_app(router, debug_header="X-Selectors-Route")) as debug,
        serve_asgi(starlette_app(router, explain=True, mapping=trusting)) as trusted,
    ):
        yield {"plain": plain, "debug": debug, "trusted": trusted}


def get(base: str, path: str = "/", **headers: str) -> httpx.Response:
    with httpx.Client(base_url=base, timeout=10) as client:
        return client.get(path, headers=headers)


def test_routes_by_spinnaker_headers(served: dict[str, str]) -> None:
    keel = get(served["plain"], **{"X-Spinnaker-Application": "keel"}).json()
    assert keel["endpoint"] == "ro-1"
    assert keel["application"] == "keel"
    deck = get(served["plain"], **{"X-Spinnaker-User-Origin": "deck"}).json()
    assert deck["endpoint"] == "ro-2"


def test_select_mode_gives_no_decision_explain_mode_does(served: dict[str, str]) -> None:
    assert get(served["plain"], **{"X-Spinnaker-Application": "keel"}).json()["rule"] is None
    assert get(served["trusted"], **{"X-Spinnaker-Application": "keel"}).json()["rule"] == "keel"


def test_debug_header_names_rule_and_endpoint(served: dict[str, str]) -> None:
    response = get(served["debug"], **{"X-Spinnaker-User-Origin": "deck"})
    assert response.headers["x-selectors-route"] == "rule=deck; endpoint=ro-2"
    assert response.json()["rule"] == "deck"
    assert "x-selectors-route" not in get(served["plain"]).headers


def test_user_comes_from_authentication(served: dict[str, str]) -> None:
    body = get(served["plain"], **{"X-Auth-Token": "alice"}).json()
    assert body["user"] == "alice"
    assert body["endpoint"] in ("ro-1", "ro-2")


def test_spoofed_user_header_is_ignored_unless_trusted(served: dict[str, str]) -> None:
    spoofed = get(served["debug"], **{"X-Spinnaker-User": "mallory"})
    assert spoofed.headers["x-selectors-route"] == "rule=main; endpoint=ro-1"
    assert get(served["plain"], **{"X-Spinnaker-User": "mallory"}).json()["user"] is None
    trusted = get(served["trusted"], **{"X-Spinnaker-User": "mallory"}).json()
    assert (trusted["user"], trusted["rule"]) == ("mallory", "by-user")


def test_authenticated_user_beats_trusted_header(served: dict[str, str]) -> None:
    body = get(served["trusted"], **{"X-Spinnaker-User": "mallory", "X-Auth-Token": "alice"}).json()
    assert body["user"] == "alice"


def test_same_user_always_lands_on_same_replica(served: dict[str, str]) -> None:
    seen = {
        get(served["plain"], **{"X-Auth-Token": "user-17"}).json()["endpoint"] for _ in range(5)
    }
    assert len(seen) == 1


def test_rejecting_pool_answers_503(served: dict[str, str]) -> None:
    response = get(served["plain"], **{"X-Spinnaker-Application": "strict"})
    assert response.status_code == 503
    assert "lacks the routing key" in response.text
    ok = get(
        served["plain"],
        **{"X-Spinnaker-Application": "strict", "X-Spinnaker-Execution-Id": "01HX"},
    )
    assert ok.status_code == 200


def test_lifespan_passes_through_to_the_app(served: dict[str, str]) -> None:
    assert get(served["plain"]).json()["started"] is True


def test_huge_and_odd_headers_are_capped_not_fatal(served: dict[str, str]) -> None:
    odd = "k\u00e9el\u00ff" * 2000  # latin-1 text, 10 000 characters
    headers = [("X-Spinnaker-Application", odd)] + [
        (f"X-Junk-{i}", "\u00e9" * 50) for i in range(60)
    ]
    with httpx.Client(base_url=served["trusted"], timeout=10) as client:
        response = client.get("/", headers=[(k.encode(), v.encode("latin-1")) for k, v in headers])
    assert response.status_code == 200
    body = response.json()
    # Cut, but one character past the cap: still over-long for the router.
    assert len(body["application"]) == HeaderMapping().max_value_length + 1
    assert body["application"].startswith("k\u00e9el\u00ff")
    assert body["rule"] == "main"


# -- in-process: scopes the server would never send us, and arbitrary headers ----------


def run(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def test_websocket_and_lifespan_scopes_pass_untouched(config: dict[str, Any]) -> None:
    seen: list[dict[str, Any]] = []

    async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(dict(scope))

    app = SelectorsMiddleware(inner, load_router(config), debug_header="x-route")
    for kind in ("websocket", "lifespan"):
        run(app, {"type": kind, "headers": [(b"x-spinnaker-application", b"keel")]})
    assert [s["type"] for s in seen] == ["websocket", "lifespan"]
    assert all("state" not in s for s in seen)


def test_scope_user_reads_common_user_shapes() -> None:
    class Unauthenticated:
        is_authenticated = False
        display_name = "anonymous"

    class Identity(BaseUser):  # identity only; Starlette's BaseUser raises for the rest
        @property
        def is_authenticated(self) -> bool:
            return True

        @property
        def identity(self) -> str:
            return "id-42"

    assert scope_user({"user": "bob"}) == "bob"
    assert scope_user({"user": SimpleUser("carol")}) == "carol"
    assert scope_user({"user": Unauthenticated()}) is None
    assert scope_user({"user": Identity()}) == "id-42"
    assert scope_user({}) is None
    assert scope_user({"user": ""}) is None


header_bytes = st.binary(max_size=300)
header_lists = st.lists(
    st.tuples(
        st.one_of(
            st.sampled_from(
                [b"x-spinnaker-application", b"x-spinnaker-user", b"connection", b"host"]
            ),
            header_bytes,
        ),
        header_bytes,
    ),
    max_size=20,
)


@settings(max_examples=60)
@given(headers=header_lists, user=st.one_of(st.none(), st.text(max_size=50)))
def test_any_headers_route_somewhere(headers: list[tuple[bytes, bytes]], user: str | None) -> None:
    router = load_router(
        {
            "endpoints": {"a": "http://a", "b": "http://b"},
            "routes": [
                {
                    "name": "users",
                    "match": {"authenticated_user": {"present": True}},
                    "target": {"endpoints": ["a", "b"], "hash_on": ["authenticated_user"]},
                },
                {"name": "main", "default": True, "target": "a"},
            ],
        }
    )
    got: list[Endpoint] = []

    async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
        got.append(scope["state"][ENDPOINT_KEY])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = SelectorsMiddleware(inner, router, debug_header="x-route")
    sent = run(app, {"type": "http", "headers": headers, "user": user})
    assert got
    assert got[0] in router.endpoints
    route = dict(sent[0]["headers"])[b"x-route"]
    assert route.isascii()
    assert b"\r" not in route
    assert b"\n" not in route
