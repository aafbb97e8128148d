"""OGC API Records provider over ``catalogue.record`` in PostGIS, with psycopg2.

Provider block (``pygeoapi-config.yml``)::

    - type: record
      name: geomayotte.providers.records.PostGISRecordProvider
      data: ${DATABASE_URL}
      include_extra_query_parameters: true   # type, ids, externalIds, keywords reach us

Before answering, records whose data changed are recomputed
(``geomayotte.catalogue.sync.refresh_stale``: one indexed query when none did).
"""
from __future__ import annotations

import logging
import os
import urllib.parse

import psycopg2
from pygeoapi.provider.base import BaseProvider, SchemaType

from geomayotte import crs as crsmod, settings
from geomayotte.catalogue import record as recmod, search, sync
from geomayotte.cql2 import Translator
from geomayotte.errors import GeoMayotteError, InvalidQuery, NotFound, UnavailableError, \
    to_provider_error
from geomayotte.providers.features import PostGISFeatureProvider, _Cursor
from geomayotte.query import parse_datetime
from geomayotte.request_context import current

LOGGER = logging.getLogger(__name__)
RESERVED = {'bbox', 'bbox-crs', 'f', 'lang', 'limit', 'offset', 'resulttype', 'datetime',
            'sortby', 'properties', 'skipGeometry', 'q', 'filter', 'filter-lang', 'filter-crs'}
_JSON_TYPES = {'string': {'type': 'string'}, 'array': {'type': 'array', 'items': {'type': 'string'}},
               'date-time': {'type': 'string', 'format': 'date-time'}}


def base_url() -> str:
    return os.environ.get('GEOMAYOTTE_BASE_URL', 'http://127.0.0.1:5000').rstrip('/')


def _check_crs() -> None:
    """Records are in CRS84 only: another ``crs`` was ignored (CRS84 coordinates sent as if
    they were what was asked)."""
    ctx = current.get()
    asked = ctx.get('crs') if ctx else None
    if asked is not None and asked != crsmod.CRS84:
        raise InvalidQuery(f'crs: records are served in {crsmod.CRS84} only, not {asked!r}')


class PostGISRecordProvider(BaseProvider):
    def __init__(self, provider_def):
        super().__init__(provider_def)
        self.url = provider_def.get('data') or settings.database_url()
        self.id_field = 'id'
        self.title_field = 'title'
        self.include_extra_query_parameters = True
        self._fields = {k: dict(_JSON_TYPES[v]) for k, v in search.QUERYABLES.items()}

    # -- pygeoapi API ----------------------------------------------------------
    def get_fields(self):
        return self._fields

    def get_schema(self, schema_type: SchemaType = SchemaType.item):
        props = {name: dict(v, title=name) for name, v in self._fields.items()}
        return 'application/geo+json', {
            'type': 'object', 'required': ['id', 'type', 'geometry', 'properties'],
            'properties': {'id': {'type': 'string'}, 'type': {'type': 'string', 'enum': ['Feature']},
                           'geometry': {'type': 'object', 'nullable': True},
                           'time': {'type': 'object', 'nullable': True},
                           'properties': {'type': 'object', 'properties': props},
                           'links': {'type': 'array'}}}

    def query(self, offset=0, limit=10, resulttype='results', bbox=[], datetime_=None,
              properties=[], sortby=[], select_properties=[], skip_geometry=False,
              q=None, filterq=None, **kwargs):
        try:
            return self._query(int(offset), int(limit), resulttype, datetime_, properties,
                               sortby, q, filterq, select_properties, skip_geometry)
        except GeoMayotteError as err:
            raise to_provider_error(err) from err

    def get(self, identifier, **kwargs):
        try:
            _check_crs()
            self._refresh()
            with self._cursor() as cur:
                stmt, params = search.item_sql(str(identifier))
                self._execute(cur, stmt, params)
                row = cur.fetchone()
            if row is None:
                raise NotFound(f'record {identifier!r} not found')
            return recmod.to_record(dict(zip(search.SELECT_NAMES, row)), base_url())
        except GeoMayotteError as err:
            raise to_provider_error(err) from err

    # -- implementation ----------------------------------------------------------
    def _build(self, offset, limit, datetime_, properties, sortby, q, filterq) -> search.RecordsQuery:
        ctx = current.get()
        _check_crs()
        if offset > 2 ** 62:
            raise InvalidQuery(f'offset {offset} is too large')
        rq = search.RecordsQuery(limit=limit, offset=offset)
        if q is not None:
            rq.q = search.plain_words(self.url, search.parse_q(q))
        raw_bbox = ctx.get('bbox') if ctx else None
        if raw_bbox is not None:
            try:
                values = [float(v) for v in raw_bbox.split(',')]
            except ValueError:
                raise InvalidQuery('bbox values must be numbers') from None
            rq.envelopes = crsmod.bbox_envelopes(values, ctx.get('bbox-crs') or crsmod.CRS84, 4326)
        if datetime_:
            rq.time_range = parse_datetime(str(datetime_), 'datetime')
        for name, value in properties:
            if name in RESERVED:
                continue
            if name in search.LIST_PARAMS:
                rq.lists[name] = search.split_list(name, value)
            elif name in search.QUERYABLES and search.QUERYABLES[name] == 'string':
                rq.equals.append((name, value))
            else:
                raise InvalidQuery(f'unknown query parameter {name!r}; records are searched with '
                                   f'q, bbox, datetime, {", ".join(search.LIST_PARAMS)}, filter or '
                                   f'one of {", ".join(k for k, v in search.QUERYABLES.items() if v == "string")}')
        if filterq is not None:
            filter_crs = ctx.get('filter-crs') if ctx else None
            rq.filter = Translator(search.view(self.url), filter_crs,
                                   bool(ctx and ctx.filter_json)).condition(filterq)
        for s in sortby or []:
            if s['property'] not in search.SORTABLE:
                raise InvalidQuery(f'sortby: records sort by {", ".join(search.SORTABLE)}, '
                                   f'not {s["property"]!r}')
            rq.order.append((s['property'], s['order'] == '-'))
        return rq

    def _query(self, offset, limit, resulttype, datetime_, properties, sortby, q, filterq,
               select_properties=(), skip_geometry=False):
        if resulttype not in ('results', 'hits'):
            raise InvalidQuery('resulttype must be results or hits')
        self._refresh()
        rq = self._build(offset, limit, datetime_, properties, sortby, q, filterq)
        with self._cursor() as cur:
            stmt, params = search.count_sql(rq)
            self._execute(cur, stmt, params)
            matched = cur.fetchone()[0]
            rows = []
            if resulttype == 'results':
                stmt, params = search.items_sql(rq)
                self._execute(cur, stmt, params)
                rows = cur.fetchall()
        base = base_url()
        features = [recmod.to_record(dict(zip(search.SELECT_NAMES, r)), base) for r in rows]
        for f in features:
            if skip_geometry:
                f['geometry'] = None
            if select_properties:
                f['properties'] = {k: v for k, v in f['properties'].items() if k in select_properties}
        more = resulttype == 'results' and offset + len(rows) < matched
        content = {'type': 'FeatureCollection', 'features': features,
                   'numberMatched': matched, 'numberReturned': len(features),
                   'links': self._links(rq, more)}
        ctx = current.get()
        if ctx is not None:    # geomayotte.pygeoapi_fixes keeps these paging links only
            ctx.last_page = not more
            ctx.links = list(content['links'])
        return content

    def _links(self, rq, more) -> list[dict]:
        ctx = current.get()
        if ctx is None:
            return []
        kept = [(k, v) for k, v in ctx.params if k != 'offset']
        if ctx.filter_body is not None:   # a CQL2 JSON search: links are GETs repeating it
            kept = [(k, v) for k, v in kept if k not in ('filter', 'filter-lang')] + [
                ('filter', ctx.filter_body), ('filter-lang', 'cql2-json')]
        mime = 'text/html' if ctx.get('f') == 'html' else 'application/geo+json'
        links = []
        if more:
            links.append({'rel': 'next', 'type': mime, 'title': 'Fiches suivantes',
                          'href': f'{ctx.url}?{urllib.parse.urlencode(kept + [("offset", str(rq.offset + rq.limit))])}'})
        if rq.offset > 0:
            prev = max(0, rq.offset - rq.limit)
            links.append({'rel': 'prev', 'type': mime, 'title': 'Fiches précédentes',
                          'href': f'{ctx.url}?{urllib.parse.urlencode(kept + [("offset", str(prev))])}'})
        return links

    # -- database -------------------------------------------------------------------
    def _refresh(self) -> None:
        try:
            sync.refresh_stale(self.url)
        except psycopg2.OperationalError as err:
            LOGGER.error('database unavailable: %s', err)
            raise UnavailableError('database unavailable') from err

    def _cursor(self):
        return _Cursor(self.url)      # the features provider's pooled autocommit reads

    _execute = staticmethod(PostGISFeatureProvider._execute)   # and its error mapping
