"""The catalogue as DCAT-AP, built with rdflib from the same records.

``GET /collections/catalogue/dcat`` (``f=jsonld|rdf|ttl`` or ``Accept: application/ld+json,
application/rdf+xml, text/turtle``; JSON-LD by default), paged with ``limit`` (default 100,
at most 1000) and ``offset``: every page is a ``hydra:PartialCollectionView`` with its
first/last/next/previous pages and ``hydra:totalItems``.

Mapping: the catalogue is a ``dcat:Catalog``; records of type ``dataset`` and
``featureType`` are ``dcat:Dataset``s (licence, publisher, creator, contact point, INSPIRE
themes, ``dct:spatial`` with the CRS84 extent as WKT in ``locn:geometry`` and
``dcat:bbox``, ``dct:temporal``, frequency, lineage, access rights from the diffusion
level), each download link a ``dcat:Distribution`` (``dcat:downloadURL``) plus one
distribution through the platform's API (``dcat:accessService``); ``service`` records and
the platform's OGC API itself are ``dcat:DataService``s.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import re
import urllib.parse

import psycopg2
from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS as DCT, FOAF, RDF, RDFS, SKOS, XSD

from geomayotte.access import http as access
from geomayotte import database, settings
from geomayotte.catalogue import record as recmod, search, sync
from geomayotte.catalogue.metadata import FREQUENCY_URI

LOGGER = logging.getLogger(__name__)
PATH = f'/collections/{recmod.CATALOGUE}/dcat'
VCARD = Namespace('http://www.w3.org/2006/vcard/ns#')
LOCN = Namespace('http://www.w3.org/ns/locn#')
GSP = Namespace('http://www.opengis.net/ont/geosparql#')
HYDRA = Namespace('http://www.w3.org/ns/hydra/core#')
ADMS = Namespace('http://www.w3.org/ns/adms#')
EU = 'http://publications.europa.eu/resource/authority/'
ACCESS_RIGHTS = {'open': 'PUBLIC', 'partners': 'RESTRICTED', 'restricted': 'NON_PUBLIC'}
FORMATS = {   # f= value -> (rdflib format, media type)
    'jsonld': ('json-ld', 'application/ld+json'), 'json-ld': ('json-ld', 'application/ld+json'),
    'json': ('json-ld', 'application/ld+json'),
    'rdf': ('xml', 'application/rdf+xml'), 'xml': ('xml', 'application/rdf+xml'),
    'ttl': ('turtle', 'text/turtle'), 'turtle': ('turtle', 'text/turtle'),
}
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
PARAMS = {'f', 'limit', 'offset'}
# rendered pages (rdflib takes tens of milliseconds per page), keyed by the catalogue's
# version: a changed record is a new version, never a stale page
CACHE_PAGES = 64
_cache: dict[tuple, tuple[str, bytes]] = {}
_cache_lock = threading.Lock()


class BadRequest(ValueError):
    pass


# -- the graph ------------------------------------------------------------------------------
def _uri(text: str) -> URIRef:
    """An IRI from record data (a harvested partner's links may hold spaces, quotes, <>):
    what an IRI may not contain is percent-encoded, so every serialisation stays valid."""
    return URIRef(urllib.parse.quote(str(text), safe=":/?#[]@!$&'()*+,;=%~-._"))


def _bind(g: Graph) -> None:
    for prefix, ns in (('dcat', DCAT), ('dct', DCT), ('foaf', FOAF), ('vcard', VCARD),
                       ('locn', LOCN), ('gsp', GSP), ('hydra', HYDRA), ('adms', ADMS),
                       ('skos', SKOS), ('rdfs', RDFS)):
        g.bind(prefix, ns)


def _fr(text) -> Literal:
    return Literal(text, lang='fr')


def _date(value) -> Literal:
    return Literal(recmod.iso(value), datatype=XSD.dateTime)


def _agent(g: Graph, node, name: str, url: str | None = None) -> None:
    g.add((node, RDF.type, FOAF.Agent))
    g.add((node, FOAF.name, Literal(name)))
    if url:
        g.add((node, FOAF.homepage, _uri(url)))


def _contact_point(g: Graph, contact: dict):
    node = BNode()
    g.add((node, RDF.type, VCARD.Organization))
    g.add((node, VCARD.fn, Literal(contact.get('organization') or contact.get('name') or '')))
    for email in contact.get('emails') or []:
        g.add((node, VCARD.hasEmail, _uri(f'mailto:{email["value"]}')))
    for link in contact.get('links') or []:
        g.add((node, VCARD.hasURL, _uri(link['href'])))
    return node


def _spatial(g: Graph, subject, geometry: dict) -> None:
    from shapely.geometry import shape
    geom = shape(geometry)
    loc = BNode()
    g.add((subject, DCT.spatial, loc))
    g.add((loc, RDF.type, DCT.Location))
    g.add((loc, LOCN.geometry, Literal(geom.wkt, datatype=GSP.wktLiteral)))
    g.add((loc, DCAT.bbox, Literal(geom.envelope.wkt, datatype=GSP.wktLiteral)))
    g.add((loc, DCAT.centroid, Literal(geom.centroid.wkt, datatype=GSP.wktLiteral)))


def _temporal(g: Graph, subject, row: dict) -> None:
    period = BNode()
    g.add((subject, DCT.temporal, period))
    g.add((period, RDF.type, DCT.PeriodOfTime))
    if row['time_start'] is not None:
        g.add((period, DCAT.startDate, _date(row['time_start'])))
    if row['time_end'] is not None:
        g.add((period, DCAT.endDate, _date(row['time_end'])))


def _license(g: Graph, links: list[dict]):
    link = next((lk for lk in links if lk.get('rel') == 'license'), None)
    if link is None:
        return None
    node = _uri(link['href'])
    g.add((node, RDF.type, DCT.LicenseDocument))
    g.add((node, RDFS.label, Literal(link.get('title') or link['href'])))
    return node


def _distribution(g: Graph, dataset, n: int, title: str, url: str, media: str | None,
                  license_, download: bool, service=None) -> None:
    node = URIRef(f'{dataset}#distribution-{n}')
    g.add((dataset, DCAT.distribution, node))
    g.add((node, RDF.type, DCAT.Distribution))
    g.add((node, DCT.title, _fr(title)))
    g.add((node, DCAT.accessURL, _uri(url)))
    if download:
        g.add((node, DCAT.downloadURL, _uri(url)))
    if media:
        g.add((node, DCAT.mediaType, URIRef('http://www.iana.org/assignments/media-types/' +
                                            media.split(';')[0].strip())))
    if license_ is not None:
        g.add((node, DCT.license, license_))
    if service is not None:
        g.add((node, DCAT.accessService, service))


def _resource(g: Graph, row: dict, base: str, catalogue_node, api_service) -> None:
    rec = recmod.to_record(row, base)
    props, links = rec['properties'], rec['links']
    node = URIRef(f'{base}/collections/{recmod.CATALOGUE}/items/{urllib.parse.quote(row["id"], safe=":.-_~")}')
    is_service = row['type'] == 'service'
    g.add((catalogue_node, DCAT.service if is_service else DCAT.dataset, node))
    g.add((node, RDF.type, DCAT.DataService if is_service else DCAT.Dataset))
    g.add((node, DCT.identifier, Literal(row['id'])))
    g.add((node, DCT.title, _fr(row['title'])))
    g.add((node, DCT.description, _fr(row['description'] or row['title'])))
    g.add((node, DCT.issued, _date(row['created'])))
    g.add((node, DCT.modified, _date(row['updated'])))
    g.add((node, DCT.language, URIRef(EU + 'language/FRA')))
    g.add((node, DCT.type, Literal(row['type'])))
    for kw in props['keywords']:
        g.add((node, DCAT.keyword, _fr(kw)))
    for scheme in props['themes']:
        for concept in scheme.get('concepts', []):
            if concept.get('url'):
                g.add((node, DCAT.theme, _uri(concept['url'])))
    for i, contact in enumerate(props['contacts']):
        roles = contact.get('roles') or []
        agent = BNode()
        _agent(g, agent, contact.get('organization') or contact.get('name') or 'inconnu',
               next((lk['href'] for lk in contact.get('links') or []), None))
        if 'publisher' in roles:
            g.add((node, DCT.publisher, agent))
        if 'originator' in roles or 'producer' in roles:
            g.add((node, DCT.creator, agent))
        if 'pointOfContact' in roles or (i == len(props['contacts']) - 1 and
                                         not any('pointOfContact' in (c.get('roles') or [])
                                                 for c in props['contacts'])):
            g.add((node, DCAT.contactPoint, _contact_point(g, contact)))
    if not any(True for _ in g.objects(node, DCT.publisher)):
        g.add((node, DCT.publisher, URIRef(f'{base}{PATH}#publisher')))
    if row['geometry']:
        _spatial(g, node, json.loads(row['geometry']))
    if row['time_start'] is not None or row['time_end'] is not None:
        _temporal(g, node, row)
    if row['update_frequency']:
        g.add((node, DCT.accrualPeriodicity, URIRef(FREQUENCY_URI + row['update_frequency'])))
    if row['lineage']:
        prov = BNode()
        g.add((node, DCT.provenance, prov))
        g.add((prov, RDF.type, DCT.ProvenanceStatement))
        g.add((prov, RDFS.label, _fr(row['lineage'])))
    g.add((node, DCT.accessRights, URIRef(EU + 'access-right/' + ACCESS_RIGHTS[row['diffusion']])))
    for crs in props['crs']:
        g.add((node, DCT.conformsTo, _uri(crs)))
    for ext in props['externalIds']:
        ident = BNode()
        g.add((node, ADMS.identifier, ident))
        g.add((ident, RDF.type, ADMS.Identifier))
        g.add((ident, SKOS.notation, Literal(ext['value'])))
        if ext.get('scheme'):
            g.add((ident, DCT.creator, Literal(ext['scheme'])))
    license_ = _license(g, links)
    if license_ is not None:
        g.add((node, DCT.license, license_))
    elif props['rights']:
        rights = BNode()
        g.add((node, DCT.rights, rights))
        g.add((rights, RDF.type, DCT.RightsStatement))
        g.add((rights, RDFS.label, _fr(props['rights'])))
    page = next((lk for lk in links if lk.get('type') == 'text/html' and
                 lk.get('rel') in ('related', 'items')), None)
    # the collection's web page, or the record's own
    g.add((node, DCAT.landingPage, _uri(page['href'] if page else f'{node}?f=html')))
    if is_service:
        endpoint = next((lk['href'] for lk in links if lk.get('rel') == 'related'), links[0]['href'])
        g.add((node, DCAT.endpointURL, _uri(endpoint)))
        g.add((node, DCAT.endpointDescription, URIRef(f'{base}/openapi?f=json')))
        if license_ is not None:
            g.add((node, DCT.license, license_))
        return
    n = 0
    for lk in links:
        if lk.get('rel') == 'enclosure':
            n += 1
            _distribution(g, node, n, lk.get('title') or 'Téléchargement', lk['href'],
                          lk.get('type'), license_, True)
    api = next((lk for lk in links if lk.get('rel') == 'items' and 'json' in (lk.get('type') or '')),
               next((lk for lk in links if lk.get('rel') in ('related', 'describedby')), None))
    if api is not None:
        n += 1
        _distribution(g, node, n, 'Accès par l\'API OGC de la plateforme', api['href'],
                      api.get('type'), license_, False,
                      api_service if api['href'].startswith(base) else None)
    if n == 0:   # a harvested record without links: its own record is the way in
        _distribution(g, node, 1, 'Fiche de métadonnées', str(node), 'application/geo+json',
                      license_, False)


def build(rows: list[dict], total: int, modified, limit: int, offset: int, base: str,
          fmt: str) -> Graph:
    cat = sync.catalogue()
    g = Graph()
    _bind(g)
    node = URIRef(f'{base}/collections/{recmod.CATALOGUE}')
    publisher = URIRef(f'{base}{PATH}#publisher')
    g.add((node, RDF.type, DCAT.Catalog))
    g.add((node, DCT.title, _fr(cat.title)))
    g.add((node, DCT.description, _fr(cat.description)))
    g.add((node, DCT.publisher, publisher))
    _agent(g, publisher, cat.publisher.name, cat.publisher.url)
    g.add((node, FOAF.homepage, URIRef(cat.homepage)))
    g.add((node, DCT.language, URIRef(EU + 'language/FRA')))
    g.add((node, DCAT.themeTaxonomy, URIRef('http://inspire.ec.europa.eu/theme')))
    if cat.spatial:
        g.add((node, DCT.spatial, URIRef(cat.spatial)))
    if modified is not None:
        g.add((node, DCT.modified, _date(modified)))
    contact = BNode()
    g.add((node, DCAT.contactPoint, contact))
    g.add((contact, RDF.type, VCARD.Organization))
    g.add((contact, VCARD.fn, Literal(cat.contact.name)))
    if cat.contact.email:
        g.add((contact, VCARD.hasEmail, URIRef(f'mailto:{cat.contact.email}')))
    # the platform's OGC API, through which every dataset is also reachable
    api = URIRef(f'{base}/')
    g.add((node, DCAT.service, api))
    g.add((api, RDF.type, DCAT.DataService))
    g.add((api, DCT.title, _fr('API OGC de la plateforme géodonnées de Mayotte')))
    g.add((api, DCAT.endpointURL, api))
    g.add((api, DCAT.endpointDescription, URIRef(f'{base}/openapi?f=json')))
    g.add((api, DCT.publisher, publisher))
    for row in rows:
        _resource(g, row, base, node, api)
    _paging(g, total, limit, offset, base, fmt)
    return g


def _paging(g: Graph, total: int, limit: int, offset: int, base: str, fmt: str) -> None:
    def page(off: int) -> URIRef:
        return URIRef(f'{base}{PATH}?' + urllib.parse.urlencode(
            [('f', fmt), ('limit', str(limit)), ('offset', str(off))]))
    view = page(offset)
    g.add((view, RDF.type, HYDRA.PartialCollectionView))
    g.add((view, HYDRA.totalItems, Literal(total, datatype=XSD.integer)))
    g.add((view, HYDRA.itemsPerPage, Literal(limit, datatype=XSD.integer)))
    g.add((view, HYDRA.first, page(0)))
    last = max(0, (total - 1) // limit * limit) if total else 0
    g.add((view, HYDRA.last, page(last)))
    if offset + limit < total:
        g.add((view, HYDRA.next, page(offset + limit)))
    if offset > 0:
        g.add((view, HYDRA.previous, page(max(0, offset - limit))))


# -- HTTP -----------------------------------------------------------------------------------
def _format(params: dict, accept: str) -> str:
    f = params.get('f')
    if f is not None:
        if f not in FORMATS:
            raise BadRequest(f'f: {f!r} is not a DCAT format (jsonld, rdf, ttl)')
        return f
    # Accept arrives most wanted first, q=0 entries dropped (middleware.clean_choice_header)
    for item in accept.split(','):
        media = item.split(';')[0].strip().lower()
        for key, (_, mime) in FORMATS.items():
            if media == mime or (media.endswith('/*') and mime.startswith(media[:-1])):
                return key       # text/* is Turtle, application/* JSON-LD (listed first)
    return 'jsonld'


def _int(params: dict, name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r'[0-9]{1,20}', raw) or not low <= int(raw) <= high:   # ASCII digits only
        raise BadRequest(f'{name}: {raw!r} is not an integer between {low} and {high}')
    return int(raw)


def render(params: dict, accept: str, url: str | None = None) -> tuple[str, bytes]:
    unknown = set(params) - PARAMS
    if unknown:
        raise BadRequest(f'unknown parameters {", ".join(sorted(unknown))} (this view takes f, limit, offset)')
    fmt = _format(params, accept)
    limit = _int(params, 'limit', DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _int(params, 'offset', 0, 0, 2 ** 62)
    url = url or settings.database_url()
    sync.refresh_stale(url)
    base = os.environ.get('GEOMAYOTTE_BASE_URL', 'http://127.0.0.1:5000').rstrip('/')
    with database.connection(url, autocommit=True) as conn, conn.cursor() as cur:
        # the catalogue's version: any change of any record changes it
        # the catalogue's version, as this caller sees it: any change of any record changes it
        cur.execute(*search.visible_sql(
            "SELECT count(*), max(updated), md5(string_agg(id || fingerprint, ',' ORDER BY id))"))
        total, modified, version = cur.fetchone()
        key = (version, fmt, limit, offset, base, access.records_key())
        cached = _cache.get(key)
        if cached is not None:
            return cached
        cur.execute(*search.items_sql(search.RecordsQuery(limit=limit, offset=offset)))
        rows = [dict(zip(search.SELECT_NAMES, r)) for r in cur.fetchall()]
    rdf_format, mime = FORMATS[fmt]
    g = build(rows, total, modified, limit, offset, base, fmt)
    if rdf_format == 'json-ld':
        context = {p: str(ns) for p, ns in g.namespaces() if p in (
            'dcat', 'dct', 'foaf', 'vcard', 'locn', 'gsp', 'hydra', 'adms', 'skos', 'rdfs', 'xsd')}
        body = g.serialize(format='json-ld', context=context, auto_compact=True)
    else:
        body = g.serialize(format=rdf_format)
    answer = mime, body.encode('utf-8') if isinstance(body, str) else body
    with _cache_lock:
        if len(_cache) >= CACHE_PAGES:
            _cache.pop(next(iter(_cache)))
        _cache[key] = answer
    return answer


class DcatRoute:
    """WSGI: answers ``PATH``, hands everything else to the wrapped application."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        if environ.get('PATH_INFO', '').rstrip('/') != PATH:
            return self.app(environ, start_response)
        params = dict(urllib.parse.parse_qsl(environ.get('QUERY_STRING', ''), keep_blank_values=True))
        try:
            mime, body = render(params, environ.get('HTTP_ACCEPT', ''))
            status = '200 OK'
        except BadRequest as err:
            mime, body, status = 'application/json', _exception('InvalidParameterValue', str(err)), \
                '400 Bad Request'
        except psycopg2.OperationalError as err:
            LOGGER.error('database unavailable: %s', err)
            mime, body, status = 'application/json', _exception(
                'ServiceUnavailable', 'database unavailable, try again later'), '503 Service Unavailable'
        headers = [('Content-Type', mime), ('Content-Length', str(len(body))),
                   ('Vary', 'Accept')]
        start_response(status, headers)
        return [b''] if environ.get('REQUEST_METHOD') == 'HEAD' else [body]


def _exception(code: str, description: str) -> bytes:
    return json.dumps({'code': code, 'type': code, 'description': description},
                      ensure_ascii=False).encode()
