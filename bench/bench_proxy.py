"""Benchmark: the gateway against nginx, through wrk, all in one run.

``wrk -t1 -c16`` with small responses and 1,000 rotating users (a Lua script
sets ``X-SPINNAKER-USER`` per request), side by side:

- ``direct``: straight to one backend (the ceiling of this machine);
- ``SelectorsProxy``: the data-plane proxy alone under uvicorn (uvloop and
  httptools when installed), one process;
- ``serve``: ``selectors-lib serve`` with one worker (the proxy on serve's own
  HTTP/1.1 server, uvloop), access log on (to ``/dev/null``), metrics and admin
  port as in production;
- ``serve, no access log``: the same with ``--access-log off`` (full runs only);
- ``nginx``: one nginx worker with ``hash $http_x_spinnaker_user consistent;``
  and upstream keep-alive.

Backends are three nginx servers answering ``ok`` (so that they are never the
bottleneck). For each proxy: requests/s, p50 and p99 latency, and the proxy's
own CPU per request (utime + stime of its processes from ``/proc``, before
and after the run), with ratios against nginx. Targets for ``serve``: at least
1/3 of nginx's requests/s and at most 150 us of CPU per request.

nginx and wrk come from Debian's packages (``apt-get install -y nginx wrk``);
a missing one is skipped with a message. Numbers on a shared machine drift:
compare rows of one run.

Usage: python bench/bench_proxy.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
USERS = 1000
TARGET_RPS_SHARE = 1 / 3
TARGET_CPU_US = 150.0

LUA = f"""
local i = 0
request = function()
  i = (i % {USERS}) + 1
  return wrk.format("GET", "/", {{["X-SPINNAKER-USER"] = "user-" .. i}})
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def family(pid: int) -> list[int]:
    """The process and its children (nginx: master and worker)."""
    pids = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                pids.append(int(entry))
    return pids


def cpu_seconds(pids: list[int]) -> float:
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(port: int, seconds: float, script: Path) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            "-c16",
            f"-d{seconds:g}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}/",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "requests": total,
        "p50_ms": p50,
        "p99_ms": p99,
        "non2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",  # type: ignore[dict-item]
    }


@contextmanager
def nginx(workdir: Path, name: str, http_block: str) -> Iterator[subprocess.Popen[bytes]]:
    prefix = workdir / name
    (prefix / "logs").mkdir(parents=True)
    temp = "\n".join(
        f"  {kind}_temp_path {prefix}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"""worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
{temp}
{http_block}
}}
"""
    )
    process = subprocess.Popen(
        [
            "nginx",
            "-p",
            str(prefix),
            "-c",
            str(conf),
            "-e",
            str(prefix / "logs/error.log"),
            "-g",
            "daemon off;",
        ]
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def python_process(args: list[str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    with log.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, *args], env=env, stdout=subprocess.DEVNULL, stderr=err
        )
    try:
        wait_port(port)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


PROXY_APP = """
import sys, uvicorn
from selectors_lib import HeaderMapping, load_router
from selectors_lib.gateway._worker import make_proxy
app = make_proxy(load_router(sys.argv[1]), HeaderMapping(trust_user_header=True), 30.0)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), loop="auto", http="auto",
            access_log=False, log_level="warning", server_header=False, date_header=False,
            proxy_headers=False)
"""


def measure(name: str, port: int, pid: int | None, seconds: float, script: Path) -> dict[str, Any]:
    wrk(port, min(1.0, seconds), script)  # warm-up: connections, caches
    pids = family(pid) if pid is not None else []
    before = cpu_seconds(pids)
    result: dict[str, Any] = {"name": name, **wrk(port, seconds, script)}
    used = cpu_seconds(pids) - before
    result["cpu_us"] = used / result["requests"] * 1e6 if pid is not None else None
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 s per target instead of 10 s")
    args = parser.parse_args()
    seconds = 2.0 if args.quick else 10.0
    if shutil.which("wrk") is None:
        print("bench_proxy: skipped, wrk is not installed (apt-get install -y wrk)")
        return 0
    if shutil.which("nginx") is None:
        print("bench_proxy: skipped, nginx is not installed (apt-get install -y nginx)")
        return 0
    try:
        import uvicorn  # noqa: F401
    except ImportError:
        print("bench_proxy: skipped, uvicorn is missing (pip install 'selectors-lib[serve]')")
        return 0
    uvloop = _has("uvloop")
    httptools = _has("httptools")
    print(
        f"bench_proxy: wrk -t1 -c16, {seconds:g}s per target, {USERS} rotating users; "
        f"uvloop {'on' if uvloop else 'MISSING'}, httptools {'on' if httptools else 'MISSING'}"
    )
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as tmp:
        work = Path(tmp)
        script = work / "users.lua"
        script.write_text(LUA)
        backend_ports = [free_port() for _ in range(3)]
        servers = "\n".join(
            f'  server {{ listen 127.0.0.1:{p}; location / {{ return 200 "ok\\n"; }} }}'
            for p in backend_ports
        )
        config = work / "routes.json"
        config.write_text(
            json.dumps(
                {
                    "version": 1,
                    "endpoints": {
                        f"b{i}": f"http://127.0.0.1:{p}" for i, p in enumerate(backend_ports)
                    },
                    "routes": [
                        {
                            "name": "by-user",
                            "default": True,
                            "target": {
                                "endpoints": ["b0", "b1", "b2"],
                                "hash_on": ["authenticated_user"],
                            },
                        }
                    ],
                }
            )
        )
        with nginx(work, "backends", servers):
            for port in backend_ports:
                wait_port(port)
            results.append(measure("direct", backend_ports[0], None, seconds, script))

            port = free_port()
            with python_process(
                ["-c", PROXY_APP, str(config), str(port)], port, work / "proxy.err"
            ) as proc:
                results.append(measure("SelectorsProxy", port, proc.pid, seconds, script))

            variants = [("serve", "text")] + (
                [] if args.quick else [("serve, no access log", "off")]
            )
            for label, log in variants:
                port, admin = free_port(), free_port()
                serve_args = [
                    "-m", "selectors_lib", "serve", str(config), "--port", str(port),
                    "--admin-port", str(admin), "--trust-user-header", "--access-log", log,
                    "--log-level", "warning",
                ]  # fmt: skip
                with python_process(serve_args, port, work / "serve.err") as proc:
                    results.append(measure(label, port, proc.pid, seconds, script))

            upstreams = "\n".join(f"    server 127.0.0.1:{p};" for p in backend_ports)
            port = free_port()
            block = f"""
  upstream backends {{
    hash $http_x_spinnaker_user consistent;
{upstreams}
    keepalive 64;
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://backends;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}"""
            with nginx(work, "proxy", block) as proc:
                wait_port(port)
                results.append(measure("nginx", port, proc.pid, seconds, script))
    report(results)
    cost = access_log_cost(5_000 if args.quick else 50_000)
    print()
    print(
        "serve's own per-request CPU (access log + request metrics, in-process, over a no-op app): "
        + ", ".join(
            f"{name} log {cost[name] - cost['bare']:.1f} us" for name in ("text", "json", "off")
        )
    )
    return 0


def access_log_cost(n: int) -> dict[str, float]:
    """CPU per request of serve's own wrapper (access log line + request metrics), in-process."""
    import asyncio

    from prometheus_client import CollectorRegistry

    from selectors_lib.gateway._accesslog import AccessLog, RequestMetrics

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok\n"})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        return None

    from selectors_lib.gateway._accesslog import LineSink

    with open(os.devnull, "wb") as sink_file:
        sink = LineSink(sink_file.fileno())
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/",
            "raw_path": b"/",
            "query_string": b"",
            "http_version": "1.1",
            "headers": [(b"x-spinnaker-user", b"user-1")],
            "client": ("127.0.0.1", 40000),
        }
        out = {}
        for label, fmt in (("text", "text"), ("json", "json"), ("off", "off")):
            wrapped = AccessLog(
                app, sink.write, fmt=fmt, metrics=RequestMetrics(CollectorRegistry())
            )
            for target, name in ((app, "bare"), (wrapped, label)):

                async def loop(target: Any = target) -> None:
                    for _ in range(n):
                        await target(dict(scope), receive, send)
                    if isinstance(target, AccessLog):  # lines and metrics are done in batches
                        target.flush()
                        if target.metrics is not None:
                            target.metrics.flush()

                start = time.process_time()
                asyncio.run(loop())
                out[name] = (time.process_time() - start) / n * 1e6
        return out


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def report(results: list[dict[str, Any]]) -> None:
    peer = next((r for r in results if r["name"] == "nginx"), None)
    print()
    print(
        f"{'target':<22}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU us/req':>12}"
        f"{'req/s vs nginx':>16}{'CPU vs nginx':>14}  errors"
    )
    for r in results:
        cpu = f"{r['cpu_us']:.0f}" if r["cpu_us"] is not None else "-"
        share = f"{r['rps'] / peer['rps']:.2f}x" if peer else "-"
        cpu_ratio = (
            f"{r['cpu_us'] / peer['cpu_us']:.1f}x"
            if peer and r["cpu_us"] is not None and peer["cpu_us"]
            else "-"
        )
        errors = f"{r['non2xx']} non-2xx" + (
            f", {r['socket_errors']}" if r["socket_errors"] else ""
        )
        print(
            f"{r['name']:<22}{r['rps']:>10.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{cpu:>12}"
            f"{share:>16}{cpu_ratio:>14}  {errors}"
        )
    serve = next((r for r in results if r["name"] == "serve"), None)
    if serve is not None and peer is not None:
        share = serve["rps"] / peer["rps"]
        print()
        print(
            f"target req/s >= 1/3 of nginx: {share:.2f} of nginx -> "
            f"{'met' if share >= TARGET_RPS_SHARE else 'NOT met'}"
        )
        print(
            f"target CPU <= {TARGET_CPU_US:.0f} us/request: {serve['cpu_us']:.0f} us -> "
            f"{'met' if serve['cpu_us'] <= TARGET_CPU_US else 'NOT met'}"
        )


if __name__ == "__main__":
    sys.exit(main())
