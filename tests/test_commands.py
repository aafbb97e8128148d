"""The command-line tools say what is wrong in one line (exit 1 or 2), never with a Python
traceback: an unreachable database, a DSN that is not one, a setting that is not a number,
a bad argument (a breaking session found tracebacks in every one of them)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port

BIN = Path(sys.executable).parent
NOWHERE = f'postgresql://nobody@127.0.0.1:{free_port()}/nope'


@pytest.mark.parametrize('argv,env', [
    (['geomayotte-partners', '--database-url', NOWHERE, 'list'], {}),
    (['geomayotte-partners', '--database-url', 'not a url', 'list'], {}),
    (['geomayotte-load', '--database-url', NOWHERE, '--quiet'], {}),
    (['geomayotte-worker', '--once'], {'DATABASE_URL': NOWHERE}),
    (['geomayotte-worker', '--concurrency', '-3'], {'DATABASE_URL': NOWHERE}),
    (['geomayotte-worker', '--concurrency', '0', '--once'], {'DATABASE_URL': NOWHERE}),
    (['geomayotte-catalogue', '--database-url', NOWHERE, 'sync'], {}),
    (['geomayotte-db', 'status'], {'GEOMAYOTTE_PGPORT': 'abc'}),
    (['geomayotte-db', 'url'], {'GEOMAYOTTE_PGPORT': '54x'}),
    ([str(BIN / 'python'), '-m', 'geomayotte.openapi', '--output', os.devnull], {'DATABASE_URL': NOWHERE}),
    # settings out of range or not numbers (a breaker's findings: tracebacks, and a hang for 0)
    (['geomayotte-partners', 'list'], {'GEOMAYOTTE_POOL_SIZE': '-1'}),
    (['geomayotte-partners', 'list'], {'GEOMAYOTTE_POOL_SIZE': '0'}),
    (['geomayotte-catalogue', 'sync'], {'GEOMAYOTTE_POOL_SIZE': '-1'}),
    (['geomayotte-load', '--quiet', '--only', 'villages'], {'GEOMAYOTTE_POOL_SIZE': '0'}),
    (['geomayotte-worker', '--once'], {'GEOMAYOTTE_JOB_TIMEOUT': 'abc'}),
    (['geomayotte-worker', '--once'], {'GEOMAYOTTE_JOB_MEMORY_MB': '1e400'}),
    (['geomayotte-worker', '--once'], {'GEOMAYOTTE_PGPORT': 'abc'}),
    (['geomayotte-worker', '--once'], {'GEOMAYOTTE_STATEMENT_TIMEOUT': 'nan'}),
    # in range for Python, not for what reads them (every job failed on setrlimit; PostgreSQL
    # refused the session, said as "database not reachable")
    (['geomayotte-worker', '--once'], {'GEOMAYOTTE_JOB_MEMORY_MB': '99999999999999999999999'}),
    (['geomayotte-partners', 'list'], {'GEOMAYOTTE_STATEMENT_TIMEOUT': '3000000'}),
])
def test_no_traceback(argv, env):
    exe = argv[0] if argv[0].startswith('/') else str(BIN / argv[0])
    res = subprocess.run([exe, *argv[1:]], capture_output=True, text=True, timeout=60,
                         env={**os.environ, **env}, cwd=Path(__file__).resolve().parent.parent)
    assert res.returncode in (1, 2), (res.returncode, res.stdout[-500:], res.stderr[-500:])
    assert 'Traceback' not in res.stderr + res.stdout, res.stderr[-2000:]
    last = res.stderr.strip().splitlines()[-1]
    assert any(w in last for w in ('not reachable', 'unavailable', 'not an integer', 'not a number',
                                   'at least', 'at most', 'concurrency', 'refused')), last


@pytest.mark.parametrize('env', [
    {'GEOMAYOTTE_MAX_BODY': 'xyz'}, {'GEOMAYOTTE_SOCKET_TIMEOUT': 'abc'},
    {'GEOMAYOTTE_STATEMENT_TIMEOUT': 'abc'}, {'GEOMAYOTTE_POOL_SIZE': '-1'}, {'GEOMAYOTTE_POOL_SIZE': '0'},
    {'GEOMAYOTTE_MAX_FEATURE_VERTICES': '-5'}, {'GEOMAYOTTE_STREAM_BATCH': '0'},
    # read by the worker class before the app: a traceback per worker; 1e10 passed the check
    # and every request was a 500 (socket.settimeout overflow)
    {'GEOMAYOTTE_SOCKET_TIMEOUT': '-1'}, {'GEOMAYOTTE_SOCKET_TIMEOUT': '1e10'},
    {'GEOMAYOTTE_STATEMENT_TIMEOUT': '3000000'},
])
def test_the_server_refuses_to_start_on_a_bad_setting_in_one_line(env, tmp_path):
    """A breaker's finding: the server's workers died on a bad setting with a 40-75 line
    traceback each (gunicorn starting them again), or waited 30 s on an empty pool."""
    res = subprocess.run([str(BIN / 'gunicorn'), 'geomayotte.app:application', '--bind',
                          f'127.0.0.1:{free_port()}', '--workers', '1',
                          '--worker-class', 'geomayotte.gunicorn_worker.ThreadWorker'], capture_output=True, text=True,
                         timeout=90, env={**os.environ, **env}, cwd=Path(__file__).resolve().parent.parent)
    assert res.returncode == 3, res.stderr[-1000:]                # gunicorn: worker failed to boot
    assert 'Traceback' not in res.stderr, res.stderr[-2000:]
    name = next(iter(env))
    assert any(line.startswith(f'geomayotte: {name}=') for line in res.stderr.splitlines()), res.stderr[-1000:]
