"""A records search as one description, and its SQL (psycopg2.sql, every value bound).

- ``q``: French full-text search, case- and accent-insensitive, on the title (weight A),
  keywords (B), description, themes and lineage (C). Terms separated by spaces must all
  match, groups separated by commas are alternatives (``q=forêt,séisme``); each word also
  matches as a prefix of a stemmed word (``inond`` finds "inondation"). Ranked by relevance.
- ``bbox`` (CRS84 or ``bbox-crs``), ``datetime`` (the record's period intersects it),
  ``type``, ``ids``, ``externalIds`` (``value`` or ``scheme:value``), ``keywords``
  (any of them, case- and accent-insensitive), ``property=value`` on queryables,
  CQL2 through ``geomayotte.cql2`` on the queryable columns.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from psycopg2 import sql

from geomayotte.access import http as access
from geomayotte import catalog
from geomayotte.catalogue import store
from geomayotte.errors import InvalidQuery

Clause = tuple[sql.Composable, list]

# served property -> column (every one a column of catalogue.record)
QUERYABLES = {'id': 'string', 'type': 'string', 'title': 'string', 'description': 'string',
              'keywords': 'array', 'license': 'string', 'language': 'string',
              'created': 'date-time', 'updated': 'date-time', 'diffusion': 'string',
              'source': 'string'}
SORTABLE = {'title': 'sort_title', 'updated': 'updated', 'created': 'created', 'id': 'id',
            'type': 'type'}
LIST_PARAMS = ('type', 'ids', 'externalIds', 'keywords')
_WORD = re.compile(r'[\W_]+', re.UNICODE)
MAX_TERMS = 32


@dataclass
class RecordsQuery:
    limit: int = 10
    offset: int = 0
    q: list[list[str]] | None = None          # groups (OR) of words (AND)
    envelopes: list[tuple] | None = None       # CRS84 lon/lat; [] matches nothing
    time_range: tuple | None = None
    lists: dict[str, list[str]] = field(default_factory=dict)
    equals: list[tuple[str, str]] = field(default_factory=list)
    filter: Clause | None = None
    order: list[tuple[str, bool]] = field(default_factory=list)


def view(url: str) -> catalog.Table:
    """The record table as CQL2 sees it: the queryable columns only."""
    t = catalog.describe(url, store.SCHEMA, store.TABLE)
    return dataclasses.replace(t, columns={k: t.columns[k] for k in QUERYABLES})


def parse_q(text: str) -> list[list[str]]:
    groups = []
    for part in text.split(','):
        words = [w for w in _WORD.split(part) if w]
        if words:
            groups.append(words)
    if not groups:
        raise InvalidQuery(f'q: {text!r} has no word to search for')
    if sum(len(g) for g in groups) > MAX_TERMS:
        raise InvalidQuery(f'q: at most {MAX_TERMS} words')
    return groups


def split_list(name: str, value: str) -> list[str]:
    items = [v.strip() for v in str(value).split(',') if v.strip()]
    if not items:
        raise InvalidQuery(f'{name}: give one value or more, separated by commas')
    if name == 'type':
        for v in items:
            if v not in store.TYPES:
                raise InvalidQuery(f'type: {v!r} is not a record type ({", ".join(store.TYPES)})')
    return items


def plain_words(url: str, groups: list[list[str]]) -> list[list[str]]:
    """The words as the search index has them: unaccented by PostgreSQL, then kept to
    letters and digits (unaccent() turns some letters into tsquery syntax: ʼ -> ', ⑴ -> (1));
    words left empty are dropped, a query left empty is a 400."""
    from geomayotte import database
    flat = [w for g in groups for w in g]
    with database.connection(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT regexp_replace(unaccent(w), '[^[:alnum:]]+', '', 'g') "
                    'FROM unnest(%s::text[]) WITH ORDINALITY AS t(w, n) ORDER BY n', (flat,))
        cleaned = iter(r[0] for r in cur.fetchall())
    out = [[w for w in (next(cleaned) for _ in g) if w] for g in groups]
    out = [g for g in out if g]
    if not out:
        raise InvalidQuery('q: no letters or digits to search for')
    return out


def tsquery(groups: list[list[str]]) -> Clause:
    """(w1:* & w2:*) | (w3:*), each word stemmed by the French configuration, unaccented."""
    ors, params = [], []
    for words in groups:
        ands = []
        for w in words:
            ands.append(sql.SQL("to_tsquery('french', %s)"))
            params.append(f'{w}:*')      # w: unaccented letters and digits (plain_words)
        ors.append(sql.SQL('({})').format(sql.SQL(' && ').join(ands)))
    return sql.SQL('({})').format(sql.SQL(' || ').join(ors)), params


def _lists_clause(lists: dict) -> list[Clause]:
    out = []
    if 'type' in lists:
        out.append((sql.SQL('type = ANY(%s)'), [lists['type']]))
    if 'ids' in lists:
        out.append((sql.SQL('id = ANY(%s)'), [lists['ids']]))
    if 'externalIds' in lists:
        out.append((sql.SQL("EXISTS (SELECT 1 FROM jsonb_array_elements(external_ids) e "
                            "WHERE e->>'value' = ANY(%s) OR (e->>'scheme') || ':' || (e->>'value') = ANY(%s))"),
                    [lists['externalIds'], lists['externalIds']]))
    if 'keywords' in lists:
        out.append((sql.SQL('EXISTS (SELECT 1 FROM unnest(keywords) k, unnest(%s::text[]) w '
                            'WHERE lower(unaccent(k)) = lower(unaccent(w)))'), [lists['keywords']]))
    return out


def where(rq: RecordsQuery) -> Clause:
    clauses: list[Clause] = []
    if rq.q is not None:
        query, params = tsquery(rq.q)
        clauses.append((sql.SQL('search @@ {}').format(query), params))
    if rq.envelopes is not None:
        if not rq.envelopes:
            clauses.append((sql.SQL('FALSE'), []))
        else:
            parts, params = [], []
            for env in rq.envelopes:
                parts.append(sql.SQL('(geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326) AND '
                                     'ST_Intersects(geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326)))'))
                params += [*env, *env]
            clauses.append((sql.SQL(' OR ').join(parts), params))
    if rq.time_range is not None:
        start, end, inclusive = rq.time_range
        parts, params = [sql.SQL('time_start IS NOT NULL')], []
        if end is not None:
            parts.append(sql.SQL('time_start {} %s').format(sql.SQL('<=' if inclusive else '<')))
            params.append(end)
        if start is not None:
            parts.append(sql.SQL('time_end >= %s'))
            params.append(start)
        clauses.append((sql.SQL(' AND ').join(parts), params))
    clauses += _lists_clause(rq.lists)
    for name, value in rq.equals:
        clauses.append((sql.SQL('{} = %s').format(sql.Identifier(name)), [value]))
    if rq.filter is not None:
        clauses.append(rq.filter)
    visible = access.records_clause()   # what the caller may see (geomayotte.access)
    if visible is not None:
        clauses.append(visible)
    if not clauses:
        return sql.SQL(''), []
    params = [p for _, ps in clauses for p in ps]
    return sql.SQL(' WHERE ') + sql.SQL(' AND ').join(
        sql.SQL('({})').format(c) for c, _ in clauses), params


def order_by(rq: RecordsQuery) -> Clause:
    parts, params = [], []
    if rq.order:
        for name, desc in rq.order:
            parts.append(sql.SQL('{} {}').format(sql.Identifier(SORTABLE[name]),
                                                 sql.SQL('DESC' if desc else 'ASC')))
    elif rq.q is not None:
        rank, params = tsquery(rq.q)
        parts.append(sql.SQL('ts_rank(search, {}) DESC').format(rank))
    parts.append(sql.SQL('id ASC'))    # a total order: stable pages
    return sql.SQL(' ORDER BY ') + sql.SQL(', ').join(parts), params


SELECT = sql.SQL(', ').join(
    [sql.Identifier(c) for c in store.COLUMNS] +
    [sql.SQL('created'), sql.SQL('updated'), sql.SQL('ST_AsGeoJSON(geom, 9)')])
SELECT_NAMES = store.COLUMNS + ('created', 'updated', 'geometry')


def items_sql(rq: RecordsQuery) -> Clause:
    cond, params = where(rq)
    order, oparams = order_by(rq)
    return (sql.SQL('SELECT {} FROM catalogue.record{}{} LIMIT %s OFFSET %s').format(SELECT, cond, order),
            params + oparams + [rq.limit, rq.offset])


def count_sql(rq: RecordsQuery) -> Clause:
    cond, params = where(rq)
    return sql.SQL('SELECT count(*) FROM catalogue.record{}').format(cond), params


def item_sql(rid: str) -> Clause:
    visible = access.records_clause()
    if visible is None:
        return sql.SQL('SELECT {} FROM catalogue.record WHERE id = %s').format(SELECT), [rid]
    return (sql.SQL('SELECT {} FROM catalogue.record WHERE id = %s AND ({})').format(SELECT, visible[0]),
            [rid] + visible[1])


def visible_sql(select: str) -> Clause:
    """``SELECT <select> FROM catalogue.record`` over the records the caller may see."""
    visible = access.records_clause()
    if visible is None:
        return sql.SQL(select + ' FROM catalogue.record'), []
    return sql.SQL(select + ' FROM catalogue.record WHERE {}').format(visible[0]), visible[1]
