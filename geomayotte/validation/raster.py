"""A partner's raster (GeoTIFF) checked with rasterio against a raster type of the model."""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pyproj
import shapely

from geomayotte.validation import reference
from geomayotte.validation.reader import InputError, Submission, decode_qualified

_TIFF = ('image/tiff', 'image/geotiff')


def read_and_check(qualified: dict, rtype: dict, model, url: str):
    """(Submission describing the bands, issues) for a GeoTIFF given as a qualified value."""
    import rasterio
    from rasterio.errors import RasterioIOError
    _, data = decode_qualified(qualified, _TIFF)
    if data[:4] not in (b'II*\x00', b'MM\x00*', b'II+\x00', b'MM\x00+'):
        raise InputError('file', 'not a TIFF file')
    issues = []
    with tempfile.TemporaryDirectory(prefix='geomayotte-') as tmp:
        path = Path(tmp) / 'raster.tif'
        path.write_bytes(data)
        try:
            ds = rasterio.open(path, driver='GTiff')   # no VRT or other format that could fetch URLs
        except RasterioIOError as err:
            why = str(err).splitlines()[0].replace(tmp + '/', '')   # not the server's paths
            raise InputError('file', f'not a readable GeoTIFF ({why[:200]})') from None
        with ds:
            crs = pyproj.CRS.from_wkt(ds.crs.to_wkt()) if ds.crs else None
            crs_name = (f'EPSG:{crs.to_epsg()}' if crs and crs.to_epsg() else crs.name if crs else None)
            if crs is not None and crs.equals(pyproj.CRS('OGC:CRS84')):
                crs_name = 'OGC:CRS84'
            accepted = rtype.get('accepted_crs', list(model.accepted_crs))
            if crs is None or crs_name not in accepted:
                issues.append(('RA01', None, {'crs': crs_name or '—', 'accepted': ', '.join(accepted)}, None))
            t = ds.transform
            if t.is_identity or t.a == 0 or t.e == 0:
                issues.append(('RA03', None, {'reason': 'no georeferencing (identity transform)'}, None))
            elif t.b != 0 or t.d != 0:
                issues.append(('RA03', None, {'reason': 'rotated grid'}, None))
            expected = rtype.get('bands')
            if expected and ds.count != expected:
                issues.append(('RA07', None, {'count': ds.count, 'expected': expected}, None))
            if crs is not None and not t.is_identity:
                footprint = shapely.box(*ds.bounds)
                to_metric = pyproj.Transformer.from_crs(crs, pyproj.CRS.from_epsg(4471), always_xy=True)
                xs, ys = to_metric.transform(*np.array(footprint.exterior.coords).T)
                centre = shapely.centroid(footprint)
                if np.isfinite(xs).all() and np.isfinite(ys).all():
                    metric = shapely.Polygon(np.column_stack([xs, ys]))
                    com = reference.communes(url, model.territory_table)
                    if not shapely.dwithin(metric, com.territory, model.territory_tolerance_m):
                        issues.append(('RA02', None, {}, [centre.x, centre.y]))
                    width_m = (max(xs) - min(xs)) / ds.width
                    height_m = (max(ys) - min(ys)) / ds.height
                    pixel = max(width_m, height_m)
                    limit = rtype.get('max_pixel_size_m')
                    if limit and pixel > float(limit):
                        issues.append(('RA04', None, {'pixel_m': round(pixel, 1), 'threshold': limit}, None))
                else:
                    issues.append(('RA02', None, {}, [centre.x, centre.y]))
            # an overview-sized read per band: a huge sparse raster must not fill the memory
            shape = (min(ds.height, 1024), min(ds.width, 1024))
            for b in range(1, ds.count + 1):
                nodata = ds.nodatavals[b - 1]
                if nodata is None and rtype.get('nodata_required'):
                    issues.append(('RA05', b - 1, {'band': b}, None))
                try:
                    band = ds.read(b, masked=True, out_shape=shape)
                except RasterioIOError as err:
                    why = str(err).splitlines()[0].replace(tmp + '/', '')
                    raise InputError('file', f'band {b} cannot be read ({why[:160]})') from None
                valid = np.ma.count(band)
                if np.issubdtype(band.dtype, np.floating):
                    valid = int(np.isfinite(band.filled(np.nan)).sum())
                if valid == 0:
                    issues.append(('RA06', b - 1, {'band': b}, None))
            sub = Submission(ids=[f'band {b}' for b in range(1, ds.count + 1)],
                             properties=[{} for _ in range(ds.count)],
                             geometries=np.empty(ds.count, dtype=object), geometry_types=[None] * ds.count,
                             crs=crs, crs_name=crs_name, issues=[], source='file (image/tiff)')
    return sub, issues


def fake_feature_type(rtype: dict):
    """The thresholds build() needs, for a raster type."""
    from geomayotte.validation.model import FeatureType
    return FeatureType(rtype['name'], rtype['title'], ('Raster',), 'band', {},
                       {'max_errors': 0, 'max_warning_ratio': 1.0})
