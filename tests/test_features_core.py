"""OGC API Features Part 1 Core over the real data, through a live gunicorn server."""
from __future__ import annotations

import json
import urllib.parse

import pytest

COLLECTIONS = ['departement', 'communes', 'cantons', 'population_communes', 'villages',
               'zones_glissement_terrain', 'zones_inondation', 'forets_publiques', 'seismes',
               'antennes_gsm', 'trait_de_cote']
COUNTS = {'communes': 17, 'villages': 66, 'seismes': 426, 'antennes_gsm': 154, 'cantons': 13,
          'departement': 1, 'zones_glissement_terrain': 19, 'zones_inondation': 11,
          'forets_publiques': 12, 'trait_de_cote': 27, 'population_communes': 17}


def test_landing_conformance_collections(api):
    landing = api('/', f='json').json()
    rels = {lk['rel'] for lk in landing['links']}
    assert {'service-desc', 'conformance', 'data'} <= rels
    conf = api('/conformance', f='json').json()['conformsTo']
    for cls in ('ogcapi-features-1/1.0/conf/core', 'ogcapi-features-1/1.0/conf/geojson',
                'ogcapi-features-2/1.0/conf/crs', 'ogcapi-features-3/1.0/conf/filter'):
        assert any(c.endswith(cls) for c in conf), cls
    ids = {c['id'] for c in api('/collections', f='json').json()['collections']}
    assert set(COLLECTIONS) | {'relief'} <= ids


def test_openapi_served(api):
    r = api('/openapi', f='json')
    assert r.status_code == 200
    assert '/collections/communes/items' in r.json()['paths']


@pytest.mark.parametrize('name', COLLECTIONS)
def test_number_matched_equals_source_count(api, name):
    r = api(f'/collections/{name}/items', limit=5)
    assert r.status_code == 200
    assert r.headers['Content-Type'].startswith('application/geo+json')
    doc = r.json()
    assert doc['numberMatched'] == COUNTS[name]
    assert doc['numberReturned'] == len(doc['features']) == min(5, COUNTS[name])
    hits = api(f'/collections/{name}/items', resulttype='hits').json()
    assert hits['numberMatched'] == COUNTS[name] and hits['features'] == []


def _walk(api, path, **params):
    """Follow `next` links; returns (ids in order, pages)."""
    ids, pages = [], 0
    r = api(path, **params)
    while True:
        assert r.status_code == 200, r.text
        doc = r.json()
        pages += 1
        ids += [f['id'] for f in doc['features']]
        nxt = [lk['href'] for lk in doc['links'] if lk['rel'] == 'next']
        assert len(nxt) <= 1
        if not nxt:
            return ids, pages, doc
        # every query parameter exactly once in the next link
        keys = [k for k, _ in urllib.parse.parse_qsl(urllib.parse.urlsplit(nxt[0]).query)]
        assert len(keys) == len(set(keys)), nxt[0]
        r = api.session.get(nxt[0], timeout=30)
        assert pages < 500


@pytest.mark.parametrize('limit', [1, 7, 17, 50, 426, 1000])
def test_next_links_walk_every_feature_once(api, limit):
    ids, pages, last = _walk(api, '/collections/seismes/items', limit=limit, skipGeometry='true')
    assert len(ids) == len(set(ids)) == 426
    assert pages == -(-426 // limit) or (426 % limit == 0 and pages == 426 // limit)
    assert not [lk for lk in last['links'] if lk['rel'] == 'next']


def test_walk_stops_on_exactly_full_last_page(api):
    # 17 communes, 17 per page: one page, no next link to an empty page
    ids, pages, last = _walk(api, '/collections/communes/items', limit=17, skipGeometry='true')
    assert pages == 1 and len(ids) == 17
    ids, pages, last = _walk(api, '/collections/communes/items', limit=1, skipGeometry='true')
    assert pages == 17 and len(set(ids)) == 17
    prev = [lk['href'] for lk in last['links'] if lk['rel'] == 'prev']
    assert len(prev) == 1 and 'cursor' not in prev[0] and 'offset=15' in prev[0]


def test_walk_with_filters_and_sort_keeps_params(api):
    ids, _, _ = _walk(api, '/collections/seismes/items', limit=40, sortby='-mag',
                      filter='mag >= 4.5', skipGeometry='true')
    mags = api('/collections/seismes/items', limit=1000, filter='mag >= 4.5').json()
    assert len(ids) == len(set(ids)) == mags['numberMatched']


def test_offset_paging_and_prev(api):
    doc = api('/collections/villages/items', limit=10, offset=20, skipGeometry='true').json()
    assert doc['numberMatched'] == 66 and doc['numberReturned'] == 10
    prev = [lk['href'] for lk in doc['links'] if lk['rel'] == 'prev']
    assert prev and 'offset=10' in prev[0]
    past = api('/collections/villages/items', limit=10, offset=1000).json()
    assert past['features'] == [] and past['numberMatched'] == 66


def test_limit_default_and_maximum(api):
    assert api('/collections/seismes/items').json()['numberReturned'] == 10
    r = api('/collections/seismes/items', limit=100000, skipGeometry='true')
    assert r.status_code == 200 and r.json()['numberReturned'] == 426   # capped at max 10000


def test_single_item_and_types(api):
    f = api('/collections/communes/items/97611').json()
    assert f['type'] == 'Feature' and f['id'] == '97611'
    changed = f['properties'].pop('modifie_le')   # when the feature last changed (load or write)
    assert f['properties'] == {'code_insee': '97611', 'nom': 'Mamoudzou', 'geom_valid': True,
                               'geom_invalid_reason': None}
    assert changed.startswith('20') and 'T' in changed
    assert f['geometry']['type'] == 'MultiPolygon'
    q = api('/collections/seismes/items/665884').json()
    assert q['id'] == 665884 and q['properties']['t0'] == '2018-05-13T04:28:02+00:00'


@pytest.mark.parametrize('path', ['/collections/seismes/items/abc', '/collections/seismes/items/1.5',
                                  '/collections/seismes/items/99999999999999999999999',
                                  '/collections/communes/items/99999',
                                  '/collections/communes/items/%27%20OR%201=1--'])
def test_missing_or_mistyped_item_is_404(api, path):
    r = api(path)
    assert r.status_code == 404
    assert r.json()['code'] == 'NotFound'


def test_population_has_null_geometry(api):
    doc = api('/collections/population_communes/items', limit=17).json()
    assert all(f['geometry'] is None for f in doc['features'])
    assert sum(f['properties']['population'] for f in doc['features']) == 256518
    assert api('/collections/population_communes/items/97611').json()['geometry'] is None


def test_invalid_flood_feature_served_and_queryable(api):
    f = api('/collections/zones_inondation/items/ZAPI0040').json()
    assert len(f['geometry']['coordinates']) == 213
    # spatial queries over the collection include it and do not fail
    env = 'POLYGON((45.17 -12.74, 45.18 -12.74, 45.18 -12.73, 45.17 -12.73, 45.17 -12.74))'
    for flt in (f'S_INTERSECTS(geometry, {env})', f'S_WITHIN(geometry, {env})',
                'S_CONTAINS(geometry, POINT(45.1775 -12.7345))', f'S_OVERLAPS(geometry, {env})',
                f'S_TOUCHES(geometry, {env})', f'S_CROSSES(geometry, {env})',
                f'S_DISJOINT(geometry, {env})', f'S_EQUALS(geometry, {env})'):
        r = api('/collections/zones_inondation/items', filter=flt, skipGeometry='true')
        assert r.status_code == 200, (flt, r.text)
    ids = [f['id'] for f in api('/collections/zones_inondation/items', filter=f'S_INTERSECTS(geometry, {env})',
                                 skipGeometry='true').json()['features']]
    assert 'ZAPI0040' in ids
    ids = [f['id'] for f in api('/collections/zones_inondation/items', bbox='45.17,-12.74,45.18,-12.73',
                                 skipGeometry='true').json()['features']]
    assert 'ZAPI0040' in ids


def test_properties_and_skip_geometry(api):
    f = api('/collections/seismes/items', limit=1, properties='mag,t0', skipGeometry='true').json()['features'][0]
    assert set(f['properties']) == {'mag', 't0'} and f['geometry'] is None


def test_sortby(api):
    mags = [f['properties']['mag'] for f in
            api('/collections/seismes/items', limit=50, sortby='-mag,t0', skipGeometry='true').json()['features']]
    assert mags == sorted(mags, reverse=True) and mags[0] == 5.8
    names = [f['properties']['nom'] for f in
             api('/collections/communes/items', limit=17, sortby='nom', skipGeometry='true').json()['features']]
    assert names == sorted(names)


def test_simple_property_filters(api):
    doc = api('/collections/villages/items', code_insee='97611', limit=100, skipGeometry='true').json()
    assert doc['numberMatched'] >= 1
    assert all(f['properties']['code_insee'] == '97611' for f in doc['features'])
    doc = api('/collections/villages/items', autres_noms='Passamaïnti', skipGeometry='true').json()
    assert [f['id'] for f in doc['features']] == [921704]
    doc = api('/collections/seismes/items', mag='5.8', skipGeometry='true').json()
    assert doc['numberMatched'] >= 1 and all(f['properties']['mag'] == 5.8 for f in doc['features'])


def test_bbox(api):
    # Mamoudzou's villages
    bbox = '45.19,-12.82,45.24,-12.76'
    doc = api('/collections/villages/items', bbox=bbox, limit=100).json()
    assert doc['numberMatched'] > 0
    for f in doc['features']:
        x, y = f['geometry']['coordinates']
        assert 45.19 <= x <= 45.24 and -12.82 <= y <= -12.76
    six = api('/collections/villages/items', bbox='45.19,-12.82,-100,45.24,-12.76,100', limit=100).json()
    assert six['numberMatched'] == doc['numberMatched']
    world = api('/collections/villages/items', bbox='-180,-90,180,90').json()
    assert world['numberMatched'] == 66
    antimeridian = api('/collections/villages/items', bbox='170,-20,50,0').json()   # crosses 180
    assert antimeridian['numberMatched'] == 66
    elsewhere = api('/collections/villages/items', bbox='170,-20,-170,0').json()
    assert elsewhere['numberMatched'] == 0 and elsewhere['features'] == []


def test_datetime(api):
    def n(dt):
        r = api('/collections/seismes/items', datetime=dt, resulttype='hits')
        assert r.status_code == 200, (dt, r.text)
        return r.json()['numberMatched']
    total = 426
    y2019 = n('2019-01-01T00:00:00Z/2019-12-31T23:59:59Z')
    assert 0 < y2019 < total
    assert n('2019-01-01/2019-12-31') == y2019        # dates: whole days
    before, after = n('../2019-01-01T00:00:00Z'), n('2019-01-01T00:00:00Z/..')
    assert before + after == total + n('2019-01-01T00:00:00Z')
    assert n('/2019-01-01T00:00:00Z') == before and n('2019-01-01T00:00:00Z/') == after
    assert n('2018-05-13T04:28:02Z') == 1             # an instant
    assert n('2018-05-13') >= 1                       # a whole day
    assert n('../..') == total


def test_datetime_on_date_column(api):
    def n(value):
        r = api('/collections/zones_glissement_terrain/items', datetime=value, resulttype='hits')
        assert r.status_code == 200, r.text
        return r.json()['numberMatched']
    # dt_maj holds 2014-10-30 (3), 2015-08-01 (9), 2019-06-26 (7)
    assert n('2019-06-26') == 7 and n('2015-08-01T00:00:00Z') == 9
    assert n('2015-01-01/..') == 16 and n('../2015-08-01') == 12 and n('2016-01-01/2017-01-01') == 0


BAD = [
    ('/collections/seismes/items', {'bbox': '1,2,3'}, 'bbox'),
    ('/collections/seismes/items', {'bbox': 'a,b,c,d'}, 'bbox'),
    ('/collections/seismes/items', {'bbox': 'nan,nan,nan,nan'}, 'bbox'),
    ('/collections/seismes/items', {'bbox': 'inf,-13,46,-12'}, 'bbox'),
    ('/collections/seismes/items', {'bbox': '45,-12,46,-13'}, 'miny'),
    ('/collections/seismes/items', {'bbox': '45,-100,46,-12'}, 'latitude'),
    ('/collections/seismes/items', {'bbox': '1,2,3,4', 'bbox-crs': 'EPSG:9999'}, 'bbox-crs'),
    ('/collections/seismes/items', {'bbox-crs': 'http://www.opengis.net/def/crs/EPSG/0/4471'}, 'bbox'),
    ('/collections/seismes/items', {'datetime': 'yesterday'}, 'datetime'),
    ('/collections/seismes/items', {'datetime': '2019-02-30'}, 'datetime'),
    ('/collections/seismes/items', {'datetime': '2020-01-01/2019-01-01'}, 'datetime'),
    ('/collections/seismes/items', {'datetime': '2019/2020/2021'}, 'datetime'),
    ('/collections/communes/items', {'datetime': '2019-01-01'}, 'time'),
    ('/collections/seismes/items', {'limit': 'abc'}, 'limit'),
    ('/collections/seismes/items', {'limit': '0'}, 'limit'),
    ('/collections/seismes/items', {'limit': '-5'}, 'limit'),
    ('/collections/seismes/items', {'offset': '-1'}, 'offset'),
    ('/collections/seismes/items', {'offset': 'x'}, 'offset'),
    ('/collections/seismes/items', {'sortby': 'nope'}, 'sortby'),
    ('/collections/seismes/items', {'properties': 'nope'}, 'propert'),
    ('/collections/seismes/items', {'nope': '1'}, "'nope'"),
    ('/collections/seismes/items', {'mag': 'abc'}, "'mag'"),
    ('/collections/seismes/items', {'evid': '1.5'}, "'evid'"),
    ('/collections/seismes/items', {'t0': 'never'}, "'t0'"),
    ('/collections/seismes/items', {'crs': 'EPSG:9999'}, 'CRS'),
    ('/collections/seismes/items', {'crs': 'http://www.opengis.net/def/crs/EPSG/0/2154'}, 'CRS'),
    ('/collections/seismes/items', {'cursor': 'garbage!'}, 'cursor'),
    ('/collections/seismes/items', {'cursor': 'eyJrIjogImEifQ'}, 'cursor'),
    ('/collections/seismes/items', {'cursor': 'eyJrIjogMX0', 'sortby': 'mag'}, 'cursor'),
    ('/collections/seismes/items', {'filter': 'mag >'}, 'CQL'),
    ('/collections/seismes/items', {'filter': 'nope = 1'}, "'nope'"),
    ('/collections/seismes/items', {'filter': "mag = 'abc'"}, "'mag'"),
    ('/collections/seismes/items', {'filter': 'mag + 1'}, 'filter'),
    ('/collections/seismes/items', {'filter': "t0 T_AFTER TIMESTAMP('2020-01-01T00:00:00Z') AND mag LIKE 4"}, 'LIKE'),
    ('/collections/seismes/items', {'filter': "mag T_AFTER TIMESTAMP('2020-01-01T00:00:00Z')"}, 'temporal'),
    ('/collections/seismes/items', {'filter': "S_INTERSECTS(mag, POINT(1 2))"}, 'geometry'),
    ('/collections/seismes/items', {'filter': "S_INTERSECTS(POINT(1 2), POINT(1 2))"}, 'geometry'),
    ('/collections/seismes/items', {'filter': 'unknownfn(mag) = 1'}, 'function'),
    ('/collections/seismes/items', {'filter': 'mag = 1', 'filter-lang': 'sql'}, 'filter'),
    ('/collections/seismes/items', {'filter': '{"op": "=", "args": [{"property": "nope"}, 1]}',
                                    'filter-lang': 'cql2-json'}, "'nope'"),
    ('/collections/seismes/items', {'filter': '{not json', 'filter-lang': 'cql2-json'}, 'JSON'),
    ('/collections/population_communes/items', {'bbox': '45,-13,46,-12'}, 'geometry'),
    ('/collections/seismes/items', {'filter': 'mag / 0 > 1'}, 'division'),
]


@pytest.mark.parametrize('path,params,word', BAD, ids=[str(p) for _, p, _ in BAD])
def test_bad_input_is_a_clear_400(api, path, params, word):
    r = api(path, **params)
    assert r.status_code == 400, (params, r.status_code, r.text[:300])
    body = r.json()
    assert body['code'] and body['description']
    assert word.lower() in body['description'].lower(), body


def test_unknown_collection_is_404(api):
    for path in ('/collections/nope', '/collections/nope/items', '/collections/nope/items/1',
                 '/collections/nope/queryables'):
        r = api(path, f='json')
        assert r.status_code == 404 and r.json()['code'] == 'NotFound', path


# Found by trying to break the server: each was a 5xx, a wrong result or a vague answer.
MORE_BAD = [
    ('/collections/communes/items', {'nom': 'a\x00b'}, 'NUL'),
    ('/collections/communes/items', {'filter': "nom = 'a\x00b'"}, 'NUL'),
    ('/collections/communes/items', {'filter': '{"op": "=", "args": [{"property": "nom"}, "a\\u0000b"]}',
                                     'filter-lang': 'cql2-json'}, 'NUL'),
    ('/collections/communes/items', {'cursor': 'eyJrIjogIlx1MDAwMCJ9'}, 'cursor'),
    ('/collections/communes/items', {'filter': "RELATE(geometry, POINT(45.2 -12.8), 'XYZ')"}, 'DE-9IM'),
    ('/collections/communes/items', {'filter': "BBOX(geometry, 45, -13, 45.4, -12.5, "
                                               "'http://www.opengis.net/def/crs/EPSG/0/99999')"}, 'CRS'),
    ('/collections/communes/items', {'filter': 'BBOX(geometry, 1e10, 1e10, 2e10, 2e10)'}, 'longitude'),
    ('/collections/population_communes/items', {'filter': 'S_INTERSECTS(geometry, POINT(1 2))'}, 'geometry'),
    ('/collections/communes/items', {'filter': '{"op": "=", "args": [{"property": ["nom"]}, 1]}',
                                     'filter-lang': 'cql2-json'}, 'property name'),
    ('/collections/seismes/items', {'filter': '{"op": "=", "args": [{"property": "t0"}, {"timestamp": "x"}]}',
                                    'filter-lang': 'cql2-json'}, 'RFC 3339'),
    ('/collections/seismes/items', {'datetime': '20180513'}, 'RFC 3339'),
    ('/collections/seismes/items', {'datetime': '2018-W20'}, 'RFC 3339'),
    ('/collections/seismes/items', {'resulttype': 'foo'}, 'resulttype'),
    ('/collections/seismes/items', {'skipGeometry': 'foo'}, 'skipGeometry'),
    ('/collections/seismes/items', {'q': 'foo'}, 'q'),
    ('/collections/seismes/items', {'offset': '99999999999999999999'}, 'offset'),
    ('/collections/population_communes/items', {'filter': "codes_postaux = '97630'"}, 'array'),
    ('/collections/communes/items', {'filter-crs': 'EPSG:4326', 'filter': 'S_INTERSECTS(geometry, POINT(1 2))'}, 'filter-crs'),
    ('/collections/communes/items', {'filter': 'S_INTERSECTS(geometry, POLYGON((45 -13, 46 -13, 46 -12)))'}, 'ring'),
    ('/collections/communes/items', {'filter': 'S_INTERSECTS(geometry, LINESTRING(45 -13))'}, 'geometry'),
    ('/collections/communes/items', {'filter': 'x', 'filter-lang': 'cql-text', 'limit': '1'}, 'filter'),
]


@pytest.mark.parametrize('path,params,word', MORE_BAD, ids=[str(p)[:70] for _, p, _ in MORE_BAD])
def test_more_bad_input_is_a_clear_400(api, path, params, word):
    r = api(path, **params)
    assert r.status_code == 400, (params, r.status_code, r.text[:300])
    assert word.lower() in r.json()['description'].lower(), r.json()


def test_repeated_parameter_is_400(api):
    r = api.session.get(f'{api.base}/collections/seismes/items?limit=1&limit=2', timeout=10)
    assert r.status_code == 400 and 'more than once' in r.json()['description']


def test_write_methods_and_media_types(api):
    """seismes is read-only (no feature type of the reference model); communes takes writes
    from partners granted it (tests/test_writes.py), which test-partner is not."""
    s = api.session
    for collection, fid, status in (('seismes', '665884', 405), ('communes', '97601', 403)):
        base = f'{api.base}/collections/{collection}/items'
        for method, url in (('PUT', base + f'/{fid}'), ('DELETE', base + f'/{fid}'),
                            ('PATCH', base + f'/{fid}')):
            r = s.request(method, url, data='{}', headers={'Content-Type': 'application/geo+json'}, timeout=10)
            assert r.status_code == status, (method, r.status_code)
            assert status != 405 or 'GET' in r.headers['Allow']
        r = s.post(base, data='{"type": "Feature"}', headers={'Content-Type': 'application/geo+json'}, timeout=10)
        assert r.status_code == status
    base = f'{api.base}/collections/communes/items'
    r = s.post(base, data='nom=Acoua', headers={'Content-Type': 'application/x-www-form-urlencoded'}, timeout=10)
    assert r.status_code == 415
    r = s.post(base, data=b'{"op": "=", "args": [{"property": "nom"}, "Acoua"]}', headers={'Content-Type': ''}, timeout=10)
    assert r.status_code == 415
    r = s.post(base, data='x' * (3 * 1024 * 1024), headers={'Content-Type': 'application/query-cql-json'}, timeout=30)
    assert r.status_code == 413
    r = s.post(base, data='{"op": "a_containedBy"}', headers={'Content-Type': 'application/query-cql-json'}, timeout=10)
    assert r.status_code == 400 and 'not understood' in r.json()['description']


def test_datetime_far_future_and_json_open_intervals(api):
    assert api('/collections/seismes/items', datetime='9999-12-31').json()['numberMatched'] == 0
    assert api('/collections/seismes/items', datetime='0001-01-01/9999-12-31').json()['numberMatched'] == 426
    after_open = {'op': 't_after', 'args': [{'property': 't0'}, {'interval': ['2019-01-01T00:00:00Z', '..']}]}
    before_open = {'op': 't_before', 'args': [{'property': 't0'}, {'interval': ['..', '2019-01-01T00:00:00Z']}]}
    for doc in (after_open, before_open):
        r = api('/collections/seismes/items', filter=json.dumps(doc), **{'filter-lang': 'cql2-json'})
        assert r.status_code == 200 and r.json()['numberMatched'] == 0, doc


def test_t_intersects_and_casei_on_numbers(api):
    r = api('/collections/seismes/items', resulttype='hits',
            filter="t0 T_INTERSECTS INTERVAL('2019-01-01T00:00:00Z','2019-02-01T00:00:00Z')")
    assert r.status_code == 200 and 0 < r.json()['numberMatched'] < 426
    r = api('/collections/population_communes/items', filter="CASEI(population) = '5192'")
    assert r.status_code == 200 and [f['id'] for f in r.json()['features']] == ['97601']


def test_integer_ids_are_plain_digits(api):
    for bad in ('921_704', '%20921704', '\u0669\u0662\u0661\u0667\u0660\u0664'):
        assert api(f'/collections/villages/items/{bad}').status_code == 404, bad


def test_post_search_links_repeat_the_filter(api):
    body = json.dumps({'op': 'like', 'args': [{'property': 'nom'}, 'B%']})
    r = api.session.post(f'{api.base}/collections/communes/items?limit=2&skipGeometry=true', data=body,
                         headers={'Content-Type': 'application/query-cql-json'}, timeout=10)
    doc = r.json()
    assert doc['numberMatched'] == 3
    nxt = [lk['href'] for lk in doc['links'] if lk['rel'] == 'next'][0]
    second = api.session.get(nxt, timeout=10).json()
    assert second['numberMatched'] == 3 and len(second['features']) == 1
    selfs = [lk['href'] for lk in doc['links'] if lk['rel'] == 'self']
    assert selfs and 'filter-lang=cql2-json' in selfs[0]
    via_self = api.session.get(selfs[0], timeout=10).json()
    assert via_self['numberMatched'] == 3


def test_geometry_is_null_and_queryables_without_geometry(api):
    r = api('/collections/communes/items', filter='geometry IS NULL')
    assert r.status_code == 200 and r.json()['numberMatched'] == 0
    q = api('/collections/population_communes/queryables', f='json').json()
    assert 'geometry' not in q['properties'] and 'population' in q['properties']


def test_trailing_slash(api):
    assert api('/collections/communes/', f='json').json()['id'] == 'communes'
    assert api('/collections/communes/items/', limit=1).json()['numberReturned'] == 1


def test_coverage_collection_has_no_items(api):
    assert api('/collections/relief/items').status_code == 404


def test_bbox_crs_4326_antimeridian_and_order(api):
    four = {'bbox-crs': 'http://www.opengis.net/def/crs/EPSG/0/4326'}
    r = api('/collections/villages/items', bbox='-20,170,0,50', **four)     # lat,lon crossing 180
    assert r.status_code == 200 and r.json()['numberMatched'] == 66
    r = api('/collections/villages/items', bbox='-12.5,44.9,-13.1,45.4', **four)
    assert r.status_code == 400 and 'miny' in r.json()['description']


# Second breaking round.
ROUND2_BAD = [
    ('/collections/seismes/items', {'filter': "t0 < TIMESTAMP('2019-13-01T00:00:00Z')"}, 'RFC 3339'),
    ('/collections/seismes/items', {'filter': "t0 T_DURING INTERVAL('2019-02-01T00:00:00Z','2019-01-01T00:00:00Z')"}, 'interval'),
    ('/collections/seismes/items', {'filter': '{"op": "t_before", "args": [{"property": "t0"}, {"interval": "x"}]}',
                                    'filter-lang': 'cql2-json'}, 'interval'),
    ('/collections/seismes/items', {'filter': '{"op": "t_before", "args": [{"property": "t0"}, '
                                              '{"interval": ["2019-01-01T00:00:00Z"]}]}', 'filter-lang': 'cql2-json'}, 'interval'),
    ('/collections/seismes/items', {'filter': '{"op": "t_before", "args": [{"property": "t0"}, {"interval": []}]}',
                                    'filter-lang': 'cql2-json'}, 'interval'),
    ('/collections/seismes/items', {'datetime': '2018-05-13T04:28:02'}, 'RFC 3339'),
    ('/collections/population_communes/items', {'filter': "codes_postaux LIKE '{97630}'"}, 'array'),
    ('/collections/population_communes/items', {'filter': "CASEI(codes_postaux) = '{97630}'"}, 'array'),
    ('/collections/population_communes/items', {'filter': "codes_postaux IN ('97630')"}, 'array'),
    ('/collections/communes/items', {'filter': '{"op": "=", "args": [{"property": "nom"}, [1, 2]]}',
                                     'filter-lang': 'cql2-json'}, 'list'),
    ('/collections/relief/coverage', {'subset': 'Lat(-13:-12.9)', 'bbox': '45,-13,45.1,-12.9', 'f': 'json'}, 'bbox and subset'),
    ('/collections/communes/items', {'filter': '{"op": "s_intersects", "args": [{"property": "geometry"}, '
                                               '{"type": "Point", "coordinates": [45.2, -12.8], "crs": "EPSG:4326"}]}',
                                     'filter-lang': 'cql2-json'}, 'filter-crs'),
]


@pytest.mark.parametrize('path,params,word', ROUND2_BAD, ids=[str(p)[:70] for _, p, _ in ROUND2_BAD])
def test_round2_bad_input_is_a_clear_400(api, path, params, word):
    r = api(path, **params)
    assert r.status_code == 400, (params, r.status_code, r.text[:300])
    assert word.lower() in r.json()['description'].lower(), r.json()


def test_deeply_nested_filters_are_400(api):
    s = api.session
    for body in ('[' * 3000 + ']' * 3000, '{"op": "not", "args": [' * 600 + '{"op": "=", "args": [{"property": "nom"}, "a"]}' + ']}' * 600):
        r = s.post(f'{api.base}/collections/communes/items', data=body,
                   headers={'Content-Type': 'application/query-cql-json'}, timeout=30)
        assert r.status_code == 400 and 'nested' in r.json()['description'], (r.status_code, r.text[:200])
    wide = ' AND '.join(f"nom <> 'x{i}'" for i in range(90))
    r = api('/collections/communes/items', filter=wide, resulttype='hits')
    assert r.status_code == 200 and r.json()['numberMatched'] == 17
    wider = ' AND '.join(f"nom <> 'x{i}'" for i in range(300))
    r = api('/collections/communes/items', filter=wider, resulttype='hits')
    assert r.status_code == 400 and 'use IN' in r.json()['description']


def _html_paging(html: str) -> dict:
    """{'Next': [hrefs], 'Prev': [hrefs]} from pygeoapi's items page (lang=en)."""
    import html as htmlmod
    import re
    out: dict = {}
    for href, label in re.findall(r'<a role="button" href="([^"]*)">\s*(Next|Prev)\s*</a>', html):
        out.setdefault(label, []).append(htmlmod.unescape(href))
    return out


def test_html_paging_keeps_the_filter_and_stops(api):
    flt = json.dumps({'op': '>', 'args': [{'property': 'mag'}, 4]})
    common = {'filter': flt, 'filter-lang': 'cql2-json', 'f': 'html', 'lang': 'en'}
    n = api('/collections/seismes/items', filter=flt, **{'filter-lang': 'cql2-json'},
            resulttype='hits').json()['numberMatched']
    first = _html_paging(api('/collections/seismes/items', limit=50, **common).text)
    assert len(first['Next']) == 1 and 'Prev' not in first
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(first['Next'][0]).query))
    assert q['filter-lang'] == 'cql2-json' and json.loads(q['filter']) == json.loads(flt)
    # walking the HTML pages visits the filtered features only, and stops
    url, pages = first['Next'][0], 1
    while url and pages < 20:
        page = api.session.get(url, timeout=10).text
        links = _html_paging(page)
        pages += 1
        url = (links.get('Next') or [None])[0]
    assert pages == -(-n // 50)
    full_last = _html_paging(api('/collections/villages/items', limit=33, offset=33, f='html', lang='en').text)
    assert 'Next' not in full_last and len(full_last.get('Prev', [])) == 1


def test_chunked_post_search(api):
    body = iter([b'{"op": "=", "args": [{"property": "nom"}, ', b'"Acoua"]}'])
    r = api.session.post(f'{api.base}/collections/communes/items', data=body,
                         headers={'Content-Type': 'APPLICATION/JSON'}, timeout=10)
    assert r.status_code == 200 and [f['id'] for f in r.json()['features']] == ['97601']


def test_paths_and_methods(api):
    assert api('/collections/relief/items/1').status_code == 404
    assert api('/collections/communes/coverage').status_code == 404
    assert api('/collections/villages/items/%2F').status_code == 404
    assert api('/collections/villages/items/0921704').status_code == 404
    r = api.session.put(f'{api.base}/collections/communes', data='{}', timeout=10)
    assert r.status_code == 405 and r.json()['code'] == 'MethodNotAllowed'
    assert 'geometry' not in api('/collections/population_communes/schema', f='json').json()['properties']


def test_coverage_bbox_crs_4326_is_lat_lon(api):
    r = api('/collections/relief/coverage', f='json', bbox='-13.05,45.0,-12.6,45.3',
            **{'bbox-crs': 'http://www.opengis.net/def/crs/EPSG/0/4326'})
    assert r.status_code == 200, r.text
    assert 45.0 <= r.json()['domain']['axes']['x']['start'] <= 45.3


def test_features_are_the_same_in_every_format(api):
    """GeoJSON keeps PostGIS' text (spliced, not re-encoded); other formats decode it."""
    plain = api('/collections/villages/items', limit=66).json()
    for headers, params in (({'Accept': 'application/geo+json'}, {}), ({}, {'f': 'json'}),
                            ({'Accept': '*/*'}, {})):
        doc = api('/collections/villages/items', limit=66, headers=headers, **params).json()
        assert doc['features'] == plain['features'] and doc['numberReturned'] == 66
    ld = api('/collections/villages/items', limit=66, headers={'Accept': 'application/ld+json'})
    assert len(ld.json().get('features', ld.json().get('@graph', [None]))) >= 1
    csv = api('/collections/villages/items', limit=66, f='csv').text
    assert csv.count('\n') >= 66 and 'Passamainty' in csv
    html = api('/collections/villages/items', limit=66, f='html').text
    assert 'Passamainty' in html


@pytest.mark.parametrize('path', ['/collections/seismes/items/665884', '/collections/seismes/items',
                                  '/collections', '/'])
def test_q_zero_in_accept_headers_means_not_acceptable(api, path):
    """Found by a breaking session: q=0 made pygeoapi divide by zero (500 everywhere)."""
    r = api(path, headers={'Accept': 'application/json;q=0, application/geo+json'})
    assert r.status_code == 200 and 'json' in r.headers['Content-Type']
    r = api(path, headers={'Accept': 'application/json;q=0'})
    assert r.status_code == 200 and 'json' in r.headers['Content-Type']   # nothing left: default
    r = api(path, headers={'Accept-Language': 'en;q=0, fr'}, f='json')
    assert r.status_code == 200 and r.headers['Content-Language'].startswith('fr')
    r = api(path, headers={'Accept-Language': 'fr;q=0'}, f='json')
    assert r.status_code == 200


@pytest.mark.parametrize('header,value', [('Accept', 'application/json;q=1.2.3'),
                                          ('Accept', 'application/json;q=abc'),
                                          ('Accept', 'text/html;q=2'), ('Accept', 'text/html;q=-1'),
                                          ('Accept-Language', 'en;q='), ('Accept-Language', 'en;q=0.12345')])
def test_malformed_q_values_are_400(api, header, value):
    for path in ('/collections/seismes/items/665884', '/collections/seismes/items', '/collections'):
        r = api(path, headers={header: value})
        assert r.status_code == 400, (path, r.status_code)
        assert header in r.json()['description']


@pytest.mark.parametrize('accept,wanted', [
    ('application/geo+json;q=0.9, text/csv;q=0.1', 'json'),       # was CSV
    ('application/geo+json, text/html;q=0.1', 'json'),             # was HTML
    ('text/csv;q=0.2, text/html;q=0.5, application/geo+json;q=0.4', 'text/html'),
    ('text/html;q=0.1, text/csv', 'text/csv'),
    # what comes after */* is wanted less than anything: the default (was HTML)
    ('text/html;q=0.01, */*', 'json'),
    ('*/*;q=0.1, text/html;q=0.05', 'json'),
    ('text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', 'text/html'),   # a browser
    ('*/*', 'json'),
])
@pytest.mark.parametrize('path', ['/collections/villages/items', '/collections/villages/items/1090467',
                                  '/collections', '/'])
def test_accept_is_read_by_its_q_values(api, accept, wanted, path):
    """Found by breaking sessions: the first type pygeoapi knew won whatever its q, it did
    not know application/geo+json, and it skipped */* to take the next type."""
    if wanted == 'text/csv' and path != '/collections/villages/items':
        wanted = 'text/html'     # only items have CSV: the other type asked for
    r = api(path, headers={'Accept': accept}, limit=2)
    assert r.status_code == 200 and wanted in r.headers['Content-Type'], (accept, r.headers['Content-Type'])
    assert set(r.headers['Vary'].replace(' ', '').split(',')) >= {'Accept', 'Accept-Language', 'Authorization'}


def test_what_a_collection_does_not_have_is_404_in_json(api):
    """Found by a breaking session: tiles and maps of a collection without them were 400s, an
    error of f=png was JSON sent as image/png."""
    for path in ('/collections/relief/tiles', '/collections/relief/map', '/collections/communes/tiles',
                 '/collections/communes/map', '/collections/relief/tiles/WebMercatorQuad'):
        r = api(path)
        assert r.status_code == 404 and r.json()['code'] == 'NotFound', (path, r.status_code)
    r = api('/collections/relief/coverage', f='png')
    assert r.status_code == 400 and r.headers['Content-Type'].startswith('application/json')
    assert r.json()['code'] == 'InvalidParameterValue'


@pytest.mark.parametrize('path', ['/foo', '/jobs/abc/foo', '/openapi/x', '/conformance/x',
                                  '/collections/nope/coverage', '/collections/nope/map',
                                  '/collections/nope/tiles', '/collections/communes/coverage',
                                  '/collections/forets_publiques/coverage'])
def test_unknown_paths_are_a_404_in_json(anon, path):
    """Found by a breaking session: a path no route knows was Flask's HTML page, an unknown
    collection's coverage or map a 404 coded InvalidParameterValue (and a KeyError
    traceback in the server's log)."""
    r = anon(path, headers={'Accept': 'application/json'})
    assert r.status_code == 404 and r.headers['Content-Type'].startswith('application/json')
    assert r.json()['code'] == 'NotFound'


def test_a_method_no_route_takes_is_a_405_in_json(anon):
    r = anon('/processes/validate-reference-model/execution')
    assert r.status_code == 405 and r.json()['code'] == 'MethodNotAllowed'
    assert 'POST' in r.headers['Allow']


@pytest.mark.parametrize('method, path', [
    ('POST', '/nope'), ('DELETE', '/a/b/c/d/e'), ('POST', '/collections/nope'), ('POST', '/openapi/x'),
    ('OPTIONS', '/collections/villages/nope'), ('POST', '/collections/forets_publiques/nope'),
    ('PUT', '/conformance/x'),
])
def test_unknown_paths_are_404_whatever_the_method(anon, method, path):
    """Found by a breaking session: POST or DELETE on a path no route knows was a 405 (GET
    said 404), OPTIONS a 200."""
    r = anon.session.request(method, anon.base + path, timeout=30)
    assert r.status_code == 404 and r.json()['code'] == 'NotFound', (method, path, r.status_code)


def test_known_paths_keep_their_405(anon):
    for method, path in [('POST', '/collections'), ('DELETE', '/conformance'),
                         ('POST', '/collections/catalogue/dcat'), ('PUT', '/collections/villages')]:
        r = anon.session.request(method, anon.base + path, timeout=30)
        assert r.status_code == 405, (method, path, r.status_code)


@pytest.mark.parametrize('path', ['/', '/conformance', '/collections', '/collections/communes',
                                  '/collections/communes/items', '/collections/communes/items/97601',
                                  '/collections/catalogue/items/communes', '/processes', '/jobs'])
def test_image_formats_outside_maps_are_not_sent_as_json_labelled_image(anon, path):
    """Found by a breaking session: f=png or Accept: image/png gave a JSON body labelled
    image/png on every JSON resource."""
    r = anon(path, f='png')
    assert r.status_code == 400 and "f: 'png'" in r.json()['description'], (path, r.status_code)
    r = anon(path, headers={'Accept': 'image/png'})
    assert r.status_code == 200 and 'json' in r.headers['Content-Type'], (path, r.headers['Content-Type'])
    r = anon(path, headers={'Accept': 'image/png, text/html;q=0.5'})
    assert r.status_code == 200 and 'text/html' in r.headers['Content-Type'], (path, r.headers['Content-Type'])
