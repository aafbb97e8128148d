"""The connection pool: sessions are kept and reused under concurrency, a full pool
makes callers wait (then fail as "unavailable"), broken sessions are dropped."""
from __future__ import annotations

import threading

import psycopg2
import pytest

from geomayotte import database


def _pids(pool, n):
    conns = [pool.get() for _ in range(n)]
    pids = []
    for conn in conns:
        with conn.cursor() as cur:
            cur.execute('SELECT pg_backend_pid()')
            pids.append(cur.fetchone()[0])
    for conn in conns:
        pool.put(conn)
    return set(pids)


def test_sessions_are_reused_under_concurrency(database_url):
    pool = database.Pool(database_url, 3)
    first = _pids(pool, 3)                  # three at once, as three busy threads would
    assert len(first) == 3
    for _ in range(5):
        assert _pids(pool, 3) == first      # psycopg2's pool closed all but `minconn` of them


def test_full_pool_waits_then_fails_as_unavailable(database_url, monkeypatch):
    monkeypatch.setattr(database, 'WAIT_SECONDS', 0.2)
    pool = database.Pool(database_url, 1)
    held = pool.get()
    with pytest.raises(psycopg2.OperationalError, match='no database connection free'):
        pool.get()
    released = threading.Timer(0.05, pool.put, args=(held,))
    released.start()
    conn = pool.get()                       # waits for the one given back
    assert conn is held
    pool.put(conn)


def test_broken_and_dirty_sessions(database_url):
    pool = database.Pool(database_url, 1)
    conn = pool.get()
    with conn.cursor() as cur:
        cur.execute('SELECT 1')              # leaves a transaction open
    pool.put(conn)
    again = pool.get()
    assert again is conn and again.info.transaction_status == \
        psycopg2.extensions.TRANSACTION_STATUS_IDLE   # rolled back when given back
    pool.put(again, discard=True)
    assert again.closed
    fresh = pool.get()
    assert fresh is not again and not fresh.closed
    pool.put(fresh)


def test_connection_context_manager(database_url):
    with database.connection(database_url) as conn, conn.cursor() as cur:
        cur.execute('SELECT pg_backend_pid()')
        pid = cur.fetchone()[0]
    with pytest.raises(psycopg2.errors.DivisionByZero):
        with database.connection(database_url) as conn, conn.cursor() as cur:
            cur.execute('SELECT 1/0')
    with database.connection(database_url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute('SELECT pg_backend_pid()')
        assert cur.fetchone()[0] == pid      # the same session, still usable after the error


def test_a_query_past_the_statement_timeout_is_stopped_and_said(database_url, monkeypatch):
    """Found by a breaking session: a hostile filter ran for minutes, on after its client left.
    Every pooled session now has a statement timeout; the answer says what happened."""
    from geomayotte.providers.features import PostGISFeatureProvider
    from geomayotte.errors import UnavailableError
    monkeypatch.setenv('GEOMAYOTTE_STATEMENT_TIMEOUT', '0.3')
    url = database_url + ('&' if '?' in database_url else '?') + 'application_name=timeout-test'
    import time
    started = time.monotonic()
    with database.connection(url, autocommit=True) as conn, conn.cursor() as cur:
        with pytest.raises(UnavailableError) as err:
            PostGISFeatureProvider._execute(cur, 'SELECT pg_sleep(5)', [])
        cur.execute('SELECT 1')              # the session is still usable
        assert cur.fetchone() == (1,)
    assert time.monotonic() - started < 3
    assert 'GEOMAYOTTE_STATEMENT_TIMEOUT' in str(err.value) and '0.3 s' in str(err.value)


def test_a_pooled_session_the_server_ended_is_not_handed_out(database_url, db):
    pool = database.Pool(database_url, 2)
    conn = pool.get()
    with conn.cursor() as cur:
        cur.execute('SELECT pg_backend_pid()')
        pid = cur.fetchone()[0]
    pool.put(conn)
    with db.cursor() as cur:
        cur.execute('SELECT pg_terminate_backend(%s, 5000)', (pid,))   # waits for its end
    assert not database.alive(conn)
    fresh = pool.get()
    with fresh.cursor() as cur:
        cur.execute('SELECT pg_backend_pid()')
        assert cur.fetchone()[0] != pid
    assert conn.closed and fresh is not conn
    pool.put(fresh)
    again = pool.get()
    assert again is fresh and database.alive(again)    # a live idle session is reused
    pool.put(again)
