"""Hashing tables: built once per configuration, shared while recently used.

A table is a pure function of its pool's algorithm, hosts, weights and
options (:func:`table_key`), and immutable, so routers, snapshots and reloads
share them freely.
"""

from __future__ import annotations

import collections
import threading
from typing import TYPE_CHECKING

from . import hashing
from ._pool import Pool

if TYPE_CHECKING:
    from ._router import RouterConfig

__all__ = ["TableKey", "build_tables", "shared_table", "table_key"]

#: What a hashing table is a pure function of: (algorithm, ids, weights, options).
TableKey = tuple[str, tuple[str, ...], tuple[int, ...], tuple[tuple[str, int], ...]]


def table_key(pool: Pool) -> TableKey:
    """What ``pool``'s hashing table is built from (equal keys, equal tables)."""
    return (pool.algorithm, pool.ids, pool.weights, pool.options)


# Recently built tables, shared across loads and routers: reloading a small
# configuration whose pools did not change builds nothing. Tables are pure
# functions of their key and immutable. Kept small (a slots table may be 2 MiB);
# a load keeps every table it builds in ``RouterConfig.tables`` instead, so
# no table is built twice for one configuration whatever its size.
_TABLES: collections.OrderedDict[TableKey, hashing.HashTable] = collections.OrderedDict()
_TABLES_SIZE = 16
_TABLES_LOCK = threading.Lock()


def shared_table(pool: Pool) -> hashing.HashTable:
    """Return the hashing table of ``pool``, built once and shared while cached.

    Raises:
        ValueError: The algorithm rejects the pool's hosts, weights or options.
    """
    key = table_key(pool)
    with _TABLES_LOCK:
        table = _TABLES.get(key)
        if table is not None:
            _TABLES.move_to_end(key)  # least recently used goes first
    if table is None:
        table = pool.build_table()  # outside the lock: builds can take milliseconds
        with _TABLES_LOCK:
            _TABLES[key] = table
            _TABLES.move_to_end(key)
            while len(_TABLES) > _TABLES_SIZE:
                _TABLES.popitem(last=False)
    return table


def build_tables(config: RouterConfig) -> dict[TableKey, hashing.HashTable]:
    """Every multi-replica pool's table, from ``config.tables`` or built (shared)."""
    tables: dict[TableKey, hashing.HashTable] = {}
    prebuilt = config.tables
    for rule in (*config.rules, config.default):
        pool = rule.target
        key = table_key(pool)
        if len(pool.endpoints) > 1 and key not in tables:
            table = prebuilt.get(key)
            tables[key] = shared_table(pool) if table is None else table
    return tables
