"""The record table (``catalogue.record``) and the triggers that keep it honest.

One row per record: ours (``source = 'local'``) and harvested ones (``source`` = the
partner's name, ``source_id`` = its identifier there). Served properties are plain columns
(so CQL2 and sorting read them); ``search`` is a French tsvector of the unaccented text,
``fingerprint`` the hash of the content (a write that changes nothing leaves ``updated``).

Each data table a local record describes carries statement triggers: a statement that
really inserts, updates or deletes rows (or a TRUNCATE) marks the record ``stale`` and
moves its ``updated`` to now; the records provider recomputes stale records before it
answers (``geomayotte.catalogue.sync.refresh_stale``).
"""
from __future__ import annotations

import hashlib
import json

from psycopg2 import sql

SCHEMA = 'catalogue'
TABLE = 'record'
LOCAL = 'local'
TYPES = ('dataset', 'featureType', 'service')
_LOCK = 4_713_976        # pg_advisory_xact_lock key: one catalogue writer at a time

_DDL = """
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE SCHEMA IF NOT EXISTS catalogue;
CREATE TABLE IF NOT EXISTS catalogue.record (
    id              text PRIMARY KEY,
    source          text NOT NULL,
    source_id       text NOT NULL,
    type            text NOT NULL,
    title           text NOT NULL,
    description     text NOT NULL DEFAULT '',
    keywords        text[] NOT NULL DEFAULT '{}',
    themes          jsonb NOT NULL DEFAULT '[]',
    contacts        jsonb NOT NULL DEFAULT '[]',
    license         text,
    rights          text,
    formats         jsonb NOT NULL DEFAULT '[]',
    links           jsonb NOT NULL DEFAULT '[]',
    external_ids    jsonb NOT NULL DEFAULT '[]',
    language        text NOT NULL DEFAULT 'fr',
    diffusion       text NOT NULL DEFAULT 'open' CHECK (diffusion IN ('open', 'partners', 'restricted')),
    lineage         text,
    update_frequency text,
    data_table      text,
    crs             text[] NOT NULL DEFAULT '{}',
    feature_count   bigint,
    time_start      timestamptz,
    time_end        timestamptz,
    geom            geometry(Geometry, 4326),
    created         timestamptz NOT NULL DEFAULT now(),
    updated         timestamptz NOT NULL DEFAULT now(),
    fingerprint     text NOT NULL,
    stale           boolean NOT NULL DEFAULT false,
    sort_title      text NOT NULL,
    search          tsvector NOT NULL,
    UNIQUE (source, source_id)
);
CREATE INDEX IF NOT EXISTS record_search_idx ON catalogue.record USING gin (search);
CREATE INDEX IF NOT EXISTS record_geom_idx ON catalogue.record USING gist (geom);
CREATE INDEX IF NOT EXISTS record_stale_idx ON catalogue.record (id) WHERE stale;
CREATE OR REPLACE FUNCTION catalogue.mark_stale() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- each branch reads only the transition table its event has
    IF TG_OP = 'DELETE' THEN
        IF NOT EXISTS (SELECT 1 FROM old_rows) THEN RETURN NULL; END IF;
    ELSIF TG_OP IN ('INSERT', 'UPDATE') THEN
        IF NOT EXISTS (SELECT 1 FROM new_rows) THEN RETURN NULL; END IF;
    END IF;
    UPDATE catalogue.record SET stale = true, updated = now()
     WHERE source = 'local' AND data_table = TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME;
    RETURN NULL;
END $$;
"""

# (trigger name suffix, event, transition table clause)
_TRIGGERS = (('ins', 'INSERT', 'REFERENCING NEW TABLE AS new_rows'),
             ('upd', 'UPDATE', 'REFERENCING NEW TABLE AS new_rows'),
             ('del', 'DELETE', 'REFERENCING OLD TABLE AS old_rows'),
             ('trunc', 'TRUNCATE', ''))

COLUMNS = ('id', 'source', 'source_id', 'type', 'title', 'description', 'keywords', 'themes',
           'contacts', 'license', 'rights', 'formats', 'links', 'external_ids', 'language',
           'diffusion', 'lineage', 'update_frequency', 'data_table', 'crs', 'feature_count',
           'time_start', 'time_end')
_JSON = {'themes', 'contacts', 'formats', 'links', 'external_ids'}
_CASTS = {**{c: 'jsonb' for c in _JSON}, 'keywords': 'text[]', 'crs': 'text[]',
          'feature_count': 'bigint', 'time_start': 'timestamptz', 'time_end': 'timestamptz'}


def ensure(cur) -> None:
    """Create what is missing, serialised with every other catalogue writer (the caller's
    transaction holds the lock until it ends). The DDL runs only when the table is missing:
    even ``CREATE INDEX IF NOT EXISTS`` takes a SHARE lock on the table, which would block
    every refresh of a record until the caller's transaction ends."""
    cur.execute('SELECT pg_advisory_xact_lock(%s)', (_LOCK,))
    cur.execute("SELECT to_regclass('catalogue.record') IS NOT NULL")
    if not cur.fetchone()[0]:
        cur.execute(_DDL)


def install_triggers(cur, schema: str, table: str) -> None:
    """The stale-marking triggers on one data table (only those missing: no lock taken on
    a table that has them)."""
    cur.execute("""SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                    JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = %s AND c.relname = %s AND t.tgname LIKE 'catalogue_stale_%%'""",
                (schema, table))
    have = {r[0] for r in cur.fetchall()}
    for suffix, event, transition in _TRIGGERS:
        name = f'catalogue_stale_{suffix}'
        if name in have:
            continue
        cur.execute(sql.SQL('CREATE TRIGGER {} AFTER {} ON {} {} FOR EACH STATEMENT '
                            'EXECUTE FUNCTION catalogue.mark_stale()').format(
            sql.Identifier(name), sql.SQL(event), sql.Identifier(schema, table), sql.SQL(transition)))


def fingerprint(row: dict, geometry: str | None, salt: str = '') -> str:
    content = {k: row.get(k) for k in COLUMNS}
    content['geometry'], content['salt'] = geometry, salt
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


_DEFAULTS = {'description': '', 'language': 'fr', 'diffusion': 'open'}


def _value(name: str, value):
    if value is None and name in _DEFAULTS:
        return _DEFAULTS[name]
    if name in _JSON:
        return json.dumps(value if value is not None else [], ensure_ascii=False)
    if name in ('keywords', 'crs'):
        return list(value or [])
    return value


def _search_text(row: dict) -> tuple[str, str, str]:
    themes = ' '.join(c.get('title', '') for t in row.get('themes') or []
                      for c in t.get('concepts', []) if isinstance(c, dict))
    rest = ' '.join(filter(None, [row.get('description') or '', themes, row.get('lineage') or '',
                                  row['id'], row.get('type') or '']))
    return row['title'], ' '.join(row.get('keywords') or []), rest


def write(cur, row: dict, geometry: str | None, dates: dict | None = None, salt: str = '') -> str:
    """Insert or update one record (``geometry``: GeoJSON in CRS84, or None). Returns
    'added', 'updated' or 'unchanged'. ``dates``: created/updated to keep (harvested
    records carry their partner's); ``salt``: more content to compare (a file's date)."""
    fp = fingerprint(row, geometry, salt)
    cur.execute('SELECT fingerprint, stale FROM catalogue.record WHERE id = %s FOR UPDATE',
                (row['id'],))
    old = cur.fetchone()
    if old is not None and old[0] == fp:
        if old[1]:
            cur.execute('UPDATE catalogue.record SET stale = false WHERE id = %s', (row['id'],))
        return 'unchanged'
    dates = dates or {}
    title, keywords, rest = _search_text(row)
    values = [_value(c, row.get(c)) for c in COLUMNS]
    cols = sql.SQL(', ').join(sql.Identifier(c) for c in COLUMNS)
    marks = sql.SQL(', ').join(sql.SQL('%s::{}').format(sql.SQL(_CASTS[c])) if c in _CASTS
                               else sql.SQL('%s::text') for c in COLUMNS)
    extra = sql.SQL("""ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326), %s, false, lower(unaccent(%s)),
        setweight(to_tsvector('french', unaccent(%s)), 'A') ||
        setweight(to_tsvector('french', unaccent(%s)), 'B') ||
        setweight(to_tsvector('french', unaccent(%s)), 'C'),
        coalesce(%s::timestamptz, now()), coalesce(%s::timestamptz, now())""")
    params = values + [geometry, fp, title, title, keywords, rest,
                       dates.get('created'), dates.get('updated')]
    if old is None:
        cur.execute(sql.SQL('INSERT INTO catalogue.record ({}, geom, fingerprint, stale, sort_title, '
                            'search, created, updated) VALUES ({}, {})').format(cols, marks, extra),
                    params)
        return 'added'
    sets = sql.SQL(', ').join(sql.SQL('{} = v.{}').format(sql.Identifier(c), sql.Identifier(c))
                              for c in COLUMNS + ('geom', 'fingerprint', 'stale', 'sort_title',
                                                  'search', 'updated'))
    names = sql.SQL(', ').join(sql.Identifier(c) for c in COLUMNS + (
        'geom', 'fingerprint', 'stale', 'sort_title', 'search', 'created', 'updated'))
    cur.execute(sql.SQL('UPDATE catalogue.record AS r SET {} FROM (SELECT {}, {}) AS v ({}) '
                        'WHERE r.id = %s').format(sets, marks, extra, names),
                params + [row['id']])
    return 'updated'


def remove_others(cur, source: str, keep: list[str]) -> list[str]:
    """Delete the records of ``source`` whose ids are not in ``keep``; their ids."""
    cur.execute('DELETE FROM catalogue.record WHERE source = %s AND NOT (id = ANY(%s)) RETURNING id',
                (source, list(keep)))
    return sorted(r[0] for r in cur.fetchall())
