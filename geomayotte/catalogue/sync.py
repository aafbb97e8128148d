"""Local records built from the human metadata and from the data itself.

What the data says is computed, never written by hand: the spatial extent by PostGIS
(every geometry transformed to CRS84, then ``ST_Extent``), the period from the collection's
time column, the feature count, the CRSs served; for the coverage, the raster's bounds.

When it runs:
- ``sync()``: after every load (``geomayotte-load``), at server start and on
  ``geomayotte-catalogue sync``; it also installs the stale-marking triggers;
- ``refresh_stale()``: before the records provider answers, for the records whose data
  changed since (marked by the triggers; one indexed query when nothing did).
"""
from __future__ import annotations

import functools
import json
import logging
import os
from dataclasses import dataclass, field

import psycopg2
from psycopg2 import sql

from geomayotte import catalog, database, settings
from geomayotte.catalogue import metadata as metamod, store
from geomayotte.catalogue.metadata import Catalogue, Resource
from geomayotte.errors import GeoMayotteError

LOGGER = logging.getLogger(__name__)
CRS84 = 'http://www.opengis.net/def/crs/OGC/1.3/CRS84'
FEATURE_FORMATS = [{'name': 'GeoJSON', 'mediaType': 'application/geo+json'},
                   {'name': 'CSV', 'mediaType': 'text/csv'},
                   {'name': 'JSON-LD', 'mediaType': 'application/ld+json'},
                   {'name': 'HTML', 'mediaType': 'text/html'}]
COVERAGE_FORMATS = [{'name': 'GeoTIFF', 'mediaType': 'image/tiff; application=geotiff'},
                    {'name': 'CoverageJSON', 'mediaType': 'application/prs.coverage+json'}]
OPENAPI = {'rel': 'service-desc', 'type': 'application/vnd.oai.openapi+json;version=3.0',
           'title': 'Document OpenAPI de la plateforme', 'href': '/openapi?f=json'}


@dataclass
class Report:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def note(self, outcome: str, rid: str) -> None:
        getattr(self, outcome).append(rid)

    def summary(self) -> str:
        return (f'{len(self.added)} added, {len(self.updated)} updated, '
                f'{len(self.removed)} removed, {len(self.unchanged)} unchanged')


@functools.cache
def catalogue() -> Catalogue:
    """The human metadata, read once per process (a config change needs a restart)."""
    return metamod.load()


# -- machine metadata ---------------------------------------------------------------------
def table_facts(cur, url: str, qualified: str, time_field: str | None) -> dict:
    """Count, CRS84 extent (GeoJSON) and period of a data table, computed by PostGIS."""
    schema, _, name = qualified.rpartition('.')
    t = catalog.describe(url, schema or 'public', name)   # identifiers checked here
    parts = [sql.SQL('count(*)')]
    if t.geometry:
        parts.append(sql.SQL('ST_AsGeoJSON(ST_SetSRID(ST_Extent(ST_Transform({}, 4326))::geometry, 4326), 9)')
                     .format(sql.Identifier(t.geometry)))
    else:
        parts.append(sql.SQL('NULL'))
    if time_field:
        if time_field not in t.columns:
            raise metamod.MetadataError(f'{qualified}: time_field {time_field!r} is not a column')
        col = sql.Identifier(time_field)
        if t.columns[time_field].pg_type.startswith('timestamp with time zone'):
            parts += [sql.SQL('min({})').format(col), sql.SQL('max({})').format(col)]
        else:   # dates and zoneless timestamps are UTC
            parts += [sql.SQL("min({})::timestamp AT TIME ZONE 'UTC'").format(col),
                      sql.SQL("max({})::timestamp AT TIME ZONE 'UTC'").format(col)]
    else:
        parts += [sql.SQL('NULL::timestamptz'), sql.SQL('NULL::timestamptz')]
    cur.execute(sql.SQL('SELECT {} FROM {}').format(sql.SQL(', ').join(parts),
                                                     sql.Identifier(t.schema, t.name)))
    count, extent, start, end = cur.fetchone()
    return {'feature_count': count, 'geometry': extent, 'time_start': start, 'time_end': end}


def raster_facts(path: str) -> dict:
    import rasterio
    from rasterio.warp import transform_bounds
    with rasterio.open(path) as src:
        w, s, e, n = transform_bounds(src.crs, 'OGC:CRS84', *src.bounds)
    polygon = {'type': 'Polygon', 'coordinates': [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
    return {'feature_count': None, 'geometry': json.dumps(polygon), 'time_start': None,
            'time_end': None, 'file_mtime': os.path.getmtime(path)}


def facts(cur, url: str, res: Resource) -> dict:
    if res.kind == 'features':
        return table_facts(cur, url, res.table, res.time_field)
    if res.kind == 'coverage':
        return raster_facts(res.raster)
    if res.kind == 'model':   # a feature type covers the territory of the model
        from geomayotte.validation import model as modelmod
        territory = table_facts(cur, url, modelmod.load().territory_table, None)
        return {'feature_count': None, 'geometry': territory['geometry'],
                'time_start': None, 'time_end': None}
    return {'feature_count': None, 'geometry': None, 'time_start': None, 'time_end': None}


# -- the record row -------------------------------------------------------------------------
def _contact(org: metamod.Organisation, roles: list[str]) -> dict:
    out = {'organization': org.name, 'roles': roles}
    if org.email:
        out['emails'] = [{'value': org.email}]
    if org.url:
        out['links'] = [{'rel': 'about', 'type': 'text/html', 'href': org.url}]
    return out


def _links(res: Resource, cat: Catalogue) -> list[dict]:
    lic = cat.licenses[res.human.license]
    links = []
    c = res.collection
    if res.kind in ('features', 'coverage'):
        links += [{'rel': 'related', 'type': 'application/json', 'title': f'Collection {c} (JSON)',
                   'href': f'/collections/{c}'},
                  {'rel': 'related', 'type': 'text/html', 'title': f'Collection {c} (page web)',
                   'href': f'/collections/{c}?f=html'}]
    if res.kind == 'features':
        links += [{'rel': 'items', 'type': 'application/geo+json', 'title': 'Objets (GeoJSON)',
                   'href': f'/collections/{c}/items?f=json'},
                  {'rel': 'items', 'type': 'text/html', 'title': 'Objets (page web)',
                   'href': f'/collections/{c}/items?f=html'},
                  {'rel': 'describedby', 'type': 'application/schema+json',
                   'title': 'Schéma des objets', 'href': f'/collections/{c}/schema'},
                  {'rel': 'enclosure', 'type': 'application/geo+json',
                   'title': 'Téléchargement GeoJSON (10 000 objets au plus par page)',
                   'href': f'/collections/{c}/items?f=json&limit=10000'},
                  {'rel': 'enclosure', 'type': 'text/csv',
                   'title': 'Téléchargement CSV (10 000 objets au plus par page)',
                   'href': f'/collections/{c}/items?f=csv&limit=10000'}]
    elif res.kind == 'coverage':
        links += [{'rel': 'enclosure', 'type': 'image/tiff; application=geotiff',
                   'title': 'Téléchargement GeoTIFF', 'href': f'/collections/{c}/coverage?f=GTiff'},
                  {'rel': 'enclosure', 'type': 'application/prs.coverage+json',
                   'title': 'Téléchargement CoverageJSON', 'href': f'/collections/{c}/coverage?f=json'}]
    elif res.kind == 'model':
        name = res.id.split('.', 1)[1]
        links += [{'rel': 'describedby', 'type': 'application/schema+json',
                   'title': 'Schéma JSON du type', 'href': f'/model/feature-types/{name}/schema'},
                  {'rel': 'enclosure', 'type': 'application/schema+json',
                   'title': 'Téléchargement du schéma JSON', 'href': f'/model/feature-types/{name}/schema'},
                  {'rel': 'related', 'type': 'application/json', 'title': 'Modèle de référence',
                   'href': '/model'},
                  {'rel': 'related', 'type': 'application/json', 'title': 'Processus de validation',
                   'href': '/processes/validate-reference-model'}]
        if c:
            links.append({'rel': 'related', 'type': 'application/geo+json',
                          'title': f'Objets publiés de ce type ({c})', 'href': f'/collections/{c}/items'})
    elif res.kind == 'process':
        links += [{'rel': 'related', 'type': 'application/json', 'title': 'Description du processus',
                   'href': f'/processes/{c}'},
                  {'rel': 'http://www.opengis.net/def/rel/ogc/1.0/execute', 'type': 'application/json',
                   'title': 'Exécution', 'href': f'/processes/{c}/execution'}]
    links.append(dict(OPENAPI))
    if lic.url:
        links.append({'rel': 'license', 'type': 'text/html', 'title': lic.title, 'href': lic.url})
    return links


def _formats(res: Resource) -> list[dict]:
    if res.kind == 'features':
        return FEATURE_FORMATS
    if res.kind == 'coverage':
        return COVERAGE_FORMATS
    if res.kind == 'model':
        return [{'name': 'JSON Schema', 'mediaType': 'application/schema+json'}]
    return [{'name': 'JSON', 'mediaType': 'application/json'}, {'name': 'HTML', 'mediaType': 'text/html'}]


def row_of(res: Resource, cat: Catalogue, fact: dict) -> dict:
    h = res.human
    lic = cat.licenses[h.license]
    themes = [{'scheme': metamod.INSPIRE_THEMES.rstrip('/'),
               'concepts': [{'id': code, 'title': cat.themes[code], 'url': metamod.INSPIRE_THEMES + code}
                            for code in h.themes]}] if h.themes else []
    contacts = [_contact(cat.organisations[h.producer], ['originator']),
                _contact(cat.publisher, ['publisher', 'pointOfContact'])]
    keywords = list(dict.fromkeys(res.keywords))
    return {
        'id': res.id, 'source': store.LOCAL, 'source_id': res.id, 'type': res.type,
        'title': res.title, 'description': res.description, 'keywords': keywords,
        'themes': themes, 'contacts': contacts, 'license': h.license,
        'rights': lic.title,
        'formats': _formats(res), 'links': _links(res, cat),
        'external_ids': [{'scheme': s, 'value': v} for s, v in h.external_ids],
        'language': cat.language, 'diffusion': h.diffusion, 'lineage': h.lineage,
        'update_frequency': h.frequency, 'data_table': res.table, 'crs': list(res.crs),
        'feature_count': fact['feature_count'], 'time_start': fact['time_start'],
        'time_end': fact['time_end'], '_mtime': fact.get('file_mtime')}


def _write(cur, url, res, cat, report: Report) -> None:
    fact = facts(cur, url, res)
    row = row_of(res, cat, fact)
    # a replaced raster file is an update even with the same bounds
    salt = str(row.pop('_mtime') or '')
    report.note(store.write(cur, row, fact['geometry'], salt=salt), res.id)


def sync(url: str | None = None, cat: Catalogue | None = None) -> Report:
    """Every local record rebuilt (unchanged ones left alone), vanished ones removed,
    triggers installed; one transaction."""
    url = url or settings.database_url()
    cat = cat or catalogue()
    report = Report()
    with database.connection(url) as conn, conn.cursor() as cur:
        store.ensure(cur)
        for res in cat.resources:
            _write(cur, url, res, cat, report)
        report.removed = store.remove_others(cur, store.LOCAL, [r.id for r in cat.resources])
        for res in cat.resources:
            if res.table:
                schema, _, name = res.table.rpartition('.')
                store.install_triggers(cur, schema or 'public', name)
    return report


def refresh_stale(url: str) -> list[str]:
    """Recompute the local records whose data changed (marked by the triggers)."""
    with database.connection(url, autocommit=True) as conn, conn.cursor() as cur:
        try:
            cur.execute('SELECT id FROM catalogue.record WHERE stale')
        except psycopg2.errors.UndefinedTable:
            sync(url)
            return []
        stale = [r[0] for r in cur.fetchall()]
    if not stale:
        return []
    cat = catalogue()
    done = []
    with database.connection(url) as conn, conn.cursor() as cur:
        # rows a concurrent refresh (or a load still running) holds are left to it
        cur.execute('SELECT id FROM catalogue.record WHERE stale AND id = ANY(%s) '
                    'FOR UPDATE SKIP LOCKED', (stale,))
        for (rid,) in cur.fetchall():
            res = cat.resource(rid)
            if res is None:
                continue
            _write(cur, url, res, cat, Report())
            done.append(rid)
    return done


def at_start(url: str | None = None) -> None:
    """Server start: metadata checked (a ``MetadataError`` stops the server), records synced.
    A database that is not there yet is not fatal: the first records request syncs."""
    cat = catalogue()
    try:
        LOGGER.info('catalogue: %s', sync(url, cat).summary())
    except (psycopg2.Error, GeoMayotteError) as err:
        if isinstance(err, metamod.MetadataError):
            raise
        LOGGER.error('catalogue not synchronised at start: %s', err)
