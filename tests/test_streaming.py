"""Large GeoJSON pages are streamed (the test server streams pages of 40 features or more,
15 per chunk): the same features, links and counts as pages built in memory, errors still
a 4xx before anything is sent, and clients that hang up leave nothing behind."""
from __future__ import annotations

import json
import urllib.parse

import pytest
import requests

STREAM_ROWS = 40


def _walk(api, path, limit, **params):
    """Every feature id, following `next` links with pages of `limit`."""
    ids, url = [], f'{api.base}{path}'
    query = dict(params, limit=limit, f='json')
    while url:
        r = api.session.get(url, params=query, timeout=30)
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc['numberReturned'] == len(doc['features'])
        ids += [f['id'] for f in doc['features']]
        url = next((lk['href'] for lk in doc['links'] if lk['rel'] == 'next'), None)
        query = None
    return ids


@pytest.mark.parametrize('collection,params', [
    ('seismes', {}),
    ('seismes', {'sortby': '-mag'}),
    ('seismes', {'bbox': '44.5,-13.5,46,-12', 'crs': 'http://www.opengis.net/def/crs/EPSG/0/4471'}),
    ('seismes', {'filter': 'mag > 2 AND t0 > TIMESTAMP(\'2019-01-01T00:00:00Z\')'}),
    ('antennes_gsm', {'skipGeometry': 'true'}),
    ('villages', {'properties': 'nom,code_insee'}),
])
def test_streamed_pages_hold_what_small_pages_hold(api, collection, params):
    small = _walk(api, f'/collections/{collection}/items', 10, **params)   # built in memory
    assert small and len(small) == len(set(small))
    for limit in (STREAM_ROWS, 97, 1000):
        assert _walk(api, f'/collections/{collection}/items', limit, **params) == small


def test_streamed_page_is_chunked_and_complete(api, db):
    r = api('/collections/seismes/items', limit=1000, f='json')
    assert r.status_code == 200
    assert r.headers.get('Transfer-Encoding') == 'chunked' and 'Content-Length' not in r.headers
    assert r.headers['Content-Type'] == 'application/geo+json'
    assert r.headers['Content-Crs'] == '<http://www.opengis.net/def/crs/OGC/1.3/CRS84>'
    doc = r.json()
    with db.cursor() as cur:
        cur.execute('SELECT count(*), min(evid), max(evid) FROM geodata.seismes')
        count, first, last = cur.fetchone()
    assert doc['numberReturned'] == doc['numberMatched'] == count == len(doc['features'])
    assert (doc['features'][0]['id'], doc['features'][-1]['id']) == (first, last)
    assert not [lk for lk in doc['links'] if lk['rel'] in ('next', 'prev')]
    small = api('/collections/seismes/items', limit=STREAM_ROWS - 1, f='json')
    assert 'Content-Length' in small.headers     # below the threshold: built in memory


def test_streamed_middle_page_links_and_counts(api):
    doc = api('/collections/seismes/items', limit=100, offset=150, f='json').json()
    assert doc['numberReturned'] == 100 and doc['numberMatched'] == 426
    rels = {lk['rel']: lk['href'] for lk in doc['links']}
    nxt = urllib.parse.parse_qs(urllib.parse.urlsplit(rels['next']).query)
    assert nxt['offset'] == ['250'] and 'cursor' in nxt
    prev = urllib.parse.parse_qs(urllib.parse.urlsplit(rels['prev']).query)
    assert prev['offset'] == ['50']
    # the last partial page, reached by cursor
    page = api.session.get(rels['next'], timeout=30).json()
    page = api.session.get(next(lk['href'] for lk in page['links'] if lk['rel'] == 'next'),
                           timeout=30).json()
    assert page['numberReturned'] == len(page['features']) == 76
    assert not [lk for lk in page['links'] if lk['rel'] == 'next']
    empty = api('/collections/seismes/items', limit=100, offset=5000, f='json').json()
    assert empty['features'] == [] and empty['numberReturned'] == 0


def test_cql2_json_search_is_streamed_too(api):
    body = {'op': '>', 'args': [{'property': 'mag'}, 1.5]}
    r = api.session.post(f'{api.base}/collections/seismes/items?limit=200',
                         data=json.dumps(body), headers={'Content-Type': 'application/query-cql-json'},
                         timeout=30)
    assert r.status_code == 200 and 'Content-Length' not in r.headers
    doc = r.json()
    assert doc['features'] and all(f['properties']['mag'] > 1.5 for f in doc['features'])


@pytest.mark.parametrize('params,status', [
    ({'filter': "t0 > TIMESTAMP('2019-13-45T00:00:00Z')"}, 400),
    ({'filter': 'mag / 0 > 1'}, 400),
    ({'cursor': 'bm90IGEgY3Vyc29y'}, 400),
    ({'sortby': 'nope'}, 400),
])
def test_errors_on_a_streamed_page_are_4xx_before_anything_is_sent(api, params, status):
    r = api('/collections/seismes/items', limit=500, f='json', **params)
    assert r.status_code == status, r.text
    assert r.headers['Content-Type'].startswith('application/json')
    assert r.json()['description']


def test_a_stream_closed_mid_way_gives_its_connection_back(database_url, db, monkeypatch):
    """What gunicorn does when a client hangs up: close() the body half-way."""
    from psycopg2 import sql

    from geomayotte import database, settings, streaming
    monkeypatch.setenv('GEOMAYOTTE_STREAM_BATCH', '10')
    pool = database.Pool(database_url, 1)
    monkeypatch.setattr(database, 'pool', lambda url: pool)
    for _ in range(3):   # a leaked connection would make the second round wait, then fail
        page = streaming.PageStream(database_url)
        page.start(sql.SQL('SELECT evid, json_build_object(\'id\', evid)::text '
                           'FROM geodata.seismes ORDER BY evid'), [])
        envelope = [b'{"type":"FeatureCollection",' + streaming.MARK + b',"numberReturned":426}']
        body = streaming.body(iter(envelope), page)
        assert next(body).endswith(b'"features":[') and next(body).count(b'"id"') == 10
        with db.cursor() as cur:
            cur.execute("SELECT state FROM pg_stat_activity WHERE application_name = 'geomayotte' "
                        "AND state LIKE 'idle in transaction%%'")
            assert cur.fetchall() == [('idle in transaction',)]   # the open stream
        body.close()
        assert page.closed
        with db.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'geomayotte' "
                        "AND state LIKE 'idle in transaction%%'")
            assert cur.fetchone()[0] == 0
    assert settings.stream_batch() == 10


def test_a_whole_stream_is_valid_json(database_url, monkeypatch):
    from psycopg2 import sql

    from geomayotte import streaming
    monkeypatch.setenv('GEOMAYOTTE_STREAM_BATCH', '7')
    page = streaming.PageStream(database_url)
    page.start(sql.SQL('SELECT evid, json_build_object(\'id\', evid, \'t\', %s)::text '
                       'FROM geodata.seismes ORDER BY evid'), ['<b>'])
    body = b''.join(streaming.body(iter([b'{"a":1,' + streaming.MARK + b',"b":2}']), page))
    doc = json.loads(body)
    assert len(doc['features']) == 426 and doc['a'] == 1 and doc['b'] == 2
    assert b'<' not in body and doc['features'][0]['t'] == '<b>'
    assert page.closed


@pytest.mark.parametrize('limit', [10, STREAM_ROWS, 300])
@pytest.mark.parametrize('accept', ['text/csv, application/json;q=0.5',
                                    'application/geo+json;q=0.9, text/csv'])
def test_accept_naming_csv_and_json_gets_whole_csv(api, limit, accept):
    """Found by a breaking session: these got an empty 200 CSV (the features had been kept
    as GeoJSON text for a JSON answer pygeoapi did not give)."""
    r = api('/collections/seismes/items', headers={'Accept': accept}, limit=limit)
    assert r.status_code == 200 and r.headers['Content-Type'].startswith('text/csv')
    assert len(r.text.strip().splitlines()) == limit + 1     # header + one line per feature


@pytest.mark.parametrize('limit', [5, 500])
def test_cursor_with_a_lone_surrogate_is_400(api, limit):
    """Found by a breaking session: {"k": "\\ud800"} reached psycopg2 and gave a 500."""
    r = api('/collections/communes/items', limit=limit, cursor='eyJrIjogIlx1ZDgwMCJ9')
    assert r.status_code == 400 and 'cursor' in r.json()['description']


def _stalled_clients_then_answers(server, n: int, request: bytes) -> list[bytes]:
    """``n`` clients (more than the server's 2 workers x 4 threads) that send ``request`` and
    then nothing; a normal request must still be served meanwhile, within 15 s (not when
    the clients give up). What each stalled client got back at last."""
    import socket
    import time
    import urllib.parse
    host, port = urllib.parse.urlsplit(server).netloc.split(':')
    stalled = []
    for _ in range(n):
        s = socket.create_connection((host, int(port)), timeout=30)
        s.sendall(request)
        stalled.append(s)
    try:
        time.sleep(1)
        started = time.monotonic()
        r = requests.get(f'{server}/conformance', timeout=30)
        assert r.status_code == 200
        assert time.monotonic() - started < 15          # not until the clients give up
        answers = []
        for s in stalled:
            data = b''
            while chunk := s.recv(65536):
                data += chunk
            answers.append(data)
        return answers
    finally:
        for s in stalled:
            s.close()


def test_clients_that_stall_do_not_hold_the_server(server):
    """Found by a breaking session: clients that stopped reading a large page (or, the same
    in the other direction, never finish sending a body) held every server thread for as
    long as they kept their sockets open. A socket operation now blocks at most
    GEOMAYOTTE_SOCKET_TIMEOUT (5 s for the test server), and a body that does not arrive
    is a 408."""
    answers = _stalled_clients_then_answers(server, 10, (
        b'POST /collections/communes/items HTTP/1.1\r\nHost: x\r\n'
        b'Content-Type: application/query-cql-json\r\nContent-Length: 1000\r\n\r\n{"op":'))
    assert all(a.startswith(b'HTTP/1.1 408') and b'GEOMAYOTTE_SOCKET_TIMEOUT' in a for a in answers), \
        answers[0][:300]


def test_clients_that_never_finish_their_request_head_do_not_hold_the_server(server):
    """Found by a breaking session: gunicorn reads a request head with no time limit, so a
    few clients sending half a request line froze every server thread for as long as they
    kept their sockets open. The head must now arrive within GEOMAYOTTE_SOCKET_TIMEOUT
    (5 s for the test server): then a 408 and the connection is closed."""
    answers = _stalled_clients_then_answers(
        server, 12, b'GET /collections HTTP/1.1\r\nHost: x\r\n')      # no blank line: never ends
    for data in answers:
        assert data.startswith(b'HTTP/1.1 408'), data[:200]
        assert b'GEOMAYOTTE_SOCKET_TIMEOUT' in data and b'application/json' in data


def test_answers_are_sent_in_pieces_the_socket_timeout_can_bound():
    """Found by a breaking session: a 6 MB page written with one sendall was cut for a
    reader slower than 6 MB / GEOMAYOTTE_SOCKET_TIMEOUT however steadily it read (the
    timeout bounds each send). The middleware hands gunicorn pieces of at most 64 KiB, and
    still closes what the application returned."""
    from geomayotte.middleware import _Slices

    class Answer:
        closed = False

        def __iter__(self):
            return iter([b'a' * 10, b'b' * (6 * 1024 * 1024 + 5), b'', b'c' * 65536])

        def close(self):
            self.closed = True
    answer = Answer()
    pieces = list(_Slices(answer))
    assert max(map(len, pieces)) <= 64 * 1024
    assert b''.join(pieces) == b''.join(Answer())
    _Slices(answer).close()
    assert answer.closed


def test_a_large_page_arrives_whole_with_its_length(api):
    r = api('/collections/zones_glissement_terrain/items', f='json', limit=100)
    assert r.status_code == 200 and len(r.content) > 1_000_000
    assert r.json()['numberReturned'] == len(r.json()['features']) == 19
