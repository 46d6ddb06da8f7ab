"""``selectors-lib serve`` as users run it: a real process, real backends, real sockets."""

from __future__ import annotations

import http.client
import json
import os
import re
import select
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_support import Backend, get, serve, wait_for, write_config

from selectors_lib import Criteria, load_router

pytest.importorskip("uvicorn")
pytest.importorskip("prometheus_client")

USERS = [f"user-{i}" for i in range(12)]
LISTENING = re.compile(r"\[(\d+)\] selectors_lib.serve: selectors-lib serve: listening")


@pytest.fixture(scope="module")
def backends() -> Iterator[dict[str, Backend]]:
    made = {name: Backend(name) for name in ("a", "b", "c")}
    yield made
    for backend in made.values():
        backend.close()


def endpoints(backends: dict[str, Backend]) -> dict[str, str]:
    return {name: backend.url for name, backend in backends.items()}


def expected(config: Path, user: str) -> str:
    """Where this process's own router sends the user: serve must agree."""
    return load_router(config).select(Criteria(authenticated_user=user)).id


def test_routes_like_the_library_and_logs_each_decision(
    backends: dict[str, Backend], tmp_path: Path
) -> None:
    config = tmp_path / "routes.json"
    write_config(config, endpoints(backends), ["a", "b", "c"])
    with serve(config, tmp_path) as gateway:
        for user in USERS:
            status, body = gateway.get(f"/items/{user}?q=1", user=user)
            assert status == 200
            assert body == f"{expected(config, user)} /items/{user}?q=1\n"
        landed = {gateway.get("/", user=u)[1].split()[0] for u in USERS}
        assert len(landed) > 1  # the users really spread over the pool
        lines = wait_for(lambda: gateway.access_lines()[: len(USERS)], "access log lines")
    for user, line in zip(USERS, lines, strict=True):
        assert f'"GET /items/{user}?q=1 HTTP/1.1" 200 ' in line
        assert "rule=by-user" in line
        assert f"endpoint={expected(config, user)} " in line
        assert "failover=0" in line


def test_admin_port_reports_readiness_liveness_and_metrics(
    backends: dict[str, Backend], tmp_path: Path
) -> None:
    config = tmp_path / "routes.json"
    write_config(config, endpoints(backends), ["a", "b"])
    with serve(config, tmp_path, "--access-log", "json") as gateway:
        assert get(gateway.admin_port, "/livez") == (200, "ok\n")
        status, ready = gateway.ready()
        assert status == 200
        assert ready["ready"] is True
        assert ready["config"]["generation"] == 0
        assert ready["health"]["monitor"] == "off"  # no health: section
        for user in USERS[:5]:
            assert gateway.get("/", user=user)[0] == 200
        text = gateway.metrics()
        decisions = [
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("selectors_decisions_total{")
        ]
        assert sum(decisions) == 5
        assert 'selectors_gateway_requests_total{status_class="2xx"} 5.0' in text
        assert "selectors_config_last_reload_successful 1.0" in text
        assert get(gateway.port, "/readyz")[1].startswith(("a ", "b "))  # proxied, not admin
        record = json.loads(wait_for(gateway.access_lines, "a json line")[0])
    assert record["status"] == 200
    assert record["rule"] == "by-user"
    assert record["endpoint"] in {"a", "b"}


def test_sighup_applies_a_new_config_and_keeps_the_last_good_one(
    backends: dict[str, Backend], tmp_path: Path
) -> None:
    config = tmp_path / "routes.json"
    write_config(config, endpoints(backends), ["a", "b"])
    # No polling: only SIGHUP may reload.
    with serve(config, tmp_path, "--reload-interval", "0") as gateway:
        write_config(config, endpoints(backends), ["c"])
        assert {gateway.get("/", user=u)[1].split()[0] for u in USERS} <= {"a", "b"}
        gateway.signal(signal.SIGHUP)
        wait_for(lambda: gateway.ready()[1]["config"]["generation"] == 1, "the reload")
        assert {gateway.get("/", user=u)[1].split()[0] for u in USERS} == {"c"}

        config.write_text('{"version": 1, "endpoints": {"a": 7}}', "utf-8")
        gateway.signal(signal.SIGHUP)
        ready = wait_for(
            lambda: gateway.ready()[1]["config"]["last_reload_error"], "the failed reload"
        )
        assert "endpoints.a" in ready or "routes" in ready
        status, state = gateway.ready()
        assert status == 200  # still serving, the last good configuration
        assert state["config"]["generation"] == 1
        assert {gateway.get("/", user=u)[1].split()[0] for u in USERS} == {"c"}
        assert "selectors_config_last_reload_successful 0.0" in gateway.metrics()
    assert "previous configuration keeps serving" in gateway.stderr()


def test_file_change_is_picked_up_without_a_signal(
    backends: dict[str, Backend], tmp_path: Path
) -> None:
    config = tmp_path / "routes.json"
    write_config(config, endpoints(backends), ["a"])
    with serve(config, tmp_path, "--reload-interval", "0.1") as gateway:
        assert gateway.get("/", user="u")[1].startswith("a ")
        write_config(config, endpoints(backends), ["b"])
        wait_for(lambda: gateway.get("/", user="u")[1].startswith("b "), "the polled reload")


def test_sigterm_drains_a_request_in_flight_then_exits(
    backends: dict[str, Backend], tmp_path: Path
) -> None:
    config = tmp_path / "routes.json"
    write_config(config, endpoints(backends), ["a"])
    with serve(config, tmp_path, "--drain-timeout", "10") as gateway:
        before = backends["a"].started
        result: list[tuple[int, str]] = []
        client = threading.Thread(target=lambda: result.append(gateway.get("/slow?s=1.5", "u")))
        client.start()
        wait_for(lambda: backends["a"].started > before, "the slow request to reach the backend")
        gateway.signal(signal.SIGTERM)
        wait_for(lambda: "listener closed" in gateway.stderr(), "the listener to close")
        with pytest.raises(ConnectionError):
            get(gateway.port, "/", {"X-SPINNAKER-USER": "late"})  # no longer accepting
        assert gateway.process.wait(12) == 0
        client.join(5)
    assert result == [(200, "a /slow?s=1.5\n")]


def test_sigterm_cancels_what_outlasts_the_drain_deadline(
    backends: dict[str, Backend], tmp_path: Path
) -> None:
    config = tmp_path / "routes.json"
    write_config(config, endpoints(backends), ["b"])
    with serve(config, tmp_path, "--drain-timeout", "0.5") as gateway:
        before = backends["b"].started
        errors: list[object] = []

        def slow() -> None:
            try:
                errors.append(gateway.get("/slow?s=20", "u"))
            except (OSError, http.client.HTTPException) as exc:
                errors.append(exc)

        client = threading.Thread(target=slow)
        client.start()
        wait_for(lambda: backends["b"].started > before, "the slow request to reach the backend")
        gateway.signal(signal.SIGTERM)
        # Exits soon after the deadline, not when the 20 s request would end.
        assert gateway.process.wait(8) == 0
        client.join(5)
        assert not client.is_alive()
    # Cut, not a fake success: a 500 when nothing was sent yet (uvicorn's
    # answer for a cancelled app), or a dropped connection.
    assert len(errors) == 1
    assert isinstance(errors[0], Exception) or errors[0][0] == 500, errors


def test_health_section_starts_the_monitor_and_ejects_a_dead_endpoint(
    backends: dict[str, Backend], tmp_path: Path
) -> None:
    dead = Backend("dead")
    dead.close()  # its port now refuses connections
    config = tmp_path / "routes.json"
    health = {
        "interval": 0.1,
        "timeout": 0.5,
        "eject_after": 1,
        "readmit_after": 1,
        "probes": [{"type": "http", "name": "web", "endpoints": ["a", "dead"], "path": "/"}],
    }
    write_config(config, {"a": backends["a"].url, "dead": dead.url}, ["a", "dead"], health=health)
    with serve(config, tmp_path) as gateway:
        state = wait_for(
            lambda: (s := gateway.ready()[1])["health"]["down"] == ["dead"] and s, "the ejection"
        )
        assert state["health"]["monitor"] == "on"
        # Every user now lands on the live replica, the dead one's users included.
        assert {gateway.get("/", user=u)[0] for u in USERS} == {200}
        assert 'selectors_endpoint_up{endpoint="dead"} 0.0' in gateway.metrics()


def test_workers_route_identically_reload_together_and_sum_metrics(
    backends: dict[str, Backend], tmp_path: Path
) -> None:
    config = tmp_path / "routes.json"
    write_config(config, endpoints(backends), ["a", "b", "c"])
    with serve(config, tmp_path, "--workers", "2", "--reload-interval", "0") as gateway:
        wait_for(lambda: len(set(LISTENING.findall(gateway.stderr()))) == 2, "both workers")
        for user in USERS:
            assert gateway.get("/", user=user)[1].split()[0] == expected(config, user)
        write_config(config, endpoints(backends), ["c"])
        gateway.signal(signal.SIGHUP)
        wait_for(
            lambda: gateway.stderr().count("SIGHUP: now serving generation 1") == 2,
            "both workers to reload",
        )
        assert {gateway.get("/", user=u)[1].split()[0] for u in USERS * 2} == {"c"}

        def decisions() -> float:
            return sum(
                float(line.rsplit(" ", 1)[1])
                for line in gateway.metrics().splitlines()
                if line.startswith("selectors_decisions_total{")
            )

        # Every request, whichever worker took it: the worker answering the
        # scrape counts its own at once, the other within its flush (200 ms).
        wait_for(lambda: decisions() == len(USERS) * 3, "both workers' decisions counted")
        assert decisions() == len(USERS) * 3  # and never more
        gateway.signal(signal.SIGTERM)
        assert gateway.process.wait(15) == 0


def test_a_worker_restarted_on_a_broken_file_serves_the_last_good_config(
    backends: dict[str, Backend], tmp_path: Path
) -> None:
    config = tmp_path / "routes.json"
    write_config(config, endpoints(backends), ["b"])
    with serve(config, tmp_path, "--workers", "2", "--reload-interval", "0") as gateway:
        wait_for(lambda: len(set(LISTENING.findall(gateway.stderr()))) == 2, "both workers")
        config.write_text("{not json", "utf-8")
        victim = int(LISTENING.findall(gateway.stderr())[0])
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: "serving its last good copy" in gateway.stderr(), "the restart")
        wait_for(lambda: len(set(LISTENING.findall(gateway.stderr()))) == 3, "the new worker")
        assert {gateway.get("/", user=u)[1].split()[0] for u in USERS * 2} == {"b"}


def test_a_reload_starts_replaces_and_stops_the_health_monitor(
    backends: dict[str, Backend], tmp_path: Path
) -> None:
    dead = Backend("dead")
    dead.close()
    config = tmp_path / "routes.json"
    pool = {"a": backends["a"].url, "dead": dead.url}
    health = {
        "interval": 0.1,
        "timeout": 0.5,
        "eject_after": 1,
        "readmit_after": 1,
        "probes": [{"type": "http", "name": "web", "endpoints": ["a", "dead"], "path": "/"}],
    }
    write_config(config, pool, ["a", "dead"])
    with serve(config, tmp_path, "--reload-interval", "0") as gateway:
        assert gateway.ready()[1]["health"]["monitor"] == "off"
        write_config(config, pool, ["a", "dead"], health=health)
        gateway.signal(signal.SIGHUP)
        wait_for(lambda: gateway.ready()[1]["health"]["down"] == ["dead"], "the ejection")
        # Without a health section nothing probes: what the monitor ejected comes back.
        write_config(config, pool, ["a", "dead"])
        gateway.signal(signal.SIGHUP)
        state = wait_for(
            lambda: (s := gateway.ready()[1])["health"]["monitor"] == "off" and s, "the reload"
        )
        assert state["health"] == {"monitor": "off", "rounds": 0, "down": []}


def test_drain_delay_turns_unready_but_keeps_serving_until_it_ends(
    backends: dict[str, Backend], tmp_path: Path
) -> None:
    config = tmp_path / "routes.json"
    write_config(config, endpoints(backends), ["a"])
    with serve(config, tmp_path, "--drain-delay", "1.5", "--drain-timeout", "2") as gateway:
        assert gateway.ready()[0] == 200
        gateway.signal(signal.SIGTERM)
        wait_for(lambda: "still accepting" in gateway.stderr(), "the stop signal")
        status, state = gateway.ready()
        assert (status, state["draining"]) == (503, True)
        assert gateway.get("/", user="u") == (200, "a /\n")  # still served meanwhile
        assert gateway.process.wait(10) == 0
    assert gateway.stderr().index("still accepting") < gateway.stderr().index("draining: up to")


def test_a_request_head_without_end_is_refused_not_buffered(
    backends: dict[str, Backend], tmp_path: Path
) -> None:
    # httptools grows a header line until it ends: without serve's own limit
    # one client would cost the worker memory and quadratic time.
    config = tmp_path / "routes.json"
    write_config(config, endpoints(backends), ["a"])
    with serve(config, tmp_path) as gateway:
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: gw\r\nX-Endless: ")
            reply = b""
            try:
                for _ in range(256):  # 4 MiB at most, stopping once answered
                    sock.sendall(b"e" * 16384)
                    if select.select([sock], [], [], 0)[0]:
                        break
                reply = sock.recv(4096)
            except ConnectionResetError:
                pass  # refused: the answer may be lost to the reset
        assert reply == b"" or reply.startswith(b"HTTP/1.1 431"), reply[:80]
        assert gateway.get("/")[0] == 200
