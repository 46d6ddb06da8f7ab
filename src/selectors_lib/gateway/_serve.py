"""``selectors-lib serve``: a production gateway from one configuration file.

Loads the configuration (a broken file stops it before anything listens),
binds the sockets, and runs one worker (:mod:`._worker`) in this process on
uvloop when installed, or, with ``--workers N`` (N > 1), a supervisor
(:mod:`._supervisor`) that starts N worker processes on the same sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import sys
from collections.abc import Callable, Iterator

from selectors_lib._config import load_router
from selectors_lib._router import Router

from ._options import WORKER_ENV, ListenError, ServeOptions, require_serve

__all__ = ["ListenError", "ServeOptions", "bind", "run", "worker_entry"]

_log = logging.getLogger("selectors_lib.serve")


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (IPv4 or IPv6), inheritable by workers.

    Raises:
        ListenError: The address cannot be listened on.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        raise ListenError(f"cannot listen on {host}:{port}: {exc}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port}: {exc}") from exc
    sock.set_inheritable(True)
    return sock


def setup_logging(options: ServeOptions) -> None:
    """The process log, to stderr (access-log lines go to stdout on their own)."""
    level = getattr(logging, options.log_level.upper(), logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The access log already has a line per request; the HTTP client's own
    # per-request lines would double the log volume.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run_worker(
    options: ServeOptions, listen: socket.socket, admin: socket.socket | None, router: Router
) -> int:
    """Run one worker in this process until it is stopped.

    Returns:
        The exit code.
    """
    from ._worker import Worker

    worker = Worker(options, router)
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(worker.serve(listen, admin))


@contextlib.contextmanager
def _sockets(options: ServeOptions) -> Iterator[tuple[socket.socket, socket.socket | None]]:
    listen = bind(options.host, options.port)
    try:
        admin = bind(options.admin_host, options.admin_port) if options.admin_port >= 0 else None
    except OSError:
        listen.close()
        raise
    try:
        yield listen, admin
    finally:
        listen.close()
        if admin is not None:
            admin.close()


def run(options: ServeOptions) -> int:
    """Run ``selectors-lib serve`` with ``options`` until stopped.

    Raises:
        ConfigError: The configuration file is invalid (before anything listens).
        ImportError: httptools or prometheus_client is missing (names the extra).
        ListenError: An address cannot be listened on.

    Returns:
        The exit code.
    """
    require_serve()
    router = load_router(options.file)  # fail before listening on a broken file
    with _sockets(options) as (listen, admin):
        setup_logging(options)
        if options.workers > 1:
            from ._supervisor import supervise

            return supervise(options, listen, admin)
        return run_worker(options, listen, admin, router)


def worker_entry() -> int:
    """Entry point of a worker process started by the supervisor (settings in the environment)."""
    spec = json.loads(os.environ[WORKER_ENV])
    options = ServeOptions(**spec["options"])
    setup_logging(options)
    listen = socket.socket(fileno=spec["listen_fd"])
    admin = socket.socket(fileno=spec["admin_fd"]) if spec.get("admin_fd") is not None else None
    try:
        router = load_router(options.file)
    except Exception as exc:
        # Restarted while the file is broken: serve what the others serve.
        fallback = spec.get("fallback")
        if not fallback:
            raise
        _log.error("%s cannot be loaded; serving its last good copy: %s", options.file, exc)
        router = load_router(fallback)
    return run_worker(options, listen, admin, router)
