"""Harvest a partner's catalogue into ours, through OWSLib: OGC API Records or CSW 2.0.2.

Each harvested record lands in ``catalogue.record`` with ``source`` = the partner's name,
``source_id`` = its identifier there, id ``<source>:<identifier>``, and an external id
(scheme: the partner's catalogue URL). A run is one transaction and idempotent: a record
whose content did not change is left alone (its partner's created/updated dates are kept),
changed ones are updated, and records of that source the partner no longer lists are
removed. A record that cannot be read (no identifier, a broken geometry or date) is skipped
with its reason, the rest still lands.

Loops: harvesting a catalogue that itself harvested us would bring our own copies back:
records whose id starts with ``<source>:`` are skipped, and ``query`` (extra query
parameters such as ``source=local``) narrows what the partner lists.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Iterator

import psycopg2

from geomayotte import bodies, database, settings
from geomayotte.catalogue import store
from geomayotte.errors import GeoMayotteError

SOURCE = re.compile(r'^[a-z0-9][a-z0-9_-]{0,39}$')
_SAFE_ID = re.compile(r'[^A-Za-z0-9._~-]')
MAX_RECORDS = 100_000


class HarvestError(GeoMayotteError):
    pass


@dataclass
class HarvestReport:
    source: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)    # (identifier, reason)

    def summary(self) -> str:
        return (f'{self.source}: {len(self.added)} added, {len(self.updated)} updated, '
                f'{len(self.removed)} removed, {len(self.unchanged)} unchanged, '
                f'{len(self.skipped)} skipped')


def local_id(source: str, remote: str) -> str:
    safe = _SAFE_ID.sub('_', remote)
    if safe != remote:   # keep distinct remote ids distinct
        safe += '-' + hashlib.sha256(remote.encode()).hexdigest()[:8]
    return f'{source}:{safe}'


def _timestamp(value, what: str) -> str | None:
    if value in (None, '', '..'):
        return None
    try:
        ts = dt.datetime.fromisoformat(str(value).replace('Z', '+00:00').replace('z', '+00:00'))
    except ValueError:
        raise ValueError(f'{what} {value!r} is not an ISO 8601 date or time') from None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=dt.timezone.utc)
    try:    # in UTC, as PostgreSQL keeps it: 0001-01-01T00:00+14:00 is a year Python cannot read back
        ts = ts.astimezone(dt.timezone.utc)
    except OverflowError:
        ts = None
    if ts is None or ts.year < 1:
        raise ValueError(f'{what} {value!r} is out of the range of dates')
    return ts.isoformat()


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    out = []
    for v in value or []:
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, dict) and isinstance(v.get('value') or v.get('keyword'), str):
            out.append(v.get('value') or v.get('keyword'))
    return out


def _dicts(value) -> list[dict]:
    return [v for v in value or [] if isinstance(v, dict)] if isinstance(value, list) else []


# -- OGC API Records ------------------------------------------------------------------------
def records_pages(url: str, collection: str | None, query: dict, page_size: int,
                  timeout: int = 30) -> tuple[str, Iterator[dict]]:
    """(the partner's items URL, its records), following ``next`` links to the end."""
    from owslib.ogcapi.records import Records
    from owslib.util import http_get
    try:
        client = Records(url, timeout=timeout)
        collections = client.records()
    except Exception as err:    # OWSLib raises requests' and its own errors
        import requests
        if isinstance(err, (requests.ConnectionError, requests.Timeout)):
            raise HarvestError(f'{url}: unreachable ({err})') from None
        raise HarvestError(f'{url}: not an OGC API Records service ({err})') from None
    if collection is None:
        if not collections:
            raise HarvestError(f'{url}: no records collection')
        collection = collections[0]
    elif collection not in collections:
        raise HarvestError(f'{url}: no records collection {collection!r} '
                           f'(it has {", ".join(collections) or "none"})')
    items_url = f'{url.rstrip("/")}/collections/{collection}/items'

    def pages():
        page = client.collection_items(collection, limit=page_size, **query)
        seen, visited = 0, set()
        while True:
            features = page.get('features') if isinstance(page, dict) else None
            if not isinstance(features, list):
                raise HarvestError(f'{items_url}: a page without a "features" list')
            yield from features
            seen += len(features)
            nxt = next((lk['href'] for lk in page.get('links') or [] if isinstance(lk, dict)
                        and lk.get('rel') == 'next' and isinstance(lk.get('href'), str)
                        and 'json' in (lk.get('type') or 'json')), None)
            # the end, an empty page, a page already read (a partner looping), or too much
            if nxt is None or not features or nxt in visited or seen > MAX_RECORDS:
                return
            visited.add(nxt)
            response = http_get(nxt, headers={'Accept': 'application/geo+json, application/json'},
                                timeout=timeout)
            response.raise_for_status()
            page = response.json()
    return items_url, pages()


def row_from_record(feature: dict, source: str, scheme: str) -> tuple[dict, str | None, dict]:
    """(row, GeoJSON geometry, dates) of an OGC API Records record."""
    remote = feature.get('id')
    if not isinstance(remote, (str, int)) or str(remote) == '':
        raise ValueError('no identifier')
    remote = str(remote)
    props = feature.get('properties') if isinstance(feature.get('properties'), dict) else {}
    time = feature.get('time') if isinstance(feature.get('time'), dict) else {}
    interval = time.get('interval') if isinstance(time.get('interval'), list) else \
        [time.get('date') or time.get('timestamp')] * 2
    interval = (list(interval) + [None, None])[:2]
    language = props.get('language')
    diffusion = props.get('diffusion') if props.get('diffusion') in ('open', 'partners', 'restricted') \
        else 'open'
    ext = [{'scheme': scheme, 'value': remote}] + [
        e for e in _dicts(props.get('externalIds')) if isinstance(e.get('value'), str)]
    row = {
        'id': local_id(source, remote), 'source': source, 'source_id': remote,
        'type': props.get('type') if props.get('type') in store.TYPES else 'dataset',
        'title': str(props.get('title') or remote), 'description': str(props.get('description') or ''),
        'keywords': _strings(props.get('keywords')), 'themes': _dicts(props.get('themes')),
        'contacts': _dicts(props.get('contacts')),
        'license': props.get('license') if isinstance(props.get('license'), str) else None,
        'rights': props.get('rights') if isinstance(props.get('rights'), str) else None,
        'formats': _dicts(props.get('formats')),
        'links': [lk for lk in _dicts(feature.get('links')) if isinstance(lk.get('href'), str)
                  and lk['href'].startswith(('http://', 'https://'))],
        'external_ids': ext,
        'language': language.get('code') if isinstance(language, dict) and language.get('code')
        else (language if isinstance(language, str) else 'fr'),
        'diffusion': diffusion,
        'lineage': props.get('lineage') if isinstance(props.get('lineage'), str) else None,
        'update_frequency': props.get('updateFrequency') if isinstance(props.get('updateFrequency'), str)
        else None,
        'data_table': None, 'crs': _strings(props.get('crs')),
        'feature_count': props.get('featureCount') if isinstance(props.get('featureCount'), int) else None,
        'time_start': _timestamp(interval[0], 'time'), 'time_end': _timestamp(interval[1], 'time'),
    }
    geometry = _geometry(feature.get('geometry'))
    dates = {'created': _timestamp(props.get('created'), 'created'),
             'updated': _timestamp(props.get('updated'), 'updated')}
    return row, geometry, dates


def _geometry(value) -> str | None:
    """A partner's GeoJSON geometry, checked: valid and in longitude/latitude range."""
    if value is None:
        return None
    import shapely
    from shapely.geometry import shape
    from shapely.validation import explain_validity
    if not isinstance(value, dict):
        raise ValueError('geometry: not a GeoJSON geometry')
    try:
        geom = shape(value)
    except Exception as err:      # shapely raises several types for malformed GeoJSON
        raise ValueError(f'geometry: {err}') from None
    if geom.is_empty or not geom.is_valid:
        raise ValueError(f'geometry: {explain_validity(geom) if not geom.is_empty else "empty"}')
    x0, y0, x1, y1 = shapely.bounds(geom)
    if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        raise ValueError('geometry: coordinates outside longitude/latitude range')
    return json.dumps(value)


# -- CSW 2.0.2 ------------------------------------------------------------------------------
def csw_records(url: str, page_size: int, timeout: int = 30) -> Iterator:
    from owslib.csw import CatalogueServiceWeb
    try:
        csw = CatalogueServiceWeb(url, timeout=timeout)
    except Exception as err:
        raise HarvestError(f'{url}: not a CSW service ({err})') from None
    start = 1
    while True:
        csw.getrecords2(startposition=start, maxrecords=page_size, esn='full',
                        outputschema='http://www.opengis.net/cat/csw/2.0.2')
        yield from csw.records.values()
        nxt = int(csw.results.get('nextrecord') or 0)
        if nxt == 0 or nxt <= start or not csw.records or nxt > MAX_RECORDS:
            return
        start = nxt


def row_from_csw(rec, source: str, scheme: str) -> tuple[dict, str | None, dict]:
    remote = rec.identifier
    if not remote:
        raise ValueError('no identifier')
    geometry = None
    if rec.bbox is not None:
        # OWSLib already puts a latitude-first CRS (EPSG:4326) in x, y order
        x0, y0, x1, y1 = (float(rec.bbox.minx), float(rec.bbox.miny),
                          float(rec.bbox.maxx), float(rec.bbox.maxy))
        code = getattr(rec.bbox.crs, 'code', None)
        if code not in (None, 4326, '4326', 'CRS84'):      # a projected bbox: to CRS84
            import pyproj
            try:
                x0, y0, x1, y1 = pyproj.Transformer.from_crs(
                    f'EPSG:{code}', 'OGC:CRS84', always_xy=True).transform_bounds(x0, y0, x1, y1)
            except pyproj.exceptions.CRSError:
                raise ValueError(f'bounding box in an unknown CRS ({code})') from None
        # checked as a Records geometry is (finite, valid, in range): NaN, inf, a bbox past
        # ±180/±90 were stored and broke every bbox search of the catalogue (500s)
        box = ({'type': 'Point', 'coordinates': [x0, y0]} if (x0, y0) == (x1, y1) else
               {'type': 'LineString', 'coordinates': [[x0, y0], [x1, y1]]} if x0 == x1 or y0 == y1 else
               {'type': 'Polygon', 'coordinates': [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]})
        geometry = _geometry(box)
    rtype = rec.type if rec.type in store.TYPES else 'dataset'
    links = [{'rel': 'related', 'href': u['url'], **({'title': u['name']} if u.get('name') else {})}
             for u in (rec.references or []) + (rec.uris or [])
             if isinstance(u.get('url'), str) and u['url'].startswith(('http://', 'https://'))]
    row = {
        'id': local_id(source, remote), 'source': source, 'source_id': remote, 'type': rtype,
        'title': rec.title or remote, 'description': rec.abstract or '',
        'keywords': [s for s in rec.subjects or [] if s], 'themes': [], 'contacts': (
            [{'organization': rec.creator, 'roles': ['originator']}] if rec.creator else []) + (
            [{'organization': rec.publisher, 'roles': ['publisher']}] if rec.publisher else []),
        'license': None, 'rights': '; '.join(r for r in rec.rights or [] if r) or None,
        'formats': [{'name': rec.format}] if rec.format else [], 'links': links,
        'external_ids': [{'scheme': scheme, 'value': remote}],
        'language': rec.language or 'fr', 'diffusion': 'open', 'lineage': rec.source or None,
        'update_frequency': None, 'data_table': None, 'crs': [], 'feature_count': None,
        'time_start': None, 'time_end': None,
    }
    modified = _timestamp(rec.modified, 'modified') if rec.modified else None
    return row, geometry, {'created': _timestamp(rec.date, 'date') if rec.date else modified,
                           'updated': modified}


# -- the run --------------------------------------------------------------------------------
READ_SECONDS = 600     # a harvest reads its partner for at most this long (--timeout)


class _TooLong(BaseException):
    """The deadline (a BaseException: OWSLib's and our own `except Exception` let it through)."""


def _read_all(url: str, fetch, deadline: float):
    """Every record of the partner, read within ``deadline`` seconds: a partner that never
    answers, trickles a byte a second or hands out next links for ever held a harvest
    for ever (OWSLib passes no timeout on some requests). Whatever the partner sends that
    is not a readable catalogue (an HTTP error, an OWS exception report, broken XML or
    JSON, hostile nesting) is one HarvestError naming it, never a traceback."""
    import signal
    import socket
    import threading
    timed = threading.current_thread() is threading.main_thread() and deadline > 0
    if timed:
        def too_long(signum, frame):
            raise _TooLong()
        previous = signal.signal(signal.SIGALRM, too_long)
        signal.setitimer(signal.ITIMER_REAL, deadline)
    default_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(min(deadline, 60) if deadline > 0 else 60)   # requests OWSLib makes bare
    try:
        return fetch()
    except _TooLong:
        raise HarvestError(f'{url}: the partner was read for {deadline:g} s without an end '
                           '(--timeout)') from None
    except HarvestError:
        raise
    except RecursionError:
        raise HarvestError(f'{url}: an answer nested too deeply to be a catalogue') from None
    except Exception as err:     # requests, OWSLib, lxml, JSON: the partner's answer is not usable
        text = str(err).strip().splitlines()[0][:300] if str(err).strip() else ''
        raise HarvestError(f'{url}: not a readable catalogue ({type(err).__name__}: {text})') from None
    finally:
        socket.setdefaulttimeout(default_timeout)
        if timed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def harvest(url: str, source: str, protocol: str = 'records', collection: str | None = None,
            query: dict | None = None, page_size: int = 50,
            database_url: str | None = None, deadline: float = READ_SECONDS) -> HarvestReport:
    if not SOURCE.match(source or '') or source == store.LOCAL:
        raise HarvestError(f'source {source!r}: lower-case letters, digits, - and _ '
                           f'(40 at most), not {store.LOCAL!r}')
    if protocol not in ('records', 'csw'):
        raise HarvestError(f'protocol {protocol!r}: records or csw')
    if not 1 <= page_size <= 1000:
        raise HarvestError('page size: 1 to 1000')
    def fetch() -> tuple[str, list]:
        if protocol == 'records':
            scheme, remote = records_pages(url, collection, dict(query or {}), page_size)
        else:
            scheme, remote = url, csw_records(url, page_size)
        return scheme, list(remote)
    convert = row_from_record if protocol == 'records' else row_from_csw
    report = HarvestReport(source)
    seen: list[str] = []
    # everything is read before the transaction starts: no lock is held while the partner
    # (which may be this very server) is answering
    scheme, items = _read_all(url, fetch, deadline)
    with database.connection(database_url or settings.database_url()) as conn, conn.cursor() as cur:
        store.ensure(cur)
        for item in items:
            ident = str(item.get('id') if isinstance(item, dict) else getattr(item, 'identifier', '?'))
            if ident.startswith(f'{source}:'):
                continue      # our own copy, echoed back by a partner that harvests us
            try:
                row, geometry, dates = convert(item, source, scheme)
                # text PostgreSQL cannot hold (NUL, lone surrogates) stopped the whole harvest
                bodies.check_json([row, dates], max_depth=64)
            except (ValueError, TypeError, AttributeError) as err:    # bodies.Unfit too
                report.skipped.append((ident, str(err)))
                continue
            if row['id'] in seen:
                report.skipped.append((ident, 'listed twice by the partner'))
                continue
            cur.execute('SAVEPOINT harvest_record')
            try:
                # the partner's dates are content too: a record it touched is updated here
                outcome = store.write(cur, row, geometry, dates,
                                      salt=json.dumps(dates, sort_keys=True))
            except psycopg2.OperationalError:
                raise
            except psycopg2.Error as err:      # a geometry or value PostGIS refuses
                cur.execute('ROLLBACK TO SAVEPOINT harvest_record')
                report.skipped.append((ident, (err.diag.message_primary or str(err)).strip()))
                continue
            cur.execute('RELEASE SAVEPOINT harvest_record')
            seen.append(row['id'])
            getattr(report, outcome).append(row['id'])
        report.removed = store.remove_others(cur, source, seen)
    return report


def forget(source: str, database_url: str | None = None) -> list[str]:
    """Remove every record harvested from ``source``."""
    if not SOURCE.match(source or '') or source == store.LOCAL:
        raise HarvestError(f'source {source!r} is not a harvest source')
    with database.connection(database_url or settings.database_url()) as conn, conn.cursor() as cur:
        store.ensure(cur)
        return store.remove_others(cur, source, [])
