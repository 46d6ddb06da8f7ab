"""Building large immutable structures without the cyclic GC rescanning them.

Loading 10,000 rules allocates a few million objects, nearly all of which live
as long as the configuration. CPython's cyclic collector runs every few
hundred allocations and, as the heap grows, repeatedly walks everything built
so far: measured, that was over half of ``Router()`` at 10k rules. None of
these objects form garbage cycles while they are built, so the collector is
paused for the duration and resumed after.

Resuming alone is not enough: every object built while paused still sits in
the youngest generation, so the first allocation after the build runs a young
collection over all of them (about a fifth of a 100k-rule load, and again on
every reload), and the survivors are walked once more on their way through
the middle generation. They are long-lived by construction, so the build ends
by moving everything straight to the oldest generation instead
(``gc.freeze()`` then ``gc.unfreeze()``: two list splices, no traversal). A
full collection still visits them, as it visits every object. What else was
young at that moment (garbage cycles the application made just before) is
promoted with them and waits for the next full collection instead of the next
young one. Nothing is promoted while the permanent generation holds anything
(a process that used ``gc.freeze()`` itself, or CPython 3.12, which starts
with a few hundred of its own tuples there): ``gc.unfreeze()`` would release
those too.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]

_lock = threading.Lock()
_depth = 0
_was_enabled = False


def _promote_all() -> None:
    # Only when nothing is frozen: unfreeze() would otherwise hand back to the
    # collector the objects the application (or the runtime) froze on purpose.
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector inside the block (reentrant, thread-safe).

    The collector is resumed when the last concurrent block ends, and only if
    it was enabled when the first began: a caller that disabled it keeps it so
    (and keeps its generations as they are). On resuming, everything built
    meanwhile goes to the oldest generation (see the module docs).
    """
    global _depth, _was_enabled  # noqa: PLW0603 - one process-wide switch
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                _promote_all()
                gc.enable()
