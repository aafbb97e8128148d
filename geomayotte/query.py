"""An items request as one description, and the SQL clauses built from it.

Every clause builder returns ``(psycopg2.sql.Composable, params)``: identifiers
come from the catalog description, values are bound.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from psycopg2 import sql

from geomayotte.catalog import Table
from geomayotte.crs import OutputCRS
from geomayotte.cql2 import coerce, geometry_expression
from geomayotte.errors import InvalidQuery

Clause = tuple[sql.Composable, list]


@dataclass
class ItemsQuery:
    table: Table
    limit: int = 10
    offset: int = 0
    envelopes: list[tuple] | None = None          # in the storage CRS; [] matches nothing
    time_column: str | None = None
    time_range: tuple | None = None               # (start or None, end or None, end inclusive)
    equals: list[tuple[str, object]] = field(default_factory=list)
    filter: Clause | None = None
    order: list[tuple[str, bool]] = field(default_factory=list)   # (column, descending)
    properties: list[str] = field(default_factory=list)
    skip_geometry: bool = False
    out: OutputCRS | None = None
    after: object = None                          # keyset: key of the last row already sent


# -- WHERE ---------------------------------------------------------------------
def bbox_clause(q: ItemsQuery) -> Clause | None:
    if q.envelopes is None:
        return None
    if not q.table.geometry or not q.envelopes:
        return sql.SQL('FALSE'), []
    geom = sql.Identifier(q.table.geometry)
    parts, params = [], []
    for env in q.envelopes:
        parts.append(sql.SQL('({g} && ST_MakeEnvelope(%s, %s, %s, %s, %s) AND '
                             'ST_Intersects({v}, ST_MakeEnvelope(%s, %s, %s, %s, %s)))').format(
            g=geom, v=geometry_expression(q.table)))
        params += [*env, q.table.srid, *env, q.table.srid]
    return sql.SQL('({})').format(sql.SQL(' OR ').join(parts)), params


def time_clause(q: ItemsQuery) -> Clause | None:
    if q.time_range is None:
        return None
    start, end, end_inclusive = q.time_range
    col = sql.Identifier(q.time_column)
    parts, params = [], []
    if start is not None:
        parts.append(sql.SQL('{} >= %s').format(col))
        params.append(start)
    if end is not None:
        parts.append(sql.SQL('{} {} %s').format(col, sql.SQL('<=' if end_inclusive else '<')))
        params.append(end)
    if not parts:
        return sql.SQL('{} IS NOT NULL').format(col), []
    return sql.SQL(' AND ').join(parts), params


def equals_clause(q: ItemsQuery) -> Clause | None:
    if not q.equals:
        return None
    parts, params = [], []
    for name, value in q.equals:
        col = q.table.columns[name]
        if col.kind == 'array':
            parts.append(sql.SQL('%s = ANY({})').format(sql.Identifier(name)))
            params.append(str(value))
        else:
            parts.append(sql.SQL('{} = %s').format(sql.Identifier(name)))
            params.append(coerce(value, col))
    return sql.SQL(' AND ').join(parts), params


def keyset_clause(q: ItemsQuery) -> Clause | None:
    if q.after is None:
        return None
    descending = q.order[0][1] if q.order else False
    op = '<' if descending else '>'
    return sql.SQL('{} {} %s').format(sql.Identifier(q.table.key), sql.SQL(op)), [q.after]


def where(q: ItemsQuery, with_keyset: bool = True) -> Clause:
    builders = [bbox_clause, time_clause, equals_clause, lambda q: q.filter]
    if with_keyset:
        builders.append(keyset_clause)
    parts, params = [], []
    for build in builders:
        clause = build(q)
        if clause is not None:
            parts.append(sql.SQL('({})').format(clause[0]))
            params += clause[1]
    if not parts:
        return sql.SQL(''), []
    return sql.SQL(' WHERE ') + sql.SQL(' AND ').join(parts), params


def order_by(q: ItemsQuery) -> sql.Composable:
    order = list(q.order)
    if not any(c == q.table.key for c, _ in order):
        order.append((q.table.key, False))   # a total order: stable pages
    return sql.SQL(' ORDER BY ') + sql.SQL(', ').join(
        sql.SQL('{} {}').format(sql.Identifier(c), sql.SQL('DESC' if d else 'ASC'))
        for c, d in order)


def keyset_compatible(q: ItemsQuery) -> bool:
    """Keyset paging is exact when the order is the primary key alone."""
    return not q.order or (len(q.order) == 1 and q.order[0][0] == q.table.key)


# -- SELECT ----------------------------------------------------------------------
def geometry_json(q: ItemsQuery) -> sql.Composable:
    if q.skip_geometry or not q.table.geometry or q.out is None:
        return sql.SQL('NULL::json')
    geom = sql.SQL('t.{}').format(sql.Identifier(q.table.geometry))
    if q.out.srid != q.table.srid:
        geom = sql.SQL('ST_Transform({}, {})').format(geom, sql.Literal(q.out.srid))
    if q.out.flip:
        geom = sql.SQL('ST_FlipCoordinates({})').format(geom)
    return sql.SQL('ST_AsGeoJSON({}, {}, 0)::json').format(geom, sql.Literal(q.out.decimals))


def feature_json(q: ItemsQuery) -> sql.Composable:
    """One GeoJSON Feature per row, made by PostgreSQL."""
    names = q.properties or list(q.table.columns)
    props = sql.SQL(', ').join(sql.SQL('t.{}').format(sql.Identifier(n)) for n in names)
    return sql.SQL(
        "json_build_object('type', 'Feature', 'id', t.{key}, 'geometry', {geom}, "
        "'properties', (SELECT to_json(p) FROM (SELECT {props}) AS p))::text"
    ).format(key=sql.Identifier(q.table.key), geom=geometry_json(q), props=props)


def items_sql(q: ItemsQuery) -> Clause:
    table = sql.Identifier(q.table.schema, q.table.name)
    cond, params = where(q)
    offset = sql.SQL('') if q.after is not None else sql.SQL(' OFFSET %s')
    stmt = sql.SQL('SELECT t.{key}, {feature} FROM {table} AS t{where}{order} LIMIT %s{offset}').format(
        key=sql.Identifier(q.table.key), feature=feature_json(q), table=table, where=cond,
        order=order_by(q), offset=offset)
    params = params + [q.limit] + ([] if q.after is not None else [q.offset])
    return stmt, params


def keys_sql(q: ItemsQuery, skip: int, take: int) -> Clause:
    """The keys of the rows ``skip`` .. ``skip + take`` of the page's order: tells, before a
    streamed page is read, whether a next page exists and where its cursor starts."""
    cond, params = where(q)
    stmt = sql.SQL('SELECT t.{key} FROM {table} AS t{where}{order} LIMIT %s OFFSET %s').format(
        key=sql.Identifier(q.table.key), table=sql.Identifier(q.table.schema, q.table.name),
        where=cond, order=order_by(q))
    base = 0 if q.after is not None else q.offset
    return stmt, params + [take, base + skip]


def page_count_sql(q: ItemsQuery) -> Clause:
    """How many rows the page holds (at most ``limit``)."""
    cond, params = where(q)
    stmt = sql.SQL('SELECT count(*) FROM (SELECT 1 FROM {table} AS t{where}{order} '
                   'LIMIT %s OFFSET %s) AS page').format(
        table=sql.Identifier(q.table.schema, q.table.name), where=cond, order=order_by(q))
    return stmt, params + [q.limit, 0 if q.after is not None else q.offset]


def count_sql(q: ItemsQuery) -> Clause:
    cond, params = where(q, with_keyset=False)
    return sql.SQL('SELECT count(*) FROM {}{}').format(
        sql.Identifier(q.table.schema, q.table.name), cond), params


def item_sql(table: Table, key, out: OutputCRS | None) -> Clause:
    """The feature, and its version (the row's MD5: the ETag that writes' If-Match checks)."""
    q = ItemsQuery(table=table, out=out)
    return sql.SQL('SELECT {}, md5(t::text) FROM {} AS t WHERE t.{} = %s').format(
        feature_json(q), sql.Identifier(table.schema, table.name),
        sql.Identifier(table.key)), [key]


# -- datetime parameter ------------------------------------------------------------
def parse_datetime(value: str, kind: str) -> tuple:
    """``datetime`` (instant, or interval with ``..``/empty ends) -> (start, end, end inclusive)."""
    if '/' in value:
        if value.count('/') != 1:
            raise InvalidQuery(f'datetime {value!r}: an interval has exactly one "/"')
        a, b = value.split('/')
        start = None if a in ('', '..') else _instant(a, kind, end=False)
        end = None if b in ('', '..') else _instant(b, kind, end=True)
        if start is None and end is None and a == '' and b == '':
            raise InvalidQuery('datetime: an interval needs at least one end')
        if start is not None and end is not None and start[0] > end[0]:
            raise InvalidQuery(f'datetime {value!r}: the start is after the end')
        return (start[0] if start else None, end[0] if end else None,
                end[1] if end else True)
    if value in ('', '..'):
        raise InvalidQuery('datetime: ".." is only allowed as an interval end')
    start, _ = _instant(value, kind, end=False)
    if _is_date(value):   # a whole day
        if kind != 'datetime':
            return start, start, True
        end, inclusive = _instant(value, kind, end=True)
        return start, end, inclusive
    return start, start, True


_RFC3339 = re.compile(r'^\d{4}-\d{2}-\d{2}([Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2}))?$')


def _is_date(text: str) -> bool:
    return len(text) == 10 and text[4] == '-' and text[7] == '-'


def _instant(text: str, kind: str, end: bool):
    """(value, inclusive) for one end of a datetime interval."""
    if not _RFC3339.match(text):
        raise InvalidQuery(f'datetime: {text!r} is not an RFC 3339 date or date-time '
                           '(2019-01-31 or 2019-01-31T12:00:00Z)')
    try:
        if _is_date(text):
            day = dt.date.fromisoformat(text)
            if kind == 'date':
                return day, True
            start = dt.datetime.combine(day, dt.time(0), dt.timezone.utc)
            if end:
                try:
                    return start + dt.timedelta(days=1), False
                except OverflowError:        # 9999-12-31: nothing is later anyway
                    return dt.datetime.max.replace(tzinfo=dt.timezone.utc), True
            return start, True
        ts = dt.datetime.fromisoformat(text.replace('z', 'Z').replace('Z', '+00:00'))
    except ValueError as err:
        raise InvalidQuery(f'datetime: {text!r}: {err}') from None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=dt.timezone.utc)
    if kind == 'date':
        return ts.date(), True
    return ts, True
