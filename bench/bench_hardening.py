"""Benchmark: what the hardening of issue #12 costs, and what it buys, against peers.

Four measurements, each side by side with its peer in one run:

1. **Probe exchange** against a real ``redis-server`` (skipped if missing):
   ``INFO replication`` through the probe's own bounded RESP client (a fresh
   connection per check) versus redis-py, the client the probe used before,
   both with a pooled connection and with a fresh one per call.
2. **A 300 MB reply** (30 MB with ``--quick``) from a hostile server: RSS
   growth of a fresh process that reads it, ours versus redis-py.
3. **A dripping reply** (one byte every 0.3 s): time to a verdict with a
   0.5 s timeout, ours versus redis-py with ``socket_timeout=0.5`` (stopped
   after a few seconds).
4. **Duplicate-key detection** in the loaders: parsing a configuration of
   many rules with ``selectors_lib._source`` versus the plain parsers
   (``json.loads``, PyYAML's ``SafeLoader`` and ``CSafeLoader``).

Absolute times drift on shared machines; compare the ratios within one run.

Usage: python bench/bench_hardening.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from selectors_lib._source import load_json, load_yaml
from selectors_lib.health._resp import info_replication, parse_target

SRC = str(Path(__file__).resolve().parents[1] / "src")


def best(fn: Callable[[], object], repeat: int) -> float:
    """Mean seconds per call over ``repeat`` calls, best of three batches."""
    results = []
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        results.append((time.perf_counter() - start) / repeat)
    return min(results)


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:8.3f} ms"


# -- 1. the normal exchange --------------------------------------------------------------


def bench_exchange(repeat: int) -> None:
    print("\n1. INFO replication against a real redis-server, per call")
    binary = shutil.which("redis-server")
    try:
        import redis
    except ImportError:
        redis = None
    if binary is None:
        print("   skipped: redis-server is not installed")
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as directory:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", directory],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            target = parse_target(f"redis://127.0.0.1:{port}")
            deadline = time.monotonic() + 10
            while True:
                try:
                    info_replication(target, 1.0)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        print("   skipped: redis-server did not start")
                        return
                    time.sleep(0.05)
            ours = best(lambda: info_replication(target, 1.0), repeat)
            print(f"   selectors_lib RESP, fresh connection : {ms(ours)}   1.00x")
            if redis is None:
                print("   redis-py: skipped (not installed)")
                return
            pooled = redis.Redis(port=port, socket_timeout=1.0)
            peer = best(lambda: pooled.info("replication"), repeat)
            print(f"   redis-py, pooled connection          : {ms(peer)}   {ours / peer:.2f}x ours")

            def fresh() -> None:
                client = redis.Redis(port=port, socket_timeout=1.0)
                client.info("replication")
                client.close()

            peer_fresh = best(fresh, repeat)
            print(
                f"   redis-py, fresh connection           : {ms(peer_fresh)}   "
                f"{ours / peer_fresh:.2f}x ours"
            )
            pooled.close()
        finally:
            process.terminate()
            process.wait(10)


# -- hostile servers ---------------------------------------------------------------------


class Hostile:
    """Answers every connection's first request with ``answer(send)``."""

    def __init__(self, answer: Callable[[Callable[[bytes], bool]], None]) -> None:
        self.answer = answer
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        until = time.monotonic() + 10

        def send(data: bytes) -> bool:
            if self.stop.is_set() or time.monotonic() > until:
                return False
            try:
                conn.sendall(data)
            except OSError:
                return False
            return True

        with conn:
            try:
                conn.recv(4096)
                self.answer(send)
            except OSError:
                pass

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


def flood(size: int) -> Callable[[Callable[[bytes], bool]], None]:
    def answer(send: Callable[[bytes], bool]) -> None:
        if not send(b"$%d\r\n" % size):
            return
        chunk = b"a" * 65536
        for _ in range(size // len(chunk)):
            if not send(chunk):
                return
        send(b"a" * (size % len(chunk)) + b"\r\n")

    return answer


def drip(send: Callable[[bytes], bool]) -> None:
    for byte in b"$40\r\n# Replication\r\nrole:slave\r\nxxxxxxxxxxxxx\r\n":
        if not send(bytes([byte])):
            return
        time.sleep(0.3)


CLIENT = r"""
import resource, sys, time
port, which = int(sys.argv[1]), sys.argv[2]
if which == "ours":
    from selectors_lib.health._resp import info_replication, parse_target
else:
    import redis
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    if which == "ours":
        info_replication(parse_target(f"redis://127.0.0.1:{port}"), float(sys.argv[3]))
    else:
        redis.Redis(port=port, socket_timeout=float(sys.argv[3])).info("replication")
    outcome = "answered"
except Exception as exc:
    outcome = type(exc).__name__
took = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"{(after - before) / 1024:.1f} {took:.3f} {outcome}")
"""


def run_client(port: int, which: str, timeout: float, limit: float) -> tuple[str, str, str]:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    try:
        done = subprocess.run(
            [sys.executable, "-c", CLIENT, str(port), which, str(timeout)],
            capture_output=True,
            text=True,
            timeout=limit,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "-", f">{limit:g}", "stopped"
    fields = done.stdout.split()
    if len(fields) != 3:
        return "-", "-", (done.stderr.strip().splitlines() or ["failed"])[-1][:60]
    return fields[0], fields[1], fields[2]


def have_redis_py() -> bool:
    try:
        import redis  # noqa: F401
    except ImportError:
        return False
    return True


def bench_flood(size: int) -> None:
    print(f"\n2. a {size // 1_000_000} MB INFO reply: RSS growth of a fresh reading process")
    server = Hostile(flood(size))
    try:
        rss, took, outcome = run_client(server.port, "ours", 5.0, 60)
        print(f"   selectors_lib RESP : {rss:>8} MB  {took:>7} s  {outcome}")
        if not have_redis_py():
            print("   redis-py: skipped (not installed)")
            return
        peer_rss, peer_took, peer_outcome = run_client(server.port, "peer", 5.0, 60)
        ratio = ""
        if peer_rss != "-" and rss != "-":
            ratio = (
                f"  (ours {max(float(rss), 0.1) / max(float(peer_rss), 0.1):.3f}x of its growth)"
            )
        print(f"   redis-py           : {peer_rss:>8} MB  {peer_took:>7} s  {peer_outcome}{ratio}")
    finally:
        server.close()


def bench_drip(limit: float) -> None:
    print("\n3. a reply dripped one byte every 0.3 s, timeout 0.5 s: time to a verdict")
    server = Hostile(drip)
    try:
        _, took, outcome = run_client(server.port, "ours", 0.5, limit)
        print(f"   selectors_lib RESP : {took:>7} s  {outcome}")
        if not have_redis_py():
            print("   redis-py: skipped (not installed)")
            return
        _, peer_took, peer_outcome = run_client(server.port, "peer", 0.5, limit)
        print(
            f"   redis-py           : {peer_took:>7} s  {peer_outcome} (each read got a byte in time)"
        )
    finally:
        server.close()


# -- 4. loaders --------------------------------------------------------------------------


def document(rules: int) -> dict[str, object]:
    return {
        "version": 1,
        "endpoints": {f"e{i}": f"http://e{i}.internal:8080" for i in range(50)},
        "routes": [
            {
                "name": f"r{i}",
                "priority": i,
                "match": {
                    "application": {"equals": f"app{i}"},
                    "account": {"regex": f"acct{i}-.*"},
                },
                "target": {
                    "endpoints": [f"e{i % 50}", f"e{(i + 1) % 50}"],
                    "hash_on": ["execution_id"],
                },
            }
            for i in range(rules)
        ]
        + [{"name": "default", "default": True, "target": "e0"}],
    }


def bench_loaders(rules: int) -> None:
    print(f"\n4. parsing a configuration of {rules:,} rules (duplicate-key detection)")
    data = document(rules)
    text = json.dumps(data)
    ours = best(lambda: load_json(text), 3)
    peer = best(lambda: json.loads(text), 3)
    print(
        f"   JSON  selectors_lib load_json : {ms(ours)}   json.loads {ms(peer)}   {ours / peer:.2f}x"
    )
    try:
        import yaml
    except ImportError:
        print("   YAML: skipped (PyYAML not installed)")
        return
    ytext = yaml.safe_dump(data)
    ours = best(lambda: load_yaml(ytext), 1)
    safe = best(lambda: yaml.load(ytext, Loader=yaml.SafeLoader), 1)
    print(
        f"   YAML  selectors_lib load_yaml : {ms(ours)}   SafeLoader {ms(safe)}   {ours / safe:.2f}x"
    )
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is None:
        print("   YAML CSafeLoader: skipped (PyYAML without libyaml)")
        return
    c = best(lambda: yaml.load(ytext, Loader=fast), 1)
    print(f"                                              CSafeLoader {ms(c)}   {ours / c:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    args = parser.parse_args()
    print("bench_hardening: the cost and the benefit of issue #12's hardening")
    bench_exchange(50 if args.quick else 500)
    bench_flood(30_000_000 if args.quick else 300_000_000)
    bench_drip(4.0 if args.quick else 8.0)
    bench_loaders(300 if args.quick else 5_000)


if __name__ == "__main__":
    main()
