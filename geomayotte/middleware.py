"""The WSGI layer in front of pygeoapi: request checks, CORS, the request context.

Everything here answers before pygeoapi sees a request it would mishandle:
NUL characters, repeated parameters, oversized bodies, write methods on
read-only collections, unsupported media types, filters pygeoapi would reduce to
"Bad CQL text" (the parser's own message is given instead).
"""
from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import socket
import urllib.parse

from werkzeug.exceptions import RequestTimeout

from geomayotte import bodies, fastpath, gunicorn_worker, settings, streaming
from geomayotte.access import http as access
from geomayotte.headers import CORS_HEADERS, VARY
from geomayotte.writes import http as writes
from geomayotte.writes.apply import WriteError
from geomayotte.request_context import RequestInfo, current

MAX_SYNC_BODY = settings.max_sync_body()
MAX_PROCESS_BODY = settings.max_process_body()
PROVIDED = re.compile(r'^/collections/([^/]+)/(tiles|map|coverage)(?:/.*)?$')
# seconds a send or a receive on a client's socket may block (a reader that never reads
# froze the server's threads for as long as it kept its sockets open)
SOCKET_TIMEOUT = settings.socket_timeout()
MAX_FILTER_DEPTH = 100     # pygeoapi deep-copies the filter tree recursively
# positions in a filter's geometry literals, all together: PostGIS spends seconds on a
# 60,000-vertex polygon against every commune (a breaking session's denial of service)
MAX_FILTER_VERTICES = settings.max_filter_vertices()
MAX_BODY = settings.max_body()
MAX_WRITE_BODY = settings.max_write_body()
ITEMS = re.compile(r'^/collections/[^/]+/items/?$')
ITEM = re.compile(r'^/collections/[^/]+/items/[^/]+$')
EXECUTION = re.compile(r'^/processes/[^/]+/execution$')
# what pygeoapi 0.24 reads of a coverage request
COVERAGE_PARAMS = frozenset({'f', 'lang', 'bbox', 'bbox-crs', 'datetime', 'properties', 'subset'})
SEARCH_TYPES = ('application/query-cql-json', 'application/cql2+json', 'application/json')
READ_METHODS = 'GET, HEAD, POST, OPTIONS'
PREFLIGHT_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS'
_RFC3339 = re.compile(r'^\d{4}-\d{2}-\d{2}([Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2}))?$')
_DATE = re.compile(r'^\d{4}-\d{2}-\d{2}$')


class BadRequest(Exception):
    def __init__(self, message, status='400 Bad Request', code='InvalidParameterValue',
                 headers=()):
        super().__init__(message)
        self.status, self.code, self.headers = status, code, list(headers)


# -- checks --------------------------------------------------------------------------------
JSON_TYPES = ('application/json', 'application/geo+json', '*/*')


def json_only(accept: str) -> bool:
    """Whether an Accept header (q=0 entries already dropped) can only mean (Geo)JSON: any
    other type listed (CSV, HTML, JSON-LD ...) and pygeoapi may choose it."""
    types = [part.split(';')[0].strip().lower() for part in accept.split(',') if part.strip()]
    return all(t in JSON_TYPES for t in types)


def clean_choice_header(environ, name: str) -> None:
    """Accept / Accept-Language: an entry with q=0 means "not acceptable" and is dropped
    (pygeoapi divides by q); a q that is not a number from 0 to 1 is a 400; the rest is
    rewritten in order of preference (highest q first, then as listed)."""
    key = 'HTTP_' + name.upper().replace('-', '_')
    value = environ.get(key)
    if value is None:
        return
    kept = []
    for part in value.split(','):
        fields = [f.strip() for f in part.split(';')]
        q = 1.0
        for f in fields[1:]:
            k, _, v = f.partition('=')
            if k.strip().lower() == 'q':
                try:
                    q = float(v)
                except ValueError:
                    q = -1.0
                if not 0 <= q <= 1 or not re.fullmatch(r'\s*(0(\.\d{0,3})?|1(\.0{0,3})?)\s*', v):
                    raise BadRequest(f'{name}: {part.strip()!r} has a q value that is not a number '
                                     'from 0 to 1 (RFC 9110)')
        if q > 0 and fields[0]:
            media = fields[0].lower() if name == 'Accept' else fields[0]
            kept.append((-q, len(kept), 'application/json' if media == 'application/geo+json' else media))
    # most wanted first, q dropped: pygeoapi takes the first type it knows, in the order
    # of a heap that is not sorted beyond its first entry, and knows GeoJSON as JSON
    ordered = list(dict.fromkeys(m for *_, m in sorted(kept)))
    if name == 'Accept' and '*/*' in ordered:
        # what comes after "anything" is wanted less than the server's default; pygeoapi
        # skips */* and took the next type (`text/html;q=0.01, */*` got HTML)
        ordered = ordered[:ordered.index('*/*')]
    if ordered:
        environ[key] = ', '.join(ordered)
    else:
        del environ[key]


def check_params(params: list[tuple[str, str]], path: str) -> None:
    if '\x00' in path:
        raise BadRequest('NUL character in the path', '404 Not Found', 'NotFound')
    seen = set()
    for k, v in params:
        if '\x00' in k or '\x00' in v:
            raise BadRequest(f'parameter {k!r}: NUL characters are not allowed')
        if k in seen:
            raise BadRequest(f'parameter {k!r} is given more than once')
        seen.add(k)
    values = dict(params)
    if 'skipGeometry' in values and values['skipGeometry'].lower() not in ('true', 'false'):
        raise BadRequest('skipGeometry must be true or false')
    if 'resulttype' in values and values['resulttype'] not in ('results', 'hits'):
        raise BadRequest('resulttype must be results or hits')


def check_filter(params: dict, body: str | None) -> None:
    """Parse the CQL2 filter (query or body) as pygeoapi will; 400 with the reason."""
    from geomayotte.pygeoapi_fixes import get_crs   # cached, the one pygeoapi uses
    crs_uri = params.get('filter-crs')
    if crs_uri is not None:
        try:
            get_crs(crs_uri)
        except Exception:
            raise BadRequest(f'filter-crs: unknown CRS {crs_uri!r} (give a URI such as '
                             'http://www.opengis.net/def/crs/EPSG/0/4326)') from None
    lang = params.get('filter-lang')
    if lang not in (None, 'cql2-text', 'cql2-json', 'cql-text', 'cql-json'):
        raise BadRequest(f'filter-lang: {lang!r} is not cql2-text or cql2-json')
    text = params.get('filter')
    if text is None and body is None:
        return
    if text is not None and (lang or 'cql2-text').endswith('text'):
        _parse_text(text)
    else:
        _parse_json(text if text is not None else body)


def _first_line(err: Exception) -> str:
    msg = str(err).strip()
    return msg.splitlines()[0] if msg else type(err).__name__


_TEXT_TEMPORAL = re.compile(r"\b(TIMESTAMP|DATE)\s*\(\s*'([^']*)'\s*\)|\bINTERVAL\s*\(\s*'([^']*)'\s*,\s*'([^']*)'\s*\)",
                            re.IGNORECASE)


def _check_text_temporals(text: str) -> None:
    """pygeofilter reads TIMESTAMP('2019-13-01…') fuzzily (as 2019-01-13): insist on RFC 3339."""
    for m in _TEXT_TEMPORAL.finditer(text):
        if m.group(1):
            _rfc3339(m.group(2), m.group(1).upper(), date_only=m.group(1).upper() == 'DATE')
        else:
            _interval([m.group(3), m.group(4)])


def _parse_text(text: str):
    from pygeofilter import ast
    from geomayotte.pygeoapi_fixes import parse_cql2_text as parse   # cached, shared with pygeoapi
    _check_text_temporals(text)
    try:
        node = parse(text)
    except Exception as err:  # lark raises many types
        raise BadRequest(f'filter: invalid CQL2 text: {_first_line(err)}') from None
    if not isinstance(node, (ast.Predicate, ast.Condition, bool)):
        raise BadRequest(f'filter: {text!r} is an expression, not a condition')
    _check_literals(node)
    return node


def _parse_json(text: str):
    from geomayotte.pygeoapi_fixes import parse_cql2_json as parse   # cached, shared with pygeoapi
    try:
        doc = json.loads(text)
    except RecursionError:
        raise BadRequest('filter: nested too deeply') from None
    except ValueError as err:
        raise BadRequest(f'filter: not valid JSON ({err})') from None
    _walk_json(doc, 500, 'filter', _check_json_node)
    try:
        node = parse(text)
    except RecursionError:
        raise BadRequest('filter: nested too deeply') from None
    except Exception as err:
        raise BadRequest(f'filter: CQL2 JSON not understood: {_first_line(err)} '
                         '(supported: comparison, like, in, between, isNull, not/and/or, '
                         's_* and t_* operators, casei, accenti)') from None
    _check_literals(node)
    return node


def _walk_json(doc, max_depth: int, where: str, on_object=None) -> None:
    """``bodies.check_json``, its refusal a 400 naming ``where``."""
    try:
        bodies.check_json(doc, max_depth, on_object)
    except bodies.Unfit as err:
        raise BadRequest(f'{where}: {err}') from None


def _check_json_node(node: dict) -> None:
    """What pygeofilter reads wrongly or chokes on in a CQL2 JSON object."""
    _check_temporal_literals(node)
    if node.get('op') in ('in', 'not in') and 'args' in node:
        args = node['args']
        if not (isinstance(args, list) and len(args) == 2 and isinstance(args[1], list)):
            raise BadRequest('filter: "in" takes two arguments, the second a list of values '
                             '({"op": "in", "args": [{"property": "p"}, [1, 2]]})')


def _check_temporal_literals(node: dict) -> None:
    """pygeofilter reads {"timestamp": "last year"} fuzzily: insist on RFC 3339."""
    for key in ('timestamp', 'date'):
        if key in node:
            _rfc3339(node[key], key, date_only=key == 'date')
    if 'interval' in node:
        _interval(node['interval'])


def _interval(value) -> None:
    if not isinstance(value, list) or len(value) != 2:
        raise BadRequest('filter: an interval is a list of two instants ("..": open)')
    ends = []
    for end in value:
        if end == '..':
            ends.append(None)
            continue
        ends.append(_rfc3339(end, 'interval'))
    if ends[0] is not None and ends[1] is not None and ends[0] > ends[1]:
        raise BadRequest('filter: an interval must not end before it starts')


def _rfc3339(value, what, date_only: bool = False):
    pattern = _DATE if date_only else _RFC3339
    if not isinstance(value, str) or not pattern.match(value):
        raise BadRequest(f'filter: {what} {value!r} is not an RFC 3339 '
                         f'{"date" if date_only else "date or timestamp"}')
    try:
        if len(value) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(value), dt.time(0), dt.timezone.utc)
        return dt.datetime.fromisoformat(value.replace('Z', '+00:00').replace('z', '+00:00'))
    except ValueError as err:
        raise BadRequest(f'filter: {what} {value!r} is not a valid RFC 3339 date or time ({err})') from None


def _check_literals(root) -> None:
    """Geometry literals must be geometries (closed rings, enough points, numbers)."""
    from pygeofilter import values
    stack = [(root, 0)]
    vertices, seen = [0], set()
    while stack:
        node, depth = stack.pop()
        if depth > MAX_FILTER_DEPTH:
            raise BadRequest(f'filter: nested too deeply or too many combined conditions '
                             f'({MAX_FILTER_DEPTH} levels at most; use IN for lists of values)')
        if isinstance(node, values.Geometry):
            if id(node) not in seen:
                seen.add(id(node))
                _check_geometry(node.geometry, vertices)
            continue
        subs = node.get_sub_nodes() if hasattr(node, 'get_sub_nodes') else []
        stack.extend((sub, depth + 1) for sub in subs or [])
        rhs = getattr(node, 'rhs', None)     # spatial/temporal predicates keep literals there
        if isinstance(rhs, values.Geometry):
            stack.append((rhs, depth + 1))


def _check_geometry(geojson: dict, vertices: list[int]) -> None:
    crs = geojson.get('crs')
    if crs is not None and not (isinstance(crs, dict) and isinstance(crs.get('properties'), dict)
                                and isinstance(crs['properties'].get('name'), str)):
        raise BadRequest('filter: a geometry literal\'s "crs" member is not understood; '
                         'give the CRS of the filter with filter-crs')
    if isinstance(crs, dict):
        from geomayotte.pygeoapi_fixes import get_crs
        try:
            get_crs(crs['properties']['name'])
        except Exception:
            raise BadRequest(f'filter: unknown CRS {crs["properties"]["name"]!r} in a geometry literal') from None
    import math
    import shapely
    from shapely.geometry import shape
    try:
        geom = shape({k: v for k, v in geojson.items() if k != 'crs'})
    except Exception as err:
        raise BadRequest(f'filter: invalid geometry literal: {_first_line(err)}') from None
    coords = shapely.get_coordinates(geom)
    vertices[0] += len(coords)
    if vertices[0] > MAX_FILTER_VERTICES:
        raise BadRequest(f'filter: the geometry literals have more than {MAX_FILTER_VERTICES} '
                         'positions (GEOMAYOTTE_MAX_FILTER_VERTICES): simplify them')
    if geom.is_empty or not all(math.isfinite(c) for c in coords.ravel()):
        raise BadRequest('filter: a geometry literal is empty or has non-finite coordinates')
    for ring in _raw_rings(geojson):
        if len(ring) < 4 or list(ring[0]) != list(ring[-1]):
            raise BadRequest('filter: a polygon ring must be closed and have 4 positions or more')


def _raw_rings(geojson: dict):
    """Rings as sent (shapely closes open rings silently)."""
    kind, coords = geojson.get('type'), geojson.get('coordinates') or []
    polygons = [coords] if kind == 'Polygon' else coords if kind == 'MultiPolygon' else []
    for poly in polygons:
        yield from poly


# -- the middleware ------------------------------------------------------------------------
def _exception(err: BadRequest | access.Denied, start_response):
    body = json.dumps({'code': err.code, 'type': err.code, 'description': str(err)},
                      ensure_ascii=False).encode()
    start_response(err.status, CORS_HEADERS + err.headers + [
        ('Content-Type', 'application/json'), ('Content-Length', str(len(body))),
        ('Vary', ', '.join(VARY))])
    return [body]


def _check_execute_body(environ, limit: int) -> None:
    """An OGC API Processes execute request: a strict-JSON object with an "inputs" object."""
    try:
        length = int(environ.get('CONTENT_LENGTH') or -1)
    except ValueError:
        raise BadRequest('Content-Length is not a number') from None
    raw = environ['wsgi.input'].read(length if length >= 0 else limit + 1)
    if len(raw) > limit:
        raise BadRequest(f'request body larger than {limit} bytes', '413 Content Too Large',
                         'PayloadTooLarge')
    environ['wsgi.input'] = io.BytesIO(raw)
    environ['CONTENT_LENGTH'] = str(len(raw))

    def no_constants(name):
        raise ValueError(f'{name} is not JSON')
    try:
        doc = json.loads(raw, parse_constant=no_constants)
    except RecursionError:
        raise BadRequest('request body: nested too deeply') from None
    except (ValueError, UnicodeDecodeError) as err:
        raise BadRequest(f'request body: not valid JSON ({err})') from None
    if not isinstance(doc, dict) or not isinstance(doc.get('inputs', {}), dict):
        raise BadRequest('request body: an object with "inputs" (an object) expected')
    for key in ('outputs', 'subscriber'):
        if key in doc and not isinstance(doc[key], dict):
            raise BadRequest(f'request body: "{key}" must be an object')
    if doc.get('response', 'raw') not in ('raw', 'document'):
        raise BadRequest('request body: "response" is raw or document')
    _walk_json(doc, 64, 'request body')


def _read_body(environ) -> str | None:
    try:
        length = int(environ.get('CONTENT_LENGTH') or -1)
    except ValueError:
        raise BadRequest('Content-Length is not a number') from None
    too_large = BadRequest(
        f'request body larger than {MAX_BODY} bytes, the limit of a CQL2 JSON search '
        f'(GEOMAYOTTE_MAX_BODY; features to create may have {MAX_WRITE_BODY} bytes, '
        'GEOMAYOTTE_MAX_WRITE_BODY)', '413 Content Too Large', 'PayloadTooLarge')
    if length > MAX_BODY:
        bodies.drain(environ, length, cap=8 * MAX_BODY)
        raise too_large
    if length < 0:     # chunked: read up to the limit
        raw = environ['wsgi.input'].read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            raise too_large
    else:
        raw = environ['wsgi.input'].read(length) if length else b''
    environ['wsgi.input'] = io.BytesIO(raw)
    try:
        return raw.decode('utf-8')
    except UnicodeDecodeError:
        raise BadRequest('request body is not UTF-8') from None


def model_document(path: str, base: str):
    """GET /model and /model/feature-types/{name}/schema: the reference model, published."""
    from geomayotte.validation import model as modelmod
    m = modelmod.load()
    if path == '/model':
        return {
            'name': m.name, 'version': m.version, 'title': m.title,
            'crs': {'storage': m.storage_crs, 'accepted': list(m.accepted_crs)},
            'codeLists': {k: {'title': v['title'], 'values': list(v['values'])}
                          for k, v in m.code_lists.items()},
            'references': m.references,
            'featureTypes': [{'name': ft.name, 'title': ft.title, 'geometry': list(ft.geometry),
                              'identifier': ft.identifier, 'thresholds': ft.thresholds,
                              'links': [{'rel': 'describedby', 'type': 'application/schema+json',
                                         'href': f'{base}/model/feature-types/{ft.name}/schema'}]}
                             for ft in m.feature_types.values()],
            'links': [{'rel': 'process', 'type': 'application/json',
                       'href': f'{base}/processes/validate-reference-model'}],
        }
    match = re.fullmatch(r'/model/feature-types/([^/]+)/schema', path)
    if match and match.group(1) in m.feature_types:
        return modelmod.json_schema(m, m.feature_types[match.group(1)])
    return None


def _json(status: str, doc: dict, start_response, content_type='application/json'):
    body = json.dumps(doc, ensure_ascii=False).encode()
    start_response(status, CORS_HEADERS + [('Content-Type', content_type),
                                           ('Content-Length', str(len(body)))])
    return [body]


def start_response_with_cors(start_response, info: RequestInfo | None = None):
    def _start(status, headers, exc_info=None):
        if info is not None and info.stream is not None and status.startswith('200'):
            headers = [h for h in headers if h[0].lower() != 'content-length']   # streamed
        if status[:1] in ('4', '5'):
            # pygeoapi's errors are JSON (or an HTML page) but keep the Content-Type of the
            # format asked (f=png: image/png)
            headers = [(k, 'application/json') if k.lower() == 'content-type' and not (
                v.startswith('text/html') or 'json' in v) else (k, v) for k, v in headers]
        # text without a charset is read as ISO-8859-1 by HTTP clients: say UTF-8
        headers = [(k, f'{v}; charset=utf-8') if k.lower() == 'content-type' and
                   v.startswith('text/') and 'charset' not in v else (k, v)
                   for k, v in headers]
        # answers depend on who asks (geomayotte.access) and on the negotiated format and
        # language: shared caches must key on all three
        vary = [v.strip() for k, v in headers if k.lower() == 'vary' for v in v.split(',')]
        headers = [h for h in headers if h[0].lower() != 'vary'] + [
            ('Vary', ', '.join(dict.fromkeys([*vary, *VARY])))]
        names = {h[0].lower() for h in headers}
        return start_response(status, headers + [h for h in CORS_HEADERS
                                                 if h[0].lower() not in names], exc_info)
    return _start


class _TimedInput:
    """The request body, a socket timeout while reading it a 408 (werkzeug's RequestTimeout,
    which Flask answers too) instead of an exception pygeoapi would make a 500."""

    def __init__(self, stream):
        self._stream = stream

    def _guard(self, fn, *args):
        try:
            return fn(*args)
        except (TimeoutError, socket.timeout):
            raise RequestTimeout(f'the request body did not arrive within {SOCKET_TIMEOUT:g} s '
                                 '(GEOMAYOTTE_SOCKET_TIMEOUT)') from None

    def read(self, *args):
        return self._guard(self._stream.read, *args)

    def readline(self, *args):
        return self._guard(self._stream.readline, *args)

    def readlines(self, *args):
        return self._guard(self._stream.readlines, *args)

    def __iter__(self):
        return iter(self.readline, b'')


# formats pygeoapi knows for maps, tiles and coverages: asked of anything else, it sent
# JSON labelled image/png (a breaking session's finding)
IMAGE_FORMATS = frozenset({'png', 'jpeg', 'jpg', 'mvt', 'netcdf', 'gtiff', 'tif', 'tiff', 'zarr'})


def _no_images(environ, params, path: str) -> None:
    """Outside maps, tiles and coverages: an image format in ``f`` is a 400, image types in
    Accept are dropped (the default, JSON, is what the client then gets)."""
    f = dict(params).get('f')
    if f is not None and f.lower() in IMAGE_FORMATS:
        asked = environ.get('geomayotte.asked_path', path)
        raise BadRequest(f'f: {f!r} is not a format of {asked} (json, html; items also csv, jsonld)')
    accept = environ.get('HTTP_ACCEPT')
    if accept and 'image/' in accept.lower():
        kept = [part for part in accept.split(',') if not part.strip().lower().startswith('image/')]
        if kept:
            environ['HTTP_ACCEPT'] = ','.join(kept)
        else:
            del environ['HTTP_ACCEPT']


def _routed(path: str) -> bool:
    """Whether a route of the application answers this path (with some method), for a
    collection that exists (`/collections/nope` and `/collections/villages/nope` match
    pygeoapi's collection route, whose GET then says 404)."""
    from pygeoapi.flask_app import APP, CONFIG
    from werkzeug.exceptions import MethodNotAllowed, NotFound
    from werkzeug.routing import RequestRedirect
    from geomayotte.catalogue import dcat
    if path == dcat.PATH:      # a WSGI route of ours, not Flask's
        return True
    try:
        _, args = APP.url_map.bind('localhost').match(path, method='GET')
    except NotFound:
        return False
    except (MethodNotAllowed, RequestRedirect):
        return True
    collection = args.get('collection_id')
    return collection is None or collection in CONFIG.get('resources', {})


class _Slices:
    """The answer in pieces of at most SLICE bytes: the socket timeout bounds each send
    (sendall), so a 6 MB page written at once was cut for any reader slower than
    6 MB / GEOMAYOTTE_SOCKET_TIMEOUT, however steadily it read (a breaking session's finding).
    A piece now only needs SLICE / timeout bytes a second (about 2 KB/s by default)."""
    SLICE = 64 * 1024

    def __init__(self, result):
        self.result = result

    def __iter__(self):
        for chunk in self.result:
            if len(chunk) <= self.SLICE:
                yield chunk
            else:
                for i in range(0, len(chunk), self.SLICE):
                    yield chunk[i:i + self.SLICE]

    def close(self):
        close = getattr(self.result, 'close', None)
        if close is not None:
            close()


class Middleware:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        # a client that stops reading (or sending) holds a server thread at most this long
        sock = environ.get('gunicorn.socket')
        if sock is not None:
            gunicorn_worker.head_read(sock)     # its head is in: the app bounds what follows
        timed = sock is not None and SOCKET_TIMEOUT > 0
        if timed:
            sock.settimeout(SOCKET_TIMEOUT)
            environ['wsgi.input'] = _TimedInput(environ['wsgi.input'])
        try:
            result = self._call(environ, start_response)
            return _Slices(result) if timed else result
        except RequestTimeout as err:
            return _exception(BadRequest(err.description, '408 Request Timeout', 'RequestTimeout',
                                         [('Connection', 'close')]), start_response)

    def _call(self, environ, start_response):
        method = environ.get('REQUEST_METHOD', 'GET')
        if method == 'OPTIONS' and environ.get('HTTP_ACCESS_CONTROL_REQUEST_METHOD'):
            start_response('204 No Content', CORS_HEADERS + [
                ('Access-Control-Allow-Methods', PREFLIGHT_METHODS),
                ('Access-Control-Allow-Headers', environ.get(
                    'HTTP_ACCESS_CONTROL_REQUEST_HEADERS',
                    'Content-Type, Authorization, Prefer, Accept-Language, If-Match, Content-Crs')),
                ('Access-Control-Max-Age', '86400'), ('Content-Length', '0')])
            return [b'']
        path = environ.get('PATH_INFO', '')
        if len(path) > 1 and path.endswith('/') and not path.endswith('//'):
            path = path[:-1]                        # /collections/communes/ is the collection
            environ['PATH_INFO'] = path
        if '//' in path:
            return _exception(BadRequest(f'{path}: not found', '404 Not Found', 'NotFound'),
                              start_response)
        try:
            principal = access.caller(environ)      # 401 for a credential that is not valid
            if method == 'POST' and EXECUTION.match(path):
                access.require_partner(principal, 'running a process')
        except access.Denied as err:
            return _exception(err, start_response)
        hidden = access.hide(path, principal)       # a collection the caller may not see: 404
        if hidden != path:
            environ['geomayotte.asked_path'] = path  # messages name what was asked, not the alias
            path = environ['PATH_INFO'] = hidden
        try:                                        # Features Part 4 writes, feature history
            answer = writes.route(environ, method, path, principal,
                                  os.environ.get('GEOMAYOTTE_BASE_URL', '').rstrip('/'), MAX_WRITE_BODY)
        except WriteError as err:
            answer = writes.error_answer(err)
        if answer is not None:
            return writes.respond(answer, start_response_with_cors(start_response))
        params = urllib.parse.parse_qsl(environ.get('QUERY_STRING', ''), keep_blank_values=True)
        if path == '/model' or path.startswith('/model/'):
            base = os.environ.get('GEOMAYOTTE_BASE_URL', '').rstrip('/')
            if method not in ('GET', 'HEAD'):
                return _exception(BadRequest(f'{method} is not allowed on {path}', '405 Method Not Allowed',
                                             'MethodNotAllowed', [('Allow', 'GET, HEAD')]), start_response)
            doc = model_document(path, base)
            if doc is None:
                return _exception(BadRequest(f'{path}: not found', '404 Not Found', 'NotFound'),
                                  start_response)
            return _json('200 OK', doc, start_response,
                         'application/schema+json' if path.endswith('/schema') else 'application/json')
        try:
            environ, info = self._prepare(environ, method, path, params)
        except BadRequest as err:
            return _exception(err, start_response)
        info.principal = principal
        token = current.set(info)
        answer = fastpath.item(environ, info, start_response_with_cors(start_response))
        if answer is not None:
            current.reset(token)
            return answer

        try:
            result = self.app(environ, start_response_with_cors(start_response, info))
        except BaseException:
            if info.stream is not None:
                info.stream.close(failed=True)
            raise
        finally:
            current.reset(token)
        if info.stream is not None:   # a large page: its features are streamed into the answer
            return streaming.body(result, info.stream)
        return result

    def _prepare(self, environ, method, path, params):
        check_params(params, path)
        kind = PROVIDED.match(path)
        if kind is not None and kind.group(2) == 'coverage' and path.endswith('/coverage'):
            # pygeoapi ignores what it does not know (scale-size, crs)
            unknown = sorted({k for k, _ in params} - COVERAGE_PARAMS)
            if unknown:
                raise BadRequest(f'unknown parameter {unknown[0]!r} for a coverage (known: '
                                 f'{", ".join(sorted(COVERAGE_PARAMS))})')
        if kind is not None:
            # tiles, map or coverage of a collection that has none: 404, not 400; of one that
            # does not exist (or is hidden): 404 here, where pygeoapi logged a KeyError
            from pygeoapi.flask_app import CONFIG
            res = CONFIG.get('resources', {}).get(kind.group(1)) or {}
            wanted = {'tiles': 'tile', 'map': 'map', 'coverage': 'coverage'}[kind.group(2)]
            asked = environ.get('geomayotte.asked_path', path)
            if res.get('type') != 'collection':
                raise BadRequest('Collection not found', '404 Not Found', 'NotFound')
            if not any(p.get('type') == wanted for p in res.get('providers') or []):
                raise BadRequest(f'{asked}: this collection has no {kind.group(2)}', '404 Not Found', 'NotFound')
        for name in ('Accept', 'Accept-Language'):
            clean_choice_header(environ, name)
        if kind is None:
            _no_images(environ, params, path)
        if method == 'POST' and path.startswith('/processes/'):
            try:
                length = int(environ.get('CONTENT_LENGTH') or 0)
            except ValueError:
                raise BadRequest('Content-Length is not a number') from None
            if length > MAX_PROCESS_BODY:
                bodies.drain(environ, length, cap=MAX_BODY)
                raise BadRequest(f'request body larger than {MAX_PROCESS_BODY} bytes '
                                 '(GEOMAYOTTE_MAX_PROCESS_BODY)', '413 Content Too Large', 'PayloadTooLarge')
            prefer = environ.get('HTTP_PREFER', '').lower()
            is_async = 'respond-async' in prefer
            environ['HTTP_PREFER'] = 'respond-async' if is_async else 'respond-sync'   # RFC 7240 forms
            if length > MAX_SYNC_BODY and not is_async:
                # big inputs run on a job worker, not in a web worker
                bodies.drain(environ, length, cap=MAX_BODY)
                raise BadRequest(f'inputs larger than {MAX_SYNC_BODY} bytes are run as jobs: send them '
                                 'again with the header "Prefer: respond-async"',
                                 '413 Content Too Large', 'PayloadTooLarge')
            if path.endswith('/execution'):
                _check_execute_body(environ, MAX_SYNC_BODY if not is_async else MAX_PROCESS_BODY)
        values = dict(params)
        body = None
        is_items = bool(ITEMS.match(path))
        execution = bool(re.fullmatch(r'/processes/[^/]+/execution', path))
        job = bool(re.fullmatch(r'/jobs/[^/]+', path))
        allowed = {'GET', 'HEAD', 'OPTIONS'} | ({'POST'} if is_items or execution else set()) | (
            {'DELETE'} if job else set())
        if method not in ('GET', 'HEAD') and not _routed(path):
            # POST /nope, DELETE /a/b: not found, as GET says (was 405, or 200 for OPTIONS)
            raise BadRequest(f'{environ.get("geomayotte.asked_path", path)}: not found',
                             '404 Not Found', 'NotFound')
        if method not in allowed:
            asked = environ.get('geomayotte.asked_path', path)
            raise BadRequest(f'{method} is not allowed on {asked}', '405 Method Not Allowed',
                             'MethodNotAllowed', [('Allow', ', '.join(sorted(allowed)))])
        if is_items or ITEM.match(path):
            if method in ('PUT', 'PATCH', 'DELETE') or (
                    method == 'POST' and environ.get('CONTENT_TYPE', '').lower().startswith('application/geo+json')):
                raise BadRequest('this collection is read-only' + (
                    ': POST to its items takes CQL2 JSON searches only' if is_items else ''),
                    '405 Method Not Allowed',
                                 'MethodNotAllowed', [('Allow', 'GET, HEAD, OPTIONS' if not is_items
                                                       else READ_METHODS)])
        if is_items and method == 'POST':
            ctype = environ.get('CONTENT_TYPE', '').split(';')[0].strip().lower()
            if ctype not in SEARCH_TYPES:
                raise BadRequest(f'POST to items takes a CQL2 JSON filter '
                                 f'(Content-Type application/query-cql-json), not {ctype or "nothing"}',
                                 '415 Unsupported Media Type', 'UnsupportedMediaType')
            body = _read_body(environ)
            if 'filter' in values:
                raise BadRequest('give the filter in the query or in the body, not both')
            if not body.strip():
                raise BadRequest('empty request body: expected a CQL2 JSON filter')
        if is_items:
            check_filter(values, body)
        if re.fullmatch(r'/jobs/[^/]+/results', path) and 'f' not in values and \
                'text/html' not in environ.get('HTTP_ACCEPT', ''):
            # pygeoapi answers */* with an HTML page wrapping the JSON: give the JSON
            environ['QUERY_STRING'] = urllib.parse.urlencode(params + [('f', 'json')])
        lang = values.get('filter-lang')
        if is_items and method == 'GET' and 'filter' in values and lang in ('cql2-json', 'cql-json'):
            # pygeoapi parses a GET filter as CQL2 text only: hand it the JSON as a body
            body = values['filter']
            raw = body.encode()
            rest = [(k, v) for k, v in params if k not in ('filter', 'filter-lang')]
            environ = dict(environ, REQUEST_METHOD='POST', CONTENT_TYPE='application/query-cql-json',
                           CONTENT_LENGTH=str(len(raw)), QUERY_STRING=urllib.parse.urlencode(rest))
            environ['wsgi.input'] = io.BytesIO(raw)
        url = (f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}"
               f"{environ.get('SCRIPT_NAME', '')}{path}")
        base = os.environ.get('GEOMAYOTTE_BASE_URL', '').rstrip('/')
        if base:   # links follow the configured public URL, like pygeoapi's own
            url = base + path
        info = RequestInfo(url=url, params=[(k, v) for k, v in params
                                            if not (body is not None and k in ('filter', 'filter-lang'))])
        info.filter_json = body is not None
        info.can_stream = is_items and environ['REQUEST_METHOD'] in ('GET', 'POST')
        info.filter_body = body
        fmt = values.get('f')
        accept = environ.get('HTTP_ACCEPT', '').strip()
        info.raw_json = fmt == 'json' or (fmt is None and json_only(accept))
        return environ, info
