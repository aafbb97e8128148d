"""Harvest-in over HTTP: our own live server as an OGC API Records partner, and a real
pycsw 2.6 server as a CSW partner (pycsw in its own virtualenv, `.venv-pycsw`, made on first
use: it needs OWSLib < 0.29 and SQLAlchemy < 2, which our environment cannot share)."""
from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg2
import pytest
import requests

from geomayotte.catalogue import harvest, store

ROOT = Path(__file__).resolve().parent.parent
ITEMS = '/collections/catalogue/items'
PYCSW_VENV = ROOT / '.venv-pycsw'


def local_ids(api) -> set[str]:
    doc = api(ITEMS, source='local', limit=1000).json()
    return {f['id'] for f in doc['features']}


def test_harvest_our_own_server_is_idempotent_and_reports_changes(api, anon, server, database_url, db):
    try:
        first = harvest.harvest(server, 'miroir', page_size=7, database_url=database_url)
        ids = local_ids(anon)     # an anonymous harvester gets the open records only
        assert ids and ids < local_ids(api)
        assert sorted(first.added) == sorted(f'miroir:{i}' for i in ids)
        assert not (first.updated or first.removed or first.skipped)
        copy = api(f'{ITEMS}/miroir:communes').json()
        original = api(f'{ITEMS}/communes').json()
        assert copy['properties']['source'] == 'miroir'
        assert {'scheme': f'{server}/collections/catalogue/items', 'value': 'communes'} in \
            copy['properties']['externalIds']
        for name in ('title', 'description', 'keywords', 'license', 'diffusion', 'created', 'updated',
                     'themes', 'featureCount'):
            assert copy['properties'][name] == original['properties'][name], name
        assert copy['geometry'] == original['geometry'] and copy['time'] == original['time']
        assert api(ITEMS, source='miroir').json()['numberMatched'] == len(ids)
        found = api(ITEMS, externalIds='communes').json()['features']
        assert [f['id'] for f in found] == ['miroir:communes']

        # a re-run changes nothing (our copies, listed by the partner too, are not re-harvested)
        again = harvest.harvest(server, 'miroir', page_size=5, database_url=database_url)
        assert not (again.added or again.updated or again.removed or again.skipped)
        assert len(again.unchanged) == len(ids)

        # a change at the partner is an update; a record it no longer lists is removed
        cur = db.cursor()
        cur.execute("""INSERT INTO geodata.villages (geonameid, nom, code_insee, geom)
                       SELECT max(geonameid) + 1, 'Test moisson', min(code_insee), ST_Centroid(ST_Collect(geom))
                         FROM geodata.villages""")
        try:
            api(f'{ITEMS}/villages')      # the partner's record follows its data
            changed = harvest.harvest(server, 'miroir', database_url=database_url)
        finally:
            cur.execute("DELETE FROM geodata.villages WHERE nom = 'Test moisson'")
        assert changed.updated == ['miroir:villages'] and not (changed.added or changed.removed)
        with psycopg2.connect(database_url) as conn, conn.cursor() as wcur:
            store.write(wcur, {'id': 'miroir:disparu', 'source': 'miroir', 'source_id': 'disparu',
                               'type': 'dataset', 'title': 'Fiche disparue chez le partenaire',
                               'diffusion': 'open', 'language': 'fr'}, None)
        gone = harvest.harvest(server, 'miroir', database_url=database_url)
        assert gone.removed == ['miroir:disparu']
        assert api(f'{ITEMS}/miroir:disparu').status_code == 404
    finally:
        harvest.forget('miroir', database_url)
    assert api(ITEMS, source='miroir').json()['numberMatched'] == 0


def test_harvest_command(server, database_url):
    exe = str(Path(sys.executable).parent / 'geomayotte-catalogue')
    env = dict(os.environ, DATABASE_URL=database_url)
    try:
        run = subprocess.run([exe, 'harvest', server, '--source', 'commande', '--query', 'type=service'],
                             env=env, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        assert 'commande: 1 added, 0 updated, 0 removed' in run.stdout
        assert 'added    commande:process.validate-reference-model' in run.stdout
    finally:
        forget = subprocess.run([exe, 'forget', '--source', 'commande'], env=env,
                                capture_output=True, text=True, timeout=60)
    assert forget.returncode == 0 and 'commande: 1 records removed' in forget.stdout


@pytest.mark.parametrize('kwargs, words', [
    ({'source': 'local'}, 'local'),
    ({'source': 'Pas un nom'}, 'source'),
    ({'source': 'ok', 'protocol': 'wfs'}, 'protocol'),
    ({'source': 'ok', 'collection': 'nope'}, 'nope'),
    ({'source': 'ok', 'page_size': 0}, 'page size'),
])
def test_harvest_refuses_bad_input(server, database_url, kwargs, words):
    with pytest.raises(harvest.HarvestError) as err:
        harvest.harvest(server, database_url=database_url, **kwargs)
    assert words in str(err.value)


def test_harvest_of_something_that_is_not_a_catalogue(server, database_url):
    with pytest.raises(harvest.HarvestError) as err:
        harvest.harvest(server + '/collections/communes/items', 'ok', database_url=database_url)
    assert 'not an OGC API Records service' in str(err.value)


def test_harvest_of_a_server_that_does_not_answer(database_url):
    from tests.conftest import free_port
    with pytest.raises(harvest.HarvestError) as err:        # nothing listens there
        harvest.harvest(f'http://127.0.0.1:{free_port()}/', 'ok', database_url=database_url)
    assert 'unreachable' in str(err.value) and 'not an OGC API' not in str(err.value)


# -- a careless partner: a real HTTP server answering what a buggy catalogue would -----------
class CarelessPartner(http.server.BaseHTTPRequestHandler):
    """Page 1: a good record and six broken ones; page 2 links to itself as `next`."""

    def do_GET(self):
        base = f'http://127.0.0.1:{self.server.server_port}'
        path = self.path.split('?')[0].rstrip('/')
        good = {'id': 'bon', 'type': 'Feature', 'geometry': None,
                'properties': {'type': 'dataset', 'title': 'Une bonne fiche'}, 'links': []}
        docs = {
            '': {'links': [{'rel': 'data', 'href': f'{base}/collections'}]},
            '/collections': {'collections': [{'id': 'fiches', 'itemType': 'record', 'links': []}]},
            '/collections/fiches/items': {'type': 'FeatureCollection', 'features': [
                good,
                {'type': 'Feature', 'geometry': None, 'properties': {'title': 'sans identifiant'}},
                {'id': 'geometrie', 'type': 'Feature', 'properties': {'title': 'x'},
                 'geometry': {'type': 'Polygon', 'coordinates': [[[45, -12], [45.1, -12]]]}},
                {'id': 'date', 'type': 'Feature', 'geometry': None,
                 'properties': {'title': 'x', 'updated': 'hier'}},
                # text PostgreSQL cannot hold: the whole harvest stopped with a traceback
                {'id': 'nul\u0000id', 'type': 'Feature', 'geometry': None, 'properties': {'title': 'x'}},
                {'id': 'surrogate', 'type': 'Feature', 'geometry': None, 'properties': {'title': 'a\ud800'}},
                # year 0 once in UTC: stored, then every catalogue page was a 500
                {'id': 'an0', 'type': 'Feature', 'geometry': None,
                 'properties': {'title': 'x', 'updated': '0001-01-01T00:00:00+14:00'}}],
                'links': [{'rel': 'next', 'type': 'application/geo+json', 'href': f'{base}/page2'}]},
            '/page2': {'type': 'FeatureCollection', 'features': [dict(good, id='bis')],
                       'links': [{'rel': 'next', 'href': f'{base}/page2'}]},
        }
        body = json.dumps(docs.get(path, {'code': 'NotFound'})).encode()
        self.send_response(200 if path in docs else 404)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_careless_partner_is_harvested_as_far_as_it_can_be(database_url):
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), CarelessPartner)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f'http://127.0.0.1:{srv.server_port}'
        report = harvest.harvest(url, 'negligent', database_url=database_url)
        assert sorted(report.added) == ['negligent:bis', 'negligent:bon']
        reasons = dict(report.skipped)
        assert set(reasons) == {'None', 'geometrie', 'date', 'nul\x00id', 'surrogate', 'an0'}
        assert 'range of dates' in reasons['an0']
        assert 'identifier' in reasons['None'] and 'hier' in reasons['date']
        assert 'NUL' in reasons['nul\x00id'] and 'surrogate' in reasons['surrogate']
        assert reasons['geometrie'].startswith('geometry:')
    finally:
        srv.shutdown()
        harvest.forget('negligent', database_url)


# -- CSW: a real pycsw ----------------------------------------------------------------------
RECORD = """<?xml version="1.0" encoding="UTF-8"?>
<csw:Record xmlns:csw="http://www.opengis.net/cat/csw/2.0.2" xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:dct="http://purl.org/dc/terms/" xmlns:ows="http://www.opengis.net/ows">
  <dc:identifier>{id}</dc:identifier>
  <dc:title>{title}</dc:title>
  <dc:type>dataset</dc:type>
  <dc:subject>{subject}</dc:subject>
  <dc:subject>Mayotte</dc:subject>
  <dct:abstract>{abstract}</dct:abstract>
  <dct:modified>{modified}</dct:modified>
  <dc:creator>{creator}</dc:creator>
  <dc:rights>Licence Ouverte 2.0</dc:rights>
  <dct:references scheme="WWW:LINK">https://partenaire.example.org/donnees/{id}</dct:references>
  <ows:BoundingBox crs="urn:ogc:def:crs:EPSG::4326">
    <ows:LowerCorner>{s} {w}</ows:LowerCorner>
    <ows:UpperCorner>{n} {e}</ows:UpperCorner>
  </ows:BoundingBox>
</csw:Record>
"""
PARTNER = [
    dict(id='daaf-forets-2024', title='Forêts et mangroves de Mayotte', subject='forêt',
         abstract='Couverture forestière relevée par la DAAF.', modified='2024-05-02',
         creator='DAAF Mayotte', w=45.01, s=-13.0, e=45.3, n=-12.64),
    dict(id='ars-eau-potable', title='Points de captage d’eau potable', subject='eau',
         abstract='Captages et forages suivis par l’ARS.', modified='2023-11-20',
         creator='ARS Mayotte', w=45.05, s=-12.95, e=45.25, n=-12.7),
    dict(id='sdis-casernes', title='Casernes de pompiers', subject='secours',
         abstract='Centres d’incendie et de secours.', modified='2022-01-15',
         creator='SDIS 976', w=45.1, s=-12.9, e=45.2, n=-12.75),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _pycsw_python() -> Path:
    python = PYCSW_VENV / 'bin' / 'python'
    if not (PYCSW_VENV / '.installed').exists():
        base = os.environ.get('PYTHON') or sys.base_prefix + '/bin/python3'
        steps = [[base, '-m', 'venv', str(PYCSW_VENV)],
                 [str(python), '-m', 'pip', 'install', '-q', 'pycsw==2.6.2', 'SQLAlchemy<2',
                  'setuptools<81']]   # pycsw 2.6 imports pkg_resources
        for step in steps:
            res = subprocess.run(step, capture_output=True, text=True, timeout=600)
            if res.returncode != 0:
                pytest.skip(f'pycsw could not be installed ({" ".join(step[:4])}): {res.stderr[-300:]}')
        (PYCSW_VENV / '.installed').touch()
    return python


@pytest.fixture(scope='module')
def csw(tmp_path_factory):
    python = _pycsw_python()
    home = tmp_path_factory.mktemp('pycsw')
    port = _free_port()
    url = f'http://127.0.0.1:{port}/'
    (home / 'records').mkdir()
    for rec in PARTNER:
        (home / 'records' / f'{rec["id"]}.xml').write_text(RECORD.format(**rec), encoding='utf-8')
    cfg = home / 'pycsw.cfg'   # no gzip_compresslevel: pycsw 2.6 then sends a wrong Content-Length
    cfg.write_text(f"""[server]
home={home}
url={url}
mimetype=application/xml; charset=UTF-8
encoding=UTF-8
language=fr-FR
maxrecords=10
loglevel=WARNING
logfile={home}/pycsw.log
pretty_print=false
domainquerytype=list
domaincounts=false
profiles=apiso

[manager]
transactions=false
allowed_ips=127.0.0.1

[metadata:main]
identification_title=Catalogue d'un partenaire (test)
identification_abstract=pycsw local pour le test de moisson
identification_keywords=Mayotte
identification_keywords_type=theme
identification_fees=None
identification_accessconstraints=None
provider_name=Partenaire
provider_url=https://partenaire.example.org
contact_name=Partenaire
contact_position=Catalogue
contact_email=catalogue@partenaire.example.org

[repository]
database=sqlite:///{home}/records.db
table=records
""", encoding='utf-8')
    admin = str(PYCSW_VENV / 'bin' / 'pycsw-admin.py')
    for args in (['-c', 'setup_db'], ['-c', 'load_records', '-p', str(home / 'records')]):
        res = subprocess.run([str(python), admin, *args, '-f', str(cfg)], capture_output=True,
                             text=True, timeout=120)
        assert res.returncode == 0, res.stderr[-2000:]
    log = open(home / 'server.log', 'w+')
    proc = subprocess.Popen([str(python), '-m', 'pycsw.wsgi', str(port)], cwd=home, stdout=log,
                            stderr=subprocess.STDOUT, env=dict(os.environ, PYCSW_CONFIG=str(cfg)))
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(url, params={'service': 'CSW', 'request': 'GetCapabilities'},
                                timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, 'pycsw did not start'
            time.sleep(0.3)
        yield url, home / 'records.db'
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_harvest_a_csw_partner(csw, api, database_url):
    url, repository = csw
    try:
        first = harvest.harvest(url, 'partenaire-csw', protocol='csw', page_size=2,
                                database_url=database_url)
        assert sorted(first.added) == sorted(f'partenaire-csw:{r["id"]}' for r in PARTNER)
        assert not (first.updated or first.removed or first.skipped)
        for rec in PARTNER:
            got = api(f'{ITEMS}/partenaire-csw:{rec["id"]}').json()
            props = got['properties']
            assert props['title'] == rec['title'] and props['description'] == rec['abstract']
            assert set(props['keywords']) == {rec['subject'], 'Mayotte'}
            assert props['source'] == 'partenaire-csw'
            assert {'scheme': url, 'value': rec['id']} in props['externalIds']
            assert dt.datetime.fromisoformat(props['updated'].replace('Z', '+00:00')).date() == \
                dt.date.fromisoformat(rec['modified'])
            xs = [p[0] for p in got['geometry']['coordinates'][0]]
            ys = [p[1] for p in got['geometry']['coordinates'][0]]
            assert (min(xs), min(ys), max(xs), max(ys)) == pytest.approx((rec['w'], rec['s'], rec['e'], rec['n']))
            assert any(lk['href'].endswith(rec['id']) for lk in got['links'])
        # searchable like ours, accents and case aside
        assert 'partenaire-csw:daaf-forets-2024' in [f['id'] for f in api(ITEMS, q='FORETS').json()['features']]

        again = harvest.harvest(url, 'partenaire-csw', protocol='csw', page_size=2, database_url=database_url)
        assert not (again.added or again.updated or again.removed) and len(again.unchanged) == len(PARTNER)

        with sqlite3.connect(repository) as lite:
            lite.execute("DELETE FROM records WHERE identifier = 'sdis-casernes'")
        gone = harvest.harvest(url, 'partenaire-csw', protocol='csw', database_url=database_url)
        assert gone.removed == ['partenaire-csw:sdis-casernes'] and not (gone.added or gone.updated)
    finally:
        harvest.forget('partenaire-csw', database_url)


CSW_RECORD = ('<csw:Record xmlns:csw="http://www.opengis.net/cat/csw/2.0.2" '
              'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dct="http://purl.org/dc/terms/" '
              'xmlns:ows="http://www.opengis.net/ows"><dc:identifier>r</dc:identifier>'
              '<dc:title>R</dc:title>{}</csw:Record>')
BOX = ('<ows:BoundingBox crs="urn:ogc:def:crs:EPSG::{}"><ows:LowerCorner>{} {}</ows:LowerCorner>'
       '<ows:UpperCorner>{} {}</ows:UpperCorner></ows:BoundingBox>')


@pytest.mark.parametrize('extra, geometry_type', [
    (BOX.format(4326, -13, 45, -12.6, 45.3), 'Polygon'),          # lat, lon (EPSG:4326)
    (BOX.format(4326, -12.8, 45.1, -12.8, 45.1), 'Point'),
    (BOX.format(4326, -13, 45.1, -12.6, 45.1), 'LineString'),
    (BOX.format(4326, 'NaN', 'NaN', 'inf', 'inf'), None),
    (BOX.format(4326, -100, -200, 100, 300), None),
    (BOX.format(3857, '1e300', '1e300', '2e300', '2e300'), None),
    ('<dct:modified>0001-01-01T00:00:00+14:00</dct:modified>', None),   # year 0 in UTC
])
def test_csw_records_are_checked_before_they_are_stored(extra, geometry_type):
    """Found by a breaking session: a CSW partner's bounding box of NaN, inf or past the
    longitude/latitude range, or a date that is before year 1 in UTC, was stored, and every
    catalogue page, bbox search and DCAT page answered 500 from then on."""
    from owslib.csw import CswRecord
    from owslib.etree import etree
    rec = CswRecord(etree.fromstring(CSW_RECORD.format(extra)))
    if geometry_type is None:
        with pytest.raises(ValueError):
            harvest.row_from_csw(rec, 'p', 'http://partner.example/csw')
    else:
        _, geometry, _ = harvest.row_from_csw(rec, 'p', 'http://partner.example/csw')
        assert json.loads(geometry)['type'] == geometry_type


class HostilePartner(http.server.BaseHTTPRequestHandler):
    """/hang never answers, /trickle sends a byte a second, /endless hands out next links for
    ever, /error answers 500, /deep nests JSON 200,000 levels, /owsexc is a CSW that
    answers an OWS exception report, /badxml truncated XML, /nulxml a record with &#0;."""
    protocol_version = 'HTTP/1.1'

    def send(self, body: bytes, status=200, ctype='application/json'):
        self.send_response(status)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        import time
        base = f'http://127.0.0.1:{self.server.server_port}'
        kind, _, rest = self.path.split('?')[0].lstrip('/').partition('/')
        if kind == 'hang':
            time.sleep(30)
            return
        if kind in ('owsexc', 'badxml', 'nulxml'):      # CSW GetCapabilities, then GetRecords
            return self.send(CSW_CAPS.format(base=base, kind=kind).encode(), ctype='application/xml')
        if rest in ('', 'collections'):
            doc = ({'links': [{'rel': 'data', 'href': f'{base}/{kind}/collections'}]} if not rest else
                   {'collections': [{'id': 'c', 'itemType': 'record', 'links': []}]})
            return self.send(json.dumps(doc).encode())
        if kind == 'trickle':
            self.send_response(200)
            self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length', '1000')
            self.end_headers()
            for _ in range(30):
                self.wfile.write(b' ')
                self.wfile.flush()
                time.sleep(1)
            return
        if kind == 'endless':
            n = int(self.path.rsplit('=', 1)[-1]) if 'page=' in self.path else 0
            return self.send(json.dumps({'type': 'FeatureCollection', 'features': [
                {'id': f'r{n}', 'type': 'Feature', 'geometry': None, 'properties': {'title': 'x'}}],
                'links': [{'rel': 'next', 'href': f'{base}/endless/collections/c/items?page={n + 1}'}]}).encode())
        if kind == 'error':
            return self.send(b'{"x": 1}', status=500)
        if kind == 'deep':
            return self.send(b'[' * 200000 + b']' * 200000)
        return self.send(b'{}', status=404)

    def do_POST(self):
        self.rfile.read(int(self.headers.get('Content-Length') or 0))
        kind = self.path.split('?')[0].lstrip('/').split('/')[0]
        rec = '<csw:Record><dc:identifier>a</dc:identifier><dc:title>A&#0;</dc:title></csw:Record>'
        body = {'owsexc': OWS_EXCEPTION, 'badxml': CSW_RESULTS.format(records=rec)[:200],
                'nulxml': CSW_RESULTS.format(records=rec)}[kind]
        self.send(body.encode(), ctype='application/xml')

    def log_message(self, *args):
        pass


CSW_CAPS = """<?xml version="1.0" encoding="UTF-8"?>
<csw:Capabilities xmlns:csw="http://www.opengis.net/cat/csw/2.0.2" xmlns:ows="http://www.opengis.net/ows"
  xmlns:ogc="http://www.opengis.net/ogc" xmlns:xlink="http://www.w3.org/1999/xlink" version="2.0.2">
<ows:ServiceIdentification><ows:Title>t</ows:Title><ows:ServiceType>CSW</ows:ServiceType>
<ows:ServiceTypeVersion>2.0.2</ows:ServiceTypeVersion></ows:ServiceIdentification>
<ows:OperationsMetadata>
<ows:Operation name="GetRecords"><ows:DCP><ows:HTTP><ows:Get xlink:href="{base}/{kind}"/>
<ows:Post xlink:href="{base}/{kind}"/></ows:HTTP></ows:DCP></ows:Operation>
</ows:OperationsMetadata></csw:Capabilities>"""
CSW_RESULTS = """<?xml version="1.0" encoding="UTF-8"?>
<csw:GetRecordsResponse xmlns:csw="http://www.opengis.net/cat/csw/2.0.2"
  xmlns:dc="http://purl.org/dc/elements/1.1/" version="2.0.2">
<csw:SearchStatus timestamp="2020-01-01T00:00:00Z"/>
<csw:SearchResults numberOfRecordsMatched="1" numberOfRecordsReturned="1" nextRecord="0">
{records}</csw:SearchResults></csw:GetRecordsResponse>"""
OWS_EXCEPTION = """<?xml version="1.0"?><ows:ExceptionReport xmlns:ows="http://www.opengis.net/ows"
  version="1.0.0"><ows:Exception exceptionCode="NoApplicableCode"><ows:ExceptionText>boom</ows:ExceptionText>
</ows:Exception></ows:ExceptionReport>"""


@pytest.mark.parametrize('kind, protocol, words', [
    ('hang', 'records', 'without an end'), ('trickle', 'records', 'without an end'),
    ('endless', 'records', 'without an end'), ('error', 'records', 'not'),
    ('deep', 'records', 'nested too deeply'), ('owsexc', 'csw', 'boom'),
    ('badxml', 'csw', 'not a readable catalogue'), ('nulxml', 'csw', 'not a readable catalogue'),
])
def test_a_hostile_partner_is_one_error_in_bounded_time(database_url, kind, protocol, words):
    """Found by a breaking session: a partner that never answered, trickled its answer or
    handed out next links for ever held a harvest for ever (no timeout reached OWSLib's
    requests), and HTTP errors, OWS exception reports, broken XML or deep JSON stopped it
    with a traceback. Nothing is written in any case."""
    import time
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), HostilePartner)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    started = time.monotonic()
    try:
        with pytest.raises(harvest.HarvestError) as err:
            harvest.harvest(f'http://127.0.0.1:{srv.server_port}/{kind}', 'hostile', protocol,
                            database_url=database_url, deadline=3)
        assert words in str(err.value), str(err.value)
        assert time.monotonic() - started < 15
    finally:
        srv.shutdown()
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('catalogue.record')")
        if cur.fetchone()[0] is not None:
            cur.execute("SELECT count(*) FROM catalogue.record WHERE source = 'hostile'")
            assert cur.fetchone()[0] == 0
