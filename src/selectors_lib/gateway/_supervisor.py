"""The supervisor of ``selectors-lib serve --workers N``.

The supervisor binds the sockets once and starts N worker processes that
inherit them (the kernel spreads connections over the workers). It serves no
request itself. It

* forwards ``SIGHUP`` to every worker: each re-reads the file; all of them
  read the same file, so all serve the same configuration and route every
  request identically (routing depends on the configuration only, never on
  the process);
* forwards ``SIGTERM``/``SIGINT``: every worker drains; a worker still running
  ``drain_delay + drain_timeout + 5`` seconds later is killed;
* restarts a worker that dies, at most :data:`MAX_RESTARTS` times a minute.
  It keeps a copy of the last configuration that loaded: a worker restarted
  while the file is broken serves that copy, as its siblings still do;
* gives the workers one ``PROMETHEUS_MULTIPROC_DIR``, so a scrape of the admin
  port, whichever worker answers it, sums the metrics of all of them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

import attrs

from selectors_lib._config import load_config

from ._options import WORKER_ENV, ServeOptions

__all__ = ["MAX_RESTARTS", "supervise"]

_log = logging.getLogger("selectors_lib.serve")

#: Restarts of dead workers allowed within a minute before the supervisor gives up.
MAX_RESTARTS = 10
_KILL_GRACE = 5.0


def _spawn(env: dict[str, str], fds: tuple[int, ...]) -> subprocess.Popen[bytes]:
    code = "from selectors_lib.gateway._serve import worker_entry; raise SystemExit(worker_entry())"
    # A session of its own: Ctrl-C reaches the supervisor only, which forwards
    # it once (a second SIGINT would skip the drain).
    return subprocess.Popen(
        [sys.executable, "-c", code], env=env, pass_fds=fds, start_new_session=True
    )


def supervise(options: ServeOptions, listen: socket.socket, admin: socket.socket | None) -> int:
    """Run ``options.workers`` workers on the given sockets until stopped.

    Returns:
        0 after a clean stop, 1 when workers kept dying.
    """
    state_dir = Path(tempfile.mkdtemp(prefix="selectors-serve-"))
    metrics_dir = str(state_dir / "metrics")
    os.mkdir(metrics_dir)
    last_good = _LastGood(Path(options.file), state_dir)
    spec = {
        "options": attrs.asdict(options),
        "listen_fd": listen.fileno(),
        "admin_fd": admin.fileno() if admin is not None else None,
        "fallback": str(last_good.copy),
    }
    env = dict(os.environ)
    env[WORKER_ENV] = json.dumps(spec)
    env["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    fds = tuple(s.fileno() for s in (listen, admin) if s is not None)
    pending: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        pending.append(signum)

    previous = {
        s: signal.signal(s, on_signal) for s in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)
    }
    workers = [_spawn(env, fds) for _ in range(options.workers)]
    _log.info("supervisor: %d workers %s", len(workers), ", ".join(str(w.pid) for w in workers))
    restarts: list[float] = []
    stopping_since: float | None = None
    code = 0
    check_every = max(options.reload_interval, 1.0)
    next_check = time.monotonic() + check_every
    try:
        while True:
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + check_every
                last_good.refresh()
            while pending:
                signum = pending.pop(0)
                if signum == signal.SIGHUP:
                    _log.info("supervisor: SIGHUP: every worker reloads")
                    last_good.refresh()
                elif stopping_since is None:
                    stopping_since = time.monotonic()
                    _log.info("supervisor: stopping; workers drain")
                for worker in workers:
                    if worker.poll() is None:
                        worker.send_signal(signum)
            alive = [w for w in workers if w.poll() is None]
            if stopping_since is not None:
                if not alive:
                    break
                allowed = options.drain_delay + options.drain_timeout + _KILL_GRACE
                if time.monotonic() - stopping_since > allowed:
                    for worker in alive:
                        _log.error("supervisor: worker %d did not stop: killed", worker.pid)
                        worker.kill()
                    for worker in alive:
                        worker.wait()
                    break
            else:
                for index, worker in enumerate(workers):
                    if worker.poll() is None:
                        continue
                    _log.error("worker %d exited with %s", worker.pid, worker.returncode)
                    _forget(worker.pid, metrics_dir)
                    now = time.monotonic()
                    restarts[:] = [t for t in restarts if now - t < 60] + [now]
                    if len(restarts) > MAX_RESTARTS:
                        _log.error("supervisor: workers keep dying; stopping")
                        pending.append(signal.SIGTERM)
                        code = 1
                        break
                    workers[index] = _spawn(env, fds)
                    _log.info("supervisor: started worker %d", workers[index].pid)
            time.sleep(0.1)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        shutil.rmtree(state_dir, ignore_errors=True)
    _log.info("supervisor: stopped")
    return code


class _LastGood:
    """A copy of the last state of the configuration file that loaded.

    Args:
        path: The configuration file (valid now: the supervisor checked it).
        directory: Where the copy is kept (same suffix, so the same format).
    """

    def __init__(self, path: Path, directory: Path) -> None:
        self.path = path
        self.copy = directory / ("last-good" + path.suffix)
        self._candidate = directory / ("candidate" + path.suffix)
        self._digest = ""
        self.refresh()

    def refresh(self) -> None:
        """Keep the file's current content if it changed and loads."""
        try:
            data = self.path.read_bytes()
        except OSError:
            return
        digest = hashlib.sha256(data).hexdigest()
        if digest == self._digest:
            return
        self._digest = digest  # a broken state is checked once
        self._candidate.write_bytes(data)
        try:
            load_config(self._candidate)
        except Exception:
            return  # the workers log why; the last good copy stays
        os.replace(self._candidate, self.copy)


def _forget(pid: int, directory: str) -> None:
    # Only "live" gauges need it, but a dead worker's files must not linger.
    try:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
    except Exception:
        _log.debug("could not forget the metrics of worker %d", pid, exc_info=True)
