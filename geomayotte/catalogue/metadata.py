"""The catalogue's human metadata (``config/datasets.yml``), checked against what is served.

What is served comes from ``pygeoapi-config.yml`` (collections, processes) and from the
reference model (feature types). Every one of them must have its metadata: a missing or
malformed entry is a ``MetadataError`` naming the dataset and the field, raised at server
start (``geomayotte.catalogue.startup``) and by ``geomayotte-catalogue check``.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from geomayotte import settings
from geomayotte.errors import GeoMayotteError

DIFFUSION = ('open', 'partners', 'restricted')
# http://publications.europa.eu/resource/authority/frequency (the codes used here)
FREQUENCIES = ('CONT', 'DAILY', 'WEEKLY', 'MONTHLY', 'QUARTERLY', 'BIENNIAL', 'ANNUAL',
               'IRREG', 'NEVER', 'UNKNOWN', 'OTHER')
INSPIRE_THEMES = 'http://inspire.ec.europa.eu/theme/'
FREQUENCY_URI = 'http://publications.europa.eu/resource/authority/frequency/'
RECORD_PROVIDER = 'geomayotte.providers.records.PostGISRecordProvider'
_HUMAN_KEYS = {'themes', 'license', 'diffusion', 'producer', 'lineage', 'frequency',
               'external_ids'}


class MetadataError(GeoMayotteError):
    """The catalogue metadata is missing or wrong: the server must not start."""


@dataclass(frozen=True)
class Organisation:
    key: str
    name: str
    url: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class License:
    key: str
    title: str
    url: str | None


@dataclass(frozen=True)
class Human:
    """What a person says about a dataset."""
    themes: tuple[str, ...]
    license: str
    diffusion: str
    producer: str
    lineage: str
    frequency: str
    external_ids: tuple[tuple[str, str], ...] = ()     # (scheme, value)


@dataclass(frozen=True)
class Resource:
    """One local record to build: a served collection, a feature type or a process."""
    id: str
    type: str                         # dataset | featureType | service
    kind: str                         # features | coverage | model | process
    title: str
    description: str
    keywords: tuple[str, ...]
    human: Human
    table: str | None = None          # schema.table of a feature collection
    time_field: str | None = None
    crs: tuple[str, ...] = ()
    raster: str | None = None         # file of a coverage
    collection: str | None = None     # the served collection it describes (or is the type of)


@dataclass(frozen=True)
class Catalogue:
    title: str
    description: str
    language: str
    homepage: str
    spatial: str | None
    publisher: Organisation
    contact: Organisation
    organisations: dict[str, Organisation]
    licenses: dict[str, License]
    themes: dict[str, str]            # INSPIRE code -> French label
    resources: tuple[Resource, ...]

    def resource(self, rid: str) -> Resource | None:
        return next((r for r in self.resources if r.id == rid), None)


def datasets_path() -> Path:
    return settings.config_dir() / 'datasets.yml'


_VAR = re.compile(r'\$\{(\w+)\}')
_DEFAULTS = {'GEOMAYOTTE_DATA_DIR': lambda: str(settings.data_dir()),
             'DATABASE_URL': settings.database_url,
             'GEOMAYOTTE_BASE_URL': lambda: 'http://127.0.0.1:5000'}


def _expand(value: str) -> str:
    def sub(m):
        name = m.group(1)
        got = os.environ.get(name)
        if got:
            return got
        return _DEFAULTS[name]() if name in _DEFAULTS else m.group(0)
    return _VAR.sub(sub, value)


def _french(value) -> str:
    if isinstance(value, dict):
        return str(value.get('fr') or value.get('fr-FR') or next(iter(value.values()), ''))
    return '' if value is None else str(value)


def _french_list(value) -> tuple[str, ...]:
    if isinstance(value, dict):
        value = value.get('fr') or value.get('fr-FR') or next(iter(value.values()), [])
    return tuple(str(v) for v in value or ())


def _read_yaml(path: Path) -> dict:
    try:
        with open(path, encoding='utf-8') as fh:
            doc = yaml.safe_load(fh)
    except FileNotFoundError:
        raise MetadataError(f'{path}: not found') from None
    except yaml.YAMLError as err:
        raise MetadataError(f'{path}: not valid YAML ({err})') from None
    if not isinstance(doc, dict):
        raise MetadataError(f'{path}: a mapping is expected')
    return doc


def _human(where: str, entry, cat: dict) -> Human:
    if not isinstance(entry, dict):
        raise MetadataError(f'{where}: a mapping of metadata is expected')
    unknown = set(entry) - _HUMAN_KEYS
    if unknown:
        raise MetadataError(f'{where}: unknown fields {sorted(unknown)} '
                            f'(known: {", ".join(sorted(_HUMAN_KEYS))})')
    for name in ('license', 'diffusion', 'producer', 'lineage', 'frequency'):
        if not isinstance(entry.get(name), str) or not entry[name].strip():
            raise MetadataError(f'{where}: {name} is missing')
    themes = entry.get('themes')
    if not isinstance(themes, list):
        raise MetadataError(f'{where}: themes must be a list of INSPIRE theme codes')
    for code in themes:
        if code not in cat['themes']:
            raise MetadataError(f'{where}: unknown theme {code!r} (known: {", ".join(cat["themes"])})')
    if entry['license'] not in cat['licenses']:
        raise MetadataError(f'{where}: unknown license {entry["license"]!r} '
                            f'(known: {", ".join(cat["licenses"])})')
    if entry['diffusion'] not in DIFFUSION:
        raise MetadataError(f'{where}: diffusion must be one of {", ".join(DIFFUSION)}, '
                            f'not {entry["diffusion"]!r}')
    if entry['producer'] not in cat['organisations']:
        raise MetadataError(f'{where}: unknown producer {entry["producer"]!r} '
                            f'(known: {", ".join(cat["organisations"])})')
    if entry['frequency'] not in FREQUENCIES:
        raise MetadataError(f'{where}: frequency must be one of {", ".join(FREQUENCIES)}')
    ext = []
    for item in entry.get('external_ids') or []:
        if not (isinstance(item, dict) and isinstance(item.get('value'), str)):
            raise MetadataError(f'{where}: external_ids are {{scheme, value}} mappings')
        ext.append((str(item.get('scheme') or ''), item['value']))
    return Human(themes=tuple(themes), license=entry['license'], diffusion=entry['diffusion'],
                 producer=entry['producer'], lineage=' '.join(entry['lineage'].split()),
                 frequency=entry['frequency'], external_ids=tuple(ext))


def _organisations(doc: dict, path: Path) -> dict[str, Organisation]:
    orgs = {}
    for key, value in (doc.get('organisations') or {}).items():
        if not isinstance(value, dict) or not value.get('name'):
            raise MetadataError(f'{path}: organisation {key!r} needs a name')
        orgs[key] = Organisation(key, value['name'], value.get('url'), value.get('email'))
    return orgs


def _licenses(doc: dict, path: Path) -> dict[str, License]:
    out = {}
    for key, value in (doc.get('licenses') or {}).items():
        if not isinstance(value, dict) or not value.get('title'):
            raise MetadataError(f'{path}: license {key!r} needs a title')
        out[key] = License(key, value['title'], value.get('url'))
    return out


def _served(pygeoapi_config: Path) -> tuple[dict, dict]:
    """(collections, processes) of the pygeoapi configuration, the catalogue itself left out."""
    resources = _read_yaml(pygeoapi_config).get('resources') or {}
    collections, processes = {}, {}
    for rid, res in resources.items():
        if res.get('type') == 'process':
            processes[rid] = res
        elif res.get('type') == 'collection':
            providers = res.get('providers') or []
            if any(p.get('type') == 'record' for p in providers):
                continue
            collections[rid] = res
    return collections, processes


def _collection_resource(rid: str, res: dict, human: Human) -> Resource:
    providers = res.get('providers') or []
    feature = next((p for p in providers if p.get('type') == 'feature'), None)
    coverage = next((p for p in providers if p.get('type') == 'coverage'), None)
    common = dict(id=rid, type='dataset', title=_french(res.get('title')) or rid,
                  description=' '.join(_french(res.get('description')).split()),
                  keywords=_french_list(res.get('keywords')), human=human, collection=rid)
    if feature is not None:
        crs = tuple(feature.get('crs') or ()) if feature.get('storage_crs') else ()
        return Resource(kind='features', table=str(feature.get('table')),
                        time_field=feature.get('time_field'), crs=crs, **common)
    if coverage is not None:
        return Resource(kind='coverage', raster=_expand(str(coverage.get('data'))),
                        crs=('http://www.opengis.net/def/crs/OGC/1.3/CRS84',), **common)
    raise MetadataError(f'collection {rid!r}: neither a feature nor a coverage provider')


def _model_resources(cat: dict, human_doc, path: Path) -> list[Resource]:
    from geomayotte.validation import model as modelmod
    m = modelmod.load()
    if not isinstance(human_doc, dict):
        raise MetadataError(f'{path}: feature_types: a mapping is expected '
                            f'(the model has {", ".join(m.feature_types)})')
    themes = human_doc.get('themes') or {}
    base = {k: v for k, v in human_doc.items() if k != 'themes'}
    out = []
    model_title = _french(m.title)
    for name, ft in m.feature_types.items():
        if name not in themes:
            raise MetadataError(f'{path}: feature type {name!r} of the reference model has no '
                                f'entry under feature_types.themes')
        human = _human(f'{path}: feature_types ({name})', dict(base, themes=themes[name]), cat)
        title = _french(ft.title)
        attrs = ', '.join(ft.attributes)
        desc = (f"Type d'objet « {title} » du {model_title[0].lower() + model_title[1:]} "
                f"(version {m.version}) : géométrie {' ou '.join(ft.geometry)}, identifiant "
                f"{ft.identifier}, attributs {attrs}. Les données des partenaires sont validées "
                f"par rapport à ce type (processus validate-reference-model).")
        out.append(Resource(
            id=f'model.{name}', type='featureType', kind='model', title=f"{title} (modèle de référence)",
            description=desc, keywords=('modèle de référence', "type d'objet", name, title),
            human=human, collection=ft.platform_collection))
    unknown = set(themes) - set(m.feature_types)
    if unknown:
        raise MetadataError(f'{path}: feature_types.themes names types the model does not have: '
                            f'{sorted(unknown)}')
    return out


def _process_resource(rid: str, res: dict, human: Human) -> Resource:
    from pygeoapi.plugin import load_plugin
    meta = load_plugin('process', res['processor']).metadata
    return Resource(id=f'process.{rid}', type='service', kind='process',
                    title=_french(meta.get('title')) or rid,
                    description=' '.join(_french(meta.get('description')).split()),
                    keywords=_french_list(meta.get('keywords')), human=human, collection=rid)


def load(path: Path | None = None, pygeoapi_config: Path | None = None) -> Catalogue:
    """The whole catalogue description; ``MetadataError`` when anything served lacks metadata."""
    path = path or datasets_path()
    doc = _read_yaml(path)
    orgs = _organisations(doc, path)
    cat = {'themes': dict(doc.get('themes') or {}), 'licenses': _licenses(doc, path),
           'organisations': orgs}
    head = doc.get('catalogue') or {}
    for name in ('title', 'description', 'publisher', 'contact', 'homepage'):
        if not head.get(name):
            raise MetadataError(f'{path}: catalogue.{name} is missing')
    for name in ('publisher', 'contact'):
        if head[name] not in orgs:
            raise MetadataError(f'{path}: catalogue.{name}: unknown organisation {head[name]!r}')
    collections, processes = _served(pygeoapi_config or settings.pygeoapi_config())
    entries = doc.get('datasets') or {}
    missing = [rid for rid in collections if rid not in entries]
    if missing:
        raise MetadataError(f'{path}: served collections without catalogue metadata: '
                            f'{", ".join(missing)} (add them under datasets:)')
    extra = [rid for rid in entries if rid not in collections]
    if extra:
        raise MetadataError(f'{path}: datasets {", ".join(extra)} are not served collections '
                            'of pygeoapi-config.yml')
    resources = [_collection_resource(rid, res, _human(f'{path}: datasets.{rid}', entries[rid], cat))
                 for rid, res in collections.items()]
    resources += _model_resources(cat, doc.get('feature_types'), path)
    proc_entries = doc.get('processes') or {}
    for rid, res in processes.items():
        if rid not in proc_entries:
            raise MetadataError(f'{path}: process {rid!r} has no catalogue metadata '
                                '(add it under processes:)')
        resources.append(_process_resource(rid, res, _human(f'{path}: processes.{rid}',
                                                            proc_entries[rid], cat)))
    return Catalogue(
        title=' '.join(str(head['title']).split()), description=' '.join(str(head['description']).split()),
        language=str(head.get('language') or 'fr'), homepage=head['homepage'],
        spatial=head.get('spatial'), publisher=orgs[head['publisher']],
        contact=orgs[head['contact']], organisations=orgs, licenses=cat['licenses'],
        themes=cat['themes'], resources=tuple(resources))
