"""Access control at the HTTP layer, for the middleware and pygeoapi's handlers.

- :func:`caller`: the request's principal, or the 401 to answer;
- :func:`hide`: a collection the caller may not read is answered exactly like one that
  does not exist, for every path below ``/collections/{id}`` (collection, items, item,
  queryables, schema, coverage ...): the request is handed to pygeoapi for an id no
  collection has, so status, body and format are those of a missing collection;
- :func:`install`: listings (``/collections`` in every format), the OpenAPI document and
  the jobs only show what the caller may see.
"""
from __future__ import annotations

import functools
import json
import re
import urllib.parse

from geomayotte.access import policy, tokens
from geomayotte.request_context import current

HIDDEN = 'geomayotte-no-such-collection'
COLLECTION = re.compile(r'^/collections/([^/]+)(/.*)?$')
REALM = 'Bearer realm="geomayotte"'


class Denied(Exception):
    def __init__(self, message, status='401 Unauthorized', code='Unauthorized', headers=()):
        super().__init__(message)
        self.status, self.code, self.headers = status, code, list(headers)


def caller(environ) -> policy.Principal:
    import psycopg2
    try:
        return policy.authenticate(environ.get('HTTP_AUTHORIZATION'))
    except tokens.Unauthorized as err:
        raise Denied(str(err), headers=[('WWW-Authenticate', f'{REALM}, error="invalid_token"')]) from None
    except psycopg2.OperationalError:
        raise Denied('the credential cannot be checked now: database unavailable',
                     '503 Service Unavailable', 'ServiceUnavailable') from None


def require_partner(principal: policy.Principal, what: str) -> None:
    if not principal.authenticated:
        raise Denied(f'{what} needs a partner credential ("Authorization: Bearer <key>")',
                     headers=[('WWW-Authenticate', REALM)])


def _resources() -> dict:
    from pygeoapi.flask_app import CONFIG
    return CONFIG.get('resources', {})


def hide(path: str, principal: policy.Principal) -> str:
    """The path to hand to pygeoapi: unchanged, or that of a collection that does not exist."""
    m = COLLECTION.match(path)
    if m is None:
        return path
    rid = m.group(1)
    if rid in _resources() and _resources()[rid].get('type') == 'collection' \
            and not principal.can_read(rid):
        return f'/collections/{HIDDEN}{m.group(2) or ""}'
    return path


def visible(rid: str) -> bool:
    """Whether the current request's caller may see the collection (no request: all)."""
    ctx = current.get()
    return ctx is None or ctx.principal.can_read(rid)


def records_clause():
    """The catalogue records the current caller may see, as a condition on
    ``catalogue.record`` (None outside a request: the command-line tools see all). A record
    carries its dataset's diffusion level; a restricted one is seen by the partners granted
    that collection of this platform."""
    from psycopg2 import sql
    ctx = current.get()
    if ctx is None:
        return None
    p = ctx.principal
    if not p.authenticated:
        return sql.SQL("diffusion = 'open'"), []
    from geomayotte.catalogue.store import LOCAL
    return (sql.SQL("diffusion IN ('open', 'partners') OR (diffusion = 'restricted' AND source = %s "
                    "AND source_id = ANY(%s))"), [LOCAL, sorted(k for k in p.grants)])


_IN_LINK = re.compile(r'/collections/([^/?#]+)')


def link_visible(href: str) -> bool:
    """False for a link into a collection the current caller may not see."""
    if current.get() is None:    # command-line tools: everything
        return True
    m = _IN_LINK.search(href)
    if m is None:
        return True
    rid = urllib.parse.unquote(m.group(1))
    return rid not in _resources() or visible(rid)


def records_key() -> tuple:
    """What the records a caller sees depend on (for caches of catalogue pages)."""
    ctx = current.get()
    if ctx is None:
        return ('all',)
    p = ctx.principal
    return ('anonymous',) if not p.authenticated else ('partner', tuple(sorted(p.grants)))


# -- pygeoapi's handlers ---------------------------------------------------------------------
def _filtering(original):
    @functools.wraps(original)
    def filter_dict_by_key_value(dict_, key, value):
        found = original(dict_, key, value)
        if key == 'type' and value == 'collection':
            found = {rid: res for rid, res in found.items() if visible(rid)}
        return found
    return filter_dict_by_key_value


def _openapi(original):
    @functools.wraps(original)
    def openapi_(api, request):
        headers, status, content = original(api, request)
        ctx = current.get()
        if status != 200 or ctx is None or not isinstance(content, str) or not content.startswith('{'):
            return headers, status, content
        hidden = {rid for rid in _resources() if not visible(rid)}
        if not hidden:
            return headers, status, content
        doc = json.loads(content)
        doc['paths'] = {p: v for p, v in doc.get('paths', {}).items()
                        if not ((m := COLLECTION.match(p)) and m.group(1) in hidden)}
        doc['tags'] = [t for t in doc.get('tags', []) if t.get('name') not in hidden]
        from geomayotte.pygeoapi_fixes import to_json
        return headers, status, to_json(doc)
    return openapi_


_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    import pygeoapi.api as core
    import pygeoapi.api.coverages as coverages
    import pygeoapi.api.itemtypes as itemtypes
    import pygeoapi.api.maps as maps
    import pygeoapi.api.tiles as tiles
    for module in (core, coverages, itemtypes, maps, tiles):
        if hasattr(module, 'filter_dict_by_key_value'):
            module.filter_dict_by_key_value = _filtering(module.filter_dict_by_key_value)
    core.openapi_ = _openapi(core.openapi_)
