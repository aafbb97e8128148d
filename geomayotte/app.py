"""The WSGI application: pygeoapi's Flask app behind our own thin layer.

``gunicorn geomayotte.app:application`` serves it. Around pygeoapi we add:

- the request context our provider reads (raw bbox, cursor, filter-crs);
- CORS for web maps (preflight included; ``Location`` and ``Content-Crs`` exposed);
- CQL2 JSON in a GET ``filter`` parameter (``filter-lang=cql2-json``), which
  pygeoapi would otherwise parse as CQL2 text;
- paging links that stop at the last page (pygeoapi adds a ``next`` link whenever
  a page is full, even when it is the last one);
- caches for CRS objects that pygeoapi rebuilds on every request.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import urllib.parse

from geomayotte import settings


def _defaults() -> None:
    """Environment pygeoapi reads at import time, with the project's defaults."""
    os.environ.setdefault('PYGEOAPI_CONFIG', str(settings.pygeoapi_config()))
    os.environ.setdefault('PYGEOAPI_OPENAPI', str(settings.PROJECT_DIR / 'openapi' / 'openapi.yml'))
    os.environ.setdefault('DATABASE_URL', settings.database_url())
    os.environ.setdefault('GEOMAYOTTE_DATA_DIR', str(settings.data_dir()))
    os.environ.setdefault('GEOMAYOTTE_BASE_URL', 'http://127.0.0.1:5000')


_defaults()

import pygeoapi.api.itemtypes as itemtypes  # noqa: E402
import pygeoapi.crs as pcrs  # noqa: E402
import pygeoapi.provider.base as pbase  # noqa: E402
import pyproj  # noqa: E402
from pygeoapi.provider.base import ProviderGenericError  # noqa: E402
from pyproj.exceptions import CRSError  # noqa: E402

from geomayotte.request_context import RequestInfo, current  # noqa: E402


# -- caches for pygeoapi's per-request CRS work --------------------------------------
_get_crs = pcrs.get_crs


@functools.lru_cache(maxsize=128)
def _cached_get_crs(uri: str):
    return _get_crs(uri)


def get_crs(crs):
    return crs if isinstance(crs, pyproj.CRS) else _cached_get_crs(str(crs))


_spec = pcrs.create_crs_transform_spec


@functools.lru_cache(maxsize=256)
def _cached_spec(storage, crs_list, always_xy, uri):
    return _spec({'storage_crs': storage, 'crs': list(crs_list), 'always_xy': always_xy}
                 if storage else {'crs': list(crs_list), 'always_xy': always_xy}, uri)


def create_crs_transform_spec(provider_def, query_crs_uri=None):
    return _cached_spec(provider_def.get('storage_crs'), tuple(provider_def.get('crs') or ()),
                        provider_def.get('always_xy', False), query_crs_uri)


@functools.lru_cache(maxsize=128)
def _transformer(src, dst):
    return pyproj.Transformer.from_crs(get_crs(src), get_crs(dst))


def transform_bbox(bbox, from_crs, to_crs, always_xy=False):
    if current.get() is not None and not always_xy:
        # our provider re-reads the raw bbox from the request: skip the work
        return list(bbox)
    return _orig_transform_bbox(bbox, from_crs, to_crs, always_xy)


_orig_transform_bbox = pcrs.transform_bbox
pcrs.get_crs = pbase.get_crs = get_crs
pcrs.create_crs_transform_spec = itemtypes.create_crs_transform_spec = create_crs_transform_spec
itemtypes.transform_bbox = transform_bbox


# -- datetime: our provider parses and checks it (with messages that name the problem);
# a datetime outside the collection's temporal extent is an empty result, not an error.
def validate_datetime(resource_def, datetime_=None):
    return datetime_


itemtypes.validate_datetime = validate_datetime


# -- logs: a client error is not a server error -------------------------------------------
class _ClientErrorFilter(logging.Filter):
    """pygeoapi logs every handled exception with its traceback at ERROR level; for
    the 4xx our provider raises on purpose, keep the message, drop the traceback."""

    def filter(self, record):
        exc = record.exc_info[1] if record.exc_info else None
        client = (isinstance(exc, ProviderGenericError) and int(exc.http_status_code) < 500) or \
            (isinstance(exc, (ValueError, CRSError)) and record.funcName == 'get_exception')
        if client:
            record.exc_info = None
            record.levelno, record.levelname = logging.INFO, 'INFO'
        return True


logging.getLogger('pygeoapi.api').addFilter(_ClientErrorFilter())


# -- conformance: what our provider really implements ------------------------------------
_CQL2 = 'http://www.opengis.net/spec/cql2/1.0/conf/'
_FEATURES3 = 'http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/'
itemtypes.CONFORMANCE_CLASSES_FEATURES[:] = [
    c for c in itemtypes.CONFORMANCE_CLASSES_FEATURES
    if 'ogcapi-features-4' not in c      # no write support (yet): do not claim it
] + [_FEATURES3 + 'filter', _FEATURES3 + 'features-filter'] + [_CQL2 + c for c in (
    'cql2-json', 'advanced-comparison-operators', 'case-insensitive-comparison',
    'accent-insensitive-comparison', 'basic-spatial-functions',
    'basic-spatial-functions-plus', 'spatial-functions', 'temporal-functions',
    'arithmetic', 'property-property')]


# -- paging links -------------------------------------------------------------------
_get_items = itemtypes.get_collection_items
_get_item = itemtypes.get_collection_item


def _geojson_type(headers, status):
    """GeoJSON answers are application/geo+json (pygeoapi says application/json)."""
    if status == 200 and headers.get('Content-Type', '').startswith('application/json'):
        headers['Content-Type'] = 'application/geo+json'


def get_collection_item(api, request, dataset, identifier):
    headers, status, content = _get_item(api, request, dataset, identifier)
    _geojson_type(headers, status)
    return headers, status, content


def get_collection_items(api, request, dataset=None):
    headers, status, content = _get_items(api, request, dataset)
    _geojson_type(headers, status)
    ctx = current.get()
    if ctx is None or ctx.last_page is None or status != 200:
        return headers, status, content
    if not ctx.last_page or not isinstance(content, str) or not content.startswith('{'):
        return headers, status, content
    # Last page: pygeoapi may have added a `next` (page full) and a `prev` carrying
    # our cursor. Keep only the provider's paging links.
    doc = json.loads(content)
    doc['links'] = [lk for lk in doc.get('links', []) if lk.get('rel') not in ('next', 'prev')]
    doc['links'] += ctx.links
    return headers, status, json.dumps(doc, ensure_ascii=False, default=str)


itemtypes.get_collection_items = get_collection_items
itemtypes.get_collection_item = get_collection_item


# -- WSGI middleware ---------------------------------------------------------------------
CORS_HEADERS = [
    ('Access-Control-Allow-Origin', '*'),
    ('Access-Control-Expose-Headers', 'Location, Content-Crs, Content-Language, Link, ETag'),
]


def _cql2_json_to_body(environ, params):
    """``filter-lang=cql2-json&filter=...`` on GET: hand pygeoapi the JSON as a body."""
    filt = dict(params).get('filter')
    lang = dict(params).get('filter-lang')
    if lang != 'cql2-json' or filt is None or environ.get('REQUEST_METHOD') != 'GET':
        return environ, params
    import io
    body = filt.encode()
    rest = [(k, v) for k, v in params if k not in ('filter', 'filter-lang')]
    environ = dict(environ, REQUEST_METHOD='POST', CONTENT_TYPE='application/query-cql-json',
                   CONTENT_LENGTH=str(len(body)), QUERY_STRING=urllib.parse.urlencode(rest))
    environ['wsgi.input'] = io.BytesIO(body)
    return environ, params


def _exception(status: str, code: str, description: str, start_response):
    body = json.dumps({'code': code, 'type': code, 'description': description},
                      ensure_ascii=False).encode()
    start_response(status, CORS_HEADERS + [('Content-Type', 'application/json'),
                                           ('Content-Length', str(len(body)))])
    return [body]


def check_filter(params) -> str | None:
    """Parse ``filter`` as pygeoapi will; the parser's own words when it fails."""
    from pygeofilter.parsers.cql2_json import parse as parse_json
    from pygeofilter.parsers.cql2_text import parse as parse_text
    from geomayotte import crs as crsmod
    from geomayotte.errors import InvalidQuery
    values = dict(params)
    crs_uri = values.get('filter-crs')
    if crs_uri is not None:
        try:
            crsmod.crs(crs_uri)
        except InvalidQuery:
            return f'filter-crs: unknown CRS {crs_uri!r}'
    text = values.get('filter')
    if text is None:
        return None
    lang = values.get('filter-lang') or 'cql2-text'
    if lang not in ('cql2-text', 'cql2-json', 'cql-text', 'cql-json'):
        return f'filter-lang: {lang!r} is not cql2-text or cql2-json'
    try:
        if lang.endswith('json'):
            try:
                parse_json(json.loads(text))
            except ValueError as err:
                return f'filter: not valid JSON ({err})'
        else:
            node = parse_text(text)
            from pygeofilter import ast
            if not isinstance(node, (ast.Predicate, ast.Condition, bool)):
                return f'filter: {text!r} is an expression, not a condition'
    except Exception as err:  # lark and pygeofilter raise many types
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return f'filter: invalid CQL2 ({lang}): {first}'
    return None


class Middleware:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        if environ.get('REQUEST_METHOD') == 'OPTIONS' and environ.get(
                'HTTP_ACCESS_CONTROL_REQUEST_METHOD'):
            start_response('204 No Content', CORS_HEADERS + [
                ('Access-Control-Allow-Methods', 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS'),
                ('Access-Control-Allow-Headers', environ.get(
                    'HTTP_ACCESS_CONTROL_REQUEST_HEADERS', 'Content-Type, Authorization, Prefer')),
                ('Access-Control-Max-Age', '86400'), ('Content-Length', '0')])
            return [b'']
        params = urllib.parse.parse_qsl(environ.get('QUERY_STRING', ''), keep_blank_values=True)
        if environ.get('PATH_INFO', '').rstrip('/').endswith('/items') and \
                any(k in ('filter', 'filter-crs', 'filter-lang') for k, _ in params):
            problem = check_filter(params)
            if problem:
                return _exception('400 Bad Request', 'InvalidParameterValue', problem,
                                  start_response)
        environ, params = _cql2_json_to_body(environ, params)
        url = (f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}"
               f"{environ.get('SCRIPT_NAME', '')}{environ.get('PATH_INFO', '')}")
        base = os.environ.get('GEOMAYOTTE_BASE_URL', '').rstrip('/')
        if base:   # links follow the configured public URL, like pygeoapi's own
            url = base + environ.get('PATH_INFO', '')
        token = current.set(RequestInfo(url=url, params=params))

        def _start(status, headers, exc_info=None):
            # text without a charset is read as ISO-8859-1 by HTTP clients: say UTF-8
            headers = [(k, f'{v}; charset=utf-8') if k.lower() == 'content-type' and
                       v.startswith('text/') and 'charset' not in v else (k, v)
                       for k, v in headers]
            names = {h[0].lower() for h in headers}
            extra = [h for h in CORS_HEADERS if h[0].lower() not in names]
            return start_response(status, headers + extra, exc_info)

        try:
            result = self.app(environ, _start)
            return result
        finally:
            current.reset(token)


def create_app():
    from pygeoapi.flask_app import APP
    APP.wsgi_app = Middleware(APP.wsgi_app)
    return APP


application = create_app()
