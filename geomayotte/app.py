"""The WSGI application: pygeoapi's Flask app behind our own thin layer.

``gunicorn geomayotte.app:application`` serves it:

- ``geomayotte.middleware``: request checks, CORS, the request context the provider reads;
- ``geomayotte.pygeoapi_fixes``: what pygeoapi 0.24 gets wrong for us, mended in one place;
- ``geomayotte.catalogue.dcat``: the catalogue's DCAT-AP view (``/collections/catalogue/dcat``).
"""
from __future__ import annotations

from geomayotte import settings


def _serves_catalogue() -> bool:
    from pygeoapi.flask_app import CONFIG
    return any(p.get('type') == 'record' for res in CONFIG.get('resources', {}).values()
               for p in res.get('providers') or [])


def create_app():
    settings.check_or_exit()
    settings.apply_defaults()
    from geomayotte import pygeoapi_fixes
    from geomayotte.middleware import Middleware
    pygeoapi_fixes.install()
    from geomayotte.access import http as access_http
    from geomayotte.writes import changes
    access_http.install()
    changes.install()
    from pygeoapi.flask_app import APP
    if not isinstance(APP.wsgi_app, Middleware):
        from geomayotte.catalogue import dcat, sync
        if _serves_catalogue():   # (not a benchmark's or a test's configuration without it)
            sync.at_start()          # catalogue metadata checked (fatal), records synced
        APP.wsgi_app = Middleware(dcat.DcatRoute(APP.wsgi_app))
        APP.register_error_handler(404, _routing_error)
        APP.register_error_handler(405, _routing_error)
    return APP


def _routing_error(err):
    """A path no route knows (404) or a method a route does not take (405): an OGC
    exception document, as every other error (Flask answered an HTML page)."""
    import json
    from flask import Response, request
    asked = request.environ.get('geomayotte.asked_path', request.path)
    if err.code == 405:
        doc = {'code': 'MethodNotAllowed', 'description': f'{request.method} is not allowed on {asked}'}
    else:
        doc = {'code': 'NotFound', 'description': f'{asked}: not found'}
    resp = Response(json.dumps(doc, ensure_ascii=False), status=err.code, mimetype='application/json')
    if err.code == 405 and getattr(err, 'valid_methods', None):
        resp.headers['Allow'] = ', '.join(err.valid_methods)
    return resp


application = create_app()
