"""Validation against the reference model: the labelled defect corpus, the real files,
and the OGC API Processes endpoint with real clients."""
from __future__ import annotations

import base64
import collections
import glob
import io
import json
import zipfile
from pathlib import Path

import fiona
import pytest
import yaml
from owslib.ogcapi.processes import Processes

from geomayotte.validation import report
from geomayotte.validation.catalogue import RULES
from geomayotte.validation.reader import InputError

CORPUS = Path(__file__).parent / 'corpus'
EXPECTED = yaml.safe_load((CORPUS / 'expected.yml').read_text(encoding='utf-8'))


def run(url, ft, features=None, **inputs):
    return report.validate({'featureType': ft, **({'features': features} if features is not None else {}),
                            **inputs}, url)


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_corpus_every_expected_issue_and_nothing_else(database_url, name):
    case = EXPECTED[name]
    doc = json.loads((CORPUS / f'{name}.geojson').read_text(encoding='utf-8'))
    r = run(database_url, case['featureType'], doc, **({'crs': case['crs']} if 'crs' in case else {}))
    got = collections.Counter((i['code'], i['featureId']) for i in r['issues'])
    want = collections.Counter((e['code'], e.get('feature')) for e in case['expected'])
    assert got == want, [(i['code'], i['featureId'], i['message']['en']) for i in r['issues']]
    for e in case['expected']:
        if 'at' in e:
            locs = [i['location']['crs84']['coordinates'] for i in r['issues']
                    if i['code'] == e['code'] and i['location'] and 'crs84' in i['location']]
            assert any(abs(x - e['at'][0]) < 1e-6 and abs(y - e['at'][1]) < 1e-6 for x, y in locs), \
                (e, locs)
    assert r['summary']['passed'] is (not any(RULES[e['code']].severity == 'error'
                                              for e in case['expected']))


def test_every_rule_has_a_corpus_case_or_a_real_data_test():
    in_corpus = {e['code'] for case in EXPECTED.values() for e in case['expected']}
    elsewhere = {'F002', 'R003'}      # tested below: shapefile without .prj, copy of a published zone
    assert set(RULES) - in_corpus - elsewhere == set(), set(RULES) - in_corpus - elsewhere


def test_issue_record_is_complete(database_url):
    doc = json.loads((CORPUS / 'self_intersection.geojson').read_text(encoding='utf-8'))
    issue = run(database_url, 'zone_alea_inondation', doc)['issues'][0]
    assert issue['severity'] == 'error' and issue['group'] == 'geometry'
    assert issue['iso19157'] == 'logical consistency / topological consistency'
    assert issue['message']['fr'].startswith('Géométrie invalide') and issue['message']['en'].startswith('Invalid')
    assert 'Self-intersection' in issue['details']['reason']
    assert issue['location']['submitted']['crs'] == 'OGC:CRS84'


def test_real_flood_zone_with_collapsed_rings(database_url, data_dir):
    doc = json.loads((data_dir / 'l_zone_alea_inondation_debordement_s_976.geojson').read_text())
    r = run(database_url, 'zone_alea_inondation', doc)
    g001 = [i for i in r['issues'] if i['code'] == 'G001']
    assert [i['featureId'] for i in g001] == ['ZAPI0040']
    assert g001[0]['details']['reason'].startswith('Too few points')
    assert g001[0]['location']['crs84']['coordinates'] == pytest.approx([45.17773, -12.73454], abs=1e-7)
    assert not [i for i in r['issues'] if i['code'] in ('R001', 'A001', 'A003', 'A004', 'A005', 'T002')]


def test_real_landslide_zones_pass_geometry_rules_and_match_communes(database_url, data_dir):
    doc = json.loads((data_dir / 'l_glissement_terrain_s_976.geojson').read_text())
    r = run(database_url, 'zone_alea_glissement', doc)
    assert r['input']['features'] == 19
    errors = [i for i in r['issues'] if i['severity'] == 'error' and i['group'] in ('geometry', 'format', 'territory')]
    assert errors == []
    assert not [i for i in r['issues'] if i['code'] in ('R001', 'A005')]
    # already on the platform: each one is found as a duplicate with its own identifier
    dup = {i['featureId']: i['details']['platform_id'] for i in r['issues'] if i['code'] == 'R003'}
    assert len(dup) == 19 and all(k == v for k, v in dup.items())


def _zip(paths) -> str:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as z:
        for p in paths:
            z.write(p, Path(p).name)
    return base64.b64encode(buf.getvalue()).decode()


def test_real_forests_shapefile_checked_in_its_own_crs(database_url, data_dir):
    files = glob.glob(str(data_dir / 'forets' / 'L_FORET_DEP_DOM_S_976.*'))
    r = run(database_url, 'foret_publique', file={'value': _zip(files), 'mediaType': 'application/zip'})
    assert r['input'] == {'source': 'file (application/zip)', 'crs': 'EPSG:4471', 'features': 12}
    assert r['summary']['errors'] == 0, [i['message']['en'] for i in r['issues'] if i['severity'] == 'error']
    some = next(i for i in r['issues'] if i['location'])
    assert some['location']['submitted']['crs'] == 'EPSG:4471'
    x, y = some['location']['submitted']['coordinates']
    assert 500000 < x < 530000 and 8560000 < y < 8600000


def test_chirongui_village_reported_with_the_tolerance_it_misses_by(database_url, data_dir):
    doc = json.loads((data_dir / 'geonames-villages-976.geojson').read_text())
    r = run(database_url, 'lieu_habite', doc)
    r001 = [i for i in r['issues'] if i['code'] == 'R001']
    assert [i['featureId'] for i in r001] == [1090415]
    d = r001[0]['details']
    assert d['code'] == '97606' and d['tolerance_m'] == 50 and d['actual_commune'] == []
    assert d['missed_by_m'] == pytest.approx(d['distance_m'] - 50) and d['missed_by_m'] > 0
    assert 'missed by' in r001[0]['message']['en'] and 'dépassée de' in r001[0]['message']['fr']


def test_copy_of_a_published_zone_is_a_duplicate(database_url, data_dir):
    src = json.loads((data_dir / 'l_zone_alea_inondation_debordement_s_976.geojson').read_text())
    copy = next(f for f in src['features'] if f['properties']['id_obj'] == 'ZAPI0053')
    copy['properties']['id_obj'] = 'ZAPI9999'
    r = run(database_url, 'zone_alea_inondation', {'type': 'FeatureCollection', 'features': [copy]})
    dup = [i for i in r['issues'] if i['code'] == 'R003']
    assert len(dup) == 1 and dup[0]['details']['platform_id'] == 'ZAPI0053'
    assert dup[0]['severity'] == 'warning'


def test_shapefile_without_crs(database_url, tmp_path):
    schema = {'geometry': 'Point', 'properties': {'id': 'str', 'nom': 'str', 'categorie': 'str', 'code_insee': 'str'}}
    with fiona.open(tmp_path / 'poi.shp', 'w', driver='ESRI Shapefile', schema=schema) as dst:
        dst.write({'geometry': {'type': 'Point', 'coordinates': (45.2277, -12.7806)},
                   'properties': {'id': 'EQ-1', 'nom': 'Mairie', 'categorie': 'administration', 'code_insee': '97611'}})
    files = [p for p in tmp_path.iterdir() if p.suffix != '.prj']
    qualified = {'value': _zip(files), 'mediaType': 'application/zip'}
    r = run(database_url, 'equipement', file=qualified)
    assert [i['code'] for i in r['issues']] == ['F002'] and not r['summary']['passed']
    r = run(database_url, 'equipement', file=qualified, crs='EPSG:4326')
    assert r['issues'] == [] and r['summary']['passed']


def test_rule_groups_and_repair(database_url):
    doc = json.loads((CORPUS / 'self_intersection.geojson').read_text(encoding='utf-8'))
    r = run(database_url, 'zone_alea_inondation', doc, rules=['attributes'], repair=True)
    assert r['issues'] == [] and r['ruleGroups'] == ['attributes']
    fixed = r['repaired']['features'][0]['geometry']
    assert fixed['type'] == 'MultiPolygon'      # the bow-tie made valid: two triangles


@pytest.mark.parametrize('inputs,name', [
    ({'featureType': 'nope', 'features': {'type': 'FeatureCollection', 'features': []}}, 'featureType'),
    ({'features': {'type': 'FeatureCollection', 'features': []}}, 'featureType'),
    ({'featureType': 'equipement'}, 'features'),
    ({'featureType': 'equipement', 'features': {'type': 'FeatureCollection', 'features': []},
      'file': {'value': 'eA==', 'mediaType': 'application/zip'}}, 'features'),
    ({'featureType': 'equipement', 'features': 'not json'}, 'features'),
    ({'featureType': 'equipement', 'features': {'type': 'Polygon'}}, 'features'),
    ({'featureType': 'equipement', 'features': [{'type': 'Nope'}]}, 'features'),
    ({'featureType': 'equipement', 'file': {'value': '%%%', 'mediaType': 'application/zip'}}, 'file'),
    ({'featureType': 'equipement', 'file': {'value': 'eA==', 'mediaType': 'application/zip'}}, 'file'),
    ({'featureType': 'equipement', 'file': {'value': 'eA==', 'mediaType': 'image/png'}}, 'file'),
    ({'featureType': 'equipement', 'file': 'eA=='}, 'file'),
    ({'featureType': 'equipement', 'file': {'value': base64.b64encode(b'not a gpkg').decode(),
                                            'mediaType': 'application/geopackage+sqlite3'}}, 'file'),
    ({'featureType': 'equipement', 'features': {'type': 'FeatureCollection', 'features': []}, 'crs': 'EPSG:99999'}, 'crs'),
    ({'featureType': 'equipement', 'features': {'type': 'FeatureCollection', 'features': []}, 'rules': ['nope']}, 'rules'),
    ({'featureType': 'equipement', 'features': {'type': 'FeatureCollection', 'features': []}, 'rules': 'format'}, 'rules'),
])
def test_bad_process_input_names_the_input(database_url, inputs, name):
    with pytest.raises(InputError) as err:
        report.validate(inputs, database_url)
    assert err.value.input_name == name


# -- over HTTP ---------------------------------------------------------------------------
def test_process_description_and_model_are_published(api):
    d = api('/processes/validate-reference-model', f='json').json()
    from geomayotte.validation import model
    assert d['inputs']['featureType']['schema']['enum'] == sorted(model.load().feature_types)
    m = api('/model').json()
    assert m['version'] and m['crs']['storage'] == 'EPSG:4471'
    s = api('/model/feature-types/zone_alea_inondation/schema')
    assert s.headers['Content-Type'].startswith('application/schema+json')
    props = s.json()['properties']['properties']
    assert props['properties']['lb_niveau']['enum'] == ['Faible', 'Moyen', 'Fort']
    assert 'cd_com' in props['required']
    assert api('/model/feature-types/nope/schema').status_code == 404


def test_process_over_http_sync(api):
    doc = json.loads((CORPUS / 'wrong_commune.geojson').read_text(encoding='utf-8'))
    r = api.session.post(f'{api.base}/processes/validate-reference-model/execution',
                         json={'inputs': {'featureType': 'zone_alea_inondation', 'features': doc}}, timeout=60)
    assert r.status_code == 200, r.text
    rep = r.json()
    assert [i['code'] for i in rep['issues']] == ['R001'] and rep['summary']['passed'] is False
    bad = api.session.post(f'{api.base}/processes/validate-reference-model/execution',
                           json={'inputs': {'featureType': 'nope'}}, timeout=60)
    assert bad.status_code == 400 and 'featureType' in bad.json()['description']


def test_owslib_processes_client(server):
    p = Processes(server)
    ids = [x['id'] for x in p.processes()]
    assert 'validate-reference-model' in ids
    doc = json.loads((CORPUS / 'valid.geojson').read_text(encoding='utf-8'))
    result = p.execute('validate-reference-model', {'featureType': 'zone_alea_inondation', 'features': doc})
    rep = result['outputs'][0]        # pygeoapi's "document" response: {"outputs": [report]}
    assert rep['summary']['passed'] is True and rep['issues'] == []
