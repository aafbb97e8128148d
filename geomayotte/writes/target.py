"""Collections open to writes, and the names of their properties in the reference model."""
from __future__ import annotations

import functools
from dataclasses import dataclass

from geomayotte import catalog, settings
from geomayotte.loader import spec as loader_spec
from geomayotte.validation import model as modelmod

# the reference model's accepted CRSs for submissions, as OGC URIs
CRS84 = 'http://www.opengis.net/def/crs/OGC/1.3/CRS84'
ACCEPTED = {CRS84: CRS84, 'http://www.opengis.net/def/crs/EPSG/0/4326': 'EPSG:4326',
            'http://www.opengis.net/def/crs/EPSG/0/4471': 'EPSG:4471'}


@dataclass(frozen=True)
class Target:
    collection: str
    table: catalog.Table
    feature_type: modelmod.FeatureType
    to_model: dict          # served property (column) -> model attribute
    key: str                # the key column

    @property
    def from_model(self) -> dict:
        return {v: k for k, v in self.to_model.items()}


@functools.lru_cache(maxsize=64)
def _spec_fields(table: str) -> dict:
    sources = loader_spec.load(settings.config_dir() / 'sources.yml')
    try:
        ts = sources.table(table)
    except Exception:
        return {}
    return {f.column: f.source for f in ts.fields}


def target(url: str, collection: str, table_name: str) -> Target | None:
    """The write target of a collection, or None when no feature type describes it."""
    m = modelmod.load()
    ft = next((t for t in m.feature_types.values() if t.platform_collection == collection), None)
    if ft is None:
        return None
    schema, _, name = table_name.rpartition('.')
    table = catalog.describe(url, schema or 'public', name)
    columns = _spec_fields(name)
    to_model = {col: columns.get(col, col) for col in table.columns
                if col not in ('geom_valid', 'geom_invalid_reason', 'modifie_le')}
    return Target(collection, table, ft, to_model, table.key)
