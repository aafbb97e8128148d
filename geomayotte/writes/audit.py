"""The history of every write: who changed which feature, when, before and after."""
from __future__ import annotations

from psycopg2.extras import Json

from geomayotte import database

SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS audit;
CREATE TABLE IF NOT EXISTS audit.change (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    partner     text NOT NULL,
    collection  text NOT NULL,
    feature_id  text NOT NULL,
    operation   text NOT NULL CHECK (operation IN ('create', 'replace', 'update', 'delete')),
    before      jsonb,          -- the feature as stored before (GeoJSON, storage CRS)
    after       jsonb,          -- ... and after
    warnings    jsonb           -- the validation warnings accepted with the write
);
CREATE INDEX IF NOT EXISTS change_feature_idx ON audit.change (collection, feature_id, id);
CREATE INDEX IF NOT EXISTS change_at_idx ON audit.change (collection, at);
"""

_ready: set[str] = set()


def ensure_schema(url: str) -> None:
    if url in _ready:
        return
    with database.connection(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('geomayotte.audit.schema'))")
        cur.execute(SCHEMA_SQL)
    _ready.add(url)


def record(cur, partner: str, collection: str, feature_id: str, operation: str,
           before: str | None, after: str | None, warnings: list | None) -> None:
    cur.execute('INSERT INTO audit.change (partner, collection, feature_id, operation, before, after, '
                'warnings) VALUES (%s, %s, %s, %s, %s::jsonb, %s::jsonb, %s)',
                (partner, collection, feature_id, operation, before, after,
                 Json(warnings) if warnings else None))


def history(url: str, collection: str, feature_id: str) -> list[dict]:
    ensure_schema(url)
    with database.connection(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute('SELECT id, at, partner, operation, before, after, warnings FROM audit.change '
                    'WHERE collection = %s AND feature_id = %s ORDER BY id', (collection, feature_id))
        return [{'change': r[0], 'at': r[1].isoformat(), 'partner': r[2], 'operation': r[3],
                 'before': r[4], 'after': r[5], 'warnings': r[6] or []} for r in cur.fetchall()]


def deleted_keys(cur, collection: str) -> list[str]:
    """Features deleted through the API (and not created again since): the loader must not
    bring them back from the source file."""
    cur.execute("SELECT to_regclass('audit.change') IS NOT NULL")
    if not cur.fetchone()[0]:
        return []
    cur.execute("""SELECT feature_id FROM (
                     SELECT DISTINCT ON (feature_id) feature_id, operation FROM audit.change
                     WHERE collection = %s ORDER BY feature_id, id DESC) last
                   WHERE operation = 'delete'""", (collection,))
    return [r[0] for r in cur.fetchall()]
