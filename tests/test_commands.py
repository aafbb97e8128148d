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
])
def test_no_traceback(argv, env):
    exe = argv[0] if argv[0].startswith('/') else str(BIN / argv[0])
    res = subprocess.run([exe, *argv[1:]], capture_output=True, text=True, timeout=60,
                         env={**os.environ, **env}, cwd=Path(__file__).resolve().parent.parent)
    assert res.returncode in (1, 2), (res.returncode, res.stdout[-500:], res.stderr[-500:])
    assert 'Traceback' not in res.stderr + res.stdout, res.stderr[-2000:]
    last = res.stderr.strip().splitlines()[-1]
    assert any(w in last for w in ('not reachable', 'unavailable', 'not an integer', 'concurrency', 'refused')), last
