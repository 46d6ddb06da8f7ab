"""Real Redis for the health tests: a master and two replicas on loopback ports.

The fixtures using these live in ``conftest.py``.

Each replica follows the master through a small TCP proxy (:class:`LagProxy`)
the test can stall: stalling holds the replication stream back while the
replica keeps answering, which is how a replica really falls behind on a slow
link. ``redis-server`` missing skips these tests locally and fails them on CI.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

redis = pytest.importorskip("redis")

WAIT = 30.0  # generous bound for anything that should take well under a second


def wait_for(what: str, condition: Callable[[], object], timeout: float = WAIT) -> None:
    """Poll ``condition`` until it is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except redis.RedisError:
            pass  # not ready yet
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for: {what}")
        time.sleep(0.02)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LagProxy:
    """A TCP relay; :meth:`stall` holds back bytes flowing from upstream to the client."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        # A blocked accept() does not notice close() from another thread: poll instead.
        self._listener.settimeout(0.05)
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    def stall(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def close(self) -> None:
        with self._lock:
            self._closed.set()
            sockets, self._sockets = self._sockets, []
        self._flowing.set()
        self._accepter.join(5)
        self._listener.close()
        for sock in sockets:
            sock.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue  # look at the closed flag again
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=2)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._closed.is_set():  # accepted while closing: nobody else will close them
                    client.close()
                    upstream.close()
                    return
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, gated: bool) -> None:
        try:
            while not self._closed.is_set():
                if gated and not self._flowing.wait(0.05):
                    continue
                data = src.recv(16384)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class RedisNode:
    """One redis-server process in its own directory."""

    def __init__(self, binary: str, directory: Path, replica_of: int | None = None) -> None:
        self.directory = directory
        directory.mkdir()
        # free_port() only suggests a port: until redis binds it, another socket
        # (a relay's listener, an outgoing connection) may take it, and redis
        # then exits at once. Start again on another port when that happens.
        for _attempt in range(5):
            self.port = free_port()
            self.process = self._start(binary, replica_of)
            if self._serving():
                break
            self.process.wait(10)
            if self.process.stderr is not None:
                self.process.stderr.close()
        else:
            log = (directory / "redis.log").read_text(errors="replace")[-2000:]
            pytest.fail(f"redis-server in {directory} would not start:\n{log}")
        self.client = redis.Redis(port=self.port, socket_timeout=2, decode_responses=True)

    def _start(self, binary: str, replica_of: int | None) -> subprocess.Popen[bytes]:
        args = [
            binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
            "--logfile", str(self.directory / "redis.log"),
            "--repl-diskless-sync", "yes",
            "--repl-diskless-sync-delay", "0",
            "--protected-mode", "no",
        ]  # fmt: skip
        if replica_of is not None:
            args += ["--replicaof", "127.0.0.1", str(replica_of)]
        return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def _serving(self) -> bool:
        """Wait until this process answers PING on its port; False if it exited first."""
        probe = redis.Redis(port=self.port, socket_timeout=2)
        deadline = time.monotonic() + WAIT
        try:
            while self.process.poll() is None and time.monotonic() < deadline:
                try:
                    if probe.ping():
                        return True
                except redis.RedisError:
                    pass
                time.sleep(0.02)
            return False
        finally:
            probe.close()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def info(self) -> dict[str, object]:
        return dict(self.client.info("replication"))

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a stopped process cannot exit
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.process.stderr is not None:
            self.process.stderr.close()


class RedisSet:
    """A master, two replicas (``ro-1``, ``ro-2``), each behind its own :class:`LagProxy`."""

    def __init__(self, binary: str, root: Path) -> None:
        self.nodes: list[RedisNode] = []
        self.proxies: list[LagProxy] = []
        self.master = self._node(binary, root / "master", None)
        self.replicas: dict[str, RedisNode] = {}
        for name in ("ro-1", "ro-2"):
            proxy = LagProxy(self.master.port)
            self.proxies.append(proxy)
            self.replicas[name] = self._node(binary, root / name, proxy.port)
        self.proxy = dict(zip(self.replicas, self.proxies, strict=True))

    def _node(self, binary: str, directory: Path, replica_of: int | None) -> RedisNode:
        node = RedisNode(binary, directory, replica_of)
        self.nodes.append(node)
        return node

    def in_sync(self) -> bool:
        master = self.master.info()
        return all(
            (info := node.info()).get("master_link_status") == "up"
            and info.get("slave_repl_offset") == master["master_repl_offset"]
            for node in self.replicas.values()
        )

    def write(self, total_bytes: int, chunk: int = 32 * 1024) -> None:
        """Write ``total_bytes`` of values to the master."""
        value = "x" * chunk
        pipe = self.master.client.pipeline(transaction=False)
        for i in range(max(1, total_bytes // chunk)):
            pipe.set(f"filler:{i}", value)
        pipe.execute()

    def close(self) -> None:
        # Replicas first, so they do not reconnect through a closing proxy.
        for node in self.replicas.values():
            node.stop()
        for proxy in self.proxies:
            proxy.close()
        self.master.stop()
