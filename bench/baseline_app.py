"""The direct-SQL baseline of the Features benchmark: a bare WSGI app that runs, for
each workload, the equivalent SQL on PostGIS and returns the GeoJSON text PostgreSQL
builds. No framework, no parameter handling beyond what the workloads need.

    BENCH_DATABASE_URL=... gunicorn bench.baseline_app:app
"""
from __future__ import annotations

import os
import urllib.parse

from psycopg2 import pool, sql

URL = os.environ['BENCH_DATABASE_URL']
_pool = None

FEATURE = ("json_build_object('type', 'Feature', 'id', id, 'geometry', "
           "ST_AsGeoJSON({geom}, {digits}, 0)::json, 'properties', json_build_object("
           "'code_insee', code_insee, 'usage', usage, 'hauteur', hauteur, 'maj', maj, 'nom', nom))")


def _conn_pool():
    global _pool
    if _pool is None:
        _pool = pool.ThreadedConnectionPool(1, 8, dsn=URL)
    return _pool


def _query(params: dict):
    limit = int(params.get('limit', 10))
    offset = int(params.get('offset', 0))
    geom, digits = 'ST_Transform(geom, 4326)', 8
    if params.get('crs', '').endswith('4471'):
        geom, digits = 'geom', 3
    where, args = [], []
    if 'bbox' in params:
        x0, y0, x1, y1 = (float(v) for v in params['bbox'].split(','))
        where.append('geom && ST_Transform(ST_MakeEnvelope(%s, %s, %s, %s, 4326), 4471) AND '
                     'ST_Intersects(geom, ST_Transform(ST_MakeEnvelope(%s, %s, %s, %s, 4326), 4471))')
        args += [x0, y0, x1, y1] * 2
    if 'usage' in params:
        where.append('usage = %s')
        args.append(params['usage'])
    if 'hmin' in params:
        where.append('hauteur BETWEEN %s AND %s')
        args += [float(params['hmin']), float(params['hmax'])]
    if 'after' in params:
        where.append('id > %s')
        args.append(int(params['after']))
    cond = (' WHERE ' + ' AND '.join(where)) if where else ''
    feature = FEATURE.format(geom=geom, digits=digits)
    text = (f"SELECT json_build_object('type', 'FeatureCollection', 'numberMatched', "
            f"(SELECT count(*) FROM bench.buildings{cond}), 'features', "
            f"coalesce(json_agg(f ORDER BY id), '[]'))::text FROM (SELECT id, {feature} AS f FROM "
            f"bench.buildings{cond} ORDER BY id LIMIT %s OFFSET %s) s")
    return sql.SQL(text), args + args + [limit, offset]


def _item(item_id: int):
    feature = FEATURE.format(geom='ST_Transform(geom, 4326)', digits=8)
    return sql.SQL(f'SELECT {feature}::text FROM bench.buildings WHERE id = %s'), [item_id]


def app(environ, start_response):
    path = environ.get('PATH_INFO', '')
    params = dict(urllib.parse.parse_qsl(environ.get('QUERY_STRING', '')))
    if path.startswith('/items/'):
        stmt, args = _item(int(path.rsplit('/', 1)[-1]))
    else:
        stmt, args = _query(params)
    p = _conn_pool()
    conn = p.getconn()
    try:
        with conn.cursor() as cur:
            cur.execute(stmt, args)
            row = cur.fetchone()
        conn.rollback()
    finally:
        p.putconn(conn)
    body = (row[0] if row else '{}').encode()
    start_response('200 OK', [('Content-Type', 'application/geo+json'), ('Content-Length', str(len(body)))])
    return [body]
