"""Write requests (Features Part 4), answered before pygeoapi sees them.

``POST /collections/{id}/items``   a Feature or a FeatureCollection (one transaction):
                                   201, ``Location`` (one feature) and ``ETag``
``PUT /collections/{id}/items/{f}`` replace: 200 and the new ``ETag``
``PATCH ...``                      JSON merge patch (RFC 7396) on the feature: 200
``DELETE ...``                     204
``GET .../items/{f}/history``      every change of the feature, before and after

``Content-Crs`` (default CRS84; EPSG:4326 in lat/lon order; EPSG:4471) says how the
geometry is written; ``If-Match`` with the feature's ``ETag`` refuses a stale write (412).
"""
from __future__ import annotations

import json
import logging

import psycopg2

from geomayotte import bodies, crs as crsmod, etags
from geomayotte.writes import apply, audit
from geomayotte.writes.apply import WriteError, bad

LOGGER = logging.getLogger(__name__)
GEOJSON = ('application/geo+json', 'application/json')   # POST as JSON: when the body is features
PATCH_TYPES = ('application/merge-patch+json', 'application/json', 'application/geo+json')


def _body(environ, limit: int):
    try:
        length = int(environ.get('CONTENT_LENGTH') or 0)
    except ValueError:
        raise bad('Content-Length is not a number') from None
    too_large = WriteError('413 Content Too Large', 'PayloadTooLarge',
                           f'request body larger than {limit} bytes (GEOMAYOTTE_MAX_WRITE_BODY)')
    if length > limit:
        bodies.drain(environ, length, cap=2 * limit)   # beyond, the connection is reset
        raise too_large
    if not length and 'chunked' in environ.get('HTTP_TRANSFER_ENCODING', '').lower():
        raw = environ['wsgi.input'].read(limit + 1)    # the server decodes the chunks
        if len(raw) > limit:
            raise too_large
    else:
        raw = environ['wsgi.input'].read(length) if length else b''
    try:
        doc = json.loads(raw.decode('utf-8'), parse_constant=_no_constant)
    except RecursionError:
        raise bad(f'the body is nested more than {MAX_DEPTH} levels deep') from None
    except (UnicodeDecodeError, ValueError) as err:
        raise bad(f'the body is not JSON: {err}') from None
    _check_strings(doc)
    return doc


MAX_DEPTH = 64


def _check_strings(doc) -> None:
    """No NUL and no lone surrogate in any key or string (PostgreSQL text takes neither),
    no nesting deeper than GeoJSON needs."""
    try:
        bodies.check_json(doc, MAX_DEPTH)
    except bodies.Unfit as err:
        raise bad(f'the body: {err}') from None


def _no_constant(name):
    raise ValueError(f'{name} is not JSON')


def _media(environ, accepted) -> None:
    ctype = environ.get('CONTENT_TYPE', '').split(';')[0].strip().lower()
    if ctype not in accepted:
        raise WriteError('415 Unsupported Media Type', 'UnsupportedMediaType',
                         f'{ctype or "no Content-Type"}: send {" or ".join(accepted)}')


def _if_match(environ, etag: str) -> None:
    """RFC 9110 13.1.1-2 on an existing feature: ``If-Match`` by strong comparison (a weak
    tag never matches), ``If-None-Match`` by weak comparison; either failing is a 412."""
    if not etags.if_match(environ.get('HTTP_IF_MATCH'), etag):
        raise WriteError('412 Precondition Failed', 'PreconditionFailed',
                         f'the feature has changed (its ETag is now {etag}): read it again')
    if etags.none_match(environ.get('HTTP_IF_NONE_MATCH'), etag):
        raise WriteError('412 Precondition Failed', 'PreconditionFailed',
                         'If-None-Match: the feature exists' +
                         ('' if environ['HTTP_IF_NONE_MATCH'].strip() == '*' else ' in that version'))


def merge_patch(target, patch):
    """RFC 7396."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _new_version(target, method, doc, before, out, key):
    """(id, values, geometry, its SRID) of the feature a PUT or PATCH makes of ``before``."""
    srid = out.srid
    if method == 'PATCH':
        if doc.get('type', 'Feature') != 'Feature':
            raise bad(f'a merge patch of a feature is a Feature (or has no "type"), '
                      f'not {str(doc.get("type"))[:40]!r}')
        if 'geometry' in doc and doc['geometry'] is None and target.table.geometry:
            # RFC 7396: null removes the member; it was taken as "keep the geometry" (200)
            raise bad(f'"geometry": null would remove the geometry, and {target.collection} '
                      'requires one: leave "geometry" out to keep it')
        if doc.get('geometry') is None:
            doc = dict(doc, geometry=before['geometry'])     # as stored (storage CRS)
            srid = target.table.srid
        else:
            doc = dict(doc, geometry=apply.lonlat(doc['geometry'], out.flip))
        merged = merge_patch({'type': 'Feature', 'properties': before['properties']},
                             dict(doc, type='Feature'))
        merged['geometry'] = merged.get('geometry')
        fid, values, geom = apply.feature(target, merged, 'the patched feature', path_id=key)
        return fid, values, geom, srid
    fid, values, geom = apply.feature(target, doc, 'the feature', path_id=key)
    return fid, values, apply.lonlat(geom, out.flip), srid


def handle(environ, target, principal, base: str, limit: int, db_url: str):
    """(status, headers, body dict or None) of a write request."""
    method = environ['REQUEST_METHOD']
    parts = environ['PATH_INFO'].split('/')      # '', collections, {c}, items[, {f}[, history]]
    item = parts[4] if len(parts) > 4 else None
    partner = principal.partner
    try:
        if method == 'POST':
            _media(environ, GEOJSON)
            doc = _body(environ, limit)
            uri = apply.content_crs(environ.get('HTTP_CONTENT_CRS'))
            out = crsmod.output(uri)
            if isinstance(doc, dict) and 'crs' in doc:
                raise bad('a "crs" member is not GeoJSON (RFC 7946): say the CRS with the Content-Crs header')
            if isinstance(doc, dict) and doc.get('type') == 'FeatureCollection':
                feats = doc.get('features')
                if not isinstance(feats, list) or not feats:
                    raise bad('"features" must be a non-empty list')
                items = [apply.feature(target, f, f'features[{i}]') for i, f in enumerate(feats)]
            else:
                items = [apply.feature(target, doc, 'the feature')]
            items = [(k, v, apply.lonlat(g, out.flip)) for k, v, g in items]
            keys = [str(k) for k, _, _ in items]
            if len(set(keys)) != len(keys):
                raise WriteError('409 Conflict', 'Conflict', 'the same identifier is given twice')
            warnings = apply.validate(db_url, target, items,
                                      'OGC:CRS84' if out.srid == 4326 else f'EPSG:{out.srid}')
            with apply.transaction(db_url) as conn, conn.cursor() as cur:
                etags = []
                for key, values, geom in items:
                    if apply.lock(cur, target, key) is not None:
                        raise WriteError('409 Conflict', 'Conflict',
                                         f'{target.collection} already has a feature {key!r}: '
                                         'PUT or PATCH it instead')
                    apply.insert(cur, target, values, geom, out.srid, partner)
                    etag, after = apply.stored(cur, target, key)
                    mine = [w for w in warnings if str(w.get('featureId')) == str(key)]
                    audit.record(cur, partner, target.collection, str(key), 'create', None, after, mine)
                    etags.append(etag)
            links = [f'{base}/collections/{target.collection}/items/{k}' for k in keys]
            headers = [('Location', links[0]), ('ETag', etags[0])] if len(keys) == 1 else []
            return '201 Created', headers, {'created': keys, 'links': [
                {'rel': 'item', 'href': h, 'type': 'application/geo+json'} for h in links],
                'warnings': warnings}
        key = apply.key_value(target, item)
        if method == 'DELETE':
            with apply.transaction(db_url) as conn, conn.cursor() as cur:
                found = apply.lock(cur, target, key)
                if found is None:
                    raise WriteError('404 Not Found', 'NotFound', f'item {item!r} not found')
                _if_match(environ, found[0])
                apply.delete(cur, target, key)
                audit.record(cur, partner, target.collection, str(key), 'delete', found[1], None, None)
            return '204 No Content', [], None
        # PUT / PATCH: the row is locked, the new version made from it and validated (the
        # validation's reference reads use their own small pool, so a writer holding a row
        # lock never waits for a connection that a writer queued on that lock holds)
        _media(environ, GEOJSON if method == 'PUT' else PATCH_TYPES)
        doc = _body(environ, limit)
        uri = apply.content_crs(environ.get('HTTP_CONTENT_CRS'))
        out = crsmod.output(uri)
        if method == 'PATCH' and not isinstance(doc, dict):
            raise bad('a merge patch is a JSON object')
        with apply.transaction(db_url) as conn, conn.cursor() as cur:
            found = apply.lock(cur, target, key)
            if found is None:
                raise WriteError('404 Not Found', 'NotFound', f'item {item!r} not found')
            _if_match(environ, found[0])
            fid, values, geom, srid = _new_version(target, method, doc, json.loads(found[1]), out, key)
            declared = 'OGC:CRS84' if srid == 4326 else f'EPSG:{srid}'
            warnings = apply.validate(db_url, target, [(fid, values, geom)], declared)
            apply.replace(cur, target, key, values, geom, srid, partner)
            etag, after = apply.stored(cur, target, key)
            audit.record(cur, partner, target.collection, str(key),
                         'replace' if method == 'PUT' else 'update', found[1], after, warnings)
        return '200 OK', [('ETag', etag)], {'updated': str(key), 'warnings': warnings}
    except psycopg2.Error as err:
        if not isinstance(err, (psycopg2.OperationalError, psycopg2.errors.UniqueViolation)):
            LOGGER.error('write failed: %s', err)
        raise apply.database_error(err) from None


# -- routing (called by the middleware for every request) ----------------------------------------------
import re  # noqa: E402

ITEMS = re.compile(r'^/collections/([^/]+)/items(?:/([^/]+)(/history)?)?$')
WRITE_METHODS = ('POST', 'PUT', 'PATCH', 'DELETE')


def _provider(rid: str):
    from pygeoapi.flask_app import CONFIG
    res = CONFIG.get('resources', {}).get(rid)
    if not res or res.get('type') != 'collection':
        return None
    return next((p for p in res.get('providers') or [] if p.get('type') == 'feature'), None)


def _features_sent(environ, limit: int) -> bool:
    """A POST to items as application/json: a search (CQL2 JSON) or features to create?
    The body is read, looked at, and put back for whoever reads it next."""
    import io
    try:
        length = int(environ.get('CONTENT_LENGTH') or 0)
    except ValueError:
        return False
    # chunked: no length told, read up to the limit (a longer body is too large for a search too)
    chunked = 'chunked' in environ.get('HTTP_TRANSFER_ENCODING', '').lower()
    if not chunked and not 0 < length <= limit:
        return False
    raw = environ['wsgi.input'].read(limit + 1 if chunked else length)
    environ['wsgi.input'] = io.BytesIO(raw)
    if len(raw) > limit:
        return False
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        return False
    return isinstance(doc, dict) and doc.get('type') in ('Feature', 'FeatureCollection')


def route(environ, method: str, path: str, principal, base: str, limit: int):
    """(status, headers, body) for a write or history request; None for anything else."""
    m = ITEMS.match(path)
    if m is None:
        return None
    rid, item, history = m.group(1), m.group(2), m.group(3)
    ctype = environ.get('CONTENT_TYPE', '').split(';')[0].strip().lower()
    is_write = method in ('PUT', 'PATCH', 'DELETE') if item else (
        method == 'POST' and (ctype == 'application/geo+json' or
                              (ctype == 'application/json' and _features_sent(environ, limit))))
    if not (is_write and not history) and not (history and method in ('GET', 'HEAD')):
        return None
    if '\x00' in path:
        return '404 Not Found', [], {'code': 'NotFound', 'type': 'NotFound',
                                     'description': 'NUL character in the path'}
    from pygeoapi.flask_app import CONFIG
    if CONFIG.get('resources', {}).get(rid, {}).get('type') != 'collection':
        # no such collection (or one the caller may not see): as pygeoapi says it
        return '404 Not Found', [], {'code': 'NotFound', 'type': 'NotFound',
                                     'description': 'Collection not found'}
    prov = _provider(rid)
    tgt = db_url = None
    if prov is not None:
        from geomayotte import settings
        from geomayotte.writes.target import target as target_of
        db_url = prov.get('data') or settings.database_url()
        tgt = target_of(db_url, rid, str(prov.get('table', '')))
    if tgt is None:         # a coverage, the catalogue, a collection no feature type describes
        why = (f'{rid} has no features' if prov is None else
               f'{rid} is read-only: no feature type of the reference model describes it')
        if history:
            return '404 Not Found', [], {'code': 'NotFound', 'type': 'NotFound',
                                         'description': f'{why}, hence no history'}
        allow = 'GET, HEAD, OPTIONS' + (', POST' if not item else '')
        if not item:     # POST stays allowed: for searches
            why += ': POST to its items takes CQL2 JSON searches only'
        return '405 Method Not Allowed', [('Allow', allow)], {
            'code': 'MethodNotAllowed', 'type': 'MethodNotAllowed', 'description': why}
    if history:
        return _history(environ, db_url, rid, tgt, item)
    if not principal.authenticated:
        return '401 Unauthorized', [('WWW-Authenticate', 'Bearer realm="geomayotte"')], {
            'code': 'Unauthorized', 'type': 'Unauthorized',
            'description': f'writing to {rid} needs a partner credential with write rights'}
    if not principal.can_write(rid):
        return '403 Forbidden', [], {'code': 'Forbidden', 'type': 'Forbidden',
                                     'description': f'partner {principal.partner!r} may not write to {rid}'}
    return handle(environ, tgt, principal, base, limit, db_url)


def _history(environ, db_url: str, rid: str, tgt, item: str):
    """The changes of one feature, oldest first; geometries as stored (the table's CRS).
    404 for a feature that neither exists nor ever changed."""
    import urllib.parse
    params = urllib.parse.parse_qsl(environ.get('QUERY_STRING', ''), keep_blank_values=True)
    unknown = sorted({k for k, v in params if not (k == 'f' and v == 'json')})
    if unknown:
        raise bad(f'the history takes no parameter but f=json (JSON only, geometries in the '
                  f'storage CRS): {", ".join(unknown)}')
    key = apply.key_value(tgt, item)
    changes = audit.history(db_url, rid, str(key))
    if not changes and apply.read(db_url, tgt, key) is None:
        raise WriteError('404 Not Found', 'NotFound', f'item {item!r} not found')
    crs = f'http://www.opengis.net/def/crs/EPSG/0/{tgt.table.srid}'
    return '200 OK', [('Content-Crs', f'<{crs}>')], {
        'collection': rid, 'id': str(key), 'crs': crs, 'changes': changes}


def respond(answer, start_response):
    """The WSGI answer of ``route``/``handle``: (status, headers, body) or a WriteError."""
    status, headers, body = answer
    data = b'' if body is None else json.dumps(body, ensure_ascii=False, default=str).encode()
    ctype = [('Content-Type', 'application/json')] if body is not None else []
    start_response(status, headers + ctype + [('Content-Length', str(len(data)))])
    return [data]


def error_answer(err: WriteError):
    body = {'code': err.code, 'type': err.code, 'description': str(err)}
    if err.report is not None:
        body['report'] = err.report
    return err.status, [], body
