"""Read-your-writes tokens against real Redis: stale reads, added latency, hot-path cost.

1. **Write -> read pairs** (10,000; 1,000 with ``--quick``) against a real
   master and two replicas, with the health monitor running: ``ro-2`` follows
   through a relay that delays the replication stream, ``ro-1`` is SIGSTOPped
   and continued, then restarted (empty, resyncing). Each pair writes a fresh
   value to the master, takes the token, and reads the key a few milliseconds
   later from the endpoint the router chose. Side by side in one run: the same
   read routed without a token (its peer: today's routing) and the trivial
   way to read your writes (every read to the primary).
2. **Added latency per read**: ``select()`` with a token versus without, and
   the whole read (route + GET), p50/p99.
3. **No-token hot path**: ``select()`` on a rule with a ``consistency:``
   policy versus the same rule without one (cache hits and misses).

Skips (with a message) when redis-server or redis-py is missing.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from selectors_lib import Criteria, Router, load_router
from selectors_lib import consistency as ct
from selectors_lib.health import HealthMonitor

RELAY_DELAY = 0.02  # seconds the slow replica's stream is held back
THINK = 0.03  # seconds between a write and its read (a client polling for its change)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DelayRelay:
    """Forwards a replication link, holding master->replica bytes back ``delay`` seconds."""

    def __init__(self, upstream: int, delay: float) -> None:
        self.upstream, self.delay = upstream, delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = int(self.listener.getsockname()[1])
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            up = socket.create_connection(("127.0.0.1", self.upstream))
            queue: collections.deque[tuple[float, bytes]] = collections.deque()
            ready = threading.Condition()
            threading.Thread(target=self._read, args=(up, queue, ready), daemon=True).start()
            threading.Thread(target=self._write, args=(client, queue, ready), daemon=True).start()
            threading.Thread(target=self._plain, args=(client, up), daemon=True).start()

    def _read(self, src: socket.socket, queue: Any, ready: threading.Condition) -> None:
        while not self.closed.is_set():
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            with ready:
                queue.append((time.monotonic() + self.delay, data))
                ready.notify()
            if not data:
                return

    def _write(self, dst: socket.socket, queue: Any, ready: threading.Condition) -> None:
        while not self.closed.is_set():
            with ready:
                while not queue and not self.closed.is_set():
                    ready.wait(0.05)
                if not queue:
                    return
                due, data = queue.popleft()
            time.sleep(max(0.0, due - time.monotonic()))
            if not data:
                dst.close()
                return
            try:
                dst.sendall(data)
            except OSError:
                return

    def _plain(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self.closed.set()
        self.listener.close()


class Node:
    def __init__(self, binary: str, root: Path, name: str, replica_of: int | None) -> None:
        self.binary, self.dir, self.replica_of = binary, root / name, replica_of
        self.dir.mkdir()
        self.port = free_port()
        self.start()

    def start(self, *extra: str) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.dir), "--repl-diskless-sync", "yes",
                "--repl-diskless-sync-delay", "0", "--protected-mode", "no", *extra]  # fmt: skip
        if self.replica_of is not None:
            args += ["--replicaof", "127.0.0.1", str(self.replica_of)]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        import redis

        self.client = redis.Redis(port=self.port, socket_timeout=1, decode_responses=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if self.client.ping():
                    return
            except redis.RedisError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server {self.dir.name} did not start")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.send_signal(signal.SIGCONT)
        self.process.kill()
        self.process.wait(10)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def make_router(master: Node, replicas: dict[str, Node], policy: bool = True) -> Router:
    target: dict[str, Any] = {"endpoints": list(replicas), "hash_on": ["authenticated_user"]}
    if policy:
        target["consistency"] = {"fallback": "primary", "max_age": 1.0}
    return load_router(
        {
            "endpoints": {"primary": master.url, **{n: r.url for n, r in replicas.items()}},
            "routes": [{"name": "reads", "default": True, "target": target}],
            "health": {
                "interval": 0.02,
                "timeout": 0.3,
                "probes": [
                    {
                        "type": "redis_lag",
                        "name": "store",
                        "master": master.url,
                        "replicas": list(replicas),
                        "max_lag_bytes": 1 << 40,
                    }
                ],
            },
        }
    )


class Pairs:
    def __init__(self, master: Node, replicas: dict[str, Node], router: Router) -> None:
        self.master, self.router = master, router
        self.nodes = {"primary": master, **replicas}
        self.stale = self.stale_plain = self.reads = self.to_primary = self.refused = 0
        self.route_token: list[float] = []
        self.route_plain: list[float] = []
        self.read_token: list[float] = []
        self.read_plain: list[float] = []
        self.down: set[str] = set()
        self.pending: collections.deque[tuple[float, str, str, str, str]] = collections.deque()
        self.n = 0

    def get(self, endpoint: str, key: str) -> str | None:
        import redis

        try:
            value: str | None = self.nodes[endpoint].client.get(key)
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
            self.refused += 1  # a client retries on the primary
            value = self.master.client.get(key)
        return value

    def check(self, key: str, value: str, token: str, user: str) -> None:
        tokened = Criteria(authenticated_user=user, attributes={ct.TOKEN_ATTRIBUTE: token})
        plain = Criteria(authenticated_user=user)
        t0 = time.perf_counter()
        endpoint = self.router.select(tokened)
        t1 = time.perf_counter()
        got = self.get(endpoint.id, key)
        t2 = time.perf_counter()
        self.route_token.append(t1 - t0)
        self.read_token.append(t2 - t0)
        self.reads += 1
        self.to_primary += endpoint.id == "primary"
        self.stale += got != value
        t0 = time.perf_counter()
        other = self.router.select(plain)
        t1 = time.perf_counter()
        self.route_plain.append(t1 - t0)
        if other.id not in self.down:
            got = self.get(other.id, key)
            self.read_plain.append(time.perf_counter() - t0)
            self.stale_plain += got != value

    def run(self, count: int, think: float = THINK) -> None:
        for _ in range(count):
            self.n += 1
            key, value = f"ryw:{self.n}", f"v{self.n}"
            self.master.client.set(key, value)
            token = str(ct.after_write(self.master.client))
            self.pending.append((time.monotonic(), key, value, token, f"user-{self.n % 100}"))
            now = time.monotonic()
            while self.pending and now - self.pending[0][0] >= think:
                self.check(*self.pending.popleft()[1:])
        while self.pending:
            time.sleep(think)
            now = time.monotonic()
            while self.pending and now - self.pending[0][0] >= think:
                self.check(*self.pending.popleft()[1:])


def wait_synced(master: Node, replica: Node) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            info = replica.client.info("replication")
            if (
                info.get("master_link_status") == "up"
                and info.get("slave_repl_offset")
                >= master.client.info("replication").get("master_repl_offset", 0) - 1000
            ):
                return
        except Exception:
            pass
        time.sleep(0.02)


def pairs_bench(total: int) -> None:
    print(f"\n1. {total} write -> read pairs, monitor running, one replica delayed "
          f"{RELAY_DELAY * 1000:g} ms, the other stopped/continued then restarted;\n"
          f"   each read {THINK * 1000:g} ms after its write")  # fmt: skip
    binary = shutil.which("redis-server")
    try:
        import redis  # noqa: F401
    except ImportError:
        print("   skipped: redis-py is not installed")
        return
    if binary is None:
        print("   skipped: redis-server is not installed")
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        master = Node(binary, root, "master", None)
        relay = DelayRelay(master.port, RELAY_DELAY)
        replicas = {
            "ro-1": Node(binary, root, "ro-1", master.port),
            "ro-2": Node(binary, root, "ro-2", relay.port),
        }
        try:
            for node in replicas.values():
                wait_synced(master, node)
                node.client.config_set("replica-serve-stale-data", "no")
            router = make_router(master, replicas)
            with HealthMonitor.from_router(router):
                time.sleep(0.3)
                pairs = Pairs(master, replicas, router)
                phase = max(1, total // 5)
                pairs.run(phase * 2)  # steady: ro-2 delayed
                replicas["ro-1"].process.send_signal(signal.SIGSTOP)
                pairs.down.add("ro-1")
                pairs.run(phase)
                replicas["ro-1"].process.send_signal(signal.SIGCONT)
                pairs.down.clear()
                wait_synced(master, replicas["ro-1"])
                pairs.run(phase // 2)
                pairs.down.add("ro-1")
                replicas["ro-1"].stop()
                replicas["ro-1"].start("--replica-serve-stale-data", "no")
                pairs.run(total - pairs.reads - len(pairs.pending))
        finally:
            for node in (*replicas.values(), master):
                node.stop()
            relay.close()
    us = 1e6
    print(f"   {'':34}{'with tokens':>14}{'without (peer)':>16}{'all to primary':>16}")
    print(f"   {'stale reads':34}{pairs.stale:>14}{pairs.stale_plain:>16}{0:>16}")
    share = 1 - pairs.to_primary / pairs.reads
    print(f"   {'reads served by replicas':34}{share:>14.1%}{'100%':>16}{'0%':>16}")
    print(f"   (target: 0 stale with tokens: {'met' if pairs.stale == 0 else 'NOT met'}; "
          f"{pairs.refused} reads refused by a resyncing/stopped replica went to the primary)")  # fmt: skip
    for label, a, b in (
        ("select() p50 / p99, us", pairs.route_token, pairs.route_plain),
        ("route + GET p50 / p99, us", pairs.read_token, pairs.read_plain),
    ):
        ta = f"{percentile(a, 0.5) * us:.1f} / {percentile(a, 0.99) * us:.1f}"
        tb = f"{percentile(b, 0.5) * us:.1f} / {percentile(b, 0.99) * us:.1f}"
        print(f"   {label:34}{ta:>14}{tb:>16}")
    added50 = (percentile(pairs.route_token, 0.5) - percentile(pairs.route_plain, 0.5)) * us
    added99 = (percentile(pairs.route_token, 0.99) - percentile(pairs.route_plain, 0.99)) * us
    print(f"   added routing latency per read: p50 {added50:+.1f} us, p99 {added99:+.1f} us")


def hot_path_bench(quick: bool) -> None:
    print("\n2. No-token select(): rule with a consistency policy vs the same rule without")
    endpoints = {"primary": "http://p.test", **{f"r{i}": f"http://r{i}.test" for i in range(8)}}

    def router(policy: bool) -> Router:
        target: dict[str, Any] = {"endpoints": [f"r{i}" for i in range(8)],
                                  "hash_on": ["authenticated_user"]}  # fmt: skip
        if policy:
            target["consistency"] = {"fallback": "primary"}
        return load_router({"endpoints": endpoints,
                            "routes": [{"name": "d", "default": True, "target": target}]})  # fmt: skip

    rounds = 5 if quick else 15
    n = 20_000 if quick else 100_000
    hits = [Criteria(authenticated_user=f"u{i % 1000}") for i in range(n)]
    misses = [Criteria(authenticated_user=f"m{i}") for i in range(n)]
    print(f"   {'':26}{'with policy':>14}{'without':>14}{'ratio':>8}")
    for label, batch in (("cache hits, ns/select", hits), ("cache misses, ns/select", misses)):
        best = {True: float("inf"), False: float("inf")}
        # Interleaved, best of many: a shared machine's noise only ever adds time.
        for _ in range(rounds):
            for policy in (True, False):
                r = router(policy)
                select = r.select
                for c in batch[:2000] if batch is hits else ():
                    select(c)
                t0 = time.perf_counter()
                for c in batch:
                    select(c)
                best[policy] = min(best[policy], (time.perf_counter() - t0) / len(batch))
        ratio = best[True] / best[False]
        print(f"   {label:26}{best[True] * 1e9:>14.0f}{best[False] * 1e9:>14.0f}{ratio:>7.2f}x")
    print("   (target: no slower; ratios within noise of 1.00x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    args = parser.parse_args()
    print(f"bench_consistency (python {sys.version.split()[0]})")
    pairs_bench(1000 if args.quick else 10_000)
    hot_path_bench(args.quick)


if __name__ == "__main__":
    main()
