"""The single-feature fast path (geomayotte.fastpath) answers what pygeoapi would:
the same document, the same headers, for every collection, CRS, language and way of
asking for JSON; what it declines, pygeoapi still answers."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from werkzeug.test import Client

from geomayotte import fastpath, middleware

ROOT = Path(__file__).resolve().parent.parent
HEADERS = ('Content-Type', 'Content-Crs', 'Content-Language', 'X-Powered-By',
           'Access-Control-Allow-Origin', 'Access-Control-Expose-Headers')


class _AsPartner:
    """A werkzeug test client sending the test partner's key (some datasets are theirs only)."""

    def __init__(self, client, key):
        self.client, self.key = client, key

    def get(self, path, headers=None):
        return self.client.get(path, headers={'Authorization': f'Bearer {self.key}', **(headers or {})})


@pytest.fixture(scope='module')
def client(database_url, data_dir, partner_key):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('DATABASE_URL', database_url)
        mp.setenv('GEOMAYOTTE_DATA_DIR', str(data_dir))
        mp.setenv('GEOMAYOTTE_BASE_URL', 'http://fastpath.test')
        mp.setenv('PYGEOAPI_CONFIG', str(ROOT / 'pygeoapi-config.yml'))
        mp.setenv('PYGEOAPI_OPENAPI', str(ROOT / 'openapi' / 'openapi.yml'))
        from geomayotte.app import create_app
        app = create_app()
        assert os.environ['GEOMAYOTTE_BASE_URL'] == 'http://fastpath.test'
        yield _AsPartner(Client(app), partner_key)


def _both(client, monkeypatch, path, headers=None):
    """(fast answer, pygeoapi's answer, whether the fast path answered)."""
    answered = []
    real = fastpath.item

    def spy(*args):
        out = real(*args)
        answered.append(out is not None)
        return out
    monkeypatch.setattr(middleware.fastpath, 'item', spy)
    fast = client.get(path, headers=headers)
    monkeypatch.setattr(middleware.fastpath, 'item', lambda *args: None)
    slow = client.get(path, headers=headers)
    monkeypatch.setattr(middleware.fastpath, 'item', real)
    return fast, slow, answered == [True]


def _same(fast, slow):
    assert fast.status_code == slow.status_code
    for name in HEADERS:
        assert fast.headers.get(name) == slow.headers.get(name), name
    assert json.loads(fast.get_data()) == json.loads(slow.get_data())


ITEMS = [('communes', '97601'), ('villages', '921704'), ('seismes', '665884'),
         ('zones_inondation', 'ZAPI0040'), ('population_communes', '97608'),
         ('antennes_gsm', None), ('forets_publiques', None), ('departement', '976')]


@pytest.mark.parametrize('collection,fid', ITEMS)
@pytest.mark.parametrize('query', ['', '?f=json', '?crs=http://www.opengis.net/def/crs/EPSG/0/4471',
                                   '?crs=http://www.opengis.net/def/crs/EPSG/0/3857&lang=en',
                                   '?lang=en&f=json'])
def test_same_answer_as_pygeoapi(client, monkeypatch, db, collection, fid, query):
    if fid is None:   # the first feature, whatever its identifier type
        page = json.loads(client.get(f'/collections/{collection}/items?limit=1&f=json').get_data())
        fid = page['features'][0]['id']
    if collection == 'population_communes' and 'crs' in query:
        query = '?lang=en'    # no geometry, no crs parameter
    fast, slow, used = _both(client, monkeypatch, f'/collections/{collection}/items/{fid}{query}')
    assert used
    assert fast.status_code == 200
    _same(fast, slow)
    assert str(json.loads(fast.get_data())['id']) == str(fid)


@pytest.mark.parametrize('headers', [{'Accept': 'application/geo+json'}, {'Accept': 'application/json'},
                                     {'Accept': '*/*', 'Accept-Language': 'en-GB,en;q=0.8'},
                                     {'Accept-Language': 'de'}])
def test_same_answer_whatever_the_json_request(client, monkeypatch, headers):
    fast, slow, used = _both(client, monkeypatch, '/collections/communes/items/97611', headers)
    assert used
    _same(fast, slow)


def test_angle_brackets_escaped_like_every_json_answer(client, monkeypatch, db):
    # a value with < and > written straight into the table, read back through both paths
    with db.cursor() as cur:
        cur.execute("UPDATE geodata.villages SET nom = %s WHERE geonameid = %s RETURNING "
                    "(SELECT nom FROM geodata.villages WHERE geonameid = %s)",
                    ('<b>Acoua</b>', 921704, 921704))
        old = cur.fetchone()[0]
    try:
        fast, slow, used = _both(client, monkeypatch, '/collections/villages/items/921704')
        assert used and b'<' not in fast.get_data()
        _same(fast, slow)
        assert json.loads(fast.get_data())['properties']['nom'] == '<b>Acoua</b>'
    finally:
        with db.cursor() as cur:
            cur.execute('UPDATE geodata.villages SET nom = %s WHERE geonameid = %s', (old, 921704))


@pytest.mark.parametrize('path,headers,status', [
    ('/collections/communes/items/00000', None, 404),                     # unknown item
    ('/collections/communes/items/97601?crs=EPSG:2154', None, 400),       # CRS not offered
    ('/collections/relief/items/1', None, 404),                           # a coverage
    ('/collections/nope/items/1', None, 404),                             # no such collection
    ('/collections/communes/items/97601?f=html', None, 200),              # HTML
    ('/collections/communes/items/97601?f=jsonld', None, 200),            # JSON-LD
    ('/collections/communes/items/97601', {'Accept': 'text/html'}, 200),  # HTML by Accept
    ('/collections/communes/items/97601?properties=nom', None, 200),      # a parameter we leave
    ('/collections/communes/items/%C3%A9', None, 404),                    # a non-ASCII id
])
def test_declined_requests_are_pygeoapis(client, monkeypatch, path, headers, status):
    fast, slow, used = _both(client, monkeypatch, path, headers)
    assert not used
    assert fast.status_code == slow.status_code == status
    assert fast.get_data() == slow.get_data()


def test_busy_pool_is_one_wait_then_503(client, monkeypatch, database_url):
    """Found by a breaking session: the fast path fell back to pygeoapi on a busy pool, which
    waited a second time (60 s to a 503 with the default wait)."""
    import time
    from geomayotte import database
    monkeypatch.setattr(database, 'WAIT_SECONDS', 1.0)
    pool = database.pool(database_url)
    held = []
    try:
        while True:   # take every connection of this process' pool
            try:
                held.append(pool.get())
            except database.PoolTimeout:
                break
        start = time.monotonic()
        r = client.get('/collections/communes/items/97601')
        took = time.monotonic() - start
    finally:
        for conn in held:
            pool.put(conn)
    assert r.status_code == 503 and json.loads(r.get_data())['code'] == 'ServiceUnavailable'
    assert took < 1.9, took
