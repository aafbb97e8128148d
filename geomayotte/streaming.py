"""Large GeoJSON pages streamed from a server-side cursor.

A 10,000-feature page built in memory costs its size several times over (rows, joined
text, the response). Instead, for pages of ``GEOMAYOTTE_STREAM_ROWS`` features or more:

1. the provider opens a :class:`PageStream` (one read-only, repeatable-read transaction),
   reads what the envelope needs (next page? cursor? counts?) from the keys only, and
   declares the page's cursor, fetching the first batch so that a query error is still
   a 4xx before anything is sent;
2. pygeoapi builds the envelope around an empty feature list, where
   ``geomayotte.pygeoapi_fixes`` leaves :data:`MARK`;
3. the middleware sends the envelope up to the mark, the features batch by batch, then
   the rest (:func:`body`), without ``Content-Length`` (chunked), and closes the stream.

Memory stays at one batch (``GEOMAYOTTE_STREAM_BATCH``) whatever the page size. A
stream holds one pooled connection while it is sent: ``GEOMAYOTTE_POOL_SIZE`` must be
at least the threads per worker (both 4 by default).
"""
from __future__ import annotations

import logging

import psycopg2

from geomayotte import database, settings

LOGGER = logging.getLogger(__name__)

IDLE_SECONDS = 60
MARK = b'"features":[\x00]'   # a raw NUL cannot occur in JSON text: json.dumps escapes it


class PageStream:
    def __init__(self, url: str):
        self._cur = None
        self._first: list = []
        self.closed = False
        self._pool = database.pool(url)
        self.conn = self._pool.get()
        try:
            self.conn.autocommit = False
            with self.conn.cursor() as cur:   # this transaction only; the session is unchanged
                cur.execute('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY')
                # a client that stops reading blocks the sending thread between two fetches:
                # past this, PostgreSQL ends the session, so no snapshot or lock is held on
                cur.execute("SELECT set_config('idle_in_transaction_session_timeout', %s, true)",
                            (f'{IDLE_SECONDS * 1000}',))
        except BaseException:
            self.close(failed=True)
            raise

    def start(self, stmt, params) -> None:
        """Declare the page's cursor and read its first batch (errors surface here)."""
        self._cur = self.conn.cursor(name='geomayotte_page')
        self._cur.execute(stmt, params)
        self._batch = settings.stream_batch()
        self._first = self._cur.fetchmany(self._batch)

    def chunks(self):
        """The features' GeoJSON text, comma-separated, one batch per chunk."""
        from geomayotte.pygeoapi_fixes import escape_angles
        rows, sep = self._first, ''
        self._first = []
        while rows:
            yield (sep + escape_angles(','.join(r[1] for r in rows))).encode()
            sep = ','
            rows = self._cur.fetchmany(self._batch)

    def close(self, failed: bool = False) -> None:
        """End the read-only transaction (nothing to commit) and give the connection back."""
        if self.closed:
            return
        self.closed = True
        discard = False
        try:   # a read-only transaction: rolling back loses nothing, and keeps the session
            if self._cur is not None and not self.conn.closed:
                self._cur.close()
            if not self.conn.closed:
                self.conn.rollback()
        except psycopg2.Error:
            discard = True
        if failed:
            LOGGER.debug('page stream ended early')
        self._pool.put(self.conn, discard=discard or bool(self.conn.closed))


def body(result, page: PageStream):
    """The WSGI body: pygeoapi's envelope with the page's features streamed into it."""
    try:
        envelope = b''.join(result)
    finally:
        if hasattr(result, 'close'):
            result.close()
    before, mark, after = envelope.partition(MARK)
    if not mark:            # not the answer the stream was opened for (an error page)
        page.close()
        yield envelope
        return
    failed = True
    try:
        yield before + b'"features":['
        yield from page.chunks()
        yield b']' + after
        failed = False
    except psycopg2.Error as err:
        # the status line is sent: ending the connection is the only way left to say so
        LOGGER.error('streamed page aborted: %s', err)
        raise
    finally:
        page.close(failed)
