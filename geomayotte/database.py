"""One connection pool per server process, shared by every request.

pygeoapi builds a provider object per request, so the pool lives here, at
module level, created lazily (after gunicorn forks its workers).

The pool is ours rather than ``psycopg2.pool``: that one closes every connection
returned beyond ``minconn`` (so under concurrency each request paid a new session:
connect, authentication, PostGIS loaded again in the backend) and raises instead of
waiting when all connections are out.
"""
from __future__ import annotations

import select
import threading
from contextlib import contextmanager
from typing import Iterator

import psycopg2
import psycopg2.errors
import psycopg2.extensions

from geomayotte import settings

WAIT_SECONDS = 30.0   # a request waits this long for a free connection, then 503
LOCK_TIMEOUT_MS = 15000


def statement_timeout_ms() -> int:
    return int(settings.statement_timeout() * 1000)


def too_long(err: BaseException) -> str | None:
    """The message for a query PostgreSQL stopped at the statement timeout, else None."""
    if isinstance(err, psycopg2.errors.QueryCanceled):
        return (f'the query ran longer than {settings.statement_timeout():g} s and was stopped '
                '(GEOMAYOTTE_STATEMENT_TIMEOUT): ask for less, e.g. a smaller area or page or '
                'a simpler filter geometry')
    return None


def alive(conn: psycopg2.extensions.connection) -> bool:
    """Whether an idle pooled session still stands, without a round trip.

    An idle session has nothing to say: if its socket is readable, the server closed it
    or is closing it (a restart sends "terminating connection" and hangs up). Without this
    every idle connection of every server process failed one request after a database
    restart (a newcomer's finding), and the job worker failed the job it picked.
    """
    if conn.closed:
        return False
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
    return not poller.poll(0)


class PoolTimeout(psycopg2.OperationalError):
    """No connection became free in time (seen by callers as the database unavailable)."""


class Pool:
    """At most ``size`` connections, opened on demand and kept open (last used first)."""

    def __init__(self, url: str, size: int):
        self.url = url
        self._idle: list[psycopg2.extensions.connection] = []
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()

    def get(self) -> psycopg2.extensions.connection:
        if not self._slots.acquire(timeout=WAIT_SECONDS):
            raise PoolTimeout(f'no database connection free after {WAIT_SECONDS:.0f} s')
        try:
            conn = self._take_idle()
            if conn is None:
                # a request never waits long behind a lock (a load's DDL, a write): 503 instead
                # and no query runs on for ever (a hostile filter, a client long gone)
                conn = psycopg2.connect(self.url, application_name='geomayotte',
                                        options=f'-c lock_timeout={LOCK_TIMEOUT_MS} '
                                                f'-c statement_timeout={statement_timeout_ms()}')
            return conn
        except BaseException:
            self._slots.release()
            raise

    def _take_idle(self) -> psycopg2.extensions.connection | None:
        """The last idle session still standing (dead ones, after a restart, are closed)."""
        while True:
            with self._lock:
                if not self._idle:
                    return None
                conn = self._idle.pop()
            if alive(conn):
                return conn
            conn.close()

    def put(self, conn: psycopg2.extensions.connection, discard: bool = False) -> None:
        try:
            if not discard and not conn.closed and \
                    conn.info.transaction_status != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
                conn.rollback()
            if discard or conn.closed:
                conn.close()
            else:
                with self._lock:
                    self._idle.append(conn)
        except psycopg2.Error:
            conn.close()
        finally:
            self._slots.release()


_lock = threading.Lock()
_pools: dict[str, Pool] = {}


REFERENCE_POOL_SIZE = 2   # short reads of reference data (validation), never behind a lock


def pool(url: str, purpose: str = 'requests') -> Pool:
    """This process' pool for ``url``: ``requests`` (sized by GEOMAYOTTE_POOL_SIZE), or
    ``reference``, a small one of its own for reads that must never queue behind
    connections held by writers waiting on row locks."""
    key = (url, purpose)
    found = _pools.get(key)
    if found is None:
        with _lock:
            found = _pools.get(key)
            if found is None:
                size = settings.pool_size() if purpose == 'requests' else REFERENCE_POOL_SIZE
                found = _pools[key] = Pool(url, size)
    return found


@contextmanager
def connection(url: str | None = None, autocommit: bool = False,
               purpose: str = 'requests') -> Iterator[psycopg2.extensions.connection]:
    """Borrow a connection. By default one transaction, committed (or rolled back) on
    return; ``autocommit=True`` for reads: each statement on its own, no BEGIN and
    COMMIT round trips around a single query."""
    pool_ = pool(url or settings.database_url(), purpose)
    conn = pool_.get()
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
        pool_.put(conn, discard=broken or bool(conn.closed))


def forget_after_fork() -> None:
    """In a forked child: drop the parent's pools without closing them (closing would end
    the parent's sessions, which share the sockets)."""
    with _lock:
        _pools.clear()
