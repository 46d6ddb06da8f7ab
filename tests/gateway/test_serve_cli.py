"""The ``serve`` command line and the access log, in-process: flags, errors, log lines."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from selectors_lib.cli import EXIT_INVALID, EXIT_UNAVAILABLE, EXIT_USAGE, main
from selectors_lib.gateway._accesslog import AccessLog, LineSink, RequestMetrics

prometheus_client = pytest.importorskip("prometheus_client")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def test_bad_flags_are_usage_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "routes.json"
    config.write_text(
        '{"version": 1, "endpoints": {"a": "http://127.0.0.1:1"}, '
        '"routes": [{"name": "d", "default": true, "target": "a"}]}'
    )
    assert run(capsys, "serve", str(config), "--workers", "0") == (
        EXIT_USAGE,
        "selectors-lib serve: error: --workers must be from 1 to 256, got 0\n",
    )
    code, err = run(capsys, "serve", str(config), "--drain-timeout", "nan")
    assert code == EXIT_USAGE
    assert "--drain-timeout must be from 0 to 86400" in err
    code, err = run(capsys, "serve", str(config), "--access-log", "xml")
    assert code == EXIT_USAGE


def test_a_broken_file_stops_serve_before_it_listens(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "routes.json"
    config.write_text('{"version": 1, "endpoints": {"a": 7}}')
    code, err = run(capsys, "serve", str(config), "--port", "0", "--admin-port", "-1")
    assert code == EXIT_INVALID
    assert "invalid configuration" in err
    assert "endpoints.a" in err


def test_an_address_in_use_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import socket

    config = tmp_path / "routes.json"
    config.write_text(
        '{"version": 1, "endpoints": {"a": "http://127.0.0.1:1"}, '
        '"routes": [{"name": "d", "default": true, "target": "a"}]}'
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, err = run(capsys, "serve", str(config), "--port", str(port), "--admin-port", "-1")
    assert code == EXIT_USAGE
    assert f"cannot listen on 127.0.0.1:{port}" in err


@pytest.mark.parametrize("module", ["httptools", "prometheus_client"])
def test_a_missing_dependency_names_the_extra(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    code, err = run(capsys, "serve", str(tmp_path / "routes.yaml"))
    assert code == EXIT_UNAVAILABLE
    assert f"needs {module}: pip install 'selectors-lib[serve]'" in err


# -- the access log ------------------------------------------------------------------------


def log_one(app: Any, scope: dict[str, Any], fmt: str = "text") -> tuple[str, str]:
    """Run one request through AccessLog(app); return (the line, the metrics text)."""
    lines: list[str] = []
    registry = prometheus_client.CollectorRegistry()
    metrics = RequestMetrics(registry)
    wrapped = AccessLog(app, lines.append, fmt=fmt, metrics=metrics)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(wrapped(scope, receive, send))
    assert sent[0]["type"] == "http.response.start"  # the app's answer passes through
    assert lines == []  # formatted in batches
    wrapped.flush()
    assert len(lines) == 1
    metrics.flush()  # as the worker does before each scrape
    return lines[0], prometheus_client.generate_latest(registry).decode()


def test_request_metrics_in_batches_count_as_one_observation_each() -> None:
    batched, single = prometheus_client.CollectorRegistry(), prometheus_client.CollectorRegistry()
    metrics = RequestMetrics(batched)
    reference = RequestMetrics(single)
    # Bounds themselves, just above and below them, zero, and past the last bucket.
    values = [0.0, 0.001, 0.0010001, 0.0025, 0.004, 0.1, 0.7, 30.0, 31.0, 1e9]
    statuses = [200, 204, 301, 404, 499, 500, 503, 101, 200, 200]
    for status, seconds in zip(statuses, values, strict=True):
        metrics.record(status, seconds)
    assert "_count 0.0" in prometheus_client.generate_latest(batched).decode()
    metrics.flush()
    metrics.flush()  # nothing new: counts nothing twice
    for status, seconds in zip(statuses, values, strict=True):
        reference.requests.labels(f"{status // 100}xx").inc()
        reference.duration.observe(seconds)

    def samples(registry: prometheus_client.CollectorRegistry) -> list[str]:
        text = prometheus_client.generate_latest(registry).decode()
        return [line for line in text.splitlines() if "_created" not in line]

    assert samples(batched) == samples(single)


def scope_for(raw_path: bytes, query: bytes = b"") -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "path": raw_path.decode("latin-1"),
        "raw_path": raw_path,
        "query_string": query,
        "http_version": "1.1",
        "headers": [],
        "client": ("127.0.0.1", 5000),
    }


async def recording_proxy(scope: Any, receive: Any, send: Any) -> None:
    """Answers as the gateway proxy does, leaving its decision record in the scope."""
    scope.setdefault("extensions", {})["selectors_lib"] = {
        "rule": "by user",
        "endpoint": "ro-2",
        "key_source": "authenticated_user",
        "attempts": 2,
        "failover": True,
        "upstream_status": 503,
    }
    await send({"type": "http.response.start", "status": 503, "headers": []})
    await send({"type": "http.response.body", "body": b"unavailable\n"})


def test_the_proxy_record_is_what_the_line_reports() -> None:
    line, metrics = log_one(recording_proxy, scope_for(b"/x", b"a=1"))
    assert line.startswith('127.0.0.1:5000 "GET /x?a=1 HTTP/1.1" 503 12 ')
    assert line.rstrip().endswith(
        'rule="by user" endpoint=ro-2 key_source=authenticated_user attempts=2 failover=1'
        " upstream_status=503"
    )
    assert 'selectors_gateway_requests_total{status_class="5xx"} 1.0' in metrics
    record = json.loads(log_one(recording_proxy, scope_for(b"/x"), "json")[0])
    assert record["attempts"] == 2
    assert record["failover"] is True
    assert record["status"] == 503


def test_a_hostile_target_stays_one_escaped_line() -> None:
    async def ok(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    raw = b'/a" 200 0 rule=fake\n\x1b[31m\xe9' + b"x" * 5000
    line, _ = log_one(ok, scope_for(raw))
    assert "\n" not in line
    assert '/a\\" 200 0 rule=fake\\n\\x1b[31m\\xe9' in line
    assert len(line) < 1300  # the target is cut at 1 KiB
    assert "rule=- endpoint=- key_source=-" in line  # no router decision was made


def test_no_response_at_all_is_logged_as_499() -> None:
    async def silent(scope: Any, receive: Any, send: Any) -> None:
        return None

    lines: list[str] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        raise AssertionError("nothing is sent")

    logged = AccessLog(silent, lines.append)
    asyncio.run(logged(scope_for(b"/"), receive, send))
    logged.flush()
    assert '"GET / HTTP/1.1" 499 0 ' in lines[0]


def test_line_sink_writes_whole_lines_in_pipe_atomic_chunks(tmp_path: Path) -> None:
    chunks: list[bytes] = []

    class Spy(LineSink):
        def _write(self, data: bytes) -> None:
            chunks.append(data)
            super()._write(data)

    path = tmp_path / "access.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        sink = Spy(fd)
        lines = [f"line {i} " + "x" * (i % 300) for i in range(2000)]
        for line in lines:
            sink.write(line)
        sink.write("é " + "y" * 5000)  # longer than a chunk: written alone
        sink.flush()
    finally:
        os.close(fd)
    assert path.read_text("utf-8").splitlines() == [*lines, "é " + "y" * 5000]
    assert all(c.endswith(b"\n") for c in chunks)
    assert all(len(c) <= 4096 for c in chunks[:-1])
