"""OGC API Coverages provider: pygeoapi's rasterio provider, with input checked.

pygeoapi's own provider answers 500 when a bbox or subset misses the raster
(rasterio's WindowError), when bbox-crs is a URI, or on a 6-number bbox; it
ignores a subset on one axis only and reports a world bbox as the domain. Here:
400s that say what is wrong, a subset on one axis keeps the full other axis, and
a bbox is clipped to the raster before reading.
"""
from __future__ import annotations

import math

import pyproj
from pygeoapi.provider.base import ProviderInvalidQueryError
from pygeoapi.provider.rasterio_ import RasterioProvider

from geomayotte import crs as crsmod
from geomayotte.errors import InvalidQuery


def _bad(msg: str) -> ProviderInvalidQueryError:
    err = ProviderInvalidQueryError(user_msg=msg)
    err.ogc_exception_code = 'InvalidParameterValue'
    return err


def _known(uri: str) -> bool:
    try:
        crsmod.crs(uri)
        return True
    except InvalidQuery:
        return False


class RasterioCoverageProvider(RasterioProvider):
    def query(self, properties=[], subsets={}, bbox=None, bbox_crs=4326, datetime_=None,
              format_='json', **kwargs):
        for band in properties or []:
            if not str(band).isdigit() or not 1 <= int(band) <= self._data.count:
                raise _bad(f'properties: unknown band {band!r} (bands 1 to {self._data.count})')
        lat_first = isinstance(bbox_crs, str) and crsmod.output(bbox_crs).flip if \
            isinstance(bbox_crs, str) and _known(bbox_crs) else False
        if isinstance(bbox_crs, str):
            try:
                is_crs84 = bbox_crs.rstrip('/').endswith(('CRS84', 'CRS84h'))
                bbox_crs = 'OGC:CRS84' if is_crs84 else crsmod.srid_of(bbox_crs)
            except InvalidQuery:
                raise _bad(f'bbox-crs: unknown CRS {bbox_crs!r}') from None
        native = self._data.crs.to_epsg() or 4326
        x_label = self._coverage_properties['x_axis_label']
        y_label = self._coverage_properties['y_axis_label']
        if bbox and (x_label in (subsets or {}) or y_label in (subsets or {})):
            raise _bad(f'bbox and subset on {x_label}/{y_label} cannot be combined: give one')
        if bbox and lat_first and len(bbox) == 4:
            bbox = [bbox[1], bbox[0], bbox[3], bbox[2]]   # EPSG:4326 given as lat, lon
        if bbox:
            if len(bbox) == 6:
                bbox = [bbox[0], bbox[1], bbox[3], bbox[4]]
            bbox = self._clip(list(bbox), bbox_crs, 'bbox')
            bbox_crs = native
        subsets = dict(subsets or {})
        if x_label in subsets or y_label in subsets:
            b = self._data.bounds
            xs = subsets.get(x_label, [b.left, b.right])
            ys = subsets.get(y_label, [b.bottom, b.top])
            box = self._clip([xs[0], ys[0], xs[-1], ys[-1]], native, 'subset')
            subsets[x_label], subsets[y_label] = [box[0], box[2]], [box[1], box[3]]
        try:
            return super().query(properties=properties, subsets=subsets, bbox=bbox,
                                 bbox_crs=bbox_crs, datetime_=datetime_, format_=format_, **kwargs)
        except (ValueError, IndexError) as err:
            raise _bad(f'coverage request cannot be served: {err}') from err

    def _clip(self, box, crs, what):
        """The box in the raster's CRS, clipped to the raster; 400 when it misses it."""
        if len(box) != 4:
            raise _bad(f'{what}: 4 numbers expected')
        try:
            minx, miny, maxx, maxy = (float(v) for v in box)
        except (TypeError, ValueError):
            raise _bad(f'{what}: values must be numbers') from None
        if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)):
            raise _bad(f'{what}: values must be finite numbers')
        if minx >= maxx or miny >= maxy:
            raise _bad(f'{what}: minimum must be lower than maximum on each axis')
        try:
            src = pyproj.CRS.from_epsg(crs) if isinstance(crs, int) else pyproj.CRS.from_user_input(crs)
        except pyproj.exceptions.CRSError:
            raise _bad(f'{what}: unknown CRS {crs!r}') from None
        if src != self._data.crs:
            t = pyproj.Transformer.from_crs(src, self._data.crs, always_xy=True)
            minx, miny, maxx, maxy = t.transform_bounds(minx, miny, maxx, maxy)
        b = self._data.bounds
        if maxx <= b.left or minx >= b.right or maxy <= b.bottom or miny >= b.top:
            raise _bad(f'{what} does not intersect the coverage extent '
                       f'[{b.left}, {b.bottom}, {b.right}, {b.top}]')
        return [max(minx, b.left), max(miny, b.bottom), min(maxx, b.right), min(maxy, b.top)]
