"""OGC API Features Part 2 (CRS), checked against PostGIS itself and pyproj."""
from __future__ import annotations

import pyproj
import pytest

EPSG = 'http://www.opengis.net/def/crs/EPSG/0/'
CRS84 = 'http://www.opengis.net/def/crs/OGC/1.3/CRS84'


def first_vertex(geom):
    c = geom['coordinates']
    while isinstance(c[0], list):
        c = c[0]
    return c


def test_storage_crs_and_crs_list_in_metadata(api):
    doc = api('/collections/forets_publiques', f='json').json()
    assert doc['storageCrs'] == EPSG + '4471'
    assert set(doc['crs']) >= {CRS84, EPSG + '4326', EPSG + '4471', EPSG + '3857'}


@pytest.mark.parametrize('crs,expected', [(None, CRS84), (CRS84, CRS84), (EPSG + '4326', EPSG + '4326'),
                                          (EPSG + '4471', EPSG + '4471'), (EPSG + '3857', EPSG + '3857')])
def test_content_crs_header(api, crs, expected):
    params = {'limit': 1} | ({'crs': crs} if crs else {})
    r = api('/collections/forets_publiques/items', **params)
    assert r.status_code == 200 and r.headers['Content-Crs'] == f'<{expected}>'
    r = api('/collections/forets_publiques/items/F49626R', **({'crs': crs} if crs else {}))
    assert r.status_code == 200 and r.headers['Content-Crs'] == f'<{expected}>'


def test_reprojection_round_trip_within_a_centimetre(api, db):
    """Stored in 4471, served in CRS84 / 4326 / 3857 by the database: every output
    transformed back with pyproj lands within 1 cm of the stored vertex."""
    with db.cursor() as cur:
        cur.execute("""SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointN(ST_ExteriorRing(ST_GeometryN(geom, 1)), 1) p
                       FROM geodata.forets_publiques WHERE iidtn_frt='F49626R') s""")
        x, y = cur.fetchone()
    native = first_vertex(api('/collections/forets_publiques/items/F49626R', crs=EPSG + '4471').json()['geometry'])
    assert abs(native[0] - x) < 0.001 and abs(native[1] - y) < 0.001
    for crs, name in ((CRS84, 'OGC:CRS84'), (EPSG + '4326', 'EPSG:4326'), (EPSG + '3857', 'EPSG:3857')):
        out = first_vertex(api('/collections/forets_publiques/items/F49626R', crs=crs).json()['geometry'])
        back = pyproj.Transformer.from_crs(name, 'EPSG:4471')   # authority axis order
        bx, by = back.transform(*out)
        assert abs(bx - x) < 0.01 and abs(by - y) < 0.01, (crs, bx - x, by - y)


def test_epsg_4326_is_lat_lon(api):
    lonlat = api('/collections/villages/items/921704').json()['geometry']['coordinates']
    latlon = api('/collections/villages/items/921704', crs=EPSG + '4326').json()['geometry']['coordinates']
    assert lonlat[0] == pytest.approx(45.20818, abs=1e-7) and lonlat[1] == pytest.approx(-12.80201, abs=1e-7)
    assert latlon == pytest.approx([lonlat[1], lonlat[0]], abs=1e-9)


def test_bbox_crs(api):
    t = pyproj.Transformer.from_crs('OGC:CRS84', 'EPSG:4471', always_xy=True)
    x0, y0 = t.transform(45.19, -12.82)
    x1, y1 = t.transform(45.24, -12.76)
    in_84 = api('/collections/villages/items', bbox='45.19,-12.82,45.24,-12.76', limit=100).json()
    in_4471 = api('/collections/villages/items', bbox=f'{x0},{y0},{x1},{y1}',
                  **{'bbox-crs': EPSG + '4471'}, limit=100).json()
    in_4326 = api('/collections/villages/items', bbox='-12.82,45.19,-12.76,45.24',
                  **{'bbox-crs': EPSG + '4326'}, limit=100).json()
    ids = {f['id'] for f in in_84['features']}
    assert ids and {f['id'] for f in in_4326['features']} == ids
    # a projected box is a slightly different area: same villages here
    assert {f['id'] for f in in_4471['features']} == ids


def test_bbox_in_4471_on_data_in_4471_uses_it_as_is(api):
    doc = api('/collections/forets_publiques/items', bbox='515000,8570000,520000,8580000',
              **{'bbox-crs': EPSG + '4471'}, crs=EPSG + '4471', limit=100).json()
    assert doc['numberMatched'] >= 1


def test_filter_crs(api):
    t = pyproj.Transformer.from_crs('OGC:CRS84', 'EPSG:4471', always_xy=True)
    x, y = t.transform(45.2277, -12.7806)    # Mamoudzou town centre
    a = api('/collections/communes/items', filter='S_INTERSECTS(geometry, POINT(45.2277 -12.7806))',
            skipGeometry='true').json()
    b = api('/collections/communes/items', filter=f'S_INTERSECTS(geometry, POINT({x} {y}))',
            **{'filter-crs': EPSG + '4471'}, skipGeometry='true').json()
    assert [f['id'] for f in a['features']] == [f['id'] for f in b['features']] == ['97611']
