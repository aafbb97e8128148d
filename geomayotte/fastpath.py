"""The single-feature GeoJSON answer, made without Flask and pygeoapi's request layer.

``GET /collections/{id}/items/{featureId}`` in GeoJSON is what web maps ask most, one
feature per click; through Flask and pygeoapi it cost several times the SQL query.
Here the answer is the one SQL query's text (PostGIS writes the feature) with
pygeoapi's links and headers added, built with pygeoapi's own pieces (``APIRequest``
for format and language, its header, CRS and translation functions), so the answer
is the same document ``tests/test_fastpath.py`` compares against pygeoapi's.

A ``HEAD`` gets the same headers without the body; an ``If-None-Match`` naming the
feature's ETag (the row's version, the one writes' ``If-Match`` checks) gets 304.

Anything else (HTML, JSON-LD, unknown parameters, a CRS the collection does not
offer, an item that does not exist, any error) is left to pygeoapi, which answers it
as before.
"""
from __future__ import annotations

import json
import logging
import re
import threading

from pygeoapi import l10n
from pygeoapi.api import APIRequest, itemtypes
from pygeoapi.formats import F_HTML, F_JSON, F_JSONLD, FORMAT_TYPES
from pygeoapi.plugin import load_plugin
from pygeoapi.provider import ProviderTypeError, get_provider_by_type
from pyproj.exceptions import CRSError
from werkzeug.wrappers import Request

from geomayotte import etags
from geomayotte.errors import GeoMayotteError, UnavailableError
from geomayotte.pygeoapi_fixes import escape_angles
from geomayotte.request_context import RequestInfo

LOGGER = logging.getLogger(__name__)

ITEM = re.compile(r'^/collections/([^/]+)/items/([^/]+)$')
PARAMS = frozenset({'f', 'crs', 'lang'})
PROVIDER = 'geomayotte.providers.features.PostGISFeatureProvider'

_lock = threading.Lock()
_providers: dict[str, object] = {}


def _provider(api, dataset: str):
    """Our provider of the collection, built once per process (it keeps no request state);
    None when the collection is not ours."""
    prov = _providers.get(dataset)
    if prov is not None or dataset in _providers:
        return prov
    resource = api.config['resources'].get(dataset) or {}
    prov = None
    if resource.get('type') == 'collection':
        try:
            pdef = get_provider_by_type(resource.get('providers', []), 'feature')
        except ProviderTypeError:   # no feature provider (a coverage, a records catalogue)
            pdef = None
        if pdef is not None and pdef.get('name') == PROVIDER:
            prov = (load_plugin('provider', pdef), pdef)
    with _lock:
        _providers[dataset] = prov
    return prov


def item(environ, info: RequestInfo, start_response):
    """The answer, or None to let pygeoapi answer."""
    if environ.get('REQUEST_METHOD') not in ('GET', 'HEAD') or not info.raw_json:
        return None
    try:   # WSGI hands the path as latin-1 characters of the UTF-8 bytes
        path = environ.get('PATH_INFO', '').encode('latin-1').decode('utf-8')
    except UnicodeError:
        return None
    match = ITEM.match(path)
    if match is None or not PARAMS.issuperset(k for k, _ in info.params):
        return None
    try:
        return _item(environ, info, match.group(1), match.group(2), start_response)
    except UnavailableError as err:   # answered here: pygeoapi would wait for the pool again
        body = json.dumps({'code': 'ServiceUnavailable', 'type': 'ServiceUnavailable',
                           'description': str(err)}).encode()
        start_response('503 Service Unavailable', [('Content-Type', 'application/json'),
                                                   ('Content-Length', str(len(body))),
                                                   ('Retry-After', '5')])
        return [body]
    except (GeoMayotteError, ValueError, CRSError) as err:   # pygeoapi answers: 404, 400
        LOGGER.debug('fast path declined: %s', err)
        return None


def _item(environ, info, dataset, identifier, start_response):
    from pygeoapi.flask_app import api_ as api   # built from the configuration at import

    found = _provider(api, dataset)
    if found is None:
        return None
    prov, pdef = found
    request = APIRequest(Request(environ), api.locales)
    if request.format not in (None, F_JSON):
        return None
    query_crs = request.params.get('crs')
    spec = itemtypes.create_crs_transform_spec(pdef, query_crs)   # raises: pygeoapi's 400
    text, etag = prov.get_text(identifier, spec)                  # raises NotFound: pygeoapi's 404
    headers = request.get_response_headers(**api.api_headers)
    headers['Content-Type'] = 'application/geo+json'
    itemtypes.set_content_crs_header(headers, pdef, query_crs)
    l10n.set_response_language(headers, l10n.get_plugin_locale(pdef, request.raw_locale),
                               request.locale)
    loc = request.locale
    collections = api.get_collections_url()
    uri = f'{collections}/{dataset}/items/{identifier}'
    links = [
        {'type': FORMAT_TYPES[F_JSON], 'rel': 'root', 'href': f'{api.base_url}?f={F_JSON}',
         'title': l10n.translate('The landing page of this server as JSON', loc)},
        {'type': FORMAT_TYPES[F_HTML], 'rel': 'root', 'href': f'{api.base_url}?f={F_HTML}',
         'title': l10n.translate('The landing page of this server as HTML', loc)},
        {'rel': request.get_linkrel(F_JSON), 'type': 'application/geo+json',
         'title': l10n.translate('This document as JSON', loc), 'href': f'{uri}?f={F_JSON}'},
        {'rel': request.get_linkrel(F_JSONLD), 'type': FORMAT_TYPES[F_JSONLD],
         'title': l10n.translate('This document as RDF (JSON-LD)', loc), 'href': f'{uri}?f={F_JSONLD}'},
        {'rel': request.get_linkrel(F_HTML), 'type': FORMAT_TYPES[F_HTML],
         'title': l10n.translate('This document as HTML', loc), 'href': f'{uri}?f={F_HTML}'},
        {'rel': 'collection', 'type': FORMAT_TYPES[F_JSON], 'href': f'{collections}/{dataset}',
         'title': l10n.translate(api.config['resources'][dataset]['title'], loc)},
    ]
    # the feature object PostGIS wrote ends with its closing brace: the links go before it
    body = (text[:-1] + ',"links":' + json.dumps(links, separators=(',', ':')) + '}')
    body = escape_angles(body).encode()
    headers['Content-Length'] = str(len(body))
    headers['ETag'] = etag     # the version writes' If-Match checks (geomayotte.writes)
    if etags.none_match(environ.get('HTTP_IF_NONE_MATCH'), etag):
        # RFC 9110 15.4.5: the headers a 200 would carry that describe the representation
        start_response('304 Not Modified', [(k, v) for k, v in headers.items()
                                            if k.lower() in ('etag', 'vary', 'content-location',
                                                             'cache-control', 'expires')])
        return []
    start_response('200 OK', list(headers.items()))
    return [] if environ['REQUEST_METHOD'] == 'HEAD' else [body]

