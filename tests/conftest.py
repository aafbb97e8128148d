"""Fixtures: a real PostGIS cluster started for the test run, loaded with the real
Mayotte data, and a real gunicorn server over it for HTTP clients.

Set GEOMAYOTTE_TEST_DATABASE_URL to run against an existing (empty, PostGIS-enabled)
database instead of starting a cluster.
"""
from __future__ import annotations

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
    try:
        loader.load_all(url, data_dir, progress=False)
        yield url
    finally:
        cluster.stop(pgdata, bindir)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def db(database_url):
    conn = psycopg2.connect(database_url)
    conn.autocommit = True
    yield conn
    conn.close()


@pytest.fixture(scope='session')
def server(database_url, tmp_path_factory, data_dir):
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
               GEOMAYOTTE_STREAM_ROWS='40', GEOMAYOTTE_STREAM_BATCH='15')
    subprocess.run([sys.executable, '-m', 'geomayotte.openapi', '--output', str(openapi)],
                   env=env, check=True, cwd=ROOT, capture_output=True)
    log = open(tmp_path_factory.mktemp('log') / 'gunicorn.log', 'w+')
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / 'gunicorn'), 'geomayotte.app:application',
         '--bind', f'127.0.0.1:{port}', '--workers', '2', '--threads', '4',
         '--worker-class', 'gthread', '--timeout', '60', '--limit-request-line', '8190',
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
def api(server):
    """GET helper: api('/collections', limit=1) -> requests.Response."""
    session = requests.Session()

    def get(path, headers=None, **params):
        return session.get(server + path, params=params or None, headers=headers, timeout=30)
    get.base = server
    get.session = session
    return get
