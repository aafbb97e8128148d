"""Around the Features API: HTML, languages, CORS, the DEM coverage, the OpenAPI document."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import rasterio
import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_html_keeps_french_names_escaped_once(api):
    html = api('/collections/communes/items', f='html', limit=17).text
    assert 'Bouéni' in html and 'Kani-Kéli' in html
    assert 'M&#39;Tsangamouji' in html or "M'Tsangamouji" in html
    assert '&amp;#39;' not in html and '&amp;eacute;' not in html and 'Bou&amp;' not in html
    page = api('/collections/forets_publiques/items/F49626R', f='html')
    assert page.status_code == 200 and 'Forêt départementale du Mont Tchaourembo' in page.text
    assert 'text/html' in page.headers['Content-Type']


@pytest.mark.parametrize('how', ['param', 'header'])
def test_french_first_english_on_request(api, how):
    fr = api('/collections/seismes', f='json').json()
    assert fr['title'] == 'Séismes 2018-2021'
    en = (api('/collections/seismes', f='json', lang='en') if how == 'param'
          else api('/collections/seismes', f='json', headers={'Accept-Language': 'en'}))
    assert en.json()['title'] == 'Earthquakes 2018-2021'
    assert en.json()['description'].startswith('EMSC catalogue')
    assert en.headers['Content-Language'].startswith('en')


def test_cors_simple_and_preflight(api):
    r = api('/collections/communes/items', limit=1, headers={'Origin': 'https://carto.example'})
    assert r.headers['Access-Control-Allow-Origin'] == '*'
    exposed = r.headers['Access-Control-Expose-Headers']
    assert 'Location' in exposed and 'Content-Crs' in exposed
    pre = api.session.options(f'{api.base}/collections/communes/items', headers={
        'Origin': 'https://carto.example', 'Access-Control-Request-Method': 'GET',
        'Access-Control-Request-Headers': 'Accept-Language'}, timeout=10)
    assert pre.status_code in (200, 204)
    assert pre.headers['Access-Control-Allow-Origin'] == '*'
    assert 'GET' in pre.headers['Access-Control-Allow-Methods']
    assert 'Accept-Language' in pre.headers['Access-Control-Allow-Headers']


def test_dem_coverage_json_and_geotiff(api, data_dir):
    meta = api('/collections/relief', f='json').json()
    assert any('coverage' in lk['href'] for lk in meta['links'])
    cov = api('/collections/relief/coverage', f='json', bbox='45.0,-13.05,45.3,-12.6')
    assert cov.status_code == 200 and cov.json()['type'] == 'Coverage'
    axes = cov.json()['domain']['axes']
    assert 45.0 <= axes['x']['start'] <= 45.3 and axes['x']['num'] <= 5
    tif = api('/collections/relief/coverage', f='GTiff', bbox='45.0,-13.05,45.3,-12.6')
    assert tif.status_code == 200
    with rasterio.MemoryFile(io.BytesIO(tif.content).read()) as mem, mem.open() as ds:
        assert ds.crs.to_epsg() == 4326
        left, bottom, right, top = ds.bounds
        assert left >= 44.9 and right <= 45.4 and ds.width <= 5
        served = [v[0] for v in ds.sample([(45.1, -12.8), (45.2, -12.9)])]
    with rasterio.open(data_dir / 'etopo1-0.1deg-mayotte-comoros-bed.tif') as src:
        source = [v[0] for v in src.sample([(45.1, -12.8), (45.2, -12.9)])]
    assert served == pytest.approx(source) and served[0] != served[1]


@pytest.mark.parametrize('params,word', [
    ({'bbox': '10,10,11,11'}, 'does not intersect'),
    ({'bbox': '45,-12,46,-13'}, 'miny'),
    ({'bbox': '45,-13,46'}, 'bbox'),
    ({'bbox': 'a,b,c,d'}, 'bbox'),
    ({'bbox': 'nan,nan,nan,nan'}, 'finite'),
    ({'bbox': '45,-13,46,-12', 'bbox-crs': 'foo'}, 'bbox-crs'),
    ({'properties': 'abc'}, 'invalid field'),
    ({'subset': 'z(1:2)'}, 'axis'),
    ({'subset': 'Long(10:11),Lat(10:11)'}, 'does not intersect'),
    ({'subset': 'Lat(-12:-13)'}, 'minimum'),
    # parameters pygeoapi does not read were ignored: the whole DEM came back
    ({'scale-size': 'Lon(10),Lat(10)'}, "unknown parameter 'scale-size'"),
    ({'crs': 'http://www.opengis.net/def/crs/EPSG/0/4471'}, "unknown parameter 'crs'"),
    ({'subset-crs': 'http://www.opengis.net/def/crs/EPSG/0/4326'}, "unknown parameter 'subset-crs'"),
])
def test_coverage_bad_input_is_400(api, params, word):
    r = api('/collections/relief/coverage', f='json', **params)
    assert r.status_code == 400, (params, r.status_code, r.text[:200])
    assert word in r.json()['description'].lower()


def test_coverage_subsets_and_clipping(api):
    lat_only = api('/collections/relief/coverage', f='json', subset='Lat(-13.05:-12.55)').json()
    axes = lat_only['domain']['axes']
    assert axes['x']['num'] == 41 and axes['y']['num'] <= 6      # the other axis kept whole
    world = api('/collections/relief/coverage', f='json', bbox='-180,-90,180,90').json()
    assert world['domain']['axes']['x']['start'] >= 42.9         # clipped to the raster
    six = api('/collections/relief/coverage', f='json', bbox='45.0,-13.05,0,45.3,-12.6,10')
    assert six.status_code == 200
    uri = api('/collections/relief/coverage', f='json', bbox='45.0,-13.05,45.3,-12.6',
              **{'bbox-crs': 'http://www.opengis.net/def/crs/OGC/1.3/CRS84'})
    assert uri.status_code == 200, uri.text


def test_committed_openapi_is_current_and_valid(database_url, tmp_path, data_dir):
    """CI regenerates the document and validates it; the committed copy must match."""
    out = tmp_path / 'openapi.yml'
    env = dict(os.environ, DATABASE_URL=database_url, GEOMAYOTTE_DATA_DIR=str(data_dir),
               GEOMAYOTTE_BASE_URL='http://127.0.0.1:5000')
    res = subprocess.run([sys.executable, '-m', 'geomayotte.openapi', '--output', str(out)],
                         env=env, cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert yaml.safe_load(out.read_text()) == yaml.safe_load((ROOT / 'openapi' / 'openapi.yml').read_text()), \
        'openapi/openapi.yml is stale: run `make openapi` and commit it'


def test_config_is_valid(database_url, data_dir):
    env = dict(os.environ, DATABASE_URL=database_url, GEOMAYOTTE_DATA_DIR=str(data_dir),
               GEOMAYOTTE_BASE_URL='http://127.0.0.1:5000')
    res = subprocess.run([str(Path(sys.executable).parent / 'pygeoapi'), 'config', 'validate',
                          '-c', str(ROOT / 'pygeoapi-config.yml')], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_openapi_validator_rejects_a_broken_document(tmp_path):
    from geomayotte import openapi
    doc = yaml.safe_load((ROOT / 'openapi' / 'openapi.yml').read_text())
    del doc['paths']['/collections']['get']['responses']
    bad = tmp_path / 'bad.yml'
    bad.write_text(yaml.safe_dump(doc))
    assert any(not p.startswith('OGC schema copies') for p in openapi.validate(bad))
