"""Partner input -> a Submission: raw checks first, shapely geometries after.

GeoJSON inline or a file (GeoJSON, GeoPackage, zipped Shapefile) read with fiona.
Coordinates are checked as sent (closed rings, ring length, finite numbers)
before shapely sees them, since shapely silently closes rings and refuses short
ones.
"""
from __future__ import annotations

import base64
import binascii
import io
import math
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyproj
import shapely

from geomayotte import settings

CRS84 = pyproj.CRS('OGC:CRS84')
MAX_UNZIPPED = settings.max_unzipped()


class InputError(ValueError):
    """Bad process input: a 400 naming the input."""

    def __init__(self, input_name: str, message: str):
        super().__init__(f'{input_name}: {message}')
        self.input_name = input_name


@dataclass
class Submission:
    ids: list                       # feature identifiers (or their index)
    properties: list[dict]
    geometries: np.ndarray          # shapely geometries in the submitted CRS (None if unusable)
    geometry_types: list            # as sent ('Polygon', ...) or None
    crs: pyproj.CRS | None
    crs_name: str | None
    issues: list = field(default_factory=list)   # (code, feature index or None, params, location)
    source: str = 'inline'


def _coords_problem(coords, depth: int, issues: list, index: int, kind: str):
    """Walk raw coordinates; returns mended coordinates or None when unusable."""
    if depth == 0:
        if not isinstance(coords, (list, tuple)) or len(coords) < 2:
            issues.append(('F006', index, {'value': repr(coords)[:60]}, None))
            return None
        for v in coords[:3]:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not _finite(v):
                issues.append(('F006', index, {'value': repr(v)[:60]}, None))
                return None
        if len(coords) > 3:
            issues.append(('F009', index, {'count': len(coords)}, None))
            return None
        return [float(v) for v in coords[:2]]
    if not isinstance(coords, (list, tuple)):
        issues.append(('F006', index, {'value': repr(coords)[:60]}, None))
        return None
    out = []
    for part in coords:
        mended = _coords_problem(part, depth - 1, issues, index, kind)
        if mended is None:
            return None
        out.append(mended)
    if depth == 1 and kind == 'ring':
        if len(out) >= 2 and out[0] != out[-1]:
            issues.append(('F004', index, {}, out[0]))
            out = out + [out[0]]
        if len(out) < 4:
            issues.append(('F005', index, {'count': len(out)}, out[0] if out else None))
            return None
    return out


def _finite(v) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:          # an integer too large for a float
        return False


_DEPTH = {'Point': (0, None), 'MultiPoint': (1, None), 'LineString': (1, None),
          'MultiLineString': (2, None), 'Polygon': (2, 'polygon'), 'MultiPolygon': (3, 'multipolygon')}


def _geometry(raw, index: int, issues: list):
    """(shapely geometry or None, type as sent)."""
    if raw is None:
        issues.append(('F008', index, {}, None))
        return None, None
    if not isinstance(raw, dict) or 'type' not in raw:
        issues.append(('F006', index, {'value': repr(raw)[:60]}, None))
        return None, None
    kind = raw['type']
    if not isinstance(kind, str):
        issues.append(('F006', index, {'value': f'geometry type {kind!r}'[:60]}, None))
        return None, None
    if kind == 'GeometryCollection' or kind not in _DEPTH:
        return ('unsupported', kind)
    coords = raw.get('coordinates')
    if coords in (None, []):
        return shapely.from_wkt(f'{kind.upper()} EMPTY'), kind
    depth, shape = _DEPTH[kind]
    if shape == 'polygon':
        rings = []
        for ring in coords if isinstance(coords, list) else [None]:
            mended = _coords_problem(ring, 1, issues, index, 'ring')
            if mended is None:
                return None, kind
            rings.append(mended)
        coords = rings
    elif shape == 'multipolygon':
        polys = []
        for poly in coords if isinstance(coords, list) else [None]:
            if not isinstance(poly, list):
                issues.append(('F006', index, {'value': repr(poly)[:60]}, None))
                return None, kind
            rings = []
            for ring in poly:
                mended = _coords_problem(ring, 1, issues, index, 'ring')
                if mended is None:
                    return None, kind
                rings.append(mended)
            polys.append(rings)
        coords = polys
    else:
        coords = _coords_problem(coords, depth, issues, index, 'other')
        if coords is None:
            return None, kind
    try:
        geom = shapely.geometry.shape({'type': kind, 'coordinates': coords})
    except Exception as err:  # shapely raises several types on malformed input
        issues.append(('F006', index, {'value': str(err)[:80]}, None))
        return None, kind
    return geom, kind


def _crs_of_name(name: str | None) -> pyproj.CRS | None:
    if not name:
        return None
    try:
        return pyproj.CRS.from_user_input(name)
    except pyproj.exceptions.CRSError:
        return None


MAX_FEATURE_VERTICES = settings.max_feature_vertices()


def _vertex_count(raw) -> int:
    """Positions in a raw GeoJSON geometry (iteratively: nesting may be hostile)."""
    n, stack = 0, [(raw.get('coordinates') if isinstance(raw, dict) else None, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > 6 or not isinstance(node, list):
            continue
        if node and not isinstance(node[0], list):
            n += 1
        else:
            stack.extend((x, depth + 1) for x in node)
    return n


def from_features(features: list, crs: pyproj.CRS | None, crs_name: str | None,
                  id_field: str | None, source: str) -> Submission:
    issues: list = []
    ids, props, geoms, kinds = [], [], [], []
    for index, feat in enumerate(features):
        if not isinstance(feat, dict) or feat.get('type') != 'Feature':
            raise InputError('features', f'item {index} is not a GeoJSON Feature')
        p = feat.get('properties')
        p = {} if p is None else p
        if not isinstance(p, dict):
            raise InputError('features', f'item {index}: properties must be an object or null')
        if _vertex_count(feat.get('geometry')) > MAX_FEATURE_VERTICES:
            raise InputError('features', f'feature {index} has more than {MAX_FEATURE_VERTICES} '
                                         'vertices (GEOMAYOTTE_MAX_FEATURE_VERTICES): simplify or split it')
        geom, kind = _geometry(feat.get('geometry'), index, issues)
        if isinstance(geom, str):  # unsupported type: recorded by the rules with the model's list
            geom = None
        ident = p.get(id_field) if id_field and p.get(id_field) not in (None, '') else feat.get('id')
        ids.append(ident if ident is not None else index)
        props.append(dict(p))
        geoms.append(geom)
        kinds.append(kind)
    arr = np.empty(len(geoms), dtype=object)
    arr[:] = geoms
    return Submission(ids, props, arr, kinds, crs, crs_name, issues, source)


def read_inline(doc, declared_crs: str | None, id_field: str | None) -> Submission:
    if isinstance(doc, str):
        import json
        try:
            doc = json.loads(doc)
        except ValueError as err:
            raise InputError('features', f'not valid JSON ({err})') from None
    if isinstance(doc, dict) and doc.get('type') == 'FeatureCollection':
        features = doc.get('features')
        if not isinstance(features, list):
            raise InputError('features', 'a FeatureCollection needs a "features" array')
    elif isinstance(doc, dict) and doc.get('type') == 'Feature':
        features = [doc]
    elif isinstance(doc, list):
        features = doc
    else:
        raise InputError('features', 'expected a GeoJSON FeatureCollection, Feature or list of Features')
    # RFC 7946: CRS84 unless told otherwise (a legacy `crs` member, or the crs input)
    legacy = doc.get('crs') if isinstance(doc, dict) else None
    legacy = legacy.get('properties') if isinstance(legacy, dict) else None
    legacy = legacy.get('name') if isinstance(legacy, dict) else None
    if isinstance(doc, dict) and doc.get('crs') is not None and legacy is None:
        raise InputError('features', 'a "crs" member must be {"type": "name", "properties": '
                                     '{"name": "urn:ogc:def:crs:EPSG::4471"}}; or give the crs input')
    if legacy is not None and not isinstance(legacy, str):
        raise InputError('features', 'crs.properties.name must be a CRS name such as '
                                     'urn:ogc:def:crs:EPSG::4471')
    name = declared_crs or legacy or 'OGC:CRS84'
    crs = _crs_of_name(name)
    if crs is None:
        raise InputError('crs', f'unknown CRS {name!r}')
    return from_features(features, crs, name, id_field, 'inline')


_DRIVERS = ['GeoJSON', 'GPKG', 'ESRI Shapefile']       # nothing that could fetch a URL
_MEDIA = {'application/geo+json': '.geojson', 'application/json': '.geojson',
          'application/geopackage+sqlite3': '.gpkg', 'application/zip': '.zip',
          'application/x-zipped-shp': '.zip'}


def decode_qualified(qualified, accepted) -> tuple[str, bytes]:
    """An OGC qualified value {"value": base64, "mediaType": ...} -> (media type, bytes)."""
    if not isinstance(qualified, dict) or 'value' not in qualified:
        raise InputError('file', 'give the file as {"value": "<base64>", "mediaType": "..."}')
    media = str(qualified.get('mediaType', '')).split(';')[0].strip().lower()
    if media not in accepted:
        raise InputError('file', f'mediaType {media!r} not supported here (one of {sorted(accepted)})')
    try:
        return media, base64.b64decode(qualified['value'], validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise InputError('file', 'value is not base64') from None


def read_file(qualified: dict, declared_crs: str | None, id_field: str | None,
              layer: str | None = None) -> Submission:
    """A file given as an OGC qualified value: {"value": base64, "mediaType": ...}."""
    import fiona
    media, data = decode_qualified(qualified, _MEDIA)
    with tempfile.TemporaryDirectory(prefix='geomayotte-') as tmp:
        path = Path(tmp) / f'submission{_MEDIA[media]}'
        path.write_bytes(data)
        target = str(path)
        if media in ('application/zip', 'application/x-zipped-shp'):
            try:
                with zipfile.ZipFile(io.BytesIO(data)) as zf:
                    shps = [n for n in zf.namelist() if n.lower().endswith('.shp')]
                    if not shps:
                        raise InputError('file', 'the zip holds no .shp file')
                    stem = shps[0][:-4].lower()
                    missing = [ext for ext in ('.shx', '.dbf')
                               if stem + ext not in {n.lower() for n in zf.namelist()}]
                    if missing:
                        raise InputError('file', f'the Shapefile {shps[0]} comes without {", ".join(missing)}')
                    unpacked = sum(i.file_size for i in zf.infolist())
                    if unpacked > MAX_UNZIPPED:
                        raise InputError('file', f'the zip unpacks to {unpacked} bytes, more than '
                                                 f'{MAX_UNZIPPED} (GEOMAYOTTE_MAX_UNZIPPED)')
                    if any(Path(n).is_absolute() or '..' in Path(n).parts for n in zf.namelist()):
                        raise InputError('file', 'the zip holds paths outside its folder')
                    zf.extractall(tmp)
                    target = str(Path(tmp) / shps[0])
            except zipfile.BadZipFile:
                raise InputError('file', 'not a zip archive') from None
        try:
            layers = fiona.listlayers(target, enabled_drivers=_DRIVERS)
            if layer is not None and layer not in layers:
                raise InputError('layer', f'no layer {layer!r} (layers: {layers})')
            with fiona.open(target, layer=layer or layers[0], enabled_drivers=_DRIVERS) as src:
                file_crs = src.crs.to_wkt() if src.crs else None
                features = [{'type': 'Feature', 'id': f.id,
                             'properties': dict(f['properties']),
                             'geometry': _plain(f.geometry.__geo_interface__) if f.geometry else None}
                            for f in src]
        except InputError:
            raise
        except Exception as err:  # fiona/GDAL errors
            # GDAL names the server's temporary file: the partner needs only its own file's name
            why = str(err).splitlines()[0].replace(tmp + '/', '').replace(tmp, '')
            raise InputError('file', f'cannot be read ({why[:200]})') from None
    crs_name = declared_crs
    crs = None
    if file_crs:
        crs = pyproj.CRS.from_wkt(file_crs)
        epsg = crs.to_epsg()
        crs_name = f'EPSG:{epsg}' if epsg else crs.name
    elif declared_crs:
        crs = _crs_of_name(declared_crs)
        if crs is None:
            raise InputError('crs', f'unknown CRS {declared_crs!r}')
    sub = from_features(features, crs, crs_name, id_field, f'file ({media})')
    if crs is None:
        sub.issues.insert(0, ('F002', None, {}, None))
    return sub


def _plain(obj):
    """fiona geometry mappings hold tuples: lists, as GeoJSON has."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj
