"""One connection pool per server process, shared by every request.

pygeoapi builds a provider object per request, so the pool lives here, at
module level, created lazily (after gunicorn forks its workers).
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

import psycopg2
import psycopg2.extensions
import psycopg2.pool

from geomayotte import settings

_lock = threading.Lock()
_pools: dict[str, psycopg2.pool.ThreadedConnectionPool] = {}


def _pool(url: str) -> psycopg2.pool.ThreadedConnectionPool:
    pool = _pools.get(url)
    if pool is None:
        with _lock:
            pool = _pools.get(url)
            if pool is None:
                pool = psycopg2.pool.ThreadedConnectionPool(
                    1, settings.pool_size(), dsn=url,
                    application_name='geomayotte')
                _pools[url] = pool
    return pool


@contextmanager
def connection(url: str | None = None, autocommit: bool = False) -> Iterator[psycopg2.extensions.connection]:
    """Borrow a connection. By default one transaction, committed (or rolled back) on
    return; ``autocommit=True`` for reads: each statement on its own, no BEGIN and
    COMMIT round trips around a single query."""
    url = url or settings.database_url()
    pool = _pool(url)
    conn = pool.getconn()
    broken = False
    try:
        if conn.autocommit != autocommit:
            conn.autocommit = autocommit
        yield conn
        if not autocommit:
            conn.commit()
    except psycopg2.OperationalError:
        broken = True
        raise
    except BaseException:
        if not conn.closed and not autocommit:
            conn.rollback()
        raise
    finally:
        pool.putconn(conn, close=broken or bool(conn.closed))


def forget_after_fork() -> None:
    """In a forked child: drop the parent's pools without closing them (closing would end
    the parent's sessions, which share the sockets)."""
    with _lock:
        _pools.clear()
