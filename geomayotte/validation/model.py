"""The shared reference model (``config/model/reference-model.yml``), loaded and checked."""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from geomayotte import settings

ATTRIBUTE_TYPES = ('string', 'integer', 'number', 'boolean', 'date', 'datetime', 'array')
ARRAY_ITEM_TYPES = ('string', 'integer', 'number', 'boolean')
GEOMETRY_TYPES = ('Point', 'MultiPoint', 'LineString', 'MultiLineString', 'Polygon', 'MultiPolygon')
RULE_GROUPS = ('format', 'geometry', 'territory', 'reference', 'attributes')


class ModelError(ValueError):
    """The model file itself is wrong."""


@dataclass(frozen=True)
class Attribute:
    name: str
    type: str
    mandatory: bool = False
    pattern: str | None = None
    values: tuple | None = None        # code list
    code_list: str | None = None
    unique: bool = False
    references: str | None = None
    name_of: str | None = None         # the attribute whose referenced commune this names
    items: str | None = None           # arrays: the type of every element (a flat list)


@dataclass(frozen=True)
class FeatureType:
    name: str
    title: dict
    geometry: tuple[str, ...]
    identifier: str
    attributes: dict[str, Attribute]
    thresholds: dict
    commune_attribute: str | None = None
    platform_collection: str | None = None

    @property
    def dimension(self) -> int:
        g = self.geometry[0]
        return 0 if 'Point' in g else 1 if 'LineString' in g else 2


@dataclass(frozen=True)
class Model:
    name: str
    version: str
    title: dict
    storage_crs: str
    accepted_crs: tuple[str, ...]
    territory_table: str
    territory_tolerance_m: float
    references: dict
    code_lists: dict
    feature_types: dict[str, FeatureType] = field(default_factory=dict)
    raster_types: dict[str, dict] = field(default_factory=dict)


def _path() -> Path:
    return settings.config_dir() / 'model' / 'reference-model.yml'


@functools.lru_cache(maxsize=4)
def load(path: Path | None = None) -> Model:
    path = path or _path()
    with open(path, encoding='utf-8') as fh:
        raw = yaml.safe_load(fh)
    code_lists = {k: dict(v, values=tuple(v['values'])) for k, v in raw.get('code_lists', {}).items()}
    references = raw.get('references', {})
    defaults = raw.get('thresholds', {})
    types = {}
    for name, ft in raw['feature_types'].items():
        attrs = {}
        for aname, a in ft['attributes'].items():
            if a['type'] not in ATTRIBUTE_TYPES:
                raise ModelError(f'{name}.{aname}: type {a["type"]!r} not in {ATTRIBUTE_TYPES}')
            values = a.get('values')
            if a.get('code_list'):
                if a['code_list'] not in code_lists:
                    raise ModelError(f'{name}.{aname}: unknown code list {a["code_list"]!r}')
                values = code_lists[a['code_list']]['values']
            if a.get('references') and a['references'] not in references:
                raise ModelError(f'{name}.{aname}: unknown reference {a["references"]!r}')
            if a.get('pattern'):
                re.compile(a['pattern'])
            if a.get('name_of') and not ft['attributes'].get(a['name_of'], {}).get('references'):
                raise ModelError(f'{name}.{aname}: name_of {a["name_of"]!r} is not an attribute '
                                 'that references the communes')
            items = a.get('items')
            if items is not None and (a['type'] != 'array' or items not in ARRAY_ITEM_TYPES):
                raise ModelError(f'{name}.{aname}: items {items!r} is for arrays, one of {ARRAY_ITEM_TYPES}')
            attrs[aname] = Attribute(aname, a['type'], bool(a.get('mandatory')), a.get('pattern'),
                                     tuple(values) if values else None, a.get('code_list'),
                                     bool(a.get('unique')), a.get('references'), a.get('name_of'),
                                     items)
        geoms = tuple(ft['geometry'])
        if not set(geoms) <= set(GEOMETRY_TYPES):
            raise ModelError(f'{name}: geometry {geoms} not among {GEOMETRY_TYPES}')
        if ft['identifier'] not in attrs:
            raise ModelError(f'{name}: identifier {ft["identifier"]!r} is not an attribute')
        commune = ft.get('commune_attribute')
        if commune and commune not in attrs:
            raise ModelError(f'{name}: commune_attribute {commune!r} is not an attribute')
        types[name] = FeatureType(name, ft['title'], geoms, ft['identifier'], attrs,
                                  {**defaults, **ft.get('thresholds', {})}, commune,
                                  ft.get('platform_collection'))
    rasters = {name: dict(r, name=name) for name, r in (raw.get('raster_types') or {}).items()}
    clash = set(rasters) & set(types)
    if clash:
        raise ModelError(f'names used for both a feature type and a raster type: {sorted(clash)}')
    return Model(raw['model'], str(raw['version']), raw['title'], raw['crs']['storage'],
                 tuple(raw['crs']['accepted']), raw['territory']['reference_table'],
                 float(raw['territory']['tolerance_m']), references, code_lists, types, rasters)


_JSON_TYPES = {'string': {'type': 'string'}, 'integer': {'type': 'integer'},
               'number': {'type': 'number'}, 'boolean': {'type': 'boolean'},
               'date': {'type': 'string', 'format': 'date'},
               'datetime': {'type': 'string', 'format': 'date-time'}, 'array': {'type': 'array'}}


def json_schema(model: Model, ft: FeatureType) -> dict:
    """The feature type as a JSON Schema of a GeoJSON Feature, for partners to check."""
    props, required = {}, []
    for a in ft.attributes.values():
        p = dict(_JSON_TYPES[a.type])
        if a.items:
            p['items'] = dict(_JSON_TYPES[a.items])
        if a.pattern:
            p['pattern'] = a.pattern
        if a.values:
            p['enum'] = list(a.values)
        if a.references:
            p['description'] = model.references[a.references]['title']['fr']
            p['x-references'] = a.references
        if a.name_of:
            p['description'] = f'nom de la commune dont {a.name_of} est le code INSEE'
            p['x-name-of'] = a.name_of
        if a.unique:
            p['x-unique'] = True
        if a.mandatory:
            required.append(a.name)
        props[a.name] = p
    return {
        '$schema': 'https://json-schema.org/draft/2020-12/schema',
        '$id': f'urn:{model.name}:{model.version}:{ft.name}',
        'title': ft.title['fr'], 'description': ft.title.get('en', ''),
        'type': 'object', 'required': ['type', 'geometry', 'properties'],
        'properties': {
            'type': {'const': 'Feature'},
            'geometry': {'type': 'object', 'properties': {'type': {'enum': list(ft.geometry)}}},
            'properties': {'type': 'object', 'required': required, 'properties': props},
        },
        'x-accepted-crs': list(model.accepted_crs),
        'x-thresholds': ft.thresholds,
        'x-model-version': model.version,
    }
