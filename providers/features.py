"""OGC API Features provider over a PostGIS table, with psycopg2.

pygeoapi builds one provider object per request: everything costly (the pool,
the catalog description, CRS objects) lives at module level in ``geomayotte``.
Features are made by PostGIS (``ST_AsGeoJSON`` + ``json_build_object``); Python
only joins the rows' JSON text.

Provider block (``pygeoapi-config.yml``)::

    - type: feature
      name: geomayotte.providers.features.PostGISFeatureProvider
      data: ${DATABASE_URL}
      table: geodata.communes          # schema.table, checked against the catalog
      storage_crs: http://www.opengis.net/def/crs/EPSG/0/4471
      time_field: t0                   # optional: enables ``datetime``
      count_policy: auto               # exact | auto (exact under a planner estimate) | none
      include_extra_query_parameters: true   # lets ``cursor`` and unknown names reach us
"""
from __future__ import annotations

import base64
import json
import logging
import re
import urllib.parse

import psycopg2
from psycopg2 import errorcodes
from pygeoapi.provider.base import BaseProvider, SchemaType

from geomayotte import catalog, crs as crsmod, database, query, settings, streaming
from geomayotte.cql2 import Translator
from geomayotte.errors import GeoMayotteError, InvalidQuery, NotFound, UnavailableError, \
    to_provider_error
from geomayotte.request_context import current

LOGGER = logging.getLogger(__name__)

RESERVED = {'bbox', 'bbox-crs', 'crs', 'f', 'lang', 'limit', 'offset', 'resulttype', 'datetime',
            'sortby', 'properties', 'skipGeometry', 'q', 'filter', 'filter-lang', 'filter-crs',
            'cursor'}


def _encode_cursor(key) -> str:
    return base64.urlsafe_b64encode(json.dumps({'k': key}).encode()).decode().rstrip('=')


def _decode_cursor(token: str, table: catalog.Table):
    try:
        raw = base64.urlsafe_b64decode(token + '=' * (-len(token) % 4))
        key = json.loads(raw)['k']
    except (ValueError, KeyError, TypeError):
        raise InvalidQuery('cursor: not a cursor issued by this server') from None
    if isinstance(key, str) and ('\x00' in key or not _utf8(key)):
        raise InvalidQuery('cursor: not a cursor issued by this server')
    col = table.columns[table.key]
    if col.kind == 'integer' and not (isinstance(key, int) and not isinstance(key, bool)):
        raise InvalidQuery('cursor: not a cursor issued by this server')
    if col.kind == 'text' and not isinstance(key, str):
        raise InvalidQuery('cursor: not a cursor issued by this server')
    return key


def _utf8(text: str) -> bool:
    try:
        text.encode('utf-8')   # a lone surrogate from a \\ud800 escape is not text
    except UnicodeEncodeError:
        return False
    return True


class PostGISFeatureProvider(BaseProvider):
    def __init__(self, provider_def):
        super().__init__(provider_def)
        self.url = provider_def.get('data') or settings.database_url()
        if isinstance(self.url, dict):
            raise RuntimeError('data: give the database URL as a string')
        schema, _, name = str(provider_def.get('table', '')).rpartition('.')
        try:
            self.table = catalog.describe(self.url, schema or 'public', name)
        except psycopg2.OperationalError as err:
            LOGGER.error('database unavailable: %s', err)
            raise to_provider_error(UnavailableError('database unavailable')) from err
        except GeoMayotteError as err:
            LOGGER.error('%s', err)
            raise to_provider_error(err) from err
        self.id_field = self.table.key
        self.count_mode = str(provider_def.get('count_policy', 'auto')).lower()
        if self.time_field and self.time_field not in self.table.columns:
            raise RuntimeError(f'time_field {self.time_field!r} is not a column of {name}')
        self._fields = {
            c.name: {'type': c.json_type, **({'format': c.format} if c.format else {})}
            for c in self.table.columns.values()}
        self.include_extra_query_parameters = True
        self.storage_srid = self.table.srid

    # -- pygeoapi API ----------------------------------------------------------
    def get_fields(self):
        return self._fields

    def get_schema(self, schema_type: SchemaType = SchemaType.item):
        """A GeoJSON Feature schema of this collection (OpenAPI 3.0 flavour)."""
        props = {name: dict(v, title=name) for name, v in self._fields.items()}
        key = self._fields[self.table.key]
        return 'application/geo+json', {
            'type': 'object', 'required': ['type', 'geometry', 'properties'],
            'properties': {
                'type': {'type': 'string', 'enum': ['Feature']},
                'id': {'type': key['type']},
                'geometry': {'type': 'object', 'nullable': True,
                             'description': 'GeoJSON geometry' if self.table.geometry
                             else 'always null: this collection has no geometry'},
                'properties': {'type': 'object', 'properties': props}}}

    def query(self, offset=0, limit=10, resulttype='results', bbox=[], datetime_=None,
              properties=[], sortby=[], select_properties=[], skip_geometry=False,
              q=None, filterq=None, crs_transform_spec=None, **kwargs):
        if q:
            raise to_provider_error(InvalidQuery('q: free-text search is not offered on '
                                                 'feature collections; use filter'))
        try:
            return self._query(offset, limit, resulttype, bbox, datetime_, properties, sortby,
                               select_properties, skip_geometry, filterq, crs_transform_spec)
        except GeoMayotteError as err:
            raise to_provider_error(err) from err

    def get(self, identifier, crs_transform_spec=None, **kwargs):
        try:
            return json.loads(self._get(identifier, crs_transform_spec)[0])
        except GeoMayotteError as err:
            raise to_provider_error(err) from err

    def get_text(self, identifier, crs_transform_spec=None) -> tuple[str, str]:
        """(the feature as the GeoJSON text PostGIS wrote, its ETag), for ``geomayotte.fastpath``."""
        text, version = self._get(identifier, crs_transform_spec)
        return text, f'"{version}"'

    # -- implementation ----------------------------------------------------------
    def _out_crs(self, spec) -> crsmod.OutputCRS | None:
        if not self.table.geometry:
            return None
        if spec is None:   # pygeoapi: requested CRS == storage CRS
            ctx = current.get()
            uri = (ctx.get('crs') if ctx else None) or \
                f'http://www.opengis.net/def/crs/EPSG/0/{self.storage_srid}'
            return crsmod.output(uri)
        return crsmod.output(spec.target_crs_uri)

    def _build(self, offset, limit, bbox, datetime_, properties, sortby, select_properties,
               skip_geometry, filterq, crs_transform_spec) -> query.ItemsQuery:
        ctx = current.get()
        t = self.table
        iq = query.ItemsQuery(table=t, limit=int(limit), offset=int(offset),
                              skip_geometry=bool(skip_geometry),
                              out=self._out_crs(crs_transform_spec))
        # bbox: from the raw request when we have it (antimeridian, large boxes)
        raw_bbox = ctx.get('bbox') if ctx else None
        if raw_bbox is not None or bbox:
            if not t.geometry:
                raise InvalidQuery('bbox: this collection has no geometry')
            if raw_bbox is not None:
                try:
                    values = [float(v) for v in raw_bbox.split(',')]
                except ValueError:
                    raise InvalidQuery('bbox values must be numbers') from None
                bbox_crs = ctx.get('bbox-crs') or crsmod.CRS84
            else:
                values, bbox_crs = list(bbox), f'EPSG:{self.storage_srid}'
            iq.envelopes = crsmod.bbox_envelopes(values, bbox_crs, self.storage_srid)
        if datetime_:
            if not self.time_field:
                raise InvalidQuery('datetime: this collection has no time property')
            kind = t.columns[self.time_field].kind
            iq.time_column = self.time_field
            iq.time_range = query.parse_datetime(str(datetime_), kind)
        for name, value in properties:
            if name in RESERVED:
                continue
            if name not in t.columns:
                raise InvalidQuery(f'unknown query parameter {name!r}; properties of this '
                                   f'collection: {", ".join(t.columns)}')
            iq.equals.append((name, value))
        if filterq is not None:
            filter_crs = ctx.get('filter-crs') if ctx else None
            iq.filter = Translator(t, filter_crs, bool(ctx and ctx.filter_json)).condition(filterq)
        iq.order = [(s['property'], s['order'] == '-') for s in sortby or []]
        for name, _ in iq.order:
            if name not in t.columns:
                raise InvalidQuery(f'sortby: unknown property {name!r}')
        for name in select_properties or []:
            if name not in t.columns:
                raise InvalidQuery(f'properties: unknown property {name!r}')
        iq.properties = list(select_properties or [])
        token = ctx.get('cursor') if ctx else None
        if token is not None:
            if not query.keyset_compatible(iq):
                raise InvalidQuery('cursor: only valid with the default order')
            iq.after = _decode_cursor(token, t)
        return iq

    def _query(self, offset, limit, resulttype, bbox, datetime_, properties, sortby,
               select_properties, skip_geometry, filterq, crs_transform_spec):
        if int(offset) > 2 ** 62:
            raise InvalidQuery(f'offset {offset} is too large')
        if resulttype not in ('results', 'hits'):
            raise InvalidQuery('resulttype must be results or hits')
        iq = self._build(offset, limit, bbox, datetime_, properties, sortby, select_properties,
                         skip_geometry, filterq, crs_transform_spec)
        ctx = current.get()
        if resulttype == 'results' and ctx is not None and ctx.raw_json and ctx.can_stream \
                and iq.limit >= settings.stream_rows():
            return self._stream(iq, ctx)
        with self._cursor() as cur:
            if resulttype == 'hits':
                stmt, params = query.count_sql(iq)
                self._execute(cur, stmt, params)
                return {'type': 'FeatureCollection', 'features': [],
                        'numberMatched': cur.fetchone()[0], 'numberReturned': 0}
            stmt, params = query.items_sql(iq)
            # one row more than asked tells whether a next page exists
            params[-1 if iq.after is not None else -2] = iq.limit + 1
            self._execute(cur, stmt, params)
            rows = cur.fetchall()
            more = len(rows) > iq.limit
            rows = rows[:iq.limit]
            matched = None
            if not more and iq.after is None and (rows or iq.offset == 0):
                matched = iq.offset + len(rows)
            elif self._count_wanted(cur, iq):
                stmt, params = query.count_sql(iq)
                self._execute(cur, stmt, params)
                matched = cur.fetchone()[0]
        text = '[' + ','.join(r[1] for r in rows) + ']'
        if ctx is not None and ctx.raw_json:
            # GeoJSON out: the features stay the text PostGIS wrote, spliced into pygeoapi's
            # answer by geomayotte.pygeoapi_fixes (no decoding and re-encoding in Python)
            ctx.raw_features, features = text, []
        else:
            features = json.loads(text)
        content = {'type': 'FeatureCollection', 'features': features, 'numberReturned': len(rows)}
        if matched is not None:
            content['numberMatched'] = matched
        content['links'] = self._links(iq, rows[-1][0] if rows else None, more)
        if ctx is not None:   # read by geomayotte.app to mend pygeoapi's own paging links
            ctx.last_page = not more
            ctx.links = list(content['links'])   # pygeoapi extends the original
        return content

    def _stream(self, iq, ctx) -> dict:
        """A large GeoJSON page (``geomayotte.streaming``): what the envelope needs (a next
        page? its cursor? the counts?) is read first from the keys only, in the same
        repeatable-read transaction as the features, which the middleware streams."""
        try:
            page = streaming.PageStream(self.url)
        except psycopg2.OperationalError as err:
            LOGGER.error('database unavailable: %s', err)
            raise UnavailableError('database unavailable') from err
        try:
            with page.conn.cursor() as cur:
                stmt, params = query.keys_sql(iq, iq.limit - 1, 2)   # the page's last row, the next
                self._execute(cur, stmt, params)
                keys = [r[0] for r in cur.fetchall()]
                more = len(keys) == 2
                if keys:
                    returned = iq.limit
                else:
                    stmt, params = query.page_count_sql(iq)
                    self._execute(cur, stmt, params)
                    returned = cur.fetchone()[0]
                matched = None
                if not more and iq.after is None and (returned or iq.offset == 0):
                    matched = iq.offset + returned
                elif self._count_wanted(cur, iq):
                    stmt, params = query.count_sql(iq)
                    self._execute(cur, stmt, params)
                    matched = cur.fetchone()[0]
            try:
                page.start(*query.items_sql(iq))
            except psycopg2.Error as err:
                self._raise(err)
        except BaseException:
            page.close(failed=True)
            raise
        content = {'type': 'FeatureCollection', 'features': [], 'numberReturned': returned}
        if matched is not None:
            content['numberMatched'] = matched
        content['links'] = self._links(iq, keys[0] if keys else None, more)
        ctx.stream = page
        ctx.last_page = not more
        ctx.links = list(content['links'])
        return content

    def _count_wanted(self, cur, iq) -> bool:
        if self.count_mode == 'none':
            return False
        if self.count_mode == 'exact':
            return True
        stmt, params = query.count_sql(iq)
        self._execute(cur, sql_explain(stmt), params)
        plan = cur.fetchone()[0]
        rows = plan[0]['Plan'].get('Plan Rows', 0)
        plans = plan[0]['Plan'].get('Plans') or [{}]
        estimate = max(rows, plans[0].get('Plan Rows', 0))
        return estimate <= settings.exact_count_limit()

    def _links(self, iq, last_key, more) -> list[dict]:
        ctx = current.get()
        if ctx is None:
            return []
        kept = [(k, v) for k, v in ctx.params if k not in ('offset', 'cursor')]
        if ctx.filter_body is not None:   # a CQL2 JSON search: links are GETs repeating it
            kept = [(k, v) for k, v in kept if k not in ('filter', 'filter-lang')] + [
                ('filter', ctx.filter_body), ('filter-lang', 'cql2-json')]
        fmt = ctx.get('f')
        mime = 'text/html' if fmt == 'html' else 'application/geo+json'
        links = []
        if more:
            nxt = kept + [('offset', str(iq.offset + iq.limit))]
            if query.keyset_compatible(iq) and last_key is not None:
                nxt.append(('cursor', _encode_cursor(last_key)))
            links.append({'rel': 'next', 'type': mime, 'title': 'Items (next)',
                          'href': f'{ctx.url}?{urllib.parse.urlencode(nxt)}'})
        if iq.offset > 0:
            prev = kept + [('offset', str(max(0, iq.offset - iq.limit)))]
            links.append({'rel': 'prev', 'type': mime, 'title': 'Items (prev)',
                          'href': f'{ctx.url}?{urllib.parse.urlencode(prev)}'})
        return links

    def _get(self, identifier, crs_transform_spec) -> tuple[str, str]:
        col = self.table.columns[self.table.key]
        key = identifier
        if '\x00' in str(identifier):
            raise NotFound('item not found')
        if col.kind == 'integer':
            if not re.fullmatch(r'-?(0|[1-9][0-9]{0,18})', str(identifier)):   # canonical form only
                raise NotFound(f'item {identifier!r} not found')
            key = int(identifier)
            if not -2**63 <= key < 2**63:
                raise NotFound(f'item {identifier!r} not found')
        elif col.kind != 'text':
            key = str(identifier)
        stmt, params = query.item_sql(self.table, key, self._out_crs(crs_transform_spec))
        with self._cursor() as cur:
            self._execute(cur, stmt, params)
            row = cur.fetchone()
        if row is None:
            raise NotFound(f'item {identifier!r} not found')
        return row[0], row[1]

    # -- database -------------------------------------------------------------------
    def _cursor(self):
        return _Cursor(self.url)

    @classmethod
    def _execute(cls, cur, stmt, params):
        try:
            cur.execute(stmt, params)
        except psycopg2.Error as err:
            cls._raise(err)

    @staticmethod
    def _raise(err: psycopg2.Error):
        """Our error for a database error: 503, 400 for a value the query cannot take, or 500."""
        if (why := database.too_long(err)):
            LOGGER.warning('query stopped: %s', err)
            raise UnavailableError(why) from err
        if isinstance(err, psycopg2.OperationalError):
            LOGGER.error('database error: %s', err)
            raise UnavailableError('database unavailable') from err
        code = err.pgcode or ''
        if code.startswith('22') or code in (errorcodes.UNDEFINED_FUNCTION,
                                             errorcodes.DATATYPE_MISMATCH,
                                             errorcodes.AMBIGUOUS_FUNCTION,
                                             errorcodes.CANNOT_COERCE,
                                             errorcodes.INDETERMINATE_DATATYPE):
            first = (err.diag.message_primary or str(err)).splitlines()[0]
            raise InvalidQuery(f'the query cannot be evaluated: {first}') from err
        LOGGER.error('query failed: %s', err)
        raise GeoMayotteError('query failed') from err


def sql_explain(stmt):
    from psycopg2 import sql
    return sql.SQL('EXPLAIN (FORMAT JSON) ') + stmt


class _Cursor:
    """A pooled connection's cursor, for one ``with`` block."""

    def __init__(self, url):
        self._cm = database.connection(url, autocommit=True)   # reads: no BEGIN/COMMIT round trips

    def __enter__(self):
        try:
            self._conn = self._cm.__enter__()
        except psycopg2.OperationalError as err:
            LOGGER.error('database unavailable: %s', err)
            raise UnavailableError('database unavailable') from err
        self._cur = self._conn.cursor()
        return self._cur

    def __exit__(self, *exc):
        self._cur.close()
        try:
            return self._cm.__exit__(*exc)
        except psycopg2.OperationalError as err:
            raise UnavailableError('database unavailable') from err
