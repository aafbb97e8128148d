"""A row of ``catalogue.record`` as an OGC API Records record (a GeoJSON Feature).

Local records keep their links as paths in the database ("/collections/communes/items"):
the public URL (``GEOMAYOTTE_BASE_URL``) is put in front when served, so the same database
serves any host name.
"""
from __future__ import annotations

import datetime as dt
import json

CATALOGUE = 'catalogue'          # the records collection's id in pygeoapi-config.yml
RECORD_CORE = 'http://www.opengis.net/spec/ogcapi-records-1/1.0/req/record-core'

from geomayotte.access import http as access


def iso(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).isoformat().replace('+00:00', 'Z')
    return str(value)


def absolute(href: str, base: str) -> str:
    return base + href if href.startswith('/') else href


def to_record(row: dict, base: str) -> dict:
    """``row``: the columns named by ``search.SELECT_NAMES``."""
    start, end = iso(row['time_start']), iso(row['time_end'])
    links = [dict(lk, href=absolute(lk['href'], base)) for lk in row['links'] or []
             if access.link_visible(lk.get('href', ''))]   # no link to what the caller may not see
    props = {
        'type': row['type'], 'title': row['title'], 'description': row['description'],
        'keywords': list(row['keywords'] or []), 'themes': row['themes'] or [],
        'language': {'code': row['language']}, 'contacts': row['contacts'] or [],
        'license': row['license'], 'rights': row['rights'], 'formats': row['formats'] or [],
        'created': iso(row['created']), 'updated': iso(row['updated']),
        'externalIds': row['external_ids'] or [],
        'diffusion': row['diffusion'], 'lineage': row['lineage'],
        'updateFrequency': row['update_frequency'], 'featureCount': row['feature_count'],
        'crs': list(row['crs'] or []), 'source': row['source'],
    }
    return {
        'id': row['id'], 'type': 'Feature', 'conformsTo': [RECORD_CORE],
        'time': {'interval': [start or '..', end or '..']} if (start or end) else None,
        'geometry': json.loads(row['geometry']) if row['geometry'] else None,
        'properties': props,
        'links': links + [{'rel': 'canonical', 'type': 'application/geo+json', 'title': 'Cette fiche',
                           'href': f'{base}/collections/{CATALOGUE}/items/{row["id"]}'}],
    }
