"""OGC API Features Part 4 for partners with write rights: create, replace, update, delete;
reprojection into the storage CRS; the reference model's verdict on every write;
If-Match / ETag; atomic batches; the history; rights; the loader leaving partner edits be."""
from __future__ import annotations

import json
import threading

import psycopg2
import pyproj
import pytest
import requests

from geomayotte.access import store, tokens

C = 'zones_inondation'
CRS84 = 'http://www.opengis.net/def/crs/OGC/1.3/CRS84'
EPSG4326 = 'http://www.opengis.net/def/crs/EPSG/0/4326'
EPSG4471 = 'http://www.opengis.net/def/crs/EPSG/0/4471'
TO_4471 = pyproj.Transformer.from_crs('OGC:CRS84', 'EPSG:4471', always_xy=True)


def partner_session(database_url, partner: str, title: str, collection: str) -> requests.Session:
    """A partner granted write on ``collection``, as an HTTP session carrying its API key."""
    store.add_partner(database_url, partner, title)
    token, key_id, secret = tokens.new_key()
    store.add_key(database_url, partner, key_id, secret, 'tests', None)
    store.grant(database_url, partner, collection, write=True)
    s = requests.Session()
    s.headers['Authorization'] = f'Bearer {token}'
    return s


@pytest.fixture(scope='module')
def writer(database_url):
    return partner_session(database_url, 'writer', 'Partenaire contributeur', C)


@pytest.fixture(scope='module')
def centre(database_url):
    """A point inside Koungou (97610), in EPSG:4471."""
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM geodata.communes "
                    "WHERE code_insee = '97610') s")
        return cur.fetchone()


def square(centre, dx=0.0, size=40.0):
    """A square of `size` m in EPSG:4471 (counter-clockwise) and the same in CRS84."""
    x, y = centre[0] + dx, centre[1]
    ring = [(x, y), (x + size, y), (x + size, y + size), (x, y + size), (x, y)]
    lonlat = [list(TO_4471.transform(a, b, direction='INVERSE')) for a, b in ring]
    return [[list(p) for p in ring]], [lonlat]


def zone(fid, coords, **props):
    p = {'id_obj': fid, 'lb_type': "Inondation par débordement de cours d'eau ou de ravine",
         'lb_niveau': 'Moyen', 'rf_typeniv': 'I2', 'cd_com': '97610', 'lb_com': 'Koungou',
         'dt_maj': '2026-12-03', **props}
    return {'type': 'Feature', 'geometry': {'type': 'Polygon', 'coordinates': coords}, 'properties': p}


def post(server, session, body, crs=None, ctype='application/geo+json'):
    headers = {'Content-Type': ctype}
    if crs:
        headers['Content-Crs'] = f'<{crs}>'
    return session.post(f'{server}/collections/{C}/items', data=json.dumps(body), headers=headers, timeout=60)


def stored_ring(db, fid):
    with db.cursor() as cur:
        cur.execute(f'SELECT ST_AsGeoJSON(geom, 6)::json, modifie_par FROM geodata.{C} WHERE id_obj = %s', (fid,))
        row = cur.fetchone()
    return (row[0]['coordinates'][0][0], row[1]) if row else (None, None)


def cleanup(server, session, *fids):
    for fid in fids:
        session.delete(f'{server}/collections/{C}/items/{fid}', timeout=30)


@pytest.mark.parametrize('crs,flip', [(None, False), (CRS84, False), (EPSG4326, True), (EPSG4471, False),
                                      ('EPSG:4471', False), ('epsg:4326', True), ('OGC:CRS84', False)])
def test_create_reprojects_into_the_storage_crs_within_a_centimetre(server, writer, db, centre, crs, flip):
    fid = 'ZAPI9101'
    metric, lonlat = square(centre)
    coords = metric if crs in (EPSG4471, 'EPSG:4471') else [[p[::-1] for p in lonlat[0]]] if flip else lonlat
    r = post(server, writer, zone(fid, coords), crs)
    try:
        assert r.status_code == 201, r.text[:500]
        assert r.headers['Location'].endswith(f'/collections/{C}/items/{fid}')
        ring, by = stored_ring(db, fid)
        assert by == 'writer'
        for (x, y), (ex, ey) in zip(ring, metric[0]):
            assert abs(x - ex) < 0.01 and abs(y - ey) < 0.01
        got = writer.get(r.headers['Location'], timeout=30)
        assert got.status_code == 200 and got.headers['ETag'] == r.headers['ETag']
        assert got.json()['properties']['lb_niveau'] == 'Moyen'
    finally:
        cleanup(server, writer, fid)


def test_invalid_features_are_refused_with_the_report(server, writer, centre):
    metric, lonlat = square(centre)
    bowtie = [[lonlat[0][0], lonlat[0][2], lonlat[0][1], lonlat[0][3], lonlat[0][0]]]
    for feature, code in [(zone('ZAPI9102', bowtie), 'G001'),                     # self-intersection
                          (zone('ZAPI9102', lonlat, lb_niveau='Enorme'), 'A'),      # not in the code list
                          (zone('ZAPI9102', lonlat, cd_com='97699'), 'A005'),       # no such commune
                          (zone('BAD-ID', lonlat), 'A')]:                           # identifier pattern
        r = post(server, writer, feature)
        assert r.status_code == 422, r.text[:300]
        body = r.json()
        assert body['code'] == 'ValidationFailed' and body['report']['summary']['errors'] >= 1
        assert any(i['code'].startswith(code) and i['severity'] == 'error'
                   for i in body['report']['issues']), body['report']['issues']
        assert writer.get(f'{server}/collections/{C}/items/ZAPI9102', timeout=30).status_code == 404


@pytest.mark.parametrize('body,ctype,status', [
    ('{not json', 'application/geo+json', 400),
    ('{"type": "Point", "coordinates": [1, 2]}', 'application/geo+json', 400),
    ('{"type": "Feature", "geometry": null, "properties": {}}', 'application/geo+json', 400),
    ('{"type": "Feature", "geometry": {"type": "Point", "coordinates": [45, -12]}, '
     '"properties": {"id_obj": "ZAPI9103", "nope": 1}}', 'application/geo+json', 400),
    ('{"type": "FeatureCollection", "features": []}', 'application/geo+json', 400),
    ('{"type": "Feature", "properties": {"id_obj": NaN}, "geometry": null}', 'application/geo+json', 400),
])
def test_malformed_payloads_are_400(server, writer, body, ctype, status):
    r = writer.post(f'{server}/collections/{C}/items', data=body, headers={'Content-Type': ctype}, timeout=30)
    assert r.status_code == status, r.text[:300]
    assert r.json()['description']


def test_media_types_conflicts_and_crs(server, writer, centre):
    _, lonlat = square(centre)
    r = writer.put(f'{server}/collections/{C}/items/ZAPI0005', data='x', headers={'Content-Type': 'text/plain'},
                   timeout=30)
    assert r.status_code == 415
    r = post(server, writer, zone('ZAPI0005', lonlat))          # exists already
    assert r.status_code == 409 and 'ZAPI0005' in r.json()['description']
    r = post(server, writer, {'type': 'FeatureCollection', 'features': [zone('ZAPI9104', lonlat)] * 2})
    assert r.status_code == 409
    r = post(server, writer, zone('ZAPI9104', lonlat), crs='http://www.opengis.net/def/crs/EPSG/0/3857')
    assert r.status_code == 400 and 'Content-Crs' in r.json()['description']


def test_a_batch_lands_whole_or_not_at_all(server, writer, db, centre):
    good = [zone(f'ZAPI92{i:02d}', square(centre, dx=100.0 * i)[1]) for i in range(3)]
    bad = zone('ZAPI9299', square(centre, dx=500.0)[1], rf_typeniv='I9')
    r = post(server, writer, {'type': 'FeatureCollection', 'features': good + [bad]})
    assert r.status_code == 422
    with db.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM geodata.{C} WHERE id_obj LIKE 'ZAPI92%%'")
        assert cur.fetchone()[0] == 0
    r = post(server, writer, {'type': 'FeatureCollection', 'features': good})
    try:
        assert r.status_code == 201 and r.json()['created'] == ['ZAPI9200', 'ZAPI9201', 'ZAPI9202']
        with db.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM geodata.{C} WHERE id_obj LIKE 'ZAPI92%%'")
            assert cur.fetchone()[0] == 3
    finally:
        cleanup(server, writer, 'ZAPI9200', 'ZAPI9201', 'ZAPI9202')


def test_replace_update_delete_with_etags_and_history(server, writer, db, centre):
    fid = 'ZAPI9105'
    url = f'{server}/collections/{C}/items/{fid}'
    _, lonlat = square(centre)
    r = post(server, writer, zone(fid, lonlat))
    assert r.status_code == 201
    etag = r.headers['ETag']
    replaced = zone(fid, square(centre, size=60.0)[1], lb_niveau='Fort')
    r = writer.put(url, data=json.dumps(replaced), timeout=30,
                   headers={'Content-Type': 'application/geo+json', 'If-Match': etag})
    assert r.status_code == 200 and r.headers['ETag'] != etag
    stale, etag = etag, r.headers['ETag']
    r = writer.put(url, data=json.dumps(replaced), timeout=30,
                   headers={'Content-Type': 'application/geo+json', 'If-Match': stale})
    assert r.status_code == 412
    r = writer.patch(url, data=json.dumps({'properties': {'lb_com': 'Koungou (patched)', 'lb_type': None}}),
                     headers={'Content-Type': 'application/merge-patch+json', 'If-Match': etag}, timeout=30)
    assert r.status_code == 422      # lb_type is mandatory: the patch would remove it
    r = writer.patch(url, data=json.dumps({'properties': {'lb_com': 'Koungou (patched)'}}),
                     headers={'Content-Type': 'application/merge-patch+json', 'If-Match': etag}, timeout=30)
    assert r.status_code == 200     # accepted with a warning: that is not the name of 97610
    assert 'A008' in [w['code'] for w in r.json()['warnings']]
    doc = writer.get(url, timeout=30).json()
    assert doc['properties']['lb_com'] == 'Koungou (patched)' and doc['properties']['lb_niveau'] == 'Fort'
    assert writer.delete(url, headers={'If-Match': stale}, timeout=30).status_code == 412
    assert writer.delete(url, headers={'If-Match': r.headers['ETag']}, timeout=30).status_code == 204
    assert writer.get(url, timeout=30).status_code == 404
    hist = writer.get(url + '/history', timeout=30).json()['changes']
    assert [h['operation'] for h in hist] == ['create', 'replace', 'update', 'delete']
    assert all(h['partner'] == 'writer' for h in hist)
    assert hist[0]['before'] is None and hist[-1]['after'] is None
    assert hist[1]['before']['properties']['lb_niveau'] == 'Moyen'
    assert hist[1]['after']['properties']['lb_niveau'] == 'Fort'
    assert 'A008' in [w['code'] for w in hist[2]['warnings']]               # warnings recorded
    assert hist[-1]['before']['properties']['lb_com'] == 'Koungou (patched)'   # nothing lost
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM audit.change WHERE collection = %s AND feature_id = %s", (C, fid))
        assert cur.fetchone()[0] == 4


def test_concurrent_writers_lose_no_update(server, writer, centre):
    fid = 'ZAPI9106'
    url = f'{server}/collections/{C}/items/{fid}'
    assert post(server, writer, zone(fid, square(centre)[1])).status_code == 201
    errors = []

    def patch(prop, values):
        s = requests.Session()
        s.headers.update(writer.headers)
        for v in values:
            r = s.patch(url, data=json.dumps({'properties': {prop: v}}), timeout=60,
                        headers={'Content-Type': 'application/merge-patch+json'})
            if r.status_code != 200:
                errors.append(r.text)
    try:
        a = threading.Thread(target=patch, args=('lb_com', [f'com {i}' for i in range(6)]))
        b = threading.Thread(target=patch, args=('dt_maj', [f'2026-01-0{i + 1}' for i in range(6)]))
        a.start(), b.start()
        a.join(), b.join()
        assert not errors
        doc = writer.get(url, timeout=30).json()['properties']
        assert doc['lb_com'] == 'com 5' and doc['dt_maj'] == '2026-01-06'
        # two writers holding the same ETag: one wins, the other is told
        etag = writer.get(url, timeout=30).headers['ETag']
        codes = []

        def put(level):
            r = requests.put(url, data=json.dumps(zone(fid, square(centre)[1], lb_niveau=level)), timeout=60,
                             headers={**writer.headers, 'Content-Type': 'application/geo+json', 'If-Match': etag})
            codes.append(r.status_code)
        ts = [threading.Thread(target=put, args=(lvl,)) for lvl in ('Faible', 'Fort')]
        [t.start() for t in ts]
        [t.join() for t in ts]
        assert sorted(codes) == [200, 412]
    finally:
        cleanup(server, writer, fid)


def test_who_may_write(server, anon, api, writer, centre):
    _, lonlat = square(centre)
    body = json.dumps(zone('ZAPI9107', lonlat))
    h = {'Content-Type': 'application/geo+json'}
    r = requests.post(f'{server}/collections/{C}/items', data=body, headers=h, timeout=30)
    assert r.status_code == 404      # zones_inondation is for partners: anonymous callers do not see it
    r = requests.post(f'{server}/collections/communes/items', data=body, headers=h, timeout=30)
    assert r.status_code == 401 and r.headers['WWW-Authenticate'].startswith('Bearer')
    r = api.session.post(f'{server}/collections/{C}/items', data=body, headers=h, timeout=30)
    assert r.status_code == 403      # test-partner reads it, may not write
    r = writer.post(f'{server}/collections/seismes/items', data=body, headers=h, timeout=30)
    assert r.status_code == 405 and 'read-only' in r.json()['description']
    # POST stays in Allow (searches): the message says so (a newcomer found it confusing)
    assert 'POST' in r.headers['Allow'] and 'searches only' in r.json()['description']
    r = writer.post(f'{server}/collections/forets_publiques/items', data=body, headers=h, timeout=30)
    assert r.status_code == 404      # restricted, not granted to writer
    r = writer.delete(f'{server}/collections/{C}/items/ZAPI9999', timeout=30)
    assert r.status_code == 404


def test_the_loader_leaves_partner_edits_alone(server, writer, database_url, data_dir, centre):
    from geomayotte.loader import cli as loader
    fid = 'ZAPI9108'
    assert post(server, writer, zone(fid, square(centre)[1])).status_code == 201
    url = f'{server}/collections/{C}/items/ZAPI0010'
    before = writer.get(url, timeout=30)
    assert writer.patch(url, data=json.dumps({'properties': {'lb_com': 'Koungou (partenaire)'}}),
                        headers={'Content-Type': 'application/merge-patch+json'}, timeout=30).status_code == 200
    assert writer.delete(f'{server}/collections/{C}/items/ZAPI0040', timeout=30).status_code == 204
    try:
        loader.load_all(database_url, data_dir, progress=False)
        assert writer.get(f'{server}/collections/{C}/items/{fid}', timeout=30).status_code == 200
        assert writer.get(url, timeout=30).json()['properties']['lb_com'] == 'Koungou (partenaire)'
        assert writer.get(f'{server}/collections/{C}/items/ZAPI0040', timeout=30).status_code == 404
    finally:   # back to the source's state for whatever runs next
        with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
            cur.execute(f"DELETE FROM geodata.{C} WHERE id_obj = %s", (fid,))
            cur.execute(f"UPDATE geodata.{C} SET modifie_par = NULL WHERE id_obj = 'ZAPI0010'")
            cur.execute("DELETE FROM audit.change WHERE collection = %s AND feature_id IN ('ZAPI0010', "
                        "'ZAPI0040')", (C,))
        loader.load_all(database_url, data_dir, progress=False)
    assert writer.get(url, timeout=30).json()['properties'] == {
        **before.json()['properties'], 'modifie_le': writer.get(url, timeout=30).json()['properties']['modifie_le']}


def test_partners_follow_changes(server, writer, centre):
    """Collections say when their data last changed; items filtered by modifie_le give what
    changed since; deletions are in the history; conformance claims Part 4."""
    coll = writer.get(f'{server}/collections/{C}', params={'f': 'json'}, timeout=30).json()
    since = coll['updated']
    fid = 'ZAPI9109'
    assert post(server, writer, zone(fid, square(centre)[1])).status_code == 201
    try:
        now = writer.get(f'{server}/collections/{C}', params={'f': 'json'}, timeout=30).json()['updated']
        assert now > since
        listed = {c['id']: c for c in writer.get(f'{server}/collections', params={'f': 'json'},
                                                 timeout=30).json()['collections']}
        assert listed[C]['updated'] == now and 'updated' in listed['communes']
        changed = writer.get(f'{server}/collections/{C}/items', timeout=30, params={
            'f': 'json', 'filter': f"modifie_le > TIMESTAMP('{since}')"}).json()
        assert [f['id'] for f in changed['features']] == [fid]
        q = writer.get(f'{server}/collections/{C}/queryables', params={'f': 'json'}, timeout=30).json()
        assert 'modifie_le' in q['properties'] and 'modifie_par' not in q['properties']
    finally:
        cleanup(server, writer, fid)
    after = writer.get(f'{server}/collections/{C}', params={'f': 'json'}, timeout=30).json()['updated']
    assert after > now          # the deletion counts as a change
    conf = writer.get(f'{server}/conformance', params={'f': 'json'}, timeout=30).json()['conformsTo']
    for cls in ('create-replace-delete', 'update', 'optimistic-locking-etags'):
        assert f'http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/{cls}' in conf


def test_openapi_describes_the_writes(server, writer):
    doc = writer.get(f'{server}/openapi', params={'f': 'json'}, timeout=30).json()
    items, item = doc['paths'][f'/collections/{C}/items'], doc['paths'][f'/collections/{C}/items/{{featureId}}']
    assert {'get', 'post'} <= set(items) and {'get', 'put', 'patch', 'delete'} <= set(item)
    assert '422' in items['post']['responses'] and '412' in item['put']['responses']
    assert f'/collections/{C}/items/{{featureId}}/history' in doc['paths']
    assert doc['components']['securitySchemes']['bearer']['scheme'] == 'bearer'
    assert 'put' not in doc['paths']['/collections/seismes/items/{featureId}']     # read-only
    for op in (item['get'], item['patch'], doc['paths']['/collections/seismes/items/{featureId}']['get']):
        assert 'If-None-Match' in [p.get('name') for p in op['parameters']]
    assert '304' in item['get']['responses']
    assert 'security' not in doc['paths']['/collections/seismes/items'].get('post', {})  # a search


# -- found by breaking sessions ---------------------------------------------------------------------
def test_concurrent_patches_do_not_freeze_the_server(server, writer, centre):
    """12 PATCHes of one feature at once used to hold every pooled connection (row lock held
    while validation waited for a connection of the same pool): the server froze."""
    import concurrent.futures
    import time
    fid = 'ZAPI9110'
    url = f'{server}/collections/{C}/items/{fid}'
    assert post(server, writer, zone(fid, square(centre)[1])).status_code == 201

    def patch(i):
        s = requests.Session()
        s.headers.update(writer.headers)
        return s.patch(url, data=json.dumps({'properties': {'lb_com': f'c{i}'}}), timeout=90,
                       headers={'Content-Type': 'application/merge-patch+json'}).status_code
    try:
        start = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(12) as ex:
            codes = list(ex.map(patch, range(12)))
        assert codes == [200] * 12, codes
        assert time.monotonic() - start < 60
        assert requests.get(f'{server}/collections/villages/items', params={'limit': 1}, timeout=10).ok
        hist = writer.get(url + '/history', timeout=30).json()['changes']
        assert [h['operation'] for h in hist].count('update') == 12
    finally:
        cleanup(server, writer, fid)


@pytest.mark.parametrize('body', [
    '{"type": "Feature", "geometry": null, "properties": {"id_obj": "ZAPI9111", "lb_type": "a\\u0000b"}}',
    '{"type": "Feature", "geometry": null, "properties": {"id_obj": "ZAPI9111", "lb_type": "\\ud800"}}',
    '[' * 100000 + ']' * 100000,
    '{"type": "Feature", "crs": {"type": "name", "properties": {"name": "EPSG:2154"}}, '
    '"geometry": {"type": "Point", "coordinates": [1, 2]}, "properties": {"id_obj": "ZAPI9111"}}',
])
def test_bodies_postgresql_cannot_take_are_400(server, writer, body):
    r = writer.post(f'{server}/collections/{C}/items', data=body,
                    headers={'Content-Type': 'application/geo+json'}, timeout=30)
    assert r.status_code == 400, r.text[:300]


def test_more_write_edges(server, writer, anon, centre):
    _, lonlat = square(centre)
    assert post(server, writer, zone('ZAPI9112', lonlat), crs='<>').status_code == 400   # '<<>>'
    for rid in ('relief', 'catalogue'):
        r = writer.post(f'{server}/collections/{rid}/items', data=json.dumps(zone('ZAPI9112', lonlat)),
                        headers={'Content-Type': 'application/geo+json'}, timeout=30)
        assert r.status_code == 405, (rid, r.status_code)
    assert writer.get(f'{server}/collections/communes/items/a%00/history', timeout=30).status_code == 404
    assert writer.delete(f'{server}/collections/{C}/items/ZAPI98%00', timeout=30).status_code == 404
    # features POSTed as application/json are created too (a CQL2 JSON body is still a search)
    r = writer.post(f'{server}/collections/{C}/items', data=json.dumps(zone('ZAPI9112', lonlat)),
                    headers={'Content-Type': 'application/json'}, timeout=30)
    try:
        assert r.status_code == 201, r.text[:300]
        search = writer.post(f'{server}/collections/{C}/items', timeout=30,
                             data=json.dumps({'op': '=', 'args': [{'property': 'id_obj'}, 'ZAPI9112']}),
                             headers={'Content-Type': 'application/json'})
        assert search.status_code == 200 and [f['id'] for f in search.json()['features']] == ['ZAPI9112']
    finally:
        cleanup(server, writer, 'ZAPI9112')
    # a hidden collection and a missing one: the same 404 (as GET says), naming what was asked
    a = anon.session.put(f'{server}/collections/forets_publiques', timeout=30)
    b = anon.session.put(f'{server}/collections/nope', timeout=30)
    assert a.status_code == b.status_code == 404
    assert a.text.replace('forets_publiques', 'X') == b.text.replace('nope', 'X')


def test_conditional_requests(server, writer, centre):
    """RFC 9110 preconditions: a read naming the feature's ETag is a 304 (weak comparison, any
    CRS: the tag is the row's version), HEAD carries the ETag; a write is refused with 412 when
    If-Match does not hold (a weak tag never does) or If-None-Match names the feature."""
    fid = 'ZAPI9300'
    url = f'{server}/collections/{C}/items/{fid}'
    try:
        r = post(server, writer, zone(fid, square(centre)[1]))
        assert r.status_code == 201
        etag = r.headers['ETag']
        got = writer.get(url, timeout=30)
        assert got.status_code == 200 and got.headers['ETag'] == etag
        head = writer.head(url, timeout=30)
        assert head.status_code == 200 and head.headers['ETag'] == etag and head.content == b''
        assert head.headers['Content-Length'] == got.headers['Content-Length']
        for tag in (etag, f'W/{etag}', f'"nope", {etag}', '*'):
            for query in ('', '?crs=http://www.opengis.net/def/crs/EPSG/0/4471'):
                r = writer.get(url + query, headers={'If-None-Match': tag}, timeout=30)
                assert r.status_code == 304 and r.content == b'', (tag, query)
                assert r.headers['ETag'] == etag and 'authorization' in r.headers['Vary'].lower()
        for tag in ('"nope"', '', 'W/', '"' + 'x' * 5000 + '"', 'é'):
            r = writer.get(url, headers={'If-None-Match': tag.encode()}, timeout=30)
            assert r.status_code == 200 and r.json()['id'] == fid, tag
        patch = json.dumps({'properties': {'lb_niveau': 'Fort'}})
        ctype = {'Content-Type': 'application/merge-patch+json'}
        for headers in ({'If-Match': f'W/{etag}'}, {'If-Match': '"nope"'}, {'If-Match': ''},
                        {'If-None-Match': '*'}, {'If-None-Match': etag}, {'If-None-Match': f'W/{etag}'}):
            r = writer.patch(url, data=patch, headers={**ctype, **headers}, timeout=30)
            assert r.status_code == 412 and r.json()['code'] == 'PreconditionFailed', headers
            assert writer.delete(url, headers=headers, timeout=30).status_code == 412, headers
        assert writer.get(url, timeout=30).json()['properties']['lb_niveau'] == 'Moyen'   # untouched
        r = writer.patch(url, data=patch, timeout=30,
                         headers={**ctype, 'If-Match': f'"nope", {etag}', 'If-None-Match': '"nope"'})
        assert r.status_code == 200 and r.headers['ETag'] != etag
        assert writer.get(url, headers={'If-None-Match': etag}, timeout=30).status_code == 200   # changed
    finally:
        cleanup(server, writer, fid)


def test_a_body_over_the_limit_is_a_413_the_client_reads(server, writer):
    """Found by a breaking session: the 413 was sent while the client was still sending, so
    clients saw a reset connection instead; the refused body is now read and dropped."""
    big = b'{"type": "Feature", "properties": {"x": "' + b'a' * (17 * 1024 * 1024) + b'"}}'
    for _ in range(3):
        r = writer.post(f'{server}/collections/{C}/items', data=big, timeout=60,
                        headers={'Content-Type': 'application/geo+json'})
        assert r.status_code == 413 and r.json()['code'] == 'PayloadTooLarge'
        assert 'GEOMAYOTTE_MAX_WRITE_BODY' in r.json()['description']
    assert writer.get(f'{server}/collections/{C}/items', params={'limit': 1}, timeout=30).status_code == 200


def test_history_edges(server, writer, db):
    """Found by a newcomer: a feature that never existed had an empty history (200), the
    geometries' CRS was not said, parameters were ignored."""
    with db.cursor() as cur:
        cur.execute('SELECT id_obj FROM geodata.zones_inondation WHERE modifie_par IS NULL LIMIT 1')
        loaded, = cur.fetchone()
    url = f'{server}/collections/{C}/items'
    r = writer.get(f'{url}/{loaded}/history', timeout=30)          # loaded, never written
    assert r.status_code == 200 and r.json()['changes'] == []
    assert r.json()['crs'] == 'http://www.opengis.net/def/crs/EPSG/0/4471'
    assert r.headers['Content-Crs'] == '<http://www.opengis.net/def/crs/EPSG/0/4471>'
    assert writer.get(f'{url}/{loaded}/history', params={'f': 'json'}, timeout=30).status_code == 200
    r = writer.get(f'{url}/ZAPI9999/history', timeout=30)
    assert r.status_code == 404 and 'ZAPI9999' in r.json()['description']
    for params in ({'f': 'html'}, {'crs': 'http://www.opengis.net/def/crs/OGC/1.3/CRS84'}, {'limit': '1'}):
        r = writer.get(f'{url}/{loaded}/history', params=params, timeout=30)
        assert r.status_code == 400 and next(iter(params)) in r.json()['description'], params
    for path in ('/collections/seismes/items/665884/history', '/collections/relief/items/1/history',
                 '/collections/catalogue/items/communes/history'):     # read-only, no features
        assert writer.get(f'{server}{path}', timeout=30).status_code == 404, path


def test_a_chunked_write_is_read(server, writer, centre):
    """Found by a breaking session: a body sent with Transfer-Encoding: chunked was ignored."""
    fid = 'ZAPI9301'
    body = json.dumps(zone(fid, square(centre)[1])).encode()
    try:
        r = writer.post(f'{server}/collections/{C}/items', data=iter([body[:100], body[100:]]), timeout=30,
                        headers={'Content-Type': 'application/geo+json'})
        assert r.status_code == 201, r.text[:300]
        assert writer.get(f'{server}/collections/{C}/items/{fid}', timeout=30).status_code == 200
    finally:
        cleanup(server, writer, fid)


def test_a_chunked_feature_sent_as_application_json_is_created(server, writer, centre):
    """Found by a breaking session: without a Content-Length the body was not looked at and
    the Feature was taken for a CQL2 search (400)."""
    fid = 'ZAPI9302'
    body = json.dumps(zone(fid, square(centre)[1])).encode()
    try:
        r = writer.post(f'{server}/collections/{C}/items', data=iter([body[:50], body[50:]]), timeout=30,
                        headers={'Content-Type': 'application/json'})
        assert r.status_code == 201, r.text[:300]
        again = writer.post(f'{server}/collections/{C}/items', data=iter([body]), timeout=30,
                            headers={'Content-Type': 'application/json'})
        assert again.status_code == 409
        search = json.dumps({'op': '=', 'args': [{'property': 'id_obj'}, fid]}).encode()
        found = writer.post(f'{server}/collections/{C}/items', data=iter([search]), timeout=30,
                            headers={'Content-Type': 'application/json'})
        assert found.status_code == 200 and [f['id'] for f in found.json()['features']] == [fid]
    finally:
        cleanup(server, writer, fid)


@pytest.mark.parametrize('props, words', [
    ({'lb_com': {'a': 1}}, "'lb_com' must be a string"),                # psycopg2: can't adapt dict
    ({'lb_com': ['Koungou']}, "'lb_com' must be a string"),
    ({'lb_com': 97610}, "'lb_com' must be a string"),                   # was made text silently
    ({'lb_com': True}, "'lb_com' must be a string"),
    ({'dt_maj': 20261203}, "'dt_maj' must be a date"),
])
def test_values_of_the_wrong_type_are_400(server, writer, centre, props, words):
    """Found by a breaking session: a value of another JSON type than its column's was a 500
    (an object) or was cast by PostgreSQL (an array of arrays stored, a number made text)."""
    fid = 'ZAPI9303'
    r = post(server, writer, zone(fid, square(centre)[1], **props))
    assert r.status_code == 400, r.text[:300]
    assert words in r.json()['description']
    assert writer.get(f'{server}/collections/{C}/items/{fid}', timeout=30).status_code == 404


@pytest.fixture(scope='module')
def village_writer(database_url):
    return partner_session(database_url, 'village-writer', 'Contributeur des villages', 'villages')


@pytest.mark.parametrize('value, status', [
    ([{'a': 1}], 400), ([True, 1.5], 400), ([[1]], 400), ([1, 'a'], 400), ('Mamoudzou', 400),
    ({'x': 'y'}, 400), (['Mamutzu', 'Momoju'], 200), ([], 200), (None, 200),
])
def test_array_properties_take_lists_of_their_element_type(server, village_writer, db, value, status):
    """Found by a breaking session: `autres_noms` (text[]) took [[1]] (stored as a 2-D array),
    [{"a": 1}] and [true, 1.5] were 500s, [1, "a"] got PostgreSQL's integer message."""
    url = f'{server}/collections/villages/items/1090467'
    with db.cursor() as cur:
        cur.execute('SELECT autres_noms FROM geodata.villages WHERE geonameid = 1090467')
        (before,) = cur.fetchone()
    etag = village_writer.get(url, timeout=30).headers['ETag']
    r = village_writer.patch(url, data=json.dumps({'properties': {'autres_noms': value}}), timeout=30,
                             headers={'Content-Type': 'application/merge-patch+json', 'If-Match': etag})
    try:
        assert r.status_code == status, r.text[:300]
        if status == 400:
            assert "'autres_noms' must be a list of strings" in r.json()['description']
        else:
            got = village_writer.get(url, timeout=30).json()['properties'].get('autres_noms')
            assert got == value
    finally:
        with db.cursor() as cur:    # as loaded (the loader would also put it back)
            cur.execute('UPDATE geodata.villages SET autres_noms = %s WHERE geonameid = 1090467', (before,))


def test_an_empty_content_crs_is_400(server, writer, centre):
    """Found by a breaking session: `Content-Crs: <>` was taken as no header (CRS84)."""
    for header in ('<>', '', '< >'):
        r = writer.post(f'{server}/collections/{C}/items', data=json.dumps(zone('ZAPI9304', square(centre)[1])),
                        headers={'Content-Type': 'application/geo+json', 'Content-Crs': header}, timeout=30)
        assert r.status_code == 400 and 'Content-Crs is empty' in r.json()['description'], (header, r.text[:200])


def test_a_too_large_application_json_body_names_both_limits(server, writer):
    big = b'{"type": "Feature", "properties": {"x": "' + b'a' * (17 * 1024 * 1024) + b'"}}'
    r = writer.post(f'{server}/collections/{C}/items', data=big, timeout=60,
                    headers={'Content-Type': 'application/json'})
    assert r.status_code == 413
    assert 'GEOMAYOTTE_MAX_BODY' in r.json()['description']
    assert 'GEOMAYOTTE_MAX_WRITE_BODY' in r.json()['description']


@pytest.mark.parametrize('patch, words', [
    ({'geometry': None}, 'would remove the geometry'),
    ({'type': 'FeatureCollection'}, 'is a Feature'),
    ({'type': 'FeatureCollection', 'features': []}, 'is a Feature'),
])
def test_a_merge_patch_that_cannot_apply_is_400(server, writer, centre, patch, words):
    """Found by a breaking session: "geometry": null (RFC 7396: remove it) answered 200 and
    kept the geometry, a FeatureCollection as a patch was taken too."""
    fid = 'ZAPI9305'
    url = f'{server}/collections/{C}/items/{fid}'
    try:
        assert post(server, writer, zone(fid, square(centre)[1])).status_code == 201
        r = writer.patch(url, data=json.dumps(patch), timeout=30,
                         headers={'Content-Type': 'application/merge-patch+json'})
        assert r.status_code == 400 and words in r.json()['description'], r.text[:300]
        assert writer.get(f'{url}/history', timeout=30).json()['changes'][-1]['operation'] == 'create'
    finally:
        cleanup(server, writer, fid)


def test_a_refused_body_closes_the_connection_and_the_next_request_works(server, writer):
    """Found by CI: after a 413 whose body was not read to its end, the client reused the
    connection and its next request got "remote end closed connection without response"."""
    big = b'{"type": "Feature", "properties": {"x": "' + b'a' * (40 * 1024 * 1024) + b'"}}'
    for ctype in ('application/json', 'application/geo+json'):
        r = writer.post(f'{server}/collections/{C}/items', data=big, timeout=60, headers={'Content-Type': ctype})
        assert r.status_code == 413 and r.headers.get('Connection') == 'close', (ctype, dict(r.headers))
        again = writer.post(f'{server}/collections/{C}/items', timeout=30, headers={'Content-Type': 'application/json'},
                            data=json.dumps({'op': '=', 'args': [{'property': 'id_obj'}, 'ZAPI0040']}))
        assert again.status_code == 200
