"""Deterministic synthetic data over Mayotte, shared by the benchmarks.

Building footprints: 5 to 8 vertices, 6 to 25 m across, counter-clockwise, each
inside a commune (its INSEE code set from where it lies), with a use, a height,
an update time and a name with accents.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pyproj
import shapely

USAGES = ['habitation', 'commerce', 'industrie', 'agricole', 'religieux', 'sportif',
          'administratif', 'enseignement', 'sante', 'autre']
NAMES = ['Maison Saïd', 'Épicerie Ousséni', 'Mosquée de Mtsapéré', 'École élémentaire',
         'Dispensaire de Kani-Kéli', "Case M'Tsangamouji", 'Hangar agricole', 'Boutique Fatima']


def buildings(n: int, communes, seed: int = 976):
    """GeoJSON features (CRS84) and their shapely geometries in EPSG:4471."""
    rng = np.random.default_rng(seed)
    xmin, ymin, xmax, ymax = shapely.total_bounds(communes.geoms)
    tree = communes.tree
    centres = []
    codes = []
    while len(centres) < n:
        xs = rng.uniform(xmin, xmax, n)
        ys = rng.uniform(ymin, ymax, n)
        pts = shapely.points(xs, ys)
        pt_idx, com_idx = tree.query(pts, predicate='within')
        order = np.argsort(pt_idx)
        pt_idx, com_idx = pt_idx[order], com_idx[order]
        first = np.r_[True, pt_idx[1:] != pt_idx[:-1]]
        for p, c in zip(pt_idx[first], com_idx[first]):
            if len(centres) < n:
                centres.append((xs[p], ys[p]))
                codes.append(communes.codes[c])
    centres = np.array(centres)
    nverts = rng.integers(5, 9, n)
    radius = rng.uniform(3, 12, n)
    geoms = []
    for (cx, cy), k, r in zip(centres, nverts, radius):
        ang = np.sort(rng.uniform(0, 2 * np.pi, k))
        rr = r * rng.uniform(0.7, 1.0, k)
        ring = np.column_stack([cx + rr * np.cos(ang), cy + rr * np.sin(ang)])
        geoms.append(shapely.Polygon(ring))
    geoms = np.array(geoms, dtype=object)
    to84 = pyproj.Transformer.from_crs(4471, 'OGC:CRS84', always_xy=True)
    g84 = shapely.transform(geoms, lambda xy: np.column_stack(to84.transform(xy[:, 0], xy[:, 1])))
    base = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    features = []
    for i, (g, code) in enumerate(zip(g84, codes)):
        coords = [[round(x, 8), round(y, 8)] for x, y in shapely.get_coordinates(g)]
        features.append({'type': 'Feature', 'geometry': {'type': 'Polygon', 'coordinates': [coords]},
                         'properties': {'id': f'BAT{i:07d}', 'usage': USAGES[i % len(USAGES)],
                                        'hauteur': round(float(rng.uniform(2.5, 15)), 1),
                                        'nom': NAMES[i % len(NAMES)], 'code_insee': code,
                                        'maj': (base + dt.timedelta(minutes=int(i))).isoformat()}})
    return features, geoms
