"""The jobs table: every job, its inputs and its result, in PostgreSQL.

A running job writes a heartbeat every few seconds; a job still "running" whose
heartbeat stopped (its worker died) is marked failed, with a message, by
``reap()`` — called by the worker at start and whenever jobs are read.
"""
from __future__ import annotations

import json
import re
import uuid

from psycopg2.extras import Json

from geomayotte import database

SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS jobs;
CREATE TABLE IF NOT EXISTS jobs.job (
    id          uuid PRIMARY KEY,
    process_id  text NOT NULL,
    status      text NOT NULL CHECK (status IN ('accepted', 'running', 'successful', 'failed', 'dismissed')),
    message     text,
    progress    integer NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    created     timestamptz NOT NULL DEFAULT now(),
    started     timestamptz,
    finished    timestamptz,
    updated     timestamptz NOT NULL DEFAULT now(),
    heartbeat   timestamptz,
    inputs      json,
    response    text NOT NULL DEFAULT 'raw',
    outputs     jsonb,
    mimetype    text,
    result      json,
    owner       text
);
ALTER TABLE jobs.job ADD COLUMN IF NOT EXISTS outputs jsonb;
DO $$ BEGIN   -- inputs and results are kept as sent (json, not jsonb: key order, -0.0, 1e308)
  IF (SELECT data_type FROM information_schema.columns WHERE table_schema = 'jobs'
        AND table_name = 'job' AND column_name = 'result') = 'jsonb' THEN
    ALTER TABLE jobs.job ALTER COLUMN result TYPE json USING result::json;
  END IF;
  IF (SELECT data_type FROM information_schema.columns WHERE table_schema = 'jobs'
        AND table_name = 'job' AND column_name = 'inputs') = 'jsonb' THEN
    ALTER TABLE jobs.job ALTER COLUMN inputs TYPE json USING inputs::json;
  END IF;
END $$;
CREATE INDEX IF NOT EXISTS job_created_idx ON jobs.job (created DESC, id);
CREATE INDEX IF NOT EXISTS job_owner_idx ON jobs.job (owner, created DESC);
CREATE INDEX IF NOT EXISTS job_running_idx ON jobs.job (heartbeat) WHERE status = 'running';
"""

STALE_SECONDS = 60
_FIELDS = ('id', 'process_id', 'status', 'message', 'progress', 'created', 'started',
           'finished', 'updated', 'mimetype')


def ensure_schema(url: str) -> None:
    with database.connection(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('geomayotte.jobs.schema'))")
        cur.execute(SCHEMA_SQL)


_UUID = re.compile(r'[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}')


def parse_id(job_id) -> str | None:
    """The canonical job id, or None (uuid.UUID alone would accept non-ASCII digits)."""
    if not isinstance(job_id, str) or not _UUID.fullmatch(job_id):
        return None
    return str(uuid.UUID(job_id))


def _row(r) -> dict:
    d = dict(zip(_FIELDS, r))
    if d['started'] is None:      # pygeoapi sorts job lists by 'started'
        d['started'] = d['created']
    for k in ('created', 'started', 'finished', 'updated'):
        if d[k] is not None:
            d[k] = d[k].isoformat()
    d['identifier'] = str(d.pop('id'))
    d['type'] = 'process'
    d['mimetype'] = d['mimetype'] or 'application/json'
    return d


ANYONE = object()   # no owner check (the worker, the reaper); web requests pass their partner


def _of(owner) -> tuple[str, list]:
    """The owner condition: a partner's own jobs only; anonymous callers (None) have none."""
    return ('', []) if owner is ANYONE else (' AND owner = %s', [owner])


def add(url: str, job_id: str, process_id: str, status: str, message: str, progress: int,
        inputs=None, response: str = 'raw', owner: str | None = None) -> None:
    with database.connection(url) as conn, conn.cursor() as cur:
        cur.execute('INSERT INTO jobs.job (id, process_id, status, message, progress, inputs, response, '
                    'owner) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)',
                    (job_id, process_id, status, message, progress,
                     Json(inputs) if inputs is not None else None, response, owner))


def update(url: str, job_id: str, **fields) -> bool:
    allowed = {'status', 'message', 'progress', 'started', 'finished', 'heartbeat', 'inputs',
               'outputs', 'response', 'mimetype', 'result'}
    bad = set(fields) - allowed
    if bad:
        raise ValueError(f'unknown job fields {bad}')
    from psycopg2 import sql
    sets = [sql.SQL('{} = %s').format(sql.Identifier(k)) for k in fields]
    values = [Json(v) if k in ('inputs', 'outputs', 'result') and v is not None else v
              for k, v in fields.items()]
    with database.connection(url) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL('UPDATE jobs.job SET {}, updated = now() WHERE id = %s').format(
            sql.SQL(', ').join(sets)), values + [job_id])
        return cur.rowcount == 1


def get(url: str, job_id: str, owner=ANYONE) -> dict | None:
    jid = parse_id(job_id)
    if jid is None:
        return None
    reap(url)
    cond, params = _of(owner)
    with database.connection(url) as conn, conn.cursor() as cur:
        cur.execute(f'SELECT {", ".join(_FIELDS)} FROM jobs.job WHERE id = %s{cond}', [jid] + params)
        r = cur.fetchone()
    return _row(r) if r else None


def inputs(url: str, job_id: str):
    with database.connection(url) as conn, conn.cursor() as cur:
        cur.execute('SELECT process_id, inputs, response, status, outputs FROM jobs.job WHERE id = %s',
                    (job_id,))
        return cur.fetchone()


def owner(url: str, job_id: str) -> str | None:
    with database.connection(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute('SELECT owner FROM jobs.job WHERE id = %s', (job_id,))
        row = cur.fetchone()
    return row[0] if row else None


def result(url: str, job_id: str, owner=ANYONE):
    jid = parse_id(job_id)
    if jid is None:
        return None
    cond, params = _of(owner)
    with database.connection(url) as conn, conn.cursor() as cur:
        cur.execute(f'SELECT mimetype, result::text FROM jobs.job WHERE id = %s{cond}', [jid] + params)
        return cur.fetchone()


def listing(url: str, status: str | None, limit: int, offset: int,
            owner=ANYONE) -> tuple[list[dict], int]:
    reap(url)
    limit, offset = max(0, min(limit, 1000)), max(0, min(offset, 2 ** 62))
    cond, params = ('WHERE true AND status = %s', [status]) if status else ('WHERE true', [])
    mine, who = _of(owner)
    cond, params = cond + mine, params + who
    with database.connection(url) as conn, conn.cursor() as cur:
        cur.execute(f'SELECT count(*) FROM jobs.job {cond}', params)
        (n,) = cur.fetchone()
        cur.execute(f'SELECT {", ".join(_FIELDS)} FROM jobs.job {cond} '
                    'ORDER BY created DESC, id LIMIT %s OFFSET %s', params + [limit, offset])
        rows = cur.fetchall()
    return [_row(r) for r in rows], n


def delete(url: str, job_id: str, owner=ANYONE) -> bool:
    jid = parse_id(job_id)
    if jid is None:
        return False
    cond, params = _of(owner)
    with database.connection(url) as conn, conn.cursor() as cur:
        cur.execute(f'DELETE FROM jobs.job WHERE id = %s{cond}', [jid] + params)
        return cur.rowcount == 1


def finish_if_running(url: str, job_id: str, status: str, message: str, **fields) -> bool:
    """End a job unless something already ended it (reaped, dismissed, finished)."""
    from psycopg2 import sql
    sets = [sql.SQL('{} = %s').format(sql.Identifier(k)) for k in fields]
    values = [Json(v) if k == 'result' and v is not None else v for k, v in fields.items()]
    with database.connection(url) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("UPDATE jobs.job SET status = %s, message = %s, finished = now(), "
                            "updated = now(), progress = 100{} WHERE id = %s AND status = 'running'").format(
            sql.SQL('').join(sql.SQL(', ') + x for x in sets)), [status, message] + values + [job_id])
        return cur.rowcount == 1


def reap(url: str, stale_seconds: int = STALE_SECONDS) -> int:
    """Jobs 'running' whose heartbeat stopped: their worker died. Mark them failed."""
    with database.connection(url) as conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE jobs.job SET status = 'failed', finished = now(), updated = now(), "
            "message = 'the worker running this job stopped or lost the database (no heartbeat since ' || "
            "to_char(coalesce(heartbeat, updated) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') || '); submit it again' "
            "WHERE status = 'running' AND coalesce(heartbeat, updated) < now() - make_interval(secs => %s)",
            (stale_seconds,))
        return cur.rowcount


def dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)
