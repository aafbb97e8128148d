"""One write request as one transaction.

The features are checked for shape (GeoJSON, known properties, identifiers), validated
against the reference model by the validation process' own rules (errors refuse the
write with the report; warnings are accepted and kept in the history), reprojected by
PostGIS into the storage CRS, and written with the history row, all or nothing. The
target rows are locked first (``FOR UPDATE``): concurrent writers on one feature queue
up, an ``If-Match`` that no longer matches is a 412, and a merge patch always applies
to the latest version.
"""
from __future__ import annotations

import contextlib
import json
import re

import psycopg2
from psycopg2 import sql

from geomayotte import catalog, crs as crsmod, database, query
from geomayotte.validation import report as reportmod
from geomayotte.validation.reader import InputError
from geomayotte.writes import audit
from geomayotte.writes.target import ACCEPTED, CRS84, Target

READ_ONLY = {'geom_valid', 'geom_invalid_reason', 'modifie_le'}


class WriteError(Exception):
    def __init__(self, status: str, code: str, message: str, report: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.report = status, code, report


def bad(message: str) -> WriteError:
    return WriteError('400 Bad Request', 'InvalidParameterValue', message)


# -- input -----------------------------------------------------------------------------------------
def content_crs(header: str | None) -> str:
    """The request's Content-Crs (default CRS84), one of the reference model's CRSs: its URI,
    in angle brackets or not, or a short form (``EPSG:4471``, ``OGC:CRS84``)."""
    if header is None:
        return CRS84
    uri = header.strip()
    if uri.startswith('<') and uri.endswith('>'):
        uri = uri[1:-1].strip()
    if not uri:     # was taken as no header: lat/lon coordinates then read as CRS84
        raise bad('Content-Crs is empty: give the CRS of the coordinates, e.g. '
                  '<http://www.opengis.net/def/crs/EPSG/0/4471>, or leave the header out for CRS84')
    short = re.fullmatch(r'(?i)(?:EPSG:(\d{4,5})|(?:OGC:)?CRS84)', uri)
    if short:   # the short forms people write (and the validation process takes)
        uri = f'http://www.opengis.net/def/crs/EPSG/0/{short.group(1)}' if short.group(1) else CRS84
    if uri not in ACCEPTED:
        raise bad(f'Content-Crs: {uri!r} is not accepted for writes; give one of '
                  f'{", ".join("<" + u + ">" for u in ACCEPTED)}')
    return uri


def _swap(coords):
    if coords and isinstance(coords[0], (int, float)) and not isinstance(coords[0], bool):
        return [coords[1], coords[0], *coords[2:]] if len(coords) >= 2 else coords
    return [_swap(c) for c in coords] if isinstance(coords, list) else coords


def lonlat(geometry: dict | None, flip: bool) -> dict | None:
    """A geometry with lat/lon axes (EPSG:4326 as OGC API clients send it) turned lon/lat."""
    if geometry is None or not flip:
        return geometry
    if geometry.get('type') == 'GeometryCollection':
        return dict(geometry, geometries=[lonlat(g, True) for g in geometry.get('geometries') or []])
    return dict(geometry, coordinates=_swap(geometry.get('coordinates')))


def key_value(target: Target, raw: str):
    col = target.table.columns[target.key]
    if col.kind == 'integer':
        if not re.fullmatch(r'-?(0|[1-9][0-9]{0,18})', raw):
            raise WriteError('404 Not Found', 'NotFound', f'item {raw!r} not found')
        return int(raw)
    return raw


_SCALARS = {
    'text': (str,), 'date': (str,), 'datetime': (str,), 'integer': (int,), 'number': (int, float),
    'boolean': (bool,),
}
_NAMES = {'text': 'a string', 'date': 'a date (string)', 'datetime': 'a date-time (string)',
          'integer': 'an integer', 'number': 'a number', 'boolean': 'true or false'}


def _scalar_ok(kind: str, value) -> bool:
    if isinstance(value, bool) and kind != 'boolean':
        return False
    return isinstance(value, _SCALARS.get(kind, (str,)))


def column_value(col, value, where: str) -> None:
    """A property value must have its column's JSON type before it reaches SQL: psycopg2
    could not adapt an object (a 500), PostgreSQL cast others silently (an array of
    arrays stored, 1.5 rounded into an integer column, 97611 made text)."""
    if value is None:
        return
    if col.kind == 'array':
        kind = catalog.kind_of(col.pg_type.removesuffix('[]'))
        if not isinstance(value, list) or not all(_scalar_ok(kind, v) for v in value if v is not None):
            raise bad(f'{where}: property {col.name!r} must be a list of '
                      f'{_NAMES[kind].split(" ", 1)[1]}s (or null), not {json.dumps(value)[:60]}')
        return
    if not _scalar_ok(col.kind, value):
        raise bad(f'{where}: property {col.name!r} must be {_NAMES.get(col.kind, "a string")} '
                  f'(or null), not {json.dumps(value)[:60]}')


def feature(target: Target, doc, where: str, path_id=None) -> tuple[object, dict, dict | None]:
    """(identifier, {column: value}, geometry) of one submitted GeoJSON Feature."""
    if not isinstance(doc, dict) or doc.get('type') != 'Feature':
        raise bad(f'{where}: a GeoJSON Feature is expected ("type": "Feature")')
    props = doc.get('properties')
    if props is None:
        props = {}
    if not isinstance(props, dict):
        raise bad(f'{where}: "properties" must be an object')
    geom = doc.get('geometry')
    if 'crs' in doc or (isinstance(geom, dict) and 'crs' in geom):
        raise bad(f'{where}: a "crs" member is not GeoJSON (RFC 7946): say the CRS with the '
                  'Content-Crs header')
    if geom is not None and (not isinstance(geom, dict) or not isinstance(geom.get('type'), str)):
        raise bad(f'{where}: "geometry" must be a GeoJSON geometry object or null')
    if geom is None and target.table.geometry:
        raise bad(f'{where}: a geometry is required in {target.collection}')
    unknown = [k for k in props if k not in target.to_model and k not in READ_ONLY]
    if unknown:
        raise bad(f'{where}: unknown properties {unknown}; properties of {target.collection}: '
                  f'{", ".join(target.to_model)}')
    values = {k: v for k, v in props.items() if k in target.to_model}
    for name, value in values.items():
        column_value(target.table.columns[name], value, where)
    fid = doc.get('id')
    if fid is not None and (not isinstance(fid, (str, int)) or isinstance(fid, bool)):
        raise bad(f'{where}: "id" must be a string or an integer, not {json.dumps(fid)[:60]}')
    if fid is not None and values.get(target.key) is not None and str(fid) != str(values[target.key]):
        raise bad(f'{where}: "id" ({fid!r}) and property {target.key!r} '
                  f'({values[target.key]!r}) differ')
    if values.get(target.key) is None and fid is not None:
        values[target.key] = fid
    if path_id is not None:
        if values.get(target.key) is not None and str(values[target.key]) != str(path_id):
            raise bad(f'{where}: the identifier cannot change ({values[target.key]!r} is not '
                      f'{path_id!r}); delete and create instead')
        values[target.key] = path_id
    if values.get(target.key) is None:
        raise bad(f'{where}: the identifier {target.key!r} is required')
    return values[target.key], values, geom


# -- validation ---------------------------------------------------------------------------------------
def validate(url: str, target: Target, items: list, declared: str) -> list:
    """The reference model's verdict on the features: 422 with the report when it finds
    errors; the warnings otherwise."""
    fc = {'type': 'FeatureCollection', 'features': [
        {'type': 'Feature', 'geometry': geom,
         'properties': {target.to_model[c]: v for c, v in values.items()}}
        for _, values, geom in items]}
    try:
        rep = reportmod.validate({'featureType': target.feature_type.name, 'features': fc,
                                  'crs': declared}, url)
    except InputError as err:
        raise bad(str(err)) from None
    if rep['summary']['errors']:
        raise WriteError('422 Unprocessable Content', 'ValidationFailed',
                         f"the features do not pass the reference model ({rep['summary']['errors']} "
                         'error(s)): nothing was written; see the report', rep)
    return [i for i in rep['issues'] if i['severity'] != 'error']


# -- database -------------------------------------------------------------------------------------------
def _table(t: Target):
    return sql.Identifier(t.table.schema, t.table.name)


def _storage_json(t: Target) -> sql.Composable:
    q = query.ItemsQuery(table=t.table, out=crsmod.output(
        f'http://www.opengis.net/def/crs/EPSG/0/{t.table.srid}'))
    return query.feature_json(q)


def _geom(t: Target, srid: int) -> sql.Composable:
    g = sql.SQL('ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON(%s), {}), {})').format(
        sql.Literal(srid), sql.Literal(t.table.srid))
    if (t.table.geometry_type or '').upper().startswith('MULTI'):
        g = sql.SQL('ST_Multi({})').format(g)
    return g


def lock(cur, t: Target, key) -> tuple[str, str] | None:
    """(ETag, feature as stored) of a row, locked until the transaction ends; None if absent."""
    cur.execute(sql.SQL('SELECT md5(t::text), {} FROM {} AS t WHERE t.{} = %s FOR UPDATE').format(
        _storage_json(t), _table(t), sql.Identifier(t.key)), [key])
    row = cur.fetchone()
    return (f'"{row[0]}"', row[1]) if row else None


def read(url: str, t: Target, key) -> tuple[str, str] | None:
    """(ETag, feature as stored) of a row, read without a lock; None if absent."""
    with database.connection(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL('SELECT md5(t::text), {} FROM {} AS t WHERE t.{} = %s').format(
            _storage_json(t), _table(t), sql.Identifier(t.key)), [key])
        row = cur.fetchone()
    return (f'"{row[0]}"', row[1]) if row else None


def stored(cur, t: Target, key) -> tuple[str, str]:
    cur.execute(sql.SQL('SELECT md5(t::text), {} FROM {} AS t WHERE t.{} = %s').format(
        _storage_json(t), _table(t), sql.Identifier(t.key)), [key])
    row = cur.fetchone()
    return f'"{row[0]}"', row[1]


def insert(cur, t: Target, values: dict, geom: dict | None, srid: int, partner: str) -> None:
    cols = list(values)
    exprs = [sql.Placeholder()] * len(cols)
    params = [values[c] for c in cols]
    if t.table.geometry:
        cols.append(t.table.geometry)
        exprs.append(_geom(t, srid))
        params.append(json.dumps(geom))
    cur.execute(sql.SQL('INSERT INTO {} ({}, modifie_le, modifie_par) VALUES ({}, now(), %s)').format(
        _table(t), sql.SQL(', ').join(map(sql.Identifier, cols)), sql.SQL(', ').join(exprs)),
        params + [partner])


def replace(cur, t: Target, key, values: dict, geom: dict | None, srid: int, partner: str) -> None:
    cols = [c for c in t.to_model if c != t.key]
    sets = [sql.SQL('{} = %s').format(sql.Identifier(c)) for c in cols]
    params = [values.get(c) for c in cols]
    if t.table.geometry:
        sets.append(sql.SQL('{} = {}').format(sql.Identifier(t.table.geometry), _geom(t, srid)))
        params.append(json.dumps(geom))
    cur.execute(sql.SQL('UPDATE {} AS t SET {}, modifie_le = now(), modifie_par = %s '
                        'WHERE t.{} = %s').format(_table(t), sql.SQL(', ').join(sets),
                                                  sql.Identifier(t.key)), params + [partner, key])


def delete(cur, t: Target, key) -> None:
    cur.execute(sql.SQL('DELETE FROM {} WHERE {} = %s').format(_table(t), sql.Identifier(t.key)), [key])


LOCK_TIMEOUT = '10s'   # a write waits this long for a row another write holds, then 503


@contextlib.contextmanager
def transaction(url: str):
    audit.ensure_schema(url)
    with database.connection(url) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT set_config('lock_timeout', %s, true)", (LOCK_TIMEOUT,))
        yield conn


def database_error(err: psycopg2.Error) -> WriteError:
    if (why := database.too_long(err)):
        return WriteError('503 Service Unavailable', 'ServiceUnavailable', why)
    if isinstance(err, psycopg2.OperationalError):
        return WriteError('503 Service Unavailable', 'ServiceUnavailable', 'database unavailable')
    if isinstance(err, psycopg2.errors.LockNotAvailable):
        return WriteError('503 Service Unavailable', 'ServiceUnavailable',
                          'the feature is being written by another request: try again')
    if isinstance(err, psycopg2.errors.UniqueViolation):
        return WriteError('409 Conflict', 'Conflict', 'a feature with this identifier exists already')
    code = err.pgcode or ''
    if code.startswith('22') or code.startswith('23'):
        first = (err.diag.message_primary or str(err)).splitlines()[0]
        return bad(f'a value cannot be stored: {first}')
    return WriteError('500 Internal Server Error', 'NoApplicableCode', 'the write failed (see the logs)')
