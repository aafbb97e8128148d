"""The loader's description of each source table (``config/sources.yml``), checked."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from geomayotte import settings

TYPES = ('text', 'integer', 'bigint', 'double', 'date', 'timestamptz', 'epoch', 'text[]')
GEOMETRY_TYPES = ('Point', 'LineString', 'MultiPolygon', 'MultiLineString', 'MultiPoint')
_IDENT = re.compile(r'^[a-z_][a-z0-9_]*$')


class SpecError(ValueError):
    pass


@dataclass(frozen=True)
class Field:
    source: str
    column: str
    type: str
    pattern: str | None = None


@dataclass(frozen=True)
class TableSpec:
    name: str
    file: str
    key: str
    fields: tuple[Field, ...]
    geometry: str | None = None
    srid: int | None = None
    open_options: dict = field(default_factory=dict)
    references: dict = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        return [f.column for f in self.fields]


@dataclass(frozen=True)
class Sources:
    schema: str
    storage_srid: int
    tables: tuple[TableSpec, ...]

    def table(self, name: str) -> TableSpec:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(name)


def _ident(value: str, what: str) -> str:
    if not isinstance(value, str) or not _IDENT.match(value):
        raise SpecError(f'{what} {value!r} must be a lower-case SQL identifier')
    return value


def load(path: Path | None = None) -> Sources:
    path = path or settings.config_dir() / 'sources.yml'
    with open(path, encoding='utf-8') as fh:
        raw = yaml.safe_load(fh)
    schema = _ident(raw['schema'], 'schema')
    tables = []
    for name, t in raw['tables'].items():
        _ident(name, 'table')
        fields = []
        for src, f in t['fields'].items():
            if f['type'] not in TYPES:
                raise SpecError(f'{name}.{src}: unknown type {f["type"]!r} (one of {TYPES})')
            fields.append(Field(src, _ident(f['column'], f'{name} column'), f['type'], f.get('pattern')))
        cols = [f.column for f in fields]
        if len(set(cols)) != len(cols):
            raise SpecError(f'{name}: two fields land in the same column')
        if t['key'] not in cols:
            raise SpecError(f'{name}: key {t["key"]!r} is not one of its columns')
        geometry = t.get('geometry')
        if geometry is not None and geometry not in GEOMETRY_TYPES:
            raise SpecError(f'{name}: geometry {geometry!r} not one of {GEOMETRY_TYPES}')
        refs = t.get('references') or {}
        for col, target in refs.items():
            if col not in cols:
                raise SpecError(f'{name}: reference from unknown column {col!r}')
            _ident(target, 'referenced table')
        tables.append(TableSpec(name=name, file=t['file'], key=t['key'], fields=tuple(fields),
                                geometry=geometry, srid=t.get('srid'),
                                open_options=t.get('open') or {}, references=refs))
    return Sources(schema=schema, storage_srid=int(raw['storage_srid']), tables=tuple(tables))
