"""Real clients against the live server: OWSLib and GDAL/OGR's OAPIF driver, as a partner
would use them (bearer API key) and anonymously (open datasets only)."""
from __future__ import annotations

import shutil
import subprocess

import pytest
from owslib.ogcapi.features import Features

EPSG4471 = 'http://www.opengis.net/def/crs/EPSG/0/4471'


def test_owslib_reads_collections_items_and_queryables(owslib):
    w = owslib(Features)
    ids = {c['id'] for c in w.collections()['collections']}
    assert {'communes', 'seismes', 'villages'} <= ids
    anonymous = {c['id'] for c in owslib(Features, key=None).collections()['collections']}
    assert 'communes' in anonymous and 'seismes' not in anonymous
    items = w.collection_items('villages', bbox=[45.19, -12.82, 45.24, -12.76], limit=100)
    assert items['numberReturned'] > 0
    for f in items['features']:
        x, y = f['geometry']['coordinates']
        assert 45.19 <= x <= 45.24 and -12.82 <= y <= -12.76
    native = w.collection_items('forets_publiques', crs=EPSG4471, limit=1)
    x, y = native['features'][0]['geometry']['coordinates'][0][0][0]
    assert 500000 < x < 530000 and 8560000 < y < 8600000
    q = w.collection_queryables('seismes')
    assert {'mag', 't0', 'geometry'} <= set(q['properties'])
    assert w.collection_item('communes', '97611')['properties']['nom'] == 'Mamoudzou'


ogrinfo = shutil.which('ogrinfo')


def run_ogr(*args, key=None) -> str:
    auth = ['--config', 'GDAL_HTTP_HEADERS', f'Authorization: Bearer {key}'] if key else []
    res = subprocess.run([ogrinfo, '--config', 'GDAL_HTTP_TIMEOUT', '30', *auth, *args],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return res.stdout


@pytest.mark.skipif(ogrinfo is None, reason='ogrinfo (gdal-bin) not installed: make system-deps')
def test_ogrinfo_lists_every_collection(server, partner_key):
    out = run_ogr('-ro', '-q', f'OAPIF:{server}', key=partner_key)
    for name in ('communes', 'seismes', 'villages', 'zones_inondation', 'forets_publiques',
                 'population_communes', 'trait_de_cote', 'antennes_gsm', 'cantons'):
        assert f': {name}' in out, out
    anonymous = run_ogr('-ro', '-q', f'OAPIF:{server}')
    assert ': communes' in anonymous and ': seismes' not in anonymous
    # every layer summarised: the DEM (a coverage, itemType coverage) is not taken for one
    res = subprocess.run([ogrinfo, '--config', 'GDAL_HTTP_TIMEOUT', '30', '-ro', '-al', '-so',
                          f'OAPIF:{server}'], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and 'ERROR' not in res.stderr, res.stderr[-2000:]
    assert 'Layer name: communes' in res.stdout and 'Layer name: relief' not in res.stdout


@pytest.mark.skipif(ogrinfo is None, reason='ogrinfo (gdal-bin) not installed: make system-deps')
def test_ogrinfo_reads_features_with_spat_and_where(server, partner_key):
    out = run_ogr('-ro', '-al', '-so', f'OAPIF:{server}', 'communes')
    assert 'Feature Count: 17' in out
    out = run_ogr('-ro', '-json', '-features', '-spat', '45.19', '-12.82', '45.24', '-12.76',
                  f'OAPIF:{server}', 'villages') if _has_json() else \
        run_ogr('-ro', '-al', '-spat', '45.19', '-12.82', '45.24', '-12.76', f'OAPIF:{server}', 'villages')
    assert 'Passamainty' in out
    out = run_ogr('-ro', '-al', '-where', "code_insee = '97611'", f'OAPIF:{server}', 'communes')
    assert 'Feature Count: 1' in out or out.count('OGRFeature(communes)') == 1
    assert 'Mamoudzou' in out
    out = run_ogr('-ro', '-al', '-where', 'mag >= 5.5', f'OAPIF:{server}', 'seismes', key=partner_key)
    assert out.count('OGRFeature(seismes)') >= 1
    assert all(float(line.split('=')[1]) >= 5.5 for line in out.splitlines()
               if line.strip().startswith('mag (Real)'))


def _has_json() -> bool:
    res = subprocess.run([ogrinfo, '--help'], capture_output=True, text=True)
    return '-json' in res.stdout + res.stderr
