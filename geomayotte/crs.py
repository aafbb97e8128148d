"""CRS helpers, cached: a CRS URI is parsed once per process, never per request."""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import pyproj
from pyproj.exceptions import CRSError

from geomayotte.errors import InvalidQuery

CRS84 = 'http://www.opengis.net/def/crs/OGC/1.3/CRS84'


@dataclass(frozen=True)
class OutputCRS:
    uri: str
    srid: int
    flip: bool       # the CRS lists latitude/northing first (EPSG:4326)
    decimals: int    # about a millimetre: 8 for degrees, 3 for metres


@lru_cache(maxsize=64)
def crs(uri: str) -> pyproj.CRS:
    try:
        return pyproj.CRS.from_user_input(uri)
    except CRSError as err:
        raise InvalidQuery(f'unknown CRS {uri!r}') from err


@lru_cache(maxsize=64)
def srid_of(uri: str) -> int:
    if uri.rstrip('/').endswith(('CRS84', 'CRS84h')):
        return 4326
    epsg = crs(uri).to_epsg()
    if epsg is None:
        raise InvalidQuery(f'CRS {uri!r} has no EPSG code')
    return epsg


@lru_cache(maxsize=64)
def output(uri: str) -> OutputCRS:
    c = crs(uri)
    srid = srid_of(uri)
    is_crs84 = uri.rstrip('/').endswith(('CRS84', 'CRS84h'))
    first = c.axis_info[0].direction.lower() if c.axis_info else 'east'
    flip = (not is_crs84) and first in ('north', 'south')
    return OutputCRS(uri=uri, srid=srid, flip=flip, decimals=8 if c.is_geographic else 3)


@lru_cache(maxsize=64)
def _to_lonlat(uri: str) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(crs(uri), pyproj.CRS('OGC:CRS84'), always_xy=True)


@lru_cache(maxsize=64)
def _from_lonlat(srid: int) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(pyproj.CRS('OGC:CRS84'), pyproj.CRS.from_epsg(srid),
                                       always_xy=True)


@lru_cache(maxsize=64)
def area_of_use(srid: int) -> tuple[float, float, float, float]:
    aou = pyproj.CRS.from_epsg(srid).area_of_use
    if aou is None:
        return (-180.0, -90.0, 180.0, 90.0)
    return (aou.west, aou.south, aou.east, aou.north)


def bbox_envelopes(bbox: list[float], bbox_crs: str, storage_srid: int) -> list[tuple]:
    """The bbox as envelopes in the storage CRS, ready to bind.

    Handles 6-number boxes, boxes crossing the antimeridian (minx > maxx in a
    geographic CRS), and boxes larger than the storage CRS' area of use (clipped
    to it before projecting, so a world bbox does not break UTM). An empty list
    means the bbox cannot touch any stored feature.
    """
    if len(bbox) == 6:
        bbox = [bbox[0], bbox[1], bbox[3], bbox[4]]
    if len(bbox) != 4 or not all(math.isfinite(v) for v in bbox):
        raise InvalidQuery('bbox must be 4 or 6 finite numbers')
    minx, miny, maxx, maxy = bbox
    src = crs(bbox_crs)
    src_srid = srid_of(bbox_crs)
    if output(bbox_crs).flip:  # EPSG:4326 bbox is lat,lon,lat,lon
        minx, miny, maxx, maxy = miny, minx, maxy, maxx
    if miny > maxy:
        raise InvalidQuery('bbox: miny (south) is greater than maxy (north)')
    if src_srid == storage_srid and not src.is_geographic:
        if minx > maxx:
            raise InvalidQuery('bbox: minx is greater than maxx')
        return [(minx, miny, maxx, maxy)]
    if src.is_geographic:
        parts = [(minx, miny, maxx, maxy)] if minx <= maxx else \
            [(minx, miny, 180.0, maxy), (-180.0, miny, maxx, maxy)]
        if any(abs(v) > 180 for v in (minx, maxx)) or any(abs(v) > 90 for v in (miny, maxy)):
            raise InvalidQuery('bbox: longitude must lie in [-180, 180], latitude in [-90, 90]')
    else:
        if minx > maxx:
            raise InvalidQuery('bbox: minx is greater than maxx')
        parts = [_to_lonlat(bbox_crs).transform_bounds(minx, miny, maxx, maxy, densify_pts=21)]
    w, s, e, n = area_of_use(storage_srid)
    envelopes = []
    for x0, y0, x1, y1 in parts:
        x0, y0, x1, y1 = max(x0, w), max(y0, s), min(x1, e), min(y1, n)
        if x0 > x1 or y0 > y1:
            continue
        if storage_srid == 4326:
            envelopes.append((x0, y0, x1, y1))
        else:
            envelopes.append(_from_lonlat(storage_srid).transform_bounds(x0, y0, x1, y1,
                                                                           densify_pts=21))
    return envelopes
