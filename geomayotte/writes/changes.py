"""What changed when: every collection document says when its data last changed.

``updated`` in ``/collections`` and ``/collections/{id}`` (JSON) is the latest of the
features' ``modifie_le`` (set by the loader and by writes) and of the deletions recorded
in ``audit.change``. Partners following a collection pull what changed since their last
visit with ``filter=modifie_le > TIMESTAMP('…')`` (``modifie_le`` is a queryable of every
collection; deletions are in ``/collections/{id}/items/{featureId}/history``).
"""
from __future__ import annotations

import functools
import json
import logging

import psycopg2
from psycopg2 import sql

from geomayotte import catalog, database

LOGGER = logging.getLogger(__name__)


def last_change(url: str, collection: str, table_name: str) -> str | None:
    schema, _, name = table_name.rpartition('.')
    try:
        t = catalog.describe(url, schema or 'public', name)
        with database.connection(url, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute("SELECT to_regclass('audit.change') IS NOT NULL")
            deletions = sql.SQL(
                "(SELECT max(at) FROM audit.change WHERE collection = %s AND operation = 'delete')"
            ) if cur.fetchone()[0] else sql.SQL('(SELECT NULL::timestamptz WHERE %s IS NOT NULL)')
            cur.execute(sql.SQL('SELECT greatest((SELECT max(modifie_le) FROM {}), {})').format(
                sql.Identifier(t.schema, t.name), deletions), [collection])
            value = cur.fetchone()[0]
    except psycopg2.Error as err:   # the document is still served, without the date
        LOGGER.warning('last change of %s unknown: %s', collection, err)
        return None
    return value.isoformat() if value else None


def _ours(res: dict):
    return next((p for p in res.get('providers') or [] if p.get('type') == 'feature'
                 and p.get('name', '').endswith('PostGISFeatureProvider')), None)


def _describing(original):
    @functools.wraps(original)
    def describe_collections(api, request, dataset=None):
        headers, status, content = original(api, request, dataset)
        if status != 200 or not isinstance(content, str) or not content.startswith('{'):
            return headers, status, content
        doc = json.loads(content)
        entries = [doc] if dataset is not None else doc.get('collections', [])
        for entry in entries:
            res = api.config['resources'].get(entry.get('id'), {})
            prov = _ours(res)
            if prov is not None:
                when = last_change(prov.get('data'), entry['id'], str(prov.get('table', '')))
                if when:
                    entry['updated'] = when
        from geomayotte.pygeoapi_fixes import to_json
        return headers, status, to_json(doc)
    return describe_collections


_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    import pygeoapi.api as core
    core.describe_collections = _describing(core.describe_collections)
