"""Shared plumbing for the background workers (file reloader, health monitor)."""

from __future__ import annotations

import asyncio

__all__ = ["cancel_task"]


async def cancel_task(task: asyncio.Task[None] | None) -> None:
    """Cancel ``task`` and wait for it to finish.

    The task's own cancellation is swallowed; a cancellation of the caller
    while it waits is not (``asyncio.Task.cancelling`` tells the two apart).
    """
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
