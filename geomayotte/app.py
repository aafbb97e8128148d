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
import os
import urllib.parse

from geomayotte import settings


def _defaults() -> None:
    """Environment pygeoapi reads at import time, with the project's defaults."""
    os.environ.setdefault('PYGEOAPI_CONFIG', str(settings.PROJECT_DIR / 'pygeoapi-config.yml'))
    os.environ.setdefault('PYGEOAPI_OPENAPI', str(settings.PROJECT_DIR / 'openapi' / 'openapi.yml'))
    os.environ.setdefault('DATABASE_URL', settings.database_url())
    os.environ.setdefault('GEOMAYOTTE_DATA_DIR', str(settings.data_dir()))
    os.environ.setdefault('GEOMAYOTTE_BASE_URL', 'http://127.0.0.1:5000')


_defaults()

import pygeoapi.api.itemtypes as itemtypes  # noqa: E402
import pygeoapi.crs as pcrs  # noqa: E402
import pygeoapi.provider.base as pbase  # noqa: E402
import pyproj  # noqa: E402

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


# -- paging links -------------------------------------------------------------------
_get_items = itemtypes.get_collection_items


def get_collection_items(api, request, dataset=None):
    headers, status, content = _get_items(api, request, dataset)
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
        environ, params = _cql2_json_to_body(environ, params)
        url = (f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}"
               f"{environ.get('SCRIPT_NAME', '')}{environ.get('PATH_INFO', '')}")
        base = os.environ.get('GEOMAYOTTE_BASE_URL', '').rstrip('/')
        if base:   # links follow the configured public URL, like pygeoapi's own
            url = base + environ.get('PATH_INFO', '')
        token = current.set(RequestInfo(url=url, params=params))

        def _start(status, headers, exc_info=None):
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
