"""Regressions from the security review, against real servers on loopback.

Each test drives uvicorn (ASGI), wsgiref (WSGI) or httpx's real HTTP transport,
as a client would, and checks what actually reached the backend.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx
import pytest
from adapters_support import echo_app, serve_asgi, serve_wsgi
from hypothesis import example, given, settings
from hypothesis import strategies as st

from selectors_lib import Criteria, HeaderMapping, load_router
from selectors_lib.asgi import CRITERIA_KEY, SelectorsMiddleware
from selectors_lib.gateway import SelectorsProxy
from selectors_lib.httpx import SelectorsTransport, UnsafePathError
from selectors_lib.wsgi import SelectorsWSGIMiddleware

Start = Callable[..., Any]


def wsgi_echo(environ: dict[str, Any], start_response: Start) -> Iterable[bytes]:
    """A WSGI backend that reports the HTTP_* keys it got, as bytes (PEP 3333: latin-1)."""
    seen = {
        k: v.encode("latin-1").hex()
        for k, v in environ.items()
        if k.startswith("HTTP_") and isinstance(v, str)
    }
    body = json.dumps(seen).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def environ_bytes(response: httpx.Response) -> dict[str, bytes]:
    return {k: bytes.fromhex(v) for k, v in response.json().items()}


def raw_request(base: str, request: bytes) -> bytes:
    """Send bytes as they are (httpx would resolve dot segments before sending)."""
    url = httpx.URL(base)
    assert url.port is not None
    with socket.create_connection((url.host, url.port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def status_and_body(reply: bytes) -> tuple[int, bytes]:
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.fixture(scope="module")
def wsgi_backend() -> Iterator[str]:
    with serve_wsgi(wsgi_echo) as url:
        yield url


# -- 1. the proxy cannot be walked out of an endpoint's base path ------------------------


@pytest.fixture(scope="module")
def api_proxy() -> Iterator[str]:
    with serve_asgi(echo_app("api")) as backend:
        router = load_router(
            {
                "endpoints": {"api": f"{backend}/api/"},
                "routes": [{"name": "all", "default": True, "target": "api"}],
            }
        )
        with serve_asgi(SelectorsProxy(router), lifespan="on", proxy=True) as proxy:
            yield proxy


@pytest.mark.parametrize(
    "path",
    [
        b"/../admin/secret",
        b"/./../../etc",
        b"/x/..",
        b"/%2e%2e/admin",
        b"/%2E%2E/admin",
        b"/%2e/x",
        b"/a/..%2fadmin",
        b"/a/..%5cadmin",
        b"/..;jsessionid=1/admin",
    ],
)
def test_proxy_refuses_dot_segments_with_400(api_proxy: str, path: bytes) -> None:
    reply = raw_request(
        api_proxy, b"GET " + path + b" HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"
    )
    status, body = status_and_body(reply)
    # Before the fix /../admin/secret reached the backend as /admin/secret.
    assert status == 400
    assert b"backend" not in body


def test_proxy_keeps_dots_that_are_not_segments(api_proxy: str) -> None:
    reply = raw_request(
        api_proxy,
        b"GET /a..b/.well-known/...x?next=/../y HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
    )
    status, body = status_and_body(reply)
    assert status == 200
    echo = json.loads(body)
    assert (echo["raw_path"], echo["query"]) == ("/api/a..b/.well-known/...x", "next=/../y")


def test_httpx_transport_refuses_encoded_dot_segments() -> None:
    with serve_asgi(echo_app("cd")) as backend:
        router = load_router(
            {
                "endpoints": {"cd": f"{backend}/v1"},
                "routes": [{"name": "all", "default": True, "target": "cd"}],
            }
        )
        transport = SelectorsTransport(router, "http://clouddriver/api")
        with httpx.Client(transport=transport, timeout=10) as client:
            ok = client.get("http://clouddriver/api/applications/a..b").json()
            assert ok["raw_path"] == "/v1/applications/a..b"
            for raw in (b"/api/%2e%2e/admin", b"/api/x/..%2F..%2Fadmin", b"/api/%2E"):
                url = httpx.URL("http://clouddriver/").copy_with(raw_path=raw)
                # Before the fix these went out as /v1/%2e%2e/admin and the like.
                with pytest.raises(UnsafePathError):
                    client.get(url)


# -- 2. a user header spelled with underscores never reaches a WSGI backend -------------


@pytest.mark.parametrize("underscores", [False, True])
def test_underscore_spelling_cannot_spoof_the_user(wsgi_backend: str, underscores: bool) -> None:
    router = load_router(
        {
            "endpoints": {"w": wsgi_backend},
            "routes": [{"name": "all", "default": True, "target": "w"}],
        }
    )
    proxy = SelectorsProxy(router, underscore_headers=underscores)

    async def authenticated(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/auth":
            scope["user"] = "alice"
        await proxy(scope, receive, send)

    spoof = [
        ("X_Spinnaker_User", "admin"),
        ("x-spinnaker_user", "root"),
        ("X_Forwarded_For", "10.9.9.9"),
        ("X_Other", "kept only when allowed"),
    ]
    with (
        serve_asgi(authenticated, lifespan="on", proxy=True) as url,
        httpx.Client(timeout=10) as client,
    ):
        anonymous = environ_bytes(client.get(url + "/", headers=spoof))
        alice = environ_bytes(client.get(url + "/auth", headers=spoof))
    # Before the fix the backend read HTTP_X_SPINNAKER_USER = admin.
    assert "HTTP_X_SPINNAKER_USER" not in anonymous
    assert alice["HTTP_X_SPINNAKER_USER"] == b"alice"
    # Allowed, X_Forwarded_For is read as the X-Forwarded-For a WSGI backend
    # would see it as: the client's claim, in front of the address the proxy saw.
    chain = b"10.9.9.9, 127.0.0.1" if underscores else b"127.0.0.1"
    assert anonymous["HTTP_X_FORWARDED_FOR"] == chain
    assert ("HTTP_X_OTHER" in anonymous) is underscores


def test_wsgi_middleware_reads_both_spellings_alike(wsgi_backend: str) -> None:
    # What docs/wsgi.md warns about: wsgiref hands X_Spinnaker_User over as
    # HTTP_X_SPINNAKER_USER, so trusting the header needs a front proxy that
    # drops underscore names (SelectorsProxy, nginx and gunicorn do by default).
    seen: list[Criteria] = []

    def app(environ: dict[str, Any], start_response: Start) -> Iterable[bytes]:
        seen.append(environ[CRITERIA_KEY])
        start_response("204 No Content", [])
        return []

    router = load_router(
        {
            "endpoints": {"w": "http://w"},
            "routes": [{"name": "all", "default": True, "target": "w"}],
        }
    )
    trusting = SelectorsWSGIMiddleware(app, router, mapping=HeaderMapping(trust_user_header=True))
    with serve_wsgi(trusting) as url, httpx.Client(timeout=10) as client:
        client.get(url, headers={"X_Spinnaker_User": "admin"})
    assert seen[0].authenticated_user == "admin"


# -- 3. one decoding rule on every path --------------------------------------------------

NON_ASCII_ROUTES = {
    "endpoints": {"accent": "http://accent", "other": "http://other"},
    "routes": [
        {"name": "accent", "match": {"application": "café"}, "target": "accent"},
        {"name": "other", "default": True, "target": "other"},
    ],
}


def criteria_via_every_adapter(value: bytes) -> dict[str, Criteria]:
    """The criteria built from ``X-Spinnaker-Application: value`` by each adapter."""
    router = load_router(NON_ASCII_ROUTES)
    got: dict[str, Criteria] = {}

    async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        got["asgi"] = scope["state"][CRITERIA_KEY]
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def wsgi_app(environ: dict[str, Any], start_response: Start) -> Iterable[bytes]:
        got["wsgi"] = environ[CRITERIA_KEY]
        start_response("204 No Content", [])
        return []

    headers = [(b"X-Spinnaker-Application", value)]
    with (
        serve_asgi(SelectorsMiddleware(asgi_app, router)) as asgi_url,
        serve_wsgi(SelectorsWSGIMiddleware(wsgi_app, router)) as wsgi_url,
        httpx.Client(timeout=10) as client,
    ):
        client.get(asgi_url, headers=headers)
        client.get(wsgi_url, headers=headers)
        transport = SelectorsTransport(router, "http://svc", transport=httpx.HTTPTransport())
        with httpx.Client(transport=transport, timeout=10) as routed:
            # The routed request goes to http://accent or http://other: no
            # server there; the criteria are attached before it is sent.
            request = routed.build_request("GET", "http://svc/", headers=headers)
            with pytest.raises(httpx.ConnectError):
                routed.send(request)
            got["httpx"] = request.extensions[CRITERIA_KEY]
    return got


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("café".encode(), "café"),  # UTF-8
        ("café".encode("latin-1"), "café"),  # not valid UTF-8: latin-1
        ("日本".encode(), "日本"),
    ],
)
def test_non_ascii_values_decode_alike_everywhere(raw: bytes, text: str) -> None:
    got = criteria_via_every_adapter(raw)
    # Before the fix ASGI and WSGI read UTF-8 café as cafÃ©; httpx read café.
    assert {name: c.application for name, c in got.items()} == {
        "asgi": text,
        "wsgi": text,
        "httpx": text,
    }


@pytest.mark.parametrize("raw", ["café".encode(), "café".encode("latin-1"), b"plain"])
def test_trusted_user_header_is_forwarded_byte_for_byte(wsgi_backend: str, raw: bytes) -> None:
    router = load_router(
        {
            "endpoints": {"w": wsgi_backend},
            "routes": [{"name": "all", "default": True, "target": "w"}],
        }
    )
    proxy = SelectorsProxy(router, mapping=HeaderMapping(trust_user_header=True))
    with (
        serve_asgi(proxy, lifespan="on", proxy=True) as url,
        httpx.Client(timeout=10) as client,
    ):
        seen = environ_bytes(client.get(url + "/", headers=[(b"X-Spinnaker-User", raw)]))
    # Before the fix UTF-8 café arrived as caf\xc3\x83\xc2\xa9 (encoded twice).
    assert seen["HTTP_X_SPINNAKER_USER"] == raw


# -- 4. headers the proxy derives are the proxy's, not the client's ---------------------


def test_gate_origin_and_forwarded_are_set_by_the_proxy(wsgi_backend: str) -> None:
    router = load_router(
        {
            "endpoints": {"w": wsgi_backend},
            "routes": [{"name": "all", "default": True, "target": "w"}],
        }
    )
    proxy = SelectorsProxy(router, mapping=HeaderMapping(gate_origin=True))
    lies = [
        ("X-Spinnaker-User-Origin", "deck"),
        ("X-RateLimit-App", "cli"),
        ("Forwarded", "for=198.51.100.1;host=evil.example;proto=https"),
        ("X-Forwarded-For", "203.0.113.9"),
    ]
    with (
        serve_asgi(proxy, lifespan="on", proxy=True) as url,
        httpx.Client(timeout=10) as client,
    ):
        seen = environ_bytes(client.get(url + "/", headers=lies))
        deck = environ_bytes(client.get(url + "/", headers={"X-RateLimit-App": "Deck"}))
    netloc = httpx.URL(url).netloc
    # Routed as api (X-RateLimit-App is not deck), so the backend is told api.
    assert seen["HTTP_X_SPINNAKER_USER_ORIGIN"] == b"api"
    assert deck["HTTP_X_SPINNAKER_USER_ORIGIN"] == b"deck"
    assert seen["HTTP_X_FORWARDED_FOR"] == b"203.0.113.9, 127.0.0.1"
    assert seen["HTTP_X_FORWARDED_HOST"] == netloc
    # The client's Forwarded is replaced by one saying what X-Forwarded-* say.
    assert seen["HTTP_FORWARDED"] == (
        b'for=203.0.113.9, for=127.0.0.1;host="' + netloc + b'";proto=http'
    )


def test_forwarded_quotes_odd_chain_entries(wsgi_backend: str) -> None:
    router = load_router(
        {
            "endpoints": {"w": wsgi_backend},
            "routes": [{"name": "all", "default": True, "target": "w"}],
        }
    )
    proxy = SelectorsProxy(router)
    with (
        serve_asgi(proxy, lifespan="on", proxy=True) as url,
        httpx.Client(timeout=10) as client,
    ):
        seen = environ_bytes(
            client.get(url + "/", headers={"X-Forwarded-For": '2001:db8::1, x"y;proto=https'})
        )
    assert seen["HTTP_FORWARDED"].startswith(b'for="[2001:db8::1]", for="x\\"y;proto=https", ')


def test_forwarded_chain_is_bounded(wsgi_backend: str) -> None:
    router = load_router(
        {
            "endpoints": {"w": wsgi_backend},
            "routes": [{"name": "all", "default": True, "target": "w"}],
        }
    )
    hops = [f"10.0.0.{i}" for i in range(100)]
    with (
        serve_asgi(SelectorsProxy(router), lifespan="on", proxy=True) as url,
        httpx.Client(timeout=10) as client,
    ):
        seen = environ_bytes(client.get(url + "/", headers={"X-Forwarded-For": ",".join(hops)}))
    # The nearest 32 hops, then the address the proxy saw.
    expected = [*hops[-32:], "127.0.0.1"]
    assert seen["HTTP_X_FORWARDED_FOR"].decode().split(", ") == expected
    assert seen["HTTP_FORWARDED"].count(b"for=") == 33


# -- 5. over-long values stay over-long --------------------------------------------------

PATTERN_ROUTES = {
    "version": 1,
    "endpoints": {"k": "http://k", "main": "http://main"},
    "routes": [
        {"name": "k", "match": {"application": {"regex": "k.*"}}, "target": "k"},
        {"name": "main", "default": True, "target": "main"},
    ],
}


def test_over_long_values_route_as_for_direct_callers() -> None:
    router = load_router(PATTERN_ROUTES)  # settings.max_value_length: 4096
    long = "k" * 5000
    assert router.select(Criteria(application=long)).id == "main"
    picked: dict[str, str] = {}

    async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        picked["asgi"] = scope["state"]["selectors_lib.endpoint"].id
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def wsgi_app(environ: dict[str, Any], start_response: Start) -> Iterable[bytes]:
        picked["wsgi"] = environ["selectors_lib.endpoint"].id
        start_response("204 No Content", [])
        return []

    with (
        serve_asgi(SelectorsMiddleware(asgi_app, router)) as asgi_url,
        serve_wsgi(SelectorsWSGIMiddleware(wsgi_app, router)) as wsgi_url,
        httpx.Client(timeout=10) as client,
    ):
        client.get(asgi_url, headers={"X-Spinnaker-Application": long})
        client.get(wsgi_url, headers={"X-Spinnaker-Application": long})
    # Before the fix the value was cut to 1024 characters and matched k.*.
    assert picked == {"asgi": "main", "wsgi": "main"}


@settings(max_examples=60)
@given(
    cap=st.integers(1, 40),
    value=st.text(st.characters(max_codepoint=0x3000, exclude_categories=["Cs"]), max_size=200),
    as_bytes=st.booleans(),
)
@example(cap=2, value="\u00c2\x800", as_bytes=False)  # its latin-1 bytes are UTF-8 for "\x800"
def test_mapping_and_direct_criteria_route_alike(cap: int, value: str, as_bytes: bool) -> None:
    config = {**PATTERN_ROUTES, "settings": {"max_value_length": cap}}
    config["routes"] = [
        {"name": "k", "match": {"application": {"regex": "k.*"}}, "target": "k"},
        {"name": "main", "default": True, "target": "main"},
    ]
    router = load_router(config)
    # A str header value is latin-1-decoded bytes (PEP 3333, Starlette): the
    # value as a server hands it over is its UTF-8 bytes, or those read as latin-1.
    encoded = value.encode("utf-8")
    raws: list[str | bytes] = [encoded if as_bytes else encoded.decode("latin-1")]
    if any(ord(c) > 0xFF for c in value):
        raws.append(value)  # beyond latin-1: text decoded already, kept as it is
    for raw in raws:
        mapped = HeaderMapping(max_value_length=cap).criteria([("x-spinnaker-application", raw)])
        assert mapped.application is not None
        assert (len(mapped.application) > cap) == (len(value) > cap)
        assert router.select(mapped) == router.select(Criteria(application=value))


# -- 6. the cap is validated -------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -1, True, 2.5, "10"])
def test_max_value_length_must_be_a_positive_integer(bad: Any) -> None:
    with pytest.raises(ValueError, match="max_value_length"):
        HeaderMapping(max_value_length=bad)
