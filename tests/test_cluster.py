"""geomayotte-db on a cluster of its own: status and start name the port the cluster really
runs on (a newcomer's `status` said "running" for a port nothing listened on, so the other
commands would have used whatever database held the default port)."""
from __future__ import annotations

import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from geomayotte import cluster
from tests.conftest import free_port


@pytest.fixture(scope='module')
def small_cluster():
    base = Path(tempfile.mkdtemp(prefix='geomayotte-pgtest-'))
    base.chmod(0o755)
    pgdata, port, bindir = base / 'data', free_port(), cluster._bindir()
    cluster.start(pgdata, port, bindir)
    try:
        yield pgdata, port
    finally:
        cluster.stop(pgdata, bindir)
        shutil.rmtree(base, ignore_errors=True)


def test_status_and_start_say_which_port(small_cluster, capsys):
    pgdata, port = small_cluster
    assert cluster.running_port(pgdata) == port
    assert cluster.main(['status', '--pgdata', str(pgdata), '--port', str(port)]) == 0
    assert capsys.readouterr().out.strip() == 'running'
    other = free_port()
    assert cluster.main(['status', '--pgdata', str(pgdata), '--port', str(other)]) == 4
    out = capsys.readouterr()
    assert f'running on port {port}, not {other}' in out.out
    assert f'GEOMAYOTTE_PGPORT={port}' in out.err
    assert cluster.main(['start', '--pgdata', str(pgdata), '--port', str(other)]) == 2
    assert f'runs on port {port}, not {other}' in capsys.readouterr().err


def test_a_taken_port_says_so(capsys):
    base = Path(tempfile.mkdtemp(prefix='geomayotte-pgtest-'))
    base.chmod(0o755)
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        busy = taken.getsockname()[1]
        code = cluster.main(['start', '--pgdata', str(base / 'data'), '--port', str(busy)])
    try:
        assert code == 2
        err = capsys.readouterr().err
        assert f'Port {busy} is taken' in err
        assert 'LOG:' not in err and len(err.strip().splitlines()) == 1, err   # not pg_ctl's log
    finally:
        cluster.stop(base / 'data', cluster._bindir())
        shutil.rmtree(base, ignore_errors=True)
