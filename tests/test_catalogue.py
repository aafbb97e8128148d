"""The catalogue (OGC API Records) against the live server and the real PostGIS.

Expected values are computed here from the data tables by PostGIS or from the source
configuration, never written down.
"""
from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import pytest
import rasterio
import yaml
from owslib.ogcapi.records import Records
from rasterio.warp import transform_bounds

ROOT = Path(__file__).resolve().parent.parent


ITEMS = '/collections/catalogue/items'
RECORDS = 'http://www.opengis.net/spec/ogcapi-records-1/1.0/conf/'


def served() -> dict:
    doc = yaml.safe_load((ROOT / 'pygeoapi-config.yml').read_text())['resources']
    return doc


def collections() -> dict:
    return {k: v for k, v in served().items() if v['type'] == 'collection' and k != 'catalogue'}


def feature_types() -> list[str]:
    doc = yaml.safe_load((ROOT / 'config' / 'model' / 'reference-model.yml').read_text())
    return list(doc['feature_types'])


def all_records(api, **params) -> list[dict]:
    """Every record, by following `next` links (local records only unless `source` given)."""
    params.setdefault('source', 'local')
    url, out = api.base + ITEMS + '?' + urllib.parse.urlencode(dict(limit=7, **params)), []
    while url:
        doc = api.session.get(url, timeout=30).json()
        out += doc['features']
        url = next((lk['href'] for lk in doc['links'] if lk['rel'] == 'next'), None)
    return out


def record(api, rid: str) -> dict:
    r = api(f'{ITEMS}/{rid}')
    assert r.status_code == 200, r.text
    return r.json()


def bbox_of(geometry: dict) -> tuple[float, float, float, float]:
    xs, ys = [], []

    def walk(c):
        if isinstance(c[0], (int, float)):
            xs.append(c[0])
            ys.append(c[1])
        else:
            for sub in c:
                walk(sub)
    walk(geometry['coordinates'])
    return min(xs), min(ys), max(xs), max(ys)


# -- one record per served thing, in step with the data -------------------------------------
def test_one_record_per_collection_feature_type_and_process(api):
    ids = [f['id'] for f in all_records(api)]
    assert len(ids) == len(set(ids))
    processes = [k for k, v in served().items() if v['type'] == 'process']
    expected = set(collections()) | {f'model.{n}' for n in feature_types()} | \
        {f'process.{p}' for p in processes}
    assert set(ids) == expected
    assert 'population_communes' in ids and 'relief' in ids
    doc = api(ITEMS, source='local', limit=1).json()
    assert doc['numberMatched'] == len(expected)


def test_records_follow_the_record_model(api):
    for rec in all_records(api):
        assert rec['type'] == 'Feature' and rec['conformsTo']
        props = rec['properties']
        for name in ('type', 'title', 'description', 'keywords', 'themes', 'contacts', 'license',
                     'formats', 'created', 'updated', 'diffusion', 'language'):
            assert props.get(name) not in (None, ''), (rec['id'], name)
        assert props['type'] in ('dataset', 'featureType', 'service')
        assert props['diffusion'] in ('open', 'partners', 'restricted')
        rels = {lk['rel'] for lk in rec['links']}
        assert 'service-desc' in rels, rec['id']
        for lk in rec['links']:
            assert lk['href'].startswith(('http://', 'https://')), lk


def test_dataset_links_lead_to_items_collection_openapi_and_downloads(api):
    rec = record(api, 'communes')
    links = {(lk['rel'], lk['type']): lk['href'] for lk in rec['links']}
    items = api.session.get(links[('items', 'application/geo+json')], timeout=30)
    assert items.status_code == 200 and items.json()['type'] == 'FeatureCollection'
    assert api.session.get(links[('related', 'application/json')], timeout=30).json()['id'] == 'communes'
    assert api.session.get(links[('service-desc', 'application/vnd.oai.openapi+json;version=3.0')],
                        timeout=30).json()['openapi'].startswith('3.')
    download = api.session.get(links[('enclosure', 'application/geo+json')], timeout=30).json()
    assert len(download['features']) == rec['properties']['featureCount']
    csv = api.session.get(links[('enclosure', 'text/csv')], timeout=30)
    assert csv.status_code == 200 and len(csv.text.strip().splitlines()) == \
        rec['properties']['featureCount'] + 1
    relief = {lk['type']: lk['href'] for lk in record(api, 'relief')['links'] if lk['rel'] == 'enclosure'}
    tif = api.session.get(relief['image/tiff; application=geotiff'], timeout=30)
    assert tif.status_code == 200 and tif.content[:2] in (b'II', b'MM')
    schema = next(lk['href'] for lk in record(api, 'model.commune')['links'] if lk['rel'] == 'describedby')
    assert api.session.get(schema, timeout=30).json()['type'] == 'object'


def test_extents_counts_and_periods_match_the_data(api, db, data_dir):
    cur = db.cursor()
    for rid, res in collections().items():
        prov = res['providers'][0]
        rec = record(api, rid)
        props = rec['properties']
        if prov['type'] == 'coverage':
            path = prov['data'].replace('${GEOMAYOTTE_DATA_DIR}', str(data_dir))
            with rasterio.open(path) as src:
                expected = transform_bounds(src.crs, 'OGC:CRS84', *src.bounds)
            assert bbox_of(rec['geometry']) == pytest.approx(expected, abs=1e-9)
            continue
        table = prov['table']
        cur.execute(f'SELECT count(*) FROM {table}')   # names from our own config file
        assert props['featureCount'] == cur.fetchone()[0], rid
        if 'storage_crs' in prov:
            cur.execute(f"""SELECT min(ST_XMin(g)), min(ST_YMin(g)), max(ST_XMax(g)), max(ST_YMax(g))
                              FROM (SELECT ST_Transform(geom, 4326) AS g FROM {table}) t""")
            assert bbox_of(rec['geometry']) == pytest.approx(cur.fetchone(), abs=1e-8), rid
            assert set(props['crs']) == set(prov['crs'])
        else:
            assert rec['geometry'] is None and props['crs'] == []
        if prov.get('time_field'):
            col = prov['time_field']
            cur.execute(f"SELECT to_char(min({col})::timestamp, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
                        f"to_char(max({col})::timestamp, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM {table}")
            assert rec['time']['interval'] == list(cur.fetchone()), rid
        else:
            assert rec['time'] is None


def test_human_metadata_comes_from_config(api):
    meta = yaml.safe_load((ROOT / 'config' / 'datasets.yml').read_text())
    for rid, entry in meta['datasets'].items():
        props = record(api, rid)['properties']
        assert props['license'] == entry['license']
        assert props['diffusion'] == entry['diffusion']
        assert [c['id'] for c in props['themes'][0]['concepts']] == entry['themes']
        assert props['lineage'] == ' '.join(entry['lineage'].split())
        assert props['updateFrequency'] == entry['frequency']
        assert props['title'] == collections()[rid]['title']['fr']
        producer = meta['organisations'][entry['producer']]['name']
        assert any(c['organization'] == producer and 'originator' in c['roles'] for c in props['contacts'])
        for ext in entry.get('external_ids') or []:
            assert ext in props['externalIds']


def test_diffusion_level_is_a_checked_column_of_the_store(db):
    cur = db.cursor()
    cur.execute("""SELECT pg_get_constraintdef(oid) FROM pg_constraint
                    WHERE conrelid = 'catalogue.record'::regclass AND contype = 'c'""")
    assert any("'partners'" in d and "'restricted'" in d for (d,) in cur.fetchall())
    cur.execute('SELECT DISTINCT diffusion FROM catalogue.record ORDER BY 1')
    assert {r[0] for r in cur.fetchall()} <= {'open', 'partners', 'restricted'}


# -- search --------------------------------------------------------------------------------
@pytest.mark.parametrize('q', ['foret', 'Forêt', 'FORETS', 'forêts publiques'])
def test_q_finds_the_forests_without_accents_or_case(api, q):
    doc = api(ITEMS, q=q).json()
    ids = [f['id'] for f in doc['features']]
    assert 'forets_publiques' in ids
    assert 'communes' not in ids and doc['numberMatched'] == len(ids)


def test_q_several_terms_and_alternatives(api):
    both = {f['id'] for f in api(ITEMS, q='aléa inondation', limit=100).json()['features']}
    assert 'zones_inondation' in both and 'zones_glissement_terrain' not in both
    either = {f['id'] for f in api(ITEMS, q='seisme,foret', limit=100).json()['features']}
    seismes = {f['id'] for f in api(ITEMS, q='Séismes', limit=100).json()['features']}
    forets = {f['id'] for f in api(ITEMS, q='forêt', limit=100).json()['features']}
    assert seismes and forets and either == seismes | forets
    assert 'seismes' in seismes
    assert api(ITEMS, q='zzzqqq').json()['numberMatched'] == 0


def test_bbox_and_datetime_match_postgis(api, db):
    cur = db.cursor()
    cur.execute("""SELECT id FROM catalogue.record WHERE source = 'local' AND
                   ST_Intersects(geom, ST_MakeEnvelope(46, -13.5, 46.5, -12, 4326))""")
    expected = {r[0] for r in cur.fetchall()}
    got = {f['id'] for f in api(ITEMS, bbox='46,-13.5,46.5,-12', source='local', limit=100).json()['features']}
    assert got == expected and 'seismes' in got and 'communes' not in got
    cur.execute("""SELECT id FROM catalogue.record WHERE source = 'local' AND
                   time_start <= '2019-12-31T23:59:59Z' AND time_end >= '2019-01-01T00:00:00Z'""")
    expected = {r[0] for r in cur.fetchall()}
    got = {f['id'] for f in api(ITEMS, datetime='2019-01-01T00:00:00Z/2019-12-31T23:59:59Z',
                                source='local', limit=100).json()['features']}
    assert got == expected and 'seismes' in got
    open_end = {f['id'] for f in api(ITEMS, datetime='2021-01-01/..', source='local', limit=100).json()['features']}
    assert 'zones_inondation' in open_end and 'zones_glissement_terrain' not in open_end


def test_type_ids_external_ids_and_keywords(api):
    types = {f['id']: f['properties']['type'] for f in all_records(api)}
    for kind in ('dataset', 'featureType', 'service'):
        got = {f['id'] for f in api(ITEMS, type=kind, source='local', limit=100).json()['features']}
        assert got == {k for k, v in types.items() if v == kind}
    got = [f['id'] for f in api(ITEMS, ids='relief,communes,nope').json()['features']]
    assert sorted(got) == ['communes', 'relief']
    ext = yaml.safe_load((ROOT / 'config' / 'datasets.yml').read_text())['datasets']['zones_inondation']['external_ids'][0]
    for value in (ext['value'], f"{ext['scheme']}:{ext['value']}"):
        assert [f['id'] for f in api(ITEMS, externalIds=value).json()['features']] == ['zones_inondation']
    kw = {f['id'] for f in api(ITEMS, keywords='SEISMES,limites administratives', limit=100).json()['features']}
    assert kw == {rid for rid, res in collections().items()
                  if {'séismes', 'limites administratives'} & set(res['keywords']['fr'])}


def test_sortby_title_and_updated(api):
    for key in ('title', '-title'):
        titles = [f['properties']['title'] for f in api(ITEMS, sortby=key, source='local', limit=100).json()['features']]
        import unicodedata

        def fold(t):
            return ''.join(c for c in unicodedata.normalize('NFD', t.lower()) if unicodedata.category(c) != 'Mn')
        assert [fold(t) for t in titles] == sorted((fold(t) for t in titles), reverse=key.startswith('-'))
    updated = [f['properties']['updated'] for f in api(ITEMS, sortby='-updated', limit=100).json()['features']]
    assert updated == sorted(updated, reverse=True)


def test_cql2_filters_text_and_json(api, db):
    cur = db.cursor()
    cur.execute("SELECT id FROM catalogue.record WHERE diffusion = 'partners' AND source = 'local'")
    partners = {r[0] for r in cur.fetchall()}
    assert partners
    got = {f['id'] for f in api(ITEMS, filter="diffusion = 'partners' AND source = 'local'", limit=100).json()['features']}
    assert got == partners
    body = {'op': 'and', 'args': [{'op': '=', 'args': [{'property': 'type'}, 'dataset']},
                                  {'op': 's_intersects', 'args': [{'property': 'geometry'},
                                                                  {'bbox': [46, -13.5, 46.5, -12]}]}]}
    r = api.session.post(api.base + ITEMS + '?source=local', data=json.dumps(body),
                      headers={'Content-Type': 'application/query-cql-json'}, timeout=30)
    assert r.status_code == 200, r.text
    assert {f['id'] for f in r.json()['features']} == {'relief', 'seismes'}
    got = {f['id'] for f in api(ITEMS, filter="ACCENTI(CASEI(title)) LIKE ACCENTI(CASEI('%foret%'))",
                                limit=100).json()['features']}
    assert 'forets_publiques' in got


@pytest.mark.parametrize('size', [1, 2, 5, 7, 20, 21, 100])
def test_harvester_loop_gets_every_record_once(api, size):
    url = f'{api.base}{ITEMS}?limit={size}&source=local'
    seen, matched = [], set()
    while url:
        doc = api.session.get(url, timeout=30).json()
        matched.add(doc['numberMatched'])
        seen += [f['id'] for f in doc['features']]
        assert doc['numberReturned'] == len(doc['features'])
        url = next((lk['href'] for lk in doc['links'] if lk['rel'] == 'next'), None)
    assert len(matched) == 1 and len(seen) == matched.pop() == len(set(seen))
    assert set(seen) == {f['id'] for f in all_records(api)}


@pytest.mark.parametrize('params, status, words', [
    ({'q': ',,,'}, 400, 'q'),
    ({'bbox': '1,2,3'}, 400, 'bbox'),
    ({'bbox': '45,-12,44,-13,1'}, 400, 'bbox'),
    ({'bbox': '45,-12,46,-13'}, 400, 'miny'),
    ({'datetime': 'hier'}, 400, 'datetime'),
    ({'datetime': '2020-02-30'}, 400, 'datetime'),
    ({'sortby': 'nope'}, 400, 'sortby'),
    ({'sortby': 'description'}, 400, 'sortby'),
    ({'type': 'nope'}, 400, 'type'),
    ({'ids': ','}, 400, 'ids'),
    ({'limit': '0'}, 400, 'limit'),
    ({'limit': 'abc'}, 400, 'limit'),
    ({'offset': '-1'}, 400, 'offset'),
    ({'filter': 'nope = 1'}, 400, 'nope'),
    ({'filter': 'title ='}, 400, 'filter'),
    ({'filter': '{"op": "="', 'filter-lang': 'cql2-json'}, 400, 'filter'),
    ({'f': 'xyz'}, 400, 'format'),
    ({'unknown': '1'}, 400, 'unknown'),
    ({'q': 'a', 'q2': 'b'}, 400, 'q2'),
    ({'crs': 'http://www.opengis.net/def/crs/EPSG/0/4471'}, 400, 'CRS84 only'),
    ({'crs': 'EPSG:4326'}, 400, 'crs'),
])
def test_bad_input_is_a_clear_4xx(api, params, status, words):
    r = api(ITEMS, **params)
    assert r.status_code == status, (params, r.status_code, r.text)
    doc = r.json()
    assert doc['code'] and words.lower() in doc['description'].lower(), doc


def test_records_crs_is_crs84_only(api):
    crs84 = 'http://www.opengis.net/def/crs/OGC/1.3/CRS84'
    assert api(ITEMS, crs=crs84, ids='communes').json()['features'][0]['id'] == 'communes'
    assert api(f'{ITEMS}/communes', crs=crs84).status_code == 200
    r = api(f'{ITEMS}/communes', crs='http://www.opengis.net/def/crs/EPSG/0/4471')
    assert r.status_code == 400 and 'CRS84 only' in r.json()['description']


def test_unknown_record_is_404(api):
    r = api(f'{ITEMS}/pas-une-fiche')
    assert r.status_code == 404 and 'pas-une-fiche' in r.json()['description']


def test_html_pages(api):
    page = api(ITEMS, f='html', q='forêt')
    assert page.status_code == 200 and 'text/html' in page.headers['Content-Type']
    assert 'Forêts publiques' in page.text
    one = api(f'{ITEMS}/forets_publiques', f='html')
    assert one.status_code == 200 and 'Forêts publiques' in one.text


def test_conformance_and_collection(api):
    conf = api('/conformance').json()['conformsTo']
    for c in ('record-core', 'record-collection', 'searchable-catalog', 'searchable-catalog-sorting',
              'searchable-catalog-filtering', 'json', 'html'):
        assert RECORDS + c in conf, c
    coll = api('/collections/catalogue').json()
    assert coll['itemType'] == 'record'
    dcat = [lk for lk in coll['links'] if lk['href'].endswith('/collections/catalogue/dcat?f=ttl')]
    assert dcat and dcat[0]['href'].startswith(api.base)
    q = api('/collections/catalogue/queryables').json()
    assert {'title', 'type', 'keywords', 'updated', 'diffusion'} <= set(q['properties'])


def test_owslib_records_client_reads_the_catalogue(owslib):
    w = owslib(Records)           # test-partner: granted the restricted forests
    assert 'catalogue' in w.records()
    found = w.collection_items('catalogue', q='forêts', limit=50)
    assert 'forets_publiques' in [f['id'] for f in found['features']]
    anonymous = owslib(Records, key=None).collection_items('catalogue', q='forêts', limit=50)
    assert 'forets_publiques' not in [f['id'] for f in anonymous['features']]
    rec = w.collection_item('catalogue', 'villages')
    assert rec['id'] == 'villages' and rec['properties']['type'] == 'dataset'
    page = w.collection_items('catalogue', limit=3, offset=3, source='local')
    assert page['numberReturned'] == 3 and page['numberMatched'] > 3


def test_bbox_crs_hits_skip_geometry_and_properties(api):
    crs84 = api(ITEMS, bbox='46,-13.5,46.5,-12', source='local', limit=100).json()
    latlon = api(ITEMS, bbox='-13.5,46,-12,46.5', source='local', limit=100,
                 **{'bbox-crs': 'http://www.opengis.net/def/crs/EPSG/0/4326'}).json()
    assert [f['id'] for f in latlon['features']] == [f['id'] for f in crs84['features']]
    hits = api(ITEMS, q='forêt', resulttype='hits').json()
    assert hits['features'] == [] and hits['numberMatched'] == api(ITEMS, q='forêt').json()['numberMatched']
    bare = api(ITEMS, ids='communes', skipGeometry='true', properties='title,type').json()['features'][0]
    assert bare['geometry'] is None and set(bare['properties']) == {'title', 'type'}


# -- found by a breaking session --------------------------------------------------------------------
@pytest.mark.parametrize('q,status', [('ʼ', 400), ('foret ʼ', 200), ('ʼforet', 200), ('⑴', 200),
                                      ('foretː', 200), ('ŉ', 200)])
def test_q_with_letters_unaccent_turns_into_syntax(api, q, status):
    r = api(ITEMS, q=q)
    assert r.status_code == status, r.text[:300]


def test_dcat_and_csv_edges(api, db):
    for bad in ('²', '١'):
        for name in ('limit', 'offset'):
            assert api('/collections/catalogue/dcat', **{name: bad}).status_code == 400
    r = api(ITEMS, f='csv')
    assert r.status_code == 400 and 'f=csv' in r.json()['description']
    # a harvested record whose links are not valid IRIs must not break any serialisation
    with db.cursor() as cur:
        cur.execute("""INSERT INTO catalogue.record (id, source, source_id, type, title, links,
                       fingerprint, sort_title, search)
                       VALUES ('bad:1', 'test-bad', '1', 'dataset', 'Mauvais liens', %s, 'x', 'mauvais',
                               to_tsvector('french', 'mauvais'))""",
                    (json.dumps([{'rel': 'license', 'href': 'http://lic/ "x"'},
                                 {'rel': 'related', 'href': 'http://x/a b"<>{}|\\^`'}]),))
    try:
        import rdflib
        for fmt, parser in (('ttl', 'turtle'), ('rdf', 'xml'), ('jsonld', 'json-ld')):
            r = api('/collections/catalogue/dcat', f=fmt, limit=1000)
            assert r.status_code == 200, (fmt, r.text[:200])
            rdflib.Graph().parse(data=r.text, format=parser)
    finally:
        with db.cursor() as cur:
            cur.execute("DELETE FROM catalogue.record WHERE source = 'test-bad'")
