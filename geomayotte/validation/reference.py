"""Reference geometries from PostGIS, read once per process and prepared.

The communes (INSEE code -> name, geometry in EPSG:4471) and the territory
(their union) are cached: a validation job never re-reads them. Objects already
published are read per job, for the submission's extent only.
"""
from __future__ import annotations

import functools
import threading
from dataclasses import dataclass

import numpy as np
import shapely
from psycopg2 import sql

from geomayotte import catalog, database

_lock = threading.Lock()


@dataclass(frozen=True)
class Communes:
    codes: tuple[str, ...]
    names: tuple[str, ...]
    geoms: np.ndarray                 # EPSG:4471, prepared
    tree: shapely.STRtree
    territory: shapely.Geometry       # union, prepared

    def index(self, code: str) -> int | None:
        try:
            return self.codes.index(code)
        except ValueError:
            return None


@functools.lru_cache(maxsize=4)
def communes(url: str, table: str = 'geodata.communes') -> Communes:
    schema, _, name = table.rpartition('.')
    desc = catalog.describe(url, schema, name)
    with database.connection(url, autocommit=True, purpose='reference') as conn, conn.cursor() as cur:
        cur.execute(sql.SQL('SELECT {key}, nom, ST_AsBinary(ST_Transform({g}, 4471)) FROM {t} '
                            'ORDER BY {key}').format(key=sql.Identifier(desc.key),
                                                     g=sql.Identifier(desc.geometry),
                                                     t=sql.Identifier(schema, name)))
        rows = cur.fetchall()
    geoms = shapely.from_wkb([bytes(r[2]) for r in rows])
    geoms = shapely.make_valid(geoms)
    shapely.prepare(geoms)
    territory = shapely.union_all(geoms)
    shapely.prepare(territory)
    return Communes(tuple(r[0] for r in rows), tuple(r[1] for r in rows), geoms,
                    shapely.STRtree(geoms), territory)


def published(url: str, collection: str, envelope: tuple[float, float, float, float]):
    """(ids, geometries in EPSG:4471) of a served table's features in the envelope."""
    desc = catalog.describe(url, 'geodata', collection)
    with database.connection(url, autocommit=True, purpose='reference') as conn, conn.cursor() as cur:
        cur.execute(sql.SQL(
            'SELECT {key}, ST_AsBinary(ST_Transform(ST_MakeValid({g}), 4471)) FROM {t} '
            'WHERE {g} && ST_Transform(ST_MakeEnvelope(%s, %s, %s, %s, 4471), %s)'
        ).format(key=sql.Identifier(desc.key), g=sql.Identifier(desc.geometry),
                 t=sql.Identifier('geodata', collection)), [*envelope, desc.srid])
        rows = cur.fetchall()
    if not rows:
        return [], np.empty(0, dtype=object)
    return [r[0] for r in rows], shapely.from_wkb([bytes(r[1]) for r in rows])
