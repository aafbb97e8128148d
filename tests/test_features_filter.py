"""OGC API Features Part 3: queryables, CQL2 text and JSON, pushed down to PostGIS."""
from __future__ import annotations

import json

import pytest


def ids(api, coll, **params):
    r = api(f'/collections/{coll}/items', limit=1000, skipGeometry='true', **params)
    assert r.status_code == 200, (params, r.text)
    return [f['id'] for f in r.json()['features']]


def sql_ids(db, query, params=()):
    with db.cursor() as cur:
        cur.execute(query, params or None)
        return sorted(r[0] for r in cur.fetchall())


def test_queryables_and_schema(api):
    q = api('/collections/seismes/queryables', f='json')
    assert q.status_code == 200 and q.headers['Content-Type'].startswith('application/schema+json')
    props = q.json()['properties']
    assert props['mag']['type'] == 'number' and props['t0']['format'] == 'date-time'
    assert props['evid']['x-ogc-role'] == 'id' and props['t0']['x-ogc-role'] == 'primary-instant'
    assert props['geom_valid']['type'] == 'boolean'   # invalid geometries are flagged, filterable
    s = api('/collections/villages/schema', f='json').json()['properties']
    assert s['autres_noms']['type'] == 'array' and s['code_insee']['type'] == 'string'


CASES = [
    ('seismes', 'mag > 5', "SELECT evid FROM geodata.seismes WHERE mag > 5"),
    ('seismes', 'mag >= 4.5 AND feltreport > 100', "SELECT evid FROM geodata.seismes WHERE mag >= 4.5 AND feltreport > 100"),
    ('seismes', 'mag BETWEEN 4 AND 4.2', "SELECT evid FROM geodata.seismes WHERE mag BETWEEN 4 AND 4.2"),
    ('seismes', 'mag NOT BETWEEN 3 AND 5', "SELECT evid FROM geodata.seismes WHERE mag NOT BETWEEN 3 AND 5"),
    ('seismes', 'mag IN (5.1, 5.8)', "SELECT evid FROM geodata.seismes WHERE mag IN (5.1, 5.8)"),
    ('seismes', 'NOT (mag < 5)', "SELECT evid FROM geodata.seismes WHERE NOT mag < 5"),
    ('seismes', 'mag > 5 OR feltreport > 1000', "SELECT evid FROM geodata.seismes WHERE mag > 5 OR feltreport > 1000"),
    ('seismes', 'mag * 2 > 10', "SELECT evid FROM geodata.seismes WHERE mag * 2 > 10"),
    ('seismes', 'feltreport > mag * 100', "SELECT evid FROM geodata.seismes WHERE feltreport > mag * 100"),
    ('seismes', "t0 > TIMESTAMP('2021-01-01T00:00:00Z')", "SELECT evid FROM geodata.seismes WHERE t0 > '2021-01-01Z'"),
    ('seismes', "t0 T_AFTER TIMESTAMP('2021-01-01T00:00:00Z')", "SELECT evid FROM geodata.seismes WHERE t0 > '2021-01-01Z'"),
    ('seismes', "t0 T_BEFORE TIMESTAMP('2018-06-01T00:00:00Z')", "SELECT evid FROM geodata.seismes WHERE t0 < '2018-06-01Z'"),
    ('seismes', "t0 T_EQUALS TIMESTAMP('2018-05-13T04:28:02Z')", "SELECT evid FROM geodata.seismes WHERE t0 = '2018-05-13 04:28:02Z'"),
    ('seismes', "t0 T_DURING INTERVAL('2019-01-01T00:00:00Z','2019-02-01T00:00:00Z')",
     "SELECT evid FROM geodata.seismes WHERE t0 > '2019-01-01Z' AND t0 < '2019-02-01Z'"),
    ('communes', "nom LIKE 'M%'", "SELECT code_insee FROM geodata.communes WHERE nom LIKE 'M%'"),
    ('communes', "nom NOT LIKE '%a'", "SELECT code_insee FROM geodata.communes WHERE nom NOT LIKE '%a'"),
    ('communes', "nom LIKE 'M_amoudzou'", "SELECT code_insee FROM geodata.communes WHERE nom LIKE 'M_amoudzou'"),
    ('communes', "CASEI(nom) = casei('MAMOUDZOU')", "SELECT code_insee FROM geodata.communes WHERE nom = 'Mamoudzou'"),
    ('villages', "ACCENTI(nom) = accenti('Bandrele')", "SELECT geonameid FROM geodata.villages WHERE unaccent(nom) = 'Bandrele'"),
    ('villages', "CASEI(ACCENTI(nom)) LIKE casei(accenti('BANDR%'))", "SELECT geonameid FROM geodata.villages WHERE lower(unaccent(nom)) LIKE 'bandr%'"),
    ('communes', "code_insee IN ('97601', '97611')", "SELECT code_insee FROM geodata.communes WHERE code_insee IN ('97601','97611')"),
    ('forets_publiques', 'iidtn_rgt IS NULL', "SELECT iidtn_frt FROM geodata.forets_publiques WHERE iidtn_rgt IS NULL"),
    ('forets_publiques', 'iidtn_rgt IS NOT NULL', "SELECT iidtn_frt FROM geodata.forets_publiques WHERE iidtn_rgt IS NOT NULL"),
    ('forets_publiques', "statut = 'DO'", "SELECT iidtn_frt FROM geodata.forets_publiques WHERE statut = 'DO'"),
    ('zones_glissement_terrain', "dt_maj = DATE('2019-06-26')", "SELECT id_obj FROM geodata.zones_glissement_terrain WHERE dt_maj = '2019-06-26'"),
    ('zones_glissement_terrain', "dt_maj < DATE('2016-01-01') AND lb_niveau = 'Fort'",
     "SELECT id_obj FROM geodata.zones_glissement_terrain WHERE dt_maj < '2016-01-01' AND lb_niveau = 'Fort'"),
    ('villages', "S_WITHIN(geometry, POLYGON((45.19 -12.82, 45.24 -12.82, 45.24 -12.76, 45.19 -12.76, 45.19 -12.82)))",
     "SELECT geonameid FROM geodata.villages WHERE ST_Within(ST_Transform(geom, 4326), ST_MakeEnvelope(45.19,-12.82,45.24,-12.76,4326))"),
    ('villages', "BBOX(geometry, 45.19, -12.82, 45.24, -12.76)",
     "SELECT geonameid FROM geodata.villages WHERE ST_Intersects(ST_Transform(geom, 4326), ST_MakeEnvelope(45.19,-12.82,45.24,-12.76,4326))"),
    ('communes', "S_INTERSECTS(geometry, LINESTRING(45.05 -12.75, 45.25 -12.75))",
     "SELECT code_insee FROM geodata.communes WHERE ST_Intersects(geom, ST_Transform(ST_GeomFromText('LINESTRING(45.05 -12.75, 45.25 -12.75)', 4326), 4471))"),
    ('zones_glissement_terrain', "S_INTERSECTS(geometry, POINT(45.2 -12.8)) OR cd_com = '97602'",
     "SELECT id_obj FROM geodata.zones_glissement_terrain WHERE cd_com='97602' OR ST_Intersects(geom, ST_Transform(ST_SetSRID(ST_Point(45.2,-12.8),4326),4471))"),
]


@pytest.mark.parametrize('coll,cql,query', CASES, ids=[c[1][:60] for c in CASES])
def test_cql2_text_matches_sql(api, db, coll, cql, query):
    got = sorted(ids(api, coll, filter=cql))
    assert got == sql_ids(db, query)


def test_at_least_some_cases_select_something(api):
    nonempty = sum(1 for coll, cql, _ in CASES if ids(api, coll, filter=cql))
    assert nonempty >= len(CASES) - 3


JSON_CASES = [
    ({'op': '>', 'args': [{'property': 'mag'}, 5]}, 'mag > 5'),
    ({'op': 'and', 'args': [{'op': '>=', 'args': [{'property': 'mag'}, 4.5]},
                            {'op': '<', 'args': [{'property': 'feltreport'}, 10]}]}, 'mag >= 4.5 AND feltreport < 10'),
    ({'op': 'like', 'args': [{'property': 'nom'}, 'M%']}, "nom LIKE 'M%'"),
    ({'op': 'in', 'args': [{'property': 'code_insee'}, ['97601', '97611']]}, "code_insee IN ('97601','97611')"),
    ({'op': 'isNull', 'args': [{'property': 'nom'}]}, 'nom IS NULL'),
    ({'op': 's_intersects', 'args': [{'property': 'geometry'},
                                     {'type': 'Point', 'coordinates': [45.2277, -12.7806]}]},
     'S_INTERSECTS(geometry, POINT(45.2277 -12.7806))'),
    ({'op': 't_after', 'args': [{'property': 't0'}, {'timestamp': '2021-01-01T00:00:00Z'}]},
     "t0 T_AFTER TIMESTAMP('2021-01-01T00:00:00Z')"),
]


@pytest.mark.parametrize('doc,text', JSON_CASES, ids=[t for _, t in JSON_CASES])
def test_cql2_json_get_and_post_equal_text(api, doc, text):
    coll = 'seismes' if any(k in text for k in ('mag', 't0')) else 'communes'
    via_text = ids(api, coll, filter=text)
    via_json = ids(api, coll, filter=json.dumps(doc), **{'filter-lang': 'cql2-json'})
    r = api.session.post(f'{api.base}/collections/{coll}/items?limit=1000&skipGeometry=true',
                         data=json.dumps(doc), headers={'Content-Type': 'application/query-cql-json'})
    assert r.status_code == 200, r.text
    assert via_text == via_json == [f['id'] for f in r.json()['features']]


def test_filter_combines_with_bbox_datetime_and_paging(api, db):
    got = ids(api, 'seismes', filter='mag >= 4', bbox='45.3,-13,45.8,-12.5',
              datetime='2018-05-01T00:00:00Z/2018-12-31T23:59:59Z')
    want = sql_ids(db, """SELECT evid FROM geodata.seismes WHERE mag >= 4
        AND ST_Intersects(ST_Transform(geom, 4326), ST_MakeEnvelope(45.3,-13,45.8,-12.5,4326))
        AND t0 BETWEEN '2018-05-01Z' AND '2018-12-31 23:59:59Z'""")
    assert sorted(got) == want and want


def test_filter_values_are_bound_never_pasted(api):
    # SQL in a literal is a value, never SQL
    for text in ("nom = 'x) OR TRUE --'", "nom LIKE '%;DROP TABLE geodata.communes;--'"):
        r = api('/collections/communes/items', filter=text)
        assert r.status_code == 200 and r.json()['numberMatched'] == 0, r.text
    doc = {'op': '=', 'args': [{'property': 'nom'}, "x' OR '1'='1"]}
    r = api('/collections/communes/items', filter=json.dumps(doc), **{'filter-lang': 'cql2-json'})
    assert r.status_code == 200 and r.json()['numberMatched'] == 0
    assert api('/collections/communes/items', resulttype='hits').json()['numberMatched'] == 17


def test_unparseable_cql2_names_the_problem(api):
    r = api('/collections/communes/items', filter="nom = 'x'' OR ''1''=''1'")
    assert r.status_code == 400
    assert 'line 1, column' in r.json()['description']


BOX = (45.0, -13.1, 45.4, -12.6)
POLY = 'POLYGON((45.0 -13.1, 45.4 -13.1, 45.4 -12.6, 45.0 -12.6, 45.0 -13.1))'


def test_bbox_literals_equal_the_polygon(api):
    """CQL2 JSON {"bbox": [...]} and CQL2 text BBOX(...) as a literal, and ENVELOPE()."""
    want = ids(api, 'zones_inondation', filter=f'S_INTERSECTS(geometry, {POLY})')
    assert len(want) == 11
    doc = {'op': 's_intersects', 'args': [{'property': 'geometry'}, {'bbox': list(BOX)}]}
    assert ids(api, 'zones_inondation', filter=json.dumps(doc), **{'filter-lang': 'cql2-json'}) == want
    r = api.session.post(f'{api.base}/collections/zones_inondation/items?limit=100&skipGeometry=true',
                         data=json.dumps(doc), headers={'Content-Type': 'application/query-cql-json'})
    assert [f['id'] for f in r.json()['features']] == want
    assert ids(api, 'zones_inondation', filter='S_INTERSECTS(geometry, BBOX(45.0, -13.1, 45.4, -12.6))') == want
    nowhere = {'op': 's_intersects', 'args': [{'property': 'geometry'}, {'bbox': [0, 0, 1, 1]}]}
    assert ids(api, 'zones_inondation', filter=json.dumps(nowhere), **{'filter-lang': 'cql2-json'}) == []


def test_invalid_geometry_is_visible_and_queryable(api):
    assert ids(api, 'zones_inondation', filter='geom_valid = false') == ['ZAPI0040']
    f = api('/collections/zones_inondation/items/ZAPI0040').json()
    assert f['properties']['geom_valid'] is False
    assert f['properties']['geom_invalid_reason'].startswith('Too few points')
    assert 'geom_valid' in api('/collections/zones_inondation/queryables', f='json').json()['properties']


def test_filters_found_by_a_breaking_session_are_400(api):
    """An "in" whose list is not a list (was a 500, or read letter by letter); arithmetic on
    strings (PostgreSQL: operator is not unique, was a 500); a polygon literal of 60,000
    vertices (tied the database up for minutes)."""
    import math
    n = 60000
    ring = [[round(45.15 + (0.3 + 0.01 * (i % 2 * 2 - 1)) * math.cos(2 * math.pi * i / n), 5),
             round(-12.8 + (0.3 + 0.01 * (i % 2 * 2 - 1)) * math.sin(2 * math.pi * i / n), 5)] for i in range(n)]
    ring.append(ring[0])
    star = {'op': 's_crosses', 'args': [{'property': 'geometry'}, {'type': 'Polygon', 'coordinates': [ring]}]}
    for collection in ('communes', 'villages', 'catalogue'):
        for doc, words in [({'op': 'in', 'args': [{'property': 'nom'}, 5]}, 'list'),
                           ({'op': 'in', 'args': [{'property': 'nom'}, 'YT']}, 'list'),
                           ({'op': 'in', 'args': [{'property': 'nom'}, True]}, 'list'),
                           ({'op': 'isNull', 'args': [{'op': '+', 'args': ['a', 'b']}]}, 'cannot')]:
            r = api(f'/collections/{collection}/items', filter=json.dumps(doc), **{'filter-lang': 'cql2-json'})
            assert r.status_code == 400 and words in r.json()['description'], (collection, doc, r.text[:300])
        for text in ("nom = 'a' - 'b'", "nom = 'a' + 'b'", "nom = 'a' * 'b'"):
            if collection == 'catalogue':
                text = text.replace('nom', 'title')
            r = api(f'/collections/{collection}/items', filter=text)
            assert r.status_code == 400, (collection, text, r.text[:300])
        r = api.session.post(f'{api.base}/collections/{collection}/items', data=json.dumps(star), timeout=60,
                             headers={'Content-Type': 'application/query-cql-json'}, params={'limit': 1})
        assert r.status_code == 400 and 'GEOMAYOTTE_MAX_FILTER_VERTICES' in r.json()['description']
