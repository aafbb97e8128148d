"""The rules engine: a Submission checked against a feature type of the model.

Geometry work is vectorised with shapely 2 (arrays, STRtree, prepared reference
geometries); metric checks run in EPSG:4471 (pyproj, always_xy). Each check
appends issues ``(code, feature index or None, params, location or None)``,
location being a point [x, y] in the submitted CRS.
"""
from __future__ import annotations

import functools
import math
import re
import unicodedata
from dataclasses import dataclass

import numpy as np
import pyproj
import shapely

from geomayotte.access import http as access
from geomayotte.validation import reference
from geomayotte.validation.model import FeatureType, Model
from geomayotte.validation.reader import Submission

STORAGE = pyproj.CRS.from_epsg(4471)
MAX_OVERLAP_PAIRS = 20000


@dataclass
class Context:
    sub: Submission
    model: Model
    ft: FeatureType
    url: str
    issues: list
    geoms: np.ndarray = None         # as submitted (None where unusable)
    metric_raw: np.ndarray = None    # EPSG:4471, as submitted (for vertex and part checks)
    metric: np.ndarray = None        # EPSG:4471, made valid (for territory and reference)
    usable: np.ndarray = None        # bool: has a non-empty geometry of an accepted type
    spatial: bool = True             # a CRS is known and accepted: spatial rules can run

    def add(self, code, index, params=None, location=None):
        self.issues.append((code, index, params or {}, location))


# -- helpers ---------------------------------------------------------------------------------
def _epsg(crs: pyproj.CRS | None) -> str | None:
    if crs is None:
        return None
    if crs.equals(pyproj.CRS('OGC:CRS84')):
        return 'OGC:CRS84'
    code = crs.to_epsg()
    return f'EPSG:{code}' if code else None


@functools.lru_cache(maxsize=64)
def _transformer(crs_from: pyproj.CRS, crs_to: pyproj.CRS):
    return pyproj.Transformer.from_crs(crs_from, crs_to, always_xy=True)


def _to(geoms: np.ndarray, crs_from: pyproj.CRS, crs_to: pyproj.CRS) -> np.ndarray:
    t = _transformer(crs_from, crs_to)
    ok = ~shapely.is_missing(geoms)
    out = np.empty(len(geoms), dtype=object)
    if ok.any():
        out[ok] = shapely.transform(geoms[ok], lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))
    return out


def _point(geom) -> list | None:
    if geom is None or shapely.is_empty(geom):
        return None
    try:
        p = shapely.point_on_surface(geom)
    except shapely.errors.GEOSException:
        p = shapely.centroid(geom)
    return [p.x, p.y]


# -- format ------------------------------------------------------------------------------------
def check_format(c: Context) -> None:
    accepted = set(c.model.accepted_crs)
    name = _epsg(c.sub.crs)
    if c.sub.crs is not None and name not in accepted and not (
            name == 'EPSG:4326' and 'OGC:CRS84' in accepted):
        c.add('F007', None, {'crs': name or c.sub.crs_name, 'accepted': ', '.join(c.model.accepted_crs)})
        c.spatial = False
    if c.sub.crs is None:
        c.spatial = False
    for i, kind in enumerate(c.sub.geometry_types):
        if kind is not None and kind not in c.ft.geometry:
            c.add('F003', i, {'found': kind, 'feature_type': c.ft.name,
                              'allowed': ', '.join(c.ft.geometry)}, _point(c.geoms[i]))
            c.usable[i] = False


# -- geometry ----------------------------------------------------------------------------------
def check_geometry(c: Context) -> None:
    t = c.ft.thresholds
    g = c.geoms
    present = ~shapely.is_missing(g) & c.usable
    empty = present & shapely.is_empty(g)
    for i in np.flatnonzero(empty):
        c.add('G006', int(i), {})
    c.usable &= ~empty
    idx = np.flatnonzero(c.usable)
    if not len(idx):
        return
    reasons = shapely.is_valid_reason(g[idx])
    for i, reason in zip(idx, reasons):
        if reason != 'Valid Geometry':
            c.add('G001', int(i), {'reason': reason}, _reason_location(reason) or _point(g[i]))
    _vertex_checks(c, idx)
    idx = idx[reasons == 'Valid Geometry']     # area and shape of an invalid geometry mean little
    if c.ft.dimension == 2 and c.metric_raw is not None and len(idx):
        parts, owner = shapely.get_parts(c.metric_raw[idx], return_index=True)
        owner = idx[owner]
        area = shapely.area(parts)
        small = area < float(t['min_area_m2'])
        for p, i in zip(np.flatnonzero(small), owner[small]):
            c.add('G007', int(i), {'area_m2': round(float(area[p]), 2), 'threshold': t['min_area_m2']},
                  _submitted_point(c, parts[p]))
        perim = shapely.length(parts)
        with np.errstate(divide='ignore', invalid='ignore'):
            thin = np.where(perim > 0, 4 * math.pi * area / perim ** 2, 1.0)
        sliver = (thin < float(t['sliver_thinness'])) & (area < float(t['sliver_max_area_m2'])) & ~small
        for p, i in zip(np.flatnonzero(sliver), owner[sliver]):
            c.add('G005', int(i), {'thinness': round(float(thin[p]), 4), 'area_m2': round(float(area[p]), 2)},
                  _submitted_point(c, parts[p]))
        # orientation: RFC 7946 wants exterior rings counter-clockwise; a GeoJSON rule only
        # (Shapefiles store exterior rings clockwise by convention)
        geojson = c.sub.source == 'inline' or 'geo+json' in c.sub.source or c.sub.source.endswith('json)')
        sub_parts, sub_owner = shapely.get_parts(g[idx], return_index=True)
        polys = shapely.get_type_id(sub_parts) == 3
        ext = shapely.get_exterior_ring(sub_parts[polys])
        cw = ~shapely.is_ccw(ext)
        flagged = set()
        for e, i in zip(np.flatnonzero(cw) if geojson else [], idx[sub_owner[polys]][cw]):
            if int(i) not in flagged:
                flagged.add(int(i))
                c.add('G003', int(i), {}, list(shapely.get_coordinates(ext[e])[0]))
    if c.ft.dimension == 1 and c.metric is not None and len(idx):
        length = shapely.length(c.metric[idx])
        for i, ln in zip(idx, length):
            if ln < float(t['min_length_m']):
                c.add('G008', int(i), {'length_m': round(float(ln), 2), 'threshold': t['min_length_m']},
                      _point(g[i]))


_REASON_XY = re.compile(r'\[([-+0-9.eE]+) ([-+0-9.eE]+)\]')


def _reason_location(reason: str):
    m = _REASON_XY.search(reason)
    return [float(m.group(1)), float(m.group(2))] if m else None


def _submitted_point(c: Context, metric_geom) -> list | None:
    p = _point(metric_geom)
    if p is None:
        return None
    x, y = _transformer(STORAGE, c.sub.crs).transform(p[0], p[1])
    return [x, y]


def _vertex_checks(c: Context, idx: np.ndarray) -> None:
    """Repeated vertices, spacing and spikes, on every ring/line at once (numpy)."""
    t = c.ft.thresholds
    if c.ft.dimension == 0 or c.metric_raw is None:
        return
    lines = shapely.get_rings(c.metric_raw[idx], return_index=True) if c.ft.dimension == 2 else \
        shapely.get_parts(c.metric_raw[idx], return_index=True)
    parts, owner = lines
    owner = idx[owner]
    coords, ring = shapely.get_coordinates(parts, return_index=True)
    sub_coords = shapely.get_coordinates(_to(parts, STORAGE, c.sub.crs)) if c.sub.crs else coords
    if len(coords) < 2:
        return
    same = ring[1:] == ring[:-1]
    seg = np.hypot(*(coords[1:] - coords[:-1]).T)
    repeated = same & (seg == 0)
    counts = np.bincount(ring[:-1][repeated], minlength=len(parts))
    reported = set()
    for r in np.flatnonzero(counts):
        i = int(owner[r])
        first = np.flatnonzero(repeated & (ring[:-1] == r))[0]
        if i not in reported:
            reported.add(i)
            c.add('G002', i, {'count': int(counts[r])}, list(sub_coords[first]))
    far = same & (seg > float(t['max_vertex_spacing_m']))
    spaced = set()
    for k in np.flatnonzero(far):
        i = int(owner[ring[k]])
        if i not in spaced:
            spaced.add(i)
            c.add('G009', i, {'spacing_m': round(float(seg[k]), 1), 'threshold': t['max_vertex_spacing_m']},
                  list(sub_coords[k]))
    # spikes: the angle at each vertex between its neighbours (repeated vertices skipped),
    # for every ring at once
    keep = np.ones(len(coords), dtype=bool)
    keep[1:][repeated] = False
    kc, kr, ksub = coords[keep], ring[keep], sub_coords[keep]
    starts = np.r_[0, np.flatnonzero(kr[1:] != kr[:-1]) + 1]
    ends = np.r_[starts[1:], len(kr)]
    closed = c.ft.dimension == 2
    lengths = ends - starts
    if closed:       # vertices s .. e-2 (the last repeats the first); previous of s is e-2
        first, last = starts, ends - 2
    else:            # interior vertices of a line
        first, last = starts + 1, ends - 2
    counts = np.maximum(last - first + 1, 0)
    counts[lengths < (4 if closed else 3)] = 0
    if counts.sum():
        owner_ring = np.repeat(np.arange(len(starts)), counts)
        offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        i = first[owner_ring] + offset
        prev = i - 1
        if closed:
            prev = np.where(i == starts[owner_ring], last[owner_ring], prev)
        nxt = i + 1
        va, vb = kc[prev] - kc[i], kc[nxt] - kc[i]
        with np.errstate(invalid='ignore', divide='ignore'):
            cos = (va * vb).sum(1) / (np.hypot(*va.T) * np.hypot(*vb.T))
        ang = np.arccos(np.clip(np.nan_to_num(cos, nan=-1.0), -1, 1))
        bad = np.flatnonzero(ang < math.radians(float(t['spike_angle_deg'])))
        spiked = set()
        for k in bad:
            f = int(owner[kr[i[k]]])
            if f not in spiked:
                spiked.add(f)
                c.add('G004', f, {'angle_deg': round(math.degrees(float(ang[k])), 3),
                                  'threshold': t['spike_angle_deg']}, list(ksub[i[k]]))


# -- territory --------------------------------------------------------------------------------
def check_territory(c: Context) -> None:
    com = reference.communes(c.url, c.model.territory_table)
    idx = np.flatnonzero(c.usable)
    if not len(idx):
        return
    aou = c.sub.crs.area_of_use
    lonlat = _to(c.geoms[idx], c.sub.crs, pyproj.CRS('OGC:CRS84'))
    bounds = shapely.bounds(lonlat)
    finite = np.isfinite(bounds).all(axis=1)
    outside_domain = ~finite
    if aou is not None:
        outside_domain |= finite & ((bounds[:, 0] < aou.west - 1e-9) | (bounds[:, 2] > aou.east + 1e-9) |
                                    (bounds[:, 1] < aou.south - 1e-9) | (bounds[:, 3] > aou.north + 1e-9))
    tol = c.model.territory_tolerance_m
    metric = c.metric[idx]
    ok = ~shapely.is_missing(metric)
    ok[ok] = np.isfinite(shapely.bounds(metric[ok])).all(axis=1)
    near = np.zeros(len(idx), dtype=bool)
    if ok.any():
        near[ok] = shapely.dwithin(metric[ok], com.territory, tol)
    bad = np.flatnonzero(~near | outside_domain)
    if not len(bad):
        return
    swapped_metric = _to(_swap(c.geoms[idx[bad]]), c.sub.crs, STORAGE)
    for k, sw in zip(bad, swapped_metric):
        i = int(idx[k])
        if sw is not None and np.isfinite(shapely.bounds(sw)).all() and shapely.intersects(sw, com.territory):
            c.add('T003', i, {}, _point(c.geoms[i]))
        elif outside_domain[k]:
            c.add('T001', i, {'crs': c.sub.crs_name}, _point(c.geoms[i]))
        else:
            dist = float(shapely.distance(metric[k], com.territory)) if ok[k] else float('nan')
            c.add('T002', i, {'distance_m': round(dist) if math.isfinite(dist) else 'unknown'},
                  _point(c.geoms[i]))
        c.usable[i] = False          # the other spatial checks would only repeat it


def _swap(geoms: np.ndarray) -> np.ndarray:
    ok = ~shapely.is_missing(geoms)
    out = np.empty(len(geoms), dtype=object)
    if ok.any():
        out[ok] = shapely.transform(geoms[ok], lambda xy: xy[:, ::-1])
    return out


# -- reference consistency ---------------------------------------------------------------------
def check_reference(c: Context) -> None:
    t = c.ft.thresholds
    com = reference.communes(c.url, c.model.territory_table)
    idx = np.flatnonzero(c.usable)
    if not len(idx):
        return
    attr = c.ft.commune_attribute
    if attr:
        reps = shapely.point_on_surface(c.metric[idx])
        tol = float(t['commune_tolerance_m'])
        for k, i in enumerate(idx):
            code = c.sub.properties[i].get(attr)
            j = com.index(str(code)) if code is not None else None
            if j is None:
                continue           # an unknown code is an attribute issue (A005)
            dist = float(shapely.distance(reps[k], com.geoms[j]))
            if dist > tol:
                inside = com.tree.query(reps[k], predicate='within')
                names = [f'{com.codes[n]} {com.names[n]}' for n in inside]
                c.add('R001', int(i), {
                    'code': code, 'name': com.names[j], 'distance_m': round(dist, 1),
                    'tolerance_m': tol, 'missed_by_m': round(dist - tol, 1),
                    'inside': f' ; il est dans {", ".join(names)}' if names else ' ; il est hors de toute commune',
                    'inside_en': f'; it lies in {", ".join(names)}' if names else '; it lies outside every municipality',
                    'actual_commune': [com.codes[n] for n in inside]}, _submitted_point(c, reps[k]))
    if c.ft.dimension == 2:
        _overlaps(c, idx)
    if c.ft.platform_collection and access.visible(c.ft.platform_collection):
        _duplicates(c, idx)   # never against a dataset the submitter may not read


def _overlaps(c: Context, idx: np.ndarray) -> None:
    tol = float(c.ft.thresholds['overlap_tolerance_m2'])
    geoms = c.metric[idx]
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate='intersects')
    pairs = a < b
    a, b = a[pairs], b[pairs]
    if not len(a):
        return
    if len(a) > MAX_OVERLAP_PAIRS:      # e.g. one polygon sent a thousand times: report the first
        a, b = a[:MAX_OVERLAP_PAIRS], b[:MAX_OVERLAP_PAIRS]
    inter = shapely.intersection(geoms[a], geoms[b])
    area = shapely.area(inter)
    for k in np.flatnonzero(area > tol):
        i, j = int(idx[a[k]]), int(idx[b[k]])
        for x, other in ((i, j), (j, i)):
            c.add('R002', x, {'other': c.sub.ids[other], 'area_m2': round(float(area[k]), 1),
                              'tolerance_m2': tol}, _submitted_point(c, inter[k]))


def _duplicates(c: Context, idx: np.ndarray) -> None:
    geoms = c.metric[idx]
    ext = shapely.total_bounds(geoms)
    if not np.isfinite(ext).all():
        return
    ids, published = reference.published(c.url, c.ft.platform_collection, tuple(float(v) for v in ext))
    if not len(ids):
        return
    tree = shapely.STRtree(published)
    a, b = tree.query(geoms, predicate='intersects')
    if c.ft.dimension == 0:
        d = shapely.distance(geoms[a], published[b])
        score = np.where(d < 1.0, 1.0, 0.0)
    else:
        # IoU = I / (A + B - I); pairs whose areas alone rule it out skip the overlay,
        # identical geometries skip it too
        area_a, area_b = shapely.area(geoms[a]), shapely.area(published[b])
        iou_t = float(c.ft.thresholds['duplicate_iou'])
        with np.errstate(divide='ignore', invalid='ignore'):
            possible = np.minimum(area_a, area_b) / np.maximum(area_a, area_b) >= iou_t
        score = np.zeros(len(a))
        same = possible & shapely.equals_exact(geoms[a], published[b], tolerance=1e-3)
        score[same] = 1.0
        rest = np.flatnonzero(possible & ~same)
        if len(rest):
            inter = shapely.area(shapely.intersection(geoms[a[rest]], published[b[rest]]))
            score[rest] = inter / (area_a[rest] + area_b[rest] - inter)
    best = {}
    for k in np.flatnonzero(score >= float(c.ft.thresholds['duplicate_iou'])):
        i = int(idx[a[k]])
        if str(ids[b[k]]) == str(c.sub.ids[i]):
            continue      # the same object under its own identifier: an update, not a duplicate
        if i not in best or score[k] > best[i][1]:
            best[i] = (ids[b[k]], float(score[k]))
    for i, (pid, s) in best.items():
        c.add('R003', i, {'platform_id': pid, 'collection': c.ft.platform_collection,
                          'iou': round(s, 3)}, _point(c.geoms[i]))


# -- attributes -------------------------------------------------------------------------------
_TYPE_OK = {
    'string': lambda v: isinstance(v, str),
    'integer': lambda v: isinstance(v, int) and not isinstance(v, bool),
    'number': lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and _finite_number(v),
    'boolean': lambda v: isinstance(v, bool),
}
_DATE = re.compile(r'^\d{4}-\d{2}-\d{2}$|^\d{2}/\d{2}/\d{4}$')
_DATETIME = re.compile(r'^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?$')


def _finite_number(v) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def _real_date(text: str) -> bool:
    import datetime as dt
    try:
        if '/' in text:
            dt.datetime.strptime(text, '%d/%m/%Y')
        else:
            dt.datetime.fromisoformat(text.replace('Z', '+00:00').replace('z', '+00:00'))
        return True
    except ValueError:
        return False


def _type_ok(kind: str, v, items: str | None = None) -> bool:
    if kind == 'array':    # a flat list: of `items` when the model says, else of any scalars
        return isinstance(v, (list, tuple)) and all(
            _TYPE_OK[items](x) if items else isinstance(x, (str, int, float, bool)) for x in v)
    if kind == 'date':
        return (isinstance(v, str) and bool(_DATE.match(v) or _DATETIME.match(v)) and _real_date(v)) or \
            hasattr(v, 'isoformat')
    if kind == 'datetime':
        return (isinstance(v, str) and bool(_DATETIME.match(v)) and _real_date(v)) or hasattr(v, 'isoformat')
    return _TYPE_OK[kind](v)


def _folded(name: str) -> str:
    """A commune name as compared: case, accents, apostrophes, hyphens and spaces aside
    (``M'Tsangamouji`` = ``Mtsangamouji``, ``Kani-Kéli`` = ``KANI KELI``)."""
    decomposed = unicodedata.normalize('NFKD', name.casefold())
    return ''.join(ch for ch in decomposed if ch.isalnum() and not unicodedata.combining(ch))


def check_attributes(c: Context) -> None:
    com = reference.communes(c.url, c.model.territory_table) if any(
        a.references or a.name_of for a in c.ft.attributes.values()) else None
    seen: dict = {}
    reported_extra = set()
    for i, props in enumerate(c.sub.properties):
        loc = _point(c.geoms[i]) if c.geoms[i] is not None else None
        for name in props:
            if name not in c.ft.attributes and name not in reported_extra:
                reported_extra.add(name)
                c.add('A007', i, {'attribute': name}, None)
        for a in c.ft.attributes.values():
            v = props.get(a.name)
            if v is None or (isinstance(v, str) and v.strip() == ''):
                if a.mandatory:
                    c.add('A001', i, {'attribute': a.name}, loc)
                continue
            if not _type_ok(a.type, v, a.items):
                c.add('A002', i, {'attribute': a.name, 'value': repr(v)[:60],
                                  'type': f'{a.type} of {a.items}' if a.items else a.type}, loc)
                continue
            if a.values and v not in a.values:
                c.add('A003', i, {'attribute': a.name, 'value': repr(v)[:60],
                                  'allowed': ', '.join(map(str, a.values))}, loc)
            if a.pattern and isinstance(v, str) and not re.fullmatch(a.pattern, v):
                c.add('A004', i, {'attribute': a.name, 'value': repr(v)[:60], 'pattern': a.pattern}, loc)
            if a.references and com is not None and com.index(str(v)) is None:
                ref = c.model.references[a.references]['title']
                c.add('A005', i, {'attribute': a.name, 'value': repr(v)[:60], 'reference': ref['fr'],
                                  'reference_en': ref['en']}, loc)
            if a.name_of and com is not None and isinstance(v, str):
                code = props.get(a.name_of)
                k = com.index(str(code)) if code is not None else None
                if k is not None and _folded(v) != _folded(com.names[k]):
                    c.add('A008', i, {'attribute': a.name, 'value': repr(v)[:60], 'code': code,
                                      'code_attribute': a.name_of, 'expected': com.names[k]}, loc)
            if a.unique:
                seen.setdefault((a.name, str(v)), []).append(i)
    for (name, value), where in seen.items():
        if len(where) > 1:
            for i in where:
                c.add('A006', i, {'attribute': name, 'value': value,
                                  'others': ', '.join(str(c.sub.ids[j]) for j in where if j != i)},
                      _point(c.geoms[i]) if c.geoms[i] is not None else None)


def run(sub: Submission, model: Model, ft: FeatureType, url: str, groups: set[str]) -> list:
    from geomayotte.jobs import progress
    c = Context(sub, model, ft, url, list(sub.issues))
    progress.report(20, f'format: {len(sub.ids)} features read')
    c.geoms = sub.geometries
    c.usable = ~shapely.is_missing(c.geoms)
    check_format(c)            # always: it decides whether spatial checks can run
    if c.spatial:
        metric = _to(c.geoms, sub.crs, STORAGE)
        ok = ~shapely.is_missing(metric)
        finite = np.zeros(len(metric), dtype=bool)
        if ok.any():
            finite[ok] = np.isfinite(shapely.bounds(metric[ok])).all(axis=1)
        metric[ok & ~finite] = None
        c.metric_raw = metric
        made = np.empty(len(metric), dtype=object)
        good = ~shapely.is_missing(metric)
        if good.any():
            made[good] = shapely.make_valid(metric[good])
        c.metric = made
    if 'geometry' in groups:
        progress.report(30, 'geometry rules')
        check_geometry(c)
    if c.spatial and 'territory' in groups:
        progress.report(50, 'territory rules')
        check_territory(c)
    if c.spatial:
        c.usable &= ~shapely.is_missing(c.metric)
        if 'reference' in groups:
            progress.report(60, 'reference consistency rules')
            check_reference(c)
    if 'attributes' in groups:
        progress.report(80, 'attribute rules')
        check_attributes(c)
    if 'format' not in groups:
        c.issues = [x for x in c.issues if not x[0].startswith('F')]
    return c.issues
