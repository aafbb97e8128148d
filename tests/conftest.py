"""Fixtures: a real PostGIS cluster started for the test run, loaded with the real
Mayotte data, and a real gunicorn server over it for HTTP clients.

Set GEOMAYOTTE_TEST_DATABASE_URL to run against an existing (empty, PostGIS-enabled)
database instead of starting a cluster.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2
import pytest
import requests

from geomayotte import cluster, settings
from geomayotte.loader import cli as loader

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = settings.data_dir()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture
def free_tcp_port() -> int:
    return free_port()


@pytest.fixture(scope='session')
def data_dir() -> Path:
    assert (DATA_DIR / 'SOURCES.md').exists(), f'real data not found in {DATA_DIR}'
    return DATA_DIR


# the cluster started for the run (None with GEOMAYOTTE_TEST_DATABASE_URL): tests that
# restart the database under the server need it
_CLUSTER: dict = {}


@pytest.fixture(scope='session')
def database_url(data_dir):
    given = os.environ.get('GEOMAYOTTE_TEST_DATABASE_URL')
    if given:
        loader.load_all(given, data_dir, progress=False)
        yield given
        return
    base = Path(tempfile.mkdtemp(prefix='geomayotte-pg-'))
    base.chmod(0o755)   # the cluster belongs to `postgres` when we are root
    pgdata = base / 'data'
    port = free_port()
    bindir = cluster._bindir()
    url = cluster.start(pgdata, port, bindir)
    _CLUSTER.update(pgdata=pgdata, port=port, bindir=bindir)
    try:
        loader.load_all(url, data_dir, progress=False)
        yield url
    finally:
        cluster.stop(pgdata, bindir)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def restart_database(database_url):
    """Restart the run's PostgreSQL (fast shutdown: every session is cut, as in a real
    restart); skipped against a database the run did not start."""
    if not _CLUSTER:
        pytest.skip('GEOMAYOTTE_TEST_DATABASE_URL: the database is not the run\'s to restart')

    def restart():
        cluster.stop(_CLUSTER['pgdata'], _CLUSTER['bindir'])
        cluster.start(_CLUSTER['pgdata'], _CLUSTER['port'], _CLUSTER['bindir'])
    return restart


@pytest.fixture
def db(database_url):
    conn = psycopg2.connect(database_url)
    conn.autocommit = True
    yield conn
    conn.close()


@pytest.fixture(scope='session')
def oidc(tmp_path_factory):
    """An OpenID Connect issuer of our own: an RSA key pair, its JWKS file (which the server
    is configured with) and ``oidc.token(partner=..., **claims)`` to sign bearer JWTs."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid='test-key', use='sig', alg='RS256')
    path = tmp_path_factory.mktemp('oidc') / 'jwks.json'
    path.write_text(json.dumps({'keys': [jwk]}))

    class Issuer:
        issuer, audience, jwks = 'https://issuer.test/realms/mayotte', 'geomayotte', str(path)
        private_key = key

        def token(self, partner='test-partner', key=None, kid='test-key', **claims):
            now = int(time.time())
            body = {'iss': self.issuer, 'aud': self.audience, 'iat': now, 'exp': now + 300,
                    'partner': partner, **claims}
            body = {k: v for k, v in body.items() if v is not None}
            return jwt.encode(body, key or self.private_key, algorithm='RS256', headers={'kid': kid})
    return Issuer()


@pytest.fixture(scope='session')
def partner_key(database_url):
    """The API key of `test-partner`: may read datasets of diffusion `partners`, and the
    restricted `forets_publiques` (granted)."""
    from geomayotte.access import store, tokens
    store.add_partner(database_url, 'test-partner', 'Partenaire des tests')
    token, key_id, secret = tokens.new_key()
    store.add_key(database_url, 'test-partner', key_id, secret, 'tests', None)
    store.grant(database_url, 'test-partner', 'forets_publiques', write=False)   # restricted
    return token


@pytest.fixture(scope='session')
def server(database_url, tmp_path_factory, data_dir, oidc):
    """A gunicorn server (2 workers) on a free port; yields its base URL."""
    port = free_port()
    base_url = f'http://127.0.0.1:{port}'
    openapi = tmp_path_factory.mktemp('openapi') / 'openapi.yml'
    env = dict(os.environ, DATABASE_URL=database_url, GEOMAYOTTE_DATA_DIR=str(data_dir),
               GEOMAYOTTE_BASE_URL=base_url, PYGEOAPI_CONFIG=str(ROOT / 'pygeoapi-config.yml'),
               PYGEOAPI_OPENAPI=str(openapi), GEOMAYOTTE_MAX_PROCESS_BODY=str(8 * 1024 * 1024),
               GEOMAYOTTE_MAX_SYNC_BODY=str(1024 * 1024),
               # pages of 40 features or more are streamed, 15 per chunk: every test asking
               # for more goes through the streamed path too
               GEOMAYOTTE_STREAM_ROWS='40', GEOMAYOTTE_STREAM_BATCH='15',
               # a client that stops sending or reading holds a thread 5 s (default 30)
               GEOMAYOTTE_SOCKET_TIMEOUT='5',
               GEOMAYOTTE_OIDC_ISSUER=oidc.issuer, GEOMAYOTTE_OIDC_JWKS=oidc.jwks,
               GEOMAYOTTE_OIDC_AUDIENCE=oidc.audience)
    subprocess.run([sys.executable, '-m', 'geomayotte.openapi', '--output', str(openapi)],
                   env=env, check=True, cwd=ROOT, capture_output=True)
    log = open(tmp_path_factory.mktemp('log') / 'gunicorn.log', 'w+')
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / 'gunicorn'), 'geomayotte.app:application',
         '--bind', f'127.0.0.1:{port}', '--workers', '2', '--threads', '4',
         '--worker-class', 'geomayotte.gunicorn_worker.ThreadWorker', '--timeout', '60', '--limit-request-line', '8190',
         '--access-logfile', '-'],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    worker_log = open(tmp_path_factory.mktemp('worker') / 'worker.log', 'w+')
    worker = subprocess.Popen([str(Path(sys.executable).parent / 'geomayotte-worker')], env=env,
                              cwd=ROOT, stdout=worker_log, stderr=subprocess.STDOUT)
    def stop():
        for p in (worker, proc):
            p.terminate()
        for p in (worker, proc):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(f'{base_url}/conformance', timeout=5).status_code == 200:
                break
        except requests.RequestException:   # not up yet, or slow to answer its first request
            pass
        if proc.poll() is not None:
            stop()
            log.seek(0)
            raise RuntimeError(f'gunicorn exited:\n{log.read()[-3000:]}')
        time.sleep(0.3)
    else:
        stop()
        raise RuntimeError('server did not answer within 120 s')
    yield base_url
    stop()
    log.seek(0)
    tail = log.read()
    # A 5xx or a server-side traceback is a bug even when the test looked fine.
    assert not re.search(r'" 5\d\d ', tail), [ln for ln in tail.splitlines() if re.search(r'" 5\d\d ', ln)]
    assert 'Traceback' not in tail, tail[-5000:]


@pytest.fixture(scope='session')
def api(server, partner_key):
    """GET helper as the test partner (``api.session`` carries its API key):
    api('/collections', limit=1) -> requests.Response."""
    session = requests.Session()
    session.headers['Authorization'] = f'Bearer {partner_key}'

    def get(path, headers=None, **params):
        return session.get(server + path, params=params or None, headers=headers, timeout=30)
    get.base = server
    get.session = session
    return get


@pytest.fixture(scope='session')
def anon(server):
    """GET helper with no credential: anon('/collections') -> requests.Response."""
    session = requests.Session()

    def get(path, headers=None, **params):
        return session.get(server + path, params=params or None, headers=headers, timeout=30)
    get.base = server
    get.session = session
    return get


@pytest.fixture(scope='session')
def owslib(server, partner_key):
    """owslib(Features) -> a client of the live server as the test partner;
    owslib(Features, key=None) -> anonymous. (OWSLib 0.3x adds the headers it is given to
    its module-wide REQUEST_HEADERS, so every later client would send them: each client
    gets its own copy here, and the module's dict is left as it was.)"""
    import owslib.ogcapi as ogcapi

    def make(cls, key=partner_key):
        saved = dict(ogcapi.REQUEST_HEADERS)
        try:
            client = cls(server, headers={'Authorization': f'Bearer {key}'} if key else None)
            client.headers = dict(client.headers)
        finally:
            ogcapi.REQUEST_HEADERS.clear()
            ogcapi.REQUEST_HEADERS.update(saved)
        return client
    return make
