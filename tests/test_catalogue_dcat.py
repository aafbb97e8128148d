"""The DCAT-AP view, parsed with rdflib in every serialisation, DCAT-AP mandatory
properties checked for the catalogue and for every dataset, distribution, agent and service."""
from __future__ import annotations

import urllib.parse

import pytest
import shapely.wkt
from rdflib import Graph, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS as DCT, FOAF, RDF, SKOS

DCAT_PATH = '/collections/catalogue/dcat'
HYDRA = Namespace('http://www.w3.org/ns/hydra/core#')
LOCN = Namespace('http://www.w3.org/ns/locn#')
ADMS = Namespace('http://www.w3.org/ns/adms#')
FORMATS = [('jsonld', 'json-ld', 'application/ld+json'), ('rdf', 'xml', 'application/rdf+xml'),
           ('ttl', 'turtle', 'text/turtle')]
# DCAT-AP 2.1 / 3.0 mandatory properties per class
MANDATORY = {
    DCAT.Catalog: [DCT.title, DCT.description, DCT.publisher, DCAT.dataset],
    DCAT.Dataset: [DCT.title, DCT.description],
    DCAT.Distribution: [DCAT.accessURL],
    DCAT.DataService: [DCAT.endpointURL, DCT.title],
    FOAF.Agent: [FOAF.name],
    ADMS.Identifier: [SKOS.notation],
}
# recommended ones we promise for every dataset of ours
RECOMMENDED = [DCAT.contactPoint, DCAT.distribution, DCAT.keyword, DCT.publisher, DCT.license,
               DCT.accessRights, DCT.issued, DCT.modified, DCAT.landingPage]


def fetch(api, fmt: str, rdf_format: str, **params) -> Graph:
    r = api(DCAT_PATH, f=fmt, **params)
    assert r.status_code == 200, r.text
    g = Graph()
    g.parse(data=r.content, format=rdf_format, publicID=api.base)
    return g


def missing(g: Graph) -> list[str]:
    """Every (subject, property) a DCAT-AP mandatory property is missing from."""
    out = []
    for cls, props in MANDATORY.items():
        for subject in g.subjects(RDF.type, cls):
            for p in props:
                if g.value(subject, p) is None:
                    out.append(f'{subject} ({cls.split("#")[-1]}): {p}')
    return out


def local_records(api) -> dict:
    doc = api('/collections/catalogue/items', source='local', limit=1000).json()
    return {f['id']: f for f in doc['features']}


@pytest.mark.parametrize('fmt, rdf_format, mime', FORMATS)
def test_every_serialisation_parses_and_has_the_mandatory_properties(api, fmt, rdf_format, mime):
    r = api(DCAT_PATH, f=fmt, limit=1000)
    assert r.headers['Content-Type'].startswith(mime)
    g = fetch(api, fmt, rdf_format, limit=1000)
    assert missing(g) == []
    catalogs = list(g.subjects(RDF.type, DCAT.Catalog))
    assert catalogs == [URIRef(f'{api.base}/collections/catalogue')]
    records = local_records(api)
    datasets = {str(g.value(s, DCT.identifier)) for s in g.subjects(RDF.type, DCAT.Dataset)}
    services = {str(g.value(s, DCT.identifier)) for s in g.subjects(RDF.type, DCAT.DataService)
                if g.value(s, DCT.identifier) is not None}
    assert datasets == {k for k, v in records.items() if v['properties']['type'] != 'service'}
    assert services == {k for k, v in records.items() if v['properties']['type'] == 'service'}
    for ds in g.subjects(RDF.type, DCAT.Dataset):
        rid = str(g.value(ds, DCT.identifier))
        for p in RECOMMENDED:
            assert g.value(ds, p) is not None or (p == DCT.license and records[rid]['properties']['license']
                                                  == 'not-specified'), (rid, p)
        for dist in g.objects(ds, DCAT.distribution):
            assert (dist, RDF.type, DCAT.Distribution) in g


def test_content_negotiation(api):
    for _, rdf_format, mime in FORMATS:
        r = api.session.get(api.base + DCAT_PATH, headers={'Accept': mime}, timeout=30)
        assert r.status_code == 200 and r.headers['Content-Type'].startswith(mime)
        assert len(Graph().parse(data=r.content, format=rdf_format)) > 100
    # q-values say which the client prefers (a breaking session found the first listed won)
    for accept, mime in [('application/ld+json;q=0.5, text/turtle;q=0.9', 'text/turtle'),
                         ('application/ld+json;q=0, application/rdf+xml', 'application/rdf+xml'),
                         ('text/turtle;q=0.2, application/ld+json', 'application/ld+json'),
                         ('text/html, */*;q=0.1', 'application/ld+json'),
                         ('text/*', 'text/turtle'),                    # was JSON-LD
                         ('application/*, text/*;q=0.5', 'application/ld+json')]:
        r = api.session.get(api.base + DCAT_PATH, headers={'Accept': accept}, params={'limit': 1}, timeout=30)
        assert r.status_code == 200 and r.headers['Content-Type'].startswith(mime), accept


def test_spatial_temporal_licence_and_downloads_follow_the_records(api):
    g = fetch(api, 'ttl', 'turtle', limit=1000)
    records = local_records(api)
    by_id = {str(g.value(s, DCT.identifier)): s for s in g.subjects(RDF.type, DCAT.Dataset)}
    for rid, rec in records.items():
        if rec['properties']['type'] == 'service':
            continue
        ds = by_id[rid]
        loc = g.value(ds, DCT.spatial)
        if rec['geometry'] is None:
            assert loc is None, rid
        else:
            geom = shapely.wkt.loads(str(g.value(loc, LOCN.geometry)))
            xs = [p[0] for p in rec['geometry']['coordinates'][0]]
            ys = [p[1] for p in rec['geometry']['coordinates'][0]]
            assert geom.bounds == pytest.approx((min(xs), min(ys), max(xs), max(ys)), abs=1e-9), rid
            assert shapely.wkt.loads(str(g.value(loc, DCAT.bbox))).bounds == pytest.approx(geom.bounds)
        period = g.value(ds, DCT.temporal)
        if rec['time'] is None:
            assert period is None, rid
        else:
            start = g.value(period, DCAT.startDate).toPython()
            assert start.isoformat().replace('+00:00', 'Z') == rec['time']['interval'][0]
        lic = next((lk['href'] for lk in rec['links'] if lk['rel'] == 'license'), None)
        if lic:
            assert str(g.value(ds, DCT.license)) == lic
        downloads = {str(g.value(d, DCAT.downloadURL)) for d in g.objects(ds, DCAT.distribution)
                     if g.value(d, DCAT.downloadURL) is not None}
        assert downloads == {lk['href'] for lk in rec['links'] if lk['rel'] == 'enclosure'}, rid
    seismes = by_id['seismes']
    assert str(g.value(seismes, DCT.accessRights)).endswith('/RESTRICTED')   # diffusion: partners
    assert str(g.value(by_id['communes'], DCT.accessRights)).endswith('/PUBLIC')
    assert (by_id['communes'], DCAT.theme, URIRef('http://inspire.ec.europa.eu/theme/au')) in g


@pytest.mark.parametrize('limit', [1, 4, 10, 100])
def test_hydra_paging_reaches_every_record_once(api, limit):
    url = f'{api.base}{DCAT_PATH}?f=ttl&limit={limit}'
    seen, total = [], None
    while url:
        g = Graph().parse(data=api.session.get(url, timeout=30).content, format='turtle')
        views = list(g.subjects(RDF.type, HYDRA.PartialCollectionView))
        assert len(views) == 1
        total = int(g.value(views[0], HYDRA.totalItems))
        seen += [str(g.value(s, DCT.identifier)) for cls in (DCAT.Dataset, DCAT.DataService)
                 for s in g.subjects(RDF.type, cls) if g.value(s, DCT.identifier) is not None]
        nxt = g.value(views[0], HYDRA.next)
        assert nxt is None or urllib.parse.parse_qs(urllib.parse.urlsplit(str(nxt)).query)['limit'] == [str(limit)]
        url = str(nxt) if nxt is not None else None
    assert len(seen) == len(set(seen)) == total


@pytest.mark.parametrize('params, words', [
    ({'f': 'csv'}, 'f'), ({'limit': '0'}, 'limit'), ({'limit': 'many'}, 'limit'),
    ({'offset': '-3'}, 'offset'), ({'page': '2'}, 'page'),
])
def test_bad_dcat_parameters_are_400(api, params, words):
    r = api(DCAT_PATH, **params)
    assert r.status_code == 400 and words in r.json()['description']


def test_dcat_is_read_only(api):
    r = api.session.post(api.base + DCAT_PATH, data='x', timeout=30)
    assert r.status_code == 405


def test_a_data_change_reaches_the_dcat_view(api, db):
    """Pages are cached by catalogue version: a change in the data is never served stale."""
    def villages_bbox():
        g = fetch(api, 'ttl', 'turtle', limit=1000)
        ds = next(s for s in g.subjects(RDF.type, DCAT.Dataset) if str(g.value(s, DCT.identifier)) == 'villages')
        return shapely.wkt.loads(str(g.value(g.value(ds, DCT.spatial), DCAT.bbox))).bounds
    before = villages_bbox()
    assert villages_bbox() == before           # the cached page
    cur = db.cursor()
    cur.execute("""INSERT INTO geodata.villages (geonameid, nom, code_insee, geom)
                   SELECT max(geonameid) + 1, 'Test DCAT', min(code_insee),
                          ST_Translate(ST_Centroid(ST_Collect(geom)), 0, -60000)
                     FROM geodata.villages""")
    try:
        cur.execute("SELECT ST_YMin(ST_Extent(ST_Transform(geom, 4326))) FROM geodata.villages")
        (ymin,) = cur.fetchone()
        during = villages_bbox()
        assert during[1] == pytest.approx(ymin, abs=1e-8) and during[1] < before[1]
    finally:
        cur.execute("DELETE FROM geodata.villages WHERE nom = 'Test DCAT'")
    assert villages_bbox() == pytest.approx(before)


def test_head_and_cors(api):
    get = api(DCAT_PATH, f='ttl')
    head = api.session.head(api.base + DCAT_PATH, params={'f': 'ttl'}, timeout=30)
    assert head.status_code == 200 and head.content == b''
    assert head.headers['Content-Length'] == str(len(get.content))
    assert get.headers['Access-Control-Allow-Origin'] == '*'


def test_openapi_describes_the_dcat_view(api):
    doc = api.session.get(api.base + '/openapi', params={'f': 'json'}, timeout=30).json()
    op = doc['paths'][DCAT_PATH]['get']
    assert {p['name'] for p in op['parameters']} == {'f', 'limit', 'offset'}
    assert {'application/ld+json', 'text/turtle', 'application/rdf+xml'} <= set(op['responses']['200']['content'])
