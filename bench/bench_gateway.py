"""Benchmark: the gateway's upstream client, chosen by measurement, against its peers.

Five servers take the same load in one run (``wrk -t1 -c16``, small
responses, 1,000 rotating routing keys), each in a process of its own so its
CPU time can be read from ``/proc``:

- ``direct``: wrk straight to the backend (uvicorn, uvloop, httptools);
- ``nginx``: ``hash $http_x_spinnaker_application consistent``, one process;
- ``gateway``: :class:`selectors_lib.gateway.SelectorsProxy` (asyncio +
  httptools, a keep-alive pool per endpoint) under uvicorn, one worker;
- ``httpx``: the same routing with an ``httpx.AsyncClient`` upstream (sniffio
  installed), the client the proxy used before;
- ``aiohttp``: the same routing with an ``aiohttp.ClientSession`` upstream.

Reported: requests/s, its ratio to nginx, and proxy CPU per request (the
proxy process's user+system time over the requests served). The issue's
targets: at least 1/3 of nginx's requests/s and at most 150 us of CPU per
request. A missing peer (nginx, wrk, aiohttp, httpx) is skipped with a message.

Usage: python bench/bench_gateway.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

KEYS = 1000
ISOLATION = """
endpoints: {slow: "%(slow)s", fast: "%(fast)s"}
routes:
  - {name: slow, match: {application: slow}, target: slow}
  - {name: fast, default: true, target: fast}
gateway: {max_connections: 100, connect_timeout: 30, first_byte_timeout: 30}
"""
ROUTES = """
endpoints: {e1: "%(url)s", e2: "%(url)s/", e3: "%(url)s//"}
routes:
  - name: main
    default: true
    target: {endpoints: [e1, e2, e3], hash_on: [application]}
"""
LUA = """
local i = 0
request = function()
  i = (i + 1) %% %(keys)d
  return wrk.format(nil, "/api/items", {["X-Spinnaker-Application"] = "app-" .. i})
end
"""
NGINX = """
worker_processes 1;
master_process off;
daemon off;
error_log %(dir)s/error.log crit;
pid %(dir)s/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %(dir)s; proxy_temp_path %(dir)s; fastcgi_temp_path %(dir)s;
  uwsgi_temp_path %(dir)s; scgi_temp_path %(dir)s;
  upstream backends {
    hash $http_x_spinnaker_application consistent;
    server 127.0.0.1:%(port)d; server 127.0.0.1:%(port)d; server 127.0.0.1:%(port)d;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:%(listen)d;
    location / {
      proxy_pass http://backends;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
"""


# -- servers (run in subprocesses: ``bench_gateway.py --serve KIND PORT [BACKEND]``) ------


async def backend_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/drip":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(600):
            await send({"type": "http.response.body", "body": b"x\n", "more_body": True})
            await asyncio.sleep(0.1)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    if scope["path"] == "/slow":
        await asyncio.sleep(20)
    body = b'{"ok": true}'
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"12")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _hop(headers: Any) -> list[tuple[bytes, bytes]]:
    drop = {b"host", b"connection", b"keep-alive", b"transfer-encoding", b"content-length"}
    return [(n, v) for n, v in headers if n.lower() not in drop]


def peer_app(kind: str, routes: str) -> Any:
    """The same routing, with httpx or aiohttp as the upstream client."""
    import yaml

    from selectors_lib import HeaderMapping, load_router

    router = load_router(yaml.safe_load(routes))
    mapping = HeaderMapping()
    state: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        endpoint = router.select(mapping.criteria(scope["headers"]))
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        url = endpoint.url.rstrip("/") + scope["raw_path"].decode("latin-1")
        headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in _hop(scope["headers"])]
        if kind == "httpx":
            import httpx

            client = state.get("client")
            if client is None:
                client = state["client"] = httpx.AsyncClient(
                    limits=httpx.Limits(max_connections=256, max_keepalive_connections=256)
                )
            request = client.build_request(scope["method"], url, headers=headers, content=body)
            response = await client.send(request, stream=True)
            raw = [(n, v) for n, v in response.headers.raw]
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": _hop(raw),
                }
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await response.aclose()
        else:
            import aiohttp

            session = state.get("session")
            if session is None:
                session = state["session"] = aiohttp.ClientSession(
                    auto_decompress=False, connector=aiohttp.TCPConnector(limit=256)
                )
            async with session.request(
                scope["method"], url, headers=headers, data=body
            ) as response:
                raw = list(response.raw_headers)
                await send(
                    {"type": "http.response.start", "status": response.status, "headers": _hop(raw)}
                )
                async for chunk in response.content.iter_any():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


def serve(kind: str, port: int, backend: str | None) -> None:
    import uvicorn

    if kind == "backend":
        app: Any = backend_app
    else:
        routes = ROUTES % {"url": backend}
        if kind == "isolation":
            import yaml

            from selectors_lib import load_router
            from selectors_lib.gateway import SelectorsProxy

            slow, fast = backend.split(",") if backend else ("", "")
            app = SelectorsProxy(
                load_router(yaml.safe_load(ISOLATION % {"slow": slow, "fast": fast}))
            )
        elif kind == "gateway":
            import yaml

            from selectors_lib import load_router
            from selectors_lib.gateway import SelectorsProxy

            app = SelectorsProxy(load_router(yaml.safe_load(routes)))
        else:
            app = peer_app(kind, routes)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="critical",
        access_log=False,
        server_header=False,
        date_header=False,
        proxy_headers=False,
    )


# -- driver ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_wrk(port: int, script: Path, seconds: int) -> tuple[float, int, str]:
    url = f"http://127.0.0.1:{port}/api/items"
    # Warm up connections, pools and caches first.
    subprocess.run(
        ["wrk", "-t1", "-c16", "-d1s", "-s", str(script), url],
        capture_output=True,
        check=True,
        timeout=60,
    )
    out = subprocess.run(
        ["wrk", "-t1", "-c16", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: .*", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    note = f"p50 {p50.group(1) if p50 else '?'}, p99 {p99.group(1) if p99 else '?'}"
    if errors:
        note += f"; {errors.group(0)}"
    return rate, total, note


def measure(
    name: str, args: list[str] | None, port: int, script: Path, seconds: int
) -> dict[str, Any]:
    process = start(args) if args else None
    try:
        if process is not None:
            wait_listening(port, process)
            before = cpu_seconds(process.pid)
        rate, total, note = run_wrk(port, script, seconds)
        cpu = None
        if process is not None:
            # The warm-up's requests are not in `total`: count its CPU out by
            # reading the clock after it (run_wrk warms up, then measures).
            cpu = cpu_seconds(process.pid) - before
        return {"name": name, "rate": rate, "total": total, "cpu": cpu, "note": note}
    finally:
        if process is not None:
            process.terminate()
            process.wait(10)


def isolation(me: list[str], samples: int) -> None:
    """Latency to a healthy backend while another has 105 abandoned streams and 150 slow requests."""
    ports = [free_port() for _ in range(3)]
    slow = start([*me, "backend", str(ports[0])])
    fast = start([*me, "backend", str(ports[1])])
    urls = ",".join(f"http://127.0.0.1:{p}" for p in ports[:2])
    proxy = start([*me, "isolation", str(ports[2]), urls])
    held: list[socket.socket] = []
    try:
        for port, process in zip(ports, (slow, fast, proxy), strict=True):
            wait_listening(port, process)

        def request(path: str, app: str) -> socket.socket:
            sock = socket.create_connection(("127.0.0.1", ports[2]), timeout=30)
            sock.sendall(
                f"GET {path} HTTP/1.1\r\nHost: gw\r\nX-Spinnaker-Application: {app}\r\n\r\n".encode()
            )
            return sock

        def timed_fast() -> float:
            began = time.perf_counter()
            sock = request("/x", "fast")
            reply = sock.recv(65536)
            elapsed = time.perf_counter() - began
            sock.close()
            assert reply.startswith(b"HTTP/1.1 200"), reply[:40]
            return elapsed

        calm = sorted(timed_fast() for _ in range(samples))
        for _ in range(105):
            sock = request("/drip", "slow")
            sock.recv(1024)
            sock.close()  # abandoned after the response's head
        held.extend(request("/slow", "slow") for _ in range(150))
        time.sleep(0.5)
        loaded = sorted(timed_fast() for _ in range(samples))
    finally:
        for sock in held:
            sock.close()
        for process in (proxy, slow, fast):
            # Killed: the slow backend's requests would hold a graceful exit.
            process.kill()
            process.wait(10)

    def show(values: list[float]) -> str:
        return f"median {values[len(values) // 2] * 1e3:.1f} ms, max {values[-1] * 1e3:.1f} ms"

    print(f"\nisolation: a request to a healthy backend ({samples} samples, one at a time)")
    print(f"  alone:                                            {show(calm)}")
    print(f"  105 abandoned streams + 150 slow on another:      {show(loaded)}")
    verdict = "met" if loaded[-1] <= 0.1 else "NOT met"
    print(f"  target <= 100 ms: {verdict} (max {loaded[-1] * 1e3:.1f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--serve", nargs="+", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve:
        kind, port, *rest = options.serve
        serve(kind, int(port), rest[0] if rest else None)
        return
    if shutil.which("wrk") is None:
        print("bench_gateway: skipped: wrk is not installed (apt-get install -y wrk)")
        return
    seconds = 2 if options.quick else 8
    me = [sys.executable, __file__, "--serve"]
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "rotate.lua"
        script.write_text(LUA % {"keys": KEYS})
        backend_port = free_port()
        backend = start([*me, "backend", str(backend_port)])
        try:
            wait_listening(backend_port, backend)
            backend_url = f"http://127.0.0.1:{backend_port}"
            results = [measure("direct", None, backend_port, script, seconds)]
            if shutil.which("nginx"):
                port = free_port()
                conf = Path(tmp) / "nginx.conf"
                conf.write_text(NGINX % {"dir": tmp, "port": backend_port, "listen": port})
                results.append(
                    measure("nginx", ["nginx", "-c", str(conf), "-p", tmp], port, script, seconds)
                )
            else:
                print("bench_gateway: nginx skipped: not installed (apt-get install -y nginx)")
            for kind, module in (
                ("gateway", "httptools"),
                ("httpx", "httpx"),
                ("aiohttp", "aiohttp"),
            ):
                try:
                    __import__(module)
                except ImportError:
                    print(f"bench_gateway: {kind} skipped: {module} is not installed")
                    continue
                port = free_port()
                results.append(
                    measure(kind, [*me, kind, str(port), backend_url], port, script, seconds)
                )
        finally:
            backend.terminate()
            backend.wait(10)
    isolation(me, 20 if options.quick else 100)
    nginx = next((r for r in results if r["name"] == "nginx"), None)
    print(
        f"\nwrk -t1 -c16 -d{seconds}s, {KEYS} rotating keys, one uvicorn worker"
        " (uvloop, httptools) per Python server"
    )
    print(f"{'server':<9} {'req/s':>9} {'vs nginx':>9} {'CPU us/req':>11}  latency")
    for r in results:
        ratio = f"{r['rate'] / nginx['rate']:.2f}x" if nginx else "-"
        cpu = f"{r['cpu'] / r['total'] * 1e6:.0f}" if r["cpu"] is not None else "-"
        print(f"{r['name']:<9} {r['rate']:>9.0f} {ratio:>9} {cpu:>11}  {r['note']}")
    gateway = next((r for r in results if r["name"] == "gateway"), None)
    if gateway and nginx:
        cpu_us = gateway["cpu"] / gateway["total"] * 1e6
        share = gateway["rate"] / nginx["rate"]
        print(
            f"\ntargets: >= 1/3 of nginx's req/s: {share:.2f} "
            f"({'met' if share >= 1 / 3 else 'NOT met'}); <= 150 us CPU/request: "
            f"{cpu_us:.0f} us ({'met' if cpu_us <= 150 else 'NOT met'})"
        )
    for r in results:
        if r["name"] in ("httpx", "aiohttp") and gateway:
            print(
                f"gateway vs {r['name']}: {gateway['rate'] / r['rate']:.2f}x the req/s, "
                f"{(r['cpu'] / r['total']) / (gateway['cpu'] / gateway['total']):.2f}x less CPU"
            )


if __name__ == "__main__":
    main()
