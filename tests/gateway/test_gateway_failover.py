"""Failover under real failures: backends in processes of their own, killed and stopped."""

from __future__ import annotations

import threading
from typing import Any

import httpx
from adapters_support import serve_asgi
from gateway_backends import Backend

from selectors_lib import HealthEvent, load_router
from selectors_lib.gateway import SelectorsProxy

APPS = [f"app-{i}" for i in range(24)]


def config(backends: list[Backend], **gateway: Any) -> dict[str, Any]:
    return {
        "endpoints": {b.name: b.url for b in backends},
        "routes": [
            {
                "name": "reads",
                "default": True,
                "target": {"endpoints": [b.name for b in backends], "hash_on": ["application"]},
            }
        ],
        "gateway": gateway,
    }


class Recorder:
    """The proxy under uvicorn, keeping each request's record (as an access log would)."""

    def __init__(self, proxy: SelectorsProxy) -> None:
        self.proxy = proxy
        self.records: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def send_and_record(message: dict[str, Any]) -> None:
            # Complete once the response starts; kept before the client can
            # see the answer (after the proxy returns would race the client).
            if message["type"] == "http.response.start":
                self.records.append(dict(scope["extensions"]["selectors_lib"]))
            await send(message)

        await self.proxy(scope, receive, send_and_record)


def served_by(client: httpx.Client, app: str) -> str:
    response = client.get("/who", headers={"X-Spinnaker-Application": app})
    assert response.status_code == 200, response.text
    return response.headers["x-backend"]


def test_killing_a_backend_under_load_fails_no_request_and_its_keys_come_back(
    three: list[Backend],
) -> None:
    router = load_router(
        config(
            three,
            connect_timeout=1,
            first_byte_timeout=5,
            outlier={"consecutive_failures": 2, "ejection_time": 0.2, "max_ejection_time": 0.5},
        )
    )
    proxy = SelectorsProxy(router)
    with serve_asgi(proxy, lifespan="on", proxy=True) as base:
        with httpx.Client(base_url=base, timeout=10) as client:
            before = {app: served_by(client, app) for app in APPS}
        victim = three[1]
        moved = [app for app in APPS if before[app] == victim.name]
        assert moved, "some keys must live on the victim"
        statuses: list[int] = []
        errors: list[BaseException] = []
        done = threading.Event()

        def load() -> None:
            with httpx.Client(base_url=base, timeout=10) as c:
                i = 0
                while not done.is_set() and i < 5000:
                    app = APPS[i % len(APPS)]
                    i += 1
                    try:
                        r = c.get("/load", headers={"X-Spinnaker-Application": app})
                        statuses.append(r.status_code)
                    except httpx.HTTPError as exc:
                        errors.append(exc)

        workers = [threading.Thread(target=load) for _ in range(4)]
        for worker in workers:
            worker.start()
        try:
            # Steady load first, then the kill in the middle of it.
            while len(statuses) < 200:
                threading.Event().wait(0.01)
            victim.kill()
            killed_at = len(statuses)
            while len(statuses) < killed_at + 400:
                threading.Event().wait(0.01)
        finally:
            done.set()
            for worker in workers:
                worker.join(30)
        assert errors == []
        assert set(statuses) == {200}, f"failed requests: {len(statuses) - statuses.count(200)}"
        with httpx.Client(base_url=base, timeout=10) as client:
            during = {app: served_by(client, app) for app in APPS}
            # Only the victim's keys moved, and none went to the victim.
            assert {a for a in APPS if during[a] != before[a]} == set(moved)
            victim.start()
            # Its keys come back once the ejection ends (bounded wait).
            for _ in range(200):
                after = {app: served_by(client, app) for app in moved}
                if all(after[app] == victim.name for app in moved):
                    break
                threading.Event().wait(0.05)
            assert {app: served_by(client, app) for app in APPS} == before


def test_a_stopped_backend_costs_a_first_byte_timeout_then_traffic_routes_away(
    three: list[Backend],
) -> None:
    router = load_router(
        config(
            three,
            first_byte_timeout=0.5,
            outlier={"consecutive_failures": 2, "ejection_time": 60},
        )
    )
    events: list[HealthEvent] = []
    router.events.subscribe(lambda e: events.append(e) if isinstance(e, HealthEvent) else None)
    recorder = Recorder(SelectorsProxy(router))
    with (
        serve_asgi(recorder, lifespan="on", proxy=True) as base,
        httpx.Client(base_url=base, timeout=10) as client,
    ):
        before = {app: served_by(client, app) for app in APPS}
        victim = three[2]
        moved = [app for app in APPS if before[app] == victim.name]
        assert len(moved) >= 2
        victim.stop()
        recorder.records.clear()
        # In flight to the stopped backend: answered by the next replica
        # after the first-byte timeout.
        for app in moved[:2]:
            assert served_by(client, app) != victim.name
        assert [(r["attempts"], r["failover"]) for r in recorder.records] == [(2, True)] * 2
        # Two consecutive failures ejected it: new requests go elsewhere at once.
        assert [e.endpoint_id for e in events if not e.healthy] == [victim.name]
        assert events[-1].reason == "outlier"
        recorder.records.clear()
        for app in moved:
            assert served_by(client, app) != victim.name
        assert {r["attempts"] for r in recorder.records} == {1}
        # Keys of the other backends never moved.
        for app in APPS:
            if app not in moved:
                assert served_by(client, app) == before[app]
        victim.cont()
